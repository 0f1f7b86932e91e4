"""The debug console's cluster commands: ``cluster`` (the links and registered names) and
``reload`` (reread the cluster file). Imported when a node joins its cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING

from meshnet.address import format_address
from meshnet.cluster.api import of
from meshnet.console.args import Words
from meshnet.console.registry import console_command
from meshnet.console.tables import table

if TYPE_CHECKING:
    from meshnet.console.server import ConsoleServer


@console_command(
    "cluster",
    "cluster",
    "this node's links (node, id, address, state, messages sent and lost; a skynet node "
    "has id skynet) and the names registered here with cluster.register",
)
async def cluster_command(console: ConsoleServer, words: Words) -> str:
    """The ``cluster`` command."""
    words.done()
    cluster = of(console.node)
    links = [
        (
            link.member.name,
            "skynet" if link.member.id is None else link.member.id,
            link.member.address,
            link.state if link.state != "down" else f"down: {link.down_reason}",
            link.sent_messages,
            link.lost_messages,
        )
        for link in sorted(
            cluster.links(), key=lambda link: (link.member.id or 0, link.member.name)
        )
    ]
    names = [
        (name, format_address(address)) for name, address in sorted(cluster.registered.items())
    ]
    return "\n\n".join(
        [
            table(["node", "id", "address", "state", "sent", "lost"], links),
            table(["registered name", "address"], names),
        ]
    )


@console_command("reload", "reload", "reread the cluster file: changed nodes' links restart")
async def reload_command(console: ConsoleServer, words: Words) -> str:
    """The ``reload`` command."""
    words.done()
    changed = of(console.node).reload()
    return f"changed: {', '.join(sorted(changed))}" if changed else "no node changed"

"""The ``skynet_*`` keys of a node's ``[cluster]`` section: the listener skynet nodes call.

    [cluster]
    skynet_listen = "127.0.0.1:2529"   # where skynet nodes connect (their clustername entry)
    skynet_expose = ["echo", ".db"]    # what they may call: cluster.register names, .names
    skynet_allow = ["10.0.0.7", "10.0.1.0/24"]   # who may connect (default: loopback only)
    skynet_max_connections = 64
    skynet_max_message = 16777216      # bytes, the largest request or answer taken

skynet's cluster protocol has no authentication, so the listener binds a loopback address
unless ``skynet_allow`` names the addresses (or networks) of the skynet nodes that may
connect; then only those may. It answers only for the exposed names: ``"echo"`` is the
service registered with ``cluster.register("echo")`` (skynet calls it as ``"@echo"``, or
by the address ``cluster.query`` gives), ``".db"`` the node-local name ``.db``.

The peers this node calls are entries of the cluster table with ``protocol = "skynet"``
(``meshnet.cluster.config``); ``skynet_max_message`` bounds their answers too.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from meshnet.admission import Network, networks
from meshnet.cluster.members import NAME, MemberError, parse_host_port
from meshnet.cluster.skynet.wire import DEFAULT_MAX_MESSAGE
from meshnet.errors import MeshnetError
from meshnet.hostport import is_loopback

DEFAULT_MAX_CONNECTIONS = 64
MIN_MAX_MESSAGE = 0x10000
"""One packet's worth: a message in a single packet is always taken."""

SKYNET_KEYS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "skynet_listen": (str, "host:port where skynet nodes connect"),
    "skynet_expose": (list, 'the names skynet nodes may call, such as ["echo", ".db"]'),
    "skynet_allow": (list, 'the addresses allowed to connect, such as ["10.0.0.7"]'),
    "skynet_max_connections": (int, "the skynet connections served at once"),
    "skynet_max_message": (int, "the largest skynet message taken, in bytes"),
}
"""The keys, their types and what they hold (merged into the ``[cluster]`` keys)."""


class SkynetConfigError(MeshnetError):
    """A ``skynet_*`` key of the ``[cluster]`` section is wrong; the message names it."""


@dataclass(frozen=True)
class SkynetSettings:
    """How this node speaks skynet's cluster protocol."""

    listen: tuple[str, int] | None = None
    """Where skynet nodes connect; None: no listener."""
    expose: tuple[str, ...] = ()
    """Names skynet nodes may call: ``"name"`` registered with ``cluster.register``,
    ``".name"`` node-local."""
    allow: tuple[Network, ...] = ()
    """Who may connect; empty: loopback addresses only."""
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_message: int = DEFAULT_MAX_MESSAGE

    def allows(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        """Whether a connection from ``address`` may be served."""
        if address is None:
            return False
        if not self.allow:
            return address.is_loopback
        return any(address in network for network in self.allow)


def parse_skynet(table: dict[str, Any]) -> SkynetSettings:
    """The ``SkynetSettings`` of a ``[cluster]`` table (types already checked)."""
    listen = None
    if "skynet_listen" in table:
        try:
            listen = parse_host_port(table["skynet_listen"], "cluster.skynet_listen")
        except MemberError as exc:
            raise SkynetConfigError(str(exc)) from None
    elif given := [key for key in ("skynet_expose", "skynet_allow") if key in table]:
        raise SkynetConfigError(f"'cluster.{given[0]}' needs 'cluster.skynet_listen'")
    allow = _allow(table.get("skynet_allow", []))
    if listen is not None and not allow and not is_loopback(listen[0]):
        raise SkynetConfigError(
            f"'cluster.skynet_listen' binds {listen[0]!r}, which is not a loopback address: "
            "skynet's cluster protocol has no authentication, so name the skynet nodes "
            "allowed to connect in 'cluster.skynet_allow'"
        )
    expose = _expose(table.get("skynet_expose", []))
    if listen is not None and not expose:
        raise SkynetConfigError(
            "'cluster.skynet_listen' needs 'cluster.skynet_expose', the names skynet nodes "
            'may call (such as ["echo"])'
        )
    max_connections = table.get("skynet_max_connections", DEFAULT_MAX_CONNECTIONS)
    if max_connections < 1:
        raise SkynetConfigError(
            f"'cluster.skynet_max_connections' must be at least 1, not {max_connections}"
        )
    max_message = table.get("skynet_max_message", DEFAULT_MAX_MESSAGE)
    if max_message < MIN_MAX_MESSAGE:
        raise SkynetConfigError(
            f"'cluster.skynet_max_message' must be at least {MIN_MAX_MESSAGE} bytes, "
            f"not {max_message}"
        )
    return SkynetSettings(listen, expose, allow, max_connections, max_message)


def _expose(names: list[Any]) -> tuple[str, ...]:
    for name in names:
        if not isinstance(name, str) or not NAME.fullmatch(name.removeprefix(".")):
            raise SkynetConfigError(
                "'cluster.skynet_expose' holds names registered with cluster.register "
                f'("echo") or node-local names (".echo"), not {name!r}'
            )
    return tuple(dict.fromkeys(names))


def _allow(entries: list[Any]) -> tuple[Network, ...]:
    for entry in entries:
        try:
            if not isinstance(entry, str):
                raise TypeError(entry)
            networks([entry])
        except (TypeError, ValueError):
            raise SkynetConfigError(
                "'cluster.skynet_allow' holds IP addresses or networks (\"10.0.0.7\", "
                f'"10.0.1.0/24"), not {entry!r}'
            ) from None
    return networks(entries)

"""Shared by the demo game's tests: the whole game on the test's node, on free ports."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import trio

from demo_game.main import Main
from demo_game.names import MANAGER
from meshnet.address import Address

HOST = "127.0.0.1"
CHEAP_SCRYPT = {"scrypt_n": 2**8, "scrypt_r": 8, "scrypt_p": 1}
WAIT = 10.0
"""Seconds a test waits for something that should happen at once (it is not a threshold)."""


@dataclass(frozen=True)
class Demo:
    hub: int
    hub_ws: int
    login: int
    msgserver: int
    web: int


def settings(db: Path, reconnect_window: float = 60.0, **sections: dict) -> dict:
    """Every listener on a free port, a cheap scrypt cost, the accounts in ``db``; the
    keys of ``sections`` on top."""
    listen = {"address": HOST, "port": 0}
    chosen = {
        "hub": {**listen, "ws_port": 0},
        "login": listen,
        "msgserver": {**listen, "servername": "demo"},
        "web": listen,
        "accounts": {"path": str(db), **CHEAP_SCRYPT},
        "agent": {"reconnect_window": reconnect_window},
    }
    for section, values in sections.items():
        chosen[section] = {**chosen.get(section, {}), **values}
    return chosen


async def start_demo(node, db: Path, reconnect_window: float = 60.0, **sections: dict) -> Demo:
    main = await node.newservice(Main, settings(db, reconnect_window, **sections))
    return Demo(**await node.call(main, "ports"))


async def agent_of(node, user: str) -> int | None:
    return await node.call(MANAGER, "agent_of", user)


async def agent_gone(node, user: str, agent: int | None) -> None:
    """Wait until ``agent`` no longer serves ``user`` and has exited (at once for None,
    an agent that already left). ``agent`` may be a full address or the text form's."""
    with trio.fail_after(WAIT):
        while agent is not None and (
            same_agent(await agent_of(node, user), agent)
            or any(same_agent(live, agent) for live in node.services())
        ):
            await trio.sleep(0.02)


def same_agent(address: int | None, other: int) -> bool:
    """True if both name the same service, even when one comes from its text form (which
    leaves out the node's incarnation)."""
    return address is not None and Address(address).handle == Address(other).handle


NEW_USER_FLOW = [
    'signin: ok {"ok": false}',
    'signup: ok {"ok": true}',
    'signin: ok {"ok": true}',
    "ping: error not logged in",
    'push: ok {"text": "welcome alice (agent :*)"}',
    'login: ok {"ok": true}',
    "ping: ok {}",
]
"""What the client prints for a new user ``alice`` over the hub (``without_agent``)."""


def secure_user_flow(user: str) -> list[str]:
    """What the client prints with ``--secure`` for a new ``user`` (``without_agent``)."""
    return [
        "signin: error 401 Unauthorized",
        "signup: ok 200",
        "signin: ok 200 MQ==",
        "connect: ok 200 OK (index 1)",
        "ping: error not logged in",
        f'push: ok {{"text": "welcome {user} (agent :*)"}}',
        'login: ok {"ok": true}',
        "ping: ok {}",
        "reconnect: ok 200 OK (index 2)",
        "ping: ok {}",
    ]


def without_agent(lines: list[str]) -> list[str]:
    """The lines with the welcome's agent address (which varies) blanked."""
    return [re.sub(r"agent :[0-9a-f]{8}", "agent :*", line) for line in lines]


def agent_in(welcome: str) -> Address:
    """The agent address a welcome text names (in text form: without the incarnation)."""
    return Address.parse(re.search(r"agent (:[0-9a-f]{8})", welcome).group(1))

"""The demo client: skynet_sample's client flow, one printed line per step.

Over the hub (TCP, or WebSocket with ``ws``)::

    signin: ok {"ok": false}          a new user: no such account yet
    signup: ok {"ok": true}
    signin: ok {"ok": true}
    ping: error not logged in
    push: ok {"text": "welcome alice (agent :0100000c)"}
    login: ok {"ok": true}
    ping: ok {}

A user who already has an account signs in at once and skips the next two steps. Then
come the requests asked for (``then``; on the demo on several nodes, the gold)::

    wallet: ok {"main": 100, "subgame": 0, "in_transit": 0}
    enter_subgame: ok {"state": "delivered", "gold": 100}
    wallet: ok {"main": 0, "subgame": 100, "in_transit": 0}

The secure path signs up and in through the login server (status lines), then talks to
the agent through the msgserver, and finally shows a reconnect with the next index: a
ping is sent, the connection dropped before its answer, and the same session sent again
on a new connection is answered from the msgserver's cache::

    signin: error 401 Unauthorized
    signup: ok 200
    signin: ok 200 MQ==
    connect: ok 200 OK (index 1)
    ping: error not logged in
    push: ok {"text": "welcome alice (agent :0100000c)"}
    login: ok {"ok": true}
    ping: ok {}
    reconnect: ok 200 OK (index 2)
    ping: ok {}

Each flow returns True if it ended logged in (its last ping answered) and every request
of ``then`` was answered.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from demo_game.connection import Answer, HubClient, SecureClient, open_hub
from demo_game.proto import SIGNUP_SERVER
from meshnet.gate.proto import Reply
from meshnet.login.client import LoginRefused, LoginResult, login
from meshnet.login.gateclient import HandshakeRefused, connect_gate
from meshnet.login.wire import ok_status

Say = Callable[[str], None]
"""Where the flow's lines go (``print``, or a list's ``append`` in tests)."""


async def hub_flow(
    host: str, port: int, user: str, password: str, *, ws: bool, say: Say, then: Sequence[str] = ()
) -> bool:
    """The flow over a hub connection, then the requests ``then``."""
    credentials = {"user": user, "password": password}
    async with open_hub(host, port, ws=ws) as hub:
        signed_in = await _step(hub, "signin", credentials, say) or (
            await _step(hub, "signup", credentials, say)
            and await _step(hub, "signin", credentials, say)
        )
        return signed_in and await _play(hub, say, then)


async def secure_flow(
    host: str,
    login_port: int,
    msg_port: int,
    server: str,
    user: str,
    password: str,
    say: Say,
    then: Sequence[str] = (),
) -> bool:
    """The flow through the login server (``login_port``) and the msgserver (``msg_port``)
    of game server ``server``, with the requests ``then`` before the reconnect."""

    async def login_step(step: str, to: str) -> LoginResult | None:
        try:
            result = await login(host, login_port, to, user, password)
        except LoginRefused as refused:
            say(f"{step}: error {refused.line.decode(errors='replace')}")
            return None
        say(f"{step}: ok {ok_status(result.subid).decode(errors='replace').strip()}")
        return result

    result = await login_step("signin", server)
    if result is None and await login_step("signup", SIGNUP_SERVER) is not None:
        result = await login_step("signin", server)
    if result is None:
        return False
    try:
        gate = await connect_gate(host, msg_port, result, 1)
    except HandshakeRefused as refused:
        say(f"connect: error {refused.line.decode(errors='replace')}")
        return False
    say(f"connect: ok {gate.status.decode()} (index {gate.index})")
    agent = SecureClient(gate)
    try:
        if not await _play(agent, say, then):
            return False
        answer = await agent.resend_after_reconnect("ping")
        say(f"reconnect: ok {agent.gate.status.decode()} (index {agent.gate.index})")
        _report("ping", answer, say)
        return answer.ok
    finally:
        await agent.aclose()


def reply_line(step: str, reply: Reply) -> str:
    """``<step>: ok <body as JSON>`` or ``<step>: error <message>``."""
    return f"{step}: ok {json.dumps(reply.body)}" if reply.ok else f"{step}: error {reply.error}"


async def _play(game: HubClient | SecureClient, say: Say, then: Sequence[str]) -> bool:
    """ping (refused: not logged in yet), login, ping, then each request of ``then``."""
    await _step(game, "ping", None, say)
    if not (await _step(game, "login", None, say) and await _step(game, "ping", None, say)):
        return False
    answered = [await _step(game, request, None, say) for request in then]
    return all(answered)


async def _step(
    game: HubClient | SecureClient, name: str, body: dict[str, Any] | None, say: Say
) -> bool:
    answer = await game.request(name, body)
    _report(name, answer, say)
    return answer.ok


def _report(step: str, answer: Answer, say: Say) -> None:
    for push in answer.pushes:
        say(reply_line(push.message.name, push))
    say(reply_line(step, answer.reply))

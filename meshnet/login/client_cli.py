"""``python -m meshnet login-client``: log in, handshake with the msgserver, send requests.

One line per step: ``login: <status line>``, ``handshake: <status line>``, then for each
request ``response <session>: ok <content>`` or ``response <session>: error``. Sessions count
from 1 in ``--send`` order. A refused login or handshake prints its status line and exits 1.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import trio

from meshnet.errors import MeshnetError
from meshnet.login.client import LoginRefused, login
from meshnet.login.gateclient import HandshakeRefused, connect_gate
from meshnet.login.wire import Response, ok_status

Address = tuple[str, int]


class LoginClientError(MeshnetError):
    """The login client cannot run: bad options, or a server it cannot reach."""


def run_login_client(
    login_at: Address,
    gate_at: Address,
    server: str,
    user: str,
    password: str,
    sends: Sequence[str],
    reconnect: bool,
) -> int:
    """Run the whole session, printing each step; the exit code (0, or 1 when refused).

    With ``reconnect``, the first request is sent, the connection dropped without reading
    the answer, and the session sent again on a new connection with the next index, where
    the msgserver answers it from its cache.
    """
    if reconnect and not sends:
        raise LoginClientError("--reconnect needs a request to resend: give at least one --send")
    requests = [(session, os.fsencode(text)) for session, text in enumerate(sends, 1)]
    return trio.run(_refusal_exit, login_at, gate_at, server, user, password, requests, reconnect)


async def _refusal_exit(*args: object) -> int:
    try:
        await _session(*args)
    except LoginRefused as refused:
        _say("login", refused.line)
        return 1
    except HandshakeRefused as refused:
        _say("handshake", refused.line)
        return 1
    return 0


async def _session(
    login_at: Address,
    gate_at: Address,
    server: str,
    user: str,
    password: str,
    requests: list[tuple[int, bytes]],
    reconnect: bool,
) -> None:
    with _reaching("login server", login_at):
        result = await login(*login_at, server, user, password)
    _say("login", ok_status(result.subid))  # the 200 line again: its base64 is canonical
    with _reaching("msgserver", gate_at):
        connection = await connect_gate(*gate_at, result, 1)
        _say("handshake", connection.status)
        try:
            if reconnect:
                session, content = requests[0]
                await connection.send_request(content, session)
                connection = await connection.reconnect()
                _say("handshake", connection.status)
            for session, content in requests:
                _report(await connection.request(content, session))
        finally:
            await connection.aclose()


def _report(response: Response) -> None:
    if response.ok:
        print(f"response {response.session}: ok {_text(response.content)}", flush=True)
    else:
        print(f"response {response.session}: error", flush=True)


def _say(step: str, line: bytes) -> None:
    print(f"{step}: {_text(line)}", flush=True)


def _text(data: bytes) -> str:
    return data.decode(errors="backslashreplace")


@contextmanager
def _reaching(what: str, address: Address) -> Iterator[None]:
    """Turn a network failure into one ``LoginClientError`` naming the server."""
    try:
        yield
    except (OSError, trio.BrokenResourceError) as exc:
        host, port = address
        raise LoginClientError(f"{what} at {host}:{port}: {exc}") from exc

"""``ConsoleServer``: the node's debug console, a line-oriented TCP service (skynet's
``debug_console``), usable with ``nc``, ``telnet`` or ``meshnet console HOST:PORT``.

Wire format: UTF-8 lines ending in ``\\n`` (a ``\\r`` before it is dropped), at most
``MAX_LINE`` bytes. On connecting the console sends a greeting; each line the client
sends is one command (``help`` lists them), and every answer, the greeting included, is
lines of text followed by a line ``<CMD OK>`` or ``<CMD Error>``::

    meshnet console of node 'demo' (id 1): type help for the commands
    <CMD OK>
    ping .auth
    :01000004: 0.081 ms
    <CMD OK>

A console that has a password says so in its greeting and takes the first line as the
password: a wrong one is answered ``<CMD Error>`` and the connection closed. The console
can start services and call any command, so a console on a non-loopback address without a
password is refused at start (``ConsoleError``).
"""

from __future__ import annotations

import hmac
import logging

import trio

import meshnet.console.builtins  # noqa: F401  (declares the built-in commands)
from meshnet.console.registry import ERROR, OK, run_line
from meshnet.errors import MeshnetError
from meshnet.hostport import is_loopback
from meshnet.net import peer_name, serve_tcp
from meshnet.service import Service, command

logger = logging.getLogger(__name__)

MAX_LINE = 65536
"""Bytes a command line may take."""
WRONG_PASSWORD_DELAY = 1.0
"""Seconds before a wrong password is answered, to slow down guessing."""


class ConsoleError(MeshnetError):
    """The console cannot start as configured (a public address without a password)."""


class ConsoleServer(Service):
    """The debug console of the node it runs on; see the module docstring."""

    async def init(
        self, host: str = "127.0.0.1", port: int = 0, password: str | None = None
    ) -> None:
        """Listen on ``host:port`` (0: a free port, see the ``port`` command); a host that
        is not loopback needs a ``password``."""
        if password is None and not is_loopback(host):
            raise ConsoleError(
                f"the console would listen on {host}, which is not a loopback address, "
                "without a password: give it one (node.console_password)"
            )
        self._password = password
        self._port, _ = await serve_tcp(self, self._serve, host, port, shared=False)
        logger.info("debug console on %s:%d", host, self._port)

    @command
    async def port(self) -> int:
        """The port it listens on."""
        return self._port

    async def _serve(self, stream: trio.SocketStream) -> None:
        lines = _Lines(stream)
        greeting = f"meshnet console of node {self.node.name!r} (id {self.node.id})"
        if self._password is None:
            await _answer(stream, True, f"{greeting}: type help for the commands")
        else:
            await _answer(stream, True, f"{greeting}: password required: send it on a line")
            if not await self._authenticated(stream, lines):
                return
        while (line := await lines.next()) is not None:
            if line.strip():
                await _answer(stream, *await run_line(self, line))

    async def _authenticated(self, stream: trio.SocketStream, lines: _Lines) -> bool:
        line = await lines.next()
        if line is None:
            return False
        assert self._password is not None
        if hmac.compare_digest(line.encode(), self._password.encode()):
            await _answer(stream, True, "authenticated: type help for the commands")
            return True
        logger.warning("console: wrong password from %s", peer_name(stream))
        await trio.sleep(WRONG_PASSWORD_DELAY)
        await _answer(stream, False, "wrong password")
        return False


class _Lines:
    """The lines a client sends (see the module docstring)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._buffer = b""

    async def next(self) -> str | None:
        """The next line; None once the client closed or sent an overlong or non-UTF-8 line
        (then the client has been told why)."""
        while b"\n" not in self._buffer:
            if len(self._buffer) > MAX_LINE:
                await _answer(self._stream, False, f"line longer than {MAX_LINE} bytes")
                return None
            data = await self._stream.receive_some(MAX_LINE)
            if not data:
                return None
            self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            return line.removesuffix(b"\r").decode()
        except UnicodeDecodeError:
            await _answer(self._stream, False, "a line is not UTF-8 text")
            return None


async def _answer(stream: trio.SocketStream, ok: bool, text: str) -> None:
    await stream.send_all(f"{text}\n{OK if ok else ERROR}\n".encode())

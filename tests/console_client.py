"""A test's side of the debug console: send a line, read the answer up to its marker."""

from __future__ import annotations

import trio

from meshnet.console import ConsoleServer

HOST = "127.0.0.1"
WAIT = 10.0
"""Seconds a test waits for an answer that should come at once (a hang guard)."""


class Session:
    """One connection to a console."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def answer(self) -> tuple[bool, str]:
        """The next answer: whether it ended in <CMD OK>, and its text."""
        with trio.fail_after(WAIT):
            while True:
                for marker, ok in ((b"\n<CMD OK>\n", True), (b"\n<CMD Error>\n", False)):
                    text, found, rest = self.buffer.partition(marker)
                    if found and marker not in text:
                        self.buffer = rest
                        return ok, text.decode()
                chunk = await self.stream.receive_some()
                if not chunk:
                    raise EOFError(f"console closed; unread: {self.buffer!r}")
                self.buffer += chunk

    async def run(self, line: str) -> tuple[bool, str]:
        """Send ``line``; return its answer."""
        await self.stream.send_all(line.encode() + b"\n")
        return await self.answer()

    async def ok(self, line: str) -> str:
        """Run ``line``, which must succeed; return its output."""
        ok, text = await self.run(line)
        assert ok, f"{line!r} failed: {text}"
        return text

    async def error(self, line: str) -> str:
        """Run ``line``, which must fail; return its output."""
        ok, text = await self.run(line)
        assert not ok, f"{line!r} succeeded: {text}"
        return text

    async def closed(self) -> bool:
        """True once the console has closed the connection."""
        with trio.fail_after(WAIT):
            return await self.stream.receive_some() == b""


async def start_console(node, password: str | None = None) -> int:
    """A console on a free loopback port; its port."""
    console = await node.newservice(ConsoleServer, HOST, 0, password)
    return await node.call(console, "port")


async def connect(port: int) -> tuple[Session, str]:
    """A session and the console's greeting."""
    session = Session(await trio.open_tcp_stream(HOST, port))
    ok, greeting = await session.answer()
    assert ok
    return session, greeting

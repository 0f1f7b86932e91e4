"""Line I/O over a trio stream for the login protocol, used by the server and the client."""

from __future__ import annotations

from collections import deque

import trio

from meshnet.login.wire import MAX_LINE, LineSplitter, LineTooLong, LoginProtocolError, encode_line

RECEIVE_SIZE = 8192


class PeerClosed(LoginProtocolError):
    """The other end closed the connection where the protocol expected another line."""


class LineStream:
    """Reads ``\\n``-terminated lines (at most ``max_line`` bytes each) and writes lines.

    Lines the peer sends ahead of time are kept until asked for. Once a line is too long, the
    lines received before it are still returned, then every read raises ``LineTooLong``.
    """

    def __init__(self, stream: trio.abc.Stream, max_line: int = MAX_LINE) -> None:
        self._stream = stream
        self._splitter = LineSplitter(max_line)
        self._lines: deque[bytes] = deque()
        self._failure: LineTooLong | None = None

    async def receive_line(self) -> bytes:
        """The next line, without its ``\\n``; raises ``PeerClosed`` at end of stream."""
        while not self._lines:
            if self._failure is not None:
                raise self._failure
            data = await self._stream.receive_some(RECEIVE_SIZE)
            if not data:
                raise PeerClosed("the peer closed the connection before sending a whole line")
            try:
                self._lines.extend(self._splitter.feed(data))
            except LineTooLong as exc:
                self._lines.extend(exc.lines)
                self._failure = exc
        return self._lines.popleft()

    async def send_lines(self, *lines: bytes) -> None:
        """Send each line followed by ``\\n``, in one write."""
        await self._stream.send_all(b"".join(map(encode_line, lines)))

"""Client side of skynet's msgserver (DESIGN §5): handshake, requests, reconnect by index.

After :func:`meshnet.login.client.login`, ``connect_gate(host, port, result, index)`` opens a
connection to the game server's msgserver, sends the handshake for ``index`` and checks the
``200 OK`` reply. Requests carry a session the response echoes. A client that lost its
connection calls ``reconnect()``: the same login with the next index; resending a session
sent before then gets the msgserver's cached answer instead of running the request again.
"""

from __future__ import annotations

from collections import deque

import trio

from meshnet.framing import Splitter, pack
from meshnet.login.client import LoginResult
from meshnet.login.wire import (
    LoginProtocolError,
    Response,
    build_handshake,
    pack_request,
    parse_status,
    unpack_response,
)

RECEIVE_SIZE = 65536


class HandshakeRefused(LoginProtocolError):
    """The msgserver answered the handshake with a status other than 200 (then closed)."""

    def __init__(self, code: int, line: bytes) -> None:
        super().__init__(f"handshake refused: {line.decode(errors='replace')}")
        self.code = code
        self.line = line


class GateClosed(LoginProtocolError):
    """The msgserver closed the connection where the protocol expected another packet."""


async def connect_gate(host: str, port: int, result: LoginResult, index: int) -> GateConnection:
    """Connect to the msgserver at ``host:port`` as ``result``'s login, with handshake
    ``index`` (1 for the first connection, higher for each later one).

    Raises ``HandshakeRefused`` for a non-200 reply; the connection is then closed.
    """
    return await handshake_gate(await trio.open_tcp_stream(host, port), host, port, result, index)


async def handshake_gate(
    stream: trio.SocketStream, host: str, port: int, result: LoginResult, index: int
) -> GateConnection:
    """``connect_gate`` on a connection already open to the msgserver at ``host:port``
    (say, one that landed on a given worker of several sharing the port)."""
    connection = GateConnection(stream, host, port, result, index)
    try:
        await connection._handshake()
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return connection


class GateConnection:
    """One handshaken connection to a msgserver. Use it as an async context manager or
    ``aclose()`` it."""

    def __init__(
        self, stream: trio.SocketStream, host: str, port: int, result: LoginResult, index: int
    ) -> None:
        self.host = host
        self.port = port
        self.result = result
        self.index = index
        self.status = b""
        """The handshake reply (``200 OK``)."""
        self._stream = stream
        self._packets = PacketReader(stream)

    async def __aenter__(self) -> GateConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def send_request(self, content: bytes, session: int) -> None:
        """Send ``content`` as request ``session`` (0..2**32-1); its response echoes it."""
        await self._stream.send_all(pack(pack_request(content, session)))

    async def receive_response(self) -> Response:
        """The next response, in the order the server sends them (not always request order:
        the msgserver runs requests concurrently)."""
        return unpack_response(await self._receive())

    async def request(self, content: bytes, session: int) -> Response:
        """Send one request and wait for its response (nothing else may be outstanding)."""
        await self.send_request(content, session)
        response = await self.receive_response()
        if response.session != session:
            raise LoginProtocolError(
                f"expected the response to session {session}, got session {response.session}"
            )
        return response

    async def reconnect(self) -> GateConnection:
        """Close this connection and return a new one with the next handshake index."""
        await self.aclose()
        return await connect_gate(self.host, self.port, self.result, self.index + 1)

    async def aclose(self) -> None:
        """Close the connection."""
        await self._stream.aclose()

    async def _handshake(self) -> None:
        result = self.result
        packet = build_handshake(result.uid, result.server, result.subid, self.index, result.secret)
        await self._stream.send_all(pack(packet))
        self.status = await self._receive()
        code, _ = parse_status(self.status)
        if code != 200:
            raise HandshakeRefused(code, self.status)

    async def _receive(self) -> bytes:
        packet = await self._packets.receive()
        if packet is None:
            raise GateClosed("the msgserver closed (or reset) the connection")
        return packet


class PacketReader:
    """The 2-byte-framed packets arriving on a stream (from any gate), one at a time."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._splitter = Splitter()
        self._packets: deque[bytes] = deque()

    async def receive(self) -> bytes | None:
        """The next packet; None once the peer closed or reset the connection."""
        while not self._packets:
            try:
                data = await self._stream.receive_some(RECEIVE_SIZE)
            except trio.BrokenResourceError:
                return None
            if not data:
                return None
            # Splitter's default limit is the 2-byte maximum, so no length is too large.
            self._packets.extend(self._splitter.feed(data))
        return self._packets.popleft()

"""The server side of a WebSocket over any trio stream, on wsproto (no task of its own).

Wire format (RFC 6455): the client opens with an HTTP/1.1 ``GET`` carrying ``Upgrade:
websocket``, ``Sec-WebSocket-Key`` and ``Sec-WebSocket-Version: 13``; the server answers
``101 Switching Protocols`` (or an HTTP error status, and closes). Then both sides send
frames: a 2-14 byte header (FIN bit, opcode, mask bit, 7/16/64-bit payload length, a 4-byte
mask on every client frame) and the payload. A message is one frame, or a first frame and
continuation frames up to one with FIN set; ping, pong and close are control frames of at
most 125 bytes, allowed between the fragments of a message. For the gate, one binary
message is one packet.

What a client can make the server hold is bounded: the opening request by h11 (16 KiB),
an incoming message by ``max_message`` bytes *and* ``MAX_FRAGMENTS`` frames (a message of
ten thousand empty fragments costs the server nothing but would never end), assembled
into one ``bytearray`` as it comes, and at most one read (``RECEIVE_SIZE``) waiting in
wsproto, parsed ``MESSAGES_PER_RECEIVE`` messages at a time. A client that closes or is
refused before the upgrade ends at once.
"""

from __future__ import annotations

import os

import trio
from trio.lowlevel import checkpoint
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection, ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import RemoteProtocolError

from meshnet.errors import MeshnetError

RECEIVE_SIZE = 65536
"""Bytes asked of the stream per read."""
MAX_FRAGMENTS = 64
"""Frames one message may come in (browsers send one)."""
MESSAGES_PER_RECEIVE = 16
"""Messages one ``receive`` parses at most: a read of thousands of tiny frames is parsed a
few at a time, the rest left in wsproto's buffer for the next calls, so parsing one
client's read never holds the event loop for long."""
NORMAL_CLOSES = frozenset({1000, 1001, 1005})
"""Normal closure, going away, and a close frame without a status code."""
MAX_CLOSE_REASON = 123
"""Bytes of UTF-8 a close frame's reason may hold."""
TEXT_REFUSED = "text message received; the gate takes binary messages only"


class WebSocketError(MeshnetError):
    """The client broke the WebSocket protocol or the gate's limits, or the connection
    failed; the message says how, fit for a log line."""


class WebSocketRefused(WebSocketError):
    """The client's opening handshake was not a WebSocket upgrade (it was answered 400)."""


class ServerWebSocket:
    """One client's WebSocket: ``handshake``, then ``accept`` or ``reject``; then
    ``receive`` from one task while others ``send``."""

    def __init__(self, stream: trio.abc.Stream, max_message: int) -> None:
        self.stream = stream
        self._ws: WSConnection | Connection = WSConnection(ConnectionType.SERVER)
        self._max_message = max_message
        self._send_lock = trio.StrictFIFOLock()
        self._fileno = stream.socket.fileno() if isinstance(stream, trio.SocketStream) else -1
        """The plain socket's file descriptor, for ``send_now`` (-1 over TLS)."""
        self._unsent = b""
        self._message = bytearray()
        self._fragments = 0
        self._peer_close: CloseConnection | None = None
        self._close_code: int | None = None
        """The close code for our close frame when the client broke a rule."""

    # --- the opening handshake ------------------------------------------------------

    async def handshake(self, first: bytes = b"") -> Request:
        """Read the client's upgrade request (after ``first``, bytes already read).

        ``WebSocketRefused`` (after answering 400) if it is not one; ``WebSocketError``
        if the client closes first."""
        data = first
        while True:
            if data:
                try:
                    self._ws.receive_data(data)
                    for event in self._ws.events():
                        if isinstance(event, Request):
                            return event
                except RemoteProtocolError as exc:
                    if exc.event_hint is not None:
                        await self._send_events(exc.event_hint)
                    raise WebSocketRefused(f"not a websocket upgrade: {exc}") from None
            data = await self._read()
            if not data:
                raise WebSocketError("client closed before the websocket upgrade")

    async def accept(self) -> None:
        """Answer ``101 Switching Protocols``: messages flow from now on."""
        await self._send_events(AcceptConnection())
        # wsproto's WSConnection keeps the handshake (an h11 connection) for good; the
        # open connection needs only its frame protocol, with what came after the request.
        assert self._ws.connection is not None
        self._ws = self._ws.connection

    async def reject(self, status: int, text: str) -> None:
        """Answer the upgrade with an HTTP error status and ``text`` as the body."""
        body = text.encode()
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
        await self._send_events(
            RejectConnection(status_code=status, headers=headers, has_body=True),
            RejectData(data=body),
        )

    # --- messages -------------------------------------------------------------------

    async def receive(self) -> list[bytes] | None:
        """The next binary messages (at least one), or None once the client closed
        normally. A client that breaks a rule gets ``WebSocketError``; ``close`` then
        sends the matching close frame. Always a checkpoint, also when the messages were
        already read."""
        read = False
        while True:
            if self._peer_close is not None:
                return self._peer_closed(self._peer_close)
            messages = await self._take_events()
            if messages:
                if not read:
                    await checkpoint()  # messages left from an earlier read: others first
                return messages
            if self._peer_close is not None:
                continue
            data = await self._read()
            read = True
            self._ws.receive_data(data or None)

    async def send(self, messages: list[bytes]) -> None:
        """Send binary messages, in order; dropped once the WebSocket is closing."""
        async with self._send_lock:
            if self._ws.state is ConnectionState.OPEN:
                await self._send_all(b"".join(self._ws.send(Message(data=m)) for m in messages))

    def send_now(self, message: bytes) -> bool:
        """Send one binary message without waiting, straight to a plain socket's file
        descriptor, if nothing else is being sent; False if it cannot (nothing sent).

        What the socket does not take at once (part of this one message) goes out first
        with the next ``send`` or ``close``."""
        fileno = self._fileno
        if fileno < 0 or self._unsent or self._send_lock.locked():
            return False
        if self._ws.state is not ConnectionState.OPEN:
            return True  # dropped, as send drops it
        data = self._ws.send(Message(data=message))
        try:
            sent = os.write(fileno, data)
        except BlockingIOError:
            sent = 0
        except OSError:  # the socket failed: the next send or read reports it
            return True
        if sent < len(data):
            self._unsent = data[sent:]
        return True

    def forget_socket(self) -> None:
        """The stream is about to be closed, its file descriptor number free for reuse:
        ``send_now`` sends nothing from now on."""
        self._fileno = -1

    async def close(self, reason: str | None) -> None:
        """Send our close frame (or answer the client's): code 1000 without ``reason``,
        else the code of the rule the client broke, or 1008 (policy violation)."""
        if self._ws.state is ConnectionState.REMOTE_CLOSING:
            assert self._peer_close is not None
            await self._send_events(self._peer_close.response())
        elif self._ws.state is ConnectionState.OPEN:
            if reason is None:
                code = CloseReason.NORMAL_CLOSURE
            else:
                code = self._close_code or CloseReason.POLICY_VIOLATION
            await self._send_events(CloseConnection(code=code, reason=_close_reason(reason)))

    # --- helpers --------------------------------------------------------------------

    async def _take_events(self) -> list[bytes]:
        messages: list[bytes] = []
        for event in self._ws.events():
            if isinstance(event, BytesMessage):
                message = self._assemble(event)
                if message is not None:
                    messages.append(message)
                    if len(messages) == MESSAGES_PER_RECEIVE:
                        break
            elif isinstance(event, TextMessage):
                self._fail(CloseReason.UNSUPPORTED_DATA, TEXT_REFUSED)
            elif isinstance(event, Ping):
                await self._send_events(event.response())
            elif isinstance(event, CloseConnection):
                if self._ws.state is ConnectionState.OPEN:  # wsproto's parse error
                    self._fail(event.code, f"websocket protocol error: {event.reason}")
                self._peer_close = event
                break
        return messages

    def _assemble(self, event: BytesMessage) -> bytes | None:
        self._message += event.data
        if len(self._message) > self._max_message:
            self._fail(
                CloseReason.MESSAGE_TOO_BIG,
                f"websocket message of more than {self._max_message} bytes",
            )
        if event.frame_finished and not event.message_finished:
            self._fragments += 1
            if self._fragments >= MAX_FRAGMENTS:
                self._fail(
                    CloseReason.MESSAGE_TOO_BIG,
                    f"websocket message in more than {MAX_FRAGMENTS} fragments",
                )
        if not event.message_finished:
            return None
        message = bytes(self._message)
        self._message.clear()
        self._fragments = 0
        return message

    def _fail(self, code: int, text: str) -> None:
        self._close_code = code
        raise WebSocketError(text)

    def _peer_closed(self, event: CloseConnection) -> None:
        """None for a normal close; WebSocketError for any other."""
        if event.code in NORMAL_CLOSES:
            return None
        try:
            name = CloseReason(event.code).name
        except ValueError:
            name = "unknown code"
        detail = f": {event.reason}" if event.reason else ""
        raise WebSocketError(f"websocket closed with {event.code} {name}{detail}")

    async def _read(self) -> bytes:
        try:
            return await self.stream.receive_some(RECEIVE_SIZE)
        except trio.BrokenResourceError as exc:
            raise WebSocketError(f"connection lost: {exc.__cause__ or exc}") from None

    async def _send_events(self, *events: Event) -> None:
        async with self._send_lock:
            await self._send_all(b"".join(self._ws.send(event) for event in events))

    async def _send_all(self, data: bytes) -> None:
        if self._unsent:
            data, self._unsent = self._unsent + data, b""
        try:
            await self.stream.send_all(data)
        except trio.BrokenResourceError as exc:
            raise WebSocketError(f"connection lost: {exc.__cause__ or exc}") from None


def _close_reason(text: str | None) -> str | None:
    """A close reason holds at most 123 bytes of UTF-8."""
    if text is None:
        return None
    data = text.encode()
    if len(data) <= MAX_CLOSE_REASON:
        return text
    return data[: MAX_CLOSE_REASON - 3].decode(errors="ignore") + "..."

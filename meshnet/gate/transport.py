"""The two ways a client reaches a gate, behind one interface: TCP with 2-byte length
framing, and WebSocket with one binary message per packet.

A transport turns the connection into packets going in and wire chunks going out; the
gate above it never sees the difference. Every failure, and every way a client can break
the wire protocol, surfaces as ``TransportError`` with a message fit for a log line.
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from typing import ClassVar

import trio

from meshnet.errors import MeshnetError
from meshnet.gate.framing import MAX_PAYLOAD, FrameTooLarge, PacketTooLarge, Splitter, pack
from meshnet.gate.websocket import ServerWebSocket, WebSocketError
from meshnet.net import CLOSE_TIMEOUT, close_gracefully

HANDSHAKE_TIMEOUT = 10.0
"""Seconds a WebSocket client has to complete the opening handshake."""
RECEIVE_SIZE = 65536
"""Bytes asked of the socket per TCP read."""


class TransportError(MeshnetError):
    """The client broke the wire protocol, or the connection failed; the message says how."""


class Transport(ABC):
    """One client connection as packets in, wire chunks out."""

    kind: ClassVar[str]
    """``"tcp"`` or ``"ws"``."""

    @abstractmethod
    async def receive(self) -> list[bytes] | None:
        """The next packets the client sent (at least one), or None once it closed cleanly."""

    @abstractmethod
    def frame(self, payload: bytes) -> bytes:
        """The wire chunk carrying ``payload``; ``FrameTooLarge`` over 65535 bytes."""

    def send_now(self, chunk: bytes) -> bytes | None:
        """Send what the socket takes of ``chunk`` without waiting; return the rest, or
        None if all of it went.

        Only called when nothing else is being sent. This default sends nothing."""
        return chunk

    @abstractmethod
    async def send(self, chunks: list[bytes]) -> None:
        """Send wire chunks, in order."""

    @abstractmethod
    async def aclose(self, graceful: bool, reason: str | None) -> None:
        """Close the connection; ``graceful`` lets the peer read what was sent first.

        ``reason`` (an error, or None) goes to a WebSocket client in the close frame."""


async def open_transport(kind: str, stream: trio.SocketStream, max_packet: int) -> Transport:
    """Wrap an accepted stream; for WebSocket, run the opening handshake within
    ``HANDSHAKE_TIMEOUT`` (a client that closes or is refused before it ends at once)."""
    if kind == "tcp":
        return TcpTransport(stream, max_packet)
    ws = ServerWebSocket(stream, max_packet)
    try:
        with trio.fail_after(HANDSHAKE_TIMEOUT):
            await ws.handshake()
            await ws.accept()
    except trio.TooSlowError:
        raise TransportError(f"no websocket handshake within {HANDSHAKE_TIMEOUT:g}s") from None
    except WebSocketError as exc:
        raise TransportError(str(exc)) from None
    return WsTransport(ws)


async def refuse(kind: str, stream: trio.SocketStream) -> None:
    """Turn a connection away at once: TCP is just closed; a WebSocket client is answered
    ``503`` to its handshake (if it comes within ``CLOSE_TIMEOUT``), so it is told at once
    rather than left waiting for a handshake that never completes."""
    if kind == "ws":
        with trio.move_on_after(CLOSE_TIMEOUT):
            ws = ServerWebSocket(stream, 0)
            with contextlib.suppress(WebSocketError):
                await ws.handshake()
                await ws.reject(503, "server full")
    await trio.aclose_forcefully(stream)


class TcpTransport(Transport):
    """A TCP connection: 2-byte big-endian length-prefixed packets."""

    kind = "tcp"

    def __init__(self, stream: trio.SocketStream, max_packet: int) -> None:
        self._stream = stream
        self._fileno = stream.socket.fileno()
        self._splitter = Splitter(max_packet)
        self._violation: str | None = None

    async def receive(self) -> list[bytes] | None:
        while True:
            if self._violation is not None:
                raise TransportError(self._violation)
            if self._fileno < 0:
                raise TransportError("connection closed")
            await trio.lowlevel.wait_readable(self._fileno)
            try:
                data = os.read(self._fileno, RECEIVE_SIZE)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise TransportError(f"connection lost: {exc}") from None
            if not data:
                if self._splitter.pending:
                    raise TransportError(
                        f"client closed the connection inside a packet "
                        f"({self._splitter.pending} bytes of it had arrived)"
                    )
                return None
            try:
                packets = self._splitter.feed(data)
            except PacketTooLarge as exc:
                # Deliver what came before the bad prefix; the next receive reports it.
                self._violation = str(exc)
                packets = exc.packets
            if packets:
                return packets

    def frame(self, payload: bytes) -> bytes:
        return pack(payload)

    def send_now(self, chunk: bytes) -> bytes | None:
        if self._fileno < 0:
            return chunk
        try:
            sent = os.write(self._fileno, chunk)
        except OSError:  # would block, or the socket failed: the next send reports that
            return chunk
        return None if sent == len(chunk) else chunk[sent:]

    async def send(self, chunks: list[bytes]) -> None:
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        try:
            await self._stream.send_all(data)
        except trio.BrokenResourceError as exc:
            raise TransportError(f"connection lost: {exc.__cause__ or exc}") from None

    async def aclose(self, graceful: bool, reason: str | None) -> None:
        # From here on the number may be given to another socket: never touch it again.
        self._fileno = -1
        if graceful:
            await close_gracefully(self._stream, CLOSE_TIMEOUT)
        else:
            await trio.aclose_forcefully(self._stream)


class WsTransport(Transport):
    """A WebSocket connection: one binary message per packet."""

    kind = "ws"

    def __init__(self, ws: ServerWebSocket) -> None:
        self._ws = ws

    async def receive(self) -> list[bytes] | None:
        try:
            return await self._ws.receive()
        except WebSocketError as exc:
            raise TransportError(str(exc)) from None

    def frame(self, payload: bytes) -> bytes:
        if len(payload) > MAX_PAYLOAD:
            raise FrameTooLarge(len(payload))
        return payload

    async def send(self, chunks: list[bytes]) -> None:
        try:
            await self._ws.send(chunks)
        except WebSocketError as exc:
            raise TransportError(str(exc)) from None

    async def aclose(self, graceful: bool, reason: str | None) -> None:
        if graceful:
            with trio.move_on_after(CLOSE_TIMEOUT):
                with contextlib.suppress(WebSocketError):
                    await self._ws.close(reason)
                await close_gracefully(self._ws.stream, CLOSE_TIMEOUT)
        await trio.aclose_forcefully(self._ws.stream)

"""The two ways a client reaches a gate, behind one interface: TCP with 2-byte length
framing, and WebSocket with one binary message per packet.

A transport turns the connection into packets going in and wire chunks going out; the
gate above it never sees the difference. Every failure, and every way a client can break
the wire protocol, surfaces as ``TransportError`` with a message fit for a log line.
"""

from __future__ import annotations

import contextlib
import os
import ssl
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import trio

from meshnet.admission import Network, client_ip, is_in
from meshnet.errors import MeshnetError
from meshnet.framing import MAX_PAYLOAD, FrameTooLarge, PacketTooLarge, Splitter, pack
from meshnet.gate.proxy import ProxyHeaderError, forwarded_client, looks_like_header, read_header
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

    def send_now_all(self, chunks: list[bytes]) -> list[bytes]:
        """Send what the socket takes of ``chunks`` without waiting; return what is left
        (empty if all of it went). This default sends nothing."""
        return chunks

    @abstractmethod
    async def send(self, chunks: list[bytes]) -> None:
        """Send wire chunks, in order."""

    @abstractmethod
    async def aclose(self, graceful: bool, reason: str | None) -> None:
        """Close the connection; ``graceful`` lets the peer read what was sent first.

        ``reason`` (an error, or None) goes to a WebSocket client in the close frame."""


@dataclass(frozen=True)
class TransportSettings:
    """What every connection of one gate listener is opened with."""

    max_packet: int
    proxies: tuple[Network, ...] = ()
    """Networks of the trusted proxies (PROXY header on TCP, X-Forwarded-For on WS)."""
    tls: ssl.SSLContext | None = None


class Opening:
    """An accepted connection whose client is known (``host``, ``peer``), not let in yet:
    ``accept`` it or ``refuse`` it."""

    def __init__(
        self,
        kind: str,
        stream: trio.abc.Stream,
        client: tuple[str, int],
        settings: TransportSettings,
        ws: ServerWebSocket | None,
        check_proxy_header: bool,
    ) -> None:
        self.kind = kind
        self.host, port = client
        self.peer = f"{self.host}:{port}"
        """``host:port`` of the client (port 0 when a proxy's X-Forwarded-For gave it)."""
        self._stream = stream
        self._settings = settings
        self._ws = ws
        self._check_proxy_header = check_proxy_header

    async def accept(self) -> Transport:
        """Let the client in (a WebSocket client gets its ``101``)."""
        if self._ws is None:
            return TcpTransport(self._stream, self._settings.max_packet, self._check_proxy_header)
        try:
            with trio.fail_after(CLOSE_TIMEOUT):
                await self._ws.accept()
        except (WebSocketError, trio.TooSlowError) as exc:
            raise TransportError(f"websocket upgrade not sent: {exc!r}") from None
        return WsTransport(self._ws)

    async def refuse(self, status: int, text: str) -> None:
        """Turn the client away: TCP is closed; a WebSocket client gets HTTP ``status``."""
        if self._ws is not None:
            with trio.move_on_after(CLOSE_TIMEOUT), contextlib.suppress(WebSocketError):
                await self._ws.reject(status, text)
        await trio.aclose_forcefully(self._stream)


async def open_transport(
    kind: str, stream: trio.SocketStream, settings: TransportSettings
) -> Opening:
    """Take an accepted socket as far as knowing who the client is, within
    ``HANDSHAKE_TIMEOUT``: its PROXY header (from a trusted proxy, TCP), the TLS
    handshake, the WebSocket upgrade request and its X-Forwarded-For (from a trusted
    proxy). A client that fails any step, closes or is refused (400) ends at once."""
    try:
        with trio.fail_after(HANDSHAKE_TIMEOUT):
            return await _open(kind, stream, settings)
    except trio.TooSlowError:
        raise TransportError(f"no {_steps(kind, settings)} within {HANDSHAKE_TIMEOUT:g}s") from None
    except (WebSocketError, ProxyHeaderError) as exc:
        raise TransportError(str(exc)) from None
    except trio.BrokenResourceError as exc:
        raise TransportError(f"connection lost: {exc.__cause__ or exc}") from None


async def refuse(kind: str, stream: trio.SocketStream, tls: bool) -> None:
    """Turn a connection away at once: TCP (and TLS) is just closed; a WebSocket client is
    answered ``503`` to its handshake (if it comes within ``CLOSE_TIMEOUT``), so it is
    told at once rather than left waiting for a handshake that never completes."""
    if kind == "ws" and not tls:
        with trio.move_on_after(CLOSE_TIMEOUT):
            ws = ServerWebSocket(stream, 0)
            with contextlib.suppress(WebSocketError, trio.BrokenResourceError):
                await ws.handshake()
                await ws.reject(503, "server full")
    await trio.aclose_forcefully(stream)


class TcpTransport(Transport):
    """A TCP connection: 2-byte big-endian length-prefixed packets."""

    kind = "tcp"

    def __init__(
        self, stream: trio.abc.Stream, max_packet: int, check_proxy_header: bool = False
    ) -> None:
        """``stream``: a plain socket (read and written through its file descriptor), or
        TLS over one. ``check_proxy_header``: refuse a connection that starts with one."""
        self._stream = stream
        plain = isinstance(stream, trio.SocketStream)
        self._fileno = stream.socket.fileno() if plain else -1
        self._read = self._read_socket if plain else self._read_stream
        self._splitter = Splitter(max_packet)
        self._violation: str | None = None
        self._check_proxy_header = check_proxy_header

    @property
    def fileno(self) -> int:
        """The socket's file descriptor: -1 over TLS, or once closed."""
        return self._fileno

    async def receive(self) -> list[bytes] | None:
        while True:
            self.check()
            data = await self._read()
            if data is None:
                continue
            packets = self.take(data)
            if packets != []:
                return packets

    def check(self) -> None:
        """Raise the ``TransportError`` a bad length prefix left for the next read."""
        if self._violation is not None:
            raise TransportError(self._violation)

    def take(self, data: bytes) -> list[bytes] | None:
        """The packets ``data``, just read from the socket, completes (maybe none); None
        if it is the end of the stream (b""), after a whole packet."""
        if self._check_proxy_header:
            self._check_proxy_header = False
            if looks_like_header(data):
                raise TransportError(UNTRUSTED_PROXY_HEADER)
        if not data:
            if self._splitter.pending:
                raise TransportError(
                    f"client closed the connection inside a packet "
                    f"({self._splitter.pending} bytes of it had arrived)"
                )
            return None
        try:
            return self._splitter.feed(data)
        except PacketTooLarge as exc:
            # Deliver what came before the bad prefix; the next read reports it.
            self._violation = str(exc)
            return exc.packets

    async def _read_socket(self) -> bytes | None:
        """What the socket holds (b"" at its end), or None if it held nothing after all."""
        if self._fileno < 0:
            raise TransportError("connection closed")
        await trio.lowlevel.wait_readable(self._fileno)
        try:
            return os.read(self._fileno, RECEIVE_SIZE)
        except BlockingIOError:
            return None
        except OSError as exc:
            raise TransportError(f"connection lost: {exc}") from None

    async def _read_stream(self) -> bytes:
        try:
            return await self._stream.receive_some(RECEIVE_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise TransportError(f"connection lost: {exc.__cause__ or exc}") from None

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

    def send_now_all(self, chunks: list[bytes]) -> list[bytes]:
        rest = self.send_now(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        return [] if rest is None else [rest]

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

    def send_now(self, chunk: bytes) -> bytes | None:
        return None if self._ws.send_now(chunk) else chunk

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
        self._ws.forget_socket()
        if graceful:
            with trio.move_on_after(CLOSE_TIMEOUT):
                with contextlib.suppress(WebSocketError):
                    await self._ws.close(reason)
                await close_gracefully(self._ws.stream, CLOSE_TIMEOUT)
        await trio.aclose_forcefully(self._ws.stream)


UNTRUSTED_PROXY_HEADER = (
    "PROXY header from a client that is not a trusted proxy (see trusted_proxies)"
)


async def _open(kind: str, stream: trio.SocketStream, settings: TransportSettings) -> Opening:
    host, port = stream.socket.getpeername()[:2]
    client_address = client_ip(host)
    client = (str(client_address) if client_address else host, port)
    trusted = is_in(client[0], settings.proxies)
    if trusted and kind == "tcp":
        client = await read_header(stream) or client
    wrapped: trio.abc.Stream = stream
    if settings.tls is not None:
        wrapped = trio.SSLStream(stream, settings.tls, server_side=True)
        try:
            await wrapped.do_handshake()
        except trio.BrokenResourceError as exc:
            raise TransportError(f"TLS handshake failed: {exc.__cause__ or exc}") from None
    if kind == "tcp":
        return Opening(kind, wrapped, client, settings, None, not trusted)
    ws = ServerWebSocket(wrapped, settings.max_packet)
    first = await wrapped.receive_some(RECEIVE_SIZE)
    if not trusted and looks_like_header(first):
        raise TransportError(UNTRUSTED_PROXY_HEADER)
    request = await ws.handshake(first)
    if trusted:
        forwarded = [value for name, value in request.extra_headers if name == b"x-forwarded-for"]
        host = forwarded_client(forwarded, settings.proxies)
        if host is None:
            await ws.reject(400, "no usable X-Forwarded-For header")
            raise TransportError(
                f"trusted proxy {client[0]} sent no usable X-Forwarded-For header {forwarded!r}"
            )
        client = (host, 0)
    return Opening(kind, wrapped, client, settings, ws, False)


def _steps(kind: str, settings: TransportSettings) -> str:
    steps = ["TLS handshake"] if settings.tls is not None else []
    if settings.proxies:
        steps.insert(0, "PROXY header" if kind == "tcp" else "X-Forwarded-For")
    if kind == "ws":
        steps.append("websocket handshake")
    return ", ".join(steps) or "opening"

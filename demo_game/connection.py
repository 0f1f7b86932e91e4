"""Client side of the demo protocol: requests to the hub over TCP or WebSocket, and to
the msgserver after a login through the login server (the secure path).

Both give ``request(name, body) -> Answer``: the reply to the request and the pushes that
came before it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio
import trio_websocket

from demo_game.proto import proto, unpack_packets
from meshnet.errors import MeshnetError
from meshnet.framing import pack
from meshnet.gate.proto import Reply
from meshnet.login.gateclient import GateConnection, PacketReader
from meshnet.login.wire import LoginProtocolError


class ConnectionLost(MeshnetError):
    """The server closed the connection before answering."""


@dataclass(frozen=True)
class Answer:
    """The reply to one request, and the pushes that came before it."""

    reply: Reply
    pushes: list[Reply]
    """What the server sent before the reply: its pushes (and any answer to a packet sent
    around ``request``, such as ``HubClient.send_raw``'s)."""

    @property
    def ok(self) -> bool:
        """The request succeeded: no error reply, and no ``ok: false`` in the reply."""
        return self.reply.ok and self.reply.body.get("ok", True) is not False


class HubClient:
    """One connection to the hub. Open it with ``open_hub``."""

    def __init__(self, link: _TcpLink | _WsLink) -> None:
        self._link = link
        self._session = 0

    @classmethod
    def on_stream(cls, stream: trio.SocketStream) -> HubClient:
        """A client on a TCP connection already open to the hub."""
        return cls(_TcpLink(stream))

    async def request(self, name: str, body: dict[str, Any] | None = None) -> Answer:
        """Send one request and wait for its reply (nothing else may be outstanding)."""
        self._session += 1
        await self._link.send(proto.encode_request(name, body, session=self._session))
        pushes = []
        while True:
            packet = await self._link.receive()
            if packet is None:
                raise ConnectionLost(f"the hub closed the connection before answering {name}")
            reply = proto.decode_reply(packet)
            if reply.session == self._session:
                return Answer(reply, pushes)
            pushes.append(reply)

    async def send_raw(self, packet: bytes) -> None:
        """Send a packet as it is (tests use it to break the protocol)."""
        await self._link.send(packet)


@asynccontextmanager
async def open_hub(host: str, port: int, *, ws: bool = False) -> AsyncIterator[HubClient]:
    """A connection to the hub's TCP port, or with ``ws`` its WebSocket port."""
    if ws:
        async with trio_websocket.open_websocket(host, port, "/", use_ssl=False) as socket:
            yield HubClient(_WsLink(socket))
    else:
        stream = await trio.open_tcp_stream(host, port)
        async with stream:
            yield HubClient.on_stream(stream)


class SecureClient:
    """Requests to the user's agent through the msgserver, CBOR packets of the demo
    protocol inside msgserver requests. Wraps a handshaken ``GateConnection``."""

    def __init__(self, gate: GateConnection) -> None:
        self.gate = gate
        self._session = 0

    async def request(self, name: str, body: dict[str, Any] | None = None) -> Answer:
        """Send one request and wait for its answer."""
        self._session += 1
        response = await self.gate.request(self._packet(name, body), self._session)
        return self._answer(name, response.ok, response.content)

    async def resend_after_reconnect(self, name: str, body: dict[str, Any] | None = None) -> Answer:
        """Send a request, drop the connection before its answer, reconnect with the next
        handshake index and send the same session again: the msgserver answers it from
        its cache, so the request runs once."""
        self._session += 1
        packet = self._packet(name, body)
        await self.gate.send_request(packet, self._session)
        self.gate = await self.gate.reconnect()
        response = await self.gate.request(packet, self._session)
        return self._answer(name, response.ok, response.content)

    async def aclose(self) -> None:
        """Close the msgserver connection."""
        await self.gate.aclose()

    def _packet(self, name: str, body: dict[str, Any] | None) -> bytes:
        return proto.encode_request(name, body, session=self._session)

    def _answer(self, name: str, ok: bool, content: bytes) -> Answer:
        if not ok:
            raise LoginProtocolError(f"the msgserver failed to answer {name}")
        replies = [proto.decode_reply(packet) for packet in unpack_packets(content)]
        if not replies or replies[-1].session != self._session:
            raise LoginProtocolError(f"the msgserver's answer to {name} holds no reply")
        return Answer(replies[-1], replies[:-1])


class _TcpLink:
    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._packets = PacketReader(stream)

    async def send(self, packet: bytes) -> None:
        try:
            await self._stream.send_all(pack(packet))
        except trio.BrokenResourceError as exc:
            raise ConnectionLost(f"the hub closed the connection: {exc}") from None

    async def receive(self) -> bytes | None:
        return await self._packets.receive()


class _WsLink:
    def __init__(self, socket: trio_websocket.WebSocketConnection) -> None:
        self._socket = socket

    async def send(self, packet: bytes) -> None:
        try:
            await self._socket.send_message(packet)
        except trio_websocket.ConnectionClosed as exc:
            raise ConnectionLost(f"the hub closed the websocket: {exc.reason}") from None

    async def receive(self) -> bytes | None:
        try:
            return await self._socket.get_message()
        except trio_websocket.ConnectionClosed:
            return None

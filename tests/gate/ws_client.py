"""A WebSocket client at the frame level (wsproto), to send what a browser would not:
fragments, garbage, a close before the upgrade."""

from __future__ import annotations

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    RejectConnection,
    Request,
)

HOST = "127.0.0.1"


def client_connection() -> tuple[WSConnection, bytes]:
    """The bytes of a client's upgrade request, and the client's WSConnection as it is
    once a server accepted it (so it makes frames at once)."""
    ws = WSConnection(ConnectionType.CLIENT)
    request = ws.send(Request(host=HOST, target="/"))
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(request)
    [event] = server.events()
    ws.receive_data(server.send(AcceptConnection()))
    assert isinstance(next(ws.events()), AcceptConnection)
    return ws, request


def fragments(ws: WSConnection, parts: list[bytes]) -> bytes:
    """One binary message sent as one frame per part."""
    return b"".join(
        ws.send(Message(data=part, message_finished=n == len(parts) - 1))
        for n, part in enumerate(parts)
    )


class RawWs:
    """A client over a real socket: upgrade, send any frames, read events."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)

    @staticmethod
    def upgrade_request() -> bytes:
        return WSConnection(ConnectionType.CLIENT).send(Request(host=HOST, target="/"))

    @classmethod
    async def connect(cls, port: int) -> RawWs:
        client = cls(await trio.open_tcp_stream(HOST, port))
        await client.stream.send_all(client.ws.send(Request(host=HOST, target="/")))
        [event] = await client.events()
        assert isinstance(event, AcceptConnection), event
        return client

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def events(self) -> list[Event]:
        """The events of the next read; [CloseConnection(1006)] once the server closed."""
        with trio.fail_after(5):
            while True:
                events = list(self.ws.events())
                if events:
                    return events
                try:
                    data = await self.stream.receive_some()
                except trio.BrokenResourceError:
                    data = b""
                self.ws.receive_data(data or None)

    async def close_reason(self) -> CloseConnection:
        """Read until the server's close frame (or the end of the connection)."""
        while True:
            for event in await self.events():
                if isinstance(event, CloseConnection):
                    return event
                assert isinstance(event, BytesMessage | RejectConnection), event

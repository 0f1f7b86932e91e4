"""Shared by the gate tests: clients for both transports, and a gate that records its hooks."""

from __future__ import annotations

import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
import trio_websocket

from meshnet import Service, command
from meshnet.framing import Splitter, pack
from meshnet.gate import GateServer, connections

HOST = "127.0.0.1"
TIMEOUT = 5.0
PORT_KEYS = {"tcp": "port", "ws": "ws_port"}


def listen_conf(kind: str, **extra: object) -> dict:
    return {"address": HOST, PORT_KEYS[kind]: 0, **extra}


async def start_gate(node, kind: str, cls: type[GateServer], **extra: object) -> tuple[int, int]:
    """Start a gate listening on ``kind`` only; return its address and port."""
    gate = await node.newservice(cls, listen_conf(kind, **extra))
    ports = await node.call(gate, "ports")
    return gate, ports[PORT_KEYS[kind]]


async def wait_for(node, gate: int, hook: str, count: int = 1) -> list[list]:
    """The first ``count`` calls of ``hook`` on a Recorder gate, once they happened."""
    return await node.call(gate, "wait_for", hook, count, timeout=TIMEOUT)


class Client:
    """One client connection, TCP or WebSocket, speaking in packets."""

    def __init__(self, kind: str, stream: trio.SocketStream | None, ws=None) -> None:
        self.kind = kind
        self._stream = stream
        self._ws = ws
        self._splitter = Splitter()
        self._packets: list[bytes] = []

    async def send(self, packet: bytes) -> None:
        if self._ws is not None:
            await self._ws.send_message(packet)
        else:
            await self._stream.send_all(pack(packet))

    async def send_raw(self, data: bytes) -> None:
        """TCP only: bytes as they are, framing or not."""
        await self._stream.send_all(data)

    async def receive(self) -> bytes | None:
        """The next packet, or None once the server closed the connection."""
        with trio.fail_after(TIMEOUT):
            if self._ws is not None:
                try:
                    return await self._ws.get_message()
                except trio_websocket.ConnectionClosed:
                    return None
            while not self._packets:
                try:
                    data = await self._stream.receive_some(65536)
                except trio.BrokenResourceError:
                    return None
                if not data:
                    return None
                self._packets += self._splitter.feed(data)
            return self._packets.pop(0)

    async def request(self, packet: bytes) -> bytes | None:
        await self.send(packet)
        return await self.receive()

    async def closed_by_server(self) -> bool:
        """Read until the server closes; True if it did (packets on the way are skipped)."""
        while await self.receive() is not None:
            pass
        return True


@asynccontextmanager
async def connect(kind: str, port: int, *, rcvbuf: int | None = None) -> AsyncIterator[Client]:
    """A client of the gate on ``port``; ``rcvbuf`` shrinks its receive buffer (TCP)."""
    if kind == "ws":
        async with trio_websocket.open_websocket(
            HOST,
            port,
            "/",
            use_ssl=False,
            message_queue_size=0,
            connect_timeout=TIMEOUT,
            disconnect_timeout=TIMEOUT,
        ) as ws:
            yield Client(kind, None, ws)
        return
    sock = trio.socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    await sock.connect((HOST, port))
    stream = trio.SocketStream(sock)
    async with stream:
        yield Client(kind, stream)


def abort(client: Client) -> None:
    """Make the client's close a reset rather than a FIN (TCP)."""
    client._stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class Recorder(GateServer):
    """Records every hook call as [hook, fd, *args]; echoes each packet back."""

    auto_open = True

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list] = []
        self._changed = trio.Event()

    async def connect(self, fd: int, addr: str) -> None:
        self._record("connect", fd, addr)
        if self.auto_open:
            self.openclient(fd)

    async def disconnect(self, fd: int) -> None:
        self._record("disconnect", fd)

    async def error(self, fd: int, message: str) -> None:
        self._record("error", fd, message)

    async def message(self, fd: int, packet: bytes) -> None:
        self._record("message", fd, packet)
        self.connections.write(fd, packet)

    async def warning(self, fd: int, kb: int) -> None:
        self._record("warning", fd, kb)

    @command
    async def wait_for(self, hook: str, count: int = 1) -> list[list]:
        """Wait until ``hook`` was called ``count`` times; return those calls."""
        while len(calls := [e for e in self.calls if e[0] == hook]) < count:
            await self._changed.wait()
        return calls

    @command
    async def events(self) -> list[list]:
        return self.calls

    @command
    async def let_in(self, fd: int) -> bool:
        return self.openclient(fd)

    def _record(self, *event: object) -> None:
        self.calls.append(list(event))
        self._changed.set()
        self._changed = trio.Event()


class Manual(Recorder):
    """A recorder that lets nothing in until ``let_in``."""

    auto_open = False


class Upper(Service):
    """An agent: writes each packet back in upper case, and tells its watchdog."""

    async def init(self, watchdog: int) -> None:
        self.watchdog = watchdog

    async def on_client(self, fd: int, packet: bytes) -> None:
        connections(self.node).write(fd, packet.upper())
        await self.send(self.watchdog, "agent_saw", self.address, fd, packet)


class Watchdog(Recorder):
    """Forwards every connection to a new ``Upper`` agent (skynet's watchdog)."""

    auto_open = False

    async def connect(self, fd: int, addr: str) -> None:
        await super().connect(fd, addr)
        await self.forward(fd, await self.newservice(Upper, self.address))

    @command
    async def agent_saw(self, agent: int, fd: int, packet: bytes) -> None:
        self._record("agent_saw", fd, agent, packet)

"""A msgserver for tests, the example login server in front of it, and a raw packet client."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest
import trio
import trio.testing
from login_servers import HOST

from meshnet import command
from meshnet.framing import pack
from meshnet.login.client import LoginResult, login
from meshnet.login.gateclient import (
    GateClosed,
    GateConnection,
    HandshakeRefused,
    PacketReader,
    connect_gate,
)
from meshnet.login.msgserver import MsgServer
from meshnet.login.wire import USER_NOT_FOUND, Response

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from login_sample import Sample  # noqa: E402


class Boom(Exception):
    pass


class Counting(MsgServer):
    """Game server ``sample``: answers each request with its content and counts how often
    each content ran. Content ``boom`` raises; ``gone`` calls a service that does not
    exist; ``hold`` waits for ``release``."""

    expired_number = 4

    async def init(self, conf: dict | None = None) -> None:
        self.executions: Counter[bytes] = Counter()
        self.subids = 0
        self.released = trio.Event()
        self.disconnects: list[bytes] = []
        self.handshakes: list[bytes] = []
        self.players: dict[bytes, bytes] = {}
        await super().init({"address": HOST, "port": 0, "servername": "sample", **(conf or {})})

    async def register_handler(self, servername: bytes) -> None:
        self.register(".msgserver_" + servername.decode())

    async def login_handler(self, uid: bytes, secret: bytes) -> int:
        self.subids += 1
        username = self.username(uid, self.subids)
        self.user_login(username, secret)
        self.players[uid] = username
        return self.subids

    async def kick_handler(self, uid: bytes, subid: int) -> None:
        await self.logout_handler(uid, subid)

    async def logout_handler(self, uid: bytes, subid: int) -> None:
        self.user_logout(self.players.pop(uid))
        await self.call(".login_master", "logout", uid, subid)

    async def connect_handler(self, username: bytes) -> None:
        self.handshakes.append(username)

    async def disconnect_handler(self, username: bytes) -> None:
        self.disconnects.append(username)

    async def request_handler(self, username: bytes, message: bytes) -> bytes:
        self.executions[message] += 1
        if message == b"boom":
            raise Boom("the handler fails")
        if message == b"gone":
            await self.call(".nobody", "hello")
        if message == b"hold":
            await self.released.wait()
        return message

    @command
    async def count(self, content: bytes) -> int:
        return self.executions[content]

    @command
    async def release(self) -> None:
        self.released.set()

    @command
    async def afk(self) -> list[bytes]:
        return self.disconnects

    @command
    async def connected(self) -> list[bytes]:
        return self.handshakes


async def start(node, conf: dict | None = None) -> tuple[int, int, int]:
    """Start the example login server and a ``Counting`` msgserver (its gate conf with
    ``conf`` on top); return (login port, gate port, msgserver address)."""
    msgserver = await node.newservice(Counting, conf)
    sample = await node.newservice(Sample, HOST, 0)
    ports = await node.call(msgserver, "ports")
    return await node.call(sample, "port"), ports["port"], msgserver


async def log_in(login_port: int, user: str = "alice") -> LoginResult:
    with trio.fail_after(5):
        return await login(HOST, login_port, "sample", user, "password")


async def connect(gate_port: int, result: LoginResult, index: int = 1) -> GateConnection:
    with trio.fail_after(5):
        return await connect_gate(HOST, gate_port, result, index)


async def log_in_again(
    login_port: int, gate_port: int, user: str
) -> tuple[LoginResult, LoginResult]:
    """Log ``user`` in twice, connected with the first login; check that the second login
    kicked the first (its connection closed, its name unknown) and works. Return both."""
    first = await log_in(login_port, user)
    connection = await connect(gate_port, first)
    second = await log_in(login_port, user)
    with trio.fail_after(5), pytest.raises(GateClosed):
        await connection.receive_response()
    with pytest.raises(HandshakeRefused) as refused:
        await connect(gate_port, first, 2)
    assert refused.value.line == USER_NOT_FOUND
    async with await connect(gate_port, second) as connection:
        assert await connection.request(b"hi", 1) == Response(b"hi", True, 1)
    return first, second


async def settled() -> None:
    """Wait until the servers (in this process) have handled everything sent so far.

    A request still unread on a connection when a new handshake supersedes it is dropped;
    a client that hangs up right after sending must let the server read it first to be
    sure it runs under the old handshake (over a real network it almost always is).
    """
    await trio.testing.wait_all_tasks_blocked()


class RawGate:
    """Sends any packets to the msgserver and reads what comes back."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.packets = PacketReader(stream)

    @classmethod
    async def connect(cls, port: int) -> RawGate:
        return cls(await trio.open_tcp_stream(HOST, port))

    async def __aenter__(self) -> RawGate:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stream.aclose()

    async def send(self, *payloads: bytes) -> None:
        await self.stream.send_all(b"".join(map(pack, payloads)))

    async def receive(self) -> bytes | None:
        """The next packet, or None once the server closed."""
        with trio.fail_after(5):
            return await self.packets.receive()

    async def rest(self) -> list[bytes]:
        """Every packet until the server closes."""
        packets = []
        while (packet := await self.receive()) is not None:
            packets.append(packet)
        return packets

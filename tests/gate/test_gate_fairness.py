"""No connection pins the event loop: a client streaming cheap requests, each answered
without waiting for anything, takes one packet per scheduler turn like everyone else, so
a signed-in player beside it is served in the middle of the flood."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import cbor2
import pytest
import trio
from gate_helpers import HOST, Recorder, connect, start_gate
from gate_router_setup import GameRouter, Player, proto, start_game
from ws_client import RawWs
from wsproto.events import BytesMessage, Message

from meshnet.framing import Splitter, pack

FLOOD = 20_000
"""Requests the flooder writes in one go: several full reads' worth on either transport."""
CHEAP = [
    proto.encode_request("secret", None, session=1),  # no rule: blocked
    proto.encode_request("echo", {"text": "hi"}, session=2),  # before any signin
    cbor2.dumps([1, 3, {"user": 7}]),  # signin, with a body of the wrong type
]
HANDLED: list[int] = []
"""The fd of every packet the counting router's message hook took, in order."""


class CountingRouter(GameRouter):
    async def message(self, fd: int, packet: bytes) -> None:
        HANDLED.append(fd)
        await super().message(fd, packet)


class Flooder:
    """A raw connection that writes ``FLOOD`` cheap requests at once and reads the
    replies back only when asked."""

    def __init__(self, kind: str, stream: trio.SocketStream, ws: RawWs | None) -> None:
        self.kind = kind
        self.stream = stream
        self.ws = ws
        self._splitter = Splitter()
        self._partial = b""

    async def flood(self) -> None:
        packets = [CHEAP[n % len(CHEAP)] for n in range(FLOOD)]
        if self.ws is None:
            await self.stream.send_all(b"".join(pack(p) for p in packets))
        else:
            await self.stream.send_all(b"".join(self.ws.ws.send(Message(data=p)) for p in packets))

    async def replies(self, count: int) -> list:
        """The next ``count`` replies, decoded."""
        replies: list = []
        while len(replies) < count:
            if self.ws is None:
                data = await self.stream.receive_some(65536)
                assert data, "the gate closed the flooder"
                replies += self._splitter.feed(data)
            else:
                for event in await self.ws.events():
                    assert isinstance(event, BytesMessage), event
                    self._partial += event.data
                    if event.message_finished:
                        replies.append(self._partial)
                        self._partial = b""
        return [proto.decode_reply(packet) for packet in replies]


@asynccontextmanager
async def flooder(kind: str, port: int) -> AsyncIterator[Flooder]:
    if kind == "ws":
        raw = await RawWs.connect(port)
        async with raw.stream:
            yield Flooder(kind, raw.stream, raw)
    else:
        async with await trio.open_tcp_stream(HOST, port) as stream:
            yield Flooder(kind, stream, None)


async def until_handled(count: int) -> None:
    while len(HANDLED) < count:
        await trio.sleep(0.001)


async def test_a_player_is_served_in_the_middle_of_a_flood_of_cheap_requests(node, kind):
    HANDLED.clear()
    router, port, *_ = await start_game(node, kind, CountingRouter)
    async with connect(kind, port) as connection, flooder(kind, port) as bad:
        player = Player(connection)
        assert (await player.ask("signin", {"user": "good"})).ok
        before = len(HANDLED)
        await bad.flood()
        await until_handled(before + 1)  # the flood is being read
        asked = len(HANDLED)
        assert (await player.ask("echo", {"text": "still here"})).body == {"text": "still here"}
        flood_handled = len(HANDLED) - asked - 1  # while the player waited for its answer
        assert len(HANDLED) < before + FLOOD  # the flood was not over yet
        # Every cheap request is still answered, in order, and the flooder stays connected.
        replies = await bad.replies(FLOOD)
    assert flood_handled < 100
    errors = [reply.error for reply in replies]
    assert errors[:2] == ["blocked", "not authenticated"] and "'user'" in errors[2]
    assert [reply.session for reply in replies] == [n % 3 + 1 for n in range(FLOOD)]


async def test_a_connection_gets_a_bounded_number_of_packets_per_scheduler_turn(node, kind):
    HANDLED.clear()
    router, port, *_ = await start_game(node, kind, CountingRouter)
    most_per_turn = 0

    async def watch_turns() -> None:
        """Runs once per scheduler turn: how many packets went in since its last turn."""
        nonlocal most_per_turn
        seen = len(HANDLED)
        while True:
            await trio.lowlevel.checkpoint()
            most_per_turn = max(most_per_turn, len(HANDLED) - seen)
            seen = len(HANDLED)

    async with flooder(kind, port) as bad, trio.open_nursery() as nursery:
        nursery.start_soon(watch_turns)
        await bad.flood()
        await bad.replies(FLOOD)
        nursery.cancel_scope.cancel()
    assert len(HANDLED) == FLOOD
    # one packet per turn of the flooder's task, which runs once between two turns of the
    # watcher's, or twice when the scheduler runs them in the other order the next turn
    assert 1 <= most_per_turn <= 2


async def test_max_packet_rate_lets_a_seconds_worth_in_then_one_at_a_time(
    node, kind, autojump_clock
):
    gate, port = await start_gate(node, kind, Recorder, max_packet_rate=10)
    async with connect(kind, port) as fast, connect(kind, port) as player:
        started = trio.current_time()
        for n in range(30):
            await fast.send(b"%d" % n)
        for n in range(10):  # a second's worth at once
            assert await fast.receive() == b"%d" % n
        assert trio.current_time() - started < 0.1
        assert await player.request(b"me too") == b"me too"  # a budget of its own
        for n in range(10, 20):  # then one every 0.1 s
            assert await fast.receive() == b"%d" % n
        assert trio.current_time() - started == pytest.approx(1.0, abs=0.05)

"""The msgserver cannot be locked or flooded: a deadline for the handshake, connections
that wait for theirs neither counted against maxclient nor able to crowd players out, and a
bound on the requests a user has running, which also covers requests whose connection
closed (they run to their end and are answered from the cache after a reconnect)."""

from __future__ import annotations

import trio
from msg_servers import RawGate, connect, log_in, settled, start

from meshnet.gate import connections
from meshnet.login.gateclient import HandshakeRefused
from meshnet.login.wire import SERVICE_UNAVAILABLE, Response


async def executed(node, msgserver: int, content: bytes, count: int) -> None:
    """Wait until requests with ``content`` have started ``count`` times."""
    with trio.fail_after(5):
        while await node.call(msgserver, "count", content) < count:
            await trio.sleep(0.001)


async def test_a_connection_without_a_handshake_is_closed_at_the_deadline(node, autojump_clock):
    login_port, gate_port, msgserver = await start(node, {"handshake_timeout": 3})
    async with await connect(gate_port, await log_in(login_port)) as player:
        async with await RawGate.connect(gate_port) as idle:
            started = trio.current_time()
            assert await idle.rest() == []  # closed without a word
            assert trio.current_time() - started >= 3
        await trio.sleep(10)  # the player, past its handshake, stays
        assert await player.request(b"still here", 1) == Response(b"still here", True, 1)


async def test_idle_connections_cannot_lock_players_out(node):
    login_port, gate_port, msgserver = await start(node, {"maxclient": 2, "max_handshaking": 4})
    idle = [await RawGate.connect(gate_port) for _ in range(20)]
    await settled()  # every one of them is let in (or turned away)
    try:
        async with await connect(gate_port, await log_in(login_port)) as player:
            assert await player.request(b"served", 1) == Response(b"served", True, 1)
            open_now = len(connections(node).of_gate(msgserver))
        closed = 0
        for raw in idle[:-3]:  # each newer connection closed one that waited longer
            assert await raw.rest() == []
            closed += 1
    finally:
        for raw in idle:
            await raw.stream.aclose()
    assert closed == 17
    assert open_now <= 2 + 4


async def test_a_handshake_past_maxclient_users_is_refused_but_a_reconnect_is_not(node):
    login_port, gate_port, msgserver = await start(node, {"maxclient": 1})
    alice = await connect(gate_port, await log_in(login_port, "alice"))
    try:
        try:
            await connect(gate_port, await log_in(login_port, "bob"))
        except HandshakeRefused as refused:
            assert refused.line == SERVICE_UNAVAILABLE
        else:
            raise AssertionError("bob got in past maxclient")
        alice = await alice.reconnect()  # supersedes her own connection: not one more
        assert await alice.request(b"again", 1) == Response(b"again", True, 1)
    finally:
        await alice.aclose()


async def test_a_user_has_at_most_max_in_flight_requests_running(node):
    login_port, gate_port, msgserver = await start(node, {"max_in_flight": 3})
    async with await connect(gate_port, await log_in(login_port)) as player:
        for session in range(1, 11):
            await player.send_request(b"hold", session)
        await executed(node, msgserver, b"hold", 3)
        [fd] = connections(node).of_gate(msgserver)
        assert connections(node).get(fd).paused  # the rest is not read meanwhile
        await trio.sleep(0.2)  # time enough to start the rest, were it read
        assert await node.call(msgserver, "count", b"hold") == 3
        await node.call(msgserver, "release")
        with trio.fail_after(5):
            answered = {(await player.receive_response()).session for _ in range(10)}
    assert answered == set(range(1, 11))
    assert await node.call(msgserver, "count", b"hold") == 10


async def test_a_request_whose_connection_closed_runs_to_its_end_and_is_cached(node):
    login_port, gate_port, msgserver = await start(node)
    result = await log_in(login_port)
    player = await connect(gate_port, result)
    await player.send_request(b"hold", 1)
    await executed(node, msgserver, b"hold", 1)
    await player.aclose()
    with trio.fail_after(5):
        while await node.call(msgserver, "afk") == []:
            await trio.sleep(0.001)
    await node.call(msgserver, "release")  # it finishes while the user has no connection
    async with await connect(gate_port, result, 2) as player:
        assert await player.request(b"resent", 1) == Response(b"hold", True, 1)
    assert await node.call(msgserver, "count", b"hold") == 1
    assert await node.call(msgserver, "count", b"resent") == 0


async def test_requests_still_running_from_a_closed_connection_count_against_the_bound(node):
    login_port, gate_port, msgserver = await start(node, {"max_in_flight": 2})
    result = await log_in(login_port)
    player = await connect(gate_port, result)
    await player.send_request(b"hold", 1)
    await player.send_request(b"hold", 2)
    await executed(node, msgserver, b"hold", 2)
    player = await player.reconnect()
    [fd] = connections(node).of_gate(msgserver)
    assert connections(node).get(fd).paused  # two still run: the new connection waits
    await player.send_request(b"quick", 3)
    await trio.sleep(0.2)
    assert await node.call(msgserver, "count", b"quick") == 0
    await node.call(msgserver, "release")
    with trio.fail_after(5):
        assert await player.receive_response() == Response(b"quick", True, 3)
    assert await player.request(b"x", 1) == Response(b"hold", True, 1)
    assert await player.request(b"x", 2) == Response(b"hold", True, 2)
    await player.aclose()
    assert await node.call(msgserver, "count", b"hold") == 2

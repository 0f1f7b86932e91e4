"""A slow or stuck backend pins nothing: the router keeps reading a connection while its
requests are in flight (a bounded number of them, answered in request order), so a close
is seen at once; the heartbeat and the request timeout fire while requests wait."""

from __future__ import annotations

import cbor2
import trio
from gate_helpers import TIMEOUT, connect
from gate_router_setup import Player, start_game

from meshnet.gate import connections


async def signed_in(player: Player, user: str = "ann") -> None:
    assert (await player.ask("signin", {"user": user})).ok


async def held(node, auth: int, count: int) -> None:
    """Wait until ``count`` hold requests are waiting at the auth backend."""
    await node.call(auth, "wait_event", "held", count, timeout=TIMEOUT)


async def test_a_close_is_seen_while_a_request_waits_for_a_stuck_backend(node, kind):
    router, port, auth, agent = await start_game(node, kind)
    async with connect(kind, port) as connection:
        player = Player(connection)
        await signed_in(player)
        [fd] = connections(node).of_gate(router)
        await player.send("hold", {"tag": 1})
        await held(node, auth, 1)
    [[_, closed_fd, user]] = await node.call(agent, "wait_event", "closed", timeout=TIMEOUT)
    assert (closed_fd, user) == (fd, "ann")
    assert await node.call(router, "tracked") == []  # its route is freed
    assert connections(node).get(fd) is None
    assert await node.call(auth, "held") == [1, 1]  # while the backend still holds it
    await node.call(auth, "release")


async def test_a_connection_has_at_most_max_in_flight_requests_waiting(node, kind):
    router, port, auth, agent = await start_game(node, kind, max_in_flight=4)
    async with connect(kind, port) as connection:
        player = Player(connection)
        for tag in range(10):
            await player.send("hold", {"tag": tag})
        await held(node, auth, 4)
        [fd] = connections(node).of_gate(router)
        assert connections(node).get(fd).paused  # nothing more is read meanwhile
        await trio.sleep(0.2)  # time enough to read the rest, were it read
        assert await node.call(auth, "held") == [4, 4]
        await node.call(auth, "release")
        replies = [await player.next() for _ in range(10)]
    assert [reply.body for reply in replies] == [{"tag": tag} for tag in range(10)]
    assert await node.call(auth, "held") == [0, 4]


async def test_replies_keep_request_order_with_the_routers_own_errors_between(node, kind):
    router, port, auth, agent = await start_game(node, kind)
    async with connect(kind, port) as connection:
        player = Player(connection)
        await player.send("hold", {"tag": 1})
        await player.send("secret")  # blocked: answered by the router itself
        await player.send("hold", {"tag": 2})
        await player.send("fail", {"how": "client"})
        await held(node, auth, 2)
        await node.call(auth, "release")
        replies = [await player.next() for _ in range(4)]
    assert [reply.session for reply in replies] == [1, 2, 3, 4]
    assert [reply.body if reply.ok else reply.error for reply in replies] == [
        {"tag": 1},
        "blocked",
        {"tag": 2},
        "you asked for it",
    ]


async def test_an_undecodable_packet_closes_the_connection_after_the_replies_owed(node, kind):
    router, port, auth, agent = await start_game(node, kind)
    async with connect(kind, port) as connection:
        player = Player(connection)
        await player.send("hold", {"tag": 1})
        await connection.send(cbor2.dumps([4242, 9, {}]))
        await held(node, auth, 1)
        await node.call(auth, "release")
        first, second = await player.next(), await player.next()
        assert await connection.closed_by_server()
    assert first.body == {"tag": 1}
    assert second.session == 9 and second.error.startswith("unknown message id 4242")


async def test_a_backend_that_never_answers_is_unavailable_after_the_request_timeout(
    node, kind, autojump_clock
):
    router, port, auth, agent = await start_game(node, kind, request_timeout=3)
    async with connect(kind, port) as connection:
        player = Player(connection)
        started = trio.current_time()
        reply = await player.ask("hold", {"tag": 1})
        assert trio.current_time() - started >= 3
        assert reply.error == "service unavailable"
        assert (await player.ask("signin", {"user": "bo"})).ok  # the connection goes on
    await node.call(auth, "release")


async def test_the_heartbeat_fires_while_a_request_is_in_flight(node, kind, autojump_clock):
    router, port, auth, agent = await start_game(node, kind, heartbeat=3)
    async with connect(kind, port) as connection:
        player = Player(connection)
        await signed_in(player)
        [fd] = connections(node).of_gate(router)
        started = trio.current_time()
        await player.send("hold", {"tag": 1})
        assert await connection.closed_by_server()
        assert trio.current_time() - started >= 3
    [[_, error_fd, message]] = await node.call(router, "wait_error", timeout=TIMEOUT)
    assert (error_fd, message) == (fd, "heartbeat: no packet received for 3s")
    [[_, closed_fd, _]] = await node.call(agent, "wait_event", "closed", timeout=TIMEOUT)
    assert closed_fd == fd
    assert await node.call(auth, "held") == [1, 1]
    await node.call(auth, "release")


async def test_each_complete_packet_moves_the_heartbeat_on(node, kind, autojump_clock):
    router, port, *_ = await start_game(node, kind, heartbeat=3)
    async with connect(kind, port) as connection:
        player = Player(connection)
        for _ in range(10):  # 20 s in all, never 3 s without a packet
            await trio.sleep(2)
            assert (await player.ask("secret")).error == "blocked"

"""The router: route rules, binding, error replies, order, heartbeat, pushes, and telling
backends about closed connections."""

import logging

import cbor2
import pytest
import trio
from gate_helpers import connect
from gate_router_setup import Player, proto, start_game

from meshnet.gate import BackendError, Client, ClientError, GateServer, connections, handles
from meshnet.gate.backend import Backend


async def signed_in(player: Player, user: str = "alice") -> None:
    reply = await player.ask("signin", {"user": user})
    assert reply.ok and reply.body == {"ok": True}


async def test_pass_routes_to_the_declared_target(node, kind):
    router, port, *_ = await start_game(node, kind)
    async with connect(kind, port) as connection:
        player = Player(connection)
        reply = await player.ask("signin", {"user": "alice"})
        assert (reply.message.name, reply.session, reply.ok, reply.body) == (
            "signin",
            1,
            True,
            {"ok": True},
        )


async def test_a_blocked_message_is_refused(node, kind):
    router, port, *_ = await start_game(node, kind)
    async with connect(kind, port) as connection:
        player = Player(connection)
        await signed_in(player)
        reply = await player.ask("secret")
        assert (reply.ok, reply.error) == (False, "blocked")
        assert (await player.ask("echo", {"text": "still here"})).body == {"text": "still here"}


async def test_auth_messages_pass_only_once_a_backend_bound_the_connection(node, kind):
    router, port, *_ = await start_game(node, kind)
    async with connect(kind, port) as connection:
        player = Player(connection)
        reply = await player.ask("echo", {"text": "hi"})
        assert (reply.ok, reply.error, reply.session) == (False, "not authenticated", 1)
        await signed_in(player, "bob")
        assert (await player.ask("echo", {"text": "hi"})).body == {"text": "hi"}
        assert (await player.ask("whoami")).body == {"user": "bob"}


async def test_a_binding_belongs_to_its_connection(node, kind):
    router, port, *_ = await start_game(node, kind)
    async with connect(kind, port) as one, connect(kind, port) as two:
        await signed_in(Player(one))
        reply = await Player(two).ask("echo", {"text": "hi"})
        assert reply.error == "not authenticated"


async def test_client_error_text_and_internal_errors(node, kind, caplog):
    router, port, *_ = await start_game(node, kind)
    async with connect(kind, port) as connection:
        player = Player(connection)
        assert (await player.ask("signin", {"user": "nobody"})).error == "no such user"
        assert (await player.ask("fail", {"how": "client"})).error == "you asked for it"
        assert (await player.ask("fail", {"how": "bug"})).error == "internal error"
        assert (await player.ask("fail", {"how": "reply"})).error == "internal error"
        assert (await player.ask("signin", {"user": "carol"})).ok
    logged = [r for r in caplog.records if r.name == "meshnet.gate.backend" and r.exc_info]
    assert [type(r.exc_info[1]).__name__ for r in logged] == ["KeyError", "FieldTypeError"]
    assert all(r.address != "-" for r in logged)  # logged inside the backend service


async def test_a_service_the_handler_cannot_reach_is_service_unavailable(node, kind, caplog):
    router, port, *_ = await start_game(node, kind)
    async with connect(kind, port) as connection:
        player = Player(connection)
        assert (await player.ask("fail", {"how": "downstream"})).error == "service unavailable"
        assert (await player.ask("signin", {"user": "carol"})).ok  # the connection stays
    logged = [r for r in caplog.records if r.name == "meshnet.gate.backend"]
    assert [r.levelname for r in logged] == ["WARNING"]
    assert ".nobody_here" in logged[0].getMessage()


async def test_a_reply_too_large_for_one_packet_is_an_internal_error(node, kind, caplog):
    router, port, *_ = await start_game(node, kind)
    async with connect(kind, port) as connection:
        player = Player(connection)
        assert (await player.ask("big", {"size": 60_000})).body == {"text": "x" * 60_000}
        assert (await player.ask("big", {"size": 70_000})).error == "internal error"
        assert (await player.ask("signin", {"user": "kim"})).ok  # the connection stays
    logged = [r for r in caplog.records if r.name == "meshnet.gate.backend" and r.exc_info]
    assert "more than one packet" in str(logged[0].exc_info[1])


async def test_a_backend_that_is_not_there_is_unavailable(node, kind):
    router, port, *_ = await start_game(node, kind)
    async with connect(kind, port) as connection:
        player = Player(connection)
        assert (await player.ask("missing")).error == "service unavailable"
        assert (await player.ask("signin", {"user": "dave"})).ok


async def test_a_connection_is_answered_in_the_order_it_asked(node, kind):
    router, port, *_ = await start_game(node, kind)
    async with connect(kind, port) as connection, connect(kind, port) as other:
        player = Player(connection)
        await player.send("slow", {"delay": 0.2, "tag": 1})
        await player.send("slow", {"delay": 0.0, "tag": 2})
        await player.send("signin", {"user": "erin"})
        with trio.fail_after(0.15):  # another connection is not held up meanwhile
            assert (await Player(other).ask("slow", {"delay": 0.0, "tag": 3})).body == {"tag": 3}
        replies = [await player.next() for _ in range(3)]
        assert [r.session for r in replies] == [1, 2, 3]
        assert [r.body for r in replies] == [{"tag": 1}, {"tag": 2}, {"ok": True}]


async def test_a_request_without_session_gets_no_reply(node, kind):
    router, port, *_ = await start_game(node, kind)
    async with connect(kind, port) as connection:
        player = Player(connection)
        await connection.send(proto.encode_request("signin", {"user": "fay"}, session=0))
        await connection.send(proto.encode_request("fail", {"how": "client"}, session=0))
        notice = await player.next()  # errors still reach the client, as notices
        assert (notice.session, notice.error) == (0, "you asked for it")
        assert (await player.ask("whoami")).body == {"user": "fay"}


async def test_wrong_field_types_get_an_error_naming_the_field(node, kind):
    router, port, *_ = await start_game(node, kind)
    async with connect(kind, port) as connection:
        player = Player(connection)
        await connection.send(cbor2.dumps([1, 9, {"user": 42}]))
        reply = await player.next()
        assert (reply.session, reply.ok) == (9, False)
        assert "field 'user': expected str, got int" in reply.error
        assert (await player.ask("signin", {"user": "gus"})).ok  # the connection stays


@pytest.mark.parametrize(
    ("packet", "error"),
    [
        (cbor2.dumps([77, 5, {}]), "unknown message id 77"),
        (b"\xff\x00garbage", "invalid CBOR"),
        (cbor2.dumps({"msg_id": 1}), "expected [msg_id, session, body], got map"),
        (cbor2.dumps([1, 2]), "expected [msg_id, session, body], got a list of 2"),
        (cbor2.dumps([1, -1, {}]), "session must be an int"),
    ],
)
async def test_an_undecodable_packet_gets_an_error_and_closes_the_connection(
    node, kind, packet, error, caplog
):
    caplog.set_level(logging.INFO)
    router, port, *_ = await start_game(node, kind)
    async with connect(kind, port) as bad, connect(kind, port) as good:
        await bad.send(packet)
        reply = proto.decode_reply(await bad.receive())
        assert not reply.ok and error in reply.error
        assert await bad.closed_by_server()
        assert (await Player(good).ask("signin", {"user": "hal"})).ok
    assert any(error in r.getMessage() and "closing it" in r.getMessage() for r in caplog.records)


async def test_heartbeat_closes_a_connection_that_sends_nothing(node, kind, caplog):
    caplog.set_level(logging.INFO)
    router, port, *_ = await start_game(node, kind, heartbeat=0.3)
    async with connect(kind, port) as idle, connect(kind, port) as chatty:
        player = Player(chatty)
        for _ in range(6):  # 0.6 s of activity, each gap under the heartbeat
            assert (await player.ask("signin", {"user": "ida"})).ok
            await trio.sleep(0.1)
        assert await idle.closed_by_server()
        assert (await player.ask("echo", {"text": "alive"})).ok
    assert any("heartbeat: no packet received for 0.3s" in r.getMessage() for r in caplog.records)


async def test_pushes_reach_one_a_list_or_all(node, kind):
    router, port, auth, agent = await start_game(node, kind)
    async with (
        connect(kind, port) as a,
        connect(kind, port) as b,
        connect(kind, port) as c,
    ):
        players = [Player(a), Player(b), Player(c)]
        for player, user in zip(players, "abc", strict=True):
            await signed_in(player, user)
        for player in players[:2]:
            assert (await player.ask("whoami")).ok
        await players[2].send("shout", {"text": "hey"})
        for player in players[:2]:
            assert (await player.next()).body == {"text": "hey"}
        for player in players:
            push = await player.next()
            assert (push.session, push.body) == (0, {"text": "all: hey"})
        reply = await players[2].next()  # pushes made while handling come before the reply
        assert (reply.session, reply.ok) == (2, True)
        fds = sorted(connections(node).of_gate(router))  # fds are given in accept order
        assert await node.call(router, "push", fds[0], "notice", {"text": "one"}) == 1
        assert await node.call(router, "push", fds[1:], "notice", {"text": "two"}) == 2
        assert await node.call(router, "push", None, "notice", {"text": "three"}) == 3
        texts = [[(await p.next()).body["text"] for _ in range(2)] for p in players]
        assert texts == [["one", "three"], ["two", "three"], ["two", "three"]]


async def test_backends_are_told_when_a_bound_connection_closes(node, kind):
    router, port, auth, agent = await start_game(node, kind)
    async with connect(kind, port) as connection:
        await signed_in(Player(connection), "ivy")
        [fd] = connections(node).of_gate(router)
    [[_, closed_fd, user]] = await node.call(agent, "wait_event", "closed", timeout=5)
    assert (closed_fd, user) == (fd, "ivy")


def test_a_handler_for_an_undeclared_message_is_refused_at_class_creation():
    with pytest.raises(BackendError, match="'nope', which protocol 'router-test' does not"):

        class Wrong(Backend):
            protocol = proto

            @handles("nope")
            async def nope(self, client: Client, body: dict) -> None:
                raise ClientError("unreachable")


async def test_a_gate_failure_mid_connection_still_ends_it_with_error_and_disconnect(
    node, kind, monkeypatch, caplog
):
    deliver, deliver_here = GateServer._deliver, GateServer._deliver_here

    def check(self, connection):
        if connection.agent is None and self._routes:  # the connection is signed in
            raise RuntimeError("a bug in the gate")

    async def buggy(self, connection, packet):
        check(self, connection)
        await deliver(self, connection, packet)

    def buggy_here(self, connection, packet):  # the reactor's way (plain TCP)
        check(self, connection)
        return deliver_here(self, connection, packet)

    monkeypatch.setattr(GateServer, "_deliver", buggy)
    monkeypatch.setattr(GateServer, "_deliver_here", buggy_here)
    router, port, auth, agent = await start_game(node, kind)
    async with connect(kind, port) as connection:
        player = Player(connection)
        await signed_in(player, "ivy")
        [fd] = connections(node).of_gate(router)
        await player.send("echo", {"text": "boom"})
        assert await connection.closed_by_server()
    [[_, closed_fd, user]] = await node.call(agent, "wait_event", "closed", timeout=5)
    assert (closed_fd, user) == (fd, "ivy")
    [[_, error_fd, message]] = await node.call(router, "wait_error", timeout=5)
    assert error_fd == fd and "a bug in the gate" in message
    assert "a bug in the gate" in caplog.text

"""MsgServer over TCP behind the example login server: the whole flow, reconnects, bad input.

Each misbehaving client runs while another user (bob) is connected; bob's next request
must still be answered.
"""

from __future__ import annotations

import logging

import pytest
import trio
from msg_servers import RawGate, connect, log_in, log_in_again, settled, start

from meshnet.login.gateclient import GateClosed, HandshakeRefused
from meshnet.login.wire import (
    BAD_REQUEST,
    HANDSHAKE_OK,
    INDEX_EXPIRED,
    UNAUTHORIZED,
    USER_NOT_FOUND,
    Response,
    build_handshake,
    make_username,
    pack_request,
    unpack_response,
)


@pytest.fixture
async def servers(node):
    return await start(node)


@pytest.fixture
async def bob(servers):
    login_port, gate_port, _ = servers
    connection = await connect(gate_port, await log_in(login_port, "bob"))
    yield connection
    await connection.aclose()


async def bob_still_served(bob) -> None:
    with trio.fail_after(5):
        assert await bob.request(b"still here", 99) == Response(b"still here", True, 99)


async def test_login_handshake_request_response(servers):
    login_port, gate_port, msgserver = servers
    result = await log_in(login_port)
    assert result.subid == b"1"
    async with await connect(gate_port, result) as connection:
        assert connection.status == HANDSHAKE_OK
        assert await connection.request(b"hello", 1) == Response(b"hello", True, 1)
        assert await connection.request(b"", 2) == Response(b"", True, 2)


async def test_a_failing_handler_answers_ok_0_with_no_content(servers, bob, caplog):
    login_port, gate_port, _ = servers
    async with await connect(gate_port, await log_in(login_port)) as connection:
        assert await connection.request(b"boom", 5) == Response(b"", False, 5)
        assert await connection.request(b"next", 6) == Response(b"next", True, 6)
    assert "request 5 of" in caplog.text
    await bob_still_served(bob)


async def test_a_handler_whose_service_is_gone_answers_ok_0_and_warns_without_a_traceback(
    servers, bob, caplog
):
    login_port, gate_port, _ = servers
    async with await connect(gate_port, await log_in(login_port)) as connection:
        assert await connection.request(b"gone", 7) == Response(b"", False, 7)
    (record,) = [r for r in caplog.records if "request 7 of" in r.getMessage()]
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "NoSuchService" in record.getMessage()
    await bob_still_served(bob)


async def test_requests_of_one_user_run_concurrently(servers, node):
    login_port, gate_port, msgserver = servers
    async with await connect(gate_port, await log_in(login_port)) as connection:
        await connection.send_request(b"hold", 1)
        await connection.send_request(b"quick", 2)
        with trio.fail_after(5):
            assert await connection.receive_response() == Response(b"quick", True, 2)
            await node.call(msgserver, "release")
            assert await connection.receive_response() == Response(b"hold", True, 1)


async def test_a_reconnect_gets_the_cached_answer_without_running_it_again(servers, node):
    login_port, gate_port, msgserver = servers
    result = await log_in(login_port)
    connection = await connect(gate_port, result)
    assert await connection.request(b"once", 1) == Response(b"once", True, 1)
    connection = await connection.reconnect()
    assert connection.index == 2
    assert await connection.request(b"fake", 1) == Response(b"once", True, 1)
    assert await connection.request(b"again", 2) == Response(b"again", True, 2)
    await connection.aclose()
    assert await node.call(msgserver, "count", b"once") == 1
    assert await node.call(msgserver, "count", b"fake") == 0


async def test_a_request_dropped_while_pending_is_answered_after_the_reconnect(servers, node):
    """client.lua's flow: send, close without reading, reconnect, resend the session."""
    login_port, gate_port, msgserver = servers
    connection = await connect(gate_port, await log_in(login_port))
    await connection.send_request(b"hold", 0)
    await settled()
    connection = await connection.reconnect()
    await connection.send_request(b"fake", 0)
    await connection.send_request(b"again", 1)
    await node.call(msgserver, "release")
    with trio.fail_after(5):
        responses = {await connection.receive_response() for _ in range(2)}
    assert responses == {Response(b"hold", True, 0), Response(b"again", True, 1)}
    await connection.aclose()
    assert await node.call(msgserver, "count", b"hold") == 1


async def test_connect_handler_hears_each_accepted_handshake_and_no_refused_one(servers, node):
    login_port, gate_port, msgserver = servers
    result = await log_in(login_port)
    connection = await connect(gate_port, result)
    with pytest.raises(HandshakeRefused):
        await connect(gate_port, result, 1)  # a stale index
    connection = await connection.reconnect()
    await connection.aclose()
    username = make_username(result.uid, result.server, result.subid)
    assert await node.call(msgserver, "connected") == [username, username]


async def handshake_reply(gate_port: int, packet: bytes) -> list[bytes]:
    """What the server sends for handshake ``packet`` before it closes."""
    async with await RawGate.connect(gate_port) as raw:
        await raw.send(packet)
        return await raw.rest()


async def test_an_unknown_user_is_not_found(servers, bob):
    _, gate_port, _ = servers
    result = await log_in(servers[0])
    unknown = build_handshake(b"nobody", b"sample", b"9", 1, result.secret)
    assert await handshake_reply(gate_port, unknown) == [USER_NOT_FOUND]
    await bob_still_served(bob)


async def test_a_stale_index_is_expired(servers, bob):
    login_port, gate_port, _ = servers
    result = await log_in(login_port)
    connection = await connect(gate_port, result, 3)
    for index in (3, 2):
        with pytest.raises(HandshakeRefused) as refused:
            await connect(gate_port, result, index)
        assert refused.value.line == INDEX_EXPIRED
    assert await connection.request(b"x", 1) == Response(b"x", True, 1)
    await connection.aclose()
    await bob_still_served(bob)


async def test_a_wrong_hmac_is_unauthorized(servers, bob):
    login_port, gate_port, _ = servers
    result = await log_in(login_port)
    forged = build_handshake(result.uid, result.server, result.subid, 1, b"notmykey")
    assert await handshake_reply(gate_port, forged) == [UNAUTHORIZED]
    async with await connect(gate_port, result, 1) as connection:  # the index was not used
        assert connection.status == HANDSHAKE_OK
    await bob_still_served(bob)


async def test_a_non_numeric_index_is_a_bad_request(servers, bob):
    login_port, gate_port, _ = servers
    result = await log_in(login_port)
    good = build_handshake(result.uid, result.server, result.subid, 1, result.secret)
    username, _, hmac = good.split(b":")
    assert await handshake_reply(gate_port, b"%s:one:%s" % (username, hmac)) == [BAD_REQUEST]
    await bob_still_served(bob)


@pytest.mark.parametrize("packet", [b"", b"abc"], ids=["empty", "3 bytes"])
async def test_a_request_shorter_than_4_bytes_closes_the_connection(servers, bob, caplog, packet):
    caplog.set_level(logging.INFO, logger="meshnet.login")
    login_port, gate_port, msgserver = servers
    result = await log_in(login_port)
    async with await RawGate.connect(gate_port) as raw:
        await raw.send(build_handshake(result.uid, result.server, result.subid, 1, result.secret))
        assert await raw.receive() == HANDSHAKE_OK
        await raw.send(packet, pack_request(b"after", 1))
        assert await raw.rest() == []
    assert "has no 4-byte session; closing it" in caplog.text
    async with await connect(gate_port, result, 2) as connection:
        assert await connection.request(b"back", 1) == Response(b"back", True, 1)
    await bob_still_served(bob)


async def test_a_pending_session_sent_twice_more_is_absorbed_then_closes(
    servers, bob, node, caplog
):
    login_port, gate_port, msgserver = servers
    result = await log_in(login_port)
    async with await RawGate.connect(gate_port) as raw:
        await raw.send(build_handshake(result.uid, result.server, result.subid, 1, result.secret))
        assert await raw.receive() == HANDSHAKE_OK
        await raw.send(pack_request(b"hold", 8), pack_request(b"hold", 8))
        await raw.send(pack_request(b"quick", 9))
        assert unpack_response(await raw.receive()) == Response(b"quick", True, 9)
        await raw.send(pack_request(b"hold", 8))
        assert await raw.rest() == []
    assert "session 8 sent again while its request is still pending" in caplog.text
    await node.call(msgserver, "release")
    assert await node.call(msgserver, "count", b"hold") == 1
    await bob_still_served(bob)


async def test_a_new_handshake_supersedes_the_old_connection(servers, bob, node):
    login_port, gate_port, msgserver = servers
    result = await log_in(login_port)
    old = await connect(gate_port, result, 1)
    new = await connect(gate_port, result, 2)
    with trio.fail_after(5), pytest.raises(GateClosed):
        await old.receive_response()
    assert await new.request(b"new", 1) == Response(b"new", True, 1)
    await old.aclose()
    await new.aclose()
    await bob_still_served(bob)
    with trio.fail_after(5):
        while not await node.call(msgserver, "afk"):
            await trio.sleep(0.01)
    assert await node.call(msgserver, "afk") == [b"YWxpY2U=@c2FtcGxl#Mg=="]


async def test_logging_in_again_kicks_the_old_login(servers, bob):
    login_port, gate_port, _ = servers
    first, second = await log_in_again(login_port, gate_port, "alice")
    assert second.subid != first.subid
    await bob_still_served(bob)

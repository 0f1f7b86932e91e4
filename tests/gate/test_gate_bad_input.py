"""Bad input, each case on its own connection, while a well-behaved client on the same gate
keeps getting correct answers: every bad connection gets its precise error or close and
nothing else is affected."""

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import cbor2
import pytest
import trio
from gate_helpers import HOST, TIMEOUT, Client, abort, connect
from gate_router_setup import Player, proto, start_game
from ws_client import RawWs, fragments

from meshnet.framing import pack
from meshnet.gate import connections
from meshnet.gate.websocket import MAX_FRAGMENTS


@asynccontextmanager
async def well_behaved(kind: str, port: int) -> AsyncIterator[None]:
    """A signed-in client asking and checking answers for as long as the block runs."""
    answers = 0

    async def keep_asking(player: Player) -> None:
        nonlocal answers
        while True:
            text = f"message {answers}"
            assert (await player.ask("echo", {"text": text})).body == {"text": text}
            answers += 1
            await trio.sleep(0.005)

    async with connect(kind, port) as connection, trio.open_nursery() as nursery:
        player = Player(connection)
        assert (await player.ask("signin", {"user": "good"})).ok
        nursery.start_soon(keep_asking, player)
        yield
        nursery.cancel_scope.cancel()
    assert answers > 0


async def wait_error(node, router, count=1):
    return await node.call(router, "wait_error", count, timeout=TIMEOUT)


@pytest.mark.parametrize(
    ("packet", "error"),
    [
        (b"\xa1\x01", "invalid CBOR"),
        (cbor2.dumps("a string"), "expected [msg_id, session, body], got str"),
        (cbor2.dumps([1, 1, {}, 4]), "expected [msg_id, session, body], got a list of 4"),
        (cbor2.dumps([4242, 1, {}]), "unknown message id 4242"),
    ],
)
async def test_undecodable_packets_close_only_their_connection(node, kind, packet, error):
    router, port, *_ = await start_game(node, kind)
    async with well_behaved(kind, port), connect(kind, port) as bad:
        await bad.send(packet)
        reply = proto.decode_reply(await bad.receive())
        assert not reply.ok and error in reply.error
        assert await bad.closed_by_server()


async def test_wrong_body_and_auth_before_binding_get_errors_and_keep_the_connection(node, kind):
    router, port, *_ = await start_game(node, kind)
    async with well_behaved(kind, port), connect(kind, port) as sloppy:
        player = Player(sloppy)
        await sloppy.send(cbor2.dumps([2, 7, {"text": b"bytes"}]))
        reply = await player.next()
        assert reply.session == 7 and "field 'text': expected str, got bytes" in reply.error
        assert (await player.ask("echo", {"text": "x"})).error == "not authenticated"
        assert (await player.ask("secret")).error == "blocked"
        assert (await player.ask("signin", {"user": "sloppy"})).ok


async def test_an_oversized_packet_closes_the_connection(node, kind):
    router, port, *_ = await start_game(node, kind, max_packet=1024)
    async with well_behaved(kind, port), connect(kind, port) as bad:
        if kind == "tcp":
            await bad.send_raw(b"\x04\x01" + b"x" * 100)  # only the length prefix matters
        else:
            await bad.send(b"x" * 1025)
        assert await bad.closed_by_server()
    [[_, _, message]] = await wait_error(node, router)
    expected = {
        "tcp": "packet length 1025 exceeds the limit of 1024 bytes",
        "ws": "websocket message of more than 1024 bytes",
    }[kind]
    assert expected in message


async def test_packets_before_an_oversized_length_prefix_are_still_handled(node):
    router, port, *_ = await start_game(node, "tcp", max_packet=1024)
    async with well_behaved("tcp", port), connect("tcp", port) as bad:
        # A request the router answers itself: its reply is out before the next read.
        blocked = proto.encode_request("secret", None, session=1)
        await bad.send_raw(pack(blocked) + b"\x04\x01" + b"x" * 100)  # in one write
        assert proto.decode_reply(await bad.receive()).error == "blocked"
        assert await bad.closed_by_server()


async def test_a_websocket_text_message_closes_the_connection(node):
    router, port, *_ = await start_game(node, "ws")
    async with well_behaved("ws", port), connect("ws", port) as bad:
        await bad._ws.send_message("text, not binary")
        assert await bad.closed_by_server()
    [[_, _, message]] = await wait_error(node, router)
    assert "text message received" in message


async def test_a_frame_truncated_by_the_close_is_reported(node):
    router, port, *_ = await start_game(node, "tcp")
    async with well_behaved("tcp", port):
        async with connect("tcp", port) as bad:
            await bad.send_raw(b"\x00\x10abc")
        [[_, _, message]] = await wait_error(node, router)
    assert "inside a packet (5 bytes of it had arrived)" in message


async def test_a_client_sending_one_byte_at_a_time_is_closed_by_the_heartbeat(node):
    router, port, *_ = await start_game(node, "tcp", heartbeat=0.5)
    packet = pack(proto.encode_request("signin", {"user": "slow"}, session=1))

    async def trickle(client: Client) -> None:
        """A byte every 0.2 s: the packet would take seconds to complete."""
        try:
            for byte in packet:
                await client.send_raw(bytes([byte]))
                await trio.sleep(0.2)
        except trio.BrokenResourceError:
            pass

    async with well_behaved("tcp", port), connect("tcp", port) as slow:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trickle, slow)
            assert await slow.closed_by_server()
            nursery.cancel_scope.cancel()
    [[_, _, message]] = await wait_error(node, router)
    assert message == "heartbeat: no packet received for 0.5s"


async def test_ten_thousand_connections_opened_and_dropped(node):
    """50 at a time (about 100 file descriptors with both ends in this process)."""
    router, port, *_ = await start_game(node, "tcp")
    ways = [close_at_once, reset_at_once, send_half_a_frame, ask_and_leave]
    total, concurrency = 10_000, 50
    started = time.monotonic()
    async with well_behaved("tcp", port):

        async def worker(first: int) -> None:
            for n in range(first, total, concurrency):
                await ways[n % len(ways)](port)

        async with trio.open_nursery() as nursery:
            for first in range(concurrency):
                nursery.start_soon(worker, first)
    assert time.monotonic() - started < 60
    assert await node.call(router, "ports")  # still open and listening
    with trio.fail_after(TIMEOUT):  # and every connection is gone from the registry
        while len(connections(node)):
            await trio.sleep(0.01)


async def close_at_once(port: int) -> None:
    async with connect("tcp", port):
        pass


async def reset_at_once(port: int) -> None:
    async with connect("tcp", port) as client:
        abort(client)


async def send_half_a_frame(port: int) -> None:
    async with connect("tcp", port) as client:
        await client.send_raw(b"\x00\x20half")
        abort(client)


async def ask_and_leave(port: int) -> None:
    async with connect("tcp", port) as client:
        await client.send(proto.encode_request("signin", {"user": "brief"}, session=1))
        abort(client)


async def wait_logged(caplog, text: str) -> None:
    with trio.fail_after(TIMEOUT):
        while text not in caplog.text:
            await trio.sleep(0.01)


@pytest.mark.parametrize(
    ("send", "answer", "logged"),
    [
        (b"", b"", "client closed before the websocket upgrade"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 400 ", "not a websocket upgrade"),
        (b"\x16\x03\x01garbage\r\n\r\n", b"HTTP/1.1 400 ", "not a websocket upgrade"),
    ],
    ids=["closed-before-upgrade", "plain-http", "garbage"],
)
async def test_a_websocket_that_fails_before_its_upgrade_frees_its_slot_at_once(
    node, caplog, send, answer, logged
):
    caplog.set_level(logging.INFO)
    router, port, *_ = await start_game(node, "ws", maxclient=1)
    async with await trio.open_tcp_stream(HOST, port) as half_dead:
        await half_dead.send_all(send)
        await half_dead.send_eof()
        received = b""
        with trio.fail_after(TIMEOUT):
            while chunk := await half_dead.receive_some():
                received += chunk
        assert received.startswith(answer)
    await wait_logged(caplog, logged)
    async with connect("ws", port) as good:  # the only slot is free again
        assert (await Player(good).ask("signin", {"user": "good"})).ok


async def test_a_websocket_message_in_too_many_fragments_closes_the_connection(node):
    router, port, *_ = await start_game(node, "ws")
    async with well_behaved("ws", port):
        bad = await RawWs.connect(port)
        await bad.send(fragments(bad.ws, [b""] * (MAX_FRAGMENTS + 10)))
        close = await bad.close_reason()
        assert (close.code, close.reason) == (
            1009,
            f"websocket message in more than {MAX_FRAGMENTS} fragments",
        )
        await bad.stream.aclose()
    [[_, _, message]] = await wait_error(node, router)
    assert message == f"websocket message in more than {MAX_FRAGMENTS} fragments"

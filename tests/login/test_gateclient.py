"""meshnet.login.gateclient against scripted msgservers: what it sends, refusals, closes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio

from meshnet.framing import Splitter, pack
from meshnet.login.client import LoginResult
from meshnet.login.gateclient import GateClosed, HandshakeRefused, connect_gate
from meshnet.login.wire import (
    HANDSHAKE_OK,
    INDEX_EXPIRED,
    LoginProtocolError,
    Response,
    pack_request,
    pack_response,
)

HOST = "127.0.0.1"
SECRET = bytes.fromhex("6373fb943f60a5ee")
RESULT = LoginResult(uid=b"hello", server=b"sample", subid=b"1", secret=SECRET)
Script = Callable[[trio.SocketStream, list[bytes]], Awaitable[None]]


async def serve(nursery: trio.Nursery, script: Script, received: list[bytes]) -> int:
    """Run ``script`` on the first connection to a new listener; return its port."""
    listeners = await trio.open_tcp_listeners(0, host=HOST)

    async def once() -> None:
        async with listeners[0]:
            stream = await listeners[0].accept()
        async with stream:
            await script(stream, received)

    nursery.start_soon(once)
    return listeners[0].socket.getsockname()[1]


async def packets(stream: trio.SocketStream, count: int, received: list[bytes]) -> None:
    splitter = Splitter()
    while len(received) < count:
        received.extend(splitter.feed(await stream.receive_some()))


async def test_the_handshake_is_skynets_and_requests_are_framed():
    async def script(stream, received):
        await packets(stream, 1, received)
        await stream.send_all(pack(HANDSHAKE_OK))
        await packets(stream, 2, received)
        await stream.send_all(pack(pack_response(b"echo", True, 0)))

    received: list[bytes] = []
    async with trio.open_nursery() as nursery:
        port = await serve(nursery, script, received)
        async with await connect_gate(HOST, port, RESULT, 1) as connection:
            assert connection.status == HANDSHAKE_OK
            assert await connection.request(b"echo", 0) == Response(b"echo", True, 0)
    # NOTES §9: the handshake client.lua sends for these values
    assert received == [b"aGVsbG8=@c2FtcGxl#MQ==:1:k8WqyVLrVVo=", pack_request(b"echo", 0)]


async def test_a_refused_handshake_raises_with_the_status_line():
    async def script(stream, received):
        await packets(stream, 1, received)
        await stream.send_all(pack(INDEX_EXPIRED))

    async with trio.open_nursery() as nursery:
        port = await serve(nursery, script, [])
        with pytest.raises(HandshakeRefused) as refused:
            await connect_gate(HOST, port, RESULT, 7)
    assert (refused.value.code, refused.value.line) == (403, INDEX_EXPIRED)


@pytest.mark.parametrize("reply", [b"", b"\x00\x05ab"], ids=["nothing", "half a packet"])
async def test_a_server_closing_before_its_reply_raises_gate_closed(reply):
    async def script(stream, received):
        await packets(stream, 1, received)
        await stream.send_all(reply)

    async with trio.open_nursery() as nursery:
        port = await serve(nursery, script, [])
        with pytest.raises(GateClosed):
            await connect_gate(HOST, port, RESULT, 1)


async def test_an_answer_to_another_session_is_a_protocol_error():
    async def script(stream, received):
        await packets(stream, 1, received)
        await stream.send_all(pack(HANDSHAKE_OK) + pack(pack_response(b"x", True, 5)))
        await packets(stream, 2, received)

    async with trio.open_nursery() as nursery:
        port = await serve(nursery, script, [])
        async with await connect_gate(HOST, port, RESULT, 1) as connection:
            with pytest.raises(LoginProtocolError, match="session 4, got session 5"):
                await connection.request(b"x", 4)

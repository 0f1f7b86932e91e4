"""The gate's WebSocket server end on its own: any chunking, any fragmentation, bounded
assembly, and garbage that raises our own error."""

import socket

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st
from ws_client import client_connection, fragments
from wsproto.events import CloseConnection

from meshnet.gate.websocket import (
    MAX_FRAGMENTS,
    ServerWebSocket,
    WebSocketError,
    WebSocketRefused,
)

MAX_MESSAGE = 4096


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False)]


def run_serve(request: bytes, wire: list[bytes] = ()) -> list[bytes]:
    """``serve``, with its error out of trio's exception group."""
    try:
        return trio.run(serve, request, list(wire))
    except BaseExceptionGroup as group:
        [error] = group.exceptions
        raise error from None


async def serve(request: bytes, wire: list[bytes]) -> list[bytes]:
    """Run a server WebSocket on an in-memory stream: the client sends ``request``, waits
    for the answer (if it has more to send), then sends ``wire`` and closes. Return every
    message received."""
    client, server = trio.testing.memory_stream_pair()
    ws = ServerWebSocket(server, MAX_MESSAGE)
    received: list[bytes] = []

    async def client_side() -> None:
        await client.send_all(request)
        if wire and await client.receive_some():  # the 101: a client waits for it
            for chunk in wire:
                await client.send_all(chunk)
        await client.send_eof()
        while await client.receive_some():  # the server's close frame
            pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(client_side)
        try:
            await ws.handshake()
            await ws.accept()
            while (messages := await ws.receive()) is not None:
                received += messages
        finally:
            await server.aclose()
    return received


messages = st.lists(st.binary(max_size=MAX_MESSAGE), max_size=5)


@given(messages, st.data(), st.lists(st.integers(0, 10_000), max_size=20))
def test_messages_arrive_whole_however_they_are_fragmented_and_chunked(sent, data, cuts):
    ws, request = client_connection()
    wire = b""
    for message in sent:
        splits = data.draw(st.lists(st.integers(0, len(message)), max_size=MAX_FRAGMENTS - 1))
        wire += fragments(ws, chunked(message, splits) or [b""])
    wire += ws.send(CloseConnection(code=1000))
    assert run_serve(request, chunked(wire, cuts)) == sent


def test_a_message_in_too_many_fragments_is_refused_even_if_they_are_empty():
    ws, request = client_connection()
    wire = fragments(ws, [b""] * (MAX_FRAGMENTS + 1))
    with pytest.raises(WebSocketError, match=f"in more than {MAX_FRAGMENTS} fragments"):
        run_serve(request, [wire])


def test_a_message_over_the_limit_is_refused_as_it_comes():
    ws, request = client_connection()
    wire = fragments(ws, [b"x" * MAX_MESSAGE, b"x"])
    with pytest.raises(WebSocketError, match=f"message of more than {MAX_MESSAGE} bytes"):
        run_serve(request, [wire])


@given(st.binary(min_size=1, max_size=200))
def test_garbage_after_the_upgrade_raises_our_error_or_ends_cleanly(garbage):
    ws, request = client_connection()
    try:
        run_serve(request, [garbage])
    except WebSocketError:
        pass


@given(st.binary(min_size=1, max_size=200).filter(lambda data: b"\r\n\r\n" not in data))
def test_garbage_instead_of_an_upgrade_raises_our_error(garbage):
    with pytest.raises(WebSocketError):
        run_serve(garbage)


def test_an_http_request_that_is_not_an_upgrade_is_refused():
    with pytest.raises(WebSocketRefused, match="not a websocket upgrade"):
        run_serve(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")


async def test_what_send_now_leaves_unsent_goes_out_before_the_next_send():
    """A message the socket takes only in part is finished before the next one."""
    client_sock, server_sock = trio.socket.socketpair()
    server_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    server = trio.SocketStream(server_sock)
    ws = ServerWebSocket(server, MAX_MESSAGE)
    client, request = client_connection()
    await trio.SocketStream(client_sock).send_all(request)
    await ws.handshake()
    await ws.accept()
    big, small = bytes(range(256)) * 1024, b"next"
    assert ws.send_now(big)
    assert not ws.send_now(small)  # part of big waits: small must not pass it
    received: list[bytes] = []

    async def read() -> None:
        client_stream = trio.SocketStream(client_sock)
        data = b""
        while b"\r\n\r\n" not in data:  # the server's 101
            data += await client_stream.receive_some(65536)
        client.receive_data(data.split(b"\r\n\r\n", 1)[1])
        message = b""
        while len(received) < 2:
            for event in client.events():
                message += event.data
                if event.message_finished:
                    received.append(message)
                    message = b""
            if len(received) < 2:
                client.receive_data(await client_stream.receive_some(65536))

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            await ws.send([small])
    assert received == [big, small]

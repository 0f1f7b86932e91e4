"""Listeners take every waiting connection in one turn of the event loop."""

import socket

import trio

from meshnet.listen import ACCEPT_BATCH, open_listeners


def connect_many(port, count):
    clients = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port))
        clients.append(client)
    return clients


async def test_accept_returns_every_connection_already_waiting():
    [listener] = await open_listeners("127.0.0.1", 0)
    clients = connect_many(listener.port, 10)
    streams = await listener.accept()
    assert len(streams) == 10
    for stream in streams:
        await stream.aclose()
    for client in clients:
        client.close()


async def test_one_accept_takes_at_most_a_batch():
    [listener] = await open_listeners("127.0.0.1", 0, backlog=ACCEPT_BATCH + 10)
    clients = connect_many(listener.port, ACCEPT_BATCH + 5)
    first = await listener.accept()
    second = await listener.accept()
    assert (len(first), len(second)) == (ACCEPT_BATCH, 5)
    for stream in first + second:
        await stream.aclose()
    for client in clients:
        client.close()


async def test_serve_hands_each_connection_over_and_closes_the_socket_when_cancelled():
    [listener] = await open_listeners("127.0.0.1", 0)
    port = listener.port
    accepted = []
    with trio.move_on_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(listener.serve, accepted.append)
            client = await trio.open_tcp_stream("127.0.0.1", port)
            while not accepted:
                await trio.sleep(0.001)
            nursery.cancel_scope.cancel()
    assert len(accepted) == 1
    await client.aclose()
    await accepted[0].aclose()
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        pass
    else:
        raise AssertionError("the listening socket is still open")

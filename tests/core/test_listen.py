"""Listeners take every waiting connection in one turn of the event loop."""

import errno
import os
import socket

import pytest
import trio

from meshnet import Service, ServiceStartError
from meshnet.listen import (
    ACCEPT_BATCH,
    IGNORABLE_ACCEPT_ERRORS,
    Listener,
    ListenError,
    open_listeners,
)


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


class Lobby(Service):
    async def init(self, port):
        self.register(".lobby")
        await open_listeners("127.0.0.1", port)


async def test_a_port_in_use_is_an_error_naming_the_service_and_the_address(node):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServiceStartError) as caught:
            await node.newservice(Lobby, port)
    message = str(caught.value)
    assert "service .lobby (test_listen:Lobby, :01" in message
    assert f"cannot listen on 127.0.0.1:{port}" in message
    assert "Address already in use" in message


async def test_an_address_not_of_this_machine_is_an_error_naming_it(node):
    with pytest.raises(ListenError, match="cannot listen on 192.0.2.1:0: .*ssign"):
        await open_listeners("192.0.2.1", 0)


class FailingFirst(socket.socket):
    """A listening socket whose next ``accept`` calls fail with the given errnos."""

    def __init__(self, fileno: int, errnos: list[int]) -> None:
        super().__init__(fileno=fileno)
        self.errnos = errnos

    def accept(self):
        if self.errnos:
            code = self.errnos.pop(0)
            raise OSError(code, os.strerror(code))
        return super().accept()


@pytest.mark.parametrize("name", [name for name in IGNORABLE_ACCEPT_ERRORS if hasattr(errno, name)])
async def test_an_accept_error_caused_by_one_client_skips_it_and_serving_goes_on(name):
    [plain] = await open_listeners("127.0.0.1", 0)
    failing = FailingFirst(plain._sock.detach(), [getattr(errno, name)] * 3)
    listener = Listener(failing)
    client = socket.create_connection(("127.0.0.1", listener.port))
    accepted = []
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(listener.serve, accepted.append)
            while not accepted:
                await trio.sleep(0.001)
            nursery.cancel_scope.cancel()
    assert failing.errnos == []
    await accepted[0].aclose()
    client.close()


def test_every_accept_error_trio_ignores_is_ignored():
    trio_ignores = trio._highlevel_socket._ignorable_accept_errno_names
    assert set(trio_ignores) <= set(IGNORABLE_ACCEPT_ERRORS)

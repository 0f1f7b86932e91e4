"""Transports on their own: what a closed one does with the socket number it held."""

import socket

import pytest
import trio

from meshnet.framing import pack
from meshnet.gate.transport import TcpTransport, TransportError


def transport_pair() -> tuple[TcpTransport, socket.socket]:
    ours, theirs = socket.socketpair()
    return TcpTransport(trio.SocketStream(trio.socket.from_stdlib_socket(ours)), 65535), theirs


async def test_a_closed_tcp_transport_never_writes_to_the_socket_that_reuses_its_number():
    transport, peer = transport_pair()
    number = transport._stream.socket.fileno()
    await transport.aclose(False, None)
    peer.close()
    reused, reused_peer = socket.socketpair()
    assert number in (reused.fileno(), reused_peer.fileno())
    chunk = pack(b"meant for the closed connection")
    assert transport.send_now(chunk) == chunk
    for sock in (reused, reused_peer):
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sock.recv(100)
    reused.close()
    reused_peer.close()


async def test_a_closed_tcp_transport_does_not_read():
    transport, peer = transport_pair()
    await transport.aclose(False, None)
    with pytest.raises(TransportError, match="connection closed"):
        await transport.receive()
    peer.close()

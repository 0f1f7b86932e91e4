"""Serving TCP connections from inside a service, one task per connection.

A connection's handler runs in a task of the service that listens, so its log records
carry that service's address. A handler that raises is logged and its connection closed;
it never crashes the service or disturbs the other connections.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING

import trio

from meshnet.admission import ConnectionLimits, client_ip
from meshnet.listen import Listener, hold_fd_budget, open_listeners

if TYPE_CHECKING:
    from meshnet.service import Service

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT = 1.0
"""Seconds a graceful close waits for the peer to read our last bytes and close."""
DRAIN_SIZE = 65536

ConnectionHandler = Callable[[trio.SocketStream], Awaitable[None]]


async def serve_tcp(
    service: Service,
    handler: ConnectionHandler,
    host: str,
    port: int,
    *,
    backlog: int | None = None,
    limits: ConnectionLimits | None = None,
    shared: bool | None = None,
) -> tuple[int, trio.CancelScope]:
    """Listen on ``host:port`` (port 0 picks a free one) and serve each connection with
    ``handler`` in a task of ``service``.

    ``limits`` (default: ``maxclient`` 1024, no per-address limit) caps the connections
    served at once; one over a limit is closed at once, and logged. ``shared``: as for
    ``meshnet.listen.open_listeners`` (by default, a worker shares the port with the
    node's other workers).

    Returns the bound port and a scope that, when cancelled, stops listening and closes the
    connections it accepted (their handlers run inside it).
    """
    limits = ConnectionLimits() if limits is None else limits
    listeners = await open_listeners(host, port, backlog, shared=shared)
    scope = service.fork(_serve_all, listeners, _guarded(handler, limits), limits.maxclient)
    logger.info("listening on %s:%d", host, listeners[0].port)
    return listeners[0].port, scope


async def close_gracefully(stream: trio.abc.Stream, timeout: float = CLOSE_TIMEOUT) -> None:
    """Close after the peer has had the chance to read everything we sent.

    Closing a socket that still has unread input makes the kernel send a reset, which can
    destroy our last bytes (a status line, an error reply) before the peer reads them. So
    send FIN first and read until the peer closes too, for at most ``timeout`` seconds.
    TLS has no half-close: its close_notify goes first, then the same on the socket.
    """
    with trio.move_on_after(timeout):
        try:
            if isinstance(stream, trio.SSLStream):
                await stream.unwrap()
                stream = stream.transport_stream
            assert isinstance(stream, trio.abc.HalfCloseableStream)
            await stream.send_eof()
            while await stream.receive_some(DRAIN_SIZE):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
    await trio.aclose_forcefully(stream)


def peer_name(stream: trio.SocketStream) -> str:
    """``host:port`` of the other end, for log lines."""
    try:
        host, port = stream.socket.getpeername()[:2]
    except OSError:
        return "?"
    return f"{host}:{port}"


async def _serve_all(listeners: list[Listener], handler: ConnectionHandler, cap: int) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold_fd_budget, cap + len(listeners))
        for listener in listeners:
            nursery.start_soon(listener.serve, partial(nursery.start_soon, handler))


def _guarded(handler: ConnectionHandler, limits: ConnectionLimits) -> ConnectionHandler:
    async def serve(stream: trio.SocketStream) -> None:
        try:
            async with _admitted(stream, limits) as admitted:
                if admitted:
                    await handler(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            logger.info("connection %s lost: %s", peer_name(stream), exc)
        except Exception:
            logger.exception("connection %s: handler failed; connection closed", peer_name(stream))
        finally:
            await trio.aclose_forcefully(stream)

    return serve


@asynccontextmanager
async def _admitted(stream: trio.SocketStream, limits: ConnectionLimits) -> AsyncIterator[bool]:
    """Take a slot and the client's address for the block; False if a limit is reached."""
    host = client_host(stream)
    if not limits.take_slot():
        logger.warning("refused %s: maxclient %d reached", peer_name(stream), limits.maxclient)
        yield False
        return
    try:
        if not limits.take_address(host):
            logger.warning(
                "refused %s: max_per_address %s reached", peer_name(stream), limits.max_per_address
            )
            yield False
            return
        try:
            yield True
        finally:
            limits.free_address(host)
    finally:
        limits.free_slot()


def client_host(stream: trio.SocketStream) -> str:
    """The client's IP address, as the per-address limits count it."""
    try:
        host = stream.socket.getpeername()[0]
    except OSError:
        return "?"
    address = client_ip(host)
    return host if address is None else str(address)

"""Serving TCP connections from inside a service, one task per connection.

A connection's handler runs in a task of the service that listens, so its log records
carry that service's address. A handler that raises is logged and its connection closed;
it never crashes the service or disturbs the other connections.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from meshnet.service import Service

logger = logging.getLogger(__name__)

ConnectionHandler = Callable[[trio.SocketStream], Awaitable[None]]


async def serve_tcp(
    service: Service,
    handler: ConnectionHandler,
    host: str,
    port: int,
    *,
    backlog: int | None = None,
) -> tuple[int, trio.CancelScope]:
    """Listen on ``host:port`` (port 0 picks a free one) and serve each connection with
    ``handler`` in a task of ``service``.

    Returns the bound port and a scope that stops listening when cancelled (connections
    already accepted stay with their handlers until the service exits).
    """
    listeners = await trio.open_tcp_listeners(port, host=host, backlog=backlog)
    bound_port = listeners[0].socket.getsockname()[1]
    scope = service.fork(trio.serve_listeners, _guarded(handler), listeners)
    logger.info("listening on %s:%d", host, bound_port)
    return bound_port, scope


def peer_name(stream: trio.SocketStream) -> str:
    """``host:port`` of the other end, for log lines."""
    try:
        host, port = stream.socket.getpeername()[:2]
    except OSError:
        return "?"
    return f"{host}:{port}"


def _guarded(handler: ConnectionHandler) -> ConnectionHandler:
    async def serve(stream: trio.SocketStream) -> None:
        try:
            await handler(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            logger.info("connection %s lost: %s", peer_name(stream), exc)
        except Exception:
            logger.exception("connection %s: handler failed; connection closed", peer_name(stream))
        finally:
            await trio.aclose_forcefully(stream)

    return serve

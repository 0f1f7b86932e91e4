"""Listening TCP sockets that take every waiting connection in one go.

trio's ``SocketListener.accept`` takes one connection per turn of the event loop. Under
load a turn can take tens of milliseconds, so a burst of new clients (a thousand players
logging in while others play) would trickle in at a few dozen a second and time out. Here
the listener waits until the socket is readable, then accepts whatever the kernel holds.
"""

from __future__ import annotations

import errno
import logging
import resource
import socket
from collections.abc import Callable

import trio

from meshnet.context import current_service
from meshnet.errors import MeshnetError
from meshnet.workers import shared_ports

logger = logging.getLogger(__name__)

ACCEPT_BATCH = 128
"""Most connections taken in one turn, so a flood cannot hold the event loop."""
ACCEPT_RETRY = 0.1
"""Seconds to wait before accepting again when the process is out of file descriptors."""
_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
IGNORABLE_ACCEPT_ERRORS = (
    "EPERM",
    "ECONNABORTED",
    "EPROTO",
    "ENETDOWN",
    "ENOPROTOOPT",
    "EHOSTDOWN",
    "ENONET",
    "EHOSTUNREACH",
    "EOPNOTSUPP",
    "ENETUNREACH",
    "ENOSR",
    "ESOCKTNOSUPPORT",
    "EPROTONOSUPPORT",
    "ETIMEDOUT",
    "ECONNRESET",
)
"""What ``accept`` may fail with because of one client (it gave up between connecting
and being accepted, a firewall denied it, its network went away): that client is skipped.
trio's own list (``trio._highlevel_socket._ignorable_accept_errno_names``)."""
_IGNORABLE_ERRNOS = frozenset(
    getattr(errno, name) for name in IGNORABLE_ACCEPT_ERRORS if hasattr(errno, name)
)


class Listener:
    """One listening socket (``open_listeners`` makes them)."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._sock = sock

    @property
    def port(self) -> int:
        return self._sock.getsockname()[1]

    async def serve(self, start: Callable[[trio.SocketStream], object]) -> None:
        """Accept forever, calling ``start(stream)`` (which must not block) for each
        connection; runs out of file descriptors gracefully; closes the socket at the end."""
        try:
            while True:
                try:
                    streams = await self.accept()
                except OSError as exc:
                    if exc.errno not in _CAPACITY_ERRNOS:
                        raise
                    logger.error("accept failed (%s); retrying in %gs", exc, ACCEPT_RETRY)
                    await trio.sleep(ACCEPT_RETRY)
                    continue
                for stream in streams:
                    start(stream)
        finally:
            self.close()

    def close(self) -> None:
        """Stop listening (``serve`` does at its end)."""
        trio.lowlevel.notify_closing(self._sock)
        self._sock.close()

    async def accept(self) -> list[trio.SocketStream]:
        """Wait for connections; return every one waiting (at least one, at most a batch)."""
        while True:
            await trio.lowlevel.wait_readable(self._sock)
            streams: list[trio.SocketStream] = []
            for _ in range(ACCEPT_BATCH):
                try:
                    client, _ = self._sock.accept()
                except BlockingIOError:
                    break
                except OSError as exc:
                    if exc.errno in _IGNORABLE_ERRNOS:
                        continue
                    if streams:
                        break  # hand over what we have; the error will come back next turn
                    raise
                streams.append(trio.SocketStream(trio.socket.from_stdlib_socket(client)))
            if streams:
                return streams


async def open_listeners(
    host: str, port: int, backlog: int | None = None, *, shared: bool | None = None
) -> list[Listener]:
    """Listen on ``host:port`` (port 0: a free one) on every address ``host`` names.

    ``shared``: bind with ``SO_REUSEPORT``, so the node's other worker processes listen on
    the same port and the kernel spreads connections over them; None (the default) means
    "when this process is a worker" (``meshnet.workers``). Listeners each worker must own
    alone (cluster links, console, metrics) pass False.

    ``ListenError`` says which service could not listen where, and why (the port is
    taken, the address is not this machine's, ...)."""
    if shared is None:
        shared = shared_ports()
    try:
        if shared:
            sockets = await _bind_shared(host, port, backlog)
        else:
            opened = await trio.open_tcp_listeners(port, host=host, backlog=backlog)
            sockets = [socket.socket(fileno=listener.socket.detach()) for listener in opened]
    except OSError as exc:
        raise ListenError(f"{_who()} cannot listen on {host}:{port}: {exc}") from exc
    return [Listener(sock) for sock in sockets]


FD_RESERVE = 64
"""File descriptors a node needs besides its connections: stdio, logs, databases, trio's
own wake-up pipes and epoll."""
_budgets: list[int] = []
"""File descriptors the open listeners of this process may hold at once, one entry each."""


async def hold_fd_budget(count: int) -> None:
    """Count ``count`` file descriptors (a listener's cap plus its listening sockets) in
    this process's budget until cancelled (when the listener stops)."""
    _budgets.append(count)
    try:
        await trio.sleep_forever()
    finally:
        _budgets.remove(count)


def warn_if_fd_limit_low() -> None:
    """Raise the soft file-descriptor limit toward what the open listeners may need (their
    caps, plus ``FD_RESERVE``), as far as the hard limit allows; warn if it stays below."""
    needed = sum(_budgets) + FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            logger.info("raised the file descriptor limit from %d to %d", soft, target)
            soft = target
        except (ValueError, OSError) as exc:
            logger.info("could not raise the file descriptor limit: %s", exc)
    if soft < needed:
        logger.warning(
            "the file descriptor limit is %d, below the %d the listeners may need "
            "(their connection caps add up to %d, plus %d for the rest): connections past "
            "the limit will fail to be accepted; raise it (ulimit -n %d) or lower maxclient",
            soft,
            needed,
            sum(_budgets),
            FD_RESERVE,
            needed,
        )


async def _bind_shared(host: str, port: int, backlog: int | None) -> list[socket.socket]:
    """trio's ``open_tcp_listeners``, with ``SO_REUSEPORT`` set before each bind."""
    infos = await trio.socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(socket.SOMAXCONN if backlog is None else backlog)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class ListenError(MeshnetError):
    """A listening socket could not be opened."""


def _who() -> str:
    ctx = current_service.get()
    if ctx is None:
        return "the node"
    cls = type(ctx.instance)
    named = f"{', '.join(sorted(ctx.names))} " if ctx.names else ""
    return f"service {named}({cls.__module__}:{cls.__qualname__}, {ctx.label})"

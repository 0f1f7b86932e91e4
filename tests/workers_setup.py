"""Shared by the tests of nodes run as ``workers = N``: which worker a connection landed on.

The kernel spreads the connections to a shared port over the workers (SO_REUSEPORT, by a
hash of the addresses), so a test cannot choose where one lands; it connects, asks each
worker's debug console (``netstat``) which one holds the connection, and connects again
until it has one on the worker it wants. Each try lands on a given worker of two with
probability about 1/2, so ``ATTEMPTS`` tries all missing is a 2**-64 event: not a flake.
"""

from __future__ import annotations

from collections.abc import Callable

import trio
from console_client import connect

from demo_game.launcher import free_ports

HOST = "127.0.0.1"
WAIT = 10.0
"""Seconds to wait for something that should happen at once (a hang guard)."""
ATTEMPTS = 64


class PortPicker:
    """Free loopback ports, each different from those it gave before (``free_ports``
    alone may give a port it gave a moment ago, once nobody holds it)."""

    def __init__(self) -> None:
        self.taken: set[int] = set()

    def block(self, count: int = 1) -> int:
        """The first of ``count`` consecutive free ports (worker i takes first + i)."""
        while True:
            first = free_ports(count)
            ports = set(range(first, first + count))
            if not ports & self.taken:
                self.taken |= ports
                return first


async def netstat(console: int) -> str:
    """The ``netstat`` of the worker whose debug console is on ``console``."""
    session, _ = await connect(console)
    async with session.stream:
        return await session.ok("netstat")


async def worker_holding(consoles: list[int], stream: trio.SocketStream) -> int:
    """The index of the worker holding the other end of ``stream``."""
    peer = f"{HOST}:{stream.socket.getsockname()[1]}"
    with trio.fail_after(WAIT):
        while True:
            for index, console in enumerate(consoles):
                if peer in (await netstat(console)).split():
                    return index
            await trio.sleep(0.02)


async def connect_to_worker(
    port: int, consoles: list[int], wanted: Callable[[int], bool]
) -> tuple[trio.SocketStream, int]:
    """A connection to ``HOST:port`` that landed on a worker for which ``wanted(index)``
    is true, and that worker's index."""
    for _ in range(ATTEMPTS):
        stream = await trio.open_tcp_stream(HOST, port)
        index = await worker_holding(consoles, stream)
        if wanted(index):
            return stream, index
        await stream.aclose()
    raise AssertionError(f"no connection to port {port} landed where wanted in {ATTEMPTS} tries")

"""Shared by the tests of nodes run as ``workers = N``: which worker a connection landed on.

The kernel spreads the connections to a shared port over the workers (SO_REUSEPORT, by a
hash of the addresses), so a test cannot choose where one lands; it connects, asks each
worker's debug console (``netstat``) which one holds the connection, and connects again
until it has one on the worker it wants. Each try lands on a given worker of two with
probability about 1/2, so ``ATTEMPTS`` tries all missing is a 2**-64 event: not a flake.
"""

from __future__ import annotations

import json
import random
import socket
from collections.abc import Callable
from pathlib import Path

import trio
from console_client import connect

from meshnet.workers import WORKER_ENV

HOST = "127.0.0.1"
WAIT = 10.0
"""Seconds to wait for something that should happen at once (a hang guard)."""
ATTEMPTS = 64
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_PORT = 10000


class PortPicker:
    """Free loopback ports below the kernel's range of ephemeral ports, each different
    from those it gave before.

    Ports from ``bind(("127.0.0.1", 0))`` come from the ephemeral range, where every
    outgoing connection on this machine (the tests' own, the workers' links, another
    engineer's benchmarks) also takes its local port: one of them could take a chosen
    port before a worker binds it. Below that range only listeners take ports."""

    def __init__(self) -> None:
        self.taken: set[int] = set()
        self.below = int(EPHEMERAL_RANGE.read_text().split()[0])

    def block(self, count: int = 1) -> int:
        """The first of ``count`` consecutive free ports (worker i takes first + i)."""
        while True:
            first = random.randrange(LOWEST_PORT, self.below - count)
            ports = set(range(first, first + count))
            if not ports & self.taken and all(map(_bindable, ports)):
                self.taken |= ports
                return first


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def worker_pids(supervisor: int) -> dict[int, int]:
    """The worker processes of supervisor ``supervisor`` now: index -> pid (Linux /proc;
    trio starts each from a thread of its own, so look at every thread's children)."""
    tasks = Path(f"/proc/{supervisor}/task").glob("*/children")
    pids = [int(child) for task in tasks for child in task.read_text().split()]
    workers = {}
    for pid in pids:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):
            continue  # it just exited (a zombie's environ cannot be read)
        for entry in environ:
            if entry.startswith(WORKER_ENV.encode() + b"="):
                workers[json.loads(entry.partition(b"=")[2])["index"]] = pid
    return workers


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

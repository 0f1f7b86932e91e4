"""Runtime bench: meshnet local calls and sends against bare-trio baselines, in one run.

Each round measures a meshnet figure and its baseline back to back, and the ratio of
that round is kept; the printed figures and ratios are the medians over the rounds, so a
passing hiccup of a shared machine moves neither much. Besides the two ratios:

  call_100        calls/s with 100 callers at once (tasks of one service) to one echo
  idle_service    RSS per idle service, from starting 10,000 of them in a fresh node
  *_metrics_on    the same calls and sends on a second node that serves its metrics
                  (``meshnet.metrics``: the node observed, CPU sampled), measured right
                  before or after the same on a node without metrics (``*_metrics_off``),
                  each node fresh, in turn from round to round; ``*_metrics_on_vs_off``
                  is what metrics cost, and
                  ``metrics_on_vs_off`` the median of both kinds' per-round ratios

The nodes keep CPython's garbage-collector setting (``open_node``'s default), as the bare
baselines in the same process do.

Prints ``BENCH <name> <value> <unit>`` and ``RATIO <name> <value>`` lines (DESIGN §8).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time

import trio

from meshnet import Node, Service, command, open_node
from meshnet.metrics import MetricsServer

BUFFER = 4096
"""Memory-channel buffer of the one-way baseline; the same as a service's mailbox."""
CALLERS = 100
IDLE_SERVICES = 10_000


class Echo(Service):
    mailbox_size = BUFFER

    async def init(self) -> None:
        self.received = 0

    @command
    async def ping(self, value: int) -> int:
        return value

    @command
    async def note(self, value: int) -> None:
        self.received += 1

    @command
    async def count(self) -> int:
        return self.received


class Driver(Service):
    """Runs the meshnet side of the bench from inside a service, as game code would."""

    @command
    async def calls(self, target: int, n: int) -> float:
        start = time.perf_counter()
        for i in range(n):
            await self.call(target, "ping", i)
        return time.perf_counter() - start

    @command
    async def concurrent_calls(self, target: int, n: int, callers: int) -> float:
        async def caller() -> None:
            for i in range(n // callers):
                await self.call(target, "ping", i)

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(callers):
                nursery.start_soon(caller)
        return time.perf_counter() - start

    @command
    async def sends(self, target: int, n: int) -> float:
        expected = await self.call(target, "count") + n
        start = time.perf_counter()
        for i in range(n):
            await self.send(target, "note", i)
        while await self.call(target, "count") < expected:
            await trio.sleep(0)
        return time.perf_counter() - start


class Idle(Service):
    """A service that only exists: the memory figure's unit."""


async def bare_pingpong(n: int) -> float:
    """Two memory channels, a server task answering each request on the reply channel."""
    req_send, req_recv = trio.open_memory_channel[int](0)
    rep_send, rep_recv = trio.open_memory_channel[int](0)

    async def server() -> None:
        async for value in req_recv:
            await rep_send.send(value)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        start = time.perf_counter()
        for i in range(n):
            await req_send.send(i)
            await rep_recv.receive()
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    return elapsed


async def bare_oneway(n: int) -> float:
    """One memory channel of the mailbox's buffer size, a consumer counting messages."""
    send, recv = trio.open_memory_channel[int](BUFFER)
    done = trio.Event()

    async def consumer() -> None:
        count = 0
        async for _ in recv:
            count += 1
            if count == n:
                done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        start = time.perf_counter()
        for i in range(n):
            await send.send(i)
        await done.wait()
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    return elapsed


async def idle_service_bytes(count: int) -> float:
    """RSS growth per service while ``count`` idle services run in a fresh node."""
    async with open_node() as node:
        gc.collect()
        before = _rss()
        for _ in range(count):
            await node.newservice(Idle)
        gc.collect()
        return (_rss() - before) / count


async def main(n: int, rounds: int) -> None:
    rates: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    async with open_node() as node:
        echo = await node.newservice(Echo)
        driver = await node.newservice(Driver)
        for number in range(rounds):
            round_rates = {
                "bare_pingpong": n / await bare_pingpong(n),
                "meshnet_call": await _rate(node, driver, "calls", echo, n),
                "bare_channel_send": n / await bare_oneway(n),
                "meshnet_send": await _rate(node, driver, "sends", echo, n),
                "meshnet_call_100": await _rate(node, driver, "concurrent_calls", echo, n, CALLERS),
            }
            round_rates.update(await _metrics_pair(n, on_first=number % 2 == 0))
            for name, rate_now in round_rates.items():
                rates.setdefault(name, []).append(rate_now)
            for name, (mesh, bare) in {
                "call_vs_bare_pingpong": ("meshnet_call", "bare_pingpong"),
                "send_vs_bare_channel": ("meshnet_send", "bare_channel_send"),
                "call_metrics_on_vs_off": ("meshnet_call_metrics_on", "meshnet_call_metrics_off"),
                "send_metrics_on_vs_off": ("meshnet_send_metrics_on", "meshnet_send_metrics_off"),
            }.items():
                ratios.setdefault(name, []).append(round_rates[mesh] / round_rates[bare])
    idle = await idle_service_bytes(IDLE_SERVICES)
    for name, values in rates.items():
        print(f"BENCH runtime.{name} {statistics.median(values):.0f} msgs/s")
    print(f"BENCH runtime.idle_service {idle / 1024:.1f} KiB")
    for name, values in ratios.items():
        rounds_text = " ".join(f"{value:.2f}" for value in values)
        print(f"# {name} per round: {rounds_text}")
        print(f"RATIO runtime.{name} {statistics.median(values):.2f}")
    metrics_cost = ratios["call_metrics_on_vs_off"] + ratios["send_metrics_on_vs_off"]
    print(f"RATIO runtime.metrics_on_vs_off {statistics.median(metrics_cost):.2f}")


async def _metrics_pair(n: int, on_first: bool) -> dict[str, float]:
    """Calls and sends on a fresh node without metrics and on one serving its metrics,
    back to back, in the order asked."""
    rates: dict[str, float] = {}
    for metrics in (True, False) if on_first else (False, True):
        rates.update(await _on_fresh_node(n, metrics))
    return rates


async def _on_fresh_node(n: int, metrics: bool) -> dict[str, float]:
    """Calls and sends on a node of their own, serving its metrics or not; it is gone
    afterwards (and the CPU sampler, process-wide, with it)."""
    async with open_node(node_id=2, name="metrics" if metrics else "plain") as node:
        if metrics:
            await node.newservice(MetricsServer, "127.0.0.1", 0)
        echo = await node.newservice(Echo)
        driver = await node.newservice(Driver)
        suffix = "on" if metrics else "off"
        return {
            f"meshnet_call_metrics_{suffix}": await _rate(node, driver, "calls", echo, n),
            f"meshnet_send_metrics_{suffix}": await _rate(node, driver, "sends", echo, n),
        }


async def _rate(node: Node, driver: int, what: str, echo: int, n: int, *more: int) -> float:
    return n / await node.call(driver, what, echo, n, *more, timeout=None)


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000, help="messages per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the medians count")
    options = parser.parse_args()
    trio.run(main, options.messages, options.rounds)

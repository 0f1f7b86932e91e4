"""Runtime bench: meshnet local call and send against bare-trio baselines, in one run.

Prints ``BENCH <name> <value> <unit>`` and ``RATIO <name> <value>`` lines (DESIGN §8).
Each figure is the best of several rounds, so a passing hiccup on the machine does not
decide the ratio.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable

import trio

from meshnet import Service, command, open_node

BUFFER = 4096
"""Memory-channel buffer of the one-way baseline; the same as a service's mailbox."""


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
    async def sends(self, target: int, n: int) -> float:
        expected = await self.call(target, "count") + n
        start = time.perf_counter()
        for i in range(n):
            await self.send(target, "note", i)
        while await self.call(target, "count") < expected:
            await trio.sleep(0)
        return time.perf_counter() - start


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


async def best_rate(run: Callable[[int], Awaitable[float]], n: int, rounds: int) -> float:
    return max([n / await run(n) for _ in range(rounds)])


async def main(n: int, rounds: int) -> None:
    async with open_node() as node:
        echo = await node.newservice(Echo)
        driver = await node.newservice(Driver)

        async def mesh_calls(count: int) -> float:
            return await node.call(driver, "calls", echo, count)

        async def mesh_sends(count: int) -> float:
            return await node.call(driver, "sends", echo, count)

        figures = {
            "bare_pingpong": await best_rate(bare_pingpong, n, rounds),
            "meshnet_call": await best_rate(mesh_calls, n, rounds),
            "bare_channel_send": await best_rate(bare_oneway, n, rounds),
            "meshnet_send": await best_rate(mesh_sends, n, rounds),
        }
    for name, value in figures.items():
        print(f"BENCH runtime.{name} {value:.0f} msgs/s")
    ratios = {
        "call_vs_bare_pingpong": figures["meshnet_call"] / figures["bare_pingpong"],
        "send_vs_bare_channel": figures["meshnet_send"] / figures["bare_channel_send"],
    }
    for name, value in ratios.items():
        print(f"RATIO runtime.{name} {value:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000, help="messages per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per figure; the best counts")
    options = parser.parse_args()
    trio.run(main, options.messages, options.rounds)

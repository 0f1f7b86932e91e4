"""Redis discovery bench: how long until the other nodes' views follow a change.

Starts its own redis-server (the tests' ``RedisServer``: a free loopback port, AOF) and
measures, as medians over ``--rounds``, with a lease of ``--ttl`` seconds:

  join    a node's start began → another node has it in its view (the new node's claim,
          its subscription and first read of the view, and the others' pub/sub)
  name    ``cluster.register`` returned → another node knows the name's home
  leave   a node's clean stop was asked for → it is gone from another node's view
  crash   a node process is SIGKILLed → it is gone from another node's view (lease expiry
          plus the rescan; expect about ttl + ttl/3 at worst)

Prints ``BENCH <name> <value> <unit>`` lines (DESIGN §8).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import trio

TESTS = Path(__file__).resolve().parents[1] / "tests" / "cluster"
sys.path.insert(0, str(TESTS))  # the tests' Redis server, node processes and set-up

from cluster_setup import HOST, WAIT, NodeProcess, free_port, node_config  # noqa: E402
from redis_server import RedisServer  # noqa: E402
from redis_setup import redis_node, redis_table  # noqa: E402

from meshnet.cluster import of  # noqa: E402


async def main(rounds: int, ttl: float, workdir: Path) -> None:
    server = RedisServer(workdir / "redis")
    server.start()
    try:
        figures: dict[str, list[float]] = {"join": [], "name": [], "leave": [], "crash": []}
        for round_number in range(rounds):
            table = redis_table(server.url, f"bench{round_number}", ttl=ttl)
            await _measure_in_process(table, figures)
            await _measure_crash(table, workdir / f"round{round_number}", figures)
        for name, values in figures.items():
            print(f"BENCH redis_discovery.{name} {statistics.median(values) * 1000:.1f} ms")
    finally:
        server.stop()


async def _measure_in_process(table: dict, figures: dict[str, list[float]]) -> None:
    async with redis_node("a", 1, table) as a, trio.open_nursery() as nursery:
        stop_b = trio.Event()
        began = trio.current_time()
        b = await nursery.start(_node_until, "b", 2, table, stop_b)
        await _until(lambda: of(a).discovery.member("b"))
        figures["join"].append(trio.current_time() - began)
        await of(b).register("lobby", b.lookup(".cluster"))
        figures["name"].append(await _until(lambda: of(a).discovery.home_of("lobby")))
        stop_b.set()
        figures["leave"].append(await _until(lambda: of(a).discovery.member("b") is None))


async def _node_until(name, node_id, table, stop: trio.Event, task_status) -> None:
    async with redis_node(name, node_id, table) as node:
        task_status.started(node)
        await stop.wait()


async def _measure_crash(table: dict, workdir: Path, figures: dict[str, list[float]]) -> None:
    workdir.mkdir(parents=True)
    async with redis_node("a", 1, table) as a:
        b_table = {**table, "address": f"{HOST}:{free_port()}"}
        service = "redis_node_services:Member"
        b = NodeProcess(node_config(workdir, "b", b_table, service, [[], []], node_id=2))
        b.start()
        try:
            await _until(lambda: of(a).discovery.member("b"))
            b.kill()
            figures["crash"].append(await _until(lambda: of(a).discovery.member("b") is None))
        finally:
            b.stop()


async def _until(predicate: Callable[[], object]) -> float:
    """Seconds until ``predicate()`` is true, polled every millisecond."""
    began = trio.current_time()
    with trio.fail_after(WAIT):
        while not predicate():
            await trio.sleep(0.001)
    return trio.current_time() - began


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ttl", type=float, default=1.0)
    arguments = parser.parse_args()
    print(f"BENCH redis_discovery.ttl {arguments.ttl * 1000:.0f} ms")
    with tempfile.TemporaryDirectory() as directory:
        trio.run(main, arguments.rounds, arguments.ttl, Path(directory))

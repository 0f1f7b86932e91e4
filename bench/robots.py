"""Robots bench: 1,000 fresh simulated players sign up, sign in and play (DESIGN §7, §8).

The game runs in a child process, ``python -m meshnet node`` on ``make demo``'s config
(``demo_game/node.toml``: the default scrypt cost, n = 16384, and every limit) with only
the ports and the accounts file changed: free ports, a throwaway file, so every robot is
new. The robots run here (``demo_game.robots``): each signs in (refused: no account yet),
signs up, signs in and logs in, retrying ``busy`` answers, then all ping back to back for
``--ping-seconds``; both processes get enough open files for every connection.

Sign-in is bound by password hashing: a fresh robot needs three hashes (its first signin
hashes too, as long as a wrong password would). So the bench measures, in this process
before and after the robots, the raw rate of a hash pool like the node's (as many threads
as cores, the same cost), takes the mean of the two, and prints
``RATIO robots.signins_vs_hash_capacity``: sign-ins per second over that rate divided by
three (1: every hash the cores could do went to a sign-in; the
target is at least 0.8). Then the robots' summary and ``BENCH`` lines: logins/s (until the
last login), pings/s, ping latency p50 and p99, busy answers retried, and the number of
robots that failed (the target is 0).
"""

from __future__ import annotations

import argparse
import math
import secrets
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import trio

from demo_game.accounts import ScryptCost, hash_password
from demo_game.hashpool import HashPool
from demo_game.launcher import free_port, node_config, start_node, stop_node, wait_listening
from demo_game.robots import LOGIN_DEADLINE, ensure_fd_limit, run_robots
from demo_game.settings import parse_settings
from meshnet.config import load_config

HOST = "127.0.0.1"
DEMO_CONFIG = Path(__file__).resolve().parents[1] / "demo_game" / "node.toml"
HASHES_PER_FRESH_ROBOT = 3
"""signin (no account yet, hashed all the same), signup, signin."""
RAW_HASHES_PER_THREAD = 20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="robots (default 1000)")
    parser.add_argument(
        "--ping-seconds", type=float, default=10.0, help="of the ping phase (default 10)"
    )
    options = parser.parse_args()
    ensure_fd_limit(options.count)  # the node, started below, inherits the limit
    demo = parse_settings(*load_config(DEMO_CONFIG).start_args)
    before, threads = trio.run(raw_hash_rate, demo.scrypt)
    hub = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-robots-") as scratch:
        config = Path(scratch) / "node.toml"
        listen = {"address": HOST, "port": 0}
        settings = {
            "hub": {**demo.hub, "address": HOST, "port": hub, "ws_port": 0},
            "login": {**listen, **demo.login_limits},
            "msgserver": {**demo.msgserver, **listen},
            "web": listen,
            "accounts": {
                "path": str(Path(scratch) / "accounts.sqlite3"),
                "scrypt_n": demo.scrypt.n,
                "scrypt_r": demo.scrypt.r,
                "scrypt_p": demo.scrypt.p,
                **demo.hashing,
            },
            "signin": demo.signin,
            "agent": {"reconnect_window": demo.reconnect_window},
        }
        config.write_text(node_config(settings, log_level="WARNING"))
        node = start_node(config)
        try:
            wait_listening(node, HOST, hub)
            duration = LOGIN_DEADLINE + options.ping_seconds + 10
            run = partial(run_robots, HOST, hub, options.count, duration)
            summary = trio.run(partial(run, progress=sys.stderr, ping_seconds=options.ping_seconds))
        finally:
            stop_node(node)
    after, _ = trio.run(raw_hash_rate, demo.scrypt)
    hashes_per_s = (before + after) / 2  # a shared machine's load drifts: both ends count
    print("\n".join(summary.lines()))
    print(f"BENCH demo.raw_hashes_before {before:.1f} hashes/s ({threads} threads)")
    print(f"BENCH demo.raw_hashes_after {after:.1f} hashes/s ({threads} threads)")
    figures = [
        ("demo.robots_logins", summary.logins_per_s, ".1f", "logins/s"),
        ("demo.robots_pings", summary.pings_per_s, ".1f", "pings/s"),
        ("demo.robots_ping_p50", summary.p50_ms, ".2f", "ms"),
        ("demo.robots_ping_p99", summary.p99_ms, ".2f", "ms"),
    ]
    for name, value, spec, unit in figures:
        if value is not None:  # nothing measured: no figure, and the bench fails below
            print(f"BENCH {name} {value:{spec}} {unit}")
    print(f"BENCH demo.robots_busy_retried {summary.retried} requests")
    print(f"BENCH demo.robots_failed {sum(summary.errors.values())} robots")
    if summary.logins_per_s is not None:
        capacity = hashes_per_s / HASHES_PER_FRESH_ROBOT
        print(f"RATIO robots.signins_vs_hash_capacity {summary.logins_per_s / capacity:.2f}")
    return 0 if all(value is not None for _, value, _, _ in figures) else 1


async def raw_hash_rate(cost: ScryptCost) -> tuple[float, int]:
    """Hashes per second of a pool like the node's, kept busy; and its thread count."""
    pool = HashPool(max_wait=math.inf)
    count = RAW_HASHES_PER_THREAD * pool.threads
    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(pool.run, hash_password, "password", secrets.token_bytes(16), cost)
    rate = count / (time.perf_counter() - started)
    await pool.stop()
    return rate, pool.threads


if __name__ == "__main__":
    sys.exit(main())

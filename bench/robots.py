"""Robots bench: 1,000 simulated players against the demo game for 20 s (DESIGN §7, §8).

The game runs in a child process, ``python -m meshnet node`` on a config written to a
temporary directory: free ports, a throwaway accounts file, and scrypt's cost lowered
(n = 1024 instead of 16384) so that 1,000 signups measure the game rather than the
password hash. The robots run here (``demo_game.robots``), each signing up, signing in,
logging in and pinging back to back; both processes get enough open files for every
connection. Prints the robots' summary, then ``BENCH`` lines: logins/s (until the last
login), pings/s, ping latency p50 and p99, and the number of robots that failed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from functools import partial
from pathlib import Path

import trio

from demo_game.launcher import free_port, node_config, start_node, stop_node, wait_listening
from demo_game.robots import ensure_fd_limit, run_robots

HOST = "127.0.0.1"
SCRYPT = {"scrypt_n": 2**10, "scrypt_r": 8, "scrypt_p": 1}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="robots (default 1000)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds (default 20)")
    options = parser.parse_args()
    ensure_fd_limit(options.count)  # the node, started below, inherits the limit
    hub = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-robots-") as scratch:
        config = Path(scratch) / "node.toml"
        listen = {"address": HOST, "port": 0}
        settings = {
            "hub": {"address": HOST, "port": hub, "maxclient": options.count + 100},
            "login": listen,
            "msgserver": {**listen, "servername": "demo"},
            "web": listen,
            "accounts": {"path": str(Path(scratch) / "accounts.sqlite3"), **SCRYPT},
        }
        config.write_text(node_config(settings, log_level="WARNING"))
        node = start_node(config)
        try:
            wait_listening(node, HOST, hub)
            run = partial(run_robots, HOST, hub, options.count, options.duration)
            summary = trio.run(partial(run, progress=sys.stderr))
        finally:
            stop_node(node)
    print("\n".join(summary.lines()))
    figures = [
        ("demo.robots_logins", summary.logins_per_s, ".1f", "logins/s"),
        ("demo.robots_pings", summary.pings_per_s, ".1f", "pings/s"),
        ("demo.robots_ping_p50", summary.p50_ms, ".2f", "ms"),
        ("demo.robots_ping_p99", summary.p99_ms, ".2f", "ms"),
    ]
    for name, value, spec, unit in figures:
        if value is not None:  # nothing measured: no figure, and the bench fails below
            print(f"BENCH {name} {value:{spec}} {unit}")
    print(f"BENCH demo.robots_failed {sum(summary.errors.values())} robots")
    return 0 if all(value is not None for _, value, _, _ in figures) else 1


if __name__ == "__main__":
    sys.exit(main())

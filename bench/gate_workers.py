"""Gate across cores: echo over ``workers = 2`` against ``workers = 1``, in one run.

The server is a real ``python -m meshnet node CONFIG`` process tree: the gate of
``examples/echo_workers.py``, which gives each connection an agent of its own whose
``on_client`` writes the packet back (skynet's gate + agent echo, as in ``bench/gate.py``),
with ``[node] workers = N``; with N = 2 the
two workers share the port (SO_REUSEPORT) and the kernel spreads the connections over
them. The workers need no cluster here: an echo stays on the worker it landed on.

The load generator is ``--loadgens`` processes (default 2) of ``bench/loadgen.c`` (built
by ``bench/gate.py``'s ``build_loadgen``; its Python stand-in, ``bench/gate.py --load``,
where there is no C compiler), each with its share of the connections, closed loop: one
16-byte packet in flight per connection. On a two-core machine the generator shares the
cores with the workers (the C one takes less of them), so the bench also prints the cores
the generator and the server used (CPU seconds per second of the run) and the server's
CPU time per echo, which says more than the rate when the machine is busy with something
else.

Each round runs both configurations once (their order alternating); the printed figures
are medians over the rounds, and the RATIO the median of the same-round ratios. Prints
``BENCH <name> <value> <unit>`` and ``RATIO <name> <value>`` lines (DESIGN §8).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gate import build_loadgen, cpu_seconds, load_command

HOST = "127.0.0.1"
PAYLOAD = 16
WARMUP = 0.5
"""Seconds of load before measuring starts."""
START_TIMEOUT = 30.0
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def main(connections: int, seconds: float, rounds: int, loadgens: int) -> None:
    loadgen = build_loadgen()
    runs: dict[int, list[dict]] = {1: [], 2: []}
    ratios = []
    with tempfile.TemporaryDirectory() as folder:
        for round_number in range(rounds):
            print(f"round {round_number + 1} of {rounds}", file=sys.stderr)
            order = (1, 2) if round_number % 2 == 0 else (2, 1)
            figures = {}
            for workers in order:
                with echo_server(Path(folder), workers) as (port, pid):
                    figures[workers] = measure(loadgen, port, pid, connections, seconds, loadgens)
                runs[workers].append(figures[workers])
            ratios.append(figures[2]["rate"] / figures[1]["rate"])
    name = f"gate_workers.echo_16B_{connections}c"
    lines = []
    for workers, measured in runs.items():
        median = {key: statistics.median(run[key] for run in measured) for key in measured[0]}
        lines += [
            f"BENCH {name}_workers{workers} {median['rate']:.0f} msgs/s",
            f"BENCH {name}_workers{workers}_server_cpu {median['server_cpu']:.1f} us/msg",
            f"BENCH {name}_workers{workers}_server_cores {median['server_cores']:.2f} cores",
            f"BENCH {name}_workers{workers}_loadgen_cores {median['loadgen_cores']:.2f} cores",
        ]
    lines.append(f"BENCH gate_workers.loadgen_processes {loadgens} processes")
    lines.append(f"BENCH gate_workers.cores {os.cpu_count()} cores")
    lines.append(f"RATIO {name}_workers2_vs_1 {statistics.median(ratios):.2f}")
    print("\n".join(lines))


# --- the server ----------------------------------------------------------------------


@contextmanager
def echo_server(folder: Path, workers: int) -> Iterator[tuple[int, int]]:
    """``meshnet node`` with ``workers`` workers of the echo gate; yield its port and pid."""
    port = free_port()
    config = folder / f"echo{workers}.toml"
    config.write_text(
        f'[node]\nname = "echo"\nid = 1\nworkers = {workers}\npaths = [{str(EXAMPLES)!r}]\n'
        f'log_level = "WARNING"\n[start]\nservice = "echo_workers:Echo"\n'
        f'args = [{{ address = "{HOST}", port = {port}, maxclient = 8192 }}]\n'
    )
    ready, write_end = os.pipe()
    process = subprocess.Popen(
        [sys.executable, "-m", "meshnet", "node", str(config)],
        env={**os.environ, "MESHNET_READY_FD": str(write_end)},
        pass_fds=(write_end,),
    )
    os.close(write_end)
    try:
        with os.fdopen(ready, "rb") as pipe:
            if pipe.readline() != b"ready\n":
                raise SystemExit(f"the echo node ({workers} workers) did not start")
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(START_TIMEOUT)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of ``pid`` and its children (the workers), Linux."""
    tasks = Path(f"/proc/{pid}/task").glob("*/children")
    children = [int(child) for task in tasks for child in task.read_text().split()]
    return sum(cpu_seconds(each) for each in (pid, *children))


# --- the load ------------------------------------------------------------------------


def measure(
    loadgen: Path | None, port: int, pid: int, connections: int, seconds: float, loadgens: int
) -> dict:
    """Run the load generators together; the summed rate and the CPU each side used."""
    shares = [connections // loadgens + (i < connections % loadgens) for i in range(loadgens)]
    server_before = tree_cpu_seconds(pid)
    loadgen_before = _children_cpu_seconds()
    started = time.perf_counter()
    generators = [
        subprocess.Popen(
            _load_command(loadgen, port, seconds, share), stdout=subprocess.PIPE, text=True
        )
        for share in shares
    ]
    results = []
    for generator in generators:
        output, _ = generator.communicate()
        if generator.returncode != 0:
            raise SystemExit("a load generator failed")
        results.append(json.loads(output))
    wall = time.perf_counter() - started
    echoed = sum(result["total"] for result in results)
    server_cpu = tree_cpu_seconds(pid) - server_before
    return {
        "rate": sum(result["rate"] for result in results),
        "server_cpu": server_cpu / echoed * 1e6,
        "server_cores": server_cpu / wall,
        "loadgen_cores": (_children_cpu_seconds() - loadgen_before) / wall,
    }


def _load_command(loadgen: Path | None, port: int, seconds: float, share: int) -> list[str]:
    command = [*load_command(loadgen), HOST, str(port), str(share), str(PAYLOAD)]
    return [*command, str(WARMUP), str(seconds)]


def _children_cpu_seconds() -> float:
    """CPU time of this process's children that have ended (the load generators)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=3.0, help="measured time per run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--loadgens", type=int, default=2, help="load generator processes")
    options = parser.parse_args()
    main(options.connections, options.seconds, options.rounds, options.loadgens)

"""Gate bench: echo over a meshnet gate against a bare trio echo server, in one run.

Each server runs in its own process (``--serve KIND``) and the load generator in another
(``--load``), so on a two-core machine the server has a core to itself. The load
generator is plain Python on ``selectors`` (no trio): every connection sends one packet,
waits for its echo and sends the next, and each round trip's latency is recorded.

Servers:
  bare     trio, one task per connection: split 2-byte frames, send each packet back
  gate     a meshnet GateServer that forwards each connection to its own agent service,
           whose on_client writes the packet back (skynet's gate + agent echo)
  gate_metrics  the same, on a node that serves its metrics (``meshnet.metrics``), for
           the ``echo_*_metrics_on_vs_off`` ratios: what metrics cost
  trivial  selectors echo of raw bytes, no framing: the load generator's own ceiling,
           to show that the generator is not what limits the other figures

Every figure is the best of ``--rounds`` runs, the servers taking turns, so a passing
slowdown of a shared machine does not decide a ratio. Besides messages/s and p50/p99
round-trip latency, ``server_cpu`` is the server process's CPU time per echoed message,
which moves much less with machine noise than the rates do. ``loadgen_headroom`` is the
trivial server's rate over the fastest real server's: above 1, the load generator is not
what limits the figures.

Prints ``BENCH <name> <value> <unit>`` and ``RATIO <name> <value>`` lines (DESIGN §8).
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import trio

from meshnet import Service, command, open_node
from meshnet.gate.connections import connections
from meshnet.gate.framing import Splitter, pack
from meshnet.gate.gateserver import GateServer
from meshnet.metrics import MetricsServer

HOST = "127.0.0.1"
SIZES = {"16B": 16, "1KiB": 1024}
CONNECTIONS = (1, 100, 1000)
WARMUP = 0.3
"""Seconds of load before measuring starts."""
SERVERS = ("bare", "gate", "gate_metrics")


# --- servers -------------------------------------------------------------------------


class EchoAgent(Service):
    """skynet's examples/agent.lua, reduced to echo: one per connection."""

    async def init(self) -> None:
        self.clients = connections(self.node)

    async def on_client(self, fd: int, packet: bytes) -> None:
        self.clients.write(fd, packet)

    @command
    async def quit(self) -> None:
        await self.exit()


class EchoGate(GateServer):
    """skynet's gate + watchdog: a new agent per connection, told to quit when it ends."""

    async def init(self, conf: dict) -> None:
        self.agents: dict[int, int] = {}
        await super().init(conf)

    async def connect(self, fd: int, addr: str) -> None:
        agent = self.agents[fd] = await self.newservice(EchoAgent)
        await self.forward(fd, agent)

    async def disconnect(self, fd: int) -> None:
        await self.send(self.agents.pop(fd), "quit")


async def serve_gate(metrics: bool = False) -> None:
    async with open_node() as node:
        if metrics:
            await node.newservice(MetricsServer, HOST, 0)
        gate = await node.newservice(EchoGate, {"address": HOST, "port": 0, "maxclient": 4096})
        ports = await node.call(gate, "ports")
        announce(ports["port"])
        await trio.sleep_forever()


async def serve_bare() -> None:
    async def echo(stream: trio.SocketStream) -> None:
        splitter = Splitter()
        try:
            while data := await stream.receive_some(65536):
                for packet in splitter.feed(data):
                    await stream.send_all(pack(packet))
        except trio.BrokenResourceError:
            pass

    listeners = await trio.open_tcp_listeners(0, host=HOST)
    announce(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(echo, listeners)


def serve_trivial() -> None:
    listener = socket.create_server((HOST, 0), backlog=4096)
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    announce(listener.getsockname()[1])
    while True:
        for key, _ in selector.select():
            sock = key.fileobj
            if sock is listener:
                client, _ = listener.accept()
                client.setblocking(False)
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                selector.register(client, selectors.EVENT_READ)
                continue
            try:
                data = sock.recv(65536)
            except ConnectionError:
                data = b""
            if data:
                sock.sendall(data)
            else:
                selector.unregister(sock)
                sock.close()


def announce(port: int) -> None:
    print(port, flush=True)


# --- load generator ------------------------------------------------------------------


def load(port: int, conns: int, size: int, warmup: float, seconds: float) -> dict:
    """Closed-loop echo load: one packet in flight per connection."""
    frame = pack(os.urandom(size))
    selector = selectors.DefaultSelector()
    socks = []
    for _ in range(conns):
        sock = socket.create_connection((HOST, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        socks.append(sock)
    pending = {}
    sent_at = {}
    for sock in socks:
        selector.register(sock, selectors.EVENT_READ)
        pending[sock] = len(frame)
        sent_at[sock] = time.perf_counter()
        sock.send(frame)
    latencies: list[float] = []
    count = total = 0
    start = time.perf_counter()
    measure_from = start + warmup
    end = measure_from + seconds
    measuring = False
    now = start
    while now < end:
        for key, _ in selector.select(timeout=1.0):
            sock = key.fileobj
            data = sock.recv(65536)
            if not data:
                raise SystemExit("server closed a connection")
            left = pending[sock] - len(data)
            if left > 0:
                pending[sock] = left
                continue
            now = time.perf_counter()
            total += 1
            if measuring:
                latencies.append(now - sent_at[sock])
                count += 1
            pending[sock] = len(frame)
            sent_at[sock] = now
            sock.send(frame)
        now = time.perf_counter()
        if not measuring and now >= measure_from:
            measuring = True
            measure_from = now
    elapsed = time.perf_counter() - measure_from
    for sock in socks:
        sock.close()
    latencies.sort()
    return {
        "rate": count / elapsed,
        "total": total,
        "p50": latencies[len(latencies) // 2] * 1e6,
        "p99": latencies[int(len(latencies) * 0.99)] * 1e6,
    }


# --- orchestration -------------------------------------------------------------------


@contextmanager
def server(kind: str) -> Iterator[tuple[int, int]]:
    """Run a server process; yield its port and pid."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind], stdout=subprocess.PIPE, text=True
    )
    try:
        yield int(process.stdout.readline()), process.pid
    finally:
        process.terminate()
        process.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_load(port: int, pid: int, conns: int, size: int, seconds: float) -> dict:
    """One load-generator run; adds the server's CPU time per echoed message."""
    args = [sys.executable, __file__, "--load", str(port), str(conns), str(size), str(seconds)]
    before = cpu_seconds(pid)
    figures = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    figures["cpu"] = (cpu_seconds(pid) - before) / figures["total"] * 1e6
    return figures


def main(seconds: float, rounds: int) -> None:
    """Every figure is the best of ``rounds`` runs, servers taking turns, so that a passing
    slowdown of the machine hits both sides of a ratio alike."""
    best: dict[tuple[str, int, str], dict] = {}
    for round_number in range(rounds):
        print(f"round {round_number + 1} of {rounds}", file=sys.stderr)
        for kind in (*SERVERS, "trivial"):
            with server(kind) as (port, pid):
                for conns in CONNECTIONS:
                    for label, size in SIZES.items():
                        if kind == "trivial" and label != "16B":
                            continue
                        figures = run_load(port, pid, conns, size, seconds)
                        key = (kind, conns, label)
                        if key not in best or figures["rate"] > best[key]["rate"]:
                            best[key] = figures
    lines = []
    for (kind, conns, label), figures in best.items():
        name = f"gate.{kind}_echo_{label}_{conns}c"
        lines.append(f"BENCH {name} {figures['rate']:.0f} msgs/s")
        lines.append(f"BENCH {name}_p50 {figures['p50']:.0f} us")
        lines.append(f"BENCH {name}_p99 {figures['p99']:.0f} us")
        lines.append(f"BENCH {name}_server_cpu {figures['cpu']:.1f} us/msg")
    for conns in CONNECTIONS:
        for label in SIZES:
            ratio = best["gate", conns, label]["rate"] / best["bare", conns, label]["rate"]
            lines.append(f"RATIO gate.echo_{label}_{conns}c_vs_bare {ratio:.2f}")
    for conns in CONNECTIONS:
        for label in SIZES:
            on, off = best["gate_metrics", conns, label], best["gate", conns, label]
            ratio = on["rate"] / off["rate"]
            lines.append(f"RATIO gate.echo_{label}_{conns}c_metrics_on_vs_off {ratio:.2f}")
    for conns in CONNECTIONS:
        fastest = max(best[kind, conns, "16B"]["rate"] for kind in SERVERS)
        headroom = best["trivial", conns, "16B"]["rate"] / fastest
        lines.append(f"RATIO gate.loadgen_headroom_{conns}c {headroom:.2f}")
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.5, help="measured time per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per figure; the best counts")
    parser.add_argument("--serve", choices=(*SERVERS, "trivial"), help=argparse.SUPPRESS)
    parser.add_argument("--load", nargs=4, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve in ("gate", "gate_metrics"):
        trio.run(serve_gate, options.serve == "gate_metrics")
    elif options.serve == "bare":
        trio.run(serve_bare)
    elif options.serve == "trivial":
        serve_trivial()
    elif options.load:
        port, conns, size, seconds = options.load
        print(json.dumps(load(int(port), int(conns), int(size), WARMUP, float(seconds))))
    else:
        main(options.seconds, options.rounds)

"""Cluster bench: calls and sends between two node processes, against bare trio, in one run.

The bench process is node ``a``; node ``b`` runs in a child process (``--serve-node``)
with an echo service. The baselines run the same way between this process and a child
running a bare trio server (``--serve-bare``) on one TCP connection, with the cluster's
framing replaced by skynet's 2-byte length prefix:

  call_seq       one caller: call, wait for the answer, call again
  call_100       100 callers at once (tasks of one service)
  send           one-way sends, counted at the receiver (the sender asks it how many came)
  bare_pingpong  one packet out, its echo back, the next packet (one connection)
  bare_stream    packets one way, one write each, counted by the receiver, which says when
                 it has them all
  down_killed    a third node process is SIGKILLed while a call to it waits: how long
                 until the call fails with NodeDown (the connection drops at once)
  down_stopped   the same with SIGSTOP (the process stays, silent): the heartbeat finds it
                 down, with the default heartbeat (1 s) and down_after (3 s)

Each round measures every figure once; the printed figures and the RATIO lines are the
medians over the rounds of per-round values and same-round ratios. Prints ``BENCH <name>
<value> <unit>`` and ``RATIO <name> <value>`` lines (DESIGN §8).
"""

from __future__ import annotations

import argparse
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import trio

from meshnet import Node, NodeDown, Service, command, open_node
from meshnet.cluster import of, parse_cluster, start
from meshnet.framing import Splitter, pack

HOST = "127.0.0.1"
SECRET = "the cluster bench's secret"
CALLERS = 100
READY = "ready"


class Echo(Service):
    """Node b's service: answers pings, counts notes."""

    async def init(self) -> None:
        self.notes = 0
        self.register(".echo")

    @command
    async def ping(self, value: int) -> int:
        return value

    @command
    async def note(self, value: int) -> None:
        self.notes += 1

    @command
    async def notes_seen(self) -> int:
        return self.notes

    @command
    async def hang(self) -> None:
        await trio.sleep_forever()


class Driver(Service):
    """Node a's service: makes the calls and sends, as game code would."""

    @command
    async def calls(self, target: str, n: int, callers: int) -> float:
        async def caller() -> None:
            for i in range(n // callers):
                await self.call(target, "ping", i)

        start_time = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(callers):
                nursery.start_soon(caller)
        return time.perf_counter() - start_time

    @command
    async def sends(self, target: str, n: int) -> float:
        expected = await self.call(target, "notes_seen") + n
        start_time = time.perf_counter()
        for i in range(n):
            await self.send(target, "note", i)
        while await self.call(target, "notes_seen") < expected:
            await trio.sleep(0.001)
        return time.perf_counter() - start_time


def cluster_table(ports: list[int]) -> dict:
    """Nodes ``a`` (this process), ``b`` and ``c`` (children) on ``ports``."""
    return {
        "secret": SECRET,
        "nodes": {
            name: {"address": f"{HOST}:{port}", "id": node_id}
            for node_id, (name, port) in enumerate(zip("abc", ports, strict=True), 1)
        },
    }


# --- the child processes ----------------------------------------------------------------


async def serve_node(name: str, ports: list[int]) -> None:
    node_id = "abc".index(name) + 1
    async with open_node(node_id, name) as node:
        await start(node, parse_cluster(cluster_table(ports), Path("."), name))
        await node.newservice(Echo)
        print(READY, flush=True)
        await trio.sleep_forever()


async def serve_bare(port: int) -> None:
    """Echo 2-byte-framed packets; a packet b"count" asks how many came, answered once
    that many have."""

    async def connection(stream: trio.SocketStream) -> None:
        splitter = Splitter()
        seen = 0
        while data := await stream.receive_some(65536):
            replies = []
            for packet in splitter.feed(data):
                if packet.startswith(b"expect"):
                    seen -= int(packet[6:])
                    replies.append(pack(b"ok"))
                elif packet == b"done?":
                    replies.append(pack(b"yes" if seen >= 0 else b"no"))
                elif packet.startswith(b"n"):
                    seen += 1
                else:
                    replies.append(pack(packet))
            if replies:
                await stream.send_all(b"".join(replies))

    listeners = await trio.open_tcp_listeners(port, host=HOST)
    print(READY, flush=True)
    await trio.serve_listeners(connection, listeners)


# --- the bench process ------------------------------------------------------------------


async def bare_pingpong(stream: trio.SocketStream, n: int) -> float:
    splitter = Splitter()
    start_time = time.perf_counter()
    for i in range(n):
        await stream.send_all(pack(b"p%d" % i))
        while not splitter.feed(await stream.receive_some(65536)):
            pass
    return time.perf_counter() - start_time


async def bare_stream(stream: trio.SocketStream, n: int) -> float:
    splitter = Splitter()
    await stream.send_all(pack(b"expect%d" % n))
    await _reply(stream, splitter)
    start_time = time.perf_counter()
    for i in range(n):  # one frame per write, as a sender with one message at a time does
        await stream.send_all(pack(b"n%d" % i))
    while True:
        await stream.send_all(pack(b"done?"))
        if await _reply(stream, splitter) == b"yes":
            return time.perf_counter() - start_time
        await trio.sleep(0.001)


async def _reply(stream: trio.SocketStream, splitter: Splitter) -> bytes:
    while True:
        packets = splitter.feed(await stream.receive_some(65536))
        if packets:
            return packets[-1]


def child(*args: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    if process.stdout.readline().strip() != READY:
        raise RuntimeError(f"the child {args} did not start")
    return process


async def down_after(node: Node, target: str, process: subprocess.Popen, signum: int) -> float:
    """Seconds from ``signum`` sent to ``process`` until a call to it waiting there fails
    with ``NodeDown``."""
    failed = trio.Event()
    sent = 0.0

    async def wait() -> None:
        try:
            await node.call(target, "hang", timeout=None)
        except NodeDown:
            failed.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await trio.sleep(0.5)  # the call has reached the node
        sent = time.perf_counter()
        process.send_signal(signum)
        with trio.fail_after(30):
            await failed.wait()
    return time.perf_counter() - sent


async def main(n: int, rounds: int) -> None:
    ports = [_free_port() for _ in "abc"]
    port_bare = _free_port()
    port_text = [str(port) for port in ports]
    node_b = child("--serve-node", "b", *port_text)
    node_c = child("--serve-node", "c", *port_text)
    bare = child("--serve-bare", str(port_bare))
    figures: dict[str, list[float]] = {}
    try:
        async with open_node(1, "a") as node:
            await start(node, parse_cluster(cluster_table(ports), Path("."), "a"))
            driver = await node.newservice(Driver)
            await of(node).wait_for("b", 10)
            stream = await trio.open_tcp_stream(HOST, port_bare)
            stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
            for _ in range(rounds):
                rates = {
                    "bare_pingpong": n / await bare_pingpong(stream, n),
                    "call_seq": n / await node.call(driver, "calls", "b@.echo", n, 1, timeout=None),
                    "call_100": n
                    / await node.call(driver, "calls", "b@.echo", n, CALLERS, timeout=None),
                    "bare_stream": 10 * n / await bare_stream(stream, 10 * n),
                    "send": 10
                    * n
                    / await node.call(driver, "sends", "b@.echo", 10 * n, timeout=None),
                }
                for name, rate in rates.items():
                    figures.setdefault(name, []).append(rate)
                for name, (mesh, baseline) in RATIOS.items():
                    figures.setdefault(name, []).append(rates[mesh] / rates[baseline])
            await stream.aclose()
            await of(node).wait_for("c", 10)
            figures["down_killed"] = [await down_after(node, "c@.echo", node_c, signal.SIGKILL)]
            node_c = child("--serve-node", "c", *port_text)
            await of(node).wait_for("c", 30)
            figures["down_stopped"] = [await down_after(node, "c@.echo", node_c, signal.SIGSTOP)]
            node_c.send_signal(signal.SIGCONT)
    finally:
        for process in (node_b, node_c, bare):
            process.kill()
    for name, values in figures.items():
        if name in RATIOS:
            print(f"# {name} per round: " + " ".join(f"{v:.2f}" for v in values))
            print(f"RATIO cluster.{name} {statistics.median(values):.2f}")
        elif name.startswith("down_"):
            print(f"BENCH cluster.{name} {values[0] * 1000:.0f} ms")
        else:
            print(f"BENCH cluster.{name} {statistics.median(values):.0f} msgs/s")


RATIOS = {
    "call_seq_vs_bare_pingpong": ("call_seq", "bare_pingpong"),
    "call_100_vs_bare_pingpong": ("call_100", "bare_pingpong"),
    "send_vs_bare_stream": ("send", "bare_stream"),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=5000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the medians count")
    parser.add_argument("--serve-node", nargs=4, metavar="ARG", help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_node:
        name, *node_ports = options.serve_node
        trio.run(serve_node, name, [int(port) for port in node_ports])
    elif options.serve_bare:
        trio.run(serve_bare, options.serve_bare)
    else:
        trio.run(main, options.messages, options.rounds)

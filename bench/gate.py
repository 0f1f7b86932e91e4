"""Gate bench: echo over a meshnet gate against a bare trio echo server, in one run.

Each server runs in its own process (``--serve KIND``) and the load generator in another,
so on a two-core machine the server has a core to itself. The load generator is
``bench/loadgen.c``, compiled here with the system ``cc`` into ``bench/.build/`` (not
tracked); without a compiler the plain Python one below (``selectors``, no trio) stands
in, with a note. Either way every connection sends one 16-byte (or 1 KiB) packet, waits
for its echo and sends the next (closed loop, TCP_NODELAY, 2-byte big-endian length
framing), and each round trip's latency is recorded. All connections are opened at once;
``first_echo`` is the time until every one of them had its first echo (a server that
accepts slowly under load shows here), and measuring starts after that.

Servers:
  bare     trio, one task per connection: split 2-byte frames, send each packet back
  gate     ``examples/echo_workers.py``'s gate, which forwards each connection to its own
           agent service, whose on_client writes the packet back (skynet's gate + agent)
  gate_metrics  the same, on a node that serves its metrics (``meshnet.metrics``), for
           the ``echo_*_metrics_on_vs_off`` ratios: what metrics cost
  trivial  selectors echo of raw bytes, no framing: the load generator's own ceiling,
           to show that the generator is not what limits the other figures
  skynet   only with ``SKYNET_ROOT`` set to a built skynet: its gate + one Lua agent per
           connection echoing (written to a temporary directory for the run), listening
           with a backlog of 4096 as trio and the gate do (skynet's default of 32 made
           a thousand connects at once take seconds, and the kernel reset some of them)

Every round starts every server (idle, they take next to no CPU: skynet's timer thread
wakes every 2.5 ms) and measures each load on all of
them back to back, in an order that rotates from round to round, so the two sides of a
ratio are measured seconds apart and neither always first: a passing slowdown of a shared
machine hits both alike. Each RATIO is the median of the per-round ratios, each BENCH
figure the median over rounds. Besides messages/s and p50/p99 round-trip latency,
``server_cpu`` is the server process's CPU time per echoed message (on a shared virtual
machine it swings from run to run as much as the rates). ``loadgen_headroom`` is the
trivial server's rate over the fastest real server's: above 1, the load generator is not
what limits the figures.

What metrics cost: ``echo_<size>_<n>c_metrics_on_vs_off`` per load, and
``echo_metrics_on_vs_off``, the median of every load's per-round ratios together (30 of
them in 5 rounds): one 1.5-second run swings by ±10 % here, so one load's median says
little, the pooled one much more. With ``SKYNET_ROOT``, ``gate_echo_16B_<n>c_vs_skynet``
compares the gate with skynet's directly, round by round.

``idle_conn_tcp``/``idle_conn_ws``: the gate's RSS growth per connection while
``--idle`` connections (10,000) are open and idle, each having sent one packet and had it
echoed (a WebSocket one after its upgrade), on a gate that echoes in its ``message`` hook.

Prints ``BENCH <name> <value> <unit>`` and ``RATIO <name> <value>`` lines (DESIGN §8).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import trio

from meshnet import open_node
from meshnet.framing import Splitter, pack
from meshnet.gate.gateserver import GateServer
from meshnet.gcpolicy import YOUNG_THRESHOLD
from meshnet.metrics import MetricsServer

HOST = "127.0.0.1"
SIZES = {"16B": 16, "1KiB": 1024}
CONNECTIONS = (1, 100, 1000)
WARMUP = 0.3
"""Seconds of load before measuring starts (after every connection's first echo)."""
SERVERS = ("bare", "gate", "gate_metrics")
IDLE_CONNECTIONS = 10_000
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "examples"))
from echo_workers import Echo  # noqa: E402  (skynet's gate + agent, reduced to echo)

BUILD = HERE / ".build"
LOADGEN_SOURCE = HERE / "loadgen.c"


# --- servers -------------------------------------------------------------------------


class IdleGate(GateServer):
    """A gate that echoes in its own ``message`` hook: what a connection costs the gate."""

    async def connect(self, fd: int, addr: str) -> None:
        self.openclient(fd)

    async def message(self, fd: int, packet: bytes) -> None:
        self.connections.write(fd, packet)


async def serve_gate(metrics: bool = False) -> None:
    async with open_node(gc_threshold=YOUNG_THRESHOLD) as node:  # as `meshnet node` runs
        if metrics:
            await node.newservice(MetricsServer, HOST, 0)
        gate = await node.newservice(Echo, {"address": HOST, "port": 0, "maxclient": 4096})
        ports = await node.call(gate, "ports")
        announce(ports["port"])
        await trio.sleep_forever()


async def serve_idle() -> None:
    conf = {"address": HOST, "port": 0, "ws_port": 0, "maxclient": 2 * IDLE_CONNECTIONS}
    async with open_node(gc_threshold=YOUNG_THRESHOLD) as node:
        gate = await node.newservice(IdleGate, conf)
        ports = await node.call(gate, "ports")
        announce(f"{ports['port']} {ports['ws_port']}")
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
                while True:
                    try:
                        client, _ = listener.accept()
                    except BlockingIOError:
                        break
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


SKYNET_CONFIG = """\
root = "ROOT/"
thread = 2
harbor = 0
start = "echo_main"
bootstrap = "snlua bootstrap"
luaservice = root.."service/?.lua;WORK/?.lua"
lualoader = root.."lualib/loader.lua"
lua_path = root.."lualib/?.lua;"..root.."lualib/?/init.lua"
lua_cpath = root.."luaclib/?.so"
cpath = root.."cservice/?.so"
"""
SKYNET_MAIN = """\
local skynet = require "skynet"
skynet.start(function()
    local watchdog = skynet.newservice("echo_watchdog")
    skynet.call(watchdog, "lua", "start", {port = 0, maxclient = 4096, nodelay = true})
end)
"""
SKYNET_WATCHDOG = """\
local skynet = require "skynet"
local socket = require "skynet.socket"
local agents, gate = {}, nil
local handler = {}
function handler.start(conf)
    gate = skynet.newservice("gate")
    skynet.call(gate, "lua", "open", {address = "127.0.0.1", port = 0,
        maxclient = conf.maxclient, nodelay = true, backlog = 4096})
end
skynet.start(function()
    skynet.dispatch("lua", function(_, _, cmd, subcmd, ...)
        if cmd == "socket" then
            local fd, addr = ...
            if subcmd == "open" then
                local agent = skynet.newservice("echo_agent")
                agents[fd] = agent
                skynet.call(agent, "lua", "start", gate, fd)
            elseif subcmd == "close" or subcmd == "error" then
                local agent = agents[fd]
                agents[fd] = nil
                if agent then skynet.send(agent, "lua", "quit") end
            end
        else
            skynet.ret(skynet.pack(handler[cmd](subcmd, ...)))
        end
    end)
end)
"""
SKYNET_AGENT = """\
local skynet = require "skynet"
local socket = require "skynet.socket"
local netpack = require "skynet.netpack"
local client_fd
skynet.register_protocol {
    name = "client", id = skynet.PTYPE_CLIENT,
    unpack = skynet.tostring,
    dispatch = function(_, _, msg) socket.write(client_fd, string.pack(">s2", msg)) end,
}
skynet.start(function()
    skynet.dispatch("lua", function(_, _, cmd, gate, fd)
        if cmd == "start" then
            client_fd = fd
            skynet.call(gate, "lua", "forward", fd)
            skynet.ret()
        else
            skynet.exit()
        end
    end)
end)
"""


def announce(port: int | str) -> None:
    print(port, flush=True)


# --- load generators -----------------------------------------------------------------


def build_loadgen() -> Path | None:
    """Compile ``loadgen.c`` (when it changed); None, with a note, if there is no cc."""
    compiler = shutil.which("cc")
    if compiler is None:
        print("# no C compiler (cc): using the Python load generator", file=sys.stderr)
        return None
    binary = BUILD / "loadgen"
    if binary.exists() and binary.stat().st_mtime >= LOADGEN_SOURCE.stat().st_mtime:
        return binary
    BUILD.mkdir(exist_ok=True)
    command_line = [compiler, "-O2", "-o", str(binary), str(LOADGEN_SOURCE)]
    result = subprocess.run(command_line, capture_output=True, text=True)
    if result.returncode:
        print(f"# cc failed, using the Python load generator:\n{result.stderr}", file=sys.stderr)
        return None
    return binary


def load_command(loadgen: Path | None) -> list[str]:
    """The load generator's command, to which its arguments HOST PORT CONNS SIZE WARMUP
    SECONDS are added: ``loadgen.c``'s build, or else ``load`` below."""
    return [str(loadgen)] if loadgen is not None else [sys.executable, __file__, "--load"]


def load(host: str, port: int, conns: int, size: int, warmup: float, seconds: float) -> dict:
    """The Python load generator (loadgen.c's stand-in): the same closed loop."""
    frame = pack(os.urandom(size))
    selector = selectors.DefaultSelector()
    started = time.perf_counter()
    pending = {}
    sent_at = {}
    for _ in range(conns):
        sock = socket.create_connection((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        pending[sock] = len(frame)
        sent_at[sock] = time.perf_counter()
        sock.send(frame)
    waiting_first = set(pending)
    latencies: list[float] = []
    total = 0
    first_echo = measure_from = end = 0.0
    while not end or time.perf_counter() < end:
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
            if end and now >= measure_from:
                latencies.append(now - sent_at[sock])
            if waiting_first:
                waiting_first.discard(sock)
                if not waiting_first:
                    first_echo = now - started
                    measure_from = now + warmup
                    end = measure_from + seconds
            pending[sock] = len(frame)
            sent_at[sock] = now
            sock.send(frame)
    elapsed = time.perf_counter() - measure_from
    for sock in pending:
        sock.close()
    latencies.sort()
    return {
        "rate": len(latencies) / elapsed,
        "total": total,
        "p50": latencies[len(latencies) // 2] * 1e6,
        "p99": latencies[int(len(latencies) * 0.99)] * 1e6,
        "first_echo": first_echo,
    }


def hold_idle(tcp_port: int, ws_port: int, count: int, kind: str) -> None:
    """Open ``count`` connections, echo one packet over each, print ``ready``, and keep
    them open until stdin closes."""
    raise_fd_limit(count + 64)
    socks = []
    for _ in range(count):
        sock = socket.create_connection((HOST, ws_port if kind == "ws" else tcp_port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if kind == "ws":
            key = base64.b64encode(os.urandom(16)).decode()
            sock.sendall(
                f"GET / HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n".encode()
            )
        socks.append(sock)
    payload = os.urandom(16)
    for sock in socks:
        if kind == "ws":
            _read_until(sock, b"\r\n\r\n")
            mask = os.urandom(4)
            masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
            sock.sendall(bytes([0x82, 0x80 | len(payload)]) + mask + masked)
            echo_size = 2 + len(payload)
        else:
            sock.sendall(pack(payload))
            echo_size = 2 + len(payload)
        got = 0
        while got < echo_size:
            chunk = sock.recv(echo_size - got)
            if not chunk:
                raise SystemExit("server closed an idle connection")
            got += len(chunk)
    print("ready", flush=True)
    sys.stdin.read()


def _read_until(sock: socket.socket, end: bytes) -> bytes:
    data = b""
    while end not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit("server closed a connection during the handshake")
        data += chunk
    return data


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# --- orchestration -------------------------------------------------------------------


@contextmanager
def server(kind: str) -> Iterator[tuple[list[int], int]]:
    """Run a server process; yield its ports and pid."""
    if kind == "skynet":
        with skynet_server() as running:
            yield running
        return
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind], stdout=subprocess.PIPE, text=True
    )
    try:
        yield [int(port) for port in process.stdout.readline().split()], process.pid
    finally:
        process.terminate()
        process.wait()


@contextmanager
def skynet_server() -> Iterator[tuple[list[int], int]]:
    """skynet's gate + a Lua echo agent per connection, from ``SKYNET_ROOT``."""
    root = os.environ["SKYNET_ROOT"]
    with tempfile.TemporaryDirectory(prefix="skynet-echo-") as work:
        files = {
            "config": SKYNET_CONFIG,
            "echo_main.lua": SKYNET_MAIN,
            "echo_watchdog.lua": SKYNET_WATCHDOG,
            "echo_agent.lua": SKYNET_AGENT,
        }
        for name, text in files.items():
            Path(work, name).write_text(text.replace("ROOT", root).replace("WORK", work))
        process = subprocess.Popen(
            [os.path.join(root, "skynet"), os.path.join(work, "config")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield [_skynet_port(process)], process.pid
        finally:
            process.terminate()
            process.wait()


def _skynet_port(process: subprocess.Popen) -> int:
    """The port skynet's gate listens on (the only TCP listener of the process)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("skynet exited at start")
        inodes = {
            os.readlink(f"/proc/{process.pid}/fd/{fd}")
            for fd in os.listdir(f"/proc/{process.pid}/fd")
        }
        with open("/proc/net/tcp") as table:
            for line in table.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and f"socket:[{fields[9]}]" in inodes:
                    return int(fields[1].split(":")[1], 16)
        time.sleep(0.1)
    raise SystemExit("skynet's gate did not listen within 10 s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(pid: int, quiet: float = 0.2, longest: float = 5.0) -> None:
    """Wait until the server has used under a tenth of a core for ``quiet`` seconds (it
    has closed the last run's connections), so that its work stays out of the next
    server's run. (Idle is not zero for skynet, whose timer thread keeps ticking.)"""
    deadline = time.monotonic() + longest
    used = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        used, before = cpu_seconds(pid), used
        if used - before < quiet / 10:
            return


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_load(
    loadgen: Path | None, port: int, pid: int, conns: int, size: int, seconds: float
) -> dict:
    """One load-generator run; adds the server's CPU time per echoed message."""
    args = [*load_command(loadgen), HOST, str(port), str(conns), str(size), str(WARMUP)]
    args.append(str(seconds))
    before = cpu_seconds(pid)
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(
            f"the load generator failed at {conns} connections of {size} bytes on port "
            f"{port}: {done.stderr.strip() or f'exit status {done.returncode}'}"
        )
    figures = json.loads(done.stdout)
    figures["cpu"] = (cpu_seconds(pid) - before) / figures["total"] * 1e6
    return figures


def idle_bytes(kind: str, count: int) -> float:
    """RSS growth of the idle gate per connection while ``count`` are open."""
    with server("idle") as (ports, pid):
        hold = [sys.executable, __file__, "--hold", str(ports[0]), str(ports[1])]
        warm = subprocess.Popen([*hold, "100", kind], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        warm.stdout.readline()  # some connections first: what the first one allocates
        warm.communicate()
        time.sleep(0.5)
        before = rss_bytes(pid)
        holder = subprocess.Popen(
            [*hold, str(count), kind], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        try:
            if holder.stdout.readline().strip() != "ready":
                raise SystemExit(f"the {kind} idle connections were not opened")
            time.sleep(1.0)
            return (rss_bytes(pid) - before) / count
        finally:
            holder.communicate()


def main(seconds: float, rounds: int, idle: int) -> None:
    loadgen = build_loadgen()
    servers = list(SERVERS)
    if os.environ.get("SKYNET_ROOT"):
        servers.append("skynet")
    else:
        print("# SKYNET_ROOT not set: skynet's gate + agent not measured", file=sys.stderr)
    kinds = (*servers, "trivial")
    runs: dict[tuple[str, int, str], list[dict]] = {}
    for round_number in range(rounds):
        print(f"round {round_number + 1} of {rounds}", file=sys.stderr)
        order = kinds[round_number % len(kinds) :] + kinds[: round_number % len(kinds)]
        with ExitStack() as running:
            started = {kind: running.enter_context(server(kind)) for kind in order}
            for conns in CONNECTIONS:
                for label, size in SIZES.items():
                    for kind in order:
                        if kind in ("trivial", "skynet") and label != "16B":
                            continue
                        ports, pid = started[kind]
                        print(f"  {kind} {conns}c {label}", file=sys.stderr)
                        figures = run_load(loadgen, ports[0], pid, conns, size, seconds)
                        runs.setdefault((kind, conns, label), []).append(figures)
                        settle(pid)
    idle_tcp = idle_bytes("tcp", idle)
    idle_ws = idle_bytes("ws", idle)
    print("\n".join(report(runs, servers, loadgen is not None, idle, idle_tcp, idle_ws)))


def report(
    runs: dict[tuple[str, int, str], list[dict]],
    servers: list[str],
    compiled: bool,
    idle: int,
    idle_tcp: float,
    idle_ws: float,
) -> list[str]:
    def median(kind: str, conns: int, label: str, figure: str) -> float:
        return statistics.median(run[figure] for run in runs[kind, conns, label])

    def ratio(name: str, top: tuple, bottom: tuple, figure: str = "rate") -> list[float]:
        values = [a[figure] / b[figure] for a, b in zip(runs[top], runs[bottom], strict=True)]
        shown = " ".join(f"{value:.2f}" for value in values)
        lines.append(f"# {name} per round: {shown}")
        lines.append(f"RATIO {name} {statistics.median(values):.2f}")
        return values

    generator = "bench/loadgen.c" if compiled else "the Python load generator"
    lines = [f"# load generator: {generator}; medians of {len(runs['bare', 1, '16B'])} rounds"]
    for kind, conns, label in runs:
        name = f"gate.{kind}_echo_{label}_{conns}c"
        lines.append(f"BENCH {name} {median(kind, conns, label, 'rate'):.0f} msgs/s")
        lines.append(f"BENCH {name}_p50 {median(kind, conns, label, 'p50'):.0f} us")
        lines.append(f"BENCH {name}_p99 {median(kind, conns, label, 'p99'):.0f} us")
        lines.append(f"BENCH {name}_server_cpu {median(kind, conns, label, 'cpu'):.1f} us/msg")
        if conns == max(CONNECTIONS):
            first = median(kind, conns, label, "first_echo")
            lines.append(f"BENCH {name}_first_echo {first:.3f} s")
    many = max(CONNECTIONS)
    for kind in [k for k in servers if k not in ("bare", "gate_metrics")]:
        for conns in CONNECTIONS:
            for label in SIZES:
                if (kind, conns, label) in runs:
                    name = f"gate.{kind}_echo_{label}_{conns}c_vs_bare"
                    ratio(name, (kind, conns, label), ("bare", conns, label))
        for figure in ("first_echo", "p99"):
            name = f"gate.{kind}_{figure}_16B_{many}c_vs_bare"
            ratio(name, (kind, many, "16B"), ("bare", many, "16B"), figure)
    if "skynet" in servers:
        for conns in CONNECTIONS:
            name = f"gate.gate_echo_16B_{conns}c_vs_skynet"
            ratio(name, ("gate", conns, "16B"), ("skynet", conns, "16B"))
    metrics_cost = []
    for conns in CONNECTIONS:
        for label in SIZES:
            name = f"gate.echo_{label}_{conns}c_metrics_on_vs_off"
            metrics_cost += ratio(name, ("gate_metrics", conns, label), ("gate", conns, label))
    lines.append(f"RATIO gate.echo_metrics_on_vs_off {statistics.median(metrics_cost):.2f}")
    for conns in CONNECTIONS:
        fastest = max(median(kind, conns, "16B", "rate") for kind in servers)
        headroom = median("trivial", conns, "16B", "rate") / fastest
        lines.append(f"RATIO gate.loadgen_headroom_{conns}c {headroom:.2f}")
    lines.append(f"BENCH gate.idle_conn_tcp_{idle} {idle_tcp / 1024:.1f} KiB")
    lines.append(f"BENCH gate.idle_conn_ws_{idle} {idle_ws / 1024:.1f} KiB")
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.5, help="measured time per run")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; medians count")
    parser.add_argument("--idle", type=int, default=IDLE_CONNECTIONS, help="idle connections")
    parser.add_argument("--serve", choices=(*SERVERS, "trivial", "idle"), help=argparse.SUPPRESS)
    parser.add_argument("--load", nargs=6, help=argparse.SUPPRESS)
    parser.add_argument("--hold", nargs=4, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve or options.hold:
        raise_fd_limit(2 * IDLE_CONNECTIONS + 64)
    if options.serve in ("gate", "gate_metrics"):
        trio.run(serve_gate, options.serve == "gate_metrics")
    elif options.serve == "idle":
        trio.run(serve_idle)
    elif options.serve == "bare":
        trio.run(serve_bare)
    elif options.serve == "trivial":
        serve_trivial()
    elif options.load:
        host, port, conns, size, warmup, seconds = options.load
        figures = load(host, int(port), int(conns), int(size), float(warmup), float(seconds))
        print(json.dumps(figures))
    elif options.hold:
        tcp_port, ws_port, count, kind = options.hold
        hold_idle(int(tcp_port), int(ws_port), int(count), kind)
    else:
        main(options.seconds, options.rounds, options.idle)

"""Abuse bench: a logged-in player's ping latency alone and beside flooding clients.

The demo game runs in a child process (``python -m meshnet node`` on a config written to
a temporary directory: the demo's settings with free ports, a throwaway accounts file,
scrypt's cost lowered since signing in is not what is measured here). One player signs
up, signs in, logs in, then pings every ``PING_EVERY`` seconds, over the hub's TCP port
and then through the login server and the msgserver; each for ``--seconds`` alone, beside
one flooding connection and beside ten, in ``--rounds`` rounds (the best of each kept, so
a passing slowdown of a shared machine does not decide a ratio). The flooders run in a
child process of their own (``--flood``), at a lower priority, so they do not share the
player's event loop nor take its CPU, as attackers on other machines would not:

  hub        each flooder streams cheap requests the router answers itself, without a
             backend: a message no rule lets in (``push``), a ``ping`` before any signin,
             a ``signin`` whose body has the wrong types. It reads (and drops) its replies.
  msgserver  each flooder is a user of its own, logged in through the login server, that
             streams ``ping`` requests (each a call to its agent) without waiting for
             their answers, and reads (and drops) the answers.

Prints ``BENCH`` lines: ping p50 and p99 per target and number of flooders, the replies
per second the flooders got, and ``RATIO abuse.<target>_p99_10_vs_alone``, ping p99
beside ten flooders over ping p99 alone (target: at most 5).
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import trio

from demo_game.connection import HubClient, SecureClient, open_hub
from demo_game.launcher import free_port, node_config, start_node, stop_node, wait_listening
from demo_game.proto import SIGNUP_SERVER, proto
from meshnet.framing import pack
from meshnet.login.client import LoginRefused, login
from meshnet.login.gateclient import GateConnection, connect_gate
from meshnet.login.wire import pack_request

HOST = "127.0.0.1"
SCRYPT = {"scrypt_n": 2**10, "scrypt_r": 8, "scrypt_p": 1}
SERVER = "demo"
PASSWORD = "abuse-password"
FLOODERS = (0, 1, 10)
TARGETS = ("hub", "msgserver")
FLOODER_NICENESS = 10
"""The flooders run at a lower priority: on a machine of two cores they would otherwise
take CPU from the node and the player, as attackers on other machines cannot."""
PING_EVERY = 0.01
"""Seconds between the player's pings."""
CHUNK = 512
"""Requests a flooder writes at once."""


# --- the player ----------------------------------------------------------------------


async def measure(
    ports: dict[str, int], seconds: float, rounds: int, targets: list[str]
) -> dict[tuple[str, int], dict[str, float]]:
    """Ping p50/p99 (ms) and the flooders' reply rate, per target and flooder count: in
    each of ``rounds`` rounds every flooder count in turn, the best round kept."""
    results: dict[tuple[str, int], dict[str, float]] = {}
    for target in targets:
        async with _player(target, ports) as player:
            for _ in range(rounds):
                for count in FLOODERS:
                    with _flooders(target, count, ports) as replies:
                        latencies = await _ping_for(player, seconds)
                        flood_rate = replies() / seconds
                    figures = {
                        "p50": _percentile(latencies, 0.50) * 1000,
                        "p99": _percentile(latencies, 0.99) * 1000,
                        "flood_replies": flood_rate,
                    }
                    best = results.setdefault((target, count), figures)
                    for key, value in figures.items():
                        best[key] = (
                            max(best[key], value)
                            if key == "flood_replies"
                            else min(best[key], value)
                        )
    return results


class _player:
    """A player logged in to its agent over ``target``; ``async with`` gives its client."""

    def __init__(self, target: str, ports: dict[str, int]) -> None:
        self.target = target
        self.ports = ports
        self._exit = None

    async def __aenter__(self) -> HubClient | SecureClient:
        user = f"player-{self.target}"
        if self.target == "hub":
            self._exit = open_hub(HOST, self.ports["hub"])
            client = await self._exit.__aenter__()
            credentials = {"user": user, "password": PASSWORD}
            await client.request("signup", credentials)
            assert (await client.request("signin", credentials)).ok
        else:
            gate = await _secure_login(self.ports, user)
            client = SecureClient(gate)
            self._exit = gate
        assert (await client.request("login")).ok
        assert (await client.request("ping")).ok
        return client

    async def __aexit__(self, *exc: object) -> None:
        if isinstance(self._exit, GateConnection):
            await self._exit.aclose()
        elif self._exit is not None:
            await self._exit.__aexit__(*exc)


async def _ping_for(player: HubClient | SecureClient, seconds: float) -> list[float]:
    """Ping every ``PING_EVERY`` seconds (a player, not a flood) for ``seconds``."""
    latencies = []
    start = trio.current_time()
    for n in range(int(seconds / PING_EVERY)):
        await trio.sleep_until(start + n * PING_EVERY)
        sent = time.perf_counter()
        answer = await player.request("ping")
        latencies.append(time.perf_counter() - sent)
        assert answer.ok, answer.reply
    return latencies


async def _secure_login(ports: dict[str, int], user: str) -> GateConnection:
    try:
        await login(HOST, ports["login"], SIGNUP_SERVER, user, PASSWORD)
    except LoginRefused:
        pass  # signed up by an earlier run of the flooders
    result = await login(HOST, ports["login"], SERVER, user, PASSWORD)
    return await connect_gate(HOST, ports["msgserver"], result, 1)


class _flooders:
    """``count`` flooders of ``target`` in a child process while the block runs; gives a
    function returning how many replies they got so far."""

    def __init__(self, target: str, count: int, ports: dict[str, int]) -> None:
        self.args = [target, str(count), str(ports["hub"]), str(ports["login"])]
        self.args.append(str(ports["msgserver"]))
        self.count = count
        self.process: subprocess.Popen[str] | None = None
        self.started_at = 0

    def __enter__(self):
        if not self.count:
            return lambda: 0
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--flood", *self.args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=partial(os.nice, FLOODER_NICENESS),
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("flooding"):
            raise RuntimeError(f"the flooders did not start: {line!r}")
        self.started_at = int(line.split()[1])
        return self._replies

    def _replies(self) -> int:
        assert self.process is not None and self.process.stdin and self.process.stdout
        self.process.stdin.write("count\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline()) - self.started_at

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()


# --- the flooders (the child process) --------------------------------------------------


async def flood(target: str, count: int, hub: int, login_port: int, msgserver: int) -> None:
    """Run ``count`` flooders; print ``flooding N`` once all stream, then answer each
    ``count`` line on stdin with the replies they got."""
    replies = [0]
    async with trio.open_nursery() as nursery:
        ready = []
        for index in range(count):
            if target == "hub":
                stream = await trio.open_tcp_stream(HOST, hub)
                send = partial(_flood_hub, stream)
            else:
                gate = await _secure_login(
                    {"login": login_port, "msgserver": msgserver}, f"flooder-{index}"
                )
                stream = gate._stream
                send = partial(_flood_msgserver, stream)
            got_one = trio.Event()
            ready.append(got_one)
            nursery.start_soon(send)
            nursery.start_soon(_drain, stream, replies, got_one)
        for got_one in ready:
            await got_one.wait()
        print(f"flooding {replies[0]}", flush=True)
        while await trio.to_thread.run_sync(sys.stdin.readline):
            print(replies[0], flush=True)
        nursery.cancel_scope.cancel()


async def _flood_hub(stream: trio.SocketStream) -> None:
    cheap = [
        proto.encode_request("push", {"text": "let me in"}, session=1),  # blocked
        proto.encode_request("ping", None, session=2),  # not authenticated
        pack_invalid_signin(),  # a body of the wrong types
    ]
    chunk = b"".join(pack(cheap[n % len(cheap)]) for n in range(CHUNK))
    while True:
        await stream.send_all(chunk)


def pack_invalid_signin() -> bytes:
    from meshnet import codec

    return codec.encode([2, 3, {"user": 1, "password": 2}])


async def _flood_msgserver(stream: trio.SocketStream) -> None:
    ping = proto.encode_request("ping", None, session=1)
    session = 0
    while True:
        chunk = []
        for _ in range(CHUNK):
            session = session % 0xFFFFFFFF + 1
            chunk.append(pack(pack_request(ping, session)))
        await stream.send_all(b"".join(chunk))


async def _drain(stream: trio.SocketStream, replies: list[int], got_one: trio.Event) -> None:
    """Read and drop what the server sends, counting its packets (2-byte framing)."""
    pending = b""
    while data := await stream.receive_some(1 << 16):
        data = pending + data
        start = 0
        while len(data) - start >= 2:
            end = start + 2 + int.from_bytes(data[start : start + 2], "big")
            if end > len(data):
                break
            replies[0] += 1
            start = end
        pending = data[start:]
        got_one.set()


# --- reporting -------------------------------------------------------------------------


def _percentile(ordered: list[float], fraction: float) -> float:
    ordered = sorted(ordered)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="per phase (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--target", choices=TARGETS, action="append", help="default: both")
    parser.add_argument("--flood", nargs=5, metavar="ARG", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.flood:
        target, *numbers = options.flood
        trio.run(flood, target, *map(int, numbers))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-abuse-") as scratch:
        ports = {"hub": free_port(), "login": free_port(), "msgserver": free_port()}
        settings = {
            "hub": {"address": HOST, "port": ports["hub"], "ws_port": 0},
            "login": {"address": HOST, "port": ports["login"]},
            "msgserver": {"address": HOST, "port": ports["msgserver"], "servername": SERVER},
            "web": {"address": HOST, "port": 0},
            "accounts": {"path": str(Path(scratch) / "accounts.sqlite3"), **SCRYPT},
        }
        config = Path(scratch) / "node.toml"
        config.write_text(node_config(settings, log_level="ERROR"))
        node = start_node(config)
        try:
            wait_listening(node, HOST, ports["hub"])
            targets = options.target or list(TARGETS)
            results = trio.run(measure, ports, options.seconds, options.rounds, targets)
        finally:
            stop_node(node)
    for (target, count), figures in results.items():
        name = f"abuse.{target}_{'alone' if not count else f'{count}_flooders'}"
        print(f"BENCH {name}_ping_p50 {figures['p50']:.3f} ms")
        print(f"BENCH {name}_ping_p99 {figures['p99']:.3f} ms")
        if count:
            print(f"BENCH {name}_replies {figures['flood_replies']:.0f} replies/s")
    for target in targets:
        ratio = results[target, 10]["p99"] / results[target, 0]["p99"]
        print(f"RATIO abuse.{target}_p99_10_vs_alone {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

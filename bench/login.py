"""Login bench: full logins/s (handshake, auth, subid) and msgserver request round-trips/s.

The servers run in a child process (this file with ``--serve``) so the clients, here, do
not share its CPU; it stops when its stdin closes. Prints ``BENCH login.logins_<c> <rate>
logins/s`` and ``BENCH login.msg_roundtrips_<c> <rate> requests/s`` for each concurrency c
(DESIGN §8), each the best of several rounds. A msgserver client logs in and handshakes
before the clock starts, then sends one request at a time and waits for its answer.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import trio

from meshnet import open_node
from meshnet.login.client import login
from meshnet.login.gateclient import connect_gate
from meshnet.login.loginserver import LoginServer
from meshnet.login.msgserver import MsgServer
from meshnet.login.wire import parse_token

HOST = "127.0.0.1"


class BenchServer(LoginServer):
    """Accepts every token; subids count up."""

    async def init(self) -> None:
        self.subids = 0
        await super().init(HOST, 0)

    async def auth_handler(self, token: bytes) -> tuple[bytes, bytes]:
        fields = parse_token(token)
        return fields.server, fields.user

    async def login_handler(self, server: bytes, uid: bytes, secret: bytes) -> int:
        self.subids += 1
        return self.subids


class BenchGateLogin(BenchServer):
    """Hands each login to the msgserver at ``gate``."""

    async def init(self, gate: int) -> None:
        self.gate = gate
        await super().init()

    async def login_handler(self, server: bytes, uid: bytes, secret: bytes) -> int:
        return await self.call(self.gate, "login", uid, secret)


class BenchGate(MsgServer):
    """Answers each request with its content at once."""

    async def init(self) -> None:
        self.subids = 0
        await super().init({"address": HOST, "port": 0, "servername": "bench"})

    async def login_handler(self, uid: bytes, secret: bytes) -> int:
        self.subids += 1
        self.user_login(self.username(uid, self.subids), secret)
        return self.subids

    async def request_handler(self, username: bytes, message: bytes) -> bytes:
        return message


async def serve() -> None:
    """Run the servers, print their ports (login, msgserver's login, msgserver), and stop at
    end of stdin."""
    async with open_node() as node:
        login_server = await node.newservice(BenchServer)
        gate = await node.newservice(BenchGate)
        gate_login = await node.newservice(BenchGateLogin, gate)
        ports = [
            await node.call(login_server, "port"),
            await node.call(gate_login, "port"),
            (await node.call(gate, "ports"))["port"],
        ]
        print(*ports, flush=True)
        stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        while await stdin.receive_some():
            pass


async def logins(port: int, total: int, concurrency: int) -> float:
    """Seconds for ``concurrency`` clients to make ``total`` logins between them."""

    async def client(n: int) -> None:
        for i in range(total // concurrency):
            await login(HOST, port, "bench", f"user{n}-{i}", "password")

    return await _timed(client, concurrency)


async def roundtrips(login_port: int, gate_port: int, total: int, concurrency: int) -> float:
    """Seconds for ``concurrency`` handshaken msgserver clients to get ``total`` answers."""
    results = [
        await login(HOST, login_port, "bench", f"rt{n}", "password") for n in range(concurrency)
    ]
    connections = [await connect_gate(HOST, gate_port, result, 1) for result in results]

    async def client(n: int) -> None:
        for session in range(total // concurrency):
            await connections[n].request(b"ping", session)

    try:
        return await _timed(client, concurrency)
    finally:
        for connection in connections:
            await connection.aclose()


async def _timed(client: Callable[[int], Awaitable[None]], concurrency: int) -> float:
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for n in range(concurrency):
            nursery.start_soon(client, n)
    return time.perf_counter() - start


async def main(total: int, requests: int, rounds: int, concurrencies: list[int]) -> None:
    process = await trio.lowlevel.open_process(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        port, gate_login_port, gate_port = map(int, (await process.stdout.receive_some()).split())
        for concurrency in concurrencies:
            rate = max([total / await logins(port, total, concurrency) for _ in range(rounds)])
            print(f"BENCH login.logins_{concurrency} {rate:.0f} logins/s", flush=True)
        for concurrency in concurrencies:
            rate = max(
                [
                    requests / await roundtrips(gate_login_port, gate_port, requests, concurrency)
                    for _ in range(rounds)
                ]
            )
            print(f"BENCH login.msg_roundtrips_{concurrency} {rate:.0f} requests/s", flush=True)
    finally:
        await process.stdin.aclose()
        await process.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="run the server (used internally)")
    parser.add_argument("--logins", type=int, default=2000, help="logins per round")
    parser.add_argument("--requests", type=int, default=20000, help="msgserver requests per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 50])
    args = parser.parse_args()
    if args.serve:
        trio.run(serve)
    else:
        trio.run(main, args.logins, args.requests, args.rounds, args.concurrency)

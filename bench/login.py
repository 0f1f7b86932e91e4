"""Login server bench: full logins/s (handshake, auth, subid) over loopback.

The server runs in a child process (this file with ``--serve``) so the clients, here, do not
share its CPU; it stops when its stdin closes. Prints ``BENCH login.logins_<c> <rate>
logins/s`` for each concurrency c (DESIGN §8), each the best of several rounds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import trio

from meshnet import open_node
from meshnet.login.client import login
from meshnet.login.loginserver import LoginServer
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


async def serve() -> None:
    """Run the server, print its port, and stop at end of stdin."""
    async with open_node() as node:
        server = await node.newservice(BenchServer)
        print(await node.call(server, "port"), flush=True)
        stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        while await stdin.receive_some():
            pass


async def logins(port: int, total: int, concurrency: int) -> float:
    """Seconds for ``concurrency`` clients to make ``total`` logins between them."""

    async def client(n: int) -> None:
        for i in range(total // concurrency):
            await login(HOST, port, "bench", f"user{n}-{i}", "password")

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for n in range(concurrency):
            nursery.start_soon(client, n)
    return time.perf_counter() - start


async def main(total: int, rounds: int, concurrencies: list[int]) -> None:
    process = await trio.lowlevel.open_process(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        port = int(await process.stdout.receive_some())
        for concurrency in concurrencies:
            rate = max([total / await logins(port, total, concurrency) for _ in range(rounds)])
            print(f"BENCH login.logins_{concurrency} {rate:.0f} logins/s", flush=True)
    finally:
        await process.stdin.aclose()
        await process.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="run the server (used internally)")
    parser.add_argument("--logins", type=int, default=2000, help="logins per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 50])
    args = parser.parse_args()
    trio.run(serve if args.serve else lambda: main(args.logins, args.rounds, args.concurrency))

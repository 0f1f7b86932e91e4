"""Shared by the skynet interop tests: a meshnet node that speaks skynet's cluster protocol,
a skynet node's side of a connection to its listener, and fake skynet nodes for its peers."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import trio
from cluster_setup import HOST, REPO, SECRET, WAIT, free_port

from meshnet import open_node
from meshnet.cluster import parse_cluster, start
from meshnet.cluster.skynet import seri, wire
from meshnet.framing import Splitter

EXAMPLE = REPO / "examples" / "skynet_cluster"
sys.path.insert(0, str(EXAMPLE))
import pyservices  # noqa: E402, F401  (the example's meshnet services, for the tests)


def skynet_table(
    *, expose: list[str] | None = None, peers: dict[str, int] | None = None, **keys: object
) -> dict:
    """The [cluster] table of node "meshnode" (id 1): a skynet listener on a free loopback
    port exposing ``expose`` (default ``["pyecho"]``; None with ``expose=[]``: no listener),
    and the skynet nodes ``peers`` (name = port) in its cluster table."""
    table: dict = {
        "secret": SECRET,
        "nodes": {"meshnode": {"address": f"{HOST}:{free_port()}", "id": 1}},
        **keys,
    }
    expose = ["pyecho"] if expose is None else expose
    if expose:
        table.setdefault("skynet_listen", f"{HOST}:{free_port()}")
        table["skynet_expose"] = expose
    for name, port in (peers or {}).items():
        table["nodes"][name] = {"address": f"{HOST}:{port}", "protocol": "skynet"}
    return table


def port_of(host_port: str) -> int:
    return int(host_port.rpartition(":")[2])


@asynccontextmanager
async def meshnode(table: dict, **node_options):
    """Node "meshnode" of ``table``, in this trio run, with the strict codec."""
    async with open_node(1, "meshnode", **{"strict_codec": True, **node_options}) as node:
        await start(node, parse_cluster(table, REPO, "meshnode"))
        yield node


class SkynetClient:
    """What a skynet node's clustersender does on a connection to the listener: writes
    request bytes, reads answers (each with the raw packets it came in)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._splitter = Splitter()
        self._decoder = wire.ResponseDecoder()
        self._raw = b""
        self._done: list[tuple[wire.Response, bytes]] = []
        self.session = 0

    @classmethod
    @asynccontextmanager
    async def connect(cls, port: int):
        stream = await trio.open_tcp_stream(HOST, port)
        async with stream:
            yield cls(stream)

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def call(self, address: int | str, *values: object) -> tuple[bool, object]:
        """A call as skynet makes it; (True, the values) or (False, the error text)."""
        self.session += 1
        await self.send(wire.encode_request(address, self.session, seri.pack(*values)))
        response, _ = await self.answer()
        assert response.session == self.session
        if response.ok:
            return True, list(seri.unpack(response.payload))
        return False, response.payload.decode()

    async def push(self, address: int | str, *values: object) -> None:
        self.session += 1
        await self.send(wire.encode_push(address, self.session, seri.pack(*values)))

    async def answer(self) -> tuple[wire.Response, bytes]:
        """The next answer and its packets' bytes."""
        with trio.fail_after(WAIT):
            while not self._done:
                data = await self.stream.receive_some(65536)
                if not data:
                    raise EOFError("the listener closed the connection")
                self._take(data)
        return self._done.pop(0)

    async def closed(self) -> bool:
        """True once the listener has closed the connection (reading whatever comes)."""
        with trio.move_on_after(WAIT):
            try:
                while await self.stream.receive_some(65536):
                    pass
            except trio.BrokenResourceError:
                pass
            return True
        return False

    def _take(self, data: bytes) -> None:
        for packet in self._splitter.feed(data):
            raw = len(packet).to_bytes(2, "big") + packet
            self._raw += raw
            for response in self._decoder.feed(raw):
                self._done.append((response, self._raw))
                self._raw = b""


Answer = Callable[[wire.Request, bytes], Awaitable[bytes | None]]
"""A fake skynet node's reply to a request (and its raw packets): the bytes to write, or
``CLOSE`` to close the connection."""
CLOSE: Any = object()


@asynccontextmanager
async def fake_skynet(answer: Answer, port: int = 0):
    """A skynet node's cluster port on ``port`` (0: a free one), answering with ``answer``;
    yields the port and the connections it took (each a list of the requests it read)."""
    connections: list[list[wire.Request]] = []

    async def serve(stream: trio.SocketStream) -> None:
        requests: list[wire.Request] = []
        connections.append(requests)
        splitter, decoder, raw = Splitter(), wire.RequestDecoder(), b""
        try:
            while data := await stream.receive_some(65536):
                for packet in splitter.feed(data):
                    raw += len(packet).to_bytes(2, "big") + packet
                    for request in decoder.feed(len(packet).to_bytes(2, "big") + packet):
                        requests.append(request)
                        reply = await answer(request, raw)
                        raw = b""
                        if reply is CLOSE:
                            await stream.aclose()
                            return
                        if reply:
                            await stream.send_all(reply)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(partial(trio.serve_tcp, serve, port, host=HOST))
        yield listener.socket.getsockname()[1], connections
        nursery.cancel_scope.cancel()


async def echo_answer(request: wire.Request, raw: bytes) -> bytes | None:
    """A fake skynet service answering every call with its arguments (not the command)."""
    if request.push:
        return None
    values = seri.unpack(request.payload)
    return wire.encode_response(request.session, True, seri.pack(*values[1:]))

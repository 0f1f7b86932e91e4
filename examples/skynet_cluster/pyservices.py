"""The meshnet side of the skynet cluster example: ``PyEcho``, which skynet calls as
``cluster.call("meshnode", "@pyecho", ...)``, and ``Main``, which calls skynet's
``skecho`` once the skynet node is up and logs what came back."""

from __future__ import annotations

import logging

from meshnet import CallError, NodeDown, Service, command
from meshnet.cluster import api

log = logging.getLogger(__name__)

SKYNET_NODE = "sknode"


class PyEcho(Service):
    """Registered as ``pyecho`` (and exposed to skynet by ``cluster.skynet_expose``)."""

    async def init(self) -> None:
        self.notes: list[str] = []
        await api.register("pyecho")

    @command
    async def hello(self, name: str) -> str:
        return f"hello {name}, from meshnet"

    @command
    async def add(self, a: int, b: int) -> int:
        return a + b

    @command
    async def echo(self, value: object) -> object:
        return value

    @command
    async def fail(self, why: str) -> None:
        raise ValueError(why)

    @command
    async def note(self, text: str) -> None:
        self.notes.append(text)

    @command
    async def notes_so_far(self) -> list[str]:
        return self.notes


class Main(Service):
    """Starts ``PyEcho``, then talks to the skynet node until it has answered once."""

    async def init(self) -> None:
        await self.newservice(PyEcho)
        self.fork(self._talk)

    async def _talk(self) -> None:
        while True:
            try:
                lines = await talk_to_skynet()
            except NodeDown as exc:
                log.info("waiting for %s: %s", SKYNET_NODE, exc.remote_message)
                await self.sleep(1.0)
                continue
            log.info("what %s answered:\n  %s", SKYNET_NODE, "\n  ".join(lines))
            return


async def talk_to_skynet() -> list[str]:
    """Call skynet's ``skecho`` every way the cluster API offers; one line for each."""
    lines = []

    def said(what: str, value: object) -> None:
        lines.append(f"{what} -> {value!r}")

    hello = await api.call(SKYNET_NODE, "@skecho", "hello", "meshnet", wait=True)
    said("call @skecho hello", hello)
    said("call @skecho add 2 40", await api.call(SKYNET_NODE, "@skecho", "add", 2, 40))
    said("call @skecho pair", await api.call(SKYNET_NODE, "@skecho", "pair", "a", [1, 2]))
    await api.send(SKYNET_NODE, "@skecho", "note", "sent from meshnet")
    said("call @skecho notes", await api.call(SKYNET_NODE, "@skecho", "notes"))
    address = await api.query(SKYNET_NODE, "skecho")
    said("query skecho", str(address))
    said("call it by address", await api.call(SKYNET_NODE, address, "hello", "by address"))
    echoed = await api.call(SKYNET_NODE, "@skecho", "echo", "x" * 100_000)
    said("call @skecho echo 100000 bytes", len(echoed))
    for name, why in (("@skecho", "on purpose"), ("@nobody", "")):
        try:
            await api.call(SKYNET_NODE, name, "fail", why)
        except CallError as exc:
            said(f"call {name} fail", exc)
    return lines

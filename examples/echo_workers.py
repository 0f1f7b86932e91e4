"""An echo gate (skynet's gate + agent, reduced to echo) to run as several workers.

``examples/echo_workers.toml`` runs it as ``workers = 2``: both workers listen on port
8200 and the kernel hands each connection to one of them. Each connection gets an agent
of its own on the worker it landed on, which writes every packet back; nothing crosses
workers, so the workers need no cluster. ``bench/gate_workers.py`` measures it.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from meshnet import NoSuchService, Service, command
from meshnet.gate import GateServer, connections


class EchoAgent(Service):
    """The agent of one connection: writes each packet back."""

    async def init(self) -> None:
        self.clients = connections(self.node)

    async def on_client(self, fd: int, packet: bytes) -> None:
        self.clients.write(fd, packet)

    @command
    async def quit(self) -> None:
        """The connection closed."""
        await self.exit()


class Echo(GateServer):
    """The gate: a new agent per connection, told to quit when the connection ends."""

    async def init(self, conf: dict[str, Any]) -> None:
        self.agents: dict[int, int] = {}
        await super().init(conf)

    async def connect(self, fd: int, addr: str) -> None:
        self.agents[fd] = await self.newservice(EchoAgent)
        await self.forward(fd, self.agents[fd])

    async def disconnect(self, fd: int) -> None:
        agent = self.agents.pop(fd)
        with suppress(NoSuchService):  # already gone: a stopping node stops agents first
            await self.send(agent, "quit")

"""The gate's reactor (plain TCP): packets handed over in its task, to an agent's handler
as the agent's, and what happens when a hook or a handler suspends there."""

from __future__ import annotations

import trio
from gate_helpers import Recorder, connect, start_gate, wait_for

from meshnet import Service, command
from meshnet.context import current_service
from meshnet.gate import connections
from meshnet.log import current_address

EVENTS: list[str] = []


class Agent(Service):
    """Echoes; ``wait`` waits for ``go``; ``who`` answers who the handler runs as;
    ``never`` waits until cancelled, and takes a moment to end even then."""

    async def on_client(self, fd: int, packet: bytes) -> None:
        clients = connections(self.node)
        if packet == b"who":
            ctx = current_service.get()
            clients.write(fd, f"{ctx.label} {current_address.get()}".encode())
        elif packet == b"wait":
            await self.wait("go")
            clients.write(fd, b"woke")
        elif packet == b"never":
            EVENTS.append("waiting")
            try:
                await self.wait("never")
            finally:
                with trio.CancelScope(shield=True):
                    await trio.sleep(0.05)
                EVENTS.append("handler ended")
        else:
            clients.write(fd, packet)

    async def on_exit(self) -> None:
        EVENTS.append("on_exit")

    @command
    async def go(self) -> bool:
        return self.wakeup("go")


class AgentGate(Recorder):
    """Forwards each connection to a new ``Agent``."""

    auto_open = False

    async def connect(self, fd: int, addr: str) -> None:
        await super().connect(fd, addr)
        self.agents = getattr(self, "agents", {})
        self.agents[fd] = await self.newservice(Agent)
        await self.forward(fd, self.agents[fd])

    @command
    async def agent_of(self, fd: int) -> int:
        return self.agents[fd]


class SlowHook(Recorder):
    """Its ``message`` hook waits for ``go`` on a packet ``slow``, then echoes as ever."""

    async def message(self, fd: int, packet: bytes) -> None:
        self._record("message", fd, packet)
        if packet == b"slow":
            await self.wait("go")
            self._record("returned", fd)
        self.connections.write(fd, packet)

    @command
    async def go(self) -> bool:
        return self.wakeup("go")


async def agent_of(node, gate: int) -> int:
    [[_, fd, _]] = await wait_for(node, gate, "connect")
    return await node.call(gate, "agent_of", fd)


async def test_an_agents_handler_run_by_the_reactor_runs_as_the_agent(node):
    gate, port = await start_gate(node, "tcp", AgentGate)
    async with connect("tcp", port) as client:
        assert await client.request(b"hi") == b"hi"
        agent = await agent_of(node, gate)
        label = str(node.local(agent).address)
        assert await client.request(b"who") == f"{label} {label}".encode()


async def test_an_agents_handler_that_suspends_does_not_hold_up_other_connections(node):
    gate, port = await start_gate(node, "tcp", AgentGate)
    async with connect("tcp", port) as waiting, connect("tcp", port) as other:
        await waiting.send(b"wait")
        assert await other.request(b"hi") == b"hi"
        assert await waiting.request(b"meanwhile") == b"meanwhile"  # the agent takes more
        agents = [
            await node.call(gate, "agent_of", event[1])
            for event in await wait_for(node, gate, "connect", 2)
        ]
        assert [await node.call(agent, "go") for agent in agents].count(True) == 1
        assert await waiting.receive() == b"woke"


async def test_a_suspended_agents_handler_is_cancelled_when_the_agent_stops_which_waits(node):
    EVENTS.clear()
    gate, port = await start_gate(node, "tcp", AgentGate)
    async with connect("tcp", port) as client:
        assert await client.request(b"hi") == b"hi"
        agent = await agent_of(node, gate)
        await client.send(b"never")
        while not EVENTS:
            await trio.sleep(0.01)
        await node.kill(agent)
    assert EVENTS == ["waiting", "handler ended", "on_exit"]


async def test_a_suspended_agents_handler_is_not_cancelled_when_the_gate_stops(node):
    gate, port = await start_gate(node, "tcp", AgentGate)
    async with connect("tcp", port) as client:
        assert await client.request(b"hi") == b"hi"
        agent = await agent_of(node, gate)
        await client.send(b"wait")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(node.kill, gate)
            await trio.sleep(0.05)
            assert await node.call(agent, "go")  # still waiting, not cancelled


async def test_a_message_hook_that_suspends_holds_its_connection_only(node):
    gate, port = await start_gate(node, "tcp", SlowHook)
    async with connect("tcp", port) as slow, connect("tcp", port) as other:
        await slow.send(b"slow")
        await slow.send(b"next")
        assert await other.request(b"hi") == b"hi"
        assert await node.call(gate, "go")
        assert [await slow.receive(), await slow.receive()] == [b"slow", b"next"]


async def test_a_kick_while_a_hook_is_suspended_waits_for_it_before_disconnect(node):
    gate, port = await start_gate(node, "tcp", SlowHook)
    async with connect("tcp", port) as client:
        await client.send(b"slow")
        [[_, fd, _]] = await wait_for(node, gate, "message")
        assert await node.call(gate, "kick", fd)
        await trio.sleep(0.05)
        assert await node.call(gate, "go")
        assert await client.receive() is None  # the reply came after the close: dropped
    await wait_for(node, gate, "disconnect")
    hooks = [event[0] for event in await node.call(gate, "events")]
    assert hooks == ["connect", "message", "returned", "disconnect"]


class OneAtATime(Service):
    """One handler at a time, one message waiting: ``hold`` waits for ``RELEASE``."""

    max_concurrency = 1
    mailbox_size = 1

    async def on_client(self, fd: int, packet: bytes) -> None:
        if packet == b"hold":
            await RELEASE[0].wait()
        connections(self.node).write(fd, packet)


RELEASE: list[trio.Event] = []


class OneAtATimeGate(AgentGate):
    async def connect(self, fd: int, addr: str) -> None:
        self.agents = getattr(self, "agents", {})
        self.agents[fd] = await self.newservice(OneAtATime)
        await self.forward(fd, self.agents[fd])
        self._record("connect", fd, addr)


async def test_packets_for_an_agent_with_a_full_mailbox_wait_their_turn_in_order(node):
    RELEASE[:] = [trio.Event()]
    gate, port = await start_gate(node, "tcp", OneAtATimeGate)
    async with connect("tcp", port) as client:
        sent = [b"hold", *(b"%d" % n for n in range(10))]
        for packet in sent:
            await client.send(packet)
        await trio.sleep(0.05)  # the mailbox fills; the rest waits in the connection
        RELEASE[0].set()
        assert [await client.receive() for _ in sent] == sent

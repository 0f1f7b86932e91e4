"""The gateserver template over TCP and WebSocket: opening, connection limits, letting
packets in, kicking, forwarding to agents, writing back."""

import pytest
import trio
import trio_websocket
from gate_helpers import (
    HOST,
    Manual,
    Recorder,
    Watchdog,
    connect,
    listen_conf,
    start_gate,
    wait_for,
)

from meshnet import CallError, command
from meshnet.framing import MAX_PAYLOAD, pack
from meshnet.gate import GateServer, connections


async def test_open_on_port_0_reports_the_bound_port(node, kind):
    gate = await node.newservice(Recorder)
    ports = await node.call(gate, "open", listen_conf(kind))
    port = ports[{"tcp": "port", "ws": "ws_port"}[kind]]
    assert port > 0
    assert await node.call(gate, "ports") == ports
    async with connect(kind, port) as client:
        assert await client.request(b"hello") == b"hello"


async def test_one_gate_serves_tcp_and_websocket_at_once(node):
    gate = await node.newservice(Recorder, {"address": HOST, "port": 0, "ws_port": 0})
    ports = await node.call(gate, "ports")
    async with connect("tcp", ports["port"]) as tcp, connect("ws", ports["ws_port"]) as ws:
        assert await tcp.request(b"by tcp") == b"by tcp"
        assert await ws.request(b"by ws") == b"by ws"


async def test_open_twice_is_refused_and_close_stops_listening(node):
    gate, port = await start_gate(node, "tcp", Recorder)
    with pytest.raises(CallError, match="already open"):
        await node.call(gate, "open", listen_conf("tcp"))
    async with connect("tcp", port) as client:
        await node.call(gate, "close")
        assert await node.call(gate, "ports") == {}
        assert await client.request(b"still served") == b"still served"
    with pytest.raises(OSError):
        await trio.open_tcp_stream(HOST, port)


async def test_a_bad_conf_names_the_key(node):
    gate = await node.newservice(Recorder)
    with pytest.raises(CallError, match="maxclient"):
        await node.call(gate, "open", {"port": 0, "maxclient": 0})
    with pytest.raises(CallError, match="unknown gate conf key 'prot'"):
        await node.call(gate, "open", {"prot": 0})


async def test_zero_length_and_largest_packets_pass(node, kind):
    gate, port = await start_gate(node, kind, Recorder)
    async with connect(kind, port) as client:
        assert await client.request(b"") == b""
        big = bytes(range(256)) * 255 + b"x" * 255
        assert len(big) == MAX_PAYLOAD
        assert await client.request(big) == big


async def test_maxclient_serves_exactly_n_and_closes_the_next_at_once(node, kind, caplog):
    gate, port = await start_gate(node, kind, Recorder, maxclient=2)
    async with connect(kind, port) as first, connect(kind, port) as second:
        assert await first.request(b"1") == b"1"
        assert await second.request(b"2") == b"2"
        await assert_refused(kind, port)
        assert any("maxclient 2 reached" in r.getMessage() for r in caplog.records)
        assert await first.request(b"still 1") == b"still 1"
    await wait_for(node, gate, "disconnect", 2)
    async with connect(kind, port) as third:
        assert await third.request(b"3") == b"3"


async def assert_refused(kind, port):
    if kind == "ws":
        with pytest.raises(trio_websocket.ConnectionRejected) as refused:
            async with connect(kind, port):
                pass
        assert refused.value.status_code == 503
        return
    async with connect(kind, port) as extra:
        await extra.send(b"ignored")
        assert await extra.closed_by_server()


async def test_nothing_is_read_before_openclient(node, kind):
    gate, port = await start_gate(node, kind, Manual)
    async with connect(kind, port) as client:
        [[_, fd, addr]] = await wait_for(node, gate, "connect")
        assert addr.startswith(HOST + ":")
        await client.send(b"early")
        await trio.sleep(0.2)
        assert [e[0] for e in await node.call(gate, "events")] == ["connect"]
        assert await node.call(gate, "let_in", fd)
        assert await client.receive() == b"early"


async def test_kick_closes_the_connection_without_an_error(node, kind):
    gate, port = await start_gate(node, kind, Recorder)
    async with connect(kind, port) as client:
        assert await client.request(b"hi") == b"hi"
        [[_, fd, _]] = await wait_for(node, gate, "connect")
        assert await node.call(gate, "kick", fd)
        assert await client.closed_by_server()
    await wait_for(node, gate, "disconnect")
    assert not [e for e in await node.call(gate, "events") if e[0] == "error"]
    assert not await node.call(gate, "kick", fd)


async def test_forwarded_packets_reach_the_agent_which_writes_back(node, kind):
    gate, port = await start_gate(node, kind, Watchdog)
    async with connect(kind, port) as one, connect(kind, port) as two:
        assert await one.request(b"abc") == b"ABC"
        assert await two.request(b"xyz") == b"XYZ"
        assert await one.request(b"def") == b"DEF"
    saw = await wait_for(node, gate, "agent_saw", 3)
    agents = {fd: agent for _, fd, agent, _ in saw}
    assert len(set(agents.values())) == 2  # one agent per connection
    assert [packet for *_, packet in saw] == [b"abc", b"xyz", b"def"]
    assert not [e for e in await node.call(gate, "events") if e[0] == "message"]


async def test_any_service_or_the_write_command_writes_to_a_connection(node, kind):
    gate, port = await start_gate(node, kind, Manual)
    async with connect(kind, port) as client:
        [[_, fd, _]] = await wait_for(node, gate, "connect")
        assert connections(node).write(fd, b"direct")
        assert await node.call(gate, "write", fd, b"by command")
        assert await client.receive() == b"direct"
        assert await client.receive() == b"by command"
        await node.call(gate, "let_in", fd)  # only a connection let in reads the close
    await wait_for(node, gate, "disconnect")
    assert not connections(node).write(fd, b"too late")
    assert not await node.call(gate, "write", fd, b"too late")


class Faulty(Recorder):
    async def message(self, fd, packet):
        if packet == b"crash":
            raise RuntimeError("bug in the message hook")
        await super().message(fd, packet)


async def test_a_failing_hook_closes_only_its_connection(node, kind, caplog):
    gate, port = await start_gate(node, kind, Faulty)
    async with connect(kind, port) as victim, connect(kind, port) as bystander:
        await victim.send(b"crash")
        assert await victim.closed_by_server()
        assert await bystander.request(b"fine") == b"fine"
    [[_, _, message]] = await wait_for(node, gate, "error")
    assert message == "internal error"
    assert any(r.exc_info and "message hook failed" in r.getMessage() for r in caplog.records)


async def test_a_gate_without_message_hook_says_so(node, caplog):
    class Bare(GateServer):
        async def connect(self, fd, addr):
            self.openclient(fd)

    gate, port = await start_gate(node, "tcp", Bare)
    async with connect("tcp", port) as client:
        await client.send(b"x")
        assert await client.closed_by_server()
    errors = [str(r.exc_info[1]) for r in caplog.records if r.exc_info]
    assert any("does not override message()" in text for text in errors)


class ClosesOnBye(Recorder):
    """Closes a connection from its message hook when the packet is ``bye``."""

    async def message(self, fd: int, packet: bytes) -> None:
        await super().message(fd, packet)
        if packet == b"bye":
            self.closeclient(fd)


async def test_packets_after_a_hook_closed_the_connection_are_not_delivered(node):
    gate, port = await start_gate(node, "tcp", ClosesOnBye)
    async with connect("tcp", port) as client:
        # One write: the gate reads all three packets at once, then the hook closes.
        await client.send_raw(pack(b"hi") + pack(b"bye") + pack(b"ignored"))
        assert await client.closed_by_server()
    await node.call(gate, "wait_for", "disconnect")  # every packet has been dealt with
    delivered = [call[2] for call in await node.call(gate, "wait_for", "message")]
    assert delivered == [b"hi", b"bye"]


class WaitsInItsHook(Recorder):
    """The message hook of packet ``wait`` waits for ``release`` before it writes back."""

    def __init__(self) -> None:
        super().__init__()
        self.released = trio.Event()

    async def message(self, fd: int, packet: bytes) -> None:
        if packet != b"wait":
            return await super().message(fd, packet)
        self._record("hook started", fd)
        await self.released.wait()
        self._record("hook finished", fd, self.connections.write(fd, b"too late"))

    @command
    async def release(self) -> None:
        self.released.set()


async def test_a_kick_lets_a_running_message_hook_finish_then_ends_the_connection(node, kind):
    gate, port = await start_gate(node, kind, WaitsInItsHook)
    async with connect(kind, port) as client:
        await client.send(b"wait")
        [[_, fd]] = await wait_for(node, gate, "hook started")
        assert await node.call(gate, "kick", fd)
        await node.call(gate, "release")
        assert await client.closed_by_server()  # and "too late" never came
    await wait_for(node, gate, "disconnect")
    hooks = [event[0] for event in await node.call(gate, "events")]
    assert hooks == ["connect", "hook started", "hook finished", "disconnect"]
    [[_, _, written]] = await wait_for(node, gate, "hook finished")
    assert written is False  # the connection was closing: the write was dropped


async def test_the_heartbeat_closes_a_connection_once_its_running_hook_returns(
    node, kind, autojump_clock
):
    gate, port = await start_gate(node, kind, WaitsInItsHook, heartbeat=2)
    async with connect(kind, port) as client:
        await client.send(b"wait")
        await wait_for(node, gate, "hook started")
        await trio.sleep(3)  # past the heartbeat, the hook still waiting
        assert [e[0] for e in await node.call(gate, "events")][-1] == "hook started"
        await node.call(gate, "release")
        assert await client.closed_by_server()
    [[_, _, message]] = await wait_for(node, gate, "error")
    assert message == "heartbeat: no packet received for 2s"
    hooks = [event[0] for event in await node.call(gate, "events")]
    assert hooks == ["connect", "hook started", "hook finished", "error", "disconnect"]


async def test_a_reply_is_not_held_back_by_a_later_hook_that_waits(node):
    gate, port = await start_gate(node, "tcp", WaitsInItsHook)
    async with connect("tcp", port) as client:
        await client.send_raw(pack(b"first") + pack(b"wait"))  # read together
        await wait_for(node, gate, "hook started")
        assert await client.receive() == b"first"  # while the second hook still waits
        await node.call(gate, "release")

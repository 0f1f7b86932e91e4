"""What a link promises: order per pair across nodes, big messages that hold up only their
own pair, full mailboxes that stall nothing else, and no way in without the secret."""

import logging

import pytest
import trio
from cluster_setup import HOST, SECRET, cluster_table, linked_nodes

from meshnet import NodeDown, Service, command
from meshnet.cluster import connect, of
from meshnet.cluster.link import WINDOW


class Asker(Service):
    """Notes what it observes, in order: the code after a call, and later messages."""

    async def init(self):
        self.events = []

    @command
    async def ask(self, answerer, tag):
        result = await self.call(answerer, "answer_then_send", self.address, tag)
        self.events.append(f"after call {result}")

    @command
    async def note(self, tag):
        self.events.append(f"note {tag}")

    @command
    async def observed(self):
        events, self.events = self.events, []
        return events


class Answerer(Service):
    @command
    async def answer_then_send(self, asker, tag):
        self.response()(tag)
        await self.send(asker, "note", tag)


async def test_code_after_a_remote_call_runs_before_what_the_answerer_sent_next(autojump_clock):
    async with linked_nodes(["a", "b"]) as nodes:
        asker, answerer = await nodes["a"].newservice(Asker), await nodes["b"].newservice(Answerer)
        for tag in range(20):
            await nodes["a"].call(asker, "ask", answerer, tag)
            with trio.fail_after(5):
                while len(events := await nodes["a"].call(asker, "observed", timeout=None)) < 2:
                    await trio.sleep(0.01)
            assert events == [f"after call {tag}", f"note {tag}"]


class Recorder(Service):
    """Records the messages it takes, in arrival order."""

    async def init(self):
        self.arrivals = []

    @command
    async def take(self, tag, data=None):
        self.arrivals.append(tag)

    @command
    async def arrived(self):
        return self.arrivals


class Sender(Service):
    @command
    async def send_to(self, target, tag, size):
        await self.send(target, "take", tag, b"x" * size)


async def test_a_big_message_holds_up_only_its_own_pair(autojump_clock):
    async with linked_nodes(["a", "b"]) as nodes:
        recorder = await nodes["b"].newservice(Recorder)
        big, small = await nodes["a"].newservice(Sender), await nodes["a"].newservice(Sender)
        await nodes["a"].call(big, "send_to", recorder, "big", 8 * 1024 * 1024)
        await nodes["a"].call(small, "send_to", recorder, "small", 10)
        with trio.fail_after(20):
            while len(await nodes["b"].call(recorder, "arrived")) < 2:
                await trio.sleep(0.01)
        assert await nodes["b"].call(recorder, "arrived") == ["small", "big"]


class Stuck(Service):
    """One handler at most, blocked until released: its small mailbox fills."""

    mailbox_size = 4
    max_concurrency = 1

    async def init(self):
        self.released = trio.Event()
        self.taken = 0

    @command
    async def block(self):
        await self.released.wait()

    @command
    async def note(self, value):
        self.taken += 1

    @command
    async def count(self):
        return self.taken


class Flooder(Service):
    async def init(self):
        self.sent = 0

    @command
    async def flood(self, target, count):
        async def go():
            for i in range(count):
                await self.send(target, "note", i)
                self.sent += 1

        self.fork(go)

    @command
    async def sent_so_far(self):
        return self.sent


async def test_a_full_mailbox_on_the_other_node_stalls_no_other_pair(autojump_clock):
    async with linked_nodes(["a", "b"]) as nodes:
        stuck, recorder = await nodes["b"].newservice(Stuck), await nodes["b"].newservice(Recorder)
        await nodes["b"].send(stuck, "block")
        flooder = await nodes["a"].newservice(Flooder)
        await nodes["a"].call(flooder, "flood", stuck, 3 * WINDOW)
        await trio.sleep(1)
        sent = await nodes["a"].call(flooder, "sent_so_far")
        assert sent < 3 * WINDOW  # the flooder waits for credit...
        for tag in range(50):  # ...while the other pairs of the link go on
            await nodes["a"].call(recorder, "take", tag)
        assert len(await nodes["b"].call(recorder, "arrived")) == 50
        nodes["b"].context_of(stuck).instance.released.set()
        with trio.fail_after(20):
            while await nodes["b"].call(stuck, "count") < 3 * WINDOW:
                await trio.sleep(0.05)


async def test_a_node_without_the_secret_cannot_link_and_delivers_nothing(autojump_clock, caplog):
    table = cluster_table(["a", "b"])
    impostor = {**table, "secret": "not the cluster's secret at all"}
    async with linked_nodes(["b"], table) as real, linked_nodes(["a"], impostor) as fake:
        recorder = await real["b"].newservice(Recorder)
        with pytest.raises(NodeDown, match="refused|secret"):
            await fake["a"].call(recorder, "take", "injected")
        assert await real["b"].call(recorder, "arrived") == []
    assert any("wrong cluster secret" in r.getMessage() for r in caplog.records)


async def test_idle_unauthenticated_connections_lock_out_no_node(autojump_clock):
    table = cluster_table(["a", "b"], max_handshakes=4, handshake_timeout=60)
    async with linked_nodes(["a", "b"], table) as nodes:
        port = of(nodes["b"]).port
        idle = [await trio.open_tcp_stream(HOST, port) for _ in range(20)]
        recorder = await nodes["b"].newservice(Recorder)
        await nodes["a"].call(recorder, "take", "through")
        assert await nodes["b"].call(recorder, "arrived") == ["through"]
        for stream in idle:
            await stream.aclose()


async def test_a_silent_connection_is_closed_at_the_handshake_deadline(autojump_clock, caplog):
    caplog.set_level(logging.INFO)
    table = cluster_table(["a", "b"], handshake_timeout=2)
    async with linked_nodes(["b"], table) as nodes:
        stream = await trio.open_tcp_stream(HOST, of(nodes["b"]).port)
        with trio.fail_after(10):
            assert await stream.receive_some(100) == b""
    assert any("no handshake within 2s" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("garbage", [b"\x00\x00\x00\x02\x63?", b"\xff\xff\xff\xff"])
async def test_a_node_that_breaks_the_protocol_loses_its_link_and_nothing_else(
    autojump_clock, caplog, garbage
):
    table = cluster_table(["a", "b", "c"])
    async with linked_nodes(["a", "b"], table) as nodes:
        recorder = await nodes["b"].newservice(Recorder)
        await nodes["a"].call(recorder, "take", "before")
        b = of(nodes["b"]).discovery.member("b")
        me = connect.Hello("c", 3, 99, connect.handshake.new_nonce())
        opened = await connect.dial(b, me, SECRET.encode(), 5)
        await opened.stream.send_all(garbage)
        with trio.fail_after(10):
            assert await opened.stream.receive_some(1000) == b""  # b closed it
        await nodes["a"].call(recorder, "take", "after")  # b's cluster still works
        assert await nodes["b"].call(recorder, "arrived") == ["before", "after"]
    assert any("broke the protocol" in r.getMessage() for r in caplog.records)

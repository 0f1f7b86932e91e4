"""Node processes linked with this test's own node: what callers see when a node is
killed, comes back, or stops reading."""

import signal

import pytest
import trio
from cluster_setup import (
    WAIT,
    NodeProcess,
    cluster_table,
    linked_nodes,
    node_config,
    wait_until,
)

from meshnet import CallError, NodeDown
from meshnet.cluster import of


@pytest.fixture
def cluster(tmp_path):
    """The cluster table of a test node ``t`` and a node process ``b`` (not started)."""
    table = cluster_table(["t", "b"])
    process = NodeProcess(node_config(tmp_path, "b", table, "cluster_services:Main", []))
    yield table, process
    process.stop()


async def reach(node, target="b@store") -> None:
    """Wait until ``target`` answers (the node process takes a moment to start)."""
    with trio.fail_after(WAIT):
        while True:
            try:
                await node.call(target, "get", "k", timeout=1)
                return
            except NodeDown:
                await trio.sleep(0.05)


async def test_a_node_killed_mid_call_fails_the_call_at_once_and_links_recover(cluster):
    table, process = cluster
    process.start()
    async with linked_nodes(["t"], table) as nodes:
        await reach(nodes["t"])
        failures = []

        async def hang():
            try:
                await nodes["t"].call("b@store", "hang", timeout=None)
            except NodeDown as exc:
                failures.append(exc)

        caller = nodes["t"].context_of(nodes["t"].services()[0])
        with trio.fail_after(WAIT):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(hang)
                await wait_until(lambda: caller.pending, "the call is in flight")
                await trio.sleep(0.2)  # ...and has reached the node, most likely
                process.kill()
        assert failures and isinstance(failures[0], NodeDown)
        with pytest.raises(NodeDown):
            await nodes["t"].call("b@store", "get", "k")  # down: fails at once
        process.start()
        await reach(nodes["t"])
        await nodes["t"].call("b@store", "set", "k", "back")
        assert await nodes["t"].call("b@store", "get", "k") == "back"


async def test_a_node_that_stops_reading_is_declared_down_by_the_heartbeat(cluster):
    table, process = cluster
    process.start()
    async with linked_nodes(["t"], table) as nodes:
        await reach(nodes["t"])
        process.signal(signal.SIGSTOP)
        try:
            with trio.fail_after(WAIT), pytest.raises(NodeDown, match="pings"):
                await nodes["t"].call("b@store", "hang", timeout=None)
            [link] = of(nodes["t"]).links()
            assert link.state == "down"
        finally:
            process.signal(signal.SIGCONT)


async def test_a_node_killed_while_messages_flow_to_it_leaves_this_node_in_the_cluster(cluster):
    # the kill makes the writer's send fail (broken pipe, reset) inside the link's nursery
    table, process = cluster
    process.start()
    async with linked_nodes(["t"], table) as nodes:
        node = nodes["t"]
        await reach(node)
        killed = trio.Event()

        async def flood():
            while not killed.is_set():
                try:
                    await node.send("b@store", "set", "k", "x" * 200_000)
                except CallError:
                    await trio.sleep(0.01)

        with trio.fail_after(WAIT):
            async with trio.open_nursery() as nursery:
                for _ in range(50):
                    nursery.start_soon(flood)
                await trio.sleep(0.5)
                process.kill()
                await trio.sleep(0.5)
                killed.set()
        assert node.lookup(".cluster") is not None
        process.start()
        await reach(node)

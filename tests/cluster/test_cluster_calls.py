"""Calls and sends between the services of linked nodes, and what a caller learns when
they fail: remote error, node down, timeout."""

import pytest
import trio
from cluster_setup import Store, linked_nodes

from meshnet import (
    Address,
    CallError,
    CallTimeout,
    CodecError,
    NodeDown,
    NoSuchService,
    Service,
    ServiceExited,
    UnknownCommand,
    command,
)
from meshnet.cluster import of
from meshnet.cluster.wire import MAX_MESSAGE, MessageTooLarge
from meshnet.timers import TICK


async def test_a_call_reaches_a_service_on_another_node_by_address(autojump_clock):
    async with linked_nodes(["a", "b"]) as nodes:
        store = await nodes["b"].newservice(Store)
        await nodes["a"].call(store, "set", "k", [1, "two"])
        assert await nodes["a"].call(store, "get", "k") == [1, "two"]


async def test_a_call_reaches_a_node_local_name_on_another_node(autojump_clock):
    async with linked_nodes(["a", "b"]) as nodes:
        await nodes["b"].newservice(Store, ".kv")
        await nodes["a"].call("b@.kv", "set", "k", 3)
        assert await nodes["a"].call("b@.kv", "get", "k") == 3


async def test_sends_and_calls_from_one_sender_arrive_in_order_across_nodes(autojump_clock):
    async with linked_nodes(["a", "b"]) as nodes:
        store = await nodes["b"].newservice(Store)
        for value in range(300):  # more than a credit window
            await nodes["a"].send(store, "set", "k", value)
        assert await nodes["a"].call(store, "seen_values") == list(range(300))


async def test_a_remote_exception_arrives_as_call_error_with_its_type_and_message(
    autojump_clock,
):
    async with linked_nodes(["a", "b"]) as nodes:
        store = await nodes["b"].newservice(Store)
        with pytest.raises(CallError) as caught:
            await nodes["a"].call(store, "fail", "boom")
        assert caught.value.remote_type == "KeyError" and "boom" in caught.value.remote_message


@pytest.mark.parametrize(
    "command, error",
    [("nope", UnknownCommand), ("quit", ServiceExited)],
)
async def test_meshnets_own_errors_keep_their_type_across_nodes(autojump_clock, command, error):
    async with linked_nodes(["a", "b"]) as nodes:
        store = await nodes["b"].newservice(Store)
        with pytest.raises(error):
            await nodes["a"].call(store, command)


async def test_a_call_to_an_address_with_no_service_there_is_no_such_service(autojump_clock):
    async with linked_nodes(["a", "b"]) as nodes:
        store = await nodes["b"].newservice(Store)
        await nodes["b"].kill(store)
        with pytest.raises(NoSuchService):
            await nodes["a"].call(store, "get", "k")


async def test_a_remote_call_times_out_as_its_own_error(autojump_clock):
    async with linked_nodes(["a", "b"]) as nodes:
        store = await nodes["b"].newservice(Store)
        with pytest.raises(CallTimeout):
            await nodes["a"].call(store, "never", timeout=2)


async def test_a_call_to_an_unknown_node_fails_at_once_with_node_down(autojump_clock):
    async with linked_nodes(["a", "b"]) as nodes:
        with pytest.raises(NodeDown):
            await nodes["a"].call(Address.make(9, 5), "get", "k")
        with pytest.raises(NodeDown):
            await nodes["a"].call("nowhere@.store", "get", "k")


@pytest.mark.parametrize("strict, error", [(False, MessageTooLarge), (True, CodecError)])
async def test_a_message_over_the_size_limit_is_refused_where_it_is_sent(
    autojump_clock, strict, error
):
    async with linked_nodes(["a", "b"], strict_codec=strict) as nodes:
        store = await nodes["b"].newservice(Store)
        with pytest.raises(error, match="over"):
            await nodes["a"].call(store, "set", "k", b"x" * (MAX_MESSAGE + 1))
        assert await nodes["a"].call(store, "get", "k") is None


async def test_a_big_message_crosses_in_parts(autojump_clock):
    async with linked_nodes(["a", "b"]) as nodes:
        store = await nodes["b"].newservice(Store)
        big = bytes(range(256)) * 4000  # about a megabyte: sixteen parts
        await nodes["a"].call(store, "set", "k", big)
        assert await nodes["a"].call(store, "get", "k") == big


async def test_the_cluster_reports_its_links(autojump_clock):
    async with linked_nodes(["a", "b"]) as nodes:
        store = await nodes["b"].newservice(Store)
        await nodes["a"].call(store, "get", "k")
        [link] = of(nodes["a"]).links()
        assert (link.member.name, link.state) == ("b", "up")


class Relay(Service):
    """Handles a call from another node by calling a service that never answers."""

    async def init(self):
        self.gave_up_after = None

    @command
    async def relay(self, target):
        started = trio.current_time()
        try:
            await self.call(target, "never")  # the node default would be 30 s
        except CallTimeout:
            self.gave_up_after = trio.current_time() - started
            raise

    @command
    async def gave_up(self):
        return self.gave_up_after


async def test_calls_made_for_a_remote_caller_end_by_its_deadline(autojump_clock):
    async with linked_nodes(["a", "b"]) as nodes:
        store, relay = await nodes["b"].newservice(Store), await nodes["b"].newservice(Relay)
        with pytest.raises(CallTimeout):
            await nodes["a"].call(relay, "relay", store, timeout=2)
        await trio.sleep(5)
        assert await nodes["b"].call(relay, "gave_up") < 2 + 3 * TICK  # not the 30 s default

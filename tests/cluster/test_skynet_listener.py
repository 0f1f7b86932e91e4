"""The listener skynet nodes call (meshnet.cluster.skynet.listener): what a skynet node can
reach, what it gets back, and what bad input does; a raw skynet client stands in for it."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

import pytest
import trio
from cluster_setup import HOST
from skynet_setup import SkynetClient, meshnode, port_of, pyservices, skynet_table
from skynet_vectors import split_packets

from meshnet import Service, command
from meshnet.address import MAX_HANDLE
from meshnet.cluster import api
from meshnet.cluster.skynet import seri, wire
from meshnet.cluster.skynet.listener import BUFFERED_MESSAGES, NAME, SkynetAgent
from meshnet.framing import pack as frame

MAX_MESSAGE = 0x10000


class Slow(Service):
    """Registered as "slow": its calls wait until released; it answers what skynet cannot take."""

    async def init(self) -> None:
        self.started = 0
        self.released = trio.Event()
        await api.register("slow")

    @command
    async def wait(self, data: bytes) -> int:
        self.started += 1
        await self.released.wait()
        return len(data)

    @command
    async def never(self) -> None:
        await trio.sleep_forever()

    @command
    async def huge(self) -> int:
        return 2**64  # CBOR takes it, a Lua integer cannot hold it


@asynccontextmanager
async def listening(**keys):
    """Node "meshnode" exposing pyecho (and what ``expose`` says), and a skynet client."""
    table = skynet_table(**keys)
    async with meshnode(table) as node:
        await node.newservice(pyservices.PyEcho)
        async with SkynetClient.connect(port_of(table["skynet_listen"])) as client:
            yield node, client


def agents(node) -> int:
    return sum(isinstance(node.context_of(a).instance, SkynetAgent) for a in node.services())


# --- what a skynet node reaches --------------------------------------------------------


async def test_a_call_by_name_reaches_the_exposed_service_and_returns_one_lua_value(
    autojump_clock,
):
    async with listening() as (_, client):
        assert await client.call("@pyecho", "hello", "skynet") == (
            True,
            ["hello skynet, from meshnet"],
        )
        assert await client.call("@pyecho", "echo", {"k": [1, 2.5, b"\xff"]}) == (
            True,
            [{"k": [1, 2.5, b"\xff"]}],
        )


async def test_a_handler_returning_none_answers_nil(autojump_clock):
    async with listening() as (_, client):
        assert await client.call("@pyecho", "note", "x") == (True, [None])


async def test_pushes_and_calls_from_one_connection_reach_the_service_in_order(autojump_clock):
    async with listening() as (_, client):
        for n in range(300):
            await client.push("@pyecho", "note", f"push {n}")
        assert await client.call("@pyecho", "notes_so_far") == (
            True,
            [[f"push {n}" for n in range(300)]],
        )


async def test_a_name_query_gives_the_address_skynet_then_calls(autojump_clock):
    async with listening() as (node, client):
        ok, [address] = await client.call(wire.QUERY_ADDRESS, "pyecho")
        assert ok and address == _registered(node, "pyecho") & MAX_HANDLE
        assert await client.call(address, "add", 2, 40) == (True, [42])


async def test_an_exposed_node_local_name_is_reached_by_its_dot_name(autojump_clock):
    async with listening(expose=["pyecho", ".slow"]) as (node, client):
        slow = await node.newservice(Slow)
        node.register(".slow", slow)
        assert await client.call(".slow", "huge") == (
            False,
            "call failed: meshnode@.slow answered integer 18446744073709551616 does not fit "
            "in 64 bits (Lua integers are int64)",
        )


async def test_a_traced_request_is_answered_as_any_other(autojump_clock):
    async with listening() as (_, client):
        await client.send(wire.encode_trace("(sknode-meshnode-1)trace"))
        assert await client.call("@pyecho", "add", 1, 2) == (True, [3])


# --- what it does not reach ------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    ["@slow", ".slow", "slow", "@.slow", "pyecho", b"@\xff", "@nobody"],
    ids=["registered", "local", "bare", "at-dot", "bare-exposed", "not-utf8", "unknown"],
)
async def test_names_not_exposed_answer_invalid_name_as_skynet_does(
    autojump_clock, caplog, address
):
    async with listening() as (node, client):
        slow = await node.newservice(Slow)
        node.register(".slow", slow)
        assert await client.call(address, "never") == (False, "Invalid name")
        assert "not exposed to skynet" in caplog.text


async def test_an_address_not_exposed_answers_invalid_name(autojump_clock):
    async with listening() as (node, client):
        slow = await node.newservice(Slow)
        for address in (slow.handle, node.lookup(".cluster").handle, node.lookup(NAME).handle):
            assert await client.call(address, "never") == (False, "Invalid name")


async def test_a_query_for_a_name_not_exposed_answers_name_not_found(autojump_clock):
    async with listening() as (node, client):
        await node.newservice(Slow)
        for name in ("slow", "nobody", ".cluster", 7):
            assert await client.call(wire.QUERY_ADDRESS, name) == (False, "name not found")


async def test_an_exposed_name_nobody_holds_now_answers_invalid_name(autojump_clock):
    async with listening(expose=["pyecho", "slow"]) as (node, client):
        slow = await node.newservice(Slow)
        assert await client.call("@slow", "huge") == (
            False,
            "call failed: meshnode@slow answered integer 18446744073709551616 does not fit "
            "in 64 bits (Lua integers are int64)",
        )
        await node.kill(slow)
        assert await client.call("@slow", "huge") == (False, "Invalid name")
        assert await client.call(wire.QUERY_ADDRESS, "slow") == (False, "name not found")


# --- failures ---------------------------------------------------------------------------


async def test_a_handler_that_raises_answers_call_failed_and_keeps_serving(autojump_clock, caplog):
    async with listening() as (_, client):
        assert await client.call("@pyecho", "fail", "on purpose") == (
            False,
            "call failed: meshnode@pyecho raised ValueError",
        )
        assert "ValueError: on purpose" in caplog.text  # the error stays in meshnet's log
        assert await client.call("@pyecho", "add", 1, 1) == (True, [2])


async def test_an_unknown_command_answers_call_failed_naming_it(autojump_clock):
    async with listening() as (_, client):
        ok, text = await client.call("@pyecho", "nosuch")
        assert not ok and text.startswith("call failed: meshnode@pyecho: UnknownCommand: ")
        assert "'nosuch'" in text


async def test_a_call_past_the_nodes_deadline_answers_call_failed(autojump_clock):
    table = skynet_table(expose=["slow"])
    async with meshnode(table, call_timeout=2.0) as node:
        await node.newservice(Slow)
        async with SkynetClient.connect(port_of(table["skynet_listen"])) as client:
            assert await client.call("@slow", "never") == (
                False,
                "call failed: meshnode@slow: CallTimeout: no answer within 2s",
            )


@pytest.mark.parametrize("payload", [b"", seri.pack(42, "x"), seri.pack(b"\xff"), b"\x07"])
async def test_a_payload_that_is_no_command_answers_call_failed(autojump_clock, payload):
    async with listening() as (_, client):
        await client.send(wire.encode_request("@pyecho", 9, payload))
        response, _ = await client.answer()
        assert response.session == 9 and not response.ok
        assert response.payload.startswith(b"call failed: bad request: ")
        assert await client.call("@pyecho", "add", 1, 1) == (True, [2])


# --- bad input and limits -----------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [
        frame(b"\x07whatever"),  # no such packet type
        frame(b""),  # an empty packet
        frame(b"\x02" + (5).to_bytes(4, "little") + b"part"),  # a part with no header
        frame(
            b"\x81\x04@abc" + (1).to_bytes(4, "little") + (MAX_MESSAGE + 1).to_bytes(4, "little")
        ),
    ],
    ids=["unknown-type", "empty", "part-without-header", "over-max-message"],
)
async def test_garbage_closes_only_its_own_connection(autojump_clock, caplog, garbage):
    table = skynet_table(skynet_max_message=MAX_MESSAGE)
    async with meshnode(table) as node:
        await node.newservice(pyservices.PyEcho)
        port = port_of(table["skynet_listen"])
        async with SkynetClient.connect(port) as good, SkynetClient.connect(port) as bad:
            assert await good.call("@pyecho", "add", 1, 1) == (True, [2])
            await bad.send(garbage)
            assert await bad.closed()
            assert "closed the skynet connection from" in caplog.text
            assert await good.call("@pyecho", "add", 2, 2) == (True, [4])
        assert await node.call(_registered(node, "pyecho"), "add", 3, 3) == 6


async def test_unfinished_large_requests_past_the_buffer_limit_close_the_connection(
    autojump_clock, caplog
):
    budget = BUFFERED_MESSAGES * MAX_MESSAGE
    part = wire.MULTI_PART
    async with listening(skynet_max_message=MAX_MESSAGE) as (_, client):
        for session in range(1, budget // part + 2):  # each: a header and its first part
            packets = wire.encode_request("@pyecho", session, bytes(MAX_MESSAGE))
            await client.send(b"".join(split_packets(packets)[:2]))
        assert await client.closed()
    assert "unfinished large requests, over the limit" in caplog.text


async def test_a_connection_is_not_read_past_its_buffer_while_its_requests_wait(autojump_clock):
    size, count = 60000, 20
    budget = BUFFERED_MESSAGES * MAX_MESSAGE
    table = skynet_table(expose=["slow"], skynet_max_message=MAX_MESSAGE)
    async with meshnode(table, call_timeout=None) as node:
        slow = node.context_of(await node.newservice(Slow)).instance
        async with SkynetClient.connect(port_of(table["skynet_listen"])) as client:
            requests = b"".join(
                wire.encode_request("@slow", session, seri.pack("wait", bytes(size)))
                for session in range(1, count + 1)
            )
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client.send, requests)  # in the background: it may block
                await trio.sleep(1)
                assert slow.started == budget // size  # the others wait, unread
                slow.released.set()
            answered = {(await client.answer())[0].session for _ in range(count)}
        assert answered == set(range(1, count + 1)) and slow.started == count


async def test_connections_past_the_maximum_are_closed_at_once(autojump_clock, caplog):
    table = skynet_table(skynet_max_connections=2)
    async with meshnode(table) as node:
        await node.newservice(pyservices.PyEcho)
        port = port_of(table["skynet_listen"])
        async with SkynetClient.connect(port) as first, SkynetClient.connect(port) as second:
            assert await first.call("@pyecho", "add", 1, 1) == (True, [2])
            assert await second.call("@pyecho", "add", 1, 1) == (True, [2])
            async with SkynetClient.connect(port) as third:
                assert await third.closed()
            assert "maxclient 2 reached" in caplog.text
            assert await first.call("@pyecho", "add", 2, 2) == (True, [4])


async def test_a_connection_from_outside_the_allow_list_is_closed_at_once(autojump_clock, caplog):
    async with listening(skynet_allow=["10.9.9.0/24"]) as (node, client):
        assert await client.closed()
    assert f"refused a skynet connection from {HOST}" in caplog.text
    assert "not in cluster.skynet_allow" in caplog.text


async def test_a_connection_from_the_allow_list_is_served(autojump_clock):
    async with listening(skynet_allow=["10.9.9.0/24", HOST]) as (_, client):
        assert await client.call("@pyecho", "add", 1, 1) == (True, [2])


async def test_each_connection_has_an_agent_service_that_ends_with_it(autojump_clock):
    table = skynet_table()
    async with meshnode(table) as node:
        await node.newservice(pyservices.PyEcho)
        async with SkynetClient.connect(port_of(table["skynet_listen"])) as client:
            assert await client.call("@pyecho", "add", 1, 1) == (True, [2])
            assert agents(node) == 1
        await trio.sleep(1)
        assert agents(node) == 0


async def test_calls_in_flight_when_the_skynet_node_goes_are_dropped(autojump_clock, caplog):
    table = skynet_table(expose=["slow"])
    async with meshnode(table) as node:
        slow = node.context_of(await node.newservice(Slow)).instance
        with caplog.at_level(logging.INFO):
            async with SkynetClient.connect(port_of(table["skynet_listen"])) as client:
                await client.send(wire.encode_request("@slow", 1, seri.pack("wait", b"x")))
                await trio.sleep(1)
            await trio.sleep(1)
        assert agents(node) == 0 and slow.started == 1
        slow.released.set()  # its answer has nowhere to go: dropped, counted, no harm
        await trio.sleep(1)
        assert await node.call(_registered(node, "slow"), "huge") == 2**64


def _registered(node, name: str) -> int:
    return api.of(node).registered[name]

"""Calls from meshnet to skynet nodes (meshnet.cluster.skynet.peer): what goes on the wire,
what comes back, and what happens when the skynet node is away or misbehaves; fake skynet
nodes stand in for real ones."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

import pytest
import trio
from cluster_setup import HOST, REPO, SECRET, free_port
from console_client import connect, start_console
from skynet_setup import CLOSE, echo_answer, fake_skynet, meshnode, pyservices, skynet_table

from meshnet import (
    Address,
    CallError,
    CallTimeout,
    NodeDown,
    NoSuchService,
    Service,
    UnknownKind,
    command,
    open_node,
)
from meshnet.cluster import api, of, parse_cluster, start
from meshnet.cluster.skynet import seri, wire
from meshnet.cluster.skynet.peer import MAX_UNSENT, SkynetPeer
from meshnet.cluster.skynet.seri import SeriPackError
from meshnet.cluster.skynet.wire import SkynetWireError


class Caller(Service):
    """Makes the cluster API's calls for a test (they act for the current service)."""

    @command
    async def call(self, node, target, name, *args):
        return await api.call(node, target, name, *args)

    @command
    async def call_waiting(self, node, target, name, *args):
        return await api.call(node, target, name, *args, wait=True)

    @command
    async def send(self, node, target, name, *args):
        await api.send(node, target, name, *args)

    @command
    async def query(self, node, name):
        return await api.query(node, name)


@asynccontextmanager
async def calling(answer=echo_answer, strict_codec=True, **keys):
    """A fake skynet node "sknode", and node "meshnode" (no listener) with a Caller."""
    async with fake_skynet(answer) as (port, connections):
        table = skynet_table(expose=[], peers={"sknode": port}, **keys)
        async with meshnode(table, strict_codec=strict_codec) as node:
            yield node, await node.newservice(Caller), connections


def answering(*values):
    async def answer(request, raw):
        return wire.encode_response(request.session, True, seri.pack(*values))

    return answer


def failing(text):
    async def answer(request, raw):
        return wire.encode_response(request.session, False, text)

    return answer


def requests(connections):
    return [(r.address, r.session, r.push, seri.unpack(r.payload)) for c in connections for r in c]


# --- what goes out, what comes back ----------------------------------------------------


async def test_a_call_by_name_is_skynets_request_and_returns_the_one_value(autojump_clock):
    async with calling(answering("hi")) as (node, caller, connections):
        assert (
            await node.call(caller, "call", "sknode", "@echo", "hello", "x", [1, {"k": 2}]) == "hi"
        )
    assert requests(connections) == [("@echo", 1, False, ("hello", "x", [1, {"k": 2}]))]


@pytest.mark.parametrize(
    ("values", "returned"),
    [((), None), ((None,), None), (("a", [1, 2]), ("a", [1, 2])), ((b"\xff", 2.5), (b"\xff", 2.5))],
    ids=["none", "nil", "several", "bytes-and-real"],
)
async def test_lua_return_values_come_back_as_one_python_value(autojump_clock, values, returned):
    async with calling(answering(*values)) as (node, _, _connections):
        assert await node.call("sknode@echo", "echo") == returned


@pytest.mark.parametrize(
    ("target", "address"),
    [
        (("sknode", "@echo"), "@echo"),
        (("sknode", ".echo"), ".echo"),
        (("sknode", 0x0A), 0x0A),
        (("sknode", 0x0200000A), 0x0200000A),  # skynet's harbor 2
    ],
    ids=["registered", "local", "address", "harbor-address"],
)
async def test_cluster_call_targets_are_skynets_addresses(autojump_clock, target, address):
    async with calling() as (node, caller, connections):
        assert await node.call(caller, "call", *target, "echo", 1) == 1
    assert requests(connections)[0][0] == address


@pytest.mark.parametrize(
    ("target", "address"),
    [("sknode@echo", "@echo"), ("sknode@.echo", ".echo"), ("sknode@:0000000a", 0x0A)],
    ids=["registered", "local", "address"],
)
async def test_plain_calls_reach_skynet_targets_by_node_at_name(autojump_clock, target, address):
    async with calling() as (node, _, connections):
        assert await node.call(target, "echo", "x") == "x"
    assert requests(connections)[0][0] == address


async def test_a_cluster_wide_name_can_live_on_a_skynet_node(autojump_clock):
    async with calling(names={"lobby": "sknode"}) as (node, _, connections):
        assert await node.call("lobby", "echo", 7) == 7
    assert requests(connections)[0][0] == "@lobby"


async def test_a_proxy_forwards_to_a_skynet_service(autojump_clock):
    async with calling() as (node, _, connections):
        proxy = of(node).proxy("sknode", "@echo")
        assert await node.call(proxy, "echo", 5) == 5
    assert requests(connections)[0][0] == "@echo"


async def test_sessions_are_taken_as_skynets_clustersender_takes_them(autojump_clock):
    large = "x" * wire.MULTI_PART
    async with calling() as (node, caller, connections):
        await node.call(caller, "call", "sknode", "@echo", "a")
        await node.call(caller, "send", "sknode", "@echo", "small push")
        await node.call(caller, "send", "sknode", "@echo", "large push", large)
        await node.call(caller, "call", "sknode", "@echo", "b")
    sessions = [(session, push) for _, session, push, _ in requests(connections)]
    # a one-packet push writes session 0 and takes none; a large one carries and takes one
    assert sessions == [(1, False), (0, True), (2, True), (3, False)]


async def test_sends_and_calls_go_out_in_order_on_one_connection(autojump_clock):
    async with calling() as (node, caller, connections):
        for n in range(300):
            await node.call(caller, "send", "sknode", "@echo", "note", n)
        assert await node.call(caller, "call", "sknode", "@echo", "done") is None
    [connection] = connections
    assert [seri.unpack(r.payload)[1:] for r in connection] == [(n,) for n in range(300)] + [()]


async def test_a_large_call_and_its_large_answer_cross_in_parts(autojump_clock):
    data = bytes(range(256)) * 1000
    async with calling() as (node, caller, _):
        assert await node.call(caller, "call", "sknode", "@echo", "echo", data) == data


async def test_a_query_asks_address_zero_and_returns_skynets_address(autojump_clock):
    async with calling(answering(0x0A)) as (node, caller, connections):
        address = await node.call(caller, "query", "sknode", "echo")
        assert address == 0x0A and str(Address(address)) == ":0000000a"
    assert requests(connections) == [(0, 1, False, ("echo",))]


async def test_a_query_skynet_cannot_answer_raises_no_such_service(autojump_clock):
    async with calling(failing("name not found")) as (node, caller, _):
        with pytest.raises(CallError) as caught:  # through the Caller service: its CallError
            await node.call(caller, "query", "sknode", "nobody")
    assert caught.value.remote_type == "NoSuchService"
    assert "skynet answered 'name not found'" in caught.value.remote_message


# --- errors from skynet ---------------------------------------------------------------------


async def test_skynets_invalid_name_is_no_such_service(autojump_clock):
    async with calling(failing("Invalid name")) as (node, _, _connections):
        with pytest.raises(NoSuchService) as caught:
            await node.call("sknode@nobody", "hello")
    assert caught.value.target == "sknode@nobody"
    assert (
        caught.value.remote_message == "skynet answered 'Invalid name': nothing has that name there"
    )


async def test_a_skynet_service_that_raised_is_a_call_error_saying_all_skynet_tells(
    autojump_clock,
):
    async with calling(failing("/skynet/lualib/skynet.lua:720: call failed")) as (node, caller, _):
        with pytest.raises(CallError) as caught:
            await node.call("sknode@echo", "fail")
    assert type(caught.value) is CallError
    assert (caught.value.target, caught.value.remote_type) == ("sknode@echo", "SkynetError")
    assert caught.value.remote_message.startswith("/skynet/lualib/skynet.lua:720: call failed (")
    assert "the skynet node's log has the error" in caught.value.remote_message


async def test_other_skynet_errors_keep_skynets_text(autojump_clock):
    async with calling(failing(b"Invalid large req \xff")) as (node, caller, _):
        with pytest.raises(CallError, match="SkynetError: Invalid large req \ufffd$"):
            await node.call("sknode@echo", "x")


async def test_an_answer_that_is_no_skynet_value_is_a_protocol_error(autojump_clock):
    async def answer(request, raw):
        if seri.unpack(request.payload)[0] == "bad":
            return wire.encode_response(request.session, True, b"\x07")
        return await echo_answer(request, raw)

    async with calling(answer) as (node, caller, connections):
        with pytest.raises(CallError, match="ProtocolError: undecodable answer from skynet"):
            await node.call("sknode@echo", "bad")
        assert await node.call("sknode@echo", "good", "still served") == "still served"
    assert len(connections) == 1


# --- what cannot go ---------------------------------------------------------------------------


async def test_what_skynet_cannot_take_fails_the_call_before_anything_is_sent(autojump_clock):
    async with calling(strict_codec=False) as (node, _, connections):
        with pytest.raises(SeriPackError, match="set cannot be packed"):
            await node.call("sknode@echo", "x", {1, 2})
        with pytest.raises(SkynetWireError, match="name of 301 bytes"):
            await node.call("sknode@" + "n" * 300, "x")
        assert await node.call("sknode@echo", "x", "fine") == "fine"
    assert len(requests(connections)) == 1


async def test_a_post_to_a_skynet_service_is_refused(autojump_clock):
    async with calling() as (node, _, _connections):
        with pytest.raises(UnknownKind, match="sknode@echo is a skynet service"):
            await node.text("sknode@echo", "a line")


async def test_a_malformed_skynet_address_is_no_such_service(autojump_clock):
    async with calling() as (node, _, _connections):
        with pytest.raises(NoSuchService, match="sknode@:zz"):
            await node.call("sknode@:zz", "x")


# --- the skynet node away ---------------------------------------------------------------------


async def test_calls_to_a_skynet_node_that_is_not_up_fail_with_node_down(autojump_clock):
    table = skynet_table(expose=[], peers={"sknode": free_port()})
    async with meshnode(table) as node:
        with pytest.raises(NodeDown, match="cannot connect to skynet node sknode"):
            await node.call("sknode@echo", "x")
        with pytest.raises(NodeDown, match="the connection is down"):
            await node.call("sknode@echo", "x")


async def test_a_call_with_wait_waits_for_the_skynet_node_to_come_up(autojump_clock):
    port = free_port()
    async with meshnode(skynet_table(expose=[], peers={"sknode": port})) as node:
        caller = await node.newservice(Caller)
        async with trio.open_nursery() as nursery:

            async def later():
                await trio.sleep(3)
                async with fake_skynet(answering("up"), port):
                    await trio.sleep(10)

            nursery.start_soon(later)
            assert await node.call(caller, "call_waiting", "sknode", "@echo", "x") == "up"


async def test_a_dropped_connection_fails_calls_in_flight_and_comes_back(autojump_clock):
    async def answer(request, raw):
        if seri.unpack(request.payload)[0] == "drop":
            return CLOSE
        return await echo_answer(request, raw)

    async with calling(answer) as (node, caller, connections):
        with pytest.raises(NodeDown, match="the skynet node closed the connection"):
            await node.call("sknode@echo", "drop")
        assert await node.call(caller, "call_waiting", "sknode", "@echo", "back") is None
    assert len(connections) == 2


async def test_garbage_from_skynet_closes_the_connection_and_fails_its_calls(
    autojump_clock, caplog
):
    async def answer(request, raw):
        return b"\x00\x02\x00\x00"  # a response packet shorter than 5 bytes

    async with calling(answer) as (node, caller, _):
        with pytest.raises(NodeDown, match="protocol error: response packet of 2 bytes"):
            await node.call("sknode@echo", "x")
    assert "skynet node sknode broke the protocol" in caplog.text


async def test_an_answer_larger_than_skynet_max_message_closes_the_connection(autojump_clock):
    async def answer(request, raw):
        return wire.encode_response(request.session, True, bytes(0x10001))

    async with calling(answer, skynet_max_message=0x10000) as (node, caller, _):
        with pytest.raises(NodeDown, match="over the limit of 65536 bytes"):
            await node.call("sknode@echo", "x")


async def test_senders_wait_while_the_skynet_node_does_not_read(autojump_clock):
    reading = trio.Event()

    async def answer(request, raw):
        await reading.wait()
        return None

    chunk = bytes(60000)
    async with calling(answer) as (node, caller, connections):
        sent = 0
        with trio.move_on_after(5):
            while True:
                await node.send("sknode@echo", "note", chunk)
                sent += 1
        peer = of(node).link(of(node).discovery.member("sknode"))
        assert isinstance(peer, SkynetPeer)
        assert peer._unsent <= MAX_UNSENT + 2 * len(chunk)  # what the kernel does not hold waits
        reading.set()
        await node.send("sknode@echo", "note", b"last")
        await trio.sleep(5)
        [connection] = connections
        assert len(connection) == sent + 1


async def test_an_answer_after_the_callers_deadline_is_dropped(autojump_clock):
    async def answer(request, raw):
        if seri.unpack(request.payload)[0] == "slow":
            await trio.sleep(5)
        return await echo_answer(request, raw)

    async with calling(answer) as (node, _, _connections):
        with pytest.raises(CallTimeout):
            await node.call("sknode@echo", "slow", timeout=1)
        await trio.sleep(10)
        assert await node.call("sknode@echo", "fast", 1) == 1


async def test_a_skynet_node_marked_absent_fails_at_once(autojump_clock):
    table = skynet_table(expose=[], peers={"sknode": free_port()})
    table["nodes"]["sknode"]["absent"] = True
    async with meshnode(table) as node:
        with pytest.raises(NodeDown, match="marked absent"):
            await node.call("sknode@echo", "x")


async def test_a_reloaded_cluster_file_moves_the_skynet_node(autojump_clock, tmp_path):
    async with (
        fake_skynet(answering("first")) as (first, _),
        fake_skynet(answering("second")) as (
            second,
            _,
        ),
    ):
        file = tmp_path / "cluster.toml"
        me = f'meshnode = {{ address = "{HOST}:{free_port()}", id = 1 }}\n'
        file.write_text(
            f'[nodes]\n{me}sknode = {{ address = "{HOST}:{first}", protocol = "skynet" }}\n'
        )
        table = {"secret": SECRET, "file": str(file)}
        async with meshnode(table) as node:
            assert await node.call("sknode@echo", "x") == "first"
            file.write_text(
                f'[nodes]\n{me}sknode = {{ address = "{HOST}:{second}", protocol = "skynet" }}\n'
            )
            assert of(node).discovery.reload() == {"sknode"}
            assert await node.call("sknode@echo", "x") == "second"


# --- meshnet on both ends --------------------------------------------------------------------


async def test_a_meshnet_node_can_be_a_skynet_node_to_another(autojump_clock):
    """Node "meshnode" serves skynet's protocol; node "other" lists it as a skynet node."""
    served = skynet_table()
    table = {
        "secret": SECRET,
        "nodes": {
            "other": {"address": f"{HOST}:{free_port()}", "id": 2},
            "meshnode": {"address": served["skynet_listen"], "protocol": "skynet"},
        },
    }
    async with meshnode(served) as node, open_node(2, "other", strict_codec=True) as other:
        await node.newservice(pyservices.PyEcho)
        await start(other, parse_cluster(table, REPO, "other"))
        caller = await other.newservice(Caller)
        assert await other.call(caller, "call", "meshnode", "@pyecho", "add", 2, 40) == 42
        for n in range(5):
            await other.call(caller, "send", "meshnode", "@pyecho", "note", f"n{n}")
        notes = await other.call(caller, "call", "meshnode", "@pyecho", "notes_so_far")
        assert notes == [f"n{n}" for n in range(5)]
        address = await other.call(caller, "query", "meshnode", "pyecho")
        assert await other.call(caller, "call", "meshnode", address, "hello", "x") == (
            "hello x, from meshnet"
        )
        with pytest.raises(CallError, match="call failed: meshnode@pyecho raised ValueError"):
            await other.call("meshnode@pyecho", "fail", "why")
        with pytest.raises(NoSuchService, match="Invalid name"):
            await other.call("meshnode@hidden", "x")


async def test_a_skynet_node_leaving_the_view_after_a_drop_is_not_served_again(
    autojump_clock, tmp_path, caplog
):
    async def answer(request, raw):
        return CLOSE

    caplog.set_level(logging.INFO)
    async with fake_skynet(answer) as (port, connections):
        file = tmp_path / "cluster.toml"
        me = f'meshnode = {{ address = "{HOST}:{free_port()}", id = 1 }}\n'
        file.write_text(
            f'[nodes]\n{me}sknode = {{ address = "{HOST}:{port}", protocol = "skynet" }}\n'
        )  # noqa: E501
        async with meshnode({"secret": SECRET, "file": str(file)}) as node:
            with pytest.raises(NodeDown, match="closed the connection"):
                await node.call("sknode@echo", "x")
            file.write_text(f"[nodes]\n{me}")  # while its peer waits to dial again
            assert of(node).discovery.reload() == {"sknode"}
            await trio.sleep(10)
            with pytest.raises(NodeDown, match="no node 'sknode'"):
                await node.call("sknode@echo", "x")
    assert caplog.text.count("connection to skynet node sknode is up") == 1
    assert len(connections) == 1


async def test_the_console_lists_a_skynet_node_among_the_links(autojump_clock):
    async with calling() as (node, _, _connections):
        assert await node.call("sknode@echo", "x", 1) == 1
        session, _ = await connect(await start_console(node))
        [row] = [line for line in (await session.ok("cluster")).splitlines() if "sknode" in line]
        member = of(node).discovery.member("sknode")
        assert row.split()[:4] == ["sknode", "skynet", member.address, "up"]

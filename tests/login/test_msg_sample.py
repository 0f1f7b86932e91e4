"""examples/login_main.py: skynet's examples/login (login server, gated, msgagent) in one node."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio
from msg_servers import connect, log_in, log_in_again, settled

from meshnet.login.wire import Response

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from login_main import Main  # noqa: E402


@pytest.fixture
async def ports(node):
    await node.newservice(Main, "127.0.0.1", 0, "127.0.0.1", 0)
    login_port = await node.call(".login_master", "port")
    return login_port, (await node.call(".msgserver_sample", "ports"))["port"]


async def test_client_lua_flow(ports):
    """What skynet's client.lua does: echo on session 0, hang up without reading, then
    resend session 0 (as "fake") and send "again" on session 1 over a new connection."""
    login_port, gate_port = ports
    result = await log_in(login_port, "hello")
    assert result.subid == b"1"
    connection = await connect(gate_port, result)
    await connection.send_request(b"echo", 0)
    await settled()
    connection = await connection.reconnect()
    await connection.send_request(b"fake", 0)
    await connection.send_request(b"again", 1)
    with trio.fail_after(5):  # (both wait 0.1 s in the agent: either may come first)
        responses = {await connection.receive_response() for _ in range(2)}
    assert responses == {Response(b"echo", True, 0), Response(b"again", True, 1)}
    await connection.aclose()


async def test_a_second_login_goes_through_the_kick_and_logout_chain(ports):
    login_port, gate_port = ports
    first, second = await log_in_again(login_port, gate_port, "hello")
    assert (first.subid, second.subid) == (b"1", b"2")
    assert (await log_in(login_port, "hello")).subid == b"3"

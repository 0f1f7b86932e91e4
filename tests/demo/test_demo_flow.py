"""The client's whole flow against the game: over TCP, over WebSocket, and the secure path
through the login server and the msgserver."""

import re
import sys

import pytest
import trio
from demo_setup import HOST, NEW_USER_FLOW, secure_user_flow, start_demo, without_agent

from demo_game.client import hub_flow, secure_flow
from demo_game.connection import SecureClient
from demo_game.proto import proto, unpack_packets
from meshnet.login.client import login
from meshnet.login.gateclient import connect_gate

WELCOME = re.compile(r'push: ok \{"text": "welcome (\S+) \(agent :[0-9a-f]{8}\)"\}')


@pytest.mark.parametrize("ws", [False, True], ids=["tcp", "websocket"])
async def test_a_new_user_signs_up_signs_in_logs_in_and_pings(node, tmp_path, ws):
    demo = await start_demo(node, tmp_path / "accounts.sqlite3")
    lines: list[str] = []
    port = demo.hub_ws if ws else demo.hub
    assert await hub_flow(HOST, port, "alice", "secret", ws=ws, say=lines.append)
    assert without_agent(lines) == NEW_USER_FLOW


async def test_a_known_user_signs_in_at_once(node, tmp_path):
    demo = await start_demo(node, tmp_path / "accounts.sqlite3")
    assert await hub_flow(HOST, demo.hub, "alice", "secret", ws=False, say=lambda line: None)
    lines: list[str] = []
    assert await hub_flow(HOST, demo.hub_ws, "alice", "secret", ws=True, say=lines.append)
    assert without_agent(lines) == [NEW_USER_FLOW[0].replace("false", "true"), *NEW_USER_FLOW[3:]]


async def test_the_secure_flow_goes_through_the_login_server_and_the_msgserver(node, tmp_path):
    demo = await start_demo(node, tmp_path / "accounts.sqlite3")
    lines: list[str] = []
    ok = await secure_flow(HOST, demo.login, demo.msgserver, "demo", "bob", "pw", lines.append)
    assert ok
    assert without_agent(lines) == secure_user_flow("bob")


async def test_the_secure_path_and_the_hub_share_accounts(node, tmp_path):
    demo = await start_demo(node, tmp_path / "accounts.sqlite3")
    assert await hub_flow(HOST, demo.hub, "carol", "pw", ws=False, say=lambda line: None)
    lines: list[str] = []
    ok = await secure_flow(HOST, demo.login, demo.msgserver, "demo", "carol", "pw", lines.append)
    assert ok and lines[0] == "signin: ok 200 MQ=="
    lines.clear()
    ok = await secure_flow(HOST, demo.login, demo.msgserver, "demo", "carol", "no", lines.append)
    assert not ok and lines == ["signin: error 401 Unauthorized", "signup: error 401 Unauthorized"]


@pytest.mark.parametrize(
    ("transport", "expected"),
    [
        ([], NEW_USER_FLOW),
        (["--secure"], None),
    ],
    ids=["tcp", "secure"],
)
async def test_the_client_command_prints_each_step_and_exits_0_logged_in(
    node, tmp_path, transport, expected
):
    demo = await start_demo(node, tmp_path / "accounts.sqlite3")
    port = demo.login if transport else demo.hub
    command = [sys.executable, "-m", "demo_game", "client", "--host", HOST, "--port", str(port)]
    command += [*transport, "--msg-port", str(demo.msgserver), "--user", "alice"]
    done = await trio.run_process([*command, "--password", "pw"], capture_stdout=True)
    lines = done.stdout.decode().splitlines()
    assert lines[-1] == "ping: ok {}"
    if expected is not None:
        assert without_agent(lines) == expected
    wrong = await trio.run_process(
        [*command, "--password", "bad"], capture_stdout=True, check=False
    )
    assert wrong.returncode == 1
    assert wrong.stdout.decode().splitlines()[-1].startswith("signup: ")


async def test_the_msgserver_serves_only_the_agent_s_messages(node, tmp_path):
    demo = await start_demo(node, tmp_path / "accounts.sqlite3")
    assert await hub_flow(HOST, demo.hub, "dan", "pw", ws=False, say=lambda line: None)
    result = await login(HOST, demo.login, "demo", "dan", "pw")
    agent = SecureClient(await connect_gate(HOST, demo.msgserver, result, 1))
    try:
        refused = await agent.request("signup", {"user": "eve", "password": "pw"})
        assert refused.reply.error == "signup: sign up and sign in through the login server"
        response = await agent.gate.request(b"\x01 not a packet", 99)
        [error] = unpack_packets(response.content)
        reply = proto.decode_reply(error)
        assert not reply.ok and "malformed request" in reply.error
        assert (await agent.request("login")).ok
    finally:
        await agent.aclose()

"""The demo as ``workers = 2``: two real node processes sharing every port players use.

Each user belongs to one worker (``demo_game.names.owned``); these tests force where
connections land (``workers_setup.connect_to_worker``) and check that a user still has
one agent and one login, whichever worker each connection reaches.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
from demo_setup import CHEAP_SCRYPT
from workers_setup import HOST, WAIT, PortPicker, connect_to_worker, worker_pids

from demo_game.cli import WORKERS_CONFIG
from demo_game.connection import HubClient
from demo_game.launcher import node_config, start_node, stop_node, wait_ready
from demo_game.names import MANAGER, owned
from demo_game.proto import SIGNUP_SERVER, proto, unpack_packets
from meshnet.address import Address
from meshnet.config import load_config
from meshnet.login.client import login
from meshnet.login.gateclient import handshake_gate
from meshnet.supervisor import check_workers
from meshnet.workers import SECRET_ENV, WORKER_ENV, Worker, owner_index

WORKERS = 2
PASSWORD = "correct horse"


@dataclass(frozen=True)
class WorkersDemo:
    hub: int
    login: int
    msgserver: int
    consoles: list[int]
    """Worker i's debug console."""
    supervisor: int


@pytest.fixture
def demo(tmp_path: Path):
    picker = PortPicker()
    ports = {name: picker.block() for name in ("hub", "login", "msgserver", "web")}
    console, links = picker.block(WORKERS), picker.block(WORKERS)
    settings = {
        "hub": {"address": HOST, "port": ports["hub"], "ws_port": 0},
        "login": {"address": HOST, "port": ports["login"]},
        "msgserver": {"address": HOST, "port": ports["msgserver"], "servername": "demo"},
        "web": {"address": HOST, "port": ports["web"]},
        "accounts": {"path": str(tmp_path / "accounts.sqlite3"), **CHEAP_SCRYPT},
    }
    config = tmp_path / "workers.toml"
    config.write_text(
        node_config(
            settings,
            log_level="WARNING",
            node={"workers": WORKERS, "console": f"{HOST}:{console}"},
            cluster={"listen": f"{HOST}:{links}"},
        )
    )
    node = start_node(config)
    try:
        wait_ready(node, "the workers")
        yield WorkersDemo(
            ports["hub"],
            ports["login"],
            ports["msgserver"],
            [console + index for index in range(WORKERS)],
            node.pid,
        )
    finally:
        assert stop_node(node) == 0


async def test_a_reconnect_by_index_landing_on_the_other_worker_gets_200_and_cached_answers(demo):
    await login(HOST, demo.login, SIGNUP_SERVER, "alice", PASSWORD)
    result = await login(HOST, demo.login, "demo", "alice", PASSWORD)
    stream, first = await connect_to_worker(demo.msgserver, demo.consoles, lambda index: True)
    gate = await handshake_gate(stream, HOST, demo.msgserver, result, 1)
    assert (await gate.request(proto.encode_request("login", None, session=1), 1)).ok
    answered = await gate.request(proto.encode_request("ping", None, session=2), 2)
    await gate.aclose()

    stream, second = await connect_to_worker(demo.msgserver, demo.consoles, lambda i: i != first)
    again = await handshake_gate(stream, HOST, demo.msgserver, result, 2)
    # The cache answers a session asked under an earlier handshake, whatever it now holds.
    resent = await again.request(b"not a packet of the demo protocol", 2)
    await again.aclose()

    assert again.status == b"200 OK"
    assert answered.ok and resent == answered


async def test_a_user_has_one_agent_whichever_worker_its_connections_land_on(demo):
    stream, _ = await connect_to_worker(demo.hub, demo.consoles, lambda index: True)
    async with stream:
        await HubClient.on_stream(stream).request("signup", {"user": "bob", "password": PASSWORD})
    hubs = [await connect_to_worker(demo.hub, demo.consoles, index.__eq__) for index in (0, 1)]
    on_worker = [HubClient.on_stream(stream) for stream, _ in hubs]
    for client in on_worker:
        assert (await client.request("signin", {"user": "bob", "password": PASSWORD})).ok
    first = await on_worker[0].request("login")
    second = await on_worker[1].request("login")
    second_ping = await on_worker[1].request("ping")
    result = await login(HOST, demo.login, "demo", "bob", PASSWORD)
    stream, _ = await connect_to_worker(demo.msgserver, demo.consoles, lambda index: True)
    gate = await handshake_gate(stream, HOST, demo.msgserver, result, 1)
    response = await gate.request(proto.encode_request("login", None, session=1), 1)
    secure = proto.decode_reply(unpack_packets(response.content)[-1])
    await gate.aclose()
    for stream, _ in hubs:
        await stream.aclose()

    assert first.ok and [push.body["text"] for push in first.pushes] == [
        f"welcome bob (agent {agent_in(first)})"
    ]
    assert Address.parse(agent_in(first)).node == 1 + owner_index("bob", WORKERS)
    # The same agent on the other worker's connection and on the secure path: one logged in.
    assert second.reply.body == {"ok": False}
    assert second_ping.reply.error == "not logged in"
    assert secure.body == {"ok": False}


def agent_in(answer) -> str:
    """The agent address a ``welcome`` push names."""
    return answer.pushes[0].body["text"].rpartition("agent ")[2].rstrip(")")


async def test_every_worker_serves_the_hub(demo):
    with trio.fail_after(WAIT):
        for index in range(WORKERS):
            stream, _ = await connect_to_worker(demo.hub, demo.consoles, index.__eq__)
            async with stream:
                reply = await HubClient.on_stream(stream).request("ping")
            assert reply.reply.error == "not authenticated"


def test_a_user_s_service_is_called_on_the_worker_that_owns_the_user(monkeypatch):
    owner = owner_index("bob", WORKERS)
    for index, expected in ((owner, MANAGER), (1 - owner, f"game-{owner}@{MANAGER}")):
        monkeypatch.setenv(WORKER_ENV, Worker(index, WORKERS, "game", 10).to_env())
        assert owned(MANAGER, "bob") == expected
    assert owned("manager", "bob") == "manager"  # a cluster-wide name stays as it is


def test_the_demo_s_workers_config_gives_each_worker_its_own_node_and_ports(monkeypatch):
    monkeypatch.setenv(SECRET_ENV, "the supervisor's secret")
    config = load_config(WORKERS_CONFIG)
    check_workers(config)  # every worker's sections parse
    monkeypatch.setenv(WORKER_ENV, Worker(1, config.workers, config.name, config.node_id).to_env())
    worker = load_config(WORKERS_CONFIG)
    assert (config.workers, worker.name, worker.node_id) == (2, "demo-1", 2)
    assert worker.console == ("127.0.0.1", 7001) and worker.metrics == ("127.0.0.1", 9101)


async def test_the_users_of_a_killed_worker_sign_in_again_once_it_is_back(demo):
    user = next(f"user{n}" for n in range(100) if owner_index(f"user{n}", WORKERS) == 1)
    credentials = {"user": user, "password": PASSWORD}
    stream, _ = await connect_to_worker(demo.hub, demo.consoles, lambda index: True)
    async with stream:
        assert (await HubClient.on_stream(stream).request("signup", credentials)).ok
    killed = worker_pids(demo.supervisor)[1]
    os.kill(killed, signal.SIGKILL)
    with trio.fail_after(WAIT * 3):
        while worker_pids(demo.supervisor).get(1) in (None, killed):
            await trio.sleep(0.05)
        while True:  # until worker 0's link to the new worker 1 is up
            stream, _ = await connect_to_worker(demo.hub, demo.consoles, lambda index: index == 0)
            client = HubClient.on_stream(stream)
            signin = await client.request("signin", credentials)
            if signin.ok:
                break
            assert signin.reply.error == "service unavailable"
            await stream.aclose()
            await trio.sleep(0.1)
        login = await client.request("login")
        await stream.aclose()
    assert login.ok
    assert Address.parse(agent_in(login)).node == 2

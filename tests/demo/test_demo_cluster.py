"""The demo game on several nodes (front, game, accounts; the subgame too when there is a
Redis) in one process: the clients see what they see on one node, while everything between
the front's servers and the game's agents crosses a link, and the accounts are another
node's."""

import pytest
import trio
from demo_cluster_setup import NODE_IDS, cluster_demo
from demo_setup import (
    HOST,
    NEW_USER_FLOW,
    WAIT,
    agent_gone,
    agent_in,
    secure_user_flow,
    without_agent,
)

from demo_game.client import hub_flow, secure_flow
from demo_game.connection import open_hub
from demo_game.names import CLUSTER_ACCOUNTS
from meshnet.login.client import login
from meshnet.login.gateclient import HandshakeRefused, connect_gate

CREDENTIALS = {"user": "alice", "password": "secret"}


def welcome_of(lines: list[str]) -> str:
    return next(line for line in lines if line.startswith("push: "))


async def wait_status(cluster, agent: int, **expected: object) -> None:
    """Wait until the agent's status (asked from the front, across the link) has these."""
    with trio.fail_after(WAIT):
        while not expected.items() <= (await cluster.nodes["front"].call(agent, "status")).items():
            await trio.sleep(0.02)


@pytest.mark.parametrize("ws", [False, True], ids=["tcp", "websocket"])
async def test_a_hub_player_plays_the_whole_flow_with_the_agent_on_the_game_node(tmp_path, ws):
    async with cluster_demo(tmp_path) as cluster:
        lines: list[str] = []
        port = cluster.demo.hub_ws if ws else cluster.demo.hub
        assert await hub_flow(HOST, port, "alice", "secret", ws=ws, say=lines.append)
    assert without_agent(lines) == NEW_USER_FLOW  # the welcome push before the login reply
    assert agent_in(welcome_of(lines)).node == NODE_IDS["game"]


async def test_the_secure_flow_reaches_the_agent_on_the_game_node(tmp_path):
    async with cluster_demo(tmp_path) as cluster:
        demo, lines = cluster.demo, []
        assert await secure_flow(
            HOST, demo.login, demo.msgserver, "demo", "bob", "pw", lines.append
        )
    assert without_agent(lines) == secure_user_flow("bob")
    assert agent_in(welcome_of(lines)).node == NODE_IDS["game"]


async def test_a_hub_connection_closing_on_the_front_drops_its_link_on_the_game_node(tmp_path):
    async with cluster_demo(tmp_path) as cluster:
        async with open_hub(HOST, cluster.demo.hub) as hub:
            assert (await hub.request("signup", CREDENTIALS)).ok
            assert (await hub.request("signin", CREDENTIALS)).ok
            assert (await hub.request("login")).ok
            agent = await cluster.agent_of("alice")
            await wait_status(cluster, agent, links=1, logged_in=True)
        await wait_status(cluster, agent, links=0, logged_in=False)


async def signed_up(cluster) -> None:
    async with open_hub(HOST, cluster.demo.hub) as hub:
        assert (await hub.request("signup", CREDENTIALS)).ok


async def test_an_agent_leaving_logs_its_login_out_of_the_msgserver_on_the_front(tmp_path):
    async with cluster_demo(tmp_path, reconnect_window=0.1) as cluster:
        await signed_up(cluster)
        demo = cluster.demo
        first = await login(HOST, demo.login, "demo", "alice", "secret")  # never connects
        await agent_gone(cluster.nodes["game"], "alice", await cluster.agent_of("alice"))
        with pytest.raises(HandshakeRefused) as refused:
            await connect_gate(HOST, demo.msgserver, first, 1)
        assert refused.value.code == 404
        assert (await login(HOST, demo.login, "demo", "alice", "secret")).subid == b"2"


async def test_a_new_login_detaches_the_previous_one_from_the_agent_on_the_game_node(tmp_path):
    async with cluster_demo(tmp_path) as cluster:
        await signed_up(cluster)
        demo = cluster.demo
        first = await login(HOST, demo.login, "demo", "alice", "secret")
        old = await connect_gate(HOST, demo.msgserver, first, 1)
        agent = await cluster.agent_of("alice")
        await wait_status(cluster, agent, links=1, connected=1)
        second = await login(HOST, demo.login, "demo", "alice", "secret")
        new = await connect_gate(HOST, demo.msgserver, second, 1)
        await wait_status(cluster, agent, links=1, connected=1)
        assert await cluster.agent_of("alice") == agent
        with pytest.raises(HandshakeRefused):
            await old.reconnect()
        await new.aclose()


async def test_a_signin_while_the_accounts_are_gone_is_service_unavailable(tmp_path):
    async with cluster_demo(tmp_path) as cluster:
        await signed_up(cluster)
        accounts = cluster.registered("accounts", CLUSTER_ACCOUNTS)
        await cluster.nodes["accounts"].kill(accounts)
        async with open_hub(HOST, cluster.demo.hub) as hub:
            refused = await hub.request("signin", CREDENTIALS)
            assert refused.reply.error == "service unavailable"
            assert (await hub.request("ping")).reply.error == "not authenticated"  # served on

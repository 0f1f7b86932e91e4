"""Agents: one per user, one logged-in link at a time, waiting for the user to come back
within the reconnect window, then leaving; over the hub and through the msgserver."""

from contextlib import AsyncExitStack

import pytest
import trio
from demo_setup import HOST, WAIT, agent_gone, agent_in, agent_of, same_agent, start_demo

from demo_game.agent import Agent
from demo_game.connection import HubClient, SecureClient, open_hub
from demo_game.names import MANAGER
from meshnet import Service, command
from meshnet.address import format_address
from meshnet.gate import Client
from meshnet.login.client import login
from meshnet.login.gateclient import HandshakeRefused, connect_gate

CREDENTIALS = {"user": "alice", "password": "secret"}


async def signed_in(hub: HubClient) -> None:
    if not (await hub.request("signin", CREDENTIALS)).ok:
        assert (await hub.request("signup", CREDENTIALS)).ok
        assert (await hub.request("signin", CREDENTIALS)).ok


async def logged_in(hub: HubClient) -> str:
    """Log in; return the welcome text."""
    answer = await hub.request("login")
    assert answer.ok
    [welcome] = answer.pushes
    return welcome.body["text"]


async def wait_status(node, agent: int, **expected: object) -> None:
    with trio.fail_after(WAIT):
        while not expected.items() <= (await node.call(agent, "status")).items():
            await trio.sleep(0.02)


async def test_a_second_connection_cannot_log_in_until_the_first_leaves(node, tmp_path):
    demo = await start_demo(node, tmp_path / "accounts.sqlite3")
    async with AsyncExitStack() as second_stack:
        async with open_hub(HOST, demo.hub) as first:
            await signed_in(first)
            await logged_in(first)
            agent = await agent_of(node, "alice")
            second = await second_stack.enter_async_context(open_hub(HOST, demo.hub_ws, ws=True))
            await signed_in(second)
            refused = await second.request("login")
            assert (refused.reply.body, refused.pushes) == ({"ok": False}, [])
            assert (await second.request("ping")).reply.error == "not logged in"
            assert (await first.request("ping")).ok
        await wait_status(node, agent, links=1, logged_in=False)
        assert format_address(agent) in await logged_in(second)
        assert (await second.request("ping")).ok
        assert await agent_of(node, "alice") == agent


async def visit(demo, *, ws: bool = False) -> str:
    """Connect, sign in, log in, ping and leave; return the welcome text."""
    async with open_hub(HOST, demo.hub_ws if ws else demo.hub, ws=ws) as hub:
        await signed_in(hub)
        welcome = await logged_in(hub)
        assert (await hub.request("ping")).ok
    return welcome


async def test_a_user_back_within_the_window_gets_the_same_agent(node, tmp_path):
    demo = await start_demo(node, tmp_path / "accounts.sqlite3", reconnect_window=60.0)
    agent = agent_in(await visit(demo))
    await wait_status(node, agent, links=0, connected=0)
    assert agent_in(await visit(demo, ws=True)) == agent
    assert same_agent(await agent_of(node, "alice"), agent)


async def test_an_agent_leaves_after_the_window_and_the_next_signin_gets_a_new_one(node, tmp_path):
    demo = await start_demo(node, tmp_path / "accounts.sqlite3", reconnect_window=0.1)
    agent = agent_in(await visit(demo))
    await agent_gone(node, "alice", agent)
    assert agent_in(await visit(demo)) != agent


async def test_an_agent_waits_while_a_signed_in_connection_stays(node, tmp_path):
    demo = await start_demo(node, tmp_path / "accounts.sqlite3", reconnect_window=0.0)
    async with open_hub(HOST, demo.hub) as first:
        await signed_in(first)
        agent = await agent_of(node, "alice")
        async with open_hub(HOST, demo.hub) as second:
            await signed_in(second)
            await logged_in(second)
        await wait_status(node, agent, links=1, logged_in=False)
        await logged_in(first)  # the agent did not leave: the window starts with no link
    await agent_gone(node, "alice", agent)


async def test_a_second_signin_on_one_connection_is_refused(node, tmp_path):
    demo = await start_demo(node, tmp_path / "accounts.sqlite3")
    async with open_hub(HOST, demo.hub) as hub:
        await signed_in(hub)
        again = await hub.request("signin", CREDENTIALS)
        assert again.reply.error == "already signed in as alice"


async def secure_demo(node, tmp_path, reconnect_window: float) -> tuple:
    """A demo where alice has an account, and a function logging her in through the
    login server."""
    demo = await start_demo(node, tmp_path / "accounts.sqlite3", reconnect_window)
    async with open_hub(HOST, demo.hub) as hub:
        assert (await hub.request("signup", CREDENTIALS)).ok
    return demo, lambda: login(HOST, demo.login, "demo", "alice", "secret")


async def test_a_msgserver_link_stays_connected_across_a_reconnect(node, tmp_path):
    demo, log_in = await secure_demo(node, tmp_path, reconnect_window=60.0)
    connection = await connect_gate(HOST, demo.msgserver, await log_in(), 1)
    agent = await agent_of(node, "alice")
    await wait_status(node, agent, links=1, connected=1)
    await connection.aclose()
    await wait_status(node, agent, links=1, connected=0)
    connection = await connection.reconnect()
    await wait_status(node, agent, links=1, connected=1)
    await connection.aclose()


async def test_an_agent_logs_its_msgserver_login_out_when_it_leaves(node, tmp_path):
    demo, log_in = await secure_demo(node, tmp_path, reconnect_window=0.1)
    first = await log_in()  # and never connects: the window runs from the login
    await agent_gone(node, "alice", await agent_of(node, "alice"))
    with pytest.raises(HandshakeRefused) as refused:
        await connect_gate(HOST, demo.msgserver, first, 1)
    assert refused.value.code == 404
    assert (await log_in()).subid == b"2"


async def test_a_new_login_during_the_countdown_gets_a_whole_window(node, tmp_path, mock_clock):
    mock_clock.rate = 1.0  # real time, plus the jumps below
    demo, log_in = await secure_demo(node, tmp_path, reconnect_window=10.0)
    await log_in()  # and never connects: the agent counts down from here
    agent = await agent_of(node, "alice")
    mock_clock.jump(9.0)
    second = await log_in()
    mock_clock.jump(2.0)  # past the end of the first login's window
    async with await connect_gate(HOST, demo.msgserver, second, 1) as connection:
        assert (await SecureClient(connection).request("login")).ok
    assert await agent_of(node, "alice") == agent


async def test_a_new_login_kicks_the_previous_one_and_keeps_the_agent(node, tmp_path):
    demo, log_in = await secure_demo(node, tmp_path, reconnect_window=60.0)
    first = await log_in()
    old = await connect_gate(HOST, demo.msgserver, first, 1)
    agent = await agent_of(node, "alice")
    new = await connect_gate(HOST, demo.msgserver, await log_in(), 1)
    await wait_status(node, agent, links=1, connected=1)
    assert await agent_of(node, "alice") == agent
    with pytest.raises(HandshakeRefused):
        await old.reconnect()
    await new.aclose()


class ReconnectingMsgServer(Service):
    """Stands in for the msgserver: while it logs a retiring agent's login out, the user's
    client shakes hands again, so the agent hears ``link_connected`` mid-retirement."""

    @command
    async def logout(self, uid: str, subid: int) -> None:
        link = Client(self.address, subid, uid).to_message()
        await self.send(AGENTS[uid], "link_connected", link, True)
        await self.sleep(0.1)  # the agent takes the message before this call returns


class RetireRecorder(Service):
    """Stands in for the manager."""

    async def init(self) -> None:
        self.register(MANAGER)

    @command
    async def retire(self, user: str, agent: int) -> None:
        RETIRED.append(user)


AGENTS: dict[str, int] = {}
"""User -> agent, for ``ReconnectingMsgServer``."""
RETIRED: list[str] = []
"""The users ``RetireRecorder`` was told about."""


async def test_a_reconnect_during_retirement_does_not_stop_the_agent_leaving(node):
    RETIRED.clear()
    msgserver = await node.newservice(ReconnectingMsgServer)
    await node.newservice(RetireRecorder)
    agent = AGENTS["alice"] = await node.newservice(Agent, "alice", 0.0)
    await node.call(agent, "attach", Client(msgserver, 1, "alice").to_message(), True)
    with trio.fail_after(WAIT):
        while agent in node.services():
            await trio.sleep(0.02)
    assert RETIRED == ["alice"]


async def test_a_user_whose_agent_died_can_log_in_again_through_the_login_server(node, tmp_path):
    demo, log_in = await secure_demo(node, tmp_path, reconnect_window=60.0)
    await log_in()
    agent = await agent_of(node, "alice")
    await node.kill(agent)  # it leaves without logging its msgserver login out
    async with await connect_gate(HOST, demo.msgserver, await log_in(), 1) as connection:
        assert (await SecureClient(connection).request("login")).ok
    assert await agent_of(node, "alice") not in (None, agent)

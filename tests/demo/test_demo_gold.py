"""The player's gold between the main game and the subgame, on four linked nodes in one
process with a real Redis: moved in and back, deferred while a wallet is down, arriving
when it is back; and on one node, refused with a pointer to the cluster demo."""

import json

import trio
from demo_cluster_setup import SUBGAME_ID, cluster_demo
from demo_setup import HOST, WAIT, start_demo

from demo_game.client import hub_flow
from demo_game.connection import open_hub
from demo_game.names import CLUSTER_SUBGAME
from meshnet import Address

CREDENTIALS = {"user": "alice", "password": "secret"}


def bodies(lines: list[str], request: str) -> list[dict]:
    prefix = f"{request}: ok "
    return [json.loads(line.removeprefix(prefix)) for line in lines if line.startswith(prefix)]


async def logged_in(hub) -> None:
    assert (await hub.request("signup", CREDENTIALS)).ok
    assert (await hub.request("signin", CREDENTIALS)).ok
    assert (await hub.request("login")).ok


async def request(hub, name: str) -> dict:
    answer = await hub.request(name)
    assert answer.ok, answer.reply.error
    return answer.reply.body


async def wallet_becomes(hub, **expected) -> None:
    """Wait until the wallet shows ``expected`` (a guard against hangs, not a threshold)."""
    with trio.fail_after(WAIT):
        while await request(hub, "wallet") != expected:
            await trio.sleep(0.05)


async def test_the_gold_goes_into_the_subgame_and_back(tmp_path, redis_url):
    walk = ["wallet", "enter_subgame", "wallet", "leave_subgame", "wallet"]
    async with cluster_demo(tmp_path, redis_url=redis_url) as cluster:
        lines: list[str] = []
        assert await hub_flow(
            HOST, cluster.demo.hub, "alice", "secret", ws=False, say=lines.append, then=walk
        )
    assert bodies(lines, "wallet") == [
        {"main": 100, "subgame": 0, "in_transit": 0},
        {"main": 0, "subgame": 100, "in_transit": 0},
        {"main": 100, "subgame": 0, "in_transit": 0},
    ]
    assert bodies(lines, "enter_subgame") == [{"state": "delivered", "gold": 100}]
    assert bodies(lines, "leave_subgame") == [{"state": "delivered", "gold": 100}]


async def test_the_subgame_runs_on_its_own_node_with_an_agent_per_player(tmp_path, redis_url):
    async with cluster_demo(tmp_path, redis_url=redis_url) as cluster:
        async with open_hub(HOST, cluster.demo.hub) as hub:
            await logged_in(hub)
            await request(hub, "enter_subgame")
            subgame = cluster.registered("subgame", CLUSTER_SUBGAME)
            assert Address(subgame).node == SUBGAME_ID
            node = cluster.nodes["subgame"]
            [agent] = [a for a in node.services() if node.start_args(a)[:1] == ("alice",)]
            await request(hub, "leave_subgame")
            with trio.fail_after(WAIT):
                while agent in node.services():  # leaving ends it
                    await trio.sleep(0.02)


async def test_gold_sent_while_the_subgame_wallet_is_down_arrives_once_it_is_back(
    tmp_path, redis_url
):
    async with cluster_demo(tmp_path, redis_url=redis_url) as cluster:
        async with open_hub(HOST, cluster.demo.hub) as hub:
            await logged_in(hub)
            wallet = await cluster.stop_wallet("subgame")
            assert await request(hub, "enter_subgame") == {"state": "deferred", "gold": 100}
            assert await request(hub, "wallet") == {"main": 0, "subgame": None, "in_transit": 100}
            await cluster.start_wallet("subgame", wallet)
            await wallet_becomes(hub, main=0, subgame=100, in_transit=0)
            assert await request(hub, "enter_subgame") == {"state": "nothing", "gold": 0}
            assert await request(hub, "leave_subgame") == {"state": "delivered", "gold": 100}
            assert await request(hub, "wallet") == {"main": 100, "subgame": 0, "in_transit": 0}


async def test_gold_handed_back_while_the_main_wallet_is_down_arrives_by_the_next_login(
    tmp_path, redis_url
):
    async with cluster_demo(tmp_path, redis_url=redis_url) as cluster:
        async with open_hub(HOST, cluster.demo.hub) as hub:
            await logged_in(hub)
            assert (await request(hub, "enter_subgame"))["state"] == "delivered"
            wallet = await cluster.stop_wallet("accounts")
            assert await request(hub, "leave_subgame") == {"state": "deferred", "gold": 100}
            answer = await hub.request("wallet")
            assert answer.reply.error == "the wallet cannot be reached now (NoSuchService)"
            await cluster.start_wallet("accounts", wallet)
        async with open_hub(HOST, cluster.demo.hub) as hub:  # the player comes back
            assert (await hub.request("signin", CREDENTIALS)).ok
            assert (await hub.request("login")).ok  # takes in what waits in Redis
            await wallet_becomes(hub, main=100, subgame=0, in_transit=0)


async def test_on_one_node_the_gold_requests_point_to_the_cluster_demo(node, tmp_path):
    demo = await start_demo(node, tmp_path / "accounts.sqlite3")
    async with open_hub(HOST, demo.hub) as hub:
        await logged_in(hub)
        for name in ("wallet", "enter_subgame", "leave_subgame"):
            answer = await hub.request(name)
            assert not answer.ok
            assert answer.reply.error == (
                "gold and the subgame come with the demo on several nodes: make demo-cluster"
            )


async def test_the_gold_requests_need_a_login(tmp_path, redis_url):
    async with cluster_demo(tmp_path, redis_url=redis_url) as cluster:
        async with open_hub(HOST, cluster.demo.hub) as hub:
            assert (await hub.request("signup", CREDENTIALS)).ok
            assert (await hub.request("signin", CREDENTIALS)).ok
            for name in ("wallet", "enter_subgame", "leave_subgame"):
                assert (await hub.request(name)).reply.error == "not logged in"

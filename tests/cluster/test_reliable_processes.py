"""Gold handed between two game systems on node processes of their own, with a real Redis:
the processes are SIGKILLed at the steps of a transfer, Redis is restarted, and the gold
is neither lost nor doubled."""

import random

import pytest
import trio
from redis_setup import raw_redis
from reliable_setup import (
    NO_RETRY,
    SystemProcesses,
    credited_ids,
    eventually,
    gold_of,
    read_store,
)

from meshnet import CallError, NodeDown


@pytest.fixture
def prefix(cluster_name):
    return f"{cluster_name}:reliable"


@pytest.fixture
def systems(tmp_path, redis, prefix):
    """``SystemProcesses(...)`` of this test's directory, Redis and prefix."""
    return lambda **overrides: SystemProcesses(tmp_path, redis.url, prefix, **overrides)


async def owes_nothing(game, system):
    return (await game.call(system, "status"))["owed"] == 0


def outbox(path):
    return read_store(path, "SELECT uid, deferred FROM reliable_outbox")


async def test_gold_moves_to_the_subgame_and_back(systems):
    async with systems() as game:
        await game.call("main", "grant", "alice", 100)
        assert await game.call("main", "move", "alice", "sub", 60) == "delivered"
        assert await game.call("sub", "move", "alice", "main", 25) == "delivered"
        assert await game.call("main", "balance", "alice") == 65
        assert await game.call("sub", "balance", "alice") == 35
        assert await game.call("main", "in_transit", "alice") == []


async def test_the_sender_killed_between_its_debit_and_the_delivery_delivers_when_back(systems):
    async with systems() as game:
        await game.call("main", "grant", "alice", 100)
        with pytest.raises(NodeDown):
            await game.call("main", "record_and_die", "alice", "sub", 30)
        game.processes["main"].wait()
        assert gold_of(game.stores["main"]) == {"alice": 70}  # committed with its outbox row
        assert outbox(game.stores["main"]) == [("alice", 0)]
        assert await game.call("sub", "balance", "alice") == 0
        await game.start("main")
        await eventually(owes_nothing, game, "main")
        assert await game.call("sub", "balance", "alice") == 30
        assert await game.call("main", "balance", "alice") == 70


async def test_the_sender_killed_inside_its_debit_keeps_its_gold_and_owes_nothing(systems):
    async with systems() as game:
        await game.call("main", "grant", "alice", 100)
        with pytest.raises(NodeDown):
            await game.call("main", "move", "alice", "sub", 30, "die_in_debit")
        game.processes["main"].wait()
        await game.start("main")
        assert await game.call("main", "balance", "alice") == 100
        assert await game.call("main", "status") == {"system": "main", "owed": 0, "deferred": 0}
        assert await game.call("sub", "balance", "alice") == 0


@pytest.mark.parametrize(
    "fault, applied_by_drain",
    [("die_in_credit", 1), ("die_after_credit", 0)],
    ids=["before its commit", "after its commit"],
)
async def test_the_subgame_killed_mid_transfer_gets_the_gold_once_at_the_next_login(
    systems, fault, applied_by_drain
):
    async with systems(main=NO_RETRY) as game:
        await game.call("main", "grant", "alice", 100)
        assert await game.call("main", "move", "alice", "sub", 30, fault) == "deferred"
        game.processes["sub"].wait()
        assert await game.call("main", "balance", "alice") == 70
        await game.start("sub")
        assert await game.call("sub", "drain", "alice") == applied_by_drain  # the login
        assert await game.call("sub", "balance", "alice") == 30
        assert await game.call("sub", "drain", "alice") == 0
        [owed] = await game.call("main", "in_transit", "alice")
    assert credited_ids(game.stores["sub"]) == [owed["id"]]


async def test_a_return_deferred_while_the_main_node_is_down_arrives_at_the_next_login(systems):
    async with systems(sub=NO_RETRY) as game:
        await game.call("main", "grant", "alice", 100)
        assert await game.call("main", "move", "alice", "sub", 100) == "delivered"
        game.kill("main")
        assert await game.call("sub", "move", "alice", "main", 100) == "deferred"
        await game.start("main")
        assert await game.call("main", "balance", "alice") == 0
        assert await game.call("main", "drain", "alice") == 1  # the login
        assert await game.call("main", "balance", "alice") == 100
        assert await game.call("sub", "balance", "alice") == 0


async def test_a_deferred_command_survives_a_redis_restart_before_the_drain(systems, redis):
    async with systems(main=NO_RETRY) as game:
        await game.call("main", "grant", "alice", 100)
        game.kill("sub")
        assert await game.call("main", "move", "alice", "sub", 30) == "deferred"
        redis.stop()
        redis.start()  # from its append-only file
        await game.start("sub")
        assert await game.call("sub", "drain", "alice") == 1
        assert await game.call("sub", "balance", "alice") == 30


async def test_a_deferred_command_redis_lost_is_still_delivered_by_the_sender(systems, redis):
    async with systems() as game:
        await game.call("main", "grant", "alice", 100)
        game.kill("sub")
        assert await game.call("main", "move", "alice", "sub", 30) == "deferred"
        redis.stop()
        redis.wipe()
        redis.start()
        await game.start("sub")
        await eventually(owes_nothing, game, "main")
        assert await game.call("sub", "balance", "alice") == 30


async def test_a_late_confirmation_racing_a_drain_applies_the_gold_once(systems):
    async with systems(main={**NO_RETRY, "timeout": 0.5}) as game:
        await game.call("main", "grant", "alice", 100)
        # the subgame holds the delivery past the sender's deadline: outcome unknown
        assert await game.call("main", "move", "alice", "sub", 30, "stall", 2.0) == "deferred"
        assert await game.call("sub", "drain", "alice") == 1  # the login, meanwhile

        def deliveries():
            return read_store(game.stores["sub"], "SELECT applied FROM deliveries")

        async def late_delivery_done():
            return deliveries() != []

        await eventually(late_delivery_done)
        assert deliveries() == [(0,)]  # it came, and found the command applied
        assert await game.call("sub", "balance", "alice") == 30
    assert len(credited_ids(game.stores["sub"])) == 1


PLAYERS = 100
START_GOLD = 1000
KILLS = 2
MOVES_BETWEEN_KILLS = 300
"""Moves completed after a (re)start before the node is killed: traffic is in flight."""


@pytest.mark.parametrize("killed", ["sub", "main"])
async def test_100_players_moving_gold_while_one_node_is_killed_twice_keep_every_coin(
    systems, redis, prefix, killed
):
    async with systems() as game:
        players = [f"p{n}" for n in range(PLAYERS)]
        for uid in players:
            await game.call("main", "grant", uid, START_GOLD)
        outcomes: dict[str, int] = {}
        moves = trio.Semaphore(0)  # one release per completed move
        chaos_done = trio.Event()

        def count(outcome):
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            moves.release()

        async def move(system, uid, to, amount):
            try:
                count(await game.call(system, "move", uid, to, amount, timeout=5.0))
            except CallError as exc:  # not enough gold, the node down, outcome unknown
                count(exc.remote_type)

        async def player(uid, rng):
            while not chaos_done.is_set() or rng.random() < 0.9:
                await move("main", uid, "sub", rng.randint(1, 200))
                try:
                    await game.call("sub", "drain", uid, timeout=5.0)  # entering the subgame
                    held = await game.call("sub", "balance", uid, timeout=5.0)
                except CallError:
                    held = 0
                if held:
                    await move("sub", uid, "main", rng.randint(1, held))

        async def chaos():
            for _ in range(KILLS):
                for _ in range(MOVES_BETWEEN_KILLS):
                    await moves.acquire()
                game.kill(killed)
                await trio.sleep(0.5)
                await game.start(killed)
            for _ in range(MOVES_BETWEEN_KILLS):
                await moves.acquire()
            chaos_done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(chaos)
            for n, uid in enumerate(players):
                nursery.start_soon(player, uid, random.Random(n))

        for system in ("main", "sub"):
            await eventually(owes_nothing, game, system)
        for uid in players:  # every player logs in to both: nothing is left in Redis
            await game.call("main", "drain", uid)
            await game.call("sub", "drain", uid)
        async with raw_redis(redis.url) as client:
            assert not await client.keys(f"{prefix}:*")

    total = sum(gold_of(game.stores["main"]).values()) + sum(gold_of(game.stores["sub"]).values())
    assert total == PLAYERS * START_GOLD
    for store in game.stores.values():
        credits = credited_ids(store)
        assert len(credits) == len(set(credits))
    assert outcomes.get("delivered", 0) > 0
    assert outcomes.get("deferred", 0) > 0, outcomes  # the kills hit transfers in flight

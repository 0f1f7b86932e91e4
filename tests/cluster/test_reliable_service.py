"""ReliableService between two systems on linked nodes (in this process) and a real Redis:
delivery, deferral, drains, late deliveries and bad input."""

import logging

import pytest
import trio
from redis_setup import raw_redis
from reliable_setup import NO_RETRY, credited_ids, eventually, two_systems

from meshnet import CallError, NoSuchService
from meshnet.cluster.reliable import Command


@pytest.fixture
def prefix(cluster_name):
    return f"{cluster_name}:reliable"


async def owes_nothing(systems, system):
    return (await systems.call(system, "status"))["owed"] == 0


async def test_a_delivered_move_debits_the_sender_and_credits_the_receiver_once(
    tmp_path, redis, prefix
):
    async with two_systems(tmp_path, redis.url, prefix) as systems:
        await systems.call("main", "grant", "alice", 100)
        assert await systems.call("main", "move", "alice", "sub", 30) == "delivered"
        assert await systems.call("sub", "move", "alice", "main", 10) == "delivered"
        assert await systems.call("main", "balance", "alice") == 80
        assert await systems.call("sub", "balance", "alice") == 20
        assert await systems.call("main", "status") == {"system": "main", "owed": 0, "deferred": 0}
        assert await systems.call("main", "in_transit", "alice") == []
    assert len(credited_ids(tmp_path / "sub.sqlite3")) == 1
    async with raw_redis(redis.url) as client:
        assert not await client.keys(f"{prefix}:*")


async def test_a_refused_debit_records_and_sends_nothing(tmp_path, redis, prefix):
    async with two_systems(tmp_path, redis.url, prefix) as systems:
        await systems.call("main", "grant", "alice", 100)
        with pytest.raises(CallError, match="NotEnoughGold: alice has less than 101 gold"):
            await systems.call("main", "move", "alice", "sub", 101)
        assert await systems.call("main", "balance", "alice") == 100
        assert (await systems.call("main", "status"))["owed"] == 0


async def test_a_move_to_a_system_that_is_not_a_peer_is_refused_before_the_debit(
    tmp_path, redis, prefix
):
    async with two_systems(tmp_path, redis.url, prefix) as systems:
        await systems.call("main", "grant", "alice", 100)
        with pytest.raises(CallError, match="'elsewhere' is not a peer of 'main' \\(peers: sub\\)"):
            await systems.call("main", "move", "alice", "elsewhere", 5)
        assert await systems.call("main", "balance", "alice") == 100


async def test_a_move_to_a_system_that_is_down_is_deferred_and_drained_once(
    tmp_path, redis, prefix
):
    async with two_systems(tmp_path, redis.url, prefix, main=NO_RETRY) as systems:
        await systems.call("main", "grant", "alice", 100)
        await systems.stop("sub")
        assert await systems.call("main", "move", "alice", "sub", 30) == "deferred"
        [owed] = await systems.call("main", "in_transit", "alice")
        assert (owed["receiver"], owed["args"], owed["deferred"]) == ("sub", {"gold": 30}, True)
        async with raw_redis(redis.url) as client:
            assert list(await client.hgetall(f"{prefix}:sub_alice")) == [owed["id"]]
        await systems.start("sub")
        assert await systems.call("sub", "drain", "alice") == 1
        assert await systems.call("sub", "drain", "alice") == 0
        assert await systems.call("sub", "balance", "alice") == 30
        assert await systems.call("main", "balance", "alice") == 70
        async with raw_redis(redis.url) as client:
            assert await client.exists([f"{prefix}:sub_alice"]) == 0
    assert credited_ids(tmp_path / "sub.sqlite3") == [owed["id"]]


async def test_a_deferred_command_is_delivered_by_the_sender_once_the_receiver_is_back(
    tmp_path, redis, prefix
):
    async with two_systems(tmp_path, redis.url, prefix) as systems:
        await systems.call("main", "grant", "alice", 100)
        await systems.stop("sub")
        assert await systems.call("main", "move", "alice", "sub", 30) == "deferred"
        await systems.start("sub")
        await eventually(owes_nothing, systems, "main")
        assert await systems.call("sub", "balance", "alice") == 30
        assert await systems.call("sub", "drain", "alice") == 0
        async with raw_redis(redis.url) as client:
            assert await client.exists([f"{prefix}:sub_alice"]) == 0


async def test_redeliver_tries_a_users_owed_commands_at_once(tmp_path, redis, prefix):
    async with two_systems(tmp_path, redis.url, prefix, main=NO_RETRY) as systems:
        await systems.call("main", "grant", "alice", 100)
        await systems.call("main", "grant", "bob", 100)
        await systems.stop("sub")
        assert await systems.call("main", "move", "alice", "sub", 30) == "deferred"
        assert await systems.call("main", "move", "bob", "sub", 20) == "deferred"
        assert await systems.call("main", "redeliver", "alice") == 1  # still down
        await systems.start("sub")
        assert await systems.call("main", "redeliver", "alice") == 0
        assert await systems.call("sub", "balance", "alice") == 30
        assert await systems.call("main", "status") == {"system": "main", "owed": 1, "deferred": 1}


async def test_a_late_delivery_after_a_drain_changes_nothing(tmp_path, redis, prefix):
    async with two_systems(tmp_path, redis.url, prefix, main={"timeout": 0.3}) as systems:
        await systems.call("main", "grant", "alice", 100)
        # the receiver holds the delivery past the sender's deadline: outcome unknown
        outcome = await systems.call("main", "move", "alice", "sub", 30, "stall", 1.5)
        assert outcome == "deferred"
        [owed] = await systems.call("main", "in_transit", "alice")
        assert await systems.call("sub", "drain", "alice") == 1  # while the delivery waits
        await eventually(owes_nothing, systems, "main")
        assert await systems.call("sub", "balance", "alice") == 30
    assert credited_ids(tmp_path / "sub.sqlite3") == [owed["id"]]


async def test_a_drain_after_a_late_delivery_changes_nothing(tmp_path, redis, prefix):
    async with two_systems(tmp_path, redis.url, prefix, main={**NO_RETRY, "timeout": 0.3}) as s:
        await s.call("main", "grant", "alice", 100)
        assert await s.call("main", "move", "alice", "sub", 30, "stall", 0.6) == "deferred"

        async def credited():
            return await s.call("sub", "balance", "alice") == 30

        await eventually(credited)  # the late delivery applied it
        assert await s.call("sub", "drain", "alice") == 0
        assert await s.call("sub", "balance", "alice") == 30
    assert len(credited_ids(tmp_path / "sub.sqlite3")) == 1


async def test_two_drains_at_once_apply_each_command_once(tmp_path, redis, prefix):
    async with two_systems(tmp_path, redis.url, prefix, main=NO_RETRY) as systems:
        await systems.call("main", "grant", "alice", 100)
        await systems.stop("sub")
        for _ in range(10):
            assert await systems.call("main", "move", "alice", "sub", 1) == "deferred"
        await systems.start("sub")
        applied = []

        async def drain():
            applied.append(await systems.call("sub", "drain", "alice"))

        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(drain)
        assert sum(applied) == 10
        assert await systems.call("sub", "balance", "alice") == 10
    credits = credited_ids(tmp_path / "sub.sqlite3")
    assert len(credits) == len(set(credits)) == 10


async def test_owed_commands_are_delivered_when_the_sender_starts_again(tmp_path, redis, prefix):
    async with two_systems(tmp_path, redis.url, prefix) as systems:
        await systems.call("main", "grant", "alice", 100)
        await systems.stop("sub")
        for amount in (1, 2, 3):
            await systems.call("main", "move", "alice", "sub", amount)
        await systems.stop("main")  # with three commands in its outbox
        await systems.start("sub")
        await systems.start("main")
        await eventually(owes_nothing, systems, "main")
        assert await systems.call("sub", "balance", "alice") == 6
        assert await systems.call("main", "balance", "alice") == 94


async def test_with_redis_away_a_move_is_held_by_the_sender_and_delivered_later(
    tmp_path, redis, prefix
):
    async with two_systems(tmp_path, redis.url, prefix) as systems:
        await systems.call("main", "grant", "alice", 100)
        await systems.stop("sub")
        redis.stop()
        assert await systems.call("main", "move", "alice", "sub", 30) == "held"
        [owed] = await systems.call("main", "in_transit", "alice")
        assert owed["deferred"] is False
        with pytest.raises(CallError, match="RedisUnavailable"):
            await systems.call("main", "drain", "alice")
        redis.start()
        await systems.start("sub")
        await eventually(owes_nothing, systems, "main")
        assert await systems.call("sub", "balance", "alice") == 30


async def test_an_entry_in_redis_that_is_not_a_command_for_the_user_is_left_alone(
    tmp_path, redis, prefix, caplog
):
    other = Command.new("main", "sub", "bob", "gold", {"gold": 7})
    good = Command.new("main", "sub", "alice", "gold", {"gold": 5})
    key = f"{prefix}:sub_alice"
    async with two_systems(tmp_path, redis.url, prefix) as systems:
        async with raw_redis(redis.url) as client:
            await client.hset(
                key,
                {"junk": "not json", other.id: other.encode(), good.id: good.encode()},
            )
        with caplog.at_level(logging.ERROR, logger="meshnet.cluster.reliable.deferred"):
            assert await systems.call("sub", "drain", "alice") == 1
        assert await systems.call("sub", "balance", "alice") == 5
        assert await systems.call("sub", "balance", "bob") == 0
        async with raw_redis(redis.url) as client:
            assert sorted(await client.hkeys(key)) == sorted(["junk", other.id])
    messages = [record.getMessage() for record in caplog.records]
    assert any(f"'junk' of {key}" in m and "not JSON" in m for m in messages)
    assert any(f"it is command {other.id} for sub_bob" in m for m in messages)


@pytest.mark.parametrize(
    "message, error",
    [
        ("not a map", "a command is a map"),
        ({"id": "1"}, "a command has exactly the fields"),
        (
            Command.new("main", "elsewhere", "a", "gold", {"gold": 1}).to_message(),
            "not 'elsewhere'",
        ),
    ],
)
async def test_a_malformed_delivery_is_refused_and_changes_nothing(
    tmp_path, redis, prefix, message, error
):
    async with two_systems(tmp_path, redis.url, prefix) as systems:
        with pytest.raises(CallError, match=error):
            await systems.call("sub", "deliver", message)
        assert await systems.call("sub", "balance", "a") == 0
        assert await systems.call("sub", "status") == {"system": "sub", "owed": 0, "deferred": 0}


async def test_a_stopped_receiver_answers_no_such_service_and_the_sender_keeps_serving(
    tmp_path, redis, prefix
):
    async with two_systems(tmp_path, redis.url, prefix) as systems:
        await systems.stop("sub")
        with pytest.raises(NoSuchService):
            await systems.call("sub", "balance", "alice")
        await systems.call("main", "grant", "alice", 1)
        assert await systems.call("main", "balance", "alice") == 1

"""ReliableStore: the sender's debit and outbox entry commit together, the receiver's
credit and applied id commit together, and an id is applied once."""

import sqlite3

import pytest
import trio

from meshnet.cluster.reliable import Command, ReliableStore


def setup(db):
    db.execute("CREATE TABLE IF NOT EXISTS gold (uid TEXT PRIMARY KEY, amount INTEGER)")
    db.execute("CREATE TABLE IF NOT EXISTS credits (id TEXT)")


def debit(db, command):
    db.execute("UPDATE gold SET amount = amount - ? WHERE uid = ?", (command.args["gold"], "a"))


def refusing_debit(db, command):
    debit(db, command)
    raise ValueError("not enough gold")


def credit(db, command):
    db.execute("INSERT INTO credits VALUES (?)", (command.id,))


def failing_credit(db, command):
    credit(db, command)
    raise RuntimeError("bug in the game")


def gold(db):
    return db.execute("SELECT amount FROM gold WHERE uid = 'a'").fetchone()[0]


def credits(db):
    return [row[0] for row in db.execute("SELECT id FROM credits")]


def a_command(uid="a", gold=10):
    return Command.new("main", "sub", uid, "gold", {"gold": gold})


@pytest.fixture
async def store(tmp_path):
    store = await ReliableStore.open(tmp_path / "store.sqlite3", setup)
    await store.transaction(lambda db: db.execute("INSERT INTO gold VALUES ('a', 100)"))
    yield store
    await store.close()


async def test_the_debit_and_the_outbox_entry_commit_together(store):
    command = a_command()
    await store.record(command, debit)
    assert await store.transaction(gold) == 90
    assert await store.owed() == [(command, False)]


async def test_a_debit_that_raises_leaves_neither_debit_nor_outbox_entry(store):
    with pytest.raises(ValueError, match="not enough gold"):
        await store.record(a_command(), refusing_debit)
    assert await store.transaction(gold) == 100
    assert await store.owed() == []


async def test_a_command_is_applied_once_whatever_the_number_of_applies(store):
    command = a_command()
    assert await store.apply(command, credit) is True
    assert await store.apply(command, credit) is False
    assert await store.transaction(credits) == [command.id]
    assert await store.was_applied(command.id)


async def test_concurrent_applies_of_one_command_credit_it_once(store):
    command = a_command()
    results = []

    async def apply():
        results.append(await store.apply(command, credit))

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(apply)
    assert sorted(results) == [False] * 19 + [True]
    assert await store.transaction(credits) == [command.id]


async def test_a_credit_that_raises_leaves_the_command_unapplied(store):
    command = a_command()
    with pytest.raises(RuntimeError, match="bug in the game"):
        await store.apply(command, failing_credit)
    assert not await store.was_applied(command.id)
    assert await store.transaction(credits) == []
    assert await store.apply(command, credit) is True


async def test_owed_commands_are_listed_oldest_first_and_by_user(store):
    first, second, other = a_command(), a_command(), a_command(uid="b")
    for command in (first, second, other):
        await store.record(command, lambda db, command: None)
    await store.mark_deferred(second.id)
    assert await store.owed() == [(first, False), (second, True), (other, False)]
    assert await store.owed("b") == [(other, False)]
    await store.forget(first.id)
    assert await store.owed("a") == [(second, True)]


async def test_what_was_committed_is_there_after_reopening(tmp_path):
    path = tmp_path / "store.sqlite3"
    store = await ReliableStore.open(path, setup)
    owed, applied = a_command(), a_command()
    await store.record(owed, lambda db, command: None)
    await store.apply(applied, credit)
    await store.close()
    store = await ReliableStore.open(path, setup)
    try:
        assert await store.owed() == [(owed, False)]
        assert await store.was_applied(applied.id)
        assert await store.apply(applied, credit) is False
    finally:
        await store.close()


async def test_the_store_is_a_plain_sqlite_file_in_wal_mode(tmp_path, store):
    await store.record(a_command(), debit)
    with sqlite3.connect(tmp_path / "store.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT count(*) FROM reliable_outbox").fetchone() == (1,)

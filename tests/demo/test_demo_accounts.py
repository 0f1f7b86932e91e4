"""Accounts: SQLite persistence, salted scrypt hashes, and name/password rules."""

import multiprocessing
import sqlite3
from typing import Any

import pytest

from demo_game import accounts
from demo_game.accounts import AccountError, AccountStore, ScryptCost

CHEAP = ScryptCost(n=2**8, r=8, p=1)


@pytest.fixture
async def store(tmp_path):
    accounts = await AccountStore.open(tmp_path / "accounts.sqlite3", CHEAP)
    yield accounts
    await accounts.close()


async def test_signup_then_verify_with_the_same_password(store):
    assert await store.signup("alice", "secret")
    assert await store.verify("alice", "secret")


async def test_a_taken_name_cannot_sign_up_again(store):
    assert await store.signup("alice", "secret")
    assert not await store.signup("alice", "other")
    assert await store.verify("alice", "secret")


async def test_wrong_password_does_not_verify(store):
    await store.signup("alice", "secret")
    assert not await store.verify("alice", "Secret")


async def test_unknown_user_does_not_verify(store):
    assert not await store.verify("nobody", "secret")


async def test_accounts_survive_reopening_the_file(tmp_path):
    path = tmp_path / "accounts.sqlite3"
    first = await AccountStore.open(path, CHEAP)
    await first.signup("alice", "secret")
    await first.close()
    second = await AccountStore.open(path, CHEAP)
    assert await second.verify("alice", "secret")
    await second.close()


async def test_passwords_are_stored_salted_and_hashed(store, tmp_path):
    await store.signup("alice", "secret")
    await store.signup("bob", "secret")
    db = sqlite3.connect(tmp_path / "accounts.sqlite3")
    rows = db.execute("SELECT salt, hash FROM accounts").fetchall()
    assert all(b"secret" not in salt + digest for salt, digest in rows)
    assert rows[0][1] != rows[1][1]


async def test_old_hashes_verify_after_the_cost_changes(tmp_path):
    path = tmp_path / "accounts.sqlite3"
    cheap = await AccountStore.open(path, CHEAP)
    await cheap.signup("alice", "secret")
    await cheap.close()
    dearer = await AccountStore.open(path, ScryptCost(n=2**9, r=8, p=1))
    assert await dearer.verify("alice", "secret")
    await dearer.close()


@pytest.mark.parametrize(
    "user, password, field",
    [
        ("", "pw", "user"),
        ("a" * 33, "pw", "user"),
        ("bad name", "pw", "user"),
        ("émile", "pw", "user"),
        (7, "pw", "user"),
        ("alice", "", "password"),
        ("alice", "x" * 129, "password"),
        ("alice", None, "password"),
    ],
)
async def test_malformed_credentials_are_refused_naming_the_field(store, user, password, field):
    with pytest.raises(AccountError) as caught:
        await store.signup(user, password)
    assert caught.value.field == field


@pytest.mark.parametrize("user", ["a", "A_b-9", "x" * 32])
async def test_well_formed_names_are_accepted(store, user):
    assert await store.signup(user, "p" * 128)


_together: Any = None
"""In each pool process: the barrier both processes pass before opening a file."""


def _share_barrier(barrier: Any) -> None:
    global _together
    _together = barrier


def _open_accounts(path: str) -> bool:
    _together.wait()
    accounts._connect(path).close()
    return True


def test_two_processes_opening_a_new_accounts_file_at_once_both_succeed(tmp_path):
    """The workers of a node open the file together. Without trying again, one of two
    processes switching a new file to WAL at once now and then gets "database is locked"
    (this test then fails in most runs: a race, so not in every one)."""
    paths = [str(tmp_path / f"accounts{n}.sqlite3") for n in range(200)]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    with context.Pool(2, _share_barrier, (barrier,)) as pool:
        assert pool.map(_open_accounts, [path for path in paths for _ in (0, 1)], 1) == (
            [True] * 400
        )

"""One system's store: a SQLite file holding the game's own tables (the balances the
commands change), the outbox and the applied ids, so that one transaction changes both.

Tables (next to the game's, which ``setup`` creates)::

    reliable_outbox(id TEXT PRIMARY KEY, receiver TEXT, uid TEXT, command TEXT,
                    deferred INTEGER, created REAL)
        what this system owes others: the command as JSON; deferred = 1 once it has
        been written to Redis
    reliable_applied(id TEXT PRIMARY KEY, sender TEXT, uid TEXT, kind TEXT, applied REAL)
        the ids of the commands this system has applied, kept for good

Every method is one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back if
anything in it raises) on the store's own thread (``meshnet.dbthread``), one at a time,
so the event loop never waits on the disk and two transactions never interleave. The
file is in WAL mode with ``synchronous=FULL``: a committed transaction survives a
power cut, not just a crashed process.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from meshnet.cluster.reliable.command import Command
from meshnet.dbthread import DatabaseThread

T = TypeVar("T")

Hook = Callable[[sqlite3.Connection, Command], None]
"""A game's part of a transaction: ``hook(db, command)`` on the store's thread."""

BUSY_TIMEOUT_MS = 5000
"""How long a transaction waits for another process holding the file (one sharing it)."""


class ReliableStore:
    """The outbox and applied ids of one system, beside its own tables in one SQLite file.

    Open with ``await ReliableStore.open(path, setup)``; ``setup(db)`` creates the game's
    tables (in the first transaction)."""

    def __init__(self, database: DatabaseThread[sqlite3.Connection]) -> None:
        self._db = database

    @classmethod
    async def open(
        cls, path: str | Path, setup: Callable[[sqlite3.Connection], None] | None = None
    ) -> ReliableStore:
        """Open (creating if needed) the store at ``path`` and run ``setup`` in it."""
        database = await DatabaseThread.start(partial(_connect, str(path)), name="reliable")
        store = cls(database)
        if setup is not None:
            await store.transaction(setup)
        return store

    async def close(self) -> None:
        """Close the file once every queued transaction has run."""
        await self._db.stop(sqlite3.Connection.close)

    async def transaction(self, job: Callable[..., T], *args: Any) -> T:
        """Run ``job(db, *args)`` in one transaction and return its result; if it raises,
        nothing it did is kept and the exception is raised here."""
        return await self._db.run(_in_transaction, job, *args)

    async def record(self, command: Command, debit: Hook) -> None:
        """The sender's step: ``debit(db, command)`` and the outbox entry, together."""
        await self.transaction(_record, command, debit)

    async def apply(self, command: Command, credit: Hook) -> bool:
        """The receiver's step: ``credit(db, command)`` and the applied id, together; True
        if applied now, False (nothing done) if this id was applied before."""
        return await self.transaction(_apply, command, credit)

    async def mark_deferred(self, command_id: str) -> None:
        """Note that the owed command is in Redis now."""
        await self.transaction(_mark_deferred, command_id)

    async def forget(self, command_id: str) -> None:
        """Take a command out of the outbox: its receiver has applied it."""
        await self.transaction(_forget, command_id)

    async def owed(self, uid: str | None = None) -> list[tuple[Command, bool]]:
        """The commands in the outbox (of ``uid``, or all), oldest first, each with
        whether it is in Redis."""
        return await self.transaction(_owed, uid)

    async def was_applied(self, command_id: str) -> bool:
        """True if this system has applied the command ``command_id``."""
        return await self.transaction(_was_applied, command_id)


# --- on the store's thread -----------------------------------------------------------------


def _connect(path: str) -> sqlite3.Connection:
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS reliable_outbox (id TEXT PRIMARY KEY, receiver TEXT NOT "
        "NULL, uid TEXT NOT NULL, command TEXT NOT NULL, deferred INTEGER NOT NULL DEFAULT 0, "
        "created REAL NOT NULL)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS reliable_outbox_uid ON reliable_outbox (uid)")
    db.execute(
        "CREATE TABLE IF NOT EXISTS reliable_applied (id TEXT PRIMARY KEY, sender TEXT NOT "
        "NULL, uid TEXT NOT NULL, kind TEXT NOT NULL, applied REAL NOT NULL)"
    )
    return db


def _in_transaction(db: sqlite3.Connection, job: Callable[..., T], *args: Any) -> T:
    db.execute("BEGIN IMMEDIATE")
    try:
        result = job(db, *args)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return result


def _record(db: sqlite3.Connection, command: Command, debit: Hook) -> None:
    debit(db, command)
    db.execute(
        "INSERT INTO reliable_outbox (id, receiver, uid, command, created) VALUES (?, ?, ?, ?, ?)",
        (command.id, command.receiver, command.uid, command.encode(), time.time()),
    )


def _apply(db: sqlite3.Connection, command: Command, credit: Hook) -> bool:
    if _was_applied(db, command.id):
        return False
    credit(db, command)
    db.execute(
        "INSERT INTO reliable_applied (id, sender, uid, kind, applied) VALUES (?, ?, ?, ?, ?)",
        (command.id, command.sender, command.uid, command.kind, time.time()),
    )
    return True


def _was_applied(db: sqlite3.Connection, command_id: str) -> bool:
    row = db.execute("SELECT 1 FROM reliable_applied WHERE id = ?", (command_id,)).fetchone()
    return row is not None


def _mark_deferred(db: sqlite3.Connection, command_id: str) -> None:
    db.execute("UPDATE reliable_outbox SET deferred = 1 WHERE id = ?", (command_id,))


def _forget(db: sqlite3.Connection, command_id: str) -> None:
    db.execute("DELETE FROM reliable_outbox WHERE id = ?", (command_id,))


def _owed(db: sqlite3.Connection, uid: str | None) -> list[tuple[Command, bool]]:
    if uid is None:
        rows = db.execute("SELECT command, deferred FROM reliable_outbox ORDER BY created")
    else:
        rows = db.execute(
            "SELECT command, deferred FROM reliable_outbox WHERE uid = ? ORDER BY created", (uid,)
        )
    return [(Command.decode(text), bool(deferred)) for text, deferred in rows]

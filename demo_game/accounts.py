"""Player accounts in SQLite, passwords stored as salted scrypt hashes.

Database calls run on a thread of their own (``DatabaseThread``, one connection, in
order) and password hashes on a bounded pool of threads (``demo_game.hashpool``), so the
event loop never waits on the disk or on the deliberately slow hash, and a burst of
sign-ins is refused with ``HashBusy`` rather than left to time out. The scrypt cost
parameters are stored with each hash, so raising them later keeps old accounts valid. A
name with no account is checked against a hash of the same cost all the same, so a wrong
password takes as long whether the user exists or not.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from demo_game.hashpool import HashPool
from meshnet.dbthread import DatabaseThread
from meshnet.errors import MeshnetError

USER_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")
MAX_PASSWORD = 128
OPEN_TIMEOUT = 10.0
"""Seconds to wait for another process's lock on the accounts file (the node's other
workers open it too)."""


class AccountError(MeshnetError):
    """A user name or password is malformed; the message names the field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


@dataclass(frozen=True)
class ScryptCost:
    """scrypt's work factors; the default is the scrypt paper's interactive-login setting."""

    n: int = 2**14
    r: int = 8
    p: int = 1

    @property
    def memory(self) -> int:
        """Bytes one hash takes (OpenSSL's count: p blocks of 128 * r, and n + 2 more)."""
        return 128 * self.r * (self.n + self.p + 2)


def check_credentials(user: object, password: object) -> None:
    """Raise AccountError unless the name and password are well formed."""
    if not isinstance(user, str) or not USER_NAME.fullmatch(user):
        raise AccountError("user", "1 to 32 letters, digits, '_' or '-'")
    if not isinstance(password, str) or not 1 <= len(password) <= MAX_PASSWORD:
        raise AccountError("password", f"1 to {MAX_PASSWORD} characters")


class AccountStore:
    """The accounts table of one SQLite file. Open with ``await AccountStore.open(path)``."""

    def __init__(
        self, database: DatabaseThread[sqlite3.Connection], cost: ScryptCost, pool: HashPool
    ) -> None:
        self._db = database
        self._cost = cost
        self.pool = pool
        """Where the hashes are computed."""

    @classmethod
    async def open(
        cls, path: str | Path, cost: ScryptCost = ScryptCost(), pool: HashPool | None = None
    ) -> AccountStore:
        """Open (creating if needed) the database at ``path``; ``:memory:`` for a scratch one.
        Hashes go to ``pool`` (default: one of ``available_cores()`` threads)."""
        database = await DatabaseThread.start(partial(_connect, str(path)), name="accounts")
        return cls(database, cost, HashPool() if pool is None else pool)

    async def close(self) -> None:
        """Close the database and the hash pool once every queued job has run."""
        await self._db.stop(sqlite3.Connection.close)
        await self.pool.stop()

    async def signup(self, user: str, password: str) -> bool:
        """Create an account; False if the name is taken. ``HashBusy`` if the hash pool
        cannot take the hash in time (nothing is created)."""
        check_credentials(user, password)
        salt = secrets.token_bytes(16)
        digest = await self.pool.run(hash_password, password, salt, self._cost)
        row = (user, salt, self._cost.n, self._cost.r, self._cost.p, digest)
        return await self._db.run(_insert, row)

    async def verify(self, user: str, password: str) -> bool:
        """True if ``user`` exists and ``password`` is theirs; ``HashBusy`` as ``signup``."""
        check_credentials(user, password)
        row = await self._db.run(_select, user)
        if row is None:  # the same work as for a user who exists: no timing tells them apart
            salt, cost, digest = secrets.token_bytes(16), self._cost, b""
        else:
            salt, n, r, p, digest = row
            cost = ScryptCost(n, r, p)
        attempt = await self.pool.run(hash_password, password, salt, cost)
        return hmac.compare_digest(attempt, digest) and row is not None


def hash_password(password: str, salt: bytes, cost: ScryptCost) -> bytes:
    """The 32-byte scrypt hash of ``password`` with ``salt`` at ``cost`` (blocking: run it
    on a thread)."""
    return hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=cost.n,
        r=cost.r,
        p=cost.p,
        maxmem=cost.memory + (1 << 20),
        dklen=32,
    )


def _connect(path: str) -> sqlite3.Connection:
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, isolation_level=None, timeout=OPEN_TIMEOUT)
    _set_up(connection, "PRAGMA journal_mode=WAL")
    _set_up(
        connection,
        "CREATE TABLE IF NOT EXISTS accounts ("
        " user TEXT PRIMARY KEY, salt BLOB NOT NULL,"
        " n INTEGER NOT NULL, r INTEGER NOT NULL, p INTEGER NOT NULL, hash BLOB NOT NULL)",
    )
    return connection


def _set_up(connection: sqlite3.Connection, statement: str) -> None:
    """Run ``statement``, trying again while another process holds the file's lock.

    Worker processes of one node (``workers = N``) open the file at once, and SQLite
    answers a change of journal mode that meets another connection's lock at once with
    "database is locked", without waiting (it runs on the database thread: the sleep holds
    no event loop)."""
    give_up = time.monotonic() + OPEN_TIMEOUT
    while True:
        try:
            connection.execute(statement)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > give_up:
                raise
            time.sleep(0.05)


def _insert(db: sqlite3.Connection, row: tuple[object, ...]) -> bool:
    try:
        db.execute("INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?)", row)
    except sqlite3.IntegrityError:
        return False
    return True


def _select(db: sqlite3.Connection, user: str) -> tuple[bytes, int, int, int, bytes] | None:
    return db.execute("SELECT salt, n, r, p, hash FROM accounts WHERE user = ?", (user,)).fetchone()

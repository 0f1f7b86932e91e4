"""The accounts service (``.accounts``): the one owner of the accounts database.

Auth and the login server both ask it, so the hub's signin and the secure login check the
same accounts, under the same limits: hashes on one bounded pool (``demo_game.hashpool``)
and one rate limit on failed sign-ins (``demo_game.signin_limits``). Its answers are
statuses, not exceptions, since being busy or limited is no failure of the service:

``signup(user, password)``              ``"ok"``, ``"taken"`` or ``"busy"``
``verify(user, password, address)``     ``["ok" | "wrong" | "busy" | "limited", seconds]``,
                                        seconds to wait before trying again when limited

``"busy"``: the hash pool could not start the hash in time; try again a little later.
Callers check names and passwords with ``accounts.check_credentials`` first; a malformed
one that gets here anyway fails the call with ``AccountError``.
"""

from __future__ import annotations

from collections.abc import Sequence

from demo_game.accounts import AccountStore, ScryptCost
from demo_game.hashpool import HashBusy, HashPool
from demo_game.names import ACCOUNTS
from demo_game.signin_limits import FailedSignins
from meshnet import Service, command

OK = "ok"
TAKEN = "taken"
WRONG = "wrong"
BUSY = "busy"
LIMITED = "limited"


class Accounts(Service):
    """The ``.accounts`` service: the account store, off the event loop."""

    async def init(
        self,
        path: str,
        n: int,
        r: int,
        p: int,
        hash_threads: int = 0,
        hash_wait: float = 3.0,
        max_failures: int = 5,
        failure_period: float = 60.0,
        exempt: Sequence[str] = (),
    ) -> None:
        """The database at ``path``, hashes of cost (``n``, ``r``, ``p``) on
        ``hash_threads`` threads (0: one per core) waiting at most ``hash_wait`` seconds,
        ``max_failures`` failed sign-ins per name and address per ``failure_period``
        seconds (addresses in ``exempt`` not counted)."""
        pool = HashPool(hash_threads or None, hash_wait)
        self.store = await AccountStore.open(path, ScryptCost(n, r, p), pool)
        self.failures = FailedSignins(max_failures, failure_period, exempt)
        self.register(ACCOUNTS)

    async def on_exit(self) -> None:
        await self.store.close()

    @command
    async def signup(self, user: str, password: str) -> str:
        """Create the account: ``"ok"``, ``"taken"`` or ``"busy"``."""
        try:
            return OK if await self.store.signup(user, password) else TAKEN
        except HashBusy:
            return BUSY

    @command
    async def verify(self, user: str, password: str, address: str | None = None) -> list:
        """Check a sign-in of ``user`` from ``address``: ``[status, retry_after]``."""
        wait = self.failures.retry_after(user, address)
        if wait:
            return [LIMITED, wait]
        try:
            ok = await self.store.verify(user, password)
        except HashBusy:
            return [BUSY, 0.0]
        if not ok:
            self.failures.failed(user, address)
        return [OK if ok else WRONG, 0.0]

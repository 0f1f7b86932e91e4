"""The accounts service (``.accounts``): the one owner of the accounts database.

Auth and the login server both ask it, so the hub's signin and the secure login check the
same accounts. Callers check names and passwords with ``accounts.check_credentials`` first;
a malformed one that gets here anyway fails the call with ``AccountError``.
"""

from __future__ import annotations

from demo_game.accounts import AccountStore, ScryptCost
from demo_game.names import ACCOUNTS
from meshnet import Service, command


class Accounts(Service):
    """The ``.accounts`` service: the account store, off the event loop."""

    async def init(self, path: str, n: int, r: int, p: int) -> None:
        self.store = await AccountStore.open(path, ScryptCost(n, r, p))
        self.register(ACCOUNTS)

    async def on_exit(self) -> None:
        await self.store.close()

    @command
    async def signup(self, user: str, password: str) -> bool:
        """Create the account; False if the name is taken."""
        return await self.store.signup(user, password)

    @command
    async def verify(self, user: str, password: str) -> bool:
        """True if the account exists and the password is its own."""
        return await self.store.verify(user, password)

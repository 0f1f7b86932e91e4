"""The gold of one game system, handed to the other by reliable commands
(``meshnet.cluster.reliable``): the main game's wallet keeps it with the accounts (in the
accounts' SQLite file), the subgame's in a file of its own.

A player's gold in a system is one row of its store's ``gold`` table; a player the main
game sees for the first time gets ``starting_gold``. ``move_all`` sends everything the
player has here to the other system: the debit and the command commit together here, the
credit and the command's id together there, so the gold is never in both systems and
never lost between them (a command that could not be confirmed waits in Redis for the
player's next visit there, and is redelivered from here).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from meshnet import command
from meshnet.cluster.reliable import Command, ReliableService
from meshnet.errors import MeshnetError

NOTHING = "nothing"
"""``move_all``'s state when the player had no gold to move."""


class NotEnoughGold(MeshnetError):
    """A command would take more gold than the player has (two moves raced)."""


class Wallet(ReliableService):
    """One system's gold: ``balance``, ``move_all``, ``wallet``, and the reliable
    commands' own (``deliver``, ``drain``, ...)."""

    async def init(self, settings: dict[str, Any], starting_gold: int) -> None:
        self.starting_gold = starting_gold
        await super().init(settings)

    def setup(self, db: sqlite3.Connection) -> None:
        db.execute(
            "CREATE TABLE IF NOT EXISTS gold (user TEXT PRIMARY KEY, amount INTEGER NOT NULL "
            "CHECK (amount >= 0))"
        )

    def debit(self, db: sqlite3.Connection, command: Command) -> None:
        amount = command.args["gold"]
        if _balance(db, command.uid, self.starting_gold) < amount:
            raise NotEnoughGold(f"{command.uid} has less than {amount} gold")
        db.execute("UPDATE gold SET amount = amount - ? WHERE user = ?", (amount, command.uid))

    def credit(self, db: sqlite3.Connection, command: Command) -> None:
        _balance(db, command.uid, self.starting_gold)
        db.execute(
            "UPDATE gold SET amount = amount + ? WHERE user = ?",
            (command.args["gold"], command.uid),
        )

    @command
    async def balance(self, user: str) -> int:
        """The gold ``user`` has in this system."""
        return await self.store.transaction(_balance, user, self.starting_gold)

    @command
    async def move_all(self, user: str, to: str) -> dict[str, Any]:
        """Send all of ``user``'s gold here to system ``to``: ``{state, gold}``, the state
        ``delivered``, ``deferred``, ``held`` (see ``meshnet.cluster.reliable``) or
        ``nothing`` (no gold here)."""
        gold = await self.balance(user)
        if gold == 0:
            return {"state": NOTHING, "gold": 0}
        return {"state": await self.send_command(to, user, "gold", {"gold": gold}), "gold": gold}

    @command
    async def wallet(self, user: str) -> dict[str, int]:
        """``{gold, in_transit}``: what ``user`` has here, and what is on its way from here
        to the other system (tried again first, so what has arrived is not counted)."""
        await self.redeliver(user)
        owed = await self.in_transit(user)
        return {
            "gold": await self.balance(user),
            "in_transit": sum(command["args"]["gold"] for command in owed),
        }


def _balance(db: sqlite3.Connection, user: str, starting_gold: int) -> int:
    db.execute("INSERT OR IGNORE INTO gold VALUES (?, ?)", (user, starting_gold))
    return db.execute("SELECT amount FROM gold WHERE user = ?", (user,)).fetchone()[0]

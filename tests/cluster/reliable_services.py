"""The reliable-command tests' game system: a wallet of gold per user, with ways to crash
at the steps the tests aim at (the node processes' configs put this folder on the
import path).

A fault (``args["fault"]``) fires once per command, whoever brings it again: a marker
file beside the store says it fired, even across the crash it causes. Besides the
balances, each store keeps an audit of every credit it applied
(``credits``, one row per application, no unique key), so a test can see a command
applied twice even though the applied ids would hide it, and of every delivery that came
(``deliveries``: its id and whether it applied the command).
"""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import trio

from meshnet.cluster import api
from meshnet.cluster.reliable import Command, ReliableService
from meshnet.errors import MeshnetError
from meshnet.service import command


class NotEnoughGold(MeshnetError):
    """The sender has less gold than the command moves."""


class Wallet(ReliableService):
    """``.wallet``, registered as ``<node>@wallet``: gold per user, moved by reliable
    commands of kind ``gold`` (``args``: ``gold``, and the test's ``fault``)."""

    async def init(self, settings, name="wallet"):
        await super().init(settings)
        self.register(".wallet")
        if self.node.remote is not None:
            await api.register(name)

    def setup(self, db: sqlite3.Connection) -> None:
        db.execute(
            "CREATE TABLE IF NOT EXISTS gold (uid TEXT PRIMARY KEY, amount INTEGER NOT NULL "
            "CHECK (amount >= 0))"
        )
        db.execute("CREATE TABLE IF NOT EXISTS credits (id TEXT, uid TEXT, amount INTEGER)")
        db.execute("CREATE TABLE IF NOT EXISTS deliveries (id TEXT, applied INTEGER)")

    def debit(self, db: sqlite3.Connection, command: Command) -> None:
        amount = command.args["gold"]
        if _balance(db, command.uid) < amount:
            raise NotEnoughGold(f"{command.uid} has less than {amount} gold")
        db.execute("UPDATE gold SET amount = amount - ? WHERE uid = ?", (amount, command.uid))
        if self._fires(command, "die_in_debit"):
            _die()

    def credit(self, db: sqlite3.Connection, command: Command) -> None:
        _add(db, command.uid, command.args["gold"])
        db.execute(
            "INSERT INTO credits VALUES (?, ?, ?)",
            (command.id, command.uid, command.args["gold"]),
        )
        if self._fires(command, "die_in_credit"):
            _die()

    @command
    async def deliver(self, message):
        command = Command.from_message(message)
        if self._fires(command, "stall"):
            await trio.sleep(command.args["stall"])
        applied = await super().deliver(message)
        if self._fires(command, "die_after_credit"):
            _die()
        await self.store.transaction(_delivered, command.id, applied)
        return applied

    @command
    async def grant(self, uid: str, amount: int) -> None:
        """Give ``uid`` gold out of nothing (a test's starting balances)."""
        await self.store.transaction(_add, uid, amount)

    @command
    async def balance(self, uid: str) -> int:
        return await self.store.transaction(_balance, uid)

    @command
    async def move(self, uid: str, to: str, amount: int, fault: str = "", stall: float = 0):
        """Send ``amount`` of ``uid``'s gold to system ``to``; the outcome."""
        return await self.send_command(to, uid, "gold", _args(amount, fault, stall))

    @command
    async def record_and_die(self, uid: str, to: str, amount: int) -> None:
        """Step 1 of a move (debit and outbox committed), then SIGKILL before step 2."""
        await self.record(to, uid, "gold", _args(amount, "", 0))
        _die()

    def _fires(self, command: Command, fault: str) -> bool:
        if command.args.get("fault") != fault:
            return False
        marker = Path(f"{self.config.store}.{command.id}.{fault}")
        if marker.exists():
            return False
        marker.touch()
        return True


def _args(amount: int, fault: str, stall: float) -> dict:
    args: dict = {"gold": amount}
    if fault:
        args["fault"] = fault
    if stall:
        args["stall"] = stall
    return args


def _delivered(db: sqlite3.Connection, command_id: str, applied: bool) -> None:
    db.execute("INSERT INTO deliveries VALUES (?, ?)", (command_id, applied))


def _balance(db: sqlite3.Connection, uid: str) -> int:
    row = db.execute("SELECT amount FROM gold WHERE uid = ?", (uid,)).fetchone()
    return 0 if row is None else row[0]


def _add(db: sqlite3.Connection, uid: str, amount: int) -> None:
    db.execute(
        "INSERT INTO gold VALUES (?, ?) ON CONFLICT (uid) DO UPDATE SET amount = amount + ?",
        (uid, amount, amount),
    )


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)

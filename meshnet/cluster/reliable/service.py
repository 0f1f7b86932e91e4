"""``ReliableService``: the service a game system subclasses to send and receive reliable
commands (see ``meshnet.cluster.reliable`` for the steps and why they are exactly once).

A subclass defines three hooks, each run inside a transaction of the system's store, on
the store's thread (plain functions of ``db``, a ``sqlite3.Connection``, and the
command; they must not await, and they should touch nothing but ``db``):

- ``setup(db)``: create the game's tables (once per start, in the first transaction);
- ``debit(db, command)``: the sender's side, e.g. take the gold away; raise to refuse
  (nothing is recorded, nothing is sent, the caller of ``send_command`` gets the error);
- ``credit(db, command)``: the receiver's side, e.g. add the gold. It should not refuse:
  a command it raises on stays owed, is tried again and logged each time.

Its own commands serve the other systems (``deliver``) and the game (``drain``,
``redeliver``, ``in_transit``, ``status``); ``send_command`` is for the subclass's own commands.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import trio

from meshnet.cluster.redis_client import RedisUnavailable
from meshnet.cluster.reliable.command import Command, CommandError, check_text
from meshnet.cluster.reliable.config import ReliableConfig
from meshnet.cluster.reliable.deferred import DeferredCommands
from meshnet.cluster.reliable.store import ReliableStore
from meshnet.errors import CallError
from meshnet.service import Service, command

logger = logging.getLogger(__name__)

Outcome = Literal["delivered", "deferred", "held"]
"""What ``send_command`` reports: see ``DELIVERED``, ``DEFERRED``, ``HELD``."""
DELIVERED: Outcome = "delivered"
"""The receiver has applied the command (now, or before)."""
DEFERRED: Outcome = "deferred"
"""Outcome unknown (no answer in time, the node is down, ...): the command is in Redis for
the receiver to take, and in the sender's outbox, which keeps delivering it."""
HELD: Outcome = "held"
"""As ``DEFERRED``, but Redis could not be reached either: only the sender's outbox has
it (it keeps delivering it, and writing it to Redis)."""

REDELIVERIES_AT_ONCE = 32
"""Owed commands the redelivery task tries at the same time."""


class ReliableService(Service):
    """Sends and receives reliable commands; subclass it with ``setup``, ``debit`` and
    ``credit``, and start it with its settings (a ``ReliableConfig`` table).

    A subclass's ``init`` calls ``await super().init(settings)`` first, then registers
    the names its peers use (``await meshnet.cluster.api.register(...)``)."""

    async def init(self, settings: Mapping[str, Any]) -> None:
        self.config = ReliableConfig.parse(settings)
        """The settings."""
        config = self.config
        self.store = await ReliableStore.open(config.store, self.setup)
        """The system's store: ``await self.store.transaction(job, ...)`` for the game's
        own reads and writes."""
        self.deferred = DeferredCommands(
            config.redis, config.prefix, f"{self.node.name}-{config.system}", config.redis_timeout
        )
        """The deferred commands in Redis."""
        self._owed = {
            command.id: _Owed(command, deferred) for command, deferred in await self.store.owed()
        }
        self._wake = trio.Event()
        self.fork(self.deferred.run)
        self.fork(self._redeliver)
        if self._owed:
            logger.info("%d command(s) owed from before: delivering them", len(self._owed))

    async def on_exit(self) -> None:
        await self.store.close()

    # --- the game's hooks (on the store's thread, inside a transaction) ------------------

    def setup(self, db: sqlite3.Connection) -> None:
        """Create the game's tables (``CREATE TABLE IF NOT EXISTS``); by default none."""

    def debit(self, db: sqlite3.Connection, command: Command) -> None:
        """The sender's change for ``command`` (committed with its outbox entry); raise to
        refuse it."""
        raise NotImplementedError(f"{type(self).__name__} does not send commands (no debit)")

    def credit(self, db: sqlite3.Connection, command: Command) -> None:
        """The receiver's change for ``command`` (committed with its applied id)."""
        raise NotImplementedError(f"{type(self).__name__} does not take commands (no credit)")

    # --- sending -------------------------------------------------------------------------

    async def send_command(
        self, receiver: str, uid: str, kind: str, args: Mapping[str, Any]
    ) -> Outcome:
        """``record`` a command for ``receiver`` (a system in ``peers``), then ``forward``
        it: ``DELIVERED``, ``DEFERRED`` or ``HELD``. Whatever ``debit`` raises is raised
        here, and then nothing was recorded."""
        return await self.forward(await self.record(receiver, uid, kind, args))

    async def record(self, receiver: str, uid: str, kind: str, args: Mapping[str, Any]) -> Command:
        """Step 1 alone: ``debit`` and the outbox entry, in one transaction. From then on
        the command is owed: it is delivered even if this process dies now (at its next
        start)."""
        if receiver not in self.config.peers:
            raise CommandError(
                f"receiver: {receiver!r} is not a peer of {self.config.system!r} "
                f"(peers: {', '.join(self.config.peers) or 'none'})"
            )
        command = Command.new(self.config.system, receiver, uid, kind, args)
        await self.store.record(command, self.debit)
        self._owed[command.id] = _Owed(command, deferred=False, due=self._backoff(0))
        self._wake.set()
        return command

    async def forward(self, command: Command) -> Outcome:
        """Step 2: deliver an owed command within ``timeout``; if no answer says it is
        applied, write it to Redis and keep it owed (it is delivered again later)."""
        owed = self._owed.get(command.id)
        if owed is None:
            return DELIVERED
        return await self._attempt(owed)

    # --- receiving -----------------------------------------------------------------------

    @command
    async def deliver(self, message: Mapping[str, Any]) -> bool:
        """Apply a command another system sends (``Command.to_message``): True if applied
        now, False if its id was applied before (then nothing changes)."""
        command = Command.from_message(message)
        if command.receiver != self.config.system:
            raise CommandError(
                f"receiver: this is system {self.config.system!r}, not {command.receiver!r}"
            )
        return await self.store.apply(command, self.credit)

    @command
    async def drain(self, uid: str) -> int:
        """Apply the commands kept in Redis for ``uid`` (call it when the user logs in
        here), taking each out once applied; return how many were applied now (the others
        were already). ``RedisUnavailable`` if Redis cannot be reached."""
        check_text("uid", uid)
        applied = 0
        for deferred in await self.deferred.of(self.config.system, uid):
            try:
                applied += await self.store.apply(deferred, self.credit)
            except Exception:
                logger.exception(
                    "deferred command %s from %s for %s failed: left in Redis",
                    deferred.id,
                    deferred.sender,
                    uid,
                )
                continue
            await self.deferred.remove(deferred)
        if applied:
            logger.info("%d deferred command(s) for %s applied", applied, uid)
        return applied

    @command
    async def redeliver(self, uid: str) -> int:
        """Try the commands owed for ``uid`` now, without waiting for their next turn (when
        the receiver is known to be back, or before showing the player what is in
        transit); return how many are still owed."""
        check_text("uid", uid)
        async with trio.open_nursery() as nursery:
            for owed in list(self._owed.values()):
                if owed.command.uid == uid and not owed.attempting:
                    owed.due = math.inf  # the redelivery task leaves it to this attempt
                    nursery.start_soon(self._attempt, owed)
        return sum(owed.command.uid == uid for owed in self._owed.values())

    # --- looking -------------------------------------------------------------------------

    @command
    async def in_transit(self, uid: str) -> list[dict[str, Any]]:
        """The commands this system owes others for ``uid``, oldest first: each command's
        map and ``deferred`` (True once it is in Redis)."""
        check_text("uid", uid)
        return [
            {**owed.to_message(), "deferred": deferred}
            for owed, deferred in await self.store.owed(uid)
        ]

    @command
    async def status(self) -> dict[str, Any]:
        """``system``, and how many commands it owes (``owed``), of them in Redis
        (``deferred``)."""
        owed = await self.store.owed()
        return {
            "system": self.config.system,
            "owed": len(owed),
            "deferred": sum(deferred for _, deferred in owed),
        }

    # --- helpers -------------------------------------------------------------------------

    async def _attempt(self, owed: _Owed) -> Outcome:
        command = owed.command
        owed.attempting += 1
        try:
            target = self.config.peers.get(command.receiver)
            try:
                if target is None:
                    raise CommandError(f"{command.receiver!r} is no longer among the peers")
                await self.call(
                    target, "deliver", command.to_message(), timeout=self.config.timeout
                )
            except (CallError, CommandError) as exc:
                logger.info(
                    "command %s to %s for %s not confirmed (%s): kept",
                    command.id,
                    command.receiver,
                    command.uid,
                    exc,
                )
                return await self._keep(owed)
            await self._delivered(owed)
            return DELIVERED
        finally:
            owed.attempting -= 1
            self._wake.set()

    async def _delivered(self, owed: _Owed) -> None:
        await self.store.forget(owed.command.id)
        self._owed.pop(owed.command.id, None)
        if owed.deferred:
            try:
                await self.deferred.remove(owed.command)
            except RedisUnavailable as exc:
                logger.info("%s: the receiver's next drain takes it out", exc)

    async def _keep(self, owed: _Owed) -> Outcome:
        try:
            await self.deferred.put(owed.command)
        except RedisUnavailable as exc:
            logger.warning("%s: the command stays owed here only", exc)
        else:
            if not owed.deferred:
                await self.store.mark_deferred(owed.command.id)
                owed.deferred = True
        owed.attempts += 1
        owed.due = self._backoff(owed.attempts)
        return DEFERRED if owed.deferred else HELD

    def _backoff(self, attempts: int) -> float:
        delay = min(self.config.retry * 2 ** max(attempts - 1, 0), self.config.retry_max)
        return trio.current_time() + delay

    async def _redeliver(self) -> None:
        """Deliver every owed command that is due, again and again, until none is owed."""
        limiter = trio.CapacityLimiter(REDELIVERIES_AT_ONCE)

        async def attempt(owed: _Owed) -> None:
            async with limiter:
                await self._attempt(owed)

        async with trio.open_nursery() as nursery:
            while True:
                now = trio.current_time()
                for owed in list(self._owed.values()):
                    if not owed.attempting and owed.due <= now:
                        owed.due = math.inf  # the attempt sets the next one
                        nursery.start_soon(attempt, owed)
                idle = [owed.due for owed in self._owed.values() if not owed.attempting]
                with trio.move_on_at(min(idle, default=math.inf)):
                    await self._wake.wait()
                self._wake = trio.Event()


@dataclass
class _Owed:
    """A command in the outbox, as the redelivery task sees it."""

    command: Command
    deferred: bool
    due: float = 0.0
    attempts: int = 0
    attempting: int = 0

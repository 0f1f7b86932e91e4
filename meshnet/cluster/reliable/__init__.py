"""Reliable commands between game systems (seed 001's hand-off): a command one system
owes another for a user, such as "credit alice 100 gold", applied by the receiver exactly
once, whatever crashes, timeouts and restarts happen on the way.

Each system is a ``ReliableService`` subclass with one store (``ReliableStore``, a SQLite
file) holding its balances, the commands it owes (the *outbox*) and the ids of the
commands it has applied (the *inbox*). Commands it could not deliver are also kept in
Redis (``DeferredCommands``) for the receiver to take when the user logs in there.

**The steps**, for system A sending a command to system B:

1. A, in one transaction: ``debit`` (e.g. take the gold away) and the outbox row of the
   command, under a new random id.
2. A calls B's ``deliver`` with it, with a deadline (``timeout``).
3. B, in one transaction: if the id is among its applied ids, nothing; else ``credit``
   (e.g. add the gold) and the id among its applied ids. Then it answers.
4. On B's answer, A deletes the outbox row (and the Redis entry, if it wrote one): done.
5. On anything else (``CallTimeout``, ``NodeDown``, an error), A writes the command to
   Redis (``HSET <prefix>:<B>_<uid> <id> <command>``), marks the row deferred and keeps
   it: it repeats step 2 with backoff (``retry`` doubling up to ``retry_max``), writing
   the Redis entry again each time, until an answer comes.
6. B, when the user logs in there (``drain(uid)``), does step 3 for each command Redis
   holds for it, and takes each out (``HDEL``) once applied.

**Why no crash loses or doubles it.** Only an answer from B ends a command: a timeout or
a lost link says nothing about whether B applied it (its answer may be what was lost),
so A never refunds on one; it keeps the command and lets B's applied ids decide. Which
crash, between which steps, leads where:

- A dies before 1 commits: nothing happened (no debit, nothing owed).
- A dies after 1, before or during 2: the row survives; at its next start A delivers it.
- B dies before 3 commits: not applied; A gets no answer (5); a later delivery or a
  drain applies it, once.
- B dies after 3 commits, before its answer reaches A: applied; A does not know it (5);
  the next delivery or drain finds the id and changes nothing, and the copy is removed.
- A dies after B's answer, before 4 commits: the row survives; at its next start A
  delivers it again, B finds the id, answers, and A deletes the row.
- A dies during 5 (Redis written, row not yet marked, or neither): at its next start A
  delivers again or writes the same Redis field again (a hash field per id: one entry).
- B dies during 6, after applying, before the ``HDEL``: the entry stays; the next drain
  finds the id, changes nothing, and takes it out.
- Two drains at once, or a drain and the original delivery arriving late: each does step
  3 in its own transaction, and the store runs them one at a time on its thread: the
  first applies it, the other finds the id.

**What "deferred" promises the player.** The gold has left the sending system (it cannot
be spent there) and is not yet in the receiving one (``in_transit`` lists it). It will be
there exactly once: as soon as the sender reaches the receiver again, or when the player
next logs in to the receiving system (its drain), whichever comes first. It is never
given back on its own: a refund could double it.

**Limits.** One store per system: everything that applies commands for a system must see
its applied ids (one service, or one file). The applied ids are kept for good (one small
row per command): pruning them would let a late copy (a stale Redis entry, an outbox
restored from a backup) apply twice. Commands are applied in no promised order (a
redelivery may overtake a later command), so they should commute, as credits do.
``credit`` should not refuse (a command it raises on stays owed and is logged at each
try): check on the sender's side, in ``debit``. If Redis loses data, nothing is lost
while the sender's store lives (the sender keeps delivering from its outbox and writes
the entry again); what is lost is the receiver's way to take it while the sender is down.
An old Redis entry brought back is a no-op (its id is applied). Losing a store file loses
that system's balances and ids: back it up as the accounts.
"""

from __future__ import annotations

from meshnet.cluster.redis_client import RedisUnavailable
from meshnet.cluster.reliable.command import Command, CommandError
from meshnet.cluster.reliable.config import ReliableConfig, ReliableConfigError
from meshnet.cluster.reliable.deferred import DeferredCommands
from meshnet.cluster.reliable.service import DEFERRED, DELIVERED, HELD, Outcome, ReliableService
from meshnet.cluster.reliable.store import ReliableStore

__all__ = [
    "DEFERRED",
    "DELIVERED",
    "HELD",
    "Command",
    "CommandError",
    "DeferredCommands",
    "Outcome",
    "RedisUnavailable",
    "ReliableConfig",
    "ReliableConfigError",
    "ReliableService",
    "ReliableStore",
]

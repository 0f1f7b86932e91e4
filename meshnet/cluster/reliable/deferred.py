"""Deferred commands in Redis: what a sender could not deliver, kept for the receiver to
take (seed 001's ``<system>_<uid>`` keys).

One hash per receiving system and user::

    <prefix>:<receiver>_<uid>      field: the command's id    value: the command as JSON

The seed keeps a *set* under the sending system's letter and the user
(``f_10001 → req_mv_gold@gold=10000|session=1``). A hash keyed by id is what makes the
move out of Redis idempotent: a sender that writes the same command twice (it retried,
or restarted) leaves one entry, and the receiver takes one entry out by its id
(``HDEL``) once it is applied, without touching a command written meanwhile. The key
names the *receiver*, so that a system draining a user reads one key whatever the
number of systems that owe it.

Redis is reached with one client per service (``meshnet.cluster.redis_client``): a
command that cannot reach Redis raises ``RedisUnavailable`` at once; the next connects
again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import coredis
import trio

from meshnet.cluster.redis_client import (
    REDIS_DOWN,
    RedisUnavailable,
    describe,
    open_client,
    safe_url,
)
from meshnet.cluster.reliable.command import Command, CommandError

logger = logging.getLogger(__name__)


class DeferredCommands:
    """The deferred commands under ``prefix`` in the Redis at ``url``.

    ``run()`` (in a task of its own, until cancelled) holds the client; the other methods
    wait for it, then raise ``RedisUnavailable`` if Redis cannot be reached within
    ``timeout`` seconds."""

    def __init__(self, url: str, prefix: str, name: str, timeout: float) -> None:
        self.prefix = prefix
        """The first part of every key."""
        self._url = url
        self._name = name
        self._timeout = timeout
        self._client: coredis.Redis[str] | None = None
        self._ready = trio.Event()

    async def run(self) -> None:
        """Hold the client until cancelled."""
        async with open_client(self._url, self._timeout, self._name) as client:
            self._client = client
            self._ready.set()
            try:
                await trio.sleep_forever()
            finally:
                self._client = None

    def key(self, receiver: str, uid: str) -> str:
        """The key of the commands kept for ``receiver`` and ``uid``."""
        return f"{self.prefix}:{receiver}_{uid}"

    async def put(self, command: Command) -> None:
        """Keep ``command`` for its receiver (writing it again changes nothing)."""
        client = await self._connected()
        with self._failing(f"deferring command {command.id}"):
            await client.hset(
                self.key(command.receiver, command.uid), {command.id: command.encode()}
            )

    async def of(self, receiver: str, uid: str) -> list[Command]:
        """The commands kept for ``receiver`` and ``uid``. An entry that is not a command
        of theirs is logged and left alone (for someone to look at)."""
        client = await self._connected()
        key = self.key(receiver, uid)
        with self._failing(f"reading {key}"):
            entries = await client.hgetall(key)
        commands = []
        for command_id, text in sorted(entries.items()):
            try:
                command = Command.decode(text)
                if (command.id, command.receiver, command.uid) != (command_id, receiver, uid):
                    raise CommandError(
                        f"it is command {command.id} for {command.receiver}_{command.uid}"
                    )
            except CommandError as exc:
                logger.error("ignored entry %r of %s in Redis: %s", command_id, key, exc)
                continue
            commands.append(command)
        return commands

    async def remove(self, command: Command) -> None:
        """Take ``command`` out (applied); nothing happens if it is not there."""
        client = await self._connected()
        with self._failing(f"removing command {command.id}"):
            await client.hdel(self.key(command.receiver, command.uid), [command.id])

    async def _connected(self) -> coredis.Redis[str]:
        await self._ready.wait()
        if self._client is None:
            raise RedisUnavailable("the deferred commands' Redis client is closed (stopping)")
        return self._client

    @contextmanager
    def _failing(self, what: str) -> Iterator[None]:
        try:
            yield
        except REDIS_DOWN as exc:
            raise RedisUnavailable(
                f"{what}: Redis at {safe_url(self._url)} is unreachable ({describe(exc)})"
            ) from None

"""Redis discovery: the cluster's members, names and unique-service owners kept in Redis.

Every key begins with the cluster's name (``cluster.name``, default ``meshnet``) and a
colon, written ``<c>:`` here; a *token* is ``<node>/<incarnation in hex>``, one per start
of a node:

===================  ===================================================  ============
key                  value                                                lives
===================  ===================================================  ============
``<c>:id:<id>``      the token of the node holding node id ``<id>``        its lease
``<c>:node:<node>``  ``{"address": "host:port", "id": N, "incarnation":    its lease
                     "hex"}`` (JSON)
``<c>:name:<name>``  the token of the node holding the cluster-wide name   its lease
``<c>:unique:<key>`` the token of the node running the one service         its lease
                     ``<key>`` (``uniqueservice(cluster=True)``)
``<c>:nodes``        a set of node names, ``<c>:names`` a set of names:   kept
                     what a rescan reads
===================  ===================================================  ============

A node's **lease** is the TTL (``cluster.ttl``, default 3 s) shared by every key it holds:
one script sets them all (``SET ... PX ttl``, all or nothing, refused if another token
holds any of them) and the node runs it again every ttl/3 to refresh them, so its keys
expire together within a TTL of its last refresh when it crashes. Claiming a node id, a
node name, a cluster-wide name or a unique service is that same script.

**Pub/sub.** After each change, the changer publishes on the channel ``<c>:events`` which
key changed: ``node <node>`` or ``name <name>``. A node hearing it reads that key again
(so a message can never make its view older than Redis) and tells ``on_change`` which
nodes appeared, changed or went. Expiry publishes nothing: every ttl/3 each node also
rescans the ``<c>:nodes`` set (one script, which drops the entries whose key has
expired), so a crashed node leaves the others' views within about ttl + ttl/3 of its
last refresh.

**When Redis is away** the node keeps its last view and its links (calls go on), logs it
once, and reconnects with backoff (up to ttl/3 apart). When Redis is back it claims its
keys again (with AOF persistence and a short outage they are still its own), re-reads the
whole view, and for one TTL keeps members it no longer finds there, giving them the
time to register again. ``announce`` and ``withdraw`` need Redis: ``announce`` fails with
``RedisUnavailable``; a ``withdraw`` is done when Redis is back. If another node holds
this node's id or name by then, this node leaves the cluster (``run`` raises
``NodeIdTaken``: the ``.cluster`` service ends, its links close, the node's own services
go on); a cluster-wide name or unique service another node took meanwhile is dropped here,
with an error in the log.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import coredis
import trio
from coredis.commands.script import Script
from coredis.retry import NoRetryPolicy

from meshnet.cluster.cluster import ClusterNameError
from meshnet.cluster.config import ClusterConfig, ClusterConfigError
from meshnet.cluster.discovery import Changed
from meshnet.cluster.members import Member, MemberError, parse_host_port
from meshnet.cluster.redis_client import (
    REDIS_DOWN,
    RedisUnavailable,
    describe,
    leaves,
    open_client,
    redis_failure,
    safe_url,
)
from meshnet.errors import MeshnetError

if TYPE_CHECKING:
    from meshnet.node import Node

logger = logging.getLogger(__name__)

BACKOFF_FIRST = 0.05
"""Seconds before the first reconnection to Redis; the wait doubles up to ttl/3."""
LEAVE_TIMEOUT = 1.0
"""Seconds a stopping node gives Redis to take its keys away (they expire anyway)."""
LAPSE_MARGIN = 0.05
"""Seconds waited beyond a previous holder's remaining TTL before claiming again."""


class NodeIdTaken(MeshnetError):
    """Another live node holds this node's id or name in Redis."""


class RedisDiscovery:
    """Members, cluster-wide names and unique-service owners kept in Redis; see the
    module docstring."""

    def __init__(self, node: Node, config: ClusterConfig, on_change: Changed | None = None) -> None:
        address = config.advertise or config.listen
        if config.redis is None or address is None:
            raise ClusterConfigError("Redis discovery needs 'cluster.redis' and 'cluster.address'")
        self.on_change = on_change
        """Told which nodes appeared, changed or went."""
        self._url = config.redis
        self._ttl = config.ttl
        self._interval = config.ttl / 3
        self._start_timeout = config.connect_timeout
        self._keys = _Keys(config.name)
        self._name = node.name
        self._id = node.id
        self._token = f"{node.name}/{node.incarnation:08x}"
        me = Member(node.name, node.id, *address)
        self._entries: dict[str, _Entry] = {me.name: _Entry(me, f"{node.incarnation:08x}")}
        self._by_id: dict[int, Member] = {me.id: me}
        self._names: dict[str, str] = {}
        self._owners: dict[str, str] = {}
        """Unique-service owners seen, for ``owner_of`` while Redis is away."""
        self._lease = [
            _Claim(self._keys.id(me.id), self._token),
            _Claim(
                self._keys.node(me.name),
                self._entries[me.name].encode(),
                self._keys.nodes,
                me.name,
                f"node {me.name}",
            ),
        ]
        self._held: dict[str, _Claim] = {}
        """Every key this node holds in Redis, its lease first once it has joined."""
        self._to_release: dict[str, _Claim] = {}
        """Withdrawn while Redis was away: released when it is back."""
        self._claiming = trio.Lock()
        self._client: coredis.Redis[str] | None = None
        self._hints: set[tuple[str, str]] = set()
        self._hinted = trio.Event()
        self._grace_until = 0.0
        self._names_stale = False
        self._started = False
        self._failures = 0
        self._down_since: float | None = None

    # --- the view (no Redis round trip) ---------------------------------------------------

    def member(self, name: str) -> Member | None:
        """The node called ``name`` in the last view, or None."""
        entry = self._entries.get(name)
        return entry.member if entry is not None else None

    def member_by_id(self, node_id: int) -> Member | None:
        """The node with id ``node_id`` in the last view, or None."""
        return self._by_id.get(node_id)

    def members(self) -> Iterable[Member]:
        """Every node of the last view, this one included."""
        return [entry.member for entry in self._entries.values()]

    def home_of(self, name: str) -> str | None:
        """The node holding the cluster-wide ``name`` in the last view, or None."""
        return self._names.get(name)

    # --- joining and staying -------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Claim this node's id and name, read the view, then keep both current until
        cancelled, and take this node's keys away then.

        ``NodeIdTaken`` before ``task_status.started()`` if a live node holds the id or the
        name (a holder that does not refresh its lease, such as this node's previous start,
        is waited for, at most one TTL); ``RedisUnavailable`` if Redis cannot be reached
        within ``cluster.connect_timeout``."""
        try:
            async with open_client(self._url, self._interval, self._name) as client:
                self._client = client
                await self._stay(client, task_status)
        finally:
            self._client = None
            with trio.CancelScope(shield=True):
                await self._leave()

    async def announce(self, name: str) -> None:
        """Hold the cluster-wide ``name`` for this node (``cluster.register``):
        ``ClusterNameError`` if another node holds it, ``RedisUnavailable`` if Redis is
        away."""
        claim = _Claim(self._keys.name(name), self._token, self._keys.names, name, f"name {name}")
        async with self._claiming:
            held = await self._claim_with_lease(claim, f"the cluster name {name!r}")
            if held:
                self._names[name] = held[claim.key]
                raise ClusterNameError(
                    f"the cluster name {name!r} is held by node {held[claim.key]}"
                )
            self._held[claim.key] = claim
            self._to_release.pop(claim.key, None)
        self._names[name] = self._name

    async def withdraw(self, name: str) -> None:
        """Give up the cluster-wide ``name`` (at once, or when Redis is back)."""
        self._names.pop(name, None)
        async with self._claiming:
            claim = self._held.pop(self._keys.name(name), None)
            if claim is None:
                return
            try:
                await _release(self._need_client(), [claim], self._keys)
            except REDIS_DOWN:
                self._to_release[claim.key] = claim

    async def owner_of(self, key: str) -> str:
        """The node running the cluster's one service ``key``: the node that claimed it
        first among the living, or this node, which claims it now. While Redis is away, the
        owner last seen if it is still in the view."""
        claim = _Claim(self._keys.unique(key), self._token)
        async with self._claiming:
            try:
                held = await self._claim_with_lease(claim, f"the unique service {key!r}")
            except RedisUnavailable:
                owner = self._owners.get(key)
                if owner is None or owner not in self._entries:
                    raise
                return owner
            if not held:
                self._held[claim.key] = claim
        owner = held.get(claim.key, self._name)
        self._owners[key] = owner
        return owner

    # --- sessions: one per stretch of Redis being reachable --------------------------------

    async def _stay(self, client: coredis.Redis[str], task_status: trio.TaskStatus[None]) -> None:
        """Sessions, one after another, with backoff between them."""
        start_by = trio.current_time() + self._start_timeout
        while True:
            try:
                await self._session(client, None if self._started else task_status)
            except BaseException as exc:  # a session ends only by raising
                # a stop, whatever coredis raised on its way out (it may be a stream error)
                await trio.lowlevel.checkpoint_if_cancelled()
                failure = redis_failure(exc)
                if failure is None:
                    error = _sole(exc, NodeIdTaken)
                    if self._started and isinstance(error, NodeIdTaken):
                        logger.error("%s: this node leaves the cluster", error)
                    raise error from None
            backoff = min(BACKOFF_FIRST * 2**self._failures, self._interval)
            self._failures += 1
            if self._started:
                self._lost(failure)
            elif trio.current_time() + backoff > start_by:
                raise RedisUnavailable(
                    f"cannot reach Redis at {safe_url(self._url)} within "
                    f"{self._start_timeout:g}s: {describe(failure)}"
                ) from None
            await trio.sleep(backoff * random.uniform(0.5, 1.0))

    async def _session(
        self, client: coredis.Redis[str], task_status: trio.TaskStatus[None] | None
    ) -> None:
        """Join (or rejoin), then follow the cluster until Redis fails."""
        await self._join(client, first=task_status is not None)
        if self._to_release:
            await _release(client, list(self._to_release.values()), self._keys)
            self._to_release.clear()
        async with client.pubsub(
            channels=[self._keys.events],
            ignore_subscribe_messages=True,
            retry_policy=NoRetryPolicy(),
            max_idle_seconds=max(1.0, self._interval),
        ) as pubsub:
            if task_status is None:
                self._grace_until = trio.current_time() + self._ttl
            await self._rescan(client, names=True)
            if self._down_since is not None:
                logger.info(
                    "Redis at %s is back after %.1fs: this node is registered again",
                    safe_url(self._url),
                    trio.current_time() - self._down_since,
                )
                self._down_since = None
            self._failures = 0
            if task_status is not None:
                logger.info("joined the cluster through Redis at %s", safe_url(self._url))
                self._started = True
                task_status.started()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._heartbeat, client)
                nursery.start_soon(self._follow, client)
                async for message in pubsub:
                    self._hint(message["data"])
                raise coredis.exceptions.ConnectionError("the subscription to Redis ended")

    async def _join(self, client: coredis.Redis[str], first: bool) -> None:
        """Claim the lease (and, when rejoining, everything held before)."""
        async with self._claiming:
            claims = self._lease + [c for k, c in self._held.items() if k not in self._lease_keys]
            held = await _claim(client, claims, self._ttl, self._keys)
            if held and first:
                wait = max(ttl for _, ttl in held.values())
                if wait > 0:
                    logger.info(
                        "waiting %.2fs for the lease of %s to lapse (an earlier start of "
                        "this node that did not stop cleanly?)",
                        wait / 1000,
                        ", ".join(sorted({holder for holder, _ in held.values()})),
                    )
                    await trio.sleep(wait / 1000 + LAPSE_MARGIN)
                held = await _claim(client, claims, self._ttl, self._keys)
            await self._settle(client, claims, held)

    async def _heartbeat(self, client: coredis.Redis[str]) -> None:
        """Refresh every key this node holds, every ttl/3."""
        while True:
            await trio.sleep(self._interval)
            async with self._claiming:
                claims = list(self._held.values())
                held = await _claim(client, claims, self._ttl, self._keys)
                await self._settle(client, claims, held)

    async def _settle(
        self, client: coredis.Redis[str], claims: list[_Claim], held: dict[str, tuple[str, int]]
    ) -> None:
        """Hold ``claims`` after a claim that found ``held`` (key: holder, ms left): the
        lease held by another node is fatal; other claims held by another node are dropped
        and the rest claimed again."""
        while held:
            lost_lease = [key for key in held if key in self._lease_keys]
            if lost_lease:
                holders = ", ".join(sorted({held[key][0] for key in lost_lease}))
                raise NodeIdTaken(
                    f"this node ({self._name!r}, id {self._id}) cannot be in the cluster: its "
                    f"{' and '.join(_what(key, self._keys) for key in lost_lease)} "
                    f"{'is' if len(lost_lease) == 1 else 'are'} held in Redis by the live "
                    f"node {holders}; give each node its own [node] name and id"
                )
            for key, (holder, _) in held.items():
                logger.error(
                    "%s is now held by node %s, which took it while this node was away from "
                    "Redis: this node no longer holds it",
                    _what(key, self._keys),
                    holder,
                )
                self._held.pop(key, None)
                if key.startswith(self._keys.name("")):
                    self._names[key.removeprefix(self._keys.name(""))] = holder
            claims = [claim for claim in claims if claim.key not in held]
            held = await _claim(client, claims, self._ttl, self._keys)
        for claim in claims:
            self._held[claim.key] = claim

    async def _claim_with_lease(self, claim: _Claim, what: str) -> dict[str, str]:
        """Claim ``claim`` together with this node's lease; {its key: the node holding it}
        if another node has it, else empty (it is this node's now)."""
        try:
            held = await _claim(self._need_client(), [*self._lease, claim], self._ttl, self._keys)
        except REDIS_DOWN as exc:
            raise RedisUnavailable(
                f"{what} cannot be claimed while Redis at {safe_url(self._url)} is unreachable: "
                f"{describe(exc)}"
            ) from None
        if any(key in self._lease_keys for key in held):
            raise NodeIdTaken(
                f"node {self._name!r} lost its id or name in Redis to another node; it is "
                "leaving the cluster"
            )
        return {key: holder for key, (holder, _) in held.items()}

    def _lost(self, failure: BaseException) -> None:
        if self._down_since is None:
            self._down_since = trio.current_time()
            logger.warning(
                "Redis at %s is unreachable (%s): keeping the last view of %d node(s) and retrying",
                safe_url(self._url),
                describe(failure),
                len(self._entries),
            )
        else:
            logger.debug("Redis still unreachable: %s", describe(failure))

    async def _leave(self) -> None:
        """Take this node's keys away and tell the others (a clean stop)."""
        claims = list(self._held.values()) + list(self._to_release.values())
        if not claims:
            return
        self._held.clear()
        self._to_release.clear()
        reason = f"no answer within {LEAVE_TIMEOUT:g}s"
        with trio.move_on_after(LEAVE_TIMEOUT):
            try:
                async with open_client(self._url, LEAVE_TIMEOUT, self._name) as client:
                    await _release(client, claims, self._keys)
                logger.info("left the cluster: this node's keys are gone from Redis")
                return
            except BaseException as exc:
                failure = redis_failure(exc)
                if failure is None:
                    raise
                reason = describe(failure)
        logger.warning(
            "could not take this node's keys out of Redis (%s): they expire within %gs",
            reason,
            self._ttl,
        )

    # --- keeping the view current ----------------------------------------------------------

    def _hint(self, data: Any) -> None:
        kind, _, subject = str(data).partition(" ")
        if kind not in ("node", "name") or not subject:
            logger.debug("ignored a message on %s: %r", self._keys.events, data)
            return
        self._hints.add((kind, subject))
        self._hinted.set()

    async def _follow(self, client: coredis.Redis[str]) -> None:
        """Read again what the messages name, as they come; rescan every ttl/3."""
        rescan_at = trio.current_time() + self._interval
        while True:
            with trio.move_on_at(rescan_at):
                await self._hinted.wait()
            self._hinted = trio.Event()
            hints, self._hints = sorted(self._hints), set()
            if hints:
                keys = [self._keys.of(kind, subject) for kind, subject in hints]
                values = await client.mget(keys)
                changed = set()
                for (kind, subject), value in zip(hints, values, strict=True):
                    if kind == "node":
                        changed |= self._set_node(subject, value)
                    else:
                        self._set_name(subject, value)
                self._changed(changed)
            if trio.current_time() >= rescan_at:
                await self._rescan(client, names=self._names_stale)
                rescan_at = trio.current_time() + self._interval

    async def _rescan(self, client: coredis.Redis[str], names: bool) -> None:
        """Read the whole view (the names too, if ``names``) and make it this node's."""
        nodes, found_names = await _VIEW(
            [self._keys.nodes, self._keys.names],
            [self._keys.node(""), self._keys.name(""), "1" if names else "0"],
            client=client,
        )
        graced = trio.current_time() < self._grace_until
        found = dict(_pairs(nodes))
        changed = set()
        for name, value in found.items():
            changed |= self._set_node(name, value)
        if not graced:
            for name in [n for n in self._entries if n not in found]:
                changed |= self._set_node(name, None)
        if names:
            seen = dict(_pairs(found_names))
            for name, value in seen.items():
                self._set_name(name, value)
            if not graced:
                for name in [n for n in self._names if n not in seen]:
                    self._set_name(name, None)
        self._names_stale = graced
        self._changed(changed)

    def _set_node(self, name: str, value: str | None) -> set[str]:
        """Make the view's entry for node ``name`` what Redis holds (``value``); the set of
        that name if it appeared, changed or went, else empty."""
        if name == self._name:
            return set()  # this node is in its own view for as long as it runs
        entry = _Entry.decode(name, value) if value is not None else None
        if value is not None and (entry is None or entry.member.id == self._id):
            return set()  # malformed (logged) or impossible: the view keeps what it had
        old = self._entries.get(name)
        if old == entry:
            return set()
        if old is not None:
            del self._entries[name]
            if self._by_id.get(old.member.id) == old.member:
                del self._by_id[old.member.id]
        if entry is not None:
            self._entries[name] = entry
            self._by_id[entry.member.id] = entry.member
        else:
            for held_name in [n for n, node in self._names.items() if node == name]:
                del self._names[held_name]
        return {name}

    def _set_name(self, name: str, value: str | None) -> None:
        if value is None:
            self._names.pop(name, None)
        else:
            self._names[name] = _node_of(value)

    def _changed(self, names: set[str]) -> None:
        if names:
            described = ", ".join(self._describe_change(name) for name in sorted(names))
            logger.info("cluster view: %s", described)
            if self.on_change is not None:
                self.on_change(names)

    def _describe_change(self, name: str) -> str:
        entry = self._entries.get(name)
        if entry is None:
            return f"{name} left"
        return f"{name} (id {entry.member.id}) at {entry.member.address}"

    # --- helpers ---------------------------------------------------------------------------

    @property
    def _lease_keys(self) -> set[str]:
        return {claim.key for claim in self._lease}

    def _need_client(self) -> coredis.Redis[str]:
        if self._client is None:
            raise RedisUnavailable("this node is not connected to Redis (the cluster stopped)")
        return self._client


# --- what is stored ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Keys:
    """The names of a cluster's keys in Redis."""

    cluster: str

    def id(self, node_id: int) -> str:
        return f"{self.cluster}:id:{node_id}"

    def node(self, name: str) -> str:
        return f"{self.cluster}:node:{name}"

    def name(self, name: str) -> str:
        return f"{self.cluster}:name:{name}"

    def unique(self, key: str) -> str:
        return f"{self.cluster}:unique:{key}"

    def of(self, kind: str, subject: str) -> str:
        return self.node(subject) if kind == "node" else self.name(subject)

    @property
    def nodes(self) -> str:
        return f"{self.cluster}:nodes"

    @property
    def names(self) -> str:
        return f"{self.cluster}:names"

    @property
    def events(self) -> str:
        return f"{self.cluster}:events"


@dataclass(frozen=True)
class _Claim:
    """A key a node holds: its value, the index set it is listed in, and the event
    published when it appears or goes."""

    key: str
    value: str
    index: str = ""
    member: str = ""
    event: str = ""


@dataclass(frozen=True)
class _Entry:
    """A node as its key in Redis describes it."""

    member: Member
    incarnation: str

    def encode(self) -> str:
        member = self.member
        return json.dumps(
            {"address": member.address, "id": member.id, "incarnation": self.incarnation},
            sort_keys=True,
        )

    @classmethod
    def decode(cls, name: str, value: str) -> _Entry | None:
        try:
            raw = json.loads(value)
            address, node_id, incarnation = raw["address"], raw["id"], raw["incarnation"]
            if not isinstance(node_id, int) or not isinstance(incarnation, str):
                raise MemberError("id must be an integer and incarnation a string")
            host, port = parse_host_port(str(address), "address")
            return cls(Member(name, node_id, host, port), incarnation)
        except (ValueError, KeyError, TypeError, MemberError) as exc:
            logger.warning("ignored node %r: malformed entry %r in Redis (%s)", name, value, exc)
            return None


# --- the scripts ------------------------------------------------------------------------------

_CLAIM = Script(
    script="""
-- KEYS: the keys to hold. ARGV[1]: TTL in ms; ARGV[2]: the events channel; then four
-- per key: value, index set ('' for none), index member, event ('' for none).
-- All or nothing: if other values hold any of the keys, nothing changes and the reply
-- lists key, value, ms left for each; else every key is set with the TTL, and each key
-- that was missing joins its index set and has its event published.
local missing, held = {}, {}
for i, key in ipairs(KEYS) do
  local value = redis.call('GET', key)
  if not value then
    missing[i] = true
  elseif value ~= ARGV[3 + (i - 1) * 4] then
    held[#held + 1] = key
    held[#held + 1] = value
    held[#held + 1] = redis.call('PTTL', key)
  end
end
if #held > 0 then return held end
for i, key in ipairs(KEYS) do
  local at = 3 + (i - 1) * 4
  redis.call('SET', key, ARGV[at], 'PX', ARGV[1])
  if missing[i] then
    if ARGV[at + 1] ~= '' then redis.call('SADD', ARGV[at + 1], ARGV[at + 2]) end
    if ARGV[at + 3] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[at + 3]) end
  end
end
return held
"""
)

_RELEASE = Script(
    script="""
-- KEYS and ARGV as for the claim. Each key still holding its value is deleted, leaves its
-- index set and has its event published.
for i, key in ipairs(KEYS) do
  local at = 3 + (i - 1) * 4
  if redis.call('GET', key) == ARGV[at] then
    redis.call('DEL', key)
    if ARGV[at + 1] ~= '' then redis.call('SREM', ARGV[at + 1], ARGV[at + 2]) end
    if ARGV[at + 3] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[at + 3]) end
  end
end
return 0
"""
)

_VIEW = Script(
    script="""
-- KEYS[1], KEYS[2]: the index sets of nodes and of names; ARGV[1], ARGV[2]: the prefixes
-- of their keys; ARGV[3]: '1' to read the names too. Replies {nodes, names}, each a flat
-- list of member, value for the keys still there; the others leave their index set.
local function live(index, prefix)
  local found = {}
  for _, member in ipairs(redis.call('SMEMBERS', index)) do
    local value = redis.call('GET', prefix .. member)
    if value then
      found[#found + 1] = member
      found[#found + 1] = value
    else
      redis.call('SREM', index, member)
    end
  end
  return found
end
local names = {}
if ARGV[3] == '1' then names = live(KEYS[2], ARGV[2]) end
return {live(KEYS[1], ARGV[1]), names}
"""
)


async def _claim(
    client: coredis.Redis[str], claims: Sequence[_Claim], ttl: float, keys: _Keys
) -> dict[str, tuple[str, int]]:
    """Hold every claim for ``ttl`` seconds, or none: then {key: (the node holding it, its
    milliseconds left)} for the keys other nodes hold."""
    reply = await _CLAIM(*_script_arguments(claims, ttl, keys), client=client)
    held = {}
    for at in range(0, len(reply), 3):
        key, value, left = reply[at : at + 3]
        node_key = key.startswith(keys.node(""))
        held[key] = (key.removeprefix(keys.node("")) if node_key else _node_of(value), int(left))
    return held


async def _release(client: coredis.Redis[str], claims: Sequence[_Claim], keys: _Keys) -> None:
    await _RELEASE(*_script_arguments(claims, 0, keys), client=client)


def _script_arguments(
    claims: Sequence[_Claim], ttl: float, keys: _Keys
) -> tuple[list[str], list[str]]:
    args = [str(max(1, round(ttl * 1000))), keys.events]
    for claim in claims:
        args += [claim.value, claim.index, claim.member, claim.event]
    return [claim.key for claim in claims], args


# --- helpers ---------------------------------------------------------------------------------


def _sole(exc: BaseException, kind: type[BaseException]) -> BaseException:
    """``exc``, or the one ``kind`` error a group of it and cancellations holds."""
    if isinstance(exc, BaseExceptionGroup):
        found, rest = exc.split(kind)
        if found is not None and (rest is None or rest.split(trio.Cancelled)[1] is None):
            return leaves(found)[0]
    return exc


def _node_of(token: str) -> str:
    """The node name in a token (``node/incarnation``)."""
    return token.partition("/")[0]


def _what(key: str, keys: _Keys) -> str:
    """What a key holds, for messages: ``node id 2``, ``cluster name 'lobby'``, ..."""
    kind, _, subject = key.removeprefix(f"{keys.cluster}:").partition(":")
    if kind == "id":
        return f"node id {subject}"
    return {"node": "node name", "name": "cluster name"}.get(kind, "unique service") + (
        f" {subject!r}"
    )


def _pairs(flat: list[str]) -> Iterable[tuple[str, str]]:
    return zip(flat[::2], flat[1::2], strict=True)

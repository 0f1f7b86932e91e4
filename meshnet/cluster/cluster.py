"""The cluster as one node sees it: its links, its registered names, and the way messages
cross to and from other nodes. A ``Cluster`` is the node's ``remote`` (see
``meshnet.node.Remote``), so ``call``/``send`` reach other nodes like local services.

Names, as ``node.resolve`` reads them:

=====================  ==================================================================
``:0200000a``          an address whose node id is another node's: that node
``game@lobby``         ``lobby`` as registered with ``cluster.register`` on node ``game``
``game@.lobby``        the node-local name ``.lobby`` on node ``game``
``lobby``              a cluster-wide name: its node from discovery, then ``node@lobby``
=====================  ==================================================================

A node listed with ``protocol = "skynet"`` is reached over skynet's cluster protocol
instead (``meshnet.cluster.skynet.peer``): by name, or by a skynet address as
``node@:0000000a``.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import outcome
import trio

from meshnet.address import HANDLE_BITS, LOCAL_BITS, MAX_NODE, Address, format_address
from meshnet.cluster import connect, wire
from meshnet.cluster.channels import ClusterChannels
from meshnet.cluster.config import ClusterConfig, ClusterConfigError
from meshnet.cluster.discovery import Discovery
from meshnet.cluster.link import Link
from meshnet.cluster.members import Member
from meshnet.cluster.peer_connection import UP
from meshnet.cluster.remote import NAMED, RemoteService
from meshnet.cluster.skynet.peer import SkynetPeer
from meshnet.context import Destination, ServiceContext
from meshnet.errors import (
    Busy,
    CallError,
    MeshnetError,
    NodeDown,
    NoSuchService,
    ServiceExited,
    remote_call_error,
)
from meshnet.listen import Listener, open_listeners
from meshnet.message import CLIENT, REQUEST, TEXT, DeadlinedMessage, Message
from meshnet.net import peer_name

if TYPE_CHECKING:
    from meshnet.node import Node

logger = logging.getLogger(__name__)

Spawn = Callable[..., object]
"""Starts ``async_fn(*args)`` in a task of the cluster's service."""


class Cluster:
    """The node's side of the cluster; see the module docstring."""

    def __init__(self, node: Node, config: ClusterConfig, discovery: Discovery) -> None:
        self.node = node
        self.config = config
        self.discovery = discovery
        self.secret = config.secret
        self.registered: dict[str, int] = {}
        """Names given with ``cluster.register``, reachable as ``<this node>@name``."""
        self.undelivered = 0
        """Sends and posts from other nodes that reached no service (logged)."""
        self.channels = ClusterChannels(self)
        self._links: dict[str, Link | SkynetPeer] = {}
        self._proxies: dict[tuple[str, int | str], Address] = {}
        self._backlogs: dict[int, deque[tuple[Link, int, Message, float]]] = {}
        self._handshakes: dict[trio.SocketStream, trio.CancelScope] = {}
        """Accepted connections still in the handshake, oldest first."""
        self._spawn: Spawn | None = None
        self.port = 0

    @property
    def hello(self) -> connect.Hello:
        """What this node says of itself on a new connection (a fresh nonce each time)."""
        node = self.node
        return connect.Hello(node.name, node.id, node.incarnation, connect.handshake.new_nonce())

    # --- the node's Remote ----------------------------------------------------------------

    def resolve(self, target: int | str) -> Destination:
        """The remote service ``target`` is (see the module docstring)."""
        if isinstance(target, str):
            return self._resolve_name(target)
        node_id = (target >> LOCAL_BITS) & MAX_NODE
        member = self.discovery.member_by_id(node_id)
        if member is None:
            raise NodeDown(format_address(target), f"no node with id {node_id} in the cluster")
        link = self.link(member)
        link.check()
        incarnation = target >> HANDLE_BITS
        if incarnation and link.state == UP and link.peer.incarnation != incarnation:  # type: ignore[union-attr]
            raise NoSuchService(
                format_address(target), f"an address from an earlier start of {member.name}"
            )
        return RemoteService(self.node, link, address=target)

    def deliver_answer(
        self, source: int, destination: int, session: int, result: outcome.Outcome[Any]
    ) -> None:
        """Send the answer to a caller on another node (dropped if its link is down)."""
        member = self.discovery.member_by_id((destination >> LOCAL_BITS) & MAX_NODE)
        link = self._links.get(member.name) if member is not None else None
        if link is None or not link.send_answer(
            (source, destination), _answer_frames(source, destination, session, result)
        ):
            self.node.late_replies += 1
            logger.debug("answer for %s dropped: no link up", format_address(destination))

    # --- the cluster API (api.py) -------------------------------------------------------

    def target(self, node: str, target: int | str) -> int | str:
        """What ``node.resolve`` takes for ``target`` (an address, ``"@name"`` or
        ``".name"``) on the node called ``node``."""
        member = self.discovery.member(node)
        if member is None:
            raise NodeDown(node, f"no node {node!r} in the cluster")
        if isinstance(target, int):
            if member.skynet:  # skynet's own addresses
                return f"{node}@{format_address(target)}"
            if Address(target).node != member.id:
                raise NoSuchService(
                    format_address(target), f"that address is not on {node} (id {member.id})"
                )
            return target
        if target.startswith("@") and len(target) > 1:
            name = target[1:]
            if node == self.node.name:
                address = self.registered.get(name)
                if address is None:
                    raise NoSuchService(f"{node}{target}", "no service registered under it")
                return address
            return f"{node}@{name}"
        if target.startswith(".") and len(target) > 1:
            return target if node == self.node.name else f"{node}@{target}"
        raise NoSuchService(str(target), "a cluster target is an address, '@name' or '.name'")

    async def register(self, name: str, address: int) -> None:
        """Make ``address`` reachable as ``<this node>@name``, and as the cluster-wide
        ``name`` where discovery holds names (``cluster.register``)."""
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ClusterNameError(
                f"cluster names are letters, digits, '_' and '-' (no '@' or '.'), not {name!r}"
            )
        self.node.local(address)  # a live local service
        await self.discovery.announce(name)
        self.registered[name] = address

    async def unregister(self, name: str) -> None:
        """Drop a name given with ``register``."""
        if self.registered.pop(name, None) is not None:
            await self.discovery.withdraw(name)

    def proxy(self, node: str, target: int | str) -> Address:
        """A local address forwarding to ``target`` on ``node`` (one per pair, kept)."""
        key = (node, target)
        address = self._proxies.get(key)
        if address is None:
            address = self._proxies[key] = self.node.alias(_Proxy(self, self.target(node, target)))
        return address

    def reload(self) -> set[str]:
        """Reread the cluster file; links to the nodes whose entry changed restart (and
        stop for nodes now absent or gone), healthy ones stay. Returns those nodes."""
        reload = getattr(self.discovery, "reload", None)
        if reload is None:
            raise ClusterConfigError(
                "this cluster's view is not read from a file: nothing to reload"
            )
        return reload()

    async def uniqueservice(self, key: str, args: tuple[Any, ...]) -> Address:
        """The cluster's one instance of ``key``: started (or found) on the node discovery
        says owns it (``Node.uniqueservice(..., cluster=True)``)."""
        owner = await self.discovery.owner_of(key)
        if owner == self.node.name:
            return await self.node.uniqueservice(key, *args)
        return Address(await self.node.call(f"{owner}@.cluster", "unique", key, list(args)))

    async def wait_for(self, node: str, timeout: float | None) -> None:
        """Wait until the link to ``node`` is up (``NodeDown`` after ``timeout`` seconds)."""
        member = self.discovery.member(node)
        if member is None:
            raise NodeDown(node, f"no node {node!r} in the cluster")
        link = self.link(member)
        with trio.move_on_after(math.inf if timeout is None else timeout):
            await link.wait_up()
            return
        raise NodeDown(node, f"not up within {timeout:g}s: {link.down_reason}")

    # --- links --------------------------------------------------------------------------

    def link(self, member: Member) -> Link | SkynetPeer:
        """The link to ``member`` (a ``SkynetPeer`` for a skynet node), made (and its task
        started) on first use."""
        link = self._links.get(member.name)
        if link is None or not link.wanted:
            link = self._links[member.name] = (SkynetPeer if member.skynet else Link)(self, member)
            self.spawn(link.run)
        return link

    def spawn(self, async_fn: Callable[..., object], *args: object) -> None:
        """Run ``async_fn(*args)`` in a task of the cluster's service."""
        assert self._spawn is not None, "the cluster's service has not started"
        self._spawn(async_fn, *args)

    def links(self) -> list[Link | SkynetPeer]:
        """Every link this node has made or taken."""
        return list(self._links.values())

    def view_changed(self, names: set[str]) -> None:
        """Discovery's view changed for these nodes: their links restart (or stop)."""
        for name in names:
            link = self._links.pop(name, None)
            if link is not None:
                link.stop("the node's entry in the cluster changed")

    # --- serving links ------------------------------------------------------------------

    async def listen(self, spawn: Spawn) -> list[Listener]:
        """Bind the link listener (``serve`` then accepts on it); ``spawn`` starts the
        cluster's tasks in its service."""
        self._spawn = spawn
        me = self.discovery.member(self.node.name)
        host, port = self.config.listen or (
            (me.host, me.port) if me is not None else ("127.0.0.1", 0)
        )
        listeners = await open_listeners(host, port, shared=False)
        self.port = listeners[0].port
        logger.info("cluster links on %s:%d", host, self.port)
        return listeners

    async def serve(self, listeners: list[Listener]) -> None:
        """Accept links until cancelled."""
        async with trio.open_nursery() as nursery:
            for listener in listeners:
                nursery.start_soon(listener.serve, self._accepted)

    def _accepted(self, stream: trio.SocketStream) -> None:
        """A connection to the link port: give it ``handshake_timeout`` to authenticate.

        At ``max_handshakes`` under way, the oldest is closed to make room, so idle
        connections cannot lock nodes out: a node's own handshake takes milliseconds."""
        if len(self._handshakes) >= self.config.max_handshakes:
            oldest_stream, oldest = next(iter(self._handshakes.items()))
            logger.warning(
                "closed the link connection from %s still unauthenticated: %d handshakes "
                "under way is the limit",
                peer_name(oldest_stream),
                self.config.max_handshakes,
            )
            del self._handshakes[oldest_stream]
            oldest.cancel()
        self._handshakes[stream] = trio.CancelScope()
        self.spawn(self._handshake, stream)

    async def _handshake(self, stream: trio.SocketStream) -> None:
        scope = self._handshakes[stream]
        opened = None
        with scope:
            try:
                connect.set_nodelay(stream)
                opened = await connect.accept(
                    stream,
                    self.hello,
                    self.secret,
                    self.config.handshake_timeout,
                    self._admit,
                    self.config.tls,
                )
            except (connect.HandshakeError, wire.LinkProtocolError) as exc:
                logger.warning("refused a link from %s: %s", peer_name(stream), exc)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                logger.info(
                    "link connection from %s lost in the handshake: %s", peer_name(stream), exc
                )
        self._handshakes.pop(stream, None)
        if opened is None:
            await trio.aclose_forcefully(stream)
            return
        member = self.discovery.member(opened.peer.node)
        assert member is not None  # _admit checked it
        if not self.link(member).take_incoming(opened):
            logger.info("closed a second link from %s", member.name)
            await trio.aclose_forcefully(stream)

    def _admit(self, hello: connect.Hello) -> tuple[str, bool] | None:
        member = self.discovery.member(hello.node)
        if member is None:
            return f"node {hello.node!r} is not in this node's view of the cluster", False
        if member.skynet:
            return f'node {hello.node!r} is a skynet node here (protocol "skynet")', False
        if member.id != hello.id:
            return f"node {hello.node!r} has id {member.id} here, not {hello.id}", False
        if member.absent:
            return f"node {hello.node!r} is marked absent here", False
        link = self._links.get(member.name)
        if link is not None and link.dialing and hello.id > self.node.id:
            return "both ends are dialing; the node with the lower id dials", True
        return None

    # --- messages from other nodes ------------------------------------------------------

    def deliver(self, link: Link, envelope: wire.Envelope) -> None:
        """A message arrived on ``link``: hand it to its service, in order per pair."""
        kind = envelope.kind
        if kind == wire.MULTICAST:
            self.channels.arrived(envelope)
            return
        if kind == wire.ANSWER or kind == wire.FAIL:
            link.forget_call(envelope.destination, envelope.session)
            result = (
                outcome.Value(envelope.payload)
                if kind == wire.ANSWER
                else outcome.Error(_failure(envelope.payload, link))
            )
            self.node.deliver_answer(
                envelope.source, envelope.destination, envelope.session, result
            )
            return
        key = NAMED if envelope.by_name else envelope.destination
        try:
            ctx, message = self._inbound(envelope)
        except CallError as exc:
            self._refuse(link, envelope, exc)
            link.owe_credit(key)
            return
        backlog = self._backlogs.get(ctx.address)
        if backlog is not None:  # earlier messages wait for room: queue behind them
            backlog.append((link, key, message, _deadline(envelope)))
            return
        try:
            taken = ctx.mailbox.try_put(message)
        except (Busy, ServiceExited) as exc:
            self._refuse(link, envelope, exc)
            link.owe_credit(key)
            return
        if taken:
            link.owe_credit(key)
        else:
            self._backlogs[ctx.address] = deque([(link, key, message, _deadline(envelope))])
            self.spawn(self._drain, ctx)

    async def _drain(self, ctx: ServiceContext) -> None:
        """Feed a full mailbox the messages that came for it, as room frees up."""
        backlog = self._backlogs[ctx.address]
        try:
            while backlog:
                link, key, message, deadline = backlog[0]
                if deadline < trio.current_time():
                    logger.info("%s: dropped %s, its caller gave up", ctx.label, message.describe())
                else:
                    try:
                        await ctx.mailbox.put(message)
                    except ServiceExited as exc:
                        self._refuse_message(link, message, exc)
                backlog.popleft()
                link.owe_credit(key, flush=not backlog)  # the sender may wait for all of it
        finally:
            del self._backlogs[ctx.address]

    def _inbound(self, envelope: wire.Envelope) -> tuple[ServiceContext, Message]:
        """The local service an envelope is for, and the message to put in its mailbox."""
        payload = envelope.payload
        if not isinstance(payload, list):
            raise CallError(self.node.name, "ProtocolError", "malformed message")
        if envelope.by_name:
            if not payload or not isinstance(payload[0], str):
                raise CallError(self.node.name, "ProtocolError", "malformed message")
            target: int | str = payload.pop(0)
            ctx = self._local_by_name(target)  # type: ignore[arg-type]
        else:
            target = envelope.destination
            ctx = self.node.local(target)
        if len(payload) != 2 or not isinstance(payload[1], list):
            raise CallError(ctx.label, "ProtocolError", "malformed message")
        head, args = payload
        if envelope.kind == wire.POST:
            if head not in (CLIENT, TEXT):
                raise CallError(ctx.label, "ProtocolError", f"cannot post {head!r} messages")
            return ctx, Message(head, envelope.source, 0, None, tuple(args))
        if envelope.kind not in (wire.CALL, wire.SEND) or not isinstance(head, str):
            raise CallError(ctx.label, "ProtocolError", "malformed message")
        if envelope.kind == wire.SEND:
            return ctx, Message(REQUEST, envelope.source, 0, head, tuple(args))
        deadline = _deadline(envelope) if envelope.deadline_ms else None
        return ctx, DeadlinedMessage(
            REQUEST, envelope.source, envelope.session, head, tuple(args), deadline
        )

    def _local_by_name(self, name: str) -> ServiceContext:
        if name.startswith("@"):
            address = self.registered.get(name[1:])
            ctx = None if address is None else self.node.context_of(address)
            if ctx is None:
                raise NoSuchService(f"{self.node.name}{name}", "no service registered under it")
            return ctx
        return self.node.local(name)

    def _refuse(self, link: Link, envelope: wire.Envelope, exc: BaseException) -> None:
        if envelope.kind == wire.CALL:
            target = envelope.destination or self.node.name
            error = (
                exc
                if isinstance(exc, CallError)
                else CallError(target, type(exc).__name__, str(exc))
            )
            frames = _answer_frames(0, envelope.source, envelope.session, outcome.Error(error))
            link.send_answer((0, envelope.source), frames)
        else:
            self.undelivered += 1
            logger.warning("a message from %s reached no service: %s", link.member.name, exc)

    def _refuse_message(self, link: Link, message: Message, exc: CallError) -> None:
        if message.session:
            frames = _answer_frames(0, message.source, message.session, outcome.Error(exc))
            link.send_answer((0, message.source), frames)

    # --- helpers ------------------------------------------------------------------------

    def _resolve_name(self, target: str) -> Destination:
        node_name, at, name = target.partition("@")
        if not at:
            home = self.discovery.home_of(target)
            if home is None:
                raise NoSuchService(target, "no cluster-wide service has this name")
            node_name, name = home, target
        member = self.discovery.member(node_name)
        if member is None:
            raise NodeDown(target, f"no node {node_name!r} in the cluster")
        if member.name == self.node.name:  # the same names, resolved here
            return self._local_by_name(name if name.startswith(".") else f"@{name}")
        link = self.link(member)
        link.check()
        if isinstance(link, SkynetPeer):
            return link.destination(name)
        return RemoteService(self.node, link, name=name if name.startswith(".") else f"@{name}")


class ClusterNameError(MeshnetError):
    """A name given to ``cluster.register`` is malformed, or another node holds it."""


class _Proxy:
    """What a proxy address resolves to: its target, looked up anew at each message (so it
    follows the link's reconnections)."""

    __slots__ = ("_cluster", "_target")

    def __init__(self, cluster: Cluster, target: int | str) -> None:
        self._cluster = cluster
        self._target = target

    @property
    def mailbox(self) -> RemoteService:
        return self._cluster.resolve(self._target)  # type: ignore[return-value]


def _answer_frames(
    source: int, destination: int, session: int, result: outcome.Outcome[Any]
) -> list[bytes]:
    if isinstance(result, outcome.Value):
        try:
            return wire.encode_message(wire.ANSWER, source, destination, session, 0, result.value)
        except MeshnetError as exc:  # not CBOR, or too big: the caller gets why
            error: BaseException = exc
    else:
        error = result.error
    if isinstance(error, CallError):
        body = [error.remote_type, error.remote_message, str(error.target)]
    else:
        body = [type(error).__name__, str(error), format_address(source)]
    return wire.encode_message(wire.FAIL, source, destination, session, 0, body)


def _failure(payload: Any, link: Link) -> CallError:
    if (
        isinstance(payload, list)
        and len(payload) == 3
        and all(isinstance(part, str) for part in payload)
    ):
        remote_type, remote_message, target = payload
        return remote_call_error(target, remote_type, remote_message)
    return CallError(link.member.name, "ProtocolError", f"malformed error answer {payload!r}")


def _deadline(envelope: wire.Envelope) -> float:
    if not envelope.deadline_ms:
        return float("inf")
    return trio.current_time() + envelope.deadline_ms / 1000

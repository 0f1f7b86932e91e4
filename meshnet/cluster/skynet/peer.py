"""Calls from this node to a skynet node, over skynet's cluster protocol, as skynet's own
clustersender makes them.

A node of the cluster table with ``protocol = "skynet"`` gets a ``SkynetPeer`` where a
meshnet node gets a ``Link`` (``Cluster.link``): one connection to the port the skynet
node opened with ``cluster.open``, dialed on first use and again, with backoff, after it
drops. Targets on it are ``SkynetService`` destinations:

=====================  ==================================================================
``sknode@echo``        the name registered there with ``cluster.register("echo")``
                       (skynet's ``"@echo"``); also ``cluster.call("sknode", "@echo")``
``sknode@.echo``       the node-local name ``.echo`` there
``sknode@:0000000a``   skynet's address ``:0000000a`` there (``cluster.query`` gives it);
                       also ``cluster.call("sknode", 0x0a)``
=====================  ==================================================================

Wire (see ``meshnet.cluster.skynet.wire``): a call is a request under the peer's next
session with the payload ``skynet.pack(command, *args)``; a send is a push (no answer);
``cluster.query`` is a request to address 0 with the payload ``skynet.pack(name)``.

- **Answers.** The Lua values a call returns come back as one value: ``None`` for none,
  the value itself for one, a tuple for several (see ``meshnet.cluster.skynet.seri`` for
  the types). An error answer raises ``CallError``: ``NoSuchService`` for skynet's
  ``Invalid name`` and ``name not found``, else ``remote_type`` ``"SkynetError"`` with
  skynet's text. skynet tells no more than ``call failed`` when its service raised; its
  log has the error.
- **Order.** Requests go out on the one connection in the order they were made.
- **Backpressure.** Up to ``MAX_UNSENT`` bytes may wait to be written; past that a sender
  waits (as for a full mailbox), in order.
- **Failure.** Messages made before the first connection is up wait for it (a failed dial
  fails them). When the connection drops, every call in flight gets ``NodeDown`` at once
  and messages not yet written are dropped; until a new connection is up, new messages
  fail at once with ``NodeDown``. skynet's protocol has no heartbeat: a skynet node that
  goes silent without closing the connection is found only by the calls' deadlines.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import outcome
import trio
from trio.lowlevel import Abort, Task, current_task, reschedule, wait_task_rescheduled

from meshnet.address import Address, AddressError, format_address
from meshnet.cluster.members import Member
from meshnet.cluster.peer_connection import DOWN, PeerConnection
from meshnet.cluster.skynet import seri, wire
from meshnet.errors import CallError, NodeDown, NoSuchService, UnknownKind
from meshnet.message import REQUEST, Message

if TYPE_CHECKING:
    from meshnet.cluster.cluster import Cluster
    from meshnet.context import PendingCall
    from meshnet.node import Node

logger = logging.getLogger(__name__)

MAX_UNSENT = 1 << 20
"""Bytes of requests that may wait to be written before senders wait."""
RECEIVE_SIZE = 256 * 1024
NOT_FOUND = ("Invalid name", "name not found")
"""skynet's error texts for a name (or address) that reaches no service."""


class SkynetPeer(PeerConnection):
    """The connection to one skynet node; see the module docstring. It offers what the
    cluster asks of a ``Link``: ``run``, ``check``, ``wait_up``, ``stop``, ``state``."""

    what = "connection to skynet node"

    def __init__(self, cluster: Cluster, member: Member) -> None:
        super().__init__(member, logger)
        self.cluster = cluster
        self.wanted = True
        self.sent_messages = 0
        self.lost_messages = 0
        """Messages dropped unsent because the connection went down."""
        self.late_answers = 0
        """Answers for sessions no call waits on (its caller gave up, or skynet erred)."""
        self._max_message = cluster.config.skynet.max_message
        self._session = 1
        self._calls: dict[int, _Call] = {}
        self._calls_pruned_at = 64
        self._out: list[bytes] = []
        self._unsent = 0
        self._senders: deque[_Sender] = deque()
        self._wake = trio.Event()
        self._waiting: trio.CancelScope | None = None

    def __repr__(self) -> str:
        return f"<SkynetPeer {self.member.name} ({self.state})>"

    def destination(self, name: str) -> SkynetService:
        """The target ``name`` names on the skynet node: ``"echo"`` (registered there with
        ``cluster.register``), ``".echo"`` (node-local) or ``":0000000a"`` (an address)."""
        if name.startswith(":"):
            try:
                address: int | str = Address.parse(name).handle
            except AddressError as exc:
                raise NoSuchService(f"{self.member.name}@{name}", str(exc)) from None
        else:
            address = name if name.startswith(".") else f"@{name}"
        return SkynetService(self, address)

    # --- what the cluster asks of a link ---------------------------------------------

    def check(self) -> None:
        """``NodeDown`` unless messages can go to the skynet node now (or once it connects)."""
        if self.member.absent:
            raise NodeDown(self.member.name, "the node is marked absent")
        if self.state == DOWN:
            raise NodeDown(self.member.name, f"the connection is down: {self.down_reason}")

    def stop(self, reason: str) -> None:
        """The node left the cluster's view, or this node leaves: close for good (what
        waits to be sent fails with ``NodeDown``)."""
        self.wanted = False
        if self._serving is None:
            self._fail(reason)
        self._end(reason)
        if self._waiting is not None:
            self._waiting.cancel()

    async def run(self) -> None:
        """Keep a connection to the skynet node for as long as the peer is wanted."""
        while self.wanted and not self.member.absent:
            stream = None
            with trio.CancelScope() as self._waiting:
                await trio.sleep(self._backoff())
                stream = await self._dial()
            self._waiting = None
            if stream is not None:
                await self._serve(stream)

    # --- senders (SkynetService) -------------------------------------------------------

    def try_send(self, address: int | str, message: Message, payload: bytes, label: str) -> bool:
        """Queue a request or push; False if senders must wait for room (``wait_send``)."""
        self.check()
        if self._senders or self._unsent >= MAX_UNSENT:
            return False
        self._queue(address, message, payload, label)
        return True

    async def wait_send(
        self, address: int | str, message: Message, payload: bytes, label: str
    ) -> None:
        """Wait for room, then queue (in order among waiting senders)."""
        sender = _Sender(current_task(), address, message, payload, label)
        self._senders.append(sender)

        def abort(_: object) -> Abort:
            self._senders.remove(sender)
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)

    # --- helpers: the connection ---------------------------------------------------------

    async def _dial(self) -> trio.SocketStream | None:
        member = self.member
        timeout = self.cluster.config.connect_timeout
        where = f"skynet node {member.name} at {member.address}"
        with trio.move_on_after(timeout):
            try:
                return await trio.open_tcp_stream(member.host, member.port)
            except OSError as exc:
                self._fail(f"cannot connect to {where}: {exc}")
                return None
        self._fail(f"no connection to {where} within {timeout:g}s")
        return None

    async def _serve(self, stream: trio.SocketStream) -> None:
        self._mark_up()
        try:
            async with trio.open_nursery() as nursery:
                self._serving = nursery.cancel_scope
                nursery.start_soon(self._until_broken, self._write_loop, stream)
                await self._until_broken(self._read_loop, stream)
        finally:
            self._serving = None
            await trio.aclose_forcefully(stream)
        self._fail(self._end_reason or "closed")

    async def _until_broken(
        self, loop: Callable[[trio.SocketStream], Awaitable[None]], stream: trio.SocketStream
    ) -> None:
        """Run a loop of the connection; when it breaks, end the connection saying why."""
        try:
            await loop(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._end(f"connection lost: {exc}")
        except wire.SkynetWireError as exc:
            logger.warning("skynet node %s broke the protocol: %s", self.member.name, exc)
            self._end(f"protocol error: {exc}")

    def _fail(self, reason: str) -> None:
        """The skynet node cannot be reached: fail what waits on it."""
        self._mark_down(reason)
        self.lost_messages += len(self._out)
        self._out.clear()
        self._unsent = 0
        error = NodeDown(self.member.name, f"connection lost: {reason}")
        calls, self._calls = self._calls, {}
        node = self.cluster.node
        for call in calls.values():
            if call.waiting(node):
                node.deliver_answer(0, call.caller, call.session, outcome.Error(error))
        senders, self._senders = self._senders, deque()
        for sender in senders:
            reschedule(sender.task, outcome.Error(error))

    async def _read_loop(self, stream: trio.SocketStream) -> None:
        decoder = wire.ResponseDecoder(self._max_message)
        while True:
            data = await stream.receive_some(RECEIVE_SIZE)
            if not data:
                self._end("the skynet node closed the connection")
                return
            for response in decoder.feed(data):
                self._answered(response)

    async def _write_loop(self, stream: trio.SocketStream) -> None:
        while True:
            while not self._out:
                self._wake = trio.Event()
                await self._wake.wait()
            batch, self._out = self._out, []
            data = b"".join(batch)
            await stream.send_all(data)
            self.sent_messages += len(batch)
            self._unsent -= len(data)
            self._admit_senders()

    # --- helpers: messages ---------------------------------------------------------------

    def _queue(self, address: int | str, message: Message, payload: bytes, label: str) -> None:
        session = self._session
        if message.session:
            while session in self._calls:  # only after 2**31 sessions, with a call still open
                session = wire.next_session(session)
            frames = wire.encode_request(address, session, payload)
            call = _Call(message.source, message.session, label, self._caller_call(message))
            self._track(session, call)
            self._session = wire.next_session(session)
        else:
            frames = wire.encode_push(address, session, payload)
            if wire.is_split(len(payload)):
                self._session = wire.next_session(session)
        self._out.append(frames)
        self._unsent += len(frames)
        self._wake.set()

    def _admit_senders(self) -> None:
        senders = self._senders
        while senders and self._unsent < MAX_UNSENT:
            sender = senders.popleft()
            self._queue(sender.address, sender.message, sender.payload, sender.label)
            reschedule(sender.task)

    def _caller_call(self, message: Message) -> PendingCall | None:
        caller = self.cluster.node.context_of(message.source)
        return None if caller is None else caller.pending.get(message.session)

    def _track(self, session: int, call: _Call) -> None:
        """Remember a call in flight; now and then forget those whose callers gave up."""
        calls = self._calls
        calls[session] = call
        if len(calls) > self._calls_pruned_at:
            node = self.cluster.node
            for open_session, tracked in list(calls.items()):
                if not tracked.waiting(node):
                    del calls[open_session]
            self._calls_pruned_at = max(64, 2 * len(calls))

    def _answered(self, response: wire.Response) -> None:
        call = self._calls.pop(response.session, None)
        if call is None:
            self.late_answers += 1
            logger.debug(
                "skynet node %s answered session %d, which no call waits on",
                self.member.name,
                response.session,
            )
            return
        result: outcome.Outcome[Any]
        if response.ok:
            try:
                result = outcome.Value(returned(seri.unpack(response.payload)))
            except seri.SeriUnpackError as exc:
                result = outcome.Error(
                    CallError(call.label, "ProtocolError", f"undecodable answer from skynet: {exc}")
                )
        else:
            result = outcome.Error(skynet_error(call.label, response.payload))
        self.cluster.node.deliver_answer(0, call.caller, call.session, result)


class SkynetService:
    """A target on a skynet node, as a destination (what ``node.resolve`` gives): calls
    and sends put into it go out over its node's ``SkynetPeer``."""

    __slots__ = ("_peer", "_address", "_label", "_waiting")

    def __init__(self, peer: SkynetPeer, address: int | str) -> None:
        wire.encode_request(address, 1, b"")  # SkynetWireError now for a name skynet refuses
        self._peer = peer
        self._address = address
        shown = format_address(address) if isinstance(address, int) else address.lstrip("@")
        self._label = f"{peer.member.name}@{shown}"
        self._waiting: bytes | None = None

    @property
    def mailbox(self) -> SkynetService:
        """Itself: messages are put straight into it."""
        return self

    @property
    def label(self) -> str:
        """``node@name``, ``node@.name`` or ``node@:0000000a``, for error messages."""
        return self._label

    def try_put(self, message: Message) -> bool:
        """Queue ``message`` for the skynet node; False when too much waits to be written."""
        payload = self._payload(message)
        if self._peer.try_send(self._address, message, payload, self._label):
            return True
        self._waiting = payload
        return False

    async def wait_for_room(self, message: Message) -> None:
        """Wait for room, then queue what ``try_put`` could not."""
        payload, self._waiting = self._waiting, None
        assert payload is not None
        await self._peer.wait_send(self._address, message, payload, self._label)

    async def put(self, message: Message) -> None:
        """``try_put``, then wait for room if needed."""
        if not self.try_put(message):
            await self.wait_for_room(message)

    def _payload(self, message: Message) -> bytes:
        if message.kind != REQUEST:
            raise UnknownKind(
                f"{self._label} is a skynet service: it takes calls and sends, not "
                f"{message.kind!r} messages"
            )
        if self._address == wire.QUERY_ADDRESS:
            return seri.pack(*message.args)
        return seri.pack(message.name, *message.args)


def returned(values: tuple[Any, ...]) -> Any:
    """A Lua function's return values as one Python value: None, the value, or a tuple."""
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def skynet_error(target: str, text: bytes) -> CallError:
    """The ``CallError`` for skynet's error answer ``text`` to a call of ``target``."""
    message = text.decode(errors="replace")
    if message in NOT_FOUND:
        return NoSuchService(target, f"skynet answered {message!r}: nothing has that name there")
    if message.endswith("call failed"):
        message += (
            " (all skynet tells: its service raised or could not be called; the skynet "
            "node's log has the error)"
        )
    return CallError(target, "SkynetError", message)


class _Call:
    """A call in flight: who waits for its answer, under which of its sessions."""

    __slots__ = ("caller", "session", "label", "pending")

    def __init__(self, caller: int, session: int, label: str, pending: PendingCall | None) -> None:
        self.caller = caller
        self.session = session
        self.label = label
        self.pending = pending

    def waiting(self, node: Node) -> bool:
        """Whether the caller still waits (a caller on another node is assumed to)."""
        if self.pending is None:
            return True
        ctx = node.context_of(self.caller)
        return ctx is not None and ctx.pending.get(self.session) is self.pending


class _Sender:
    __slots__ = ("task", "address", "message", "payload", "label")

    def __init__(
        self, task: Task, address: int | str, message: Message, payload: bytes, label: str
    ) -> None:
        self.task = task
        self.address = address
        self.message = message
        self.payload = payload
        self.label = label

"""A link to one other node: one connection at a time, and the queues that outlive it.

One ``Link`` per peer node carries every message between the two nodes, multiplexed on a
single connection (whichever end dialed). Its task (``run``) keeps the connection up:
it dials when first used, reconnects with exponential backoff after a drop, and takes an
authenticated connection the peer dialed instead.

- **Order per pair.** Frames go out in the order they were queued, except that a message
  over ``wire.PART_SIZE`` goes out in parts, round-robin with other pairs' frames; later
  messages of its own pair queue behind it, so a big message holds up only its pair.
- **Credit.** A sender may have ``WINDOW`` messages in flight per destination (answers
  do not count); past that it waits, as for a full mailbox. The peer gives credit back
  once a message has entered its destination's mailbox, so the reader never blocks on one
  full mailbox, and a link holds at most ``WINDOW`` undelivered messages per destination.
- **Liveness.** A ``PING`` goes out every ``heartbeat`` seconds; a peer from which nothing
  came, or that did not answer a ping, for ``down_after`` seconds is down.
- **Failure.** When the connection drops, every call in flight over it gets ``NodeDown``
  at once; messages not yet written are dropped (and counted); until a new connection is
  up, new messages fail at once with ``NodeDown``.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from typing import TYPE_CHECKING

import outcome
import trio
from trio.lowlevel import Abort, Task, current_task, reschedule, wait_task_rescheduled

from meshnet.cluster import connect, wire
from meshnet.cluster.members import Member
from meshnet.cluster.peer_connection import DOWN, UP, PeerConnection
from meshnet.errors import NodeDown, first_error

if TYPE_CHECKING:
    from meshnet.cluster.cluster import Cluster
    from meshnet.context import PendingCall

logger = logging.getLogger(__name__)

WINDOW = 128
"""Messages a sender may have in flight to one destination before it waits."""
CREDIT_BATCH = WINDOW // 2
"""The receiver gives credit back in batches of this many messages."""
DIAL_BACK_WAIT = 2.0
"""Seconds to wait for a peer that said it would dial us, before dialing again."""

Pair = tuple[int, int]


class Link(PeerConnection):
    """The link to one peer node; see the module docstring."""

    what = "link to"

    def __init__(self, cluster: Cluster, member: Member) -> None:
        super().__init__(member, logger)
        self.cluster = cluster
        self.peer: connect.Hello | None = None
        """The peer's hello on the current (or last) connection: its incarnation."""
        self.wanted = True
        self.sent_messages = 0
        self.lost_messages = 0
        """Messages dropped unsent because the connection went down."""
        self._out: list[bytes] = []
        self._pairs: dict[Pair, deque[bytes]] = {}
        self._pair_turns: deque[Pair] = deque()
        self._writer: Task | None = None
        """The write loop while it waits for frames (None while it writes, or is gone)."""
        self._fileno = -1
        """The socket's fd while a plain TCP connection is up (-1 otherwise)."""
        self._calls: dict[Pair, PendingCall] = {}
        """The calls in flight over this link, by (caller, session)."""
        self._calls_pruned_at = 64
        self._credit: dict[int, int] = {}
        self._credit_waiters: dict[int, deque[_CreditWaiter]] = {}
        self._credit_back: dict[int, int] = {}
        self._dial_back = False
        self._dialing = False
        self._incoming: connect.Opened | None = None
        self._waiting: trio.CancelScope | None = None
        self._last_heard = 0.0
        self._last_pong = 0.0
        self._ping = 0

    def __repr__(self) -> str:
        return f"<Link to {self.member.name} ({self.state})>"

    # --- senders ------------------------------------------------------------------------

    def check(self) -> None:
        """``NodeDown`` unless messages can go to the peer now (or once it connects)."""
        if self.member.absent:
            raise NodeDown(self.member.name, "the node is marked absent")
        if self.state == DOWN:
            raise NodeDown(self.member.name, f"the link is down: {self.down_reason}")

    def try_send(self, key: int, pair: Pair, frames: list[bytes], call: PendingCall | None) -> bool:
        """Queue a message's frames if ``key`` (its destination) has credit; False if not
        (then ``wait_credit``). ``call``: the caller's, failed if the link drops."""
        self.check()
        if self._credit_waiters.get(key) or self._credit.get(key, WINDOW) <= 0:
            return False
        self._take_credit(key)
        self._queue(pair, frames, call)
        return True

    async def wait_credit(
        self, key: int, pair: Pair, frames: list[bytes], call: PendingCall | None
    ) -> None:
        """Wait until ``key`` has credit, then queue the frames (FIFO among waiters)."""
        waiter = _CreditWaiter(current_task(), pair, frames, call)
        waiters = self._credit_waiters.setdefault(key, deque())
        waiters.append(waiter)

        def abort(_: object) -> Abort:
            waiters.remove(waiter)
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)

    def send_answer(self, pair: Pair, frames: list[bytes]) -> bool:
        """Queue an answer (no credit needed); False if the link is down."""
        if self.state != UP:
            return False
        self._queue(pair, frames, None)
        return True

    def forget_call(self, caller: int, session: int) -> None:
        """The call was answered: it no longer fails when the link drops."""
        self._calls.pop((caller, session), None)

    # --- the connection -----------------------------------------------------------------

    async def run(self) -> None:
        """Keep a connection to the peer for as long as the link is wanted."""
        while self.wanted and not self.member.absent:
            opened = await self._next_connection()
            if opened is not None:
                await self._serve(opened)

    def take_incoming(self, opened: connect.Opened) -> bool:
        """An authenticated connection the peer dialed; False (and the caller closes it)
        if this link already has one."""
        if self.state == UP or self._incoming is not None:
            return False
        self._incoming = opened
        if self._waiting is not None:
            self._waiting.cancel()
        return True

    @property
    def dialing(self) -> bool:
        """True while this end dials the peer (see the handshake's dial_back rule)."""
        return self._dialing

    def stop(self, reason: str) -> None:
        """The peer left the cluster's view: close the link for good."""
        self.wanted = False
        self._end(reason)
        if self._waiting is not None:
            self._waiting.cancel()

    # --- helpers: the connection ----------------------------------------------------------

    async def _next_connection(self) -> connect.Opened | None:
        with trio.CancelScope() as self._waiting:
            await trio.sleep(self._delay())
            if self._incoming is None:
                self._dialing = True
                try:
                    config = self.cluster.config
                    return await connect.dial(
                        self.member,
                        self.cluster.hello,
                        self.cluster.secret,
                        config.connect_timeout,
                        config.tls,
                    )
                except connect.LinkRefused as exc:
                    self._dial_back = exc.dial_back
                    if not exc.dial_back:
                        self._fail(str(exc))
                except connect.HandshakeError as exc:
                    self._fail(str(exc))
                finally:
                    self._dialing = False
        self._waiting = None
        opened, self._incoming = self._incoming, None
        return opened

    def _delay(self) -> float:
        if self._dial_back:
            self._dial_back = False
            return DIAL_BACK_WAIT
        return self._backoff()

    async def _serve(self, opened: connect.Opened) -> None:
        self.peer = opened.peer
        self._last_heard = self._last_pong = trio.current_time()
        self._mark_up()
        stream = opened.stream
        if isinstance(stream, trio.SocketStream):
            self._fileno = stream.socket.fileno()
        try:
            async with trio.open_nursery() as nursery:  # what escapes it comes grouped
                self._serving = nursery.cancel_scope
                nursery.start_soon(self._write_loop, stream)
                nursery.start_soon(self._heartbeat_loop)
                await self._read_loop(stream, opened.splitter)
        except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as group:
            self._end(f"connection lost: {first_error(group)}")
        except* wire.LinkProtocolError as group:
            logger.warning(
                "link to %s broke the protocol: %s", self.member.name, first_error(group)
            )
            self._end(f"protocol error: {first_error(group)}")
        finally:
            self._serving = None
            self._fileno = -1  # from here on the number may be given to another socket
            self._writer = None
            await trio.aclose_forcefully(stream)
        self._fail(self._end_reason or "closed")

    def _fail(self, reason: str) -> None:
        """The peer cannot be reached: fail what waits on it, until a connection is up."""
        self._mark_down(reason)
        unsent = len(self._out) + sum(len(q) for q in self._pairs.values())
        self.lost_messages += unsent
        self._out.clear()
        self._pairs.clear()
        self._pair_turns.clear()
        self._credit.clear()
        self._credit_back.clear()
        error = NodeDown(self.member.name, f"link lost: {reason}")
        calls, self._calls = self._calls, {}
        node = self.cluster.node
        for (caller, session), call in calls.items():
            if _still_waiting(node.context_of(caller), session, call):
                node.deliver_answer(0, caller, session, outcome.Error(error))
        waiters, self._credit_waiters = self._credit_waiters, {}
        for queue in waiters.values():
            for waiter in queue:
                reschedule(waiter.task, outcome.Error(error))

    async def _read_loop(self, stream: trio.abc.Stream, splitter: wire.FrameSplitter) -> None:
        reassembler = wire.Reassembler()
        frames = splitter.feed(b"")
        deliver = self.cluster.deliver
        while True:
            for frame in frames:
                kind = frame.type
                if kind == wire.MESSAGE or kind == wire.PART:
                    envelope = reassembler.feed(frame)
                    if envelope is not None:
                        deliver(self, envelope)
                else:
                    self._control(frame)
            self._give_credit_back()
            data = await self._receive(stream)
            if not data:
                self._end("the peer closed the connection")
                return
            self._last_heard = trio.current_time()
            frames = splitter.feed(data)

    async def _receive(self, stream: trio.abc.Stream) -> bytes:
        """The next bytes from the peer (b"" once it closed). A plain TCP connection is
        read straight from its fd, without trio's stream layers."""
        fileno = self._fileno
        if fileno < 0:
            return await stream.receive_some(connect.RECEIVE_SIZE)
        while True:
            try:
                return os.read(fileno, connect.RECEIVE_SIZE)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(fileno)
            except OSError as exc:
                raise trio.BrokenResourceError(f"connection lost: {exc}") from exc

    def _control(self, frame: wire.Frame) -> None:
        if frame.type == wire.PING:
            self._send(wire.encode_ping(wire.PONG, wire.decode_sequence(frame)))
        elif frame.type == wire.PONG:
            wire.decode_sequence(frame)
            self._last_pong = trio.current_time()
        elif frame.type == wire.CREDIT:
            self._returned(*wire.decode_credit(frame))
        else:
            raise wire.LinkProtocolError(f"frame type {frame.type} after the handshake")

    async def _write_loop(self, stream: trio.abc.Stream) -> None:
        while True:
            while not self._out and not self._pair_turns:
                self._writer = current_task()
                await wait_task_rescheduled(self._abort_writer)
            batch, self._out = self._out, []
            turns = self._pair_turns
            for _ in range(len(turns)):  # one part of each pair in parts, round-robin
                pair = turns.popleft()
                queue = self._pairs[pair]
                batch.append(queue.popleft())
                if queue:
                    turns.append(pair)
                else:
                    del self._pairs[pair]
            self.sent_messages += len(batch)
            await stream.send_all(b"".join(batch))

    def _abort_writer(self, _: object) -> Abort:
        self._writer = None
        return Abort.SUCCEEDED

    def _wake_writer(self) -> None:
        writer = self._writer
        if writer is not None:
            self._writer = None
            reschedule(writer)

    async def _heartbeat_loop(self) -> None:
        config = self.cluster.config
        while True:
            await trio.sleep(config.heartbeat)
            now = trio.current_time()
            silent = now - max(self._last_heard, self._last_pong)
            unanswered = now - self._last_pong
            if silent > config.down_after or unanswered > config.down_after:
                self._end(
                    f"no answer to pings for {unanswered:.1f}s (limit {config.down_after:g}s)"
                )
                return
            self._ping += 1
            self._send(wire.encode_ping(wire.PING, self._ping))

    # --- helpers: queues and credit -----------------------------------------------------

    def _queue(self, pair: Pair, frames: list[bytes], call: PendingCall | None) -> None:
        if call is not None:
            self._track(pair, call)
        pairs = self._pairs
        if pairs and pair in pairs:
            pairs[pair].extend(frames)
        elif len(frames) == 1:
            self._send(frames[0])
            return
        else:
            pairs[pair] = deque(frames)
            self._pair_turns.append(pair)
        self._wake_writer()

    def _send(self, frame: bytes) -> None:
        """Write ``frame`` straight to the socket when the writer is idle and nothing
        waits (the lowest latency, as skynet's socket.write), else queue it.

        A direct write also wakes the writer, which has nothing to do but mark the end
        of the burst: frames queued before it runs (the other callers of this scheduler
        tick) go out together in its next write."""
        writer = self._writer
        if writer is not None and not self._out and self._fileno >= 0:
            try:
                sent = os.write(self._fileno, frame)
            except OSError:  # would block, or the socket broke: the writer finds out
                sent = 0
            self._writer = None
            reschedule(writer)
            if sent == len(frame):
                return
            frame = frame[sent:]
        self._out.append(frame)
        self._wake_writer()

    def _track(self, pair: Pair, call: PendingCall) -> None:
        """Remember a call in flight; now and then forget those whose callers gave up
        (timed out, cancelled), which would never be answered otherwise."""
        calls = self._calls
        calls[(pair[0], call.session)] = call
        if len(calls) > self._calls_pruned_at:
            node = self.cluster.node
            for (caller, session), tracked in list(calls.items()):
                if not _still_waiting(node.context_of(caller), session, tracked):
                    del calls[(caller, session)]
            self._calls_pruned_at = max(64, 2 * len(calls))

    def _take_credit(self, key: int) -> None:
        self._credit[key] = self._credit.get(key, WINDOW) - 1

    def _returned(self, key: int, messages: int) -> None:
        """The peer took ``messages`` more for ``key``: let waiting senders go."""
        credit = self._credit.get(key, WINDOW) + messages
        waiters = self._credit_waiters.get(key)
        while waiters and credit > 0:
            waiter = waiters.popleft()
            credit -= 1
            self._queue(waiter.pair, waiter.frames, waiter.call)
            reschedule(waiter.task)
        if waiters is not None and not waiters:
            del self._credit_waiters[key]
        if credit >= WINDOW:
            self._credit.pop(key, None)
        else:
            self._credit[key] = credit

    def owe_credit(self, key: int, flush: bool = False) -> None:
        """A message for ``key`` entered its mailbox: give credit back, in batches, or at
        once with ``flush`` (when nothing more for ``key`` waits here)."""
        owed = self._credit_back.get(key, 0) + 1
        if owed >= CREDIT_BATCH or flush:
            self._credit_back.pop(key, None)
            self._send(wire.encode_credit(key, owed))
        else:
            self._credit_back[key] = owed

    def _give_credit_back(self) -> None:
        """Between reads: credit owed to senders that are out of it goes back at once."""
        if not self._credit_back:
            return
        for key, owed in list(self._credit_back.items()):
            if owed >= CREDIT_BATCH // 2:
                del self._credit_back[key]
                self._send(wire.encode_credit(key, owed))


def _still_waiting(ctx: object, session: int, call: PendingCall) -> bool:
    return ctx is not None and ctx.pending.get(session) is call  # type: ignore[attr-defined]


class _CreditWaiter:
    __slots__ = ("task", "pair", "frames", "call")

    def __init__(
        self, task: Task, pair: Pair, frames: list[bytes], call: PendingCall | None
    ) -> None:
        self.task = task
        self.pair = pair
        self.frames = frames
        self.call = call

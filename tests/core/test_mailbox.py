"""Bounded mailboxes: the declared overload policy and the queue-length warning."""

import pytest
import trio

from meshnet import Busy, Service, command


class Held(Service):
    """Registers its name, then holds ``init`` until released: messages pile up meanwhile."""

    mailbox_size = 2
    mailbox_warning = 1

    async def init(self, release):
        self.seen = []
        self.register(".held")
        await release.wait()

    @command
    async def note(self, value):
        self.seen.append(value)

    @command
    async def seen_values(self):
        return self.seen


class Rejecting(Held):
    mailbox_policy = "reject"


async def start_held(node, nursery, cls):
    release = trio.Event()
    nursery.start_soon(node.newservice, cls, release)
    await trio.testing.wait_all_tasks_blocked()
    return release


async def test_full_mailbox_makes_senders_wait_and_loses_nothing(node):
    sent = []

    async def sender():
        for value in range(4):
            await node.send(".held", "note", value)
            sent.append(value)

    async with trio.open_nursery() as nursery:
        release = await start_held(node, nursery, Held)
        nursery.start_soon(sender)
        await trio.testing.wait_all_tasks_blocked()
        assert sent == [0, 1]  # the third send waits for room
        release.set()
    assert await node.call(".held", "seen_values") == [0, 1, 2, 3]


async def test_full_mailbox_with_reject_policy_raises_busy(node):
    async with trio.open_nursery() as nursery:
        release = await start_held(node, nursery, Rejecting)
        await node.send(".held", "note", 0)
        await node.send(".held", "note", 1)
        with pytest.raises(Busy, match="mailbox full"):
            await node.send(".held", "note", 2)
        release.set()
    assert await node.call(".held", "seen_values") == [0, 1]


async def test_a_rejected_call_leaves_no_session_behind(node):
    caller = node.context_of(node.services()[0])
    async with trio.open_nursery() as nursery:
        release = await start_held(node, nursery, Rejecting)
        await node.send(".held", "note", 0)
        await node.send(".held", "note", 1)
        with pytest.raises(Busy):
            await node.call(".held", "note", 2)
        assert caller.pending == {}
        release.set()


async def test_queue_length_over_the_threshold_logs_a_warning(node, caplog):
    async with trio.open_nursery() as nursery:
        release = await start_held(node, nursery, Held)
        await node.send(".held", "note", 0)
        await node.send(".held", "note", 1)
        release.set()
    assert any("overloaded: 2 messages" in r.getMessage() for r in caplog.records)

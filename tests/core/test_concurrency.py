"""Backpressure that holds: a service runs at most ``max_concurrency`` handlers at once,
messages past that wait in the mailbox where its size and policy apply, answers still get
through, and the workers of a burst retire once idle."""

import pytest
import trio

from meshnet import Busy, Service, command
from meshnet.base import DEFAULT_MAX_CONCURRENCY
from meshnet.dispatch import MAX_STANDBY, STANDBY_IDLE


class Blocking(Service):
    """Each ``block`` waits until ``release``; counts how many wait at once."""

    max_concurrency = 3
    mailbox_size = 2
    mailbox_policy = "reject"

    async def init(self):
        self.inside = 0
        self.most_inside = 0
        self.released = trio.Event()

    @command
    async def block(self):
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        await self.released.wait()
        self.inside -= 1

    @command
    async def release(self):
        self.released.set()

    @command
    async def most(self):
        return self.most_inside


class Relay(Service):
    """With one handler at most, waits on an answer while its mailbox fills up."""

    max_concurrency = 1
    mailbox_size = 1

    @command
    async def ask(self, target):
        return await self.call(target, "reply")

    @command
    async def note(self):
        pass


class Replier(Service):
    async def init(self):
        self.go = trio.Event()

    @command
    async def reply(self):
        await self.go.wait()
        return "answered"

    @command
    async def answer_now(self):
        self.go.set()


def test_the_default_bound_is_documented_on_the_base_class():
    assert Service.max_concurrency == DEFAULT_MAX_CONCURRENCY
    assert "max_concurrency" in Service.__mro__[1].__doc__


async def test_no_more_than_max_concurrency_handlers_run_at_once(node):
    blocking = await node.newservice(Blocking)
    async with trio.open_nursery() as nursery:
        for _ in range(5):  # 3 run, 2 wait in the mailbox
            nursery.start_soon(node.call, blocking, "block")
            await trio.testing.wait_all_tasks_blocked()
        assert len(node.context_of(blocking).mailbox) == 2
        node.context_of(blocking).instance.released.set()
    assert await node.call(blocking, "most") == 3


async def test_messages_past_the_bound_wait_so_the_reject_policy_applies(node):
    blocking = await node.newservice(Blocking)
    async with trio.open_nursery() as nursery:
        for _ in range(5):  # handlers that all await: 3 running, 2 queued, mailbox full
            nursery.start_soon(node.call, blocking, "block")
            await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(Busy):
            await node.send(blocking, "release")
        node.context_of(blocking).instance.released.set()


async def test_an_answer_reaches_a_service_whose_handlers_and_mailbox_are_full(node):
    relay, replier = await node.newservice(Relay), await node.newservice(Replier)
    answers = []

    async def ask():
        answers.append(await node.call(relay, "ask", replier))

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask)  # Relay's one handler now waits for Replier
            await trio.testing.wait_all_tasks_blocked()
            await node.send(relay, "note")  # Relay's mailbox (1) is full behind it
            await node.call(replier, "answer_now")
    assert answers == ["answered"]


async def test_the_workers_of_a_burst_retire_once_idle(node, autojump_clock):
    blocking = await node.newservice(Blocking)
    ctx = node.context_of(blocking)
    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(node.call, blocking, "block")
            await trio.testing.wait_all_tasks_blocked()
        busy_tasks = len(ctx.nursery.child_tasks)
        ctx.instance.released.set()
    await trio.testing.wait_all_tasks_blocked()
    assert len(ctx.nursery.child_tasks) == busy_tasks  # the burst's workers stand by...
    await trio.sleep(STANDBY_IDLE + 1)
    assert len(ctx.nursery.child_tasks) == 1  # ...and then retire, but for the holder
    assert MAX_STANDBY >= 3

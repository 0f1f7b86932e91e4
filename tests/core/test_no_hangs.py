"""No way left to hang or leak: the system service stays, a child's init cannot answer its
parent's caller, unique starts survive a cancelled starter, channels die with their
creator, process exits leave the node, and ContextVars stay with their handler."""

import contextvars

import pytest
import trio

from meshnet import (
    ProtectedServiceError,
    ResponseError,
    Service,
    ServiceExited,
    command,
    open_node,
)

flavour: contextvars.ContextVar[str] = contextvars.ContextVar("flavour", default="plain")


class Child(Service):
    """Tries, in ``init``, to take over the message its parent is handling."""

    async def init(self, how, errors):
        try:
            if how == "response":
                self.response()
            else:
                await self.redirect(".nobody", "anything")
        except ResponseError as exc:
            errors.append(str(exc))


class Parent(Service):
    async def init(self):
        self.errors = []

    @command
    async def spawn(self, how):
        await self.newservice(Child, how, self.errors)
        return "the parent answers"

    @command
    async def child_errors(self):
        return self.errors


async def test_the_system_service_cannot_be_killed(node):
    system = node.services()[0]
    with pytest.raises(ProtectedServiceError, match="system service"):
        await node.kill(system)
    assert await node.call(await node.newservice(Parent), "child_errors") == []


@pytest.mark.parametrize("how", ["response", "redirect"])
async def test_a_childs_init_cannot_take_its_parents_message(node, how):
    parent = await node.newservice(Parent)
    assert await node.call(parent, "spawn", how) == "the parent answers"
    [error] = await node.call(parent, "child_errors")
    assert "not in init" in error


class SlowUnique(Service):
    async def init(self, started):
        started.set()
        await trio.sleep(1)


async def test_other_waiters_start_a_unique_service_whose_first_starter_was_cancelled(
    node, autojump_clock
):
    addresses = []
    started = trio.Event()
    first_starter = trio.CancelScope()

    async def start_then_be_cancelled():
        with first_starter:
            await node.uniqueservice(SlowUnique, started)

    async def wait_for_it():
        addresses.append(await node.uniqueservice(SlowUnique, trio.Event()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(start_then_be_cancelled)
        await started.wait()
        for _ in range(3):
            nursery.start_soon(wait_for_it)
        await trio.testing.wait_all_tasks_blocked()
        first_starter.cancel()
    assert len(addresses) == 3 and len(set(addresses)) == 1
    assert addresses[0] in node.services()


class Owner(Service):
    @command
    async def open_channel(self):
        return self.channel_new()

    @command
    async def publish_then_delete(self, channel):
        await self.publish(channel, "last words")
        self.channel_delete(channel)


class Subscriber(Service):
    async def init(self):
        self.heard = []

    @command
    async def join(self, channel):
        self.subscribe(channel, self.hear, on_delete=self.gone)

    async def hear(self, channel, source, text):
        self.heard.append(text)

    async def gone(self, channel):
        self.heard.append(f"channel {channel} deleted")

    @command
    async def heard_so_far(self):
        return self.heard


async def channel_with_subscriber(node):
    owner = await node.newservice(Owner)
    channel = await node.call(owner, "open_channel")
    subscriber = await node.newservice(Subscriber)
    await node.call(subscriber, "join", channel)
    return owner, channel, subscriber


async def test_a_channel_is_deleted_when_its_creator_exits_and_subscribers_are_told(node):
    owner, channel, subscriber = await channel_with_subscriber(node)
    await node.kill(owner)
    await trio.testing.wait_all_tasks_blocked()
    assert await node.call(subscriber, "heard_so_far") == [f"channel {channel} deleted"]
    assert channel not in node.context_of(subscriber).subscriptions


async def test_subscribers_hear_a_deletion_after_what_was_published_before(node):
    owner, channel, subscriber = await channel_with_subscriber(node)
    await node.call(owner, "publish_then_delete", channel)
    await trio.testing.wait_all_tasks_blocked()
    assert await node.call(subscriber, "heard_so_far") == [
        "last words",
        f"channel {channel} deleted",
    ]


class Exiting(Service):
    @command
    async def raise_(self, kind):
        raise {"SystemExit": SystemExit(4), "KeyboardInterrupt": KeyboardInterrupt()}[kind]


@pytest.mark.parametrize("kind", ["SystemExit", "KeyboardInterrupt"])
async def test_a_process_exit_in_a_handler_answers_the_caller_and_leaves_the_node(kind):
    answers, exit_hooks = [], []

    class Watched(Service):
        async def on_exit(self):
            exit_hooks.append("ran")

    with pytest.raises(SystemExit if kind == "SystemExit" else KeyboardInterrupt):
        async with open_node() as node:
            await node.newservice(Watched)
            exiting = await node.newservice(Exiting)
            try:
                await node.call(exiting, "raise_", kind)
            except ServiceExited as exc:
                answers.append(exc)
            await trio.sleep_forever()
    assert kind in str(answers[0])
    assert exit_hooks == ["ran"]  # the other services stopped cleanly


class Flavoured(Service):
    @command
    async def set_flavour(self, value):
        flavour.set(value)

    @command
    async def set_flavour_across_an_await(self, value):
        flavour.set(value)
        await trio.sleep(0)

    @command
    async def get_flavour(self):
        return flavour.get()


@pytest.mark.parametrize("setter", ["set_flavour", "set_flavour_across_an_await"])
async def test_a_contextvar_set_by_one_handler_is_not_seen_by_the_next(node, setter):
    flavoured = await node.newservice(Flavoured)
    await node.call(flavoured, setter, "sour")
    assert await node.call(flavoured, "get_flavour") == "plain"

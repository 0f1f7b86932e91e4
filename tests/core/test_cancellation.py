"""Cancellation is honoured: sends and calls in a cancelled scope send nothing, and a
stopped service starts no handler of the messages it still had queued."""

import pytest
import trio

from meshnet import Service, ServiceExited, command


class Tally(Service):
    """Counts what it handles; ``stop_now`` exits from inside a handler."""

    async def init(self, seen):
        self.seen = seen

    @command
    async def note(self, value):
        self.seen.append(value)
        return value

    @command
    async def stop_now(self):
        await self.exit()


async def sent_in_a_cancelled_scope(send) -> bool:
    """Run ``send`` in a cancelled scope; True if it raised Cancelled."""
    with trio.CancelScope() as scope:
        scope.cancel()
        try:
            await send()
        except trio.Cancelled:
            return True
    return False


async def test_a_send_in_a_cancelled_scope_raises_cancelled_and_delivers_nothing(node):
    seen = []
    tally = await node.newservice(Tally, seen)
    assert await sent_in_a_cancelled_scope(lambda: node.send(tally, "note", 1))
    await node.call(tally, "note", 2)
    assert seen == [2]


async def test_a_call_in_a_cancelled_scope_raises_cancelled_and_delivers_nothing(node):
    seen = []
    tally = await node.newservice(Tally, seen)
    assert await sent_in_a_cancelled_scope(lambda: node.call(tally, "note", 1))
    await node.call(tally, "note", 2)
    assert seen == [2]


async def test_kill_starts_no_handler_of_the_messages_still_queued(node):
    seen = []
    tally = await node.newservice(Tally, seen)
    for value in range(10):  # none of these yields: all ten are queued before Tally runs
        await node.send(tally, "note", value)
    await node.kill(tally)
    assert seen == []


async def test_exit_starts_no_handler_queued_behind_it_and_their_callers_are_told(node):
    seen = []
    tally = await node.newservice(Tally, seen)
    errors = []

    async def call_note(value):
        try:
            await node.call(tally, "note", value)
        except ServiceExited as exc:
            errors.append(exc)

    async with trio.open_nursery() as nursery:
        await node.send(tally, "stop_now")
        for value in range(5):
            nursery.start_soon(call_note, value)
    assert seen == []
    assert len(errors) == 5


async def test_a_service_flooded_with_messages_still_lets_others_run_and_be_killed(node):
    seen = []
    tally = await node.newservice(Tally, seen)

    async def flood():
        with pytest.raises(ServiceExited):
            while True:
                await node.send(tally, "note", 0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(flood)
        while len(seen) < 1000:  # the flood goes on beside this task
            await trio.sleep(0)
        await node.kill(tally)
        handled_at_kill = len(seen)
    assert len(seen) == handled_at_kill

"""One deadline per call: it covers the wait for mailbox room and for the answer, and the
node's default is not forever."""

import pytest
import trio

from meshnet import DEFAULT_CALL_TIMEOUT, CallTimeout, Service, command, open_node
from meshnet.timers import TICK, Timer, TimerWheel


class Silent(Service):
    """Takes calls and never answers them; ``mailbox_size`` 1 and a blocked holder make
    its mailbox fill."""

    mailbox_size = 1
    max_concurrency = 1

    @command
    async def never(self):
        await trio.sleep_forever()


async def test_a_call_timeout_covers_the_wait_for_room_in_a_full_mailbox(node, autojump_clock):
    silent = await node.newservice(Silent)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(node.call, silent, "never")  # holds the one handler
        await trio.testing.wait_all_tasks_blocked()
        await node.send(silent, "never")  # fills the mailbox
        start = trio.current_time()
        with trio.fail_after(60), pytest.raises(CallTimeout):
            await node.call(silent, "never", timeout=2)  # waits for room, never gets it
        assert 2 <= trio.current_time() - start < 2 + 3 * TICK
        nursery.cancel_scope.cancel()


async def test_the_node_default_timeout_is_thirty_seconds(autojump_clock):
    async with open_node() as node:
        silent = await node.newservice(Silent)
        start = trio.current_time()
        with trio.fail_after(10 * DEFAULT_CALL_TIMEOUT), pytest.raises(CallTimeout, match="30s"):
            await node.call(silent, "never")
        assert DEFAULT_CALL_TIMEOUT <= trio.current_time() - start < DEFAULT_CALL_TIMEOUT + 1


async def test_timeout_none_on_a_call_waits_past_the_node_default(node, autojump_clock):
    silent = await node.newservice(Silent)
    with trio.move_on_after(10 * DEFAULT_CALL_TIMEOUT) as scope:
        await node.call(silent, "never", timeout=None)
    assert scope.cancelled_caught


async def test_a_node_with_call_timeout_none_lets_calls_wait(autojump_clock):
    async with open_node(call_timeout=None) as node:
        silent = await node.newservice(Silent)
        with trio.move_on_after(10 * DEFAULT_CALL_TIMEOUT) as scope:
            await node.call(silent, "never")
        assert scope.cancelled_caught


class Recorded(Timer):
    __slots__ = ("fired",)

    def __init__(self, fired):
        self._tick = -1
        self.fired = fired

    def fire(self):
        self.fired.append(trio.current_time())


async def test_a_timer_fires_within_a_tick_after_its_deadline_never_before(autojump_clock):
    wheel, fired = TimerWheel(), []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(wheel.run)
        await trio.sleep(1)
        for delay in (0.001, 0.5, 3.25):
            wheel.schedule(Recorded(fired), trio.current_time() + delay)
            wheel.schedule_after(Recorded(fired), delay)
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    due = sorted(1 + delay for delay in (0.001, 0.5, 3.25) for _ in range(2))
    assert all(d <= f <= d + 2 * TICK + 1e-9 for d, f in zip(due, sorted(fired), strict=True))


async def test_a_cancelled_timer_never_fires(autojump_clock):
    wheel, fired = TimerWheel(), []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(wheel.run)
        early, late = Recorded(fired), Recorded(fired)
        wheel.schedule_after(early, 1)
        wheel.schedule_after(late, 2)
        await trio.sleep(0.5)  # swept into its bucket by now
        wheel.cancel(late)
        wheel.cancel(early)
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    assert fired == []

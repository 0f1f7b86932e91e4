"""Restart policies for supervised services."""

import pytest
import trio

from meshnet import CallError, RestartPolicy, Service, command


class Worker(Service):
    starts = 0

    async def init(self):
        type(self).starts += 1
        self.register(".worker")

    @command
    async def crash(self):
        async def fail():
            raise RuntimeError("bug")

        self.fork(fail)

    @command
    async def quit(self):
        await self.exit()

    @command
    async def ping(self):
        return "pong"


@pytest.fixture(autouse=True)
def reset_starts():
    Worker.starts = 0


async def wait_for_worker(node, old):
    while node.lookup(".worker") in (None, old):
        await trio.sleep(0.001)
    return node.lookup(".worker")


async def test_permanent_service_is_restarted_after_it_is_killed(node):
    first = await node.newservice(Worker, restart=RestartPolicy("permanent"))
    await node.kill(first)
    second = await wait_for_worker(node, first)
    assert second != first
    assert await node.call(".worker", "ping") == "pong"


async def test_permanent_service_is_restarted_after_a_clean_exit(node):
    first = await node.newservice(Worker, restart=RestartPolicy("permanent"))
    with pytest.raises(CallError):
        await node.call(first, "quit")
    assert await wait_for_worker(node, first) != first


async def test_transient_service_is_restarted_after_a_crash(node):
    first = await node.newservice(Worker, restart=RestartPolicy("transient"))
    await node.call(first, "crash")
    assert await wait_for_worker(node, first) != first


async def test_transient_service_stays_down_after_a_clean_exit(node):
    first = await node.newservice(Worker, restart=RestartPolicy("transient"))
    with pytest.raises(CallError):
        await node.call(first, "quit")
    await trio.testing.wait_all_tasks_blocked()
    assert node.lookup(".worker") is None
    assert Worker.starts == 1


async def test_temporary_service_is_never_restarted(node):
    first = await node.newservice(Worker, restart=RestartPolicy("temporary"))
    await node.call(first, "crash")
    await trio.testing.wait_all_tasks_blocked()
    assert node.lookup(".worker") is None


async def test_supervisor_gives_up_after_too_many_restarts_in_the_period(node, caplog):
    address = await node.newservice(
        Worker, restart=RestartPolicy("permanent", max_restarts=2, period=60)
    )
    for _ in range(3):
        await node.kill(address)
        await trio.testing.wait_all_tasks_blocked()
        address = node.lookup(".worker") or address
    assert node.lookup(".worker") is None
    assert Worker.starts == 3
    assert any("giving up" in r.getMessage() for r in caplog.records)


async def test_restarts_older_than_the_period_do_not_count(node, autojump_clock):
    address = await node.newservice(
        Worker, restart=RestartPolicy("permanent", max_restarts=1, period=10)
    )
    for _ in range(3):
        await node.kill(address)
        address = await wait_for_worker(node, address)
        await trio.sleep(11)
    assert Worker.starts == 4


def test_an_unknown_restart_mode_is_refused():
    with pytest.raises(ValueError, match="restart mode"):
        RestartPolicy("sometimes")

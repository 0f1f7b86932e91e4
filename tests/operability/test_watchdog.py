"""Slow-handler detection, and CPU time credited to the service that spends it.

Both watch the real event loop from outside (a thread, a signal), so these tests run on
the real clock; they wait for what must be logged or counted, never assert how fast."""

import logging
import threading
import time

import pytest
import trio

from meshnet import Service, command, open_node
from meshnet.message import CLIENT
from meshnet.observe import SAMPLE_PERIOD

THRESHOLD = 0.2
"""The slow-handler threshold of these tests, in seconds."""
GIVE_UP = 60.0
"""Seconds a busy handler spins at most, should what it waits for never come."""


class Reports(logging.Handler):
    """Collects the watchdog's records; ``logged`` is set by the first ERROR."""

    def __init__(self):
        super().__init__()
        self.records = []
        self.logged = threading.Event()

    def emit(self, record):
        self.records.append(record)
        if record.levelno >= logging.ERROR:
            self.logged.set()


def hold_the_loop(reports: Reports) -> None:
    """Hold the event loop until the watchdog has said so."""
    deadline = time.monotonic() + GIVE_UP
    while not reports.logged.is_set() and time.monotonic() < deadline:
        pass


class Busy(Service):
    async def init(self, reports: Reports) -> None:
        self.reports = reports
        self.register(".busy")

    @command
    async def spin(self):
        hold_the_loop(self.reports)

    @command
    async def doze(self, watchdog_checks: int):
        """Await (never holding the loop) until the watchdog has checked that many times."""
        watchdog = self.node.watchdog
        target = watchdog.checks + watchdog_checks
        while watchdog.checks < target:
            await trio.sleep(0.01)

    @command
    async def burn(self):
        """Run on the CPU until the sampler has credited this service five samples."""
        deadline = time.monotonic() + GIVE_UP
        while self._ctx.stats.cpu < 5 * SAMPLE_PERIOD and time.monotonic() < deadline:
            pass


class BusyClient(Service):
    """A gate's agent, its handler spinning as ``Busy.spin`` does."""

    async def init(self, reports: Reports) -> None:
        self.reports = reports

    async def on_client(self, fd, data):
        hold_the_loop(self.reports)


class Reactor(Service):
    """Hands a client packet over as a gate's reactor does: the agent's handler runs in
    this service's task (``post_here``), not in the agent's."""

    @command
    async def hand_over(self, agent):
        guest = self._ctx.post_here(agent, CLIENT, (7, b"packet"))
        assert guest is None  # it ran here, to its end


class Idle(Service):
    """Never runs after its start."""


@pytest.fixture
def reports():
    handler = Reports()
    logger = logging.getLogger("meshnet.watchdog")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


async def test_a_handler_holding_the_event_loop_is_logged_with_its_address_command_and_stack(
    reports,
):
    async with open_node(slow_handler=THRESHOLD) as node:
        busy = await node.newservice(Busy, reports)
        await node.call(busy, "spin")
        with trio.fail_after(GIVE_UP):  # the next check sees the loop running again
            while len(reports.records) < 2:
                await trio.sleep(0.01)
    error = next(r for r in reports.records if r.levelno == logging.ERROR)
    message = error.getMessage()
    assert message.startswith(f"slow handler: {busy} (Busy) has held the event loop for ")
    assert "running message 'spin' from :01000001" in message
    assert 'test_watchdog.py", line' in message and "in hold_the_loop" in message
    assert error.address == str(busy)
    assert node.watchdog.reports == 1
    assert (
        reports.records[1].getMessage().startswith("the event loop ran again after being held for ")
    )


async def test_a_handler_run_in_a_gate_reactors_task_is_logged_as_its_service(reports):
    async with open_node(slow_handler=THRESHOLD) as node:
        agent = await node.newservice(BusyClient, reports)
        reactor = await node.newservice(Reactor)
        await node.call(reactor, "hand_over", agent)
    error = next(r for r in reports.records if r.levelno == logging.ERROR)
    assert error.getMessage().startswith(f"slow handler: {agent} (BusyClient) has held")
    assert f"running message 'client' from {reactor} session 0" in error.getMessage()
    assert error.address == str(agent)


async def test_a_handler_that_only_awaits_is_not_reported(reports):
    async with open_node(slow_handler=THRESHOLD) as node:
        await node.newservice(Busy, reports)
        # Ten checks, a quarter of the threshold apart: the handler runs 2.5 thresholds.
        await node.call(".busy", "doze", 10)
    assert reports.records == []
    assert node.watchdog.reports == 0


async def test_cpu_time_is_credited_to_the_service_that_spends_it(reports):
    async with open_node() as node:
        node.observe()
        busy = await node.newservice(Busy, reports)
        idle = await node.newservice(Idle)
        await node.call(busy, "burn")
        cpu = {address: node.context_of(address).stats.cpu for address in node.services()}
    assert cpu[busy] >= 5 * SAMPLE_PERIOD
    assert cpu[busy] > max(seconds for address, seconds in cpu.items() if address != busy)
    assert cpu[idle] < cpu[busy]

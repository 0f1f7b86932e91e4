"""``open_node(gc_threshold=N)``: young garbage collections every N allocations while the
node runs, the interpreter's setting again after it (``meshnet.gcpolicy``)."""

import gc

import pytest
import trio
import trio.testing

from meshnet import open_node
from meshnet.gcpolicy import GcThresholdError


@pytest.fixture
def interpreters():
    """The interpreter's thresholds before the test, checked back after it."""
    before = gc.get_threshold()
    yield before
    assert gc.get_threshold() == before


async def test_a_node_asked_for_a_threshold_runs_with_it(interpreters):
    async with open_node(gc_threshold=12_345):
        assert gc.get_threshold() == (12_345, *interpreters[1:])


async def test_a_node_that_ends_with_an_error_puts_the_old_threshold_back(interpreters):
    with pytest.raises(ExceptionGroup) as raised:
        async with open_node(gc_threshold=12_345):
            raise RuntimeError("the block failed")
    assert raised.value.subgroup(RuntimeError) is not None
    assert gc.get_threshold() == interpreters


async def test_a_node_not_asked_leaves_the_collector_alone(interpreters):
    async with open_node():
        assert gc.get_threshold() == interpreters


async def test_of_two_nodes_the_last_started_sets_it_until_it_ends_whatever_the_order(
    interpreters,
):
    async def run(node_id: int, threshold: int, stop: trio.Event, task_status) -> None:
        async with open_node(node_id, f"n{node_id}", gc_threshold=threshold):
            task_status.started()
            await stop.wait()

    stop_first, stop_second = trio.Event(), trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(run, 1, 20_000, stop_first)
        await nursery.start(run, 2, 30_000, stop_second)
        assert gc.get_threshold()[0] == 30_000
        stop_first.set()
        await trio.testing.wait_all_tasks_blocked()
        assert gc.get_threshold()[0] == 30_000
        stop_second.set()
    assert gc.get_threshold() == interpreters


@pytest.mark.parametrize("threshold", [0, -1, 2**31, True])
async def test_a_threshold_cpython_does_not_take_is_refused(threshold):
    with pytest.raises(GcThresholdError, match="1 to 2147483647 allocations"):
        async with open_node(gc_threshold=threshold):
            pass

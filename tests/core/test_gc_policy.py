"""``open_node(gc_threshold=N)``: young garbage collections every N allocations while the
node runs, the interpreter's setting again after it (``meshnet.gcpolicy``)."""

import gc

from meshnet import open_node


async def test_a_node_asked_for_a_threshold_runs_with_it_and_restores_the_old_one():
    before = gc.get_threshold()
    async with open_node(gc_threshold=12_345):
        assert gc.get_threshold() == (12_345, *before[1:])
    assert gc.get_threshold() == before


async def test_a_node_not_asked_leaves_the_collector_alone():
    before = gc.get_threshold()
    async with open_node():
        assert gc.get_threshold() == before

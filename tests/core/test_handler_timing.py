"""Which handlers an observed service times (``ServiceStats.timed``): every one while the
service is quiet, one in ``TIMED_EVERY`` once it is busy."""

import pytest

import meshnet.context
from meshnet.context import QUIET_GAP, TIMED_EVERY, ServiceStats


@pytest.fixture
def clock(monkeypatch):
    """``perf_counter`` as ``timed`` reads it, set by the test."""
    now = [1000.0]
    monkeypatch.setattr(meshnet.context, "perf_counter", lambda: now[0])
    return now


def test_a_service_timed_for_the_first_time_times_its_next_handler_too(clock):
    assert ServiceStats().timed(clock[0]) == 1


def test_a_handler_timed_a_second_after_the_last_keeps_the_service_quiet(clock):
    stats = ServiceStats()
    stats.timed(clock[0])
    clock[0] += QUIET_GAP
    assert stats.timed(clock[0]) == 1


def test_an_agent_handling_a_message_every_40_ms_is_busy_and_sampled(clock):
    stats = ServiceStats()
    stats.timed(clock[0])
    clock[0] += 0.04
    assert stats.timed(clock[0] - 0.001) == TIMED_EVERY


def test_a_timed_handler_counts_in_the_latency_histogram_by_microseconds(clock):
    stats = ServiceStats()
    stats.timed(clock[0] - 0.003)  # 3000 us: bit length 12
    assert stats.latency[12] == 1 and sum(stats.latency) == 1
    assert stats.latency_sum == pytest.approx(0.003)

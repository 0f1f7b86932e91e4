"""The limit on failed sign-ins: per name and per address, a few in a row, then one back
every period / max_failures seconds; exempt addresses are not counted; what is kept stays
bounded."""

from __future__ import annotations

import pytest

from demo_game.signin_limits import SWEEP_FROM, FailedSignins


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def limits(clock, **options) -> FailedSignins:
    return FailedSignins(**{"max_failures": 5, "period": 60.0, "clock": clock, **options})


def test_a_name_may_fail_max_failures_times_then_waits_for_one_to_come_back(clock):
    failures = limits(clock)
    for _ in range(5):
        assert failures.retry_after("alice", None) == 0
        failures.failed("alice", None)
    assert failures.retry_after("alice", None) == pytest.approx(12.0)  # 60 s / 5
    clock.now = 11.0
    assert failures.retry_after("alice", None) == pytest.approx(1.0)
    clock.now = 12.0
    assert failures.retry_after("alice", None) == 0
    assert failures.retry_after("bob", None) == 0  # another name is not held back


def test_an_address_failing_for_many_names_is_limited_too(clock):
    failures = limits(clock)
    for n in range(5):
        failures.failed(f"user{n}", "203.0.113.9")
    assert failures.retry_after("someone-else", "203.0.113.9") == pytest.approx(12.0)
    assert failures.retry_after("someone-else", "203.0.113.10") == 0


def test_exempt_addresses_are_not_counted_but_names_still_are(clock):
    failures = limits(clock, exempt=["127.0.0.0/8"])
    for n in range(20):
        failures.failed(f"robot{n}", "127.0.0.1")
    assert failures.retry_after("robot-new", "127.0.0.1") == 0
    for _ in range(5):
        failures.failed("robot0", "127.0.0.1")
    assert failures.retry_after("robot0", "127.0.0.1") > 0


def test_keys_back_to_all_their_failures_are_forgotten(clock):
    failures = limits(clock)
    for n in range(SWEEP_FROM):
        failures.failed(f"old{n}", None)
    clock.now = 60.0  # every one of them is back to all five
    for n in range(2 * SWEEP_FROM):
        failures.failed(f"new{n}", None)
    assert len(failures) == 2 * SWEEP_FROM  # the new ones only: the old were swept

"""A node's log holds back floods of one message: a few are shown per period, then a
count of those held back comes with the next one shown."""

import io
import logging

import pytest

from meshnet.log import REPEAT_BURST, RepeatLimit, configure


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def shown() -> tuple[logging.Logger, list[str], FakeClock]:
    """A logger whose records go through a RepeatLimit (10 s, 3 a period) into a list."""
    clock = FakeClock()
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    handler.addFilter(RepeatLimit(period=10.0, burst=3, clock=clock))
    logger = logging.getLogger("test_log_repeats")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    yield logger, lines, clock
    logger.handlers.clear()


def test_a_flood_of_one_warning_shows_a_burst_then_counts_the_rest(shown):
    logger, lines, clock = shown
    for port in range(1000):
        logger.warning("refused 10.0.0.1:%d: too many connections", port)
    assert lines == [f"refused 10.0.0.1:{port}: too many connections" for port in range(3)]
    clock.now = 10.0
    logger.warning("refused 10.0.0.1:%d: too many connections", 5000)
    assert lines[3:] == [
        "refused 10.0.0.1:5000: too many connections "
        "[997 more like this not logged since the last one shown]"
    ]


def test_different_messages_and_levels_are_counted_apart(shown):
    logger, lines, _ = shown
    for _ in range(5):
        logger.warning("one")
        logger.warning("two %s", "x")
        logger.error("one")
    assert lines == ["one", "two x", "one"] * 3


def test_debug_records_are_never_held_back(shown):
    logger, lines, _ = shown
    for _ in range(10):
        logger.debug("asked for")
    assert lines == ["asked for"] * 10


def test_the_count_is_not_lost_when_the_next_period_comes_late(shown):
    logger, lines, clock = shown
    for _ in range(4):
        logger.info("same")
    clock.now = 500.0
    logger.info("same")
    logger.info("same")
    assert lines == ["same"] * 3 + [
        "same [1 more like this not logged since the last one shown]",
        "same",
    ]


def test_the_node_log_holds_back_floods(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure("INFO")
        for _ in range(REPEAT_BURST * 10):
            logging.getLogger("flood").warning("bad input from a client")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    assert stream.getvalue().count("bad input from a client") == REPEAT_BURST

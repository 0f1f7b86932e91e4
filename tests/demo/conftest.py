"""The demo tests' Redis: one real redis-server (the demo's own RedisProcess, AOF with
fsync always) for the session, for the gold's deferred hand-offs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from demo_setup import HOST

from demo_game.launcher import free_port
from demo_game.redis_process import RedisProcess


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Started on first use, stopped at the end of the session."""
    redis = RedisProcess(HOST, free_port(), tmp_path_factory.mktemp("redis"), fsync="always")
    redis.start()
    try:
        yield redis.url
    finally:
        redis.stop()

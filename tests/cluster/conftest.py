"""The cluster tests' Redis: one real redis-server for the whole test session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Started on first use, stopped at the end of the session."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis(redis_server: RedisServer) -> Iterator[RedisServer]:
    """The session's server, running again after each test (a test may stop it)."""
    yield redis_server
    if redis_server.process is None:
        redis_server.start()


@pytest.fixture
def cluster_name() -> str:
    """A cluster name of its own for each test: its keys are apart from the others'."""
    return f"t{uuid.uuid4().hex[:12]}"

"""A real redis-server for the tests: our own process on a free loopback port, with AOF
persistence (``appendfsync always``) in a directory of its own (the demo's
``RedisProcess``, which ``make demo-cluster`` starts too)."""

from __future__ import annotations

import shutil
from pathlib import Path

from cluster_setup import HOST, free_port

from demo_game.redis_process import RedisProcess


class RedisServer(RedisProcess):
    """``redis-server`` on ``HOST``, its data in ``directory``; ``stop`` and ``start``
    again to restart it on the same port with the same data (``wipe`` to lose it)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(HOST, free_port(), directory, fsync="always")

    def wipe(self) -> None:
        """Forget every key (the server must be stopped)."""
        assert self.process is None, "stop the server first"
        shutil.rmtree(self.directory / "appendonlydir", ignore_errors=True)

"""A real redis-server for the tests: our own process on a free loopback port, with AOF
persistence (``appendfsync always``) in a directory of its own."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from cluster_setup import HOST, WAIT, free_port

INSTALL_HINT = (
    "install it with `make test` (Debian's redis-server) or `apt-get install redis-server`"
)


class RedisServer:
    """``redis-server`` on ``HOST``, its data in ``directory``; ``stop`` and ``start``
    again to restart it on the same port with the same data (``wipe`` to lose it)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(f"the cluster tests need redis-server: {INSTALL_HINT}")
        self.binary = binary

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.directory / "redis.log"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                self.binary,
                "--bind", HOST,
                "--port", str(self.port),
                "--dir", str(self.directory),
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--save", "",
                "--logfile", str(self.log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._wait_ready()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def wipe(self) -> None:
        """Forget every key (the server must be stopped)."""
        assert self.process is None, "stop the server first"
        shutil.rmtree(self.directory / "appendonlydir", ignore_errors=True)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited at start: {self._log_tail()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer within {WAIT:g}s: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

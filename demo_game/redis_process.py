"""A ``redis-server`` of our own in a child process: what ``make demo-cluster`` discovers
its nodes through.

It listens on one loopback address and port, keeps its data in a directory of its own
with AOF persistence (an append-only file, fsynced every second), and runs in a process
group of its own, so the Ctrl-C that stops the nodes does not reach it: it stops after
them (``stop``), and they take their keys away cleanly first.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from meshnet.errors import MeshnetError

START_TIMEOUT = 10.0
"""Seconds redis-server has to answer after it was started."""
STOP_TIMEOUT = 10.0
"""Seconds it has to stop after SIGTERM before it is killed."""
INSTALL_HINT = "make demo-cluster and make test install Debian's, or: apt-get install redis-server"


class RedisProcessError(MeshnetError):
    """redis-server is missing, did not start, or did not answer."""


class RedisProcess:
    """``redis-server`` on ``host:port`` with its data in ``directory``; ``start`` it, and
    ``stop`` it (``fsync``: AOF's ``appendfsync``, ``everysec`` or ``always``)."""

    def __init__(self, host: str, port: int, directory: Path, fsync: str = "everysec") -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisProcessError(f"redis-server is not installed: {INSTALL_HINT}")
        self.binary = binary
        self.host = host
        self.port = port
        self.directory = directory.absolute()
        self.fsync = fsync
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where the nodes reach it: ``redis://host:port/0``."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def log(self) -> Path:
        """redis-server's own log file."""
        return self.directory / "redis.log"

    def start(self) -> None:
        """Start it and wait until it answers; RedisProcessError (with the end of its log)
        if it exits or stays silent, as when another process holds the port."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                self.binary,
                "--bind", self.host,
                "--port", str(self.port),
                "--dir", str(self.directory),
                "--appendonly", "yes",
                "--appendfsync", self.fsync,
                "--save", "",
                "--logfile", str(self.log),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            process_group=0,
        )  # fmt: skip
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop it (SIGTERM: it writes what it has and exits); kill it if it hangs."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log_tail(self, size: int = 2000) -> str:
        """The last ``size`` characters of its log."""
        try:
            return self.log.read_text(errors="replace")[-size:].strip()
        except OSError:
            return "(no log)"

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RedisProcessError(
                    f"redis-server exited at start on {self.host}:{self.port} (is another "
                    f"Redis holding the port?); the end of {self.log}:\n{self.log_tail()}"
                )
            if _server_pid(self.host, self.port) == self.process.pid:  # ours, not another's
                return
            time.sleep(0.02)
        raise RedisProcessError(
            f"redis-server did not answer on {self.host}:{self.port} within "
            f"{START_TIMEOUT:g}s; the end of {self.log}:\n{self.log_tail()}"
        )


def _server_pid(host: str, port: int) -> int | None:
    """The process id of the Redis answering on ``host:port`` (``INFO server``), or None."""
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"INFO server\r\n")
            reply = b""
            while b"process_id:" not in reply or not reply.endswith(b"\r\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    return None
                reply += chunk
    except OSError:
        return None
    line = reply.split(b"process_id:", 1)[1].split(b"\r\n", 1)[0]
    return int(line) if line.isdigit() else None

"""Running a node as ``workers = N`` processes: the supervisor (the first process).

``meshnet node CONFIG`` with ``[node] workers = N`` (N > 1) runs no node itself: it starts
N worker processes of the same config (``meshnet.workers`` says who each one is), waits
until every one is up (then writes ``ready`` on ``MESHNET_READY_FD`` if it was given one,
as a node does), and keeps them running:

- a worker that exits (crashes, is killed) while the supervisor is not stopping is logged
  and started again after a pause that doubles from ``RESTART_MIN`` to ``RESTART_MAX``
  seconds, and goes back to ``RESTART_MIN`` once a worker ran ``STABLE`` seconds;
- a worker that cannot start the first time (its port is taken, its start service
  raises) stops them all: the supervisor exits 1;
- the first SIGINT or SIGTERM (Ctrl-C) sends SIGTERM to every worker, which stops
  cleanly, and the supervisor exits 0 once all have; a worker still running
  ``STOP_GRACE`` seconds later is killed. A second signal ends the supervisor at once
  (``meshnet.runner``), and it first passes that signal on, which ends the workers at once
  too (their exit hooks still running are not waited for).

No worker outlives the supervisor: each runs in a session of its own (so a terminal's
Ctrl-C reaches the supervisor only, which stops the workers exactly once) and holds the
read end of a pipe only the supervisor can write to (``MESHNET_LIFELINE_FD``); when the
supervisor ends, however (even by SIGKILL), the kernel closes its end, the worker reads
end-of-file and stops cleanly, as on SIGTERM.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio

from meshnet.workers import (
    LIFELINE_ENV,
    READY_FD_ENV,
    SECRET_ENV,
    WORKER_ENV,
    Worker,
    notify_ready,
)

if TYPE_CHECKING:
    from meshnet.config import NodeConfig
    from meshnet.runner import StopRequest

logger = logging.getLogger(__name__)

RESTART_MIN = 0.5
"""Seconds before a worker that exited is started again, the first time."""
RESTART_MAX = 10.0
"""The longest pause between restarts of a worker that keeps exiting."""
STABLE = 30.0
"""A worker that ran this many seconds starts its next restart pause from RESTART_MIN."""
STOP_GRACE = 30.0
"""Seconds the workers have to stop after SIGTERM before they are killed."""


def check_workers(config: NodeConfig) -> None:
    """Load ``config`` as each of its workers would, so that a bad section is one error
    here, before any process starts (``ConfigError`` as for a node)."""
    from meshnet.config import load_config

    os.environ.setdefault(SECRET_ENV, secrets.token_urlsafe(24))
    saved = os.environ.get(WORKER_ENV)
    try:
        for index in range(config.workers):
            os.environ[WORKER_ENV] = _worker(config, index).to_env()
            load_config(config.path)
    finally:
        if saved is None:
            os.environ.pop(WORKER_ENV, None)
        else:
            os.environ[WORKER_ENV] = saved


async def supervise(config: NodeConfig, stop: StopRequest) -> int:
    """Run ``config``'s workers until ``stop`` (or a first start fails); the exit code."""
    stop.attach()
    lifeline_read, lifeline_write = os.pipe()
    supervisor = _Supervisor(config, lifeline_read)
    stop.before_forced_exit = supervisor.signal_all
    try:
        async with trio.open_nursery() as nursery:
            for index in range(config.workers):
                nursery.start_soon(supervisor.keep_running, index)
            nursery.start_soon(supervisor.announce_ready)
            async with trio.open_nursery() as first:
                first.start_soon(_then_cancel, stop.wait, first)
                first.start_soon(_then_cancel, supervisor.stopping.wait, first)
            if stop.signum is not None:
                name = signal.Signals(stop.signum).name
                logger.info("received %s: stopping the workers", name)
            await supervisor.stop()
            nursery.cancel_scope.cancel()
    finally:
        os.close(lifeline_read)
        os.close(lifeline_write)
    return supervisor.exit_code


class _Supervisor:
    """The worker processes and whether the supervisor is stopping."""

    def __init__(self, config: NodeConfig, lifeline: int) -> None:
        self.config = config
        self.lifeline = lifeline
        """The read end of a pipe only the supervisor writes to: each worker waits on it,
        and stops when it reads end-of-file (the supervisor is gone, however it ended)."""
        self.processes: dict[int, trio.Process] = {}
        self.ready: set[int] = set()
        self.all_ready = trio.Event()
        self.stopping = trio.Event()
        self.exit_code = 0

    async def keep_running(self, index: int) -> None:
        """Run worker ``index``, starting it again each time it exits, until stopping."""
        pause, first = RESTART_MIN, True
        while not self.stopping.is_set():
            started = trio.current_time()
            code, was_ready = await self._run_once(index)
            if self.stopping.is_set():
                return
            how = _exit_text(code)
            if first and not was_ready:
                logger.error("worker %d could not start (%s): stopping all workers", index, how)
                self.exit_code = 1
                self.stopping.set()
                return
            if trio.current_time() - started >= STABLE:
                pause = RESTART_MIN
            logger.warning("worker %d %s; starting it again in %gs", index, how, pause)
            with trio.move_on_after(pause):
                await self.stopping.wait()
            pause, first = min(pause * 2, RESTART_MAX), False

    async def announce_ready(self) -> None:
        """Once every worker is up the first time: log it, and tell the launcher."""
        await self.all_ready.wait()
        logger.info("the %d workers of node %r are up", self.config.workers, self.config.name)
        notify_ready()

    def signal_all(self, signum: int) -> None:
        """Send ``signum`` to every worker (a second one makes a stopping worker exit at once)."""
        for process in self.processes.values():
            _signal(process, signum)

    async def stop(self) -> None:
        """SIGTERM every worker; kill those still running after ``STOP_GRACE``."""
        self.stopping.set()
        self.signal_all(signal.SIGTERM)
        with trio.move_on_after(STOP_GRACE) as grace:
            for process in list(self.processes.values()):
                await process.wait()
        if grace.cancelled_caught:
            for index, process in self.processes.items():
                logger.error("worker %d did not stop within %gs: killing it", index, STOP_GRACE)
                _signal(process, signal.SIGKILL)
                await process.wait()

    async def _run_once(self, index: int) -> tuple[int, bool]:
        """Start worker ``index``, wait until it exits; its exit code and whether it had
        said it was ready."""
        read_end, write_end = os.pipe()
        env = dict(os.environ)
        env[WORKER_ENV] = _worker(self.config, index).to_env()
        env[READY_FD_ENV] = str(write_end)
        env[LIFELINE_ENV] = str(self.lifeline)
        command = [sys.executable, "-m", "meshnet", "node", str(self.config.path)]
        try:
            process = await trio.lowlevel.open_process(
                command, env=env, pass_fds=(write_end, self.lifeline), start_new_session=True
            )
        finally:
            os.close(write_end)
        self.processes[index] = process
        logger.info("worker %d started (pid %d)", index, process.pid)
        was_ready = False
        async with trio.lowlevel.FdStream(read_end) as pipe:
            if (await _read_all(pipe)).startswith(b"ready"):
                was_ready = True
                self._mark_ready(index)
        code = await process.wait()
        del self.processes[index]
        self.ready.discard(index)
        return code, was_ready

    def _mark_ready(self, index: int) -> None:
        self.ready.add(index)
        if len(self.ready) == self.config.workers:
            self.all_ready.set()


def _worker(config: NodeConfig, index: int) -> Worker:
    return Worker(index, config.workers, config.name, config.node_id)


async def _read_all(pipe: trio.lowlevel.FdStream) -> bytes:
    """What the worker writes on its ready pipe until it closes it (or exits)."""
    data = b""
    while chunk := await pipe.receive_some():
        data += chunk
    return data


async def _then_cancel(wait: Callable[[], Awaitable[object]], nursery: trio.Nursery) -> None:
    await wait()
    nursery.cancel_scope.cancel()


def _signal(process: trio.Process, signum: int) -> None:
    if process.returncode is None:
        try:
            process.send_signal(signum)
        except ProcessLookupError:
            pass


def _exit_text(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"

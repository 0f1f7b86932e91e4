"""Booting a node from its config and running it until SIGINT or SIGTERM.

The first SIGINT or SIGTERM stops the node cleanly: every service stops, its exit hooks
run, and the process exits 0. A second one while that shutdown is still going on is an
operator in a hurry (Ctrl-C twice, or a supervisor's second TERM): the process logs one
line and exits at once with the shell's code for that signal (130 for SIGINT, 143 for
SIGTERM), without waiting for exit hooks still running. No traceback either way.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import trio

from meshnet.config import NodeConfig
from meshnet.errors import ServiceStartError
from meshnet.listen import warn_if_fd_limit_low
from meshnet.loader import load_service_class
from meshnet.log import configure
from meshnet.node import Node, open_node
from meshnet.supervisor import check_workers, supervise
from meshnet.workers import LIFELINE_ENV, notify_ready

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_node(config: NodeConfig) -> int:
    """Run the node ``config`` describes; return the process exit code (0 on a clean stop).

    Import and start errors propagate as meshnet errors for the CLI to print; once the
    node runs, the first SIGINT/SIGTERM stops it cleanly, running every exit hook, and a
    second one during that shutdown ends the process at once (see the module docstring).
    A config with ``workers`` > 1 runs their supervisor instead (``meshnet.supervisor``).
    """
    configure(config.log_level)
    if config.supervises:
        check_workers(config)
        with _stop_signals() as stop:
            return trio.run(supervise, config, stop)
    for path in config.paths:
        sys.path.insert(0, str(path))
    start_class = load_service_class(config.start_service)
    with _stop_signals() as stop:
        start_error = trio.run(_serve, config, start_class, stop)
    if start_error is not None:
        raise start_error
    return 0


def forced_exit_code(signum: int) -> int:
    """The exit code of a stop forced by a second ``signum``: the shell's 128 + signum."""
    return 128 + signum


class StopRequest:
    """What the stop signals asked for: the first stops the node (``requested``); a
    second, while it stops, ends the process at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        """The first stop signal received, once one was."""
        self._token: trio.lowlevel.TrioToken | None = None
        self._requested: trio.Event | None = None
        self._finished = False
        self.before_forced_exit: Callable[[int], None] | None = None
        """Called with the signal before a second one ends the process (the supervisor
        passes it on to its workers)."""

    async def wait(self) -> int:
        """Wait for the first stop signal; return it."""
        assert self._requested is not None
        await self._requested.wait()
        assert self.signum is not None
        return self.signum

    def attach(self) -> None:
        """Start delivering to the running trio loop (a signal may have come already)."""
        self._token = trio.lowlevel.current_trio_token()
        self._requested = trio.Event()
        if self.signum is not None:
            self._requested.set()

    def finish(self) -> None:
        """The node has stopped: signals from now on change nothing."""
        self._finished = True

    def request(self, signum: int) -> None:
        """Ask for a stop as signal ``signum`` would, from inside the trio loop."""
        if self.signum is None and self._requested is not None:
            self.signum = signum
            self._requested.set()

    def handle(self, signum: int, frame: FrameType | None) -> None:
        """The signal handler (runs in the main thread, between two bytecodes)."""
        if self._finished:
            return
        if self.signum is None:
            self.signum = signum
            if self._token is not None and self._requested is not None:
                try:
                    self._token.run_sync_soon(self._requested.set)
                except trio.RunFinishedError:
                    pass
            return
        name = signal.Signals(signum).name
        code = forced_exit_code(signum)
        logger.warning("received %s during shutdown: exiting at once with code %d", name, code)
        if self.before_forced_exit is not None:
            self.before_forced_exit(signum)
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stdout.flush()
        os._exit(code)


@contextmanager
def _stop_signals() -> Iterator[StopRequest]:
    """Route SIGINT and SIGTERM to a ``StopRequest`` while the block runs.

    Installed before ``trio.run`` so trio leaves SIGINT alone (it raises
    KeyboardInterrupt only when SIGINT still has Python's default handler)."""
    stop = StopRequest()
    previous = {signum: signal.signal(signum, stop.handle) for signum in STOP_SIGNALS}
    try:
        yield stop
    finally:
        stop.finish()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


async def _serve(
    config: NodeConfig, start_class: type, stop: StopRequest
) -> ServiceStartError | None:
    stop.attach()
    try:
        async with open_node(
            config.node_id,
            config.name,
            strict_codec=config.strict_codec,
            call_timeout=config.call_timeout,
            slow_handler=config.slow_handler,
            gc_threshold=config.gc_threshold,
        ) as node:
            logger.info(
                "node %r (id %d) starting %s", config.name, config.node_id, config.start_service
            )
            try:
                await _start_operator_services(node, config)
                for section, settings in config.sections:
                    await section.start(node, settings)
                await node.newservice(start_class, *config.start_args)
            except ServiceStartError as exc:
                return exc
            warn_if_fd_limit_low()
            notify_ready()
            async with trio.open_nursery() as watch:
                watch.start_soon(_watch_supervisor, stop)
                signum = await stop.wait()
                watch.cancel_scope.cancel()
            logger.info("received %s: stopping", signal.Signals(signum).name)
    finally:
        stop.finish()
    return None


async def _watch_supervisor(stop: StopRequest) -> None:
    """In a worker: stop, as on SIGTERM, once the supervisor is gone (``meshnet.supervisor``)."""
    fd = os.environ.get(LIFELINE_ENV)
    if fd is None:
        return
    await trio.lowlevel.wait_readable(int(fd))
    logger.warning("the supervisor is gone: stopping this worker")
    stop.request(signal.SIGTERM)


async def _start_operator_services(node: Node, config: NodeConfig) -> None:
    """The metrics endpoint and the debug console, if the config asks for them; first, so
    that they see the start service come up."""
    if config.metrics is not None:
        from meshnet.metrics import MetricsServer

        await node.newservice(MetricsServer, *config.metrics)
    if config.console is not None:
        from meshnet.console import ConsoleServer

        await node.newservice(ConsoleServer, *config.console, config.console_password)

"""Robots: simulated players, the load test of the hub and the whole game behind it.

Each robot connects (TCP or WebSocket), signs in (signing up first if it has no account
yet: user ``<prefix><n>``, password ``robot-password``) and logs in. Once every robot has
logged in (or failed to), they all ping, back to back, until the run's time is up: two
phases, so that pings do not starve the logins and each rate is measured on its own. The
time is a hard limit: when it is up (or the run is interrupted), every robot stops where
it is, and what was in flight is neither counted nor waited for. A robot stops at its
first error, which is counted by kind. A progress line on stderr shows the run; at the end
a ``Summary`` gives logins/s (over the login phase), pings/s (over the ping phase), ping
latency percentiles and the errors, leaving out what there were no samples for.

A ``busy`` error reply (the game cannot hash one more password right now) is not an
error: the robot waits and asks again, each wait a random time up to twice the last
(from ``FIRST_BACKOFF`` to ``MAX_BACKOFF`` seconds), and the summary counts these retries.
A robot that has not logged in ``login_deadline`` seconds (default 120) after it started
gives up, and that is counted as an error. ``ping_seconds`` ends the ping phase early.
"""

from __future__ import annotations

import errno
import math
import random
import resource
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import TextIO

import trio
import trio_websocket

from demo_game.connection import Answer, HubClient, open_hub
from meshnet.errors import MeshnetError

PASSWORD = "robot-password"
REQUEST_TIMEOUT = 30.0
"""Seconds a robot waits for any one answer before it counts a timeout and stops."""
LOGIN_DEADLINE = 120.0
"""Seconds a robot has to log in, busy answers and retries included, before it gives up."""
BUSY = "busy"
"""The error reply a robot retries after a while."""
FIRST_BACKOFF = 0.25
MAX_BACKOFF = 8.0
"""Bounds of the random wait before a robot asks again after ``busy``, in seconds."""
PROGRESS_EVERY = 0.25
BAR_WIDTH = 30
SPARE_FDS = 256
"""Open files the process needs besides one socket per robot."""


class RobotsError(MeshnetError):
    """The robots cannot run: too few file descriptors, no robot at all, or no time."""


class _Failed(Exception):
    """A robot's request was refused; the message is the error kind."""


@dataclass
class Tally:
    """What the robots did so far; shared by every robot of a run."""

    robots: int
    started: float
    settled: int = 0
    """Robots done with the login phase, logged in or failed."""
    everyone_settled: trio.Event = field(default_factory=trio.Event)
    pinging_since: float | None = None
    online: int = 0
    logins: int = 0
    retried: int = 0
    """Requests asked again after a ``busy`` answer."""
    last_login: float | None = None
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    interrupted_at: float | None = None

    def settle(self) -> None:
        """One more robot is done with the login phase."""
        self.settled += 1
        if self.settled == self.robots:
            self.pinging_since = trio.current_time()
            self.everyone_settled.set()


@dataclass(frozen=True)
class Summary:
    """What a run did. Rates and percentiles are None where there is nothing to measure."""

    robots: int
    transport: str
    seconds: float
    interrupted: bool
    """The run was stopped before its time was up (Ctrl-C)."""
    logins: int
    logins_per_s: float | None
    login_seconds: float
    logging_in: int
    """Robots still logging in when the run ended: neither logged in nor failed."""
    retried: int
    """Requests asked again after a ``busy`` answer."""
    pings: int
    pings_per_s: float | None
    ping_seconds: float
    p50_ms: float | None
    p99_ms: float | None
    errors: dict[str, int]

    def lines(self) -> list[str]:
        """The summary as printed: robots, logins, pings, ping latency, errors."""
        errors = ", ".join(f"{kind}: {n}" for kind, n in sorted(self.errors.items()))
        logins = f"logins: {self.logins}"
        if self.logins_per_s is not None:
            logins += f" in {self.login_seconds:.1f} s ({self.logins_per_s:.1f} logins/s)"
        if self.retried:
            logins += f"; {self.retried} busy answers retried"
        if self.logging_in:
            logins += f"; {self.logging_in} robots were still logging in at the end"
        pings = f"pings: {self.pings}"
        if self.pings_per_s is not None:
            pings += f" in {self.ping_seconds:.1f} s ({self.pings_per_s:.1f} pings/s)"
        latency = (
            "ping latency: no ping was answered"
            if self.p50_ms is None or self.p99_ms is None
            else f"ping latency: p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms"
        )
        return [
            f"robots: {self.robots} over {self.transport}, {self.seconds:.1f} s"
            + (" (interrupted)" if self.interrupted else ""),
            logins,
            pings,
            latency,
            f"errors: {sum(self.errors.values())}" + (f" ({errors})" if errors else ""),
        ]


async def run_robots(
    host: str,
    port: int,
    count: int,
    duration: float,
    *,
    ws: bool = False,
    prefix: str = "robot-",
    progress: TextIO | None = None,
    interrupt: trio.Event | None = None,
    login_deadline: float = LOGIN_DEADLINE,
    ping_seconds: float | None = None,
) -> Summary:
    """Run ``count`` robots against the hub at ``host:port`` for ``duration`` seconds.

    The run ends when the time is up, every robot has failed, ``ping_seconds`` of the ping
    phase have passed, or ``interrupt`` is set; whatever is still in flight then is
    dropped, not counted. A robot not logged in ``login_deadline`` seconds after it
    started gives up. With ``progress``, a progress line is kept there.
    """
    if count < 1:
        raise RobotsError("at least one robot is needed")
    for name, value in (("duration", duration), ("login deadline", login_deadline)):
        if not (0 < value < math.inf):
            raise RobotsError(f"the {name} must be a number of seconds above 0, not {value}")
    if ping_seconds is not None and not (0 < ping_seconds < math.inf):
        raise RobotsError(f"the ping time must be a number of seconds above 0, not {ping_seconds}")
    tally = Tally(count, trio.current_time())
    deadline = tally.started + duration
    line = _ProgressLine(progress)
    with trio.move_on_at(deadline):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_show_progress, tally, deadline, line)
            if interrupt is not None:
                nursery.start_soon(_interrupt_on, interrupt, tally, nursery.cancel_scope)
            if ping_seconds is not None:
                nursery.start_soon(_end_pings_after, ping_seconds, tally, nursery.cancel_scope)
            async with trio.open_nursery() as robots:
                for index in range(count):
                    robot = partial(_robot, tally, host, port, ws, login_deadline)
                    robots.start_soon(robot, f"{prefix}{index}")
            nursery.cancel_scope.cancel()
    # when the robots were stopped, not when they had closed their connections
    ended = min(trio.current_time(), deadline, tally.interrupted_at or math.inf)
    if ping_seconds is not None and tally.pinging_since is not None:
        ended = min(ended, tally.pinging_since + ping_seconds)
    line.finish(_progress_line(tally, ended, deadline))
    return _summarize(tally, "websocket" if ws else "tcp", ended)


def ensure_fd_limit(robots: int) -> None:
    """Raise this process's open-file limit to what ``robots`` connections need, or fail."""
    needed = robots + SPARE_FDS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise RobotsError(
            f"{robots} robots need {needed} open files but the hard limit is {hard}; "
            "raise it (ulimit -Hn) or run fewer robots"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


async def _robot(
    tally: Tally, host: str, port: int, ws: bool, login_deadline: float, user: str
) -> None:
    """Log in, wait for every robot to be done logging in, then ping until cancelled."""
    settled = False
    give_up_at = trio.current_time() + login_deadline
    try:
        async with open_hub(host, port, ws=ws) as hub:
            with trio.move_on_at(give_up_at) as logging_in:
                await _log_in(hub, user, tally)
            if logging_in.cancelled_caught:
                raise _Failed(f"not logged in within {login_deadline:g}s")
            tally.logins += 1
            tally.last_login = trio.current_time()
            tally.settle()
            settled = True
            tally.online += 1
            try:
                await tally.everyone_settled.wait()
                await _ping_forever(hub, tally)
            finally:
                tally.online -= 1
    except _Failed as failure:
        kind = str(failure)
    except trio.TooSlowError:
        kind = f"no answer within {REQUEST_TIMEOUT:g}s"
    except OSError as exc:
        kind = _os_error_kind(exc)
    except (MeshnetError, trio.BrokenResourceError, trio_websocket.HandshakeError) as exc:
        kind = type(exc).__name__
    tally.errors[kind] += 1
    if not settled:
        tally.settle()


async def _log_in(hub: HubClient, user: str, tally: Tally) -> None:
    credentials = {"user": user, "password": PASSWORD}
    if not (
        await _ask(hub, tally, "signin", credentials)
        or (
            await _ask(hub, tally, "signup", credentials)
            and await _ask(hub, tally, "signin", credentials)
        )
    ):
        raise _Failed("signin refused")
    if not await _ask(hub, tally, "login"):
        raise _Failed("login refused")


def _os_error_kind(exc: OSError) -> str:
    """``OSError ECONNREFUSED``: the errno's name, looked for also where trio's "all
    attempts to connect failed" keeps the attempts' errors."""
    causes = exc.__cause__.exceptions if isinstance(exc.__cause__, ExceptionGroup) else ()
    code = next((e.errno for e in (exc, *causes) if isinstance(e, OSError) and e.errno), None)
    return f"OSError {errno.errorcode.get(code, code) if code else exc}"


async def _ping_forever(hub: HubClient, tally: Tally) -> None:
    """Ping back to back until cancelled (the end of the run) or refused."""
    while True:
        sent = trio.current_time()
        answer = await _request(hub, "ping")
        if not answer.ok:
            raise _Failed(f"ping: {answer.reply.error}")
        tally.latencies.append(trio.current_time() - sent)


async def _ask(hub: HubClient, tally: Tally, name: str, body: dict[str, str] | None = None) -> bool:
    """True if the request succeeded, False for ``ok: false``; ``busy`` is asked again
    after a while, any other error reply fails the robot."""
    backoff = FIRST_BACKOFF
    while (answer := await _request(hub, name, body)).reply.error == BUSY:
        tally.retried += 1
        await trio.sleep(random.uniform(0, backoff))
        backoff = min(2 * backoff, MAX_BACKOFF)
    if not answer.reply.ok:
        raise _Failed(f"{name}: {answer.reply.error}")
    return answer.ok


async def _request(hub: HubClient, name: str, body: dict[str, str] | None = None) -> Answer:
    with trio.fail_after(REQUEST_TIMEOUT):
        return await hub.request(name, body)


async def _end_pings_after(seconds: float, tally: Tally, scope: trio.CancelScope) -> None:
    await tally.everyone_settled.wait()
    await trio.sleep(seconds)
    scope.cancel()


async def _interrupt_on(interrupt: trio.Event, tally: Tally, scope: trio.CancelScope) -> None:
    await interrupt.wait()
    tally.interrupted_at = trio.current_time()
    scope.cancel()


async def _show_progress(tally: Tally, deadline: float, line: _ProgressLine) -> None:
    while True:
        line.show(_progress_line(tally, trio.current_time(), deadline))
        await trio.sleep(PROGRESS_EVERY)


class _ProgressLine:
    """A line rewritten in place (``\\r``), each text padded to cover the longest before it
    so that no stale characters are left behind; nothing at all without an output."""

    def __init__(self, out: TextIO | None) -> None:
        self._out = out
        self._width = 0

    def show(self, text: str) -> None:
        self._write(text, "\r")

    def finish(self, text: str) -> None:
        """The last text, and the end of the line."""
        self._write(text, "\n")

    def _write(self, text: str, end: str) -> None:
        if self._out is None:
            return
        self._width = max(self._width, len(text))
        print(text.ljust(self._width), end=end, file=self._out, flush=True)


def _progress_line(tally: Tally, now: float, deadline: float) -> str:
    duration = deadline - tally.started
    done = min(1.0, (now - tally.started) / duration)
    filled = round(done * BAR_WIDTH)
    phase = "pinging" if tally.everyone_settled.is_set() else "logging in"
    return (
        f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {now - tally.started:5.1f}/{duration:g}s"
        f"  {phase:10}  online {tally.online}/{tally.robots}  logins {tally.logins}"
        f"  pings {len(tally.latencies)}  errors {sum(tally.errors.values())}"
    )


def _summarize(tally: Tally, transport: str, ended: float) -> Summary:
    login_time = (tally.last_login or ended) - tally.started
    ping_time = ended - (tally.pinging_since or ended)
    latencies = sorted(tally.latencies)
    pings = len(latencies)
    return Summary(
        robots=tally.robots,
        transport=transport,
        seconds=ended - tally.started,
        interrupted=tally.interrupted_at is not None,
        logins=tally.logins,
        logins_per_s=_rate(tally.logins, login_time),
        login_seconds=login_time,
        logging_in=tally.robots - tally.settled,
        retried=tally.retried,
        pings=pings,
        pings_per_s=_rate(pings, ping_time),
        ping_seconds=ping_time,
        p50_ms=_percentile_ms(latencies, 0.50),
        p99_ms=_percentile_ms(latencies, 0.99),
        errors=dict(tally.errors),
    )


def _rate(count: int, seconds: float) -> float | None:
    return count / seconds if count and seconds > 0 else None


def _percentile_ms(ordered: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of an ascending list of seconds, in ms (None if empty)."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)] * 1000

"""Robots: simulated players, the load test of the hub and the whole game behind it.

Each robot connects (TCP or WebSocket), signs in (signing up first if it has no account
yet: user ``<prefix><n>``, password ``robot-password``) and logs in. Once every robot has
logged in (or failed to), they all ping, back to back, until the run's time is up (at
least once each, even if the logins took all of it): two
phases, so that pings do not starve the logins and each rate is measured on its own. A
robot stops at its first error, which is counted by kind. A progress line on stderr shows
the run; at the end a ``Summary`` gives logins/s (over the login phase), pings/s (over the
ping phase), ping latency percentiles and the errors.
"""

from __future__ import annotations

import errno
import math
import resource
from collections import Counter
from dataclasses import dataclass, field
from typing import TextIO

import trio
import trio_websocket

from demo_game.connection import Answer, HubClient, open_hub
from meshnet.errors import MeshnetError

PASSWORD = "robot-password"
REQUEST_TIMEOUT = 30.0
"""Seconds a robot waits for any one answer before it counts a timeout and stops."""
PROGRESS_EVERY = 0.25
BAR_WIDTH = 30
SPARE_FDS = 256
"""Open files the process needs besides one socket per robot."""


class RobotsError(MeshnetError):
    """The robots cannot run: too few file descriptors, or no robot at all."""


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
    last_login: float | None = None
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def settle(self) -> None:
        """One more robot is done with the login phase."""
        self.settled += 1
        if self.settled == self.robots:
            self.pinging_since = trio.current_time()
            self.everyone_settled.set()


@dataclass(frozen=True)
class Summary:
    robots: int
    transport: str
    seconds: float
    logins: int
    logins_per_s: float
    login_seconds: float
    pings: int
    pings_per_s: float
    ping_seconds: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]

    def lines(self) -> list[str]:
        errors = ", ".join(f"{kind}: {n}" for kind, n in sorted(self.errors.items()))
        return [
            f"robots: {self.robots} over {self.transport}, {self.seconds:.1f} s",
            f"logins: {self.logins} in {self.login_seconds:.1f} s"
            f" ({self.logins_per_s:.1f} logins/s)",
            f"pings: {self.pings} in {self.ping_seconds:.1f} s ({self.pings_per_s:.1f} pings/s)",
            f"ping latency: p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms",
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
) -> Summary:
    """Run ``count`` robots against the hub at ``host:port`` for ``duration`` seconds;
    with ``progress``, keep a progress line there."""
    if count < 1:
        raise RobotsError("at least one robot is needed")
    tally = Tally(count, trio.current_time())
    deadline = tally.started + duration
    async with trio.open_nursery() as nursery:
        if progress is not None:
            nursery.start_soon(_show_progress, tally, deadline, progress)
        async with trio.open_nursery() as robots:
            for index in range(count):
                robots.start_soon(_robot, tally, deadline, host, port, ws, f"{prefix}{index}")
        nursery.cancel_scope.cancel()
    if progress is not None:
        print(_progress_line(tally, trio.current_time(), deadline), file=progress, flush=True)
    return _summarize(tally, "websocket" if ws else "tcp", trio.current_time())


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


async def _robot(tally: Tally, deadline: float, host: str, port: int, ws: bool, user: str) -> None:
    settled = False
    try:
        async with open_hub(host, port, ws=ws) as hub:
            await _log_in(hub, user)
            tally.logins += 1
            tally.last_login = trio.current_time()
            tally.settle()
            settled = True
            tally.online += 1
            try:
                with trio.move_on_at(deadline):
                    await tally.everyone_settled.wait()
                await _ping_until(hub, deadline, tally)
            finally:
                tally.online -= 1
    except _Failed as failure:
        tally.errors[str(failure)] += 1
    except trio.TooSlowError:
        tally.errors[f"no answer within {REQUEST_TIMEOUT:g}s"] += 1
    except OSError as exc:
        tally.errors[_os_error_kind(exc)] += 1
    except (MeshnetError, trio.BrokenResourceError, trio_websocket.HandshakeError) as exc:
        tally.errors[type(exc).__name__] += 1
    finally:
        if not settled:
            tally.settle()


async def _log_in(hub: HubClient, user: str) -> None:
    credentials = {"user": user, "password": PASSWORD}
    if not (
        await _ask(hub, "signin", credentials)
        or (await _ask(hub, "signup", credentials) and await _ask(hub, "signin", credentials))
    ):
        raise _Failed("signin refused")
    if not await _ask(hub, "login"):
        raise _Failed("login refused")


def _os_error_kind(exc: OSError) -> str:
    """``OSError ECONNREFUSED``: the errno's name, looked for also where trio's "all
    attempts to connect failed" keeps the attempts' errors."""
    causes = exc.__cause__.exceptions if isinstance(exc.__cause__, ExceptionGroup) else ()
    code = next((e.errno for e in (exc, *causes) if isinstance(e, OSError) and e.errno), None)
    return f"OSError {errno.errorcode.get(code, code) if code else exc}"


async def _ping_until(hub: HubClient, deadline: float, tally: Tally) -> None:
    """Ping back to back until ``deadline``, at least once."""
    while True:
        sent = trio.current_time()
        answer = await _request(hub, "ping")
        if not answer.ok:
            raise _Failed(f"ping: {answer.reply.error}")
        tally.latencies.append(trio.current_time() - sent)
        if sent >= deadline:
            return


async def _ask(hub: HubClient, name: str, body: dict[str, str] | None = None) -> bool:
    """True if the request succeeded, False for ``ok: false``; an error reply fails the robot."""
    answer = await _request(hub, name, body)
    if not answer.reply.ok:
        raise _Failed(f"{name}: {answer.reply.error}")
    return answer.ok


async def _request(hub: HubClient, name: str, body: dict[str, str] | None = None) -> Answer:
    with trio.fail_after(REQUEST_TIMEOUT):
        return await hub.request(name, body)


async def _show_progress(tally: Tally, deadline: float, out: TextIO) -> None:
    while True:
        print(_progress_line(tally, trio.current_time(), deadline), end="\r", file=out, flush=True)
        await trio.sleep(PROGRESS_EVERY)


def _progress_line(tally: Tally, now: float, deadline: float) -> str:
    duration = deadline - tally.started
    done = 1.0 if duration <= 0 else min(1.0, (now - tally.started) / duration)
    filled = round(done * BAR_WIDTH)
    phase = "pinging" if tally.everyone_settled.is_set() else "logging in"
    return (
        f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {now - tally.started:5.1f}/{duration:g}s"
        f"  {phase:10}  online {tally.online}/{tally.robots}  logins {tally.logins}"
        f"  pings {len(tally.latencies)}  errors {sum(tally.errors.values())} "
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
        logins=tally.logins,
        logins_per_s=tally.logins / login_time if login_time > 0 else 0.0,
        login_seconds=login_time,
        pings=pings,
        pings_per_s=pings / ping_time if ping_time > 0 else 0.0,
        ping_seconds=ping_time,
        p50_ms=_percentile(latencies, 0.50) * 1000,
        p99_ms=_percentile(latencies, 0.99) * 1000,
        errors=dict(tally.errors),
    )


def _percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]

"""Robots: a run's summary, its time limit and progress line, the command, and a client
breaking the protocol beside a run."""

import io
import itertools
import math
import signal
import socket
import subprocess
import sys
from contextlib import asynccontextmanager

import pytest
import trio
from demo_setup import HOST, start_demo

from demo_game import robots
from demo_game.connection import Answer
from demo_game.proto import proto
from demo_game.robots import RobotsError, Summary, run_robots
from meshnet.framing import Splitter, pack
from meshnet.gate.proto import Reply


async def test_robots_log_in_and_ping_and_sum_it_up(node, tmp_path):
    demo = await start_demo(node, tmp_path / "accounts.sqlite3")
    summary = await run_robots(HOST, demo.hub_ws, 5, 0.5, ws=True)
    assert (summary.robots, summary.transport, summary.logins, summary.errors) == (
        5,
        "websocket",
        5,
        {},
    )
    assert summary.pings > 0 and 0 < summary.p50_ms <= summary.p99_ms
    again = await run_robots(HOST, demo.hub, 5, 0.1)  # the accounts exist now: signin only
    assert (again.logins, again.errors) == (5, {})


async def test_a_malformed_packet_on_one_connection_does_not_disturb_a_robot_run(node, tmp_path):
    demo = await start_demo(node, tmp_path / "accounts.sqlite3")
    summaries: list[Summary] = []

    async def robots() -> None:
        summaries.append(await run_robots(HOST, demo.hub, 20, 1.0))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(robots)
        await trio.sleep(0.3)
        async with await trio.open_tcp_stream(HOST, demo.hub) as bad:
            await bad.send_all(pack(b"\xff\x00 not CBOR"))
            received = b""
            while chunk := await bad.receive_some():  # until the hub closes the connection
                received += chunk
        [reply] = Splitter().feed(received)
        decoded = proto.decode_reply(reply)
        assert not decoded.ok and "invalid CBOR" in decoded.error
    [summary] = summaries
    assert (summary.logins, summary.errors) == (20, {})
    assert summary.pings > 0


async def test_a_robot_that_cannot_connect_is_counted(tmp_path):
    summary = await run_robots(HOST, 1, 2, 0.1)
    assert summary.logins == 0
    assert summary.errors == {"OSError ECONNREFUSED": 2}


async def test_the_robots_command_prints_a_summary(node, tmp_path):
    demo = await start_demo(node, tmp_path / "accounts.sqlite3")
    command = [sys.executable, "-m", "demo_game", "robots", "--port", str(demo.hub)]
    done = await trio.run_process(
        [*command, "--count", "3", "--duration", "0.3"], capture_stdout=True, capture_stderr=True
    )
    lines = done.stdout.decode().splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "robots",
        "logins",
        "pings",
        "ping latency",
        "errors",
    ]
    assert lines[0].startswith("robots: 3 over tcp, ") and lines[-1] == "errors: 0"
    assert "online 0/3  logins 3" in done.stderr.decode()  # the progress line


class ScriptedHub:
    """Stands in for a hub connection: each request name is answered by its script, an
    async function of the body returning the reply body (or never returning)."""

    def __init__(self, scripts):
        self.scripts = scripts

    async def request(self, name, body=None):
        reply = await self.scripts[name](body)
        if isinstance(reply, Exception):  # an error reply with the exception's text
            return Answer(Reply(None, 1, False, None, str(reply)), [])
        return Answer(Reply(None, 1, True, reply, None), [])


def answer(body, after=0.0):
    async def script(_):
        await trio.sleep(after)
        return body

    return script


async def never(_):
    await trio.sleep_forever()


LOGS_IN = {"signin": answer({"ok": True}), "login": answer({"ok": True})}


def busy_then(times, body):
    """Answers ``busy`` the first ``times`` requests (of every robot together), then ``body``."""
    left = [times]

    async def script(_):
        if left[0]:
            left[0] -= 1
            return Exception("busy")
        return body

    return script


@pytest.fixture
def hub(monkeypatch):
    """``hub(scripts)``: from then on every robot connects to a ScriptedHub."""

    def use(scripts):
        @asynccontextmanager
        async def open_scripted(host, port, *, ws=False):
            yield ScriptedHub(scripts)

        monkeypatch.setattr(robots, "open_hub", open_scripted)

    return use


async def test_a_run_ends_at_its_duration_when_nothing_is_answered(hub, autojump_clock):
    hub({"signin": never})
    started = trio.current_time()
    summary = await run_robots(HOST, 1, 3, 5.0)
    assert trio.current_time() - started == summary.seconds == 5.0
    assert (summary.logins, summary.logging_in, summary.errors) == (0, 3, {})
    assert summary.lines()[1] == "logins: 0; 3 robots were still logging in at the end"


async def test_a_run_ends_at_its_duration_when_pings_go_unanswered(hub, autojump_clock):
    hub({**LOGS_IN, "ping": never})
    started = trio.current_time()
    summary = await run_robots(HOST, 1, 3, 5.0)
    assert trio.current_time() - started == 5.0
    assert (summary.logins, summary.pings) == (3, 0)
    assert summary.pings_per_s is summary.p50_ms is summary.p99_ms is None
    assert summary.lines()[2:4] == ["pings: 0", "ping latency: no ping was answered"]


async def test_only_pings_answered_within_the_duration_are_counted(hub, autojump_clock):
    hub({**LOGS_IN, "ping": answer({}, after=0.3)})
    summary = await run_robots(HOST, 1, 2, 1.0)
    assert summary.seconds == 1.0
    assert summary.pings == 2 * 3  # at 0.3, 0.6 and 0.9 s; the one due at 1.2 s is dropped
    assert summary.p50_ms == summary.p99_ms == pytest.approx(300.0)
    assert summary.lines()[3] == "ping latency: p50 300.00 ms, p99 300.00 ms"


async def test_an_interrupted_run_sums_up_what_it_did_so_far(hub, autojump_clock):
    hub({**LOGS_IN, "ping": answer({}, after=0.3)})
    interrupt = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: _set_after(interrupt, 2.0))
        summary = await run_robots(HOST, 1, 1, 60.0, interrupt=interrupt)
    assert (summary.interrupted, summary.seconds, summary.pings) == (True, 2.0, 6)
    assert summary.lines()[0] == "robots: 1 over tcp, 2.0 s (interrupted)"


async def _set_after(event, seconds):
    await trio.sleep(seconds)
    event.set()


async def test_the_progress_line_never_leaves_stale_characters(hub, autojump_clock):
    hub({**LOGS_IN, "ping": never})  # online 10/10 while the run lasts, online 0/10 at its end
    out = io.StringIO()
    await run_robots(HOST, 1, 10, 1.0, progress=out)
    assert out.getvalue().endswith("\n")
    shown = out.getvalue().removesuffix("\n").split("\r")
    assert "online 10/10" in shown[-2] and "online 0/10" in shown[-1]
    assert all(len(later) >= len(earlier) for earlier, later in itertools.pairwise(shown))


async def test_robots_ask_again_after_busy_with_a_growing_random_wait(hub, autojump_clock):
    hub({**LOGS_IN, "signin": busy_then(6, {"ok": True}), "ping": answer({}, after=0.5)})
    summary = await run_robots(HOST, 1, 1, 60.0, ping_seconds=1.0)
    assert (summary.logins, summary.retried, summary.errors) == (1, 6, {})
    longest = sum(min(robots.FIRST_BACKOFF * 2**n, robots.MAX_BACKOFF) for n in range(6))
    assert 0 < summary.login_seconds <= longest
    assert "; 6 busy answers retried" in summary.lines()[1]


async def test_a_robot_still_busy_at_its_login_deadline_gives_up_as_an_error(hub, autojump_clock):
    hub({**LOGS_IN, "signin": busy_then(10**9, {"ok": True})})
    summary = await run_robots(HOST, 1, 3, 300.0)
    assert summary.seconds == pytest.approx(120.0, abs=0.1)  # the default deadline
    assert summary.logins == 0
    assert summary.errors == {"not logged in within 120s": 3}


async def test_a_run_ends_ping_seconds_into_the_ping_phase(hub, autojump_clock):
    hub({**LOGS_IN, "signin": answer({"ok": True}, after=2.0), "ping": answer({}, after=0.1)})
    summary = await run_robots(HOST, 1, 2, 60.0, ping_seconds=3.0)
    assert summary.seconds == pytest.approx(5.0)
    assert summary.ping_seconds == pytest.approx(3.0)


@pytest.mark.parametrize("count, duration", [(0, 1.0), (1, 0.0), (1, -1.0), (1, math.inf)])
async def test_a_run_needs_robots_and_time(count, duration):
    with pytest.raises(RobotsError):
        await run_robots(HOST, 1, count, duration)


@pytest.mark.parametrize(
    "option, message",
    [
        (["--duration", "-1"], "argument --duration: must be above 0, not -1"),
        (["--duration", "nan"], "argument --duration: must be above 0, not nan"),
        (["--duration", "soon"], "argument --duration: 'soon' is not a number"),
        (["--count", "0"], "argument --count: must be above 0, not 0"),
        (["--count", "1.5"], "argument --count: '1.5' is not a whole number"),
    ],
)
def test_the_robots_command_refuses_a_count_or_duration_below_one(option, message):
    done = subprocess.run(
        [sys.executable, "-m", "demo_game", "robots", "--count", "1", *option],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == f"python -m demo_game robots: error: {message}"


def test_ctrl_c_prints_the_summary_so_far_and_exits_130():
    with socket.create_server((HOST, 0)) as silent:  # accepts connections, never answers
        robots_run = subprocess.Popen(
            [sys.executable, "-m", "demo_game", "robots", "--count", "2", "--duration", "600"]
            + ["--port", str(silent.getsockname()[1])],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        progress = b""
        while b"online" not in progress:  # the run has started, Ctrl-C is being listened for
            chunk = robots_run.stderr.read1(4096)
            assert chunk, "the robots exited before showing progress"
            progress += chunk
        robots_run.send_signal(signal.SIGINT)
        out, err = robots_run.communicate(timeout=30)
    assert robots_run.returncode == 130
    assert b"Traceback" not in err
    lines = out.decode().splitlines()
    assert lines[0].startswith("robots: 2 over tcp, ") and lines[0].endswith(" (interrupted)")
    assert lines[1:] == [
        "logins: 0; 2 robots were still logging in at the end",
        "pings: 0",
        "ping latency: no ping was answered",
        "errors: 0",
    ]

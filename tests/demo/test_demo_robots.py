"""Robots: a run's summary, and a client breaking the protocol beside a run."""

import sys

import trio
from demo_setup import HOST, start_demo

from demo_game.proto import proto
from demo_game.robots import Summary, run_robots
from meshnet.gate.framing import Splitter, pack


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

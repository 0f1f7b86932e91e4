"""``[node] workers = N``: the supervisor and its worker processes, for real.

Each test runs ``python -m meshnet node CONFIG`` with two workers of the echo gate of
``examples/echo_workers.py`` and watches the processes: the supervisor's children
(``/proc``), their exit, its log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
from workers_setup import HOST, WAIT, PortPicker, connect_to_worker, netstat, worker_pids

from meshnet.framing import Splitter, pack

WORKERS = 2
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass
class Workers:
    supervisor: trio.Process
    log: Path
    port: int
    consoles: list[int]

    def children(self) -> list[int]:
        """The pids of the supervisor's workers now, by index."""
        pids = worker_pids(self.supervisor.pid)
        return [pids[index] for index in sorted(pids)]

    async def wait_for_children(self, count: int, besides: set[int] = frozenset()) -> list[int]:
        """Wait until ``count`` workers run, none of them among ``besides``, and each
        answers on its console."""
        with trio.fail_after(WAIT * 2):
            while True:
                children = self.children()
                if len(children) == count and not set(children) & besides:
                    try:
                        for console in self.consoles:
                            await netstat(console)
                        return children
                    except OSError:
                        pass
                await trio.sleep(0.05)


def config_text(port: int, console: int, links: int) -> str:
    return (
        '[node]\nname = "echo"\nid = 1\n'
        f'workers = {WORKERS}\npaths = [{str(EXAMPLES)!r}]\nconsole = "{HOST}:{console}"\n'
        f'[start]\nservice = "echo_workers:Echo"\n'
        f'args = [{{ address = "{HOST}", port = {port} }}]\n'
        f'[cluster]\nlisten = "{HOST}:{links}"\n'
    )


@pytest.fixture
async def workers(tmp_path: Path):
    picker = PortPicker()
    port, console, links = picker.block(), picker.block(WORKERS), picker.block(WORKERS)
    config = tmp_path / "echo.toml"
    config.write_text(config_text(port, console, links))
    log = tmp_path / "supervisor.log"
    with log.open("wb") as output:
        supervisor = await trio.lowlevel.open_process(
            [sys.executable, "-m", "meshnet", "node", str(config)],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Workers(supervisor, log, port, [console + i for i in range(WORKERS)])
    try:
        await running.wait_for_children(WORKERS)
        yield running
    finally:
        if supervisor.returncode is None:
            supervisor.send_signal(signal.SIGTERM)
            with trio.move_on_after(WAIT):
                await supervisor.wait()
            if supervisor.returncode is None:
                supervisor.kill()


async def echo_once(stream: trio.SocketStream, payload: bytes) -> bytes:
    splitter = Splitter()
    await stream.send_all(pack(payload))
    with trio.fail_after(WAIT):
        while True:
            packets = splitter.feed(await stream.receive_some())
            if packets:
                return packets[0]


async def gone(pids: list[int]) -> None:
    """Wait until none of ``pids`` runs (exited, or a zombie nobody reaped yet)."""
    with trio.fail_after(WAIT * 2):
        while any(_running(pid) for pid in pids):
            await trio.sleep(0.05)


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


async def test_each_worker_serves_connections_to_the_shared_port(workers):
    for index in range(WORKERS):
        stream, _ = await connect_to_worker(workers.port, workers.consoles, index.__eq__)
        async with stream:
            assert await echo_once(stream, f"to worker {index}".encode()) == (
                f"to worker {index}".encode()
            )


async def test_a_killed_worker_is_started_again_and_logged(workers):
    before = workers.children()
    os.kill(before[0], signal.SIGKILL)
    after = await workers.wait_for_children(WORKERS, besides={before[0]})

    assert before[1] in after
    assert "was killed by SIGKILL; starting it again" in workers.log.read_text()
    stream, _ = await connect_to_worker(workers.port, workers.consoles, lambda index: True)
    async with stream:
        assert await echo_once(stream, b"still here") == b"still here"


async def test_ctrl_c_stops_every_worker_cleanly_and_the_supervisor_exits_0(workers):
    children = workers.children()
    # As a terminal's Ctrl-C: SIGINT to the whole foreground process group.
    os.killpg(workers.supervisor.pid, signal.SIGINT)
    with trio.fail_after(WAIT * 2):
        assert await workers.supervisor.wait() == 0
    await gone(children)
    log = workers.log.read_text()
    assert log.count("received SIGTERM: stopping") == WORKERS
    assert "exiting at once" not in log  # each worker got one signal, not two


async def test_the_workers_stop_when_the_supervisor_is_killed(workers):
    children = workers.children()
    workers.supervisor.kill()
    await workers.supervisor.wait()
    await gone(children)


async def test_a_worker_that_cannot_start_stops_them_all_with_exit_code_1(tmp_path):
    picker = PortPicker()
    port, console, links = picker.block(), picker.block(WORKERS), picker.block(WORKERS)
    config = tmp_path / "echo.toml"
    config.write_text(config_text(port, console, links))
    with trio.socket.socket() as squatter:  # worker 1's link port is taken
        await squatter.bind((HOST, links + 1))
        squatter.listen()
        with trio.fail_after(WAIT * 3):
            done = await trio.run_process(
                [sys.executable, "-m", "meshnet", "node", str(config)],
                capture_stderr=True,
                check=False,
            )
    assert done.returncode == 1
    assert b"worker 1 could not start (exited with code 1): stopping all workers" in done.stderr

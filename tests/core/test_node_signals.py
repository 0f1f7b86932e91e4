"""Stop signals: the first stops the node cleanly with exit code 0; a second during that
shutdown ends the process at once with 128 + the signal, without a traceback."""

import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

STUCK_SERVICE = '''
import trio
from meshnet import Service

class Stuck(Service):
    """Its exit hook never ends unless the file it waits for appears."""

    async def init(self, release):
        self.release = release
        print("started", flush=True)

    async def on_exit(self):
        print("exit hook running", flush=True)
        while not await trio.Path(self.release).exists():
            await trio.sleep(0.01)
        print("exit hook done", flush=True)
'''


def start_stuck_node(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    (tmp_path / "stuck.py").write_text(STUCK_SERVICE)
    release = tmp_path / "release"
    config = tmp_path / "node.toml"
    config.write_text(
        f'[node]\nname = "stuck"\nid = 1\npaths = ["{tmp_path}"]\n'
        f'[start]\nservice = "stuck:Stuck"\nargs = ["{release}"]\n'
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "meshnet", "node", str(config)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline() == "started\n"
    return process, release


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_during_shutdown_exits_at_once_with_128_plus_the_signal(tmp_path, signum):
    process, _ = start_stuck_node(tmp_path)
    process.send_signal(signum)
    assert process.stdout.readline() == "exit hook running\n"
    process.send_signal(signum)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 128 + signum
    assert "exit hook done" not in out
    assert "Traceback" not in err
    name = signal.Signals(signum).name
    assert f"received {name} during shutdown: exiting at once with code {128 + signum}" in err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_one_signal_waits_for_the_exit_hooks_and_exits_0(tmp_path, signum):
    process, release = start_stuck_node(tmp_path)
    process.send_signal(signum)
    assert process.stdout.readline() == "exit hook running\n"
    release.touch()
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0
    assert out == "exit hook done\n"
    assert "Traceback" not in err

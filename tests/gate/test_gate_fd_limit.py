"""At start, a node raises its file descriptor limit toward what its listeners may hold,
and warns when the hard limit keeps it below."""

import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GATE_SERVICE = """
from meshnet import Service
from meshnet.gate import GateServer

class Main(Service):
    async def init(self):
        await self.newservice(GateServer, {"address": "127.0.0.1", "port": 0, "maxclient": 1000})
        print("started", flush=True)
"""


def run_node(tmp_path: Path, soft: int, hard: int) -> str:
    """Start a node with a 1000-client gate under the fd limit (soft, hard); return its log."""
    (tmp_path / "gated.py").write_text(GATE_SERVICE)
    config = tmp_path / "node.toml"
    config.write_text(
        f'[node]\nname = "n"\nid = 1\npaths = ["{tmp_path}"]\n[start]\nservice = "gated:Main"\n'
    )
    node = subprocess.Popen(
        [sys.executable, "-m", "meshnet", "node", str(config)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)),
    )
    assert node.stdout.readline() == "started\n"
    node.send_signal(signal.SIGINT)
    _, log = node.communicate(timeout=20)
    assert node.returncode == 0, log
    return log


def test_a_hard_limit_below_the_listeners_caps_is_warned_about(tmp_path):
    log = run_node(tmp_path, 256, 256)
    assert "the file descriptor limit is 256, below the 1065 the listeners may need" in log
    assert "ulimit -n 1065" in log


@pytest.mark.skipif(
    resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 2000, reason="needs a hard limit of 2000"
)
def test_the_soft_limit_is_raised_as_far_as_needed(tmp_path):
    log = run_node(tmp_path, 256, 2000)
    assert "raised the file descriptor limit from 256 to 1065" in log
    assert "below the" not in log

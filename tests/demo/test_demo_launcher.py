"""``python -m demo_game demo`` (what ``make demo`` runs): a node in a child process, the
client once against it, then the node kept until Ctrl-C."""

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from demo_setup import CHEAP_SCRYPT, HOST, WAIT

from demo_game.launcher import free_port, node_config, start_node, stop_node, wait_listening

READY = "The demo node is running; Ctrl-C stops it. It listens on:"


def demo_config(tmp_path: Path, hub: int, name: str = "node.toml") -> Path:
    """A demo node config with its hub's TCP port ``hub``, every other port free."""
    listen = {"address": HOST, "port": 0}
    config = tmp_path / name
    settings = {
        "hub": {"address": HOST, "port": hub, "ws_port": 0},
        "login": listen,
        "msgserver": {**listen, "servername": "demo"},
        "web": listen,
        "accounts": {"path": str(tmp_path / f"{name}.sqlite3"), **CHEAP_SCRYPT},
    }
    config.write_text(node_config(settings, log_level="WARNING"))
    return config


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
async def test_demo_runs_the_client_and_stops_on_a_stop_signal(tmp_path, number):
    hub = free_port()
    config = demo_config(tmp_path, hub)
    command = [sys.executable, "-m", "demo_game", "demo", "--config", str(config)]
    demo = await trio.lowlevel.open_process(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        output = ""
        with trio.fail_after(WAIT * 3):
            while READY not in output:
                chunk = await demo.stdout.receive_some()
                assert chunk, f"demo ended early:\n{output}"
                output += chunk.decode()
        demo.send_signal(number)
        with trio.fail_after(WAIT * 3):
            assert await demo.wait() == 0
    finally:
        if demo.returncode is None:
            demo.kill()
    lines = output.splitlines()
    client = [line for line in lines[: lines.index(READY)] if line]
    python, _, user = client[0].removeprefix("$ ").partition(" -m demo_game client --user ")
    assert Path(python).absolute() == Path(sys.executable)  # its own Python, as typed here
    assert user.startswith("demo-")
    assert client[1:] == [
        'signin: ok {"ok": false}',
        'signup: ok {"ok": true}',
        'signin: ok {"ok": true}',
        "ping: error not logged in",
        *[line for line in client if line.startswith("push: ")],
        'login: ok {"ok": true}',
        "ping: ok {}",
    ]
    assert f"  hub, TCP          {HOST}:{hub}" in lines


def test_demo_fails_when_another_node_holds_its_port(tmp_path):
    hub = free_port()
    other = start_node(demo_config(tmp_path, hub, "other.toml"))
    try:
        wait_listening(other, HOST, hub)
        command = [
            sys.executable,
            *("-m", "demo_game", "demo", "--config", str(demo_config(tmp_path, hub))),
        ]
        demo = subprocess.run(command, capture_output=True, text=True, timeout=WAIT * 3)
    finally:
        assert stop_node(other) == 0
    assert demo.returncode == 1
    assert READY not in demo.stdout
    assert "demo_game: error: the node exited with code 1 before it was ready" in demo.stderr

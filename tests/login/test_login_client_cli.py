"""``python -m meshnet login-client`` against a node booted from examples/login.toml.

Each test boots its own node (so subids start at 1) from a copy of the config whose start
arguments put both servers on free loopback ports; the example's Main logs where they listen.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshnet.login.cli import host_port

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
CONFIG = EXAMPLES / "login.toml"
LISTENING = re.compile(
    r"login server on 127\.0\.0\.1:(\d+), msgserver 'sample' on 127\.0\.0\.1:(\d+)"
)


@pytest.fixture
def ports(tmp_path):
    text = CONFIG.read_text()
    text, args = re.subn(r"(?m)^args = .*$", 'args = ["127.0.0.1", 0, "127.0.0.1", 0]', text)
    text, paths = re.subn(r"(?m)^paths = .*$", f"paths = [{str(EXAMPLES)!r}]", text)
    assert (args, paths) == (1, 1), "examples/login.toml no longer has one args and one paths line"
    config = tmp_path / "login.toml"
    config.write_text(text)
    node = subprocess.Popen(
        [sys.executable, "-m", "meshnet", "node", str(config)],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield _listening(node)
    finally:
        node.send_signal(signal.SIGINT)
        node.communicate(timeout=20)


def _listening(node: subprocess.Popen) -> tuple[int, int]:
    seen = []
    for line in node.stderr:
        seen.append(line)
        if match := LISTENING.search(line):
            return int(match[1]), int(match[2])
    raise AssertionError("the node never said where it listens:\n" + "".join(seen))


def login_client(ports, user, *args, password="password"):
    login_port, gate_port = ports
    return subprocess.run(
        [sys.executable, "-m", "meshnet", "login-client"]
        + ["--login", f"127.0.0.1:{login_port}", "--gate", f"127.0.0.1:{gate_port}"]
        + ["--server", "sample", "--user", user, "--password", password, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_login_handshake_and_echoed_requests(ports):
    done = login_client(ports, "first", "--send", "hello", "--send", "wörld")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        "login: 200 MQ==",
        "handshake: 200 OK",
        "response 1: ok hello",
        "response 2: ok wörld",
    ]


def test_reconnect_prints_the_cached_answer(ports):
    done = login_client(ports, "second", "--send", "echo", "--send", "again", "--reconnect")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        "login: 200 MQ==",
        "handshake: 200 OK",
        "handshake: 200 OK",
        "response 1: ok echo",
        "response 2: ok again",
    ]


def test_a_wrong_password_prints_the_refusal_and_exits_1(ports):
    done = login_client(ports, "third", "--send", "x", password="wrong")
    assert (done.returncode, done.stdout, done.stderr) == (1, "login: 401 Unauthorized\n", "")


def test_reconnect_without_a_request_is_a_one_line_error(ports):
    done = login_client(ports, "fourth", "--reconnect")
    assert done.returncode == 1
    assert done.stderr == (
        "meshnet: error: --reconnect needs a request to resend: give at least one --send\n"
    )


def test_an_unreachable_msgserver_is_a_one_line_error(ports):
    login_port, _ = ports
    done = login_client((login_port, 1), "fifth")
    assert done.returncode == 1
    assert done.stdout == "login: 200 MQ==\n"
    assert done.stderr.startswith("meshnet: error: msgserver at 127.0.0.1:1: ")
    assert done.stderr.count("\n") == 1


@given(st.text(min_size=1), st.integers(0, 65535))
def test_host_port_splits_at_the_last_colon(host, port):
    assert host_port(f"{host}:{port}") == (host, port)


@given(st.text())
def test_host_port_returns_a_port_or_refuses_any_text(text):
    try:
        host, port = host_port(text)
    except argparse.ArgumentTypeError:
        return
    assert host and 0 <= port <= 65535


@pytest.mark.parametrize("text", ["host", ":80", "host:", "host:65536", "host:1000000", "h:²"])
def test_host_port_refuses(text):
    with pytest.raises(argparse.ArgumentTypeError):
        host_port(text)

"""``python -m demo_game demo-cluster`` (what ``make demo-cluster`` runs): a redis-server
of its own, the accounts, game, subgame and front node processes discovering each other
through it, the client once against the front (the gold into the subgame and back); the
same clients then play against the front; a stopped subgame node defers the gold, which
arrives when it runs again; Ctrl-C stops the nodes, then Redis."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from demo_setup import CHEAP_SCRYPT, HOST, NEW_USER_FLOW, agent_in, secure_user_flow, without_agent

from demo_game.cluster_launcher import NODES, SECRET_ENV, run_cluster_demo
from demo_game.launcher import LaunchError, free_port, node_config
from demo_game.redis_process import RedisProcess, RedisProcessError

START_WAIT = 60.0
"""Seconds the launcher gets to start Redis and four nodes (a guard, not a threshold)."""
READY = "The demo game runs on 4 nodes; Ctrl-C stops them and Redis. The front:"
NODE_IDS = {"front": 1, "game": 2, "accounts": 3, "subgame": 4}
GOLD_WALK_LINES = [
    'wallet: ok {"main": 100, "subgame": 0, "in_transit": 0}',
    'enter_subgame: ok {"state": "delivered", "gold": 100}',
    'wallet: ok {"main": 0, "subgame": 100, "in_transit": 0}',
    'leave_subgame: ok {"state": "delivered", "gold": 100}',
    'wallet: ok {"main": 100, "subgame": 0, "in_transit": 0}',
]
"""What the launcher's client prints after its login."""


NODE_LINE = re.compile(r"  (?P<name>\w+) node \(id (?P<id>\d+), pid (?P<pid>\d+)\), links on ")


@dataclass
class Launched:
    """A running launcher: its process, the front's ports, what it printed, its log."""

    process: subprocess.Popen[bytes]
    ports: dict[str, int]
    output: list[str]
    log: Path

    @property
    def pids(self) -> dict[str, int]:
        """Each node's process id, from the line ``<name> node (id N, pid P), links on``."""
        found = {}
        for line in self.output:
            match = NODE_LINE.match(line)
            if match is not None and int(match["id"]) == NODE_IDS[match["name"]]:
                found[match["name"]] = int(match["pid"])
        return found

    def stop(self, number: int = signal.SIGINT) -> int:
        if self.process.poll() is None:
            self.process.send_signal(number)
        try:
            return self.process.wait(START_WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def write_configs(directory: Path, redis: str = "") -> dict[str, int]:
    """accounts.toml, game.toml and front.toml in ``directory``, every port free, Redis
    at ``redis`` (default: a free loopback port); returns the front's ports and Redis's."""
    directory.mkdir(parents=True, exist_ok=True)
    ports = {key: free_port() for key in ("hub", "hub_ws", "login", "msgserver", "web", "redis")}
    redis = redis or f"redis://{HOST}:{ports['redis']}/0"
    sections = {
        "front": {
            "hub": {"address": HOST, "port": ports["hub"], "ws_port": ports["hub_ws"]},
            "login": {"address": HOST, "port": ports["login"]},
            "msgserver": {"address": HOST, "port": ports["msgserver"], "servername": "demo"},
            "web": {"address": HOST, "port": ports["web"]},
        },
        "game": {"agent": {"reconnect_window": 60.0}},
        "accounts": {
            "accounts": {"path": str(directory / "accounts.sqlite3"), **CHEAP_SCRYPT},
            "gold": {"timeout": 1.0},
        },
        "subgame": {"gold": {"subgame_path": str(directory / "subgame.sqlite3"), "timeout": 1.0}},
    }
    for name in NODES:
        cluster = {
            "secret_env": SECRET_ENV,
            "discovery": "redis",
            "redis": redis,
            "name": "demo",
            "address": f"{HOST}:{free_port()}",
        }
        settings = {"cluster": {"roles": [name]}, **sections[name]}
        text = node_config(settings, name=name, node_id=NODE_IDS[name], cluster=cluster)
        (directory / f"{name}.toml").write_text(text)
    return ports


def launch(directory: Path, sigint_ignored: bool = False) -> Launched:
    """The launcher on configs in ``directory``, once it printed where everything is;
    ``sigint_ignored`` starts it as a script's background job is, SIGINT ignored."""
    ports = write_configs(directory)
    env = {key: value for key, value in os.environ.items() if key != SECRET_ENV}
    log = directory / "launcher.log"
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "demo_game", "demo-cluster"]
            + ["--config-dir", str(directory), "--redis-dir", str(directory / "redis")],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env={**env, "PYTHONUNBUFFERED": "1"},
            preexec_fn=_ignore_sigint if sigint_ignored else None,
        )
    launched = Launched(process, ports, [], log)
    try:
        launched.output = _read_until(process, "-m demo_game robots", log)
    except BaseException:
        launched.stop()
        raise
    return launched


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _read_until(process: subprocess.Popen[bytes], end: str, log: Path) -> list[str]:
    assert process.stdout is not None
    text, give_up = "", time.monotonic() + START_WAIT
    while end not in text:
        readable, _, _ = select.select([process.stdout], [], [], give_up - time.monotonic())
        chunk = os.read(process.stdout.fileno(), 65536) if readable else b""
        if not chunk:
            pytest.fail(f"the launcher printed:\n{text}\nits log:\n{log.read_text()[-4000:]}")
        text += chunk.decode()
    return text.splitlines()


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launched]:
    running = launch(tmp_path_factory.mktemp("cluster"))
    yield running
    running.stop()


def accepts(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=1).close()
        return True
    except OSError:
        return False


def test_the_launcher_plays_the_client_against_the_front_and_says_where_all_is(launched):
    lines = launched.output
    client = [line for line in lines[: lines.index(READY)] if line]
    user = client[0].partition(" --user ")[2].partition(" ")[0]
    expected = [line.replace("alice", user) for line in NEW_USER_FLOW] + GOLD_WALK_LINES
    assert without_agent(client[1:]) == expected
    assert f"  hub, TCP          {HOST}:{launched.ports['hub']}" in lines
    assert set(launched.pids) == set(NODE_IDS)
    assert any(line.startswith(f"  Redis             redis://{HOST}:") for line in lines)


@pytest.mark.parametrize("transport", [[], ["--ws"], ["--secure"]], ids=["tcp", "ws", "secure"])
def test_the_client_plays_against_the_front_with_its_agent_on_the_game_node(launched, transport):
    ports = launched.ports
    port = {"--ws": ports["hub_ws"], "--secure": ports["login"]}.get(
        transport[0] if transport else "", ports["hub"]
    )
    user = f"alice-{transport[0][2:] if transport else 'tcp'}"
    done = subprocess.run(
        [sys.executable, "-m", "demo_game", "client", "--host", HOST, "--port", str(port)]
        + [*transport, "--msg-port", str(ports["msgserver"]), "--user", user, "--password", "pw"],
        capture_output=True,
        text=True,
        timeout=START_WAIT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    if transport == ["--secure"]:
        assert without_agent(lines) == secure_user_flow(user)
    else:
        assert without_agent(lines) == [line.replace("alice", user) for line in NEW_USER_FLOW]
    welcome = next(line for line in lines if line.startswith("push: "))
    assert agent_in(welcome).node == NODE_IDS["game"]


def play(launched: Launched, user: str, *then: str) -> list[str]:
    """The client against the front, with ``--then`` requests; the lines after its login."""
    done = subprocess.run(
        [sys.executable, "-m", "demo_game", "client", "--host", HOST]
        + ["--port", str(launched.ports["hub"]), "--user", user, "--password", "pw"]
        + [arg for request in then for arg in ("--then", request)],
        capture_output=True,
        text=True,
        timeout=START_WAIT,
    )
    lines = done.stdout.splitlines()
    return lines[lines.index("ping: ok {}") + 1 :]


def test_gold_sent_to_a_stopped_subgame_node_is_deferred_and_arrives_when_it_runs(launched):
    subgame = launched.pids["subgame"]
    os.kill(subgame, signal.SIGSTOP)  # the README's forced failure
    try:
        assert play(launched, "carol", "enter_subgame", "wallet") == [
            'enter_subgame: ok {"state": "deferred", "gold": 100}',
            'wallet: ok {"main": 0, "subgame": null, "in_transit": 100}',
        ]
    finally:
        os.kill(subgame, signal.SIGCONT)
    give_up = time.monotonic() + START_WAIT
    arrived = 'wallet: ok {"main": 0, "subgame": 100, "in_transit": 0}'
    while (lines := play(launched, "carol", "wallet")) != [arrived]:
        assert time.monotonic() < give_up, lines
        time.sleep(0.2)
    assert play(launched, "carol", "leave_subgame", "wallet") == [
        'leave_subgame: ok {"state": "delivered", "gold": 100}',
        'wallet: ok {"main": 100, "subgame": 0, "in_transit": 0}',
    ]


@pytest.mark.parametrize(
    ("number", "sigint_ignored"),
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["ctrl-c", "sigterm", "ctrl-c-to-a-background-job"],
)
def test_a_stop_signal_stops_the_nodes_first_and_redis_last(tmp_path, number, sigint_ignored):
    launched = launch(tmp_path, sigint_ignored)
    assert accepts(launched.ports["redis"])
    assert launched.stop(number) == 0
    assert not accepts(launched.ports["hub"]) and not accepts(launched.ports["redis"])
    log = launched.log.read_text()
    for name in NODES:  # each took its keys out of Redis as it stopped: Redis was still up
        assert f"{name:8} | " in log
        assert any(
            line.startswith(f"{name:8} | ") and "left the cluster" in line
            for line in log.splitlines()
        ), log[-4000:]
    assert (tmp_path / "redis" / "appendonlydir").is_dir()  # with AOF


@pytest.mark.parametrize(
    ("redis", "message"),
    [
        ("redis://10.1.2.3:6390/0", "on this machine's loopback"),
        ("rediss://127.0.0.1:6390/0", "on this machine's loopback"),
    ],
)
def test_a_redis_the_launcher_cannot_start_here_is_refused_before_anything_starts(
    tmp_path, monkeypatch, redis, message
):
    monkeypatch.setenv(SECRET_ENV, "a secret for this test only")
    write_configs(tmp_path, redis)
    with pytest.raises(LaunchError, match=message):
        run_cluster_demo(tmp_path, tmp_path / "redis")
    assert not (tmp_path / "redis").exists()


def test_nodes_naming_different_redis_servers_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, "a secret for this test only")
    write_configs(tmp_path)
    game = tmp_path / "game.toml"
    game.write_text(game.read_text().replace(f"redis://{HOST}:", f"redis://{HOST}:1"))
    with pytest.raises(LaunchError, match="different Redis servers"):
        run_cluster_demo(tmp_path, tmp_path / "redis")


def test_redis_starts_with_aof_and_stops(tmp_path):
    redis = RedisProcess(HOST, free_port(), tmp_path)
    redis.start()
    try:
        assert accepts(redis.port)
    finally:
        redis.stop()
    assert not accepts(redis.port)
    assert (tmp_path / "appendonlydir").is_dir()


def test_redis_on_a_port_another_process_holds_is_an_error_with_its_log(tmp_path):
    with socket.socket() as holder:
        holder.bind((HOST, 0))
        holder.listen()
        redis = RedisProcess(HOST, holder.getsockname()[1], tmp_path)
        with pytest.raises(RedisProcessError, match="exited at start .* holding the port"):
            redis.start()

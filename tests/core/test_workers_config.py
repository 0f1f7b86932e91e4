"""``[node] workers = N``: what each worker reads from the config, and who owns a key."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from meshnet.cluster.config import ClusterConfigError, parse_cluster
from meshnet.config import ConfigError, load_config
from meshnet.listen import ListenError, open_listeners
from meshnet.workers import (
    SECRET_ENV,
    WORKER_ENV,
    Worker,
    WorkerError,
    current_worker,
    owner_index,
    owner_node,
)

SECRET = "a secret of the supervisor's"
NODE = """
[node]
name = "game"
id = 10
workers = 2
console = "127.0.0.1:7000"
metrics = "127.0.0.1:9100"
[start]
service = "x:Y"
"""


@pytest.fixture
def as_worker(monkeypatch):
    """Make this process worker ``index`` of two of node ``game`` (id 10)."""

    def become(index: int, count: int = 2) -> Worker:
        worker = Worker(index, count, "game", 10)
        monkeypatch.setenv(WORKER_ENV, worker.to_env())
        monkeypatch.setenv(SECRET_ENV, SECRET)
        return worker

    monkeypatch.delenv(WORKER_ENV, raising=False)
    return become


def config_file(tmp_path, text=NODE):
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


def test_the_first_process_of_a_workers_config_supervises(tmp_path, as_worker):
    config = load_config(config_file(tmp_path, NODE + "[cluster]\nlisten = 'nonsense'\n"))
    assert config.supervises and config.worker is None and config.sections == []


def test_a_worker_is_a_node_of_its_own_with_its_own_console_and_metrics(tmp_path, as_worker):
    as_worker(1)
    config = load_config(config_file(tmp_path))
    assert (config.name, config.node_id) == ("game-1", 11)
    assert config.console == ("127.0.0.1", 7001) and config.metrics == ("127.0.0.1", 9101)
    assert not config.supervises


@pytest.mark.parametrize(
    ("workers", "message"),
    [(0, "node.workers must be between 1 and 64"), (300, "node.workers must be between")],
)
def test_workers_out_of_range_is_a_config_error(tmp_path, workers, message):
    with pytest.raises(ConfigError, match=message):
        load_config(config_file(tmp_path, NODE.replace("workers = 2", f"workers = {workers}")))


def test_workers_whose_ids_would_pass_255_is_a_config_error(tmp_path):
    text = NODE.replace("id = 10", "id = 250").replace("workers = 2", "workers = 8")
    with pytest.raises(ConfigError, match="needs ids up to 257, past 255"):
        load_config(config_file(tmp_path, text))


def test_a_worker_started_as_one_of_another_count_is_a_config_error(tmp_path, as_worker):
    as_worker(0, count=3)
    with pytest.raises(ConfigError, match="started as one of 3"):
        load_config(config_file(tmp_path))


def test_the_workers_alone_make_a_static_cluster_at_listen_plus_their_index(as_worker):
    as_worker(1)
    config = parse_cluster({"listen": "127.0.0.1:7200"}, None, "game-1")
    assert {name: (m.host, m.port, m.id) for name, m in config.nodes.items()} == {
        "game-0": ("127.0.0.1", 7200, 10),
        "game-1": ("127.0.0.1", 7201, 11),
    }
    assert config.listen == ("127.0.0.1", 7201)
    assert config.secret == SECRET.encode()


def test_a_cluster_of_the_workers_alone_needs_listen(as_worker):
    as_worker(0)
    with pytest.raises(ClusterConfigError, match="needs 'cluster.listen'"):
        parse_cluster({}, None, "game-0")


def test_with_redis_discovery_each_worker_advertises_address_plus_its_index(as_worker):
    as_worker(1)
    table = {"discovery": "redis", "redis": "redis://127.0.0.1:6379/0", "address": "10.0.0.5:7101"}
    config = parse_cluster(table, None, "game-1")
    assert config.advertise == ("10.0.0.5", 7102)


USERS = [f"user{n}" for n in range(30)]


@pytest.mark.parametrize("hash_seed", ["1", "2"])
def test_every_process_agrees_on_the_owner_of_a_key(hash_seed):
    script = f"from meshnet.workers import owner_index; print([owner_index(u, 3) for u in {USERS}])"
    other = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
        capture_output=True,
        text=True,
        check=True,
    )
    here = [owner_index(user, 3) for user in USERS]
    assert other.stdout.strip() == str(here)
    assert set(here) == {0, 1, 2}


async def test_a_worker_shares_its_client_port_and_a_node_does_not(as_worker):
    as_worker(0)
    first = await open_listeners("127.0.0.1", 0)
    port = first[0].port
    second = await open_listeners("127.0.0.1", port)
    with pytest.raises(ListenError, match="cannot listen"):
        await open_listeners("127.0.0.1", port, shared=False)
    for listener in first + second:
        listener.close()


def test_a_key_s_owner_is_a_worker_s_node_and_none_outside_workers(as_worker):
    assert owner_node("alice") is None
    as_worker(0)
    assert owner_node("alice") == f"game-{owner_index('alice', 2)}"


def test_a_malformed_worker_description_is_a_worker_error(monkeypatch):
    monkeypatch.setenv(WORKER_ENV, '{"index": 2, "count": 2, "name": "game", "id": 1}')
    with pytest.raises(WorkerError, match="index out of range"):
        current_worker()
    monkeypatch.setenv(WORKER_ENV, "worker one")
    with pytest.raises(WorkerError, match="is not a worker description"):
        current_worker()

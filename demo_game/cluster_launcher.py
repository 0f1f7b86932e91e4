"""``make demo-cluster``: the demo game on four nodes of one machine, found through a
Redis of its own.

``run_cluster_demo`` reads the node configs of a directory (``demo_game/cluster``:
``accounts.toml``, ``game.toml``, ``subgame.toml``, ``front.toml``), starts redis-server
where they say Redis is (it must be this machine's loopback; with ``appendfsync always``,
so a deferred hand-off of gold is on disk once written), then the nodes in that order, each once
the one before is ready (so the names the front calls are registered when it starts);
it runs the client once against the front, says where everything listens, and keeps it
all until Ctrl-C. Then it stops the nodes, front first, and Redis last. Each node's log
comes to stderr after its name (``front    | ...``).

The configs take the cluster secret from ``MESHNET_CLUSTER_SECRET``; when it is not set,
a fresh one is made for this run.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import time
from pathlib import Path
from urllib.parse import urlsplit

from demo_game.launcher import (
    LaunchError,
    NodeProcess,
    client_host,
    ctrl_c_ignored,
    front_lines,
    operator_lines,
    play_client,
    python_command,
    start_node,
    stop_node,
    stopped_by_signals,
    try_lines,
    wait_listening,
    wait_ready,
)
from demo_game.redis_process import RedisProcess
from demo_game.settings import ROLES, Settings, parse_settings
from meshnet.cluster import ClusterConfig
from meshnet.config import NodeConfig, load_config

CLUSTER_DIR = Path(__file__).parent / "cluster"
NODES = ("accounts", "game", "subgame", "front")
"""The node configs of a cluster directory (``<name>.toml``), in the order they start."""
REDIS_DIR = Path("var/demo_redis")
"""Where Redis keeps its append-only file, relative to the working directory."""
SECRET_ENV = "MESHNET_CLUSTER_SECRET"
DEFAULT_REDIS_PORT = 6379
GOLD_WALK = ("wallet", "enter_subgame", "wallet", "leave_subgame", "wallet")
"""The requests the client makes after its login: the player's gold into the subgame and
back, the wallet shown at each step."""
POLL = 0.2
"""Seconds between looks at whether a node stopped on its own."""
_RUNS = {  # by role
    "front": "hub, auth, login server, msgserver, browser page",
    "game": "manager and agents",
    "accounts": "accounts, the main game's gold",
    "subgame": "the subgame: its gold and its agents",
}


def run_cluster_demo(config_dir: Path = CLUSTER_DIR, redis_dir: Path = REDIS_DIR) -> int:
    """``make demo-cluster``; returns the exit code (the client's: 0 if it ended logged in)."""
    if not os.environ.get(SECRET_ENV):
        os.environ[SECRET_ENV] = secrets.token_urlsafe(24)
    configs = {name: load_config(config_dir / f"{name}.toml") for name in NODES}
    front = parse_settings(*configs["front"].start_args)
    redis = RedisProcess(*_redis_address(configs), redis_dir, fsync="always")
    nodes: dict[str, NodeProcess] = {}
    code = 1
    with stopped_by_signals():
        redis.start()
        try:
            for name in NODES:
                nodes[name] = start_node(configs[name].path, label=f"{name:8}")
                wait_ready(nodes[name], f"the {name} node")
            wait_listening(nodes["front"], client_host(front.hub["address"]), front.hub["port"])
            code = play_client(front, then=GOLD_WALK)
            print(_where(front, configs, nodes, redis), flush=True)
            _wait_for_a_stop(nodes)
        except KeyboardInterrupt:
            pass
        finally:
            with ctrl_c_ignored():
                for name in reversed(NODES):
                    if name in nodes:
                        stop_node(nodes[name])
                redis.stop()
    return code


def cluster_of(config: NodeConfig) -> ClusterConfig:
    """The ``[cluster]`` section of a node config; LaunchError if it has none."""
    for _, value in config.sections:
        if isinstance(value, ClusterConfig):
            return value
    raise LaunchError(f"{config.path}: no [cluster] section")


def _redis_address(configs: dict[str, NodeConfig]) -> tuple[str, int]:
    """The loopback host and port of the one Redis every config discovers through."""
    urls = {}
    for name, config in configs.items():
        cluster = cluster_of(config)
        if cluster.discovery != "redis" or cluster.redis is None:
            raise LaunchError(f"{config.path}: the demo's nodes discover each other through Redis")
        urls[name] = cluster.redis
    if len(set(urls.values())) != 1:
        raise LaunchError(f"the nodes name different Redis servers: {urls}")
    parts = urlsplit(next(iter(urls.values())))
    host = parts.hostname or ""
    if parts.scheme != "redis" or not _is_loopback(host):
        raise LaunchError(
            f"the demo starts its own Redis, on this machine's loopback: the configs' "
            f"redis://HOST:PORT must name 127.0.0.1 or ::1, not {parts.scheme}://{parts.netloc}"
        )
    return host, parts.port or DEFAULT_REDIS_PORT


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _wait_for_a_stop(nodes: dict[str, NodeProcess]) -> None:
    """Return when a node stopped cleanly (the others are then stopped too); LaunchError
    if one failed."""
    while True:
        for name, node in nodes.items():
            code = node.poll()
            if code is not None:
                if code != 0:
                    raise LaunchError(f"the {name} node stopped with exit code {code}")
                return
        time.sleep(POLL)


def _where(
    front: Settings,
    configs: dict[str, NodeConfig],
    nodes: dict[str, NodeProcess],
    redis: RedisProcess,
) -> str:
    python = python_command()
    lines = [
        "",
        f"The demo game runs on {len(NODES)} nodes; Ctrl-C stops them and Redis. The front:",
    ]
    lines += front_lines(front)
    for name in reversed(NODES):
        config = configs[name]
        link = cluster_of(config).advertise or cluster_of(config).listen
        address = f"{link[0]}:{link[1]}" if link else "?"
        roles = parse_settings(*config.start_args).roles
        runs = "; ".join(_RUNS[role] for role in ROLES if role in roles)
        lines.append(
            f"  {name} node (id {config.node_id}, pid {nodes[name].pid}), links on {address}: "
            f"{runs}"
        )
        lines += [f"  {line}" for line in operator_lines(config, python)]
    lines.append(f"  Redis             {redis.url}, AOF in {redis.directory}")
    walk = " ".join(f"--then {request}" for request in GOLD_WALK)
    gold = f"     {python} -m demo_game client --user NAME --password PASSWORD {walk}"
    return "\n".join([*lines, *try_lines(python), gold])

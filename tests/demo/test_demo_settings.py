"""The demo's settings: defaults, merging the node config's tables, and errors naming the key."""

import math
from dataclasses import replace
from pathlib import Path

import pytest

from demo_game.accounts import ScryptCost, hash_password
from demo_game.cli import NODE_CONFIG
from demo_game.cluster_launcher import CLUSTER_DIR, NODES, SECRET_ENV, cluster_of
from demo_game.launcher import free_port
from demo_game.main import Main
from demo_game.settings import ONE_NODE_ROLES, SettingsError, parse_settings
from meshnet import ServiceStartError, open_node
from meshnet.cluster import parse_cluster, start
from meshnet.config import load_config


def test_the_defaults_are_the_issue_s_ports_and_ten_seconds():
    settings = parse_settings()
    assert (settings.hub["port"], settings.hub["ws_port"]) == (5678, 5679)
    assert (settings.login_port, settings.msgserver["port"], settings.servername) == (
        8001,
        8888,
        "demo",
    )
    assert settings.accounts_path == Path("var/demo_accounts.sqlite3")
    assert settings.scrypt == ScryptCost()
    assert settings.reconnect_window == 10.0


def test_the_hub_closes_silent_connections_by_default():
    assert parse_settings().hub["heartbeat"] == 120.0


def test_node_toml_gives_the_default_settings():
    config = load_config(NODE_CONFIG)
    assert config.start_service == "demo_game.main:Main"
    assert parse_settings(*config.start_args) == parse_settings()


def test_tables_merge_section_by_section():
    settings = parse_settings(
        {"hub": {"port": 1}, "accounts": {"scrypt_n": 1024}},
        {"hub": {"ws_port": 2}, "agent": {"reconnect_window": 0}},
    )
    assert (settings.hub["port"], settings.hub["ws_port"], settings.hub["address"]) == (
        1,
        2,
        "127.0.0.1",
    )
    assert settings.scrypt == ScryptCost(n=1024)
    assert settings.reconnect_window == 0.0


@pytest.mark.parametrize(
    ("group", "message"),
    [
        ({"hubb": {}}, "unknown demo settings section 'hubb'"),
        ({"hub": 5678}, "section 'hub' must be a table"),
        ({"login": {"prot": 1}}, "unknown demo setting 'login.prot'"),
        ({"web": {"port": "80"}}, "'web.port' must be int, not str"),
        ({"accounts": {"scrypt_n": True}}, "'accounts.scrypt_n' must be int, not bool"),
        ({"agent": {"reconnect_window": -1}}, "'agent.reconnect_window' must be 0 or more"),
        ({"agent": {"reconnect_window": math.inf}}, "'agent.reconnect_window' must be 0 or"),
        (["hub"], "tables of sections"),
        ({"accounts": {"scrypt_n": 1000}}, "'accounts.scrypt_n' must be a power of 2"),
        ({"accounts": {"scrypt_n": 1}}, "'accounts.scrypt_n' must be a power of 2, at least 2"),
        ({"accounts": {"scrypt_n": 2**24}}, "'accounts.scrypt_n' must be small enough"),
        ({"accounts": {"scrypt_n": 2**16, "scrypt_r": 1}}, "below 2 \\*\\* \\(16 \\* scrypt_r\\)"),
        ({"accounts": {"scrypt_r": 0}}, "'accounts.scrypt_r' must be 1 or more"),
        ({"accounts": {"scrypt_p": 0}}, "'accounts.scrypt_p' must be 1 to 16"),
        ({"accounts": {"path": ""}}, "'accounts.path' must be a file name"),
        ({"login": {"port": 70000}}, "'login.port' must be a port 0..65535"),
        ({"web": {"port": -1}}, "'web.port' must be a port 0..65535"),
        ({"web": {"address": ""}}, "'web.address' must be a host name or IP"),
        ({"hub": {"port": 65536}}, "section 'hub': gate conf 'port' must be a port number"),
        ({"hub": {"maxclient": 0}}, "section 'hub': gate conf 'maxclient' must be an int >= 1"),
        ({"msgserver": {"port": "x"}}, "section 'msgserver': gate conf 'port' must be a port"),
        ({"msgserver": {"servername": ""}}, "'msgserver.servername' must be the game server"),
        ({"accounts": {"hash_threads": -1}}, "'accounts.hash_threads' must be 0 \\(one per core"),
        ({"accounts": {"hash_wait": 0}}, "'accounts.hash_wait' must be > 0 seconds"),
        ({"signin": {"max_failures": 0}}, "'signin.max_failures' must be 1 or more"),
        ({"signin": {"failure_period": math.inf}}, "'signin.failure_period' must be > 0"),
        ({"signin": {"per_address_exempt": ["x"]}}, "'signin.per_address_exempt' must be a list"),
        ({"signin": {"exempt": []}}, "unknown demo setting 'signin.exempt'"),
        ({"hub": {"max_packet_rate": 0}}, "gate conf 'max_packet_rate' must be a number"),
    ],
)
def test_a_wrong_setting_is_named(group, message):
    with pytest.raises(SettingsError, match=message):
        parse_settings(group)


async def test_a_wrong_gate_setting_stops_the_game_from_starting(node, tmp_path):
    with pytest.raises(ServiceStartError, match="unknown gate conf key 'prot'"):
        await node.newservice(Main, {"hub": {"prot": 1}, "accounts": {"path": str(tmp_path / "a")}})


@pytest.mark.parametrize(("n", "r", "p"), [(2, 1, 1), (2, 1, 16), (2**15, 1, 1), (2**16, 8, 1)])
def test_every_scrypt_cost_the_settings_accept_can_hash(n, r, p):
    cost = parse_settings({"accounts": {"scrypt_n": n, "scrypt_r": r, "scrypt_p": p}}).scrypt
    assert len(hash_password("password", b"salt" * 4, cost)) == 32


def test_a_node_runs_every_role_on_its_own_and_only_its_roles_in_a_cluster():
    alone = parse_settings()
    assert (alone.roles, alone.cluster) == (frozenset(ONE_NODE_ROLES), False)
    assert "subgame" not in alone.roles  # a node of its own, in a cluster
    front = parse_settings({"cluster": {"roles": ["front", "accounts"]}})
    assert (front.roles, front.cluster) == ({"front", "accounts"}, True)


@pytest.mark.parametrize(
    ("roles", "message"),
    [
        ("front", "'cluster.roles' must be list, not str"),
        ([], "'cluster.roles' must be a list of different roles out of 'front', 'game'"),
        (["front", "front"], "'cluster.roles' must be a list of different roles"),
        (["lobby"], "'cluster.roles' must be a list of different roles"),
        ([{"front": 1}], "'cluster.roles' must be a list of different roles"),
    ],
)
def test_a_wrong_role_is_named(roles, message):
    with pytest.raises(SettingsError, match=message):
        parse_settings({"cluster": {"roles": roles}})


def test_the_gold_settings_have_defaults_and_can_be_given():
    default = parse_settings()
    assert (default.starting_gold, default.gold_timeout, default.gold_redis) == (100, 5.0, "")
    assert default.subgame_path == Path("var/demo_subgame.sqlite3")
    given = parse_settings(
        {"gold": {"starting": 7, "timeout": 2, "subgame_path": "x.db", "redis": "redis://h/0"}}
    )
    assert (given.starting_gold, given.gold_timeout, given.subgame_path, given.gold_redis) == (
        7,
        2.0,
        Path("x.db"),
        "redis://h/0",
    )


@pytest.mark.parametrize(
    ("gold", "message"),
    [
        ({"starting": -1}, "'gold.starting' must be 0 or more"),
        ({"starting": 1.5}, "'gold.starting' must be int"),
        ({"timeout": 0}, "'gold.timeout' must be > 0 seconds"),
        ({"subgame_path": ""}, "'gold.subgame_path' must be a file name"),
        ({"redis": "127.0.0.1:6379"}, "'gold.redis' must be empty or a URL starting with redis://"),
        ({"colour": "gold"}, "unknown demo setting 'gold.colour'"),
    ],
)
def test_a_wrong_gold_setting_is_named(gold, message):
    with pytest.raises(SettingsError, match=message):
        parse_settings({"gold": gold})


async def test_the_subgame_role_without_redis_stops_the_node_from_starting(tmp_path):
    here = {"address": f"127.0.0.1:{free_port()}", "id": 1}
    table = {"secret": "a secret for this test only", "nodes": {"s": here}}
    async with open_node(1, "s") as node:
        await start(node, parse_cluster(table, tmp_path, "s"))
        with pytest.raises(ServiceStartError, match="the subgame role needs Redis"):
            await node.newservice(Main, {"cluster": {"roles": ["subgame"]}})


async def test_a_cluster_role_on_a_node_without_a_cluster_stops_the_game_from_starting(node):
    with pytest.raises(ServiceStartError, match="in no cluster"):
        await node.newservice(Main, {"cluster": {"roles": ["game"]}})


@pytest.mark.parametrize("name", NODES)
def test_the_packaged_cluster_configs_run_one_role_each_with_the_default_settings(
    name, monkeypatch
):
    monkeypatch.setenv(SECRET_ENV, "a secret for this test only")
    config = load_config(CLUSTER_DIR / f"{name}.toml")
    assert (config.name, config.start_service) == (name, "demo_game.main:Main")
    settings = parse_settings(*config.start_args)
    assert settings.roles == {name}
    assert replace(settings, roles=frozenset(ONE_NODE_ROLES), cluster=False) == parse_settings()
    cluster = cluster_of(config)
    assert (cluster.discovery, cluster.redis) == ("redis", "redis://127.0.0.1:6390/0")

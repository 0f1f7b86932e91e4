"""The skynet side of the [cluster] section: skynet nodes in the cluster table, and the
skynet_* keys of the listener skynet nodes call."""

import ipaddress

import pytest
import trio
from cluster_setup import REPO, SECRET

from meshnet.cluster import ClusterConfigError, parse_cluster
from meshnet.cluster.discovery import StaticDiscovery
from meshnet.cluster.members import MESHNET, SKYNET
from meshnet.cluster.skynet.config import DEFAULT_MAX_CONNECTIONS, SkynetSettings
from meshnet.cluster.skynet.wire import DEFAULT_MAX_MESSAGE

ME = {"address": "127.0.0.1:7101", "id": 1}
SKNODE = {"address": "127.0.0.1:2528", "protocol": "skynet"}


def parsed(**table):
    return parse_cluster({"secret": SECRET, "nodes": {"me": ME}, **table}, REPO, "me")


def test_a_skynet_node_in_the_cluster_table_has_a_protocol_and_no_id():
    config = parse_cluster({"secret": SECRET, "nodes": {"me": ME, "sk": SKNODE}}, REPO, "me")
    sk, me = config.nodes["sk"], config.nodes["me"]
    assert (sk.protocol, sk.id, sk.address, sk.skynet) == (SKYNET, None, "127.0.0.1:2528", True)
    assert (me.protocol, me.skynet) == (MESHNET, False)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({**SKNODE, "id": 3}, "a skynet node has no meshnet id"),
        ({**SKNODE, "protocol": "http"}, "protocol 'http' is not one of meshnet, skynet"),
        ({"address": "127.0.0.1:2528", "protocol": "meshnet"}, r"sk\.id: must be an integer"),
        ({"address": "127.0.0.1", "protocol": "skynet"}, "is not host:port"),
        ({**SKNODE, "secret": "x"}, 'protocol = "skynet"} for a skynet node'),
    ],
    ids=["with-id", "unknown-protocol", "meshnet-without-id", "no-port", "unknown-key"],
)
def test_a_wrong_skynet_entry_is_refused_with_its_key_named(entry, message):
    with pytest.raises(ClusterConfigError, match=message):
        parse_cluster({"secret": SECRET, "nodes": {"me": ME, "sk": entry}}, REPO, "me")


def test_this_node_cannot_be_a_skynet_node():
    with pytest.raises(ClusterConfigError, match='is listed with protocol "skynet"'):
        parse_cluster({"secret": SECRET, "nodes": {"me": SKNODE}}, REPO, "me")


def test_skynet_nodes_need_the_static_cluster_table():
    table = {"discovery": "redis", "redis": "redis://127.0.0.1:6379/0", "address": "h:1"}
    with pytest.raises(ClusterConfigError, match="which Redis discovery does not read"):
        parse_cluster({"secret": SECRET, **table, "nodes": {"sk": SKNODE}}, REPO, "me")


def test_skynet_nodes_are_not_found_by_id_and_never_run_the_clusters_unique_services():
    config = parse_cluster(
        {"secret": SECRET, "nodes": {"sk": SKNODE, "me": {**ME, "id": 7}}}, REPO, "me"
    )
    discovery = StaticDiscovery(config)
    assert discovery.member_by_id(7).name == "me"
    assert trio.run(discovery.owner_of, "mod:Class") == "me"


def test_without_skynet_keys_there_is_no_listener():
    assert parsed().skynet == SkynetSettings()
    assert parsed().skynet.listen is None


def test_the_listener_takes_its_address_names_and_limits():
    settings = parsed(
        skynet_listen="127.0.0.1:2529",
        skynet_expose=["echo", ".db", "echo"],
        skynet_max_connections=8,
        skynet_max_message=1 << 20,
    ).skynet
    assert (settings.listen, settings.expose, settings.allow) == (
        ("127.0.0.1", 2529),
        ("echo", ".db"),
        (),
    )
    assert (settings.max_connections, settings.max_message) == (8, 1 << 20)


def test_the_listener_limits_have_defaults():
    settings = parsed(skynet_listen="[::1]:2529", skynet_expose=["echo"]).skynet
    assert settings.listen == ("::1", 2529)
    assert (settings.max_connections, settings.max_message) == (
        DEFAULT_MAX_CONNECTIONS,
        DEFAULT_MAX_MESSAGE,
    )


def test_a_listener_on_a_public_address_needs_an_allow_list():
    with pytest.raises(ClusterConfigError, match="'0.0.0.0', which is not a loopback address"):
        parsed(skynet_listen="0.0.0.0:2529", skynet_expose=["echo"])
    settings = parsed(
        skynet_listen="0.0.0.0:2529", skynet_expose=["echo"], skynet_allow=["10.0.0.7"]
    ).skynet
    assert settings.allow == (ipaddress.ip_network("10.0.0.7/32"),)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"skynet_listen": "127.0.0.1:2529"}, "needs 'cluster.skynet_expose'"),
        ({"skynet_expose": ["echo"]}, "'cluster.skynet_expose' needs 'cluster.skynet_listen'"),
        ({"skynet_allow": ["10.0.0.7"]}, "'cluster.skynet_allow' needs 'cluster.skynet_listen'"),
        ({"skynet_listen": "127.0.0.1"}, "cluster.skynet_listen: '127.0.0.1' is not host:port"),
        ({"skynet_listen": "localhost:1", "skynet_expose": "echo"}, "must be the names"),
        ({"skynet_listen": "localhost:1", "skynet_expose": ["@echo"]}, "not '@echo'"),
        ({"skynet_listen": "localhost:1", "skynet_expose": ["a.b"]}, "not 'a.b'"),
        ({"skynet_listen": "localhost:1", "skynet_expose": [3]}, "not 3"),
        (
            {"skynet_listen": "localhost:1", "skynet_expose": ["e"], "skynet_allow": ["a.host"]},
            "IP addresses or networks",
        ),
        (
            {"skynet_listen": "localhost:1", "skynet_expose": ["e"], "skynet_allow": [167772167]},
            "not 167772167",
        ),
        (
            {"skynet_listen": "localhost:1", "skynet_expose": ["e"], "skynet_max_connections": 0},
            "'cluster.skynet_max_connections' must be at least 1",
        ),
        (
            {"skynet_listen": "localhost:1", "skynet_expose": ["e"], "skynet_max_message": 9},
            "'cluster.skynet_max_message' must be at least 65536 bytes",
        ),
        ({"skynet_port": 2529}, "unknown key 'cluster.skynet_port'"),
    ],
)
def test_a_wrong_skynet_key_is_refused_with_the_key_named(keys, message):
    with pytest.raises(ClusterConfigError, match=message):
        parsed(**keys)


@pytest.mark.parametrize(
    ("allow", "peer", "allowed"),
    [
        ((), "127.0.0.1", True),
        ((), "127.8.9.10", True),
        ((), "::1", True),
        ((), "10.0.0.7", False),
        (("10.0.0.0/8",), "10.0.0.7", True),
        (("10.0.0.0/8",), "127.0.0.1", False),
        (("::1",), "::1", True),
    ],
)
def test_who_may_connect(allow, peer, allowed):
    settings = SkynetSettings(allow=tuple(ipaddress.ip_network(a) for a in allow))
    assert settings.allows(ipaddress.ip_address(peer)) is allowed


def test_a_peer_whose_address_is_unknown_may_not_connect():
    assert not SkynetSettings().allows(None)

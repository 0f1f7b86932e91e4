"""The [cluster] keys of Redis discovery: what parse_cluster accepts and refuses."""

import pytest
from cluster_setup import REPO, SECRET

from meshnet.cluster import ClusterConfigError, parse_cluster

REDIS = {"secret": SECRET, "discovery": "redis", "redis": "redis://127.0.0.1:6379/0"}


def test_a_redis_cluster_takes_its_name_url_address_and_ttl():
    config = parse_cluster(
        {**REDIS, "name": "game-1", "address": "10.0.0.5:7101", "ttl": 2}, REPO, "front"
    )
    assert (config.name, config.redis, config.advertise, config.ttl) == (
        "game-1",
        "redis://127.0.0.1:6379/0",
        ("10.0.0.5", 7101),
        2.0,
    )


def test_the_cluster_name_defaults_to_meshnet():
    assert parse_cluster({**REDIS, "address": "127.0.0.1:7101"}, REPO, "front").name == "meshnet"


@pytest.mark.parametrize(
    "table, message",
    [
        ({"address": "127.0.0.1:7101", "name": "my game"}, "'cluster.name' must be"),
        ({"address": "127.0.0.1:7101", "name": ""}, "'cluster.name' must be"),
        ({"address": "127.0.0.1:7101", "redis": "127.0.0.1:6379"}, "'cluster.redis' must be a URL"),
        ({}, "needs 'cluster.address'"),
        ({"listen": "0.0.0.0:7101"}, "'0.0.0.0', which other nodes cannot dial"),
        ({"address": "127.0.0.1:7101", "ttl": 0}, "'cluster.ttl' must be positive"),
    ],
)
def test_a_wrong_redis_setting_is_refused_with_the_key_named(table, message):
    with pytest.raises(ClusterConfigError, match=message):
        parse_cluster({**REDIS, **table}, REPO, "front")


def test_listen_alone_is_the_address_when_it_can_be_dialed():
    config = parse_cluster({**REDIS, "listen": "127.0.0.1:7101"}, REPO, "front")
    assert (config.listen, config.advertise) == (("127.0.0.1", 7101), None)

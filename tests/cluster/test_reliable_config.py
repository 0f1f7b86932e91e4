"""A reliable service's settings: what ReliableConfig.parse takes and refuses."""

import pytest

from meshnet.cluster.reliable import ReliableConfig, ReliableConfigError

GOOD = {"system": "main", "store": "var/main.sqlite3", "redis": "redis://127.0.0.1:6379/0"}


def test_the_required_keys_are_enough_and_the_rest_has_defaults():
    config = ReliableConfig.parse(GOOD)
    assert (config.system, config.store, config.redis) == (
        "main",
        "var/main.sqlite3",
        "redis://127.0.0.1:6379/0",
    )
    assert (config.peers, config.prefix, config.timeout) == ({}, "meshnet:reliable", 5.0)
    assert (config.retry, config.retry_max, config.redis_timeout) == (1.0, 30.0, 2.0)


def test_every_key_can_be_given():
    config = ReliableConfig.parse(
        {
            **GOOD,
            "peers": {"subgame": "subgame@wallet"},
            "prefix": "game1",
            "timeout": 2,
            "retry": 0.5,
            "retry_max": 4,
            "redis_timeout": 1,
        }
    )
    assert config.peers == {"subgame": "subgame@wallet"}
    assert (config.prefix, config.timeout, config.retry, config.retry_max) == (
        "game1",
        2.0,
        0.5,
        4.0,
    )


@pytest.mark.parametrize(
    "change, message",
    [
        ({"system": None}, "missing key 'system'"),
        ({"store": None}, "missing key 'store'"),
        ({"redis": None}, "missing key 'redis'"),
        ({"system": "main game"}, "system: 1 to 32 letters"),
        ({"store": ""}, "'store' must be the path of its SQLite file, not empty"),
        ({"redis": "127.0.0.1:6379"}, "'redis' must be a URL starting with redis://"),
        ({"peers": ["subgame"]}, "'peers' must be a table"),
        ({"peers": {"sub_game": "x@wallet"}}, "peers.sub_game: 1 to 32 letters"),
        ({"peers": {"subgame": 7}}, "'peers' maps each system"),
        ({"timeout": 0}, "'timeout' must be positive seconds"),
        ({"retry": -1}, "'retry' must be positive seconds"),
        ({"retry": "1"}, "'retry' must be seconds"),
        ({"timeout": True}, "'timeout' must be seconds"),
        ({"retry": 10, "retry_max": 5}, "'retry_max' must be at least 'retry'"),
        ({"colour": "red"}, "unknown key\\(s\\) 'colour'"),
    ],
)
def test_a_wrong_setting_is_refused_naming_the_key(change, message):
    table = {key: value for key, value in {**GOOD, **change}.items() if value is not None}
    with pytest.raises(ReliableConfigError, match=message):
        ReliableConfig.parse(table)


def test_settings_that_are_not_a_table_are_refused():
    with pytest.raises(ReliableConfigError, match="must be a table"):
        ReliableConfig.parse(["main"])

"""A gate's open conf: defaults, precise errors, and nothing but GateConf or GateConfError
for any input."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshnet.gate.conf import GateConf, GateConfError, parse_conf


def test_defaults_follow_skynet():
    conf = parse_conf({"port": 8888})
    assert conf == GateConf(port=8888)
    assert (conf.address, conf.maxclient, conf.nodelay, conf.heartbeat) == (
        "0.0.0.0",
        1024,
        True,
        None,
    )


@pytest.mark.parametrize(
    ("conf", "error"),
    [
        ({}, "'port' must be set (or ws_port)"),
        ({"port": 70000}, "'port' must be a port number"),
        ({"ws_port": "80"}, "'ws_port' must be a port number"),
        ({"port": 0, "maxclient": 0}, "'maxclient' must be an int >= 1"),
        ({"port": 0, "nodelay": 1}, "'nodelay' must be true or false"),
        ({"port": 0, "heartbeat": 0}, "'heartbeat' must be a number of seconds > 0"),
        ({"port": 0, "max_packet": 65536}, "'max_packet' must be an int 0..65535"),
        ({"port": 0, "max_unsent": 1000}, "'max_unsent' must be an int >= 1048576"),
        ({"port": 0, "max_packet_rate": 0}, "'max_packet_rate' must be a number of packets > 0"),
        ({"port": 0, "max_in_flight": 0}, "'max_in_flight' must be an int >= 1"),
        ({"port": 0, "request_timeout": None}, "'request_timeout' must be a number of seconds"),
        ({"port": 0, "handshake_timeout": -1}, "'handshake_timeout' must be a number of seconds"),
        ({"port": 0, "max_handshaking": 1.5}, "'max_handshaking' must be an int >= 1"),
        ({"port": 0, "adress": "x"}, "unknown gate conf key 'adress'"),
        (["port", 0], "gate conf must be a dict"),
    ],
)
def test_a_bad_conf_is_refused_naming_the_key(conf, error):
    with pytest.raises(GateConfError) as refused:
        parse_conf(conf)
    assert error in str(refused.value)


_KEYS = st.sampled_from(
    ["address", "port", "ws_port", "maxclient", "nodelay", "backlog", "max_packet"]
    + ["heartbeat", "max_unsent", "max_packet_rate", "max_in_flight", "request_timeout"]
    + ["handshake_timeout", "max_handshaking", "other"]
)
_VALUES = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)


@given(st.dictionaries(_KEYS, _VALUES))
def test_any_conf_parses_or_raises_our_error(conf):
    try:
        parsed = parse_conf(conf)
    except GateConfError:
        return
    assert parsed.port is not None or parsed.ws_port is not None

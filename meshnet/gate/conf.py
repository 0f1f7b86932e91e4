"""A gate's ``open`` configuration: what skynet's gateserver takes, plus meshnet's limits.

    {"address": "0.0.0.0", "port": 8888, "maxclient": 1024, "nodelay": True}

Keys (all optional, but at least one of ``port`` and ``ws_port``):

``address``     listening address (default ``"0.0.0.0"``)
``port``        TCP port, 2-byte length framing; 0 picks a free port, reported by ``open``
``ws_port``     WebSocket port on the same address: one binary message is one packet
``maxclient``   connections served at once (default 1024); the next one is closed at once
``nodelay``     TCP_NODELAY on client sockets (default True)
``backlog``     listen backlog (default: trio's, the system maximum)
``max_packet``  largest packet a client may send, at most 65535 (default 65535)
``heartbeat``   seconds a connection may go without sending a whole packet before it is
                closed (default None: never)
``max_unsent``  bytes a connection may have waiting to be sent before it is closed
                (default 16 MiB; warnings start at 1 MiB)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from meshnet.errors import MeshnetError
from meshnet.gate.framing import MAX_PAYLOAD

WARN_UNSENT = 1 << 20
"""Unsent bytes at which a connection's first ``warning`` fires (then at twice that, ...)."""


class GateConfError(MeshnetError):
    """A gate's ``open`` configuration is invalid; the message names the key."""


@dataclass(frozen=True, slots=True)
class GateConf:
    """A gate's checked ``open`` configuration; the keys are described in this module."""

    address: str = "0.0.0.0"
    port: int | None = None
    ws_port: int | None = None
    maxclient: int = 1024
    nodelay: bool = True
    backlog: int | None = None
    max_packet: int = MAX_PAYLOAD
    heartbeat: float | None = None
    max_unsent: int = 16 << 20


def parse_conf(conf: Mapping[str, Any]) -> GateConf:
    """Check ``conf`` key by key and return it as a ``GateConf``."""
    if not isinstance(conf, Mapping):
        raise GateConfError(f"gate conf must be a dict of settings, got {type(conf).__name__}")
    known = {field.name for field in fields(GateConf)}
    for key in conf:
        if key not in known:
            raise GateConfError(f"unknown gate conf key {key!r}; known keys: {sorted(known)}")
    parsed = GateConf(**conf)
    _check(isinstance(parsed.address, str) and parsed.address, "address", "a host name or IP")
    for key in ("port", "ws_port"):
        value = getattr(parsed, key)
        _check(value is None or _int_in(value, 0, 65535), key, "a port number 0..65535")
    _check(parsed.port is not None or parsed.ws_port is not None, "port", "set (or ws_port)")
    _check(_int_in(parsed.maxclient, 1, None), "maxclient", "an int >= 1")
    _check(isinstance(parsed.nodelay, bool), "nodelay", "true or false")
    _check(parsed.backlog is None or _int_in(parsed.backlog, 1, None), "backlog", "an int >= 1")
    _check(_int_in(parsed.max_packet, 0, MAX_PAYLOAD), "max_packet", f"an int 0..{MAX_PAYLOAD}")
    _check(_positive_or_none(parsed.heartbeat), "heartbeat", "a number of seconds > 0, or None")
    _check(_int_in(parsed.max_unsent, WARN_UNSENT, None), "max_unsent", f"an int >= {WARN_UNSENT}")
    return parsed


def _check(ok: object, key: str, expected: str) -> None:
    if not ok:
        raise GateConfError(f"gate conf {key!r} must be {expected}")


def _int_in(value: object, low: int, high: int | None) -> bool:
    return type(value) is int and value >= low and (high is None or value <= high)


def _positive_or_none(value: object) -> bool:
    return value is None or (type(value) in (int, float) and value > 0)

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
``max_packet_rate``  packets a connection may send a second (default None: no limit); a
                second's worth may come at once, then the gate reads the connection no
                faster (``meshnet.gate.ratelimit``)
``max_unsent``  bytes a connection may have waiting to be sent before it is closed
                (default 16 MiB; warnings start at 1 MiB)
``node_max_unsent``  bytes all the gate connections of the node together may have
                waiting to be sent (default 256 MiB, node-wide: the last gate opened with
                it sets it); past it the connection with the most waiting is closed
``max_per_address``  connections at once from one client address (default None: no
                limit); the next one is closed at once (WebSocket: HTTP 429)
``per_address_exempt``  addresses or networks (``"127.0.0.1"``, ``"10.0.0.0/8"``) the
                per-address limit does not apply to
``trusted_proxies``  addresses or networks of proxies in front of the gate: a connection
                from one must start with a PROXY header (v1 or v2) on the TCP port, and
                carry ``X-Forwarded-For`` on the WebSocket port; the client address it
                gives is the one every per-address limit and the hooks see. A PROXY
                header from anyone else closes the connection.
``tls_cert``, ``tls_key``  PEM files of a certificate (chain) and its private key: both
                listeners speak TLS (``wss://`` on the WebSocket port)

Keys for the gates built on this one (a plain ``GateServer`` does not use them):

``max_in_flight``  requests one client may have in progress at once (default 4): a
                ``Router`` connection's requests waiting for their backends, a
                ``MsgServer`` user's requests running; past it the connection is not read
                until one is answered
``request_timeout``  seconds a ``Router`` waits for a backend's answer to one request
                (default 30; always a number: a backend that never answers pins nothing)
``handshake_timeout``  seconds a ``MsgServer`` connection has to send its handshake
                (default 5); then it is closed
``max_handshaking``  ``MsgServer`` connections waiting for their handshake at once
                (default 1024), not counted against ``maxclient``; when that many wait, a
                new connection closes the one that has waited longest
"""

from __future__ import annotations

import math
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from meshnet.admission import Network, networks
from meshnet.errors import MeshnetError
from meshnet.framing import MAX_PAYLOAD

WARN_UNSENT = 1 << 20
"""Unsent bytes at which a connection's first ``warning`` fires (then at twice that, ...)."""
NODE_MAX_UNSENT = 256 << 20
"""Default cap on the unsent bytes of all the gate connections of a node together."""


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
    max_packet_rate: float | None = None
    max_unsent: int = 16 << 20
    node_max_unsent: int | None = None
    max_per_address: int | None = None
    per_address_exempt: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    tls_cert: str | None = None
    tls_key: str | None = None
    max_in_flight: int = 4
    request_timeout: float = 30.0
    handshake_timeout: float = 5.0
    max_handshaking: int = 1024

    @property
    def proxies(self) -> tuple[Network, ...]:
        return networks(self.trusted_proxies)


def parse_conf(conf: Mapping[str, Any]) -> GateConf:
    """Check ``conf`` key by key and return it as a ``GateConf``."""
    if not isinstance(conf, Mapping):
        raise GateConfError(f"gate conf must be a dict of settings, got {type(conf).__name__}")
    known = {field.name for field in fields(GateConf)}
    for key in conf:
        if key not in known:
            raise GateConfError(f"unknown gate conf key {key!r}; known keys: {sorted(known)}")
    values = dict(conf)
    for key in ("per_address_exempt", "trusted_proxies"):
        if key in values:
            _check(isinstance(values[key], list | tuple), key, "a list of addresses or networks")
            values[key] = tuple(values[key])
    parsed = GateConf(**values)
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
    rate = parsed.max_packet_rate
    _check(_positive_or_none(rate), "max_packet_rate", "a number of packets > 0, or None")
    _check(_int_in(parsed.max_unsent, WARN_UNSENT, None), "max_unsent", f"an int >= {WARN_UNSENT}")
    node_limit = parsed.node_max_unsent
    _check(
        node_limit is None or _int_in(node_limit, parsed.max_unsent, None),
        "node_max_unsent",
        "an int >= max_unsent, or None",
    )
    limit = parsed.max_per_address
    _check(limit is None or _int_in(limit, 1, None), "max_per_address", "an int >= 1, or None")
    for key in ("per_address_exempt", "trusted_proxies"):
        for text in getattr(parsed, key):
            _check(_is_network(text), key, f"a list of addresses or networks; {text!r} is not")
    _check(_int_in(parsed.max_in_flight, 1, None), "max_in_flight", "an int >= 1")
    for key in ("request_timeout", "handshake_timeout"):
        _check(_positive(getattr(parsed, key)), key, "a number of seconds > 0")
    _check(_int_in(parsed.max_handshaking, 1, None), "max_handshaking", "an int >= 1")
    tls = (parsed.tls_cert, parsed.tls_key)
    for key, value in zip(("tls_cert", "tls_key"), tls, strict=True):
        _check(value is None or (isinstance(value, str) and value), key, "a file name")
    _check((tls[0] is None) == (tls[1] is None), "tls_key", "given with tls_cert (both or none)")
    return parsed


def _check(ok: object, key: str, expected: str) -> None:
    if not ok:
        raise GateConfError(f"gate conf {key!r} must be {expected}")


def _int_in(value: object, low: int, high: int | None) -> bool:
    return type(value) is int and value >= low and (high is None or value <= high)


def _positive_or_none(value: object) -> bool:
    return value is None or _positive(value)


def _positive(value: object) -> bool:
    return type(value) in (int, float) and 0 < value < math.inf  # type: ignore[operator]


def _is_network(text: object) -> bool:
    try:
        networks([text])  # type: ignore[list-item]
    except (TypeError, ValueError):
        return False
    return isinstance(text, str)


def tls_context(conf: GateConf) -> ssl.SSLContext | None:
    """The server TLS context of ``conf``'s certificate and key (None without them)."""
    if conf.tls_cert is None or conf.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(conf.tls_cert, conf.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise GateConfError(
            f"gate conf 'tls_cert'/'tls_key': cannot load {conf.tls_cert!r} and "
            f"{conf.tls_key!r}: {exc}"
        ) from None
    return context

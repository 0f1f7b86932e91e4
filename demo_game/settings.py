"""The demo game's settings: the start arguments of ``demo_game.main:Main``.

A node config can only give its start service a list of arguments, so the settings come as
tables, each naming one or more sections; ``demo_game/node.toml`` puts one section a line:

    args = [
      { hub = { address = "127.0.0.1", port = 5678, ws_port = 5679 } },
      { accounts = { path = "var/demo_accounts.sqlite3", scrypt_n = 16384 } },
    ]

Sections, every key optional (``DEFAULTS`` has the values used for what is left out):

``hub``        the gate's conf (``meshnet.gate.conf`` keys): TCP ``port``, WebSocket ``ws_port``,
               ``heartbeat`` (seconds a connection may stay silent before it is closed)
``login``      the login server: ``address``, ``port``, ``maxclient`` (connections at once),
               ``handshake_timeout`` (seconds a client has for its part of the handshake),
               ``max_per_address`` and ``per_address_exempt`` (as in the gate conf)
``msgserver``  the msgserver's gate conf plus ``servername``, the game server's name
``web``        the HTTP server of the browser page: ``address``, ``port``
``accounts``   the SQLite file ``path`` (relative to the working directory) and the scrypt
               cost ``scrypt_n`` (a power of 2, at least 2 and below 2 ** (16 * r)),
               ``scrypt_r``, ``scrypt_p`` (1 to 16), at most ``MAX_SCRYPT_MEMORY`` bytes
               a hash; ``hash_threads``, the threads computing hashes (0: one per core),
               and ``hash_wait``, the seconds a hash may wait for one before the sign-in
               is answered ``busy`` (``demo_game.hashpool``)
``signin``     the limit on failed sign-ins (``demo_game.signin_limits``): ``max_failures``
               per name and per address every ``failure_period`` seconds, except from the
               addresses or networks ``per_address_exempt``
``agent``      ``reconnect_window``: seconds an agent waits for its user to come back
``cluster``    ``roles``: which part of the game this node of a cluster runs, a list of
               ``ROLES``; left out, the node runs the whole game on its own (see
               ``demo_game.main``), without the subgame
``gold``       the gold and the subgame (in a cluster only): ``starting`` (the gold a new
               player has in the main game), ``timeout`` (seconds a hand-off of gold may
               take before it is deferred), ``subgame_path`` (the subgame's SQLite file;
               the main game's gold is kept in the accounts file), ``redis`` (where
               deferred hand-offs wait; empty: the cluster's own Redis)

Everything is checked before anything starts: a port outside 0..65535 or a scrypt cost
the hash would refuse (so every signup would fail) is a ``SettingsError`` naming the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demo_game.accounts import ScryptCost
from meshnet.admission import networks
from meshnet.cluster.config import REDIS_SCHEMES
from meshnet.errors import MeshnetError
from meshnet.gate.conf import GateConfError, parse_conf

PER_ADDRESS = {"max_per_address": 32, "per_address_exempt": ["127.0.0.0/8", "::1"]}
"""One client address holds at most 32 connections of each server, except loopback (the
robots, and the demo's own client)."""
PER_CONNECTION = {"max_packet_rate": 200, "max_in_flight": 2}
"""A player's connection sends at most 200 packets a second and has two requests in
progress at most: far more than the game needs, and what keeps a few flooding clients from
taking the node's CPU from everyone else."""

DEFAULTS: dict[str, dict[str, Any]] = {
    "hub": {
        "address": "127.0.0.1",
        "port": 5678,
        "ws_port": 5679,
        "maxclient": 10000,
        "heartbeat": 120.0,
        **PER_ADDRESS,
        **PER_CONNECTION,
    },
    "login": {
        "address": "127.0.0.1",
        "port": 8001,
        "maxclient": 1024,
        "handshake_timeout": 10.0,
        **PER_ADDRESS,
    },
    "msgserver": {
        "address": "127.0.0.1",
        "port": 8888,
        "servername": "demo",
        **PER_ADDRESS,
        **PER_CONNECTION,
    },
    "web": {"address": "127.0.0.1", "port": 8080},
    "accounts": {
        "path": "var/demo_accounts.sqlite3",
        "scrypt_n": 2**14,
        "scrypt_r": 8,
        "scrypt_p": 1,
        "hash_threads": 0,
        "hash_wait": 3.0,
    },
    "signin": {
        "max_failures": 5,
        "failure_period": 60.0,
        "per_address_exempt": PER_ADDRESS["per_address_exempt"],
    },
    "agent": {"reconnect_window": 10.0},
    "cluster": {},
    "gold": {
        "starting": 100,
        "timeout": 5.0,
        "subgame_path": "var/demo_subgame.sqlite3",
        "redis": "",
    },
}

_CHECKED: dict[str, dict[str, tuple[type, ...]]] = {
    "login": {
        "address": (str,),
        "port": (int,),
        "maxclient": (int,),
        "handshake_timeout": (int, float),
        "max_per_address": (int,),
        "per_address_exempt": (list,),
    },
    "web": {"address": (str,), "port": (int,)},
    "accounts": {
        "path": (str,),
        "scrypt_n": (int,),
        "scrypt_r": (int,),
        "scrypt_p": (int,),
        "hash_threads": (int,),
        "hash_wait": (int, float),
    },
    "signin": {
        "max_failures": (int,),
        "failure_period": (int, float),
        "per_address_exempt": (list,),
    },
    "agent": {"reconnect_window": (int, float)},
    "cluster": {"roles": (list,)},
    "gold": {"starting": (int,), "timeout": (int, float), "subgame_path": (str,), "redis": (str,)},
}
"""Sections checked here, key -> accepted types; ``hub`` and ``msgserver`` are checked by
the gates they configure."""


ROLES = ("front", "game", "accounts", "subgame")
"""The parts of the game a node of a cluster may run: ``front`` the servers players
connect to (hub, auth, login server, msgserver, browser page), ``game`` the manager and
the agents, ``accounts`` the accounts database (and the main game's gold), ``subgame``
the second game system (its wallet and its agents)."""
ONE_NODE_ROLES = ("front", "game", "accounts")
"""What a node runs on its own: everything but the subgame, which is a node of its own."""

MAX_SCRYPT_MEMORY = 1 << 30
"""Bytes one scrypt hash may take (128 * n * r): a typo in the cost must not make every
signin swap the machine to death."""
MAX_SCRYPT_P = 16


class SettingsError(MeshnetError):
    """A demo setting is unknown or has the wrong type or value; the message names it."""


@dataclass(frozen=True)
class Settings:
    """The checked settings of a demo node (see this module's docstring)."""

    hub: dict[str, Any]
    login_address: str
    login_port: int
    login_limits: dict[str, Any]
    """The login server's ``maxclient``, ``handshake_timeout`` and per-address limit."""
    msgserver: dict[str, Any]
    web_address: str
    web_port: int
    accounts_path: Path
    scrypt: ScryptCost
    hashing: dict[str, Any]
    """``hash_threads`` and ``hash_wait``."""
    signin: dict[str, Any]
    """``max_failures``, ``failure_period`` and ``per_address_exempt``."""
    reconnect_window: float
    starting_gold: int = 100
    gold_timeout: float = 5.0
    subgame_path: Path = Path("var/demo_subgame.sqlite3")
    gold_redis: str = ""
    """Where deferred hand-offs of gold wait; empty: the cluster's Redis."""
    roles: frozenset[str] = frozenset(ONE_NODE_ROLES)
    """What this node runs: every role, unless it is one node of a cluster."""
    cluster: bool = False
    """The node is one of a cluster (the ``cluster`` section gave its roles)."""

    @property
    def servername(self) -> str:
        return self.msgserver["servername"]


def parse_settings(*groups: Mapping[str, Any]) -> Settings:
    """Merge ``groups`` (tables of sections) over ``DEFAULTS`` and check them."""
    merged = {section: dict(values) for section, values in DEFAULTS.items()}
    for group in groups:
        if not isinstance(group, Mapping):
            raise SettingsError(f"demo settings come as tables of sections, not {group!r}")
        for section, values in group.items():
            if section not in merged:
                raise SettingsError(
                    f"unknown demo settings section {section!r} (known: {', '.join(merged)})"
                )
            if not isinstance(values, Mapping):
                raise SettingsError(f"demo settings section {section!r} must be a table")
            merged[section].update(values)
    for section, keys in _CHECKED.items():
        _check_section(section, merged[section], keys)
    accounts, login, web = merged["accounts"], merged["login"], merged["web"]
    _check_values(merged)
    return Settings(
        hub=merged["hub"],
        login_address=login["address"],
        login_port=login["port"],
        login_limits={key: login[key] for key in login if key not in ("address", "port")},
        msgserver=merged["msgserver"],
        web_address=web["address"],
        web_port=web["port"],
        accounts_path=Path(accounts["path"]),
        scrypt=ScryptCost(accounts["scrypt_n"], accounts["scrypt_r"], accounts["scrypt_p"]),
        hashing={key: accounts[key] for key in ("hash_threads", "hash_wait")},
        signin=merged["signin"],
        reconnect_window=float(merged["agent"]["reconnect_window"]),
        starting_gold=merged["gold"]["starting"],
        gold_timeout=float(merged["gold"]["timeout"]),
        subgame_path=Path(merged["gold"]["subgame_path"]),
        gold_redis=merged["gold"]["redis"],
        roles=frozenset(merged["cluster"].get("roles", ONE_NODE_ROLES)),
        cluster="roles" in merged["cluster"],
    )


def _check_section(section: str, values: dict[str, Any], keys: dict[str, tuple[type, ...]]) -> None:
    for key, value in values.items():
        types = keys.get(key)
        if types is None:
            raise SettingsError(
                f"unknown demo setting '{section}.{key}' (known: {', '.join(keys)})"
            )
        if isinstance(value, bool) or not isinstance(value, types):
            wanted = " or ".join(t.__name__ for t in types)
            raise SettingsError(
                f"demo setting '{section}.{key}' must be {wanted}, not {type(value).__name__}"
            )


def _check_values(merged: dict[str, dict[str, Any]]) -> None:
    """The checks on values, once every type is right."""
    for section in ("login", "web"):
        _require(merged[section]["address"] != "", f"{section}.address", "a host name or IP")
        _require(0 <= merged[section]["port"] <= 65535, f"{section}.port", "a port 0..65535")
    login = merged["login"]
    _require(login["maxclient"] >= 1, "login.maxclient", "1 or more")
    _require(0 < login["handshake_timeout"] < math.inf, "login.handshake_timeout", "> 0 seconds")
    _require(login["max_per_address"] >= 1, "login.max_per_address", "1 or more")
    signin = merged["signin"]
    for section in ("login", "signin"):
        try:
            networks(merged[section]["per_address_exempt"])
        except (TypeError, ValueError):
            _require(False, f"{section}.per_address_exempt", "a list of addresses or networks")
    _require(signin["max_failures"] >= 1, "signin.max_failures", "1 or more")
    _require(0 < signin["failure_period"] < math.inf, "signin.failure_period", "> 0 seconds")
    accounts = merged["accounts"]
    _require(accounts["hash_threads"] >= 0, "accounts.hash_threads", "0 (one per core) or more")
    _require(0 < accounts["hash_wait"] < math.inf, "accounts.hash_wait", "> 0 seconds")
    _require(accounts["path"] != "", "accounts.path", "a file name")
    cost = ScryptCost(accounts["scrypt_n"], accounts["scrypt_r"], accounts["scrypt_p"])
    _require(cost.r >= 1, "accounts.scrypt_r", "1 or more")
    _require(1 <= cost.p <= MAX_SCRYPT_P, "accounts.scrypt_p", f"1 to {MAX_SCRYPT_P}")
    _require(
        2 <= cost.n < 2 ** (16 * cost.r) and cost.n & (cost.n - 1) == 0,
        "accounts.scrypt_n",
        "a power of 2, at least 2 and below 2 ** (16 * scrypt_r)",
    )
    _require(
        cost.memory <= MAX_SCRYPT_MEMORY,
        "accounts.scrypt_n",
        f"small enough that a hash takes at most {MAX_SCRYPT_MEMORY >> 20} MiB "
        f"(128 * r * (n + p + 2) = {cost.memory >> 20} MiB)",
    )
    roles = merged["cluster"].get("roles", ROLES)
    _require(
        all(role in ROLES for role in roles) and 0 < len(set(roles)) == len(roles),
        "cluster.roles",
        f"a list of different roles out of {', '.join(map(repr, ROLES))}",
    )
    window = merged["agent"]["reconnect_window"]
    _require(0 <= window < math.inf, "agent.reconnect_window", "0 or more seconds")
    gold = merged["gold"]
    _require(gold["starting"] >= 0, "gold.starting", "0 or more")
    _require(0 < gold["timeout"] < math.inf, "gold.timeout", "> 0 seconds")
    _require(gold["subgame_path"] != "", "gold.subgame_path", "a file name")
    _require(
        gold["redis"] == "" or gold["redis"].startswith(REDIS_SCHEMES),
        "gold.redis",
        f"empty or a URL starting with {', '.join(REDIS_SCHEMES)}",
    )
    _check_gate("hub", merged["hub"])
    msgserver = dict(merged["msgserver"])
    servername = msgserver.pop("servername", None)
    _require(
        isinstance(servername, str) and servername != "",
        "msgserver.servername",
        "the game server's name",
    )
    _check_gate("msgserver", msgserver)


def _check_gate(section: str, conf: dict[str, Any]) -> None:
    try:
        parse_conf(conf)
    except GateConfError as exc:
        raise SettingsError(f"demo settings section {section!r}: {exc}") from None


def _require(ok: bool, key: str, expected: str) -> None:
    if not ok:
        raise SettingsError(f"demo setting '{key}' must be {expected}")

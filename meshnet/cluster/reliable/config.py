"""The settings of a reliable service (``ReliableService``'s start argument): a table,
as it comes from a node config's ``[start] args``::

    { system = "main",                          # this system's name
      store = "var/main.sqlite3",               # its SQLite file
      redis = "redis://127.0.0.1:6379/0",       # where deferred commands are kept
      peers = { subgame = "subgame@wallet" },   # system = the address or name of its service
      prefix = "meshnet:reliable",              # the first part of the Redis keys
      timeout = 5.0,                            # seconds one delivery may take
      retry = 1.0, retry_max = 30.0,            # redelivery: first delay, doubling up to max
      redis_timeout = 2.0 }                     # seconds Redis may take to answer
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshnet.cluster.config import REDIS_SCHEMES
from meshnet.cluster.reliable.command import CommandError, check_system
from meshnet.errors import MeshnetError

DEFAULT_PREFIX = "meshnet:reliable"


class ReliableConfigError(MeshnetError):
    """A reliable service's settings are wrong; the message names the key."""


@dataclass(frozen=True)
class ReliableConfig:
    """A reliable service's settings; see the module docstring."""

    system: str
    store: str
    redis: str
    peers: Mapping[str, str] = field(default_factory=dict)
    prefix: str = DEFAULT_PREFIX
    timeout: float = 5.0
    retry: float = 1.0
    retry_max: float = 30.0
    redis_timeout: float = 2.0

    @classmethod
    def parse(cls, table: Mapping[str, Any]) -> ReliableConfig:
        """The settings in ``table``; ``ReliableConfigError`` naming the key if one is
        missing, unknown or wrong."""
        if not isinstance(table, Mapping):
            raise ReliableConfigError(f"the settings must be a table, not {table!r}")
        unknown = sorted(set(table) - set(_KEYS))
        if unknown:
            raise ReliableConfigError(
                f"unknown key(s) {', '.join(map(repr, unknown))} (known: {', '.join(_KEYS)})"
            )
        for key, (required, kind, meaning) in _KEYS.items():
            if key not in table:
                if required:
                    raise ReliableConfigError(f"missing key {key!r}: {meaning}")
                continue
            value = table[key]
            if not isinstance(value, kind) or isinstance(value, bool):
                raise ReliableConfigError(f"{key!r} must be {meaning}, not {value!r}")
            if kind is str and not value:
                raise ReliableConfigError(f"{key!r} must be {meaning}, not empty")
            if kind == (int, float) and value <= 0:
                raise ReliableConfigError(f"{key!r} must be positive seconds, not {value!r}")
        try:
            check_system("system", table["system"])
            for system in table.get("peers", {}):
                check_system(f"peers.{system}", system)
        except CommandError as exc:
            raise ReliableConfigError(str(exc)) from None
        peers = table.get("peers", {})
        if not all(isinstance(target, str) and target for target in peers.values()):
            raise ReliableConfigError("'peers' maps each system to its service's address or name")
        if not table["redis"].startswith(REDIS_SCHEMES):
            raise ReliableConfigError(
                f"'redis' must be a URL starting with {', '.join(REDIS_SCHEMES)}, "
                f"not {table['redis']!r}"
            )
        if table.get("retry_max", cls.retry_max) < table.get("retry", cls.retry):
            raise ReliableConfigError("'retry_max' must be at least 'retry'")
        numbers = {key: float(table[key]) for key in _SECONDS if key in table}
        return cls(
            system=table["system"],
            store=table["store"],
            redis=table["redis"],
            peers=dict(peers),
            prefix=table.get("prefix", DEFAULT_PREFIX),
            **numbers,
        )


_SECONDS = ("timeout", "retry", "retry_max", "redis_timeout")

_KEYS: dict[str, tuple[bool, type | tuple[type, ...], str]] = {
    "system": (True, str, "this system's name"),
    "store": (True, str, "the path of its SQLite file"),
    "redis": (True, str, "the URL of the Redis keeping deferred commands"),
    "peers": (False, dict, "a table of system = its service's address or name"),
    "prefix": (False, str, "the first part of the Redis keys"),
    **{key: (False, (int, float), "seconds") for key in _SECONDS},
}

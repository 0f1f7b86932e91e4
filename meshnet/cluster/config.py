"""The ``[cluster]`` section of a node config: where the node listens for links, the
shared secret, timings and limits, and how it discovers the other nodes.

    [cluster]
    secret_env = "MESHNET_CLUSTER_SECRET"   # or secret = "..." (at least 16 characters)
    file = "cluster.toml"                   # static discovery: the cluster file; or
    [cluster.nodes]                         # ... the nodes inline:
    front = { address = "127.0.0.1:7101", id = 1 }
    game = { address = "127.0.0.1:7102", id = 2 }
    sknode = { address = "127.0.0.1:2528", protocol = "skynet" }   # a skynet node
    [cluster.names]                         # cluster-wide names: name = node
    manager = "game"

A skynet node (``protocol = "skynet"``, no ``id``) is called over skynet's own cluster
protocol; the ``skynet_*`` keys set up the listener skynet nodes call (see
``meshnet.cluster.skynet.config``).

The node's own entry (by its ``[node] name``) says where it listens (``listen`` overrides
the bind address, e.g. ``0.0.0.0:7101``). ``discovery = "redis"`` with ``redis = "redis://
host:port/db"`` takes the nodes and names from Redis instead (the node registers itself
with its ``address``, under keys that begin with the cluster's ``name``; see
``meshnet.cluster.redis_discovery``).
"""

from __future__ import annotations

import os
import ssl
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshnet.cluster.members import MESHNET, NAME, Member, MemberError, parse_host_port
from meshnet.cluster.skynet.config import (
    SKYNET_KEYS,
    SkynetConfigError,
    SkynetSettings,
    parse_skynet,
)
from meshnet.cluster.workers import WorkersClusterError, worker_table
from meshnet.errors import MeshnetError
from meshnet.workers import current_worker

MIN_SECRET = 16
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
UNSPECIFIED_HOSTS = ("0.0.0.0", "::", "")


class ClusterConfigError(MeshnetError):
    """The ``[cluster]`` section or the cluster file is wrong; the message names the key."""


@dataclass(frozen=True)
class ClusterConfig:
    """Everything a node needs to join a cluster."""

    secret: bytes
    listen: tuple[str, int] | None = None
    """Where to bind (default: the node's own address in the view)."""
    advertise: tuple[str, int] | None = None
    """The address other nodes dial (Redis discovery); default: ``listen``."""
    nodes: dict[str, Member] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    file: Path | None = None
    discovery: str = "static"
    name: str = "meshnet"
    """The cluster's name: the prefix of its keys in Redis (clusters can share a Redis)."""
    redis: str | None = None
    ttl: float = 3.0
    heartbeat: float = 1.0
    down_after: float = 3.0
    connect_timeout: float = 3.0
    handshake_timeout: float = 5.0
    max_handshakes: int = 64
    """Connections still in the handshake at once; past it the oldest is closed."""
    tls: LinkTLS | None = None
    """Links over TLS (both ends: the same certificate authority), or None."""
    skynet: SkynetSettings = field(default_factory=SkynetSettings)
    """The ``skynet_*`` keys: the listener skynet nodes call (``meshnet.cluster.skynet``)."""


_KEYS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "secret": (str, "the shared cluster secret"),
    "secret_env": (str, "the environment variable holding the secret"),
    "listen": (str, "host:port to bind"),
    "address": (str, "host:port other nodes dial (Redis discovery)"),
    "file": (str, "the cluster file (static discovery)"),
    "nodes": (dict, "name = {address, id, absent, protocol}"),
    "names": (dict, "cluster-wide name = node"),
    "discovery": (str, '"static" or "redis"'),
    "name": (str, "the cluster's name (Redis discovery: its keys' prefix)"),
    "redis": (str, "redis://host:port/db"),
    "ttl": ((int, float), "seconds a node's registration lives in Redis"),
    "heartbeat": ((int, float), "seconds between pings"),
    "down_after": ((int, float), "seconds of silence before a peer is down"),
    "connect_timeout": ((int, float), "seconds to connect and handshake"),
    "handshake_timeout": ((int, float), "seconds an accepted connection has to authenticate"),
    "max_handshakes": (int, "connections in the handshake at once"),
    "tls_cert": (str, "the PEM certificate this node shows on links"),
    "tls_key": (str, "the PEM private key of tls_cert"),
    "tls_ca": (str, "the PEM authority link certificates must chain to (default: tls_cert)"),
    **SKYNET_KEYS,
}


def parse_cluster(table: dict[str, Any], base: Path, node_name: str) -> ClusterConfig:
    """A ``ClusterConfig`` from the ``[cluster]`` table of a config in directory ``base``
    (as this worker reads it, in a node run as workers: ``meshnet.cluster.workers``)."""
    worker = current_worker()
    if worker is not None:
        try:
            table = worker_table(table, worker)
        except WorkersClusterError as exc:
            raise ClusterConfigError(str(exc)) from None
    for key, value in table.items():
        if key not in _KEYS:
            raise ClusterConfigError(f"unknown key 'cluster.{key}' (known: {', '.join(_KEYS)})")
        types, meaning = _KEYS[key]
        if not isinstance(value, types) or isinstance(value, bool):
            raise ClusterConfigError(f"'cluster.{key}' must be {meaning}, not {value!r}")
    discovery = table.get("discovery", "static")
    if discovery not in ("static", "redis"):
        raise ClusterConfigError(
            f'\'cluster.discovery\' must be "static" or "redis", not {discovery!r}'
        )
    file = (base / table["file"]).resolve() if "file" in table else None
    if file is not None and "nodes" in table:
        raise ClusterConfigError("give the nodes either in 'cluster.file' or in [cluster.nodes]")
    nodes, names = (
        read_cluster_file(file) if file else (table.get("nodes", {}), table.get("names", {}))
    )
    members = parse_members(nodes, where="cluster.nodes" if file is None else str(file))
    timings = {
        key: float(table[key]) for key in _KEYS if key in table and _KEYS[key][0] == (int, float)
    }
    for key, value in timings.items():
        if value <= 0:
            raise ClusterConfigError(f"'cluster.{key}' must be positive seconds, not {value}")
    config = ClusterConfig(
        secret=_secret(table),
        listen=_address(table, "listen"),
        advertise=_address(table, "address"),
        nodes=members,
        names=_names(names, members, discovery),
        file=file,
        discovery=discovery,
        name=_cluster_name(table),
        redis=_redis_url(table),
        max_handshakes=table.get("max_handshakes", 64),
        tls=_tls(table, base),
        skynet=_skynet(table),
        **timings,
    )
    _check_self(config, node_name)
    return config


def read_cluster_file(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``[nodes]`` and ``[names]`` tables of a cluster file."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ClusterConfigError(f"{path}: no such cluster file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ClusterConfigError(f"{path}: cannot read the cluster file: {exc}") from None
    unknown = set(raw) - {"nodes", "names"}
    if unknown:
        raise ClusterConfigError(
            f"{path}: unknown table(s) {sorted(unknown)} (known: nodes, names)"
        )
    return raw.get("nodes", {}), raw.get("names", {})


def parse_members(nodes: Any, where: str) -> dict[str, Member]:
    """``name = {address = "host:port", id = N, absent = false}`` entries as Members
    (``protocol = "skynet"`` instead of ``id`` for a skynet node)."""
    if not isinstance(nodes, dict):
        raise ClusterConfigError(f"{where}: the nodes must be a table of name = {{...}}")
    members: dict[str, Member] = {}
    ids: dict[int, str] = {}
    for name, entry in nodes.items():
        if not isinstance(entry, dict) or set(entry) - {"address", "id", "absent", "protocol"}:
            raise ClusterConfigError(
                f'{where}.{name}: must be {{address = "host:port", id = N, absent = false}}, '
                'or {address = "host:port", protocol = "skynet"} for a skynet node'
            )
        try:
            host, port = parse_host_port(str(entry.get("address", "")), f"{where}.{name}.address")
            protocol = entry.get("protocol", MESHNET)
            node_id = entry.get("id")
            if protocol == MESHNET and (not isinstance(node_id, int) or isinstance(node_id, bool)):
                raise MemberError(f"{where}.{name}.id: must be an integer, not {node_id!r}")
            member = Member(name, node_id, host, port, bool(entry.get("absent", False)), protocol)
        except MemberError as exc:
            raise ClusterConfigError(str(exc)) from None
        if node_id is None:
            members[name] = member
            continue
        if node_id in ids:
            raise ClusterConfigError(
                f"{where}: nodes {ids[node_id]!r} and {name!r} share id {node_id}"
            )
        ids[node_id] = name
        members[name] = member
    return members


def _names(names: Any, members: dict[str, Member], discovery: str) -> dict[str, str]:
    if not isinstance(names, dict) or not all(isinstance(v, str) for v in names.values()):
        raise ClusterConfigError('cluster names must be a table of name = "node"')
    for name, node in names.items():
        if discovery == "static" and node not in members:
            raise ClusterConfigError(
                f"cluster name {name!r} names node {node!r}, which is not listed"
            )
    return dict(names)


def _skynet(table: dict[str, Any]) -> SkynetSettings:
    try:
        return parse_skynet(table)
    except SkynetConfigError as exc:
        raise ClusterConfigError(str(exc)) from None


def _cluster_name(table: dict[str, Any]) -> str:
    name = table.get("name", "meshnet")
    if not NAME.fullmatch(name):
        raise ClusterConfigError(
            f"'cluster.name' must be 1-64 letters, digits, '_' or '-', not {name!r}"
        )
    return name


def _redis_url(table: dict[str, Any]) -> str | None:
    url = table.get("redis")
    if url is not None and not url.startswith(REDIS_SCHEMES):
        raise ClusterConfigError(
            f"'cluster.redis' must be a URL starting with {', '.join(REDIS_SCHEMES)}, "
            f"such as redis://127.0.0.1:6379/0, not {url!r}"
        )
    return url


@dataclass(frozen=True)
class LinkTLS:
    """The TLS contexts of the links: for dialing (client) and for accepting (server).

    Both show the node's certificate and require the peer's to chain to the authority.
    Names are not checked: the handshake's secret says who is who; TLS keeps the bytes
    private and unaltered on the way."""

    client: ssl.SSLContext
    server: ssl.SSLContext


def _tls(table: dict[str, Any], base: Path) -> LinkTLS | None:
    if "tls_cert" not in table and "tls_key" not in table:
        if "tls_ca" in table:
            raise ClusterConfigError("'cluster.tls_ca' needs 'cluster.tls_cert' and 'tls_key'")
        return None
    if "tls_cert" not in table or "tls_key" not in table:
        raise ClusterConfigError("TLS on links needs both 'cluster.tls_cert' and 'cluster.tls_key'")
    cert, key = base / table["tls_cert"], base / table["tls_key"]
    authority = base / table.get("tls_ca", table["tls_cert"])
    contexts = []
    try:
        for protocol in (ssl.PROTOCOL_TLS_CLIENT, ssl.PROTOCOL_TLS_SERVER):
            context = ssl.SSLContext(protocol)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.check_hostname = False
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_cert_chain(cert, key)
            context.load_verify_locations(authority)
            contexts.append(context)
    except (OSError, ssl.SSLError) as exc:
        raise ClusterConfigError(
            f"cannot load the links' TLS certificate, key or authority: {exc}"
        ) from None
    return LinkTLS(*contexts)


def _secret(table: dict[str, Any]) -> bytes:
    if "secret" in table and "secret_env" in table:
        raise ClusterConfigError("give either 'cluster.secret' or 'cluster.secret_env', not both")
    if "secret_env" in table:
        secret = os.environ.get(table["secret_env"])
        if secret is None:
            raise ClusterConfigError(
                f"'cluster.secret_env' names {table['secret_env']!r}, which is not set"
            )
    elif "secret" in table:
        secret = table["secret"]
    else:
        raise ClusterConfigError(
            "the cluster needs a secret: 'cluster.secret' or 'cluster.secret_env'"
        )
    if len(secret) < MIN_SECRET:
        raise ClusterConfigError(f"the cluster secret must have at least {MIN_SECRET} characters")
    return secret.encode()


def _address(table: dict[str, Any], key: str) -> tuple[str, int] | None:
    if key not in table:
        return None
    try:
        return parse_host_port(table[key], f"cluster.{key}")
    except MemberError as exc:
        raise ClusterConfigError(str(exc)) from None


def _check_self(config: ClusterConfig, node_name: str) -> None:
    if config.discovery == "redis" and any(m.skynet for m in config.nodes.values()):
        raise ClusterConfigError(
            'skynet nodes (protocol = "skynet") are entries of the static cluster table, '
            "which Redis discovery does not read"
        )
    if config.discovery == "static":
        if node_name not in config.nodes:
            raise ClusterConfigError(f"this node ({node_name!r}) is not among the cluster's nodes")
        if config.nodes[node_name].skynet:
            raise ClusterConfigError(
                f'this node ({node_name!r}) is listed with protocol "skynet": a meshnet '
                "node speaks meshnet's protocol on its links (skynet nodes call its "
                "'cluster.skynet_listen')"
            )
        return
    if config.redis is None:
        raise ClusterConfigError("'cluster.discovery = \"redis\"' needs 'cluster.redis'")
    if config.advertise is not None:
        return
    if config.listen is None:
        raise ClusterConfigError("Redis discovery needs 'cluster.address' (host:port to dial)")
    if config.listen[0] in UNSPECIFIED_HOSTS:
        raise ClusterConfigError(
            f"'cluster.listen' binds {config.listen[0]!r}, which other nodes cannot dial: "
            "give 'cluster.address' (the host:port they dial)"
        )

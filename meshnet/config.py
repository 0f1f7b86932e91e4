"""Node configuration files (TOML): reading, checking, and clear errors naming the key."""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshnet.context import DEFAULT_CALL_TIMEOUT
from meshnet.errors import MeshnetError
from meshnet.gcpolicy import MAX_THRESHOLD, YOUNG_THRESHOLD, GcThresholdError, check_threshold
from meshnet.hostport import HostPortError, is_loopback, parse_hostport
from meshnet.sections import Section, registered_sections
from meshnet.watchdog import DEFAULT_SLOW_HANDLER
from meshnet.workers import MAX_WORKERS, Worker, current_worker

NO_TIMEOUT = "none"
"""``call_timeout = "none"``: calls without a timeout of their own wait forever."""
PYTHON_GC = "python"
"""``gc_threshold = "python"``: keep CPython's own garbage collector setting."""


class ConfigError(MeshnetError):
    """The configuration file is missing, is not TOML, or has a wrong or unknown key."""


@dataclass(frozen=True)
class NodeConfig:
    """Everything ``python -m meshnet node CONFIG`` needs to boot a node."""

    path: Path
    name: str
    node_id: int
    start_service: str
    start_args: list[Any] = field(default_factory=list)
    log_level: str = "INFO"
    call_timeout: float | None = DEFAULT_CALL_TIMEOUT
    strict_codec: bool = False
    paths: list[Path] = field(default_factory=list)
    sections: list[tuple[Section, Any]] = field(default_factory=list)
    """The packages' sections (``[cluster]``, ...) with what each ``parse`` read."""
    console: tuple[str, int] | None = None
    """Where the debug console listens (``meshnet.console``), if anywhere."""
    console_password: str | None = None
    metrics: tuple[str, int] | None = None
    """Where the metrics endpoint and status page listen (``meshnet.metrics``)."""
    slow_handler: float | None = DEFAULT_SLOW_HANDLER
    """Seconds a handler may hold the event loop before it is logged (None: never)."""
    gc_threshold: int | None = YOUNG_THRESHOLD
    """Allocations between two young garbage collections (``meshnet.gcpolicy``; None:
    CPython's own setting)."""
    workers: int = 1
    """Node processes sharing the client-facing ports (``meshnet.workers``)."""
    worker: Worker | None = None
    """Which of them this process is, if it is one; the name, id, console and metrics
    above are then already this worker's."""

    @property
    def supervises(self) -> bool:
        """True if this process runs no node but supervises ``workers`` worker processes."""
        return self.workers > 1 and self.worker is None


def load_config(path: str | Path) -> NodeConfig:
    """Read and check a node config; raise ConfigError with a message naming the problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return _build(path, raw)


_SCHEMA: dict[str, dict[str, tuple[type | tuple[type, ...], bool]]] = {
    "node": {
        "name": (str, True),
        "id": (int, True),
        "log_level": (str, False),
        "call_timeout": ((int, float, str), False),
        "strict_codec": (bool, False),
        "paths": (list, False),
        "console": (str, False),
        "console_password": (str, False),
        "metrics": (str, False),
        "slow_handler": ((int, float, str), False),
        "workers": (int, False),
        "gc_threshold": ((int, str), False),
    },
    "start": {
        "service": (str, True),
        "args": (list, False),
    },
}
"""Section -> key -> (accepted types, required)."""


def _build(path: Path, raw: dict[str, Any]) -> NodeConfig:
    extensions = registered_sections() if set(raw) - set(_SCHEMA) else {}
    for section, values in raw.items():
        if section not in _SCHEMA and section not in extensions:
            known = ", ".join([*_SCHEMA, *sorted(extensions)])
            raise ConfigError(f"{path}: unknown section [{section}] (known: {known})")
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: '{section}' must be a table [{section}]")
    checked = {section: _check_section(path, section, raw.get(section, {})) for section in _SCHEMA}
    node, start = checked["node"], checked["start"]
    if not 0 <= node["id"] <= 255:
        raise ConfigError(f"{path}: node.id must be between 0 and 255, not {node['id']}")
    level = node.get("log_level", "INFO").upper()
    if not isinstance(logging.getLevelName(level), int):
        raise ConfigError(f"{path}: node.log_level {level!r} is not a logging level")
    timeout = _seconds(path, "call_timeout", node.get("call_timeout", DEFAULT_CALL_TIMEOUT))
    slow_handler = _seconds(path, "slow_handler", node.get("slow_handler", DEFAULT_SLOW_HANDLER))
    console = _hostport(path, "console", node.get("console"))
    password = node.get("console_password")
    _check_console(path, console, password)
    paths = node.get("paths", [])
    if not all(isinstance(p, str) for p in paths):
        raise ConfigError(f"{path}: node.paths must be a list of directory names")
    workers = _workers(path, node)
    worker = current_worker() if workers > 1 else None
    name, node_id = node["name"], node["id"]
    metrics = _hostport(path, "metrics", node.get("metrics"))
    if worker is not None:
        name, node_id = worker.node_name(), worker.node_id()
        console, metrics = _offset(console, worker.index), _offset(metrics, worker.index)
    # A supervisor runs no node: its workers read the packages' sections.
    wanted = {} if workers > 1 and worker is None else extensions
    return NodeConfig(
        path=path,
        name=name,
        node_id=node_id,
        start_service=start["service"],
        start_args=start.get("args", []),
        log_level=level,
        call_timeout=timeout,
        strict_codec=node.get("strict_codec", False),
        paths=[(path.parent / p).resolve() for p in paths],
        sections=[
            (section, _parse_section(path, key, section, raw[key], name))
            for key, section in wanted.items()
            if key in raw
        ],
        console=console,
        console_password=password,
        metrics=metrics,
        slow_handler=slow_handler,
        gc_threshold=_gc_threshold(path, node.get("gc_threshold", YOUNG_THRESHOLD)),
        workers=workers,
        worker=worker,
    )


def _workers(path: Path, node: dict[str, Any]) -> int:
    workers = node.get("workers", 1)
    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(
            f"{path}: node.workers must be between 1 and {MAX_WORKERS}, not {workers}"
        )
    if node["id"] + workers - 1 > 255:
        raise ConfigError(
            f"{path}: node.workers = {workers} from node.id {node['id']} needs ids up to "
            f"{node['id'] + workers - 1}, past 255 (worker i has id node.id + i)"
        )
    worker = current_worker()
    if worker is not None and workers > 1 and worker.count != workers:
        raise ConfigError(
            f"{path}: node.workers is {workers}, but this worker was started as one of "
            f"{worker.count}"
        )
    return workers


def _gc_threshold(path: Path, value: int | str) -> int | None:
    """Allocations per young collection, or None for ``"python"``: CPython's own."""
    if value == PYTHON_GC:
        return None
    try:
        return check_threshold(value)  # type: ignore[arg-type]
    except GcThresholdError:
        raise ConfigError(
            f"{path}: node.gc_threshold must be 1 to {MAX_THRESHOLD} allocations or "
            f"{PYTHON_GC!r} (CPython's own setting), not {value!r}"
        ) from None


def _offset(hostport: tuple[str, int] | None, index: int) -> tuple[str, int] | None:
    """A worker's own port: the configured one + its index (0 stays 0, "pick one")."""
    if hostport is None or hostport[1] == 0:
        return hostport
    return hostport[0], hostport[1] + index


def _parse_section(path: Path, name: str, section: Section, table: Any, node_name: str) -> Any:
    try:
        return section.parse(table, path.parent, node_name)
    except MeshnetError as exc:
        raise ConfigError(f"{path}: [{name}]: {exc}") from None


def _seconds(path: Path, key: str, value: float | str) -> float | None:
    """A positive number of seconds, or None for ``"none"``."""
    if value == NO_TIMEOUT:
        return None
    if isinstance(value, str) or value <= 0:
        raise ConfigError(
            f"{path}: node.{key} must be positive seconds or {NO_TIMEOUT!r}, not {value!r}"
        )
    return float(value)


def _hostport(path: Path, key: str, value: str | None) -> tuple[str, int] | None:
    if value is None:
        return None
    try:
        return parse_hostport(value)
    except HostPortError as exc:
        raise ConfigError(f"{path}: node.{key}: {exc}") from None


def _check_console(path: Path, console: tuple[str, int] | None, password: str | None) -> None:
    if console is None:
        if password is not None:
            raise ConfigError(f"{path}: node.console_password is set but node.console is not")
        return
    if password == "":
        raise ConfigError(f"{path}: node.console_password must not be empty")
    if password is None and not is_loopback(console[0]):
        raise ConfigError(
            f"{path}: node.console listens on {console[0]}, which is not a loopback "
            "address: set node.console_password too (the console can start services and "
            "call any command)"
        )


def _check_section(path: Path, section: str, values: dict[str, Any]) -> dict[str, Any]:
    schema = _SCHEMA[section]
    for key, value in values.items():
        if key not in schema:
            raise ConfigError(f"{path}: unknown key '{section}.{key}' (known: {', '.join(schema)})")
        types, _ = schema[key]
        if not isinstance(value, types) or (
            isinstance(value, bool) and bool not in _as_tuple(types)
        ):
            wanted, got = _type_names(types), type(value).__name__
            raise ConfigError(f"{path}: '{section}.{key}' must be {wanted}, not {got}")
    for key, (_, required) in schema.items():
        if required and key not in values:
            raise ConfigError(f"{path}: missing required key '{section}.{key}'")
    return values


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _type_names(types: type | tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in _as_tuple(types))

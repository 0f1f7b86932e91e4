"""Node configuration files (TOML): reading, checking, and clear errors naming the key."""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshnet.context import DEFAULT_CALL_TIMEOUT
from meshnet.errors import MeshnetError
from meshnet.hostport import HostPortError, is_loopback, parse_hostport
from meshnet.sections import Section, registered_sections
from meshnet.watchdog import DEFAULT_SLOW_HANDLER

NO_TIMEOUT = "none"
"""``call_timeout = "none"``: calls without a timeout of their own wait forever."""


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
    return NodeConfig(
        path=path,
        name=node["name"],
        node_id=node["id"],
        start_service=start["service"],
        start_args=start.get("args", []),
        log_level=level,
        call_timeout=timeout,
        strict_codec=node.get("strict_codec", False),
        paths=[(path.parent / p).resolve() for p in paths],
        sections=[
            (section, _parse_section(path, name, section, raw[name], node["name"]))
            for name, section in extensions.items()
            if name in raw
        ],
        console=console,
        console_password=password,
        metrics=_hostport(path, "metrics", node.get("metrics")),
        slow_handler=slow_handler,
    )


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

"""Node configuration files (TOML): reading, checking, and clear errors naming the key."""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshnet.context import DEFAULT_CALL_TIMEOUT
from meshnet.errors import MeshnetError
from meshnet.sections import Section, registered_sections

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
    timeout = _call_timeout(path, node.get("call_timeout", DEFAULT_CALL_TIMEOUT))
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
    )


def _parse_section(path: Path, name: str, section: Section, table: Any, node_name: str) -> Any:
    try:
        return section.parse(table, path.parent, node_name)
    except MeshnetError as exc:
        raise ConfigError(f"{path}: [{name}]: {exc}") from None


def _call_timeout(path: Path, value: float | str) -> float | None:
    if value == NO_TIMEOUT:
        return None
    if isinstance(value, str) or value <= 0:
        raise ConfigError(
            f"{path}: node.call_timeout must be positive seconds or {NO_TIMEOUT!r}, not {value!r}"
        )
    return float(value)


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

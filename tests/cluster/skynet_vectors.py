"""Reading the vectors recorded from a real skynet build (tests/vectors/skynet_*.json).

The files' "notes" describe how they were recorded and their conventions: byte strings as
hex or (when long) size + sha1, ``pattern(n)`` payloads, and Lua values described in the
order skynet.pack writes them.
"""

import hashlib
import json
import math
import struct
from functools import cache
from pathlib import Path
from typing import Any

import pytest

VECTORS_DIR = Path(__file__).resolve().parents[1] / "vectors"

Entry = dict[str, Any]


@cache
def load(filename: str) -> dict[str, Any]:
    return json.loads((VECTORS_DIR / filename).read_text())


def cases(filename: str, section: str) -> list[Any]:
    """One ``pytest.param`` per entry of a section, named by its comment."""
    entries = load(filename)[section]
    return [
        pytest.param(entry, id=f"{n}-{entry.get('comment', '')}") for n, entry in enumerate(entries)
    ]


def pattern(size: int) -> bytes:
    """The recordings' long payload: byte i is (i*31 + (i >> 8)) & 0xff."""
    return bytes((i * 31 + (i >> 8)) & 0xFF for i in range(size))


def matches(data: bytes, spec: Entry) -> bool:
    """Whether ``data`` is the byte string a vector describes."""
    if "hex" in spec:
        return data.hex() == spec["hex"]
    return len(data) == spec["size"] and hashlib.sha1(data).hexdigest() == spec["sha1"]


def short_bytes(spec: Entry) -> bytes:
    return bytes.fromhex(spec["hex"])


def split_packets(stream: bytes) -> list[bytes]:
    """A byte stream cut at its 2-byte length prefixes, each packet keeping its prefix."""
    packets, start = [], 0
    while start < len(stream):
        end = start + 2 + int.from_bytes(stream[start : start + 2], "big")
        packets.append(stream[start:end])
        start = end
    return packets


def python_value(value: Any) -> Any:
    """A transcript value as the Python value it stands for (see the files' conventions)."""
    if isinstance(value, list):
        return [python_value(v) for v in value]
    if isinstance(value, dict):
        if "dict" in value:
            return {python_value(k): python_value(v) for k, v in value["dict"]}
        if "pattern" in value:
            return pattern(value["pattern"])
        if "repeat" in value:
            return value["repeat"] * value["times"]
        return short_bytes(value)
    return value


def as_recorded(specs: list[Entry], rebuilt: bytes) -> bytes:
    """The recorded packets' bytes: as hex, or ``rebuilt`` once proven equal by size and sha1."""
    if all("hex" in spec for spec in specs):
        return b"".join(short_bytes(spec) for spec in specs)
    packets = split_packets(rebuilt)
    assert len(packets) == len(specs) and all(map(matches, packets, specs))
    return rebuilt


def lua_string(desc: Entry) -> bytes:
    if "hex" in desc:
        return short_bytes(desc)
    data = pattern(desc["size"])
    assert matches(data, desc), "a long recorded string is always pattern(size)"
    return data


def packable(desc: Entry) -> Any:
    """A Python value that packs to the bytes skynet wrote for this Lua value."""
    kind = desc["t"]
    if kind == "table":
        array = [packable(item) for item in desc["array"]]
        if not desc["hash"]:
            return array
        table: dict = dict(enumerate(array, 1))
        table.update((packable(k), packable(v)) for k, v in desc["hash"])
        return table
    return _scalar(desc)


def as_unpacked(desc: Entry) -> Any:
    """The Python value our unpack gives for this Lua value (the documented mapping)."""
    kind = desc["t"]
    if kind == "table":
        table = {i: as_unpacked(v) for i, v in enumerate(desc["array"], 1) if v["t"] != "nil"}
        table.update((as_unpacked(k), as_unpacked(v)) for k, v in desc["hash"])
        if all(type(k) is int and 0 < k <= len(table) for k in table):
            return [table[k] for k in range(1, len(table) + 1)]
        return table
    return _scalar(desc)


def _scalar(desc: Entry) -> Any:
    kind = desc["t"]
    if kind == "nil":
        return None
    if kind == "bool":
        return desc["v"]
    if kind == "int":
        return int(desc["v"])
    if kind == "real":
        return struct.unpack("<d", short_bytes(desc))[0]
    if kind == "str":
        data = lua_string(desc)
        try:
            return data.decode()
        except UnicodeDecodeError:
            return data
    raise AssertionError(f"no Python value for a Lua {kind}")


def same(a: Any, b: Any) -> bool:
    """Equal values of the same types; floats compared bit for bit (NaN, -0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        keys_a = sorted(map(_key_id, a))
        return keys_a == sorted(map(_key_id, b)) and all(same(a[k], b[k]) for k in a)
    return a == b


def _key_id(key: Any) -> str:
    return f"{type(key).__name__}:{key!r}"

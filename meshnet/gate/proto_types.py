"""Field types of the proto library: parsing declarations, checking values, describing types.

Declarations use plain Python: `str`, `int`, `float`, `bool`, `bytes`, `list[T]`, a `Struct`
declared on the same protocol, and `T | None` for an optional field. A check runs on every
packet, so the success path only checks; the path to a bad value is collected while the
error unwinds.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType, NoneType, UnionType
from typing import Any, Union, get_args, get_origin

from meshnet.gate.proto_errors import (
    FieldTypeError,
    InvalidBody,
    MissingField,
    ProtoDeclarationError,
    UnknownField,
)

INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
"""An int field holds a signed 64-bit integer, so clients in any language can represent it."""

TypeDescription = str | dict[str, Any]
"""A type in the JSON table: "str", "int", "float", "bool", "bytes", a struct name, or
{"list": <item type>}."""


class FieldType(ABC):
    """The type of a field. `label` names it in errors; `depth` counts nested containers."""

    label: str
    depth: int

    @abstractmethod
    def check(self, value: Any) -> None:
        """Raise `Mismatch` unless `value` has this type."""

    @abstractmethod
    def describe(self) -> TypeDescription:
        """This type as it appears in the JSON table."""


class Scalar(FieldType):
    """A field type of single values (``int``, ``str``, ...), checked by a predicate."""

    depth = 0

    def __init__(self, label: str, accepts: Callable[[Any], bool]) -> None:
        self.label = label
        self._accepts = accepts

    def check(self, value: Any) -> None:
        if not self._accepts(value):
            raise Mismatch(FieldTypeError, self.label, kind_of(value))

    def describe(self) -> TypeDescription:
        return self.label


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and INT_MIN <= value <= INT_MAX


STR = Scalar("str", lambda value: isinstance(value, str))
INT = Scalar("int", _is_int)
# CBOR encoders of other languages (JavaScript's, notably) send a whole float such as 1.0 as 1.
FLOAT = Scalar("float", lambda value: isinstance(value, float) or _is_int(value))
BOOL = Scalar("bool", lambda value: value is True or value is False)
BYTES = Scalar("bytes", lambda value: isinstance(value, bytes | bytearray))
SCALARS: Mapping[type, Scalar] = MappingProxyType(
    {str: STR, int: INT, float: FLOAT, bool: BOOL, bytes: BYTES}
)


class ListOf(FieldType):
    """Declared as `list[T]`."""

    def __init__(self, item: FieldType) -> None:
        self.item = item
        self.label = f"list[{item.label}]"
        self.depth = 1 + item.depth

    def check(self, value: Any) -> None:
        if not isinstance(value, list | tuple):
            raise Mismatch(FieldTypeError, self.label, kind_of(value))
        check_item = self.item.check
        for index, item in enumerate(value):
            try:
                check_item(item)
            except Mismatch as mismatch:
                mismatch.reversed_path.append(index)
                raise

    def describe(self) -> TypeDescription:
        return {"list": self.item.describe()}


@dataclass(frozen=True, slots=True)
class Field:
    """A declared field of a struct or body: its name, its type, and if it may be left out."""

    name: str
    type: FieldType
    optional: bool

    def describe(self) -> dict[str, Any]:
        """This field as it appears in the JSON table."""
        return {"name": self.name, "type": self.type.describe(), "optional": self.optional}


class Struct(FieldType):
    """A map with declared fields: a named struct, or (with `name` None) a message body."""

    def __init__(self, name: str | None, fields: Mapping[str, Field]) -> None:
        self.name = name
        self.fields: Mapping[str, Field] = MappingProxyType(dict(fields))
        self.label = name or "map"
        self.depth = 1 + max((field.type.depth for field in fields.values()), default=0)
        self._checks = tuple((f.name, f.type.check, f.optional) for f in fields.values())

    def check(self, value: Any) -> None:
        if not isinstance(value, dict):
            raise Mismatch(FieldTypeError, self.label, kind_of(value))
        present = 0
        for name, check, optional in self._checks:
            try:
                item = value[name]
            except KeyError:
                if optional:
                    continue
                raise Mismatch(MissingField, path=name) from None
            present += 1
            if item is None and optional:
                continue
            try:
                check(item)
            except Mismatch as mismatch:
                mismatch.reversed_path.append(name)
                raise
        if present != len(value):
            unknown = next(key for key in value if key not in self.fields)
            raise Mismatch(UnknownField, unknown, tuple(self.fields))

    def describe(self) -> TypeDescription:
        return self.label

    def describe_fields(self) -> list[dict[str, Any]]:
        """The declared fields as they appear in the JSON table, in order."""
        return [field.describe() for field in self.fields.values()]

    def __or__(self, other: object) -> "_Optional":
        """`Item | None` declares an optional field of struct type."""
        if other is None:
            return _Optional(self)
        return NotImplemented

    __ror__ = __or__

    def __repr__(self) -> str:
        return f"<Struct {self.label}: {', '.join(self.fields)}>"


class Mismatch(Exception):
    """Raised by `FieldType.check`; becomes the public error once the path is complete."""

    def __init__(self, error: type[InvalidBody], *details: Any, path: str | None = None) -> None:
        super().__init__()
        self.error = error
        self.details = details
        self.reversed_path: list[str | int] = [] if path is None else [path]

    def to_error(self, context: str) -> InvalidBody:
        """The public ``InvalidBody`` error, its path complete, ``context`` naming the message."""
        return self.error(context, tuple(reversed(self.reversed_path)), *self.details)


def parse_fields(
    owner: str, declared: Mapping[str, Any] | None, structs: Collection[Struct]
) -> dict[str, Field]:
    """Turn `{"name": type, ...}` into Fields; `structs` are the ones a field may refer to."""
    if declared is None:
        return {}
    if not isinstance(declared, Mapping):
        raise ProtoDeclarationError(
            f"{owner}: fields must be a dict of field name -> type, got {kind_of(declared)}"
        )
    fields = {}
    for name, spec in declared.items():
        if not isinstance(name, str) or not name:
            raise ProtoDeclarationError(f"{owner}: a field name must be a non-empty str: {name!r}")
        optional, spec = _split_optional(spec)
        fields[name] = Field(name, _parse_type(f"{owner}, field '{name}'", spec, structs), optional)
    return fields


def kind_of(value: Any) -> str:
    """Name `value`'s type in wire terms, for error messages."""
    if isinstance(value, int) and not isinstance(value, bool) and not _is_int(value):
        return "int outside the signed 64-bit range"
    return _KINDS.get(type(value)) or type(value).__name__


_KINDS = {
    NoneType: "null",
    bool: "bool",
    int: "int",
    float: "float",
    str: "str",
    bytes: "bytes",
    bytearray: "bytes",
    list: "list",
    tuple: "list",
    dict: "map",
}


class _Optional:
    __slots__ = ("struct",)

    def __init__(self, struct: Struct) -> None:
        self.struct = struct

    def __repr__(self) -> str:
        return f"{self.struct.label} | None"


def _split_optional(spec: Any) -> tuple[bool, Any]:
    if isinstance(spec, _Optional):
        return True, spec.struct
    if get_origin(spec) in (Union, UnionType):
        others = [arg for arg in get_args(spec) if arg is not NoneType]
        if len(others) == 1 and len(get_args(spec)) == 2:
            return True, others[0]
    return False, spec


def _parse_type(where: str, spec: Any, structs: Collection[Struct]) -> FieldType:
    if isinstance(spec, type) and spec in SCALARS:
        return SCALARS[spec]
    if isinstance(spec, Struct):
        if not any(spec is struct for struct in structs):
            raise ProtoDeclarationError(
                f"{where}: struct {spec.label!r} is not declared on this protocol"
            )
        return spec
    if get_origin(spec) is list and len(get_args(spec)) == 1:
        return ListOf(_parse_type(where, get_args(spec)[0], structs))
    shown = spec.__name__ if isinstance(spec, type) else repr(spec)
    raise ProtoDeclarationError(
        f"{where}: unsupported type {shown}; use str, int, float, bool, bytes, list[T], "
        "a struct declared on this protocol, or T | None for an optional field"
    )

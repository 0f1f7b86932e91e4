"""skynet's serialization, ``skynet.pack`` / ``skynet.unpack`` (lualib-src/lua-seri.c).

A skynet message is a sequence of values (a call's arguments, a function's multiple
returns): ``pack(*values) -> bytes`` packs one, ``unpack(data) -> tuple`` reads one back.

Wire format. Each value starts with a tag byte ``type | cookie << 3``; numbers after the tag
are little-endian (skynet copies them from memory on little-endian machines)::

    type 0  nil         (skynet reads any cookie as nil)
    type 1  boolean     cookie 0 false, 1 true (skynet reads any non-zero cookie as true)
    type 2  number      cookie 0: the integer 0, nothing follows
                               1: uint8   2: uint16   4: int32   6: int64   8: double
                        skynet writes the smallest: 1..0xff as uint8, 0x100..0xffff as
                        uint16, the rest of the int32 range as int32, the others as int64
    type 3  userdata    an 8-byte pointer (Lua light userdata)
    type 4  string      cookie = length 0..31, then the bytes
    type 5  string      cookie 2: uint16 length, 4: uint32 length, then the bytes (skynet
                        writes this form for 32 bytes and more)
    type 6  table       cookie = array size n 0..30, or 31 and then a number value holding n;
                        then n values (keys 1..n), then key, value pairs, then a nil
    type 7  invalid

Every value may sit inside at most ``MAX_DEPTH`` (32) tables: skynet refuses to pack one
deeper (so an empty table can still be the 33rd level), and we refuse to unpack one.

Python mapping, packing:

* ``None`` is nil, ``bool`` a boolean, ``int`` an integer (it must fit Lua's int64),
  ``float`` a real.
* ``str`` is sent as its UTF-8 bytes; ``bytes``, ``bytearray`` and ``memoryview`` as they
  are. Lua strings are byte strings, so both arrive in Lua as strings.
* ``list`` and ``tuple`` are a table's array part (keys 1..n); a ``None`` item is a nil hole.
* Any other mapping (``dict``) is a table: its integer keys 1..n (n as large as they run)
  go to the array part, the rest to the hash part in the mapping's order. An item whose
  value is ``None`` is left out, because a nil field is an absent field in Lua. Keys must
  be ``str``, ``bytes``, ``int``, ``float`` (not NaN; 2.0 is sent as the integer 2, the key
  Lua stores) or ``bool``.
* Anything else (functions, sets, objects), a table that contains itself, and nesting past
  ``MAX_DEPTH`` raise :class:`SeriPackError`, which says where in the value the problem is.

Python mapping, unpacking:

* nil is ``None``, a boolean ``bool``, an integer ``int``, a real ``float``.
* A string is ``str`` when its bytes are valid UTF-8 and ``bytes`` otherwise, which suits
  game code (names, commands and keys are text; binary blobs stay bytes). Pass
  ``text=False`` to always get ``bytes``, for data whose type must not depend on its
  content.
* A table whose keys are exactly 1..n (n >= 0, so the empty table too) is a ``list``;
  any other table, mixed ones included, is a ``dict`` with Lua's keys (integer keys stay
  1-based). A table key that is itself a table, and a table holding both ``true`` and
  ``1`` (or ``false`` and ``0``, one key in Python), raise :class:`SeriUnpackError`.
* Light userdata (a pointer into another process) raises :class:`SeriUnpackError`, as do
  truncated values, bad tags, and nesting past ``MAX_DEPTH``. Bytes after the last value
  are read as further values, as skynet does, so trailing garbage raises too.

A round trip gives back what Lua would see: tuples come back as lists, dicts keyed 1..n as
lists, an empty dict as ``[]``; ``None`` holes and fields vanish; bytes that are UTF-8
come back as ``str``.
"""

import math
import struct
from collections.abc import Mapping

from meshnet.cluster.skynet.errors import SkynetProtocolError

MAX_DEPTH = 32
"""How many tables a value may sit inside (lua-seri.c's MAX_DEPTH)."""


class SeriPackError(SkynetProtocolError):
    """A Python value cannot be sent as a skynet message.

    ``reason`` says why; ``path`` is where in the packed values it is, as index steps
    (``values[0]['items'][2]``: the first value's key ``'items'``, its third item).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = ""

    def _inside(self, step: str) -> None:
        self.path = step + self.path
        self.args = (f"{self.reason} (at values{self.path})",)


class SeriUnpackError(SkynetProtocolError):
    """Received bytes are not a valid skynet message, or hold what Python cannot represent."""


def pack(*values: object) -> bytes:
    """The bytes ``skynet.pack(...)`` makes of these values."""
    out = bytearray()
    for index, value in enumerate(values):
        try:
            _pack_value(out, value, 0, set())
        except SeriPackError as error:
            error._inside(f"[{index}]")
            raise
    return bytes(out)


def unpack(data: bytes | bytearray | memoryview, *, text: bool = True) -> tuple:
    """The values ``skynet.unpack`` reads from ``data`` (an empty message gives ``()``).

    ``text``: strings that are valid UTF-8 become ``str`` (the default); ``False`` keeps
    every string as ``bytes``.
    """
    reader = _Reader(bytes(data), text)
    values = []
    while reader.pos < len(reader.data):
        values.append(reader.value(0))
    return tuple(values)


# Tag bytes: type | cookie << 3.
_NIL = 0x00
_FALSE = 0x01
_TRUE = 0x09
_ZERO = 0x02
_BYTE = 0x0A
_WORD = 0x12
_DWORD = 0x22
_QWORD = 0x32
_REAL = 0x42
_SHORT_STRING = 0x04
_LONG_STRING_16 = 0x15
_LONG_STRING_32 = 0x25
_TABLE = 0x06

_SHORT_STRING_LIMIT = 32  # lua-seri.c's MAX_COOKIE: lengths below fit in the tag
_ARRAY_IN_TAG = 31  # array sizes below fit in the tag; this cookie says a number follows
_MAX_STRING = 0x7FFFFFFF  # skynet passes lengths as C int

_U16 = struct.Struct("<H")
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")
_DOUBLE = struct.Struct("<d")

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _pack_value(out: bytearray, value: object, depth: int, open_tables: set[int]) -> None:
    if depth > MAX_DEPTH:
        raise SeriPackError(f"nested inside more than {MAX_DEPTH} tables")
    if value is None:
        out.append(_NIL)
    elif isinstance(value, bool):
        out.append(_TRUE if value else _FALSE)
    elif isinstance(value, int):
        _pack_integer(out, value)
    elif isinstance(value, float):
        out.append(_REAL)
        out += _DOUBLE.pack(value)
    elif isinstance(value, str):
        try:
            encoded = value.encode()
        except UnicodeEncodeError as error:
            raise SeriPackError(f"str is not encodable as UTF-8: {error.reason}") from None
        _pack_string(out, encoded)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        _pack_string(out, bytes(value))
    elif isinstance(value, (list, tuple)):
        _pack_table(out, value, value, (), depth, open_tables)
    elif isinstance(value, Mapping):
        array, fields = _split_mapping(value)
        _pack_table(out, value, array, fields, depth, open_tables)
    else:
        raise SeriPackError(
            f"{type(value).__name__} cannot be packed: skynet messages carry nil, booleans, "
            "numbers, strings and tables"
        )


def _pack_integer(out: bytearray, value: int) -> None:
    if value == 0:
        out.append(_ZERO)
    elif _INT32_MIN <= value <= _INT32_MAX:
        if 0 < value < 0x100:
            out.append(_BYTE)
            out.append(value)
        elif 0 < value < 0x10000:
            out.append(_WORD)
            out += _U16.pack(value)
        else:
            out.append(_DWORD)
            out += _I32.pack(value)
    elif _INT64_MIN <= value <= _INT64_MAX:
        out.append(_QWORD)
        out += _I64.pack(value)
    else:
        raise SeriPackError(f"integer {value} does not fit in 64 bits (Lua integers are int64)")


def _pack_string(out: bytearray, data: bytes) -> None:
    size = len(data)
    if size < _SHORT_STRING_LIMIT:
        out.append(_SHORT_STRING | size << 3)
    elif size < 0x10000:
        out.append(_LONG_STRING_16)
        out += _U16.pack(size)
    elif size <= _MAX_STRING:
        out.append(_LONG_STRING_32)
        out += _U32.pack(size)
    else:
        raise SeriPackError(f"string of {size} bytes is longer than skynet can pack")
    out += data


def _pack_table(
    out: bytearray,
    container: object,
    array: list | tuple,
    fields: list[tuple[object, object]] | tuple[()],
    depth: int,
    open_tables: set[int],
) -> None:
    if id(container) in open_tables:
        raise SeriPackError("the value contains itself; a cycle cannot be packed")
    open_tables.add(id(container))
    size = len(array)
    if size < _ARRAY_IN_TAG:
        out.append(_TABLE | size << 3)
    else:
        out.append(_TABLE | _ARRAY_IN_TAG << 3)
        _pack_integer(out, size)
    inner = depth + 1
    for index, item in enumerate(array):
        try:
            _pack_value(out, item, inner, open_tables)
        except SeriPackError as error:
            error._inside(f"[{index if container is array else index + 1!r}]")
            raise
    for key, item in fields:
        try:
            _pack_value(out, key, inner, open_tables)
            _pack_value(out, item, inner, open_tables)
        except SeriPackError as error:
            error._inside(f"[{key!r}]")
            raise
    out.append(_NIL)
    open_tables.discard(id(container))


def _split_mapping(mapping: Mapping) -> tuple[list, list[tuple[object, object]]]:
    """A mapping's array part (keys 1..n) and its other fields, None-valued items left out."""
    fields = []
    integer_keyed = {}
    for key, item in mapping.items():
        if item is None:
            continue
        key = _table_key(key)
        fields.append((key, item))
        if type(key) is int:
            integer_keyed[key] = item
    size = 0
    while size + 1 in integer_keyed:
        size += 1
    array = [integer_keyed[key] for key in range(1, size + 1)]
    rest = [(k, v) for k, v in fields if not (type(k) is int and 1 <= k <= size)]
    return array, rest


def _table_key(key: object) -> object:
    if isinstance(key, float):
        if math.isnan(key):
            raise SeriPackError("NaN cannot be a table key")
        if key.is_integer() and _INT64_MIN <= key <= _INT64_MAX:
            return int(key)
        return key
    if isinstance(key, (bool, int, str, bytes)):
        return key
    raise SeriPackError(
        f"dict key {key!r} of type {type(key).__name__} cannot be packed: "
        "keys must be str, bytes, int, float or bool"
    )


class _Reader:
    """Reads values from one message, keeping the offset for error messages."""

    __slots__ = ("data", "pos", "text")

    def __init__(self, data: bytes, text: bool) -> None:
        self.data = data
        self.pos = 0
        self.text = text

    def value(self, depth: int) -> object:
        tag = self.take(1, "a type tag")[0]
        kind, cookie = tag & 7, tag >> 3
        if kind == 0:
            return None
        if kind == 1:
            return cookie != 0
        if kind == 2:
            return self.real() if cookie == 8 else self.integer(cookie)
        if kind == 4:
            return self.string(cookie)
        if kind == 5:
            if cookie == 2:
                return self.string(_U16.unpack(self.take(2, "a string length"))[0])
            if cookie == 4:
                return self.string(_U32.unpack(self.take(4, "a string length"))[0])
            raise self.bad_tag(tag)
        if kind == 6:
            return self.table(cookie, depth + 1)
        if kind == 3:
            raise SeriUnpackError(
                f"light userdata at offset {self.pos - 1}: a pointer into another process "
                "cannot be received"
            )
        raise self.bad_tag(tag)

    def integer(self, cookie: int) -> int:
        if cookie == 0:
            return 0
        if cookie == 1:
            return self.take(1, "a byte integer")[0]
        if cookie == 2:
            return _U16.unpack(self.take(2, "a word integer"))[0]
        if cookie == 4:
            return _I32.unpack(self.take(4, "a dword integer"))[0]
        if cookie == 6:
            return _I64.unpack(self.take(8, "a qword integer"))[0]
        raise SeriUnpackError(f"bad number subtype {cookie} at offset {self.pos - 1}")

    def real(self) -> float:
        return _DOUBLE.unpack(self.take(8, "a real"))[0]

    def string(self, size: int) -> str | bytes:
        raw = self.take(size, f"a string of {size} bytes")
        if self.text:
            try:
                return raw.decode()
            except UnicodeDecodeError:
                pass
        return raw

    def table(self, cookie: int, inner: int) -> list | dict:
        size = cookie if cookie != _ARRAY_IN_TAG else self.array_size()
        if size > len(self.data) - self.pos:
            raise self.truncated(size, f"an array part of {size} items")
        if inner > MAX_DEPTH and (size or self.pos < len(self.data) and self.data[self.pos] & 7):
            raise SeriUnpackError(
                f"value at offset {self.pos} is nested inside more than {MAX_DEPTH} tables, "
                "deeper than skynet packs"
            )
        array = [self.value(inner) for _ in range(size)]
        fields: dict | None = None
        while (key := self.value(inner)) is not None:
            item = self.value(inner)
            if fields is None:
                fields = {i: v for i, v in enumerate(array, 1) if v is not None}
            self.store(fields, key, item)
        if fields is None:
            if None not in array:
                return array
            fields = {i: v for i, v in enumerate(array, 1) if v is not None}
        count = len(fields)
        if all(type(k) is int and 0 < k <= count for k in fields):
            return [fields[k] for k in range(1, count + 1)]
        return fields

    def array_size(self) -> int:
        tag = self.take(1, "a table's array size")[0]
        if tag & 7 != 2 or tag >> 3 == 8:
            raise SeriUnpackError(
                f"a table's array size at offset {self.pos - 1} is not an integer (tag {tag:#04x})"
            )
        size = self.integer(tag >> 3)
        if size < 0:
            raise SeriUnpackError(f"negative table array size {size} before offset {self.pos}")
        return size

    def store(self, fields: dict, key: object, item: object) -> None:
        """Set a hash-part field as Lua's rawset does (a nil value removes the key)."""
        if isinstance(key, (list, dict)):
            raise SeriUnpackError(
                f"a table is used as a table key before offset {self.pos}; "
                "a Python dict cannot hold it"
            )
        if isinstance(key, float):
            if math.isnan(key):
                raise SeriUnpackError(f"NaN table key before offset {self.pos}")
            if key.is_integer() and _INT64_MIN <= key <= _INT64_MAX:
                key = int(key)  # Lua stores 2.0 as the key 2
        if key in fields and (key == 0 or key == 1):
            stored = next(k for k in fields if k == key)
            if isinstance(stored, bool) != isinstance(key, bool):
                raise SeriUnpackError(
                    f"a table has both keys {stored!r} and {key!r} before offset {self.pos}; "
                    "they are one key in a Python dict"
                )
        if item is None:
            fields.pop(key, None)
        else:
            fields[key] = item

    def take(self, size: int, what: str) -> bytes:
        start = self.pos
        end = start + size
        if end > len(self.data):
            raise self.truncated(size, what)
        self.pos = end
        return self.data[start:end]

    def truncated(self, size: int, what: str) -> SeriUnpackError:
        left = len(self.data) - self.pos
        return SeriUnpackError(
            f"truncated message: {what} needs {size} bytes at offset {self.pos}, {left} left"
        )

    def bad_tag(self, tag: int) -> SeriUnpackError:
        return SeriUnpackError(f"bad type tag {tag:#04x} at offset {self.pos - 1}")

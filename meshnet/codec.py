"""The payload codec: CBOR via cbor2, used wherever a message crosses a process boundary.

Locally, messages travel as Python objects; strict mode (on in tests) sends each one
through ``roundtrip`` so that a payload that could not cross a node boundary fails loudly
where it is sent, not later when the service is moved to another node.
"""

from __future__ import annotations

import io
from typing import Any

import cbor2

from meshnet.errors import MeshnetError

MAX_DEPTH = 64
"""Deepest nesting a payload may have; deeper input is rejected, not recursed into."""
MAX_PAYLOAD = 16 * 1024 * 1024
"""Largest encoded payload of one message between nodes; strict mode holds local
messages to it too, so a service that works on one node still works when moved."""


class CodecError(MeshnetError):
    """A payload cannot be encoded as CBOR, or bytes are not a valid CBOR payload."""


def encode(value: Any) -> bytes:
    """Encode ``value`` as CBOR; raise CodecError naming what could not be encoded."""
    try:
        return cbor2.dumps(value)
    except (cbor2.CBOREncodeError, TypeError, ValueError, RecursionError) as exc:
        raise CodecError(f"cannot encode {_describe(value)} as CBOR: {exc}") from None


def decode(data: bytes) -> Any:
    """Decode one CBOR item that spans all of ``data``; raise CodecError otherwise.

    cbor2.loads ignores bytes after the first item, which would let a corrupted or
    concatenated payload through, so the decoder's position is checked.
    """
    stream = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(stream, max_depth=MAX_DEPTH).decode()
    except (cbor2.CBORDecodeError, TypeError, ValueError, RecursionError, MemoryError) as exc:
        raise CodecError(f"invalid CBOR payload ({len(data)} bytes): {exc}") from None
    if stream.tell() != len(data):
        raise CodecError(
            f"invalid CBOR payload: {len(data) - stream.tell()} bytes after the first item"
        )
    return value


def roundtrip(value: Any) -> Any:
    """Return what the other side of a node boundary would receive for ``value``;
    ``CodecError`` if it could not cross (not CBOR, or over ``MAX_PAYLOAD``)."""
    data = encode(value)
    if len(data) > MAX_PAYLOAD:
        raise CodecError(
            f"payload of {len(data)} bytes is over the {MAX_PAYLOAD} bytes a message may "
            "carry between nodes"
        )
    return decode(data)


def roundtrip_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """``roundtrip`` for a message's arguments, which stay a tuple."""
    return tuple(roundtrip(args))


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."

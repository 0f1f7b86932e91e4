"""The wire format of a link between two meshnet nodes: frames, envelopes, parts.

Every frame is a 4-byte big-endian length (of what follows, at most ``MAX_FRAME``), then
one byte of frame type, then its body::

    frame    = u32 length | u8 type | body
    HELLO    body = CBOR {"version", "node", "id", "incarnation", "nonce"}     (handshake)
    AUTH     body = 32-byte HMAC-SHA256 proof                                   (handshake)
    REFUSE   body = CBOR {"reason", "dial_back"}                                (handshake)
    PING     body = u32 sequence       PONG  body = u32 sequence (the PING's)
    CREDIT   body = u64 destination | u32 messages it may be sent again
    MESSAGE  body = header | the first (or only) part of the payload
    PART     body = u64 source | u64 destination | the next part of that pair's payload

    header   = u8 kind | u8 flags | u64 source | u64 destination | u32 session
               | u32 deadline_ms | u32 payload_length          (struct ">BBQQIII", 30 bytes)

``kind`` is what the message is (``CALL``, ``SEND``, ``ANSWER``, ``FAIL``, ``POST``,
``MULTICAST``); ``flags`` has ``BY_NAME`` when the destination is a name carried in the
payload (``destination`` is then 0). ``deadline_ms`` is the caller's remaining deadline
in milliseconds (0: none), so remote work knows when its caller gives up.
``payload_length`` is the whole payload's, which may be longer than the first part: then
``PART`` frames of the same pair (source, destination) follow, in order, interleaved with
other pairs' frames, until ``payload_length`` bytes have come. A pair has at most one
message in parts at a time, so a big message holds up only its own pair.

Payloads are CBOR: ``CALL``/``SEND`` ``[command, args]`` (``[name, command, args]`` with
``BY_NAME``), ``ANSWER`` the value, ``FAIL`` ``[type, message, target]``, ``POST``
``[kind, args]``, ``MULTICAST`` ``[channel, args]``.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from meshnet import codec
from meshnet.errors import MeshnetError

VERSION = 1
MAX_FRAME = 64 * 1024 + 64
"""Largest frame (type byte and body), so a part of a payload is at most ``PART_SIZE``."""
PART_SIZE = 64 * 1024
MAX_MESSAGE = codec.MAX_PAYLOAD
"""Largest payload of one message, enforced where it is sent (and by strict mode locally)."""

HELLO, AUTH, REFUSE, PING, PONG, CREDIT, MESSAGE, PART = range(1, 9)
FRAME_TYPES = frozenset(range(1, 9))

CALL, SEND, ANSWER, FAIL, POST, MULTICAST = range(1, 7)
KINDS = frozenset(range(1, 7))
BY_NAME = 0x01

_LENGTH = struct.Struct(">I")
FRAME_HEAD = _LENGTH.size + 1
"""Bytes before a frame's body: the length and the frame type."""
_HEADER = struct.Struct(">BBQQIII")
_PAIR = struct.Struct(">QQ")
_SEQUENCE = struct.Struct(">I")
_CREDIT = struct.Struct(">QI")
PROOF_SIZE = 32


class LinkProtocolError(MeshnetError):
    """Bytes from a peer break the link protocol; the link is closed."""


class MessageTooLarge(MeshnetError):
    """A message's payload is over ``MAX_MESSAGE`` bytes: it can cross no link."""

    def __init__(self, size: int) -> None:
        super().__init__(
            f"message of {size} bytes is over the cluster limit of {MAX_MESSAGE} bytes"
        )
        self.size = size


class Envelope(NamedTuple):
    """One message between services on two nodes, with its payload decoded."""

    kind: int
    source: int
    destination: int
    session: int
    deadline_ms: int
    payload: Any
    by_name: bool = False


class Frame(NamedTuple):
    """A frame as the splitter reads it: its type and its body."""

    type: int
    body: bytes


# --- encoding ------------------------------------------------------------------------


def encode_message(
    kind: int,
    source: int,
    destination: int,
    session: int,
    deadline_ms: int,
    payload: Any,
    *,
    by_name: bool = False,
) -> list[bytes]:
    """The frames of one message: a ``MESSAGE`` frame, then ``PART`` frames if its payload
    is over ``PART_SIZE``. ``CodecError`` if the payload is not CBOR, ``MessageTooLarge``
    if it is over ``MAX_MESSAGE``."""
    data = codec.encode(payload)
    check_size(len(data))
    header = _HEADER.pack(
        kind, BY_NAME if by_name else 0, source, destination, session, deadline_ms, len(data)
    )
    frames = [_frame(MESSAGE, header + data[:PART_SIZE])]
    if len(data) > PART_SIZE:
        pair = _PAIR.pack(source, destination)
        for start in range(PART_SIZE, len(data), PART_SIZE):
            frames.append(_frame(PART, pair + data[start : start + PART_SIZE]))
    return frames


def check_size(size: int) -> None:
    """``MessageTooLarge`` if a payload of ``size`` bytes cannot cross a link."""
    if size > MAX_MESSAGE:
        raise MessageTooLarge(size)


def encode_control(frame_type: int, value: Any) -> bytes:
    """A ``HELLO`` or ``REFUSE`` frame (CBOR body)."""
    return _frame(frame_type, codec.encode(value))


def encode_auth(proof: bytes) -> bytes:
    """An ``AUTH`` frame carrying a handshake proof."""
    return _frame(AUTH, proof)


def encode_ping(frame_type: int, sequence: int) -> bytes:
    """A ``PING`` or ``PONG`` frame."""
    return _frame(frame_type, _SEQUENCE.pack(sequence))


def encode_credit(destination: int, messages: int) -> bytes:
    """A ``CREDIT`` frame: ``messages`` more may be sent to ``destination``."""
    return _frame(CREDIT, _CREDIT.pack(destination, messages))


# --- decoding ------------------------------------------------------------------------


class FrameSplitter:
    """Turns the bytes of a link, in any chunking, into frames; ``LinkProtocolError`` on
    a frame over ``MAX_FRAME``, an empty frame, or an unknown frame type."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._unread: list[Frame] = []

    def feed(self, data: bytes) -> list[Frame]:
        """Every frame ``data`` completes (after any given back with ``unread``)."""
        buffer = self._buffer
        buffer += data
        frames, self._unread = self._unread, []
        start = 0
        while len(buffer) - start >= 4:
            (length,) = _LENGTH.unpack_from(buffer, start)
            if not 1 <= length <= MAX_FRAME:
                raise LinkProtocolError(f"frame length {length} is outside 1..{MAX_FRAME}")
            end = start + 4 + length
            if end > len(buffer):
                break
            frame_type = buffer[start + 4]
            if frame_type not in FRAME_TYPES:
                raise LinkProtocolError(f"unknown frame type {frame_type}")
            frames.append(Frame(frame_type, bytes(buffer[start + 5 : end])))
            start = end
        del buffer[:start]
        return frames

    def unread(self, frames: list[Frame]) -> None:
        """Give back frames taken but not handled: the next ``feed`` returns them first."""
        self._unread = frames + self._unread

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buffer)


class Reassembler:
    """Turns ``MESSAGE`` and ``PART`` frames back into envelopes, pair by pair.

    ``max_pending`` bounds the bytes held for messages still in parts (all pairs together),
    so a peer cannot make a node buffer without limit.
    """

    def __init__(self, max_pending: int = 4 * MAX_MESSAGE) -> None:
        self._max_pending = max_pending
        self._pending_bytes = 0
        self._partial: dict[tuple[int, int], tuple[tuple[int, ...], bytearray, int]] = {}

    def feed(self, frame: Frame) -> Envelope | None:
        """The envelope ``frame`` completes, or None while its payload is still in parts."""
        if frame.type == MESSAGE:
            return self._first(frame.body)
        if frame.type == PART:
            return self._next(frame.body)
        raise LinkProtocolError(f"frame type {frame.type} is not a message frame")

    def _first(self, body: bytes) -> Envelope | None:
        if len(body) < _HEADER.size:
            raise LinkProtocolError(f"message header of {len(body)} bytes (needs {_HEADER.size})")
        kind, flags, source, destination, session, deadline_ms, length = _HEADER.unpack_from(body)
        if kind not in KINDS:
            raise LinkProtocolError(f"unknown message kind {kind}")
        if flags & ~BY_NAME:
            raise LinkProtocolError(f"unknown message flags {flags:#x}")
        if length > MAX_MESSAGE:
            raise LinkProtocolError(f"message of {length} bytes is over {MAX_MESSAGE}")
        data = body[_HEADER.size :]
        fields = (kind, flags, source, destination, session, deadline_ms)
        if len(data) == length:
            return _envelope(fields, data)
        if len(data) != PART_SIZE or length < PART_SIZE:
            raise LinkProtocolError(f"first part of {len(data)} bytes for a {length}-byte message")
        pair = (source, destination)
        if pair in self._partial:
            raise LinkProtocolError(f"a second message in parts for pair {pair} began")
        self._hold(length)
        self._partial[pair] = (fields, bytearray(data), length)
        return None

    def _next(self, body: bytes) -> Envelope | None:
        if len(body) <= _PAIR.size:
            raise LinkProtocolError("empty part")
        pair = _PAIR.unpack_from(body)
        entry = self._partial.get(pair)
        if entry is None:
            raise LinkProtocolError(f"a part for pair {pair} with no message begun")
        fields, data, length = entry
        data += body[_PAIR.size :]
        if len(data) > length:
            raise LinkProtocolError(f"parts of pair {pair} exceed the message's {length} bytes")
        if len(data) < length:
            if len(body) - _PAIR.size != PART_SIZE:
                raise LinkProtocolError(f"a short part for pair {pair} before the last")
            return None
        del self._partial[pair]
        self._pending_bytes -= length
        return _envelope(fields, bytes(data))

    def _hold(self, length: int) -> None:
        if self._pending_bytes + length > self._max_pending:
            raise LinkProtocolError(
                f"messages in parts would hold {self._pending_bytes + length} bytes "
                f"(limit {self._max_pending})"
            )
        self._pending_bytes += length


def decode_control(frame: Frame) -> dict[str, Any]:
    """The CBOR map of a ``HELLO`` or ``REFUSE`` frame."""
    try:
        value = codec.decode(frame.body)
    except codec.CodecError as exc:
        raise LinkProtocolError(f"undecodable handshake frame: {exc}") from None
    if not isinstance(value, dict):
        raise LinkProtocolError("a handshake frame must hold a map")
    return value


def decode_sequence(frame: Frame) -> int:
    """The sequence number of a ``PING`` or ``PONG``."""
    if len(frame.body) != _SEQUENCE.size:
        raise LinkProtocolError(f"ping body of {len(frame.body)} bytes")
    return _SEQUENCE.unpack(frame.body)[0]


def decode_credit(frame: Frame) -> tuple[int, int]:
    """(destination, messages) of a ``CREDIT`` frame."""
    if len(frame.body) != _CREDIT.size:
        raise LinkProtocolError(f"credit body of {len(frame.body)} bytes")
    destination, messages = _CREDIT.unpack(frame.body)
    return destination, messages


def decode_auth(frame: Frame) -> bytes:
    """The proof an ``AUTH`` frame carries."""
    if len(frame.body) != PROOF_SIZE:
        raise LinkProtocolError(f"proof of {len(frame.body)} bytes (needs {PROOF_SIZE})")
    return frame.body


# --- helpers -------------------------------------------------------------------------


def _frame(frame_type: int, body: bytes) -> bytes:
    return _LENGTH.pack(len(body) + 1) + bytes((frame_type,)) + body


def _envelope(fields: tuple[int, ...], data: bytes) -> Envelope:
    kind, flags, source, destination, session, deadline_ms = fields
    try:
        payload = codec.decode(data)
    except codec.CodecError as exc:
        raise LinkProtocolError(f"undecodable payload: {exc}") from None
    return Envelope(kind, source, destination, session, deadline_ms, payload, bool(flags & BY_NAME))

"""skynet's cluster wire protocol (lualib-src/lua-cluster.c), as a pure codec.

skynet's ``cluster`` module links two nodes with one TCP connection per direction: the
calling node's clustersender writes requests and reads responses, the called node's
clusteragent reads requests and writes responses. Payloads are ``skynet.pack`` messages
(:mod:`.seri`), except error responses, which carry plain text. Nothing here does I/O:
``encode_*`` return the bytes to write, the decoders take the bytes read in any chunks.

Wire format. Every packet is a 2-byte big-endian length, then that many bytes; numbers
inside are little-endian (u32 = 4 bytes). Requests, caller to callee::

    0x00  u32 address  u32 session  payload                call/push by address
    0x80  u8 n  name(n)  u32 session  payload              call/push by name
    0x01  u32 address  u32 session  u32 size               large call by address: header
    0x41  u32 address  u32 session  u32 size               large push by address: header
    0x81  u8 n  name(n)  u32 session  u32 size             large call by name: header
    0xc1  u8 n  name(n)  u32 session  u32 size             large push by name: header
    0x02  u32 session  part                                a part, more follow
    0x03  u32 session  part                                the last part
    0x04  tag                                              trace tag for the next request

* A payload of fewer than ``MULTI_PART`` (32 KiB) bytes goes in one packet; a larger one
  (``MULTI_PART`` bytes or more) as a header and then parts of ``MULTI_PART`` bytes, the
  last one shorter or equal. Parts carry the header's session and may arrive interleaved
  with other packets (skynet writes them at low priority).
* A push (``cluster.send``) is a call with no answer: session 0 in a one-packet push; a
  large push carries the sender's session so its parts can be matched, and the sender then
  advances its session counter (see :func:`is_split`).
* Sessions are 1..2**31-1, wrapping to 1 (:func:`next_session`).
* Address 0 is a name query (``cluster.query``): the payload is ``skynet.pack(name)`` and
  the answer ``skynet.pack(address)``, or the error ``name not found``.
* A name is 1..255 bytes: ``@name`` for a name registered with ``cluster.register``; other
  strings (``.name``) are looked up as local service names on the called node.
* The trace tag (``skynet.trace``) travels in its own packet just before the request it
  belongs to; skynet's sender writes it as ``(node-peer-session)tag``, at most 32 KiB.

Responses, callee to caller::

    u32 session  0x00  text      error (skynet truncates the text to MULTI_PART bytes)
    u32 session  0x01  payload   ok
    u32 session  0x02  u32 size  large ok: header, for a payload over MULTI_PART bytes
    u32 session  0x03  part      a part (MULTI_PART bytes), more follow
    u32 session  0x04  part      the last part

Unlike requests, a response of exactly ``MULTI_PART`` bytes still goes in one packet.

Decoding. Names and trace tags are ``str`` when valid UTF-8, else ``bytes``. The decoders
raise :class:`SkynetWireError` on anything skynet's sender never writes: an unknown packet
type, wrong sizes, a part with no header, parts adding up to more or less than the header
said, a message over ``max_message``. The stream cannot be trusted after that; close the
connection (skynet's sender reconnects).
"""

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from meshnet.cluster.skynet.errors import SkynetProtocolError
from meshnet.framing import Splitter
from meshnet.framing import pack as frame

MULTI_PART = 0x8000
"""Payloads from this size on (requests) or above it (responses) are sent in parts."""

QUERY_ADDRESS = 0
"""The address of a name query (``cluster.query``)."""
MAX_NAME = 255
MAX_TRACE_TAG = 0x8000
MAX_SESSION = 0x7FFFFFFF
MAX_ADDRESS = 0xFFFFFFFF
MAX_PAYLOAD = 0xFFFFFFFF
"""A large message's size travels as a u32."""
DEFAULT_MAX_MESSAGE = 16 * 1024 * 1024
"""The decoders' default limit on one reassembled payload (skynet has none)."""


class SkynetWireError(SkynetProtocolError):
    """A packet breaks skynet's cluster protocol, or a value cannot be sent in it."""


@dataclass(frozen=True, slots=True)
class Request:
    """A call or push, reassembled when it came in parts.

    ``address`` is a service address, 0 for a name query, or a name (``"@name"``).
    ``session`` is the caller's session, 0 for a one-packet push. ``trace`` is the trace tag
    sent just before it, if any.
    """

    address: int | str | bytes
    session: int
    payload: bytes
    push: bool = False
    trace: str | bytes | None = None


@dataclass(frozen=True, slots=True)
class Response:
    """The answer to the call with this ``session``: a payload if ``ok``, else error text."""

    session: int
    ok: bool
    payload: bytes


def encode_request(address: int | str | bytes, session: int, payload: bytes) -> bytes:
    """The packets of a call (``cluster.call``) to ``address`` under ``session``."""
    return _encode_request(address, session, payload, push=False)


def encode_push(address: int | str | bytes, session: int, payload: bytes) -> bytes:
    """The packets of a push (``cluster.send``).

    ``session`` is written only when the payload is split (:func:`is_split`); the sender
    then takes the next session, as skynet's clustersender does.
    """
    return _encode_request(address, session, payload, push=True)


def encode_trace(tag: str | bytes) -> bytes:
    """The packet that gives the next request a trace tag."""
    raw = _as_bytes(tag, "trace tag")
    if len(raw) > MAX_TRACE_TAG:
        raise SkynetWireError(f"trace tag of {len(raw)} bytes is longer than {MAX_TRACE_TAG}")
    return frame(b"\x04" + raw)


def encode_response(session: int, ok: bool, payload: bytes | str) -> bytes:
    """The packets answering ``session``: ``payload`` if ``ok``, else the error text.

    Error text over ``MULTI_PART`` bytes is truncated, as skynet does.
    """
    _check_range(session, 0, 0xFFFFFFFF, "response session")
    data = _payload_bytes(payload, "response payload")
    head = _U32.pack(session)
    if not ok:
        return frame(head + b"\x00" + data[:MULTI_PART])
    if len(data) <= MULTI_PART:
        return frame(head + b"\x01" + data)
    begin = frame(head + b"\x02" + _U32.pack(len(data)))
    return begin + _parts(data, lambda last: head + (b"\x04" if last else b"\x03"))


def is_split(size: int) -> bool:
    """Whether a request or push payload of ``size`` bytes is sent in parts."""
    return size >= MULTI_PART


def next_session(session: int) -> int:
    """The session a sender uses after ``session`` (skynet wraps past 2**31-1 to 1)."""
    return 1 if session >= MAX_SESSION else session + 1


Message = TypeVar("Message")


class _Decoder(Generic[Message]):
    """What both decoders share: framing, and large messages reassembled by session."""

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self._splitter = Splitter()
        self._large = _Reassembler(max_message)

    @property
    def buffered(self) -> int:
        """Bytes held for messages not complete yet: the parts of large messages received
        so far and an unfinished packet (a reader bounds its memory with this)."""
        return self._large.buffered + self._splitter.pending

    def feed(self, data: bytes) -> list[Message]:
        """Add received bytes; return the messages they complete, in order."""
        done = []
        for packet in self._splitter.feed(data):
            message = self._packet(packet)
            if message is not None:
                done.append(message)
        return done

    def _packet(self, packet: bytes) -> Message | None:
        raise NotImplementedError


class RequestDecoder(_Decoder[Request]):
    """The called side: one per connection, turning received bytes into :class:`Request`."""

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        super().__init__(max_message)
        self._trace: str | bytes | None = None

    def _packet(self, packet: bytes) -> Request | None:
        if not packet:
            raise SkynetWireError("empty request packet")
        kind = packet[0]
        if kind == 0x04:
            self._trace = _text(packet[1:])
            return None
        if kind in (0x02, 0x03):
            session, part = _part(packet)
            done = self._large.add(session, part, last=kind == 0x03)
            if done is None:
                return None
            (address, push, trace), payload = done
            return Request(address, session, payload, push, trace)
        trace, self._trace = self._trace, None
        if kind in (0x00, 0x80):
            address, rest = _address(packet, by_name=kind == 0x80, minimum=4)
            session = _U32.unpack_from(rest)[0]
            return Request(address, session, rest[4:], session == 0, trace)
        if kind in _LARGE_KINDS:
            address, rest = _address(packet, by_name=kind & 0x80 != 0, minimum=8)
            if len(rest) != 8:
                raise SkynetWireError(
                    f"large-request header of {len(packet)} bytes has {len(rest) - 8} "
                    "stray bytes after its size"
                )
            session, size = _TWO_U32.unpack(rest)
            push = kind & 0x40 != 0
            self._large.start(session, size, (address, push, trace), "request")
            return None
        raise SkynetWireError(f"unknown request packet type {kind:#04x}")


class ResponseDecoder(_Decoder[Response]):
    """The calling side: one per connection, turning received bytes into :class:`Response`."""

    def _packet(self, packet: bytes) -> Response | None:
        if len(packet) < 5:
            raise SkynetWireError(f"response packet of {len(packet)} bytes is shorter than 5")
        session = _U32.unpack_from(packet)[0]
        kind = packet[4]
        body = packet[5:]
        if kind == 0x00:
            self._large.drop(session)  # skynet's sender lets an error end a large answer
            return Response(session, False, body)
        if kind == 0x01:
            self._large.refuse_open(session, "response")
            return Response(session, True, body)
        if kind == 0x02:
            if len(body) != 4:
                raise SkynetWireError(
                    f"large-response header of {len(packet)} bytes, expected exactly 9"
                )
            self._large.start(session, _U32.unpack(body)[0], None, "response")
            return None
        if kind in (0x03, 0x04):
            done = self._large.add(session, body, last=kind == 0x04)
            return None if done is None else Response(session, True, done[1])
        raise SkynetWireError(f"unknown response packet type {kind:#04x}")


class _Large:
    """A large message being reassembled."""

    __slots__ = ("size", "about", "parts", "received")

    def __init__(self, size: int, about: object) -> None:
        self.size = size
        self.about = about  # what the finished message needs besides its payload
        self.parts: list[bytes] = []
        self.received = 0


class _Reassembler:
    """Large messages in progress, by session, each bounded by its announced size."""

    def __init__(self, max_message: int) -> None:
        self._max = max_message
        self._open: dict[int, _Large] = {}
        self.buffered = 0
        """Bytes received into the large messages still open."""

    def start(self, session: int, size: int, about: object, what: str) -> None:
        self.refuse_open(session, what)
        if size > self._max:
            raise SkynetWireError(
                f"large {what} of {size} bytes (session {session}) is over the limit of "
                f"{self._max} bytes"
            )
        self._open[session] = _Large(size, about)

    def add(self, session: int, part: bytes, last: bool) -> tuple[object, bytes] | None:
        """Add a part; when it is the last, the message's ``about`` and payload."""
        large = self._open.get(session)
        if large is None:
            raise SkynetWireError(f"part for session {session}, which has no large message open")
        large.received += len(part)
        self.buffered += len(part)
        if large.received > large.size:
            raise SkynetWireError(
                f"parts of session {session} exceed the announced {large.size} bytes"
            )
        large.parts.append(part)
        if not last:
            return None
        self._close(session)
        if large.received != large.size:
            raise SkynetWireError(
                f"parts of session {session} hold {large.received} bytes, "
                f"the header announced {large.size}"
            )
        return large.about, b"".join(large.parts)

    def drop(self, session: int) -> None:
        if session in self._open:
            self._close(session)

    def _close(self, session: int) -> None:
        self.buffered -= self._open.pop(session).received

    def refuse_open(self, session: int, what: str) -> None:
        if session in self._open:
            raise SkynetWireError(f"{what} for session {session} while its large one is open")


_U32 = struct.Struct("<I")
_TWO_U32 = struct.Struct("<II")
_LARGE_KINDS = (0x01, 0x41, 0x81, 0xC1)


def _encode_request(address: int | str | bytes, session: int, payload: bytes, push: bool) -> bytes:
    _check_range(session, 1, MAX_SESSION, "request session")
    head = _address_field(address)
    data = _payload_bytes(payload, "request payload")
    if not is_split(len(data)):
        return frame(head + _U32.pack(0 if push else session) + data)
    kind = head[0] | 0x01 | (0x40 if push else 0)
    header = frame(bytes([kind]) + head[1:] + _TWO_U32.pack(session, len(data)))
    part_head = _U32.pack(session)
    return header + _parts(data, lambda last: (b"\x03" if last else b"\x02") + part_head)


def _parts(data: bytes, head: Callable[[bool], bytes]) -> bytes:
    """``data`` as packets of at most MULTI_PART bytes, each after ``head(last)``."""
    size = len(data)
    packets = []
    for start in range(0, size, MULTI_PART):
        end = start + MULTI_PART
        packets.append(frame(head(end >= size) + data[start:end]))
    return b"".join(packets)


def _address_field(address: int | str | bytes) -> bytes:
    """The type byte and the address of a one-packet request."""
    if isinstance(address, int) and not isinstance(address, bool):
        _check_range(address, 0, MAX_ADDRESS, "address")
        return b"\x00" + _U32.pack(address)
    name = _as_bytes(address, "address")
    if not 1 <= len(name) <= MAX_NAME:
        raise SkynetWireError(f"name of {len(name)} bytes; skynet takes 1 to {MAX_NAME} bytes")
    return b"\x80" + bytes([len(name)]) + name


def _address(packet: bytes, by_name: bool, minimum: int) -> tuple[int | str | bytes, bytes]:
    """A request packet's address and the bytes after it (at least ``minimum``)."""
    if by_name:
        size = packet[1] if len(packet) > 1 else 0
        if size == 0:
            raise SkynetWireError("request by name with an empty or missing name")
        start = 2 + size
        address: int | str | bytes = _text(packet[2:start])
    else:
        start = 5
        address = _U32.unpack_from(packet, 1)[0] if len(packet) >= start else 0
    if len(packet) < start + minimum:
        raise SkynetWireError(f"request packet of {len(packet)} bytes is truncated")
    return address, packet[start:]


def _part(packet: bytes) -> tuple[int, bytes]:
    if len(packet) < 5:
        raise SkynetWireError(f"request part of {len(packet)} bytes is shorter than 5")
    return _U32.unpack_from(packet, 1)[0], packet[5:]


def _text(raw: bytes) -> str | bytes:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw


def _as_bytes(value: str | bytes, what: str) -> bytes:
    if isinstance(value, str):
        try:
            return value.encode()
        except UnicodeEncodeError as error:
            raise SkynetWireError(f"{what} is not encodable as UTF-8: {error.reason}") from None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise SkynetWireError(f"{what} must be str or bytes, not {type(value).__name__}")


def _payload_bytes(payload: bytes | str, what: str) -> bytes:
    data = _as_bytes(payload, what)
    if len(data) > MAX_PAYLOAD:
        raise SkynetWireError(f"{what} of {len(data)} bytes does not fit skynet's u32 size")
    return data


def _check_range(value: int, low: int, high: int, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise SkynetWireError(f"{what} must be an integer from {low} to {high}, got {value!r}")

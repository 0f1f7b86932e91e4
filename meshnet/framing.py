"""skynet's netpack framing: each packet is a 2-byte big-endian length followed by the payload.

`pack` frames one payload; a `Splitter` per connection turns the received byte stream, in
whatever chunks the network delivers it, back into the packets that were sent.
"""

import struct

from meshnet.errors import MeshnetError

MAX_PAYLOAD = 0xFFFF
"""The largest payload a 2-byte length prefix can describe."""


class FramingError(MeshnetError):
    """A payload cannot be framed, or a received stream cannot be split."""


class FrameTooLarge(FramingError):
    """`pack` was given a payload longer than a 2-byte length can describe."""

    def __init__(self, size: int) -> None:
        super().__init__(
            f"payload of {size} bytes does not fit in one frame (at most {MAX_PAYLOAD} bytes); "
            "split it in the protocol above the framing"
        )
        self.size = size


class PacketTooLarge(FramingError):
    """A received length prefix exceeds the splitter's `max_packet`.

    `packets` holds the complete packets that preceded the bad prefix in the same `feed`,
    so nothing the peer sent correctly is lost. The stream cannot be resynchronised:
    every later `feed` raises again, and the connection should be closed.
    """

    def __init__(self, length: int, limit: int, packets: list[bytes]) -> None:
        super().__init__(f"packet length {length} exceeds the limit of {limit} bytes")
        self.length = length
        self.limit = limit
        self.packets = packets


def pack(payload: bytes) -> bytes:
    """Frame `payload`: its length as 2 bytes big-endian, then the payload itself."""
    size = len(payload)
    if size > MAX_PAYLOAD:
        raise FrameTooLarge(size)
    return size.to_bytes(2, "big") + payload


class Splitter:
    """Incremental splitter for one connection's byte stream.

    Each `feed` returns the packets completed by that chunk, in order (zero-length packets
    included). Bytes of an unfinished packet are kept, and only re-joined once enough have
    arrived to finish it, so a large packet trickling in byte by byte costs linear time.
    """

    __slots__ = ("_max", "_parts", "_pending", "_needed")

    def __init__(self, max_packet: int = MAX_PAYLOAD) -> None:
        if not 0 <= max_packet <= MAX_PAYLOAD:
            raise FramingError(f"max_packet must be between 0 and {MAX_PAYLOAD}, got {max_packet}")
        self._max = max_packet
        self._parts: list[bytes] = []  # the unfinished packet's bytes, as received
        self._pending = 0  # their total length
        self._needed = 0  # the length they must reach before a packet can complete

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete packet (a truncated frame at close)."""
        return self._pending

    def feed(self, data: bytes) -> list[bytes]:
        """Add the next chunk of the stream; return the packets it completes.

        Raises `PacketTooLarge` on a length prefix above `max_packet`.
        """
        if type(data) is not bytes:
            data = bytes(data)  # also detaches us from a buffer the caller may reuse
        size = len(data)
        if not self._pending and size >= 2 and (data[0] << 8 | data[1]) + 2 == size:
            if size - 2 > self._max:  # the common case, one whole packet: no loop
                self._keep(data, needed=0)
                raise PacketTooLarge(size - 2, self._max, [])
            return [data[2:]]
        if self._pending:
            self._parts.append(data)
            self._pending += len(data)
            if self._pending < self._needed:
                return []
            data = b"".join(self._parts)
        size = len(data)
        limit = self._max
        packets: list[bytes] = []
        append = packets.append
        start = 0
        while size - start >= 2:
            (length,) = _read_length(data, start)
            if length > limit:
                self._keep(data[start:], needed=0)  # so the next feed rejects it again
                raise PacketTooLarge(length, limit, packets)
            end = start + 2 + length
            if end > size:
                self._keep(data[start:], needed=2 + length)
                return packets
            append(data[start + 2 : end])
            start = end
        self._keep(data[start:], needed=2)
        return packets

    def _keep(self, tail: bytes, needed: int) -> None:
        self._parts = [tail] if tail else []
        self._pending = len(tail)
        self._needed = needed


_read_length = struct.Struct(">H").unpack_from

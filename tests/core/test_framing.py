"""netpack framing: pack and the incremental Splitter."""

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshnet.errors import MeshnetError
from meshnet.framing import (
    MAX_PAYLOAD,
    FrameTooLarge,
    FramingError,
    PacketTooLarge,
    Splitter,
    pack,
)

payload_lists = st.lists(st.binary(max_size=300) | st.just(b""), max_size=30)


def feed_all(splitter: Splitter, chunks: list[bytes]) -> list[bytes]:
    packets = []
    for chunk in chunks:
        packets += splitter.feed(chunk)
    return packets


def cut(stream: bytes, points: list[int]) -> list[bytes]:
    bounds = [0, *sorted(p % (len(stream) + 1) for p in points), len(stream)]
    return [stream[a:b] for a, b in pairwise(bounds)]


def test_pack_prefixes_the_big_endian_length():
    assert pack(b"abc") == b"\x00\x03abc"
    assert pack(b"x" * 258)[:2] == b"\x01\x02"


def test_pack_of_an_empty_payload_is_a_zero_length_header():
    assert pack(b"") == b"\x00\x00"


def test_pack_accepts_the_largest_payload():
    assert pack(b"x" * MAX_PAYLOAD)[:2] == b"\xff\xff"


def test_pack_rejects_a_payload_over_65535_bytes():
    with pytest.raises(FrameTooLarge, match="65536 bytes") as info:
        pack(b"x" * (MAX_PAYLOAD + 1))
    assert info.value.size == MAX_PAYLOAD + 1
    assert isinstance(info.value, FramingError)
    assert isinstance(info.value, MeshnetError)


def test_splitter_returns_every_packet_of_one_chunk():
    assert Splitter().feed(pack(b"a") + pack(b"bc") + pack(b"def")) == [b"a", b"bc", b"def"]


def test_splitter_delivers_zero_length_packets():
    assert Splitter().feed(pack(b"") + pack(b"a") + pack(b"")) == [b"", b"a", b""]


def test_splitter_joins_a_header_split_across_feeds():
    splitter = Splitter()
    assert splitter.feed(b"\x00") == []
    assert splitter.feed(b"\x02h") == []
    assert splitter.feed(b"i") == [b"hi"]


def test_splitter_returns_packets_as_bytes():
    packets = Splitter().feed(bytearray(pack(b"ab")))
    assert [type(p) for p in packets] == [bytes]


def test_splitter_copies_a_buffer_the_caller_reuses():
    splitter = Splitter()
    chunk = bytearray(b"\x00\x03ab")
    splitter.feed(chunk)
    chunk[:] = b"XXXX"
    assert splitter.feed(memoryview(b"c")) == [b"abc"]


def test_pending_counts_bytes_of_an_unfinished_packet():
    splitter = Splitter()
    splitter.feed(pack(b"done") + b"\x00\x05ab")
    assert splitter.pending == 4


def test_pending_is_zero_when_every_packet_is_complete():
    splitter = Splitter()
    splitter.feed(b"\x00\x01")
    splitter.feed(b"z")
    assert splitter.pending == 0


def test_a_length_prefix_above_max_packet_raises_packet_too_large():
    with pytest.raises(PacketTooLarge, match="length 300 exceeds the limit of 256") as info:
        Splitter(max_packet=256).feed(b"\x01\x2c" + b"x" * 300)
    assert (info.value.length, info.value.limit) == (300, 256)
    assert isinstance(info.value, FramingError)


def test_a_packet_of_exactly_max_packet_is_accepted():
    assert Splitter(max_packet=3).feed(pack(b"abc")) == [b"abc"]


def test_packet_too_large_carries_the_packets_before_it():
    with pytest.raises(PacketTooLarge) as info:
        Splitter(max_packet=4).feed(pack(b"ok") + pack(b"") + pack(b"too long"))
    assert info.value.packets == [b"ok", b""]


def test_splitter_keeps_rejecting_after_packet_too_large():
    splitter = Splitter(max_packet=1)
    with pytest.raises(PacketTooLarge):
        splitter.feed(b"\x00\x09")
    with pytest.raises(PacketTooLarge):
        splitter.feed(pack(b"a"))


@pytest.mark.parametrize("limit", [-1, MAX_PAYLOAD + 1])
def test_max_packet_outside_the_frame_range_is_refused(limit):
    with pytest.raises(FramingError, match="max_packet"):
        Splitter(max_packet=limit)


def test_a_largest_packet_fed_one_byte_at_a_time_is_reassembled():
    payload = bytes(range(256)) * 255 + b"end"
    stream = pack(payload)
    assert feed_all(Splitter(), [stream[i : i + 1] for i in range(len(stream))]) == [payload]


@given(payloads=payload_lists, points=st.lists(st.integers(min_value=0), max_size=40))
def test_split_returns_exactly_the_packed_payloads_under_any_chunking(payloads, points):
    stream = b"".join(pack(p) for p in payloads)
    splitter = Splitter()
    assert feed_all(splitter, cut(stream, points)) == payloads
    assert splitter.pending == 0


@given(payloads=payload_lists)
def test_split_in_one_byte_chunks_returns_the_packed_payloads(payloads):
    stream = b"".join(pack(p) for p in payloads)
    assert feed_all(Splitter(), [stream[i : i + 1] for i in range(len(stream))]) == payloads


@given(garbage=st.binary(max_size=2000), points=st.lists(st.integers(min_value=0), max_size=20))
def test_split_of_garbage_accounts_for_every_byte(garbage, points):
    splitter = Splitter()
    packets = feed_all(splitter, cut(garbage, points))
    assert sum(2 + len(p) for p in packets) + splitter.pending == len(garbage)


@given(
    garbage=st.binary(max_size=2000),
    points=st.lists(st.integers(min_value=0), max_size=20),
    limit=st.integers(min_value=0, max_value=MAX_PAYLOAD),
)
def test_split_of_garbage_raises_nothing_but_packet_too_large(garbage, points, limit):
    splitter = Splitter(max_packet=limit)
    try:
        feed_all(splitter, cut(garbage, points))
    except PacketTooLarge as error:
        assert error.length > limit

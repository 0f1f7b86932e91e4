"""meshnet.cluster.skynet.wire speaks skynet's cluster protocol (lua-cluster.c).

Ground truth: tests/vectors/skynet_cluster.json, recorded from skynet.cluster.core.
"""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from skynet_vectors import cases, load, matches, pattern, short_bytes, split_packets

from meshnet.cluster.skynet import SkynetProtocolError
from meshnet.cluster.skynet.seri import pack
from meshnet.cluster.skynet.seri import unpack as unpack_values
from meshnet.cluster.skynet.wire import (
    MULTI_PART,
    Request,
    RequestDecoder,
    Response,
    ResponseDecoder,
    SkynetWireError,
    encode_push,
    encode_request,
    encode_response,
    encode_trace,
    is_split,
    next_session,
)
from meshnet.framing import pack as frame

VECTORS = "skynet_cluster.json"


def payload_of(entry):
    made = entry["payload_is"]
    if "packed_pattern" in made:
        data = pack(pattern(made["packed_pattern"]))
    elif "pattern" in made:
        data = pattern(made["pattern"])
    elif "text" in made:
        data = made["text"].encode()
    else:
        data = short_bytes(entry["payload"])
    assert matches(data, entry["payload"])
    return data


def recorded_frames_match(stream, entry):
    packets = split_packets(stream)
    specs = entry["frames"]
    return len(packets) == len(specs) and all(map(matches, packets, specs))


def recorded_request_stream(entry):
    """skynet's packets for a request: as recorded, or (long ones) ours, proven equal."""
    if all("hex" in f for f in entry["frames"]):
        return b"".join(short_bytes(f) for f in entry["frames"])
    encode = encode_push if entry["push"] else encode_request
    stream = encode(entry["address"], entry["session"], payload_of(entry))
    assert recorded_frames_match(stream, entry)
    return stream


def feed_in_chunks(decoder, stream, cuts):
    out = []
    start = 0
    for cut in sorted(cuts) + [len(stream)]:
        out += decoder.feed(stream[start:cut])
        start = cut
    return out


# --- recorded from skynet ---------------------------------------------------------------


@pytest.mark.parametrize("entry", cases(VECTORS, "requests"))
def test_requests_are_the_packets_skynet_writes(entry):
    encode = encode_push if entry["push"] else encode_request
    stream = encode(entry["address"], entry["session"], payload_of(entry))
    assert recorded_frames_match(stream, entry)


@pytest.mark.parametrize("entry", cases(VECTORS, "requests"))
def test_skynet_requests_decode_to_what_was_sent(entry):
    one_packet_push = entry["push"] and len(entry["frames"]) == 1
    session = 0 if one_packet_push else entry["session"]
    assert RequestDecoder().feed(recorded_request_stream(entry)) == [
        Request(entry["address"], session, payload_of(entry), push=entry["push"])
    ]
    # clusteragent's view of the first packet agrees: the session it read.
    assert entry["unpacked"][0][1] == {"t": "int", "v": str(session)}


@pytest.mark.parametrize("entry", cases(VECTORS, "requests"))
def test_the_next_session_is_the_one_skynet_takes(entry):
    assert next_session(entry["session"]) == entry["next_session"]


@pytest.mark.parametrize("entry", cases(VECTORS, "responses"))
def test_responses_are_the_packets_skynet_writes(entry):
    stream = encode_response(entry["session"], entry["ok"], payload_of(entry))
    assert recorded_frames_match(stream, entry)
    sent = payload_of(entry) if entry["ok"] else payload_of(entry)[:MULTI_PART]
    assert ResponseDecoder().feed(stream) == [Response(entry["session"], entry["ok"], sent)]


@pytest.mark.parametrize("entry", load(VECTORS)["traces"], ids=["tag", "empty", "longest"])
def test_trace_packets_are_the_ones_skynet_writes(entry):
    tag = "t" * entry["tag_is"]["count"] if "tag_is" in entry else short_bytes(entry["tag"])
    assert matches(encode_trace(tag), entry["frame"])


def test_a_trace_tag_longer_than_skynet_allows_is_refused():
    size = load(VECTORS)["trace_too_long"]["size"]
    with pytest.raises(SkynetWireError, match="trace tag"):
        encode_trace("t" * size)


@pytest.mark.parametrize("entry", cases(VECTORS, "request_errors"))
def test_requests_skynet_refuses_to_pack_are_refused(entry):
    address = entry["address"] if not isinstance(entry["address"], dict) else {}
    with pytest.raises(SkynetWireError):
        encode_request(address, entry["session"], pack(1))


@pytest.mark.parametrize("entry", cases(VECTORS, "unpackrequest_errors"))
def test_request_packets_skynet_rejects_raise_our_error(entry):
    with pytest.raises(SkynetWireError):
        RequestDecoder().feed(frame(short_bytes(entry)))


@pytest.mark.parametrize("entry", cases(VECTORS, "unpackresponse_rejects"))
def test_response_packets_skynet_rejects_raise_our_error(entry):
    with pytest.raises(SkynetWireError):
        ResponseDecoder().feed(frame(short_bytes(entry)))


# --- requests -----------------------------------------------------------------------------


def test_a_name_query_is_a_request_to_address_zero():
    [request] = RequestDecoder().feed(encode_request(0, 5, pack("echo")))
    assert request.address == 0
    assert unpack_values(request.payload) == ("echo",)


def test_a_one_packet_push_carries_session_zero():
    [push] = RequestDecoder().feed(encode_push("@echo", 9, pack("note")))
    assert (push.session, push.push) == (0, True)


def test_a_large_push_carries_its_session_to_match_its_parts():
    payload = bytes(MULTI_PART + 1)
    [push] = RequestDecoder().feed(encode_push(7, 9, payload))
    assert (push.session, push.push, push.payload) == (9, True, payload)


@pytest.mark.parametrize(("size", "split"), [(MULTI_PART - 1, False), (MULTI_PART, True)])
def test_requests_split_from_multi_part_bytes_on(size, split):
    assert is_split(size) is split
    assert len(split_packets(encode_request(1, 1, bytes(size)))) == (2 if split else 1)


def test_a_response_of_exactly_multi_part_bytes_is_one_packet():
    assert len(split_packets(encode_response(1, True, bytes(MULTI_PART)))) == 1
    assert len(split_packets(encode_response(1, True, bytes(MULTI_PART + 1)))) == 3


def test_sessions_wrap_past_int32_max_to_one():
    assert next_session(2**31 - 1) == 1
    assert next_session(1) == 2


def test_a_trace_tag_goes_with_the_next_request_only():
    decoder = RequestDecoder()
    stream = encode_trace("(a-b-2):00000008-1") + encode_request(1, 1, b"x")
    stream += encode_request(1, 2, b"y")
    first, second = decoder.feed(stream)
    assert first.trace == "(a-b-2):00000008-1"
    assert second.trace is None


def test_a_trace_tag_goes_with_a_large_request_sent_after_it():
    stream = encode_trace(b"tag") + encode_request("@big", 3, bytes(MULTI_PART * 2))
    [request] = RequestDecoder().feed(stream)
    assert request.trace == "tag"


def test_names_that_are_not_utf8_are_bytes():
    [request] = RequestDecoder().feed(encode_request(b"@\xff", 1, b""))
    assert request.address == b"@\xff"


def test_parts_of_two_large_requests_may_interleave():
    first = split_packets(encode_request(1, 10, pattern(3 * MULTI_PART)))
    second = split_packets(encode_request("@b", 11, bytes(2 * MULTI_PART)))
    small = encode_request(2, 12, b"small")
    order = [first[0], second[0], first[1], small, second[1], first[2], second[2], first[3]]
    requests = RequestDecoder().feed(b"".join(order))
    assert [(r.session, len(r.payload)) for r in requests] == [
        (12, 5),
        (11, 2 * MULTI_PART),
        (10, 3 * MULTI_PART),
    ]
    assert requests[2].payload == pattern(3 * MULTI_PART)


def test_a_part_without_a_header_is_refused():
    with pytest.raises(SkynetWireError, match="no large message open"):
        RequestDecoder().feed(frame(b"\x03\x07\x00\x00\x00data"))


def test_parts_beyond_the_announced_size_are_refused():
    header = frame(b"\x01" + (1).to_bytes(4, "little") + (4).to_bytes(4, "little") * 2)
    with pytest.raises(SkynetWireError, match="exceed"):
        RequestDecoder().feed(header + frame(b"\x02\x04\x00\x00\x00" + b"12345"))


def test_parts_short_of_the_announced_size_are_refused():
    header = frame(b"\x01" + (1).to_bytes(4, "little") + (4).to_bytes(4, "little") * 2)
    with pytest.raises(SkynetWireError, match="announced 4"):
        RequestDecoder().feed(header + frame(b"\x03\x04\x00\x00\x00" + b"123"))


def test_a_second_header_for_an_open_session_is_refused():
    header = split_packets(encode_request(1, 4, bytes(MULTI_PART)))[0]
    with pytest.raises(SkynetWireError, match="session 4"):
        RequestDecoder().feed(header + header)


def test_a_large_request_over_the_limit_is_refused_at_its_header():
    header = split_packets(encode_request(1, 4, bytes(MULTI_PART)))[0]
    with pytest.raises(SkynetWireError, match="over the limit"):
        RequestDecoder(max_message=MULTI_PART - 1).feed(header)


def test_a_request_by_name_with_an_empty_name_is_refused():
    with pytest.raises(SkynetWireError, match="empty"):
        RequestDecoder().feed(frame(b"\x80\x00\x01\x00\x00\x00"))


@pytest.mark.parametrize(
    ("address", "session"),
    [(-1, 1), (2**32, 1), (True, 1), (1, 0), (1, 2**31), (1.5, 1), ("", 1), ("n" * 256, 1)],
)
def test_requests_outside_the_protocol_cannot_be_encoded(address, session):
    with pytest.raises(SkynetWireError):
        encode_request(address, session, b"")


def test_a_name_with_a_lone_surrogate_cannot_be_encoded():
    with pytest.raises(SkynetWireError, match="UTF-8"):
        encode_request("@\ud800", 1, b"")


# --- responses ----------------------------------------------------------------------------


def test_error_text_is_truncated_to_one_part():
    [response] = ResponseDecoder().feed(encode_response(3, False, "e" * (MULTI_PART + 5)))
    assert response == Response(3, False, b"e" * MULTI_PART)


def test_an_error_ends_a_large_response_in_progress():
    begin, part = split_packets(encode_response(5, True, bytes(2 * MULTI_PART)))[:2]
    decoder = ResponseDecoder()
    assert decoder.feed(begin + part + encode_response(5, False, "gone")) == [
        Response(5, False, b"gone")
    ]
    assert decoder.feed(encode_response(5, True, b"ok")) == [Response(5, True, b"ok")]


def test_an_ok_response_while_its_large_one_is_open_is_refused():
    begin = split_packets(encode_response(5, True, bytes(2 * MULTI_PART)))[0]
    with pytest.raises(SkynetWireError, match="session 5"):
        ResponseDecoder().feed(begin + encode_response(5, True, b"ok"))


def test_a_last_part_without_a_large_header_is_refused():
    with pytest.raises(SkynetWireError, match="no large message open"):
        ResponseDecoder().feed(frame(b"\x05\x00\x00\x00\x04tail"))


def test_large_responses_of_different_sessions_may_interleave():
    a = split_packets(encode_response(1, True, pattern(MULTI_PART + 1)))
    b = split_packets(encode_response(2, True, bytes(MULTI_PART + 2)))
    responses = ResponseDecoder().feed(b"".join([a[0], b[0], b[1], a[1], a[2], b[2]]))
    assert responses == [
        Response(1, True, pattern(MULTI_PART + 1)),
        Response(2, True, bytes(MULTI_PART + 2)),
    ]


@pytest.mark.parametrize("session", [-1, 2**32, None])
def test_response_sessions_must_fit_32_bits(session):
    with pytest.raises(SkynetWireError):
        encode_response(session, True, b"")


def test_the_wire_error_is_a_skynet_protocol_error():
    assert issubclass(SkynetWireError, SkynetProtocolError)


# --- properties ---------------------------------------------------------------------------

sizes = st.one_of(
    st.integers(0, 64),
    st.integers(MULTI_PART - 2, MULTI_PART + 2),
    st.integers(2 * MULTI_PART - 1, 3 * MULTI_PART + 1),
)
addresses = st.integers(0, 2**32 - 1) | st.text(min_size=1, max_size=60).filter(
    lambda s: len(s.encode()) <= 255
)
sessions = st.integers(1, 2**31 - 1)


@st.composite
def requests(draw):
    size = draw(sizes)
    payload = random.Random(draw(st.integers())).randbytes(size)
    push = draw(st.booleans())
    session = draw(sessions)
    trace = draw(st.none() | st.text(max_size=20))
    request = Request(
        draw(addresses),
        0 if push and not is_split(size) else session,
        payload,
        push,
        trace,
    )
    return request, session


def encoded(request, session):
    encode = encode_push if request.push else encode_request
    head = b"" if request.trace is None else encode_trace(request.trace)
    return head + encode(request.address, session, request.payload)


@given(st.lists(requests(), max_size=4), st.data())
def test_requests_survive_any_chunking(drawn, data):
    stream = b"".join(encoded(request, session) for request, session in drawn)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    assert feed_in_chunks(RequestDecoder(), stream, cuts) == [request for request, _ in drawn]


@given(
    st.lists(st.tuples(st.integers(0, 2**32 - 1), st.booleans(), sizes, st.integers()), max_size=4),
    st.data(),
)
def test_responses_survive_any_chunking(drawn, data):
    sent = [Response(s, ok, random.Random(seed).randbytes(n)) for s, ok, n, seed in drawn]
    stream = b"".join(encode_response(r.session, r.ok, r.payload) for r in sent)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    expected = [r if r.ok else Response(r.session, False, r.payload[:MULTI_PART]) for r in sent]
    assert feed_in_chunks(ResponseDecoder(), stream, cuts) == expected


@pytest.mark.parametrize("decoder", [RequestDecoder, ResponseDecoder])
@given(garbage=st.binary(max_size=300), data=st.data())
def test_garbage_decodes_or_raises_our_error(decoder, garbage, data):
    cuts = data.draw(st.lists(st.integers(0, len(garbage)), max_size=5))
    try:
        feed_in_chunks(decoder(), garbage, cuts)
    except SkynetWireError:
        pass


@pytest.mark.parametrize("decoder", [RequestDecoder, ResponseDecoder])
@given(data=st.data())
def test_what_a_decoder_buffers_is_never_more_than_it_was_fed_and_nothing_at_the_end(decoder, data):
    if decoder is RequestDecoder:
        stream = b"".join(encoded(r, s) for r, s in data.draw(st.lists(requests(), max_size=4)))
    else:
        sizes_drawn = data.draw(st.lists(sizes, max_size=4))
        stream = b"".join(
            encode_response(n + 1, True, bytes(size)) for n, size in enumerate(sizes_drawn)
        )
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    reader, fed = decoder(), 0
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        reader.feed(stream[start:end])
        fed = end
        assert 0 <= reader.buffered <= fed
    assert reader.buffered == 0


def test_a_decoder_buffers_the_parts_of_an_open_large_message_and_a_partial_packet():
    decoder = RequestDecoder()
    header, first, second, last = split_packets(encode_request("@a", 1, bytes(2 * MULTI_PART + 5)))
    decoder.feed(header + first)
    assert decoder.buffered == MULTI_PART
    decoder.feed(second[:3])
    assert decoder.buffered == MULTI_PART + 3
    decoder.feed(second[3:])
    assert decoder.buffered == 2 * MULTI_PART
    decoder.feed(last)
    assert decoder.buffered == 0


def test_an_error_ending_a_large_answer_frees_what_it_buffered():
    decoder = ResponseDecoder()
    header, first, *_ = split_packets(encode_response(7, True, bytes(3 * MULTI_PART)))
    decoder.feed(header + first)
    assert decoder.buffered == MULTI_PART
    decoder.feed(encode_response(7, False, "gave up"))
    assert decoder.buffered == 0

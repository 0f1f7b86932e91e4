"""PROXY headers (v1, v2) and X-Forwarded-For: parsed from any chunking, never read past,
and garbage raises our own error."""

import ipaddress

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st
from proxy_headers import V1_UNKNOWN, V2_LOCAL, v1, v2

from meshnet.admission import networks
from meshnet.gate.proxy import (
    ProxyHeaderError,
    forwarded_client,
    looks_like_header,
    missing_bytes,
    parse_header,
    read_header,
)

ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).filter(lambda a: a.ipv4_mapped is None).map(str)
ports = st.integers(0, 65535)
headers = st.one_of(
    st.builds(v1, ipv4 | ipv6, ports),
    st.builds(v2, ipv4, ports),
    st.builds(v2, ipv6, ports, st.just("::1"), st.binary(max_size=40)),
)


def source_of(header: bytes) -> tuple[str, int]:
    """What a test header says about the client (re-parsed from its text or bytes)."""
    if header.startswith(b"PROXY"):
        fields = header.decode().split()
        return str(ipaddress.ip_address(fields[2])), int(fields[4])
    size = 4 if header[13] == 0x11 else 16
    source = ipaddress.ip_address(header[16 : 16 + size])
    return str(source), int.from_bytes(header[16 + 2 * size : 18 + 2 * size], "big")


async def read_from_chunks(chunks: list[bytes]) -> tuple[tuple[str, int] | None, bytes]:
    """Read a header from a stream fed ``chunks``; return it and what was left unread."""
    ours, theirs = trio.testing.memory_stream_pair()
    for chunk in chunks:
        await theirs.send_all(chunk)
    await theirs.send_eof()
    found = await read_header(ours)
    rest = b""
    while data := await ours.receive_some():
        rest += data
    return found, rest


@given(headers, st.binary(max_size=50), st.lists(st.integers(0, 200), max_size=10))
def test_a_header_is_read_from_any_chunking_and_nothing_after_it(header, after, cuts):
    data = header + after
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    chunks = [data[a:b] for a, b in zip(points, points[1:], strict=False)]
    found, rest = trio.run(read_from_chunks, chunks)
    assert found == source_of(header)
    assert rest == after


@pytest.mark.parametrize("header", [V1_UNKNOWN, b"PROXY UNKNOWN ffff::1 ::1 1 2\r\n", V2_LOCAL])
def test_a_proxy_speaking_for_itself_gives_no_client(header):
    assert missing_bytes(header) == 0
    assert parse_header(header) is None


@given(st.binary(min_size=1, max_size=120))
def test_garbage_raises_our_error(garbage):
    data = b""
    try:
        for byte in garbage:
            if missing_bytes(data) == 0:
                parse_header(data)
                return
            data += bytes([byte])
        if missing_bytes(data) == 0:
            parse_header(data)
    except ProxyHeaderError:
        pass


@pytest.mark.parametrize(
    "header",
    [
        b"PROXY TCP4 1.2.3.4 5.6.7.8 80\r\n",
        b"PROXY TCP4 ::1 ::1 1 2\r\n",
        b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 80 99999\r\n",
        b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 \xff 2\r\n",
    ],
)
def test_a_malformed_v1_header_is_refused(header):
    with pytest.raises(ProxyHeaderError):
        parse_header(header)


def test_a_v1_header_without_its_end_is_refused_at_107_bytes():
    with pytest.raises(ProxyHeaderError, match="longer than 107 bytes"):
        missing_bytes(b"PROXY TCP4 " + b"1" * 96)


def test_a_connection_without_a_header_is_refused_at_its_first_byte():
    with pytest.raises(ProxyHeaderError, match="no PROXY header"):
        missing_bytes(b"GET / HTTP/1.1")
    with pytest.raises(ProxyHeaderError, match="no PROXY header"):
        missing_bytes(b"\x00\x05hello")


@given(headers)
def test_every_header_looks_like_one(header):
    assert looks_like_header(header)


TRUSTED = networks(["10.0.0.0/8", "::1"])


@pytest.mark.parametrize(
    ("values", "client"),
    [
        ([b"203.0.113.7"], "203.0.113.7"),
        ([b"198.51.100.1, 203.0.113.7"], "203.0.113.7"),  # the first is the client's say-so
        ([b"203.0.113.7, 10.1.1.1"], "203.0.113.7"),  # a trusted proxy in the chain
        ([b"203.0.113.7", b"10.2.2.2"], "203.0.113.7"),  # two header lines
        ([b"10.1.1.1, 10.2.2.2"], "10.1.1.1"),
        ([b" ::ffff:203.0.113.7 "], "203.0.113.7"),
        ([b"unknown, 203.0.113.7"], None),
        ([b""], None),
        ([], None),
    ],
)
def test_x_forwarded_for_gives_the_rightmost_untrusted_address(values, client):
    assert forwarded_client(values, TRUSTED) == client

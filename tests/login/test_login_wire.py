"""meshnet.login.wire speaks skynet's login and msgserver protocols.

The exchanges in shared/vectors/login_transcript.json (recorded from skynet's crypt replaying
examples/login) are rebuilt byte for byte from these codecs and meshnet.login.crypt.
"""

from dataclasses import astuple

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from login_vectors import derived_params, params

from meshnet.errors import MeshnetError
from meshnet.framing import pack as frame
from meshnet.login import wire
from meshnet.login.crypt import (
    base64decode,
    base64encode,
    desdecode,
    desencode,
    dhexchange,
    dhsecret,
    hashkey,
    hmac64,
)
from meshnet.login.wire import (
    BAD_REQUEST,
    FORBIDDEN,
    HANDSHAKE_OK,
    INDEX_EXPIRED,
    NOT_ACCEPTABLE,
    UNAUTHORIZED,
    USER_NOT_FOUND,
    LineSplitter,
    LineTooLong,
    LoginProtocolError,
    MalformedHandshake,
    MalformedStatusLine,
    MalformedToken,
    Request,
    Response,
    Token,
    TruncatedPacket,
    UnencodableValue,
)

h = bytes.fromhex
TRANSCRIPT = "login_transcript.json"
LOGIN_FAILURES = (BAD_REQUEST, UNAUTHORIZED, FORBIDDEN, NOT_ACCEPTABLE)
HANDSHAKE_REPLIES = (HANDSHAKE_OK, USER_NOT_FOUND, INDEX_EXPIRED, UNAUTHORIZED, BAD_REQUEST)


def transcript(path: str, describe=None) -> list:
    return params(TRANSCRIPT, path, describe)


def exchanges() -> list:
    return transcript("exchanges", lambda exchange: exchange["user"])


def connections() -> list:
    """Every msgserver connection of every exchange, with its exchange's keys."""

    def build(data):
        return [
            pytest.param(
                (exchange, connection), id=f"{exchange['user']}-index{connection['index']}"
            )
            for exchange in data["exchanges"]
            for connection in exchange["msgserver"]
        ]

    return derived_params(TRANSCRIPT, build)


def recorded_lines(exchange: dict, direction: str) -> list[bytes]:
    return [h(line["wire"]) for line in exchange["login"]["lines"] if line["dir"] == direction]


def secret_of(exchange: dict) -> bytes:
    return h(exchange["login"]["secret"])


def credentials(exchange: dict) -> Token:
    return Token(exchange["user"].encode(), exchange["server"].encode(), exchange["pass"].encode())


def by_text(entry: dict) -> str:
    return entry["text"]


def by_session(entry: dict) -> str:
    return f"session{entry['session']}"


def unframe(wire_bytes: bytes) -> bytes:
    """The payload of one recorded netpack frame (checking its length prefix)."""
    assert frame(wire_bytes[2:]) == wire_bytes
    return wire_bytes[2:]


# --- login server exchange ---------------------------------------------------------------


@pytest.mark.parametrize("exchange", exchanges())
def test_login_lines_are_rebuilt_byte_for_byte(exchange):
    login = exchange["login"]
    challenge = h(login["challenge"])
    client_private, server_private = h(login["client_private"]), h(login["server_private"])
    secret = dhsecret(dhexchange(server_private), client_private)
    token = wire.build_token(*astuple(credentials(exchange)))
    produced = [
        base64encode(challenge),
        base64encode(dhexchange(client_private)),
        base64encode(dhexchange(server_private)),
        base64encode(hmac64(challenge, secret)),
        base64encode(desencode(secret, token)),
        wire.ok_status(exchange["subid"].encode()),
    ]
    assert [wire.encode_line(line) for line in produced] == [
        h(line["wire"]) for line in login["lines"]
    ]


@pytest.mark.parametrize("exchange", exchanges())
def test_login_intermediate_values_match_skynet(exchange):
    login = exchange["login"]
    client_public = dhexchange(h(login["client_private"]))
    server_public = dhexchange(h(login["server_private"]))
    secret = dhsecret(client_public, h(login["server_private"]))
    token = wire.build_token(*astuple(credentials(exchange)))
    assert (client_public, server_public) == (h(login["client_public"]), h(login["server_public"]))
    assert secret == secret_of(exchange)
    assert hmac64(h(login["challenge"]), secret) == h(login["challenge_hmac"])
    assert token == login["token"].encode()
    assert desencode(secret, token) == h(login["etoken"])
    assert wire.ok_status(exchange["subid"].encode()) == login["response"].encode()


@pytest.mark.parametrize("exchange", exchanges())
def test_each_direction_of_the_login_is_its_lines_in_order(exchange):
    login = exchange["login"]
    assert b"".join(recorded_lines(exchange, "S->C")) == h(login["wire_server_to_client"])
    assert b"".join(recorded_lines(exchange, "C->S")) == h(login["wire_client_to_server"])


@pytest.mark.parametrize("exchange", exchanges())
def test_server_reads_the_recorded_client_stream(exchange):
    login = exchange["login"]
    client_key, response, etoken = LineSplitter().feed(h(login["wire_client_to_server"]))
    secret = dhsecret(base64decode(client_key), h(login["server_private"]))
    assert secret == secret_of(exchange)
    assert base64decode(response) == hmac64(h(login["challenge"]), secret)
    assert wire.parse_token(desdecode(secret, base64decode(etoken))) == credentials(exchange)


@pytest.mark.parametrize("exchange", exchanges())
def test_client_reads_the_recorded_server_stream(exchange):
    login = exchange["login"]
    challenge, server_key, status = LineSplitter().feed(h(login["wire_server_to_client"]))
    assert base64decode(challenge) == h(login["challenge"])
    assert dhsecret(base64decode(server_key), h(login["client_private"])) == secret_of(exchange)
    code, subid = wire.parse_status(status)
    assert (code, base64decode(subid)) == (200, exchange["subid"].encode())


@pytest.mark.parametrize("reply", transcript("framing.loginserver_replies", by_text))
def test_login_server_replies_match_skynets(reply):
    line = reply["text"].encode()
    code, rest = wire.parse_status(line)
    failures = {wire.parse_status(status)[0]: status for status in LOGIN_FAILURES}
    expected = wire.ok_status(base64decode(rest)) if code == 200 else failures[code]
    assert wire.encode_line(expected) == h(reply["wire"])


# --- msgserver ---------------------------------------------------------------------------


@pytest.mark.parametrize("recorded", connections())
def test_handshake_packet_is_rebuilt_byte_for_byte(recorded):
    exchange, connection = recorded
    packet = wire.build_handshake(
        uid=exchange["user"].encode(),
        server=exchange["server"].encode(),
        subid=exchange["subid"].encode(),
        index=connection["index"],
        secret=secret_of(exchange),
    )
    assert packet == connection["packet_text"].encode()
    assert frame(packet) == h(connection["packet_wire"])


@pytest.mark.parametrize("recorded", connections())
def test_handshake_hmac_is_hmac64_of_the_hashed_handshake(recorded):
    exchange, connection = recorded
    username = exchange["msgserver_username"].encode()
    assert hashkey(connection["handshake"].encode()) == h(connection["hashkey"])
    mac = wire.handshake_hmac(username, connection["index"], secret_of(exchange))
    assert mac == h(connection["hmac"])


@pytest.mark.parametrize("recorded", connections())
def test_server_parses_and_verifies_the_recorded_handshake(recorded):
    exchange, connection = recorded
    handshake = wire.parse_handshake(unframe(h(connection["packet_wire"])))
    assert handshake == wire.Handshake(
        username=exchange["msgserver_username"].encode(),
        uid=exchange["user"].encode(),
        server=exchange["server"].encode(),
        subid=exchange["subid"].encode(),
        index=connection["index"],
        hmac=h(connection["hmac"]),
        signed=connection["handshake"].encode(),
    )
    assert handshake.verify(secret_of(exchange))


@pytest.mark.parametrize("recorded", connections())
def test_handshake_reply_is_200_ok(recorded):
    _, connection = recorded
    assert frame(HANDSHAKE_OK) == h(connection["server_reply_wire"])


@pytest.mark.parametrize("recorded", connections())
def test_connection_requests_are_rebuilt_and_parsed(recorded):
    _, connection = recorded
    for request in connection["requests"]:
        recorded_request = Request(h(request["payload"]), request["session"])
        packed = wire.pack_request(recorded_request.content, recorded_request.session)
        assert frame(packed) == h(request["wire"])
        assert wire.unpack_request(unframe(h(request["wire"]))) == recorded_request


@pytest.mark.parametrize("recorded", connections())
def test_connection_responses_are_rebuilt_and_parsed(recorded):
    _, connection = recorded
    for response in connection["responses"]:
        # On a handler error the vector names the request content, but msgserver sends none.
        content = h(response["content"]) if response["ok"] else b""
        expected = Response(content, bool(response["ok"]), response["session"])
        packed = wire.pack_response(expected.content, expected.ok, expected.session)
        assert frame(packed) == h(response["wire"])
        assert wire.unpack_response(unframe(h(response["wire"]))) == expected


@pytest.mark.parametrize("request_", transcript("framing.requests", by_session))
def test_framing_requests_match_skynet(request_):
    expected = Request(request_["payload_text"].encode(), request_["session"])
    assert frame(wire.pack_request(expected.content, expected.session)) == h(request_["wire"])
    assert wire.unpack_request(unframe(h(request_["wire"]))) == expected


@pytest.mark.parametrize("response", transcript("framing.responses", by_session))
def test_framing_responses_match_skynet(response):
    expected = Response(
        response["content_text"].encode(), bool(response["ok"]), response["session"]
    )
    packed = wire.pack_response(expected.content, expected.ok, expected.session)
    assert frame(packed) == h(response["wire"])
    assert wire.unpack_response(unframe(h(response["wire"]))) == expected


@pytest.mark.parametrize("reply", transcript("framing.msgserver_handshake_replies", by_text))
def test_msgserver_handshake_replies_match_skynet(reply):
    replies = {wire.parse_status(status)[0]: status for status in HANDSHAKE_REPLIES}
    code, _ = wire.parse_status(reply["text"].encode())
    assert frame(replies[code]) == h(reply["wire"])


# --- line splitting ----------------------------------------------------------------------


def test_lines_are_returned_without_newline_and_keep_carriage_return():
    assert LineSplitter().feed(b"one\r\ntwo\n") == [b"one\r", b"two"]


def test_an_unterminated_line_waits_for_its_newline():
    splitter = LineSplitter()
    assert splitter.feed(b"partial") == []
    assert splitter.feed(b" line\nnext") == [b"partial line"]


def test_a_line_of_exactly_max_line_bytes_is_accepted():
    assert LineSplitter(max_line=4).feed(b"abcd\n") == [b"abcd"]


def test_an_unterminated_line_past_max_line_raises_before_its_newline():
    with pytest.raises(LineTooLong, match="longer than 4 bytes"):
        LineSplitter(max_line=4).feed(b"abcde")


def test_line_too_long_carries_the_lines_before_it():
    with pytest.raises(LineTooLong) as raised:
        LineSplitter(max_line=4).feed(b"ok\nfine\ntoo long\n")
    assert raised.value.lines == [b"ok", b"fine"]


def test_a_splitter_keeps_failing_after_line_too_long():
    splitter = LineSplitter(max_line=4)
    with pytest.raises(LineTooLong):
        splitter.feed(b"too long")
    with pytest.raises(LineTooLong):
        splitter.feed(b"\nok\n")


def test_default_line_limit_is_skynets_8_kib():
    splitter = LineSplitter()
    assert splitter.feed(b"x" * 8192 + b"\n") == [b"x" * 8192]
    with pytest.raises(LineTooLong):
        splitter.feed(b"x" * 8193)


def test_encode_line_appends_newline():
    assert wire.encode_line(b"200 MQ==") == b"200 MQ==\n"


def test_encode_line_refuses_an_embedded_newline():
    with pytest.raises(UnencodableValue):
        wire.encode_line(b"two\nlines")


line_text = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b""))


@given(lines=st.lists(line_text, max_size=8), data=st.data())
def test_any_chunking_of_a_stream_yields_the_same_lines(lines, data):
    stream = b"".join(line + b"\n" for line in lines) + b"unterminated"
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    splitter = LineSplitter(max_line=64)
    received = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        received += splitter.feed(stream[start:end])
    assert received == lines


# --- login token and status lines --------------------------------------------------------


@pytest.mark.parametrize(
    "token, expected",
    [
        (b"QQ==@Qg==:Qw==", Token(b"A", b"B", b"C")),
        (b"@QQ==@Qg==:Qw==", Token(b"A", b"B", b"C")),  # the match starts at the first fit
        (b"QQ==@Qg==:Qw==:RA==", Token(b"A", b"B", b"CD")),  # '.+' takes the rest
    ],
    ids=["plain", "leading-at-skipped", "password-takes-the-rest"],
)
def test_parse_token_matches_like_skynets_lua_pattern(token, expected):
    assert wire.parse_token(token) == expected


@pytest.mark.parametrize(
    "token, complaint",
    [
        (b"QQ==Qg==:Qw==", "does not match"),
        (b"QQ==@Qg==Qw==", "does not match"),
        (b"QQ==@Qg==:", "does not match"),
        (b"Q@Qg==:Qw==", "token user .* not valid base64"),
        (b"QQ==@Q:Qw==", "token server .* not valid base64"),
        (b"QQ==@Qg==:Q", "token password .* not valid base64"),
    ],
    ids=["no-at", "no-colon", "empty-password", "bad-user", "bad-server", "bad-password"],
)
def test_malformed_token_says_what_is_wrong(token, complaint):
    with pytest.raises(MalformedToken, match=complaint):
        wire.parse_token(token)


@pytest.mark.parametrize("empty", ["user", "server", "password"])
def test_build_token_refuses_an_empty_field_skynet_could_not_parse(empty):
    fields = {"user": b"u", "server": b"s", "password": b"p", empty: b""}
    with pytest.raises(UnencodableValue, match="non-empty"):
        wire.build_token(**fields)


fields = st.binary(min_size=1, max_size=30)


@given(user=fields, server=fields, password=fields)
def test_token_round_trips(user, server, password):
    token = wire.build_token(user, server, password)
    assert wire.parse_token(token) == Token(user, server, password)


@pytest.mark.parametrize(
    "line, expected",
    [(b"200 MQ==", (200, b"MQ==")), (b"403 Forbidden", (403, b"Forbidden")), (b"200", (200, b""))],
    ids=["with-subid", "with-reason", "code-only"],
)
def test_parse_status_splits_code_and_rest(line, expected):
    assert wire.parse_status(line) == expected


@pytest.mark.parametrize("line", [b"", b"20", b"OK 200", b"2000", b"200\tOK"])
def test_parse_status_refuses_a_line_without_a_3_digit_code(line):
    with pytest.raises(MalformedStatusLine):
        wire.parse_status(line)


@given(st.binary(max_size=20))
def test_ok_status_carries_the_subid(subid):
    code, rest = wire.parse_status(wire.ok_status(subid))
    assert (code, base64decode(rest)) == (200, subid)


# --- msgserver handshake -----------------------------------------------------------------

SECRET = b"8 bytes!"
keys = st.binary(min_size=8, max_size=8)


@given(
    uid=st.binary(max_size=20),
    server=st.binary(max_size=20),
    subid=st.binary(max_size=8),
    index=st.integers(0, wire.MAX_INDEX),
    secret=keys,
)
def test_handshake_round_trips_and_verifies(uid, server, subid, index, secret):
    handshake = wire.parse_handshake(wire.build_handshake(uid, server, subid, index, secret))
    assert (handshake.uid, handshake.server, handshake.subid) == (uid, server, subid)
    assert handshake.username == wire.make_username(uid, server, subid)
    assert handshake.index == index
    assert handshake.verify(secret)


@given(secret=keys, other=keys)
def test_handshake_does_not_verify_with_another_secret(secret, other):
    assume(other != secret)
    handshake = wire.parse_handshake(wire.build_handshake(b"u", b"s", b"1", 1, secret))
    assert not handshake.verify(other)


def test_handshake_is_verified_over_the_index_text_as_sent():
    # skynet hashes "username:index" exactly as received, leading zeros included.
    username = wire.make_username(b"u", b"s", b"1")
    mac = hmac64(hashkey(username + b":007"), SECRET)
    handshake = wire.parse_handshake(b"%s:007:%s" % (username, base64encode(mac)))
    assert handshake.index == 7
    assert handshake.verify(SECRET)


@pytest.mark.parametrize(
    "packet, complaint",
    [
        (b"aGVsbG8=@c2FtcGxl#MQ==:1", "exactly two ':'"),
        (b"aGVsbG8=@c2FtcGxl#MQ==:1:ASbg9XWdbtc=:x", "exactly two ':'"),
        (b"aGVsbG8=c2FtcGxl#MQ==:1:ASbg9XWdbtc=", r"username .* is not base64\(uid\)@"),
        (b"aGVsbG8=@c2FtcGxlMQ==:1:ASbg9XWdbtc=", r"username .* is not base64\(uid\)@"),
        (b"aGVsbG8=@c2FtcGxl#MQ==:one:ASbg9XWdbtc=", "index b'one' is not a decimal integer"),
        (b"aGVsbG8=@c2FtcGxl#MQ==::ASbg9XWdbtc=", "index b'' is not a decimal integer"),
        (b"aGVsbG8=@c2FtcGxl#MQ==:-1:ASbg9XWdbtc=", "index b'-1' is not a decimal integer"),
        (b"aGVsbG8=@c2FtcGxl#MQ==:9223372036854775808:ASbg9XWdbtc=", "not a decimal integer"),
        (b"aGVsbG8=@c2FtcGxl#MQ==:1:A", "hmac b'A' is not valid base64"),
        (b"a@c2FtcGxl#MQ==:1:ASbg9XWdbtc=", "uid b'a' is not valid base64"),
        (b"aGVsbG8=@c@#MQ==:1:ASbg9XWdbtc=", "server b'c@' is not valid base64"),
        (b"aGVsbG8=@c2FtcGxl#M:1:ASbg9XWdbtc=", "subid b'M' is not valid base64"),
    ],
    ids=[
        "one-colon",
        "three-colons",
        "no-at",
        "no-hash",
        "index-not-numeric",
        "index-empty",
        "index-negative",
        "index-past-2**63",
        "bad-hmac",
        "bad-uid",
        "bad-server",
        "bad-subid",
    ],
)
def test_malformed_handshake_says_what_is_wrong(packet, complaint):
    with pytest.raises(MalformedHandshake, match=complaint):
        wire.parse_handshake(packet)


def test_build_handshake_refuses_a_negative_index():
    with pytest.raises(UnencodableValue, match="index"):
        wire.build_handshake(b"u", b"s", b"1", -1, SECRET)


# --- msgserver requests and responses ----------------------------------------------------

sessions = st.integers(0, wire.MAX_SESSION)


@given(content=st.binary(max_size=50), session=sessions)
def test_request_round_trips(content, session):
    assert wire.unpack_request(wire.pack_request(content, session)) == Request(content, session)


@given(content=st.binary(max_size=50), ok=st.booleans(), session=sessions)
def test_response_round_trips(content, ok, session):
    packed = wire.pack_response(content, ok, session)
    assert wire.unpack_response(packed) == Response(content, ok, session)


def test_any_non_zero_ok_byte_is_success():
    assert wire.unpack_response(b"\x07\x00\x00\x00\x01").ok


@pytest.mark.parametrize("size", range(4))
def test_request_shorter_than_its_session_is_truncated(size):
    with pytest.raises(TruncatedPacket):
        wire.unpack_request(bytes(size))


@pytest.mark.parametrize("size", range(5))
def test_response_shorter_than_ok_and_session_is_truncated(size):
    with pytest.raises(TruncatedPacket):
        wire.unpack_response(bytes(size))


@pytest.mark.parametrize("session", [-1, wire.MAX_SESSION + 1])
@pytest.mark.parametrize(
    "pack",
    [lambda s: wire.pack_request(b"", s), lambda s: wire.pack_response(b"", True, s)],
    ids=["request", "response"],
)
def test_a_session_outside_uint32_cannot_be_packed(pack, session):
    with pytest.raises(UnencodableValue, match="session"):
        pack(session)


# --- every parser, any input -------------------------------------------------------------


def test_protocol_errors_are_meshnet_errors():
    assert issubclass(LoginProtocolError, MeshnetError)


PARSERS = {
    "parse_token": wire.parse_token,
    "parse_status": wire.parse_status,
    "parse_handshake": wire.parse_handshake,
    "unpack_request": wire.unpack_request,
    "unpack_response": wire.unpack_response,
    "LineSplitter.feed": lambda data: LineSplitter(max_line=16).feed(data),
}

# Arbitrary bytes, plus strings built from the protocols' own separators and digits so
# the parsers get past their first checks.
protocol_soup = st.lists(st.sampled_from(b"QMA=@#: 019\n\xff")).map(bytes)


@pytest.mark.parametrize("parse", PARSERS.values(), ids=PARSERS.keys())
@given(data=st.one_of(st.binary(max_size=64), protocol_soup))
def test_parsers_return_a_value_or_raise_a_protocol_error(parse, data):
    try:
        parse(data)
    except LoginProtocolError:
        pass

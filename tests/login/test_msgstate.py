"""meshnet.login.msgstate: the msgserver's handshake check and response cache, without I/O."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshnet.login.msgstate import Entry, Reply, SessionConflict, User, check_handshake
from meshnet.login.wire import (
    BAD_REQUEST,
    HANDSHAKE_OK,
    INDEX_EXPIRED,
    UNAUTHORIZED,
    USER_NOT_FOUND,
    Request,
    build_handshake,
    make_username,
    pack_response,
)

SECRET = bytes.fromhex("6373fb943f60a5ee")
USERNAME = make_username(b"hello", b"sample", b"1")


def handshake(index: int, secret: bytes = SECRET) -> bytes:
    return build_handshake(b"hello", b"sample", b"1", index, secret)


def users(version: int = 0) -> dict[bytes, User]:
    user = User(USERNAME, SECRET)
    user.version = version
    return {USERNAME: user}


# --- handshake ---------------------------------------------------------------------------


def test_skynet_recorded_handshake_is_accepted():
    # NOTES §9: hmac64(hashkey("aGVsbG8=@c2FtcGxl#MQ==:1"), secret) = k8WqyVLrVVo=
    packet = b"aGVsbG8=@c2FtcGxl#MQ==:1:k8WqyVLrVVo="
    known = users()
    assert check_handshake(known, packet) == (HANDSHAKE_OK, known[USERNAME], 1)


@pytest.mark.parametrize(
    "packet, status",
    [
        (b"bm9ib2R5@c2FtcGxl#OQ==:1:AAAAAAAAAAA=", USER_NOT_FOUND),
        (b"hello", USER_NOT_FOUND),
        (b"", USER_NOT_FOUND),
        (USERNAME + b":abc:AAAAAAAAAAA=", BAD_REQUEST),
        (USERNAME + b":0x10:AAAAAAAAAAA=", BAD_REQUEST),
        (USERNAME + b":1:!", BAD_REQUEST),
        (USERNAME + b":1", BAD_REQUEST),
        (handshake(0), INDEX_EXPIRED),
        (handshake(3), INDEX_EXPIRED),
        (handshake(4, b"wrongkey"), UNAUTHORIZED),
    ],
    ids=[
        "unknown user",
        "no colon",
        "empty",
        "non-numeric index",
        "hex index",
        "hmac not base64",
        "no hmac",
        "index 0",
        "index not above the last",
        "wrong hmac",
    ],
)
def test_a_bad_handshake_gets_its_status_and_no_user(packet, status):
    assert check_handshake(users(version=3), packet) == (status, None, 0)


def test_expiry_is_checked_before_the_hmac():
    assert check_handshake(users(version=3), handshake(2, b"wrongkey"))[0] == INDEX_EXPIRED


@given(st.binary(max_size=80))
def test_any_packet_gets_a_status(packet):
    status, user, _ = check_handshake(users(), packet)
    assert status in {USER_NOT_FOUND, BAD_REQUEST, INDEX_EXPIRED, UNAUTHORIZED, HANDSHAKE_OK}
    assert (user is not None) == (status == HANDSHAKE_OK)


@given(st.binary(max_size=30).map(lambda tail: USERNAME + b":" + tail))
def test_any_packet_naming_a_known_user_gets_a_status(packet):
    status, _, _ = check_handshake(users(), packet)
    assert status != USER_NOT_FOUND


@given(st.integers(1, 2**63 - 1), st.integers(0, 2**63 - 1))
def test_a_good_handshake_is_accepted_iff_its_index_is_above_the_last(index, version):
    status, _, accepted = check_handshake(users(version), handshake(index))
    if index > version:
        assert (status, accepted) == (HANDSHAKE_OK, index)
    else:
        assert status == INDEX_EXPIRED


def test_accept_returns_the_superseded_connection_and_leave_forgets_the_current_one():
    user = User(USERNAME, SECRET)
    assert user.accept("fd1", 1, "peer1") is None
    assert user.accept("fd2", 2, "peer2") == "fd1"
    assert not user.leave("fd1")
    assert (user.target, user.peer) == ("fd2", "peer2")
    assert user.leave("fd2")
    assert (user.target, user.peer) == (None, None)


# --- the response cache ------------------------------------------------------------------


def connected(index: int = 1, expired_number: int = 128) -> User:
    user = User(USERNAME, SECRET, expired_number)
    user.accept(f"fd{index}", index, "peer")
    return user


def run(user: User, session: int, content: bytes = b"x", target: str = "fd1") -> Reply:
    """A new request answered with its own content."""
    entry = user.request(target, Request(content, session))
    assert isinstance(entry, Entry)
    return user.answer(entry, session, content, True)


def test_a_new_request_runs_and_is_answered_on_its_connection():
    user = connected()
    assert run(user, 7, b"echo") == Reply("fd1", pack_response(b"echo", True, 7))


def test_a_failed_request_is_answered_with_ok_0_and_no_content():
    user = connected()
    entry = user.request("fd1", Request(b"boom", 7))
    assert user.answer(entry, 7, b"ignored", False) == Reply("fd1", b"\x00\x00\x00\x00\x07")


def test_a_session_answered_under_this_handshake_is_a_new_request():
    user = connected()
    run(user, 3, b"first")
    assert isinstance(user.request("fd1", Request(b"again", 3)), Entry)


def test_a_session_answered_under_an_earlier_handshake_is_answered_from_the_cache():
    user = connected()
    first = run(user, 0, b"echo")
    user.accept("fd2", 2, "peer")
    assert user.request("fd2", Request(b"fake", 0)) == Reply("fd2", first.payload)
    # ... once: under this handshake it is answered now, so the next copy runs
    assert isinstance(user.request("fd2", Request(b"new", 0)), Entry)


def test_a_request_pending_across_a_reconnect_is_answered_on_the_new_connection():
    user = connected()
    entry = user.request("fd1", Request(b"echo", 0))
    user.accept("fd2", 2, "peer")
    assert user.request("fd2", Request(b"fake", 0)) is None
    assert user.answer(entry, 0, b"echo", True) == Reply("fd2", pack_response(b"echo", True, 0))


def test_an_answer_finished_after_a_reconnect_is_still_resent_from_the_cache():
    # (skynet would run the request again here: it stamps the answer with the new handshake)
    user = connected()
    entry = user.request("fd1", Request(b"echo", 0))
    user.accept("fd2", 2, "peer")
    lost = user.answer(entry, 0, b"echo", True)
    assert lost.target == "fd1"
    assert user.request("fd2", Request(b"fake", 0)) == Reply("fd2", lost.payload)


def test_the_first_duplicate_of_a_pending_session_is_absorbed_the_second_conflicts():
    user = connected()
    entry = user.request("fd1", Request(b"e", 8))
    assert user.request("fd1", Request(b"e", 8)) is None
    with pytest.raises(SessionConflict, match="session 8"):
        user.request("fd1", Request(b"e", 8))
    assert 8 not in user.cache
    assert user.answer(entry, 8, b"e", True).target == "fd1"


@given(st.integers(1, 6), st.integers(0, 40))
def test_the_last_expired_number_answers_stay_cached_and_at_most_twice_that(expired, count):
    user = connected(expired_number=expired)
    for session in range(count):
        run(user, session)
        assert len(user.cache) <= 2 * expired
    kept = set(range(max(0, count - expired), count))
    assert kept <= set(user.cache)


def test_retirement_follows_skynet_with_300_pipelined_requests():
    """NOTES §7 probe: 6 answers, then 300 pipelined (sessions 1000..1299), then reconnect:
    session 1000 is forgotten, 1127, 1128, 1255, 1256 and 1299 are still cached."""
    user = connected()
    for session in range(6):
        run(user, session)
    entries = [user.request("fd1", Request(b"r", 1000 + n)) for n in range(300)]
    for n, entry in enumerate(entries):
        user.answer(entry, 1000 + n, b"r%d" % n, True)
    user.accept("fd2", 2, "peer")
    assert isinstance(user.request("fd2", Request(b"NEW1000", 1000)), Entry)
    for session in (1127, 1128, 1255, 1256, 1299):
        reply = user.request("fd2", Request(b"NEW", session))
        assert reply == Reply("fd2", pack_response(b"r%d" % (session - 1000), True, session))

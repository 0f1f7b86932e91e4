"""meshnet.login.handshake: each step of the key exchange, for both ends, on any input."""

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from login_vectors import params

from meshnet.login import handshake
from meshnet.login.crypt import P, base64encode
from meshnet.login.handshake import HandshakeFailed
from meshnet.login.wire import LoginProtocolError

h = bytes.fromhex

keys = st.binary(min_size=8, max_size=8).filter(any)
lines = st.one_of(
    st.binary(max_size=40),
    st.lists(st.sampled_from(b"AQgw+/=09 *\r")).map(bytes),
    st.binary(max_size=16).map(base64encode),
)


@pytest.mark.parametrize(
    "exchange", params("login_transcript.json", "exchanges", lambda exchange: exchange["user"])
)
def test_both_ends_rebuild_the_recorded_values(exchange):
    login = exchange["login"]
    challenge, secret = h(login["challenge"]), h(login["secret"])
    client_private, server_private = h(login["client_private"]), h(login["server_private"])
    assert handshake.key_line(challenge).decode() == login["lines"][0]["text"]
    assert handshake.public_key_line(client_private).decode() == login["ckey_b64"]
    assert handshake.public_key_line(server_private).decode() == login["skey_b64"]
    assert handshake.shared_secret(login["ckey_b64"].encode(), server_private) == secret
    assert handshake.shared_secret(login["skey_b64"].encode(), client_private) == secret
    answer = handshake.challenge_line(challenge, secret)
    assert answer.decode() == login["challenge_hmac_b64"]
    handshake.check_challenge(answer, challenge, secret)
    assert handshake.token_line(login["token"].encode(), secret).decode() == login["etoken_b64"]
    assert handshake.read_token(login["etoken_b64"].encode(), secret) == login["token"].encode()


@given(client=keys, server=keys, challenge=keys, token=st.binary(max_size=64))
def test_both_ends_agree(client, server, challenge, token):
    secret = handshake.shared_secret(handshake.public_key_line(client), server)
    assert handshake.shared_secret(handshake.public_key_line(server), client) == secret
    handshake.check_challenge(handshake.challenge_line(challenge, secret), challenge, secret)
    assert handshake.read_token(handshake.token_line(token, secret), secret) == token


@given(secret=keys, other=keys, challenge=keys)
def test_a_challenge_answer_made_with_another_secret_fails(secret, other, challenge):
    assume(other != secret)
    with pytest.raises(HandshakeFailed, match="challenge failed"):
        handshake.check_challenge(handshake.challenge_line(challenge, other), challenge, secret)


@given(key=st.binary(max_size=20).filter(lambda key: len(key) != 8))
def test_a_key_of_another_length_is_refused(key):
    with pytest.raises(HandshakeFailed, match=f"is {len(key)} bytes"):
        handshake.read_key(base64encode(key), "client key")


def test_a_zero_public_key_is_refused():
    with pytest.raises(HandshakeFailed, match="Can't be 0"):
        handshake.shared_secret(base64encode(bytes(8)), b"22222222")


DEGENERATE = {"1": 1, "P-1": P - 1, "P": P, "P+1": P + 1}


@pytest.mark.parametrize("value", DEGENERATE.values(), ids=DEGENERATE.keys())
@given(private=keys)
def test_a_degenerate_public_key_is_refused_whatever_the_private_key(value, private):
    with pytest.raises(HandshakeFailed, match=f"unusable: {value} is a degenerate DH value"):
        handshake.shared_secret(base64encode(value.to_bytes(8, "little")), private)


@given(value=st.integers(2, P - 2) | st.integers(P + 2, 2**64 - 1), private=keys)
def test_every_other_public_key_is_taken(value, private):
    assert len(handshake.shared_secret(base64encode(value.to_bytes(8, "little")), private)) == 8


READERS = {
    "read_key": lambda line: handshake.read_key(line, "key"),
    "shared_secret": lambda line: handshake.shared_secret(line, b"22222222"),
    "check_challenge": lambda line: handshake.check_challenge(line, b"challnge", b"secret!!"),
    "read_token": lambda line: handshake.read_token(line, b"secret!!"),
}


@pytest.mark.parametrize("read", READERS.values(), ids=READERS.keys())
@given(line=lines)
def test_readers_return_a_value_or_raise_handshake_failed(read, line):
    try:
        read(line)
    except HandshakeFailed:
        pass


def test_handshake_failures_are_protocol_errors():
    assert issubclass(HandshakeFailed, LoginProtocolError)

"""meshnet.login.crypt reproduces skynet's crypt byte for byte (shared/vectors/crypt.json)."""

from functools import reduce
from operator import xor

import pytest
from hypothesis import given
from hypothesis import strategies as st
from login_vectors import params

from meshnet.errors import MeshnetError
from meshnet.login import crypt
from meshnet.login.crypt import CryptError

h = bytes.fromhex


def vectors(section: str) -> list:
    return params("crypt.json", section)


def describe_error(vector: dict) -> str:
    return f"{vector['func']} {vector.get('comment', vector['error'])}"


def padding_args(vector: dict) -> tuple:
    """No argument for skynet's default padding, else the padding by name."""
    return () if vector["mode_arg"] is None else (vector["padding"],)


@pytest.mark.parametrize("vector", vectors("dhexchange"))
def test_dhexchange_matches_skynet(vector):
    assert crypt.dhexchange(h(vector["key"])) == h(vector["out"])


@pytest.mark.parametrize("vector", vectors("dhsecret"))
def test_dhsecret_matches_skynet(vector):
    assert crypt.dhsecret(h(vector["a"]), h(vector["b"])) == h(vector["out"])


@pytest.mark.parametrize("vector", vectors("dh_exchange"))
def test_dh_exchange_gives_both_sides_skynets_keys_and_secret(vector):
    client_private, server_private = h(vector["client_private"]), h(vector["server_private"])
    client_public = crypt.dhexchange(client_private)
    server_public = crypt.dhexchange(server_private)
    assert client_public == h(vector["client_public"])
    assert server_public == h(vector["server_public"])
    assert crypt.dhsecret(server_public, client_private) == h(vector["client_secret"])
    assert crypt.dhsecret(client_public, server_private) == h(vector["server_secret"])


@pytest.mark.parametrize("vector", vectors("hmac64"))
def test_hmac64_matches_skynet(vector):
    assert crypt.hmac64(h(vector["x"]), h(vector["y"])) == h(vector["out"])


@pytest.mark.parametrize("vector", vectors("hmac64_md5"))
def test_hmac64_md5_matches_skynet(vector):
    assert crypt.hmac64_md5(h(vector["x"]), h(vector["y"])) == h(vector["out"])


@pytest.mark.parametrize("vector", vectors("hashkey"))
def test_hashkey_matches_skynet(vector):
    assert crypt.hashkey(h(vector["in"])) == h(vector["out"])


@pytest.mark.parametrize("vector", vectors("hmac_hash"))
def test_hmac_hash_matches_skynet(vector):
    assert crypt.hmac_hash(h(vector["key"]), h(vector["text"])) == h(vector["out"])


@pytest.mark.parametrize("vector", vectors("sha1"))
def test_sha1_matches_skynet(vector):
    assert crypt.sha1(h(vector["in"])) == h(vector["out"])


@pytest.mark.parametrize("vector", vectors("hmac_sha1"))
def test_hmac_sha1_matches_skynet(vector):
    assert crypt.hmac_sha1(h(vector["key"]), h(vector["text"])) == h(vector["out"])


@pytest.mark.parametrize("vector", vectors("des_ecb_blocks"))
def test_desencode_encrypts_each_block_with_plain_des_ecb(vector):
    assert crypt.desencode(h(vector["key"]), h(vector["in"]))[:8] == h(vector["out"])


@pytest.mark.parametrize("vector", vectors("desencode"))
def test_desencode_matches_skynet(vector):
    out = crypt.desencode(h(vector["key"]), h(vector["plaintext"]), *padding_args(vector))
    assert out == h(vector["out"])


@pytest.mark.parametrize("vector", vectors("desdecode"))
def test_desdecode_matches_skynet(vector):
    out = crypt.desdecode(h(vector["key"]), h(vector["ciphertext"]), *padding_args(vector))
    assert out == h(vector["out"])


@pytest.mark.parametrize("vector", vectors("base64encode"))
def test_base64encode_matches_skynet(vector):
    assert crypt.base64encode(h(vector["in"])) == h(vector["out"])


@pytest.mark.parametrize("vector", vectors("base64decode"))
def test_base64decode_matches_skynet(vector):
    assert crypt.base64decode(h(vector["in"])) == h(vector["out"])


@pytest.mark.parametrize("vector", vectors("hexencode"))
def test_hexencode_matches_skynet(vector):
    assert crypt.hexencode(h(vector["in"])) == vector["out_text"].encode()


@pytest.mark.parametrize("vector", vectors("hexdecode"))
def test_hexdecode_matches_skynet(vector):
    assert crypt.hexdecode(vector["in_text"].encode()) == h(vector["out"])


@pytest.mark.parametrize("vector", vectors("xor_str"))
def test_xor_str_matches_skynet(vector):
    assert crypt.xor_str(h(vector["a"]), h(vector["b"])) == h(vector["out"])


@pytest.mark.parametrize("vector", params("crypt.json", "errors", describe_error))
def test_bad_input_raises_skynets_error_text(vector):
    # String args are hex; integer args are padding modes given as skynet's integer codes.
    args = [h(arg) if isinstance(arg, str) else arg for arg in vector["args"]]
    with pytest.raises(CryptError) as raised:
        getattr(crypt, vector["func"])(*args)
    assert str(raised.value) == vector["error"]


def test_crypt_error_is_a_meshnet_error():
    assert issubclass(CryptError, MeshnetError)


@pytest.mark.parametrize("name, code", crypt.PADDING.items())
def test_padding_name_and_skynet_code_are_interchangeable(name, code):
    key, text = b"12345678", b"some text"
    assert crypt.desencode(key, text, name) == crypt.desencode(key, text, code)
    assert crypt.desdecode(key, crypt.desencode(key, text, code), name) == text


def test_unknown_padding_name_is_an_invalid_mode():
    with pytest.raises(CryptError, match="^Invalid padding mode zeros$"):
        crypt.desencode(b"12345678", b"text", "zeros")


def test_hexdecode_accepts_W_to_backtick_like_skynets_digit_mapping():
    # skynet maps these to (c - 'a' + 10) & 0xff = 0..9, which passes its "> 16" check.
    assert crypt.hexdecode(b"W0") == b"\x00"
    assert crypt.hexdecode(b"`9") == b"\x99"


def test_randomkey_is_8_bytes():
    assert len(crypt.randomkey()) == 8


@pytest.mark.parametrize("drawn", [bytes(8), b"\x03\x03" + bytes(6)], ids=["even", "odd"])
def test_randomkey_breaks_a_zero_xor_by_flipping_bit_0(monkeypatch, drawn):
    # skynet ORs the bit in, which leaves the XOR at 0 when byte 0 is already odd.
    monkeypatch.setattr(crypt.secrets, "token_bytes", lambda n: drawn)
    key = crypt.randomkey()
    assert reduce(xor, key) != 0
    assert key == bytes([drawn[0] ^ 1]) + drawn[1:]


keys = st.binary(min_size=8, max_size=8)
nonzero_keys = keys.filter(any)
paddings = st.sampled_from(sorted(crypt.PADDING))


@given(key=keys, text=st.binary(max_size=80), padding=paddings)
def test_des_round_trips_with_either_padding(key, text, padding):
    encrypted = crypt.desencode(key, text, padding)
    assert len(encrypted) == (len(text) + 8) & ~7
    assert crypt.desdecode(key, encrypted, padding) == text


@given(st.binary(max_size=300))
def test_base64_round_trips(data):
    assert crypt.base64decode(crypt.base64encode(data)) == data


@given(st.binary(max_size=300))
def test_hex_round_trips(data):
    assert crypt.hexdecode(crypt.hexencode(data)) == data


@given(a=st.binary(max_size=40), b=st.binary(min_size=1, max_size=10))
def test_xor_str_twice_with_the_same_key_is_identity(a, b):
    assert crypt.xor_str(crypt.xor_str(a, b), b) == a


@given(a=nonzero_keys, b=nonzero_keys)
def test_dhsecret_agrees_on_both_sides(a, b):
    assert crypt.dhsecret(crypt.dhexchange(a), b) == crypt.dhsecret(crypt.dhexchange(b), a)


# Bytes that exercise every branch of the base64 decoder: symbols, '=', skipped junk.
base64ish = st.lists(st.sampled_from(b"QUJDAgw+/=\n\r -\x80")).map(bytes)


@given(st.one_of(base64ish, st.binary(max_size=64)))
def test_base64decode_follows_skynets_byte_loop(text):
    try:
        expected = skynet_base64decode(text)
    except ValueError:
        with pytest.raises(CryptError, match="^Invalid base64 text$"):
            crypt.base64decode(text)
    else:
        assert crypt.base64decode(text) == expected


@pytest.mark.parametrize("decode", [crypt.base64decode, crypt.hexdecode])
@given(text=st.binary(max_size=64))
def test_decoders_fed_garbage_raise_only_crypt_error(decode, text):
    try:
        decode(text)
    except CryptError:
        pass


@given(
    key=st.binary(max_size=10),
    text=st.binary(max_size=40),
    padding=st.one_of(paddings, st.integers(-2, 3)),
)
def test_desdecode_fed_garbage_raises_only_crypt_error(key, text, padding):
    try:
        crypt.desdecode(key, text, padding)
    except CryptError:
        pass


def skynet_base64decode(text: bytes) -> bytes:
    """Slow model of skynet's decoder loop, one byte at a time; ValueError where it errors."""
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    pad = -2
    out = bytearray()
    i = 0
    while i < len(text):
        group = []
        while len(group) < 4:
            if i >= len(text):
                group.append(pad)  # input ended inside the group: a missing '='
            elif text[i] == ord("="):
                group.append(pad)
            elif text[i] in alphabet:
                group.append(alphabet.index(text[i]))
            i += 1
        pads = group.count(pad)
        if pads == 0:
            value = group[0] << 18 | group[1] << 12 | group[2] << 6 | group[3]
            out += value.to_bytes(3, "big")
        elif pads == 1 and group[3] == pad and group[2] & 3 == 0:
            out += (group[0] << 10 | group[1] << 4 | group[2] >> 2).to_bytes(2, "big")
        elif pads == 2 and group[2] == group[3] == pad and group[1] & 0xF == 0:
            out.append(group[0] << 2 | group[1] >> 4)
        else:
            raise ValueError("Invalid base64 text")
    return bytes(out)

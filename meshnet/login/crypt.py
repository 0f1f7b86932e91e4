"""skynet's ``crypt`` module: same function names, same bytes out, same error texts.

Every function takes and returns ``bytes``. Errors raise :class:`CryptError` whose message is
the exact text skynet's C module raises, so logs and tests compare one-to-one with skynet.
The vectors in ``shared/vectors/crypt.json`` (recorded from skynet) are the specification.
"""

import binascii
import hashlib
import hmac
import math
import operator
import secrets
import struct
from functools import reduce
from typing import Literal

from Crypto.Cipher import DES

from meshnet.errors import MeshnetError

Padding = Literal["iso7816_4", "pkcs7"]

#: skynet's ``crypt.padding`` table: ``desencode``/``desdecode`` accept these names or codes.
PADDING: dict[str, int] = {"iso7816_4": 0, "pkcs7": 1}

#: DH modulus (the largest 64-bit prime, 2^64 - 59) and generator.
P = 0xFFFFFFFFFFFFFFC5
G = 5


class CryptError(MeshnetError):
    """Bad input to a crypt function; the message is skynet's exact error text."""


def dhexchange(key: bytes) -> bytes:
    """Public DH value ``G^key mod P`` of an 8-byte private key (little-endian u64)."""
    if len(key) != 8:
        raise CryptError("Invalid dh uint64 key")
    x = _u64(key)
    if x == 0:
        raise CryptError("Can't be 0")
    return _U64.pack(pow(G, x, P))


def dhsecret(public: bytes, private: bytes) -> bytes:
    """Shared DH secret ``public^private mod P``.

    Keeps skynet's quirk: the base is reduced only when it is greater than P, and an exponent
    of 1 returns the base as-is, so ``dhsecret(P, 1) == P``.
    """
    if len(public) != 8:
        raise CryptError("Invalid uint64 x")
    if len(private) != 8:
        raise CryptError("Invalid uint64 y")
    a, b = _u64(public), _u64(private)
    if a == 0 or b == 0:
        raise CryptError("Can't be 0")
    if a > P:
        a %= P
    return _U64.pack(a if b == 1 else pow(a, b, P))


def hmac64(x: bytes, y: bytes) -> bytes:
    """skynet's 64-bit MAC (not RFC 2104): MD5's rounds, without padding or feed-forward."""
    x0, x1 = _u32_pair(x, "Invalid uint64 x")
    y0, y1 = _u32_pair(y, "Invalid uint64 y")
    return _hmac64_words(x0, x1, y0, y1)


def hmac64_md5(x: bytes, y: bytes) -> bytes:
    """First and second halves of ``MD5((x + y) * 3)`` XORed together."""
    _u32_pair(x, "Invalid uint64 x")
    _u32_pair(y, "Invalid uint64 y")
    digest = hashlib.md5((x + y) * 3).digest()
    return (_u64(digest[:8]) ^ _u64(digest[8:])).to_bytes(8, "little")


def hashkey(text: bytes) -> bytes:
    """8-byte key from any text: DJB hash then JS hash, each little-endian u32."""
    djb, js = 5381, 1315423911
    for c in text:
        djb = (djb * 33 + c) & _MASK32
        js = (js ^ ((js << 5) + c + (js >> 2))) & _MASK32
    return _U32X2.pack(djb, js)


def hmac_hash(key: bytes, text: bytes) -> bytes:
    """``hmac64(hashkey(text), key)``; msgserver checks the handshake with it."""
    k0, k1 = _u32_pair(key, "Invalid uint64 key")
    h0, h1 = _U32X2.unpack(hashkey(text))
    return _hmac64_words(h0, h1, k0, k1)


def desencode(key: bytes, text: bytes, padding: Padding | int = "iso7816_4") -> bytes:
    """Single DES-ECB; always pads (1 to 8 bytes), so the output is ``(len + 8) & ~7`` long."""
    cipher = _des(key)
    mode = _padding_mode(padding)
    fill = 8 - len(text) % 8
    if mode == _ISO7816_4:
        tail = b"\x80" + bytes(fill - 1)
    else:
        tail = bytes((fill,)) * fill
    return cipher.encrypt(text + tail)


def desdecode(key: bytes, text: bytes, padding: Padding | int = "iso7816_4") -> bytes:
    """Inverse of :func:`desencode`; a bad length or padding raises skynet's error."""
    cipher = _des(key)
    if not text or len(text) % 8:
        raise CryptError(f"Invalid des crypt text length {len(text)}")
    mode = _padding_mode(padding)
    plain = cipher.decrypt(text)
    size = _iso7816_4_size(plain) if mode == _ISO7816_4 else _pkcs7_size(plain)
    if size == 0:
        raise CryptError("Invalid des crypt text")
    return plain[:-size]


def randomkey() -> bytes:
    """8 random bytes whose XOR is never 0 (so the key is never all-zero).

    skynet ORs 1 into byte 0 when the XOR is 0, which leaves the XOR at 0 when that byte is
    already odd; flipping the bit instead always makes the XOR non-zero.
    """
    key = bytearray(secrets.token_bytes(8))
    if reduce(operator.xor, key) == 0:
        key[0] ^= 1
    return bytes(key)


def base64encode(data: bytes) -> bytes:
    """Standard RFC 4648 base64 with '=' padding."""
    return binascii.b2a_base64(data, newline=False)


def base64decode(text: bytes) -> bytes:
    """skynet's lenient base64 decoder.

    Bytes outside the alphabet and '=' are skipped; input ending inside a group counts as
    missing '=' padding; each 4-symbol group is decoded on its own. A group with 3 or 4
    padding slots (including one made only of junk after a complete last group), '=' before
    a data symbol in its group, or non-zero leftover bits raise "Invalid base64 text".
    """
    symbols = text.translate(None, _B64_JUNK)
    if len(symbols) % 4:
        symbols += b"=" * (-len(symbols) % 4)
    elif text and text[-1] in _B64_JUNK:
        raise CryptError("Invalid base64 text")
    if not symbols:
        return b""
    if b"=" in symbols[:-4]:
        return b"".join(_b64_group(symbols[i : i + 4]) for i in range(0, len(symbols), 4))
    return binascii.a2b_base64(symbols[:-4]) + _b64_group(symbols[-4:])


def hexencode(data: bytes) -> bytes:
    """Lowercase hex."""
    return binascii.hexlify(data)


def hexdecode(text: bytes) -> bytes:
    """Hex to bytes with skynet's digit mapping.

    skynet maps a non-decimal char c to ``(uint8)(c - 'a' + 10)`` and accepts values up to 16,
    so besides 0-9 and a-f it accepts 'g' (16) and 'W'..'`' (0..9); the byte is truncated to
    8 bits. Everything else, uppercase included, is "Invalid hex text".
    """
    if len(text) % 2:
        raise CryptError(f"Invalid hex text size {len(text)}")
    if not text.translate(None, b"0123456789abcdef"):
        return binascii.unhexlify(text)
    values = [_HEX_VALUE[c] for c in text]
    if max(values) > 16:
        raise CryptError("Invalid hex text")
    return bytes(((hi << 4) | lo) & 0xFF for hi, lo in zip(values[::2], values[1::2], strict=True))


def sha1(data: bytes) -> bytes:
    """SHA-1 digest (20 bytes)."""
    return hashlib.sha1(data).digest()


def hmac_sha1(key: bytes, text: bytes) -> bytes:
    """RFC 2104 HMAC-SHA1 (20 bytes)."""
    return hmac.digest(key, text, "sha1")


def xor_str(a: bytes, b: bytes) -> bytes:
    """``a`` XOR ``b`` repeated to the length of ``a``."""
    if not b:
        raise CryptError("Can't xor empty string")
    key = (b * (len(a) // len(b) + 1))[: len(a)]
    return (int.from_bytes(a, "little") ^ int.from_bytes(key, "little")).to_bytes(len(a), "little")


# --- helpers -----------------------------------------------------------------------------

_MASK32 = 0xFFFFFFFF
_U64 = struct.Struct("<Q")
_U32X2 = struct.Struct("<II")
_ISO7816_4, _PKCS7 = PADDING["iso7816_4"], PADDING["pkcs7"]

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_VALUE = {c: i for i, c in enumerate(_B64_ALPHABET)}
_B64_JUNK = bytes(c for c in range(256) if c not in _B64_VALUE and c != ord("="))

# skynet's HEX macro: c - '0' for decimal digits, else (uint8)(c - 'a' + 10).
_HEX_VALUE = tuple(
    c - ord("0") if ord("0") <= c <= ord("9") else (c - ord("a") + 10) & 0xFF for c in range(256)
)


def _u64(data: bytes) -> int:
    return int.from_bytes(data, "little")


def _u32_pair(data: bytes, error: str) -> tuple[int, int]:
    if len(data) != 8:
        raise CryptError(error)
    return _U32X2.unpack(data)


def _des(key: bytes):
    if len(key) != 8:
        raise CryptError(f"Invalid key size {len(key)}, need 8 bytes")
    return DES.new(key, DES.MODE_ECB)


def _padding_mode(padding: Padding | int) -> int:
    mode = PADDING.get(padding, padding) if isinstance(padding, str) else padding
    if mode not in (_ISO7816_4, _PKCS7):
        raise CryptError(f"Invalid padding mode {padding}")
    return mode


def _iso7816_4_size(plain: bytes) -> int:
    """Padding length: trailing zeros then 0x80, all within the last 8 bytes; 0 if invalid."""
    tail = plain[-8:]
    stripped = tail.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80:
        return 0
    return len(tail) - len(stripped) + 1


def _pkcs7_size(plain: bytes) -> int:
    """Padding length: n bytes of value n, 1 <= n <= 8; 0 if invalid."""
    n = plain[-1]
    if not 1 <= n <= 8 or plain[-n:] != bytes((n,)) * n:
        return 0
    return n


def _b64_group(group: bytes) -> bytes:
    """Decode one 4-symbol group, checking its '=' slots and leftover bits like skynet."""
    pads = group.count(b"=")
    if pads == 0:
        return binascii.a2b_base64(group)
    if pads == 1 and group[3] == 0x3D and _B64_VALUE[group[2]] & 0x3 == 0:
        return binascii.a2b_base64(group)
    if pads == 2 and group[2] == group[3] == 0x3D and _B64_VALUE[group[1]] & 0xF == 0:
        return binascii.a2b_base64(group)
    raise CryptError("Invalid base64 text")


# MD5's 64 rounds as (constant, shift, message word) tables, one table per round function.
# hmac64's 16-word message is [x1, x0, y1, y0] repeated, so message word g is words[g % 4].
_MD5_K = tuple(int(abs(math.sin(i + 1)) * 2**32) & _MASK32 for i in range(64))
_MD5_SHIFTS = ((7, 12, 17, 22), (5, 9, 14, 20), (4, 11, 16, 23), (6, 10, 15, 21))
_MD5_WORD = (lambda i: i, lambda i: 5 * i + 1, lambda i: 3 * i + 5, lambda i: 7 * i)
_MD5_ROUNDS = tuple(
    tuple(
        (_MD5_K[i], _MD5_SHIFTS[stage][i % 4], _MD5_WORD[stage](i) % 4)
        for i in range(16 * stage, 16 * stage + 16)
    )
    for stage in range(4)
)


def _hmac64_words(x0: int, x1: int, y0: int, y1: int) -> bytes:
    m = _MASK32
    w = (x1, x0, y1, y0)
    a, b, c, d = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476
    f_rounds, g_rounds, h_rounds, i_rounds = _MD5_ROUNDS
    # One loop per round function, so no round pays for choosing its function.
    for k, s, g in f_rounds:
        t = (a + (d ^ (b & (c ^ d))) + k + w[g]) & m
        a, b, c, d = d, (b + ((t << s) | (t >> (32 - s)))) & m, b, c
    for k, s, g in g_rounds:
        t = (a + (c ^ (d & (b ^ c))) + k + w[g]) & m
        a, b, c, d = d, (b + ((t << s) | (t >> (32 - s)))) & m, b, c
    for k, s, g in h_rounds:
        t = (a + (b ^ c ^ d) + k + w[g]) & m
        a, b, c, d = d, (b + ((t << s) | (t >> (32 - s)))) & m, b, c
    for k, s, g in i_rounds:
        t = (a + (c ^ (b | (d ^ m))) + k + w[g]) & m
        a, b, c, d = d, (b + ((t << s) | (t >> (32 - s)))) & m, b, c
    return _U32X2.pack(c ^ d, a ^ b)

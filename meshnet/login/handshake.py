"""The login server's key exchange, step by step, for both ends (DESIGN §5, book 14.2).

Pure functions over lines (without their ``\\n``): each ``*_line`` builds what one side sends,
each reader turns what the other side sent into a value or raises :class:`HandshakeFailed`.
The server answers that error with ``400 Bad Request``.
"""

import hmac

from meshnet.login.crypt import (
    CryptError,
    P,
    base64decode,
    base64encode,
    desdecode,
    desencode,
    dhexchange,
    dhsecret,
    hmac64,
)
from meshnet.login.wire import LoginProtocolError

KEY_SIZE = 8
DEGENERATE_PUBLIC_KEYS = frozenset({0, 1, P - 1})
"""Public DH values, mod P, that are refused."""


class HandshakeFailed(LoginProtocolError):
    """A key, the challenge answer or the encrypted token is not what the protocol needs."""


def key_line(key: bytes) -> bytes:
    """``base64(key)``: how the server sends the challenge."""
    return base64encode(key)


def public_key_line(private: bytes) -> bytes:
    """``base64(dhexchange(private))``, a side's public key."""
    return base64encode(dhexchange(private))


def read_key(line: bytes, what: str) -> bytes:
    """The 8 bytes a key line carries (``what`` names the key in the error)."""
    key = _decode(line, what)
    if len(key) != KEY_SIZE:
        raise HandshakeFailed(f"{what} is {len(key)} bytes after base64 decoding, not {KEY_SIZE}")
    return key


def shared_secret(public_line: bytes, private: bytes) -> bytes:
    """The DH secret from the other side's public key line and our private key.

    A degenerate public key is refused: 0, 1 and P - 1 (and P, P + 1, the same values
    mod P) make a secret that does not depend on our private key (0, 1 or ±1), so an
    eavesdropper who sent it, or changed it on the way, knows the secret. skynet refuses
    only 0; this is a deliberate divergence (no honest peer ever sends the others)."""
    public = read_key(public_line, "public key")
    value = int.from_bytes(public, "little")
    if value and value % P in DEGENERATE_PUBLIC_KEYS:  # 0 itself: crypt says "Can't be 0"
        raise HandshakeFailed(f"public key is unusable: {value} is a degenerate DH value")
    try:
        return dhsecret(public, private)
    except CryptError as exc:  # a zero public key
        raise HandshakeFailed(f"public key is unusable: {exc}") from exc


def challenge_line(challenge: bytes, secret: bytes) -> bytes:
    """``base64(hmac64(challenge, secret))``: the client proves it holds the secret."""
    return base64encode(hmac64(challenge, secret))


def check_challenge(line: bytes, challenge: bytes, secret: bytes) -> None:
    """Raise unless ``line`` is the challenge answer for ``secret``."""
    if not hmac.compare_digest(_decode(line, "challenge answer"), hmac64(challenge, secret)):
        raise HandshakeFailed("challenge failed: the answer was not made with the shared secret")


def token_line(token: bytes, secret: bytes) -> bytes:
    """``base64(desencode(secret, token))``."""
    return base64encode(desencode(secret, token))


def read_token(line: bytes, secret: bytes) -> bytes:
    """The token a token line carries, decrypted with ``secret``."""
    try:
        return desdecode(secret, _decode(line, "encrypted token"))
    except CryptError as exc:
        raise HandshakeFailed(f"encrypted token does not decrypt: {exc}") from exc


def _decode(line: bytes, what: str) -> bytes:
    try:
        return base64decode(line)
    except CryptError as exc:
        raise HandshakeFailed(f"{what} {line[:32]!r} is not valid base64") from exc

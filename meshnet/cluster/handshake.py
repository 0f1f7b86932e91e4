"""The link handshake's proofs: both ends show they hold the cluster secret.

The dialer and the acceptor each send a ``HELLO`` (protocol version, node name, id,
incarnation and a fresh 32-byte nonce). The dialer then proves itself first, the acceptor
only after checking that proof::

    dialer proof   = HMAC-SHA256(secret, "meshnet-link/dialer"   | dialer HELLO | acceptor HELLO)
    acceptor proof = HMAC-SHA256(secret, "meshnet-link/acceptor" | acceptor HELLO | dialer HELLO)

Each proof covers both nonces, so it is good for this one connection only (no replay), and
the role is part of it, so a proof cannot be reflected back to its sender. A process
without the secret can neither join nor pose as a node to a node that dials it. What
the secret does not protect against: someone on the network path reading or changing the
bytes after the handshake (use a private network, or TLS on the links).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

DIALER = b"meshnet-link/dialer"
ACCEPTOR = b"meshnet-link/acceptor"
NONCE_SIZE = 32


def new_nonce() -> bytes:
    """A fresh random nonce for one HELLO."""
    return secrets.token_bytes(NONCE_SIZE)


def proof(secret: bytes, role: bytes, own_hello: bytes, peer_hello: bytes) -> bytes:
    """The proof of the end playing ``role`` (``DIALER`` or ``ACCEPTOR``); the hellos are
    the frames' bodies as sent."""
    return hmac.new(secret, role + own_hello + peer_hello, hashlib.sha256).digest()


def verify(secret: bytes, role: bytes, claimed: bytes, peer_hello: bytes, own_hello: bytes) -> bool:
    """True if ``claimed`` is the peer's proof for ``role`` on this connection."""
    return hmac.compare_digest(claimed, proof(secret, role, peer_hello, own_hello))

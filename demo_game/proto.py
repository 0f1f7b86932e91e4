"""The demo game's client protocol (skynet_sample's proto.sproto, as a meshnet Protocol).

``signup`` and ``signin`` pass straight to the auth service; ``login``, ``ping``,
``wallet``, ``enter_subgame`` and ``leave_subgame`` reach the user's agent once a signin
bound the connection to it; ``push`` only goes from the server to clients. The last three
move and show the player's gold between the main game and the subgame, which only the
demo on several nodes runs (``make demo-cluster``). ``python -m meshnet proto dump
demo_game.proto`` prints the table.

Through the msgserver (the secure path) a request's content is a request packet of this
protocol, and its response's content is every packet a hub connection would have been
sent for it (``pack_packets``): the msgserver has no way to push.
"""

from __future__ import annotations

from demo_game.names import AGENT, AUTH
from meshnet import codec
from meshnet.gate.proto import MalformedPacket, Protocol

SIGNUP_SERVER = "signup"
"""The server name in a login token that asks the login server to create the account."""

proto = Protocol("demo")

_CREDENTIALS = {"user": str, "password": str}
_OK = {"ok": bool}
_MOVED = {"state": str, "gold": int}
"""What a move of all the player's gold did: the reliable command's outcome
(``delivered``, ``deferred``, ``held``), or ``nothing`` (no gold to move); and how much."""

proto.message(1, "signup", _CREDENTIALS, target=AUTH, rule="pass", reply=_OK)
proto.message(2, "signin", _CREDENTIALS, target=AUTH, rule="pass", reply=_OK)
proto.message(3, "login", target=AGENT, rule="auth", reply=_OK)
proto.message(4, "ping", target=AGENT, rule="auth", reply={})
proto.message(
    5,
    "wallet",
    target=AGENT,
    rule="auth",
    reply={"main": int, "subgame": int | None, "in_transit": int},
)
proto.message(6, "enter_subgame", target=AGENT, rule="auth", reply=_MOVED)
proto.message(7, "leave_subgame", target=AGENT, rule="auth", reply=_MOVED)
proto.message(100, "push", {"text": str})


def pack_packets(packets: list[bytes]) -> bytes:
    """A msgserver response's content: the packets a hub connection would have been sent
    for the request (pushes, then the reply), as a CBOR array of byte strings."""
    return codec.encode(packets)


def unpack_packets(content: bytes) -> list[bytes]:
    """The packets in a msgserver response's content; MalformedPacket if it holds none."""
    try:
        packets = codec.decode(content)
    except codec.CodecError as exc:
        raise MalformedPacket(f"malformed msgserver response: {exc}") from None
    if not isinstance(packets, list) or not all(isinstance(p, bytes) for p in packets):
        raise MalformedPacket("malformed msgserver response: expected an array of packets")
    return packets

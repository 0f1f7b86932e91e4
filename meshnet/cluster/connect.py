"""Opening a link: dialing a node or accepting one, and the handshake both ends run.

The handshake (frames in wire.py, proofs in handshake.py)::

    dialer                              acceptor
      HELLO  ------------------------->                 checks version, who it is
             <-------------------------  HELLO          (or REFUSE, then closes)
      AUTH   ------------------------->                 checks the dialer's proof
             <-------------------------  AUTH           (or REFUSE, then closes)
    both: the link is up

When two nodes dial each other at once, the one with the lower id keeps its own dial: it
refuses the other's with ``dial_back``, and the other waits to be dialed.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from meshnet.cluster import handshake, wire
from meshnet.cluster.config import LinkTLS
from meshnet.cluster.members import Member
from meshnet.errors import MeshnetError

RECEIVE_SIZE = 256 * 1024


class HandshakeError(MeshnetError):
    """The handshake failed: the peer broke the protocol, was refused, or timed out."""


class LinkRefused(HandshakeError):
    """The acceptor refused the link; ``dial_back`` means it will dial us instead."""

    def __init__(self, reason: str, dial_back: bool) -> None:
        super().__init__(f"link refused: {reason}")
        self.reason = reason
        self.dial_back = dial_back


@dataclass(frozen=True)
class Hello:
    """What a node says of itself when a link opens."""

    node: str
    id: int
    incarnation: int
    nonce: bytes
    version: int = wire.VERSION

    def as_map(self) -> dict[str, Any]:
        """The HELLO frame's CBOR map."""
        return {
            "version": self.version,
            "node": self.node,
            "id": self.id,
            "incarnation": self.incarnation,
            "nonce": self.nonce,
        }

    @classmethod
    def from_map(cls, value: dict[str, Any]) -> Hello:
        """A received HELLO; ``HandshakeError`` if a field is missing or of the wrong type."""
        try:
            hello = cls(
                value["node"], value["id"], value["incarnation"], value["nonce"], value["version"]
            )
        except KeyError as exc:
            raise HandshakeError(f"HELLO lacks {exc.args[0]!r}") from None
        if not (
            isinstance(hello.node, str)
            and isinstance(hello.id, int)
            and isinstance(hello.incarnation, int)
            and isinstance(hello.nonce, bytes)
            and isinstance(hello.version, int)
        ):
            raise HandshakeError(f"malformed HELLO {value!r}")
        return hello


@dataclass
class Opened:
    """An authenticated connection: the stream, the peer's hello, and the splitter holding
    whatever the peer sent after its last handshake frame."""

    stream: trio.abc.Stream
    peer: Hello
    splitter: wire.FrameSplitter


Admit = Callable[[Hello], "tuple[str, bool] | None"]
"""The acceptor's check of a dialer's hello: None to go on, else (reason, dial_back)."""


async def dial(
    member: Member, me: Hello, secret: bytes, timeout: float, tls: LinkTLS | None = None
) -> Opened:
    """Connect to ``member`` (over TLS with ``tls``) and run the dialer's side of the
    handshake within ``timeout``."""
    with trio.move_on_after(timeout):
        try:
            tcp = await trio.open_tcp_stream(member.host, member.port)
        except OSError as exc:
            raise HandshakeError(
                f"cannot connect to {member.name} at {member.address}: {exc}"
            ) from None
        stream: trio.abc.Stream = tcp
        try:
            set_nodelay(tcp)
            if tls is not None:
                stream = await _tls(tcp, tls.client, server_side=False)
            return await _dialer(stream, member, me, secret)
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
    raise HandshakeError(f"no handshake with {member.name} at {member.address} in {timeout:g}s")


async def accept(
    stream: trio.abc.Stream,
    me: Hello,
    secret: bytes,
    timeout: float,
    admit: Admit,
    tls: LinkTLS | None = None,
) -> Opened:
    """Run the acceptor's side of the handshake on ``stream`` (after TLS's, with ``tls``)
    within ``timeout``."""
    with trio.move_on_after(timeout):
        if tls is not None:
            stream = await _tls(stream, tls.server, server_side=True)
        splitter = wire.FrameSplitter()
        peer_body, peer = await _read_hello(stream, splitter)
        refusal = admit(peer)
        if refusal is not None:
            await _refuse(stream, *refusal)
        own_frame = _hello_frame(me)
        own_body = own_frame[wire.FRAME_HEAD :]
        await stream.send_all(own_frame)
        claimed = wire.decode_auth(await _expect(stream, splitter, wire.AUTH))
        if not handshake.verify(secret, handshake.DIALER, claimed, peer_body, own_body):
            await _refuse(stream, "authentication failed: wrong cluster secret", False)
        await stream.send_all(
            wire.encode_auth(handshake.proof(secret, handshake.ACCEPTOR, own_body, peer_body))
        )
        return Opened(stream, peer, splitter)
    raise HandshakeError(f"no handshake within {timeout:g}s")


def set_nodelay(stream: trio.abc.Stream) -> None:
    """Small frames go out at once (the writer already batches what is queued)."""
    if isinstance(stream, trio.SocketStream):
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)


# --- helpers -------------------------------------------------------------------------


async def _tls(
    stream: trio.abc.Stream, context: ssl.SSLContext, server_side: bool
) -> trio.SSLStream:
    secure = trio.SSLStream(stream, context, server_side=server_side)
    try:
        await secure.do_handshake()
    except trio.BrokenResourceError as exc:
        raise HandshakeError(f"TLS handshake failed: {exc.__cause__ or exc}") from None
    return secure


async def _dialer(stream: trio.abc.Stream, member: Member, me: Hello, secret: bytes) -> Opened:
    own_frame = _hello_frame(me)
    own_body = own_frame[wire.FRAME_HEAD :]
    await stream.send_all(own_frame)
    splitter = wire.FrameSplitter()
    peer_body, peer = await _read_hello(stream, splitter)
    if (peer.node, peer.id) != (member.name, member.id):
        raise HandshakeError(
            f"{member.address} is node {peer.node!r} (id {peer.id}), "
            f"not {member.name!r} (id {member.id})"
        )
    await stream.send_all(
        wire.encode_auth(handshake.proof(secret, handshake.DIALER, own_body, peer_body))
    )
    claimed = wire.decode_auth(await _expect(stream, splitter, wire.AUTH))
    if not handshake.verify(secret, handshake.ACCEPTOR, claimed, peer_body, own_body):
        raise HandshakeError(f"{member.name} failed to prove it has the cluster secret")
    return Opened(stream, peer, splitter)


def _hello_frame(hello: Hello) -> bytes:
    """The HELLO frame; its body (after ``FRAME_HEAD``) is what the proofs cover."""
    return wire.encode_control(wire.HELLO, hello.as_map())


async def _read_hello(stream: trio.abc.Stream, splitter: wire.FrameSplitter) -> tuple[bytes, Hello]:
    frame = await _expect(stream, splitter, wire.HELLO)
    hello = Hello.from_map(wire.decode_control(frame))
    if hello.version != wire.VERSION:
        raise HandshakeError(
            f"node {hello.node!r} speaks link protocol {hello.version}, not {wire.VERSION}"
        )
    return frame.body, hello


async def _expect(stream: trio.abc.Stream, splitter: wire.FrameSplitter, wanted: int) -> wire.Frame:
    """The next frame, which must be of type ``wanted`` (a REFUSE raises LinkRefused)."""
    frames = splitter.feed(b"")
    while not frames:
        data = await stream.receive_some(RECEIVE_SIZE)
        if not data:
            raise HandshakeError("the peer closed the connection during the handshake")
        frames = splitter.feed(data)
    frame, rest = frames[0], frames[1:]
    if rest:  # give back what came after this frame, for the link's reader
        splitter.unread(rest)
    if frame.type == wire.REFUSE:
        refusal = wire.decode_control(frame)
        raise LinkRefused(str(refusal.get("reason")), bool(refusal.get("dial_back")))
    if frame.type != wanted:
        raise HandshakeError(f"expected frame type {wanted} in the handshake, got {frame.type}")
    return frame


async def _refuse(stream: trio.abc.Stream, reason: str, dial_back: bool) -> None:
    try:
        await stream.send_all(
            wire.encode_control(wire.REFUSE, {"reason": reason, "dial_back": dial_back})
        )
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    raise LinkRefused(reason, dial_back)

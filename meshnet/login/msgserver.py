"""``MsgServer``: skynet's msgserver template (book ch. 15, DESIGN §5) on the gateserver.

A client that logged in through the login server connects here. Its first packet is the
handshake ``base64(uid)@base64(server)#base64(subid):index:base64(hmac)``, answered with one
status packet: ``200 OK``, or ``404 User Not Found`` / ``400 Bad Request`` / ``403 Index
Expired`` / ``401 Unauthorized`` followed by the server closing the connection. Then each
packet is a request ``content | u32 BE session``, run in its own task by ``request_handler``
and answered ``content | u8 ok | u32 BE session`` (ok 0 and empty content when the handler
raised). Answers are cached per user so a client that reconnects with the next index gets
them back without running the requests again (``meshnet.login.msgstate``).

A msgserver may be one of several that share a port (a node run as ``workers = N``,
``meshnet.workers``), each owning some users. A handshake for a user this one does not
own (``handshake_owner`` names the msgserver that does) is relayed: this server sends the
connection's packets, in order, to the owner (``relay_handshake``, ``relay_packet``,
``relay_closed``), and the owner, which holds the user's secret, index and response cache,
answers through this one (``relay_write``, ``relay_close``, ``relay_pause``,
``relay_resume``). So a reconnect the kernel hands to another worker still gets ``200 OK``
and its cached answers. If either side goes away, the connection is closed: the owner
asks each relaying msgserver every ``relay_check`` seconds which of its connections are
still there (one that cannot answer has none), and a relaying msgserver closes a
connection whose owner is gone or no longer knows it on its next packet.

Differences from skynet, on purpose: a new successful handshake closes the user's previous
connection (skynet leaves it open), and requests the server had not read from that
connection yet are dropped, so each session still runs at most once: the client's resend on
the new connection runs it. The handshake index must be decimal digits (skynet's
``tonumber`` also takes ``0x10``, ``1e1``).

What a client can hold is bounded (the gate conf keys, ``meshnet.gate.conf``):

- a new connection must send its handshake within ``handshake_timeout`` seconds (default
  5), else it is closed;
- connections still waiting for their handshake do not count against ``maxclient``, which
  caps the connections past their handshake; at most ``max_handshaking`` (default 1024)
  wait at once, and when that many do, a new connection closes the one that has waited
  longest. So idle connections cannot lock players out: a player's handshake comes at once,
  an idle connection is the first to go. A handshake that would take the server past
  ``maxclient`` users connected is answered ``503 Service Unavailable`` (not in skynet);
- a user has at most ``max_in_flight`` (default 4) requests running at once: past it the
  user's connection is not read until one finishes. A request keeps running when its
  connection closes, and its answer is cached: the client's resend after it reconnects
  with the next index is answered from the cache, never run twice. The bound counts those
  too, so a reconnecting client cannot pile up work. Cached answers leave only by skynet's
  rule (the last 128-256 are kept) or when the user logs out or is kicked.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, NamedTuple

import trio

from meshnet.errors import UNREACHABLE, CallError, MeshnetError
from meshnet.framing import MAX_PAYLOAD
from meshnet.gate.conf import parse_conf
from meshnet.gate.gateserver import GateServer
from meshnet.gate.heartbeat import Heartbeats
from meshnet.login.crypt import base64decode
from meshnet.login.msgstate import (
    EXPIRED_NUMBER,
    Entry,
    Reply,
    SessionConflict,
    User,
    check_handshake,
)
from meshnet.login.wire import (
    SERVICE_UNAVAILABLE,
    Request,
    TruncatedPacket,
    make_username,
    unpack_request,
)
from meshnet.probes import Sample
from meshnet.service import command

logger = logging.getLogger(__name__)

MAX_CONTENT = MAX_PAYLOAD - 5
"""The longest response content: the packet also holds the ok byte and the session."""

Text = bytes | str
Subid = bytes | str | int


class MsgServerError(MeshnetError):
    """The msgserver was misused: no server name, a user logged in twice, ..."""


class Remote(NamedTuple):
    """A connection of another msgserver (``gate``), relayed to this one, its user's owner."""

    gate: int
    fd: int


Target = int | Remote
"""A connection the msgserver answers: one of its own (an fd) or a relayed one."""


class MsgServer(GateServer):
    """Base class of msgservers: override the ``*_handler`` methods.

    Start with ``newservice(Sub, conf)`` or call its ``open(conf)``: the gate conf keys of
    ``meshnet.gate.conf`` plus ``servername``, the game server name clients log in to.

    Commands for the login server and agents: ``login(uid, secret) -> subid``,
    ``logout(uid, subid)``, ``kick(uid, subid)`` (each runs the matching handler; this
    ``kick`` replaces the gate's ``kick(fd)``). The handlers register and drop users with
    ``user_login(username, secret)`` and ``user_logout(username)``.
    """

    expired_number: ClassVar[int] = EXPIRED_NUMBER
    """Responses kept per user: the last ``expired_number`` to twice that."""
    relay_check: ClassVar[float] = 5.0
    """Seconds between two checks that the connections relayed here are still open."""

    def __init__(self) -> None:
        super().__init__()
        self.servername = b""
        self._users: dict[bytes, User] = {}
        self._handshaking: dict[int, str] = {}
        """Connections whose first packet (the handshake) has not come yet -> their peer."""
        self._connections: dict[Target, User] = {}
        """Connections past their handshake (own or relayed) -> their user."""
        self._relayed: dict[int, int | str] = {}
        """Own connections relayed to their user's owner -> that msgserver."""
        self._relay_out: trio.MemorySendChannel[tuple[int, str, tuple[Any, ...]]] | None = None
        """What to tell the msgservers whose connections are relayed here, in order."""
        self.msgserver_handshakes: Counter[str] = Counter()
        """Handshakes by the status code answered (``"200"``, ``"404"``, ...)."""
        self.msgserver_cache_hits = 0
        """Requests answered from the response cache instead of running again."""
        self.maxclient = 0
        """Connections past their handshake the server takes at once."""
        self._handshakes: Heartbeats | None = None
        """The handshake deadline of every connection in ``_handshaking``, oldest first."""

    # --- what subclasses write ------------------------------------------------------

    async def login_handler(self, uid: Any, secret: bytes) -> Subid:
        """The login server hands over ``uid``: set it up, ``user_login`` it, return a subid
        unique on this server. Raise to refuse."""
        raise NotImplementedError("a MsgServer subclass must define login_handler")

    async def logout_handler(self, uid: Any, subid: Subid) -> None:
        """The user leaves for good (usually called by its agent): ``user_logout`` it and
        tell the login server."""
        raise NotImplementedError("a MsgServer subclass must define logout_handler")

    async def kick_handler(self, uid: Any, subid: Subid) -> None:
        """The login server wants the user out (it logged in again): make it log out."""
        raise NotImplementedError("a MsgServer subclass must define kick_handler")

    async def request_handler(self, username: bytes, message: bytes) -> bytes | None:
        """Answer one request of ``username``; raise to answer with an error."""
        raise NotImplementedError("a MsgServer subclass must define request_handler")

    async def connect_handler(self, username: bytes) -> None:
        """A connection of the user passed its handshake (first connection or a reconnect
        with a higher index). Not in skynet, which gives no way to hear of a reconnect."""

    async def disconnect_handler(self, username: bytes) -> None:
        """The user's connection closed; it may come back with a higher index."""

    async def register_handler(self, servername: bytes) -> None:
        """The server opened as game server ``servername``."""

    def handshake_owner(self, uid: bytes) -> int | str | None:
        """The msgserver that owns user ``uid`` (its address or name) when it is not this
        one, else None (the default: every user is this server's, as in skynet)."""
        return None

    # --- commands -------------------------------------------------------------------

    @command
    async def open(self, conf: Mapping[str, Any]) -> dict[str, int]:
        """Listen as game server ``conf["servername"]``; return the bound ports."""
        gate_conf = dict(conf)
        servername = gate_conf.pop("servername", None)
        if not isinstance(servername, Text) or not servername:
            raise MsgServerError("a msgserver conf needs 'servername', the game server's name")
        self.servername = _as_bytes(servername)
        limits = parse_conf(gate_conf)
        self.maxclient = limits.maxclient
        # The gate's own cap counts the connections waiting for their handshake too.
        gate_conf["maxclient"] = limits.maxclient + limits.max_handshaking
        if self._handshakes is None:
            self._handshakes = Heartbeats(0.0, "no handshake within {period:g}s", abort=True)
            self.fork(self._handshakes.run)
            self._relay_out, queued = trio.open_memory_channel(math.inf)
            self.fork(self._tell_relays, queued)
            self.fork(self._check_relays)
        self._handshakes.period = limits.handshake_timeout
        ports = await super().open(gate_conf)
        await self.register_handler(self.servername)
        return ports

    @command
    async def login(self, uid: Any, secret: bytes) -> Subid:
        """Sent by the login server for a user who logged in: ``login_handler``'s subid."""
        return await self.login_handler(uid, secret)

    @command
    async def logout(self, uid: Any, subid: Subid) -> None:
        """Command: the user's login ends; runs ``logout_handler``."""
        await self.logout_handler(uid, subid)

    @command
    async def kick(self, uid: Any, subid: Subid) -> None:  # type: ignore[override]
        await self.kick_handler(uid, subid)

    # --- relaying: the owner's side -------------------------------------------------

    @command
    async def relay_handshake(self, gate: int, fd: int, peer: str, packet: bytes) -> None:
        """Msgserver ``gate`` relays its connection ``fd``, whose first packet is this."""
        user = self._handshake(Remote(gate, fd), peer, packet)
        if user is not None:
            await self.connect_handler(user.username)

    @command
    async def relay_packet(self, gate: int, fd: int, packet: bytes) -> None:
        """A request on a connection relayed here."""
        self._request(Remote(gate, fd), packet)

    @command
    async def relay_closed(self, gate: int, fd: int) -> None:
        """A connection relayed here closed."""
        await self._disconnected(Remote(gate, fd))

    # --- relaying: the side the client is connected to ------------------------------

    @command
    async def relay_alive(self) -> list[int]:
        """The connections this msgserver relays now (its fds)."""
        return list(self._relayed)

    @command
    async def relay_write(self, fd: int, payload: bytes) -> None:
        """The owner answers on our connection ``fd``."""
        if fd in self._relayed:
            self.connections.write(fd, payload)

    @command
    async def relay_close(self, fd: int) -> None:
        """The owner closes our connection ``fd`` (after what it wrote before)."""
        if fd in self._relayed:
            self.closeclient(fd)

    @command
    async def relay_pause(self, fd: int) -> None:
        """The owner's user has ``max_in_flight`` requests running: stop reading ``fd``."""
        if fd in self._relayed:
            self.pauseclient(fd)

    @command
    async def relay_resume(self, fd: int) -> None:
        """Read ``fd`` again."""
        if fd in self._relayed:
            self.resumeclient(fd)

    # --- for subclasses -------------------------------------------------------------

    def username(self, uid: Text, subid: Subid) -> bytes:
        """``base64(uid)@base64(servername)#base64(subid)``, how the user is known here."""
        subid = subid if isinstance(subid, bytes | str) else str(subid)
        return make_username(_as_bytes(uid), self.servername, _as_bytes(subid))

    @staticmethod
    def userid(username: bytes) -> tuple[bytes, bytes, bytes]:
        """``(uid, subid, servername)`` of a username."""
        uid, _, rest = username.partition(b"@")
        servername, _, subid = rest.partition(b"#")
        return base64decode(uid), base64decode(subid), base64decode(servername)

    def user_login(self, username: bytes, secret: bytes) -> None:
        """Let ``username`` handshake with ``secret`` (indices from 1)."""
        if username in self._users:
            raise MsgServerError(f"user {username!r} is already logged in here")
        self._users[username] = User(username, secret, self.expired_number)

    def user_logout(self, username: bytes) -> None:
        """Forget ``username`` and its cached responses; close its connection."""
        user = self._users.pop(username, None)
        if user is None:
            raise MsgServerError(f"user {username!r} is not logged in here")
        if user.target is not None:
            del self._connections[user.target]
            self._close(user.target)

    def ip(self, username: bytes) -> str | None:
        """``host:port`` of the user's connection, if it has one."""
        user = self._users.get(username)
        return None if user is None else user.peer

    def metric_samples(self) -> Iterator[Sample]:
        """The gate's figures, handshakes by status and response cache hits."""
        yield from super().metric_samples()
        for status, count in sorted(self.msgserver_handshakes.items()):
            help_text = "msgserver handshakes by the status code answered."
            yield Sample(
                "msgserver_handshakes_total", "counter", help_text, count, {"status": status}
            )
        help_text = "msgserver requests answered from the response cache, not run again."
        yield Sample("msgserver_cache_hits_total", "counter", help_text, self.msgserver_cache_hits)

    # --- gate hooks -----------------------------------------------------------------

    def make_room(self) -> bool:
        """Close the connection that has waited longest for its handshake, if any."""
        oldest = None if self._handshakes is None else self._handshakes.oldest()
        if oldest is None:
            return False
        self._stop_handshake(oldest.fd)
        oldest.close(
            f"closed to make room: {len(self._handshaking) + 1} connections wait for "
            "their handshake and this one waited longest",
            abort=True,
        )
        return True

    async def connect(self, fd: int, addr: str) -> None:
        connection = self._own(fd)
        assert connection is not None and self.conf is not None
        assert self._handshakes is not None
        if len(self._handshaking) >= self.conf.max_handshaking:
            self.make_room()
        self._handshaking[fd] = addr
        self._handshakes.touch(connection)
        self.openclient(fd)

    async def disconnect(self, fd: int) -> None:
        self._stop_handshake(fd)
        owner = self._relayed.pop(fd, None)
        if owner is not None:
            await self._relay(owner, "relay_closed", self.address, fd)
            return
        await self._disconnected(fd)

    async def message(self, fd: int, packet: bytes) -> None:
        owner = self._relayed.get(fd)
        if owner is not None:
            if not await self._relay(owner, "relay_packet", self.address, fd, packet):
                self.closeclient(fd)
            return
        peer = self._stop_handshake(fd) if fd in self._handshaking else None
        if peer is None:
            self._request(fd, packet)
            return
        owner = self.handshake_owner(_handshake_uid(packet))
        if owner is not None:
            self._relayed[fd] = owner
            if not await self._relay(owner, "relay_handshake", self.address, fd, peer, packet):
                self.closeclient(fd)
            return
        user = self._handshake(fd, peer, packet)
        if user is not None:
            await self.connect_handler(user.username)

    # --- helpers --------------------------------------------------------------------

    def _handshake(self, fd: Target, peer: str, packet: bytes) -> User | None:
        """Answer a connection's handshake; return its user if it was accepted."""
        status, user, index = check_handshake(self._users, packet)
        if user is not None and user.target is None and len(self._connections) >= self.maxclient:
            status, user = SERVICE_UNAVAILABLE, None
        self.msgserver_handshakes[status[:3].decode()] += 1
        self._write(fd, status)
        if user is None:
            logger.info("connection %s from %s: handshake refused: %s", fd, peer, status.decode())
            self._close(fd)
            return None
        previous = user.accept(fd, index, peer)
        self._connections[fd] = user
        if previous is not None:
            logger.info(
                "%s: connection %s supersedes connection %s", user.username.decode(), fd, previous
            )
            del self._connections[previous]
            self._close(previous)
        if user.running >= self._max_in_flight:
            self._pause(fd)
        return user

    def _request(self, fd: Target, packet: bytes) -> None:
        """A packet after the handshake on connection ``fd``: run it, or answer it from
        the cache."""
        user = self._connections.get(fd)
        if user is None:  # relayed, and refused or superseded here, or from before a restart
            self._close(fd)
            return
        try:
            request = unpack_request(packet)
            step = user.request(fd, request)
        except (TruncatedPacket, SessionConflict) as exc:
            logger.warning("connection %s of %s: %s; closing it", fd, user.username.decode(), exc)
            self._close(fd)
            return
        if isinstance(step, Entry):
            user.running += 1
            if user.running >= self._max_in_flight:
                self._pause(fd)  # read on once one of them is answered
            self.fork(self._answer, user, step, request)
        elif step is not None:
            self.msgserver_cache_hits += 1
            self._send(user, step)

    async def _disconnected(self, fd: Target) -> None:
        user = self._connections.pop(fd, None)
        if user is not None and user.leave(fd):
            await self.disconnect_handler(user.username)

    def _write(self, fd: Target, payload: bytes) -> None:
        if isinstance(fd, Remote):
            self._tell(fd, "relay_write", payload)
        else:
            self.connections.write(fd, payload)

    def _close(self, fd: Target) -> None:
        if isinstance(fd, Remote):
            self._tell(fd, "relay_close")
        else:
            self.closeclient(fd)

    def _pause(self, fd: Target) -> None:
        if isinstance(fd, Remote):
            self._tell(fd, "relay_pause")
        else:
            self.pauseclient(fd)

    def _resume(self, fd: Target) -> None:
        if isinstance(fd, Remote):
            self._tell(fd, "relay_resume")
        else:
            self.resumeclient(fd)

    def _tell(self, fd: Remote, name: str, *args: Any) -> None:
        """Queue ``name`` for the msgserver whose connection ``fd`` is (in order)."""
        assert self._relay_out is not None
        self._relay_out.send_nowait((fd.gate, name, (fd.fd, *args)))

    async def _tell_relays(self, queued: trio.MemoryReceiveChannel[Any]) -> None:
        """Send what ``_tell`` queued; a relaying msgserver gone means its connection is."""
        async for gate, name, args in queued:
            try:
                await self.send(gate, name, *args)
            except CallError as exc:
                logger.info("connection %d of msgserver %s is gone: %s", args[0], gate, exc)
                await self._disconnected(Remote(gate, args[0]))

    async def _check_relays(self) -> None:
        """Forget the relayed connections whose msgserver no longer relays them (it
        restarted, or its node is gone), as if they had closed."""
        while True:
            await trio.sleep(self.relay_check)
            for gate in {fd.gate for fd in self._connections if isinstance(fd, Remote)}:
                try:
                    alive = set(await self.call(gate, "relay_alive", timeout=self.relay_check))
                except CallError:
                    alive = set()
                for fd in [fd for fd in self._connections if isinstance(fd, Remote)]:
                    if fd.gate == gate and fd.fd not in alive:
                        await self._disconnected(fd)

    async def _relay(self, owner: int | str, name: str, *args: Any) -> bool:
        """Tell the owner of a relayed connection; False if it cannot be reached."""
        try:
            await self.send(owner, name, *args)
        except CallError as exc:
            logger.warning("cannot relay to msgserver %s: %s; closing the connection", owner, exc)
            return False
        return True

    def _stop_handshake(self, fd: int) -> str | None:
        """Forget connection ``fd``'s wait for its handshake; its peer if it waited."""
        peer = self._handshaking.pop(fd, None)
        connection = self._own(fd)
        if connection is not None and self._handshakes is not None:
            self._handshakes.forget(connection)
        return peer

    @property
    def _max_in_flight(self) -> int:
        assert self.conf is not None
        return self.conf.max_in_flight

    async def _answer(self, user: User, entry: Entry, request: Request) -> None:
        """Run one request to its end, whatever happens to the connection that sent it."""
        try:
            content = await self.request_handler(user.username, request.content)
            content = _check_content(b"" if content is None else content)
            ok = True
        except UNREACHABLE as exc:  # a stopping node, say: its agents stop first
            logger.warning(
                "request %d of %s failed: %s", request.session, user.username.decode(), exc
            )
            content, ok = b"", False
        except Exception:
            logger.exception("request %d of %s failed", request.session, user.username.decode())
            content, ok = b"", False
        finally:
            user.running -= 1
            if user.running < self._max_in_flight and user.target is not None:
                self._resume(user.target)
        self._send(user, user.answer(entry, request.session, content, ok))

    def _send(self, user: User, reply: Reply) -> None:
        """Send ``reply`` if its connection is still the user's (skynet drops it otherwise)."""
        if self._connections.get(reply.target) is user:
            self._write(reply.target, reply.payload)


def _check_content(content: object) -> bytes:
    if not isinstance(content, bytes):
        raise TypeError(f"request_handler returned {type(content).__name__}, not bytes or None")
    if len(content) > MAX_CONTENT:
        raise MsgServerError(
            f"response of {len(content)} bytes does not fit in a packet (at most {MAX_CONTENT})"
        )
    return content


def _handshake_uid(packet: bytes) -> bytes:
    """The uid a handshake names (``base64(uid)@...``); empty if it names none."""
    try:
        return base64decode(packet.partition(b"@")[0])
    except (ValueError, MeshnetError):
        return b""


def _as_bytes(text: Text) -> bytes:
    return text.encode() if isinstance(text, str) else text

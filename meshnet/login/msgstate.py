"""The msgserver's per-user state, without I/O: handshake check and response cache.

``check_handshake`` decides a connection's first packet. ``User.request`` decides what a
request means given the responses already cached for the user, and ``User.answer`` stores a
finished one. Both follow skynet's ``snax.msgserver`` (DESIGN §5):

- the cache is keyed by session alone, per user, across that user's connections;
- a session answered under an earlier handshake is answered again from the cache (the
  request's content is ignored); a session still pending from an earlier handshake, or the
  first duplicate of a pending one, is absorbed: the single answer goes to the connection
  that asked last;
- a session answered under the current handshake is a new request (sessions may be reused);
- a further duplicate while the first is still pending is a protocol error (``SessionConflict``);
- every answer sent counts; when the count reaches ``2 * expired_number``, answers older than
  the last ``expired_number`` are forgotten (skynet's ``retire_response``), so 128–256 stay.

One deliberate difference: an answer is stamped with the handshake under which the session
was last *asked*, not the one current when the handler finished. In skynet a client that
reconnects while a request runs, and resends it after it finished, has it run again and
its first answer lost; here it gets the cached answer.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from meshnet.login.wire import (
    BAD_REQUEST,
    HANDSHAKE_OK,
    INDEX_EXPIRED,
    UNAUTHORIZED,
    USER_NOT_FOUND,
    LoginProtocolError,
    MalformedHandshake,
    Request,
    pack_response,
    parse_handshake,
)

EXPIRED_NUMBER = 128
"""skynet's default ``expired_number``: at least this many answers stay cached per user."""

Target = Hashable
"""Whatever identifies a connection to the caller (the gate's fd)."""


class SessionConflict(LoginProtocolError):
    """A session was sent a third time while its first request is still being handled."""


class Reply(NamedTuple):
    """A response payload and the connection it is for."""

    target: Target
    payload: bytes


@dataclass(eq=False, slots=True)
class Entry:
    """A session's request, pending (``payload`` None) or answered."""

    target: Target | None
    """The connection to answer on while pending; None once answered."""
    payload: bytes | None = None
    version: int | None = None
    """The handshake index under which the session was last asked again (None: not yet)."""
    asked: int = 0
    """The handshake index under which it was first asked."""
    stamp: int = 0
    """The user's answer count when last answered, for retirement."""


@dataclass(eq=False)
class User:
    """One login known to the msgserver: its secret, handshake index and response cache."""

    username: bytes
    secret: bytes
    expired_number: int = EXPIRED_NUMBER
    version: int = 0
    """The last accepted handshake index; the next handshake must use a higher one."""
    target: Target | None = None
    """The user's current connection, if any."""
    peer: str | None = None
    """``host:port`` of that connection."""
    answered: int = 0
    """skynet's ``u.index``: answers sent since the last retirement (plus survivors)."""
    cache: dict[int, Entry] = field(default_factory=dict)
    running: int = 0
    """Requests of the user whose handler is running, whichever connection sent them."""

    def accept(self, target: Target, index: int, peer: str) -> Target | None:
        """Make ``target`` the user's connection after a good handshake with ``index``;
        return the connection it supersedes, if any."""
        previous = self.target
        self.version, self.target, self.peer = index, target, peer
        return previous

    def leave(self, target: Target) -> bool:
        """Forget connection ``target``; True if it was the user's current one."""
        if self.target != target:
            return False
        self.target = self.peer = None
        return True

    def request(self, target: Target, request: Request) -> Entry | Reply | None:
        """Decide request ``request`` received on connection ``target``.

        Returns a new pending ``Entry`` when the handler must run (then call ``answer``), a
        ``Reply`` to send now when the answer is cached, or None when the request joins one
        still pending. Raises ``SessionConflict`` for a second duplicate of a pending one.
        """
        session = request.session
        entry = self.cache.get(session)
        if entry is not None and entry.version == self.version:
            del self.cache[session]
            if entry.payload is None:
                raise SessionConflict(
                    f"session {session} sent again while its request is still pending"
                )
            entry = None  # answered under this handshake: the session is reused
        if entry is None:
            entry = self.cache[session] = Entry(target, asked=self.version)
            return entry
        entry.target = target
        entry.version = self.version
        entry.stamp = self.answered
        if entry.payload is None:
            return None
        return self._sent(entry)

    def answer(self, entry: Entry, session: int, content: bytes, ok: bool) -> Reply:
        """Store the handler's answer to ``entry``; the reply goes to whoever asked last."""
        entry.payload = pack_response(content if ok else b"", ok, session)
        if entry.version is None:
            entry.version = entry.asked
        entry.stamp = self.answered
        return self._sent(entry)

    def _sent(self, entry: Entry) -> Reply:
        assert entry.payload is not None and entry.target is not None
        reply = Reply(entry.target, entry.payload)
        entry.target = None
        self.answered += 1
        if self.answered >= 2 * self.expired_number:
            self._retire()
        return reply

    def _retire(self) -> None:
        expired, latest = self.expired_number, 0
        for session, entry in list(self.cache.items()):
            if entry.target is not None:
                continue  # pending
            if entry.stamp < expired:
                del self.cache[session]
            else:
                entry.stamp -= expired
                latest = max(latest, entry.stamp)
        self.answered = latest + 1


def check_handshake(users: Mapping[bytes, User], packet: bytes) -> tuple[bytes, User | None, int]:
    """The status for handshake ``packet``; with ``200 OK`` also the user and the index.

    Checks in skynet's order: known user (404), well-formed (400), index above the last
    accepted one (403), hmac made with the user's secret (401). Otherwise the user is None
    and the index 0. Nothing changes until the caller calls ``User.accept``.
    """
    user = users.get(packet.partition(b":")[0])
    if user is None:
        return USER_NOT_FOUND, None, 0
    try:
        handshake = parse_handshake(packet)
    except MalformedHandshake:
        return BAD_REQUEST, None, 0
    if handshake.index <= user.version:
        return INDEX_EXPIRED, None, 0
    if not handshake.verify(user.secret):
        return UNAUTHORIZED, None, 0
    return HANDSHAKE_OK, user, handshake.index

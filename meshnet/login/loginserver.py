"""``LoginServer``: skynet's loginserver template (book ch. 14, DESIGN §5) as a service.

Each connection runs the handshake in its own task (skynet spreads them over 8 slave
services): challenge, DH key exchange, challenge answer, encrypted token; then the
subclass's ``auth_handler`` and ``login_handler``; then one status line and the server closes.

Status lines follow the book, not skynet HEAD: ``400 Bad Request`` for a broken handshake
(bad client key, including the degenerate DH values skynet accepts: 1, P - 1, P, P + 1;
wrong challenge answer, a token that does not decrypt or parse), ``401``
when ``auth_handler`` refuses, ``403`` when ``login_handler`` fails, ``406`` when the same
uid is already logging in and ``multilogin`` is off; and, meshnet's own, ``503 Service
Unavailable`` when a handler raises ``Unavailable`` (the server is overloaded: the client
may try again later). A line over 8 KiB, a peer that closes
early or one that has not sent its last line within ``handshake_timeout`` seconds is closed
without a status line.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Hashable, Iterator, Sequence
from contextvars import ContextVar

import trio

from meshnet.admission import DEFAULT_MAXCLIENT, ConnectionLimits
from meshnet.errors import MeshnetError
from meshnet.login import handshake
from meshnet.login.crypt import randomkey
from meshnet.login.lines import LineStream, PeerClosed
from meshnet.login.wire import (
    BAD_REQUEST,
    FORBIDDEN,
    NOT_ACCEPTABLE,
    SERVICE_UNAVAILABLE,
    UNAUTHORIZED,
    LineTooLong,
    MalformedToken,
    ok_status,
)
from meshnet.net import client_host, close_gracefully, peer_name, serve_tcp
from meshnet.probes import Sample
from meshnet.service import Service, command

logger = logging.getLogger(__name__)

Subid = bytes | str | int | None

_client: ContextVar[str | None] = ContextVar("meshnet_login_client", default=None)


class Unavailable(MeshnetError):
    """Raised by ``auth_handler`` or ``login_handler``: the client is answered ``503
    Service Unavailable`` and may try again later (the server is too busy now)."""


class LoginServer(Service):
    """Base class of login servers: override ``auth_handler`` and ``login_handler``.

    Start a subclass with ``newservice(Sub, host, port, multilogin, handshake_timeout)``;
    the ``port`` command returns the bound port (useful with port 0). Add ``@command``
    methods for whatever else the game needs (skynet's ``command_handler``).
    """

    async def init(
        self,
        host: str = "127.0.0.1",
        port: int = 8001,
        multilogin: bool = False,
        handshake_timeout: float = 10.0,
        *,
        maxclient: int = DEFAULT_MAXCLIENT,
        max_per_address: int | None = None,
        per_address_exempt: Sequence[str] = (),
    ) -> None:
        """Listen on ``host:port`` (0 picks a free port).

        With ``multilogin`` off, a uid is refused (406) while another login of the same uid
        is in ``login_handler``. ``handshake_timeout`` bounds the client's part of the
        handshake, not the handlers (they have their own call timeouts). At most
        ``maxclient`` connections are served at once, and ``max_per_address`` from one
        address (not counting ``per_address_exempt`` networks); the next is closed at once.
        """
        self.multilogin = multilogin
        self.handshake_timeout = handshake_timeout
        self._logging_in: set[Hashable] = set()
        self.login_attempts: Counter[str] = Counter()
        """Connections by how they ended: the status code sent (``"200"``, ``"400"``,
        ...), ``"closed"`` (mid-handshake) or ``"timeout"``; for the node's metrics."""
        limits = ConnectionLimits(maxclient, max_per_address, per_address_exempt)
        self._port, _ = await serve_tcp(self, self._serve, host, port, limits=limits)

    # --- what subclasses write ------------------------------------------------------

    async def auth_handler(self, token: bytes) -> tuple[bytes | str, Hashable]:
        """Check the decrypted token; return ``(server, uid)`` or raise to refuse (401).

        The token is normally ``base64(user)@base64(server):base64(password)``: decode it
        with ``wire.parse_token``, whose ``MalformedToken`` is answered with 400.
        """
        raise NotImplementedError("a LoginServer subclass must define auth_handler")

    async def login_handler(self, server: bytes | str, uid: Hashable, secret: bytes) -> Subid:
        """Hand ``uid`` and the shared ``secret`` to game server ``server``; return its subid.

        Raise to refuse (403). The subid is sent as given (bytes), as text (str, int) or
        empty (None), like skynet's ``tostring``.
        """
        raise NotImplementedError("a LoginServer subclass must define login_handler")

    def handshake_keys(self) -> tuple[bytes, bytes]:
        """The challenge and the server's private DH key for one connection: fresh random
        8-byte keys. Override only to replay a recorded exchange."""
        return randomkey(), randomkey()

    @command
    async def port(self) -> int:
        """The port the server listens on."""
        return self._port

    def client_address(self) -> str | None:
        """In a handler: the address of the client being handled (as the per-address
        limit counts it)."""
        return _client.get()

    def metric_samples(self) -> Iterator[Sample]:
        """Login attempts by status, for the node's metrics (``meshnet.probes``)."""
        for status, count in sorted(self.login_attempts.items()):
            help_text = "Login server connections by how they ended (status code sent)."
            yield Sample("login_attempts_total", "counter", help_text, count, {"status": status})

    # --- one connection -------------------------------------------------------------

    async def _serve(self, stream: trio.SocketStream) -> None:
        peer = peer_name(stream)
        _client.set(client_host(stream))
        lines = LineStream(stream)
        try:
            with trio.fail_after(self.handshake_timeout):
                secret, token = await self._exchange(lines)
        except handshake.HandshakeFailed as exc:
            logger.info("%s: 400 Bad Request: %s", peer, exc)
            self.login_attempts["400"] += 1
            await lines.send_lines(BAD_REQUEST)
            await close_gracefully(stream)
            return
        except (LineTooLong, PeerClosed) as exc:
            logger.info("%s: closed mid-handshake: %s", peer, exc)
            self.login_attempts["closed"] += 1
            return
        except trio.TooSlowError:
            logger.info(
                "%s: closed: handshake not finished within %gs", peer, self.handshake_timeout
            )
            self.login_attempts["timeout"] += 1
            return
        status = await self._admit(peer, secret, token)
        self.login_attempts[status[:3].decode()] += 1
        await lines.send_lines(status)
        await close_gracefully(stream)

    async def _exchange(self, lines: LineStream) -> tuple[bytes, bytes]:
        """Run the client's part of the handshake; return the secret and the token."""
        challenge, server_key = self.handshake_keys()
        await lines.send_lines(handshake.key_line(challenge))
        secret = handshake.shared_secret(await lines.receive_line(), server_key)
        await lines.send_lines(handshake.public_key_line(server_key))
        handshake.check_challenge(await lines.receive_line(), challenge, secret)
        return secret, handshake.read_token(await lines.receive_line(), secret)

    async def _admit(self, peer: str, secret: bytes, token: bytes) -> bytes:
        """Run the handlers on a completed handshake; return the status line to send."""
        try:
            server, uid = await self.auth_handler(token)
        except Unavailable as exc:
            logger.info("%s: 503 Service Unavailable: %s", peer, exc)
            return SERVICE_UNAVAILABLE
        except MalformedToken as exc:
            logger.info("%s: 400 Bad Request: %s", peer, exc)
            return BAD_REQUEST
        except Exception as exc:
            logger.info("%s: 401 Unauthorized: auth_handler refused: %r", peer, exc)
            return UNAUTHORIZED
        if not self.multilogin:
            if uid in self._logging_in:
                logger.info("%s: 406 Not Acceptable: %r is already logging in", peer, uid)
                return NOT_ACCEPTABLE
            self._logging_in.add(uid)
        try:
            subid = _subid_bytes(await self.login_handler(server, uid, secret))
        except Unavailable as exc:
            logger.info("%s: 503 Service Unavailable: %s", peer, exc)
            return SERVICE_UNAVAILABLE
        except Exception:
            logger.warning(
                "%s: 403 Forbidden: login_handler failed for %r", peer, uid, exc_info=True
            )
            return FORBIDDEN
        finally:
            if not self.multilogin:
                self._logging_in.discard(uid)
        logger.debug("%s: %r logged in to %r", peer, uid, server)
        return ok_status(subid)


def _subid_bytes(subid: Subid) -> bytes:
    if subid is None:
        return b""
    if isinstance(subid, bytes):
        return subid
    if isinstance(subid, str | int) and not isinstance(subid, bool):
        return str(subid).encode()
    raise TypeError(f"login_handler returned {type(subid).__name__}, not bytes, str, int or None")

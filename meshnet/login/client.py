"""Client side of skynet's login protocol (DESIGN §5): log in, get a subid and a secret.

``login`` talks to a login server and returns a :class:`LoginResult`, everything the
msgserver handshake needs afterwards (``wire.build_handshake(uid, server, subid, index,
secret)``). A refusal raises :class:`LoginRefused`; a server that breaks the protocol raises
a ``wire.LoginProtocolError`` (``HandshakeFailed``, ``PeerClosed``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from meshnet.errors import MeshnetError
from meshnet.login import handshake
from meshnet.login.crypt import CryptError, base64decode, randomkey
from meshnet.login.lines import LineStream
from meshnet.login.wire import (
    LoginProtocolError,
    MalformedStatusLine,
    build_token,
    parse_status,
)

Text = bytes | str


@dataclass(frozen=True, slots=True)
class LoginResult:
    """A successful login."""

    uid: bytes
    """The user name sent in the token; msgserver knows the login by it (as skynet's client)."""
    server: bytes
    """The game server the login is for."""
    subid: bytes
    secret: bytes
    """The DH secret shared with the login server, which passes it to the game server."""


class LoginRefused(MeshnetError):
    """The login server answered with a status other than 200 (e.g. 401 bad password)."""

    def __init__(self, code: int, line: bytes) -> None:
        super().__init__(f"login refused: {line.decode(errors='replace')}")
        self.code = code
        self.line = line


async def login(
    host: str, port: int, server: Text, user: Text, password: Text, *, key: bytes | None = None
) -> LoginResult:
    """Log ``user`` in to game server ``server`` through the login server at ``host:port``.

    ``key`` is the client's private DH key (8 bytes, random by default).
    """
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        return await login_stream(stream, server, user, password, key=key)


async def login_stream(
    stream: trio.abc.Stream,
    server: Text,
    user: Text,
    password: Text,
    *,
    key: bytes | None = None,
) -> LoginResult:
    """:func:`login` over an open stream to a login server; leaves the stream open."""
    server, user, password = _as_bytes(server), _as_bytes(user), _as_bytes(password)
    token = build_token(user, server, password)
    private = randomkey() if key is None else key
    lines = LineStream(stream)
    challenge = handshake.read_key(await _receive_key(lines), "challenge")
    await lines.send_lines(handshake.public_key_line(private))
    secret = handshake.shared_secret(await _receive_key(lines), private)
    await lines.send_lines(
        handshake.challenge_line(challenge, secret), handshake.token_line(token, secret)
    )
    subid = read_status(await lines.receive_line())
    return LoginResult(uid=user, server=server, subid=subid, secret=secret)


def read_status(line: bytes) -> bytes:
    """The subid of a ``200 base64(subid)`` line; raise ``LoginRefused`` for other codes."""
    code, rest = parse_status(line)
    if code != 200:
        raise LoginRefused(code, line)
    try:
        return base64decode(rest)
    except CryptError as exc:
        raise LoginProtocolError(f"subid {rest[:32]!r} in the 200 line is not base64") from exc


async def _receive_key(lines: LineStream) -> bytes:
    """The next line, which should carry a key; an error status there is the server refusing.

    (A base64 key line never parses as a status line: it has no space after 3 characters.)
    """
    line = await lines.receive_line()
    try:
        code, _ = parse_status(line)
    except MalformedStatusLine:
        return line
    if code != 200:
        raise LoginRefused(code, line)
    return line


def _as_bytes(text: Text) -> bytes:
    return text.encode() if isinstance(text, str) else text

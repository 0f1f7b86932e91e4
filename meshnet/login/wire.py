"""Pure codecs for skynet's login-server line protocol and msgserver packets (DESIGN §5).

Nothing here does I/O. The login server speaks ``\\n``-terminated lines; msgserver payloads
arrive already unframed (the 2-byte length prefix belongs to the gate). Parsers accept any
bytes and either return a value or raise a :class:`LoginProtocolError` subclass.
"""

import hmac as _hmac
import re
import struct
from dataclasses import dataclass
from typing import NoReturn

from meshnet.errors import MeshnetError
from meshnet.login.crypt import CryptError, base64decode, base64encode, hashkey, hmac64, hmac_hash

#: skynet's loginserver caps a connection's buffer at 8 KiB (socket.limit).
MAX_LINE = 8192

# Login server status lines (the login server appends "\n").
BAD_REQUEST = b"400 Bad Request"
UNAUTHORIZED = b"401 Unauthorized"
FORBIDDEN = b"403 Forbidden"
NOT_ACCEPTABLE = b"406 Not Acceptable"

# msgserver handshake replies; 401 and 400 use UNAUTHORIZED and BAD_REQUEST above.
HANDSHAKE_OK = b"200 OK"
USER_NOT_FOUND = b"404 User Not Found"
INDEX_EXPIRED = b"403 Index Expired"
SERVICE_UNAVAILABLE = b"503 Service Unavailable"
"""meshnet's own, for the login server and the msgserver: too busy now, try again later."""

MAX_SESSION = 0xFFFFFFFF
MAX_INDEX = 2**63 - 1


class LoginProtocolError(MeshnetError):
    """The peer's bytes break the login/msgserver protocol, or a value cannot be sent on it."""


class LineTooLong(LoginProtocolError):
    """A login line grew past the splitter's limit before its '\\n'.

    ``lines`` holds the complete lines that preceded it in the same ``feed``. The stream
    cannot be resynchronised: every later ``feed`` raises again; close the connection.
    """

    def __init__(self, limit: int, lines: list[bytes]) -> None:
        super().__init__(
            f"line longer than {limit} bytes before its '\\n'; the connection cannot continue"
        )
        self.limit = limit
        self.lines = lines


class MalformedToken(LoginProtocolError):
    """The decrypted login token is not ``base64(user)@base64(server):base64(pass)``."""


class MalformedStatusLine(LoginProtocolError):
    """A status line does not start with a 3-digit code."""


class MalformedHandshake(LoginProtocolError):
    """The handshake is not ``base64(uid)@base64(server)#base64(subid):index:base64(hmac)``."""


class TruncatedPacket(LoginProtocolError):
    """A msgserver payload is too short to hold its trailing session (and ok) fields."""


class UnencodableValue(LoginProtocolError):
    """A value given to a builder cannot be represented on the wire."""


# --- login server line protocol ----------------------------------------------------------


class LineSplitter:
    """Splits a byte stream, chunked any way, into lines like skynet's ``socket.readline``.

    Lines are returned without their '\\n'; '\\r' is kept. A line (or an unterminated tail)
    longer than ``max_line`` bytes raises :class:`LineTooLong` as soon as it is seen.
    """

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buffer = bytearray()
        self._failed = False

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the lines they complete, in order."""
        if self._failed:
            raise LineTooLong(self.max_line, [])
        buffer = self._buffer
        search_from = len(buffer)  # the bytes before it hold no '\\n'
        buffer += data
        lines = []
        start = 0
        while (end := buffer.find(b"\n", search_from)) != -1:
            if end - start > self.max_line:
                self._fail(lines)
            lines.append(bytes(buffer[start:end]))
            start = search_from = end + 1
        del buffer[:start]
        if len(buffer) > self.max_line:
            self._fail(lines)
        return lines

    def _fail(self, lines: list[bytes]) -> NoReturn:
        self._failed = True
        self._buffer.clear()
        raise LineTooLong(self.max_line, lines)


def encode_line(text: bytes) -> bytes:
    """``text`` terminated by '\\n'; refuses text that already holds a '\\n'."""
    if b"\n" in text:
        raise UnencodableValue(f"a line cannot contain '\\n': {text!r}")
    return text + b"\n"


@dataclass(frozen=True, slots=True)
class Token:
    """The decoded login token."""

    user: bytes
    server: bytes
    password: bytes


def build_token(user: bytes, server: bytes, password: bytes) -> bytes:
    """``base64(user)@base64(server):base64(password)``; every field must be non-empty."""
    if not (user and server and password):
        raise UnencodableValue(
            "token user, server and password must be non-empty: skynet's parser needs at least "
            "one character in each"
        )
    return b"%s@%s:%s" % (base64encode(user), base64encode(server), base64encode(password))


def parse_token(token: bytes) -> Token:
    """Decode a token as skynet's example auth handler does (Lua ``([^@]+)@([^:]+):(.+)``).

    The error never quotes the token or its password field: servers log it.
    """
    match = _TOKEN.search(token)
    if match is None:
        raise MalformedToken(
            f"token of {len(token)} bytes does not match "
            "base64(user)@base64(server):base64(password)"
        )
    user, server, password = match.groups()
    return Token(
        user=_decode_field(user, "token user", MalformedToken),
        server=_decode_field(server, "token server", MalformedToken),
        password=_decode_field(password, "token password", MalformedToken, quote=False),
    )


def ok_status(subid: bytes) -> bytes:
    """The login server's success line, ``200 base64(subid)``."""
    return b"200 " + base64encode(subid)


def parse_status(line: bytes) -> tuple[int, bytes]:
    """Split ``"<3-digit code>[ <rest>]"`` (a login line or msgserver reply) into (code, rest)."""
    code, rest = line[:3], line[3:]
    if len(code) != 3 or not code.isdigit() or rest[:1] not in (b"", b" "):
        raise MalformedStatusLine(f"status line {line!r} does not start with a 3-digit code")
    return int(code), rest[1:]


# --- msgserver ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Handshake:
    """A parsed msgserver handshake packet."""

    username: bytes
    """``base64(uid)@base64(server)#base64(subid)``, the key msgserver knows the user by."""
    uid: bytes
    server: bytes
    subid: bytes
    index: int
    hmac: bytes
    signed: bytes
    """The exact bytes the hmac covers: ``username:index`` as the client sent them."""

    def verify(self, secret: bytes) -> bool:
        """Whether the hmac was made with ``secret`` (checked like msgserver, in constant time)."""
        return _hmac.compare_digest(hmac_hash(secret, self.signed), self.hmac)


@dataclass(frozen=True, slots=True)
class Request:
    """A client request: its content and the session the response must echo."""

    content: bytes
    session: int


@dataclass(frozen=True, slots=True)
class Response:
    """A msgserver response; on handler failure ok is False and content is empty."""

    content: bytes
    ok: bool
    session: int


def make_username(uid: bytes, server: bytes, subid: bytes) -> bytes:
    """``base64(uid)@base64(server)#base64(subid)``, msgserver's name for a login."""
    return b"%s@%s#%s" % (base64encode(uid), base64encode(server), base64encode(subid))


def handshake_hmac(username: bytes, index: int, secret: bytes) -> bytes:
    """``hmac64(hashkey("<username>:<index>"), secret)``."""
    return hmac64(hashkey(b"%s:%d" % (username, index)), secret)


def build_handshake(uid: bytes, server: bytes, subid: bytes, index: int, secret: bytes) -> bytes:
    """The client's first msgserver packet (unframed)."""
    if not 0 <= index <= MAX_INDEX:
        raise UnencodableValue(f"handshake index must be in 0..{MAX_INDEX}, got {index}")
    username = make_username(uid, server, subid)
    mac = handshake_hmac(username, index, secret)
    return b"%s:%d:%s" % (username, index, base64encode(mac))


def parse_handshake(packet: bytes) -> Handshake:
    """Parse a handshake; the hmac is not checked here (see :meth:`Handshake.verify`).

    Base64 never contains ':', so a well-formed packet has exactly two. (skynet's unanchored
    Lua pattern would silently ignore extra fields; we refuse them.)
    """
    if packet.count(b":") != 2:
        raise MalformedHandshake(
            f"handshake {packet!r} needs exactly two ':', before the index and before the hmac"
        )
    signed, _, mac = packet.rpartition(b":")
    username, _, index = signed.rpartition(b":")
    uid, at, rest = username.partition(b"@")
    server, hash_sign, subid = rest.partition(b"#")
    if not (at and hash_sign):
        raise MalformedHandshake(
            f"handshake username {username!r} is not base64(uid)@base64(server)#base64(subid)"
        )
    return Handshake(
        username=username,
        uid=_decode_field(uid, "handshake uid", MalformedHandshake),
        server=_decode_field(server, "handshake server", MalformedHandshake),
        subid=_decode_field(subid, "handshake subid", MalformedHandshake),
        index=_parse_index(index),
        hmac=_decode_field(mac, "handshake hmac", MalformedHandshake),
        signed=signed,
    )


def pack_request(content: bytes, session: int) -> bytes:
    """Request payload: ``content | uint32 BE session``."""
    return content + _SESSION.pack(_check_session(session))


def unpack_request(payload: bytes) -> Request:
    """Split a request payload into content and session."""
    if len(payload) < _SESSION.size:
        raise TruncatedPacket(f"request of {len(payload)} bytes has no 4-byte session")
    (session,) = _SESSION.unpack_from(payload, len(payload) - _SESSION.size)
    return Request(payload[: -_SESSION.size], session)


def pack_response(content: bytes, ok: bool, session: int) -> bytes:
    """Response payload: ``content | uint8 ok | uint32 BE session``."""
    return content + _OK_SESSION.pack(ok, _check_session(session))


def unpack_response(payload: bytes) -> Response:
    """Any non-zero ok byte means success, as in skynet's example client."""
    if len(payload) < _OK_SESSION.size:
        raise TruncatedPacket(f"response of {len(payload)} bytes has no ok byte and session")
    ok, session = _OK_SESSION.unpack_from(payload, len(payload) - _OK_SESSION.size)
    return Response(payload[: -_OK_SESSION.size], ok != 0, session)


# --- helpers -----------------------------------------------------------------------------

_TOKEN = re.compile(rb"([^@]+)@([^:]+):(.+)", re.DOTALL)
_SESSION = struct.Struct(">I")
_OK_SESSION = struct.Struct(">BI")


def _decode_field(
    text: bytes, what: str, error: type[LoginProtocolError], *, quote: bool = True
) -> bytes:
    try:
        return base64decode(text)
    except CryptError as exc:
        shown = f" {text!r}" if quote else ""
        raise error(f"{what}{shown} is not valid base64 ({exc})") from exc


def _parse_index(text: bytes) -> int:
    # Length check first: int() refuses very long digit strings with a ValueError.
    if not text.isdigit() or len(text) > len(str(MAX_INDEX)) or int(text) > MAX_INDEX:
        raise MalformedHandshake(
            f"handshake index {text!r} is not a decimal integer in 0..{MAX_INDEX}"
        )
    return int(text)


def _check_session(session: int) -> int:
    if not 0 <= session <= MAX_SESSION:
        raise UnencodableValue(f"session must be in 0..{MAX_SESSION}, got {session}")
    return session

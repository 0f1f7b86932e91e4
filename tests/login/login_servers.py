"""Login servers and a raw line client shared by the login server tests."""

from __future__ import annotations

import trio

from meshnet import command
from meshnet.login import handshake
from meshnet.login.client import LoginResult, login
from meshnet.login.loginserver import LoginServer
from meshnet.login.wire import build_token, parse_token

HOST = "127.0.0.1"
PASSWORD = b"password"
CLIENT_KEY = b"11111111"


class Refused(Exception):
    pass


class Checking(LoginServer):
    """Accepts password ``password``; user ``forbidden`` fails in login_handler; user
    ``held`` waits in login_handler until the ``release`` command. Subids count up."""

    async def init(
        self, multilogin: bool = False, handshake_timeout: float = 10.0, limits: dict | None = None
    ) -> None:
        self.subids = 0
        self.secrets: dict[bytes, bytes] = {}
        self.holding = 0
        self.held_changed = trio.Event()
        self.release_held = trio.Event()
        await super().init(HOST, 0, multilogin, handshake_timeout, **(limits or {}))

    async def auth_handler(self, token: bytes) -> tuple[bytes, bytes]:
        fields = parse_token(token)
        if fields.password != PASSWORD:
            raise Refused("invalid password")
        return fields.server, fields.user

    async def login_handler(self, server: bytes, uid: bytes, secret: bytes) -> int:
        if uid == b"forbidden":
            raise Refused("login_handler refuses")
        self.subids += 1
        subid = self.subids
        if uid == b"held":
            self.holding += 1
            self.held_changed.set()
            self.held_changed = trio.Event()
            await self.release_held.wait()
        self.secrets[uid] = secret
        return subid

    @command
    async def wait_held(self, count: int = 1) -> None:
        """Return once ``count`` logins of user ``held`` are waiting in login_handler."""
        while self.holding < count:
            await self.held_changed.wait()

    @command
    async def release(self) -> None:
        self.release_held.set()

    @command
    async def secret_of(self, uid: bytes) -> bytes:
        return self.secrets[uid]


async def good_login(port: int, user: str = "alice") -> LoginResult:
    """A well-behaved client's login, which must succeed."""
    with trio.fail_after(5):
        result = await login(HOST, port, "sample", user, "password")
    assert result.uid == user.encode()
    return result


class RawClient:
    """Speaks the login protocol line by line, so a test can break it at any step."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        return cls(await trio.open_tcp_stream(HOST, port))

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stream.aclose()

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def receive_line(self) -> bytes:
        """The next line with its ``\\n``, or what came before the connection closed."""
        with trio.fail_after(5):
            while b"\n" not in self.buffer:
                data = await self._receive()
                if not data:
                    rest, self.buffer = self.buffer, b""
                    return rest
                self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"

    async def rest(self) -> bytes:
        """Everything until the server closes (a reset counts as a close)."""
        with trio.fail_after(5):
            while data := await self._receive():
                self.buffer += data
        rest, self.buffer = self.buffer, b""
        return rest

    async def exchange_keys(self, key: bytes = CLIENT_KEY) -> tuple[bytes, bytes]:
        """Read the challenge, trade public keys; return the challenge and the secret."""
        challenge = handshake.read_key((await self.receive_line()).rstrip(b"\n"), "challenge")
        await self.send(handshake.public_key_line(key) + b"\n")
        server_key = (await self.receive_line()).rstrip(b"\n")
        return challenge, handshake.shared_secret(server_key, key)

    async def answer_challenge(self, challenge: bytes, secret: bytes) -> None:
        await self.send(handshake.challenge_line(challenge, secret) + b"\n")

    async def send_token(self, secret: bytes, password: bytes = PASSWORD) -> None:
        token = build_token(b"mallory", b"sample", password)
        await self.send(handshake.token_line(token, secret) + b"\n")

    async def _receive(self) -> bytes:
        try:
            return await self.stream.receive_some(65536)
        except trio.BrokenResourceError:  # reset: the server closed with our bytes unread
            return b""

"""The demo's login server (``.login``): skynet's login protocol over the same accounts.

The token's server field says what the client wants:

- the game server's name (``demo`` by default): sign in. The password is checked against
  the accounts; the msgserver then takes the login (``200 base64(subid)``). A user logs in
  once at a time: a new login kicks the previous one out of the msgserver first.
- ``signup``: create the account, so a password never crosses the network in the clear
  (``200`` with an empty subid; ``401`` if the name is taken).

A malformed name or password, a wrong password or an unknown server get ``401``; a
server too busy to check the password now, or a name or address with too many failed
sign-ins lately, ``503`` (try again later).
"""

from __future__ import annotations

from typing import Any

from demo_game.accounts import check_credentials
from demo_game.accounts_service import BUSY, LIMITED, OK
from demo_game.names import ACCOUNTS, LOGIN, MSGSERVER, owned
from demo_game.proto import SIGNUP_SERVER
from meshnet import command
from meshnet.errors import MeshnetError
from meshnet.login.loginserver import LoginServer, Unavailable
from meshnet.login.wire import parse_token

SIGNUP = SIGNUP_SERVER.encode()


class Refused(MeshnetError):
    """The login server refuses a token (answered 401)."""


class DemoLogin(LoginServer):
    """The login server (``.login``) over the accounts; the token server ``signup`` signs up."""

    async def init(
        self,
        host: str,
        port: int,
        servername: str,
        limits: dict[str, Any],
        accounts: str = ACCOUNTS,
    ) -> None:
        """``limits``: ``handshake_timeout``, ``maxclient``, ``max_per_address`` and
        ``per_address_exempt`` (see ``LoginServer.init``); ``accounts``: the name to call
        the accounts service by (its cluster-wide one when it runs on another node)."""
        self.servername = servername.encode()
        self.accounts = accounts
        self.online: dict[str, Any] = {}
        """User -> subid of their login on the msgserver."""
        limits = dict(limits)
        timeout = limits.pop("handshake_timeout", 10.0)
        await super().init(host, port, handshake_timeout=timeout, **limits)
        self.register(LOGIN)

    async def auth_handler(self, token: bytes) -> tuple[bytes, str]:
        fields = parse_token(token)
        user, password = _text(fields.user, "user"), _text(fields.password, "password")
        check_credentials(user, password)
        if fields.server == SIGNUP:
            status = await self.call(owned(self.accounts, user), "signup", user, password)
            refusal = f"user {user!r} is taken"
        elif fields.server != self.servername:
            raise Refused(f"unknown game server {fields.server!r}")
        else:
            address = self.client_address()
            accounts = owned(self.accounts, user)
            status, wait = await self.call(accounts, "verify", user, password, address)
            if status == LIMITED:
                raise Unavailable(f"too many failed sign-ins for {user!r}: {wait:.0f} s to wait")
            refusal = f"wrong user or password for {user!r}"
        if status == BUSY:
            raise Unavailable("every password hashing thread is busy")
        if status != OK:
            raise Refused(refusal)
        return fields.server, user

    async def login_handler(self, server: bytes, uid: str, secret: bytes) -> Any:
        if server == SIGNUP:
            return None
        owner = owned(LOGIN, uid)
        if owner != LOGIN:  # another worker owns the user: its login server takes it
            return await self.call(owner, "take_login", uid, secret)
        return await self._take_login(uid, secret)

    @command
    async def take_login(self, uid: str, secret: bytes) -> Any:
        """The login server of another worker hands over ``uid``, which this one owns."""
        return await self._take_login(uid, secret)

    @command
    async def logout(self, uid: str, subid: Any) -> None:
        """The msgserver says ``uid``'s login ``subid`` ended."""
        if self.online.get(uid) == subid:
            del self.online[uid]

    async def _take_login(self, uid: str, secret: bytes) -> Any:
        """Kick the user's previous login out of the msgserver, hand the new one to it."""
        previous = self.online.get(uid)
        if previous is not None:
            await self.call(MSGSERVER, "kick", uid, previous)
        subid = await self.call(MSGSERVER, "login", uid, secret)
        self.online[uid] = subid
        return subid


def _text(data: bytes, field: str) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise Refused(f"{field}: not UTF-8") from None

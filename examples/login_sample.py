"""The login server of skynet's ``examples/login`` (logind.lua), on meshnet.

Any user whose password is ``password`` may log in to game server ``sample``. The game
server is the msgserver service registered as ``.msgserver_sample``; this login server
(registered as ``.login_master``) expects it to provide:

- ``login(uid, secret) -> subid``: accept the login and return its subid;
- ``kick(uid, subid)``: drop the user's previous login, calling our ``logout`` when done;

and to call our ``logout(uid, subid)`` whenever a user leaves.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from meshnet import command
from meshnet.login.loginserver import LoginServer
from meshnet.login.wire import parse_token

logger = logging.getLogger(__name__)

PASSWORD = b"password"

GAME_SERVERS = {b"sample": ".msgserver_sample"}
"""Game server name (as sent in the token) -> the msgserver service that runs it."""


class InvalidPassword(Exception):
    pass


class UnknownServer(Exception):
    pass


class AlreadyOnline(Exception):
    pass


@dataclass
class Online:
    gameserver: str
    subid: Any


class Sample(LoginServer):
    async def init(self, host: str = "127.0.0.1", port: int = 8001) -> None:
        self.online: dict[bytes, Online] = {}
        await super().init(host, port)
        self.register(".login_master")

    async def auth_handler(self, token: bytes) -> tuple[bytes, bytes]:
        fields = parse_token(token)
        if fields.password != PASSWORD:
            raise InvalidPassword(f"invalid password for {fields.user!r}")
        return fields.server, fields.user

    async def login_handler(self, server: bytes, uid: bytes, secret: bytes) -> Any:
        gameserver = GAME_SERVERS.get(server)
        if gameserver is None:
            raise UnknownServer(f"unknown game server {server!r}")
        logger.info("%r@%r is logging in", uid, server)
        last = self.online.get(uid)
        if last is not None:  # only one login per user: the game server kicks the old one
            await self.call(last.gameserver, "kick", uid, last.subid)
        if uid in self.online:
            raise AlreadyOnline(f"user {uid!r} is still online after the kick")
        subid = await self.call(gameserver, "login", uid, secret)
        self.online[uid] = Online(gameserver, subid)
        return subid

    @command
    async def logout(self, uid: bytes, subid: Any) -> None:
        """The game server says ``uid`` left; ignored unless it is the current login."""
        last = self.online.get(uid)
        if last is not None and last.subid == subid:
            logger.info("%r is logged out", uid)
            del self.online[uid]

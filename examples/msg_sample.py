"""The msgserver of skynet's ``examples/login`` (gated.lua and msgagent.lua), on meshnet.

``Gated`` is the game server ``sample``: it registers as ``.msgserver_sample`` (where
``login_sample`` looks for it), starts one ``MsgAgent`` per logged-in user and passes it
the user's requests; each agent answers a request with its own content after 0.1 s.

Leaving, as in skynet: when the login server kicks a user (it logged in again), the gate
asks the agent to log out; the agent tells the gate ``logout``, the gate forgets the user,
closes its connection and tells the login server ``logout``; then the agent exits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from meshnet import CallError, Service, command
from meshnet.login.msgserver import MsgServer

logger = logging.getLogger(__name__)


class AlreadyLoggedIn(Exception):
    pass


@dataclass
class Player:
    username: bytes
    agent: int
    subid: int


class Gated(MsgServer):
    async def init(self, conf: dict[str, Any], loginservice: str = ".login_master") -> None:
        self.loginservice = loginservice
        self.players: dict[bytes, Player] = {}
        self.by_username: dict[bytes, Player] = {}
        self.last_subid = 0
        await super().init(conf)

    async def register_handler(self, servername: bytes) -> None:
        self.register(f".msgserver_{servername.decode()}")

    async def login_handler(self, uid: bytes, secret: bytes) -> int:
        """Called by the login server; the login server never logs one uid in twice at once."""
        if uid in self.players:
            raise AlreadyLoggedIn(f"{uid!r} is already logged in")
        self.last_subid += 1
        subid = self.last_subid
        username = self.username(uid, subid)
        agent = await self.newservice(MsgAgent)
        await self.call(agent, "login", self.address, uid, subid, secret)
        self.players[uid] = self.by_username[username] = Player(username, agent, subid)
        self.user_login(username, secret)
        return subid

    async def logout_handler(self, uid: bytes, subid: int) -> None:
        """Called by the agent."""
        player = self.players.get(uid)
        if player is not None and player.username == self.username(uid, subid):
            self.user_logout(player.username)
            del self.players[uid], self.by_username[player.username]
            await self.call(self.loginservice, "logout", uid, subid)

    async def kick_handler(self, uid: bytes, subid: int) -> None:
        """Called by the login server."""
        player = self.players.get(uid)
        if player is not None and player.username == self.username(uid, subid):
            try:
                await self.call(player.agent, "logout")
            except CallError:  # the agent exits while logging out
                pass

    async def disconnect_handler(self, username: bytes) -> None:
        player = self.by_username.get(username)
        if player is not None:
            await self.call(player.agent, "afk")

    async def request_handler(self, username: bytes, message: bytes) -> bytes:
        return await self.call(self.by_username[username].agent, "client", message)


class MsgAgent(Service):
    """One logged-in user: echoes its requests."""

    @command
    async def login(self, gate: int, uid: bytes, subid: int, secret: bytes) -> None:
        logger.info("%s is login", uid.decode(errors="replace"))
        self.gate, self.uid, self.subid = gate, uid, subid

    @command
    async def logout(self) -> None:
        logger.info("%s is logout", self.uid.decode(errors="replace"))
        await self.call(self.gate, "logout", self.uid, self.subid)
        await self.exit()

    @command
    async def afk(self) -> None:
        """The connection broke, but the user may come back."""
        logger.info("AFK")

    @command
    async def client(self, message: bytes) -> bytes:
        await self.sleep(0.1)
        return message

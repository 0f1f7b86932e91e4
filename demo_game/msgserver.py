"""The demo's msgserver (``.msgserver``): the secure path to the same agents as the hub.

A login the login server hands over becomes a link of the user's agent (see
``demo_game.agent``): a ``Client`` of this msgserver whose fd is the login's subid. Each
request is a packet of ``demo_game.proto``; only the agent's messages (``login``,
``ping``) are served here, since the login server already signed the user in. The
answer holds every packet a hub connection would have been sent (``pack_packets``).

The agent hears when the login's connection drops (``disconnect_handler``) and when a
reconnect with the next index succeeds, so it waits for its user exactly as for the hub.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from demo_game.names import AGENT, LOGIN, MANAGER, MSGSERVER, owned
from demo_game.proto import pack_packets, proto
from meshnet import CallError
from meshnet.gate import Client
from meshnet.gate.proto import ProtoError
from meshnet.login.msgserver import MsgServer

NOT_HERE = "sign up and sign in through the login server"


@dataclass(frozen=True)
class Player:
    """A user logged in through the login server: their username, their link and agent."""

    username: bytes
    link: list[Any]
    """The login as a link of the agent: ``Client(msgserver, subid, user)``."""
    agent: int


class DemoMsgServer(MsgServer):
    """The ``.msgserver``: CBOR requests of the demo protocol, passed to the user's agent."""

    async def init(self, conf: dict[str, Any], manager: str = MANAGER) -> None:
        """``conf``: the gate's, with ``servername``; ``manager``: the name to call the
        manager by (its cluster-wide one when it runs on another node)."""
        self.manager = manager
        self.players: dict[str, Player] = {}
        self.by_username: dict[bytes, Player] = {}
        self.last_subid = 0
        await super().init(conf)

    async def register_handler(self, servername: bytes) -> None:
        self.register(MSGSERVER)

    def handshake_owner(self, uid: bytes) -> str | None:
        """The msgserver of the worker owning ``uid``, when that is another worker (the
        login server handed the login to that one)."""
        owner = owned(MSGSERVER, uid.decode(errors="replace"))
        return None if owner == MSGSERVER else owner

    async def login_handler(self, uid: str, secret: bytes) -> int:
        """Called by the login server, which kicks the user's previous login first."""
        self.last_subid += 1
        subid = self.last_subid
        link = Client(self.address, subid, uid).to_message()
        agent = await self.call(self.manager, "attach", uid, link, True)
        player = Player(self.username(uid, subid), link, agent)
        self.user_login(player.username, secret)
        self.players[uid] = self.by_username[player.username] = player
        return subid

    async def logout_handler(self, uid: str, subid: int) -> None:
        """Called by the agent when it retires, and by ``kick``."""
        player = self.players.get(uid)
        if player is None or player.username != self.username(uid, subid):
            return
        self.user_logout(player.username)
        del self.players[uid], self.by_username[player.username]
        await self.call(LOGIN, "logout", uid, subid)

    async def kick_handler(self, uid: str, subid: int) -> None:
        """Called by the login server: the user is logging in again."""
        player = self.players.get(uid)
        if player is not None and player.username == self.username(uid, subid):
            with contextlib.suppress(CallError):  # an agent that died has no link to drop
                await self.send(player.agent, "detach", player.link)
        await self.logout_handler(uid, subid)

    async def disconnect_handler(self, username: bytes) -> None:
        await self._tell_agent(username, False)

    async def request_handler(self, username: bytes, message: bytes) -> bytes:
        player = self.by_username[username]
        try:
            request = proto.decode_request(message)
        except ProtoError as exc:
            return _error(exc.msg_id, exc.session, str(exc))
        name, session = request.message.name, request.session
        if request.message.target != AGENT:
            return _error(request.message.id, session, f"{name}: {NOT_HERE}")
        packets = await self.call(
            player.agent, "msg_request", player.link, name, session, request.body
        )
        return pack_packets(packets)

    async def connect_handler(self, username: bytes) -> None:
        await self._tell_agent(username, True)

    async def _tell_agent(self, username: bytes, connected: bool) -> None:
        player = self.by_username.get(username)
        if player is not None:
            with contextlib.suppress(CallError):  # an agent that ended has nothing to hear
                await self.send(player.agent, "link_connected", player.link, connected)


def _error(msg_id: int | None, session: int | None, text: str) -> bytes:
    return pack_packets([proto.encode_error(msg_id or 0, session or 0, text)])

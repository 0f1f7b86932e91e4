"""The agent: one per user online, serving ``login`` and ``ping`` for all the user's links,
and in a cluster the user's gold: ``wallet``, ``enter_subgame``, ``leave_subgame`` (through
the wallets and the subgame of ``demo_game.wallet`` and ``demo_game.subgame``; a login
takes in the gold the subgame handed back while the main game could not be reached).

A *link* is how the user reaches the agent: a hub connection that signed in (a ``Client``
of the hub), or a login through the login server, served by the msgserver (a ``Client``
whose ``gate`` is the msgserver and whose ``fd`` is the login's subid). The manager
attaches links; a hub link ends when its connection closes, a msgserver link when that
login is kicked or logged out, and its connection may drop and come back (reconnect by
index) in between.

One link at a time is logged in: ``login`` on another answers ``{ok: false}``. When no link
is connected, the agent waits ``reconnect_window`` seconds; a link that reconnects
meanwhile keeps it, and a new link (a new login) starts the wait again; otherwise it logs
its msgserver logins out, tells the manager and exits.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import trio

from demo_game.names import (
    CLUSTER_SUBGAME,
    CLUSTER_SUBGAME_WALLET,
    CLUSTER_WALLET,
    MANAGER,
    SUBGAME_SYSTEM,
)
from demo_game.proto import proto
from meshnet import Address, CallError, command
from meshnet.gate import Backend, Client, ClientError, handles

logger = logging.getLogger(__name__)

NOT_LOGGED_IN = "not logged in"
NO_GOLD = "gold and the subgame come with the demo on several nodes: make demo-cluster"

LinkKey = tuple[int, int]
"""``(gate, fd)`` of a link."""

_msg_pushes: ContextVar[list[bytes] | None] = ContextVar("demo_msg_pushes", default=None)
"""Pushes made while serving a msgserver request, sent back with its reply (the msgserver
has no channel for pushes); None while serving anything else."""


@dataclass
class Link:
    """One way the user reaches the agent: a hub connection or a msgserver login."""

    client: Client
    via_msgserver: bool
    connected: bool


class Agent(Backend):
    """The agent of one user online: serves ``login``, ``ping`` and the gold, waits for a
    reconnect."""

    protocol = proto

    async def init(self, user: str, reconnect_window: float, gold: bool = False) -> None:
        self.user = user
        self.reconnect_window = reconnect_window
        self.gold = gold
        """The user's gold and the subgame are served (the demo runs as a cluster)."""
        self.links: dict[LinkKey, Link] = {}
        self.logged_in: LinkKey | None = None
        self.retiring = False
        self._countdown: trio.CancelScope | None = None

    # --- links (the manager, the hub and the msgserver) -----------------------------

    @command
    async def attach(self, client: list[Any], via_msgserver: bool = False) -> bool:
        """Take a new link of our user; False if the agent is already retiring.

        A msgserver link counts as connected once its client has shaken hands; until then
        the user has a whole ``reconnect_window`` from this attach to do it (a countdown
        already running for older links starts again)."""
        if self.retiring:
            return False
        link = Link(Client.from_message(client), via_msgserver, connected=not via_msgserver)
        self.links[_key(link.client)] = link
        self._stop_countdown()
        self._check_links()
        return True

    @command
    async def detach(self, client: list[Any]) -> None:
        """The link is gone for good (its signin could not bind, its login was kicked)."""
        self._drop(Client.from_message(client))

    @command
    async def link_connected(self, client: list[Any], connected: bool) -> None:
        """A msgserver link's client shook hands (True) or its connection dropped (False)."""
        link = self.links.get(_key(Client.from_message(client)))
        if link is not None:
            link.connected = connected
            self._check_links()

    async def on_client_closed(self, client: Client) -> None:
        self._drop(client)

    @command
    async def status(self) -> dict[str, Any]:
        """What the agent knows, for debugging and tests."""
        return {
            "user": self.user,
            "links": len(self.links),
            "connected": sum(link.connected for link in self.links.values()),
            "logged_in": self.logged_in is not None,
            "retiring": self.retiring,
        }

    # --- the user's messages --------------------------------------------------------

    @handles("login")
    async def login(self, client: Client, body: dict[str, Any]) -> dict[str, bool]:
        """Log the connection in: push ``welcome``, ``{ok: true}``; false while another one is."""
        key = _key(client)
        if self.logged_in not in (None, key):
            return {"ok": False}
        self.logged_in = key
        await self._push(client, {"text": f"welcome {self.user} (agent {self.address})"})
        if self.gold:  # the gold the subgame could not hand back in time waits in Redis
            arrived = await self._maybe(CLUSTER_WALLET, "drain", self.user)
            if arrived:
                await self._push(
                    client, {"text": f"{arrived} deferred transfer(s) of gold arrived"}
                )
        return {"ok": True}

    @handles("ping")
    async def ping(self, client: Client, body: dict[str, Any]) -> dict[str, Any]:
        """``{}`` once the connection logged in; error ``not logged in`` before."""
        self._check_logged_in(client)
        return {}

    @handles("wallet")
    async def wallet(self, client: Client, body: dict[str, Any]) -> dict[str, Any]:
        """``{main, subgame, in_transit}``: the user's gold in the main game, in the subgame
        (None if it cannot be reached), and on its way between them."""
        self._check_logged_in(client)
        main = await self._gold(CLUSTER_WALLET, "wallet", self.user)
        subgame = await self._maybe(CLUSTER_SUBGAME_WALLET, "wallet", self.user)
        return {
            "main": main["gold"],
            "subgame": None if subgame is None else subgame["gold"],
            "in_transit": main["in_transit"] + (0 if subgame is None else subgame["in_transit"]),
        }

    @handles("enter_subgame")
    async def enter_subgame(self, client: Client, body: dict[str, Any]) -> dict[str, Any]:
        """Move all the user's gold to the subgame and enter it: ``{state, gold}``. If the
        subgame cannot be reached, the gold is deferred: it arrives once the subgame is
        back (the main game delivers it again), or when the user next enters."""
        self._check_logged_in(client)
        moved = await self._gold(CLUSTER_WALLET, "move_all", self.user, SUBGAME_SYSTEM)
        if await self._maybe(CLUSTER_SUBGAME, "enter", self.user) is not None:
            await self._maybe(CLUSTER_WALLET, "redeliver", self.user)  # what the entry drained
        return moved

    @handles("leave_subgame")
    async def leave_subgame(self, client: Client, body: dict[str, Any]) -> dict[str, Any]:
        """Leave the subgame, moving all the user's gold there back: ``{state, gold}``. If
        the main game cannot be reached, the gold is deferred: it arrives once the main
        game's wallet is back, or at the user's next login."""
        self._check_logged_in(client)
        return await self._gold(CLUSTER_SUBGAME, "leave", self.user)

    @command
    async def msg_request(
        self, client: list[Any], name: str, session: int, body: dict[str, Any]
    ) -> list[bytes]:
        """Serve a request that came through the msgserver: return the packets a hub
        connection would have been sent, pushes first, then the reply (if session)."""
        pushes: list[bytes] = []
        token = _msg_pushes.set(pushes)
        try:
            reply = await self.client_request(client, name, session, body)
        finally:
            _msg_pushes.reset(token)
        return pushes if reply is None else [*pushes, reply]

    # --- helpers --------------------------------------------------------------------

    async def _push(self, client: Client, body: dict[str, Any]) -> None:
        """Push to the client being served: along with the reply of a msgserver request,
        else straight to a hub connection on this node, or through the router's ``push``
        on another node. That send goes before the reply to the router's request, so the
        client gets the push first all the same (one order per pair of services)."""
        pushes = _msg_pushes.get()
        if pushes is not None:
            pushes.append(self.protocol.encode_push("push", body))
        elif Address(client.gate).node == self.address.node:
            self.push(client, "push", body)
        else:
            await self.send(client.gate, "push", client.fd, "push", body)

    def _drop(self, client: Client) -> None:
        key = _key(client)
        self.links.pop(key, None)
        if self.logged_in == key:
            self.logged_in = None
        self._check_links()

    def _check_links(self) -> None:
        """Count down to retirement while no link is connected; stop when one is.

        Once retiring, the countdown's task is the retirement itself: a link that
        reconnects meanwhile must not cancel it halfway (the agent would never exit)."""
        if self.retiring:
            return
        if any(link.connected for link in self.links.values()):
            self._stop_countdown()
        elif self._countdown is None:
            self._countdown = self.timeout(self.reconnect_window, self._retire)

    def _stop_countdown(self) -> None:
        if self._countdown is not None:
            self._countdown.cancel()
            self._countdown = None

    async def _retire(self) -> None:
        """Refuse new links, log the msgserver logins out, tell the manager, exit."""
        self.retiring = True
        logger.info("%s did not come back within %gs", self.user, self.reconnect_window)
        for link in list(self.links.values()):  # a kick may drop one meanwhile
            if link.via_msgserver:
                await self._ask(link.client.gate, "logout", self.user, link.client.fd)
        await self._ask(MANAGER, "retire", self.user, self.address)
        await self.exit()

    def _check_logged_in(self, client: Client) -> None:
        if self.logged_in != _key(client):
            raise ClientError(NOT_LOGGED_IN)

    async def _gold(self, target: str, name: str, *args: Any) -> Any:
        """Call a service of the gold or the subgame; a client error if there is none."""
        if not self.gold:
            raise ClientError(NO_GOLD)
        try:
            return await self.call(target, name, *args)
        except CallError as exc:
            logger.warning("%s of %s failed: %s", name, self.user, exc)
            raise ClientError(f"the {target} cannot be reached now ({exc.remote_type})") from None

    async def _maybe(self, target: str, name: str, *args: Any) -> Any:
        """Call a service of the gold or the subgame; None (logged) if it fails."""
        try:
            return await self._gold(target, name, *args)
        except ClientError:
            return None

    async def _ask(self, target: int | str, name: str, *args: Any) -> None:
        """Call ``target``; a failure is logged, since leaving must go on regardless."""
        try:
            await self.call(target, name, *args)
        except CallError as exc:
            logger.warning("%s of %s failed: %s", name, self.user, exc)


def _key(client: Client) -> LinkKey:
    return client.gate, client.fd

"""The demo game's start service: starts the game's services and says where they listen.

``python -m meshnet node demo_game/node.toml`` runs it; its start arguments are the
settings of ``demo_game.settings``. On its own the node runs the whole game, every
service calling the others by their node-local names. As one node of a cluster (the
settings' ``cluster`` section) it runs only its roles:

==========  ============================================================================
role        services
==========  ============================================================================
accounts    accounts (cluster-wide name ``accounts``); in a cluster, the main game's
            wallet too (``wallet``: the gold, in the accounts file)
game        manager (cluster-wide ``manager``) and the agents it starts
front       hub, auth, login server, msgserver, browser page
subgame     (in a cluster only) the subgame's wallet (``subgame_wallet``) and its door
            (``subgame``), which starts a subgame agent per player
==========  ============================================================================

The two wallets hand gold to each other by reliable commands (``demo_game.wallet``),
with the deferred ones in Redis: the cluster's own (Redis discovery), or ``gold.redis``.

A service whose peer runs on another node calls it by the peer's cluster-wide name, and
everything else the services pass each other is an address, which works across nodes.
Auth stays on the front with the hub: the hub routes ``signup`` and ``signin`` to its
node-local ``.auth``, and auth holds no state of its own; what is worth a node of its own,
the password hashes and the CPU they cost, is the accounts service's.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from demo_game.accounts_service import Accounts
from demo_game.auth import Auth
from demo_game.hub import Hub
from demo_game.login import DemoLogin
from demo_game.manager import Manager
from demo_game.msgserver import DemoMsgServer
from demo_game.names import (
    ACCOUNTS,
    CLUSTER_ACCOUNTS,
    CLUSTER_MANAGER,
    CLUSTER_SUBGAME,
    CLUSTER_SUBGAME_WALLET,
    CLUSTER_WALLET,
    MAIN_SYSTEM,
    MANAGER,
    SUBGAME_SYSTEM,
)
from demo_game.settings import Settings, SettingsError, parse_settings
from demo_game.subgame import Subgame
from demo_game.wallet import Wallet
from demo_game.web import WebServer
from meshnet import Address, Service, command
from meshnet.cluster import api

logger = logging.getLogger(__name__)

_WALLETS = {
    MAIN_SYSTEM: (CLUSTER_WALLET, SUBGAME_SYSTEM, CLUSTER_SUBGAME_WALLET),
    SUBGAME_SYSTEM: (CLUSTER_SUBGAME_WALLET, MAIN_SYSTEM, CLUSTER_WALLET),
}
"""Each system's wallet: its cluster-wide name, the other system and its wallet's name."""


class Main(Service):
    """The start service of a demo node: starts the services of its roles."""

    async def init(self, *settings: dict[str, Any]) -> None:
        conf = parse_settings(*settings)
        self.listening: dict[str, int | None] = {}
        if "accounts" in conf.roles:
            scrypt, signin = conf.scrypt, conf.signin
            accounts = await self.newservice(
                Accounts,
                str(conf.accounts_path),
                scrypt.n,
                scrypt.r,
                scrypt.p,
                conf.hashing["hash_threads"],
                conf.hashing["hash_wait"],
                signin["max_failures"],
                signin["failure_period"],
                signin["per_address_exempt"],
            )
            await self._share(conf, CLUSTER_ACCOUNTS, accounts)
            logger.info("demo accounts in %s", conf.accounts_path)
            if conf.cluster:
                await self._start_wallet(conf, MAIN_SYSTEM, conf.accounts_path, conf.starting_gold)
        if "subgame" in conf.roles:
            if await self._start_wallet(conf, SUBGAME_SYSTEM, conf.subgame_path, 0) is None:
                raise SettingsError(
                    "the subgame role needs Redis: give the node Redis discovery or 'gold.redis'"
                )
            subgame = await self.newservice(Subgame, CLUSTER_SUBGAME_WALLET)
            await self._share(conf, CLUSTER_SUBGAME, subgame)
        if "game" in conf.roles:
            manager = await self.newservice(Manager, conf.reconnect_window, conf.cluster)
            await self._share(conf, CLUSTER_MANAGER, manager)
        if "front" in conf.roles:
            await self._start_front(conf)

    @command
    async def ports(self) -> dict[str, int | None]:
        """The bound ports of a front: ``hub``, ``hub_ws``, ``login``, ``msgserver``,
        ``web`` (empty on a node without the front role)."""
        return self.listening

    async def _share(self, conf: Settings, name: str, address: int) -> None:
        """Give a service other nodes call its cluster-wide ``name``, in a cluster."""
        if conf.cluster:
            await api.register(name, address)
            logger.info("registered %s as the cluster-wide %r", address, name)

    async def _start_wallet(
        self, conf: Settings, system: str, store: Path, starting_gold: int
    ) -> Address | None:
        """Start ``system``'s wallet under its cluster-wide name; None (logged) if there
        is no Redis for the deferred hand-offs."""
        cluster = api.of(self.node).config
        redis = conf.gold_redis or cluster.redis
        if not redis:
            logger.warning("no Redis for the gold (no Redis discovery, no gold.redis): no wallet")
            return None
        mine, other, theirs = _WALLETS[system]
        settings = {
            "system": system,
            "store": str(store),
            "redis": redis,
            "peers": {other: theirs},
            "prefix": f"{cluster.name}:gold",
            "timeout": conf.gold_timeout,
        }
        wallet = await self.newservice(Wallet, settings, starting_gold)
        await self._share(conf, mine, wallet)
        logger.info("the gold of %s in %s", system, store)
        return wallet

    async def _start_front(self, conf: Settings) -> None:
        accounts = ACCOUNTS if "accounts" in conf.roles else CLUSTER_ACCOUNTS
        manager = MANAGER if "game" in conf.roles else CLUSTER_MANAGER
        await self.newservice(Auth, accounts, manager)
        hub = await self.call(await self.newservice(Hub, conf.hub), "ports")
        msgserver = await self.newservice(DemoMsgServer, conf.msgserver, manager)
        login = await self.newservice(
            DemoLogin,
            conf.login_address,
            conf.login_port,
            conf.servername,
            conf.login_limits,
            accounts,
        )
        web = await self.newservice(WebServer, conf.web_address, conf.web_port, hub.get("ws_port"))
        self.listening = {
            "hub": hub.get("port"),
            "hub_ws": hub.get("ws_port"),
            "login": await self.call(login, "port"),
            "msgserver": (await self.call(msgserver, "ports"))["port"],
            "web": await self.call(web, "port"),
        }
        hub_host = conf.hub["address"]
        logger.info(
            "demo game listening: hub tcp %s:%s, hub websocket ws://%s:%s/, login server %s:%d, "
            "msgserver %r %s:%d, browser page http://%s:%d/",
            hub_host,
            self.listening["hub"],
            hub_host,
            self.listening["hub_ws"],
            conf.login_address,
            self.listening["login"],
            conf.servername,
            conf.msgserver["address"],
            self.listening["msgserver"],
            conf.web_address,
            self.listening["web"],
        )

"""The demo game's start service: starts every other service and says where they listen.

``python -m meshnet node demo_game/node.toml`` runs it; its start arguments are the
settings of ``demo_game.settings``.
"""

from __future__ import annotations

import logging
from typing import Any

from demo_game.accounts_service import Accounts
from demo_game.auth import Auth
from demo_game.hub import Hub
from demo_game.login import DemoLogin
from demo_game.manager import Manager
from demo_game.msgserver import DemoMsgServer
from demo_game.settings import parse_settings
from demo_game.web import WebServer
from meshnet import Service, command

logger = logging.getLogger(__name__)


class Main(Service):
    """The start service of the demo node: starts every other service from the settings."""

    async def init(self, *settings: dict[str, Any]) -> None:
        conf = parse_settings(*settings)
        scrypt = conf.scrypt
        await self.newservice(Accounts, str(conf.accounts_path), scrypt.n, scrypt.r, scrypt.p)
        await self.newservice(Manager, conf.reconnect_window)
        await self.newservice(Auth)
        hub = await self.call(await self.newservice(Hub, conf.hub), "ports")
        msgserver = await self.newservice(DemoMsgServer, conf.msgserver)
        login = await self.newservice(
            DemoLogin, conf.login_address, conf.login_port, conf.servername, conf.login_limits
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
            "msgserver %r %s:%d, browser page http://%s:%d/; accounts in %s",
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
            conf.accounts_path,
        )

    @command
    async def ports(self) -> dict[str, int | None]:
        """The bound ports: ``hub``, ``hub_ws``, ``login``, ``msgserver``, ``web``."""
        return self.listening

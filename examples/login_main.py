"""Starts skynet's ``examples/login`` on meshnet (main.lua): the login server, then the
msgserver ``sample``. The addresses are arguments so a test can run it on free ports."""

from __future__ import annotations

import logging

from login_sample import Sample
from msg_sample import Gated

from meshnet import Service

logger = logging.getLogger(__name__)


class Main(Service):
    async def init(
        self,
        login_host: str = "127.0.0.1",
        login_port: int = 8001,
        gate_host: str = "0.0.0.0",
        gate_port: int = 8888,
    ) -> None:
        login = await self.newservice(Sample, login_host, login_port)
        conf = {"address": gate_host, "port": gate_port, "maxclient": 64, "servername": "sample"}
        gate = await self.newservice(Gated, conf)
        login_port = await self.call(login, "port")
        gate_port = (await self.call(gate, "ports"))["port"]
        logger.info(
            "login server on %s:%d, msgserver 'sample' on %s:%d",
            login_host,
            login_port,
            gate_host,
            gate_port,
        )

"""Services the cluster tests' node processes run (their configs put this folder on the
import path)."""

from __future__ import annotations

import trio

from meshnet import Service, command
from meshnet.cluster import api


class Main(Service):
    """A node process's start service: a store at ``.store``, registered as ``store``."""

    async def init(self) -> None:
        self.data: dict = {}
        self.register(".store")
        await api.register("store")

    @command
    async def set(self, key, value):
        self.data[key] = value

    @command
    async def get(self, key):
        return self.data.get(key)

    @command
    async def hang(self):
        await trio.sleep_forever()

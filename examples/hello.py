"""Two services that talk: ``Main`` asks ``Greeter`` to greet a few names, over and over."""

from __future__ import annotations

import logging

from meshnet import Service, command

logger = logging.getLogger(__name__)


class Greeter(Service):
    async def init(self, greeting: str) -> None:
        self.greeting = greeting
        self.greeted = 0
        self.register(".greeter")

    @command
    async def greet(self, name: str) -> str:
        self.greeted += 1
        return f"{self.greeting}, {name}!"

    async def on_exit(self) -> None:
        logger.info("greeter stopping after %d greetings", self.greeted)


class Main(Service):
    async def init(self, names: list[str], interval: float) -> None:
        await self.newservice(Greeter, "Hello")
        self.fork(self.chat, names, interval)

    async def chat(self, names: list[str], interval: float) -> None:
        while True:
            for name in names:
                logger.info("%s", await self.call(".greeter", "greet", name))
                await self.sleep(interval)

    async def on_exit(self) -> None:
        logger.info("main says goodbye")

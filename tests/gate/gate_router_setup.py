"""A small game for the router tests: a protocol, an auth backend, an agent backend."""

from __future__ import annotations

import trio
from gate_helpers import Client as Connection
from gate_helpers import start_gate

from meshnet import command
from meshnet.gate import Backend, Client, ClientError, Router, handles
from meshnet.gate.proto import Protocol, Reply

proto = Protocol("router-test")
proto.message(1, "signin", {"user": str}, target=".auth", rule="pass", reply={"ok": bool})
proto.message(2, "echo", {"text": str}, target=".agent", rule="auth", reply={"text": str})
proto.message(3, "secret", target=".agent")  # no rule: blocked
proto.message(4, "fail", {"how": str}, target=".auth", rule="pass", reply={"ok": bool})
SLOW = {"delay": float, "tag": int}
proto.message(5, "slow", SLOW, target=".auth", rule="pass", reply={"tag": int})
proto.message(6, "missing", target=".nobody", rule="pass")
proto.message(7, "whoami", target=".agent", rule="auth", reply={"user": str})
proto.message(8, "shout", {"text": str}, target=".agent", rule="auth")
proto.message(9, "big", {"size": int}, target=".auth", rule="pass", reply={"text": str})
proto.message(10, "hold", {"tag": int}, target=".auth", rule="pass", reply={"tag": int})
proto.message(100, "notice", {"text": str})


class Events:
    """What backends observed, kept per backend so tests can wait on them."""

    def __init__(self) -> None:
        self.items: list[list] = []
        self._changed = trio.Event()

    def add(self, *item: object) -> None:
        self.items.append(list(item))
        self._changed.set()
        self._changed = trio.Event()

    async def wait(self, kind: str, count: int = 1) -> list[list]:
        while len(found := [i for i in self.items if i[0] == kind]) < count:
            await self._changed.wait()
        return found


class GameRouter(Router):
    """The router under test; it also records its ``error`` hook calls."""

    protocol = proto

    def __init__(self) -> None:
        super().__init__()
        self.errors = Events()

    async def error(self, fd: int, message: str) -> None:
        self.errors.add("error", fd, message)

    @command
    async def wait_error(self, count: int = 1) -> list[list]:
        return await self.errors.wait("error", count)

    @command
    async def tracked(self) -> list[int]:
        """The fds the router still keeps anything for (a route, requests in flight)."""
        return sorted({*self._routes, *self._pipelines})


class Auth(Backend):
    protocol = proto

    async def init(self, agent: int) -> None:
        self.agent = agent
        self.events = Events()
        self.holding = self.most_held = 0
        self.released = trio.Event()
        self.register(".auth")

    @handles("signin")
    async def signin(self, client: Client, body: dict) -> dict:
        if body["user"] == "nobody":
            raise ClientError("no such user")
        await self.bind(client, ".agent", self.agent, user=body["user"])
        return {"ok": True}

    @handles("fail")
    async def fail(self, client: Client, body: dict) -> dict:
        if body["how"] == "client":
            raise ClientError("you asked for it")
        if body["how"] == "reply":
            return {"ok": "not a bool"}
        if body["how"] == "downstream":
            return await self.call(".nobody_here", "anything")
        raise KeyError("a bug")

    @handles("slow")
    async def slow(self, client: Client, body: dict) -> dict:
        await trio.sleep(body["delay"])
        return {"tag": body["tag"]}

    @handles("hold")
    async def hold(self, client: Client, body: dict) -> dict:
        """Answers only once ``release`` is called; counts how many wait at once."""
        self.holding += 1
        self.most_held = max(self.most_held, self.holding)
        self.events.add("held", body["tag"])
        try:
            await self.released.wait()
        finally:
            self.holding -= 1
        return {"tag": body["tag"]}

    @command
    async def release(self) -> None:
        self.released.set()

    @command
    async def held(self) -> list[int]:
        """[waiting now, most that ever waited at once]."""
        return [self.holding, self.most_held]

    @handles("big")
    async def big(self, client: Client, body: dict) -> dict:
        return {"text": "x" * body["size"]}

    @command
    async def wait_event(self, kind: str, count: int = 1) -> list[list]:
        return await self.events.wait(kind, count)


class Agent(Backend):
    protocol = proto

    async def init(self) -> None:
        self.events = Events()
        self.clients: list[Client] = []

    @handles("echo")
    async def echo(self, client: Client, body: dict) -> dict:
        return {"text": body["text"]}

    @handles("whoami")
    async def whoami(self, client: Client, body: dict) -> dict:
        self.clients.append(client)
        return {"user": client.user}

    @handles("shout")
    async def shout(self, client: Client, body: dict) -> None:
        """Pushes the text to everyone who asked whoami, and to the whole router."""
        self.push(self.clients, "notice", {"text": body["text"]})
        self.broadcast(client.gate, "notice", {"text": "all: " + body["text"]})

    async def on_client_closed(self, client: Client) -> None:
        self.events.add("closed", client.fd, client.user)

    @command
    async def wait_event(self, kind: str, count: int = 1) -> list[list]:
        return await self.events.wait(kind, count)


async def start_game(
    node, kind: str, router_class: type[Router] = GameRouter, **conf: object
) -> tuple[int, int, int, int]:
    """Router, auth and agent; returns (router, port, auth, agent)."""
    agent = await node.newservice(Agent)
    auth = await node.newservice(Auth, agent)
    router, port = await start_gate(node, kind, router_class, **conf)
    return router, port, auth, agent


class Player:
    """A client speaking the test protocol over a gate connection."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._session = 0

    async def ask(self, name: str, body: dict | None = None) -> Reply | None:
        """Send a request and return the next packet decoded (None if closed)."""
        await self.send(name, body)
        return await self.next()

    async def send(self, name: str, body: dict | None = None) -> int:
        self._session += 1
        await self.connection.send(proto.encode_request(name, body, session=self._session))
        return self._session

    async def next(self) -> Reply | None:
        packet = await self.connection.receive()
        return None if packet is None else proto.decode_reply(packet)

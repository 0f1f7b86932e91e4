"""A msgserver relaying the connections of users another msgserver owns (``handshake_owner``).

Two msgservers of game server ``sample`` on one node: the owner, which the example login
server logs users in to, and a relaying one on a port of its own, which owns nobody. A
client connected to the relaying one must be served exactly as by the owner: the owner's
secret, index and response cache answer it.
"""

from __future__ import annotations

import pytest
import trio
from msg_servers import Counting, RawGate, connect, log_in, settled, start

from meshnet.login.gateclient import GateClosed
from meshnet.login.wire import HANDSHAKE_OK, USER_NOT_FOUND, Response, build_handshake


class Relaying(Counting):
    """Owns no user: relays every handshake to the msgserver ``owner``."""

    async def init(self, owner: int | str) -> None:
        self.owner = owner
        await super().init()

    async def register_handler(self, servername: bytes) -> None:
        """Not the owner's name: the login server hands logins to the owner only."""

    def handshake_owner(self, uid: bytes) -> int | str:
        return self.owner


@pytest.fixture
async def servers(node):
    login_port, owner_port, owner = await start(node)
    relaying = await node.newservice(Relaying, owner)
    relay_port = (await node.call(relaying, "ports"))["port"]
    return login_port, owner_port, owner, relay_port, relaying


async def test_a_relayed_connection_is_answered_by_the_owner(servers, node):
    login_port, _, owner, relay_port, relaying = servers
    async with await connect(relay_port, await log_in(login_port)) as connection:
        assert connection.status == HANDSHAKE_OK
        assert await connection.request(b"hi", 1) == Response(b"hi", True, 1)
    assert await node.call(owner, "count", b"hi") == 1
    assert await node.call(relaying, "count", b"hi") == 0


async def test_a_reconnect_on_the_relaying_server_gets_the_owner_s_cached_answer(servers, node):
    login_port, owner_port, owner, relay_port, _ = servers
    result = await log_in(login_port)
    async with await connect(owner_port, result) as connection:
        assert await connection.request(b"once", 1) == Response(b"once", True, 1)
    async with await connect(relay_port, result, 2) as connection:
        assert await connection.request(b"fake", 1) == Response(b"once", True, 1)
    assert await node.call(owner, "count", b"once") == 1
    assert await node.call(owner, "count", b"fake") == 0


async def test_a_handshake_the_owner_refuses_closes_the_relayed_connection(servers):
    _, _, _, relay_port, _ = servers
    async with await RawGate.connect(relay_port) as gate:
        await gate.send(build_handshake(b"nobody", b"sample", b"1", 1, b"k" * 8))
        assert await gate.rest() == [USER_NOT_FOUND]


async def test_a_new_handshake_on_the_owner_closes_the_relayed_connection(servers):
    login_port, owner_port, _, relay_port, _ = servers
    result = await log_in(login_port)
    relayed = await connect(relay_port, result)
    async with await connect(owner_port, result, 2) as connection:
        assert await connection.request(b"here now", 1) == Response(b"here now", True, 1)
    with trio.fail_after(5), pytest.raises(GateClosed):
        await relayed.receive_response()
    await relayed.aclose()


async def test_the_owner_hears_when_a_relayed_connection_closes(servers, node):
    login_port, _, owner, relay_port, _ = servers
    connection = await connect(relay_port, await log_in(login_port))
    await connection.aclose()
    with trio.fail_after(5):
        while not await node.call(owner, "afk"):
            await settled()
    assert len(await node.call(owner, "afk")) == 1


async def test_a_relayed_connection_whose_owner_is_gone_is_closed(servers, node):
    login_port, _, owner, relay_port, _ = servers
    connection = await connect(relay_port, await log_in(login_port))
    await node.kill(owner)
    await connection.send_request(b"anyone?", 1)
    with trio.fail_after(5), pytest.raises(GateClosed):
        await connection.receive_response()
    await connection.aclose()


@pytest.fixture
def quick_checks(monkeypatch):
    """The owners check their relayed connections every 10 ms."""
    monkeypatch.setattr(Counting, "relay_check", 0.01)


async def test_the_owner_forgets_a_relayed_connection_whose_relaying_server_is_gone(
    quick_checks, servers, node
):
    login_port, _, owner, relay_port, relaying = servers
    connection = await connect(relay_port, await log_in(login_port))
    await node.kill(relaying)  # it tells the owner nothing
    with trio.fail_after(5):
        while not await node.call(owner, "afk"):
            await trio.sleep(0.01)
    await connection.aclose()


async def test_a_packet_for_an_owner_that_restarted_closes_the_relayed_connection(servers, node):
    login_port, _, owner, _, _ = servers
    by_name = await node.newservice(Relaying, ".msgserver_sample")
    relay_port = (await node.call(by_name, "ports"))["port"]
    connection = await connect(relay_port, await log_in(login_port))
    await node.kill(owner)
    await node.newservice(Counting)  # the owner's name again, knowing nobody
    await connection.send_request(b"anyone?", 1)
    with trio.fail_after(5), pytest.raises(GateClosed):
        await connection.receive_response()
    await connection.aclose()


async def test_a_user_at_max_in_flight_is_not_read_on_the_relaying_server_either(node):
    login_port, _, owner = await start(node, {"max_in_flight": 1})
    relaying = await node.newservice(Relaying, owner)
    relay_port = (await node.call(relaying, "ports"))["port"]
    connection = await connect(relay_port, await log_in(login_port))
    await connection.send_request(b"hold", 1)
    await settled()
    await connection.send_request(b"next", 2)
    await settled()
    ran_while_held = await node.call(owner, "count", b"next")
    await node.call(owner, "release")
    with trio.fail_after(5):
        answers = {(await connection.receive_response()).session for _ in range(2)}
    await connection.aclose()

    assert ran_while_held == 0
    assert answers == {1, 2}

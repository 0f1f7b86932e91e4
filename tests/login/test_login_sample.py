"""examples/login_sample.py, skynet's examples/login server, with a fake msgserver."""

import sys
from pathlib import Path

import pytest
import trio
from login_servers import HOST

from meshnet import Service, command
from meshnet.login.client import LoginRefused, login

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from login_sample import Sample  # noqa: E402


class FakeMsgserver(Service):
    """Allocates subids 1, 2, ...; a kick logs the user out at the login server."""

    async def init(self) -> None:
        self.register(".msgserver_sample")
        self.subids = 0
        self.users: dict[bytes, tuple[int, bytes]] = {}
        self.kicked: list[list] = []

    @command
    async def login(self, uid: bytes, secret: bytes) -> int:
        self.subids += 1
        self.users[uid] = (self.subids, secret)
        return self.subids

    @command
    async def kick(self, uid: bytes, subid: int) -> None:
        self.kicked.append([uid, subid])
        del self.users[uid]
        await self.call(".login_master", "logout", uid, subid)

    @command
    async def secret_of(self, uid: bytes) -> bytes:
        return self.users[uid][1]

    @command
    async def kicks(self) -> list[list]:
        return self.kicked


async def start(node, with_msgserver: bool = True) -> tuple[int, int | None]:
    msgserver = await node.newservice(FakeMsgserver) if with_msgserver else None
    sample = await node.newservice(Sample, HOST, 0)
    return await node.call(sample, "port"), msgserver


async def sample_login(port: int, user: str = "hello", password: str = "password", server="sample"):
    with trio.fail_after(5):
        return await login(HOST, port, server, user, password)


async def test_any_user_with_password_password_logs_in(node):
    port, msgserver = await start(node)
    result = await sample_login(port)
    assert result.subid == b"1"
    assert await node.call(msgserver, "secret_of", b"hello") == result.secret
    assert (await sample_login(port, "world")).subid == b"2"


async def test_a_wrong_password_is_unauthorized(node):
    port, _ = await start(node)
    with pytest.raises(LoginRefused) as refused:
        await sample_login(port, password="wrongpasswd")
    assert refused.value.code == 401


@pytest.mark.parametrize(
    "with_msgserver, server", [(False, "sample"), (True, "elsewhere")], ids=["down", "unknown"]
)
async def test_a_game_server_that_is_down_or_unknown_is_forbidden(node, with_msgserver, server):
    port, _ = await start(node, with_msgserver)
    with pytest.raises(LoginRefused) as refused:
        await sample_login(port, server=server)
    assert refused.value.code == 403


async def test_a_second_login_kicks_the_first(node):
    port, msgserver = await start(node)
    await sample_login(port)
    assert (await sample_login(port)).subid == b"2"
    assert await node.call(msgserver, "kicks") == [[b"hello", 1]]
    await sample_login(port, "world")
    assert await node.call(msgserver, "kicks") == [[b"hello", 1]]

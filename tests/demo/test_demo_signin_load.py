"""Sign-in under load, through the hub (TCP and WebSocket) and the login server: hashes on
a bounded pool that answers ``busy`` at once when it cannot start one in time, the same
work for an unknown user as for a known one, and failed sign-ins limited per name and per
address."""

from __future__ import annotations

import threading

import pytest
import trio
from demo_setup import HOST, start_demo

from demo_game import accounts
from demo_game.accounts import ScryptCost
from demo_game.connection import open_hub
from demo_game.proto import SIGNUP_SERVER
from meshnet.login.client import LoginRefused, login
from meshnet.login.wire import SERVICE_UNAVAILABLE, UNAUTHORIZED

ALICE = {"user": "alice", "password": "secret"}
ONE_THREAD = {"hash_threads": 1, "hash_wait": 0.2}


class HeldHashes:
    """Stands in for the password hash: computes it, but holds each thread until
    ``release``; records the cost of every hash."""

    def __init__(self, real) -> None:
        self.real = real
        self.released = threading.Event()
        self.costs: list[ScryptCost] = []
        self.held = 0

    def __call__(self, password: str, salt: bytes, cost: ScryptCost) -> bytes:
        self.costs.append(cost)
        self.held += 1
        self.released.wait(10)
        return self.real(password, salt, cost)

    async def until_held(self, count: int) -> None:
        with trio.fail_after(10):
            while self.held < count:
                await trio.sleep(0.001)


@pytest.fixture
def hold(monkeypatch):
    """From when it is called on, every password hash waits for ``release``."""
    holder = HeldHashes(accounts.hash_password)

    def start() -> HeldHashes:
        monkeypatch.setattr(accounts, "hash_password", holder)
        return holder

    yield start
    holder.released.set()


async def test_a_signin_that_cannot_get_a_hash_thread_in_time_is_busy_at_once(
    node, tmp_path, kind, hold
):
    demo = await start_demo(node, tmp_path / "db.sqlite3", accounts=ONE_THREAD)
    port = demo.hub_ws if kind == "ws" else demo.hub
    ws = kind == "ws"
    async with open_hub(HOST, port, ws=ws) as first, open_hub(HOST, port, ws=ws) as second:
        assert (await first.request("signup", ALICE)).ok
        held = hold()
        async with trio.open_nursery() as nursery:
            answers = []

            async def sign_in() -> None:
                answers.append(await first.request("signin", ALICE))

            nursery.start_soon(sign_in)
            await held.until_held(1)
            await trio.sleep(0.25)  # the hash takes far longer than usual: longer than the wait
            busy = await second.request("signin", {"user": "bob", "password": "x"})
            assert busy.reply.error == "busy"  # while the one thread is still taken
            held.released.set()
        [answer] = answers
        assert answer.ok
        assert (await second.request("signin", ALICE)).ok  # a retry later gets in


@pytest.fixture
def kind(request):
    return request.param


def pytest_generate_tests(metafunc):
    if "kind" in metafunc.fixturenames:
        metafunc.parametrize("kind", ["tcp", "ws"], indirect=True)


async def test_an_unknown_user_costs_the_same_hash_as_a_wrong_password(node, tmp_path, hold):
    demo = await start_demo(node, tmp_path / "db.sqlite3")
    async with open_hub(HOST, demo.hub) as hub:
        assert (await hub.request("signup", ALICE)).ok
        held = hold()
        held.released.set()
        wrong = await hub.request("signin", {"user": "alice", "password": "guess"})
        unknown = await hub.request("signin", {"user": "nobody", "password": "guess"})
    assert wrong.reply.body == unknown.reply.body == {"ok": False}
    assert len(held.costs) == 2 and held.costs[0] == held.costs[1]


async def test_repeated_failed_signins_for_one_name_are_refused_for_a_while(node, tmp_path):
    limit = {"max_failures": 2, "failure_period": 0.4}  # one back every 0.2 s
    demo = await start_demo(node, tmp_path / "db.sqlite3", signin=limit)
    async with open_hub(HOST, demo.hub) as hub:
        assert (await hub.request("signup", ALICE)).ok
        for _ in range(2):
            wrong = await hub.request("signin", {"user": "alice", "password": "guess"})
            assert wrong.reply.body == {"ok": False}
        limited = await hub.request("signin", ALICE)  # even the right password, for now
        assert limited.reply.error == "too many failed sign-ins: try again in 1 s"
        other = await hub.request("signin", {"user": "bob", "password": "x"})
        assert other.reply.body == {"ok": False}  # from loopback: only the name is limited
        await trio.sleep(0.25)
        assert (await hub.request("signin", ALICE)).ok


async def test_failed_signins_from_one_address_are_limited_across_names(node, tmp_path):
    limit = {"max_failures": 2, "failure_period": 60.0, "per_address_exempt": []}
    demo = await start_demo(node, tmp_path / "db.sqlite3", signin=limit)
    async with open_hub(HOST, demo.hub) as hub:
        for user in ("ann", "ben"):
            wrong = await hub.request("signin", {"user": user, "password": "guess"})
            assert wrong.reply.body == {"ok": False}
        limited = await hub.request("signin", {"user": "cat", "password": "guess"})
        assert limited.reply.error == "too many failed sign-ins: try again in 30 s"


async def test_the_login_server_answers_503_when_busy_or_limited(node, tmp_path, hold):
    limit = {"max_failures": 1, "failure_period": 60.0}
    demo = await start_demo(node, tmp_path / "db.sqlite3", accounts=ONE_THREAD, signin=limit)
    await login(HOST, demo.login, SIGNUP_SERVER, "alice", "secret")
    with pytest.raises(LoginRefused) as refused:
        await login(HOST, demo.login, "demo", "alice", "guess")
    assert refused.value.line == UNAUTHORIZED
    with pytest.raises(LoginRefused) as refused:
        await login(HOST, demo.login, "demo", "alice", "secret")  # limited for now
    assert refused.value.line == SERVICE_UNAVAILABLE
    held = hold()

    async def unknown_user_signs_in() -> None:
        with pytest.raises(LoginRefused):  # 401, once its hash is let through
            await login(HOST, demo.login, "demo", "bob", "x")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(unknown_user_signs_in)
        await held.until_held(1)
        await trio.sleep(0.25)
        with pytest.raises(LoginRefused) as refused:
            await login(HOST, demo.login, "demo", "cat", "x")
        assert refused.value.line == SERVICE_UNAVAILABLE
        held.released.set()

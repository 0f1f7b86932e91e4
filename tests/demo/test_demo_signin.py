"""Signup and signin through the hub: persistence across a restart, wrong passwords, and
malformed names and passwords answered with an error naming the field."""

import cbor2
import pytest
from demo_setup import HOST, start_demo

from demo_game.client import hub_flow
from demo_game.connection import open_hub
from meshnet import open_node

USER = "user: 1 to 32 letters, digits, '_' or '-'"
PASSWORD = "password: 1 to 128 characters"


async def test_a_restart_keeps_every_account(tmp_path):
    db = tmp_path / "accounts.sqlite3"
    async with open_node(strict_codec=True) as node:
        demo = await start_demo(node, db)
        for user in ("alice", "bob"):
            async with open_hub(HOST, demo.hub) as hub:
                assert (await hub.request("signup", {"user": user, "password": user * 2})).ok
    async with open_node(strict_codec=True) as node:
        demo = await start_demo(node, db)
        lines: list[str] = []
        assert await hub_flow(HOST, demo.hub, "bob", "bobbob", ws=False, say=lines.append)
        assert lines[0] == 'signin: ok {"ok": true}'
        async with open_hub(HOST, demo.hub) as hub:
            taken = await hub.request("signup", {"user": "alice", "password": "new"})
            assert taken.reply.body == {"ok": False}


async def test_a_wrong_password_or_unknown_user_is_refused(node, tmp_path):
    demo = await start_demo(node, tmp_path / "accounts.sqlite3")
    async with open_hub(HOST, demo.hub) as hub:
        assert (await hub.request("signup", {"user": "alice", "password": "secret"})).ok
        for body in ({"user": "alice", "password": "Secret"}, {"user": "bob", "password": "x"}):
            refused = await hub.request("signin", body)
            assert (refused.reply.ok, refused.reply.body) == (True, {"ok": False})
        assert (await hub.request("login")).reply.error == "not authenticated"
        assert (await hub.request("signin", {"user": "alice", "password": "secret"})).ok


@pytest.mark.parametrize(
    ("user", "password", "error"),
    [
        ("", "pw", USER),
        ("a" * 33, "pw", USER),
        ("bad name", "pw", USER),
        ("émile", "pw", USER),
        ("alice", "", PASSWORD),
        ("alice", "p" * 129, PASSWORD),
    ],
)
@pytest.mark.parametrize("request_name", ["signup", "signin"])
async def test_malformed_names_and_passwords_get_an_error_naming_the_field(
    node, tmp_path, request_name, user, password, error
):
    demo = await start_demo(node, tmp_path / "accounts.sqlite3")
    async with open_hub(HOST, demo.hub) as hub:
        answer = await hub.request(request_name, {"user": user, "password": password})
        assert answer.reply.error == error
        longest = {"user": "x" * 32, "password": "p" * 128}
        assert (await hub.request("signup", longest)).ok  # the connection is still served


async def test_a_field_of_the_wrong_type_is_named_in_the_error(node, tmp_path):
    demo = await start_demo(node, tmp_path / "accounts.sqlite3")
    async with open_hub(HOST, demo.hub) as hub:
        await hub.send_raw(cbor2.dumps([1, 99, {"user": 7, "password": "pw"}]))
        answer = await hub.request("signup", {"user": "alice", "password": "pw"})
        assert answer.reply.ok
        [error] = answer.pushes  # what came before the reply: the error reply to session 99
        assert (error.session, error.error) == (
            99,
            "signup request: field 'user': expected str, got int",
        )

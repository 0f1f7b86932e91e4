"""Auth (``.auth``): ``signup`` and ``signin`` from the hub's connections.

A signin that succeeds has the manager attach the connection to the user's agent, then
binds the connection to it, so the connection's ``login`` and ``ping`` reach that agent.
A connection signs in once; a second signin on it is an error reply. It runs next to the
hub; the accounts service and the manager may be on other nodes (``demo_game.main``).

Two error replies a client should expect under load: ``busy`` (every password hashing
thread is taken: try again a little later, the robots back off and retry) and ``too many
failed sign-ins ...`` (the name or the client's address failed too often lately; the
text says when to try again).
"""

from __future__ import annotations

import math
from typing import Any

from demo_game.accounts import AccountError, check_credentials
from demo_game.accounts_service import BUSY, LIMITED, OK
from demo_game.names import ACCOUNTS, AGENT, AUTH, MANAGER, owned
from demo_game.proto import proto
from meshnet.gate import Backend, Client, ClientError, handles


class Auth(Backend):
    """The ``.auth`` backend: signup and signin over the hub."""

    protocol = proto

    async def init(self, accounts: str = ACCOUNTS, manager: str = MANAGER) -> None:
        """``accounts`` and ``manager``: the names to call them by (cluster-wide ones when
        they run on other nodes)."""
        self.accounts = accounts
        self.manager = manager
        self.register(AUTH)

    @handles("signup")
    async def signup(self, client: Client, body: dict[str, Any]) -> dict[str, bool]:
        """Create the account; ``{ok: false}`` if the name is taken."""
        user, password = _credentials(body)
        status = await self.call(owned(self.accounts, user), "signup", user, password)
        if status == BUSY:
            raise ClientError(BUSY)
        return {"ok": status == OK}

    @handles("signin")
    async def signin(self, client: Client, body: dict[str, Any]) -> dict[str, bool]:
        """Check the password, bind the connection to the user's agent; false if wrong."""
        user, password = _credentials(body)
        if client.user is not None:
            raise ClientError(f"already signed in as {client.user}")
        accounts = owned(self.accounts, user)
        status, wait = await self.call(accounts, "verify", user, password, client.address)
        if status == BUSY:
            raise ClientError(BUSY)
        if status == LIMITED:
            raise ClientError(f"too many failed sign-ins: try again in {math.ceil(wait)} s")
        if status != OK:
            return {"ok": False}
        link = client.to_message()
        agent = await self.call(owned(self.manager, user), "attach", user, link)
        if not await self.bind(client, AGENT, agent, user=user):
            await self.send(agent, "detach", link)  # the connection closed meanwhile
        return {"ok": True}


def _credentials(body: dict[str, Any]) -> tuple[str, str]:
    """The body's user and password; an error reply naming the field if malformed."""
    user, password = body["user"], body["password"]
    try:
        check_credentials(user, password)
    except AccountError as exc:
        raise ClientError(str(exc)) from None
    return user, password

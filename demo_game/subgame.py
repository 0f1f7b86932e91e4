"""The subgame: a second game system on a node of its own (seed 001's fishing game next
to the main game), with its own wallet and its own agent per player.

A player enters from the main game (the main agent's ``enter_subgame``, which first has
the main game's wallet move the player's gold here). Entering starts the player's agent
here, which first takes what Redis holds for the player (the commands the main game could
not deliver: seed 001's "the user logs in there"). Leaving moves all the player's gold
here back to the main game and ends the agent.
"""

from __future__ import annotations

import logging
from typing import Any

from demo_game.names import MAIN_SYSTEM
from meshnet import CallError, KeyedQueue, Service, command

logger = logging.getLogger(__name__)


class Subgame(Service):
    """The subgame's door (cluster-wide ``subgame``): one agent per player in it."""

    async def init(self, wallet: str) -> None:
        self.wallet = wallet
        """The subgame wallet's name (a name, not an address: it may be restarted)."""
        self.agents: dict[str, int] = {}
        self._one_at_a_time = KeyedQueue()

    @command
    async def enter(self, user: str) -> int:
        """Start (or find) ``user``'s agent here; return the gold they have here."""
        async with self._one_at_a_time(user):
            agent = self.agents.get(user)
            if agent is not None:
                try:
                    return await self.call(agent, "balance")
                except CallError:  # it crashed: start another
                    del self.agents[user]
            agent = self.agents[user] = await self.newservice(SubgameAgent, user, self.wallet)
            logger.info("%s entered the subgame (agent %s)", user, agent)
            return await self.call(agent, "balance")

    @command
    async def leave(self, user: str) -> dict[str, Any]:
        """Move all of ``user``'s gold here back to the main game and end their agent:
        ``{state, gold}`` (see ``demo_game.wallet.Wallet.move_all``)."""
        async with self._one_at_a_time(user):
            agent = self.agents.pop(user, None)
            if agent is not None:
                try:
                    return await self.call(agent, "leave")
                except CallError as exc:
                    logger.warning("the agent of %s did not leave (%s): moving its gold", user, exc)
            return await self.call(self.wallet, "move_all", user, MAIN_SYSTEM)


class SubgameAgent(Service):
    """A player's stay in the subgame."""

    async def init(self, user: str, wallet: str) -> None:
        self.user = user
        self.wallet = wallet
        try:
            arrived = await self.call(wallet, "drain", user)
        except CallError as exc:  # Redis away: the main game's wallet still redelivers
            logger.warning("could not take %s's deferred gold from Redis: %s", user, exc)
        else:
            if arrived:
                logger.info("%d deferred transfer(s) of gold arrived for %s", arrived, user)

    @command
    async def balance(self) -> int:
        """The gold the player has in the subgame."""
        return await self.call(self.wallet, "balance", self.user)

    @command
    async def leave(self) -> dict[str, Any]:
        """Move all the player's gold back to the main game (``{state, gold}``), then end."""
        moved = await self.call(self.wallet, "move_all", self.user, MAIN_SYSTEM)
        self.response()(moved)
        await self.exit()

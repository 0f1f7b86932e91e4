"""The manager (``.manager``): which agent serves which user.

Auth (after a signin) and the msgserver (after a login) ask it to ``attach`` a link to the
user's agent: it finds the agent, or starts one. An agent that waited in vain for its
user to come back says ``retire`` before it exits.
"""

from __future__ import annotations

import logging
from typing import Any

from demo_game.agent import Agent
from demo_game.names import MANAGER
from meshnet import CallError, KeyedQueue, Service, command

logger = logging.getLogger(__name__)


class Manager(Service):
    """The ``.manager``: finds or starts the agent of a user, one at a time per user."""

    async def init(self, reconnect_window: float, gold: bool = False) -> None:
        self.reconnect_window = reconnect_window
        self.gold = gold
        """The agents serve the gold and the subgame (the demo runs as a cluster)."""
        self.agents: dict[str, int] = {}
        self._one_at_a_time = KeyedQueue()
        self.register(MANAGER)

    @command
    async def attach(self, user: str, client: list[Any], via_msgserver: bool = False) -> int:
        """Attach ``client`` (a link, see ``demo_game.agent``) to ``user``'s agent, starting
        one if the user has none (or only one that is retiring); return the agent.

        One attach at a time per user, so two signins of a new user cannot start two agents."""
        async with self._one_at_a_time(user):
            agent = self.agents.get(user)
            if agent is not None and await self._attached(agent, client, via_msgserver):
                return agent
            agent = await self.newservice(Agent, user, self.reconnect_window, self.gold)
            self.agents[user] = agent
            logger.info("%s has a new agent %s", user, agent)
            await self.call(agent, "attach", client, via_msgserver)
            return agent

    @command
    async def retire(self, user: str, agent: int) -> None:
        """``agent`` is leaving; forget it unless ``user`` already has another one."""
        if self.agents.get(user) == agent:
            del self.agents[user]

    @command
    async def agent_of(self, user: str) -> int | None:
        """The address of ``user``'s agent, or None."""
        return self.agents.get(user)

    async def _attached(self, agent: int, client: list[Any], via_msgserver: bool) -> bool:
        try:
            return await self.call(agent, "attach", client, via_msgserver)
        except CallError:  # it exited without a word: it crashed, or the node is stopping
            return False

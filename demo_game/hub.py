"""The hub: the gate players connect to, over TCP (5678) and WebSocket (5679) by default.

It routes each client message by its rule (``demo_game.proto``): signup and signin to auth,
login and ping to the agent a signin bound the connection to.
"""

from __future__ import annotations

from demo_game.proto import proto
from meshnet.gate import Router


class Hub(Router):
    """The gate players connect to, routing by the demo protocol's rules."""

    protocol = proto

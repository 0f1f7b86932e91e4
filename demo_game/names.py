"""The node-local names of the demo game's services, and the agents' route target."""

ACCOUNTS = ".accounts"
AUTH = ".auth"
MANAGER = ".manager"
LOGIN = ".login"
MSGSERVER = ".msgserver"
AGENT = ".agent"
"""Not a service: the route target of ``login`` and ``ping``, which a signin binds to the
user's agent."""

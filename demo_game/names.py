"""The names of the demo game's services, and the agents' route target.

On one node every service is reached by its node-local name (``.accounts``). In a cluster
(``demo_game.settings``' ``cluster`` section) the services that other nodes call also get
a cluster-wide name (``accounts``, ``manager``), and a caller on another node uses that.
"""

ACCOUNTS = ".accounts"
AUTH = ".auth"
MANAGER = ".manager"
LOGIN = ".login"
MSGSERVER = ".msgserver"
AGENT = ".agent"
"""Not a service: the route target of ``login`` and ``ping``, which a signin binds to the
user's agent."""

CLUSTER_ACCOUNTS = "accounts"
"""The accounts service's cluster-wide name: auth and the login server call it."""
CLUSTER_MANAGER = "manager"
"""The manager's cluster-wide name: auth and the msgserver call it."""

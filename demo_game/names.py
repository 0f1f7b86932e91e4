"""The names of the demo game's services, and the agents' route target.

On one node every service is reached by its node-local name (``.accounts``). In a cluster
(``demo_game.settings``' ``cluster`` section) the services that other nodes call also get
a cluster-wide name (``accounts``, ``manager``), and a caller on another node uses that.
The gold and the subgame exist only in a cluster, so they have cluster-wide names only.

On a node run as ``workers = N`` processes (``meshnet.workers``) every worker runs the
whole game, and each user belongs to one worker, its owner (a hash of the user name): the
owner's manager holds the user's agent, its accounts service counts the name's failed
sign-ins, its login server and msgserver hold the user's login, secret and response
cache. ``owned(name, user)`` is how a service on any worker reaches the owner's.
"""

from meshnet.workers import current_worker

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
CLUSTER_WALLET = "wallet"
"""The main game's wallet (the gold, kept with the accounts): the agents call it."""
CLUSTER_SUBGAME = "subgame"
"""The subgame's door: the agents send their players in and out of the subgame by it."""
CLUSTER_SUBGAME_WALLET = "subgame_wallet"
"""The subgame's wallet: the main game's wallet hands gold to it, and it hands gold back."""

MAIN_SYSTEM = "main"
"""The main game's name as a system of reliable commands (``meshnet.cluster.reliable``)."""
SUBGAME_SYSTEM = "subgame"
"""The subgame's name as a system of reliable commands."""


def owned(name: str, user: str) -> str:
    """The node-local service ``name`` on the worker that owns ``user``: ``name`` itself
    when this node is not a worker or is the owner, else ``<owner node>@<name>``. A
    cluster-wide name (no leading dot) is returned as it is."""
    worker = current_worker()
    if worker is None or not name.startswith("."):
        return name
    owner = worker.owner(user)
    return name if owner == worker.node_name() else f"{owner}@{name}"

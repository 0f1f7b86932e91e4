"""Gates: client connections (TCP and WebSocket), packet framing, and routing to services.

``GateServer`` is skynet's gateserver template; ``Router`` is a gate that routes decoded
client messages by route rule to ``Backend`` services; ``connections(node)`` is the
node-wide registry any service writes to connections through.
"""

from meshnet.gate.backend import Backend, BackendError, ClientError, handles
from meshnet.gate.conf import GateConf, GateConfError
from meshnet.gate.connections import ConnectionRegistry, connections
from meshnet.gate.gateserver import GateError, GateServer
from meshnet.gate.router import Client, Router

__all__ = [
    "Backend",
    "BackendError",
    "Client",
    "ClientError",
    "ConnectionRegistry",
    "GateConf",
    "GateConfError",
    "GateError",
    "GateServer",
    "Router",
    "connections",
    "handles",
]

"""meshnet: a structured-concurrency service mesh for game servers, on trio."""

from meshnet.address import Address
from meshnet.codec import CodecError
from meshnet.context import Responder
from meshnet.errors import (
    Busy,
    CallError,
    CallTimeout,
    MeshnetError,
    NoSuchService,
    ResponseError,
    ServiceExited,
    ServiceImportError,
    ServiceNameError,
    ServiceStartError,
)
from meshnet.multicast import MulticastError
from meshnet.node import Node, open_node
from meshnet.queue import KeyedQueue, Queue
from meshnet.service import Service, command
from meshnet.supervision import RestartPolicy

__all__ = [
    "Address",
    "Busy",
    "CallError",
    "CallTimeout",
    "CodecError",
    "MeshnetError",
    "MulticastError",
    "Node",
    "NoSuchService",
    "KeyedQueue",
    "Queue",
    "Responder",
    "ResponseError",
    "RestartPolicy",
    "Service",
    "ServiceExited",
    "ServiceImportError",
    "ServiceNameError",
    "ServiceStartError",
    "command",
    "open_node",
]

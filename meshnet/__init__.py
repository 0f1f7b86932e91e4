"""meshnet: a structured-concurrency service mesh for game servers, on trio."""

from meshnet.address import Address
from meshnet.codec import CodecError
from meshnet.context import DEFAULT_CALL_TIMEOUT, NODE_DEFAULT, Responder
from meshnet.errors import (
    Busy,
    CallError,
    CallTimeout,
    MeshnetError,
    NodeDown,
    NoSuchService,
    ProtectedServiceError,
    ResponseError,
    ServiceDefinitionError,
    ServiceExited,
    ServiceImportError,
    ServiceNameError,
    ServiceStartError,
    UnknownCommand,
    UnknownKind,
)
from meshnet.multicast import MulticastError
from meshnet.node import Node, open_node
from meshnet.queue import KeyedQueue, Queue
from meshnet.service import Service, command
from meshnet.supervision import RestartPolicy

__all__ = [
    "Address",
    "DEFAULT_CALL_TIMEOUT",
    "NODE_DEFAULT",
    "Busy",
    "CallError",
    "CallTimeout",
    "CodecError",
    "MeshnetError",
    "MulticastError",
    "Node",
    "NodeDown",
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
    "ServiceDefinitionError",
    "ProtectedServiceError",
    "UnknownCommand",
    "UnknownKind",
    "command",
    "open_node",
]

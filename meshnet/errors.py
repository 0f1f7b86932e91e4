"""Exception types shared across meshnet. Every error meshnet raises derives from MeshnetError."""

from __future__ import annotations


class MeshnetError(Exception):
    """Base class of every error meshnet raises on purpose."""


class CallError(MeshnetError):
    """A call did not produce a value: the remote handler raised, or the target could not answer.

    ``remote_type`` and ``remote_message`` describe the exception raised on the other side
    (or the reason meshnet gives, such as ``ServiceExited``); ``target`` is what was called.
    """

    def __init__(self, target: object, remote_type: str, remote_message: str) -> None:
        self.target = target
        self.remote_type = remote_type
        self.remote_message = remote_message
        super().__init__(f"call to {target} failed: {remote_type}: {remote_message}")

    def __reduce__(self):  # keep pickling/copying faithful to the three-field constructor
        return (type(self), (self.target, self.remote_type, self.remote_message))


class NoSuchService(CallError):
    """The address or name does not belong to a live service."""

    def __init__(self, target: object, reason: str = "no live service at this address") -> None:
        super().__init__(target, "NoSuchService", reason)


class ServiceExited(CallError):
    """The service exited, was killed or crashed before it answered."""

    def __init__(self, target: object, reason: str) -> None:
        super().__init__(target, "ServiceExited", reason)


class CallTimeout(CallError):
    """No answer arrived within the call's timeout; a late answer is dropped and counted."""

    def __init__(self, target: object, seconds: float) -> None:
        super().__init__(target, "CallTimeout", f"no answer within {seconds:g}s")


class Busy(CallError):
    """The target's mailbox is full and its policy is to reject rather than make senders wait."""

    def __init__(self, target: object, capacity: int) -> None:
        super().__init__(target, "Busy", f"mailbox full ({capacity} messages)")


class UnknownCommand(CallError):
    """The target has no command of that name, or does not handle that kind of message."""

    def __init__(self, target: object, reason: str) -> None:
        super().__init__(target, "UnknownCommand", reason)


class NodeDown(CallError):
    """The target's node is unknown, known to be down, or its link dropped mid-call."""

    def __init__(self, target: object, reason: str) -> None:
        super().__init__(target, "NodeDown", reason)


class ServiceStartError(CallError):
    """A new service's ``init`` raised; nothing was registered."""

    def __init__(self, target: object, remote_type: str, remote_message: str) -> None:
        super().__init__(target, remote_type, remote_message)
        self.args = (f"service {target} did not start: {remote_type}: {remote_message}",)


class ResponseError(MeshnetError):
    """A deferred responder was misused: answered twice, or taken for a message with no caller."""


class ServiceImportError(MeshnetError):
    """A service given as ``package.module:Class`` could not be imported."""


class ServiceNameError(MeshnetError):
    """A service name is malformed or already taken."""


class ServiceDefinitionError(MeshnetError, TypeError):
    """A service class is declared wrongly (a command that is not ``async def``, ...);
    raised when the class is defined."""


class UnknownKind(MeshnetError, ValueError):
    """``post`` was given a message kind no service can handle."""


class ProtectedServiceError(MeshnetError):
    """The node's own system service cannot be killed or made to exit."""


def first_error(group: BaseExceptionGroup) -> BaseException:
    """The first exception in ``group``, looking inside nested groups (for log lines)."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


UNREACHABLE = (NoSuchService, NodeDown, CallTimeout, Busy, ServiceExited)
"""What a handler's own calls raise when the service they need cannot be reached now
(gone, on a node that is down, too slow or too busy): worth a warning, not a traceback."""


def remote_call_error(target: object, remote_type: str, remote_message: str) -> CallError:
    """The ``CallError`` a caller gets for an error that came from another node: the
    subclass its type names (``NoSuchService``, ``Busy``, ...) when it is one of meshnet's
    own, so callers catch remote failures as they catch local ones."""
    cls = _CALL_ERRORS.get(remote_type, CallError)
    error = cls.__new__(cls)
    CallError.__init__(error, target, remote_type, remote_message)
    return error


_CALL_ERRORS: dict[str, type[CallError]] = {
    cls.__name__: cls
    for cls in (NoSuchService, ServiceExited, CallTimeout, Busy, UnknownCommand, NodeDown)
}

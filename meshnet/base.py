"""What every service class declares, checked when the class is defined: its commands, the
kinds of message it handles, its mailbox and concurrency bounds, its lifecycle hooks.

``meshnet.Service`` (service.py) adds the API a service uses to talk to others; the node
(node.py) needs only what is declared here, which keeps it below ``Service`` in the import
order.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

from meshnet.errors import ServiceDefinitionError
from meshnet.mailbox import Policy
from meshnet.message import KIND_HOOKS

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

LIFECYCLE_HOOKS = ("init", "on_exit")
DEFAULT_MAX_CONCURRENCY = 256


def command(function: F) -> F:
    """Mark an ``async def`` method as a command other services may ``call`` or ``send``.

    A subclass that overrides a command keeps it a command (marked again or not), and its
    override is what runs. Only commands can be reached by a ``call`` or ``send``.
    """
    name = getattr(function, "__name__", repr(function))
    if not inspect.iscoroutinefunction(function):
        raise ServiceDefinitionError(
            f"@command {getattr(function, '__qualname__', name)} must be an 'async def' method"
        )
    if name in LIFECYCLE_HOOKS or name in KIND_HOOKS.values():
        raise ServiceDefinitionError(f"{function.__qualname__} is a hook, not a command")
    function._meshnet_command = True  # type: ignore[attr-defined]
    return function


class BaseService:
    """The declarations of a service class. Subclass ``meshnet.Service``, not this.

    Class attributes: ``mailbox_size`` messages at most wait in the mailbox; when it is
    full, ``mailbox_policy = "wait"`` makes senders wait and ``"reject"`` raises ``Busy``
    in them; a warning is logged past ``mailbox_warning`` queued messages. At most
    ``max_concurrency`` handlers run at once (default 256): past that, messages stay in
    the mailbox, so its size and policy hold even when every handler awaits I/O.
    """

    mailbox_size: ClassVar[int] = 4096
    mailbox_policy: ClassVar[Policy] = "wait"
    mailbox_warning: ClassVar[int] = 1024
    max_concurrency: ClassVar[int] = DEFAULT_MAX_CONCURRENCY
    _commands: ClassVar[dict[str, Callable[..., Awaitable[Any]]]] = {}
    _kind_handlers: ClassVar[dict[str, Callable[..., Awaitable[Any]]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _check_bounds(cls)
        for hook in LIFECYCLE_HOOKS:
            _require_async(cls, hook, "hook")
        marked = {
            name
            for klass in cls.__mro__
            for name, attr in vars(klass).items()
            if getattr(attr, "_meshnet_command", False)
        }
        cls._commands = {name: _require_async(cls, name, "command") for name in sorted(marked)}
        cls._kind_handlers = {
            kind: _require_async(cls, hook, "handler")
            for kind, hook in KIND_HOOKS.items()
            if hasattr(cls, hook)
        }

    async def init(self, *args: Any) -> None:
        """Set the service up; messages are handled once it returns. Raise to refuse to start."""

    async def on_exit(self) -> None:
        """Runs once when the service ends for any reason (exit, kill, shutdown, crash)."""


def _require_async(cls: type, name: str, what: str) -> Callable[..., Awaitable[Any]]:
    function = getattr(cls, name)
    if not inspect.iscoroutinefunction(function):
        raise ServiceDefinitionError(
            f"{cls.__qualname__}.{name} must be an 'async def' method (it is a {what})"
        )
    return function


def _check_bounds(cls: type[BaseService]) -> None:
    for attribute in ("mailbox_size", "mailbox_warning", "max_concurrency"):
        value = getattr(cls, attribute)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ServiceDefinitionError(
                f"{cls.__qualname__}.{attribute} must be a positive integer, not {value!r}"
            )
    if cls.mailbox_policy not in ("wait", "reject"):
        raise ServiceDefinitionError(
            f"{cls.__qualname__}.mailbox_policy must be 'wait' or 'reject', "
            f"not {cls.mailbox_policy!r}"
        )

"""Which service a thread's stack is running, and where: for the CPU sampler, the
slow-handler watchdog and the debug console.

A service's code always runs under one of the runtime's frames: a worker of its
dispatcher, or the dispatcher's ``_start`` and a ``Guest`` for a handler run in another
task (a gate's reactor), ``_run_forked`` (a forked task), ``_lifetime`` (its ``init``) or
``_retire`` (its ``on_exit``). Walking outwards from the innermost frame to the first of
those finds the service and what it is doing, without costing the running code anything.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from types import CodeType, FrameType
from typing import Any, NamedTuple

from meshnet.context import ServiceContext
from meshnet.dispatch import Dispatcher, Guest
from meshnet.stepper import drive

Doing = Callable[[dict[str, Any]], str]
"""What a service does under a runtime frame, as text, from that frame's locals."""


class Running(NamedTuple):
    """What a stack is running: the service (None outside any), what it does, and the
    frames of its own code, outermost first (the trace of where it is)."""

    service: ServiceContext | None
    doing: str
    frames: list[FrameType]


def running(innermost: FrameType | None) -> Running:
    """The service and activity the stack ending in ``innermost`` runs."""
    owners = _OWNERS
    inner: list[FrameType] = []
    frame = innermost
    while frame is not None:
        owner = owners.get(frame.f_code)
        if owner is not None:
            ctx = frame.f_locals.get(owner[0])
            if isinstance(ctx, ServiceContext):
                return Running(ctx, owner[1](frame.f_locals), inner[::-1])
        inner.append(frame)
        frame = frame.f_back
    return Running(None, "", inner[::-1])


def runs_services(function: Callable[..., Any], context: str, doing: Doing) -> None:
    """Count ``function``'s frames among the runtime frames that run services' code:
    ``context`` is the local holding the service's context there, ``doing`` says what the
    service does. (For modules that import this one, as ``meshnet.node`` does.)"""
    _OWNERS[function.__code__] = (context, doing)


def format_frames(frames: list[FrameType]) -> str:
    """``frames`` (outermost first) as a traceback's ``File ..., line ..., in ...`` lines."""
    summary = traceback.StackSummary.extract((f, f.f_lineno) for f in frames)
    return "".join(summary.format()).rstrip("\n")


def coroutine_frames(coro: Any) -> Iterator[FrameType]:
    """The frames of a suspended coroutine and of what it awaits, outermost first; through
    the runtime's stepper too (``drive`` runs a handler without ``yield from``)."""
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            return
        yield frame
        inner = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        if inner is None and frame.f_code is drive.__code__:
            inner = frame.f_locals.get("coro")
        coro = inner


def _handling(local: dict[str, Any]) -> str:
    message = local.get("message")
    return "a message" if message is None else f"message {message.describe()}"


def _guest(local: dict[str, Any]) -> str:
    return _handling({"message": getattr(local.get("self"), "_message", None)})


def _forked(local: dict[str, Any]) -> str:
    function = local.get("function")
    return f"forked task {getattr(function, '__qualname__', function)!s}"


_OWNERS: dict[CodeType, tuple[str, Doing]] = {
    Dispatcher._worker.__code__: ("ctx", _handling),
    Dispatcher._start.__code__: ("ctx", _handling),
    Guest.finish.__code__: ("ctx", _guest),
    ServiceContext._run_forked.__code__: ("self", _forked),
}
"""Code of the runtime frames that run services' code -> (the local holding the service's
context, what the service does there); ``runs_services`` adds to it."""

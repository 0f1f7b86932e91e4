"""The console's ``task ADDR``: a service's pending calls and its tree of tasks, each with
the line it is waiting at (like skynet's ``task`` command, which shows its coroutines)."""

from __future__ import annotations

import os

import trio
from trio.lowlevel import Task

import meshnet
from meshnet.address import format_address
from meshnet.console.tables import table
from meshnet.context import ServiceContext
from meshnet.frames import coroutine_frames


def describe_tasks(ctx: ServiceContext) -> str:
    """Pending calls, calls owed an answer, and the task tree of ``ctx``."""
    parts = []
    if ctx.pending:
        rows = [
            (
                session,
                _target(call.target),
                "none" if call.timeout is None else f"{call.timeout:g}s",
            )
            for session, call in sorted(ctx.pending.items())
        ]
        parts.append("pending calls:\n" + table(["session", "target", "timeout"], rows))
    else:
        parts.append("pending calls: none")
    owed = sorted(message.describe() for message in ctx.open_requests)
    parts.append("owes answers to: " + ("none" if not owed else "\n  " + "\n  ".join(owed)))
    lines = ["tasks:"]
    for task in ctx.nursery.child_tasks:
        _tree(task, 1, lines)
    parts.append("\n".join(lines))
    return "\n".join(parts)


def _tree(task: Task, depth: int, lines: list[str]) -> None:
    lines.append(f"{'  ' * depth}{task.name} {_where(task)}")
    for nursery in task.child_nurseries:
        for child in nursery.child_tasks:
            _tree(child, depth + 1, lines)


def _where(task: Task) -> str:
    """Where the task waits: its innermost frame outside trio and the runtime core (a
    handler awaiting a call shows the handler's line), else outside trio."""
    frames = [f for f in coroutine_frames(task.coro) if not f.f_code.co_filename.startswith(_TRIO)]
    own = [f for f in frames if os.path.dirname(f.f_code.co_filename) != _CORE]
    if not frames:
        return "(running)"
    frame = (own or frames)[-1]
    return f"at {_shown(frame.f_code.co_filename)}:{frame.f_lineno} in {frame.f_code.co_name}"


def _shown(filename: str) -> str:
    """``filename`` relative to the node's working directory when it is inside it."""
    relative = os.path.relpath(filename)
    return filename if relative.startswith("..") else relative


_TRIO = os.path.dirname(trio.__file__)
_CORE = os.path.dirname(meshnet.__file__)


def _target(target: int | str) -> str:
    return target if isinstance(target, str) else format_address(target)

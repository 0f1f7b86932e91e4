"""Running a service's coroutines step by step, so the runtime sees each time they suspend.

A task that an answer resumed holds its service's mailbox until it suspends again (see
mailbox.py); trio gives no hook for "this task is about to suspend", so the runtime runs
handlers and forked functions through ``drive``, which passes every trap up to trio
unchanged, releases the hold first, and runs each step in the coroutine's own
``contextvars.Context`` (a handler's ContextVars are its own, not its worker's).
"""

from __future__ import annotations

import contextvars
import types
from collections.abc import Coroutine, Generator
from typing import Any

from trio.lowlevel import Task

from meshnet.mailbox import Mailbox


@types.coroutine
def drive(
    coro: Coroutine[Any, Any, Any],
    trap: Any,
    context: contextvars.Context,
    mailbox: Mailbox,
    task: Task,
) -> Generator[Any, Any, Any]:
    """Go on running ``coro``, which yielded ``trap`` on its last step, in this ``task``;
    return what it returns. Equivalent to ``yield from`` plus the hold release."""
    try:
        while True:
            if mailbox.held is task:
                mailbox.release()
            try:
                value = yield trap
            except BaseException as exc:
                try:
                    trap = context.run(coro.throw, exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    trap = context.run(coro.send, value)
                except StopIteration as done:
                    return done.value
    finally:
        if mailbox.held is task:
            mailbox.release()

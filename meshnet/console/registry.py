"""The debug console's commands: how they are declared, found and run.

A command is an async function taking the console and its arguments (the words after the
command's name, as ``Words``) and returning its output text; it raises ``CommandError``
(or any ``MeshnetError``) for a precise error line. Declare one with ``console_command``::

    @console_command("greet", "greet NAME", "say hello to NAME")
    async def greet(console: ConsoleServer, words: Words) -> str:
        return f"hello {words.text('NAME')}"

The built-in commands are in ``meshnet.console.builtins``. A package above the core adds
its own the same way, in a module it imports when it starts, as the cluster declares
``cluster`` and ``reload`` (``meshnet.cluster.console``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meshnet.console.args import ArgumentError, Words
from meshnet.errors import MeshnetError

if TYPE_CHECKING:
    from meshnet.console.server import ConsoleServer

logger = logging.getLogger(__name__)

OK = "<CMD OK>"
ERROR = "<CMD Error>"

Run = Callable[["ConsoleServer", Words], Awaitable[str]]


class CommandError(MeshnetError):
    """A console command cannot do what it was asked; the message says why."""


@dataclass(frozen=True)
class ConsoleCommand:
    """One command: its name, how to call it, one line of help, and what it runs."""

    name: str
    usage: str
    help: str
    run: Run


COMMANDS: dict[str, ConsoleCommand] = {}
"""Every declared command, by name."""


def console_command(name: str, usage: str, help: str) -> Callable[[Run], Run]:
    """Declare a console command (see the module docstring); a name taken twice is an error."""

    def declare(run: Run) -> Run:
        if name in COMMANDS:
            raise ValueError(f"console command {name!r} is declared twice")
        COMMANDS[name] = ConsoleCommand(name, usage, help, run)
        return run

    return declare


async def run_line(console: Any, line: str) -> tuple[bool, str]:
    """Run one command line; return whether it succeeded and its output (without the
    ``<CMD OK>``/``<CMD Error>`` line)."""
    words = Words.split(line)
    if not words.name:
        return False, "empty line: type help for the commands"
    command = COMMANDS.get(words.name)
    if command is None:
        return False, f"unknown command {words.name!r}: type help for the commands"
    try:
        return True, await command.run(console, words)
    except ArgumentError as exc:
        return False, f"{command.name}: {exc}\nusage: {command.usage}"
    except MeshnetError as exc:
        return False, f"{command.name}: {exc}"
    except Exception as exc:
        logger.exception("console command %r failed", line)
        return False, f"{command.name} failed: {type(exc).__name__}: {exc}"

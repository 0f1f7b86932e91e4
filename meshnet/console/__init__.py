"""The node's debug console (skynet's ``debug_console``): ``ConsoleServer`` serves it on a
TCP port (a node config's ``console = "127.0.0.1:7000"``), ``meshnet console HOST:PORT``
attaches to it with history and completion, and ``nc`` works too.

Commands are declared in ``meshnet.console.registry`` (the built-in ones in
``meshnet.console.builtins``); packages above the core add theirs the same way.
"""

from meshnet.console.registry import CommandError, console_command
from meshnet.console.server import ConsoleError, ConsoleServer

__all__ = ["CommandError", "ConsoleError", "ConsoleServer", "console_command"]

"""``meshnet console HOST:PORT``: a client for the debug console (``meshnet.console.server``
describes the wire format).

On a terminal it prompts with readline: history kept in ``~/.meshnet_console_history``
(``MESHNET_CONSOLE_HISTORY`` names another file), Tab completes command names and the
addresses and names of the node's services. Otherwise it runs the lines of its standard
input, one command each, and exits 1 if any of them failed. A console with a password
asks for it (or takes ``MESHNET_CONSOLE_PASSWORD``; without a terminal, the first line).
"""

from __future__ import annotations

import getpass
import os
import socket
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from meshnet.console.registry import ERROR, OK
from meshnet.errors import MeshnetError

HISTORY_ENV = "MESHNET_CONSOLE_HISTORY"
PASSWORD_ENV = "MESHNET_CONSOLE_PASSWORD"
HISTORY_LENGTH = 1000
CONNECT_TIMEOUT = 10.0


class ConsoleClientError(MeshnetError):
    """The console cannot be reached, or closed the connection."""


class ConsoleConnection:
    """A connection to a debug console: send a line, read its answer."""

    def __init__(self, host: str, port: int) -> None:
        try:
            self._sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            raise ConsoleClientError(f"cannot connect to {host}:{port}: {exc}") from None
        self._sock.settimeout(None)
        self._file = self._sock.makefile("r", encoding="utf-8", newline="\n")
        self.greeting = self.answer()[1]

    @property
    def wants_password(self) -> bool:
        """True if the greeting asked for a password."""
        return any("password required" in line for line in self.greeting)

    def run(self, line: str) -> tuple[bool, list[str]]:
        """Send one command line; return whether it succeeded and its output lines."""
        try:
            self._sock.sendall(line.encode() + b"\n")
        except OSError as exc:
            raise ConsoleClientError(f"the console closed the connection: {exc}") from None
        return self.answer()

    def answer(self) -> tuple[bool, list[str]]:
        """Read lines up to the next ``<CMD OK>`` or ``<CMD Error>``."""
        lines = []
        for raw in self._file:
            line = raw.rstrip("\n")
            if line in (OK, ERROR):
                return line == OK, lines
            lines.append(line)
        raise ConsoleClientError("the console closed the connection")

    def close(self) -> None:
        """Close the connection."""
        self._file.close()
        self._sock.close()


def run_console(
    host: str, port: int, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout
) -> int:
    """Attach to the console at ``host:port``; return the exit code (see the module docstring)."""
    console = ConsoleConnection(host, port)
    try:
        interactive = stdin.isatty()
        lines = _prompted(console) if interactive else (line.rstrip("\n") for line in stdin)
        _print(stdout, console.greeting)
        if console.wants_password and not _log_in(console, lines, interactive, stdout):
            return 1
        failed = False
        for line in lines:
            if not line.strip():
                continue
            ok, output = console.run(line)
            _print(stdout, output)
            failed = failed or not ok
        return 1 if failed and not interactive else 0
    finally:
        console.close()


def candidates(before_cursor: str, commands: Iterable[str], targets: Iterable[str]) -> list[str]:
    """Completions of the word before the cursor: a command name for the first word, a
    service address or name for the others."""
    words = before_cursor.split(" ")
    choices = commands if len(words) == 1 else targets
    return sorted(choice + " " for choice in set(choices) if choice.startswith(words[-1]))


def history_file() -> Path:
    """Where the interactive history is kept."""
    return Path(os.environ.get(HISTORY_ENV) or Path.home() / ".meshnet_console_history")


def _log_in(
    console: ConsoleConnection, lines: Iterator[str], interactive: bool, stdout: TextIO
) -> bool:
    password = os.environ.get(PASSWORD_ENV)
    if password is None:
        password = getpass.getpass("password: ") if interactive else next(lines, "")
    ok, output = console.run(password)
    _print(stdout, output)
    return ok


def _prompted(console: ConsoleConnection) -> Iterator[str]:
    """Lines typed at a readline prompt, with history and completion, until end of file."""
    import readline

    commands = [line.split(" ", 1)[0] for line in console.run("help")[1][1:]]
    state: dict[str, list[str]] = {"targets": _targets(console), "matches": []}

    def complete(text: str, index: int) -> str | None:
        if index == 0:
            before = readline.get_line_buffer()[: readline.get_endidx()]
            state["matches"] = candidates(before, commands, state["targets"])
        matches = state["matches"]
        return matches[index] if index < len(matches) else None

    readline.set_completer(complete)
    readline.set_completer_delims(" ")
    readline.parse_and_bind("tab: complete")
    history = history_file()
    try:
        readline.read_history_file(history)
    except OSError:
        pass
    readline.set_history_length(HISTORY_LENGTH)
    try:
        while True:
            try:
                line = input("meshnet> ")
            except EOFError:
                print()
                return
            yield line
            if line.split(" ", 1)[0] in ("start", "kill", "exit"):
                state["targets"] = _targets(console)
    finally:
        readline.write_history_file(history)


def _targets(console: ConsoleConnection) -> list[str]:
    """The addresses and names in the console's ``list``."""
    ok, lines = console.run("list")
    found = []
    for line in lines[1:] if ok else []:
        address, _, rest = line.partition(" ")
        names = rest.split(None, 1)[0] if rest.strip().startswith(".") else ""
        found += [address, *filter(None, names.split(","))]
    return found


def _print(stdout: TextIO, lines: list[str]) -> None:
    for line in lines:
        print(line, file=stdout)
    stdout.flush()

"""A console command line, word by word: names, addresses, levels and JSON arguments.

The command and its first arguments are words separated by spaces; the arguments passed
on to services (``call``, ``send``, ``start``) are JSON literals, so ``"text"`` needs its
quotes and ``{"a": [1, 2]}`` may contain spaces. A bad argument raises ``ArgumentError``
naming it and saying why.
"""

from __future__ import annotations

import json
from typing import Any

from meshnet.address import Address, AddressError
from meshnet.errors import MeshnetError

_DECODER = json.JSONDecoder()


class ArgumentError(MeshnetError):
    """A console command's argument is missing or malformed."""


class Words:
    """The rest of a command line, taken one argument at a time."""

    def __init__(self, name: str, rest: str) -> None:
        self.name = name
        """The command."""
        self.rest = rest.strip()

    @classmethod
    def split(cls, line: str) -> Words:
        """The command name and the rest of ``line``."""
        name, _, rest = line.strip().partition(" ")
        return cls(name, rest)

    def text(self, what: str) -> str:
        """The next word (``what`` names it in errors)."""
        word, _, self.rest = self.rest.partition(" ")
        self.rest = self.rest.strip()
        if not word:
            raise ArgumentError(f"missing {what}")
        return word

    def address(self, what: str = "ADDR") -> int | str:
        """The next word as a target: ``:0100000a`` or a name like ``.store``."""
        word = self.text(what)
        if word.startswith(":"):
            try:
                return Address.parse(word)
            except AddressError as exc:
                raise ArgumentError(f"{what}: {exc}") from None
        if word.startswith("."):
            return word
        raise ArgumentError(
            f"{what} {word!r} is neither an address like ':0100000a' nor a name like '.store'"
        )

    def json_values(self) -> list[Any]:
        """The rest of the line as JSON literals."""
        values: list[Any] = []
        text = self.rest
        position = 0
        while position < len(text):
            if text[position].isspace():
                position += 1
                continue
            try:
                value, position = _DECODER.raw_decode(text, position)
            except json.JSONDecodeError as exc:
                word = text[position:].split(None, 1)[0]
                raise ArgumentError(
                    f"argument {len(values) + 1} ({word}) is not a JSON literal: {exc.msg}; "
                    f'strings need double quotes, as in "{word.strip(chr(34))}"'
                ) from None
            values.append(value)
        self.rest = ""
        return values

    def done(self) -> None:
        """Raise if words are left over."""
        if self.rest:
            raise ArgumentError(f"unexpected {self.rest!r} at the end")

"""A reliable command: what one game system owes another for one user, and its two forms.

Between nodes it travels as a map (CBOR, like every message); in the sender's outbox and
in Redis it is stored as JSON text with sorted keys::

    {"args": {"gold": 100}, "id": "5f0c...", "kind": "gold", "receiver": "subgame",
     "sender": "main", "uid": "alice"}

``id`` (32 hex digits, random) names the command everywhere: the receiver applies a
given id once. ``sender`` and ``receiver`` are system names (1 to 32 letters, digits or
``-``, so that the Redis key ``<receiver>_<uid>`` reads one way only); ``uid`` is the
user; ``kind`` and ``args`` are the game's (``args``: a JSON object, at most 16 KiB).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshnet.errors import MeshnetError

SYSTEM_NAME = re.compile(r"[A-Za-z0-9-]{1,32}")
COMMAND_ID = re.compile(r"[0-9a-f]{32}")
MAX_TEXT = 256
"""Characters at most in ``uid`` and ``kind``."""
MAX_ARGS = 16 * 1024
"""Bytes at most of ``args`` as JSON."""
FIELDS = ("id", "sender", "receiver", "uid", "kind", "args")


class CommandError(MeshnetError):
    """A command (or a part of one) is malformed; the message names the field."""


@dataclass(frozen=True)
class Command:
    """One command: ``id`` is applied once by the ``receiver`` system, whoever brings it."""

    id: str
    sender: str
    receiver: str
    uid: str
    kind: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not COMMAND_ID.fullmatch(self.id):
            raise CommandError(f"id: 32 lowercase hex digits, not {self.id!r}")
        check_system("sender", self.sender)
        check_system("receiver", self.receiver)
        check_text("uid", self.uid)
        check_text("kind", self.kind)
        if not isinstance(self.args, Mapping):
            raise CommandError(f"args: a map, not {type(self.args).__name__}")
        try:
            text = json.dumps(dict(self.args), allow_nan=False)
            faithful = json.loads(text) == self.args
        except (TypeError, ValueError) as exc:
            faithful, text = False, str(exc)
        if not faithful:
            raise CommandError(
                "args: must be JSON: maps with string keys, lists, strings, numbers, "
                f"true, false, null ({text[:80]})"
            )
        size = len(text.encode())
        if size > MAX_ARGS:
            raise CommandError(f"args: {size} bytes as JSON, at most {MAX_ARGS}")

    @classmethod
    def new(
        cls, sender: str, receiver: str, uid: str, kind: str, args: Mapping[str, Any]
    ) -> Command:
        """A command with a fresh random id."""
        return cls(uuid.uuid4().hex, sender, receiver, uid, kind, dict(args))

    def to_message(self) -> dict[str, Any]:
        """The map sent between nodes."""
        message = {name: getattr(self, name) for name in FIELDS}
        message["args"] = dict(self.args)
        return message

    @classmethod
    def from_message(cls, raw: object) -> Command:
        """The command a map (from ``to_message``) describes; ``CommandError`` if it is
        malformed."""
        if not isinstance(raw, Mapping):
            raise CommandError(f"a command is a map, not {type(raw).__name__}")
        missing = [name for name in FIELDS if name not in raw]
        extra = sorted(str(name) for name in raw if name not in FIELDS)
        if missing or extra:
            raise CommandError(
                f"a command has exactly the fields {', '.join(FIELDS)}"
                + (f"; missing: {', '.join(missing)}" if missing else "")
                + (f"; unknown: {', '.join(extra)}" if extra else "")
            )
        return cls(**{name: raw[name] for name in FIELDS})

    def encode(self) -> str:
        """The stored form: JSON text."""
        return json.dumps(self.to_message(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> Command:
        """The command stored as ``text``; ``CommandError`` if it is not one."""
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise CommandError(f"not JSON: {exc}") from None
        return cls.from_message(raw)


def check_system(what: str, name: object) -> str:
    """``name`` if it is a valid system name, else ``CommandError`` naming ``what``."""
    if not isinstance(name, str) or not SYSTEM_NAME.fullmatch(name):
        raise CommandError(f"{what}: 1 to 32 letters, digits or '-', not {name!r}")
    return name


def check_text(what: str, value: object) -> str:
    """``value`` if it is a string of 1 to ``MAX_TEXT`` characters, else ``CommandError``
    naming ``what``."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_TEXT:
        raise CommandError(f"{what}: a string of 1 to {MAX_TEXT} characters, not {value!r}")
    return value

"""Errors of the proto library. All derive from ProtoError."""

from meshnet.errors import MeshnetError

Path = tuple[str | int, ...]
"""Where a value sits inside a body: field names and list indexes, outermost first."""


class ProtoError(MeshnetError):
    """A declaration, packet or body the proto library refuses.

    `msg_id` and `session` are set when the packet got far enough to reveal them, so a gate
    can answer the client with an error reply instead of dropping the connection.
    """

    def __init__(self, text: str, *, msg_id: int | None = None, session: int | None = None) -> None:
        super().__init__(text)
        self.msg_id = msg_id
        self.session = session


class ProtoDeclarationError(ProtoError):
    """A protocol declaration is invalid: duplicate id or name, unsupported type, bad rule."""


class MalformedPacket(ProtoError):
    """A packet is not valid CBOR, or not shaped like a request or reply."""


class UnknownMessage(ProtoError):
    """A message id or name that the protocol does not declare."""


class InvalidBody(ProtoError):
    """A body does not match its declared fields. `context` says whose body it is."""

    def __init__(self, context: str, path: Path, detail: str) -> None:
        super().__init__(f"{context}: {detail}")
        self.context = context
        self.path = path


class FieldTypeError(InvalidBody):
    """A value has the wrong type. `path` is empty when the body itself is not a map."""

    def __init__(self, context: str, path: Path, expected: str, got: str) -> None:
        where = f"field '{format_path(path)}'" if path else "body"
        super().__init__(context, path, f"{where}: expected {expected}, got {got}")
        self.expected = expected
        self.got = got


class MissingField(InvalidBody):
    """A required field is absent. `path` ends with the missing field's name."""

    def __init__(self, context: str, path: Path) -> None:
        super().__init__(context, path, f"missing required field '{format_path(path)}'")


class UnknownField(InvalidBody):
    """A map holds a key its type does not declare. `path` leads to that map."""

    def __init__(self, context: str, path: Path, key: object, known: tuple[str, ...]) -> None:
        where = f"field '{format_path(path)}'" if path else "body"
        declared = ", ".join(known) or "none"
        detail = f"unknown field {_brief(key)} in {where} (declared: {declared})"
        super().__init__(context, path, detail)
        self.key = key


def format_path(path: Path) -> str:
    """("items", 2, "id") -> "items[2].id"."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else f".{step}" if text else step
    return text


def _brief(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."

"""The proto library: client messages, their route rules, and their CBOR wire form.

    proto = Protocol("demo")
    Item = proto.struct("Item", {"id": int, "count": int})
    proto.message(1, "signin", {"user": str, "password": str},
                  target="auth", rule="pass", reply={"ok": bool})
    proto.message(2, "bag", {"items": list[Item], "note": str | None},
                  target="agent", rule="auth")
    proto.message(100, "welcome", {"motd": str})        # no rule: the gate refuses it

Wire form (each a CBOR array, one framed packet):
    request  [msg_id, session, body]         session 0 = no reply wanted
    reply    [msg_id, session, ok, body_or_error]
    push     [msg_id, 0, true, body]
Bodies are maps of field name -> value. Decoding validates every packet against the
declarations; encoding validates too while the protocol is `strict`.
"""

import importlib
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import cbor2

from meshnet.framing import MAX_PAYLOAD
from meshnet.gate.proto_errors import (
    FieldTypeError,
    InvalidBody,
    MalformedPacket,
    MissingField,
    ProtoDeclarationError,
    ProtoError,
    UnknownField,
    UnknownMessage,
)
from meshnet.gate.proto_types import Field, Mismatch, Struct, kind_of, parse_fields

__all__ = [
    "MAX_MSG_ID",
    "MAX_NESTING",
    "MAX_SESSION",
    "Field",
    "FieldTypeError",
    "InvalidBody",
    "MalformedPacket",
    "Message",
    "MissingField",
    "Protocol",
    "ProtoDeclarationError",
    "ProtoError",
    "Reply",
    "Request",
    "Rule",
    "Struct",
    "UnknownField",
    "UnknownMessage",
    "dump_module",
]

MAX_MSG_ID = 0xFFFF
MAX_SESSION = 0xFFFF_FFFF
MAX_NESTING = 32
"""How deeply maps and lists may nest inside a body (the body itself counts as one)."""


class Rule(StrEnum):
    """How the gate routes a client message (cellmesh's RouteRule). No rule means blocked."""

    PASS = "pass"
    """Always routed to the target service."""
    AUTH = "auth"
    """Routed only once a backend has bound the connection to a service for its user."""


@dataclass(frozen=True, eq=False, repr=False, slots=True)
class Message:
    """A declared message. `body` holds its fields; `reply` the reply body's, if declared."""

    id: int
    name: str
    body: Struct
    target: str | None
    rule: Rule | None
    reply: Struct | None

    def __repr__(self) -> str:
        route = "blocked" if self.rule is None else f"{self.rule.value} -> {self.target}"
        return f"<Message {self.id} {self.name!r}, {route}>"

    def describe(self) -> dict[str, Any]:
        """This message as it appears in the JSON table."""
        return {
            "id": self.id,
            "name": self.name,
            "target": self.target,
            "rule": None if self.rule is None else self.rule.value,
            "fields": self.body.describe_fields(),
            "reply": None if self.reply is None else self.reply.describe_fields(),
        }


@dataclass(frozen=True, slots=True)
class Request:
    """A decoded, validated client packet."""

    message: Message
    session: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Reply:
    """A decoded server packet: a reply, an error reply (not `ok`), or a push (session 0).

    `body` is set when `ok`, `error` otherwise. `message` is None only for an error reply
    to a packet the server could not attribute to a declared message (an unknown id or an
    undecodable packet, answered before the server closes the connection).
    """

    message: Message | None
    session: int
    ok: bool
    body: Any
    error: str | None


class Protocol:
    """A registry of client messages and the structs their fields use.

    With `strict` (the default) every encode validates the body, so a server never sends a
    client something the protocol does not describe; decoding always validates.
    """

    def __init__(self, name: str, *, strict: bool = True) -> None:
        self.name = name
        self.strict = strict
        self._structs: dict[str, Struct] = {}
        self._by_id: dict[int, Message] = {}
        self._by_name: dict[str, Message] = {}

    def __repr__(self) -> str:
        return f"<Protocol {self.name!r}: {len(self._by_id)} messages>"

    # -- declaration --------------------------------------------------------------------

    def struct(self, name: str, fields: Mapping[str, Any]) -> Struct:
        """Declare a struct: a map type usable as a field type of later declarations."""
        if not isinstance(name, str) or not name:
            raise ProtoDeclarationError(f"a struct name must be a non-empty str: {name!r}")
        if name in _RESERVED_TYPE_NAMES or name in self._structs:
            raise ProtoDeclarationError(f"struct name {name!r} is already taken")
        struct = self._struct(f"struct {name!r}", name, fields)
        self._structs[name] = struct
        return struct

    def message(
        self,
        msg_id: int,
        name: str,
        fields: Mapping[str, Any] | None = None,
        *,
        target: str | None = None,
        rule: Rule | str | None = None,
        reply: Mapping[str, Any] | None = None,
    ) -> Message:
        """Declare a message. `rule` None blocks it from clients (e.g. a push-only message)."""
        if type(msg_id) is not int or not 0 <= msg_id <= MAX_MSG_ID:
            raise ProtoDeclarationError(f"message id must be an int in 0..{MAX_MSG_ID}: {msg_id!r}")
        if not isinstance(name, str) or not name:
            raise ProtoDeclarationError(f"message {msg_id}: name must be a non-empty str: {name!r}")
        if msg_id in self._by_id:
            raise ProtoDeclarationError(
                f"message id {msg_id} is declared twice: {self._by_id[msg_id].name!r} and {name!r}"
            )
        if name in self._by_name:
            raise ProtoDeclarationError(
                f"message name {name!r} is declared twice: "
                f"ids {self._by_name[name].id} and {msg_id}"
            )
        owner = f"message {name!r}"
        body = self._struct(owner, None, fields)
        reply_body = None if reply is None else self._struct(f"{owner} reply", None, reply)
        message = Message(msg_id, name, body, target, _parse_rule(owner, rule, target), reply_body)
        self._by_id[msg_id] = message
        self._by_name[name] = message
        return message

    # -- lookup and export --------------------------------------------------------------

    def __getitem__(self, key: Message | int | str) -> Message:
        """The message with this id or name (or this very Message, if declared here)."""
        if isinstance(key, Message):
            found = self._by_id.get(key.id)
            if found is not key:
                raise UnknownMessage(f"message {key.name!r} is not declared on {self.name!r}")
            return found
        found = self._by_name.get(key) if isinstance(key, str) else self._by_id.get(key)
        if found is None:
            raise UnknownMessage(f"protocol {self.name!r} declares no message {key!r}")
        return found

    def __iter__(self) -> Iterator[Message]:
        """The messages, in declaration order."""
        return iter(self._by_id.values())

    def table(self) -> dict[str, Any]:
        """A JSON-serialisable description of every struct and message, for other clients."""
        return {
            "protocol": self.name,
            "structs": [
                {"name": name, "fields": struct.describe_fields()}
                for name, struct in self._structs.items()
            ],
            "messages": [message.describe() for message in self._by_id.values()],
        }

    # -- wire form ----------------------------------------------------------------------

    def encode_request(
        self,
        message: Message | int | str,
        body: Mapping[str, Any] | None = None,
        *,
        session: int = 0,
    ) -> bytes:
        """A client packet. `body` None means an empty body; `session` 0 wants no reply."""
        message = self[message]
        body = {} if body is None else body
        _require_uint("session", session, MAX_SESSION, ProtoError)
        context = f"{message.name} request"
        if self.strict:
            _validate(message.body, body, context)
        return _encode([message.id, session, body], context)

    def decode_request(self, packet: bytes) -> Request:
        """Decode and validate a client packet.

        Raises MalformedPacket, UnknownMessage or an InvalidBody subclass; the last two
        carry `msg_id` and `session` so the gate can answer with an error reply.
        """
        msg_id, session, body = _decode(packet, "request", _REQUEST_SHAPE)
        message = self._received(msg_id, session)
        _validate(message.body, body, f"{message.name} request", msg_id, session)
        return Request(message, session, body)

    def encode_reply(self, message: Message | int | str, session: int, body: Any = None) -> bytes:
        """A successful reply to request `session`; checked against the reply fields if declared."""
        message = self[message]
        _require_uint("session", session, MAX_SESSION, ProtoError)
        if session == 0:
            raise ProtoError(
                f"{message.name} reply: session 0 asked for no reply; send a push instead"
            )
        context = f"{message.name} reply"
        if self.strict and message.reply is not None:
            _validate(message.reply, body, context)
        return _encode([message.id, session, True, body], context)

    def encode_error(self, msg_id: int, session: int, error: str) -> bytes:
        """An error reply. `msg_id` need not be declared (a gate answers unknown ids too);
        session 0 makes it a notice for a packet that asked for no reply."""
        _require_uint("msg_id", msg_id, MAX_MSG_ID, ProtoError)
        _require_uint("session", session, MAX_SESSION, ProtoError)
        if not isinstance(error, str):
            raise ProtoError(f"an error reply carries a str, got {kind_of(error)}")
        return _encode([msg_id, session, False, error], f"error reply to message {msg_id}")

    def encode_push(
        self, message: Message | int | str, body: Mapping[str, Any] | None = None
    ) -> bytes:
        """A server push: the message's own fields, sent with session 0."""
        message = self[message]
        body = {} if body is None else body
        context = f"{message.name} push"
        if self.strict:
            _validate(message.body, body, context)
        return _encode([message.id, 0, True, body], context)

    def decode_reply(self, packet: bytes) -> Reply:
        """Decode and validate a server packet (reply, error reply or push), client side."""
        msg_id, session, ok, value = _decode(packet, "reply", _REPLY_SHAPE)
        if type(ok) is not bool:
            raise MalformedPacket(f"malformed reply: ok must be a bool, got {kind_of(ok)}")
        if not ok:
            if not isinstance(value, str):
                raise MalformedPacket(
                    f"malformed reply: an error must be a str, got {kind_of(value)}",
                    msg_id=msg_id,
                    session=session,
                )
            return Reply(self._by_id.get(msg_id), session, False, None, value)
        message = self._received(msg_id, session)
        if session == 0:
            _validate(message.body, value, f"{message.name} push", msg_id, session)
        elif message.reply is not None:
            _validate(message.reply, value, f"{message.name} reply", msg_id, session)
        return Reply(message, session, True, value, None)

    # -- helpers ------------------------------------------------------------------------

    def _struct(self, owner: str, name: str | None, fields: Mapping[str, Any] | None) -> Struct:
        """A struct, body or reply declared by ``owner``, on the structs declared so far."""
        struct = Struct(name, parse_fields(owner, fields, self._structs.values()))
        if struct.depth > MAX_NESTING:
            raise ProtoDeclarationError(
                f"{owner}: fields nest {struct.depth} levels deep; the wire allows {MAX_NESTING}"
            )
        return struct

    def _received(self, msg_id: int, session: int) -> Message:
        message = self._by_id.get(msg_id)
        if message is None:
            raise UnknownMessage(
                f"unknown message id {msg_id} (protocol {self.name!r})",
                msg_id=msg_id,
                session=session,
            )
        return message


def dump_module(module_path: str) -> str:
    """The JSON table of the Protocol defined in a module.

    `module_path` is `package.module`, or `package.module:NAME` when the module defines
    several protocols.
    """
    module_name, _, attribute = module_path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ProtoError(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from exc
    if attribute:
        protocol = getattr(module, attribute, None)
        if not isinstance(protocol, Protocol):
            raise ProtoError(f"{module_name}:{attribute} is not a Protocol")
    else:
        names: dict[int, str] = {}
        for name, value in vars(module).items():
            if isinstance(value, Protocol):
                names.setdefault(id(value), name)
        if not names:
            raise ProtoError(f"module {module_name!r} defines no Protocol")
        if len(names) > 1:
            raise ProtoError(
                f"module {module_name!r} defines {len(names)} protocols "
                f"({', '.join(names.values())}); pick one with {module_name}:NAME"
            )
        protocol = getattr(module, next(iter(names.values())))
    return json.dumps(protocol.table(), indent=2)


_RESERVED_TYPE_NAMES = frozenset({"str", "int", "float", "bool", "bytes", "list", "map"})
_REQUEST_SHAPE = ("msg_id", "session", "body")
_REPLY_SHAPE = ("msg_id", "session", "ok", "body_or_error")


def _parse_rule(owner: str, rule: Rule | str | None, target: str | None) -> Rule | None:
    if target is not None and (not isinstance(target, str) or not target):
        raise ProtoDeclarationError(f"{owner}: target must be a service name: {target!r}")
    if rule is None:
        return None
    try:
        parsed = Rule(rule)
    except ValueError:
        raise ProtoDeclarationError(
            f"{owner}: rule must be None (blocked), 'pass' or 'auth', got {rule!r}"
        ) from None
    if target is None:
        raise ProtoDeclarationError(f"{owner}: rule {parsed.value!r} needs a target service")
    return parsed


def _validate(
    struct: Struct,
    value: Any,
    context: str,
    msg_id: int | None = None,
    session: int | None = None,
) -> None:
    try:
        struct.check(value)
    except Mismatch as mismatch:
        error = mismatch.to_error(context)
        error.msg_id, error.session = msg_id, session
        raise error from None


def _require_uint(name: str, value: Any, maximum: int, error: type[ProtoError]) -> None:
    if type(value) is not int or not 0 <= value <= maximum:
        got = repr(value) if isinstance(value, int) and value.bit_length() <= 64 else kind_of(value)
        raise error(f"{name} must be an int in 0..{maximum}, got {got}")


def _encode(packet: list[Any], context: str) -> bytes:
    """Encode a packet, refusing what ``_decode`` would refuse as longer than one packet."""
    try:
        data = cbor2.dumps(packet)
    except (cbor2.CBOREncodeError, RecursionError) as exc:
        raise ProtoError(f"{context}: cannot encode as CBOR: {exc}") from exc
    if len(data) > MAX_PAYLOAD:
        raise ProtoError(f"{context}: {len(data)} bytes is more than one packet ({MAX_PAYLOAD})")
    return data


def _decode(packet: bytes, kind: str, shape: tuple[str, ...]) -> list[Any]:
    """Decode a packet into its top-level array, checking msg_id and session."""
    if len(packet) > MAX_PAYLOAD:
        raise MalformedPacket(
            f"malformed {kind}: {len(packet)} bytes is more than one packet ({MAX_PAYLOAD})"
        )
    try:
        value = _loads(packet)
    except Exception as exc:  # cbor2 raises several types; none may escape as theirs
        raise MalformedPacket(f"malformed {kind}: invalid CBOR: {exc}") from exc
    if type(value) is not list or len(value) != len(shape):
        got = f"a list of {len(value)}" if type(value) is list else kind_of(value)
        raise MalformedPacket(f"malformed {kind}: expected [{', '.join(shape)}], got {got}")
    _require_uint(f"malformed {kind}: msg_id", value[0], MAX_MSG_ID, MalformedPacket)
    _require_uint(f"malformed {kind}: session", value[1], MAX_SESSION, MalformedPacket)
    return value


def _loads(packet: bytes) -> Any:
    stream = io.BytesIO(packet)
    value = cbor2.CBORDecoder(
        stream,
        tag_hook=_reject_tag,
        semantic_decoders=_NO_SEMANTIC_TAGS,
        max_depth=MAX_NESTING + 1,  # the packet's own array, then the body
        allow_duplicate_keys=False,
        strict_hashable_types=True,
    ).decode()
    # On a seekable stream the decoder leaves the position just after the item it read.
    if stream.tell() != len(packet):
        raise ValueError(f"{len(packet) - stream.tell()} trailing bytes after the CBOR item")
    return value


def _reject_tag(tag: Any, immutable: bool) -> Any:
    """Tags decode to dates, sets, shared references (even cycles): none is a field type."""
    raise ValueError("CBOR tags are not part of the wire form")


# cbor2's built-in semantic tags; any other tag reaches `_reject_tag` through tag_hook.
_NO_SEMANTIC_TAGS = dict.fromkeys(
    (0, 1, 2, 3, 4, 5, 25, 28, 29, 30, 35, 36, 37, 52, 54, 100, 256, 258, 260, 261, 1004, 55799),
    _reject_tag,
)

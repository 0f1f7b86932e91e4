"""The proto library: declarations, wire form, validation, table export."""

import json
from typing import Optional

import cbor2
import pytest
from gate_example_proto import proto as example
from gate_proto_strategies import bodies, corrupted
from hypothesis import assume, given
from hypothesis import strategies as st

from meshnet.errors import MeshnetError
from meshnet.gate.proto import (
    MAX_NESTING,
    FieldTypeError,
    InvalidBody,
    MalformedPacket,
    MissingField,
    Protocol,
    ProtoDeclarationError,
    ProtoError,
    Rule,
    UnknownField,
    UnknownMessage,
    dump_module,
)

# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def proto():
    proto = Protocol("test")
    item = proto.struct("Item", {"id": int, "tags": list[str]})
    proto.message(
        1, "signin", {"user": str, "password": str}, target="auth", rule="pass", reply={"ok": bool}
    )
    proto.message(2, "bag", {"items": list[item], "note": str | None}, target="agent", rule="auth")
    proto.message(
        3, "flags", {"on": bool, "level": int, "ratio": float}, target="agent", rule="pass"
    )
    proto.message(100, "welcome", {"motd": str})
    return proto


def packet(*items):
    return cbor2.dumps(list(items))


def declared_with(message_fields):
    proto = Protocol("one")
    proto.message(1, "m", message_fields, target="svc", rule="pass")
    return proto


# -- declaration --------------------------------------------------------------------------


def test_proto_errors_are_meshnet_errors():
    assert issubclass(ProtoError, MeshnetError)
    for error in (ProtoDeclarationError, MalformedPacket, UnknownMessage, InvalidBody):
        assert issubclass(error, ProtoError)
    for error in (FieldTypeError, MissingField, UnknownField):
        assert issubclass(error, InvalidBody)


def test_duplicate_message_id_is_rejected(proto):
    with pytest.raises(ProtoDeclarationError, match="id 1 is declared twice: 'signin' and 'other'"):
        proto.message(1, "other")


def test_duplicate_message_name_is_rejected(proto):
    with pytest.raises(ProtoDeclarationError, match="name 'signin' is declared twice"):
        proto.message(50, "signin")


def test_duplicate_struct_name_is_rejected(proto):
    with pytest.raises(ProtoDeclarationError, match="'Item' is already taken"):
        proto.struct("Item", {})


def test_struct_named_like_a_builtin_type_is_rejected(proto):
    with pytest.raises(ProtoDeclarationError, match="'int' is already taken"):
        proto.struct("int", {})


@pytest.mark.parametrize("msg_id", [-1, 65536, True, "1"])
def test_message_id_outside_uint16_is_rejected(proto, msg_id):
    with pytest.raises(ProtoDeclarationError, match="message id must be an int in 0..65535"):
        proto.message(msg_id, "x")


def test_unknown_rule_is_rejected(proto):
    with pytest.raises(ProtoDeclarationError, match="rule must be None .* got 'open'"):
        proto.message(50, "x", target="svc", rule="open")


def test_rule_without_target_is_rejected(proto):
    with pytest.raises(ProtoDeclarationError, match="rule 'auth' needs a target service"):
        proto.message(50, "x", rule="auth")


def test_rule_strings_become_rule_members(proto):
    assert proto["signin"].rule is Rule.PASS
    assert proto["bag"].rule is Rule.AUTH


def test_message_without_rule_is_blocked(proto):
    assert proto["welcome"].rule is None


@pytest.mark.parametrize(
    ("spec", "shown"),
    [(dict, "dict"), ("str", "'str'"), (list, "list"), (list[int | None], "int | None")],
)
def test_unsupported_field_type_is_rejected_naming_the_field(proto, spec, shown):
    with pytest.raises(ProtoDeclarationError, match=f"field 'x': unsupported type {shown}"):
        proto.message(50, "m", {"x": spec})


def test_union_of_two_types_is_rejected(proto):
    with pytest.raises(ProtoDeclarationError, match="unsupported type"):
        proto.message(50, "m", {"x": int | str})


def test_struct_of_another_protocol_is_rejected(proto):
    foreign = Protocol("other").struct("Thing", {})
    with pytest.raises(ProtoDeclarationError, match="'Thing' is not declared on this protocol"):
        proto.message(50, "m", {"thing": foreign})


def test_nesting_deeper_than_the_wire_allows_is_rejected(proto):
    deep = int
    for _ in range(MAX_NESTING):
        deep = list[deep]
    with pytest.raises(ProtoDeclarationError, match=f"nest {MAX_NESTING + 1} levels deep"):
        proto.message(50, "m", {"deep": deep})


def test_none_on_either_side_of_a_struct_declares_an_optional_field(proto):
    item = proto.struct("Thing", {})
    message = proto.message(50, "m", {"a": item | None, "b": None | item})
    assert [field.optional for field in message.body.fields.values()] == [True, True]


def test_typing_optional_declares_an_optional_field(proto):
    message = proto.message(50, "m", {"a": Optional[int]})  # noqa: UP045
    assert message.body.fields["a"].optional


# -- lookup -------------------------------------------------------------------------------


def test_messages_are_found_by_id_name_or_object(proto):
    signin = proto["signin"]
    assert proto[1] is signin
    assert proto[signin] is signin


def test_unknown_message_name_raises_unknown_message(proto):
    with pytest.raises(UnknownMessage, match="declares no message 'signout'"):
        proto.encode_request("signout")


def test_message_of_another_protocol_is_refused(proto):
    other = Protocol("other")
    stranger = other.message(1, "signin")
    with pytest.raises(UnknownMessage, match="not declared on 'test'"):
        proto.encode_request(stranger)


def test_iteration_yields_messages_in_declaration_order(proto):
    assert [message.name for message in proto] == ["signin", "bag", "flags", "welcome"]


# -- requests -----------------------------------------------------------------------------


def test_request_wire_form_is_msg_id_session_body(proto):
    encoded = proto.encode_request("signin", {"user": "ann", "password": "pw"}, session=7)
    assert cbor2.loads(encoded) == [1, 7, {"user": "ann", "password": "pw"}]


def test_request_round_trips(proto):
    body = {"items": [{"id": 1, "tags": ["a"]}], "note": "hi"}
    request = proto.decode_request(proto.encode_request("bag", body, session=3))
    assert (request.message, request.session, request.body) == (proto["bag"], 3, body)


def test_request_session_defaults_to_zero_and_body_to_empty(proto):
    other = Protocol("p")
    other.message(5, "ping", target="agent", rule="auth")
    assert cbor2.loads(other.encode_request("ping")) == [5, 0, {}]


def test_wrong_field_type_names_the_field_expected_and_got(proto):
    with pytest.raises(FieldTypeError) as info:
        proto.decode_request(packet(1, 1, {"user": 5, "password": "pw"}))
    assert "signin request: field 'user': expected str, got int" == str(info.value)
    assert (info.value.path, info.value.expected, info.value.got) == (("user",), "str", "int")


def test_bool_field_rejects_integer_one(proto):
    with pytest.raises(FieldTypeError, match="field 'on': expected bool, got int"):
        proto.decode_request(packet(3, 0, {"on": 1, "level": 1, "ratio": 1.0}))


def test_int_field_rejects_true(proto):
    with pytest.raises(FieldTypeError, match="field 'level': expected int, got bool"):
        proto.decode_request(packet(3, 0, {"on": True, "level": True, "ratio": 1.0}))


def test_int_field_rejects_values_outside_64_bits(proto):
    with pytest.raises(FieldTypeError, match="expected int, got int outside the signed 64-bit"):
        proto.encode_request("flags", {"on": True, "level": 2**63, "ratio": 1.0})


def test_float_field_accepts_an_integer(proto):
    body = {"on": False, "level": -3, "ratio": 2}
    assert proto.decode_request(proto.encode_request("flags", body)).body == body


def test_missing_required_field_is_reported(proto):
    with pytest.raises(MissingField, match="missing required field 'password'") as info:
        proto.decode_request(packet(1, 0, {"user": "ann"}))
    assert info.value.path == ("password",)


@pytest.mark.parametrize("body", [{"items": []}, {"items": [], "note": None}])
def test_optional_field_may_be_absent_or_null(proto, body):
    assert proto.decode_request(packet(2, 0, body)).body == body


def test_unknown_field_is_reported_with_the_declared_fields(proto):
    with pytest.raises(UnknownField) as info:
        proto.decode_request(packet(1, 0, {"user": "a", "password": "b", "pasword": "b"}))
    assert str(info.value) == (
        "signin request: unknown field 'pasword' in body (declared: user, password)"
    )
    assert info.value.key == "pasword"


def test_nested_error_path_names_list_indexes_and_struct_fields(proto):
    body = {"items": [{"id": 1, "tags": []}, {"id": 2, "tags": ["ok", 3]}]}
    with pytest.raises(FieldTypeError, match=r"field 'items\[1\].tags\[1\]': expected str") as info:
        proto.decode_request(packet(2, 0, body))
    assert info.value.path == ("items", 1, "tags", 1)


def test_nested_missing_field_names_its_path(proto):
    with pytest.raises(MissingField, match=r"missing required field 'items\[0\].tags'"):
        proto.decode_request(packet(2, 0, {"items": [{"id": 1}]}))


def test_unknown_field_in_a_nested_struct_names_the_struct(proto):
    body = {"items": [{"id": 1, "tags": [], "x": 0}]}
    with pytest.raises(UnknownField, match=r"unknown field 'x' in field 'items\[0\]'"):
        proto.decode_request(packet(2, 0, body))


def test_body_that_is_not_a_map_is_rejected(proto):
    with pytest.raises(FieldTypeError, match="signin request: body: expected map, got list"):
        proto.decode_request(packet(1, 0, ["ann", "pw"]))


def test_body_errors_carry_msg_id_and_session(proto):
    with pytest.raises(InvalidBody) as info:
        proto.decode_request(packet(1, 9, {}))
    assert (info.value.msg_id, info.value.session) == (1, 9)


def test_unknown_message_id_carries_id_and_session(proto):
    with pytest.raises(UnknownMessage, match="unknown message id 77") as info:
        proto.decode_request(packet(77, 4, {}))
    assert (info.value.msg_id, info.value.session) == (77, 4)


@pytest.mark.parametrize("data", [b"", b"\x83\x01", b"\xff", b"\x1c"])
def test_invalid_cbor_is_malformed(proto, data):
    with pytest.raises(MalformedPacket, match="malformed request: invalid CBOR"):
        proto.decode_request(data)


def test_invalid_utf8_is_malformed(proto):
    with pytest.raises(MalformedPacket):
        proto.decode_request(b"\x83\x01\x00\xa1\x64user\x62\xff\xfe")


def test_trailing_bytes_are_malformed(proto):
    with pytest.raises(MalformedPacket, match="trailing bytes"):
        proto.decode_request(packet(100, 0, {"motd": "x"}) + b"\x00")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (5, "expected \\[msg_id, session, body\\], got int"),
        ([1, 0], "expected \\[msg_id, session, body\\], got a list of 2"),
        ([1, 0, {}, 0], "expected \\[msg_id, session, body\\], got a list of 4"),
        (["signin", 0, {}], "msg_id must be an int in 0..65535, got str"),
        ([True, 0, {}], "msg_id must be an int in 0..65535, got True"),
        ([70000, 0, {}], "msg_id must be an int in 0..65535, got 70000"),
        ([1, -1, {}], "session must be an int in 0..4294967295, got -1"),
        ([1, 2**32, {}], "session must be an int in 0..4294967295, got 4294967296"),
        ([1, 1.0, {}], "session must be an int in 0..4294967295, got float"),
    ],
)
def test_wrong_packet_shape_is_malformed(proto, value, problem):
    with pytest.raises(MalformedPacket, match=f"malformed request: {problem}"):
        proto.decode_request(cbor2.dumps(value))


@pytest.mark.parametrize(
    "data",
    [
        b"\x83\x18\x64\x00\xa1\x64motd\xc1\x00",  # tag 1: a datetime
        b"\x83\x18\x64\x00\xa1\x64motd\xd9\x01\x02\x80",  # tag 258: a set
        b"\xd8\x1c\x83\x18\x64\x00\xd8\x1d\x00",  # tags 28/29: an array containing itself
        b"\x83\x18\x64\x00\xa1\x64motd\xd9\x03\xe7\x61x",  # an unknown tag
    ],
)
def test_cbor_tags_are_malformed(proto, data):
    with pytest.raises(MalformedPacket, match="semantic tag"):
        proto.decode_request(data)


def test_duplicate_map_keys_are_malformed(proto):
    data = b"\x83\x18\x64\x00\xa2\x64motd\x61a\x64motd\x61b"
    with pytest.raises(MalformedPacket, match="Duplicate map key"):
        proto.decode_request(data)


@pytest.mark.parametrize("data", [b"\x81" * 65535, b"\x9f" * 65535, b"\xa1\x61k" * 20000 + b"\x00"])
def test_pathological_nesting_is_malformed(proto, data):
    with pytest.raises(MalformedPacket, match="nesting depth"):
        proto.decode_request(data)


def test_packet_longer_than_one_frame_is_malformed(proto):
    body = {"motd": "x" * 65535}
    with pytest.raises(MalformedPacket, match="65548 bytes is more than one packet"):
        proto.decode_request(packet(100, 0, body))


@pytest.mark.parametrize("encode", ["request", "push"])
def test_encoding_a_packet_longer_than_one_frame_raises_proto_error(proto, encode):
    body = {"motd": "x" * 65535}
    encoder = {"request": proto.encode_request, "push": proto.encode_push}[encode]
    with pytest.raises(ProtoError, match=f"welcome {encode}: 655.. bytes is more than one packet"):
        encoder("welcome", body)


def test_strict_protocol_refuses_to_encode_an_invalid_request(proto):
    with pytest.raises(FieldTypeError, match="signin request: field 'user'"):
        proto.encode_request("signin", {"user": b"ann", "password": "pw"})


def test_lenient_protocol_encodes_without_validating():
    lenient = Protocol("lenient", strict=False)
    lenient.message(1, "m", {"n": int}, target="svc", rule="pass")
    assert cbor2.loads(lenient.encode_request("m", {"n": "x"})) == [1, 0, {"n": "x"}]


def test_unencodable_body_raises_proto_error():
    lenient = Protocol("lenient", strict=False)
    lenient.message(1, "m", {"n": int}, target="svc", rule="pass")
    with pytest.raises(ProtoError, match="m request: cannot encode as CBOR"):
        lenient.encode_request("m", {"n": object()})


@pytest.mark.parametrize(
    ("session", "got"), [(-2, "-2"), (2**200, "int outside the signed 64-bit range")]
)
def test_encode_request_rejects_a_bad_session(proto, session, got):
    with pytest.raises(ProtoError, match=f"session must be an int in 0..4294967295, got {got}"):
        proto.encode_request("welcome", {"motd": ""}, session=session)


# -- replies and pushes -------------------------------------------------------------------


def test_reply_wire_form_is_msg_id_session_ok_body(proto):
    assert cbor2.loads(proto.encode_reply("signin", 7, {"ok": True})) == [1, 7, True, {"ok": True}]


def test_reply_round_trips(proto):
    reply = proto.decode_reply(proto.encode_reply("signin", 7, {"ok": False}))
    assert (reply.message, reply.session, reply.ok) == (proto["signin"], 7, True)
    assert (reply.body, reply.error) == ({"ok": False}, None)


def test_strict_encode_reply_validates_against_the_reply_fields(proto):
    with pytest.raises(FieldTypeError, match="signin reply: field 'ok': expected bool, got int"):
        proto.encode_reply("signin", 7, {"ok": 1})


def test_decode_reply_validates_against_the_reply_fields(proto):
    with pytest.raises(MissingField, match="signin reply: missing required field 'ok'"):
        proto.decode_reply(packet(1, 7, True, {}))


def test_reply_without_declared_fields_may_carry_any_value(proto):
    assert proto.decode_reply(proto.encode_reply("bag", 2, [1, "two"])).body == [1, "two"]


def test_reply_to_session_zero_is_refused(proto):
    with pytest.raises(ProtoError, match="session 0 asked for no reply; send a push"):
        proto.encode_reply("signin", 0, {"ok": True})


def test_error_reply_wire_form_allows_undeclared_ids(proto):
    assert cbor2.loads(proto.encode_error(999, 3, "unknown message")) == [
        999,
        3,
        False,
        "unknown message",
    ]


def test_error_reply_to_an_undeclared_id_decodes_without_a_message(proto):
    reply = proto.decode_reply(proto.encode_error(999, 3, "unknown message id 999"))
    assert (reply.message, reply.ok, reply.error) == (None, False, "unknown message id 999")


def test_error_reply_round_trips(proto):
    reply = proto.decode_reply(proto.encode_error(1, 3, "wrong password"))
    assert (reply.ok, reply.body, reply.error) == (False, None, "wrong password")


def test_error_reply_must_carry_a_str(proto):
    with pytest.raises(ProtoError, match="an error reply carries a str, got int"):
        proto.encode_error(1, 3, 404)


def test_decoded_error_reply_must_carry_a_str(proto):
    with pytest.raises(MalformedPacket, match="an error must be a str, got map"):
        proto.decode_reply(packet(1, 3, False, {}))


def test_reply_ok_flag_must_be_a_bool(proto):
    with pytest.raises(MalformedPacket, match="ok must be a bool, got int"):
        proto.decode_reply(packet(1, 3, 1, {"ok": True}))


def test_push_wire_form_has_session_zero(proto):
    assert cbor2.loads(proto.encode_push("welcome", {"motd": "hi"})) == [
        100,
        0,
        True,
        {"motd": "hi"},
    ]


def test_push_is_decoded_against_the_message_fields(proto):
    with pytest.raises(FieldTypeError, match="welcome push: field 'motd': expected str, got int"):
        proto.decode_reply(packet(100, 0, True, {"motd": 1}))


def test_strict_encode_push_validates_the_body(proto):
    with pytest.raises(MissingField, match="welcome push: missing required field 'motd'"):
        proto.encode_push("welcome")


# -- table and dump_module ----------------------------------------------------------------


def test_table_describes_structs_and_messages():
    proto = Protocol("small")
    item = proto.struct("Item", {"id": int})
    proto.message(1, "take", {"items": list[item], "note": str | None}, target="bag", rule="auth")
    proto.message(2, "news", {"text": str}, reply={"seen": bool})
    assert proto.table() == {
        "protocol": "small",
        "structs": [{"name": "Item", "fields": [{"name": "id", "type": "int", "optional": False}]}],
        "messages": [
            {
                "id": 1,
                "name": "take",
                "target": "bag",
                "rule": "auth",
                "fields": [
                    {"name": "items", "type": {"list": "Item"}, "optional": False},
                    {"name": "note", "type": "str", "optional": True},
                ],
                "reply": None,
            },
            {
                "id": 2,
                "name": "news",
                "target": None,
                "rule": None,
                "fields": [{"name": "text", "type": "str", "optional": False}],
                "reply": [{"name": "seen", "type": "bool", "optional": False}],
            },
        ],
    }


def test_dump_module_returns_the_table_as_json():
    assert json.loads(dump_module("gate_example_proto")) == example.table()


@pytest.fixture
def module_dir(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name, source):
        (tmp_path / f"{name}.py").write_text(source)
        return name

    return write


TWO_PROTOCOLS = """
from meshnet.gate.proto import Protocol
client = Protocol("client")
admin = Protocol("admin")
alias = admin
"""


def test_dump_module_picks_the_named_protocol(module_dir):
    name = module_dir("gate_dump_pick", TWO_PROTOCOLS)
    assert json.loads(dump_module(f"{name}:admin"))["protocol"] == "admin"


def test_dump_module_with_several_protocols_asks_to_pick_one(module_dir):
    name = module_dir("gate_dump_several", TWO_PROTOCOLS)
    with pytest.raises(ProtoError, match=r"defines 2 protocols \(client, admin\); pick one with"):
        dump_module(name)


def test_dump_module_without_a_protocol_raises(module_dir):
    name = module_dir("gate_dump_none", "x = 1\n")
    with pytest.raises(ProtoError, match="'gate_dump_none' defines no Protocol"):
        dump_module(name)


def test_dump_module_of_a_name_that_is_not_a_protocol_raises(module_dir):
    name = module_dir("gate_dump_notproto", "x = 1\n")
    with pytest.raises(ProtoError, match="gate_dump_notproto:x is not a Protocol"):
        dump_module(f"{name}:x")


def test_dump_module_of_a_missing_module_raises():
    with pytest.raises(ProtoError, match="cannot import 'no_such_module_anywhere'"):
        dump_module("no_such_module_anywhere")


def test_dump_module_of_a_module_that_fails_to_import_raises(module_dir):
    name = module_dir("gate_dump_broken", "raise RuntimeError('boom')\n")
    with pytest.raises(ProtoError, match="cannot import 'gate_dump_broken': RuntimeError: boom"):
        dump_module(name)


# -- properties ---------------------------------------------------------------------------

example_messages = st.sampled_from(list(example))


@given(st.data())
def test_every_example_request_round_trips(data):
    message = data.draw(example_messages)
    body = data.draw(bodies(message.body))
    session = data.draw(st.integers(min_value=0, max_value=2**32 - 1))
    request = example.decode_request(example.encode_request(message, body, session=session))
    assert (request.message, request.session, request.body) == (message, session, body)


@given(st.data())
def test_every_example_reply_round_trips(data):
    message = data.draw(st.sampled_from([m for m in example if m.reply is not None]))
    body = data.draw(bodies(message.reply))
    session = data.draw(st.integers(min_value=1, max_value=2**32 - 1))
    reply = example.decode_reply(example.encode_reply(message, session, body))
    assert (reply.message, reply.session, reply.ok, reply.body) == (message, session, True, body)


@given(st.data())
def test_every_example_push_round_trips(data):
    message = data.draw(example_messages)
    body = data.draw(bodies(message.body))
    reply = example.decode_reply(example.encode_push(message, body))
    assert (reply.message, reply.session, reply.ok, reply.body) == (message, 0, True, body)


@given(st.data())
def test_wrong_typed_body_fails_naming_the_field(data):
    message = data.draw(st.sampled_from([m for m in example if m.body.fields]))
    body, path = data.draw(corrupted(message.body))
    with pytest.raises(FieldTypeError) as info:
        example.decode_request(packet(message.id, 1, body))
    assert info.value.path == path


@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_to_a_request_or_a_proto_error(data):
    try:
        request = example.decode_request(data)
    except ProtoError:
        return
    example.encode_request(request.message, request.body)  # strict: re-validates the body


@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_to_a_reply_or_a_proto_error(data):
    try:
        example.decode_reply(data)
    except ProtoError:
        pass


cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5) | st.binary(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["id", "user", "bag", "items", "x"]), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(msg_id=st.sampled_from([m.id for m in example] + [999]), body=cbor_values)
def test_arbitrary_cbor_bodies_decode_to_a_request_or_a_proto_error(msg_id, body):
    assume(not isinstance(body, int) or -(2**64) <= body < 2**64)
    try:
        request = example.decode_request(packet(msg_id, 0, body))
    except ProtoError:
        return
    example.encode_request(request.message, request.body)

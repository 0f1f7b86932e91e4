"""Reliable commands as data: the stored form round-trips, and anything else is refused
with CommandError naming the field."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshnet.cluster.reliable import Command, CommandError
from meshnet.cluster.reliable.command import FIELDS

systems = st.from_regex(r"[A-Za-z0-9-]{1,32}", fullmatch=True)
texts = st.text(min_size=1, max_size=256)
finite = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)
commands = st.builds(
    Command.new,
    sender=systems,
    receiver=systems,
    uid=texts,
    kind=texts,
    args=st.dictionaries(st.text(), json_values, max_size=5),
)


@given(commands)
def test_the_stored_form_reads_back_as_the_same_command(command):
    assert Command.decode(command.encode()) == command


@given(commands)
def test_the_message_form_reads_back_as_the_same_command(command):
    assert Command.from_message(command.to_message()) == command


@given(st.one_of(st.text(), json_values.map(json.dumps)))
def test_text_that_is_not_a_command_is_refused_with_command_error(text):
    with pytest.raises(CommandError):
        Command.decode(text)


@given(commands, st.sampled_from(FIELDS), json_values)
def test_a_command_with_any_field_replaced_is_a_command_or_refused(command, field, value):
    raw = {**command.to_message(), field: value}
    try:
        decoded = Command.from_message(raw)
    except CommandError:
        return
    assert decoded.to_message() == raw


def test_each_new_command_has_an_id_of_its_own():
    ids = {Command.new("main", "sub", "alice", "gold", {}).id for _ in range(1000)}
    assert len(ids) == 1000


GOOD = Command.new("main", "sub", "alice", "gold", {"gold": 5}).to_message()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"id": "xyz"}, "id: 32 lowercase hex digits"),
        ({"sender": "main_game"}, "sender: 1 to 32 letters"),
        ({"receiver": ""}, "receiver: 1 to 32 letters"),
        ({"uid": ""}, "uid: a string of 1 to 256"),
        ({"uid": 10001}, "uid: a string"),
        ({"kind": "k" * 257}, "kind: a string of 1 to 256"),
        ({"args": [1, 2]}, "args: a map"),
        ({"args": {"gold": float("nan")}}, "args: must be JSON"),
        ({"args": {1: "key not a string"}}, "args: must be JSON"),
        ({"args": {"nested": {2: "key not a string"}}}, "args: must be JSON"),
        ({"args": {"blob": "x" * 20000}}, "args: 20012 bytes as JSON, at most 16384"),
        ({"extra": 1}, "unknown: extra"),
    ],
)
def test_a_malformed_command_is_refused_naming_the_field(change, message):
    raw = {**GOOD, **change}
    with pytest.raises(CommandError, match=message):
        Command.from_message(raw)


def test_a_command_missing_a_field_is_refused_naming_it():
    raw = {key: value for key, value in GOOD.items() if key != "uid"}
    with pytest.raises(CommandError, match="missing: uid"):
        Command.from_message(raw)


@pytest.mark.parametrize("raw", [None, 7, "text", [GOOD]])
def test_a_message_that_is_not_a_map_is_refused(raw):
    with pytest.raises(CommandError, match="a command is a map"):
        Command.from_message(raw)

"""Strict codec mode: a payload that could not cross a node boundary fails where it is sent."""

import pytest

from meshnet import CallError, CodecError, Service, command, open_node


class Unportable:
    pass


class Keeper(Service):
    @command
    async def echo(self, value):
        return value

    @command
    async def give_object(self):
        return Unportable()

    @command
    async def kinds(self, value):
        return type(value).__name__


async def test_strict_mode_refuses_an_unportable_argument_at_the_caller(node):
    keeper = await node.newservice(Keeper)
    with pytest.raises(CodecError, match="Unportable"):
        await node.call(keeper, "echo", Unportable())


async def test_strict_mode_turns_an_unportable_answer_into_a_call_error(node):
    keeper = await node.newservice(Keeper)
    with pytest.raises(CallError) as caught:
        await node.call(keeper, "give_object")
    assert caught.value.remote_type == "CodecError"


async def test_strict_mode_delivers_what_the_wire_would(node):
    keeper = await node.newservice(Keeper)
    assert await node.call(keeper, "kinds", (1, 2)) == "list"


async def test_without_strict_mode_local_messages_pass_objects_as_they_are():
    async with open_node(strict_codec=False) as node:
        keeper = await node.newservice(Keeper)
        value = Unportable()
        assert await node.call(keeper, "echo", value) is value


async def test_strict_mode_refuses_a_message_too_big_to_cross_a_node_boundary(node):
    from meshnet.codec import MAX_PAYLOAD

    keeper = await node.newservice(Keeper)
    with pytest.raises(CodecError, match="over the"):
        await node.call(keeper, "echo", b"x" * (MAX_PAYLOAD + 1))

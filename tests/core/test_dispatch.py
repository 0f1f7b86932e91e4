"""Dispatch that respects Python: overrides run, only declared commands and kinds are
reachable, and a wrongly declared service fails when its class is defined."""

import logging

import pytest

from meshnet import (
    Service,
    ServiceDefinitionError,
    UnknownCommand,
    UnknownKind,
    command,
)


class Base(Service):
    async def init(self):
        self.exited = False

    @command
    async def greet(self):
        return "base"

    @command
    async def farewell(self):
        return "base"

    async def helper(self):
        return "not a command"

    async def on_exit(self):
        self.exited = True


class Derived(Base):
    async def greet(self):  # an override, not marked again: still the command
        return "derived"

    @command
    async def farewell(self):  # marked again
        return "derived"


async def test_an_override_of_a_command_runs_whether_marked_again_or_not(node):
    derived = await node.newservice(Derived)
    assert await node.call(derived, "greet") == "derived"
    assert await node.call(derived, "farewell") == "derived"


async def test_a_method_without_command_cannot_be_called_and_the_error_says_why(node):
    base = await node.newservice(Base)
    with pytest.raises(UnknownCommand, match="helper is not a command: mark it with @command"):
        await node.call(base, "helper")


@pytest.mark.parametrize("name", ["init", "on_exit", "_ctx", "__init__"])
async def test_no_call_reaches_a_hook_or_an_internal(node, name):
    base = await node.newservice(Base)
    with pytest.raises(UnknownCommand):
        await node.call(base, name)
    assert node.context_of(base).instance.exited is False


@pytest.mark.parametrize("kind", ["exit", "init", "request", "multicast"])
async def test_a_post_of_an_undeclared_kind_is_refused_at_the_sender(node, kind):
    base = await node.newservice(Base)
    with pytest.raises(UnknownKind):
        await node.post(base, kind)
    assert node.context_of(base).instance.exited is False


async def test_a_post_of_a_kind_the_target_does_not_handle_says_how_to_handle_it(node, caplog):
    base = await node.newservice(Base)
    await node.post(base, "text", "hello")
    await node.call(base, "greet")  # the text has been handled (refused) by now
    [record] = [r for r in caplog.records if "refused" in r.getMessage()]
    assert "define async def on_text" in record.getMessage()


def test_a_non_async_command_is_refused_when_the_class_is_defined():
    with pytest.raises(ServiceDefinitionError, match="must be an 'async def'"):

        class Broken(Service):
            @command
            def sync(self):
                return 1


@pytest.mark.parametrize("hook", ["init", "on_exit", "on_client", "on_text"])
def test_a_non_async_hook_is_refused_when_the_class_is_defined(hook):
    with pytest.raises(ServiceDefinitionError, match=f"{hook} must be an 'async def'"):
        type("Broken", (Service,), {hook: lambda self, *args: None})


def test_a_non_async_override_of_a_command_is_refused():
    with pytest.raises(ServiceDefinitionError, match="greet must be an 'async def'"):

        class Broken(Base):
            def greet(self):
                return "sync"


def test_a_hook_cannot_be_marked_as_a_command():
    with pytest.raises(ServiceDefinitionError, match="is a hook, not a command"):

        class Broken(Service):
            @command
            async def on_exit(self):
                pass


@pytest.mark.parametrize(
    "attribute, value",
    [("mailbox_size", 0), ("max_concurrency", 0), ("mailbox_policy", "drop")],
)
def test_bad_bounds_are_refused_when_the_class_is_defined(attribute, value):
    with pytest.raises(ServiceDefinitionError, match=attribute):
        type("Broken", (Service,), {attribute: value})


async def test_an_unknown_command_logs_one_warning_and_no_traceback(node, caplog):
    base = await node.newservice(Base)
    with pytest.raises(UnknownCommand, match="has no command 'nope'"):
        await node.call(base, "nope")
    records = [r for r in caplog.records if r.name.startswith("meshnet")]
    assert [(r.levelno, r.exc_info) for r in records] == [(logging.WARNING, None)]

"""Calls, sends, answers and errors between services."""

from contextlib import asynccontextmanager

import pytest
import trio

from meshnet import CallError, NoSuchService, ResponseError, Service, command


class Store(Service):
    async def init(self, name=".store"):
        self.data = {}
        self.register(name)

    @command
    async def set(self, key, value):
        self.data[key] = value

    @command
    async def get(self, key):
        return self.data.get(key)

    @command
    async def slow_get(self, key, delay):
        await self.sleep(delay)
        return self.data.get(key)

    @command
    async def fail(self, text):
        raise KeyError(text)


class Deferred(Service):
    """Answers ``ask`` only when ``release`` comes, through a deferred responder."""

    async def init(self):
        self.waiting = []

    @command
    async def ask(self):
        self.waiting.append(self.response())

    @command
    async def ask_then_fail(self):
        self.waiting.append(self.response())
        raise RuntimeError("the responder answers, not this handler")

    @command
    async def release(self, value):
        for reply in self.waiting:
            reply(value)
        return len(self.waiting)

    @command
    async def answer_twice(self):
        reply = self.response()
        reply(1)
        try:
            reply(2)
        except ResponseError as exc:
            self.second_answer_error = str(exc)

    @command
    async def second_answer_error(self):
        return self.second_answer_error

    @command
    async def respond_to_send(self):
        self.response()


class Front(Service):
    @command
    async def lookup(self, key):
        await self.redirect(".store", "get", key)


async def test_call_returns_the_command_result(node):
    store = await node.newservice(Store)
    await node.call(store, "set", "k", [1, 2])
    assert await node.call(store, "get", "k") == [1, 2]


async def test_sends_and_calls_from_one_sender_run_in_order(node):
    store = await node.newservice(Store)
    for i in range(100):
        await node.send(store, "set", "k", i)
    assert await node.call(store, "get", "k") == 99


async def test_names_resolve_to_the_service(node):
    store = await node.newservice(Store, ".kv")
    assert node.lookup(".kv") == store
    await node.call(".kv", "set", "a", 1)
    assert await node.call(store, "get", "a") == 1


async def test_remote_exception_arrives_as_call_error_with_type_and_message(node):
    store = await node.newservice(Store)
    with pytest.raises(CallError) as caught:
        await node.call(store, "fail", "boom")
    assert caught.value.remote_type == "KeyError"
    assert "boom" in caught.value.remote_message


async def test_service_keeps_serving_after_a_handler_raised(node):
    store = await node.newservice(Store)
    with pytest.raises(CallError):
        await node.call(store, "fail", "boom")
    await node.call(store, "set", "k", 1)
    assert await node.call(store, "get", "k") == 1


async def test_unknown_command_is_a_call_error(node):
    store = await node.newservice(Store)
    with pytest.raises(CallError, match="no command 'nope'"):
        await node.call(store, "nope")


async def test_wrong_arguments_are_a_call_error(node):
    store = await node.newservice(Store)
    with pytest.raises(CallError) as caught:
        await node.call(store, "get")
    assert caught.value.remote_type == "TypeError"


async def test_call_to_unknown_address_fails_at_once(node):
    with pytest.raises(NoSuchService):
        await node.call(0x010000FF, "get", "k")


async def test_call_to_unknown_name_fails_at_once(node):
    with pytest.raises(NoSuchService, match=".missing"):
        await node.call(".missing", "get", "k")


@asynccontextmanager
async def calls_in_flight(node, target, name, count=1):
    """Start ``count`` calls and run the block while they wait; they finish by its end.

    Yields the list their answers are appended to."""
    results = []

    async def call():
        results.append(await node.call(target, name))

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for _ in range(count):
                nursery.start_soon(call)
            await trio.testing.wait_all_tasks_blocked()
            yield results


async def test_deferred_responder_answers_later(node):
    deferred = await node.newservice(Deferred)
    async with calls_in_flight(node, deferred, "ask", 2) as results:
        assert await node.call(deferred, "release", "done") == 2
    assert results == ["done", "done"]


async def test_a_responder_still_answers_after_its_handler_raised(node):
    deferred = await node.newservice(Deferred)
    async with calls_in_flight(node, deferred, "ask_then_fail") as results:
        assert await node.call(deferred, "release", "done") == 1
    assert results == ["done"]


async def test_session_ids_wrap_around_without_reusing_an_outstanding_one(node):
    deferred = await node.newservice(Deferred)
    store = await node.newservice(Store)
    caller = node.context_of(node.services()[0])
    caller._last_session = 0  # the next call takes session 1
    async with calls_in_flight(node, deferred, "ask") as results:
        assert list(caller.pending) == [1]
        caller._last_session = 0x7FFFFFFF  # the session counter wraps on the next call
        await node.call(store, "set", "k", "v")
        assert await node.call(deferred, "release", "done") == 1
    assert results == ["done"]


async def test_second_answer_of_a_responder_raises_and_the_first_stands(node):
    deferred = await node.newservice(Deferred)
    assert await node.call(deferred, "answer_twice") == 1
    assert "already answered" in await node.call(deferred, "second_answer_error")


async def test_a_responder_cannot_be_taken_for_a_send(node, caplog):
    deferred = await node.newservice(Deferred)
    await node.send(deferred, "respond_to_send")
    await node.call(deferred, "release", None)  # the send has been handled by now
    assert any(r.exc_info and r.exc_info[0] is ResponseError for r in caplog.records)


async def test_response_outside_a_handler_raises(node):
    deferred = await node.newservice(Deferred)
    service = node.context_of(deferred).instance
    with pytest.raises(ResponseError):
        service.response()


async def test_redirect_lets_another_service_answer_the_caller(node):
    store = await node.newservice(Store)
    front = await node.newservice(Front)
    await node.call(store, "set", "k", "v")
    assert await node.call(front, "lookup", "k") == "v"


async def test_late_reply_to_an_abandoned_call_is_dropped_and_counted(node, autojump_clock):
    store = await node.newservice(Store)
    caller = node.context_of(node.services()[0])
    with trio.move_on_after(1):
        await node.call(store, "slow_get", "k", 5)
    await trio.sleep(10)
    assert caller.stats.late_replies == 1
    assert await node.call(store, "get", "k") is None


async def test_call_timeout_raises_call_timeout(node, autojump_clock):
    from meshnet import CallTimeout

    store = await node.newservice(Store)
    with pytest.raises(CallTimeout):
        await node.call(store, "slow_get", "k", 5, timeout=1)


async def test_node_default_timeout_applies_to_calls_without_one(autojump_clock):
    from meshnet import CallTimeout, open_node

    async with open_node(call_timeout=2) as node:
        store = await node.newservice(Store)
        with pytest.raises(CallTimeout):
            await node.call(store, "slow_get", "k", 5)
        assert await node.call(store, "slow_get", "k", 1) is None

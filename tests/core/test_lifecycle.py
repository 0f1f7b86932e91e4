"""Starting, naming, stopping and crashing services; reentrancy and critical sections."""

import pytest
import trio

from meshnet import (
    KeyedQueue,
    NoSuchService,
    Queue,
    Service,
    ServiceExited,
    ServiceImportError,
    ServiceStartError,
    command,
)


class Gate(Service):
    """``wait`` blocks until ``open``; used to hold calls in flight."""

    async def init(self):
        self.opened = trio.Event()
        self.log_lines = []

    @command
    async def wait(self, tag):
        self.log_lines.append(f"start {tag}")
        await self.opened.wait()
        self.log_lines.append(f"end {tag}")
        return tag

    @command
    async def open(self):
        self.opened.set()

    @command
    async def lines(self):
        return self.log_lines

    @command
    async def quit(self):
        await self.exit()


class Counter(Service):
    """Read-modify-write across an await: interleaves unless guarded by a Queue."""

    async def init(self):
        self.value = 0
        self.cs = Queue()

    @command
    async def bump(self):
        value = self.value
        await trio.sleep(0.01)
        self.value = value + 1

    @command
    async def bump_guarded(self):
        await self.cs(self.bump)

    @command
    async def nested(self):
        async with self.cs:
            async with self.cs:
                return "re-entered"

    @command
    async def read(self):
        return self.value


class FailsToStart(Service):
    async def init(self):
        self.register(".doomed")
        raise RuntimeError("no database")


class SlowStart(Service):
    async def init(self, release):
        self.register(".slow")
        await release.wait()


class Named(Service):
    async def init(self, name):
        self.register(name)

    @command
    async def quit(self):
        await self.exit()


class Hooked(Service):
    async def init(self, events):
        self.events = events

    async def on_exit(self):
        self.events.append(str(self.address))


class Forker(Service):
    @command
    async def crash_later(self):
        async def boom():
            await trio.sleep(0)
            raise ValueError("forked task failed")

        self.fork(boom)

    @command
    async def system_exit(self):
        raise SystemExit(3)

    @command
    async def ping(self):
        return "pong"


class Sleeper(Service):
    async def init(self):
        self.woken = []

    @command
    async def park(self, token):
        await self.wait(token)
        return "woken"

    @command
    async def wake(self, token):
        return self.wakeup(token)

    @command
    async def later(self, delay, tag):
        async def record():
            self.woken.append(tag)

        self.timeout(delay, record)

    @command
    async def recorded(self):
        return self.woken


async def test_a_handler_waiting_does_not_block_the_next_message(node):
    gate = await node.newservice(Gate)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(node.call, gate, "wait", "a")
        await trio.testing.wait_all_tasks_blocked()
        await node.call(gate, "open")  # handled while "a" is still waiting
    assert await node.call(gate, "lines") == ["start a", "end a"]


async def test_messages_start_in_arrival_order_even_when_handlers_wait(node):
    gate = await node.newservice(Gate)
    async with trio.open_nursery() as nursery:
        for tag in "abcde":
            nursery.start_soon(node.call, gate, "wait", tag)
            await trio.testing.wait_all_tasks_blocked()
        await node.call(gate, "open")
    starts = [line for line in await node.call(gate, "lines") if line.startswith("start")]
    assert starts == [f"start {tag}" for tag in "abcde"]


async def test_unguarded_handlers_interleave_across_an_await(node):
    counter = await node.newservice(Counter)
    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(node.call, counter, "bump")
    assert await node.call(counter, "read") < 5


async def test_queue_serialises_handlers(node):
    counter = await node.newservice(Counter)
    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(node.call, counter, "bump_guarded")
    assert await node.call(counter, "read") == 5


async def test_queue_can_be_re_entered_by_the_task_inside_it(node):
    counter = await node.newservice(Counter)
    assert await node.call(counter, "nested") == "re-entered"


async def test_init_failure_reaches_the_starter_and_registers_nothing(node):
    before = node.services()
    with pytest.raises(ServiceStartError, match="no database"):
        await node.newservice(FailsToStart)
    assert node.services() == before
    assert node.lookup(".doomed") is None


async def test_service_can_be_started_by_import_path(node):
    address = await node.newservice("meshnet.node:_System")
    assert address in node.services()


@pytest.mark.parametrize(
    "path", ["no_such_module:Thing", "meshnet.node:Missing", "meshnet.node", "meshnet.node:logger"]
)
async def test_bad_import_path_is_a_clear_error(node, path):
    with pytest.raises(ServiceImportError):
        await node.newservice(path)


async def test_exit_answers_the_callers_waiting_on_the_service(node):
    gate = await node.newservice(Gate)
    errors = []

    async def caller(tag):
        try:
            await node.call(gate, "wait", tag)
        except ServiceExited as exc:
            errors.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(caller, "in flight")
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(caller, "also in flight")
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(ServiceExited):
            await node.call(gate, "quit")
    assert len(errors) == 2
    assert gate not in node.services()


async def test_kill_answers_callers_whose_message_is_still_in_the_mailbox(node):
    release = trio.Event()
    outcomes = []

    async def start():
        with pytest.raises(ServiceStartError, match="killed during init"):
            await node.newservice(SlowStart, release)
        outcomes.append("start refused")

    async def caller():
        with pytest.raises(ServiceExited, match="killed"):
            await node.call(".slow", "anything")
        outcomes.append("caller answered")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(start)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(caller)  # queued: messages wait until init returns
        await trio.testing.wait_all_tasks_blocked()
        await node.kill(".slow")
    assert sorted(outcomes) == ["caller answered", "start refused"]


async def test_calls_after_a_service_ended_fail_at_once(node):
    gate = await node.newservice(Gate)
    await node.kill(gate)
    with pytest.raises(NoSuchService):
        await node.call(gate, "open")


async def test_names_are_removed_when_the_service_exits(node):
    named = await node.newservice(Named, ".lobby")
    await node.kill(named)
    assert node.lookup(".lobby") is None
    again = await node.newservice(Named, ".lobby")
    assert node.lookup(".lobby") == again


async def test_a_name_taken_by_a_live_service_is_refused(node):
    await node.newservice(Named, ".lobby")
    with pytest.raises(ServiceStartError, match="already belongs"):
        await node.newservice(Named, ".lobby")


@pytest.mark.parametrize("name", ["lobby", ".", ".a b", ""])
async def test_malformed_local_names_are_refused(node, name):
    with pytest.raises(ServiceStartError, match="node-local names"):
        await node.newservice(Named, name)


async def test_exit_hook_runs_on_kill(node):
    events = []
    hooked = await node.newservice(Hooked, events)
    await node.kill(hooked)
    assert events == [str(hooked)]


async def test_node_shutdown_runs_exit_hooks_newest_first():
    from meshnet import open_node

    events = []
    async with open_node() as node:
        first = await node.newservice(Hooked, events)
        second = await node.newservice(Hooked, events)
    assert events == [str(second), str(first)]


async def test_uniqueservice_gives_concurrent_callers_one_instance(node):
    addresses = []

    async def start():
        addresses.append(await node.uniqueservice(Counter))

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(start)
    assert len(set(addresses)) == 1
    assert len(addresses) == 10


async def test_queryservice_waits_until_the_unique_service_runs(node):
    found = []

    async def query():
        found.append(await node.queryservice(Counter))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(query)
        await trio.testing.wait_all_tasks_blocked()
        assert found == []
        started = await node.uniqueservice(Counter)
    assert found == [started]


async def test_uniqueservice_starts_anew_after_the_instance_exited(node):
    first = await node.uniqueservice(Counter)
    await node.kill(first)
    assert await node.uniqueservice(Counter) != first


async def test_crash_in_a_forked_task_ends_the_service_but_not_the_node(node, caplog):
    forker = await node.newservice(Forker)
    await node.call(forker, "crash_later")
    await node.context_of(forker).exited.wait()
    assert forker not in node.services()
    assert any("crashed" in r.getMessage() for r in caplog.records)
    other = await node.newservice(Forker)
    assert await node.call(other, "ping") == "pong"


async def test_a_handler_raising_system_exit_answers_its_caller_then_stops_the_node():
    from meshnet import open_node

    answers = []
    with pytest.raises(SystemExit) as stopped:
        async with open_node() as node:
            forker = await node.newservice(Forker)
            try:
                await node.call(forker, "system_exit")
            except ServiceExited as exc:
                answers.append(exc)
            await trio.sleep_forever()  # the node is stopping: this is cancelled
    assert stopped.value.code == 3
    assert "SystemExit" in str(answers[0])


async def test_wait_suspends_until_wakeup(node):
    sleeper = await node.newservice(Sleeper)
    results = []

    async def park():
        results.append(await node.call(sleeper, "park", "token"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(park)
        await trio.testing.wait_all_tasks_blocked()
        assert results == []
        assert await node.call(sleeper, "wake", "token") is True
    assert results == ["woken"]
    assert await node.call(sleeper, "wake", "token") is False


async def test_timeout_runs_a_function_later(node, autojump_clock):
    sleeper = await node.newservice(Sleeper)
    await node.call(sleeper, "later", 5, "tick")
    await trio.sleep(4)
    assert await node.call(sleeper, "recorded") == []
    await trio.sleep(2)
    assert await node.call(sleeper, "recorded") == ["tick"]


class Rooms(Service):
    """``enter`` holds its key's critical section until ``leave`` for that key."""

    async def init(self):
        self.cs = KeyedQueue()
        self.inside = []
        self.exits = {}

    @command
    async def enter(self, key, tag):
        async with self.cs(key):
            self.inside.append(tag)
            exit_ = self.exits.setdefault(tag, trio.Event())
            await exit_.wait()

    @command
    async def leave(self, tag):
        self.exits.setdefault(tag, trio.Event()).set()

    @command
    async def who_entered(self):
        return self.inside


async def test_keyed_queue_serialises_one_key_and_lets_others_through(node):
    rooms = await node.newservice(Rooms)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(node.call, rooms, "enter", "alice", "alice-1")
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(node.call, rooms, "enter", "alice", "alice-2")
        nursery.start_soon(node.call, rooms, "enter", "bob", "bob-1")
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(await node.call(rooms, "who_entered")) == ["alice-1", "bob-1"]
        await node.call(rooms, "leave", "alice-1")
        await trio.testing.wait_all_tasks_blocked()
        assert "alice-2" in await node.call(rooms, "who_entered")
        for tag in ("alice-2", "bob-1"):
            await node.call(rooms, "leave", tag)
    assert node.context_of(rooms).instance.cs._queues == {}


async def test_an_init_that_raises_logs_its_traceback(node, caplog):
    with pytest.raises(ServiceStartError):
        await node.newservice(FailsToStart)
    [record] = [r for r in caplog.records if "failed to start" in r.getMessage()]
    assert record.levelname == "ERROR" and record.exc_info[0] is RuntimeError

"""The debug console over a real socket: every command, bad input, passwords, public binds."""

import gc
import logging

import pytest
import trio
from console_client import connect, start_console

from meshnet import CallError, Service, ServiceStartError, command
from meshnet.console import ConsoleServer, console_command
from meshnet.console import server as console_server
from meshnet.console.loglevels import service_levels
from meshnet.console.registry import COMMANDS


class Store(Service):
    async def init(self, name: str, size: int = 0) -> None:
        self.data = {"blob": "x" * size}
        self.register(name)

    @command
    async def get(self, key):
        return self.data.get(key)

    @command
    async def put(self, key, value):
        self.data[key] = value

    @command
    async def fail(self):
        raise ValueError("no good")

    @command
    async def talk(self, line):
        self.log.debug("debug line %s", line)
        self.log.info("info line %s", line)


class Waiter(Service):
    async def init(self, name: str) -> None:
        self.register(name)
        self.released = trio.Event()

    @command
    async def hold(self):
        await self.released.wait()

    @command
    async def ask(self, target):
        return await self.call(target, "hold")

    @command
    async def release(self):
        self.released.set()


class Single(Service):
    """Started as a unique service."""


@pytest.fixture
async def console(node):
    session, _ = await connect(await start_console(node))
    return session


async def test_the_greeting_names_the_node_and_ends_in_ok(node):
    _, greeting = await connect(await start_console(node))
    assert greeting == "meshnet console of node 'test' (id 1): type help for the commands"


async def test_help_lists_every_command_with_its_usage(console):
    text = await console.ok("help")
    for name, declared in COMMANDS.items():
        assert declared.usage in text, name


async def test_list_shows_address_names_class_and_start_args(node, console):
    store = await node.newservice(Store, ".store", 3)
    line = next(row for row in (await console.ok("list")).splitlines() if str(store) in row)
    assert line.split() == [str(store), ".store", "test_console:Store", '[".store",', "3]"]


async def test_stat_shows_queue_handled_failed_pending_and_tasks(node, console):
    await node.newservice(Store, ".store")
    await node.call(".store", "put", "k", 1)
    with pytest.raises(CallError):
        await node.call(".store", "fail")
    text = await console.ok("stat")
    header, *rows = text.splitlines()
    assert header.split() == [
        "address", "name", "class", "queue", "handled", "failed", "pending", "tasks", "cpu",
    ]  # fmt: skip
    row = next(r.split() for r in rows if ".store" in r)
    assert row[2:8] == ["Store", "0", "1", "1", "0", "1"]
    assert row[8] == "-"  # no CPU figures without metrics
    assert "cpu: sampled only while the node has metrics on" in text


async def test_info_describes_one_service(node, console):
    await node.newservice(Store, ".store")
    await node.call(".store", "put", "k", 1)
    text = await console.ok("info .store")
    assert "class          test_console:Store" in text
    assert "mailbox        0 queued of 4096 (wait when full)" in text
    assert "handled        1 (failed 0)" in text


async def test_mem_estimates_a_service_by_what_it_holds(node, console):
    small = await node.newservice(Store, ".small", 0)
    big = await node.newservice(Store, ".big", 1_000_000)
    text = await console.ok("mem")
    assert text.startswith("process resident memory: ")
    sizes = {row.split()[1]: float(row.split()[3]) for row in text.splitlines() if "Store" in row}
    assert sizes[".big"] > 900 > sizes[".small"]
    assert small and big


async def test_gc_runs_a_collection(console):
    assert (await console.ok("gc")).startswith("collected ")


async def test_gc_shows_how_often_young_collections_run(console):
    young = gc.get_threshold()[0]
    assert (await console.ok("gc")).endswith(f"(young collections every {young} allocations)")


async def test_gc_says_when_automatic_collection_is_off(console):
    gc.disable()
    try:
        assert (await console.ok("gc")).endswith("; automatic collection is off")
    finally:
        gc.enable()


async def test_ping_takes_a_round_trip_through_the_mailbox(node, console):
    store = await node.newservice(Store, ".store")
    assert (await console.ok(f"ping {store}")).startswith(f"{store}: ")
    assert node.context_of(store).stats.handled == 1


async def test_call_passes_json_arguments_and_prints_the_answer_as_json(node, console):
    await node.newservice(Store, ".store")
    assert await console.ok('call .store put "k" {"a": [1, 2], "b": "two words"}') == "null"
    assert await console.ok('call .store get "k"') == '{"a": [1, 2], "b": "two words"}'


async def test_a_failing_call_says_why(node, console):
    await node.newservice(Store, ".store")
    text = await console.error("call .store fail")
    assert "ValueError: no good" in text


async def test_send_delivers_without_waiting_for_an_answer(node, console):
    await node.newservice(Store, ".store")
    assert await console.ok('send .store put "k" 5') == "sent 'put' to .store"
    assert await node.call(".store", "get", "k") == 5


async def test_start_starts_a_class_by_import_path(node, console):
    address = await console.ok('start test_console:Store ".started" 1')
    assert node.lookup(".started") is not None
    assert str(node.lookup(".started")) == address


async def test_start_that_fails_says_why(console):
    text = await console.error("start test_console:Nothing")
    assert "has no 'Nothing'" in text


async def test_exit_ends_a_service_normally_and_kill_abnormally(node, console):
    first = await node.newservice(Store, ".first")
    second = await node.newservice(Store, ".second")
    first_ctx, second_ctx = node.context_of(first), node.context_of(second)
    assert await console.ok("exit .first") == f"{first} exited"
    assert await console.ok(f"kill {second}") == f"{second} killed"
    assert (first_ctx.exit_reason, second_ctx.exit_reason) == ("exited", "killed")
    assert node.lookup(".first") is None and node.lookup(".second") is None


async def test_the_console_cannot_stop_itself_or_the_system_service(node, console):
    addresses = {type(node.context_of(a).instance).__name__: a for a in node.services()}
    assert "cannot stop itself" in await console.error(f"kill {addresses['ConsoleServer']}")
    assert "system service" in await console.error(f"exit {addresses['_System']}")


async def test_service_lists_the_unique_services(node, console):
    single = await node.uniqueservice(Single)
    assert (await console.ok("service")).splitlines()[1].split() == [
        "test_console:Single",
        str(single),
    ]


async def test_task_shows_pending_calls_and_where_each_task_waits(node, console):
    await node.newservice(Waiter, ".asker")
    holder = await node.newservice(Waiter, ".holder")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(node.call, ".asker", "ask", ".holder")
        while not node.context_of(node.lookup(".asker")).pending:
            await trio.sleep(0.01)
        text = await console.ok("task .asker")
        await node.call(holder, "release")
    assert "pending calls:\nsession  target   timeout\n1        .holder  30s" in text
    assert "owes answers to: \n  'ask' from :01000001 session" in text
    assert "in ask" in text  # the handler's own line, not trio's


async def test_netstat_without_connections_says_so(console):
    assert await console.ok("netstat") == "no client connections"


class Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        if record.name == "test_console":
            self.messages.append(record.getMessage())


async def test_log_sets_one_services_level(node, console):
    await node.newservice(Store, ".loud")
    await node.newservice(Store, ".quiet")
    root, collect = logging.getLogger(), Collect()
    previous = root.level
    root.addHandler(collect)
    root.setLevel(logging.INFO)
    try:
        assert await console.ok("log .loud debug") == f"{node.lookup('.loud')} logs at DEBUG"
        await node.call(".loud", "talk", "a")
        await node.call(".quiet", "talk", "b")
        assert collect.messages == ["debug line a", "info line a", "info line b"]
        await console.ok("log .loud default")
        assert root.level == logging.INFO
    finally:
        service_levels.levels.clear()
        root.removeHandler(collect)
        root.setLevel(previous)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("frob", "unknown command 'frob': type help for the commands"),
        ("info", "info: missing ADDR\nusage: info ADDR"),
        ("info store", "info: ADDR 'store' is neither an address like ':0100000a' nor a name"),
        ("info :zz", "info: ADDR: address ':zz' is not of the form ':0100000a'"),
        ("info .nobody", "info: call to .nobody failed: NoSuchService"),
        ("info :0100ffff", "info: call to :0100ffff failed: NoSuchService"),
        ("call .store get key", "call: argument 1 (key) is not a JSON literal"),
        ('call .store get "k" {"a": ', 'call: argument 2 ({"a":) is not a JSON literal'),
        ("log .store LOUD", "log: LEVEL: 'LOUD' is not a log level"),
        ("stat now", "stat: unexpected 'now' at the end"),
        ("kill .store extra", "kill: unexpected 'extra' at the end"),
    ],
)
async def test_bad_input_says_which_argument_and_why(node, console, line, why):
    await node.newservice(Store, ".store")
    assert why in await console.error(line)
    assert await console.ok("ping .store")  # and the console goes on


async def test_an_overlong_line_is_refused_and_closes_the_connection(console):
    await console.stream.send_all(b"x" * 70_000)
    ok, text = await console.answer()
    assert not ok and "line longer than 65536 bytes" in text
    assert await console.closed()


async def test_a_password_protected_console_asks_for_it_first(node):
    session, greeting = await connect(await start_console(node, "s3cret"))
    assert greeting.endswith("password required: send it on a line")
    assert await session.ok("s3cret") == "authenticated: type help for the commands"
    assert "help" in await session.ok("help")


async def test_a_wrong_password_is_refused_and_closes_the_connection(node, monkeypatch):
    monkeypatch.setattr(console_server, "WRONG_PASSWORD_DELAY", 0)
    session, _ = await connect(await start_console(node, "s3cret"))
    assert await session.error("help") == "wrong password"  # the first line is the password
    assert await session.closed()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7", "example.com"])
async def test_a_console_off_loopback_without_a_password_is_refused(node, host):
    with pytest.raises(ServiceStartError, match="ConsoleError: .* not a loopback address"):
        await node.newservice(ConsoleServer, host, 0)


async def test_commands_declared_elsewhere_join_the_console(node, console):
    @console_command("echo-test", "echo-test WORD", "say WORD back")
    async def echo(console_server, words):
        return words.text("WORD")

    try:
        assert await console.ok("echo-test hello") == "hello"
        assert "echo-test WORD" in await console.ok("help")
    finally:
        del COMMANDS["echo-test"]

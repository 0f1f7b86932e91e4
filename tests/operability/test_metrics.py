"""The metrics endpoint, scraped and parsed with prometheus_client.parser."""

import json

import pytest
import trio
import trio.testing
from raw_http import get, http_with_headers
from scrape import scrape, start_metrics, value

from meshnet import CallError, RestartPolicy, Service, command
from meshnet.framing import pack
from meshnet.gate import GateServer
from meshnet.login.client import LoginRefused, login
from meshnet.login.loginserver import LoginServer
from meshnet.login.wire import parse_token

HOST = "127.0.0.1"
SERVICE_LABELS = {"class", "name"}
"""Every per-service series is labelled by these, and never by an address or a user."""


class Store(Service):
    async def init(self, name: str | None = None) -> None:
        if name:
            self.register(name)

    @command
    async def put(self, value):
        return value

    @command
    async def fail(self):
        raise ValueError("no good")

    @command
    async def nap(self, seconds):
        await trio.sleep(seconds)

    @command
    async def ask(self, target, name, *args):
        return await self.call(target, name, *args, timeout=1)


class Crasher(Service):
    @command
    async def crash(self):
        self.fork(self._boom)

    async def _boom(self):
        raise RuntimeError("crash")


class Echo(GateServer):
    async def connect(self, fd, addr):
        self.openclient(fd)

    async def message(self, fd, packet):
        self.connections.write(fd, packet)


class Logins(LoginServer):
    async def init(self) -> None:
        self.register(".logins")
        await super().init(HOST, 0)

    async def auth_handler(self, token):
        fields = parse_token(token)
        if fields.password != b"right":
            raise ValueError("wrong password")
        return fields.server, fields.user

    async def login_handler(self, server, uid, secret):
        return 1


def store(families, sample, **labels):
    return value(families, sample, **{"class": "test_metrics:Store", "name": ".store", **labels})


async def test_messages_handled_and_failed_are_counted_per_class_and_name(node):
    port = await start_metrics(node)
    await node.newservice(Store, ".store")
    for i in range(3):
        await node.call(".store", "put", i)
    with pytest.raises(CallError):
        await node.call(".store", "fail")
    families = await scrape(port)
    assert store(families, "meshnet_messages_handled_total", outcome="ok") == 3
    assert store(families, "meshnet_messages_handled_total", outcome="error") == 1
    assert store(families, "meshnet_services") == 1
    assert store(families, "meshnet_mailbox_messages") == 0


async def test_no_series_is_labelled_by_address(node):
    port = await start_metrics(node)
    for _ in range(20):
        await node.newservice(Store)
    families = await scrape(port)
    for name, samples in families.items():
        if name.startswith("meshnet_"):
            for sample in samples:
                assert set(sample.labels) <= SERVICE_LABELS | {"outcome", "kind", "status", "le"}
    unnamed = {"class": "test_metrics:Store", "name": ""}
    assert value(families, "meshnet_services", **unnamed) == 20


async def test_the_counters_of_services_that_ended_are_kept(node):
    port = await start_metrics(node)
    for _ in range(3):
        address = await node.newservice(Store, ".store")
        await node.call(address, "put", 1)
        await node.kill(address)
    families = await scrape(port)
    assert store(families, "meshnet_messages_handled_total", outcome="ok") == 3
    assert store(families, "meshnet_services") == 0


async def test_call_errors_are_counted_by_kind(node, autojump_clock):
    port = await start_metrics(node)
    await node.newservice(Store, ".store")
    await node.newservice(Store, ".other")
    for target, name, *args in ((".nobody", "put", 1), (".other", "fail"), (".other", "nap", 5)):
        with pytest.raises(CallError):
            await node.call(".store", "ask", target, name, *args)
    families = await scrape(port)
    for kind in ("NoSuchService", "CallError", "CallTimeout"):
        assert store(families, "meshnet_call_errors_total", kind=kind) == 1


async def test_messages_sent_are_counted_while_observed(node):
    port = await start_metrics(node)
    await node.newservice(Store, ".store")
    await node.newservice(Store, ".other")
    await node.call(".store", "ask", ".other", "put", 1)
    families = await scrape(port)
    assert store(families, "meshnet_messages_sent_total") == 1


async def test_the_latency_histogram_times_a_quiet_services_handlers(node):
    port = await start_metrics(node)
    await node.newservice(Store, ".store")
    await node.call(".store", "nap", 0.02)  # awaits count: the handler took 20 ms or more
    families = await scrape(port)
    assert store(families, "meshnet_handler_seconds_count") == 1
    assert store(families, "meshnet_handler_seconds_bucket", le="0.016384") == 0
    assert store(families, "meshnet_handler_seconds_bucket", le="+Inf") == 1
    assert store(families, "meshnet_handler_seconds_sum") >= 0.02


async def test_restarts_are_counted_by_class(node):
    port = await start_metrics(node)
    address = await node.newservice(Crasher, restart=RestartPolicy("permanent"))
    await node.send(address, "crash")
    with trio.fail_after(10):
        while not node.restarts:
            await trio.sleep(0.01)
    families = await scrape(port)
    assert value(families, "meshnet_restarts_total", **{"class": "test_metrics:Crasher"}) == 1


async def test_the_gate_reports_connections_traffic_and_errors(node):
    port = await start_metrics(node)
    gate = await node.newservice(Echo, {"address": HOST, "port": 0, "max_packet": 100})
    gate_port = (await node.call(gate, "ports"))["port"]
    labels = {"class": "test_metrics:Echo", "name": ""}
    stream = await trio.open_tcp_stream(HOST, gate_port)
    await stream.send_all(pack(b"hello") + pack(b"again"))
    received = b""
    with trio.fail_after(10):
        while len(received) < 14:
            received += await stream.receive_some()
    families = await scrape(port)
    assert value(families, "meshnet_gate_connections", **labels) == 1
    assert value(families, "meshnet_gate_received_packets_total", **labels) == 2
    assert value(families, "meshnet_gate_received_bytes_total", **labels) == 10
    assert value(families, "meshnet_gate_sent_bytes_total", **labels) == 10
    await stream.send_all(b"\xff\xff")  # a packet over max_packet: the gate closes it
    with trio.fail_after(10):
        while await stream.receive_some():
            pass
        while value(await scrape(port), "meshnet_gate_connections", **labels):
            await trio.sleep(0.01)
    families = await scrape(port)
    assert value(families, "meshnet_gate_errors_total", kind="protocol", **labels) == 1
    assert value(families, "meshnet_gate_received_packets_total", **labels) == 2  # kept


async def test_the_login_server_reports_attempts_by_status(node):
    port = await start_metrics(node)
    login_port = await node.call(await node.newservice(Logins), "port")
    await login(HOST, login_port, "game", "alice", "right")
    for _ in range(2):
        with pytest.raises(LoginRefused):
            await login(HOST, login_port, "game", "alice", "wrong")
    families = await scrape(port)
    labels = {"class": "test_metrics:Logins", "name": ".logins"}
    assert value(families, "meshnet_login_attempts_total", status="200", **labels) == 1
    assert value(families, "meshnet_login_attempts_total", status="401", **labels) == 2


async def test_process_figures_come_with_the_nodes(node):
    families = await scrape(await start_metrics(node))
    assert value(families, "process_resident_memory_bytes") > 0
    assert "python_gc_objects_collected" in families


async def test_status_json_has_the_services_and_the_rates_of_the_last_minutes(node, autojump_clock):
    port = await start_metrics(node)
    await node.newservice(Store, ".store")
    for _ in range(3):
        await node.call(".store", "put", 1)
        await trio.sleep(2.5)
    status, headers, body = await http_with_headers(port, get("/status.json"))
    assert status == "HTTP/1.1 200 OK" and headers["content-type"] == "application/json"
    data = json.loads(body)
    row = next(s for s in data["services"] if s["name"] == ".store")
    assert (row["class"], row["handled"], row["instances"]) == ("test_metrics:Store", 3, 1)
    assert len(data["history"]["handled"]) >= 2
    assert max(data["history"]["services"][row["key"]]) > 0


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (get("/nothing"), "HTTP/1.1 404 Not Found"),
        (get("/metrics", "POST"), "HTTP/1.1 405 Method Not Allowed"),
        (b"hello\r\n\r\n", "HTTP/1.1 400 Bad Request"),
        (
            b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 2000,
            "HTTP/1.1 431 Request Header Fields Too Large",
        ),
    ],
)
async def test_anything_else_gets_an_error_status(node, request_bytes, status):
    port = await start_metrics(node)
    assert (await http_with_headers(port, request_bytes))[0] == status
    assert (await http_with_headers(port, get("/metrics")))[
        0
    ] == "HTTP/1.1 200 OK"  # and it goes on


async def test_the_status_page_is_served_and_head_has_no_body(node):
    port = await start_metrics(node)
    status, headers, page = await http_with_headers(port, get("/"))
    assert status == "HTTP/1.1 200 OK" and headers["content-type"].startswith("text/html")
    assert b"/status.json" in page
    status, headers, body = await http_with_headers(port, get("/", "HEAD"))
    assert (status, body) == ("HTTP/1.1 200 OK", b"")
    assert int(headers["content-length"]) == len(page)


class Full(Service):
    """Holds its one worker on ``hold`` and has room for one message more."""

    mailbox_size = 1
    max_concurrency = 1

    async def init(self) -> None:
        self.release = trio.Event()

    @command
    async def hold(self) -> None:
        await self.release.wait()

    async def on_client(self, fd: int, packet: bytes) -> None:
        pass


async def test_a_message_post_here_could_not_hand_over_is_not_counted_as_sent(node):
    """The reactor's caller posts it then, which counts it: once, not twice."""
    node.observe()
    sender = node.context_of(await node.newservice(Store))
    full = await node.newservice(Full)
    await node.send(full, "hold")
    await trio.testing.wait_all_tasks_blocked()
    await node.send(full, "hold")  # the mailbox's one place
    assert sender.post_here(full, "client", (1, b"packet")) is False
    assert sender.stats.sent == 0
    node.context_of(full).instance.release.set()


async def test_a_message_post_here_handed_over_is_counted_as_sent(node):
    node.observe()
    sender = node.context_of(await node.newservice(Store))
    full = await node.newservice(Full)
    assert sender.post_here(full, "client", (1, b"packet")) is None
    assert sender.stats.sent == 1

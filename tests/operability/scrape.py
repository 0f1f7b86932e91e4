"""A test's HTTP client for the metrics endpoint: one request, the whole response."""

from __future__ import annotations

import trio
from prometheus_client.parser import text_string_to_metric_families

from meshnet.metrics import MetricsServer

HOST = "127.0.0.1"
WAIT = 10.0


async def start_metrics(node) -> int:
    """A metrics server on a free loopback port; its port."""
    return await node.call(await node.newservice(MetricsServer, HOST, 0), "port")


async def http(port: int, request: bytes) -> tuple[str, dict[str, str], bytes]:
    """Send a raw request; return the status line, the headers and the body."""
    with trio.fail_after(WAIT):
        async with await trio.open_tcp_stream(HOST, port) as stream:
            await stream.send_all(request)
            received = b""
            while chunk := await stream.receive_some():
                received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    return status, headers, body


def get(path: str, method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()


async def scrape(port: int) -> dict[str, list]:
    """``/metrics`` parsed by prometheus_client: family name -> its samples."""
    status, headers, body = await http(port, get("/metrics"))
    assert status == "HTTP/1.1 200 OK"
    assert headers["content-type"].startswith("text/plain; version=")
    return {f.name: f.samples for f in text_string_to_metric_families(body.decode())}


def value(families: dict[str, list], sample_name: str, **labels: str) -> float:
    """The value of the one sample named ``sample_name`` whose labels include ``labels``."""
    family = sample_name.removesuffix("_total").removesuffix("_bucket")
    family = family.removesuffix("_count").removesuffix("_sum")
    found = [
        s.value
        for s in families.get(family, [])
        if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, f"{sample_name} {labels}: {found} in {families.get(family)}"
    return found[0]

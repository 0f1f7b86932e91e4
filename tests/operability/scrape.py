"""Scraping the metrics endpoint of a test's node and reading what it says."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from raw_http import HOST, get, http_with_headers

from meshnet.metrics import MetricsServer


async def start_metrics(node) -> int:
    """A metrics server on a free loopback port; its port."""
    return await node.call(await node.newservice(MetricsServer, HOST, 0), "port")


async def scrape(port: int) -> dict[str, list]:
    """``/metrics`` parsed by prometheus_client: family name -> its samples."""
    status, headers, body = await http_with_headers(port, get("/metrics"))
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

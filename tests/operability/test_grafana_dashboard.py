"""examples/grafana-dashboard.json charts the metrics a demo node really serves."""

import json
import re
from pathlib import Path

import pytest
import trio
from demo_setup import HOST, start_demo
from scrape import scrape, start_metrics

from meshnet.framing import pack
from meshnet.login.client import LoginRefused, login

DASHBOARD = Path(__file__).resolve().parents[2] / "examples" / "grafana-dashboard.json"
METRIC = re.compile(r"\b((?:meshnet|process)_[a-z_]+)\b")


def queried_metrics() -> set[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [target["expr"] for panel in panels for target in panel["targets"]]
    return {name for expr in exprs for name in METRIC.findall(expr)}


async def provoke_every_family(demo) -> None:
    """A refused login, a refused msgserver handshake, a packet cut short at the hub."""
    with pytest.raises(LoginRefused):
        await login(HOST, demo.login, "demo", "nobody", "wrong")
    async with await trio.open_tcp_stream(HOST, demo.msgserver) as stream:
        await stream.send_all(pack(b"bm9ib2R5@ZGVtbw==#MQ==:1:aGk="))
        with trio.fail_after(10):
            while await stream.receive_some():
                pass  # 404 User Not Found, then the server closes
    async with await trio.open_tcp_stream(HOST, demo.hub) as stream:
        await stream.send_all(b"\x00\x10half")


async def test_every_metric_the_dashboard_queries_is_served(node, tmp_path):
    port = await start_metrics(node)
    await provoke_every_family(await start_demo(node, tmp_path / "accounts.sqlite3"))
    with trio.fail_after(10):  # the hub counts the cut packet once the connection is gone
        while "meshnet_gate_errors" not in await scrape(port):
            await trio.sleep(0.01)
    families = set(await scrape(port))  # a family is there even before it has a sample
    queried = {re.sub(r"_(total|bucket)$", "", name) for name in queried_metrics()}
    assert len(queried) >= 15
    assert queried <= families, sorted(queried - families)

"""The status page played in headless Chromium against a running demo node."""

import json
import os
import shutil
from pathlib import Path

import pytest
import trio
from demo_setup import HOST, start_demo
from scrape import start_metrics

from demo_game.web import WEB_DIR
from meshnet.login.client import LoginRefused, login

CHROMIUM = Path("/usr/bin/chromium")
NODE_MODULES = WEB_DIR / "node_modules"
SCRIPT = Path(__file__).with_name("status_page.cjs")
BROWSER_TIMEOUT = 120.0
"""Seconds the browser script may take before the test gives up on it (a hang guard)."""


@pytest.mark.skipif(
    not (
        (NODE_MODULES / "playwright-core").is_dir() and CHROMIUM.exists() and shutil.which("node")
    ),
    reason="needs playwright-core (make web), Debian's chromium (make browser) and node",
)
async def test_the_status_page_shows_services_gates_connections_logins_and_charts(node, tmp_path):
    port = await start_metrics(node)
    demo = await start_demo(node, tmp_path / "accounts.sqlite3")
    with pytest.raises(LoginRefused):
        await login(HOST, demo.login, "demo", "nobody", "wrong")
    client = await trio.open_tcp_stream(HOST, demo.hub)  # stays open: one connection
    env = {**os.environ, "NODE_PATH": str(NODE_MODULES), "CHROMIUM": str(CHROMIUM)}
    with trio.fail_after(BROWSER_TIMEOUT):
        done = await trio.run_process(
            ["node", str(SCRIPT), f"http://{HOST}:{port}/"],
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()
    shown = json.loads(done.stdout)
    assert shown["node"] == "test (id 1)"
    services = {(row[0], row[1]) for row in shown["services"]}
    assert (".auth", "demo_game.auth:Auth") in services
    assert ("–", "demo_game.hub:Hub") in services
    hub = next(row for row in shown["gates"] if row[1] == "demo_game.hub:Hub")
    assert hub[2] == "1"  # one open connection
    assert [row[1] for row in shown["connections"]] == ["tcp"]
    assert ["401", "1"] in shown["logins"]
    assert set(shown["charts"]) == {
        "handled", "errors", "received_bytes", "sent_bytes", "connections", "logins",
    }  # fmt: skip
    assert all(chart["points"] >= 2 for chart in shown["charts"].values())
    await client.aclose()

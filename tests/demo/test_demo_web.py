"""The browser page: its HTTP server, and the page itself played in headless Chromium."""

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
import trio
from demo_cluster_setup import cluster_demo
from demo_setup import HOST, start_demo
from raw_http import get, http

from demo_game.http import MAX_HEAD
from demo_game.web import CBOR_X, WEB_DIR

CHROMIUM = Path("/usr/bin/chromium")
NODE_MODULES = WEB_DIR / "node_modules"
BROWSER_SCRIPT = Path(__file__).with_name("browser_demo.cjs")
BROWSER_TIMEOUT = 120.0
"""Seconds the browser script may take before the test gives up on it (a hang guard)."""
needs_web_packages = pytest.mark.skipif(
    not CBOR_X.is_dir(), reason="the page's npm packages are not installed (make web)"
)


def sized_head(size: int) -> bytes:
    """A GET of the page whose head, blank line included, is ``size`` bytes long."""
    start, end = b"GET / HTTP/1.1\r\nX: ", b"\r\n\r\n"
    return start + b"y" * (size - len(start) - len(end)) + end


async def test_the_page_and_its_config_are_served(node, tmp_path):
    demo = await start_demo(node, tmp_path / "accounts.sqlite3")
    status, page = await http(demo.web, get("/"))
    assert status == "HTTP/1.1 200 OK"
    assert b'<script src="/cbor-x/dist/index.js">' in page
    status, config = await http(demo.web, get("/config.json"))
    config = json.loads(config)
    assert config["ws_port"] == demo.hub_ws
    assert {m["name"] for m in config["protocol"]["messages"]} == {
        "signup",
        "signin",
        "login",
        "ping",
        "wallet",
        "enter_subgame",
        "leave_subgame",
        "push",
    }
    assert await http(demo.web, get("/", "HEAD")) == ("HTTP/1.1 200 OK", b"")


@needs_web_packages
async def test_cbor_x_is_served_from_the_installed_package(node, tmp_path):
    demo = await start_demo(node, tmp_path / "accounts.sqlite3")
    status, script = await http(demo.web, get("/cbor-x/dist/index.js"))
    assert status == "HTTP/1.1 200 OK"
    assert script == (CBOR_X / "dist" / "index.js").read_bytes()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (get("/cbor-x/../../index.html"), "HTTP/1.1 404 Not Found"),
        (get("/cbor-x/%2e%2e/playwright-core/package.json"), "HTTP/1.1 404 Not Found"),
        (get("/node_modules/cbor-x/package.json"), "HTTP/1.1 404 Not Found"),
        (get("/package.json"), "HTTP/1.1 404 Not Found"),
        (get("/", "POST"), "HTTP/1.1 405 Method Not Allowed"),
        (b"hello\r\n\r\n", "HTTP/1.1 400 Bad Request"),
        (
            b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 2000,
            "HTTP/1.1 431 Request Header Fields Too Large",
        ),
        (sized_head(MAX_HEAD + 1), "HTTP/1.1 431 Request Header Fields Too Large"),
        (sized_head(2 * MAX_HEAD - 100), "HTTP/1.1 431 Request Header Fields Too Large"),
        (sized_head(MAX_HEAD), "HTTP/1.1 200 OK"),
        (get("/cbor-x/%00"), "HTTP/1.1 400 Bad Request"),
        (get("/%00/index.html"), "HTTP/1.1 400 Bad Request"),
        (get("/cbor-x/a%0Ab"), "HTTP/1.1 400 Bad Request"),
    ],
)
async def test_nothing_else_is_served(node, tmp_path, request_bytes, status):
    demo = await start_demo(node, tmp_path / "accounts.sqlite3")
    assert (await http(demo.web, request_bytes))[0] == status


@pytest.mark.parametrize(
    ("path", "status"),
    [("/nowhere", "HTTP/1.1 404 Not Found"), ("/cbor-x/%00", "HTTP/1.1 400 Bad Request")],
)
async def test_an_error_answer_to_head_has_no_body(node, tmp_path, path, status):
    demo = await start_demo(node, tmp_path / "accounts.sqlite3")
    assert await http(demo.web, get(path, "HEAD")) == (status, b"")


async def test_a_nul_byte_in_the_path_is_logged_as_a_bad_request_not_a_failure(
    node, tmp_path, caplog
):
    caplog.set_level(logging.INFO)
    demo = await start_demo(node, tmp_path / "accounts.sqlite3")
    await http(demo.web, get("/cbor-x/%00"))
    assert "control character in the path" in caplog.text
    assert not [record for record in caplog.records if record.levelname == "ERROR"]


async def test_a_reply_is_followed_by_a_clean_close_even_if_the_client_sends_more(node, tmp_path):
    # A POST's body often comes in a segment of its own, after the head the server answers:
    # closing over it unread would reset the connection and could destroy the reply.
    demo = await start_demo(node, tmp_path / "accounts.sqlite3")
    async with await trio.open_tcp_stream(HOST, demo.web) as stream:
        await stream.send_all(get("/", "POST"))
        reply = await stream.receive_some()
        await stream.send_all(b"the body, too late")
        await trio.sleep(0.05)
        with trio.fail_after(5):
            while chunk := await stream.receive_some():
                reply += chunk
    assert reply.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")


needs_chromium = pytest.mark.skipif(
    not (CHROMIUM.exists() and shutil.which("node")),
    reason="needs Debian's chromium and node (make browser installs chromium)",
)


async def play_page(web: int, **env: str) -> list[str]:
    """browser_demo.cjs against the page on port ``web``; the page's log."""
    url = f"http://{HOST}:{web}/"
    env = {**os.environ, "NODE_PATH": str(NODE_MODULES), "CHROMIUM": str(CHROMIUM), **env}
    with trio.fail_after(BROWSER_TIMEOUT):
        done = await trio.run_process(
            ["node", str(BROWSER_SCRIPT), url, "alice", "secret"],
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode().splitlines()


@needs_web_packages
@needs_chromium
async def test_the_page_signs_up_logs_in_and_pings_in_chromium(node, tmp_path):
    demo = await start_demo(node, tmp_path / "accounts.sqlite3")
    log = await play_page(demo.web)
    assert "ping: ok {}" in log
    assert log[-1].startswith("wallet: error gold and the subgame come with the demo on several")
    assert any(line.startswith('push: ok {"text":"welcome alice') for line in log)


@needs_web_packages
@needs_chromium
async def test_the_page_moves_the_gold_into_the_subgame_and_back_in_chromium(tmp_path, redis_url):
    async with cluster_demo(tmp_path, redis_url=redis_url) as cluster:
        log = await play_page(cluster.demo.web, GOLD="1")
    assert log[-1] == 'wallet: ok {"main":100,"subgame":0,"in_transit":0}'

"""The node config's console, console_password, metrics and slow_handler keys, and a node
started from such a config."""

import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from demo_game.launcher import operator_lines
from meshnet.config import ConfigError, load_config
from meshnet.gcpolicy import YOUNG_THRESHOLD
from meshnet.hostport import HostPortError, is_loopback, parse_hostport
from meshnet.watchdog import DEFAULT_SLOW_HANDLER

REPO = Path(__file__).resolve().parents[2]
START = '[start]\nservice = "hello:Main"\nargs = [["Alice"], 0.05]\n'


def config(tmp_path, node_keys: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(
        f'[node]\nname = "n"\nid = 1\npaths = ["{REPO / "examples"}"]\n{node_keys}\n{START}'
    )
    return path


def test_the_keys_are_read(tmp_path):
    loaded = load_config(
        config(
            tmp_path,
            'console = "0.0.0.0:7000"\nconsole_password = "pw"\nmetrics = "[::1]:9100"\n'
            "slow_handler = 0.5",
        )
    )
    assert loaded.console == ("0.0.0.0", 7000)
    assert loaded.console_password == "pw"
    assert loaded.metrics == ("::1", 9100)
    assert loaded.slow_handler == 0.5


def test_without_them_there_is_no_console_or_metrics_and_the_watchdog_waits_5_seconds(tmp_path):
    loaded = load_config(config(tmp_path, ""))
    assert (loaded.console, loaded.metrics) == (None, None)
    assert loaded.slow_handler == DEFAULT_SLOW_HANDLER == 5.0
    assert load_config(config(tmp_path, 'slow_handler = "none"')).slow_handler is None


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ('console = "0.0.0.0:7000"', "node.console listens on 0.0.0.0, which is not a loopback"),
        ('console = "game.example:7000"', "which is not a loopback address"),
        ('console_password = "pw"', "node.console_password is set but node.console is not"),
        ('console = "127.0.0.1:7000"\nconsole_password = ""', "must not be empty"),
        ('console = "7000"', "node.console: '7000' is not of the form HOST:PORT"),
        ('metrics = "127.0.0.1:http"', "node.metrics: '127.0.0.1:http': the port must be"),
        ('metrics = "::1:9100"', "write an IPv6 address in brackets"),
        ("metrics = 9100", "'node.metrics' must be str, not int"),
        ("slow_handler = 0", "node.slow_handler must be positive seconds or 'none'"),
        ('slow_handler = "soon"', "node.slow_handler must be positive seconds or 'none'"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_key(tmp_path, keys, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(config(tmp_path, keys))


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("127.0.0.1:0", ("127.0.0.1", 0)), ("[::1]:65535", ("::1", 65535)), ("h:1", ("h", 1))],
)
def test_host_and_port_are_parsed(text, parsed):
    assert parse_hostport(text) == parsed


@pytest.mark.parametrize("text", [":80", "host:", "host:65536", "host:-1", "::1:80"])
def test_a_malformed_host_and_port_is_refused(text):
    with pytest.raises(HostPortError):
        parse_hostport(text)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.3.2.1", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("10.0.0.1", False), ("game.example", False)],
)  # fmt: skip
def test_only_loopback_hosts_count_as_loopback(host, loopback):
    assert is_loopback(host) is loopback


def run_node(path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "meshnet", "node", str(path)],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_public_console_without_a_password_stops_the_node_at_start(tmp_path):
    process = run_node(config(tmp_path, 'console = "0.0.0.0:0"'))
    _, err = process.communicate(timeout=30)
    assert process.returncode == 1
    assert err.startswith("meshnet: error: ") and "not a loopback address" in err
    assert err.strip().count("\n") == 0


def test_a_node_started_from_its_config_serves_its_console_and_metrics(tmp_path):
    path = config(tmp_path, 'console = "127.0.0.1:0"\nmetrics = "127.0.0.1:0"')
    process = run_node(path)
    try:
        ports = {}
        while len(ports) < 2:
            line = process.stderr.readline()
            assert line, "the node ended before it listened"
            found = re.search(r"(debug console|metrics) on (?:http://)?127\.0\.0\.1:(\d+)", line)
            if found:
                ports[found[1]] = int(found[2])
        console = subprocess.run(
            [sys.executable, "-m", "meshnet", "console", f"127.0.0.1:{ports['debug console']}"],
            input="ping .greeter\ngc\n",
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert console.returncode == 0, console.stdout + console.stderr
        pinged, collected = console.stdout.splitlines()[-2:]
        assert pinged.endswith(" ms")
        assert collected.endswith("(young collections every 10000 allocations)")
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['metrics']}/metrics") as reply:
            metrics = reply.read().decode()
        assert 'meshnet_services{class="hello:Greeter",name=".greeter"} 1.0' in metrics
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert process.returncode == 0


def test_make_demo_says_where_the_console_and_the_status_page_are():
    config = load_config(REPO / "demo_game" / "node.toml")
    assert operator_lines(config, "python") == [
        "  debug console     127.0.0.1:7000   (python -m meshnet console 127.0.0.1:7000)",
        "  status page       http://127.0.0.1:9100/   (Prometheus: http://127.0.0.1:9100/metrics)",
    ]


def test_a_node_collects_garbage_every_10000_allocations_unless_told(tmp_path):
    assert load_config(config(tmp_path, "")).gc_threshold == YOUNG_THRESHOLD == 10_000
    assert load_config(config(tmp_path, "gc_threshold = 50000")).gc_threshold == 50_000
    assert load_config(config(tmp_path, 'gc_threshold = "python"')).gc_threshold is None


@pytest.mark.parametrize("value", ["0", "-5", "2147483648", '"often"'])
def test_a_bad_gc_threshold_is_an_error_naming_the_key(tmp_path, value):
    with pytest.raises(ConfigError, match="node.gc_threshold must be 1 to 2147483647 allocations"):
        load_config(config(tmp_path, f"gc_threshold = {value}"))

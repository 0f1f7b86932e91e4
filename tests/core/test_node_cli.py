"""``python -m meshnet node CONFIG``: boot, clean stop on signals, one-line config errors."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "examples" / "hello.toml"


def meshnet(*args, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-m", "meshnet", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def wait_for_line(process, text, timeout=20):
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"{text!r} never appeared; got:\n{''.join(lines)}")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_hello_node_runs_and_stops_cleanly_on_a_signal(signum):
    process = meshnet("node", str(HELLO))
    wait_for_line(process, "Hello, Alice!")
    process.send_signal(signum)
    _, rest = process.communicate(timeout=20)
    assert process.returncode == 0
    assert "greeter stopping" in rest
    assert "main says goodbye" in rest
    assert "Traceback" not in rest


def write(tmp_path, text):
    path = tmp_path / "node.toml"
    path.write_text(text)
    return str(path)


GOOD_NODE = '[node]\nname = "n"\nid = 1\n'


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "no such file"),
        ("[node\nname = 1", "not valid TOML"),
        (GOOD_NODE + 'colour = "red"\n[start]\nservice = "a:B"\n', "unknown key 'node.colour'"),
        (GOOD_NODE + '[start]\nservice = "a:B"\n[extra]\n', "unknown section [extra]"),
        ('[node]\nname = "n"\n[start]\nservice = "a:B"\n', "missing required key 'node.id'"),
        ('[node]\nname = "n"\nid = "one"\n[start]\nservice = "a:B"\n', "'node.id' must be int"),
        ('[node]\nname = "n"\nid = 300\n[start]\nservice = "a:B"\n', "between 0 and 255"),
        (GOOD_NODE + 'log_level = "LOUD"\n[start]\nservice = "a:B"\n', "not a logging level"),
        (GOOD_NODE + '[start]\nservice = "no_such_module:Main"\n', "cannot import module"),
        (GOOD_NODE + '[start]\nservice = "meshnet.node:Nope"\n', "has no 'Nope'"),
        (GOOD_NODE + '[start]\nservice = "meshnet.node:logger"\n', "not a meshnet.Service"),
    ],
)
def test_a_bad_config_prints_one_error_line_and_exits_non_zero(tmp_path, text, message):
    path = str(tmp_path / "missing.toml") if text is None else write(tmp_path, text)
    process = meshnet("node", path)
    out, err = process.communicate(timeout=20)
    assert process.returncode != 0
    assert message in err
    assert err.strip().count("\n") == 0
    assert err.startswith("meshnet: error:")


def test_a_start_service_whose_init_fails_logs_its_traceback_then_one_error_line(tmp_path):
    examples = REPO / "examples"
    path = write(
        tmp_path,
        GOOD_NODE
        + f'paths = ["{examples}"]\n[start]\nservice = "hello:Main"\nargs = ["only one"]\n',
    )
    process = meshnet("node", path)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 1
    assert "failed to start" in err and "Traceback" in err
    assert err.splitlines()[-1].startswith("meshnet: error: ")
    assert "did not start: TypeError" in err.splitlines()[-1]


@pytest.mark.parametrize(
    "source, error",
    [
        ("def broken(:\n", "SyntaxError"),
        ("raise RuntimeError('no database at import time')\n", "RuntimeError: no database"),
    ],
)
@pytest.mark.parametrize("log_level", ["INFO", "DEBUG"])
def test_a_start_module_that_fails_to_import_is_one_error_line(tmp_path, source, error, log_level):
    (tmp_path / "broken_game.py").write_text(source)
    path = write(
        tmp_path,
        GOOD_NODE
        + f'log_level = "{log_level}"\npaths = ["{tmp_path}"]\n'
        + '[start]\nservice = "broken_game:Main"\n',
    )
    process = meshnet("node", path)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 1
    assert err.splitlines()[-1].startswith("meshnet: error: cannot import module 'broken_game'")
    assert error in err.splitlines()[-1]
    assert ("Traceback" in err) == (log_level == "DEBUG")
    if log_level == "INFO":
        assert err.strip().count("\n") == 0

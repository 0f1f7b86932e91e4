"""``python -m meshnet proto dump MODULE`` prints a protocol table for other languages."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def dump(module):
    env = dict(os.environ, PYTHONPATH=str(REPO / "tests" / "gate"))
    return subprocess.run(
        [sys.executable, "-m", "meshnet", "proto", "dump", module],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_dump_prints_the_protocol_table_as_json():
    result = dump("gate_example_proto")
    assert result.returncode == 0
    table = json.loads(result.stdout)
    assert table["protocol"] == "example"
    assert {m["name"] for m in table["messages"]} >= {"signin"}


def test_dump_of_an_unimportable_module_is_one_error_line():
    result = dump("no_such_module")
    assert result.returncode == 1
    assert result.stderr.startswith("meshnet: error: cannot import 'no_such_module'")
    assert result.stderr.strip().count("\n") == 0

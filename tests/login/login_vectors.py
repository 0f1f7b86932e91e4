"""Access to the skynet-recorded vectors in shared/vectors/ for parametrised tests.

The vectors live beside the repository (``../shared/vectors``). If a file is absent, every
test parametrised from it is collected once and skipped with a message naming the path.
"""

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

VECTORS_DIR = Path(__file__).resolve().parents[3] / "shared" / "vectors"

Entry = dict[str, Any]


@cache
def load(filename: str) -> dict[str, Any] | None:
    """The parsed vector file, or None if it does not exist."""
    path = VECTORS_DIR / filename
    if not path.exists():
        return None
    return json.loads(path.read_text())


def params(
    filename: str, path: str, describe: Callable[[Entry], str | None] | None = None
) -> list[Any]:
    """One ``pytest.param`` per entry of the list at dotted ``path``.

    Ids are ``<n>-<describe(entry)>``, by default ``<n>-<comment>`` (or ``<n>`` without one).
    """

    def build(data: dict[str, Any]) -> list[Any]:
        entries = data
        for key in path.split("."):
            entries = entries[key]
        return [
            pytest.param(entry, id=_test_id(n, (describe or _comment)(entry)))
            for n, entry in enumerate(entries)
        ]

    return derived_params(filename, build)


def derived_params(filename: str, build: Callable[[dict[str, Any]], list[Any]]) -> list[Any]:
    """``build(data)``, or a single skipped param if the file is absent."""
    data = load(filename)
    if data is None:
        reason = f"{VECTORS_DIR / filename} not found; the shared vectors are not checked out"
        return [pytest.param(None, id="absent", marks=pytest.mark.skip(reason=reason))]
    return build(data)


def _comment(entry: Entry) -> str | None:
    return entry.get("comment")


def _test_id(n: int, description: str | None) -> str:
    return str(n) if description is None else f"{n}-{description}"

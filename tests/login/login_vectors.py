"""Access to the skynet-recorded vectors for parametrised tests.

``tests/vectors/`` holds a copy of the project's ``shared/vectors/`` files (recorded from
skynet's own crypt and login code), so a clone tests against them wherever it is checked
out; ``test_vectors_copy.py`` checks the copy still matches the shared originals where
they are beside the repository (the developers' checkout).
"""

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

VECTORS_DIR = Path(__file__).resolve().parents[1] / "vectors"
SHARED_VECTORS_DIR = Path(__file__).resolve().parents[3] / "shared" / "vectors"
"""The originals, beside the repository in the developers' checkout only."""

Entry = dict[str, Any]


@cache
def load(filename: str) -> dict[str, Any]:
    """The parsed vector file."""
    return json.loads((VECTORS_DIR / filename).read_text())


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
    """``build(data)`` for the parsed vector file."""
    return build(load(filename))


def _comment(entry: Entry) -> str | None:
    return entry.get("comment")


def _test_id(n: int, description: str | None) -> str:
    return str(n) if description is None else f"{n}-{description}"

"""Fixtures shared by every test: a running node with the strict codec on."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import settings

from meshnet import Node, open_node

settings.register_profile("meshnet", deadline=None, max_examples=200)
settings.load_profile("meshnet")


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    async with open_node(node_id=1, name="test", strict_codec=True) as running:
        yield running

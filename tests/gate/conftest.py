"""Fixtures shared by the gate tests."""

import pytest


@pytest.fixture(params=["tcp", "ws"])
def kind(request: pytest.FixtureRequest) -> str:
    """Each test that takes ``kind`` runs once over TCP and once over WebSocket."""
    return request.param

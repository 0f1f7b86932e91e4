"""``examples/echo_workers.py``'s echo gate (what ``bench/gate.py`` and
``bench/gate_workers.py`` measure): an agent per connection, told to quit at its end."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio
from gate_helpers import HOST, connect

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def echo_gate(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    from echo_workers import Echo

    return Echo


async def start(node, echo_gate) -> tuple[int, int]:
    gate = await node.newservice(echo_gate, {"address": HOST, "port": 0})
    return gate, (await node.call(gate, "ports"))["port"]


async def test_each_connection_gets_its_own_agent_which_echoes(node, echo_gate):
    gate, port = await start(node, echo_gate)
    async with connect("tcp", port) as first, connect("tcp", port) as second:
        assert await first.request(b"one") == b"one"
        assert await second.request(b"two") == b"two"
        agents = node.context_of(gate).instance.agents
        assert len(set(agents.values())) == 2


async def test_a_connection_whose_agent_is_gone_ends_without_a_failed_hook(node, echo_gate, caplog):
    """As when the node stops: its agents, newer than the gate, stop first."""
    gate, port = await start(node, echo_gate)
    async with connect("tcp", port) as client:
        assert await client.request(b"ping") == b"ping"
        agents = node.context_of(gate).instance.agents
        (agent,) = agents.values()
        await node.kill(agent)
    with trio.fail_after(5):
        while agents:
            await trio.sleep(0.01)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    async with connect("tcp", port) as client:
        assert await client.request(b"still here") == b"still here"

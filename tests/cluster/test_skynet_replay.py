"""examples/skynet_cluster against a real skynet node, replayed (no skynet needed).

tests/vectors/skynet_cluster_integration.json was recorded by running the example for real
(its notes say how): the bytes skynet's clustersender sent to the meshnet listener and what
the listener answered, and the bytes meshnet's peer sent to skynet's cluster port and what
skynet answered. Here the recorded skynet requests go to the real listener, which must answer
with the recorded bytes (those skynet took); and a fake skynet node answers meshnet's peer with
skynet's recorded bytes, so the example's calls must send exactly what skynet was sent and give
what the example printed.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import trio
from cluster_setup import HOST, REPO, WAIT, free_port
from skynet_setup import (
    EXAMPLE,
    SkynetClient,
    fake_skynet,
    meshnode,
    port_of,
    pyservices,
    skynet_table,
)
from skynet_vectors import as_recorded, load, python_value

from meshnet import Service, command
from meshnet.cluster.skynet import seri, wire

TRANSCRIPT = load("skynet_cluster_integration.json")
SKYNET_CALLS = TRANSCRIPT["skynet_calls_meshnet"]
MESHNET_CALLS = TRANSCRIPT["meshnet_calls_skynet"]
RECORDED_PYECHO = 0x01000005
"""Where pyecho ran when the transcript was recorded (its notes): the node under test may
put it elsewhere, so that address is replaced by the real one where it appears."""


def request_bytes(request: dict, addresses: dict[int, int]) -> bytes:
    """A recorded request's bytes, proven equal to the recording, with ``addresses`` replaced."""
    address, session = request["address"], request["session"] or 1
    payload = seri.pack(*python_value(request["values"]))
    encode = wire.encode_push if request["push"] else wire.encode_request
    head = b"" if request["trace"] is None else wire.encode_trace(request["trace"])
    assert as_recorded(request["packets"], head + encode(address, session, payload))
    return head + encode(addresses.get(address, address), session, payload)


def answer_bytes(answer: dict, addresses: dict[int, int]) -> bytes:
    """A recorded answer's bytes, proven equal to the recording, with ``addresses`` replaced."""
    if not answer["ok"]:
        data = wire.encode_response(answer["session"], False, answer["error"])
        return as_recorded(answer["packets"], data)
    values = python_value(answer["values"])
    data = wire.encode_response(answer["session"], True, seri.pack(*values))
    assert as_recorded(answer["packets"], data)
    replaced = [addresses.get(v, v) if isinstance(v, int) else v for v in values]
    return wire.encode_response(answer["session"], True, seri.pack(*replaced))


async def replay_skynet_calls(port: int, pyecho: int) -> tuple[dict[int, bytes], dict[int, bytes]]:
    """Send skynet's recorded requests to the listener on ``port``; return (by session) the
    answers it gave and those it should give."""
    addresses = {RECORDED_PYECHO: pyecho}
    expected = {a["session"]: answer_bytes(a, addresses) for a in SKYNET_CALLS["answers"]}
    got = {}
    async with SkynetClient.connect(port) as client:
        for request in SKYNET_CALLS["requests"]:
            await client.send(request_bytes(request, addresses))
        while len(got) < len(expected):
            response, raw = await client.answer()
            got[response.session] = raw
    return got, expected


async def skynet_answer(request: wire.Request, raw: bytes) -> bytes | None:
    """skynet's recorded answer to a request meshnet sent, once it is the recorded one."""
    [recorded] = [r for r in MESHNET_CALLS["requests"] if r["session"] == request.session]
    assert raw == request_bytes(recorded, {}), f"meshnet sent other bytes than recorded: {raw!r}"
    answers = [a for a in MESHNET_CALLS["answers"] if a["session"] == request.session]
    return None if request.push else answer_bytes(answers[0], {})


class Talker(Service):
    @command
    async def talk(self):
        return await pyservices.talk_to_skynet()


async def test_the_listener_answers_skynets_calls_with_the_bytes_skynet_took(autojump_clock):
    table = skynet_table()
    async with meshnode(table) as node:
        pyecho = await node.newservice(pyservices.PyEcho)
        got, expected = await replay_skynet_calls(port_of(table["skynet_listen"]), pyecho.handle)
    assert got == expected


async def test_the_example_calls_skynet_with_the_bytes_skynet_answered(autojump_clock):
    async with fake_skynet(skynet_answer) as (port, connections):
        async with meshnode(skynet_table(peers={"sknode": port})) as node:
            lines = await node.call(await node.newservice(Talker), "talk")
    assert lines == MESHNET_CALLS["meshnet_printed"]
    [requests] = connections
    assert len(requests) == len(MESHNET_CALLS["requests"])


def test_the_example_node_process_talks_with_skynet_both_ways(tmp_path):
    """The example as a user runs it (its config with free ports), against a fake skynet
    node from the recording and skynet's recorded requests."""
    trio.run(_example_process, tmp_path)


async def _example_process(tmp_path):
    async with fake_skynet(skynet_answer) as (skynet_port, _):
        listen = f"{HOST}:{free_port()}"
        config = _example_config(tmp_path, listen, skynet_port)
        log = tmp_path / "meshnode.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "meshnet", "node", str(config)],
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            with trio.fail_after(WAIT):
                while "skynet nodes may call pyecho" not in log.read_text():
                    await trio.sleep(0.05)
                got, expected = await replay_skynet_calls(port_of(listen), RECORDED_PYECHO)
                while "what sknode answered:" not in log.read_text():
                    await trio.sleep(0.05)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=WAIT)
    assert got == expected
    text = log.read_text()
    answered = text.split("what sknode answered:\n", 1)[1].splitlines()
    assert [line[2:] for line in answered[: len(MESHNET_CALLS["meshnet_printed"])]] == (
        MESHNET_CALLS["meshnet_printed"]
    )
    assert process.returncode == 0


def _example_config(tmp_path, listen: str, skynet_port: int):
    text = (EXAMPLE / "meshnode.toml").read_text()
    replaced = {
        r"(?m)^paths = \[.*$": f"paths = [{str(EXAMPLE)!r}]",
        r'skynet_listen = "[^"]*"': f'skynet_listen = "{listen}"',
        r'meshnode = \{ address = "[^"]*"': f'meshnode = {{ address = "{HOST}:{free_port()}"',
        r'sknode = \{ address = "[^"]*"': f'sknode = {{ address = "{HOST}:{skynet_port}"',
    }
    for pattern, replacement in replaced.items():
        text, count = re.subn(pattern, replacement, text)
        assert count == 1, f"examples/skynet_cluster/meshnode.toml has no line for {pattern}"
    config = tmp_path / "meshnode.toml"
    config.write_text(text)
    return config

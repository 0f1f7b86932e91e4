"""Unsent data: warnings at 1, 2, 4, ... MiB, a warning of 0 once drained, and the hard
limit that closes a connection whose client does not read."""

import trio
from gate_helpers import Manual, Recorder, connect, start_gate, wait_for

from meshnet.gate import connections

CHUNK = b"x" * 60_000


async def test_a_client_that_never_reads_is_warned_about_then_closed(node, kind):
    limit = 4 << 20
    gate, port = await start_gate(node, kind, Manual, max_unsent=limit)
    async with connect(kind, port, rcvbuf=4096):
        [[_, fd, _]] = await wait_for(node, gate, "connect")
        registry = connections(node)
        writes = 0
        while registry.write(fd, CHUNK):  # never waits, however full the connection is
            writes += 1
            assert writes < 10_000, "the gate kept buffering past its hard limit"
        [[_, _, message]] = await wait_for(node, gate, "error")
    assert f"more than {limit} bytes waiting to be sent" in message
    warnings = [kb for _, _, kb in await wait_for(node, gate, "warning", 2)]
    assert warnings[0] > 1024 and warnings[1] > 2048
    assert 0 not in warnings
    await wait_for(node, gate, "disconnect")
    assert registry.get(fd) is None


async def test_unsent_data_draining_is_reported_with_zero(node, kind):
    gate, port = await start_gate(node, kind, Recorder)  # opened: it reads the client's close
    async with connect(kind, port, rcvbuf=4096) as client:
        [[_, fd, _]] = await wait_for(node, gate, "connect")
        registry = connections(node)
        sent = 0
        while registry.get(fd).unsent <= 1 << 20:
            assert registry.write(fd, CHUNK)
            sent += 1
            await trio.sleep(0)
        [[_, _, kb]] = await wait_for(node, gate, "warning")
        assert kb > 1024
        for _ in range(sent):
            assert await client.receive() == CHUNK
        warnings = [kb for _, _, kb in await wait_for(node, gate, "warning", 2)]
        assert warnings[-1] == 0
        assert registry.get(fd).unsent == 0


async def test_a_kicked_client_that_does_not_read_still_gets_its_last_hooks(node, kind, caplog):
    """The flush gives up after CLOSE_TIMEOUT; the close that follows must not trip over
    the send it cut short."""
    gate, port = await start_gate(node, kind, Manual)
    async with connect(kind, port, rcvbuf=4096):
        [[_, fd, _]] = await wait_for(node, gate, "connect")
        registry = connections(node)
        for _ in range(20):  # more than the socket buffers hold: a send is left waiting
            assert registry.write(fd, CHUNK)
        await trio.sleep(0.1)
        assert registry.close(fd)
        await wait_for(node, gate, "disconnect")
    assert not [r for r in caplog.records if r.exc_info]

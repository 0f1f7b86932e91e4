"""Unsent data: warnings at 1, 2, 4, ... MiB, a warning of 0 once drained, and the hard
limit that closes a connection whose client does not read."""

from contextlib import AsyncExitStack

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


async def fill(registry, fd: int, at_least: int) -> None:
    while registry.get(fd).unsent < at_least:
        assert registry.write(fd, CHUNK)


async def test_the_node_wide_cap_closes_the_connection_holding_most_and_spares_the_rest(node, kind):
    mib = 1 << 20
    gate, port = await start_gate(node, kind, Recorder, max_unsent=8 * mib, node_max_unsent=8 * mib)
    registry = connections(node)
    async with AsyncExitStack() as clients:
        fds = []
        for rcvbuf in (4096, 4096, None):  # two clients that do not read, one that does
            good = await clients.enter_async_context(connect(kind, port, rcvbuf=rcvbuf))
            fds.append((await wait_for(node, gate, "connect", len(fds) + 1))[-1][1])
        slow_fd, slower_fd, _ = fds
        await fill(registry, slow_fd, 3 * mib)
        await fill(registry, slower_fd, 3 * mib)
        writes = 0
        while registry.write(slower_fd, CHUNK):  # past 8 MiB for the node, not for it
            writes += 1
            assert writes < 200, "the node kept buffering past its cap"
        [[_, fd, message]] = await wait_for(node, gate, "error")
        assert fd == slower_fd
        assert "the node has more than 8388608 bytes waiting to be sent" in message
        assert registry.get(slow_fd) is not None
        assert registry.unsent.total <= 8 * mib
        assert await good.request(b"still served") == b"still served"
    await wait_for(node, gate, "disconnect", 3)
    assert registry.unsent.total == 0

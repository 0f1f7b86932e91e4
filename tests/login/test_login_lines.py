"""meshnet.login.lines.LineStream over an in-memory stream."""

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from meshnet.login.lines import LineStream, PeerClosed
from meshnet.login.wire import LineTooLong


class Chunks(trio.abc.ReceiveStream):
    """Hands out the given chunks one per ``receive_some``, then end of stream."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)

    async def receive_some(self, max_bytes=None) -> bytes:
        await trio.lowlevel.checkpoint()
        return self.chunks.pop(0) if self.chunks else b""

    async def aclose(self) -> None:
        pass


async def read_all(stream: LineStream) -> list[bytes]:
    received = []
    try:
        while True:
            received.append(await stream.receive_line())
    except PeerClosed:
        return received


line_text = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b""))


@given(lines=st.lists(line_text, max_size=8), data=st.data())
async def test_any_chunking_yields_the_lines_then_peer_closed(lines, data):
    stream = b"".join(line + b"\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert await read_all(LineStream(Chunks([c for c in chunks if c]))) == lines


async def test_lines_before_a_too_long_line_are_returned_first():
    stream = LineStream(Chunks([b"one\ntwo\n" + b"x" * 20 + b"\n"]), max_line=8)
    assert [await stream.receive_line(), await stream.receive_line()] == [b"one", b"two"]
    for _ in range(2):
        with pytest.raises(LineTooLong):
            await stream.receive_line()


async def test_an_unterminated_line_at_the_end_is_peer_closed():
    stream = LineStream(Chunks([b"one\npartial"]))
    assert await stream.receive_line() == b"one"
    with pytest.raises(PeerClosed):
        await stream.receive_line()


async def test_send_lines_writes_each_line_with_its_newline_at_once():
    sent = trio.testing.MemorySendStream()
    await LineStream(sent).send_lines(b"one", b"two")
    assert sent.get_data_nowait() == b"one\ntwo\n"

"""meshnet.login.client against the recorded skynet server stream and against refusals."""

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st
from login_vectors import params

from meshnet.login.client import LoginRefused, LoginResult, login_stream, read_status
from meshnet.login.lines import PeerClosed
from meshnet.login.wire import BAD_REQUEST, LoginProtocolError, ok_status

h = bytes.fromhex


async def play_server(stream: trio.abc.Stream, script: list[tuple[str, bytes]]) -> bytes:
    """Send the S->C lines of ``script`` in turn, each after the C->S bytes before it."""
    received = b""
    expected = 0
    for direction, data in script:
        if direction == "S->C":
            while len(received) < expected:
                received += await stream.receive_some()
            await stream.send_all(data)
        else:
            expected += len(data)
    while len(received) < expected:
        received += await stream.receive_some()
    return received


@pytest.mark.parametrize(
    "exchange", params("login_transcript.json", "exchanges", lambda exchange: exchange["user"])
)
async def test_client_sends_the_recorded_bytes(exchange):
    login = exchange["login"]
    script = [(line["dir"], h(line["wire"])) for line in login["lines"]]
    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:

        async def serve() -> None:
            sent.append(await play_server(server, script))

        sent: list[bytes] = []
        nursery.start_soon(serve)
        result = await login_stream(
            client,
            exchange["server"],
            exchange["user"],
            exchange["pass"],
            key=h(login["client_private"]),
        )
    assert sent == [h(login["wire_client_to_server"])]
    assert result == LoginResult(
        uid=exchange["user"].encode(),
        server=exchange["server"].encode(),
        subid=exchange["subid"].encode(),
        secret=h(login["secret"]),
    )


async def refuse_with(first_line: bytes) -> Exception:
    client, server = trio.testing.memory_stream_pair()
    await server.send_all(first_line)
    await server.send_eof()
    with pytest.raises(Exception) as raised:
        await login_stream(client, "sample", "hello", "password")
    return raised.value


async def test_a_refusal_in_place_of_the_challenge_raises_login_refused():
    refused = await refuse_with(BAD_REQUEST + b"\n")
    assert isinstance(refused, LoginRefused)
    assert (refused.code, refused.line) == (400, BAD_REQUEST)
    assert "400 Bad Request" in str(refused)


async def test_a_server_that_closes_early_is_peer_closed():
    assert isinstance(await refuse_with(b""), PeerClosed)


async def test_a_challenge_that_is_not_a_key_is_a_protocol_error():
    assert isinstance(await refuse_with(b"c2hvcnQ=\n"), LoginProtocolError)


@given(st.binary(max_size=20))
def test_read_status_returns_the_subid_of_a_200_line(subid):
    assert read_status(ok_status(subid)) == subid


@given(st.integers(100, 999).filter(lambda code: code != 200), st.binary(max_size=20))
def test_read_status_raises_login_refused_for_any_other_code(code, rest):
    line = b"%d %s" % (code, rest)
    with pytest.raises(LoginRefused) as refused:
        read_status(line)
    assert (refused.value.code, refused.value.line) == (code, line)


@given(st.one_of(st.binary(max_size=30), st.binary(max_size=30).map(lambda b: b"200 " + b)))
def test_read_status_returns_or_raises_our_errors_on_any_line(line):
    try:
        read_status(line)
    except (LoginRefused, LoginProtocolError):
        pass

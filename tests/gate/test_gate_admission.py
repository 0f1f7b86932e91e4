"""Who gets in: the per-address limit (on the real client address behind a trusted
proxy), PROXY headers and X-Forwarded-For, and TLS on both listeners; each time with a
well-behaved client served beside the one turned away."""

import logging
import ssl
from contextlib import AsyncExitStack

import pytest
import trio
import trio_websocket
from gate_helpers import HOST, TIMEOUT, Client
from gate_router_setup import Player, start_game
from proxy_headers import V1_UNKNOWN, v1, v2
from ws_client import RawWs

from meshnet import ServiceStartError
from meshnet.gate import connections


async def signed_in(client: Client, user: str = "good") -> bool:
    reply = await Player(client).ask("signin", {"user": user})
    return reply is not None and reply.ok


async def tcp(port: int, first: bytes = b"", tls: ssl.SSLContext | None = None) -> Client:
    """A TCP client that sends ``first`` (a PROXY header) before anything else."""
    stream: trio.abc.Stream = await trio.open_tcp_stream(HOST, port)
    await stream.send_all(first)
    if tls is not None:
        stream = trio.SSLStream(stream, tls, server_hostname="localhost")
    return Client("tcp", stream)


async def ws(stack: AsyncExitStack, port: int, headers=(), tls=None) -> Client:
    """A WebSocket client sending ``headers`` with its upgrade, open until ``stack`` ends."""
    connection = await stack.enter_async_context(
        trio_websocket.open_websocket(
            HOST, port, "/", use_ssl=tls or False, extra_headers=list(headers)
        )
    )
    return Client("ws", None, connection)


async def ws_refused(port: int, headers=(), tls=None) -> int:
    """The HTTP status a WebSocket client gets, which must be a refusal."""
    with pytest.raises(trio_websocket.ConnectionRejected) as refused:
        async with AsyncExitStack() as stack:
            await ws(stack, port, headers, tls)
    return refused.value.status_code


async def test_one_address_gets_at_most_max_per_address_and_others_still_get_in(node, kind):
    router, port, *_ = await start_game(
        node, kind, max_per_address=2, trusted_proxies=["127.0.0.1"]
    )
    if kind == "tcp":
        first, second = await tcp(port, v1("203.0.113.7", 1)), await tcp(port, v2("203.0.113.7", 2))
        third = await tcp(port, v1("203.0.113.7", 3))
        other = await tcp(port, v2("198.51.100.9", 4))
    else:
        xff = [("X-Forwarded-For", "203.0.113.7")]
        async with AsyncExitStack() as stack:
            first, second = await ws(stack, port, xff), await ws(stack, port, xff)
            assert await ws_refused(port, xff) == 429
            other = await ws(stack, port, [("X-Forwarded-For", "1.1.1.1, 198.51.100.9")])
            assert await signed_in(first) and await signed_in(second) and await signed_in(other)
        return
    assert await signed_in(first) and await signed_in(second) and await signed_in(other)
    assert await third.closed_by_server()


async def test_exempt_addresses_are_not_limited(node, kind):
    router, port, *_ = await start_game(
        node, kind, max_per_address=1, per_address_exempt=["127.0.0.0/8"]
    )
    async with AsyncExitStack() as stack:
        for _ in range(3):
            client = await tcp(port) if kind == "tcp" else await ws(stack, port)
            assert await signed_in(client)


async def test_loopback_is_limited_when_not_exempt(node):
    router, port, *_ = await start_game(node, "tcp", max_per_address=1)
    first, second = await tcp(port), await tcp(port)
    assert await signed_in(first)
    assert await second.closed_by_server()


@pytest.mark.parametrize(
    "header", [v1("203.0.113.7", 1), v2("203.0.113.7", 1), V1_UNKNOWN], ids=["v1", "v2", "unknown"]
)
async def test_a_proxy_header_from_an_untrusted_client_is_refused(node, header, caplog):
    router, port, *_ = await start_game(node, "tcp")
    bad, good = await tcp(port, header), await tcp(port)
    await bad.send(b"anything")
    assert await bad.closed_by_server()
    assert await signed_in(good)
    [[_, _, message]] = await node.call(router, "wait_error", timeout=TIMEOUT)
    assert "PROXY header from a client that is not a trusted proxy" in message


async def test_a_trusted_proxy_without_a_proxy_header_is_refused(node, caplog):
    caplog.set_level(logging.INFO)
    router, port, *_ = await start_game(node, "tcp", trusted_proxies=["127.0.0.1"])
    bad = await tcp(port)
    await bad.send(b"\x83\x01\x01\xa0")
    assert await bad.closed_by_server()
    good = await tcp(port, V1_UNKNOWN)  # a health check: the proxy's own address
    assert await signed_in(good)
    assert "no PROXY header" in caplog.text


async def test_the_hooks_see_the_address_the_proxy_gave(node):
    router, port, *_ = await start_game(node, "tcp", trusted_proxies=["::1", "127.0.0.0/8"])
    client = await tcp(port, v2("2001:db8::5", 4242, "::1"))
    assert await signed_in(client)
    [fd] = connections(node).of_gate(router)
    assert connections(node).get(fd).peer == "2001:db8::5:4242"


async def test_a_trusted_proxy_without_x_forwarded_for_is_refused(node):
    router, port, *_ = await start_game(node, "ws", trusted_proxies=["127.0.0.1"])
    assert await ws_refused(port) == 400
    async with AsyncExitStack() as stack:
        good = await ws(stack, port, [("X-Forwarded-For", "203.0.113.7")])
        assert await signed_in(good)


async def test_tls_serves_both_listeners_and_a_plain_client_is_turned_away(
    node, kind, certificate, caplog
):
    caplog.set_level(logging.INFO)
    cert, key = certificate
    router, port, *_ = await start_game(node, kind, tls_cert=str(cert), tls_key=str(key))
    trusting = ssl.create_default_context(cafile=str(cert))
    if kind == "tcp":
        secure, plain = await tcp(port, tls=trusting), await tcp(port)
        await plain.send(b"not TLS")
        assert await plain.closed_by_server()
        assert await signed_in(secure)
    else:
        async with AsyncExitStack() as stack:
            assert await signed_in(await ws(stack, port, tls=trusting))
        plain = await tcp(port, RawWs.upgrade_request())  # trio-websocket waits 60 s here
        assert await plain.closed_by_server()
    assert "TLS handshake failed" in caplog.text


async def test_a_gate_with_a_missing_certificate_names_the_key(node, tmp_path):
    with pytest.raises(ServiceStartError, match="gate conf 'tls_cert'/'tls_key': cannot load"):
        await start_game(node, "tcp", tls_cert=str(tmp_path / "a"), tls_key=str(tmp_path / "b"))

"""One raw HTTP/1.1 request to a server of the test's node, for the tests of the demo's
page and of the metrics endpoint (both close the connection after each answer)."""

from __future__ import annotations

import trio

HOST = "127.0.0.1"
WAIT = 10.0
"""Seconds a response may take before the test gives up (a hang guard)."""


async def http(port: int, request: bytes) -> tuple[str, bytes]:
    """Send a raw request; return the status line and the body."""
    status, _, body = await http_with_headers(port, request)
    return status, body


async def http_with_headers(port: int, request: bytes) -> tuple[str, dict[str, str], bytes]:
    """Send a raw request; return the status line, the headers (lower-cased names) and
    the body."""
    with trio.fail_after(WAIT):
        async with await trio.open_tcp_stream(HOST, port) as stream:
            await stream.send_all(request)
            received = b""
            while chunk := await stream.receive_some():
                received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines if ": " in line)
    return status, headers, body


def get(path: str, method: str = "GET") -> bytes:
    """A request for ``path`` with nothing more than a Host header."""
    return f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()

"""One HTTP/1.1 request per connection, parsed by h11, for the metrics endpoint.

The server reads one request (its head within ``REQUEST_TIMEOUT`` seconds and
``MAX_HEAD`` bytes), answers it with the response the route gives, and closes the
connection: no keep-alive, no request bodies. A malformed request gets the status h11
suggests (400, 431 for an oversized head), a method other than GET or HEAD 405.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urlsplit

import h11
import trio

from meshnet.net import close_gracefully, peer_name

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT = 10.0
"""Seconds a client has to send its request head."""
MAX_HEAD = 8192
"""Bytes a request head may take."""
RECEIVE_SIZE = 4096


@dataclass(frozen=True)
class Response:
    """What a route answers."""

    status: HTTPStatus
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


Route = Callable[[str], Response]
"""The response to a GET of a path."""


def not_found(path: str) -> Response:
    """The 404 response for ``path``."""
    return _error(HTTPStatus.NOT_FOUND, path)


async def answer_request(stream: trio.SocketStream, route: Route) -> None:
    """Read one request from ``stream``, answer it with ``route``, close the stream."""
    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
    head = False
    try:
        with trio.fail_after(REQUEST_TIMEOUT):
            request = await _read_request(stream, connection)
        method = request.method.decode("ascii")
        head = method == "HEAD"
        if method not in ("GET", "HEAD"):
            response = _error(HTTPStatus.METHOD_NOT_ALLOWED, method)
        else:
            response = route(urlsplit(request.target.decode("ascii")).path)
    except trio.TooSlowError:
        logger.info("%s sent no request within %gs", peer_name(stream), REQUEST_TIMEOUT)
        await trio.aclose_forcefully(stream)
        return
    except h11.RemoteProtocolError as exc:
        response = _error(HTTPStatus(exc.error_status_hint), str(exc))
    except UnicodeDecodeError:
        response = _error(HTTPStatus.BAD_REQUEST, "the request line is not ASCII")
    await stream.send_all(_encode(connection, response, head))
    await close_gracefully(stream)


async def _read_request(stream: trio.SocketStream, connection: h11.Connection) -> h11.Request:
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await stream.receive_some(RECEIVE_SIZE))
            continue
        if isinstance(event, h11.Request):
            return event
        raise h11.RemoteProtocolError("the connection closed before a request", 400)


def _encode(connection: h11.Connection, response: Response, head: bool) -> bytes:
    headers = [
        ("content-type", response.content_type),
        ("content-length", str(len(response.body))),
        ("cache-control", "no-store"),
        ("connection", "close"),
    ]
    try:
        data = connection.send(
            h11.Response(
                status_code=response.status.value, headers=headers, reason=response.status.phrase
            )
        )
    except h11.LocalProtocolError:  # h11 will not answer in this state: answer anyway
        status = f"HTTP/1.1 {response.status.value} {response.status.phrase}\r\n"
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers)
        data = f"{status}{lines}\r\n".encode("ascii")
    return (data or b"") + (b"" if head else response.body)


def _error(status: HTTPStatus, detail: str) -> Response:
    return Response(status, f"{status.value} {status.phrase}: {detail}\n".encode())

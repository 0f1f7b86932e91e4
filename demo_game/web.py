"""The browser page's HTTP server: ``web/index.html``, the cbor-x package it loads, and
``/config.json`` telling it where the hub's WebSocket listens and what the protocol is.

cbor-x is installed from the npm registry into ``web/node_modules`` (``make web``); only
that package's files are served from there, and nothing outside it.
"""

from __future__ import annotations

import json
import logging
import mimetypes
from http import HTTPStatus
from pathlib import Path

import trio

from demo_game.http import (
    MAX_HEAD,
    HttpError,
    complete_head,
    error_response,
    parse_request_head,
    request_path,
    response,
)
from demo_game.proto import proto
from meshnet import Service, command
from meshnet.net import close_gracefully, peer_name, serve_tcp

logger = logging.getLogger(__name__)

WEB_DIR = Path(__file__).parent / "web"
CBOR_X = WEB_DIR / "node_modules" / "cbor-x"
CBOR_X_PREFIX = "/cbor-x/"
REQUEST_TIMEOUT = 10.0
"""Seconds a client has to send its request head."""


class WebServer(Service):
    """The HTTP server of the browser page."""

    async def init(self, host: str, port: int, ws_port: int | None) -> None:
        """Serve on ``host:port``; the page connects to the hub's WebSocket on ``ws_port``."""
        self.config = json.dumps({"ws_port": ws_port, "protocol": proto.table()}).encode()
        self._port, _ = await serve_tcp(self, self._serve, host, port)

    @command
    async def port(self) -> int:
        """The port it listens on."""
        return self._port

    async def _serve(self, stream: trio.SocketStream) -> None:
        method = None
        try:
            with trio.fail_after(REQUEST_TIMEOUT):
                method, target = parse_request_head(await _read_head(stream))
            if method not in ("GET", "HEAD"):
                raise HttpError(HTTPStatus.METHOD_NOT_ALLOWED, method)
            body, content_type = await self._resource(request_path(target))
            reply = response(HTTPStatus.OK, body, content_type, head=method == "HEAD")
        except trio.TooSlowError:
            logger.info("%s sent no request within %gs", peer_name(stream), REQUEST_TIMEOUT)
            return
        except HttpError as exc:
            logger.info("%s: %s", peer_name(stream), exc)
            reply = error_response(exc, head=method == "HEAD")
        await stream.send_all(reply)
        await close_gracefully(stream)  # not over unread input: a reset could lose the reply

    async def _resource(self, path: str) -> tuple[bytes, str]:
        if path in ("/", "/index.html"):
            return await trio.Path(WEB_DIR / "index.html").read_bytes(), "text/html; charset=utf-8"
        if path == "/config.json":
            return self.config, "application/json"
        if path.startswith(CBOR_X_PREFIX):
            file = _inside(CBOR_X, path.removeprefix(CBOR_X_PREFIX))
            if await trio.Path(file).is_file():
                content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                return await trio.Path(file).read_bytes(), content_type
        raise HttpError(HTTPStatus.NOT_FOUND, path)


async def _read_head(stream: trio.SocketStream) -> bytes:
    data = b""
    while (head := complete_head(data)) is None:
        chunk = await stream.receive_some(MAX_HEAD)
        if not chunk:
            raise HttpError(HTTPStatus.BAD_REQUEST, "connection closed mid-request")
        data += chunk
    return head


def _inside(root: Path, relative: str) -> Path:
    """``root/relative``, refusing any path that leads out of ``root``."""
    file = (root / relative).resolve()
    if not file.is_relative_to(root.resolve()):
        raise HttpError(HTTPStatus.NOT_FOUND, relative)
    return file

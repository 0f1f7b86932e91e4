"""``MetricsServer``: the node's metrics endpoint and status page, a service of the node.

``GET /metrics`` is the Prometheus text format (``prometheus_client.generate_latest`` of
the node's registry, ``meshnet.metrics.collector``), ``GET /`` the status page and
``GET /status.json`` its data (``meshnet.metrics.status``). Starting it starts observing
the node (``Node.observe``). The runner starts it from the node config's ``metrics =
"HOST:PORT"``; ``newservice(MetricsServer, host, port)`` starts one anywhere.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from importlib import resources

import trio
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from meshnet.metrics.collector import node_registry
from meshnet.metrics.http import Response, answer_request, not_found
from meshnet.metrics.reading import read_node
from meshnet.metrics.status import INTERVAL, StatusHistory, status_json
from meshnet.net import serve_tcp
from meshnet.service import Service, command

logger = logging.getLogger(__name__)

PAGE = resources.files("meshnet.metrics").joinpath("status.html")


class MetricsServer(Service):
    """Serves ``/metrics``, ``/`` and ``/status.json`` over HTTP."""

    async def init(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (0 picks a free port: see the ``port`` command)."""
        self.node.observe()
        self.registry = node_registry(self.node)
        self.history = StatusHistory()
        self.page = PAGE.read_bytes()
        self._port, _ = await serve_tcp(self, self._serve, host, port, shared=False)
        self.fork(self._record_history)
        logger.info(
            "metrics on http://%s:%d/metrics, status page on http://%s:%d/",
            host,
            self._port,
            host,
            self._port,
        )

    @command
    async def port(self) -> int:
        """The port it listens on."""
        return self._port

    def route(self, path: str) -> Response:
        """The response to a GET of ``path``."""
        if path == "/metrics":
            return Response(HTTPStatus.OK, generate_latest(self.registry), CONTENT_TYPE_LATEST)
        if path in ("/", "/index.html"):
            return Response(HTTPStatus.OK, self.page, "text/html; charset=utf-8")
        if path == "/status.json":
            body = status_json(self.node, read_node(self.node), self.history)
            return Response(HTTPStatus.OK, body, "application/json")
        return not_found(path)

    async def _serve(self, stream: trio.SocketStream) -> None:
        await answer_request(stream, self.route)

    async def _record_history(self) -> None:
        while True:
            self.history.add(read_node(self.node))
            await trio.sleep(INTERVAL)

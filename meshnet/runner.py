"""Booting a node from its config and running it until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import signal
import sys

import trio

from meshnet.config import NodeConfig
from meshnet.errors import ServiceStartError
from meshnet.loader import load_service_class
from meshnet.log import configure
from meshnet.node import open_node

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_node(config: NodeConfig) -> int:
    """Run the node ``config`` describes; return the process exit code (0 on a clean stop).

    Import and start errors propagate as meshnet errors for the CLI to print; once the
    node runs, the first SIGINT/SIGTERM stops it cleanly, running every exit hook.
    """
    configure(config.log_level)
    for path in config.paths:
        sys.path.insert(0, str(path))
    start_class = load_service_class(config.start_service)
    start_error = trio.run(_serve, config, start_class)
    if start_error is not None:
        raise start_error
    return 0


async def _serve(config: NodeConfig, start_class: type) -> ServiceStartError | None:
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async with open_node(
            config.node_id,
            config.name,
            strict_codec=config.strict_codec,
            call_timeout=config.call_timeout,
        ) as node:
            logger.info(
                "node %r (id %d) starting %s", config.name, config.node_id, config.start_service
            )
            try:
                for section, settings in config.sections:
                    await section.start(node, settings)
                await node.newservice(start_class, *config.start_args)
            except ServiceStartError as exc:
                return exc
            async for signum in signals:
                logger.info("received %s: stopping", signal.Signals(signum).name)
                break
    return None

"""What every user of Redis in the cluster shares: the client, and telling a Redis
failure from everything else.

coredis is built on anyio, so its client runs on trio's own loop. A client is an async
context manager holding a task group: enter and leave it in one task. Its commands may be
awaited from any task; after a lost connection the next command connects again.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import anyio
import coredis
from coredis.exceptions import RedisError
from coredis.retry import NoRetryPolicy

from meshnet.errors import MeshnetError


class RedisUnavailable(MeshnetError):
    """Redis cannot be reached (or refuses the node), and what was asked needs it."""


REDIS_DOWN = (RedisError, OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)
"""What a lost, refused or silent connection to Redis raises through coredis."""


def open_client(url: str, timeout: float, name: str) -> coredis.Redis[str]:
    """A client of the Redis at ``url`` (decoding replies to ``str``) that fails fast: no
    retries of its own (its users retry), ``timeout`` seconds to connect and for each
    reply; ``meshnet-<name>`` in Redis's ``CLIENT LIST``."""
    return coredis.Redis.from_url(
        url,
        decode_responses=True,
        retry_policy=NoRetryPolicy(),
        connect_timeout=timeout,
        stream_timeout=timeout,
        client_name=f"meshnet-{name}",
    )


def redis_failure(exc: BaseException) -> BaseException | None:
    """The Redis failure ``exc`` is (for a group, the first of the failures it holds, if it
    holds nothing else); None if it is something else. A group with a cancellation in it
    is a cancellation, whatever else coredis raised on the way out."""
    if isinstance(exc, BaseExceptionGroup):
        failures, rest = exc.split(REDIS_DOWN)
        if failures is None or rest is not None:
            return None
        return leaves(failures)[0]
    return exc if isinstance(exc, REDIS_DOWN) else None


def leaves(group: BaseExceptionGroup) -> list[BaseException]:
    """The exceptions of ``group`` and of the groups inside it, in order."""
    found: list[BaseException] = []
    for exc in group.exceptions:
        found += leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    return found


def describe(exc: BaseException) -> str:
    """``Type: message`` (or just ``Type``), for log lines and error messages."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def safe_url(url: str) -> str:
    """``url`` without its password, for the log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{netloc}"))

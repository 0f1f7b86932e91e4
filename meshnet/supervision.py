"""Restart policies for services started under the node's supervision (Erlang-style)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

Mode = Literal["permanent", "transient", "temporary"]


@dataclass(frozen=True)
class RestartPolicy:
    """When to start a service again after it ends, and how often at most.

    ``permanent`` restarts after any end, ``transient`` only after an abnormal one (it
    crashed or was killed), ``temporary`` never. More than ``max_restarts`` restarts within
    ``period`` seconds means the service is broken: the node gives up on it and logs why.
    """

    mode: Mode = "permanent"
    max_restarts: int = 3
    period: float = 5.0

    def __post_init__(self) -> None:
        if self.mode not in ("permanent", "transient", "temporary"):
            raise ValueError(
                f"restart mode must be permanent, transient or temporary, not {self.mode!r}"
            )
        if self.max_restarts < 0 or self.period <= 0:
            raise ValueError("max_restarts must be >= 0 and period > 0")

    def wants_restart(self, abnormal: bool) -> bool:
        """Whether the mode asks for a restart after an end that was ``abnormal`` or not."""
        return self.mode == "permanent" or (self.mode == "transient" and abnormal)

    def allow_restart(self, recent: deque[float], now: float) -> bool:
        """Record a restart at ``now`` in ``recent``; False when it would exceed the bound."""
        while recent and recent[0] <= now - self.period:
            recent.popleft()
        if len(recent) >= self.max_restarts:
            return False
        recent.append(now)
        return True

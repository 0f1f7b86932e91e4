"""The rate limit on failed sign-ins, per user name and per client address.

Each name and each address may fail ``max_failures`` sign-ins in a row; they come back one
at a time, all of them over ``period`` seconds (a token bucket per key). A name or address
with none left is refused at once, without a password hash, until one comes back, and is
told when that is. So guessing one user's password, or many users' from one address, goes
at ``max_failures`` per ``period``, and costs the hash pool nothing more. Addresses in the
``exempt`` networks (the demo exempts loopback, for the robots) are not limited; names
always are. A successful sign-in takes nothing. Keys are forgotten once they are back to
all their failures, so what is kept is bounded by the failures the hash pool can check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import trio

from meshnet.admission import is_in, networks

DEFAULT_MAX_FAILURES = 5
DEFAULT_PERIOD = 60.0
SWEEP_FROM = 1024
"""Keys kept before the first sweep for those back to all their failures."""


class FailedSignins:
    """The failed sign-ins of the last ``period`` seconds, by name and by address."""

    def __init__(
        self,
        max_failures: int = DEFAULT_MAX_FAILURES,
        period: float = DEFAULT_PERIOD,
        exempt: Iterable[str] = (),
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.max_failures = max_failures
        self.period = period
        self.exempt = networks(exempt)
        self._clock = clock
        self._left: dict[str, tuple[float, float]] = {}
        """Key -> (failures left, when that was counted); keys with all left are dropped."""
        self._sweep_at = SWEEP_FROM

    def retry_after(self, user: str, address: str | None) -> float:
        """0 if ``user`` from ``address`` may try; else seconds until one of them may."""
        return max(self._wait(self._key(user, None)), self._wait(self._key(None, address)))

    def failed(self, user: str, address: str | None) -> None:
        """``user`` from ``address`` gave a wrong password (or an unknown name)."""
        for key in (self._key(user, None), self._key(None, address)):
            if key is not None:
                self._left[key] = (self._tokens(key) - 1, self._clock())
        if len(self._left) > self._sweep_at:
            for key in list(self._left):
                self._tokens(key)  # drops it if it is back to all its failures
            self._sweep_at = max(SWEEP_FROM, 2 * len(self._left))

    def __len__(self) -> int:
        return len(self._left)

    def _key(self, user: str | None, address: str | None) -> str | None:
        if user is not None:
            return f"user {user}"
        if address is None or is_in(address, self.exempt):
            return None
        return f"address {address}"

    def _tokens(self, key: str) -> float:
        """The failures ``key`` has left now."""
        entry = self._left.get(key)
        if entry is None:
            return float(self.max_failures)
        left, since = entry
        left = min(self.max_failures, left + (self._clock() - since) * self._rate)
        if left >= self.max_failures:
            del self._left[key]
        return left

    def _wait(self, key: str | None) -> float:
        if key is None:
            return 0.0
        left = self._tokens(key)
        return 0.0 if left >= 1 else (1 - left) / self._rate

    @property
    def _rate(self) -> float:
        """Failures given back per second."""
        return self.max_failures / self.period

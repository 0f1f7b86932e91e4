"""Who may connect: the connection limits of one listening service.

``maxclient`` caps the connections served at once; ``max_per_address`` (optional) caps
those from one client address, so one client cannot take every slot, except from the
``exempt`` networks (loopback, say, for load robots on the same machine). A listener
takes a slot when it accepts a socket and the client's address once it knows it (behind a
trusted proxy that is after the proxy said it), and gives both back when the connection
ends.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_MAXCLIENT = 1024


class ConnectionLimits:
    """The counts behind ``maxclient`` and ``max_per_address`` for one service."""

    def __init__(
        self,
        maxclient: int = DEFAULT_MAXCLIENT,
        max_per_address: int | None = None,
        exempt: Iterable[str] = (),
    ) -> None:
        self.maxclient = maxclient
        self.max_per_address = max_per_address
        self.exempt = networks(exempt)
        self.open = 0
        """Slots taken."""
        self._by_address: dict[str, int] = {}

    def take_slot(self, beyond: bool = False) -> bool:
        """Count one more connection; False (nothing counted) if ``maxclient`` are open,
        unless ``beyond`` (one was just closed to make room, and frees its slot soon)."""
        if self.open >= self.maxclient and not beyond:
            return False
        self.open += 1
        return True

    def free_slot(self) -> None:
        """A connection counted by ``take_slot`` ended."""
        self.open -= 1

    def take_address(self, host: str) -> bool:
        """Count one more connection from ``host``; False (nothing counted) if it already
        has ``max_per_address`` and is not exempt."""
        count = self._by_address.get(host, 0)
        limit = self.max_per_address
        if limit is not None and count >= limit and not is_in(host, self.exempt):
            return False
        self._by_address[host] = count + 1
        return True

    def free_address(self, host: str) -> None:
        """A connection counted by ``take_address(host)`` ended."""
        count = self._by_address.pop(host) - 1
        if count:
            self._by_address[host] = count

    def from_address(self, host: str) -> int:
        """Connections counted for ``host``."""
        return self._by_address.get(host, 0)


def networks(texts: Iterable[str]) -> tuple[Network, ...]:
    """Parse addresses and networks (``10.0.0.5``, ``10.0.0.0/8``, ``::1``); ValueError
    names the first that is neither."""
    return tuple(ipaddress.ip_network(text, strict=False) for text in texts)


def client_ip(host: str) -> Address | None:
    """The address a socket reports, IPv4-mapped IPv6 as plain IPv4; None if not an IP."""
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_in(host: str, among: Iterable[Network]) -> bool:
    """True if ``host`` is an IP address inside one of the networks ``among``."""
    address = client_ip(host)
    return address is not None and any(address in network for network in among)

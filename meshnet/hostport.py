"""``HOST:PORT`` addresses as configs and command lines give them, and which are loopback."""

from __future__ import annotations

import ipaddress

from meshnet.errors import MeshnetError


class HostPortError(MeshnetError):
    """Not of the form ``HOST:PORT`` (``[::1]:PORT`` for IPv6), or the port is out of range."""


def parse_hostport(text: str) -> tuple[str, int]:
    """``("127.0.0.1", 7000)`` from ``"127.0.0.1:7000"``; ``[::1]:7000`` for IPv6. Port 0
    means "pick a free one" to a server."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise HostPortError(f"{text!r} is not of the form HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise HostPortError(f"{text!r}: write an IPv6 address in brackets, [::1]:PORT")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise HostPortError(f"{text!r}: the port must be a number from 0 to 65535")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """True if ``host`` can only be reached from this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything

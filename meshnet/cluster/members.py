"""Who is in the cluster: each node's name, id, link address and protocol."""

from __future__ import annotations

import re
from dataclasses import dataclass

from meshnet.address import MAX_NODE
from meshnet.errors import MeshnetError

NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
MESHNET = "meshnet"
"""The protocol of meshnet's own authenticated links."""
SKYNET = "skynet"
"""The protocol of a skynet node's cluster port (``meshnet.cluster.skynet``)."""
PROTOCOLS = (MESHNET, SKYNET)


class MemberError(MeshnetError):
    """A node's entry in the cluster's view is malformed."""


@dataclass(frozen=True)
class Member:
    """One node of the cluster as discovery knows it."""

    name: str
    id: int | None
    """The high 8 bits of its addresses; None for a skynet node, whose services are
    reached by name or by skynet's own addresses, never by meshnet addresses."""
    host: str
    port: int
    absent: bool = False
    """Listed but marked absent: calls to it fail at once, no link is kept to it."""
    protocol: str = MESHNET
    """``MESHNET`` (meshnet's links) or ``SKYNET`` (skynet's cluster protocol)."""

    def __post_init__(self) -> None:
        if not NAME.fullmatch(self.name):
            raise MemberError(f"node name {self.name!r} must be 1-64 letters, digits, '_' or '-'")
        if self.protocol not in PROTOCOLS:
            raise MemberError(
                f"node {self.name}: protocol {self.protocol!r} is not one of {', '.join(PROTOCOLS)}"
            )
        if self.protocol == SKYNET:
            if self.id is not None:
                raise MemberError(
                    f"node {self.name}: a skynet node has no meshnet id (its services have "
                    "skynet's addresses); leave 'id' out"
                )
        elif self.id is None or not 0 <= self.id <= MAX_NODE:
            raise MemberError(f"node {self.name}: id {self.id} is outside 0..{MAX_NODE}")
        if not 0 < self.port <= 65535:
            raise MemberError(f"node {self.name}: port {self.port} is outside 1..65535")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def skynet(self) -> bool:
        """True for a skynet node (``protocol = "skynet"``)."""
        return self.protocol == SKYNET


def parse_host_port(text: str, what: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) as a pair; ``MemberError`` naming ``what``."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise MemberError(f"{what}: {text!r} is not host:port")
    return host, int(port)

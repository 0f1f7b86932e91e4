"""Service addresses: skynet's 32-bit handles, plus the incarnation of the node that gave
them out, so that an address outlives neither its service nor its node's process.

Layout of the integer (64 bits)::

    bits 63..32  incarnation   random per start of a node (0: "the node's current one")
    bits 31..24  node id       skynet's harbor, 0..255
    bits 23..0   local id      0 is the node itself; services count up from 1

The text form is skynet's, from the low 32 bits: ``:0100000a``. A local id is given out
again only after every other one has been (they count up and wrap around, skipping those
in use, as skynet's handle table does) and never within ``LocalIds.quarantine`` seconds of
its service ending, so a stale address fails with ``NoSuchService`` instead of reaching a
newer service; a new incarnation makes addresses from a node's previous life fail too.
"""

from __future__ import annotations

from collections import deque

from meshnet.errors import MeshnetError

NODE_BITS = 8
LOCAL_BITS = 24
HANDLE_BITS = NODE_BITS + LOCAL_BITS
INCARNATION_BITS = 32
MAX_NODE = (1 << NODE_BITS) - 1
MAX_LOCAL = (1 << LOCAL_BITS) - 1
MAX_HANDLE = (1 << HANDLE_BITS) - 1
MAX_INCARNATION = (1 << INCARNATION_BITS) - 1


class AddressError(MeshnetError):
    """An address is out of range, its text form cannot be parsed, or none is left."""


class Address(int):
    """A service handle; prints like skynet (``:0100000a``) and is an int everywhere else.

    Being an int keeps addresses cheap to hash, compare and send through the CBOR codec
    (they arrive on the other side as plain ints, which every API here accepts).
    """

    __slots__ = ()

    def __new__(cls, value: int) -> Address:
        if not 0 <= value <= (MAX_INCARNATION << HANDLE_BITS | MAX_HANDLE):
            raise AddressError(f"address {value!r} is outside 0..2**64-1")
        return super().__new__(cls, value)

    @classmethod
    def make(cls, node: int, local: int, incarnation: int = 0) -> Address:
        """Build the address of local id ``local`` on node ``node`` in ``incarnation``."""
        if not 0 <= node <= MAX_NODE:
            raise AddressError(f"node id {node} is outside 0..{MAX_NODE}")
        if not 0 <= local <= MAX_LOCAL:
            raise AddressError(f"local id {local} is outside 0..{MAX_LOCAL}")
        if not 0 <= incarnation <= MAX_INCARNATION:
            raise AddressError(f"incarnation {incarnation} is outside 0..{MAX_INCARNATION}")
        return cls(incarnation << HANDLE_BITS | node << LOCAL_BITS | local)

    @classmethod
    def parse(cls, text: str) -> Address:
        """Parse skynet's text form ``:0100000a`` (eight hex digits after a colon); the
        result has incarnation 0, which a node reads as its current one."""
        if len(text) != 9 or text[0] != ":":
            raise AddressError(f"address {text!r} is not of the form ':0100000a'")
        try:
            return cls(int(text[1:], 16))
        except ValueError:
            raise AddressError(f"address {text!r} has non-hex digits") from None

    @property
    def node(self) -> int:
        """The id of the node the service runs on."""
        return (self >> LOCAL_BITS) & MAX_NODE

    @property
    def local(self) -> int:
        """The service's id on its node."""
        return self & MAX_LOCAL

    @property
    def incarnation(self) -> int:
        """Which start of its node gave the address out (0: unknown, the current one)."""
        return self >> HANDLE_BITS

    @property
    def handle(self) -> int:
        """skynet's 32-bit handle: node id and local id, without the incarnation."""
        return self & MAX_HANDLE

    def __str__(self) -> str:
        return format_address(self)

    def __repr__(self) -> str:
        return f"Address({self}, incarnation={self.incarnation:#x})"


def format_address(value: int) -> str:
    """Text form of any int handle, for log lines and error messages."""
    return f":{value & MAX_HANDLE:08x}"


class LocalIds:
    """The local ids of one node: which are in use, and which to give out next.

    Ids count up from 1 and wrap around, skipping those in use and those whose service
    ended less than ``quarantine`` seconds ago. ``bits`` narrows the space (for tests).
    """

    def __init__(self, bits: int = LOCAL_BITS, quarantine: float = 60.0) -> None:
        if not 1 <= bits <= LOCAL_BITS:
            raise AddressError(f"local id bits must be 1..{LOCAL_BITS}, not {bits}")
        self.quarantine = quarantine
        self._largest = (1 << bits) - 1
        self._last = 0
        self._in_use: set[int] = set()
        self._resting: set[int] = set()
        self._freed: deque[tuple[float, int]] = deque()

    def take(self, now: float) -> int:
        """A free local id, now in use; ``AddressError`` when every one is in use or resting."""
        self._end_rest(now)
        candidate = self._last
        for _ in range(self._largest):
            candidate = candidate + 1 if candidate < self._largest else 1
            if candidate not in self._in_use and candidate not in self._resting:
                self._last = candidate
                self._in_use.add(candidate)
                return candidate
        raise AddressError(
            f"no local id left: {len(self._in_use)} in use and {len(self._resting)} "
            f"freed less than {self.quarantine:g}s ago, of {self._largest}"
        )

    def free(self, local: int, now: float) -> None:
        """``local`` is no longer in use; it rests for ``quarantine`` seconds."""
        self._in_use.discard(local)
        self._resting.add(local)
        self._freed.append((now, local))

    def _end_rest(self, now: float) -> None:
        freed = self._freed
        while freed and freed[0][0] <= now - self.quarantine:
            self._resting.discard(freed.popleft()[1])

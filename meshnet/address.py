"""Service addresses: skynet-style 32-bit handles, node id in the high 8 bits."""

from __future__ import annotations

from meshnet.errors import MeshnetError

NODE_BITS = 8
LOCAL_BITS = 24
MAX_NODE = (1 << NODE_BITS) - 1
MAX_LOCAL = (1 << LOCAL_BITS) - 1


class AddressError(MeshnetError):
    """An address is out of range or its text form cannot be parsed."""


class Address(int):
    """A service handle; prints like skynet (``:0100000a``) and is an int everywhere else.

    Being an int keeps addresses cheap to hash, compare and send through the CBOR codec
    (they arrive on the other side as plain ints, which every API here accepts).
    """

    __slots__ = ()

    def __new__(cls, value: int) -> Address:
        if not 0 <= value <= 0xFFFFFFFF:
            raise AddressError(f"address {value!r} is outside 0..0xffffffff")
        return super().__new__(cls, value)

    @classmethod
    def make(cls, node: int, local: int) -> Address:
        """Build the address of local id ``local`` on node ``node``."""
        if not 0 <= node <= MAX_NODE:
            raise AddressError(f"node id {node} is outside 0..{MAX_NODE}")
        if not 0 <= local <= MAX_LOCAL:
            raise AddressError(f"local id {local} is outside 0..{MAX_LOCAL}")
        return cls((node << LOCAL_BITS) | local)

    @classmethod
    def parse(cls, text: str) -> Address:
        """Parse skynet's text form ``:0100000a`` (eight hex digits after a colon)."""
        if len(text) != 9 or text[0] != ":":
            raise AddressError(f"address {text!r} is not of the form ':0100000a'")
        try:
            return cls(int(text[1:], 16))
        except ValueError:
            raise AddressError(f"address {text!r} has non-hex digits") from None

    @property
    def node(self) -> int:
        return self >> LOCAL_BITS

    @property
    def local(self) -> int:
        return self & MAX_LOCAL

    def __str__(self) -> str:
        return format_address(self)

    def __repr__(self) -> str:
        return f"Address({self})"


def format_address(value: int) -> str:
    """Text form of any int handle, for log lines and error messages."""
    return f":{value:08x}"

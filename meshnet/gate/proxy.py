"""The client's real address behind a proxy: HAProxy's PROXY protocol (versions 1 and 2)
in front of a TCP port, ``X-Forwarded-For`` in front of a WebSocket port.

Wire format of the PROXY header, sent once by the proxy before anything else:

v1, one ASCII line of at most 107 bytes::

    PROXY TCP4 <client ip> <server ip> <client port> <server port>\\r\\n
    PROXY TCP6 ...\\r\\n
    PROXY UNKNOWN[ anything]\\r\\n          (the proxy's own connection: a health check)

v2, binary::

    12 bytes  signature \\r\\n\\r\\n\\x00\\r\\nQUIT\\n
    1 byte    version (high nibble, 2) | command (low nibble: 0 LOCAL, 1 PROXY)
    1 byte    family (high: 1 IPv4, 2 IPv6, 3 unix, 0 unspecified) | transport (low)
    2 bytes   length of the rest, big-endian
    IPv4: client ip (4), server ip (4), client port (2), server port (2); IPv6: 16, 16, 2, 2;
    then TLVs, ignored. LOCAL, unspecified and unix mean "use the connection's address".

``X-Forwarded-For: client, proxy1, proxy2``: each proxy appends the address it got the
request from, so only the entries added by trusted proxies can be believed: the client is
the rightmost entry that is not itself a trusted proxy.

Everything here is pure; ``read_header`` is the only I/O, and it never reads past the
header, so what follows (TLS, framing, HTTP) is left in the stream untouched.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable

import trio

from meshnet.admission import Network, client_ip, is_in
from meshnet.errors import MeshnetError

V1_PREFIX = b"PROXY "
V1_MIN = len(b"PROXY UNKNOWN\r\n")
V1_MAX = 107
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_HEADER = struct.Struct("!12sBBH")
V2_ADDRESSES = {0x1: struct.Struct("!4s4sHH"), 0x2: struct.Struct("!16s16sHH")}
"""Address block by family: IPv4, IPv6."""


class ProxyHeaderError(MeshnetError):
    """What a trusted proxy sent is not a PROXY header (or an untrusted client sent one)."""


def looks_like_header(data: bytes) -> bool:
    """True if ``data`` (the first bytes of a connection) starts like a PROXY header."""
    return data.startswith(V1_PREFIX) or data.startswith(V2_SIGNATURE)


def missing_bytes(data: bytes) -> int:
    """How many more bytes the header that ``data`` begins needs at the least (0: it is
    complete). Never more than the header holds, so reading that many never reads past
    it. ``ProxyHeaderError`` as soon as ``data`` cannot begin a header."""
    if not data:
        return V1_MIN
    if data[:1] == V1_PREFIX[:1]:
        if not data.startswith(V1_PREFIX[: len(data)]):
            raise ProxyHeaderError(f"no PROXY header: the connection starts {data[:16]!r}")
        if data.endswith(b"\r\n"):
            return 0
        if len(data) >= V1_MAX:
            raise ProxyHeaderError(f"PROXY v1 header longer than {V1_MAX} bytes")
        return max(1, V1_MIN - len(data))
    if not data.startswith(V2_SIGNATURE[: len(data)]):
        raise ProxyHeaderError(f"no PROXY header: the connection starts {data[:16]!r}")
    if len(data) < V2_HEADER.size:
        return V2_HEADER.size - len(data)
    _, _, _, length = V2_HEADER.unpack_from(data)
    return V2_HEADER.size + length - len(data)


def parse_header(header: bytes) -> tuple[str, int] | None:
    """The client's ``(ip, port)`` from a whole header, or None when the proxy speaks for
    itself (v1 UNKNOWN, v2 LOCAL or a family without addresses)."""
    if header.startswith(V1_PREFIX):
        return _parse_v1(header)
    return _parse_v2(header)


async def read_header(stream: trio.abc.ReceiveStream) -> tuple[str, int] | None:
    """Read exactly one PROXY header from ``stream``; see ``parse_header``."""
    data = b""
    while need := missing_bytes(data):
        chunk = await stream.receive_some(need)
        if not chunk:
            raise ProxyHeaderError(f"connection closed inside its PROXY header ({data!r})")
        data += chunk
    return parse_header(data)


def forwarded_client(values: Iterable[bytes], trusted: Iterable[Network]) -> str | None:
    """The client's IP from the ``X-Forwarded-For`` header values of a request that came
    through a trusted proxy; None if there is none or an entry is not an IP."""
    trusted = tuple(trusted)
    entries = [entry.strip() for value in values for entry in value.split(b",")]
    chain: list[str] = []
    for entry in entries:
        address = client_ip(entry.decode("latin-1"))
        if address is None:
            return None
        chain.append(str(address))
    for host in reversed(chain):
        if not is_in(host, trusted):
            return host
    return chain[0] if chain else None


def _parse_v1(header: bytes) -> tuple[str, int] | None:
    try:
        fields = header[: -len(b"\r\n")].decode("ascii").split(" ")
    except UnicodeDecodeError:
        raise ProxyHeaderError("PROXY v1 header is not ASCII") from None
    if len(fields) >= 2 and fields[1] == "UNKNOWN":
        return None
    if len(fields) != 6 or fields[1] not in ("TCP4", "TCP6"):
        raise ProxyHeaderError(f"malformed PROXY v1 header {header!r}")
    _, family, source, destination, source_port, destination_port = fields
    version = 4 if family == "TCP4" else 6
    for address in (source, destination):
        try:
            right = ipaddress.ip_address(address).version == version
        except ValueError:
            right = False
        if not right:
            raise ProxyHeaderError(f"PROXY v1 header: {address!r} is not an IPv{version} address")
    for port in (source_port, destination_port):
        if not (port.isdigit() and port.isascii() and int(port) <= 65535):
            raise ProxyHeaderError(f"PROXY v1 header: {port!r} is not a port")
    return str(client_ip(source)), int(source_port)


def _parse_v2(header: bytes) -> tuple[str, int] | None:
    _, version_command, family_transport, length = V2_HEADER.unpack_from(header)
    version, command = version_command >> 4, version_command & 0xF
    if version != 2 or command not in (0, 1):
        raise ProxyHeaderError(
            f"PROXY v2 header with version {version} and command {command} (want 2, 0 or 1)"
        )
    block = V2_ADDRESSES.get(family_transport >> 4)
    if command == 0 or block is None:
        return None
    if length < block.size:
        raise ProxyHeaderError(f"PROXY v2 header: {length} bytes of addresses, {block.size} needed")
    source, _, port, _ = block.unpack_from(header, V2_HEADER.size)
    return str(client_ip(str(ipaddress.ip_address(source)))), port

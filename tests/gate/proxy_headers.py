"""PROXY headers as a proxy sends them (HAProxy's spec), for the tests."""

from __future__ import annotations

import ipaddress
import struct

from meshnet.gate.proxy import V2_SIGNATURE


def v1(client: str, port: int, server_port: int = 5678) -> bytes:
    ipv4 = ipaddress.ip_address(client).version == 4
    family, server = ("TCP4", "127.0.0.1") if ipv4 else ("TCP6", "::1")
    return f"PROXY {family} {client} {server} {port} {server_port}\r\n".encode()


def v2(client: str, port: int, server: str = "127.0.0.1", tlvs: bytes = b"") -> bytes:
    source, destination = ipaddress.ip_address(client), ipaddress.ip_address(server)
    family = 0x11 if source.version == 4 else 0x21
    addresses = source.packed + destination.packed + struct.pack("!HH", port, 5678)
    body = addresses + tlvs
    return V2_SIGNATURE + struct.pack("!BBH", 0x21, family, len(body)) + body


V1_UNKNOWN = b"PROXY UNKNOWN\r\n"
V2_LOCAL = V2_SIGNATURE + struct.pack("!BBH", 0x20, 0x00, 0)

"""Test helpers: inner packets from scapy, SA specs, and an independent ESP builder.

The builder uses `cryptography`'s AESGCM directly (not our kernels), so tests can craft packets
with valid ICVs but bad padding, bad next headers or odd lengths."""
from __future__ import annotations

import json
import socket
import struct
import time
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw, raw

from inline_ipsec import SaSpec

def find_vectors_dir() -> Path:
    """The published vectors: tests/data/vectors."""
    return Path(__file__).resolve().parent / "data" / "vectors"


def load_vectors(name: str) -> dict:
    return json.loads((find_vectors_dir() / name).read_text())


V4 = ("192.0.2.1", "198.51.100.1")
V6 = ("2001:db8::1", "2001:db8:ffff::1")


def key_material(bits: int = 128, seed: int = 1) -> bytes:
    n = bits // 8 + 4
    return bytes((seed * 37 + i * 11) & 0xFF for i in range(n))


def spec(spi: int = 0x1001, bits: int = 128, outer6: bool = False, **kw) -> SaSpec:
    src, dst = V6 if outer6 else V4
    kw.setdefault("key", key_material(bits, spi & 0xFF))
    return SaSpec(spi=spi, cipher=f"aes-gcm-{bits}", tunnel_src=src, tunnel_dst=dst, **kw)


def inner_packet(v6: bool = False, size: int = 0, tos: int = 0, df: bool = False,
                 payload: bytes = b"ping") -> bytes:
    """An inner IPv4/ICMP or IPv6/UDP packet, padded to `size` bytes if given."""
    if v6:
        pkt = IPv6(src="2001:db8:1::1", dst="2001:db8:2::1", tc=tos) / UDP(sport=1, dport=2)
    else:
        pkt = IP(src="10.1.0.1", dst="10.2.0.1", tos=tos, flags="DF" if df else 0) / ICMP()
    base = len(raw(pkt / Raw(payload)))
    if size and size > base:
        payload = payload + bytes(size - base)
    return raw(pkt / Raw(payload))


def esp_seal(key: bytes, spi: int, seq: int, plaintext: bytes, esn: bool = False) -> bytes:
    """SPI || seq || IV || AES-GCM(plaintext) || ICV, IV = seq (RFC 4106), by `cryptography`."""
    iv = struct.pack("!Q", seq)
    header = struct.pack("!II", spi, seq & 0xFFFFFFFF)
    aad = struct.pack("!III", spi, seq >> 32, seq & 0xFFFFFFFF) if esn else header
    return header + iv + AESGCM(key[:-4]).encrypt(key[-4:] + iv, plaintext, aad)


def trailer(payload: bytes, next_header: int, pad: bytes | None = None) -> bytes:
    if pad is None:
        n = (4 - (len(payload) + 2) % 4) % 4
        pad = bytes(range(1, n + 1))
    return payload + pad + bytes([len(pad), next_header])


def outer_v4(esp: bytes, src: str = V4[0], dst: str = V4[1]) -> bytes:
    return raw(IP(src=src, dst=dst, proto=50) / Raw(esp))


def missing(reason: str) -> None:
    """A prerequisite of the test is absent: skip locally, but fail in CI, where .ci/run
    installs everything (a green CI must not hide a missing dependency)."""
    import os

    import pytest
    if os.environ.get("INLINE_IPSEC_REQUIRE_ALL") or os.environ.get("CI"):
        pytest.fail(f"{reason} (CI installs it: see .ci/run)")
    pytest.skip(reason)


def free_port_pair() -> int:
    """A port P with P and P+1 free on 127.0.0.1 (IKE and NAT-T)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port >= 65535:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s2:
                s2.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair")


def query_until(sock: Path, command: str, want: str, timeout: float = 20.0) -> str:
    from inline_ipsec.io.control_socket import ControlError, query
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            text = query(str(sock), command)
            if want in text:
                return text
        except (ControlError, OSError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{want!r} never appeared in:\n{text}")

"""Shared helpers of the CPU-engine tests: SA specs for every algorithm, inner packets."""
from __future__ import annotations

import hashlib

from inline_ipsec import SaSpec
from inline_ipsec.sa import CIPHER_KEY_MATERIAL, INTEGRITY_ALGORITHMS

V4 = ("192.0.2.1", "198.51.100.1")
V6 = ("2001:db8::1", "2001:db8:ffff::2")

#: scapy names (scapy.layers.ipsec CRYPT_ALGOS / AUTH_ALGOS)
SCAPY_CIPHER = {
    "aes-gcm-128": "AES-GCM", "aes-gcm-192": "AES-GCM", "aes-gcm-256": "AES-GCM",
    "aes-gmac-128": "AES-NULL-GMAC", "aes-gmac-192": "AES-NULL-GMAC",
    "aes-gmac-256": "AES-NULL-GMAC",
    "aes-cbc-128": "AES-CBC", "aes-cbc-192": "AES-CBC", "aes-cbc-256": "AES-CBC",
    "3des-cbc": "3DES",
    "aes-ctr-128": "AES-CTR", "aes-ctr-192": "AES-CTR", "aes-ctr-256": "AES-CTR",
    "chacha20-poly1305": "CHACHA20-POLY1305", "null": "NULL",
}
SCAPY_AUTH = {
    "hmac-md5-96": "HMAC-MD5-96", "hmac-sha1-96": "HMAC-SHA1-96",
    "hmac-sha256-128": "SHA2-256-128", "hmac-sha384-192": "SHA2-384-192",
    "hmac-sha512-256": "SHA2-512-256",
}
AEAD = ("aes-gcm", "aes-gmac", "chacha20")
INTEGRITY = sorted(INTEGRITY_ALGORITHMS)


def material(label: str, n: int) -> bytes:
    """Deterministic key material."""
    out = b""
    k = 0
    while len(out) < n:
        out += hashlib.sha256(f"{label}/{k}".encode()).digest()
        k += 1
    return out[:n]


def esp_spec(cipher: str, integrity: str | None = None, outer=V4, spi: int = 0x1001,
             **kw) -> SaSpec:
    if not cipher.startswith(AEAD) and integrity is None:
        integrity = "hmac-sha256-128"
    ikey = material("i" + str(integrity), INTEGRITY_ALGORITHMS[integrity][0]) \
        if integrity else b""
    return SaSpec(spi=spi, cipher=cipher, key=material(cipher, CIPHER_KEY_MATERIAL[cipher]),
                  integrity=integrity, integrity_key=ikey, tunnel_src=outer[0],
                  tunnel_dst=outer[1], **kw)


def ah_spec(integrity: str, outer=V4, spi: int = 0x2001, **kw) -> SaSpec:
    return SaSpec(spi=spi, protocol="ah", cipher="null", key=b"", integrity=integrity,
                  integrity_key=material("ah" + integrity, INTEGRITY_ALGORITHMS[integrity][0]),
                  tunnel_src=outer[0], tunnel_dst=outer[1], **kw)


def inner_v4(size: int = 100, tos: int = 0, df: bool = False, ident: int = 7) -> bytes:
    from scapy.all import ICMP, IP, raw
    pkt = IP(src="10.1.0.1", dst="10.2.0.1", tos=tos, id=ident,
             flags="DF" if df else 0) / ICMP(id=1, seq=2)
    pad = max(0, size - len(pkt))
    return raw(pkt / (bytes(range(256)) * 8)[:pad])


def inner_v6(size: int = 100, tc: int = 0) -> bytes:
    from scapy.all import UDP, IPv6, raw
    pkt = IPv6(src="2001:db8:a::1", dst="2001:db8:b::1", tc=tc) / UDP(sport=1, dport=2)
    pad = max(0, size - len(pkt))
    return raw(pkt / (bytes(range(256)) * 8)[:pad])


def load_vectors(name: str) -> dict:
    """A file of tests/data/vectors."""
    import json
    from pathlib import Path
    return json.loads((Path(__file__).resolve().parents[1] / "data" / "vectors" / name).read_text())


def outer_v4(payload: bytes, proto: int = 50, src: str = "192.0.2.1",
             dst: str = "192.0.2.2") -> bytes:
    """`payload` behind a minimal outer IPv4 header (RFC 791) with a valid checksum."""
    import ipaddress
    import struct

    from inline_ipsec.packet.ip import internet_checksum
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64, proto,
                                0, ipaddress.ip_address(src).packed,
                                ipaddress.ip_address(dst).packed))
    struct.pack_into("!H", hdr, 10, internet_checksum(bytes(hdr)))
    return bytes(hdr) + payload

"""The CPU engine's reference: a minimal per-packet Python tunnel-mode ESP loop.

What a Python programmer writes without an engine: for each packet an outer IPv4 header
(RFC 791, checksum computed), then `hdr + iv + AESGCM.encrypt(...)` (RFC 4303 §2, RFC 4106
§3: IV = the 64-bit sequence number, nonce = salt || IV, AAD = SPI || sequence number), and
the matching decrypt with the minimal checks a receiver cannot skip: IPv4 and protocol 50,
the SPI, the anti-replay window (RFC 4303 §3.4.3: a 64-bit bitmap in an integer), the ICV, and
the trailer's pad length and next header (§2.4-2.6). No NAT-T, no IPv6, no ESN, no counters,
no lifetimes, no ECN: everything the engine does beyond this is its overhead.

The loop emits exactly the bytes the CPU engine and the PFE emit for the same SA and
sequence numbers (docs/wire-format.md), so `CpuEngine` bursts / this loop is a ratio of two
implementations of one job on the same plaintext bytes.
"""
from __future__ import annotations

import struct
from typing import Optional

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..sa import SaSpec

__all__ = ["PythonEsp"]

_IP = struct.Struct("!BBHHHBBH4s4s")
_ESP = struct.Struct("!LL")
_Q = struct.Struct("!Q")
_SUM = struct.Struct("!10H")
_H = struct.Struct("!H")
_PADS = tuple(bytes(range(1, n + 1)) for n in range(4))
WINDOW = 64


class PythonEsp:
    """One AES-GCM SA (both directions) of `spec`, packet by packet, as plain Python.

    >>> esp = PythonEsp(spec)
    >>> wire = esp.encrypt(inner)
    >>> esp.decrypt(wire) == inner
    """

    def __init__(self, spec: SaSpec) -> None:
        if not spec.cipher.startswith("aes-gcm") or spec.esn or spec.udp_encap \
                or spec.outer_ipv6 or spec.mode != "tunnel":
            raise ValueError("the reference loop is AES-GCM, IPv4 tunnel mode, no ESN/NAT-T")
        self.aead = AESGCM(spec.key[:-4])
        self.salt = spec.key[-4:]
        self.spi = spec.spi
        self.ttl = spec.ttl
        self.src = bytes(int(x) for x in spec.tunnel_src.split("."))
        self.dst = bytes(int(x) for x in spec.tunnel_dst.split("."))
        self.seq = 0          # last sequence number sent
        self.top = 0          # highest sequence number received
        self.bits = 0         # bit k: top - k received

    def encrypt(self, inner: bytes) -> bytes:
        """The ESP packet for one inner IPv4 packet (RFC 4303 §3.3)."""
        self.seq += 1
        seq = self.seq
        pad = (-(len(inner) + 2)) % 4
        iv = _Q.pack(seq)
        esp = _ESP.pack(self.spi, seq)
        sealed = self.aead.encrypt(self.salt + iv, inner + _PADS[pad] + bytes((pad, 4)), esp)
        total = 36 + len(sealed)
        header = _IP.pack(0x45, inner[1], total, seq & 0xFFFF, 0, self.ttl, 50, 0,
                          self.src, self.dst)
        s = sum(_SUM.unpack(header))
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        return header[:10] + _H.pack(~s & 0xFFFF) + header[12:] + esp + iv + sealed

    def decrypt(self, wire: bytes) -> Optional[bytes]:
        """The inner packet of one ESP packet (RFC 4303 §3.4), or None when it is dropped."""
        if len(wire) < 64 or wire[0] != 0x45 or wire[9] != 50:
            return None
        spi, seq = _ESP.unpack_from(wire, 20)
        if spi != self.spi or seq == 0:
            return None
        top = self.top
        if seq <= top and (top - seq >= WINDOW or (self.bits >> (top - seq)) & 1):
            return None
        try:
            plain = self.aead.decrypt(self.salt + wire[28:36], wire[36:], wire[20:28])
        except InvalidTag:
            return None
        if seq > top:
            self.bits = ((self.bits << (seq - top)) | 1) & 0xFFFFFFFFFFFFFFFF
            self.top = seq
        else:
            self.bits |= 1 << (top - seq)
        pad = plain[-2]
        if plain[-1] != 4 or pad > len(plain) - 22:
            return None
        return plain[:-2 - pad]

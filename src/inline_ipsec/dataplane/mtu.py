"""How big an inner packet becomes in the tunnel, and how big it may be (RFC 4301 §8).

`encapsulated_length(spec, n)` is the exact length of the outer packet either engine emits for
an `n`-byte inner packet (docs/wire-format.md): outer IPv4 (20) or IPv6 (40) header, the NAT-T
UDP header (8, RFC 3948 §2.1), then for ESP (RFC 4303 §2) SPI and sequence number (8), the IV,
the payload padded so that payload ‖ padding ‖ pad length ‖ next header is a multiple of the
cipher's alignment, and the ICV; for AH (RFC 4302 §2) a 12-byte header plus the ICV padded to
32 bits (IPv4) or 64 bits (IPv6, §3.3.3.2.1).

`max_inner_length(spec, mtu)` is the largest inner packet whose outer packet fits `mtu`: the
MTU a tunnel reports in ICMP "fragmentation needed" / "packet too big" (RFC 4301 §8.2, the
"effective MTU" of the SA) and the size pre-fragmentation cuts to.
"""
from __future__ import annotations

from ..sa import AEAD_CIPHERS, INTEGRITY_ALGORITHMS, SaSpec

__all__ = ["encapsulated_length", "max_inner_length", "esp_parameters"]

#: cipher -> (IV length, alignment of the encrypted part) (RFC 4106 §3, RFC 3602 §3,
#: RFC 3686 §3, RFC 7634 §3, RFC 4543 §3; RFC 4303 §2.4: at least 4-byte alignment).
_CIPHER = {
    "aes-gcm-128": (8, 4), "aes-gcm-192": (8, 4), "aes-gcm-256": (8, 4),
    "aes-gmac-128": (8, 4), "aes-gmac-192": (8, 4), "aes-gmac-256": (8, 4),
    "aes-cbc-128": (16, 16), "aes-cbc-192": (16, 16), "aes-cbc-256": (16, 16),
    "3des-cbc": (8, 8),
    "aes-ctr-128": (8, 4), "aes-ctr-192": (8, 4), "aes-ctr-256": (8, 4),
    "chacha20-poly1305": (8, 4),
    "null": (0, 4),
}
_AEAD_ICV = 16


def esp_parameters(spec: SaSpec) -> tuple[int, int, int]:
    """(IV length, alignment, ICV length) of an ESP SA."""
    iv, align = _CIPHER[spec.cipher]
    if spec.cipher in AEAD_CIPHERS:
        icv = _AEAD_ICV
    else:
        icv = INTEGRITY_ALGORITHMS[spec.integrity][1] if spec.integrity else 0
    return iv, align, icv


def _outer(spec: SaSpec) -> int:
    return (40 if spec.outer_ipv6 else 20) + (8 if spec.udp_encap else 0)


def encapsulated_length(spec: SaSpec, inner_length: int) -> int:
    """The length of the outer packet that carries an `inner_length`-byte inner packet."""
    if spec.protocol == "ah":
        icv = INTEGRITY_ALGORITHMS[spec.integrity][1] if spec.integrity else 0
        unit = 8 if spec.outer_ipv6 else 4
        ah = 12 + icv
        ah += -ah % unit
        return _outer(spec) + ah + inner_length
    iv, align, icv = esp_parameters(spec)
    body = inner_length + 2
    body += -body % align
    return _outer(spec) + 8 + iv + body + icv


def max_inner_length(spec: SaSpec, mtu: int) -> int:
    """The largest inner packet whose outer packet is at most `mtu` bytes (0 if none fits)."""
    n = max(0, mtu - _outer(spec))
    # encapsulated_length grows monotonically; the padding makes it a step function, so walk
    # down from an upper bound (at most an alignment unit of steps).
    while n > 0 and encapsulated_length(spec, n) > mtu:
        n -= 1
    return n

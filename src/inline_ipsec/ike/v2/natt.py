"""NAT traversal for IKEv2 (RFC 7296 §2.23, RFC 3948): NAT detection notifies and IKE SPIs
that never collide with the non-ESP marker. Floating to port 4500 is done by the session
(`IkeV2Session.natt`) once a NAT is found, or from the start towards a peer's NAT-T port.
"""
from __future__ import annotations

import functools
import hashlib
import ipaddress
import struct
from typing import TYPE_CHECKING, Callable

from ..constants import NotifyType
from ..payloads import NotifyPayload, Payload, notify

if TYPE_CHECKING:  # pragma: no cover
    from .session import Addr, IkeV2Session


def new_ike_spi(random: Callable[[int], bytes]) -> bytes:
    """A fresh IKE SPI whose first four bytes are not zero, so that an IKE header is never
    mistaken for the non-ESP marker (RFC 3948 §2.2, RFC 7296 §2.23)."""
    while True:
        spi = random(8)
        if spi[:4] != bytes(4):
            return spi


@functools.lru_cache(maxsize=4096)
def _packed(host: str) -> bytes:
    return ipaddress.ip_address(host).packed


def nat_hash(spi_i: bytes, spi_r: bytes, addr: "Addr") -> bytes:
    """NAT_DETECTION_*_IP data: SHA-1(SPIi | SPIr | IP | Port) (RFC 7296 §2.23)."""
    return hashlib.sha1(spi_i + spi_r + _packed(addr[0]) + struct.pack("!H", addr[1])).digest()


def nat_notifies(session: "IkeV2Session", spi_i: bytes, spi_r: bytes) -> list[Payload]:
    """NAT_DETECTION_SOURCE_IP / _DESTINATION_IP for IKE_SA_INIT (§2.23)."""
    src = nat_hash(spi_i, spi_r, session.nat_local_addr)
    if session.config.force_encap:
        src = session.random(20)  # pretend to be behind a NAT, as strongSwan's encap=yes
    return [notify(NotifyType.NAT_DETECTION_SOURCE_IP, src),
            notify(NotifyType.NAT_DETECTION_DESTINATION_IP,
                   nat_hash(spi_i, spi_r, session.remote_addr))]


def check_nat(session: "IkeV2Session", payloads: list[Payload], spi_i: bytes,
              spi_r: bytes) -> None:
    """Compare the peer's NAT detection hashes with ours and record who is behind a NAT."""
    srcs = [p.data for p in payloads if isinstance(p, NotifyPayload)
            and p.notify_type == NotifyType.NAT_DETECTION_SOURCE_IP]
    dsts = [p.data for p in payloads if isinstance(p, NotifyPayload)
            and p.notify_type == NotifyType.NAT_DETECTION_DESTINATION_IP]
    if not srcs or not dsts:
        return
    session.remote_nat = nat_hash(spi_i, spi_r, session.remote_addr) not in srcs
    session.local_nat = nat_hash(spi_i, spi_r, session.nat_local_addr) not in dsts \
        or session.config.force_encap

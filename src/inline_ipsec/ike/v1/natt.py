"""NAT traversal for IKEv1 (RFC 3947): the vendor ID, NAT-D hashes and the decision to float
to port 4500; the UDP-encapsulated modes of Quick Mode (RFC 3947 §5.1) are chosen in
`quick_mode.py` from `IkeV1Session.nat_detected`.

    NAT-D = HASH(CKY-I | CKY-R | IP | Port)         (RFC 3947 §3.2, the negotiated hash)

The first NAT-D payload a peer sends carries the hash of the receiver's address as the sender
sees it (the destination), the following ones the sender's own addresses: if the first does
not match our address, we are behind a NAT; if none of the others matches the address the
peer's message came from, the peer is (RFC 3947 §3.2). Main Mode carries them in messages 3
and 4, Aggressive Mode in messages 2 and 3; the initiator moves to port 4500 (with the
non-ESP marker, RFC 3948 §2.2) with Main Mode message 5 / Aggressive Mode message 3 when a NAT
was found (RFC 3947 §4).
"""
from __future__ import annotations

import ipaddress
import struct
from typing import TYPE_CHECKING, Sequence

from .constants import VID_DPD, VID_FRAGMENTATION, FRAGMENTATION_CAPS, VID_NATT_RFC3947
from .isakmp import NatDPayload, Payload, VendorIdPayload
from .keymat import digest

if TYPE_CHECKING:  # pragma: no cover
    from .session import Addr, IkeV1Session


def natd_hash(hash_name: str, cky_i: bytes, cky_r: bytes, addr: "Addr") -> bytes:
    return digest(hash_name, cky_i + cky_r + ipaddress.ip_address(addr[0]).packed
                  + struct.pack("!H", int(addr[1])))


def natd_payloads(session: "IkeV1Session") -> list[Payload]:
    """NAT-D of the peer's address (as we send to it), then ours (§3.2); with `force_encap`
    our own hash is random, so the peer sees a NAT and UDP encapsulation is used (as
    strongSwan's `encap = yes`)."""
    sa = session.sa
    assert sa.suite is not None
    h = sa.suite.hash_name
    ours = natd_hash(h, sa.cky_i, sa.cky_r, session.nat_local_addr)
    if session.config.force_encap:
        ours = session.random(len(ours))
    return [NatDPayload(natd_hash(h, sa.cky_i, sa.cky_r, session.remote_addr)),
            NatDPayload(ours)]


def check_natd(session: "IkeV1Session", payloads: Sequence[Payload], src: "Addr") -> None:
    """Compare the peer's NAT-D payloads with our view of both addresses (§3.2)."""
    hashes = [p.data for p in payloads if isinstance(p, NatDPayload)]
    if len(hashes) < 2 or not session.peer_natt:
        return
    sa = session.sa
    assert sa.suite is not None
    h = sa.suite.hash_name
    session.local_nat = hashes[0] != natd_hash(h, sa.cky_i, sa.cky_r, session.nat_local_addr) \
        or session.config.force_encap
    session.remote_nat = natd_hash(h, sa.cky_i, sa.cky_r, src) not in hashes[1:]


def vendor_ids(natt: bool, dpd: bool, fragmentation: bool) -> list[Payload]:
    """The vendor IDs we announce in the first Phase 1 message of each side."""
    out: list[Payload] = []
    if natt:
        out.append(VendorIdPayload(VID_NATT_RFC3947))
    if fragmentation:
        out.append(VendorIdPayload(VID_FRAGMENTATION + FRAGMENTATION_CAPS.to_bytes(4, "big")))
    if dpd:
        out.append(VendorIdPayload(VID_DPD))
    return out


def peer_extensions(payloads: Sequence[Payload]) -> tuple[bool, bool, bool]:
    """(NAT-T RFC 3947, DPD, IKE fragmentation) announced by the peer's vendor IDs; the
    fragmentation VID counts bare or with the Main/Aggressive Mode capability bit (as
    strongSwan's isakmp_vendor.c reads Windows' and Cisco's)."""
    natt = dpd = frag = False
    for p in payloads:
        if not isinstance(p, VendorIdPayload):
            continue
        d = p.data
        natt |= d == VID_NATT_RFC3947
        dpd |= d == VID_DPD
        if d[:16] == VID_FRAGMENTATION:
            frag |= len(d) == 16 or (len(d) == 20 and bool(
                int.from_bytes(d[16:], "big") & FRAGMENTATION_CAPS))
    return natt, dpd, frag


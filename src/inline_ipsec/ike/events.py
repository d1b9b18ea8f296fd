"""Events an IKE session hands to its user (aioquic `events.py` style).

`ChildSaUp` / `ChildSaRekeyed` carry a `NegotiatedChildSa`: everything the data plane needs to
install the two directions of the child SA (see `ChildSaUp.to_sa_specs`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..sa import Lifetime, SaSpec
from .errors import IkeError
from .payloads import TrafficSelector


class IkeEvent:
    """Base class of all IKE events."""


@dataclass
class NegotiatedChildSa:
    """A child SA pair as negotiated (RFC 7296 §2.17); keys never appear in repr."""

    name: str
    #: SPI we chose: peers send to it, our inbound SA (RFC 7296 §2.17 "SPI of the receiver").
    spi_in: int
    #: SPI the peer chose: our outbound SA.
    spi_out: int
    #: cipher name as in `inline_ipsec.sa.CIPHER_KEY_MATERIAL` (e.g. "aes-gcm-128").
    cipher: str
    #: inbound key material (RFC 4106 key || 4-byte salt for GCM).
    key_in: bytes = field(repr=False)
    #: outbound key material.
    key_out: bytes = field(repr=False)
    #: integrity name as in `inline_ipsec.sa.INTEGRITY_ALGORITHMS`, None for AEAD.
    integrity: Optional[str] = None
    integrity_key_in: bytes = field(default=b"", repr=False)
    integrity_key_out: bytes = field(default=b"", repr=False)
    #: extended sequence numbers negotiated (RFC 7296 §3.3.2 transform type 5).
    esn: bool = False
    #: traffic selectors, local side (our TSi when we initiated) and remote side.
    local_ts: list[TrafficSelector] = field(default_factory=list)
    remote_ts: list[TrafficSelector] = field(default_factory=list)
    #: soft (rekey) and hard (expire) lifetimes in seconds.
    lifetime: Lifetime = field(default_factory=Lifetime)
    #: ESP in UDP (RFC 3948), because a NAT was detected (RFC 7296 §2.23).
    udp_encap: bool = False
    local_port: int = 4500
    remote_port: int = 4500
    replay_window: int = 64
    mode: str = "tunnel"
    #: whether we were the initiator of the exchange that created this child SA.
    initiator: bool = True
    #: "esp" or "ah" (RFC 4302; cipher "null", integrity only).
    protocol: str = "esp"
    #: the IKE version that negotiated it (show output prints "Version: IKEv1"/"IKEv2").
    ike_version: int = 2

    def to_sa_specs(self, local_addr: str, remote_addr: str) -> tuple[SaSpec, SaSpec]:
        """(outbound SaSpec, inbound SaSpec) for the data plane (docs/design.md §5)."""
        def spec(spi: int, key: bytes, integ_key: bytes, src: str, dst: str, sport: int,
                 dport: int) -> SaSpec:
            return SaSpec(spi=spi, cipher=self.cipher, key=key, tunnel_src=src,
                          tunnel_dst=dst, udp_encap=self.udp_encap,
                          replay_window=self.replay_window, esn=self.esn,
                          integrity=self.integrity, integrity_key=integ_key, mode=self.mode,
                          udp_sport=sport, udp_dport=dport, lifetime=self.lifetime,
                          protocol=self.protocol)
        out = spec(self.spi_out, self.key_out, self.integrity_key_out, local_addr,
                   remote_addr, self.local_port, self.remote_port)
        inb = spec(self.spi_in, self.key_in, self.integrity_key_in, remote_addr, local_addr,
                   self.remote_port, self.local_port)
        return out, inb


@dataclass
class IkeSaUp(IkeEvent):
    """IKE_AUTH completed (RFC 7296 §1.2): the IKE SA is authenticated."""

    spi_i: bytes
    spi_r: bytes
    initiator: bool
    local_id: str
    remote_id: str
    #: e.g. "aes128gcm16-prfsha256-ecp256".
    proposal: str
    #: True when a PPK was mixed into the keys (RFC 8784).
    ppk_used: bool = False
    #: NAT detected in front of us / in front of the peer (RFC 7296 §2.23).
    local_nat: bool = False
    remote_nat: bool = False
    #: 2, or 1 for an IKEv1 ISAKMP SA (RFC 2409).
    version: int = 2
    #: IKEv1 Phase 1 exchange: "Main" or "Aggressive" (the show output's Mode column);
    #: None for IKEv2.
    exchange_mode: Optional[str] = None


@dataclass
class ChildSaUp(IkeEvent):
    """A new child SA is established (IKE_AUTH or CREATE_CHILD_SA, RFC 7296 §1.3.1)."""

    child: NegotiatedChildSa

    def to_sa_specs(self, local_addr: str, remote_addr: str) -> tuple[SaSpec, SaSpec]:
        """(outbound, inbound) SaSpec pair, see `NegotiatedChildSa.to_sa_specs`."""
        return self.child.to_sa_specs(local_addr, remote_addr)


@dataclass
class ChildSaRekeyed(IkeEvent):
    """A child SA was rekeyed (RFC 7296 §2.8, §1.3.3). Make-before-break: install `new`,
    then remove `old_spi_in`/`old_spi_out` (their delete follows in the same event)."""

    old_spi_in: int
    old_spi_out: int
    new: NegotiatedChildSa

    def to_sa_specs(self, local_addr: str, remote_addr: str) -> tuple[SaSpec, SaSpec]:
        return self.new.to_sa_specs(local_addr, remote_addr)


@dataclass
class ChildSaDown(IkeEvent):
    """A child SA was deleted (RFC 7296 §1.4.1) or expired."""

    spi_in: int
    spi_out: int
    reason: str = "deleted"


@dataclass
class IkeSaRekeyed(IkeEvent):
    """The IKE SA was rekeyed (RFC 7296 §2.18); child SAs moved to the new SA."""

    old_spi_i: bytes
    old_spi_r: bytes
    spi_i: bytes
    spi_r: bytes


@dataclass
class IkeSaDown(IkeEvent):
    """The IKE SA is gone: deleted, timed out, dead peer, or failed to establish."""

    reason: str
    error: Optional[IkeError] = None
    #: child SAs that went down with it, as (spi_in, spi_out).
    children: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class PrivateNotify(IkeEvent):
    """An INFORMATIONAL request on the established IKE SA carried a Notify of a private-use
    status type (RFC 7296 §3.10.1: 40960-65535), e.g. an ADVPN shortcut suggestion
    (docs/advpn.md). The exchange is authenticated; what the data means is the user's."""

    notify_type: int
    data: bytes

"""Per-peer IKEv1 configuration (Junos `ike gateway` + `ike policy` with `mode main|aggressive`
and IKEv1 `ike proposal`s, plus the `ipsec vpn`s as `ChildConfig`s, shared with IKEv2).

Phase 2 proposals, selectors and lifetimes are IKEv2's `ChildConfig` (strongSwan notation,
e.g. "aes128gcm16" or "aes256-sha256-modp2048": a DH group there is the PFS group); IKEv1
carries one selector per side in Quick Mode (the first of `local_ts` / `remote_ts`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from cryptography import x509

from ..auth import Identity
from ..config import DPD_MODES, ChildConfig
from ..errors import LocalIkeError
from .proposals import Phase1Proposal, Phase1Suite

MODES = ("main", "aggressive")


@dataclass
class IkeV1Config:
    """One IKEv1 peer relationship."""

    #: Phase 1 proposals in our order of preference (Junos `ike policy ... proposals`).
    proposals: Sequence[Phase1Proposal] = (Phase1Proposal(),)
    #: Junos `ike policy ... mode`: "main" (identity protection) or "aggressive".
    mode: str = "main"
    local_id: Identity = field(default_factory=lambda: Identity.parse("initiator.example"))
    #: None accepts any identity the peer proves.
    remote_id: Optional[Identity] = None
    psk: Optional[bytes] = None
    #: our private key and certificate chain (end entity first) for signature methods.
    private_key: Optional[object] = None
    certificates: Sequence[x509.Certificate] = ()
    #: trust anchors for the peer's certificate.
    ca_certificates: Sequence[x509.Certificate] = ()
    children: Sequence[ChildConfig] = field(default_factory=lambda: [ChildConfig()])
    #: retransmission: timeout * base**n, `tries` retransmits (strongSwan's defaults).
    retransmit_timeout: float = 4.0
    retransmit_base: float = 1.8
    retransmit_tries: int = 5
    #: RFC 3706 DPD with Junos semantics: an R-U-THERE each `dpd_interval` seconds without
    #: anything heard from the peer (or always, with `dpd_always_send`); the peer is dead after
    #: `dpd_threshold` probes in a row went unanswered. None disables DPD.
    dpd_interval: Optional[float] = None
    dpd_threshold: int = 5
    dpd_always_send: bool = False
    #: Junos `dead-peer-detection` mode (as `IkeConfig.dpd_mode`): "probe-idle-tunnel"
    #: probes after an interval with nothing heard from the peer (IKE or IPsec traffic,
    #: `IkeV1Session.note_traffic`); "optimized" only when, besides, we sent IPsec traffic
    #: the peer did not answer; "always-send" every interval (`dpd_always_send`).
    dpd_mode: str = "probe-idle-tunnel"
    #: announce RFC 3947 NAT-T and float to `natt_port` when a NAT is detected.
    natt: bool = True
    natt_port: int = 4500
    #: pretend to be behind a NAT (strongSwan's `encap = yes`): forces UDP encapsulation.
    force_encap: bool = False
    #: IKE fragmentation: announce it, and the largest ISAKMP message (IP/UDP headers
    #: excluded) sent whole to a peer that announced it too.
    fragmentation: bool = True
    fragment_size: int = 1200
    #: as Quick Mode responder, set the commit bit (RFC 2408 §3.1) and confirm with CONNECTED.
    commit_bit: bool = False
    #: responder: give up a Phase 1 that did not complete within this many seconds.
    half_open_timeout: float = 30.0
    #: after our re-authentication, Delete the old ISAKMP SA this many seconds later, not at
    #: once: a peer may move the IPsec SAs to the new ISAKMP SA only after its last Main
    #: Mode message (strongSwan does it in a job of its own), and a Delete that arrives
    #: first takes them down with the old SA. strongSwan waits 10 s too.
    reauth_delete_delay: float = 10.0
    #: most IPsec SA pairs one ISAKMP SA may hold; further Quick Modes are refused.
    max_children: int = 64
    random: Callable[[int], bytes] = os.urandom
    #: a label for the user (the gateway puts the Junos VPN name here).
    name: str = ""
    #: responder: pick the peer configuration by the identity the peer proves in Phase 1
    #: (called with (IDi, None); None keeps this configuration). Main Mode PSK chose the
    #: key by address before any identity (RFC 2409 §5.4), so a picked configuration must
    #: have the same key and allow the negotiated transform, else the peer is refused.
    select_peer: Optional[Callable[[Identity, Optional[Identity]],
                                   Optional["IkeV1Config"]]] = \
        field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise LocalIkeError(f"IKEv1 mode {self.mode!r}: expected main or aggressive")
        if not self.proposals:
            raise LocalIkeError("IKEv1 needs at least one Phase 1 proposal")
        self.suites: list[Phase1Suite] = [Phase1Suite.of(p) for p in self.proposals]
        if any(not s.uses_signatures for s in self.suites) and not self.psk:
            raise LocalIkeError("pre-shared-keys proposals need a pre-shared key")
        if any(s.uses_signatures for s in self.suites) and (
                self.private_key is None or not self.certificates):
            raise LocalIkeError("signature proposals need a private key and a certificate")
        if self.dpd_threshold < 1:
            raise LocalIkeError("dpd threshold must be at least 1")
        if not self.reauth_delete_delay >= 0:
            raise LocalIkeError("reauth_delete_delay must be at least 0 seconds")
        if self.dpd_mode not in DPD_MODES:
            raise LocalIkeError(f"dpd mode {self.dpd_mode!r}: expected one of "
                                f"{', '.join(DPD_MODES)}")
        if self.dpd_mode == "always-send":
            self.dpd_always_send = True

    @property
    def exchange_mode(self) -> str:
        """"Main" or "Aggressive", as `show security ike security-associations` prints it."""
        return self.mode.capitalize()

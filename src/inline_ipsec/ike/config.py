"""Per-session IKEv2 configuration (what Junos calls the IKE gateway/policy and IPsec VPN),
in protocol terms. `inline_ipsec.config` builds these from Junos statements.

Proposals use strongSwan notation (see `proposals.parse_proposal`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from cryptography import x509

from .auth import Identity
from .cookies import CookieSecrets


#: Junos `dead-peer-detection` modes (`IkeConfig.dpd_mode`).
DPD_MODES = ("optimized", "probe-idle-tunnel", "always-send")


@dataclass
class ChildConfig:
    """One IPsec SA (Junos `ipsec vpn`): proposals, selectors, lifetimes."""

    name: str = "child"
    #: ESP proposals, e.g. "aes128gcm16" or "aes256-sha256-modp2048-esn" (a DH group = PFS).
    proposals: Sequence[str] = ("aes128gcm16",)
    #: our side's traffic selectors (TSi when we initiate) and the peer's.
    local_ts: Sequence[str] = ("0.0.0.0/0",)
    remote_ts: Sequence[str] = ("0.0.0.0/0",)
    #: hard lifetime in seconds (RFC 4301 §4.4.2.1); the rekey starts at `rekey_seconds`.
    lifetime_seconds: float = 3600.0
    rekey_seconds: Optional[float] = None
    replay_window: int = 64
    #: "esp" (RFC 4303) or "ah" (RFC 4302: integrity only, proposals without ENCR).
    protocol: str = "esp"
    #: lifetime in kilobytes (Junos `lifetime-kilobytes`); IKEv1 negotiates it in Quick Mode
    #: (RFC 2407 §4.5), IKEv2 leaves it to the data plane. None: no byte limit.
    lifetime_kilobytes: Optional[int] = None

    @property
    def soft_seconds(self) -> float:
        return self.rekey_seconds if self.rekey_seconds is not None \
            else 0.9 * self.lifetime_seconds


@dataclass
class IkeConfig:
    """One IKEv2 peer relationship (Junos `ike gateway` + `ike policy`)."""

    #: IKE proposals, e.g. "aes128gcm16-prfsha256-ecp256" (the first DH group is used in KE).
    proposals: Sequence[str] = ("aes128gcm16-prfsha256-ecp256",)
    local_id: Identity = field(default_factory=lambda: Identity.parse("initiator.example"))
    #: None accepts any identity the peer proves.
    remote_id: Optional[Identity] = None
    #: "psk" or "pubkey" (certificate + RFC 7427 signature).
    auth: str = "psk"
    psk: Optional[bytes] = None
    #: our private key and certificate chain (end entity first) for auth="pubkey".
    private_key: Optional[object] = None
    certificates: Sequence[x509.Certificate] = ()
    #: trust anchors for the peer's certificate (auth of the peer by signature).
    ca_certificates: Sequence[x509.Certificate] = ()
    #: RFC 8784 post-quantum preshared key: identity, secret, and whether it is mandatory.
    ppk_id: Optional[bytes] = None
    ppk: Optional[bytes] = None
    ppk_required: bool = False
    children: Sequence[ChildConfig] = field(default_factory=lambda: [ChildConfig()])
    #: retransmission (RFC 7296 §2.1): timeout * base**n, `tries` retransmits, as strongSwan.
    retransmit_timeout: float = 4.0
    retransmit_base: float = 1.8
    retransmit_tries: int = 5
    #: dead peer detection (RFC 7296 §2.4 liveness checks, timed as Junos
    #: `dead-peer-detection`, see `IkeV2Session`): probe after `dpd_interval` seconds of
    #: silence (None disables DPD), the peer is dead after `dpd_threshold` unanswered probes.
    dpd_interval: Optional[float] = None
    dpd_threshold: int = 5
    #: when to probe: "optimized" (traffic was sent but none received, the Junos default;
    #: needs `IkeV2Session.note_traffic`), "probe-idle-tunnel" (none received, whether or not
    #: any was sent: a session without data plane is this) or "always-send" (every interval).
    dpd_mode: str = "probe-idle-tunnel"
    #: IKE SA lifetime: rekey (§2.18) after this many seconds; None never.
    ike_rekey_seconds: Optional[float] = None
    #: responder: demand a COOKIE (§2.6) before keeping any state.
    require_cookie: bool = False
    #: responder: give up a half-open IKE SA (IKE_SA_INIT done, no IKE_AUTH) after this long.
    half_open_timeout: float = 30.0
    #: RFC 7383 IKE fragmentation: offer it, and the largest datagram (UDP payload, non-ESP
    #: marker included) we send before splitting a protected message into SKF fragments.
    fragmentation: bool = True
    fragment_size: int = 1280
    #: port to float to when a NAT is detected (§2.23).
    natt_port: int = 4500
    #: child SAs one IKE SA may hold: a further CREATE_CHILD_SA from the peer is answered
    #: NO_ADDITIONAL_SAS (RFC 7296 §1.3, §3.10.1), so an authenticated peer cannot grow it
    #: without limit (rekeys replace SAs and are not refused).
    max_child_sas: int = 256
    #: pretend to be behind a NAT (strongSwan "encap = yes", RFC 7296 §2.23 last paragraph).
    force_encap: bool = False
    random: Callable[[int], bytes] = os.urandom
    #: a label for the user (the gateway puts the Junos VPN name here).
    name: str = ""
    #: responder: pick the peer configuration by the identities in IKE_AUTH (RFC 7296 §2.15,
    #: §3.5: "the responder ... uses IDi and IDr to select the policy"), called with
    #: (IDi, IDr or None); None keeps this configuration. IKE_SA_INIT (proposals, USE_PPK)
    #: was answered with this one, so candidates should share the IKE proposals.
    select_peer: Optional[Callable[[Identity, Optional[Identity]], Optional["IkeConfig"]]] = \
        field(default=None, repr=False)
    #: secrets for stateless cookies (§2.6: a current and a previous one, rotated on a
    #: schedule); shared by all responder sessions of this configuration and its copies.
    cookie_secrets: CookieSecrets = field(default_factory=CookieSecrets, repr=False,
                                          compare=False)
    #: initiator: attributes of a CP payload sent in IKE_AUTH (RFC 7296 §3.15), e.g.
    #: [(INTERNAL_IP4_ADDRESS, our tunnel address)]; empty: no CP payload. `cp_type` is
    #: CFG_REQUEST (1: give me an address, or this one) or CFG_SET (3: this is mine).
    cp_request: Sequence[tuple[int, bytes]] = ()
    cp_type: int = 1
    #: responder: called with (session, the peer's CpPayload) in IKE_AUTH, after the peer
    #: is authenticated; returns the CP(CFG_REPLY) to send, or None for none.
    cp_responder: Optional[Callable[[Any, Any], Any]] = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.dpd_mode not in DPD_MODES:
            raise ValueError(f"dpd_mode {self.dpd_mode!r}: expected one of "
                             f"{', '.join(DPD_MODES)}")
        if self.dpd_threshold < 1:
            raise ValueError("dpd_threshold must be at least 1")

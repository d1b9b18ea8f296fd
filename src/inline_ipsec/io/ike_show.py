"""`show security ike security-associations [detail]` of a gateway running IKE: the live IKE
SAs of its `IkeControl` as the renderers' records (docs/junos-formats.md §4.3, §4.4).

Cookies are the IKE SA SPIs (RFC 7296 §3.1); the lifetime counts down from the IKE proposal's
`lifetime-seconds` since the IKE SA came up (or was last rekeyed, §2.18); ports are 4500 once
IKE floated to the NAT-T port (§2.23).

An IKEv1 ISAKMP SA (RFC 2409) prints its Phase 1 exchange, `Main` or `Aggressive`, in the
Mode column and as the detail's `Exchange type`; its cookies are the ISAKMP cookies (RFC 2408
§3.1); its lifetime is the negotiated Phase 1 `lifetime-seconds` since Phase 1 completed; the
Phase 1 hash is both the HMAC and the PRF (RFC 2409 §5: "prf" is the HMAC of the negotiated
hash), printed as Junos names them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ..ike.constants import EncrId, IntegId, PrfId
from ..ike.states import ChildSaState, IkeSaState
from ..stats import IkeSaDetail, IkeSaRecord

if TYPE_CHECKING:
    from ..ike import IkeV2Session
    from ..dataplane.gateway import Gateway

__all__ = ["ike_sa_records", "ike_sa_details", "algorithm_names"]

_INTEG = {IntegId.AUTH_HMAC_SHA1_96: "hmac-sha1-96",
          IntegId.AUTH_HMAC_SHA2_256_128: "hmac-sha256-128",
          IntegId.AUTH_HMAC_SHA2_384_192: "hmac-sha384-192",
          IntegId.AUTH_HMAC_SHA2_512_256: "hmac-sha512-256"}
_PRF = {PrfId.PRF_HMAC_SHA1: "hmac-sha1", PrfId.PRF_HMAC_SHA2_256: "hmac-sha256",
        PrfId.PRF_HMAC_SHA2_384: "hmac-sha384", PrfId.PRF_HMAC_SHA2_512: "hmac-sha512"}


def algorithm_names(suite) -> tuple[str, str, str, str]:
    """(Authentication, Encryption, PRF, DH group) as the detail output prints them; AES-GCM
    has no separate integrity algorithm, Junos prints the AEAD there."""
    gcm = suite.encr == EncrId.ENCR_AES_GCM_16
    enc = f"aes{suite.key_bits}-{'gcm' if gcm else 'cbc'}"
    auth = enc if gcm else _INTEG.get(suite.integ, str(suite.integ))
    return auth, enc, _PRF.get(suite.prf, str(suite.prf)), f"DH-group-{int(suite.dh)}"


#: RFC 2409 Phase 1 hash -> (Authentication, PRF) as Junos prints them for IKEv1
_V1_HASH = {"sha1": ("hmac-sha1-96", "hmac-sha1"), "sha256": ("hmac-sha256-128", "hmac-sha256"),
            "sha384": ("hmac-sha384-192", "hmac-sha384"),
            "sha512": ("hmac-sha512-256", "hmac-sha512"), "md5": ("hmac-md5-96", "hmac-md5")}
#: Junos `authentication-method` -> the detail's `Authentication method`
_V1_METHOD = {"pre-shared-keys": "Pre-shared-keys", "rsa-signatures": "RSA-signatures",
              "ecdsa-signatures-256": "ECDSA-signatures-256",
              "ecdsa-signatures-384": "ECDSA-signatures-384",
              "ecdsa-signatures-521": "ECDSA-signatures-521"}


def v1_algorithm_names(suite) -> tuple[str, str, str, str]:
    """(Authentication, Encryption, PRF, DH group) of an ISAKMP SA's `Phase1Suite`."""
    auth, prf = _V1_HASH.get(suite.hash_name, (suite.hash_name, suite.hash_name))
    enc = "3des-cbc" if suite.cipher == "3des-cbc" else f"aes{suite.key_bits}-cbc"
    return auth, enc, prf, f"DH-group-{int(suite.group)}"


def _v1(s) -> bool:
    return s.version == 1


def _live(gw: "Gateway") -> list["IkeV2Session"]:
    ike = gw.ike
    if ike is None:
        return []
    return [s for s in ike.sessions()
            if s.state in (IkeSaState.ESTABLISHED, IkeSaState.DELETING)]


def _remote(gw: "Gateway", s: "IkeV2Session") -> str:
    assert gw.ike is not None
    peer = gw.ike.peer_of(s)
    return peer.remote if peer is not None else str(s.remote_addr[0])


def ike_sa_records(gw: "Gateway") -> list[IkeSaRecord]:
    """Rows of `show security ike security-associations`."""
    out: list[IkeSaRecord] = []
    ike = gw.ike
    if ike is None:
        return out
    for s in _live(gw):
        info = ike.session_info(s)
        mode = s.exchange_mode if _v1(s) else "IKEv2"
        out.append(IkeSaRecord(info.index, "UP", int.from_bytes(s.ike.spi_i, "big"),
                               int.from_bytes(s.ike.spi_r, "big"), mode, _remote(gw, s)))
    return out


def ike_sa_details(gw: "Gateway", now: Optional[float] = None) -> list[IkeSaDetail]:
    """Blocks of `show security ike security-associations detail` at IKE time `now` (the
    control plane's last reading by default)."""
    ike = gw.ike
    out: list[IkeSaDetail] = []
    if ike is None:
        return out
    for s in _live(gw):
        info = ike.session_info(s)
        v = ike.peer_of(s)
        gw_cfg = gw.config.ike_gateways.get(s.config.name)
        t = ike._now if now is None else now
        life = 28800
        if gw_cfg is not None and gw_cfg.ike_policy in gw.config.ike_policies:
            names = gw.config.ike_policies[gw_cfg.ike_policy].proposals
            lives = [gw.config.ike_proposals[n].lifetime_seconds for n in names
                     if n in gw.config.ike_proposals]
            life = min(lives) if lives else life
        since = info.rekeyed_at if info.rekeyed_at is not None else (info.up_at or t)
        port = 4500 if s.natt else 500
        if _v1(s):
            suite = s.ike.suite
            life = suite.lifetime_seconds
            since = s.established_at if s.established_at is not None else since
            auth, enc, prf, dh = v1_algorithm_names(suite)
            exchange = s.exchange_mode
            method = _V1_METHOD.get(suite.auth_name, suite.auth_name)
        else:
            auth, enc, prf, dh = algorithm_names(s.ike.suite)
            exchange = "IKEv2"
            method = "Pre-shared-keys" if s.config.auth == "psk" else "Signature"
        pending = sum(1 for c in s.children.values() if c.state == ChildSaState.REKEYING)
        out.append(IkeSaDetail(
            remote_address=v.remote if v is not None else str(s.remote_addr[0]),
            index=info.index,
            gateway_name=gw_cfg.name if gw_cfg is not None else s.config.name,
            role="Initiator" if s.ike.initiator else "Responder",
            state="UP",
            initiator_cookie=int.from_bytes(s.ike.spi_i, "big"),
            responder_cookie=int.from_bytes(s.ike.spi_r, "big"),
            exchange_type=exchange,
            authentication_method=method,
            local_address=v.local if v is not None else str(s.local_addr[0]),
            local_port=port, remote_port=port,
            lifetime_remaining=max(0, int(life - (t - since))),
            fragmentation=s.frag_ok, fragmentation_size=s.config.fragment_size
            if s.frag_ok else 0,
            peer_ike_id=str(s.peer_id) if s.peer_id is not None else "",
            authentication=auth, encryption=enc, prf=prf, dh_group=dh,
            input_bytes=info.rx_bytes, output_bytes=info.tx_bytes,
            input_packets=info.rx_packets, output_packets=info.tx_packets,
            ipsec_sas_created=info.children_created, ipsec_sas_deleted=info.children_deleted,
            phase2_in_progress=pending,
        ))
    return out

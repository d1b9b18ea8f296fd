"""From Junos statements to IKEv2 session configuration (`inline_ipsec.ike.IkeConfig`).

One `IkeConfig` per `ike gateway` (`ike_config_for_gateway`): as on the SRX, one IKE SA per
IKE gateway carries a child SA pair per traffic selector of every `ipsec vpn` that names the
gateway, the VPNs told apart by their traffic selectors (RFC 7296 §2.9). `ike_config_for_vpn`
is the same for one VPN alone. The parts:

- IKE proposals (RFC 7296 §3.3): every `ike proposal` of the gateway's `ike policy`
  (`encryption-algorithm`, `authentication-algorithm` or, for AES-GCM, the PRF that matches
  the key size, `dh-group`), in the policy's order;
- authentication (§2.15): the policy's `pre-shared-key`, or a certificate (`certificate
  local-certificate <name>`: key and chain from `credentials`, RFC 7427 signatures);
- PPK (RFC 8784): the gateway's `ppk-profile` -> `key-manager profiles <p> static key-id/key`;
- identities (§3.5): `local-identity`/`remote-identity`, by default the local and the peer's
  outer address;
- one child SA per `traffic-selector` (§2.9), or 0.0.0.0/0 (and ::/0 with `family inet6`) for
  a route-based st0 VPN; ESP proposals from the `ipsec policy`'s proposals with the PFS group
  (§1.3.1) and ESN (§3.3.2 transform type 5); lifetimes from `lifetime-seconds` (the rekey at
  the same 5/6 soft limit as `config.to_sa.soft_limit`); the anti-replay window of the VPN;
- dead peer detection: the gateway's `dead-peer-detection` mode, interval and threshold.

A `version v1-only` gateway (the Junos default when `version` is absent) gets an
`IkeV1Config` instead (`ike_v1_config_for_gateway`, RFC 2409): the same identities, PSK or
certificate, child SAs and DPD, with Phase 1 proposals from the policy's `ike proposal`s
(`authentication-method`, `encryption-algorithm` CBC only, `authentication-algorithm`,
`dh-group`, `lifetime-seconds`) and the policy's `mode main|aggressive` (default main). The
child SAs carry the proposals' `lifetime-kilobytes`, which Quick Mode negotiates (RFC 2407
§4.5).

Which IKE versions are negotiated at all is `NOT_NEGOTIATED` (empty now that both are): a VPN
on a gateway of a version listed there cannot come up (`vpn_verdict`), and `ike_vpns` leaves
it out.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Union

from ..config import Config
from ..config.algorithms import DH_GROUPS, cipher_name, integrity_name
from ..config.model import Identity as JunosIdentity
from ..config.model import IpsecVpn
from ..config.to_sa import soft_limit
from ..errors import ConfigError
from ..ike import ChildConfig, Identity, IkeConfig
from ..ike.errors import LocalIkeError
from ..ike.constants import ProtocolId
from ..ike.proposals import ah_proposal, esp_proposal, ike_proposal, parse_proposal
from ..ike.v1 import IkeV1Config, Phase1Proposal
from .keying import vpn_endpoints

__all__ = ["ike_config_for_gateway", "ike_config_for_vpn", "ike_v1_config_for_gateway",
           "ike_vpns", "junos_identity", "IkeConfigError", "NOT_NEGOTIATED", "child_configs",
           "AnyIkeConfig"]

#: the configuration of one IKE gateway's IKE SA, of its version
AnyIkeConfig = Union[IkeConfig, IkeV1Config]

#: Junos `dh-group` default when a proposal names none (group14, as Junos' standard set).
DEFAULT_DH = "group14"

#: IKE gateway `version`s this gateway does not negotiate, with the reason its VPNs cannot
#: come up ("{gateway}" is replaced by the gateway's name). Both Junos versions, `v1-only`
#: (RFC 2409) and `v2-only` (RFC 7296), are negotiated.
NOT_NEGOTIATED: dict[str, str] = {}


class IkeConfigError(ConfigError):
    """A VPN whose configuration the IKEv2 implementation cannot negotiate."""


def ike_vpns(config: Config) -> list[IpsecVpn]:
    """The VPNs IKE brings up: `ipsec vpn ... ike gateway <g>` whose gateway's `version` is
    negotiated (not in `NOT_NEGOTIATED`)."""
    out = []
    for v in config.ipsec_vpns.values():
        gw = config.gateway_of(v)
        if v.ike is not None and gw is not None and gw.version not in NOT_NEGOTIATED:
            out.append(v)
    return out


def junos_identity(ident: Optional[JunosIdentity], default: str) -> Identity:
    """A Junos `local-identity`/`remote-identity` as an IKE identity (RFC 7296 §3.5).
    `distinguished-name` without a value is the local certificate's subject (the caller
    knows the certificate); `container`/`wildcard` matching of the peer's DN is not
    implemented (IkeConfigError)."""
    if ident is not None and ident.kind == "distinguished-name":
        raise IkeConfigError("distinguished-name " + (ident.value or "") + ": matching a "
                             "peer's DN by container or wildcard is not implemented")
    if ident is None or ident.value is None:
        return Identity.parse(default)
    if ident.kind == "hostname":
        return Identity.parse("@" + ident.value)
    return Identity.parse(ident.value)


def _ike_proposals(config: Config, policy_name: str) -> list[str]:
    policy = config.ike_policies[policy_name]
    out = []
    for name in policy.proposals:
        p = config.ike_proposals.get(name)
        if p is None:
            continue
        enc = p.encryption_algorithm or "aes-128-cbc"
        cipher = _cipher(enc, f"ike proposal {name}")
        hash_name = p.authentication_algorithm or ("sha-384" if cipher.endswith("256")
                                                   else "sha-256")
        out.append(ike_proposal(cipher, hash_name, DH_GROUPS[p.dh_group or DEFAULT_DH]))
    if not out:
        raise IkeConfigError(f"ike policy {policy_name} has no usable proposal")
    return out


def _cipher(junos: str, where: str) -> str:
    """A Junos `encryption-algorithm` as an `inline_ipsec.sa` cipher name (every IPsec
    spelling the parser accepts; IKE's `des-cbc` has no data-plane cipher)."""
    try:
        return cipher_name(junos)
    except KeyError:
        raise IkeConfigError(f"{where}: encryption-algorithm {junos} is not supported by the "
                             "IKE implementation") from None


def _integrity(junos: str, where: str) -> str:
    try:
        return integrity_name(junos)
    except KeyError:
        raise IkeConfigError(f"{where}: authentication-algorithm {junos} is not supported by "
                             "the IKE implementation") from None


def _ike_lifetime(config: Config, policy_name: str) -> int:
    policy = config.ike_policies[policy_name]
    lives = [config.ike_proposals[n].lifetime_seconds for n in policy.proposals
             if n in config.ike_proposals]
    return min(lives) if lives else 28800


def child_configs(config: Config, vpn: IpsecVpn) -> list[ChildConfig]:
    """The child SAs of one VPN: one per traffic selector, else the st0 unit's families;
    named `<vpn>/<selector>` or `<vpn>` (unique on an IKE gateway)."""
    assert vpn.ike is not None
    policy = config.ipsec_policies.get(vpn.ike.ipsec_policy or "")
    if policy is None:
        raise IkeConfigError(f"ipsec vpn {vpn.name} has no ipsec-policy")
    pfs = DH_GROUPS[policy.pfs_group] if policy.pfs_group else None
    proposals, lifetimes = [], []
    kilobytes: list[int] = []
    protocols: set[str] = set()
    for p in config.ipsec_proposals_of(vpn):
        where = f"ipsec proposal {p.name}"
        integ = _integrity(p.authentication_algorithm, where) if p.authentication_algorithm \
            else None
        try:
            if p.protocol == "ah":
                if integ is None:
                    raise IkeConfigError(f"{where}: AH needs an authentication-algorithm")
                proposals.append(ah_proposal(integ, pfs, p.extended_sequence_number))
            else:
                cipher = _cipher(p.encryption_algorithm, where) if p.encryption_algorithm \
                    else "null"
                text = esp_proposal(cipher, integ, pfs, p.extended_sequence_number)
                parse_proposal(text, ProtocolId.ESP)    # e.g. NULL without integrity
                proposals.append(text)
        except LocalIkeError as exc:
            raise IkeConfigError(f"ipsec vpn {vpn.name}: {where}: {exc}") from None
        protocols.add(p.protocol)
        lifetimes.append(p.lifetime_seconds)
        if p.lifetime_kilobytes:
            kilobytes.append(p.lifetime_kilobytes)
    if not proposals:
        raise IkeConfigError(f"ipsec vpn {vpn.name} has no IPsec proposal")
    if len(protocols) > 1:
        raise IkeConfigError(f"ipsec vpn {vpn.name}: ESP and AH proposals in one policy")
    life = float(min(lifetimes))
    common: dict[str, Any] = dict(proposals=tuple(proposals), lifetime_seconds=life,
                                  rekey_seconds=float(soft_limit(int(life))),
                                  replay_window=vpn.anti_replay_window,
                                  protocol=protocols.pop(),
                                  lifetime_kilobytes=min(kilobytes) if kilobytes else None)
    if vpn.traffic_selectors:
        return [ChildConfig(name=f"{vpn.name}/{ts.name}",
                            local_ts=(ts.local_ip or "0.0.0.0/0",),
                            remote_ts=(ts.remote_ip or "0.0.0.0/0",), **common)
                for ts in vpn.traffic_selectors]
    nets: list[str] = []
    unit = None
    if vpn.bind_interface and vpn.bind_interface.startswith("st0."):
        tail = vpn.bind_interface[4:]
        unit = config.st0_units.get(int(tail)) if tail.isdigit() else None
    families = unit.families if unit is not None and unit.families else frozenset({"inet"})
    if "inet" in families:
        nets.append("0.0.0.0/0")
    if "inet6" in families:
        nets.append("::/0")
    return [ChildConfig(name=vpn.name, local_ts=tuple(nets), remote_ts=tuple(nets), **common)]


def ike_config_for_vpn(config: Config, vpn: IpsecVpn, *,
                       credentials: Optional[Mapping[str, tuple[object, Sequence[object]]]]
                       = None, ca_certificates: Sequence[object] = (),
                       force_encap: bool = False, **overrides: Any) -> Any:
    """The `IkeConfig` (or `IkeV1Config`) of one IKE VPN alone (module docstring), named after
    the VPN.
    `credentials` maps a `local-certificate` name to (private key, certificate chain);
    `force_encap` makes this side claim a NAT (RFC 7296 §2.23), so the child SAs run over
    UDP 4500."""
    return ike_config_for_gateway(config, [vpn], credentials=credentials,
                                  ca_certificates=ca_certificates, force_encap=force_encap,
                                  **{"name": vpn.name, **overrides})


def ike_config_for_gateway(config: Config, vpns: Sequence[IpsecVpn], *,
                           credentials: Optional[Mapping[str, tuple[object, Sequence[object]]]]
                           = None, ca_certificates: Sequence[object] = (),
                           force_encap: bool = False, **overrides: Any) -> Any:
    """The `IkeConfig` of the IKE gateway the `vpns` share (all name the same `ike gateway`),
    named after the gateway: its children are every VPN's, in the order given. A `v1-only`
    gateway gets an `IkeV1Config` (`ike_v1_config_for_gateway`)."""
    if not vpns:
        raise IkeConfigError("an IKE gateway configuration needs at least one VPN")
    vpn = vpns[0]
    gw = config.gateway_of(vpn)
    if gw is None or gw.ike_policy is None:
        raise IkeConfigError(f"ipsec vpn {vpn.name}: no IKE gateway with an ike-policy")
    if any(config.gateway_of(v) is not gw for v in vpns):
        raise IkeConfigError(f"ipsec vpns {', '.join(v.name for v in vpns)} are not all on "
                             f"ike gateway {gw.name}")
    if gw.ike_version == 1:
        return ike_v1_config_for_gateway(config, vpns, credentials=credentials,
                                         ca_certificates=ca_certificates,
                                         force_encap=force_encap, **overrides)
    local, remote = vpn_endpoints(config, vpn.name)
    policy = config.ike_policies[gw.ike_policy]
    dn_local = gw.local_identity is not None and \
        gw.local_identity.kind == "distinguished-name" and gw.local_identity.value is None
    try:
        local_id = None if dn_local else junos_identity(gw.local_identity, local)
        remote_id = junos_identity(gw.remote_identity, remote)
    except IkeConfigError as exc:
        raise IkeConfigError(f"ike gateway {gw.name}: {exc}") from None
    kw: dict[str, Any] = dict(
        name=gw.name,
        local_id=local_id,
        remote_id=remote_id,
        children=[c for v in vpns for c in child_configs(config, v)],
        ike_rekey_seconds=float(soft_limit(_ike_lifetime(config, gw.ike_policy))),
        force_encap=force_encap,
    )
    try:
        kw["proposals"] = tuple(_ike_proposals(config, gw.ike_policy))
    except LocalIkeError as exc:
        raise IkeConfigError(f"ipsec vpn {vpn.name}: {exc}") from None
    if policy.local_certificate is not None:
        creds = (credentials or {}).get(policy.local_certificate)
        if creds is None:
            raise IkeConfigError(f"ike policy {policy.name}: no key and certificate loaded "
                                 f"for local-certificate {policy.local_certificate}")
        if dn_local:        # local-identity distinguished-name: the certificate's subject
            kw["local_id"] = Identity.of_certificate(list(creds[1])[0])
        kw.update(auth="pubkey", private_key=creds[0], certificates=list(creds[1]),
                  ca_certificates=list(ca_certificates), psk=None)
    else:
        if dn_local:
            raise IkeConfigError(f"ike gateway {gw.name}: local-identity distinguished-name "
                                 "is a certificate's subject; the ike policy has none")
        if policy.pre_shared_key is None:
            raise IkeConfigError(f"ike policy {policy.name}: no pre-shared-key")
        kw["psk"] = policy.pre_shared_key.encode("utf-8", "surrogateescape")
        kw["ca_certificates"] = list(ca_certificates)
    if gw.ppk_profile is not None:
        prof = config.key_manager_profiles.get(gw.ppk_profile)
        if prof is None or prof.key is None:
            raise IkeConfigError(f"ike gateway {gw.name}: key-manager profile "
                                 f"{gw.ppk_profile} has no static key")
        kw.update(ppk_id=(prof.key_id or prof.name).encode(), ppk=prof.key.encode())
    if gw.dead_peer_detection is not None:
        dpd = gw.dead_peer_detection
        kw.update(dpd_interval=float(dpd.interval), dpd_threshold=dpd.threshold,
                  dpd_mode=dpd.mode)
    kw.update(overrides)
    return IkeConfig(**kw)


#: Junos `authentication-method` default (pre-shared keys, as Junos' standard proposals)
DEFAULT_AUTH_METHOD = "pre-shared-keys"


def _signature_method(key: object) -> str:
    """The IKEv1 signature method of a private key (RFC 2409 RSA, RFC 4754 ECDSA), for a
    proposal that names none."""
    from cryptography.hazmat.primitives.asymmetric import ec
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {256: "ecdsa-signatures-256", 384: "ecdsa-signatures-384"}.get(
            key.curve.key_size, "ecdsa-signatures-521")
    return "rsa-signatures"


def _phase1_proposals(config: Config, gateway: str, policy_name: str, certificate: bool,
                      key: object = None) -> list[Phase1Proposal]:
    """The policy's `ike proposal`s as IKEv1 Phase 1 transforms (RFC 2409 Appendix A), in
    the policy's order. IKEv1 has no AEAD Phase 1 cipher: an `aes-*-gcm` proposal is
    reported, with the hint that the gateway is IKEv1 (perhaps by Junos' default)."""
    policy = config.ike_policies[policy_name]
    out = []
    for name in policy.proposals:
        p = config.ike_proposals.get(name)
        if p is None:
            continue
        method = p.authentication_method or (_signature_method(key) if certificate
                                             else DEFAULT_AUTH_METHOD)
        enc = p.encryption_algorithm or ""
        if enc.endswith("-gcm"):
            raise IkeConfigError(
                f"ike gateway {gateway} is IKEv1 ('version v1-only', the Junos default when "
                f"'version' is absent) and ike proposal {name} has encryption-algorithm "
                f"{enc}: IKEv1 Phase 1 has CBC ciphers only (RFC 2409); configure a CBC "
                "cipher or 'version v2-only'")
        try:
            out.append(Phase1Proposal(
                auth_method=method,
                encryption=p.encryption_algorithm or "aes-128-cbc",
                hash=p.authentication_algorithm or "sha-256",
                dh_group=int((p.dh_group or DEFAULT_DH).removeprefix("group")),
                lifetime_seconds=p.lifetime_seconds))
        except (LocalIkeError, ValueError) as exc:
            raise IkeConfigError(f"ike proposal {name}: {exc}") from None
    if not out:
        raise IkeConfigError(f"ike policy {policy_name} has no usable proposal")
    return out


def ike_v1_config_for_gateway(config: Config, vpns: Sequence[IpsecVpn], *,
                              credentials: Optional[Mapping[str, tuple[object,
                                                                       Sequence[object]]]]
                              = None, ca_certificates: Sequence[object] = (),
                              force_encap: bool = False, **overrides: Any) -> IkeV1Config:
    """The `IkeV1Config` of a `version v1-only` IKE gateway shared by `vpns` (RFC 2409):
    Phase 1 from the `ike policy` (`mode`, proposals, PSK or `certificate
    local-certificate`), one Quick Mode child SA per traffic selector of every VPN, DPD as
    Junos' `dead-peer-detection` (RFC 3706: `always-send` probes every interval, the other
    modes only after an interval without anything heard from the peer)."""
    if not vpns:
        raise IkeConfigError("an IKE gateway configuration needs at least one VPN")
    vpn = vpns[0]
    gw = config.gateway_of(vpn)
    if gw is None or gw.ike_policy is None:
        raise IkeConfigError(f"ipsec vpn {vpn.name}: no IKE gateway with an ike-policy")
    if any(config.gateway_of(v) is not gw for v in vpns):
        raise IkeConfigError(f"ipsec vpns {', '.join(v.name for v in vpns)} are not all on "
                             f"ike gateway {gw.name}")
    local, remote = vpn_endpoints(config, vpn.name)
    policy = config.ike_policies[gw.ike_policy]
    if gw.ppk_profile is not None:
        raise IkeConfigError(f"ike gateway {gw.name}: ppk-profile is an IKEv2 extension "
                             "(RFC 8784); IKEv1 cannot carry it, configure 'version v2-only'")
    dn_local = gw.local_identity is not None and \
        gw.local_identity.kind == "distinguished-name" and gw.local_identity.value is None
    try:
        local_id = None if dn_local else junos_identity(gw.local_identity, local)
        remote_id = junos_identity(gw.remote_identity, remote)
    except IkeConfigError as exc:
        raise IkeConfigError(f"ike gateway {gw.name}: {exc}") from None
    kw: dict[str, Any] = dict(
        name=gw.name, local_id=local_id, remote_id=remote_id,
        mode=policy.mode or "main",
        children=[c for v in vpns for c in child_configs(config, v)],
        force_encap=force_encap)
    cert = policy.local_certificate is not None
    creds = (credentials or {}).get(policy.local_certificate or "") if cert else None
    kw["proposals"] = tuple(_phase1_proposals(config, gw.name, gw.ike_policy, cert,
                                              creds[0] if creds else None))
    if cert:
        if creds is None:
            raise IkeConfigError(f"ike policy {policy.name}: no key and certificate loaded "
                                 f"for local-certificate {policy.local_certificate}")
        if dn_local:
            kw["local_id"] = Identity.of_certificate(list(creds[1])[0])
        kw.update(private_key=creds[0], certificates=list(creds[1]),
                  ca_certificates=list(ca_certificates))
    else:
        if dn_local:
            raise IkeConfigError(f"ike gateway {gw.name}: local-identity distinguished-name "
                                 "is a certificate's subject; the ike policy has none")
        if policy.pre_shared_key is None:
            raise IkeConfigError(f"ike policy {policy.name}: no pre-shared-key")
        kw["psk"] = policy.pre_shared_key.encode("utf-8", "surrogateescape")
    if gw.dead_peer_detection is not None:
        dpd = gw.dead_peer_detection
        kw.update(dpd_interval=float(dpd.interval), dpd_threshold=dpd.threshold,
                  dpd_mode=dpd.mode)
    kw.update(overrides)
    v2_only = {"ike_rekey_seconds", "ppk", "ppk_id", "ppk_required", "auth", "select_peer",
               "require_cookie", "max_child_sas", "cookie_secrets"}
    try:
        return IkeV1Config(**{k: v for k, v in kw.items() if k not in v2_only})
    except LocalIkeError as exc:
        raise IkeConfigError(f"ike gateway {gw.name}: {exc}") from None

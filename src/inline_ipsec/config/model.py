"""Configuration model: one frozen dataclass per Junos stanza.

This file owns the *shape* of a configuration only. Parsing of `set` lines lives in `junos.py`,
cross-reference and protocol checks in `validate.py`, conversion to `SaSpec` in `to_sa.py`.

Names follow the Junos hierarchy (Junos 25.2R1, `[edit security ike]`, `[edit security ipsec]`,
`[edit security key-manager]`, `[edit interfaces st0]`, `[edit routing-options]`). Every record
carries the number of the line that first defined it (`line`, excluded from equality) so that
validation errors can point at the configuration text.

Defaults are the Junos ones: IKE `version v1-only`, IKE proposal `lifetime-seconds 28800`, IPsec
proposal `lifetime-seconds 3600` and `protocol esp`, `anti-replay-window-size 64`,
`df-bit clear`, `establish-tunnels on-traffic`, site-to-site deployment.
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
from dataclasses import dataclass, field
from typing import Optional

from .high_availability import HighAvailability

__all__ = [
    "DEPLOYMENT_TYPES",
    "Config",
    "DeadPeerDetection",
    "Identity",
    "IkeGateway",
    "IkePolicy",
    "IkeProposal",
    "IpsecPolicy",
    "IpsecProposal",
    "IpsecVpn",
    "KeyManagerProfile",
    "License",
    "ManualSa",
    "St0Unit",
    "StaticRoute",
    "TrafficSelector",
    "VpnIke",
]

#: Deployment types of `set security ipsec vpn <v> deployment-type <t>` (our statement, see
#: docs in `junos.py`). Only the first two may be offloaded to the PFE (docs/design.md Table 1).
DEPLOYMENT_TYPES = ("site-to-site", "mnha-icl", "p2mp", "group-vpn", "advpn")


class _Lines:
    """Line numbers of a stanza: `line` where it first appears, `line_of(attr)` where an
    attribute (dotted for nested ones, e.g. "ike.gateway") was last set."""

    line: int
    field_lines: dict[str, int]

    def line_of(self, attr: str) -> int:
        return self.field_lines.get(attr, self.line)


def _secret(value: Optional[str]) -> str:
    return "None" if value is None else "'<SECRET>'"


@dataclass(frozen=True)
class IkeProposal(_Lines):
    """`set security ike proposal <name> ...` (phase-1 transforms)."""

    name: str
    authentication_method: Optional[str] = None
    dh_group: Optional[str] = None
    encryption_algorithm: Optional[str] = None
    authentication_algorithm: Optional[str] = None
    lifetime_seconds: int = 28800
    line: int = field(default=0, compare=False, repr=False)
    field_lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class IkePolicy(_Lines):
    """`set security ike policy <name> ...`. `mode` is IKEv1 only (RFC 2409 main/aggressive)."""

    name: str
    proposals: tuple[str, ...] = ()
    pre_shared_key: Optional[str] = None
    mode: Optional[str] = None
    local_certificate: Optional[str] = None
    line: int = field(default=0, compare=False, repr=False)
    field_lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __repr__(self) -> str:  # never print the pre-shared key
        return (f"IkePolicy(name={self.name!r}, proposals={self.proposals!r}, "
                f"pre_shared_key={_secret(self.pre_shared_key)}, mode={self.mode!r}, "
                f"local_certificate={self.local_certificate!r})")


@dataclass(frozen=True)
class Identity:
    """`local-identity|remote-identity <type> <value>`; type is one of inet, inet6, hostname,
    user-at-hostname, distinguished-name (RFC 7296 §3.5 ID types)."""

    kind: str
    value: Optional[str] = None


@dataclass(frozen=True)
class DeadPeerDetection:
    """`dead-peer-detection [optimized|probe-idle-tunnel|always-send] [interval N] [threshold N]`
    (RFC 3706 for IKEv1, RFC 7296 §2.4 liveness for IKEv2). Junos defaults: optimized, 10 s, 5."""

    mode: str = "optimized"
    interval: int = 10
    threshold: int = 5


@dataclass(frozen=True)
class IkeGateway(_Lines):
    """`set security ike gateway <name> ...`."""

    name: str
    ike_policy: Optional[str] = None
    address: tuple[str, ...] = ()
    external_interface: Optional[str] = None
    local_address: Optional[str] = None
    version: str = "v1-only"
    ppk_profile: Optional[str] = None
    nat_keepalive: Optional[int] = None
    local_identity: Optional[Identity] = None
    remote_identity: Optional[Identity] = None
    dead_peer_detection: Optional[DeadPeerDetection] = None
    advpn: Optional[str] = None
    line: int = field(default=0, compare=False, repr=False)
    field_lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def ike_version(self) -> int:
        """1 for `v1-only`, 2 for `v2-only`."""
        return 2 if self.version == "v2-only" else 1


@dataclass(frozen=True)
class IpsecProposal(_Lines):
    """`set security ipsec proposal <name> ...` (phase-2 / CHILD_SA transforms)."""

    name: str
    protocol: str = "esp"
    encryption_algorithm: Optional[str] = None
    authentication_algorithm: Optional[str] = None
    lifetime_seconds: int = 3600
    lifetime_kilobytes: Optional[int] = None
    extended_sequence_number: bool = False
    line: int = field(default=0, compare=False, repr=False)
    field_lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class IpsecPolicy(_Lines):
    """`set security ipsec policy <name> proposals ... | perfect-forward-secrecy keys groupN`."""

    name: str
    proposals: tuple[str, ...] = ()
    pfs_group: Optional[str] = None
    line: int = field(default=0, compare=False, repr=False)
    field_lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class VpnIke:
    """`set security ipsec vpn <v> ike ...` (an IKE-negotiated VPN)."""

    gateway: Optional[str] = None
    ipsec_policy: Optional[str] = None
    anti_replay_window_size: int = 64
    no_anti_replay: bool = False


@dataclass(frozen=True)
class ManualSa:
    """`set security ipsec vpn <v> manual ...`: a static SA, one SPI used in both directions."""

    spi: Optional[int] = None
    protocol: Optional[str] = None
    encryption_algorithm: Optional[str] = None
    encryption_key: Optional[bytes] = None
    authentication_algorithm: Optional[str] = None
    authentication_key: Optional[bytes] = None
    gateway: Optional[str] = None
    external_interface: Optional[str] = None

    def __repr__(self) -> str:  # never print keys
        return (f"ManualSa(spi={self.spi!r}, protocol={self.protocol!r}, "
                f"encryption_algorithm={self.encryption_algorithm!r}, "
                f"authentication_algorithm={self.authentication_algorithm!r}, "
                f"gateway={self.gateway!r}, external_interface={self.external_interface!r})")


@dataclass(frozen=True)
class TrafficSelector:
    """`set security ipsec vpn <v> traffic-selector <name> local-ip <pfx> remote-ip <pfx>`
    (RFC 7296 §2.9 traffic selectors)."""

    name: str
    local_ip: Optional[str] = None
    remote_ip: Optional[str] = None


@dataclass(frozen=True)
class IpsecVpn(_Lines):
    """`set security ipsec vpn <name> ...`.

    The deployment is `deployment_type` if configured, otherwise what the markers imply
    (`ha-link-encryption` -> mnha-icl, `ike gateway <g> advpn ...` -> advpn,
    `interfaces st0 unit N multipoint` -> p2mp), otherwise site-to-site;
    `Config.deployment_of()` resolves it.
    """

    name: str
    bind_interface: Optional[str] = None
    ike: Optional[VpnIke] = None
    manual: Optional[ManualSa] = None
    df_bit: str = "clear"
    copy_outer_dscp: bool = False
    establish_tunnels: str = "on-traffic"
    traffic_selectors: tuple[TrafficSelector, ...] = ()
    deployment_type: Optional[str] = None
    ha_link_encryption: bool = False
    line: int = field(default=0, compare=False, repr=False)
    field_lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def anti_replay_window(self) -> int:
        """Replay window in packets; 0 when anti-replay is off (manual SAs have none)."""
        if self.ike is None or self.ike.no_anti_replay:
            return 0
        return self.ike.anti_replay_window_size


@dataclass(frozen=True)
class KeyManagerProfile(_Lines):
    """`set security key-manager profiles <p> static key-id|key ascii-text ...`: a PPK for
    RFC 8784 (post-quantum preshared key)."""

    name: str
    key_id: Optional[str] = None
    key: Optional[str] = None
    line: int = field(default=0, compare=False, repr=False)
    field_lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __repr__(self) -> str:
        return (f"KeyManagerProfile(name={self.name!r}, key_id={self.key_id!r}, "
                f"key={_secret(self.key)})")


@dataclass(frozen=True)
class St0Unit(_Lines):
    """`set interfaces st0 unit N family inet|inet6 [multipoint]` (secure tunnel interface)."""

    unit: int
    families: frozenset[str] = frozenset()
    multipoint: bool = False
    line: int = field(default=0, compare=False, repr=False)
    field_lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def name(self) -> str:
        return f"st0.{self.unit}"


@dataclass(frozen=True)
class StaticRoute(_Lines):
    """`set routing-options [rib inet6.0] static route <pfx> next-hop <nh>`."""

    prefix: str
    next_hop: str
    rib: str = "inet.0"
    line: int = field(default=0, compare=False, repr=False)
    field_lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class License(_Lines):
    """Model of the inline IPsec offload license (our statement; Junos installs real licenses
    with `request system license add` or `set system license keys key "<key>"`):

        set system license ipsec-offload expires 2027-12-31
        set system license ipsec-offload permanent

    `expires=None` means permanent. A license is valid through its expiry date inclusive.
    """

    expires: Optional[_dt.date] = None
    line: int = field(default=0, compare=False, repr=False)
    field_lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def state(self, today: _dt.date) -> str:
        """"valid" or "expired" on `today` (injected, never read from the clock here)."""
        if self.expires is None or today <= self.expires:
            return "valid"
        return "expired"


@dataclass(frozen=True)
class Config:
    """A whole parsed and validated configuration (`load_config()` returns one)."""

    ike_proposals: dict[str, IkeProposal] = field(default_factory=dict)
    ike_policies: dict[str, IkePolicy] = field(default_factory=dict)
    ike_gateways: dict[str, IkeGateway] = field(default_factory=dict)
    ipsec_proposals: dict[str, IpsecProposal] = field(default_factory=dict)
    ipsec_policies: dict[str, IpsecPolicy] = field(default_factory=dict)
    ipsec_vpns: dict[str, IpsecVpn] = field(default_factory=dict)
    key_manager_profiles: dict[str, KeyManagerProfile] = field(default_factory=dict)
    st0_units: dict[int, St0Unit] = field(default_factory=dict)
    static_routes: tuple[StaticRoute, ...] = ()
    #: `set interfaces <ifd> unit N family inet|inet6 address <pfx>` for interfaces other than
    #: st0, e.g. {"ge-0/0/0.0": ("192.0.2.1/24",)}; used to find a gateway's local address.
    interface_addresses: dict[str, tuple[str, ...]] = field(default_factory=dict)
    hw_offload_disable: bool = False
    power_mode_ipsec: bool = False
    license: Optional[License] = None
    #: `set chassis high-availability ...` (Multinode HA), None when absent
    high_availability: Optional[HighAvailability] = None

    def license_state(self, today: _dt.date) -> str:
        """"none", "valid" or "expired" for the IPsec offload license on `today`."""
        return "none" if self.license is None else self.license.state(today)

    def deployment_of(self, vpn: IpsecVpn) -> str:
        """The VPN's deployment type (see `IpsecVpn`)."""
        if vpn.deployment_type is not None:
            return vpn.deployment_type
        return self.implied_deployment(vpn) or "site-to-site"

    def implied_deployment(self, vpn: IpsecVpn) -> Optional[str]:
        """What the markers imply: `ha-link-encryption` -> mnha-icl, an ADVPN gateway ->
        advpn, a multipoint st0 unit -> p2mp."""
        if vpn.ha_link_encryption:
            return "mnha-icl"
        if vpn.ike is not None and vpn.ike.gateway in self.ike_gateways:
            if self.ike_gateways[vpn.ike.gateway].advpn is not None:
                return "advpn"
        unit = _st0_unit_number(vpn.bind_interface)
        if unit is not None and unit in self.st0_units and self.st0_units[unit].multipoint:
            return "p2mp"
        return None

    def gateway_of(self, vpn: IpsecVpn) -> Optional[IkeGateway]:
        if vpn.ike is None or vpn.ike.gateway is None:
            return None
        return self.ike_gateways.get(vpn.ike.gateway)

    def ipsec_proposals_of(self, vpn: IpsecVpn) -> list[IpsecProposal]:
        """The IPsec proposals a VPN offers, in configured order."""
        if vpn.ike is None or vpn.ike.ipsec_policy not in self.ipsec_policies:
            return []
        policy = self.ipsec_policies[vpn.ike.ipsec_policy]
        return [self.ipsec_proposals[p] for p in policy.proposals if p in self.ipsec_proposals]

    def local_address_of(self, gateway: IkeGateway) -> Optional[str]:
        """`local-address`, else the first address of `external-interface` of the right
        family, else None."""
        if gateway.local_address is not None:
            return gateway.local_address
        return self.interface_address(gateway.external_interface,
                                      gateway.address[0] if gateway.address else None)

    def interface_address(self, interface: Optional[str],
                          peer: Optional[str] = None) -> Optional[str]:
        """First configured address of `interface` (of `peer`'s family if given)."""
        if interface is None:
            return None
        want = None
        if peer is not None:
            try:
                want = ipaddress.ip_address(peer).version
            except ValueError:
                want = None
        for prefix in self.interface_addresses.get(interface, ()):
            iface = ipaddress.ip_interface(prefix)
            if want is None or iface.version == want:
                return str(iface.ip)
        return None

    def routes_via(self, interface: str) -> list[StaticRoute]:
        return [r for r in self.static_routes if r.next_hop == interface]


def _st0_unit_number(interface: Optional[str]) -> Optional[int]:
    if interface is None or not interface.startswith("st0."):
        return None
    tail = interface[4:]
    return int(tail) if tail.isdigit() else None

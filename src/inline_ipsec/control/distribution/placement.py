"""Which engine carries a tunnel: docs/design.md Table 1 as data.

This file owns the offload decision and nothing else: no engine is touched here. The rules are
the rows of Table 1 (from the Junos 25.2R1 inline IPsec documentation, see docs/design.md §2) plus the
three switches that apply to every tunnel: `set security ipsec hw-offload-disable`, the offload
license, and the chassis capacity (4000 SAs / 2000 tunnels).

A tunnel goes to the PFE only if *every* rule passes; otherwise it goes to the CPU and the
placement records *every* failing reason, as the short strings `show security ipsec
security-associations detail` prints after `Hardware Offloaded: No`.

    >>> place(Tunnel(protocol="ah"), Settings(today=date(2026, 1, 1), license=License()))
    Placement(engine='cpu', reasons=('AH protocol not supported by PFE',))
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Callable, Optional

from ...config.algorithms import IPSEC_ENCRYPTION_TO_CIPHER
from ...config.model import DEPLOYMENT_TYPES, Config, IpsecVpn, License
from ...sa import SaSpec

__all__ = [
    "PFE_CIPHERS",
    "PFE_DEPLOYMENTS",
    "PFE_MAX_REPLAY_WINDOW",
    "PFE_SA_LIMIT",
    "PFE_TUNNEL_LIMIT",
    "TABLE_1",
    "Placement",
    "Rule",
    "Settings",
    "Tunnel",
    "place",
    "place_config",
    "tunnel_from_config",
]

PFE_CIPHERS = frozenset({"aes-gcm-128", "aes-gcm-256"})
PFE_DEPLOYMENTS = frozenset({"site-to-site", "mnha-icl"})
PFE_MAX_REPLAY_WINDOW = 4096
PFE_SA_LIMIT = 4000
PFE_TUNNEL_LIMIT = 2000

_DEPLOYMENT_NAMES = {
    "site-to-site": "site-to-site",
    "mnha-icl": "Multinode HA ICL",
    "p2mp": "point-to-multipoint",
    "group-vpn": "group VPN",
    "advpn": "ADVPN",
}


@dataclass(frozen=True)
class Tunnel:
    """What the offload decision needs to know about a tunnel (one IPsec VPN).

    `cipher` uses `SaSpec` names (`aes-gcm-256`); Junos names (`aes-256-gcm`) are accepted and
    mapped. `sa_pairs` is the number of child SA pairs the tunnel carries (one per traffic
    selector in Junos). `lifetime_kilobytes` is the proposal's lifesize, None when unset.
    """

    protocol: str = "esp"
    mode: str = "tunnel"
    cipher: str = "aes-gcm-256"
    deployment: str = "site-to-site"
    replay_window: int = 64
    lifetime_kilobytes: Optional[int] = None
    sa_pairs: int = 1
    udp_encap: bool = False
    name: str = ""

    def __post_init__(self) -> None:
        if self.cipher in IPSEC_ENCRYPTION_TO_CIPHER and \
                self.cipher not in IPSEC_ENCRYPTION_TO_CIPHER.values():
            object.__setattr__(self, "cipher", IPSEC_ENCRYPTION_TO_CIPHER[self.cipher])
        if self.deployment not in DEPLOYMENT_TYPES:
            raise ValueError(f"deployment {self.deployment!r}: expected one of "
                             f"{', '.join(DEPLOYMENT_TYPES)}")
        if self.sa_pairs < 1:
            raise ValueError("a tunnel carries at least one SA pair")

    @classmethod
    def from_spec(cls, spec: SaSpec, deployment: str = "site-to-site", sa_pairs: int = 1,
                  name: str = "") -> "Tunnel":
        """The tunnel that negotiated `spec` (either direction): protocol, mode, cipher,
        anti-replay window, NAT-T and kilobyte lifetime come from the SA itself."""
        return cls(protocol=spec.protocol, mode=spec.mode, cipher=spec.cipher,
                   deployment=deployment, replay_window=spec.replay_window,
                   lifetime_kilobytes=(spec.lifetime.hard_kilobytes
                                       or spec.lifetime.soft_kilobytes),
                   sa_pairs=sa_pairs, udp_encap=spec.udp_encap, name=name)

    @property
    def sa_count(self) -> int:
        """SAs the tunnel needs: one inbound and one outbound per pair."""
        return 2 * self.sa_pairs


@dataclass(frozen=True)
class Settings:
    """Chassis-wide inputs of the decision. `today` is injected (license expiry), never read
    from the clock here. `pfe_*_in_use` is what the PFEs of the chassis already carry."""

    today: _dt.date
    license: Optional[License] = None
    hw_offload_disable: bool = False
    pfe_sas_in_use: int = 0
    pfe_tunnels_in_use: int = 0
    pfe_sa_limit: int = PFE_SA_LIMIT
    pfe_tunnel_limit: int = PFE_TUNNEL_LIMIT

    @property
    def license_state(self) -> str:
        """"none", "valid" or "expired"."""
        return "none" if self.license is None else self.license.state(self.today)


@dataclass(frozen=True)
class Placement:
    """The decision: `engine` is "pfe" or "cpu"; `reasons` lists every rule the tunnel failed
    (empty when offloaded)."""

    engine: str
    reasons: tuple[str, ...] = ()

    @property
    def offloaded(self) -> bool:
        """`Hardware Offloaded: Yes`."""
        return self.engine == "pfe"


@dataclass(frozen=True)
class Rule:
    """One condition for offload. `pfe`/`cpu` are the two cells of its Table 1 row (row 0: a
    chassis-wide switch not in the table); `check` returns the failing reasons (none = pass)."""

    row: int
    pfe: str
    cpu: str
    check: Callable[[Tunnel, Settings], tuple[str, ...]] = field(repr=False)


def _hw_offload_disable(t: Tunnel, s: Settings) -> tuple[str, ...]:
    return ("hw-offload-disable configured",) if s.hw_offload_disable else ()


def _license(t: Tunnel, s: Settings) -> tuple[str, ...]:
    state = s.license_state
    if state == "valid":
        return ()
    if state == "expired":
        assert s.license is not None and s.license.expires is not None
        return (f"no valid IPsec offload license (expired {s.license.expires.isoformat()})",)
    return ("no valid IPsec offload license",)


def _protocol_mode(t: Tunnel, s: Settings) -> tuple[str, ...]:
    reasons = []
    if t.protocol != "esp":
        reasons.append(f"{t.protocol.upper()} protocol not supported by PFE")
    if t.mode != "tunnel":
        reasons.append(f"{t.mode} mode not supported by PFE")
    return tuple(reasons)


def _cipher(t: Tunnel, s: Settings) -> tuple[str, ...]:
    if t.protocol != "esp" or t.cipher in PFE_CIPHERS:
        return ()
    return (f"encryption algorithm {t.cipher} not supported by PFE (AES-GCM 128/256 only)",)


def _deployment(t: Tunnel, s: Settings) -> tuple[str, ...]:
    if t.deployment in PFE_DEPLOYMENTS:
        return ()
    return (f"{_DEPLOYMENT_NAMES[t.deployment]} deployment not supported by PFE",)


def _replay(t: Tunnel, s: Settings) -> tuple[str, ...]:
    if t.replay_window <= PFE_MAX_REPLAY_WINDOW:
        return ()
    return (f"anti-replay window {t.replay_window} > {PFE_MAX_REPLAY_WINDOW}",)


def _capacity(t: Tunnel, s: Settings) -> tuple[str, ...]:
    reasons = []
    if t.sa_pairs > 1:
        reasons.append(f"{t.sa_pairs} child SA pairs in one tunnel (PFE supports 1)")
    sas = s.pfe_sas_in_use + t.sa_count
    if sas > s.pfe_sa_limit:
        reasons.append(f"PFE SA capacity exceeded ({sas} > {s.pfe_sa_limit})")
    tunnels = s.pfe_tunnels_in_use + 1
    if tunnels > s.pfe_tunnel_limit:
        reasons.append(f"PFE tunnel capacity exceeded ({tunnels} > {s.pfe_tunnel_limit})")
    return tuple(reasons)


def _lifesize(t: Tunnel, s: Settings) -> tuple[str, ...]:
    return ("lifetime-kilobytes configured",) if t.lifetime_kilobytes is not None else ()


#: docs/design.md §2 Table 1, row by row, then the chassis-wide switches (row 0).
TABLE_1: tuple[Rule, ...] = (
    Rule(0, "offload enabled", "set security ipsec hw-offload-disable", _hw_offload_disable),
    Rule(0, "valid IPsec offload license", "no license, or an expired one", _license),
    Rule(1, "ESP, tunnel mode", "AH tunnel mode (and anything else not in the left column)",
         _protocol_mode),
    Rule(2, "AES-GCM with 128- or 256-bit key",
         "every other cipher (AES-CBC, AES-CTR, 3DES, ChaCha20-Poly1305, ...)", _cipher),
    Rule(3, "site-to-site deployments; ICL encryption in Multinode HA",
         "point-to-multipoint, group VPN, ADVPN", _deployment),
    Rule(4, "anti-replay window up to 4096", "anti-replay window above 4096", _replay),
    Rule(5, "up to 4000 SAs / 2000 tunnels",
         "more than 4000 SAs; several child SAs in one tunnel", _capacity),
    Rule(6, "NAT-T (UDP-encapsulated) tunnels",
         "tunnels with a lifetime in kilobytes (\"lifesize\")", _lifesize),
)


def place(tunnel: Tunnel, settings: Settings) -> Placement:
    """Decide where `tunnel` runs (docs/design.md §2 Table 1): the PFE if every rule passes, the CPU
    otherwise, with every failing reason in table order."""
    reasons: list[str] = []
    for rule in TABLE_1:
        reasons.extend(rule.check(tunnel, settings))
    if reasons:
        return Placement("cpu", tuple(reasons))
    return Placement("pfe")


def tunnel_from_config(config: Config, vpn: str | IpsecVpn, udp_encap: bool = False) -> Tunnel:
    """The `Tunnel` a configured VPN will be, before negotiation: the first proposal of its
    ipsec-policy (or its manual SA), its anti-replay window, its deployment type, and one SA
    pair per traffic selector (Junos negotiates a child SA per traffic selector)."""
    v = config.ipsec_vpns[vpn] if isinstance(vpn, str) else vpn
    protocol, cipher, kilobytes = "esp", "null", None
    if v.manual is not None:
        protocol = v.manual.protocol or "esp"
        if v.manual.encryption_algorithm:
            cipher = IPSEC_ENCRYPTION_TO_CIPHER[v.manual.encryption_algorithm]
    else:
        proposals = config.ipsec_proposals_of(v)
        if proposals:
            prop = proposals[0]
            protocol = prop.protocol
            kilobytes = prop.lifetime_kilobytes
            if prop.encryption_algorithm:
                cipher = IPSEC_ENCRYPTION_TO_CIPHER[prop.encryption_algorithm]
    return Tunnel(
        name=v.name,
        protocol=protocol,
        cipher=cipher,
        deployment=config.deployment_of(v),
        replay_window=v.anti_replay_window,
        lifetime_kilobytes=kilobytes,
        sa_pairs=max(1, len(v.traffic_selectors)),
        udp_encap=udp_encap,
    )


def place_config(config: Config, today: _dt.date) -> dict[str, Placement]:
    """Place every VPN of `config` in configuration order, counting PFE capacity as it fills
    (what `inline-ipsec check FILE` prints)."""
    sas = tunnels = 0
    out: dict[str, Placement] = {}
    for vpn in config.ipsec_vpns.values():
        tunnel = tunnel_from_config(config, vpn)
        placement = place(tunnel, Settings(
            today=today, license=config.license, hw_offload_disable=config.hw_offload_disable,
            pfe_sas_in_use=sas, pfe_tunnels_in_use=tunnels))
        if placement.offloaded:
            sas += tunnel.sa_count
            tunnels += 1
        out[vpn.name] = placement
    return out

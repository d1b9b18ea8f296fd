"""Can a configured VPN come up? One verdict per `ipsec vpn`, with every reason it cannot.

The configuration parser accepts what Junos accepts; this gateway cannot carry out all of it.
Each rule below looks at one VPN in its configuration and returns the reasons the VPN can
never come up here (none: it can). `inline-ipsec check` prints the verdict of every VPN beside
its offload verdict, `inline-ipsec run` prints it at start-up and counts such VPNs as down,
`IkeControl` negotiates only the VPNs that can come up, and `show security ipsec
inactive-tunnels` gives the reason as the tunnel's down reason.

The rules, in order:
- the IKE version of the VPN's gateway is negotiated (`ike_config.NOT_NEGOTIATED`: IKEv1 is
  the one entry today);
- the outer addresses are known: the gateway's `address` is an IP address (host names are
  not resolved) and a local address is configured (`local-address` or an address on the
  `external-interface`);
- the IKE configuration can be built: algorithms, DH groups and proposals the IKE
  implementation has, a pre-shared key or a loaded certificate (`ike_config`);
- on an IKE gateway shared by several VPNs (one IKE SA, a child SA pair per VPN, told apart
  by traffic selectors, RFC 7296 §2.9) no two VPNs propose the same traffic selectors: the
  responder could not tell which VPN a CREATE_CHILD_SA is for, so the later VPN cannot come
  up;
- no two IKE gateways share a peer address and both identities: the responder picks the
  gateway by address and identities (RFC 7296 §2.15), so the later one could never be told
  apart.

Manual-SA VPNs are installed at start and always come up.

Besides, `notes` name what the configuration asks for that this gateway does not carry out
although the VPN can come up without it (`NOTE_RULES`: backup peer addresses, ADVPN shortcuts,
an on-traffic VPN no route leads into); `check` and `run` print them too.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional

from ..config import Config
from ..config.model import IkeGateway, IpsecVpn
from ..errors import ConfigError
from .ike_config import NOT_NEGOTIATED, IkeConfigError, child_configs, ike_config_for_vpn
from .keying import vpn_endpoints

__all__ = ["Verdict", "VERDICT_RULES", "vpn_verdicts", "render_verdict"]


@dataclass(frozen=True)
class Verdict:
    """Whether `vpn` can come up on this gateway; `reasons` says why not (empty: it can);
    `notes`: statements of the VPN this gateway does not carry out."""

    vpn: str
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def can_come_up(self) -> bool:
        return not self.reasons

    @property
    def down_reason(self) -> str:
        """One line for show output: every reason, joined."""
        return "; ".join(self.reasons)


@dataclass
class _Context:
    config: Config
    credentials: Optional[Mapping[str, object]]
    #: VPNs that can come up so far (configuration order), by IKE gateway name, with their
    #: traffic selectors, for the rules that compare VPNs
    by_gateway: dict[str, list[tuple[IpsecVpn, frozenset]]] = field(default_factory=dict)
    #: (peer address, identities) -> (IKE gateway, a VPN on it) of the VPNs so far
    by_peer: dict[tuple, tuple[IkeGateway, IpsecVpn]] = field(default_factory=dict)

    def accept(self, vpn: IpsecVpn) -> None:
        """`vpn` can come up: the later VPNs are compared with it."""
        gw = self.config.gateway_of(vpn)
        if gw is None:
            return
        self.by_gateway.setdefault(gw.name, []).append((vpn, _selectors(vpn, self)))
        if gw.address:
            self.by_peer.setdefault((gw.version, gw.address[0], _identities(gw)), (gw, vpn))


Rule = Callable[[IpsecVpn, _Context], tuple[str, ...]]


def _ike_version(vpn: IpsecVpn, ctx: _Context) -> tuple[str, ...]:
    gw = ctx.config.gateway_of(vpn)
    if gw is None or gw.version not in NOT_NEGOTIATED:
        return ()
    return (NOT_NEGOTIATED[gw.version].format(gateway=gw.name),)


def _endpoints(vpn: IpsecVpn, ctx: _Context) -> tuple[str, ...]:
    gw = ctx.config.gateway_of(vpn)
    if gw is None:
        return ()
    reasons = []
    if gw.address:
        try:
            ipaddress.ip_address(gw.address[0])
        except ValueError:
            reasons.append(f"ike gateway {gw.name}: address {gw.address[0]} is a host name; "
                           "this gateway does not resolve names, configure an IP address")
    if not reasons:
        try:
            vpn_endpoints(ctx.config, vpn.name)
        except ConfigError as exc:
            reasons.append(str(exc))
    return tuple(reasons)


def _ike_config(vpn: IpsecVpn, ctx: _Context) -> tuple[str, ...]:
    try:
        ike_config_for_vpn(ctx.config, vpn, credentials=ctx.credentials)  # type: ignore
    except IkeConfigError as exc:
        text = str(exc)
        if "no key and certificate loaded" in text and ctx.credentials is None:
            text += " (the command line loads none: certificate authentication runs from " \
                    "Python, IkeControl(credentials=...))"
        return (text,)
    except ConfigError:
        return ()        # already reported by _endpoints
    return ()


def _selectors(vpn: IpsecVpn, ctx: _Context) -> frozenset:
    cfg = ctx.config
    try:
        kids = child_configs(cfg, vpn)
    except ConfigError:
        return frozenset()
    return frozenset((tuple(sorted(c.local_ts)), tuple(sorted(c.remote_ts))) for c in kids)


def _shared_gateway(vpn: IpsecVpn, ctx: _Context) -> tuple[str, ...]:
    gw = ctx.config.gateway_of(vpn)
    if gw is None:
        return ()
    mine = _selectors(vpn, ctx)
    reasons = []
    for other, theirs in ctx.by_gateway.get(gw.name, ()):
        same = mine & theirs
        if same:
            local, remote = sorted(same)[0]
            reasons.append(
                f"ipsec vpn {other.name} on the same ike gateway {gw.name} proposes the same "
                f"traffic selectors (local {', '.join(local)}, remote {', '.join(remote)}): "
                "one IKE SA cannot tell the two VPNs apart; give each VPN its own "
                "traffic-selector or its own ike gateway")
    return tuple(reasons)


def _identities(gw: IkeGateway) -> tuple:
    """What a responder tells IKE gateways to one address apart by (None: the default, the
    outer address)."""
    return tuple(None if i is None else (i.kind, i.value)
                 for i in (gw.local_identity, gw.remote_identity))


def _indistinct_gateways(vpn: IpsecVpn, ctx: _Context) -> tuple[str, ...]:
    gw = ctx.config.gateway_of(vpn)
    if gw is None or not gw.address:
        return ()
    hit = ctx.by_peer.get((gw.version, gw.address[0], _identities(gw)))
    if hit is None or hit[0] is gw:
        return ()
    og, other = hit
    return (f"ike gateways {og.name} and {gw.name} have the same peer address "
            f"{gw.address[0]} and the same identities: the peer's IKE SA cannot be told "
            f"apart (ipsec vpn {other.name} takes it); configure local-identity/"
            "remote-identity on one of them",)


#: The rules, in the order their reasons are printed (module docstring).
VERDICT_RULES: tuple[Rule, ...] = (_ike_version, _endpoints, _ike_config, _shared_gateway,
                                   _indistinct_gateways)


def _backup_addresses(vpn: IpsecVpn, ctx: _Context) -> tuple[str, ...]:
    gw = ctx.config.gateway_of(vpn)
    if gw is None or len(gw.address) < 2:
        return ()
    return (f"ike gateway {gw.name}: backup peer addresses {', '.join(gw.address[1:])} are "
            f"not used; only {gw.address[0]} is negotiated",)


def _advpn(vpn: IpsecVpn, ctx: _Context) -> tuple[str, ...]:
    gw = ctx.config.gateway_of(vpn)
    if gw is None or gw.advpn is None:
        return ()
    return (f"ike gateway {gw.name}: advpn {gw.advpn}: ADVPN shortcut tunnels are not "
            "negotiated, only the tunnel to the configured peer",)


def _untriggerable(vpn: IpsecVpn, ctx: _Context) -> tuple[str, ...]:
    if vpn.establish_tunnels == "immediately" or vpn.traffic_selectors:
        return ()
    if vpn.bind_interface is not None and ctx.config.routes_via(vpn.bind_interface):
        return ()
    where = vpn.bind_interface or "the VPN"
    return (f"establish-tunnels on-traffic, but no route leads into {where}: traffic cannot "
            "trigger it, only the peer can bring it up",)


#: Rules for `Verdict.notes`: statements not carried out by a VPN that can come up.
NOTE_RULES: tuple[Rule, ...] = (_backup_addresses, _advpn, _untriggerable)


def vpn_verdicts(config: Config, *, credentials: Optional[Mapping[str, object]] = None
                 ) -> dict[str, Verdict]:
    """The verdict of every VPN of `config`, in configuration order. `credentials` are the
    keys and certificates `IkeControl` would load (None: none, as on the command line)."""
    out: dict[str, Verdict] = {}
    ctx = _Context(config, credentials)
    for vpn in config.ipsec_vpns.values():
        if vpn.ike is None:
            out[vpn.name] = Verdict(vpn.name)
            continue
        reasons: list[str] = []
        for rule in VERDICT_RULES:
            reasons.extend(r for r in rule(vpn, ctx) if r not in reasons)
        notes = tuple(n for rule in NOTE_RULES for n in rule(vpn, ctx))
        out[vpn.name] = Verdict(vpn.name, tuple(reasons), notes)
        if not reasons:
            ctx.accept(vpn)       # a VPN that cannot come up takes nothing from others
    return out


def render_verdict(verdict: Verdict, indent: str = "  ") -> list[str]:
    """`Can come up: Yes`, or `Can come up: No` and one `Reason:` line per reason; then one
    `Not carried out:` line per note."""
    notes = [f"{indent}Not carried out: {n}" for n in verdict.notes]
    if verdict.can_come_up:
        return [f"{indent}Can come up: Yes"] + notes
    return [f"{indent}Can come up: No"] + [f"{indent}  Reason: {r}" for r in verdict.reasons] \
        + notes

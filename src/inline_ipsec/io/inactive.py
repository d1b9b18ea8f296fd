"""`show security ipsec inactive-tunnels [detail]`: the configured VPNs that are down, and why.

A VPN is inactive when the gateway has no tunnel for it: it cannot come up here at all
(`vpn_verdict`: the reasons are its down reason), IKE has not brought it up yet (on-traffic,
waiting for its peer or its backoff), or it went down (dead peer, deleted, negotiation failed:
`IkeControl.status`, whose tunnel events outlive the tunnel). The layout follows Junos's
command of the same name (docs/junos-formats.md §4.7); the model has no tunnel flags and
prints the tunnel ID a VPN had when it was last up, `-` if it never was.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from ..errors import ConfigError
from ..control.keying import vpn_endpoints
from ..control.vpn_verdict import vpn_verdicts

if TYPE_CHECKING:
    from ..dataplane.gateway import Gateway

__all__ = ["InactiveTunnel", "inactive_tunnels", "render_inactive_tunnels",
           "render_inactive_tunnels_detail", "NO_IKE_REASON"]

#: why an IKE VPN is down on a gateway that runs no IKE
NO_IKE_REASON = "IKE is not running on this gateway: no peer to negotiate with"


@dataclass(frozen=True)
class InactiveTunnel:
    """One configured VPN without a tunnel, as the show command prints it."""

    vpn: str
    tunnel_id: Optional[int]
    local_gateway: str
    remote_gateway: str
    version: str
    df_bit: str
    bind_interface: str
    port: int
    negotiations: int
    failures: int
    immediately: bool
    events: tuple[str, ...]
    down_reason: str
    can_come_up: bool


def inactive_tunnels(gw: "Gateway") -> list[InactiveTunnel]:
    """The configured VPNs of `gw` that have no tunnel, in configuration order."""
    ike = gw.ike
    verdicts = ike.verdicts if ike is not None else vpn_verdicts(gw.config)
    out = []
    for vpn in gw.config.ipsec_vpns.values():
        if vpn.name in gw.distributor:
            continue
        verdict = verdicts.get(vpn.name)
        status = ike.status.get(vpn.name) if ike is not None else None
        if verdict is not None and not verdict.can_come_up:
            reason = verdict.down_reason
        elif status is not None:
            reason = status.down_reason or "Waiting for negotiation"
        elif vpn.ike is not None:
            reason = NO_IKE_REASON
        else:
            reason = "Manual SA not installed"
        local = remote = "-"
        gw_cfg = gw.config.gateway_of(vpn)
        try:
            local, remote = vpn_endpoints(gw.config, vpn.name)
        except ConfigError:      # no addresses (or a manual SA): the verdict says so
            if gw_cfg is not None and gw_cfg.address:
                remote = gw_cfg.address[0]
        if vpn.manual is not None:
            version = "N/A"
            remote = vpn.manual.gateway or remote
        else:
            version = "IKEv2" if gw_cfg is not None and gw_cfg.ike_version == 2 else "IKEv1"
        session = ike.session_of(vpn.name) if ike is not None and vpn.name in ike.vpns \
            else None
        out.append(InactiveTunnel(
            vpn=vpn.name, tunnel_id=status.tunnel_id if status is not None else None,
            local_gateway=local, remote_gateway=remote, version=version, df_bit=vpn.df_bit,
            bind_interface=vpn.bind_interface or "None",
            port=4500 if session is not None and session.natt else 500,
            negotiations=status.negotiations if status is not None else 0,
            failures=status.failures if status is not None else 0,
            immediately=vpn.establish_tunnels == "immediately",
            events=tuple(status.event_lines()) if status is not None else (),
            down_reason=reason,
            can_come_up=verdict is None or verdict.can_come_up))
    return out


def _id(t: InactiveTunnel) -> str:
    return "-" if t.tunnel_id is None else str(t.tunnel_id)


def render_inactive_tunnels(tunnels: list[InactiveTunnel]) -> str:
    """`show security ipsec inactive-tunnels`."""
    lines = [
        f"  Total inactive tunnels: {len(tunnels)}",
        "  Total inactive tunnels with establish immediately: "
        f"{sum(1 for t in tunnels if t.immediately)}",
        "  ID      Port  Nego#  Fail#  Gateway          Tunnel Down Reason",
    ]
    for t in tunnels:
        lines.append(f"  {_id(t):<7} {t.port:<5} {t.negotiations:<6} {t.failures:<6} "
                     f"{t.remote_gateway:<16} {t.down_reason}")
    return "\n".join(lines) + "\n"


def render_inactive_tunnels_detail(tunnels: list[InactiveTunnel]) -> str:
    """`show security ipsec inactive-tunnels detail`."""
    lines: list[str] = []
    for t in tunnels:
        lines += [
            f"ID: {_id(t)} Virtual-system: root, VPN Name: {t.vpn}",
            f"  Local Gateway: {t.local_gateway}, Remote Gateway: {t.remote_gateway}",
            f"  Version: {t.version}",
            f"  DF-bit: {t.df_bit}, Bind-interface: {t.bind_interface}",
            f"  Port: {t.port}, Nego#: {t.negotiations}, Fail#: {t.failures}",
            "  Tunnel events:",
            *[f"    {e}" for e in t.events],
            f"  Tunnel Down Reason: {t.down_reason}",
            "",
        ]
    return "\n".join(lines) + ("\n" if lines else "")

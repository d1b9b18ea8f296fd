"""The show commands of a running gateway: snapshots of its tunnels and counters, rendered by
the pure renderers of `inline_ipsec.stats` (Junos 25.x formats, docs/junos-formats.md §4).

    show security ipsec security-associations [detail] [index <id> | vpn-name <name>]
    show security ipsec statistics [index <id> | vpn-name <name>]
    show security flow statistics
    show security flow status
    show security flow pmi statistics
    show security ike security-associations [detail]
    show security ipsec inactive-tunnels [detail]

How the counters map is the counter catalogue's (`stats.catalogue`): `show security ipsec
statistics` sums every SA's engine counters (those of SAs already removed included), the
engines' own drops and the gateway's (invalid SPI, TS check fail, exceeds tunnel MTU, bad
outer headers); with `vpn-name`/`index` the tunnels' SAs and their flow counters. `show security
flow statistics` counts every packet of the IPsec flows in ("Packets received": inner packets
to encrypt, outer packets from peers) and out ("Packets transmitted": ESP/AH packets, delivered
inner packets, ICMP errors), and those an offloaded tunnel carried also as "Services-offload
packets processed" (docs/design.md §2, docs/junos-formats.md §4.6).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ..config.algorithms import DH_GROUPS
from ..stats import (FlowStatistics, IpsecStatistics, TunnelSnapshot, flow_statistics,
                     ipsec_statistics, proxy_identity, render_flow_statistics,
                     render_ike_sa_detail,
                     render_ike_sa_summary,
                     render_ipsec_sa_detail, render_ipsec_sa_summary, render_ipsec_statistics,
                     tunnel_snapshot)

if TYPE_CHECKING:
    from ..dataplane.gateway import Gateway

__all__ = ["SHOW_COMMANDS", "show", "snapshots", "gateway_ipsec_statistics",
           "gateway_flow_statistics", "ShowError"]

SHOW_COMMANDS = (
    "security ipsec security-associations [detail] [index <id> | vpn-name <name>]",
    "security ipsec statistics [index <id> | vpn-name <name>]",
    "security flow statistics",
    "security flow status",
    "security flow pmi statistics",
    "security ike security-associations [detail]",
    "security ipsec inactive-tunnels [detail]",
    "security policies [from-zone <z> to-zone <z> | global] [policy-name <p>] "
    "[detail | hit-count]",
    "security zones",
    "security pki local-certificate [detail] | ca-certificate [detail]",
    "configuration ignored",
)


class ShowError(ValueError):
    """A show command the gateway does not understand."""


def _snapshot(gw: "Gateway", name: str) -> TunnelSnapshot:
    rec = gw.tunnel(name)
    cfg = gw.config
    vpn = cfg.ipsec_vpns.get(gw.config_vpn_of(name))
    over: dict = {"anchorship": None}
    sa_type = gw.sa_type(name)
    if rec.offloaded and rec.pfe_index is not None:
        over["anchorship"] = f"Thread {rec.pfe_index}"
        over["crypto_backend"] = rec.engine.backend
    if vpn is not None:
        over["bind_interface"] = vpn.bind_interface or ""
        over["tunnel_establishment"] = ("establish-tunnels-immediately"
                                        if vpn.establish_tunnels == "immediately"
                                        else "establish-tunnels-on-traffic")
        if vpn.ike is not None:
            over["policy_name"] = vpn.ike.ipsec_policy or ""
            policy = cfg.ipsec_policies.get(vpn.ike.ipsec_policy or "")
            if policy is not None and policy.pfs_group:
                over["pfs_group"] = DH_GROUPS[policy.pfs_group]
            gw_cfg = cfg.gateway_of(vpn)
            if gw_cfg is not None:
                over["ike_version"] = "IKEv2" if gw_cfg.ike_version == 2 else "IKEv1"
                over["quantum_secured"] = gw_cfg.ppk_profile is not None
        else:
            over["ike_version"] = "N/A"
            over["tunnel_establishment"] = "establish-tunnels-immediately"
    selectors = gw.selectors(name)
    if selectors and selectors[0].local and selectors[0].remote:
        # a policy-based VPN's selectors are its policy's proxy IDs (Junos: "proxy-id")
        over["ts_type"] = "proxy-id" if vpn is not None and vpn.policy_based \
            else "traffic-selector"
        over["local_identity"] = proxy_identity(str(selectors[0].local[0]))
        over["remote_identity"] = proxy_identity(str(selectors[0].remote[0]))
    elif rec.pairs and rec.pairs[0].outbound.outer_ipv6:
        over["local_identity"] = over["remote_identity"] = proxy_identity("::/0")
    over["negotiations"] = rec.rekeys
    ike = gw.ike
    session = ike.session_of(name) if ike is not None and name in ike.vpns else None
    status = ike.status.get(name) if ike is not None else None
    if status is not None and status.events:
        # IKE's events for the VPN (IKE SA up, dead peer, ...) outlive its tunnels: shown
        # with this tunnel's own, in time order
        merged = sorted([*status.events, *rec.events], key=lambda e: e.time)
        over["events"] = tuple(e.render() for e in merged)
    if session is not None:              # what IKE negotiated (RFC 8784: a PPK was mixed in)
        over["quantum_secured"] = session.ppk_used
        over["ike_sa_index"] = ike.session_info(session).index
        over["tunnel_establishment"] = ("establish-tunnels-immediately"
                                        if ike.vpns[name].establish == "immediately"
                                        else "establish-tunnels-on-traffic")
    return tunnel_snapshot(rec, gw.clock(), sa_type=sa_type, **over)


def snapshots(gw: "Gateway", names: Optional[list[str]] = None) -> list[TunnelSnapshot]:
    """`TunnelSnapshot`s of the gateway's tunnels (all, in installation order, or `names`)."""
    return [_snapshot(gw, n) for n in (names if names is not None else gw.tunnel_names())]


def _sa_rows(gw: "Gateway", names: Optional[list[str]]):
    for rec in gw.distributor.tunnels():
        if names is not None and rec.name not in names:
            continue
        for direction, _spi, counters in gw.distributor.counters(rec.name):
            yield direction, rec.pairs[0].outbound.protocol if rec.pairs else "esp", counters


def gateway_ipsec_statistics(gw: "Gateway", names: Optional[list[str]] = None
                             ) -> IpsecStatistics:
    """`show security ipsec statistics` of the whole gateway, or of the tunnels `names`."""
    if names is not None:
        return ipsec_statistics(list(_sa_rows(gw, names)),
                                tunnels=[gw.tunnel_flow(n) for n in names])
    return ipsec_statistics([*_sa_rows(gw, None), *gw.retired_sa_counters()],
                            [e.engine_counters() for e in gw.engines], gateway=gw.counters)


def gateway_flow_statistics(gw: "Gateway") -> FlowStatistics:
    """`show security flow statistics` of the gateway (see the module docstring)."""
    return flow_statistics(gw.counters, sessions=gw.current_sessions())


def _select(gw: "Gateway", words: list[str]) -> tuple[list[str], Optional[list[str]]]:
    """Strip `index <id>` / `vpn-name <name>` from `words`; return (rest, tunnel names)."""
    rest, names = [], None
    i = 0
    while i < len(words):
        w = words[i]
        if w in ("index", "vpn-name") and i + 1 < len(words):
            value = words[i + 1]
            if w == "vpn-name":
                if value not in gw.tunnel_names():
                    raise ShowError(f"no tunnel with vpn-name {value}")
                names = [value]
            else:
                hits = [r.name for r in gw.distributor.tunnels() if str(r.tunnel_id) == value]
                if not hits:
                    raise ShowError(f"no tunnel with index {value}")
                names = hits
            i += 2
        else:
            rest.append(w)
            i += 1
    return rest, names


def _ignored(gw: "Gateway") -> str:
    """`show configuration ignored` (the model's command): every statement of the loaded
    configuration the model does not carry out, by hierarchy, and the inactive ones."""
    ignored = gw.config.ignored
    if not ignored:
        return "Every statement of the configuration is carried out\n"
    lines = []
    for kind in ("outside the model", "inactive"):
        items = [i for i in ignored if i.kind == kind]
        if items:
            lines.append(f"{kind.capitalize()}:")
            for i in items:
                shown = ", ".join(str(n) for n in i.lines[:20])
                more = f" ... ({len(i.lines) - 20} more)" if len(i.lines) > 20 else ""
                lines.append(f"  {i.hierarchy}: line{'s' if len(i.lines) > 1 else ''} "
                             f"{shown}{more}")
    return "\n".join(lines) + "\n"


def _policy_show(gw: "Gateway", key: str) -> str:
    """`show security zones`, `show security policies [from-zone <z> to-zone <z> | global]
    [policy-name <p>] [detail | hit-count]`."""
    from ..policy import PolicyTable
    from ..policy.show import (parse_selection, render_hit_count, render_policies,
                               render_policies_detail, render_zones)
    if key == "security zones":
        return render_zones(gw.config.firewall)
    words = key.split()[2:]
    view = words.pop() if words and words[-1] in ("detail", "hit-count") else ""
    try:
        sel = parse_selection(words)
    except ValueError as exc:
        raise ShowError(f"show {key}: {exc}") from None
    table = gw.policy.table if gw.policy is not None else PolicyTable(gw.config.firewall)
    if view == "detail":
        return render_policies_detail(table, sel)
    if view == "hit-count":
        return render_hit_count(table, sel)
    return render_policies(table, sel)


def show(gw: "Gateway", command: str) -> str:
    """Run one show command against `gw` and return its text (`SHOW_COMMANDS`)."""
    words = command.split()
    if words and words[0] == "show":
        words = words[1:]
    words, names = _select(gw, words)
    key = " ".join(words)
    if key in ("security ipsec security-associations",
               "security ipsec security-associations detail"):
        snaps = snapshots(gw, names)
        if key.endswith("detail"):
            return render_ipsec_sa_detail(snaps)
        return render_ipsec_sa_summary(snaps)
    if key == "security ipsec statistics":
        return render_ipsec_statistics(gateway_ipsec_statistics(gw, names))
    if key == "security flow statistics":
        return render_flow_statistics(gateway_flow_statistics(gw))
    if key in ("security flow status", "security flow pmi statistics"):
        from ..stats.pmi import (flow_status, pmi_statistics, render_flow_status,
                                 render_pmi_statistics)
        if key.endswith("status"):
            return render_flow_status(flow_status(gw.cpu))
        return render_pmi_statistics(pmi_statistics(gw.cpu))
    if key in ("security ipsec inactive-tunnels", "security ipsec inactive-tunnels detail"):
        from .inactive import (inactive_tunnels, render_inactive_tunnels,
                               render_inactive_tunnels_detail)
        down = inactive_tunnels(gw)
        if key.endswith("detail"):
            return render_inactive_tunnels_detail(down)
        return render_inactive_tunnels(down)
    if key in ("security ike security-associations",
               "security ike security-associations detail"):
        from .ike_show import ike_sa_details, ike_sa_records
        if key.endswith("detail"):
            return render_ike_sa_detail(ike_sa_details(gw))
        return render_ike_sa_summary(ike_sa_records(gw))
    if key == "security zones" or key == "security policies" or \
            key.startswith("security policies "):
        return _policy_show(gw, key)
    if key == "configuration ignored":
        return _ignored(gw)
    if key.startswith("security pki "):
        pki = gw.pki
        if pki is None:
            raise ShowError("no PKI directory: run the gateway with --pki-dir DIR")
        from ..pki import show_pki
        return show_pki(pki, words[2:])
    typed = " ".join(w for w in command.split() if w != "show")
    raise ShowError(f"unknown command 'show {typed}'; expected one of:\n"
                    + "\n".join(f"  show {c}" for c in SHOW_COMMANDS))

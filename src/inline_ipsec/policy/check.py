"""What `inline-ipsec check` says about a VPN's security policy and zones (Junos's rules,
docs/junos-formats.md §2): the proxy IDs a policy-based VPN takes from its policy, and the
zone and host-inbound settings without which its traffic or its IKE would be dropped."""
from __future__ import annotations

from ..config.model import Config, IpsecVpn
from .zones import ZoneMap

__all__ = ["policy_notes"]


def policy_notes(config: Config, vpn: IpsecVpn) -> list[str]:
    """Lines (indented for the check report) about `vpn` and the policy stage; none when the
    configuration has neither zones nor policies."""
    fw = config.firewall
    if not fw.configured:
        return []
    zones = ZoneMap(config)
    out: list[str] = []
    if vpn.policy_based:
        out.append(f"  Policy-based: proxy IDs from policy {vpn.tunnel_policy}:")
        out += [f"    {ts.local_ip} <-> {ts.remote_ip}" for ts in vpn.traffic_selectors]
        if not vpn.traffic_selectors:
            out.append("    none (the policy's addresses give no prefix pair of one family): "
                       "it cannot come up")
        policy = next((p for p in fw.policies if p.name == vpn.tunnel_policy), None)
        gateway = config.gateway_of(vpn)
        ext = gateway.external_interface if gateway is not None else \
            (vpn.manual.external_interface if vpn.manual is not None else None)
        ext_zone = zones.zone_of(ext)
        if policy is not None and policy.to_zones and ext_zone not in policy.to_zones:
            out.append(f"    its external interface {ext} is in zone {ext_zone or 'none'}, "
                       f"the policy's to-zone is {policy.to_zones[0]}: its traffic is routed "
                       "elsewhere than the tunnel's interface")
    elif vpn.bind_interface is not None:
        zone = zones.zone_of(vpn.bind_interface)
        if zone is None:
            out.append(f"  Security zone: {vpn.bind_interface} is in no security zone: its "
                       "traffic is dropped")
        else:
            out.append(f"  Security zone: {vpn.bind_interface} in zone {zone}")
    else:
        out.append("  Security policy: no policy tunnels to it and it has no bind-interface: "
                   "no traffic can use it")
    gateway = config.gateway_of(vpn)
    if gateway is not None:
        local = config.local_address_of(gateway)
        if local is not None and not zones.host_inbound_allows(local, "ike"):
            out.append(f"  Host-inbound: {zones.host_inbound_reason(local, 'ike')}: the peer's "
                       "IKE is dropped (set security zones security-zone <z> interfaces <ifl> "
                       "host-inbound-traffic system-services ike)")
    return out

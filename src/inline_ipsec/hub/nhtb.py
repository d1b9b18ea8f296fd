"""Next-hop tunnel binding (NHTB): which tunnel of a point-to-multipoint st0 a next hop is.

On a multipoint st0 unit several VPNs (or the many tunnels of one AutoVPN gateway) share one
interface and one subnet, so "next-hop st0.0" does not say which tunnel a packet takes. Junos
binds each peer's tunnel address to its tunnel:

- static: `set interfaces st0 unit N family inet next-hop-tunnel <addr> ipsec-vpn <vpn>`;
- automatic: learned from IKE when the tunnel comes up, from the peer's IKEv2 configuration
  payload (INTERNAL_IP4_ADDRESS, RFC 7296 §3.15.1) or, without one, from its traffic
  selector when that is a single address inside the st0 unit's subnet (RFC 7296 §2.9).

A static route whose next hop is a tunnel address (`route 10.2.0.0/16 next-hop 10.100.0.2`)
then reaches that tunnel: `resolve_routes` turns the configuration's routes, the NHTB table
and the tunnels' own routes (shortcuts first) into prefix -> tunnels entries, which is all a
FIB needs. Two spokes announcing the same prefix are told apart by the next hop of each route.

The table is bounded (`MAX_ENTRIES`; automatic entries beyond it are refused and counted),
and an automatic entry goes with its tunnel; a static entry stays (Junos shows it without a
tunnel while its VPN is down).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence

from ..config import Config

__all__ = ["NhtbEntry", "NhtbTable", "resolve_routes", "MAX_ENTRIES", "render_next_hop_tunnels"]

#: NHTB entries one gateway keeps (static + automatic)
MAX_ENTRIES = 16384


@dataclass
class NhtbEntry:
    """One binding: tunnel address -> VPN (and the tunnel carrying it, when it is up)."""

    address: str
    interface: str           #: st0.N
    vpn: str                 #: the configured VPN
    tunnel: Optional[str]    #: the gateway's tunnel name (an AutoVPN spoke's own), or None
    source: str              #: "static", "ike-cp" or "ike-ts"
    tunnel_id: Optional[int] = None
    peer: str = ""


class NhtbTable:
    """Next-hop address -> entry, per st0 unit (module docstring)."""

    def __init__(self, config: Config, max_entries: int = MAX_ENTRIES) -> None:
        self.config = config
        self.max_entries = max_entries
        self._entries: dict[tuple[str, str], NhtbEntry] = {}
        #: automatic entries refused because the table was full, or the address was taken
        self.refused = 0
        for unit in config.st0_units.values():
            for addr, vpn in unit.next_hop_tunnels:
                self._entries[(unit.name, addr)] = NhtbEntry(addr, unit.name, vpn, None,
                                                             "static")

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[NhtbEntry]:
        def key(e: NhtbEntry) -> tuple:
            ip = ipaddress.ip_address(e.address)
            return (e.interface, ip.version, int(ip))
        return sorted(self._entries.values(), key=key)

    def unit_of(self, address: str) -> Optional[str]:
        """The multipoint st0 unit whose subnet holds `address`, if any."""
        ip = ipaddress.ip_address(address)
        for unit in self.config.st0_units.values():
            if not unit.multipoint:
                continue
            for prefix in self.config.interface_addresses.get(unit.name, ()):
                iface = ipaddress.ip_interface(prefix)
                if iface.version == ip.version and ip in iface.network and ip != iface.ip:
                    return unit.name
        return None

    def bind(self, interface: str, address: str, vpn: str, tunnel: str, source: str,
             tunnel_id: Optional[int] = None, peer: str = "") -> bool:
        """Bind an address learned from IKE to a tunnel; False (counted) when the table is
        full or a static entry or another live tunnel holds the address."""
        key = (interface, address)
        cur = self._entries.get(key)
        if cur is not None:
            if cur.source == "static":
                if cur.vpn != vpn:
                    self.refused += 1
                    return False
                cur.tunnel, cur.tunnel_id, cur.peer = tunnel, tunnel_id, peer
                return True
            if cur.tunnel != tunnel:
                self.refused += 1
                return False
        elif len(self._entries) >= self.max_entries:
            self.refused += 1
            return False
        self._entries[key] = NhtbEntry(address, interface, vpn, tunnel, source, tunnel_id, peer)
        return True

    def bind_static(self, vpn: str, tunnel: str, tunnel_id: Optional[int], peer: str) -> None:
        """The VPN's tunnel is up: its static entries point at it."""
        for e in self._entries.values():
            if e.source == "static" and e.vpn == vpn:
                e.tunnel, e.tunnel_id, e.peer = tunnel, tunnel_id, peer

    def unbind_tunnel(self, tunnel: str) -> None:
        """The tunnel went down: its automatic entries go, static ones lose the tunnel."""
        for key, e in list(self._entries.items()):
            if e.tunnel != tunnel:
                continue
            if e.source == "static":
                e.tunnel, e.tunnel_id, e.peer = None, None, ""
            else:
                del self._entries[key]

    def tunnel_for(self, address: str) -> Optional[str]:
        """The tunnel a next-hop address resolves to (None: no entry or its tunnel is down)."""
        for (_iface, addr), e in self._entries.items():
            if addr == address:
                return e.tunnel
        return None

    def address_of(self, tunnel: str) -> Optional[str]:
        return next((e.address for e in self._entries.values() if e.tunnel == tunnel), None)


def resolve_routes(config: Config, nhtb: NhtbTable, vpn_tunnels: Mapping[str, Sequence[str]],
                   extra: Iterable[tuple[str, Sequence[str]]] = ()
                   ) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """The route -> tunnel entries of the gateway (a FIB's input), and the static routes that
    resolve to no tunnel. `vpn_tunnels`: configured VPN -> its live tunnels (an AutoVPN VPN
    has many); `extra`: routes of tunnels themselves (shortcuts, traffic selectors), which
    come first on the same prefix (preferred, as the more specific knowledge)."""
    table: dict[str, list[str]] = {}
    unresolved: list[str] = []

    def add(prefix: str, tunnels: Iterable[str]) -> None:
        key = str(ipaddress.ip_network(prefix, strict=False))
        names = table.setdefault(key, [])
        names += [t for t in tunnels if t not in names]

    for prefix, tunnels in extra:
        add(prefix, tunnels)
    for route in config.static_routes:
        hop = route.next_hop
        if hop.startswith("st0."):
            unit = config.st0_units.get(int(hop[4:])) if hop[4:].isdigit() else None
            vpns = [v.name for v in config.ipsec_vpns.values() if v.bind_interface == hop]
            tunnels = [t for v in vpns for t in vpn_tunnels.get(v, [v])]
            if unit is not None and unit.multipoint and (len(vpns) > 1 or len(tunnels) > 1):
                # several tunnels behind one multipoint unit (several VPNs, or the spokes of
                # an AutoVPN VPN): only NHTB can choose (Junos installs such a route on the
                # interface, reaching no particular tunnel)
                unresolved.append(f"{route.prefix} via {hop}: {len(tunnels)} tunnels on a "
                                  "multipoint st0; use a next-hop tunnel address")
                continue
            add(route.prefix, tunnels)
            continue
        tunnel = nhtb.tunnel_for(hop)
        if tunnel is not None:
            add(route.prefix, [tunnel])
        elif nhtb.unit_of(hop) is not None:
            unresolved.append(f"{route.prefix} via {hop}: no tunnel bound to {hop}")
    for v in config.ipsec_vpns.values():            # Junos auto route insertion
        for ts in v.traffic_selectors:
            if ts.remote_ip:
                add(ts.remote_ip, vpn_tunnels.get(v.name, [v.name]))
    return [(p, t) for p, t in table.items() if t], unresolved


def render_next_hop_tunnels(entries: Sequence[NhtbEntry]) -> str:
    """`show security ipsec next-hop-tunnels` (Junos layout: next hop, gateway, interface,
    IPsec VPN name, flag; the model adds the tunnel ID and how the entry was learned)."""
    lines = ["Next-hop gateway  interface   IPSec VPN name            Flag     "
             "IKE-ID                   XAUTH username   Tunnel ID  Source"]
    for e in entries:
        flag = "Static" if e.source == "static" else "Auto"
        tid = str(e.tunnel_id) if e.tunnel_id is not None else "-"
        ike_id = e.peer or "-"
        state = "" if e.tunnel is not None else " (down)"
        lines.append(f"{e.address:<17} {e.interface:<11} {e.vpn:<25} {flag:<8} "
                     f"{ike_id:<24} {'Not-Available':<16} {tid:<10} {e.source}{state}")
    lines.append(f"Total next-hop tunnels: {len(entries)}")
    return "\n".join(lines)

"""`ZoneMap`: which security zone a packet comes from and goes to, and host-inbound traffic.

The model has no ports for inner traffic, so a packet's zones come from the configuration's
interfaces and routes, as a Junos route lookup would give them:

  - the interface towards an address is the one whose connected subnet
    (`interfaces <ifd> unit <n> family inet|inet6 address <pfx>`) holds it, or the one through
    which the longest matching static route's next hop is reached (`routing-options static
    route <pfx> next-hop <ip>`; a next hop `st0.N` names the tunnel interface itself);
  - a packet's from-zone is the zone of the interface towards its source (where it came in),
    its to-zone the zone of the interface towards its destination; an explicit ingress
    interface overrides the first.

`host_inbound_allows(address, service)` says whether traffic for the device itself on one of
its addresses may reach `service` (e.g. "ike"): the interface owning the address must be in a
zone whose host-inbound-traffic (the interface's own when it has one, else the zone's) allows
it (Junos drops the rest before any daemon sees it).
"""
from __future__ import annotations

import ipaddress
from typing import Optional, Union

from ..config.model import Config

__all__ = ["ZoneMap"]

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class ZoneMap:
    """Interfaces, zones and routes of one configuration (module docstring)."""

    def __init__(self, config: Config, cache_size: int = 4096) -> None:
        fw = config.firewall
        self.firewall = fw
        self._zone_of = {ifl: z.name for z in fw.zones.values() for ifl in z.interfaces}
        self._owned: dict[Address, str] = {}
        connected: list[tuple[Network, str]] = []
        for ifl, prefixes in config.interface_addresses.items():
            for p in prefixes:
                iface = ipaddress.ip_interface(p)
                self._owned[iface.ip] = ifl
                connected.append((iface.network, ifl))
        routes: list[tuple[Network, str]] = list(connected)
        for r in config.static_routes:
            net = ipaddress.ip_network(r.prefix)
            if r.next_hop.startswith("st0."):
                routes.append((net, r.next_hop))
                continue
            try:
                hop = ipaddress.ip_address(r.next_hop)
            except ValueError:
                routes.append((net, r.next_hop))        # next hop named by its interface
                continue
            via = self._longest(connected, hop)
            if via is not None:
                routes.append((net, via))
        # connected before static at equal length (Junos preference 0 < 5)
        self._routes = sorted(routes, key=lambda r: -r[0].prefixlen)
        self._cache: dict[Address, Optional[str]] = {}
        self._cache_size = cache_size

    @staticmethod
    def _longest(table: list[tuple[Network, str]], addr: Address) -> Optional[str]:
        best: Optional[tuple[int, str]] = None
        for net, ifl in table:
            if net.version == addr.version and addr in net and \
                    (best is None or net.prefixlen > best[0]):
                best = (net.prefixlen, ifl)
        return None if best is None else best[1]

    def interface_towards(self, addr: Address) -> Optional[str]:
        """The interface a route lookup for `addr` gives (None: no route)."""
        if addr in self._cache:
            return self._cache[addr]
        found = None
        for net, ifl in self._routes:
            if net.version == addr.version and addr in net:
                found = ifl
                break
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[addr] = found
        return found

    def zone_of(self, interface: Optional[str]) -> Optional[str]:
        return None if interface is None else self._zone_of.get(interface)

    def zone_towards(self, addr: Address) -> Optional[str]:
        return self.zone_of(self.interface_towards(addr))

    def interface_owning(self, address: Union[str, Address]) -> Optional[str]:
        """The interface one of whose configured addresses is `address`."""
        return self._owned.get(ipaddress.ip_address(address))

    def host_inbound_allows(self, address: Union[str, Address], service: str) -> bool:
        """Traffic to the device's own `address` for system-service `service` is accepted
        (module docstring). Without zones in the configuration everything is."""
        if not self.firewall.configured:
            return True
        ifl = self.interface_owning(address)
        zone = self.zone_of(ifl)
        if ifl is None or zone is None:
            return False
        return self.firewall.zones[zone].host_inbound_of(ifl).allows(service)

    def host_inbound_reason(self, address: Union[str, Address], service: str) -> str:
        """Why `host_inbound_allows` is False (for logs and start-up messages)."""
        ifl = self.interface_owning(address)
        if ifl is None:
            return f"{address} is not an address of a configured interface"
        zone = self.zone_of(ifl)
        if zone is None:
            return f"interface {ifl} ({address}) is in no security zone"
        return (f"security-zone {zone} interface {ifl}: host-inbound-traffic does not allow "
                f"system-services {service}")

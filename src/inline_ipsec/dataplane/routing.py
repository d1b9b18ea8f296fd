"""Which tunnel an inner packet takes, and whether a decrypted packet may leave it.

Outbound (route-based VPN, Junos `routing-options static route <pfx> next-hop st0.N` and
`ipsec vpn <v> bind-interface st0.N`): longest-prefix match of the destination over the static
routes whose next hop is an st0 unit, then the VPNs bound to that unit. A VPN with traffic
selectors also gets a route to each remote-ip (Junos auto route insertion), and when a tunnel
carries several child SA pairs the pair whose selector matches the packet is used.

Inbound, after decryption: RFC 4301 §5.2 step 4 — the inner packet must match the selectors of
the SA it arrived on (inner source in the remote selector, inner destination in the local
one); otherwise it is dropped and counted as "TS check fail".
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence, Union

__all__ = ["Selector", "RouteTable", "inner_addresses", "ANY"]

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


def _net(prefix: Union[str, Network]) -> Network:
    return ipaddress.ip_network(prefix, strict=False)


def _nets(items: Iterable[object]) -> tuple[Network, ...]:
    out: list[Network] = []
    for item in items:
        start = getattr(item, "start_addr", None)
        if start is not None:
            end = getattr(item, "end_addr")
            out += ipaddress.summarize_address_range(ipaddress.ip_address(start),
                                                     ipaddress.ip_address(end))
        else:
            out.append(_net(item))  # type: ignore[arg-type]
    return tuple(out)


@dataclass(frozen=True)
class Selector:
    """A traffic selector pair (RFC 4301 §4.4.1, RFC 7296 §2.9), address ranges only:
    `local` are our protected networks, `remote` the peer's. Empty tuples match anything."""

    local: tuple[Network, ...] = ()
    remote: tuple[Network, ...] = ()

    @classmethod
    def of(cls, local: Iterable[object] = (), remote: Iterable[object] = ()) -> "Selector":
        """From prefixes ("10.1.0.0/16"), networks, or IKE traffic selectors (objects with
        `start_addr`/`end_addr`, RFC 7296 §3.13.1; their port and protocol fields are not
        used: selectors here are address ranges)."""
        return cls(_nets(local), _nets(remote))

    @staticmethod
    def _in(addr: Address, nets: Sequence[Network]) -> bool:
        return not nets or any(addr.version == n.version and addr in n for n in nets)

    def matches_outbound(self, src: Address, dst: Address) -> bool:
        """An outbound packet fits this selector: source local, destination remote."""
        return self._in(src, self.local) and self._in(dst, self.remote)

    def matches_inbound(self, src: Address, dst: Address) -> bool:
        """RFC 4301 §5.2: a decrypted packet fits: source remote, destination local."""
        return self._in(src, self.remote) and self._in(dst, self.local)

    def describe(self) -> str:
        def side(nets: Sequence[Network]) -> str:
            return ",".join(str(n) for n in nets) or "any"
        return f"{side(self.local)} <-> {side(self.remote)}"


ANY = Selector()


def inner_addresses(packet: bytes) -> Optional[tuple[Address, Address]]:
    """(source, destination) of an IPv4 or IPv6 packet, or None if it is not one."""
    if len(packet) >= 20 and packet[0] >> 4 == 4:
        return (ipaddress.IPv4Address(packet[12:16]), ipaddress.IPv4Address(packet[16:20]))
    if len(packet) >= 40 and packet[0] >> 4 == 6:
        return (ipaddress.IPv6Address(packet[8:24]), ipaddress.IPv6Address(packet[24:40]))
    return None


class RouteTable:
    """Longest-prefix match from a destination to the tunnels (VPN names) behind it.

    Routes are few (one per VPN or traffic selector), so a list sorted by prefix length is
    enough; a bounded per-destination cache keeps bursts of one flow cheap.
    """

    def __init__(self, cache_size: int = 4096) -> None:
        self._routes: list[tuple[Network, tuple[str, ...]]] = []
        self._cache: dict[Address, tuple[str, ...]] = {}
        self._cache_size = cache_size
        self._sorted = True
        self._index: Optional[dict] = None

    def __len__(self) -> int:
        return len(self._routes)

    def add(self, prefix: Union[str, Network], tunnels: Sequence[str]) -> None:
        """Route `prefix` to `tunnels` (tried in order); a prefix already present gets the new
        tunnels appended."""
        net = _net(prefix)
        i = self._where.get(net)
        if i is not None:
            n, names = self._routes[i]
            self._routes[i] = (n, names + tuple(t for t in tunnels if t not in names))
        else:
            self._routes.append((net, tuple(tunnels)))
            self._sorted = False
        self._cache.clear()

    def _sort(self) -> None:
        """Longest prefix first (sorted lazily: thousands of VPNs add routes one by one)."""
        self._routes.sort(key=lambda r: (r[0].version, -r[0].prefixlen))
        self._sorted = True
        self._index = None

    @property
    def _where(self) -> dict:
        if not self._sorted:
            self._sort()
        if self._index is None or len(self._index) != len(self._routes):
            self._index = {n: i for i, (n, _) in enumerate(self._routes)}
        return self._index

    def remove_tunnel(self, name: str) -> None:
        routes = []
        for net, names in self._routes:
            names = tuple(n for n in names if n != name)
            if names:
                routes.append((net, names))
        self._routes = routes
        self._index = None
        self._cache.clear()

    def lookup(self, dst: Address) -> tuple[str, ...]:
        """The tunnels of the longest matching prefix (empty: no route into a tunnel)."""
        hit = self._cache.get(dst)
        if hit is not None:
            return hit
        result: tuple[str, ...] = ()
        if not self._sorted:
            self._sort()
        for net, names in self._routes:
            if net.version == dst.version and dst in net:
                result = names
                break
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[dst] = result
        return result

    def routes(self) -> list[tuple[str, tuple[str, ...]]]:
        if not self._sorted:
            self._sort()
        return [(str(n), names) for n, names in self._routes]

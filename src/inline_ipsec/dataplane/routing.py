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
from typing import Callable, Iterable, Optional, Protocol, Sequence, Union, runtime_checkable

__all__ = ["Selector", "RouteTable", "inner_addresses", "ANY"]

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


def _net(prefix: Union[str, Network]) -> Network:
    return ipaddress.ip_network(prefix, strict=False)


@runtime_checkable
class AddressRange(Protocol):
    """An inclusive range of addresses, as an IKE traffic selector carries one (RFC 7296
    §3.13.1: starting and ending address); the data plane reads it without importing IKE."""

    start_addr: object
    end_addr: object


def _nets(items: Iterable[object]) -> tuple[Network, ...]:
    out: list[Network] = []
    for item in items:
        if isinstance(item, AddressRange):
            out += ipaddress.summarize_address_range(ipaddress.ip_address(item.start_addr),
                                                     ipaddress.ip_address(item.end_addr))
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


def address_key(packet: bytes) -> Optional[bytes]:
    """Source and destination address bytes of an IPv4 or IPv6 packet (the key of the
    gateway's routing caches), or None if it is not one."""
    if len(packet) >= 20 and packet[0] >> 4 == 4:
        return packet[12:20]
    if len(packet) >= 40 and packet[0] >> 4 == 6:
        return packet[8:40]
    return None


class RouteTable:
    """Longest-prefix match from a destination to the tunnels (VPN names) behind it.

    Routes are few (one per VPN or traffic selector), so a list sorted by prefix length is
    enough; a bounded per-destination cache keeps bursts of one flow cheap. This table is the
    control plane's copy: `listener(network, tunnels)` is called for every prefix whose tunnels
    change (an empty tuple: the prefix is gone), and the gateway mirrors it into the C FIB of
    its forwarding pipeline.
    """

    def __init__(self, cache_size: int = 4096) -> None:
        self.listener: Optional[Callable[[Network, tuple[str, ...]], None]] = None
        #: prefix -> its tunnels, in insertion order (adding a route is O(1): thousands of
        #: VPNs add theirs one by one as their SAs come up)
        self._by_net: dict[Network, tuple[str, ...]] = {}
        #: the same, longest prefix first, rebuilt lazily after a change
        self._routes: list[tuple[Network, tuple[str, ...]]] = []
        self._cache: dict[Address, tuple[str, ...]] = {}
        self._cache_size = cache_size
        self._sorted = True

    def __len__(self) -> int:
        return len(self._by_net)

    def add(self, prefix: Union[str, Network], tunnels: Sequence[str]) -> None:
        """Route `prefix` to `tunnels` (tried in order); a prefix already present gets the new
        tunnels appended."""
        net = _net(prefix)
        names = self._by_net.get(net)
        if names is not None:
            names = names + tuple(t for t in tunnels if t not in names)
        else:
            names = tuple(tunnels)
        self._by_net[net] = names
        self._sorted = False
        self._cache.clear()
        if self.listener is not None:
            self.listener(net, names)

    def _sort(self) -> None:
        """Longest prefix first (sorted lazily: thousands of VPNs add routes one by one)."""
        self._routes = sorted(self._by_net.items(),
                              key=lambda r: (r[0].version, -r[0].prefixlen))
        self._sorted = True

    def remove_tunnel(self, name: str) -> None:
        by_net = {}
        changed = []
        for net, names in self._by_net.items():
            kept = tuple(n for n in names if n != name)
            if kept != names:
                changed.append((net, kept))
            if kept:
                by_net[net] = kept
        self._by_net = by_net
        self._sorted = False
        self._cache.clear()
        if self.listener is not None:
            for net, kept in changed:
                self.listener(net, kept)

    def clear(self) -> None:
        """Remove every route (the listener hears each prefix go)."""
        gone = list(self._by_net)
        self._by_net = {}
        self._routes = []
        self._sorted = True
        self._cache.clear()
        if self.listener is not None:
            for net in gone:
                self.listener(net, ())

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

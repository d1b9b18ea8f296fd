"""`Gateway`: configuration -> SA distribution -> engines -> statistics, sans-I/O.

A gateway takes packets and returns packets; it never touches a socket or a clock it was not
given (links and the control socket are thin adapters in `link.py` and `control.py`).

    gw = Gateway(load_config(text), name="gw-a")      # manual SAs are installed at once
    gw.install_child_sa("vpn-1", outbound_spec, inbound_spec)   # what IKE calls (or pre-keying)
    out = gw.outbound(inner_packets)    # out.wire: ESP/AH packets; out.local: ICMP errors
    back = peer.inbound(out.wire)       # back.delivered: inner packets; back.ike: IKE datagrams

Outbound (RFC 4301 §5.1): route lookup (static routes to st0.N -> VPN bound to st0.N, or the
traffic selectors' remote networks) -> tunnel -> child SA pair whose selector matches ->
tunnel MTU (RFC 4301 §8: pre-fragment an IPv4 packet with DF clear, RFC 791; otherwise drop it
and answer ICMP type 3 code 4, RFC 792/1191, or ICMPv6 Packet Too Big, RFC 4443 §3.2) ->
packets grouped per engine, one `encrypt_burst` per engine per burst.

Inbound (RFC 4301 §5.2): outer IPv4 fragments reassembled (RFC 791) -> UDP 500 and UDP 4500
behind the non-ESP marker go to IKE, a 0xFF byte is a NAT-T keepalive (RFC 3948 §2.2-2.3) ->
SPI lookup over every engine's inbound SAs (RFC 4303 §3.4.2) -> one `decrypt_burst` per engine
-> the inner packet is checked against the selectors of the SA it came on (RFC 4301 §5.2 step
4, "TS check fail").
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import ipaddress
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Optional, Sequence

from ..config import Config, load_config, load_config_file, manual_sa_args
from ..config.model import IpsecVpn
from ..cpu import CpuEngine
from ..control.distribution import Distributor, SaPair, Tunnel, TunnelRecord, tunnel_from_config
from ..engine import Status
from ..errors import ConfigError
from ..packet.burst import DEFAULT_HEADROOM, Burst
from ..packet.fragment import (FragmentError, Reassembler, fragment_ipv4,
                               icmp_fragmentation_needed, icmpv6_packet_too_big, is_fragment)
from ..pfe import Pfe
from ..sa import SaSpec
from .counters import GatewayCounters, TunnelFlow
from .demux import IkeDatagram, classify_outer
from .mtu import max_inner_length
from .routing import ANY, RouteTable, Selector, inner_addresses

if TYPE_CHECKING:
    from ..control.ike_control import IkeControl

__all__ = ["Gateway", "Output", "IkeDatagram", "DEFAULT_MTU"]

DEFAULT_MTU = 1500
_H = struct.Struct("!H")
_OK = int(Status.OK)
_FROM_CONFIG = object()


@dataclass
class Output:
    """What one `outbound` or `inbound` call produced."""

    #: outer (ESP/AH) packets for the peer
    wire: list[bytes] = field(default_factory=list)
    #: packets for the local side: ICMP errors to the sender (outbound) ...
    local: list[bytes] = field(default_factory=list)
    #: ... and decrypted inner packets (inbound)
    delivered: list[bytes] = field(default_factory=list)
    #: IKE messages that arrived on the data path (also passed to the IKE handler)
    ike: list[IkeDatagram] = field(default_factory=list)
    dropped: int = 0


@dataclass
class _Tunnel:
    name: str
    selectors: list[Selector]
    sa_type: str
    flow: TunnelFlow


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


class Gateway:
    """One SRX: its PFEs, its CPU engine, its tunnels and counters.

    `config` is a validated `Config` (or None for a gateway built from Python objects only).
    `license` and `hw_offload_disable` default to the configuration's. `ike_handler` is called
    with every `IkeDatagram` that arrives on the data path (they are also queued in `ike_queue`
    and returned in `Output.ike`). `clock` stamps tunnel events and dates the license.
    """

    def __init__(self, config: Optional[Config] = None, *, name: str = "gw", pfes: int = 2,
                 mtu: int = DEFAULT_MTU, license: object = _FROM_CONFIG,
                 hw_offload_disable: Optional[bool] = None,
                 ike_handler: Optional[Callable[[IkeDatagram], None]] = None,
                 clock: Callable[[], _dt.datetime] = _utcnow, install_manual: bool = True,
                 max_burst: int = 256, sa_limit: Optional[int] = None,
                 pfe_backend: Optional[str] = None) -> None:
        if mtu < 68:
            raise ValueError("the tunnel MTU must be at least 68 (RFC 791)")
        self.config = config if config is not None else Config()
        self.name = name
        self.mtu = mtu
        self.clock = clock
        self.max_burst = max_burst
        self.ike_handler = ike_handler
        self.ike_queue: deque[IkeDatagram] = deque(maxlen=1024)
        # pfe_backend: "openssl", "ipsec-mb" or "auto" (see Pfe); None: the default
        self.pfes = [Pfe(f"{name}.pfe{i}", backend=pfe_backend) for i in range(pfes)]
        self.cpu = CpuEngine(f"{name}.cpu")
        self.engines: list = [*self.pfes, self.cpu]
        lic = self.config.license if license is _FROM_CONFIG else license
        hw_off = self.config.hw_offload_disable if hw_offload_disable is None \
            else hw_offload_disable
        kw = {} if sa_limit is None else {"sa_limit": sa_limit}
        self.distributor = Distributor(self.pfes, self.cpu, license=lic,  # type: ignore[arg-type]
                                       hw_offload_disable=hw_off, clock=clock, **kw)
        self.counters = GatewayCounters()
        self.routes = RouteTable()
        self._tunnels: dict[str, _Tunnel] = {}
        self._spi_index: dict[int, tuple[int, str]] = {}
        self._in_index: dict[tuple[int, int], Optional[int]] = {}
        self._retired: list[tuple[str, str, object]] = []
        self._bursts: dict[int, Burst] = {}
        self._outer_frags = Reassembler()
        self._sessions: set[tuple] = set()
        self._route_cache: dict[bytes, Optional[tuple[_Tunnel, SaPair, int, int]]] = {}
        self._ts_cache: dict[tuple[int, int, bytes], bool] = {}
        #: IKE control plane (`ike_control.IkeControl`), set by `enable_ike`; and the hook
        #: called with a VPN name when a packet is routed to a VPN without SAs (on-traffic).
        self.ike: Optional["IkeControl"] = None
        self.tunnel_trigger: Optional[Callable[[str], None]] = None
        self._routes_from_config()
        if install_manual:
            self.install_manual_sas()

    # -- construction helpers ----------------------------------------------------------------

    @classmethod
    def from_text(cls, text: str, **kw: object) -> "Gateway":
        """A gateway from Junos `set` statements (`load_config`)."""
        return cls(load_config(text), **kw)  # type: ignore[arg-type]

    @classmethod
    def from_file(cls, path: str, **kw: object) -> "Gateway":
        return cls(load_config_file(path), **kw)  # type: ignore[arg-type]

    def enable_ike(self, **kw: object) -> "IkeControl":
        """Run IKEv2 for the IKE VPNs: `ike_control.IkeControl` (sans-I/O), also `gw.ike`."""
        from ..control.ike_control import IkeControl
        return IkeControl(self, **kw)  # type: ignore[arg-type]

    def _routes_from_config(self) -> None:
        cfg = self.config
        for route in cfg.static_routes:
            vpns = [v.name for v in cfg.ipsec_vpns.values()
                    if v.bind_interface == route.next_hop]
            if vpns:
                self.routes.add(route.prefix, vpns)
        for v in cfg.ipsec_vpns.values():
            for ts in v.traffic_selectors:           # Junos auto route insertion
                if ts.remote_ip:
                    self.routes.add(ts.remote_ip, [v.name])

    def _config_selectors(self, vpn: Optional[IpsecVpn]) -> list[Selector]:
        if vpn is None or not vpn.traffic_selectors:
            return []
        return [Selector.of([ts.local_ip] if ts.local_ip else [],
                            [ts.remote_ip] if ts.remote_ip else [])
                for ts in vpn.traffic_selectors]

    def local_address(self, vpn: IpsecVpn) -> Optional[str]:
        """The outer source address of a manual-SA VPN (its external interface's address)."""
        m = vpn.manual
        if m is None:
            return None
        return self.config.interface_address(m.external_interface, m.gateway)

    # -- install / rekey / remove (what IKE drives) ------------------------------------------

    def install_manual_sas(self) -> list[str]:
        """Install every VPN's manual (static) SA from the configuration; returns their names.
        Junos uses the one configured SPI and keys in both directions."""
        done = []
        for vpn in self.config.ipsec_vpns.values():
            if vpn.manual is None or vpn.name in self.distributor:
                continue
            out = SaSpec(**manual_sa_args(self.config, vpn, "outbound"))
            inb = SaSpec(**manual_sa_args(self.config, vpn, "inbound"))
            self.install_child_sa(vpn.name, out, inb, sa_type="manual")
            done.append(vpn.name)
        return done

    def establish_prekeyed(self, vpns: Optional[Iterable[str]] = None, *,
                           udp_encap: Iterable[str] = ()) -> list[str]:
        """Bring IKE VPNs up with pre-keyed child SAs instead of IKE (`keying.establish`:
        both ends derive the same SAs from the pre-shared key); returns the VPNs."""
        from ..control.keying import establish
        return establish(self, vpns, udp_encap)

    def install_child_sa(self, vpn: str, outbound: SaSpec, inbound: SaSpec, *,
                         local_ts: Optional[Sequence[object]] = None,
                         remote_ts: Optional[Sequence[object]] = None,
                         sa_type: str = "dynamic") -> SaPair:
        """Install one negotiated child SA pair of `vpn` (RFC 7296 §1.3). The first pair places
        the tunnel (docs/design.md Table 1) and installs it on a PFE or the CPU engine; later pairs
        join it on the same engine. `local_ts`/`remote_ts` (prefixes) are the pair's
        negotiated selectors; by default the VPN's configured traffic selector for this child,
        or any. A VPN not in the configuration is routed by its `remote_ts`."""
        if inbound.spi in self._spi_index:
            raise ConfigError(f"an inbound SA with SPI 0x{inbound.spi:08x} is installed "
                              "already (RFC 4301 §4.1: the SPI names the SA)")
        cfg_vpn = self.config.ipsec_vpns.get(vpn)
        info = self._tunnels.get(vpn)
        if vpn not in self.distributor:
            if cfg_vpn is not None:
                tunnel = tunnel_from_config(self.config, cfg_vpn, udp_encap=outbound.udp_encap)
                # the negotiated transforms, which may be any proposal of the policy
                tunnel = dataclasses.replace(
                    tunnel, protocol=outbound.protocol, cipher=outbound.cipher,
                    replay_window=outbound.replay_window,
                    lifetime_kilobytes=(outbound.lifetime.hard_kilobytes
                                        or tunnel.lifetime_kilobytes))
            else:
                tunnel = Tunnel.from_spec(outbound, name=vpn)
            rec = self.distributor.install(vpn, tunnel, outbound, inbound)
            pair = rec.pairs[0]
            info = _Tunnel(vpn, self._config_selectors(cfg_vpn), sa_type,
                           TunnelFlow(vpn, rec.offloaded))
            self._tunnels[vpn] = info
        else:
            pair = self.distributor.add_child(vpn, outbound, inbound)
            assert info is not None
        index = len(self.distributor.tunnel(vpn).pairs) - 1
        if local_ts is not None or remote_ts is not None:
            sel = Selector.of(local_ts or (), remote_ts or ())
            while len(info.selectors) <= index:
                info.selectors.append(ANY)
            info.selectors[index] = sel
            if cfg_vpn is None:
                for net in sel.remote:
                    self.routes.add(net, [vpn])
        self._index_tunnel(vpn)     # only adds SAs: no full rebuild (2000 tunnels, IKE)
        return pair

    def _index_tunnel(self, vpn: str) -> None:
        rec = self.distributor.tunnel(vpn)
        e = self._engine_index(rec.engine)
        for i, p in enumerate(rec.pairs):
            self._spi_index[p.inbound.spi] = (e, rec.name)
            self._in_index[(e, p.inbound_handle)] = i
        self._route_cache.clear()
        self._ts_cache.clear()

    def rekey(self, vpn: str, outbound: SaSpec, inbound: SaSpec, *, pair_index: int = 0,
              reason: Optional[str] = None) -> SaPair:
        """Replace a child SA pair, make-before-break (RFC 7296 §2.8; `Distributor.rekey`):
        the old inbound SA keeps decrypting until `expire_drained`/`finish_drain`."""
        if inbound.spi in self._spi_index:
            raise ConfigError(f"an inbound SA with SPI 0x{inbound.spi:08x} is installed already")
        rec = self.distributor.tunnel(vpn)
        old = rec.pairs[pair_index]
        self._retire(rec, [("outbound", old.outbound, old.outbound_handle)])
        pair = self.distributor.rekey(vpn, outbound, inbound, pair_index=pair_index,
                                      reason=reason)
        self._reindex()
        return pair

    def expire_drained(self) -> list[tuple[str, int]]:
        """Remove the old inbound SAs whose drain time has passed (after a rekey)."""
        now = self.clock()
        for rec in self.distributor.tunnels():
            self._retire(rec, [("inbound", d.spec, d.handle) for d in rec.draining
                               if d.deadline <= now])
        removed = self.distributor.expire_drained(now)
        if removed:
            self._reindex()
        return removed

    def finish_drain(self, vpn: str) -> list[int]:
        rec = self.distributor.tunnel(vpn)
        self._retire(rec, [("inbound", d.spec, d.handle) for d in rec.draining])
        spis = self.distributor.finish_drain(vpn)
        self._reindex()
        return spis

    def remove(self, vpn: str, reason: str = "the tunnel was removed") -> TunnelRecord:
        """Remove a tunnel and all its SAs (IKE: delete or hard lifetime, RFC 7296 §1.4.1).
        Its counters stay in the gateway's statistics."""
        rec = self.distributor.tunnel(vpn)
        sas = []
        for p in rec.pairs:
            sas += [("outbound", p.outbound, p.outbound_handle),
                    ("inbound", p.inbound, p.inbound_handle)]
        sas += [("inbound", d.spec, d.handle) for d in rec.draining]
        self._retire(rec, sas)
        final = self.distributor.remove(vpn, reason)
        self._tunnels.pop(vpn, None)
        if vpn not in self.config.ipsec_vpns:
            self.routes.remove_tunnel(vpn)
        self._reindex()
        return final

    def remove_child_sa(self, vpn: str, spi_in: int,
                        reason: str = "received DEL notification from peer") -> None:
        """Remove the child SA pair (or draining old inbound SA) whose inbound SPI is `spi_in`
        (RFC 7296 §1.4.1); the tunnel goes with its last pair."""
        rec = self.distributor.tunnel(vpn)
        if any(d.spec.spi == spi_in for d in rec.draining):
            self.finish_drain(vpn)
            return
        index = [p.inbound.spi for p in rec.pairs].index(spi_in)
        if len(rec.pairs) == 1:
            self.remove(vpn, reason)
            return
        p = rec.pairs[index]
        self._retire(rec, [("outbound", p.outbound, p.outbound_handle),
                           ("inbound", p.inbound, p.inbound_handle)])
        self.distributor.remove_child(vpn, index, reason)
        info = self._tunnels[vpn]
        if index < len(info.selectors):
            del info.selectors[index]
        self._reindex()

    def handle_ike_event(self, vpn: str, event: object, local_address: str,
                         remote_address: str) -> bool:
        """Apply an IKE event (`inline_ipsec.ike.events`: ChildSaUp, ChildSaRekeyed,
        ChildSaDown) to the data plane; False for events that do not concern it."""
        from ..control.negotiated import apply_ike_event
        return apply_ike_event(self, vpn, event, local_address, remote_address)

    def _retire(self, rec: TunnelRecord, sas: list[tuple[str, SaSpec, int]]) -> None:
        for direction, spec, handle in sas:
            self._retired.append((direction, spec.protocol, rec.engine.counters(handle)))

    def _engine_index(self, engine: object) -> int:
        for i, e in enumerate(self.engines):
            if e is engine:
                return i
        raise KeyError(engine)

    def _reindex(self) -> None:
        """Rebuild the SPI -> (engine, tunnel) and (engine, handle) -> pair indexes."""
        self._spi_index.clear()
        self._in_index.clear()
        self._route_cache.clear()
        self._ts_cache.clear()
        for rec in self.distributor.tunnels():
            e = self._engine_index(rec.engine)
            for i, p in enumerate(rec.pairs):
                self._spi_index[p.inbound.spi] = (e, rec.name)
                self._in_index[(e, p.inbound_handle)] = i
            for d in rec.draining:
                self._spi_index[d.spec.spi] = (e, rec.name)
                self._in_index[(e, d.handle)] = None

    # -- queries -------------------------------------------------------------------------------

    def tunnel_names(self) -> list[str]:
        return [r.name for r in self.distributor.tunnels()]

    def tunnel(self, vpn: str) -> TunnelRecord:
        return self.distributor.tunnel(vpn)

    def tunnel_flow(self, vpn: str) -> TunnelFlow:
        """The flow counters of one tunnel (`TunnelFlow`)."""
        return self._tunnels[vpn].flow

    def flows(self) -> list[TunnelFlow]:
        return [t.flow for t in self._tunnels.values()]

    def selectors(self, vpn: str) -> list[Selector]:
        return list(self._tunnels[vpn].selectors)

    def sa_type(self, vpn: str) -> str:
        return self._tunnels[vpn].sa_type

    def retired_sa_counters(self) -> list[tuple[str, str, object]]:
        return list(self._retired)

    # -- outbound ------------------------------------------------------------------------------

    def _route(self, key: bytes) -> Optional[tuple[_Tunnel, SaPair, int, int]]:
        """Route lookup for the inner (source, destination) bytes `key`: (tunnel, child SA
        pair, engine index, largest inner packet that fits the tunnel MTU), or None. Results
        are cached per address pair until the tunnels change."""
        half = len(key) // 2
        src, dst = ipaddress.ip_address(key[:half]), ipaddress.ip_address(key[half:])
        result = None
        triggered = False
        for name in self.routes.lookup(dst):
            info = self._tunnels.get(name)
            if info is None or name not in self.distributor:
                if self.tunnel_trigger is not None:     # on-traffic establishment
                    self.tunnel_trigger(name)
                    triggered = True
                continue
            rec = self.distributor.tunnel(name)
            for i, pair in enumerate(rec.pairs):
                sel = info.selectors[i] if i < len(info.selectors) else ANY
                if sel.matches_outbound(src, dst):
                    result = (info, pair, self._engine_index(rec.engine),
                              max_inner_length(pair.outbound, self.mtu))
                    break
            if result is not None:
                break
        if len(self._route_cache) >= 65536:
            self._route_cache.clear()
        if result is not None or not triggered:
            self._route_cache[key] = result
        return result

    def outbound(self, packets: Sequence[bytes]) -> Output:
        """Encrypt inner IP packets into their tunnels (module docstring)."""
        c = self.counters
        out = Output()
        jobs: dict[int, list[tuple[int, bytes, int, _Tunnel]]] = {}
        slots = 0
        cache = self._route_cache
        for pkt in packets:
            c.inner_received += 1
            n = len(pkt)
            v = pkt[0] >> 4 if n else 0
            if v == 4 and n >= 20:
                key = pkt[12:20]
            elif v == 6 and n >= 40:
                key = pkt[8:40]
            else:
                c.malformed_inner += 1
                out.dropped += 1
                continue
            hit = cache.get(key, False)
            if hit is False:
                hit = self._route(key)
            if hit is None:
                c.no_route += 1
                out.dropped += 1
                continue
            info, pair, e, limit = hit
            info.flow.out_packets += 1
            if len(self._sessions) < 65536:
                self._sessions.add((key, pkt[9] if v == 4 else pkt[6]))
            items = [pkt]
            if n > limit:
                items = self._too_big(pkt, limit, info, out)
                if not items:
                    continue
            for item in items:
                jobs.setdefault(e, []).append((slots, item, pair.outbound_handle, info))
                slots += 1
        results: list[Optional[bytes]] = [None] * slots
        for e, job in jobs.items():
            engine = self.engines[e]
            path = c.paths[engine.kind]
            for start in range(0, len(job), self.max_burst):
                chunk = job[start:start + self.max_burst]
                burst = self._burst(e, [j[1] for j in chunk], [j[2] for j in chunk])
                t0 = time.perf_counter()
                engine.encrypt_burst(burst)
                path.seconds += time.perf_counter() - t0
                path.burst_calls += 1
                status = burst.status
                for i, (slot, _, _, info) in enumerate(chunk):
                    if status[i] == _OK:
                        results[slot] = burst.packet(i)
                        info.flow.out_encrypted += 1
                        path.encrypted += 1
                    else:
                        info.flow.out_engine_drops += 1
                        path.encrypt_drops += 1
                        out.dropped += 1
        out.wire = [r for r in results if r is not None]
        c.transmitted_outer += len(out.wire)
        return out

    def _too_big(self, pkt: bytes, limit: int, info: _Tunnel, out: Output) -> list[bytes]:
        """RFC 4301 §8: an IPv4 packet with DF clear is fragmented before encryption (RFC 791);
        otherwise it is dropped and the sender gets ICMP type 3 code 4 (RFC 792, RFC 1191) or
        ICMPv6 Packet Too Big (RFC 4443 §3.2) carrying the tunnel's inner MTU."""
        c = self.counters
        if pkt[0] >> 4 == 4 and not pkt[6] & 0x40:
            try:
                frags = fragment_ipv4(pkt, limit)
            except FragmentError:
                frags = []
            if frags:
                info.flow.out_fragments += len(frags) - 1
                c.pre_fragments += len(frags)
                return frags
        info.flow.out_mtu_drops += 1
        c.exceeds_tunnel_mtu += 1
        out.dropped += 1
        icmp = self._icmp_too_big(pkt, limit)
        if icmp is not None:
            out.local.append(icmp)
            c.icmp_sent += 1
        return []

    def icmp_source(self, version: int) -> Optional[str]:
        """The address ICMP errors come from: an st0 address of the family, else any
        configured interface address of the family."""
        ifaces = sorted(self.config.interface_addresses.items(),
                        key=lambda kv: not kv[0].startswith("st0."))
        for _, prefixes in ifaces:
            for p in prefixes:
                iface = ipaddress.ip_interface(p)
                if iface.version == version:
                    return str(iface.ip)
        return None

    def _icmp_too_big(self, pkt: bytes, mtu: int) -> Optional[bytes]:
        if pkt[0] >> 4 == 4:
            src = self.icmp_source(4) or "0.0.0.0"
            ihl = (pkt[0] & 15) * 4
            if pkt[9] == 1 and len(pkt) > ihl and pkt[ihl] in (3, 4, 5, 11, 12):
                return None     # no ICMP error about an ICMP error (RFC 1122 §3.2.2)
            return icmp_fragmentation_needed(pkt, mtu, src)
        src = self.icmp_source(6) or "::"
        return icmpv6_packet_too_big(pkt, mtu, src)

    def _burst(self, e: int, packets: list[bytes], handles) -> Burst:
        longest = max(len(p) for p in packets)
        slot = max(2048, DEFAULT_HEADROOM + longest + 128)
        burst = self._bursts.get(e)
        if burst is None or burst.capacity < len(packets) or burst.slot_size < slot:
            burst = Burst(max(len(packets), 64), slot)
            self._bursts[e] = burst
        burst.load(packets, handles)
        return burst

    # -- inbound -------------------------------------------------------------------------------

    def inbound(self, packets: Sequence[bytes]) -> Output:
        """Decrypt outer packets from the peer (module docstring)."""
        c = self.counters
        out = Output()
        jobs: dict[int, list[tuple[int, bytes, str]]] = {}
        slots = 0
        for pkt in packets:
            c.outer_received += 1
            kind, value = classify_outer(pkt, self._outer_frags, self.counters)
            if kind == "fragment":
                continue
            if kind == "ike":
                c.ike_packets += 1
                out.ike.append(value)
                self.ike_queue.append(value)
                if self.ike_handler is not None:
                    self.ike_handler(value)
                continue
            if kind == "keepalive":
                c.nat_keepalives += 1
                continue
            if kind == "bad":
                c.malformed_outer += 1
                out.dropped += 1
                continue
            spi, pkt = value
            hit = self._spi_index.get(spi)
            if hit is None:
                c.invalid_spi += 1
                out.dropped += 1
                continue
            e, name = hit
            self._tunnels[name].flow.in_packets += 1
            jobs.setdefault(e, []).append((slots, pkt, name))
            slots += 1
        results: list[Optional[bytes]] = [None] * slots
        for e, job in jobs.items():
            engine = self.engines[e]
            path = c.paths[engine.kind]
            for start in range(0, len(job), self.max_burst):
                chunk = job[start:start + self.max_burst]
                burst = self._burst(e, [j[1] for j in chunk], -1)
                t0 = time.perf_counter()
                engine.decrypt_burst(burst)
                path.seconds += time.perf_counter() - t0
                path.burst_calls += 1
                for i, (slot, _, name) in enumerate(chunk):
                    results[slot] = self._after_decrypt(e, burst, i, self._tunnels[name],
                                                        path, out)
        out.delivered = [r for r in results if r is not None]
        c.delivered_inner += len(out.delivered)
        return out

    def _after_decrypt(self, e: int, burst: Burst, i: int, info: _Tunnel, path, out: Output
                       ) -> Optional[bytes]:
        """Account for packet `i` of a decrypted burst; its inner packet if it is delivered."""
        status = int(burst.status[i])
        flow = info.flow
        if status != _OK:
            flow.in_engine_drops += 1
            flow.in_drop_reasons[Status(status).name] += 1
            path.decrypt_drops += 1
            out.dropped += 1
            return None
        path.decrypted += 1
        inner = burst.packet(i)
        handle = int(burst.sa[i])
        v = inner[0] >> 4 if inner else 0
        key = inner[12:20] if v == 4 and len(inner) >= 20 else inner[8:40]
        ok = self._ts_cache.get((e, handle, key))
        if ok is None:
            ok = self._ts_ok(e, handle, inner, info)
            if len(self._ts_cache) >= 65536:
                self._ts_cache.clear()
            self._ts_cache[(e, handle, key)] = ok
        if not ok:                                   # RFC 4301 §5.2 step 4
            flow.in_ts_fail += 1
            self.counters.ts_check_fail += 1
            out.dropped += 1
            return None
        flow.in_delivered += 1
        if len(self._sessions) < 65536:
            self._sessions.add((key, inner[9] if v == 4 else inner[6]))
        if is_fragment(inner):
            self.counters.fragments_received += 1
        return inner

    def _ts_ok(self, e: int, handle: int, inner: bytes, info: _Tunnel) -> bool:
        """RFC 4301 §5.2 step 4: the inner packet matches the selector of the SA it came on
        (a draining SA after a rekey: any of the tunnel's selectors)."""
        addrs = inner_addresses(inner)
        if addrs is None:
            return False
        pair_index = self._in_index.get((e, handle))
        if pair_index is not None and pair_index < len(info.selectors):
            return info.selectors[pair_index].matches_inbound(*addrs)
        if info.selectors and pair_index is None:
            return any(s.matches_inbound(*addrs) for s in info.selectors)
        return True

    # -- statistics and show -----------------------------------------------------------------

    def current_sessions(self) -> int:
        return len(self._sessions)

    def show(self, command: str) -> str:
        """Junos show output as text: `gateway.show("security ipsec statistics")`. See
        `gateway.show.SHOW_COMMANDS` for the commands understood."""
        from ..io.show import show
        return show(self, command)

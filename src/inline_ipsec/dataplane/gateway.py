"""`Gateway`: configuration -> SA distribution -> engines -> statistics, sans-I/O.

A gateway takes packets and returns packets; it never touches a socket or a clock it was not
given (links and the control socket are thin adapters in `link.py` and `control.py`).

    gw = Gateway(load_config(text), name="gw-a")      # manual SAs are installed at once
    gw.install_child_sa("vpn-1", outbound_spec, inbound_spec)   # what IKE calls (or pre-keying)
    out = gw.outbound(inner_packets)    # out.wire: ESP/AH packets; out.local: ICMP errors
    back = peer.inbound(out.wire)       # back.delivered: inner packets; back.ike: IKE datagrams

The packet interface takes bursts: `outbound_burst(burst)` / `inbound_burst(burst)` run the
forwarding pipeline in C (`_pfe_core.pipeline`, one call per burst, GIL released) and leave
each packet in its slot with a `Verdict`; `outbound(list)` / `inbound(list)` are a
list-of-bytes convenience on top. The pipeline's tables are filled from the control plane:
the FIB from `routes` (`RouteTable.listener`), the SPI map and tunnels from the distributor's
SPI/SA index (`Distributor.listeners`) and the tunnels' selectors.

Outbound (RFC 4301 §5.1): route lookup (static routes to st0.N -> VPN bound to st0.N, or the
traffic selectors' remote networks; longest prefix) -> tunnel -> child SA pair whose selector
matches -> tunnel MTU -> ESP in the PFE kernel. Punted to Python: packets over the tunnel MTU
(RFC 4301 §8: pre-fragment an IPv4 packet with DF clear, RFC 791; otherwise drop it and answer
ICMP type 3 code 4, RFC 792/1191, or ICMPv6 Packet Too Big, RFC 4443 §3.2), CPU-path tunnels
(one `encrypt_burst` per engine per burst), routes to tunnels without SAs (on-traffic setup).

Inbound (RFC 4301 §5.2): outer header checks -> UDP 500 and UDP 4500 behind the non-ESP
marker go to IKE, a 0xFF byte is a NAT-T keepalive (RFC 3948 §2.2-2.3) -> SPI lookup (RFC 4303
§3.4.2) -> decrypt in the PFE kernel -> the inner packet is checked against the selectors of
the SA it came on (RFC 4301 §5.2 step 4, "TS check fail") -> delivered, or hairpinned when it
is routed into another tunnel. Punted to Python: IKE, outer IPv4 fragments (reassembled,
RFC 791), CPU-path tunnels.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import ipaddress
import struct
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from typing import TYPE_CHECKING, Callable, Iterable, Optional, Sequence

from ..config import Config, load_config, load_config_file, manual_sa_args
from ..config.model import IpsecVpn
from ..cpu import CpuEngine, QatDevice
from ..control.distribution import Distributor, SaPair, Tunnel, TunnelRecord, tunnel_from_config
from ..engine import Status
from ..errors import ConfigError
from ..packet.burst import DEFAULT_HEADROOM, Burst
from ..packet.ip import forwarded
from ..packet.fragment import (FragmentError, Reassembler, fragment_ipv4,
                               icmp_fragmentation_needed, icmpv6_packet_too_big, is_fragment)
from ..pfe import ENGINE_CPU, Pfe, Verdict, new_pipeline, pipeline_arrays
from ..sa import SaSpec
from .counters import GatewayCounters, TunnelFlow
from .demux import IkeDatagram, classify_outer
from .mtu import max_inner_length
from .policy_path import PolicyPath
from .routing import ANY, RouteTable, Selector, address_key, inner_addresses

if TYPE_CHECKING:
    from ..control.ike_control import IkeControl
    from ..pki import PkiStore

__all__ = ["Gateway", "Output", "BurstOutput", "NO_PUNTS", "IkeDatagram", "DEFAULT_MTU",
           "Verdict"]

DEFAULT_MTU = 1500
_H = struct.Struct("!H")
_OK = int(Status.OK)
_FROM_CONFIG = object()
_SKIPPED = int(Verdict.SKIPPED)
_PUNT_MIN, _HAIRPIN = int(Verdict.PUNT_IKE), int(Verdict.PUNT_HAIRPIN)


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


class BurstOutput:
    """What a burst call produced besides the packets left in the burst's slots (whose
    `burst.verdict` says WIRE, DELIVER, a drop or a punt): the results of the punted packets,
    which the Python path handled. `NO_PUNTS` (empty, shared) when nothing was punted."""

    __slots__ = ("wire", "delivered", "local", "ike", "dropped")

    def __init__(self) -> None:
        #: per punted slot: the outer packets made of it (CPU path, pre-fragments, hairpin)
        self.wire: dict[int, list[bytes]] = {}
        #: per punted slot: the inner packet delivered (CPU path)
        self.delivered: dict[int, bytes] = {}
        #: ICMP errors for the local side
        self.local: list[bytes] = []
        #: IKE messages that arrived (also passed to the IKE handler)
        self.ike: list[IkeDatagram] = []
        #: packets the Python path dropped
        self.dropped = 0

    def __repr__(self) -> str:
        return (f"BurstOutput(wire={len(self.wire)} slots, delivered={len(self.delivered)}, "
                f"local={len(self.local)}, ike={len(self.ike)}, dropped={self.dropped})")


#: The output of a burst call that punted nothing (never mutated: only the Python path fills
#: an output, and it runs only when something was punted).
NO_PUNTS = BurstOutput()


def _c_nets(nets: Sequence[object]) -> list[tuple[int, int, bytes]]:
    return [(n.version, n.prefixlen, n.network_address.packed)  # type: ignore[attr-defined]
            for n in nets]


def _add_deltas(target: object, now: dict, last: dict) -> None:
    """Add what a C counter struct counted since `last` to the same-named fields."""
    for name, value in now.items():
        d = value - last.get(name, 0)
        if d and hasattr(target, name):
            setattr(target, name, getattr(target, name) + d)
        last[name] = value


@dataclass
class _Tunnel:
    name: str
    selectors: list[Selector]
    sa_type: str
    flow: TunnelFlow
    #: the configured VPN this tunnel belongs to (an AutoVPN spoke's, a shortcut's)
    config_vpn: Optional[str] = None


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
                 pfe_backend: Optional[str] = None, hairpin: bool = True,
                 python_path: bool = False) -> None:
        if mtu < 68:
            raise ValueError("the tunnel MTU must be at least 68 (RFC 791)")
        self.config = config if config is not None else Config()
        self.name = name
        self._mtu = mtu                 # checked above; the setter also reloads the pipeline
        self.clock = clock
        self.max_burst = max_burst
        self.ike_handler = ike_handler
        #: The certificates and keys the runner loaded (`pki.PkiStore`, `--pki-dir`): IKE's
        #: credentials and `show security pki`; None without a PKI directory.
        self.pki: Optional["PkiStore"] = None
        self.ike_queue: deque[IkeDatagram] = deque(maxlen=1024)
        # pfe_backend: "openssl", "ipsec-mb" or "auto" (see Pfe); None: the default
        self.pfes = [Pfe(f"{name}.pfe{i}", backend=pfe_backend) for i in range(pfes)]
        # PowerMode IPsec and the QAT device model are the CPU path's modes (Junos `set
        # security flow power-mode-ipsec[-qat]`); the PFE is unaffected by either.
        qat = self.config.power_mode_ipsec_qat
        self.cpu = CpuEngine(f"{name}.cpu", pmi=self.config.power_mode_ipsec,
                             qat=None if qat is None else QatDevice(
                                 qat.ring_depth, qat.batch_size, name=f"{name}.qat"))
        self.engines: list = [*self.pfes, self.cpu]
        lic = self.config.license if license is _FROM_CONFIG else license
        hw_off = self.config.hw_offload_disable if hw_offload_disable is None \
            else hw_offload_disable
        kw = {} if sa_limit is None else {"sa_limit": sa_limit}
        self.distributor = Distributor(self.pfes, self.cpu, license=lic,  # type: ignore[arg-type]
                                       hw_offload_disable=hw_off, clock=clock, **kw)
        self._counters = GatewayCounters()
        self._tunnels: dict[str, _Tunnel] = {}
        self._retired: list[tuple[str, str, object]] = []
        self._bursts: dict[object, Burst] = {}
        self._outer_frags = Reassembler()
        self._route_cache: dict[bytes, Optional[tuple[_Tunnel, SaPair, int, int]]] = {}
        self._ts_cache: dict[tuple[str, Optional[int], bytes], bool] = {}
        #: (arrival tunnel, inner source + destination bytes) -> `_hairpin_target`'s answer;
        #: emptied with the route cache, whenever routes, tunnels or SAs change
        self._hairpin_cache: dict[tuple[str, bytes], Optional[str]] = {}
        # The forwarding pipeline (C tables, filled from the routes and the distributor).
        self._pipeline = new_pipeline(self.pfes, hairpin=hairpin)
        # python_path: every packet takes the Python path (the reference the differential
        # tests hold the C pipeline to); never for traffic.
        self._python_path = python_path
        self._tids: dict[str, int] = {}
        self._tid_names: dict[int, str] = {}
        self._free_tids: list[int] = []
        self._next_tid = 0
        self._synced_gw: dict = {}
        self._synced_path: dict = {}
        self._synced_tunnels: dict[int, dict] = {}
        self.routes = RouteTable()
        self.routes.listener = self._route_changed
        self.distributor.listeners.append(self._sas_changed)
        #: IKE control plane (`ike_control.IkeControl`), set by `enable_ike`; and the hook
        #: called with a VPN name when a packet is routed to a VPN without SAs (on-traffic).
        self.ike: Optional["IkeControl"] = None
        self.tunnel_trigger: Optional[Callable[[str], None]] = None
        self._routes_from_config()
        self._forced_python = python_path
        self._policy_stage()        # self.policy: `policy_path.PolicyPath`, or None
        if install_manual:
            self.install_manual_sas()

    @property
    def mtu(self) -> int:
        """The tunnel MTU: outer packets larger than this are not sent (RFC 4301 §8)."""
        return self._mtu

    @mtu.setter
    def mtu(self, value: int) -> None:
        if value < 68:
            raise ValueError("the tunnel MTU must be at least 68 (RFC 791)")
        self._mtu = value
        self._forget_routes()
        for name in self._tunnels:
            self._load_tunnel(name)

    @property
    def hairpin(self) -> bool:
        """Whether a decrypted packet routed into another tunnel is sent on through it
        (hub and spoke) instead of being delivered locally."""
        return self._pipeline.hairpin

    @hairpin.setter
    def hairpin(self, value: bool) -> None:
        self._pipeline.hairpin = value

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

    def _policy_stage(self) -> None:
        self.policy = PolicyPath.for_gateway(self)
        # zones and policies are enforced on the Python path (`policy_path`): the C pipeline
        # has no policy stage, so with one configured every packet is punted
        self._python_path = self._forced_python or self.policy is not None
        self._bind_burst_calls()

    def _bind_burst_calls(self) -> None:
        """On the C pipeline, `outbound_burst` and `inbound_burst` are the pipeline's own
        burst-object calls (bound on the instance): a burst without punts then costs one C
        call, no Python frame; punts come back through `_outbound_punted` /
        `_inbound_punted`. On the Python path the methods below serve."""
        if self._python_path:
            self.__dict__.pop("outbound_burst", None)
            self.__dict__.pop("inbound_burst", None)
            return
        self._pipeline.bind_punts(NO_PUNTS, self._outbound_punted, self._inbound_punted)
        self.outbound_burst = self._pipeline.outbound_burst  # type: ignore[method-assign]
        self.inbound_burst = self._pipeline.inbound_burst  # type: ignore[method-assign]

    def replace_config(self, config: Config) -> None:
        """Take a new configuration (a commit): its routes replace the old ones in the route
        table and the pipeline's FIB, and its zones and policies the policy stage. Tunnels and
        SAs are left as they are (the caller adds and removes them)."""
        self.config = config
        self.routes.clear()
        self._routes_from_config()
        self._forget_routes()
        self._ts_cache.clear()
        self._policy_stage()

    def set_routes(self, entries: Iterable[tuple[str, Sequence[str]]]) -> None:
        """Replace the route table with `entries` (prefix, tunnels in order of preference),
        e.g. from next-hop tunnel binding (`inline_ipsec.hub.nhtb.resolve_routes`)."""
        self.routes.clear()                 # the listener takes every prefix out of the FIB
        for prefix, tunnels in entries:
            self.routes.add(prefix, list(tunnels))
        self._forget_routes()

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
                         sa_type: str = "dynamic", config_vpn: Optional[str] = None) -> SaPair:
        """Install one negotiated child SA pair of `vpn` (RFC 7296 §1.3). The first pair places
        the tunnel (docs/design.md Table 1) and installs it on a PFE or the CPU engine; later pairs
        join it on the same engine. `local_ts`/`remote_ts` (prefixes) are the pair's
        negotiated selectors; by default the VPN's configured traffic selector for this child,
        or any. A VPN not in the configuration is routed by its `remote_ts`. `config_vpn`:
        the configured VPN a tunnel of another name belongs to (one tunnel per spoke of an
        AutoVPN VPN, an ADVPN shortcut): placed with that VPN's settings, routed by whoever
        installs it (`set_routes`)."""
        if self.distributor.lookup_spi(inbound.spi) is not None:
            raise ConfigError(f"an inbound SA with SPI 0x{inbound.spi:08x} is installed "
                              "already (RFC 4301 §4.1: the SPI names the SA)")
        cfg_vpn = self.config.ipsec_vpns.get(config_vpn or vpn)
        info = self._tunnels.get(vpn)
        if vpn not in self.distributor:
            if cfg_vpn is not None:
                tunnel = tunnel_from_config(self.config, cfg_vpn, udp_encap=outbound.udp_encap)
                # the negotiated transforms, which may be any proposal of the policy
                tunnel = dataclasses.replace(
                    tunnel, name=vpn, protocol=outbound.protocol, cipher=outbound.cipher,
                    replay_window=outbound.replay_window,
                    lifetime_kilobytes=(outbound.lifetime.hard_kilobytes
                                        or tunnel.lifetime_kilobytes))
            else:
                tunnel = Tunnel.from_spec(outbound, name=vpn)
            rec = self.distributor.install(vpn, tunnel, outbound, inbound)
            pair = rec.pairs[0]
            info = _Tunnel(vpn, self._config_selectors(cfg_vpn), sa_type,
                           TunnelFlow(vpn, rec.offloaded), config_vpn)
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
            if cfg_vpn is None and config_vpn is None:
                for net in sel.remote:
                    self.routes.add(net, [vpn])
        self._load_tunnel(vpn)      # with its selectors, now that they are set
        self._forget_routes()
        self._ts_cache.clear()
        return pair

    def rekey(self, vpn: str, outbound: SaSpec, inbound: SaSpec, *, pair_index: int = 0,
              reason: Optional[str] = None) -> SaPair:
        """Replace a child SA pair, make-before-break (RFC 7296 §2.8; `Distributor.rekey`):
        the old inbound SA keeps decrypting until `expire_drained`/`finish_drain`."""
        if self.distributor.lookup_spi(inbound.spi) is not None:
            raise ConfigError(f"an inbound SA with SPI 0x{inbound.spi:08x} is installed already")
        rec = self.distributor.tunnel(vpn)
        old = rec.pairs[pair_index]
        self._retire(rec, [("outbound", old.outbound, old.outbound_handle)])
        return self.distributor.rekey(vpn, outbound, inbound, pair_index=pair_index,
                                      reason=reason)

    def expire_drained(self) -> list[tuple[str, int]]:
        """Remove the old inbound SAs whose drain time has passed (after a rekey)."""
        now = self.clock()
        for rec in self.distributor.tunnels():
            self._retire(rec, [("inbound", d.spec, d.handle) for d in rec.draining
                               if d.deadline <= now])
        return self.distributor.expire_drained(now)

    def finish_drain(self, vpn: str) -> list[int]:
        rec = self.distributor.tunnel(vpn)
        self._retire(rec, [("inbound", d.spec, d.handle) for d in rec.draining])
        return self.distributor.finish_drain(vpn)

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
        if vpn not in self.config.ipsec_vpns:
            self.routes.remove_tunnel(vpn)
        final = self.distributor.remove(vpn, reason)
        self._tunnels.pop(vpn, None)
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
        info = self._tunnels[vpn]
        if index < len(info.selectors):
            del info.selectors[index]
        self.distributor.remove_child(vpn, index, reason)

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

    # -- queries -------------------------------------------------------------------------------

    def tunnel_names(self) -> list[str]:
        return [r.name for r in self.distributor.tunnels()]

    def tunnel(self, vpn: str) -> TunnelRecord:
        return self.distributor.tunnel(vpn)

    def tunnel_flow(self, vpn: str) -> TunnelFlow:
        """The flow counters of one tunnel (`TunnelFlow`)."""
        info = self._tunnels[vpn]
        tid = self._tids.get(vpn)
        if tid is not None:
            self._sync_tunnel(tid, info.flow)
        return info.flow

    def flows(self) -> list[TunnelFlow]:
        return [self.tunnel_flow(name) for name in self._tunnels]

    def tunnel_id(self, vpn: str) -> int:
        """The forwarding pipeline's id of a routed or installed tunnel (`Burst.tunnel`)."""
        return self._tids[vpn]

    def selectors(self, vpn: str) -> list[Selector]:
        return list(self._tunnels[vpn].selectors)

    def config_vpn_of(self, name: str) -> str:
        """The configured VPN a tunnel belongs to (its own name for a VPN's only tunnel)."""
        info = self._tunnels.get(name)
        return (info.config_vpn if info is not None else None) or name

    def sa_type(self, vpn: str) -> str:
        return self._tunnels[vpn].sa_type

    def retired_sa_counters(self) -> list[tuple[str, str, object]]:
        return list(self._retired)

    # -- the forwarding pipeline's tables ------------------------------------------------------

    def _tid(self, name: str) -> int:
        """The pipeline's tunnel id of `name`, allocated on first use (a route or an install)."""
        tid = self._tids.get(name)
        if tid is None:
            if self._free_tids:
                tid = self._free_tids.pop()
            else:
                tid = self._next_tid
                if tid >= self._pipeline.max_tunnels:
                    raise ConfigError(f"more than {self._pipeline.max_tunnels} tunnels routed "
                                      "or installed on one gateway")
                self._next_tid += 1
            self._tids[name] = tid
            self._tid_names[tid] = name
            self._synced_tunnels[tid] = {}
            self._pipeline.set_pending(tid)
        return tid

    def _route_changed(self, net: object, names: tuple[str, ...]) -> None:
        """`RouteTable.listener`: mirror one prefix into the C FIB."""
        v, plen = net.version, net.prefixlen  # type: ignore[attr-defined]
        packed = net.network_address.packed  # type: ignore[attr-defined]
        if names:
            self._pipeline.route_set(v, plen, packed, [self._tid(n) for n in names])
        else:
            self._pipeline.route_del(v, plen, packed)
        self._forget_routes()

    def _sas_changed(self, name: str, rec: Optional[TunnelRecord], gone: frozenset[int]) -> None:
        """`Distributor.listeners`: the distributor's SPI/SA index changed for one tunnel;
        mirror it into the pipeline's SPI map and tunnel table."""
        for spi in gone:
            self._pipeline.spi_del(spi)
        self._forget_routes()
        self._ts_cache.clear()
        if rec is not None:
            self._load_tunnel(name)
            return
        tid = self._tids.get(name)
        if tid is None:
            return
        info = self._tunnels.get(name)
        if info is not None:
            self._sync_tunnel(tid, info.flow)
        self._pipeline.clear_tunnel(tid)
        self._synced_tunnels[tid] = {}
        if self._routed(name):
            self._pipeline.set_pending(tid)
        else:
            del self._tids[name], self._tid_names[tid]
            self._free_tids.append(tid)

    def _routed(self, name: str) -> bool:
        return any(name in names for _, names in self.routes.routes())

    def _load_tunnel(self, name: str) -> None:
        """Tunnel `name` as the pipeline needs it: engine, child SA pairs with their outbound
        handle and MTU limit, selectors, and its inbound SPIs (from the distributor)."""
        info = self._tunnels.get(name)
        if info is None or name not in self.distributor:
            return                      # install_child_sa loads it once its selectors are set
        rec = self.distributor.tunnel(name)
        tid = self._tid(name)
        cpu = rec.pfe_index is None
        engine = ENGINE_CPU if cpu else rec.pfe_index
        pairs = [(p.outbound_handle, max_inner_length(p.outbound, self.mtu)) for p in rec.pairs]
        sels = [(_c_nets(s.local), _c_nets(s.remote)) for s in info.selectors]
        self._pipeline.set_tunnel(tid, 0 if cpu else engine, cpu, pairs, sels)
        for i, p in enumerate(rec.pairs):
            self._pipeline.spi_set(p.inbound.spi, tid, engine, i, p.inbound_handle)
        for d in rec.draining:
            self._pipeline.spi_set(d.spec.spi, tid, engine, -1, d.handle)

    # -- counters kept in C, folded into the counter classes when read ----------------------------

    @property
    def counters(self) -> GatewayCounters:
        """The gateway's counters (what the pipeline counted in C included)."""
        self._sync_counters()
        return self._counters

    def _sync_counters(self) -> None:
        pl = self._pipeline
        _add_deltas(self._counters, pl.gateway_counters(), self._synced_gw)
        _add_deltas(self._counters.paths["pfe"], pl.path_counters(), self._synced_path)

    def _sync_tunnel(self, tid: int, flow: TunnelFlow) -> None:
        last = self._synced_tunnels.setdefault(tid, {})
        _add_deltas(flow, self._pipeline.tunnel_counters(tid), last)
        drops = self._pipeline.tunnel_drops(tid)
        for code, value in drops.items():
            key = ("drop", code)
            d = value - last.get(key, 0)
            if d:
                flow.in_drop_reasons[Status(code).name] += d
                last[key] = value

    # -- bursts --------------------------------------------------------------------------------

    def outbound_burst(self, burst: Burst, select: int = -1,
                       ingress: Optional[str] = None) -> "BurstOutput":
        """Route and encrypt the inner packets of `burst` in place (module docstring).

        One C call for the burst (GIL released); `burst.verdict` says per slot what happened
        (`Verdict`: WIRE, a DROP_* or a punt) and `burst.tunnel` the tunnel id. Punted packets
        are handled in Python; what they produced is in the returned `BurstOutput` (`NO_PUNTS`
        when there were none). With `select` >= 0 only the slots whose verdict is `select`
        are processed. `ingress`: the interface the packets came in on, for the security
        policy stage. A gateway is used by one thread at a time: the call takes no lock."""
        if self._python_path:
            return self._all_python(burst, select, inbound=False, ingress=ingress)
        return self._pipeline.outbound_burst(burst, select, ingress)

    def inbound_burst(self, burst: Burst, select: int = -1) -> "BurstOutput":
        """Demultiplex, decrypt, check and route the outer packets of `burst` in place.

        `burst.verdict` per slot: DELIVER (the slot holds the inner packet), WIRE (hairpinned
        into another tunnel), a DROP_* or a punt handled in Python (`BurstOutput`). Pass
        `select=Verdict.WIRE` to take a burst another gateway's `outbound_burst` just filled."""
        if self._python_path:
            return self._all_python(burst, select, inbound=True)
        return self._pipeline.inbound_burst(burst, select)

    def _outbound_punted(self, burst: Burst, ingress: Optional[str]) -> "BurstOutput":
        """The punted slots of an outbound burst, handled in Python."""
        res = BurstOutput()
        self._slow_outbound(self._punted(burst), res, ingress=ingress)
        return res

    def _inbound_punted(self, burst: Burst) -> "BurstOutput":
        """The punted slots of an inbound burst, handled in Python."""
        res = BurstOutput()
        self._inbound_punts(burst, res)
        return res

    def _all_python(self, burst: Burst, select: int, inbound: bool,
                    ingress: Optional[str] = None) -> "BurstOutput":
        """The reference path: every selected packet punted to Python, which counts it
        received too."""
        v = burst.verdict[:burst.count]
        chosen = np.ones(burst.count, bool) if select < 0 else v == select
        v[~chosen] = _SKIPPED
        v[chosen] = _PUNT_MIN
        idx = np.flatnonzero(chosen).tolist()
        items = list(zip(idx, burst.packets_at(idx)))
        res = BurstOutput()
        if inbound:
            self._counters.outer_received += len(items)
            self._slow_inbound(items, res)
        else:
            self._slow_outbound(items, res, received=True, ingress=ingress)
        return res

    @staticmethod
    def _punted_slots(burst: Burst) -> list[int]:
        """The slots of a burst the pipeline punted to Python, in order."""
        v = burst.verdict[:burst.count]
        return np.flatnonzero((v >= _PUNT_MIN) & (v != _SKIPPED)).tolist()

    def _punted(self, burst: Burst) -> list[tuple[int, bytes]]:
        idx = self._punted_slots(burst)
        return list(zip(idx, burst.packets_at(idx)))

    def _inbound_punts(self, burst: Burst, res: "BurstOutput") -> None:
        items = self._punted(burst)
        verdicts = burst.verdict[:burst.count].tolist()
        hairpins = [(i, p) for i, p in items if verdicts[i] == _HAIRPIN]
        others = [(i, p) for i, p in items if verdicts[i] != _HAIRPIN]
        if others:
            self._slow_inbound(others, res)
        if hairpins:
            self._hairpin(hairpins, res)

    def _hairpin(self, items: list[tuple[int, bytes]], res: "BurstOutput") -> None:
        """Send decrypted packets on into the tunnel they are routed to, as a router does
        (RFC 1812 §5.3.1, RFC 8200 §3: TTL or hop limit one less, as the pipeline does); a
        packet whose TTL ends here is dropped and counted."""
        onward = []
        for index, inner in items:
            hop = forwarded(inner)
            if hop is None:
                self._counters.hairpin_ttl_expired += 1
                res.dropped += 1
            else:
                onward.append((index, hop))
        if onward:
            self._slow_outbound(onward, res, received=False)

    def _collect(self, burst: Burst, res: "BurstOutput", out: Output) -> None:
        """Append what a burst call produced to a list-of-bytes `Output`, in slot order: the
        pipeline's own slots copied out in C (`PipelineArrays.collect`), each punted slot's
        results from `res` in its place."""
        n = burst.count
        arrays = pipeline_arrays(burst)
        wire, delivered = out.wire, out.delivered
        if res is NO_PUNTS:                     # the common case: one C call copies them out
            out.dropped += arrays.collect(n, wire, delivered)
            return
        first = 0
        for i in self._punted_slots(burst):
            out.dropped += arrays.collect(i, wire, delivered, first)
            extra = res.wire.get(i)
            if extra:
                wire.extend(extra)
            inner = res.delivered.get(i)
            if inner is not None:
                delivered.append(inner)
            first = i + 1
        out.dropped += arrays.collect(n, wire, delivered, first)
        out.local += res.local
        out.ike += res.ike
        out.dropped += res.dropped

    def _pipeline_burst(self, key: str, packets: Sequence[bytes]) -> Burst:
        burst = self._burst(key, list(packets), -1)
        return burst

    # -- outbound ------------------------------------------------------------------------------

    def outbound(self, packets: Sequence[bytes], ingress: Optional[str] = None) -> Output:
        """Encrypt inner IP packets into their tunnels (module docstring): the list-of-bytes
        form of `outbound_burst`. With security zones configured, `ingress` names the
        interface the packets came in on (default: the interface towards each source)."""
        out = Output()
        for start in range(0, len(packets), self.max_burst):
            burst = self._pipeline_burst("out", packets[start:start + self.max_burst])
            self._collect(burst, self.outbound_burst(burst, ingress=ingress), out)
        return out

    def _route(self, key: bytes) -> Optional[tuple[_Tunnel, SaPair, int, int]]:
        """Route lookup on the Python path for the inner (source, destination) bytes `key`:
        (tunnel, child SA pair, engine index, largest inner packet that fits the tunnel MTU),
        or None. Calls `tunnel_trigger` for routed tunnels without SAs (on-traffic
        establishment). Results are cached per address pair until the tunnels change."""
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

    def _slow_outbound(self, items: list[tuple[int, bytes]], res: "BurstOutput",
                       received: bool = False, ingress: Optional[str] = None,
                       policy_check: bool = True) -> None:
        """The Python path of outbound packets the pipeline punted (CPU-path tunnels, packets
        over the tunnel MTU, routes to tunnels without SAs, hairpins it could not take), and of
        every packet when a security policy stage is configured (`policy_path`): policy or
        route, MTU, one `encrypt_burst` per engine. `res.wire[i]` gets the outer packets.
        `ingress`: the interface the packets came in on (default: the one towards each
        source, `policy.ZoneMap`)."""
        c = self._counters
        policy = self.policy if policy_check else None  # a reject's answer passes unchecked
        jobs: dict[int, list[tuple[int, bytes, int, _Tunnel]]] = {}
        cache = self._route_cache
        for index, pkt in items:
            if received:
                c.inner_received += 1
            n = len(pkt)
            key = address_key(pkt)
            if key is None:
                c.malformed_inner += 1
                res.dropped += 1
                continue
            v = pkt[0] >> 4
            if policy is not None:
                hit = policy.outbound(pkt, key, ingress)
                if hit is False:                     # security policy: dropped, counted
                    c.policy_denied_out += 1
                    res.dropped += 1
                    reply = policy.take_reject_reply()
                    if reply is not None:            # `then reject`: the sender is told
                        res.local.append(reply)
                    continue
            else:
                hit = cache.get(key, False)
                if hit is False:
                    hit = self._route(key)
            if hit is None:
                c.no_route += 1
                res.dropped += 1
                continue
            info, pair, e, limit = hit
            info.flow.out_packets += 1
            self._pipeline.session_add(key, pkt[9] if v == 4 else pkt[6])
            todo = [pkt]
            if n > limit:
                todo = self._too_big(pkt, limit, info, res)
                if not todo:
                    continue
            for item in todo:
                jobs.setdefault(e, []).append((index, item, pair.outbound_handle, info))
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
                status = burst.status[:len(chunk)].tolist()
                results = burst.packets_at(range(len(chunk)))
                for i, (index, _, _, info) in enumerate(chunk):
                    if status[i] == _OK:
                        res.wire.setdefault(index, []).append(results[i])
                        info.flow.out_encrypted += 1
                        path.encrypted += 1
                        c.transmitted_outer += 1
                    else:
                        info.flow.out_engine_drops += 1
                        path.encrypt_drops += 1
                        res.dropped += 1

    def _too_big(self, pkt: bytes, limit: int, info: _Tunnel, out: "BurstOutput") -> list[bytes]:
        """RFC 4301 §8: an IPv4 packet with DF clear is fragmented before encryption (RFC 791);
        otherwise it is dropped and the sender gets ICMP type 3 code 4 (RFC 792, RFC 1191) or
        ICMPv6 Packet Too Big (RFC 4443 §3.2) carrying the tunnel's inner MTU."""
        c = self._counters
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

    def _burst(self, e: object, packets: list[bytes], handles) -> Burst:
        longest = max(map(len, packets))
        slot = max(2048, DEFAULT_HEADROOM + longest + 128)
        burst = self._bursts.get(e)
        if burst is None or burst.capacity < len(packets) or burst.slot_size < slot:
            burst = Burst(max(len(packets), 64), slot)
            self._bursts[e] = burst
        if isinstance(handles, int):            # one C call copies the packets in
            burst.count = pipeline_arrays(burst).load(packets, burst.headroom, handles)
        else:
            burst.load(packets, handles)
        return burst

    # -- inbound -------------------------------------------------------------------------------

    def inbound(self, packets: Sequence[bytes]) -> Output:
        """Decrypt outer packets from the peer (module docstring): the list-of-bytes form of
        `inbound_burst`."""
        out = Output()
        for start in range(0, len(packets), self.max_burst):
            burst = self._pipeline_burst("in", packets[start:start + self.max_burst])
            self._collect(burst, self.inbound_burst(burst), out)
        return out

    def _slow_inbound(self, items: list[tuple[int, bytes]], res: "BurstOutput") -> None:
        """The Python path of inbound packets the pipeline punted (IKE, outer fragments,
        CPU-path tunnels): demux, reassembly, SPI lookup in the distributor's index, one
        `decrypt_burst` per engine, selector check, delivery or hairpin."""
        c = self._counters
        jobs: dict[int, list[tuple[int, bytes, str, Optional[int]]]] = {}
        for index, pkt in items:
            kind, value = classify_outer(pkt, self._outer_frags, c)
            if kind == "fragment":
                continue
            if kind == "ike":
                if self.policy is not None and not self.policy.ike_allowed(value.dst):
                    c.host_inbound_denied += 1       # host-inbound-traffic: no ike here
                    res.dropped += 1
                    continue
                c.ike_packets += 1
                res.ike.append(value)
                self.ike_queue.append(value)
                if self.ike_handler is not None:
                    self.ike_handler(value)
                continue
            if kind == "keepalive":
                c.nat_keepalives += 1
                continue
            if kind == "bad":
                c.malformed_outer += 1
                res.dropped += 1
                continue
            spi, pkt = value
            hit = self.distributor.lookup_spi(spi)
            if hit is None:
                c.invalid_spi += 1
                res.dropped += 1
                continue
            rec, pair_index, _ = hit
            e = self._engine_index(rec.engine)
            self._tunnels[rec.name].flow.in_packets += 1
            jobs.setdefault(e, []).append((index, pkt, rec.name, pair_index))
        # Packets sent on (hairpins, reject answers) are encrypted after every decrypt burst
        # is read: encrypting reuses the engines' scratch bursts.
        onward: list[tuple[int, bytes]] = []
        answers: list[tuple[int, bytes]] = []
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
                statuses = burst.status[:len(chunk)].tolist()
                results = burst.packets_at(range(len(chunk)))
                for i, (index, _, name, pair_index) in enumerate(chunk):
                    inner = self._after_decrypt(statuses[i], results[i], self._tunnels[name],
                                                pair_index, path, res, index, answers)
                    if inner is None:
                        continue
                    if self.hairpin and self._hairpin_target(inner, name):
                        onward.append((index, inner))
                    else:
                        res.delivered[index] = inner
                        c.delivered_inner += 1
        if onward:
            self._hairpin(onward, res)
        if answers:                         # `then reject`: back through a tunnel, unchecked
            self._slow_outbound(answers, res, policy_check=False)

    def _after_decrypt(self, status: int, inner: bytes, info: _Tunnel,
                       pair_index: Optional[int], path, out: "BurstOutput", slot: int,
                       answers: list[tuple[int, bytes]]) -> Optional[bytes]:
        """Account for a packet of a decrypted burst (slot `slot` of the caller's burst), its
        engine `status` and what its slot holds (`inner`, when the status is OK); the inner
        packet if it passed. A security policy's `then reject` answer goes to `answers`."""
        flow = info.flow
        if status != _OK:
            flow.in_engine_drops += 1
            flow.in_drop_reasons[Status(status).name] += 1
            path.decrypt_drops += 1
            out.dropped += 1
            return None
        path.decrypted += 1
        key = address_key(inner)              # None (not IP): the selector check refuses it
        cache_key = (info.name, pair_index, key)
        ok = self._ts_cache.get(cache_key)
        if ok is None:
            ok = self._ts_ok(pair_index, inner, info)
            if len(self._ts_cache) >= 65536:
                self._ts_cache.clear()
            self._ts_cache[cache_key] = ok
        if not ok:                                   # RFC 4301 §5.2 step 4
            flow.in_ts_fail += 1
            self._counters.ts_check_fail += 1
            out.dropped += 1
            return None
        if self.policy is not None and not self.policy.inbound(inner, info.name):
            flow.in_policy_drops += 1                # security policy: dropped, counted
            self._counters.policy_denied_in += 1
            out.dropped += 1
            reply = self.policy.take_reject_reply()
            if reply is not None:
                answers.append((slot, reply))
            return None
        flow.in_delivered += 1
        self._pipeline.session_add(key, inner[9] if inner[0] >> 4 == 4 else inner[6])
        if is_fragment(inner):
            self._counters.fragments_received += 1
        return inner

    def _ts_ok(self, pair_index: Optional[int], inner: bytes, info: _Tunnel) -> bool:
        """RFC 4301 §5.2 step 4: the inner packet matches the selector of the SA it came on
        (a draining SA after a rekey: any of the tunnel's selectors)."""
        addrs = inner_addresses(inner)
        if addrs is None:
            return False
        if pair_index is not None and pair_index < len(info.selectors):
            return info.selectors[pair_index].matches_inbound(*addrs)
        if info.selectors and pair_index is None:
            return any(s.matches_inbound(*addrs) for s in info.selectors)
        return True

    def _forget_routes(self) -> None:
        """Routes, tunnels, selectors or SAs changed: every cached routing answer goes."""
        self._route_cache.clear()
        self._hairpin_cache.clear()

    def _hairpin_target(self, inner: bytes, arrival: str) -> Optional[str]:
        """The installed tunnel other than `arrival` a decrypted packet is routed into, if
        any (the same decision as the pipeline's; no on-traffic trigger). Cached per arrival
        tunnel and address pair: it depends on nothing else."""
        addrs = address_key(inner)
        if addrs is None:
            return None                     # not IP: inner_addresses has none either
        key = (arrival, addrs)
        cache = self._hairpin_cache
        if key in cache:
            return cache[key]
        target = self._hairpin_lookup(inner, arrival)
        if len(cache) >= 65536:
            cache.clear()
        cache[key] = target
        return target

    def _hairpin_lookup(self, inner: bytes, arrival: str) -> Optional[str]:
        addrs = inner_addresses(inner)
        if addrs is None:
            return None
        src, dst = addrs
        for name in self.routes.lookup(dst):
            info = self._tunnels.get(name)
            if info is None or name not in self.distributor:
                return None
            for i, _ in enumerate(self.distributor.tunnel(name).pairs):
                sel = info.selectors[i] if i < len(info.selectors) else ANY
                if sel.matches_outbound(src, dst):
                    return name if name != arrival else None
        return None

    # -- statistics and show -----------------------------------------------------------------

    def current_sessions(self) -> int:
        if self.policy is not None:       # Junos counts the policy stage's sessions
            return len(self.policy.sessions) // 2
        return self._pipeline.sessions()

    def show(self, command: str) -> str:
        """Junos show output as text: `gateway.show("security ipsec statistics")`. See
        `gateway.show.SHOW_COMMANDS` for the commands understood."""
        from ..io.show import show
        return show(self, command)

"""`inline-ipsec run CONFIG --tun NAME`: a gateway that terminates real tunnels with real peers.

The gateway (`gateway.core.Gateway`) and its IKE (`gateway.ike_control.IkeControl`) are
sans-I/O; this module is the thin loop around them, single-threaded, that owns every file
descriptor:

    TUN (inner) --read burst--> Gateway.outbound[_burst] --> raw ESP / UDP 4500 (sendmmsg)
    raw ESP / UDP 4500 --recvmmsg--> Gateway.inbound[_burst] --> TUN write
    UDP 500 / 4500 IKE <--> IkeControl.receive / datagrams_to_send; its timers
    control socket (show, clear, request, commit), SIGHUP (commit), SIGTERM/SIGINT (stop)

Packets move in bursts: one `poll(2)` wake-up, then up to `burst` packets per source, each
burst handed to the gateway in one call. By default the TUN and the raw ESP sockets are read
into and written from the bursts' slots in C (`burst_path.BurstPath`); what that cannot carry
(NAT-T, punted packets, a capture, `--list-io`) goes as lists of bytes (`DataPath`). Everything that crosses the outer sockets and the TUN can be written to a pcap
file, and every SA's keys to a Wireshark `esp_sa` table (`pcap.py`, `keylog.py`), so one
capture decrypts with no further work.

Stop (SIGTERM/SIGINT): an INFORMATIONAL Delete for every IKE SA (RFC 7296 §1.4.1), answered or
not within `STOP_GRACE` seconds, then every SA is removed, the TUN goes down and the sockets
close. Commit (SIGHUP or `commit` on the control socket) re-reads the configuration file: a
VPN's DF-bit or DSCP-copy change applies at once on a CPU tunnel and at its next rekey on an
offloaded one (`Distributor.set_df_bit`); when VPNs are added or removed (or IKE statements
changed), the IKE gateways whose statements and VPNs are all unchanged keep their IKE SAs and
tunnels untouched (`_renegotiate`), the others are deleted and negotiated afresh from the new
configuration, so added VPNs come up and removed ones go down.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import select
import signal
import sys
import time
from typing import Callable, Optional, Sequence, TextIO

from ..config import ConfigurationErrors, load_config_file
from ..dataplane.gateway import DEFAULT_MTU, Gateway
from ..control.ike_control import IkeControl
from ..ike.events import (ChildSaDown, ChildSaRekeyed, ChildSaUp, IkeSaDown, IkeSaRekeyed,
                          IkeSaUp)
from ..ike.states import IkeSaState
from ..control.vpn_verdict import vpn_verdicts
from .runner import standalone_notes
from .command_socket import CommandError, CommandServer, parse_command
from .eventlog import EventLog, proxy_id
from .keylog import EspKeyLog
from .burst_path import BurstPath
from .pcap import PcapWriter
from .sink import Sink
from .sockets import OuterSockets
from .tun import Tun, tunnel_routes

__all__ = ["Daemon", "DataPath", "STOP_GRACE", "external_addresses"]

#: seconds a stopping daemon waits for the peers to answer its Deletes
STOP_GRACE = 3.0
#: seconds between housekeeping passes (drained SAs, the key table)
HOUSEKEEPING = 0.5


class DataPath:
    """The gateway's packet API as the daemon uses it: bursts of inner packets in, outer
    packets out, and back. The one adapter to change when the gateway grows a burst
    interface of its own."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    def encrypt(self, inner: Sequence[bytes]) -> tuple[list[bytes], list[bytes]]:
        """(outer packets for the peers, ICMP errors back into the TUN)."""
        out = self.gw.outbound(inner)
        return out.wire, out.local

    def decrypt(self, outer: Sequence[bytes]) -> list[bytes]:
        """Inner packets for the TUN."""
        return self.gw.inbound(outer).delivered


def external_addresses(config) -> list[str]:
    """The addresses the outer sockets bind: each IKE gateway's local address (`local-address`
    or its external interface's) and each manual VPN's, IPv4 first."""
    out: list[str] = []
    for g in config.ike_gateways.values():
        a = config.local_address_of(g)
        if a:
            out.append(str(ipaddress.ip_interface(a).ip))
    for v in config.ipsec_vpns.values():
        m = v.manual
        if m is not None:
            a = config.interface_address(m.external_interface, m.gateway)
            if a:
                out.append(str(ipaddress.ip_interface(a).ip))
    return sorted(dict.fromkeys(out), key=lambda a: ipaddress.ip_address(a).version)


class _Tap(list):
    """`IkeControl.events` that also tells the daemon (to log each event as it happens)."""

    def __init__(self, source, hook: Callable[[str, object], None]) -> None:
        super().__init__()
        self._source = source
        self._hook = hook

    def append(self, item) -> None:       # type: ignore[override]
        self._source.append(item)
        self._hook(*item)

    def __getattr__(self, name):
        return getattr(self._source, name)

    def __len__(self) -> int:
        return len(self._source)

    def __iter__(self):
        return iter(self._source)

    def __getitem__(self, index):
        return self._source[index]


def _same_ike_gateway(old, new, name: str) -> bool:
    """The IKE gateway `name` and everything its IKE SA and child SAs depend on are the same in
    both configurations (DF-bit and DSCP-copy aside, which a commit applies to live SAs)."""
    if name not in new.ike_gateways or old.ike_gateways[name] != new.ike_gateways[name]:
        return False
    g = old.ike_gateways[name]
    pol = g.ike_policy
    if old.ike_policies.get(pol) != new.ike_policies.get(pol):
        return False
    policy = old.ike_policies.get(pol)
    for prop in (policy.proposals if policy is not None else ()):
        if old.ike_proposals.get(prop) != new.ike_proposals.get(prop):
            return False

    def vpns(cfg) -> dict:
        return {n: dataclasses.replace(v, df_bit="clear", copy_outer_dscp=False)
                for n, v in cfg.ipsec_vpns.items() if v.ike is not None and v.ike.gateway == name}
    a, b = vpns(old), vpns(new)
    if a != b:
        return False
    for v in a.values():
        pol = v.ike.ipsec_policy
        if old.ipsec_policies.get(pol) != new.ipsec_policies.get(pol):
            return False
        ipsec_policy = old.ipsec_policies.get(pol)
        for prop in (ipsec_policy.proposals if ipsec_policy is not None else ()):
            if old.ipsec_proposals.get(prop) != new.ipsec_proposals.get(prop):
                return False
    return True


class Daemon:
    """One gateway with its TUN, outer sockets and control socket (module docstring)."""

    def __init__(self, config_path: str, *, tun: str = "st0", control_path: str,
                 ike_port: int = 500, natt_port: int = 4500, raw_esp: bool = True,
                 pcap: Optional[str] = None, esp_keys: Optional[str] = None,
                 log: Optional[TextIO] = None, out: TextIO = sys.stdout, burst: int = 64,
                 mtu: int = DEFAULT_MTU, tun_mtu: Optional[int] = None,
                 pfe_backend: Optional[str] = None, nat_t: Sequence[str] = (),
                 duration: Optional[float] = None, name: Optional[str] = None,
                 credentials: Optional[dict] = None,
                 ca_certificates: Sequence[object] = (),
                 pcap_limit: Optional[int] = None, io_threads: bool = True,
                 burst_io: bool = True, tun_gso: bool = True) -> None:
        self.credentials = credentials or {}
        self.ca_certificates = list(ca_certificates)
        self.config_path = config_path
        self.out = out
        self.burst = burst
        self.duration = duration
        self.nat_t = list(nat_t)
        self.ike_port, self.natt_port = ike_port, natt_port
        self.log = EventLog(log if log is not None else sys.stderr, host=name)
        self.gw = Gateway.from_file(config_path, name=name or "local", mtu=mtu,
                                    pfe_backend=pfe_backend)
        self.path = DataPath(self.gw)
        self._tun_sink: Optional[Sink] = None
        self._wire_sink: Optional[Sink] = None
        self.sockets: Optional[OuterSockets] = None
        self.tun: Optional[Tun] = None
        #: the burst-slot data path (burst_path.py), or None and why not
        self.fast: Optional[BurstPath] = None
        self.fast_off = "off (--list-io)" if not burst_io else ""
        self.server: Optional[CommandServer] = None
        self.pcap = PcapWriter(pcap, limit=pcap_limit) if pcap else None
        self.keys = EspKeyLog(esp_keys) if esp_keys else None
        self._stop = False
        self._reload = False
        self._events: list = []
        #: bursts lost to an exception inside the gateway or IKE (`_guard`)
        self.internal_errors = 0
        #: seconds per stage of the data path and bursts per source (`show daemon statistics`)
        self.times = dict.fromkeys(("tun_read", "encrypt", "send", "recv", "decrypt",
                                    "tun_write"), 0.0)
        self.bursts = {"tun": 0, "outer": 0}
        self._up: set = set()
        self._tunnel_ids: dict = {}            # VPNs logged up and not yet logged down
        self._known_spis: frozenset = frozenset()
        self.commits = 0
        try:
            addresses = external_addresses(self.gw.config)
            self.sockets = OuterSockets(addresses, ike_port=ike_port, natt_port=natt_port,
                                        raw_esp=raw_esp, burst=burst)
            # virtio-net headers on the TUN, for the burst path's segmentation-offload
            # writes (tun.py); the list path only strips and adds them
            vnet = (burst_io and tun_gso and self.pcap is None
                    and BurstPath.usable(self.sockets.raw))
            self.tun = Tun(tun, mtu=tun_mtu or max(576, mtu - 100), vnet_hdr=vnet)
            tun_addrs, routes = tunnel_routes(self.gw.config)
            self.tun_problems = self.tun.configure(tun_addrs, routes)
            self.ike = self._new_ike()
            self.server = CommandServer(control_path, self.command)
            if io_threads:
                self._tun_sink = Sink("tun", self.tun.write_burst)
                self._wire_sink = Sink("wire", self.sockets.send_wire)
            if burst_io:
                self.fast, self.fast_off = self._burst_path()
        except BaseException:
            self.close()
            raise

    def _burst_path(self) -> tuple[Optional[BurstPath], str]:
        """The burst-slot data path where it can run, or why not."""
        assert self.sockets is not None and self.tun is not None
        if self.pcap is not None:
            return None, "off (a capture takes every packet as bytes)"
        if not BurstPath.usable(self.sockets.raw):
            return None, "off (no raw ESP socket that takes whole packets)"
        v6 = next((lo.address for lo in self.sockets.locals if lo.version == 6), None)
        return BurstPath(self.gw, tun_fd=self.tun.fileno(), tun_mtu=self.tun.mtu,
                         tun_vnet=self.tun.vnet_hdr,
                         raw=self.sockets.raw, local_v6=v6, size=self.burst,
                         natt=[(lo.natt.fileno(), lo.packed, lo.natt_port)
                               for lo in self.sockets.locals],
                         send_list=self._to_peers, write_list=self._to_tun), ""

    # ------------------------------------------------------------------ IKE
    def _new_ike(self) -> Optional[IkeControl]:
        gw = self.gw
        if not any(v.ike is not None for v in gw.config.ipsec_vpns.values()):
            gw.ike = None
            return None
        assert self.sockets is not None
        first = self.sockets.locals[0]
        nat_t = list(self.nat_t)
        if self.forced_encap():
            # without a raw ESP socket plain ESP can be neither sent nor received: claim a
            # NAT (RFC 7296 §2.23) so that every peer encapsulates in UDP 4500
            nat_t = list(gw.config.ipsec_vpns)
        ike = IkeControl(gw, local=(first.address, first.ike_port), natt_port=first.natt_port,
                         nat_t=nat_t, credentials=self.credentials,
                         ca_certificates=self.ca_certificates)
        # logged once the event has been applied (the tunnel ID exists then)
        ike.events = _Tap(ike.events, lambda *item: self._events.append(item))  # type: ignore
        return ike

    def forced_encap(self) -> bool:
        """No raw ESP socket for the IKE family: every VPN runs over NAT-T."""
        assert self.sockets is not None
        raw = self.sockets.raw.get(self.sockets.locals[0].version)
        return raw is None or raw.sock is None

    def _drain_events(self) -> None:
        while self._events:
            self._on_ike_event(*self._events.pop(0))

    def _vpn_fields(self, vpn: str) -> str:
        if vpn in self.gw.distributor:
            self._tunnel_ids[vpn] = self.gw.tunnel(vpn).tunnel_id
        v = self.ike.vpns.get(vpn) if self.ike is not None else None
        cfg = self.gw.config.ipsec_vpns.get(vpn)
        local = v.local if v is not None else "-"
        gateway = v.peer.name if v is not None else "-"
        tid = self._tunnel_ids.get(vpn, "-")
        bind = (cfg.bind_interface if cfg is not None else None) or "Not-Available"
        return (f"Local-ip: {local}, gateway name: {gateway}, vpn name: {vpn}, tunnel-id: "
                f"{tid}, local tunnel-if: {bind}, SA Type: Static")

    def _on_ike_event(self, vpn: str, event: object) -> None:
        v = self.ike.vpns.get(vpn) if self.ike is not None else None
        remote = v.remote if v is not None else "-"
        local = v.local if v is not None else "-"
        if isinstance(event, IkeSaUp):
            role = "Initiator" if event.initiator else "Responder"
            self.log.emit("IKE_NEGOTIATION_SUCCESSFUL",
                          f"IKE negotiation successfully completed. IKE Version: "
                          f"{event.version}, VPN: {vpn} "
                          f"Gateway: {v.peer.name if v else '-'}, Local: {local}/"
                          f"{self.ike_port}, Remote: {remote}/500, Local IKE-ID: "
                          f"{event.local_id}, Remote IKE-ID: "
                          f"{event.remote_id}, VR-ID: 0, Role: {role}")
        elif isinstance(event, (ChildSaUp, ChildSaRekeyed)):
            child = event.child if isinstance(event, ChildSaUp) else event.new
            for direction, spi in (("inbound", child.spi_in), ("outbound", child.spi_out)):
                self.log.emit("KMD_PM_SA_ESTABLISHED",
                              f"Local gateway: {local}, Remote gateway: {remote}, Local ID: "
                              f"{proxy_id([str(t) for t in child.local_ts])}, Remote ID: "
                              f"{proxy_id([str(t) for t in child.remote_ts])}, Direction: "
                              f"{direction}, SPI: 0x{spi:08x}, AUX-SPI: 0, Mode: Tunnel, "
                              "Type: dynamic")
            if isinstance(event, ChildSaUp):
                self._up.add(vpn)
                self.log.emit("KMD_VPN_UP_ALARM_USER",
                              f"VPN {vpn} from {remote} is up. {self._vpn_fields(vpn)}")
            else:
                self.log.emit("KMD_PM_SA_REKEYED",
                              f"VPN {vpn} from {remote}: IPsec SA rekeyed, old SPI "
                              f"0x{event.old_spi_in:08x}, new SPI 0x{child.spi_in:08x}")
            self._note_keys()
        elif isinstance(event, ChildSaDown):
            if vpn in self.gw.distributor:
                return                   # one child SA of several, or a rekey's old SA
            self._up.discard(vpn)
            self.log.emit("KMD_VPN_DOWN_ALARM_USER",
                          f"VPN {vpn} from {remote} is down. {self._vpn_fields(vpn)}, Reason: "
                          f"IPsec SA deleted ({event.reason}), SPI 0x{event.spi_in:08x}")
        elif isinstance(event, IkeSaDown):
            if vpn not in self._up or vpn in self.gw.distributor:
                return                   # a duplicate IKE SA, or the VPN was down already
            self._up.discard(vpn)
            self.log.emit("KMD_VPN_DOWN_ALARM_USER",
                          f"VPN {vpn} from {remote} is down. {self._vpn_fields(vpn)}, Reason: "
                          f"IKE SA down ({event.reason})")
        elif isinstance(event, IkeSaRekeyed):
            self.log.emit("IKE_SA_REKEYED", f"IKE SA of VPN {vpn} with {remote} rekeyed")

    def _note_keys(self) -> None:
        """Add every installed SA to the key table (when the set of inbound SPIs changed)."""
        if self.keys is None:
            return
        specs = []
        spis = []
        for rec in self.gw.distributor.tunnels():
            for p in rec.pairs:
                specs += [p.outbound, p.inbound]
                spis.append(p.inbound.spi)
        key = frozenset(spis)
        if key != self._known_spis:
            self._known_spis = key
            self.keys.add(specs)

    # ------------------------------------------------------------------ start-up report
    def banner(self) -> None:
        gw, out = self.gw, self.out
        assert self.sockets is not None and self.tun is not None and self.server is not None
        verdicts = gw.ike.verdicts if gw.ike is not None else vpn_verdicts(gw.config)
        cannot = {n: v for n, v in verdicts.items() if not v.can_come_up}
        lines = [f"inline-ipsec gateway running: {len(gw.config.ipsec_vpns)} VPNs configured",
                 f"TUN {self.tun.name} (mtu {self.tun.mtu}): addresses "
                 f"{', '.join(self.tun.addresses) or 'none'}; routes "
                 f"{', '.join(self.tun.routes) or 'none'}"]
        lines += [f"  TUN problem: {p}" for p in self.tun_problems]
        lines += self.sockets.report()
        if self.fast is not None:
            lines.append("data path I/O: TUN and raw ESP read into and written from the "
                         "bursts' slots in C (recvmmsg/sendmmsg), NAT-T datagrams received "
                         "into them too; punted packets as bytes")
            lines.append("  TUN writes: " + (
                "a run of one UDP flow's datagrams as one segmentation-offload write "
                "(IFF_VNET_HDR)" if self.tun.vnet_hdr else "one per packet (--no-tun-gso)"))
        else:
            lines.append(f"data path I/O: packets as bytes; burst slots {self.fast_off}")
        if self.ike is not None and self.forced_encap():
            lines.append("  so every IKE SA claims a NAT (RFC 7296 §2.23): peers encapsulate ESP "
                         "in UDP 4500, which this host sends and receives without privileges")
        lines.append(f"control socket: {self.server.path}  (inline-ipsec cli "
                     f"{self.server.path} 'show security ipsec security-associations')")
        if self.pcap is not None:
            lines.append(f"capture: {self.pcap.path} (outer sockets and TUN, LINKTYPE_RAW)")
        if self.keys is not None:
            lines.append(f"ESP keys: {self.keys.path} (Wireshark esp_sa table)")
        if cannot:
            lines.append(f"{len(cannot)} of {len(verdicts)} VPNs cannot come up:")
            for name, verdict in cannot.items():
                lines += [f"  {name}: {why}" for why in verdict.reasons]
        for name, verdict in verdicts.items():
            lines += [f"not carried out: {name}: {note}" for note in verdict.notes]
        lines += standalone_notes(gw, hub_run=False)
        lines.append("stop with SIGTERM or Ctrl-C; SIGHUP or 'commit' re-reads the "
                     "configuration" + (f"; stops after {self.duration:g} s"
                                        if self.duration else ""))
        out.write("\n".join(lines) + "\n")
        out.flush()

    # ------------------------------------------------------------------ the loop
    def run(self, install_signals: bool = True) -> int:
        assert self.sockets is not None and self.tun is not None and self.server is not None
        previous = {}
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        old_wakeup = None
        if install_signals:
            old_wakeup = signal.set_wakeup_fd(wake_w)
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, self._on_stop)
            previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_hup)
        self.banner()
        self.log.daemon(f"started: {len(self.gw.config.ipsec_vpns)} VPNs, TUN {self.tun.name}")
        start = time.monotonic()
        if self.ike is not None:
            self.ike.start(start)
        self._note_keys()
        try:
            self._loop(start, wake_r)
            self._graceful_stop()
        finally:
            if install_signals:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
                signal.set_wakeup_fd(old_wakeup if old_wakeup is not None else -1)
            os.close(wake_r)
            os.close(wake_w)
            self.close()
        c = self.gw.counters
        self.out.write(f"stopped after {time.monotonic() - start:.1f} s: "
                       f"{c.transmitted_outer} packets encrypted, {c.delivered_inner} "
                       f"decrypted\n")
        self.out.flush()
        return 0

    def _on_stop(self, *_: object) -> None:
        self._stop = True

    def _on_hup(self, *_: object) -> None:
        self._reload = True

    def stop(self) -> None:
        self._stop = True

    def _loop(self, start: float, wake_r: int) -> None:
        assert self.sockets is not None and self.tun is not None and self.server is not None
        poller = select.poll()
        tun_fd = self.tun.fileno()
        socks = {s.fileno(): s for s in self.sockets.fds()}
        ctl_fd = self.server.sock.fileno()
        for fd in [tun_fd, ctl_fd, wake_r, *socks]:
            poller.register(fd, select.POLLIN)
        next_house = start
        ike = self.ike
        while not self._stop:
            now = time.monotonic()
            if self.duration is not None and now - start >= self.duration:
                break
            timeout = HOUSEKEEPING
            t = ike.get_timer() if ike is not None else None
            if t is not None:
                timeout = min(timeout, max(0.0, t - now))
            try:
                events = poller.poll(int(timeout * 1000) if timeout > 0 else 0)
            except InterruptedError:
                events = []
            ready = {fd for fd, _ in events}
            if wake_r in ready:
                try:
                    os.read(wake_r, 512)
                except OSError:
                    pass
            if tun_fd in ready:
                self._guard(self._from_tun)
            if ready & socks.keys():
                self._guard(self._from_peers, [socks[fd] for fd in ready if fd in socks])
            now = time.monotonic()
            ike = self.ike
            if ike is not None:
                t = ike.get_timer()
                if t is not None and t <= now:
                    ike.handle_timer(now)
                self._flush_ike(now)
            self._drain_events()
            if ctl_fd in ready:
                self.server.poll(0.001)
                ike = self.ike
            if self._reload:
                self._reload = False
                self.commit()
                ike = self.ike
            if now >= next_house:
                next_house = now + HOUSEKEEPING
                self.gw.expire_drained()
                self._keep_up(now)
                self._note_keys()
                if self.pcap is not None:
                    self.pcap.flush()

    def _guard(self, step: Callable, *args: object) -> None:
        """Run one data-path step; an exception escaping the gateway or IKE (a bug: bad input
        is a counted drop there) is counted and logged, and the daemon keeps forwarding."""
        try:
            step(*args)
        except Exception as exc:   # noqa: BLE001 - one burst lost, never the gateway
            self.internal_errors += 1
            if self.internal_errors <= 10:
                self.log.daemon(f"internal error, burst dropped: {type(exc).__name__}: {exc}")

    def _keep_up(self, now: float) -> None:
        """`establish-tunnels immediately`: a VPN whose child SA went (cleared here, deleted
        by the peer) while its IKE SA stays comes back at once, as on the SRX; an IKE SA
        that went is renegotiated by IkeControl itself."""
        ike = self.ike
        if ike is None:
            return
        for name, v in ike.vpns.items():
            if v.establish != "immediately" or name in self.gw.distributor:
                continue
            s = ike.session_of(name)
            if s is None or any(s.negotiating(c.name) for c in v.children):
                continue
            ike.ensure(name, now)

    def _flush_ike(self, now: float) -> None:
        assert self.sockets is not None and self.ike is not None
        out = self.ike.datagrams_to_send(now)
        if out:
            cap: Optional[list] = [] if self.pcap is not None else None
            self.sockets.send_ike(out, cap)
            if cap:
                self.pcap.write(cap)        # type: ignore[union-attr]

    def _to_tun(self, packets: list) -> None:
        if self._tun_sink is not None:
            self._tun_sink.put(packets)
        else:
            self.tun.write_burst(packets)       # type: ignore[union-attr]

    def _to_peers(self, packets: list) -> None:
        if self._wire_sink is not None:
            self._wire_sink.put(packets)
        else:
            self.sockets.send_wire(packets)     # type: ignore[union-attr]

    def _from_tun(self) -> None:
        """Inner packets the host routed into the TUN -> tunnels -> outer sockets."""
        assert self.tun is not None and self.sockets is not None
        t = self.times
        clock = time.perf_counter
        fast = self.fast
        if fast is not None:
            for _ in range(4):
                t0 = clock()
                n = fast.read_tun()
                t1 = clock()
                t["tun_read"] += t1 - t0
                if not n:
                    return
                self.bursts["tun"] += 1
                res = fast.encrypt()
                t2 = clock()
                t["encrypt"] += t2 - t1
                fast.send(res)
                t["send"] += clock() - t2
                if n < self.burst:
                    return
            return
        for _ in range(4):                      # a few bursts, then let the peers' side run
            t0 = clock()
            inner = self.tun.read_burst(self.burst)
            t1 = clock()
            t["tun_read"] += t1 - t0
            if not inner:
                return
            self.bursts["tun"] += 1
            wire, local = self.path.encrypt(inner)
            t2 = clock()
            t["encrypt"] += t2 - t1
            if self.pcap is not None:
                self.pcap.write(inner)
                self.pcap.write(wire)
            if wire:
                self._to_peers(wire)
            if local:                           # ICMP errors for the senders
                self._to_tun(local)
            t["send"] += clock() - t2
            if len(inner) < self.burst:
                return

    def _from_peers(self, ready: list) -> None:
        """Outer packets -> IKE or the data path -> TUN."""
        assert self.tun is not None and self.sockets is not None
        t = self.times
        clock = time.perf_counter
        fast = self.fast
        if fast is not None:
            rest = []
            for sock in ready:
                fd = sock.fileno()
                t0 = clock()
                if fd in fast.raw_versions:
                    n = fast.receive(fd)
                elif fd in fast.natt_fds:
                    n = fast.receive_udp(fd)
                else:
                    rest.append(sock)
                    continue
                t1 = clock()
                t["recv"] += t1 - t0
                if not n:
                    continue
                self.bursts["outer"] += 1
                res = fast.decrypt()
                t2 = clock()
                t["decrypt"] += t2 - t1
                fast.deliver(res)
                t["tun_write"] += clock() - t2
                if res.ike and self.ike is not None:   # UDP 4500 behind the non-ESP marker
                    now = time.monotonic()
                    for dgram in res.ike:
                        self.ike.receive_from_data_path(dgram, now)
            if not rest:
                return
            ready = rest
        t0 = clock()
        got = self.sockets.receive(ready, capture=self.pcap is not None)
        t1 = clock()
        t["recv"] += t1 - t0
        self.bursts["outer"] += 1
        if got.keepalives:
            self.gw.counters.nat_keepalives += got.keepalives
        if self.pcap is not None and got.captured:
            self.pcap.write(got.captured)
        now = time.monotonic()
        if got.ike and self.ike is not None:
            for data, addr, _natt in got.ike:
                self.ike.receive(data, addr, now)
        if got.esp:
            t2 = clock()
            inner = self.path.decrypt(got.esp)
            t3 = clock()
            t["decrypt"] += t3 - t2
            if inner:
                self._to_tun(inner)
                if self.pcap is not None:
                    self.pcap.write(inner)
            t["tun_write"] += clock() - t3

    # ------------------------------------------------------------------ stop
    def _graceful_stop(self) -> None:
        """Delete every IKE SA (RFC 7296 §1.4.1) and wait up to STOP_GRACE s for the
        answers; then remove every SA."""
        self.log.daemon("stopping: deleting every IKE SA")
        self.delete_ike_sas()
        for name in list(self.gw.tunnel_names()):
            self.gw.remove(name, "the gateway stopped")
        self.log.daemon("stopped: every SA removed, TUN down")

    def delete_ike_sas(self, peer: Optional[str] = None, grace: float = STOP_GRACE,
                       skip: frozenset | set = frozenset()) -> int:
        """Send a Delete for every established IKE SA (of the peer address `peer`; not those
        whose id is in `skip`) and run the IKE exchanges until they are closed or `grace`
        seconds passed. Returns how many."""
        ike = self.ike
        if ike is None or self.sockets is None:
            return 0
        now = time.monotonic()
        closing = []
        for s in list(ike.manager.sessions):
            if s.state == IkeSaState.CLOSED or id(s) in skip:
                continue
            if peer is not None and s.remote_addr[0] != peer and \
                    ike.peers.get(s.config.name, None) is not None and \
                    ike.peers[s.config.name].remote != peer:
                continue
            s.close(now)
            closing.append(s)
        deadline = now + grace
        fds = [x for x in self.sockets.fds()]
        while closing and any(s.state != IkeSaState.CLOSED for s in closing):
            now = time.monotonic()
            if now >= deadline:
                break
            self._flush_ike(now)
            ready, _, _ = select.select(fds, [], [], min(0.05, deadline - now))
            if ready:
                got = self.sockets.receive(ready, capture=self.pcap is not None)
                if self.pcap is not None and got.captured:
                    self.pcap.write(got.captured)
                for data, addr, _ in got.ike:
                    ike.receive(data, addr, time.monotonic())
            t = ike.get_timer()
            if t is not None and t <= time.monotonic():
                ike.handle_timer(time.monotonic())
        self._flush_ike(time.monotonic())
        self._drain_events()
        return len(closing)

    def close(self) -> None:
        for sink in (self._tun_sink, self._wire_sink):
            if sink is not None:
                sink.close()
        for part in (self.server, self.tun, self.sockets, self.pcap):
            if part is not None:
                try:
                    part.close()
                except OSError:
                    pass

    # ------------------------------------------------------------------ commit
    def commit(self) -> str:
        """Re-read the configuration file (module docstring); returns a report."""
        try:
            new = load_config_file(self.config_path)
        except (OSError, ConfigurationErrors) as exc:
            text = exc.report() if isinstance(exc, ConfigurationErrors) else str(exc)
            self.log.daemon(f"commit failed, configuration unchanged: {text.splitlines()[0]}")
            return f"error: configuration check fails\n{text}\n"
        self.commits += 1
        gw = self.gw
        old = gw.config
        added = [n for n in new.ipsec_vpns if n not in old.ipsec_vpns]
        removed = [n for n in old.ipsec_vpns if n not in new.ipsec_vpns]
        ike_changed = (old.ike_gateways != new.ike_gateways or old.ike_policies !=
                       new.ike_policies or old.ike_proposals != new.ike_proposals or
                       old.ipsec_policies != new.ipsec_policies or old.ipsec_proposals !=
                       new.ipsec_proposals or any(
                           dataclasses.replace(old.ipsec_vpns[n], df_bit="clear",
                                               copy_outer_dscp=False) !=
                           dataclasses.replace(new.ipsec_vpns[n], df_bit="clear",
                                               copy_outer_dscp=False)
                           for n in new.ipsec_vpns if n in old.ipsec_vpns))
        lines = []
        if added or removed or ike_changed:
            lines += self._renegotiate(old, new, added, removed)
        else:
            self._set_config(new)
            for name, v in new.ipsec_vpns.items():
                before = old.ipsec_vpns[name]
                if name not in gw.distributor:
                    continue
                rec = gw.tunnel(name)
                where = "at its next rekey (offloaded)" if rec.offloaded else "now (CPU)"
                if v.df_bit != before.df_bit:
                    gw.distributor.set_df_bit(name, v.df_bit)
                    lines.append(f"{name}: DF-bit {before.df_bit} -> {v.df_bit}, applies "
                                 f"{where}")
                if v.copy_outer_dscp != before.copy_outer_dscp:
                    gw.distributor.set_copy_outer_dscp(name, v.copy_outer_dscp)
                    lines.append(f"{name}: copy-outer-dscp {before.copy_outer_dscp} -> "
                                 f"{v.copy_outer_dscp}, applies {where}")
        if self.tun is not None:
            addrs, routes = tunnel_routes(new)
            for r in routes:
                if str(ipaddress.ip_network(r, strict=False)) not in self.tun.routes:
                    self.tun.configure([], [r])
        text = "; ".join(lines) or "no change to the tunnels"
        self.log.daemon(f"commit complete: {text}")
        return "commit complete\n" + "".join(f"  {x}\n" for x in lines or [text])

    def _renegotiate(self, old, new, added: list, removed: list) -> list[str]:
        """VPNs added or removed, or IKE statements changed: the IKE gateways whose own
        statements, policy, proposals and VPNs are all unchanged keep their IKE SAs and
        tunnels (each established IKE SA moves to the new IKE control as it is, through the
        same export/adopt that hands IKE SAs to a high-availability peer node); every other
        IKE SA is deleted (RFC 7296 §1.4.1), its tunnels removed, and its gateway's VPNs of
        the new configuration negotiated afresh."""
        from ..ike.v2.ha_state import abandon
        gw = self.gw
        now = time.monotonic()
        keep = {name for name in old.ike_gateways if _same_ike_gateway(old, new, name)}
        lines = [f"VPNs added: {', '.join(added) or 'none'}; removed: "
                 f"{', '.join(removed) or 'none'}"]
        carried: list = []
        if self.ike is not None:
            for session, state in self.ike.export_sessions(now):
                if session.config.name in keep:
                    carried.append((session, state))
            moving = {id(session) for session, _ in carried}
            self.delete_ike_sas(skip=moving)
            for session, _ in carried:
                abandon(session)
        keep = {session.config.name for session, _ in carried}   # those with an IKE SA
        kept_vpns = {v.name for v in old.ipsec_vpns.values()
                     if v.ike is not None and v.ike.gateway in keep}
        for name in list(gw.tunnel_names()):
            cfg = old.ipsec_vpns.get(name)
            if cfg is not None and cfg.ike is None and name in new.ipsec_vpns and \
                    new.ipsec_vpns[name] == cfg:
                continue                          # an unchanged manual SA stays
            if name not in kept_vpns:
                gw.remove(name, "configuration changed")
        self._set_config(new)
        gw.install_manual_sas()
        self.ike = self._new_ike()
        adopted = 0
        if self.ike is not None:
            for _session, state in carried:
                try:
                    self.ike.adopt(state, now)
                    adopted += 1
                except ValueError as exc:
                    lines.append(f"IKE SA of gateway {state.get('config')} not carried over: "
                                 f"{exc}")
            self.ike.start(now)
        renegotiated = sorted(set(new.ike_gateways) - keep)
        lines.append(f"IKE gateways kept with their IKE SAs: {', '.join(sorted(keep)) or 'none'}"
                     f" ({adopted} IKE SA{'s' if adopted != 1 else ''}); negotiated afresh: "
                     f"{', '.join(renegotiated) or 'none'}")
        return lines

    def _set_config(self, new) -> None:
        self.gw.replace_config(new)

    def statistics(self) -> str:
        """`show daemon statistics` (the model's own command): where the data path's time
        goes, per stage, with the engines' crypto time split out of encrypt/decrypt."""
        assert self.sockets is not None and self.tun is not None
        c = self.gw.counters
        crypto = sum(p.seconds for p in c.paths.values())
        t = self.times
        fc = self.fast.counts if self.fast is not None else {}
        lines = ["Daemon data path:",
                 f"  Internal errors (bursts dropped): {self.internal_errors}",
                 f"  TUN packets read: {self.tun.reads + fc.get('tun_read', 0)}, written: "
                 f"{self.tun.writes + fc.get('tun_written', 0)}, write errors: "
                 f"{self.tun.write_errors + fc.get('tun_write_errors', 0)} (both paths)",
                 f"  Bursts: from TUN {self.bursts['tun']}, from outer sockets "
                 f"{self.bursts['outer']}",
                 f"  Outer socket syscalls (recvmmsg/sendmmsg): {self.sockets.syscalls}"]
        lines += [f"  Outer {k.replace('_', ' ')}: {v}" for k, v in self.sockets.counts.items()]
        if self.fast is not None:
            lines.append("  Burst slots (TUN and raw ESP in C): " + ", ".join(
                f"{k.replace('_', ' ')} {v}" for k, v in fc.items()))
        else:
            lines.append(f"  Burst slots: {self.fast_off}")
        for sink in (self._tun_sink, self._wire_sink):
            if sink is not None:
                lines.append(f"  Writer thread {sink.name}: {sink.bursts} bursts, "
                             f"{sink.dropped} packets dropped on a full queue")
        lines.append("  Seconds per stage:")
        for k, v in t.items():
            lines.append(f"    {k.replace('_', ' ')}: {v:.6f}")
        lines.append(f"    crypto (engine burst calls, inside encrypt/decrypt): {crypto:.6f}")
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------------ control socket
    def command(self, text: str) -> str:
        """One operational command (`control_socket.parse_command`), its output."""
        cmd = parse_command(text)
        verb = cmd.words[0]
        if cmd.words[:2] == ["show", "daemon"]:
            return self.statistics()
        if verb == "show":
            return self.gw.show(" ".join(cmd.words[1:]))
        if verb == "commit":
            return self.commit()
        if verb == "clear":
            return self._clear(cmd)
        if verb == "request":
            return self._request(cmd)
        raise CommandError(f"unknown command: {text}")

    def _clear(self, cmd) -> str:
        now = time.monotonic()
        what = cmd.words[2]
        if what == "ike":
            peer = cmd.args.get("peer")
            n = self.delete_ike_sas(peer=peer, grace=1.0)
            return f"{n} IKE SA{'s' if n != 1 else ''} cleared\n"
        vpn = cmd.args.get("vpn-name")
        ike = self.ike
        n = 0
        for name in list(self.gw.tunnel_names()):
            if vpn is not None and name != vpn:
                continue
            if ike is not None and name in ike.vpns:
                s = ike.session_of(name)
                if s is not None:
                    for p in self.gw.tunnel(name).pairs:
                        s.delete_child(p.inbound.spi, now)
                        n += 1
                    continue
            if self.gw.sa_type(name) != "manual":
                self.gw.remove(name, "cleared by operator")
                n += 1
        if vpn is not None and ike is not None and vpn not in self.gw.config.ipsec_vpns:
            raise CommandError(f"no VPN named {vpn}")
        self._flush_ike(now)
        return f"{n} IPsec SA pair{'s' if n != 1 else ''} cleared\n"

    def _request(self, cmd) -> str:
        now = time.monotonic()
        ike = self.ike
        if ike is None:
            raise CommandError("no IKE VPN is configured")
        n = 0
        if cmd.words[2] == "ike":
            peer = cmd.args.get("peer")
            for s in ike.manager.sessions:
                if s.state != IkeSaState.ESTABLISHED:
                    continue
                p = ike.peers.get(s.config.name)
                if peer is not None and (p is None or p.remote != peer):
                    continue
                s.rekey_ike(now)
                n += 1
            self._flush_ike(now)
            return f"IKE SA rekey started for {n} IKE SA{'s' if n != 1 else ''}\n"
        vpn = cmd.args.get("vpn-name")
        for name in self.gw.tunnel_names():
            if vpn is not None and name != vpn:
                continue
            s = ike.session_of(name)
            if s is None:
                continue
            for p in self.gw.tunnel(name).pairs:
                s.rekey_child(p.inbound.spi, now)
                n += 1
        self._flush_ike(now)
        return f"IPsec SA rekey started for {n} SA pair{'s' if n != 1 else ''}\n"

"""`inline-ipsec run CONFIG`: a gateway that runs until told to stop, with a control socket.

This is the run without a data path to the outside (IKE only, or an in-process peer); with
`--tun NAME` the CLI runs `io.daemon.Daemon` instead, which carries real traffic.

The gateway installs the configuration's manual SAs and runs IKEv2 for its IKE VPNs
(`ike_control.py`) over UDP on a local address: `ike_listen` ("127.0.0.1:PORT", NAT-T on
PORT+1; port 0 picks free ports) and `ike_peer` ("HOST:PORT[:NATT]", the other `run` process),
to which every configured peer address is mapped. With a `peer` configuration a second gateway
runs in the same process (its own loopback UDP ports; IKE between the two is real), its data
plane on an in-memory wire, and a trickle of test traffic crosses every tunnel both ways, so
the counters move. `prekeyed` replaces IKE by the pre-keyed stand-in (`keying.py`). Requests
on the control socket are answered between ticks; the loop ends after `duration` seconds or
at `stop()` (SIGINT/SIGTERM in the CLI).

At start-up every VPN that cannot come up is printed with its reasons (`vpn_verdict`) and
counted as down; `show security ipsec inactive-tunnels` lists it with the same reason. At
the end the number of VPNs still down is printed.
"""
from __future__ import annotations

import dataclasses
import signal
import sys
import time
from typing import Optional, Sequence, TextIO

from .control_socket import ControlServer
from ..dataplane.gateway import DEFAULT_MTU, Gateway
from ..control.ike_control import IkeControl
from .ike_link import IkeUdpPort, pair_controls
from .link import WireLink
from .traffic import flows, packets
from ..control.vpn_verdict import vpn_verdicts

__all__ = ["run_gateway", "parse_transport"]

TICK = 0.1


def parse_transport(text: str, natt_offset: int = 1) -> tuple[str, int, int]:
    """"HOST:PORT[:NATT]" (IPv6 as "[::1]:PORT") -> (host, port, NAT-T port)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        parts = rest.lstrip(":").split(":") if rest else []
    else:
        host, *parts = text.split(":")
    if not parts or not parts[0].isdigit():
        raise ValueError(f"{text!r}: expected HOST:PORT[:NATT-PORT]")
    port = int(parts[0])
    natt = int(parts[1]) if len(parts) > 1 else (port + natt_offset if port else 0)
    return host, port, natt


def _start_ike(gw: Gateway, other: Optional[Gateway], ike_listen: str,
               ike_peer: Optional[str], nat_t: Sequence[str]) -> list[IkeUdpPort]:
    host, port, natt = parse_transport(ike_listen)
    mine = IkeUdpPort(host, port, natt)
    # without --ike-peer / --peer there is no peer to negotiate with (see the caller)
    now = time.monotonic()
    if other is not None:
        theirs = IkeUdpPort(host)
        ia, ib = pair_controls(gw, other, mine.transport, theirs.transport,
                               a_kw={"nat_t": list(nat_t)})
        mine.attach(ia)
        theirs.attach(ib)
        ia.start(now)
        ib.start(now)
        return [mine, theirs]
    if ike_peer is None:        # nobody to talk to: manual SAs only
        mine.close()
        return []
    target = parse_transport(ike_peer)
    remotes = {r for r in (IkeControl.remote_addresses(gw))}
    ctl = IkeControl(gw, local=mine.transport[:2], natt_port=mine.transport[2],
                     peers={r: target for r in remotes}, nat_t=nat_t, **pki_keywords(gw))
    mine.attach(ctl)
    ctl.start(now)
    return [mine]


def pki_keywords(gw: Gateway) -> dict:
    """`IkeControl` keywords from the gateway's PKI directory (`--pki-dir`): the loaded local
    certificates with their keys, and every loaded CA certificate as a trust anchor."""
    store = gw.pki
    if store is None:
        return {}
    return {"credentials": store.credentials(), "ca_certificates": store.ca_certificates()}


def _start_hub(gw: Gateway, ike_listen: str, ike_peer: Optional[str]):
    """A hub-and-spoke gateway (every IKE VPN on a multipoint st0, a dynamic or an advpn
    gateway): `inline_ipsec.hub.HubControl` on the IKE ports; configured peers are mapped to
    `ike_peer` as for IkeControl, dynamic VPNs accept spokes from anywhere."""
    from ..hub.control import HubControl
    host, port, natt = parse_transport(ike_listen)
    mine = IkeUdpPort(host, port, natt)
    peers = {}
    if ike_peer is not None:
        target = parse_transport(ike_peer)
        peers = {r: target for r in IkeControl.remote_addresses(gw)}
    hub = HubControl(gw, local=mine.transport[:2], natt_port=mine.transport[2], peers=peers)
    mine.attach(hub)  # type: ignore[arg-type]
    hub.start(time.monotonic())
    return [mine], hub


def _hub_config(gw: Gateway) -> bool:
    from ..control.ike_config import ike_vpns
    from ..hub.control import hub_vpns
    vpns = {v.name for v in ike_vpns(gw.config)}
    return bool(vpns) and vpns <= {v.name for v in hub_vpns(gw.config)}


def standalone_notes(gw: Gateway, *, hub_run: bool) -> list[str]:
    """What `inline-ipsec run` does not carry out for this configuration, one line each:
    MNHA (`chassis high-availability`) runs in-process through `inline_ipsec.ha`
    (docs/mnha.md), never in this runner; hub-and-spoke VPNs need the hub control, which
    only the in-process runner (`hub_run`) starts."""
    notes = []
    if gw.config.high_availability is not None:
        notes.append("not carried out: chassis high-availability: this process runs as a "
                     "standalone node (no ICL, no SRG activeness, no SA sync); MNHA runs "
                     "in-process with inline_ipsec.ha (docs/mnha.md)")
    if not hub_run and _hub_config(gw):
        notes.append("not carried out: hub-and-spoke VPNs (multipoint st0, dynamic or advpn "
                     "gateways) run only without --tun (inline_ipsec.hub, docs/advpn.md); "
                     "here they negotiate as point-to-point VPNs")
    return notes


def run_gateway(config: str, *, control_path: str, duration: Optional[float] = None,
                peer: Optional[str] = None, prekeyed: bool = False,
                nat_t: Sequence[str] = (), mtu: int = DEFAULT_MTU, burst: int = 8,
                pfe_backend: Optional[str] = None, ike_listen: str = "127.0.0.1:0",
                ike_peer: Optional[str] = None,
                out: TextIO = sys.stdout, install_signals: bool = True,
                pki_dir: Optional[str] = None) -> int:
    """Run a gateway from the configuration file `config` (see module docstring)."""
    gw = Gateway.from_file(config, name="local", mtu=mtu, pfe_backend=pfe_backend)
    if gw.config.warning():
        out.write(f"{config}: warning: {gw.config.warning()}\n")
    if pki_dir is not None:
        from ..pki import PkiStore
        gw.pki = PkiStore(pki_dir)
    other = None
    if peer is not None:
        other = Gateway.from_file(peer, name="peer", mtu=mtu, pfe_backend=pfe_backend)
    ports: list[IkeUdpPort] = []
    hub = None
    if other is None and not prekeyed and _hub_config(gw):
        ports, hub = _start_hub(gw, ike_listen, ike_peer)
    elif prekeyed:
        gw.establish_prekeyed(udp_encap=nat_t)
        if other is not None:
            other.establish_prekeyed(udp_encap=nat_t)
    elif any(v.ike is not None for v in gw.config.ipsec_vpns.values()):
        ports = _start_ike(gw, other, ike_listen, ike_peer, nat_t)
        if not ports:
            out.write("IKE VPNs stay down: no --ike-peer HOST:PORT (the peer's IKE), no "
                      "--peer CONFIG, no --prekeyed\n")
    link = WireLink(gw, other) if other is not None else None
    plan: list = []
    server = ControlServer(control_path, hub.show if hub is not None else gw.show)
    previous = {}
    if install_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: server.stop())
    tunnels = gw.distributor.tunnels()
    offloaded = sum(1 for t in tunnels if t.offloaded)
    verdicts = gw.ike.verdicts if gw.ike is not None else vpn_verdicts(gw.config)
    cannot = {n: v for n, v in verdicts.items() if not v.can_come_up}
    if hub is not None:                 # HubControl's own account of what it cannot run
        cannot = {n: dataclasses.replace(v, reasons=(hub.unsupported[n],))
                  if n in hub.unsupported and not v.reasons else v
                  for n, v in verdicts.items() if n in hub.unsupported}
    configured = len(gw.config.ipsec_vpns)
    out.write(f"inline-ipsec gateway running: {len(tunnels)} tunnels ({offloaded} offloaded, "
              f"{len(tunnels) - offloaded} on the CPU)\n"
              f"control socket: {control_path}\n"
              f"  inline-ipsec show security ipsec security-associations --control "
              f"{control_path}\n"
              + (f"stops after {duration:g} s\n" if duration else
                 "stop with Ctrl-C (SIGINT) or SIGTERM\n"))
    if cannot:
        out.write(f"{len(cannot)} of {configured} VPNs cannot come up (counted as down):\n")
        for name, verdict in cannot.items():
            for why in verdict.reasons:
                out.write(f"  {name}: {why}\n")
    for name, verdict in verdicts.items():
        for note in verdict.notes:
            out.write(f"not carried out: {name}: {note}\n")
    for note in standalone_notes(gw, hub_run=hub is not None):
        out.write(note + "\n")
    if gw.policy is not None:       # IKE reaches the device only where host-inbound allows it
        for name, g in gw.config.ike_gateways.items():
            local = gw.config.local_address_of(g)
            if local is not None and not gw.policy.zones.host_inbound_allows(local, "ike"):
                out.write(f"ike gateway {name}: "
                          f"{gw.policy.zones.host_inbound_reason(local, 'ike')}: IKE from its "
                          f"peer is dropped on {local}\n")
    ike = gw.ike
    if ports and ike is not None:
        t = ports[0].transport
        versions = sorted({p.version for p in ike.peers.values()}) or [2]
        label = " and ".join(f"IKEv{v}" for v in versions)
        out.write(f"{label} on udp {t[0]}:{t[1]} (NAT-T {t[2]}), "
                  f"{len(ike.vpns)} IKE VPNs\n")
    if hub is not None:
        t = ports[0].transport
        out.write(f"hub and spoke (inline_ipsec.hub): {len(hub.vpns)} VPNs on udp "
                  f"{t[0]}:{t[1]} (NAT-T {t[2]}); show security ipsec next-hop-tunnels, "
                  "show security advpn statistics\n")
    if link is not None:
        out.write(f"test traffic: every tunnel to the in-process peer, "
                  f"{burst} packets per flow every {TICK:g} s\n")
    out.flush()
    up_reported = False
    start = time.monotonic()
    tick = 0
    try:
        while not server.stopped:
            if duration is not None and time.monotonic() - start >= duration:
                break
            for p in ports:
                p.poll(0.0)
            if ports and ike is not None and not up_reported and ike.up():
                up_reported = True
                out.write(f"IKE: all {len(ike.vpns)} IKE VPNs up after "
                          f"{time.monotonic() - start:.2f} s"
                          + (f" ({len(cannot)} VPNs cannot come up)" if cannot else "")
                          + "\n")
                out.flush()
            if link is not None and other is not None and \
                    len(plan) < 2 * len(set(gw.tunnel_names()) & set(other.tunnel_names())):
                plan = flows(gw, other)
            if link is not None and plan:
                for f in plan:
                    sender = link.a if f.sender == "a" else link.b
                    link.send(sender, packets(f, burst, start=tick * burst))
                tick += 1
            gw.expire_drained()
            server.poll(TICK / 4 if ports else TICK)
    finally:
        server.close()
        for p in ports:
            p.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    c = gw.counters
    down = configured - len(gw.distributor)
    if hub is not None:                 # an AutoVPN VPN is up with any of its spokes
        up = {t.vpn for t in hub.tunnels.values()}
        down = sum(1 for n in gw.config.ipsec_vpns if n not in up and n not in gw.distributor)
    out.write(f"stopped after {time.monotonic() - start:.1f} s: {server.requests} show "
              f"requests answered; {c.transmitted_outer} packets encrypted, "
              f"{c.delivered_inner} decrypted; {down} of {configured} VPNs down"
              + (f" ({len(cannot)} cannot come up)" if cannot else "") + "\n")
    return 0

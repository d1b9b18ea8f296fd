"""`inline-ipsec run CONFIG`: a gateway that runs until told to stop, with a control socket.

The gateway installs the configuration's manual SAs and runs IKEv2 for its IKE VPNs
(`ike_control.py`) over UDP on a loopback address: `ike_listen` ("127.0.0.1:PORT", NAT-T on
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
                     peers={r: target for r in remotes}, nat_t=nat_t)
    mine.attach(ctl)
    ctl.start(now)
    return [mine]


def run_gateway(config: str, *, control_path: str, duration: Optional[float] = None,
                peer: Optional[str] = None, prekeyed: bool = False,
                nat_t: Sequence[str] = (), mtu: int = DEFAULT_MTU, burst: int = 8,
                pfe_backend: Optional[str] = None, ike_listen: str = "127.0.0.1:0",
                ike_peer: Optional[str] = None,
                out: TextIO = sys.stdout, install_signals: bool = True) -> int:
    """Run a gateway from the configuration file `config` (see module docstring)."""
    gw = Gateway.from_file(config, name="local", mtu=mtu, pfe_backend=pfe_backend)
    other = None
    if peer is not None:
        other = Gateway.from_file(peer, name="peer", mtu=mtu, pfe_backend=pfe_backend)
    ports: list[IkeUdpPort] = []
    if prekeyed:
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
    server = ControlServer(control_path, gw.show)
    previous = {}
    if install_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: server.stop())
    tunnels = gw.distributor.tunnels()
    offloaded = sum(1 for t in tunnels if t.offloaded)
    verdicts = gw.ike.verdicts if gw.ike is not None else vpn_verdicts(gw.config)
    cannot = {n: v for n, v in verdicts.items() if not v.can_come_up}
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
    ike = gw.ike
    if ports and ike is not None:
        t = ports[0].transport
        out.write(f"IKEv2 on udp {t[0]}:{t[1]} (NAT-T {t[2]}), "
                  f"{len(ike.vpns)} IKE VPNs\n")
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
    out.write(f"stopped after {time.monotonic() - start:.1f} s: {server.requests} show "
              f"requests answered; {c.transmitted_outer} packets encrypted, "
              f"{c.delivered_inner} decrypted; {down} of {configured} VPNs down"
              + (f" ({len(cannot)} cannot come up)" if cannot else "") + "\n")
    return 0

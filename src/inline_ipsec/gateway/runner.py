"""`inline-ipsec run CONFIG`: a gateway that runs until told to stop, with a control socket.

The gateway installs the configuration's manual SAs (and, with `prekeyed`, brings its IKE VPNs
up with pre-keyed child SAs, `keying.py`). With a `peer` configuration a second gateway runs in
the same process on an in-memory wire, and a trickle of test traffic crosses every tunnel both
ways, so the counters move. Requests on the control socket are answered between ticks; the
loop ends after `duration` seconds or at `stop()` (SIGINT/SIGTERM in the CLI).
"""
from __future__ import annotations

import signal
import sys
import time
from typing import Optional, Sequence, TextIO

from .control import ControlServer
from .core import DEFAULT_MTU, Gateway
from .link import WireLink
from .traffic import flows, packets

__all__ = ["run_gateway"]

TICK = 0.1


def run_gateway(config: str, *, control_path: str, duration: Optional[float] = None,
                peer: Optional[str] = None, prekeyed: bool = False,
                nat_t: Sequence[str] = (), mtu: int = DEFAULT_MTU, burst: int = 8,
                pfe_backend: Optional[str] = None,
                out: TextIO = sys.stdout, install_signals: bool = True) -> int:
    """Run a gateway from the configuration file `config` (see module docstring)."""
    gw = Gateway.from_file(config, name="local", mtu=mtu, pfe_backend=pfe_backend)
    if prekeyed:
        gw.establish_prekeyed(udp_encap=nat_t)
    link = plan = None
    if peer is not None:
        other = Gateway.from_file(peer, name="peer", mtu=mtu, pfe_backend=pfe_backend)
        if prekeyed:
            other.establish_prekeyed(udp_encap=nat_t)
        link = WireLink(gw, other)
        plan = flows(gw, other)
    server = ControlServer(control_path, gw.show)
    previous = {}
    if install_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: server.stop())
    tunnels = gw.distributor.tunnels()
    offloaded = sum(1 for t in tunnels if t.offloaded)
    out.write(f"inline-ipsec gateway running: {len(tunnels)} tunnels ({offloaded} offloaded, "
              f"{len(tunnels) - offloaded} on the CPU)\n"
              f"control socket: {control_path}\n"
              f"  inline-ipsec show security ipsec security-associations --control "
              f"{control_path}\n"
              + (f"stops after {duration:g} s\n" if duration else
                 "stop with Ctrl-C (SIGINT) or SIGTERM\n"))
    if plan:
        out.write(f"test traffic: {len(plan)} flows to the in-process peer, "
                  f"{burst} packets per flow every {TICK:g} s\n")
    out.flush()
    start = time.monotonic()
    tick = 0
    try:
        while not server.stopped:
            if duration is not None and time.monotonic() - start >= duration:
                break
            if link is not None and plan:
                for f in plan:
                    sender = link.a if f.sender == "a" else link.b
                    link.send(sender, packets(f, burst, start=tick * burst))
                tick += 1
            gw.expire_drained()
            server.poll(TICK)
    finally:
        server.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    c = gw.counters
    out.write(f"stopped after {time.monotonic() - start:.1f} s: {server.requests} show "
              f"requests answered; {c.transmitted_outer} packets encrypted, "
              f"{c.delivered_inner} decrypted\n")
    return 0

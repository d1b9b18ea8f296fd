"""`inline-ipsec demo`: two modelled SRX gateways on the built-in configuration.

Both gateways load Junos `set` statements (`io/demo_config.py`): four VPNs are offloaded
to the PFE (IPv4, IPv6, NAT-T, a manual SA) and seven stay on the CPU, one per reason of
docs/design.md Table 1. The IKE VPNs come up with real IKEv2 between the two gateways over loopback
UDP (one with a PPK, RFC 8784; one over NAT-T; one AH child SA); `build(ike="prekeyed")` keeps
the old stand-in (`control/keying.py`). Traffic crosses every tunnel both ways on an in-memory
wire; then the edge cases (pre-fragmentation, MTU drops with ICMP, replay, NAT-T
demultiplexing, a traffic-selector violation), the show commands (IKE SAs included), one IKEv2
child rekey and one delete, two more gateways over IKEv1 (`demo_config.ikev1_config`: Main
Mode, an offloaded AES-GCM-128 VPN and a CBC one on the CPU, a Quick Mode rekey), packets per
second per path measured in this run, the hw-offload-disable scenario, a small group VPN (a
GDOI key server and three members over loopback UDP, `groupvpn/demo.py`), and the
PFE-vs-raw-crypto table.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, Sequence, TextIO

from . import __version__
from .benchmark import IMIX, machine, measure_naive
from .dataplane.gateway import Gateway
from .ike.events import ChildSaDown
from .io.link import WireLink
from .io.demo_config import DEMO_VPNS, NAT_T_VPNS, demo_config, ikev1_config
from .io.ike_link import IkeUdpPort, pair_controls, run_udp
from .io.traffic import Flow, flows, packets, udp_packet
from .packet.fragment import Reassembler

RULE = "─" * 78


def _section(w, title: str) -> None:
    w(f"\n{title}\n{RULE}\n")


def _side_by_side(left: str, right: str, width: int = 46) -> str:
    """Two show outputs in two columns (gw-a left, gw-b right)."""
    ls, rs = left.rstrip("\n").split("\n"), right.rstrip("\n").split("\n")
    ls += [""] * (len(rs) - len(ls))
    rs += [""] * (len(ls) - len(rs))
    return "".join(f"{x:<{width}}{y}".rstrip() + "\n" for x, y in zip(ls, rs))


class DemoIke:
    """The two gateways' IKEv2 control planes and their loopback UDP ports."""

    def __init__(self, a: Gateway, b: Gateway, ports: list, controls: tuple) -> None:
        self.a, self.b = a, b
        self.ports = ports
        self.ia, self.ib = controls
        self.seconds = 0.0

    def run_until(self, cond, timeout: float = 10.0) -> bool:
        return run_udp(self.ports, cond, timeout)

    def close(self) -> None:
        for p in self.ports:
            p.close()


def build(hw_offload_disable: bool = False, ike: str = "udp"
          ) -> tuple[Gateway, Gateway, WireLink]:
    """The two demo gateways, their tunnels up, on one wire. `ike="udp"`: real IKEv2 between
    them over loopback UDP (free ports on 127.0.0.1); `"prekeyed"`: the stand-in of
    `control/keying.py` for every IKE VPN. With IKE, the `DemoIke` is `link.ike`."""
    a = Gateway.from_text(demo_config("a", hw_offload_disable), name="gw-a")
    b = Gateway.from_text(demo_config("b", hw_offload_disable), name="gw-b")
    if ike == "prekeyed":
        a.establish_prekeyed(udp_encap=NAT_T_VPNS)
        b.establish_prekeyed(udp_encap=NAT_T_VPNS)
        return a, b, WireLink(a, b)
    pa, pb = IkeUdpPort("127.0.0.1"), IkeUdpPort("127.0.0.1")
    # gw-a claims a NAT on vpn-natt (RFC 7296 §2.23): IKE floats to 4500, ESP in UDP
    ia, ib = pair_controls(a, b, pa.transport, pb.transport,
                           a_kw={"nat_t": NAT_T_VPNS})
    pa.attach(ia)
    pb.attach(ib)
    state = DemoIke(a, b, [pa, pb], (ia, ib))
    t0 = time.perf_counter()
    ia.start(time.monotonic())
    ib.start(time.monotonic())
    if not state.run_until(lambda: ia.up() and ib.up(), 15.0):
        missing = [n for n in ia.vpns if n not in a.distributor or n not in b.distributor]
        raise RuntimeError(f"IKE did not bring up {missing}: {ia.errors + ib.errors}")
    state.seconds = time.perf_counter() - t0
    link = WireLink(a, b)
    link.ike = state  # type: ignore[attr-defined]
    return a, b, link


def send_all(link: WireLink, plan: list[Flow], per_flow: int, burst: int = 32) -> int:
    """Send `per_flow` packets on every flow, in bursts; returns packets delivered."""
    delivered = 0
    for f in plan:
        sender = link.a if f.sender == "a" else link.b
        for start in range(0, per_flow, burst):
            pkts = packets(f, min(burst, per_flow - start), 64 + (start * 37) % 1300, start)
            out = link.send(sender, pkts)
            assert out.delivered == pkts, f"{f.vpn}: traffic did not arrive intact"
            delivered += len(out.delivered)
    return delivered


def _verdicts(w, a: Gateway) -> None:
    w(f"  {'VPN':14} {'engine':7} {'offload':8} {'outer':5} {'SA pairs':>8}  why\n")
    notes = {v.name: v.why for v in DEMO_VPNS}
    for rec in a.distributor.tunnels():
        outer = "IPv6" if rec.pairs[0].outbound.outer_ipv6 else "IPv4"
        why = notes.get(rec.name, "")
        if not rec.offloaded:
            why = "; ".join(rec.placement.reasons)
        w(f"  {rec.name:14} {'PFE' if rec.offloaded else 'CPU':7} "
          f"{'Yes' if rec.offloaded else 'No':8} {outer:5} {len(rec.pairs):>8}  {why}\n")


def _traffic_table(w, a: Gateway, b: Gateway) -> None:
    w(f"  {'VPN':14} {'engine':6} {'a>b sent':>9} {'b got':>7} {'b>a sent':>9} {'a got':>7} "
      f"{'drops':>6}\n")
    for fa in a.flows():
        fb = b.tunnel_flow(fa.name)
        drops = (fa.out_mtu_drops + fa.out_engine_drops + fa.in_ts_fail + fa.in_engine_drops
                 + fb.out_mtu_drops + fb.out_engine_drops + fb.in_ts_fail + fb.in_engine_drops)
        w(f"  {fa.name:14} {fa.engine.upper():6} {fa.out_encrypted:>9} {fb.in_delivered:>7} "
          f"{fb.out_encrypted:>9} {fa.in_delivered:>7} {drops:>6}\n")


def _edge_cases(w, a: Gateway, b: Gateway, link: WireLink) -> None:
    plan = {(f.vpn, f.sender, f.ipv6): f for f in flows(a, b)}
    v4 = plan[("vpn-gcm256", "a", False)]
    # 1. pre-fragmentation (RFC 791): DF clear, too big for the 1500-byte tunnel MTU
    big = udp_packet(v4.src, v4.dst, bytes(range(256)) * 12, ident=0x4242)
    out = link.send(a, [big])
    whole = [r for r in map(Reassembler().add, out.delivered) if r]
    w(f"  pre-fragmentation   {len(big)}-byte IPv4 packet, DF clear, on vpn-gcm256: "
      f"{len(out.delivered)} fragments encrypted,\n"
      f"                      reassembled at gw-b: "
      f"{'identical to the original' if whole == [big] else 'MISMATCH'}\n")
    # 2. DF set / IPv6: dropped, ICMP back to the sender (RFC 792/1191, RFC 4443)
    df = udp_packet(v4.src, v4.dst, bytes(1472), df=True)
    sent = a.outbound([df])
    icmp = sent.local[0]
    mtu = int.from_bytes(icmp[26:28], "big")
    w(f"  DF set              {len(df)}-byte IPv4 packet: dropped (Exceeds tunnel MTU); "
      f"ICMP type {icmp[20]} code {icmp[21]},\n"
      f"                      next-hop MTU {mtu}, sent back to {v4.src}\n")
    v6 = plan[("vpn-gcm128-v6", "a", True)]
    sent6 = a.outbound([udp_packet(v6.src, v6.dst, bytes(1452))])
    ptb = sent6.local[0]
    w(f"  IPv6 too big        1500-byte IPv6 packet on vpn-gcm128-v6: ICMPv6 type {ptb[40]} "
      f"(Packet Too Big), MTU {int.from_bytes(ptb[44:48], 'big')}\n")
    # 3. a replayed packet (RFC 4303 §3.4.3) and a forged one (§3.4.4)
    wire = a.outbound(packets(v4, 1, 100, 10**6)).wire[0]
    forged = bytearray(a.outbound(packets(v4, 1, 100, 10**6 + 1)).wire[0])
    forged[-3] ^= 1
    got = b.inbound([wire, wire, bytes(forged)])
    w(f"  replay and forgery  one packet sent twice and one with a flipped ICV bit: "
      f"{len(got.delivered)} delivered, {got.dropped} dropped\n")
    # 4. NAT-T demultiplexing at UDP 4500 (RFC 3948 §2.2, §2.3)
    natt = b.tunnel("vpn-natt").pairs[0].inbound
    keepalive = udp_packet(natt.tunnel_src, natt.tunnel_dst, b"\xff", 4500, 4500)
    ike = udp_packet(natt.tunnel_src, natt.tunnel_dst, bytes(4) + b"IKE_SA_INIT...",
                     4500, 4500)
    got = b.inbound([keepalive, ike])
    w(f"  NAT-T port 4500     a keepalive (0xFF) counted, a non-ESP-marker datagram handed to "
      f"IKE ({len(got.ike)} queued)\n")
    # 5. a peer that sends outside the negotiated selectors (RFC 4301 §5.2)
    rec = a.tunnel("vpn-multi")
    sel0, sel1 = a.selectors("vpn-multi")
    stray = udp_packet(str(sel1.local[0][9]), str(sel0.remote[0][9]), b"outside TS")
    got = b.inbound([rec.engine.encrypt(rec.pairs[0].outbound_handle, stray)])
    w(f"  TS check            vpn-multi child SA 1 carrying a packet from child SA 2's "
      f"network: {'dropped (TS check fail)' if got.dropped else 'DELIVERED'}\n")


def _throughput(w, a: Gateway, b: Gateway, link: WireLink, seconds: float = 0.6) -> None:
    plan = {(f.vpn, f.sender, f.ipv6): f for f in flows(a, b)}
    w(f"  {'path':4} {'tunnel':14} {'gateway a->b pps':>17} {'engine-only pps':>16}  "
      "(512-byte packets, bursts of 64, one core)\n")
    for kind, vpn in (("PFE", "vpn-gcm256"), ("CPU", "vpn-cbc")):
        f = plan[(vpn, "a", False)]
        burst = packets(f, 64, 512)
        before = [g.counters.paths[kind.lower()] for g in (a, b)]
        secs0 = sum(p.seconds for p in before)
        pk0 = sum(p.packets for p in before)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            out = link.send(a, burst)
            n += len(out.delivered)
        elapsed = time.perf_counter() - start
        after = [g.counters.paths[kind.lower()] for g in (a, b)]
        eng_s = sum(p.seconds for p in after) - secs0
        eng_p = sum(p.packets for p in after) - pk0
        w(f"  {kind:4} {vpn:14} {n / elapsed:>17,.0f} {eng_p / eng_s if eng_s else 0:>16,.0f}\n")
    w("  gateway pps: routing, MTU check, encrypt at gw-a, SPI lookup, decrypt and selector check\n"
      "  at gw-b, all in Python except the engines; engine-only pps: inside the burst calls\n"
      "  (encrypt and decrypt packets per second of engine time).\n")


def _spis(gw: Gateway, vpn: str) -> str:
    if vpn not in gw.distributor:
        return "(no tunnel)"
    rec = gw.tunnel(vpn)
    pairs = " ".join(f"in 0x{p.inbound.spi:08x}/out 0x{p.outbound.spi:08x}" for p in rec.pairs)
    return pairs + (f", draining in 0x{rec.draining[0].spec.spi:08x}" if rec.draining else "")


def _rekey_and_delete(w, a: Gateway, b: Gateway, link: WireLink) -> None:
    """Rekey vpn-cbc's child SA (make-before-break, RFC 7296 §1.3.3, §2.8) and delete
    vpn-multi's second child SA (§1.4.1), showing what the distributor has installed."""
    ike = link.ike
    plan = {(f.vpn, f.sender, f.ipv6): f for f in flows(a, b)}
    w(f"  gw-a vpn-cbc before:   {_spis(a, 'vpn-cbc')}\n")
    session = ike.ia.session_of("vpn-cbc")
    old = next(iter(session.children))
    n_events = len(ike.ia.events)
    session.rekey_child(old, time.monotonic())
    ok = ike.run_until(lambda: any(isinstance(e, ChildSaDown) and v == "vpn-cbc"
                                   for v, e in ike.ia.events[n_events:]), 5.0)
    names = [type(e).__name__ for v, e in ike.ia.events[n_events:] if v == "vpn-cbc"]
    w(f"  gw-a rekeys vpn-cbc:   {' -> '.join(names)}{'' if ok else ' (INCOMPLETE)'}\n")
    w(f"  gw-a vpn-cbc after:    {_spis(a, 'vpn-cbc')}   (gw-b: {_spis(b, 'vpn-cbc')})\n")
    f = plan[("vpn-cbc", "a", False)]
    got = link.send(a, packets(f, 8, 300, 5000)).delivered
    w(f"  traffic on the new SA: {len(got)}/8 packets delivered; the old inbound SA is "
      f"gone on both sides\n\n")
    w(f"  gw-b vpn-multi before: {_spis(b, 'vpn-multi')}\n")
    session = ike.ib.session_of("vpn-multi")
    second = list(session.children)[-1]
    n_events = len(ike.ib.events)
    session.delete_child(second, time.monotonic())
    ok = ike.run_until(lambda: len(b.tunnel("vpn-multi").pairs) == 1
                       and len(a.tunnel("vpn-multi").pairs) == 1, 5.0)
    w(f"  gw-b deletes its second child SA (INFORMATIONAL Delete){'' if ok else ' FAILED'}\n")
    w(f"  gw-b vpn-multi after:  {_spis(b, 'vpn-multi')}   (gw-a: {_spis(a, 'vpn-multi')})\n")
    ev = [e for e in a.distributor.events("vpn-multi") if "DEL" in e or "delet" in e]
    if ev:
        w(f"  gw-a tunnel event:     {ev[-1]}\n")


def _ikev1(w) -> None:
    """Two more gateways on `ikev1_config` (a `v1-only` IKE gateway, the Junos default):
    Main Mode PSK and Quick Mode (RFC 2409) over loopback UDP, traffic both ways, the shows,
    and a Quick Mode rekey of the CBC VPN with traffic on the new SPIs."""
    a = Gateway.from_text(ikev1_config("a"), name="v1-a")
    b = Gateway.from_text(ikev1_config("b"), name="v1-b")
    pa, pb = IkeUdpPort("127.0.0.1"), IkeUdpPort("127.0.0.1")
    try:
        ia, ib = pair_controls(a, b, pa.transport, pb.transport, backoff=0.2)
        pa.attach(ia)
        pb.attach(ib)
        t0 = time.perf_counter()
        ia.start(time.monotonic())
        ib.start(time.monotonic())
        ok = run_udp([pa, pb], lambda: ia.up() and ib.up(), 10.0)
        ms = (time.perf_counter() - t0) * 1000
        w(f"  v1-a 192.0.2.1 <== in-memory wire ==> v1-b 198.51.100.1; IKEv1 over loopback "
          f"UDP: {len(ia.vpns)} VPNs on one\n  ISAKMP SA (Main Mode, PSK, DH group 19, "
          f"then a Quick Mode per VPN) {'up' if ok else 'NOT UP'} in {ms:.0f} ms\n")
        link = WireLink(a, b)
        n = send_all(link, flows(a, b), 32)
        for vpn in ("v1-gcm128", "v1-cbc"):
            rec = a.tunnel(vpn)
            where = "PFE" if rec.offloaded else "CPU (" + "; ".join(rec.placement.reasons) + ")"
            w(f"  {vpn:10} on the {where}\n")
        w(f"  {n} packets delivered intact, both ways\n")
        _section(w, "   v1-a> show security ike security-associations")
        w(a.show("security ike security-associations"))
        _section(w, "   v1-b> show security ipsec security-associations detail vpn-name "
                    "v1-gcm128  (tunnel lines)")
        detail = b.show("security ipsec security-associations detail vpn-name v1-gcm128")
        w(detail[:detail.index("  Direction:")])
        _section(w, "   IKEv1 at work: a Quick Mode rekey of v1-cbc (make-before-break)")
        w(f"  v1-a v1-cbc before: {_spis(a, 'v1-cbc')}\n")
        session = ia.session_of("v1-cbc")
        old = next(s for s, c in session.children.items() if c.config.name.startswith("v1-cbc"))
        mark = len(ia.events)
        session.rekey_child(old, time.monotonic())
        ok = run_udp([pa, pb], lambda: any(isinstance(e, ChildSaDown) and v == "v1-cbc"
                                           for v, e in ia.events[mark:]), 5.0)
        names = [type(e).__name__ for v, e in ia.events[mark:] if v == "v1-cbc"]
        w(f"  v1-a rekeys v1-cbc: {' -> '.join(names)}{'' if ok else ' (INCOMPLETE)'}\n")
        w(f"  v1-a v1-cbc after:  {_spis(a, 'v1-cbc')}   (v1-b: {_spis(b, 'v1-cbc')})\n")
        f = next(x for x in flows(a, b) if x.vpn == "v1-cbc" and x.sender == "a")
        got = link.send(a, packets(f, 8, 300, 5000)).delivered
        w(f"  IKEv1 traffic on the new SA: {len(got)}/8 packets delivered\n")
    finally:
        pa.close()
        pb.close()


def run(out: TextIO = sys.stdout) -> int:
    w = out.write
    t0 = time.perf_counter()
    m = machine()
    w(f"inline-ipsec {__version__}: a software model of Juniper SRX inline IPsec\n"
      f"PFE = ESP/AES-GCM in C over {m['openssl']}; CPU engine = Python over cryptography; "
      f"{m['cores']} cores\n")

    a, b, link = build()
    ike = link.ike
    _section(w, "1. Two gateways, built-in configuration (inline-ipsec check prints the same "
                "verdicts)")
    pa, pb = (p.transport for p in ike.ports)
    w("  gw-a 192.0.2.1 / 2001:db8::1  <== in-memory wire ==>  gw-b 198.51.100.1 / "
      "2001:db8:ffff::1\n"
      f"  IKEv2 over loopback UDP: gw-a at 127.0.0.1:{pa[1]} (NAT-T {pa[2]}), gw-b at "
      f"127.0.0.1:{pb[1]} (NAT-T {pb[2]})\n"
      f"  {len(ike.ia.vpns)} VPNs negotiated (IKE_SA_INIT + IKE_AUTH, PSK, DH group 20) in "
      f"{ike.seconds * 1000:.0f} ms; vpn-gcm256 mixes a PPK\n"
      "  (RFC 8784), vpn-natt floats to NAT-T (RFC 7296 §2.23), vpn-ah negotiates an AH child "
      "SA\n  (RFC 4302). vpn-manual is a static manual SA.\n\n")
    _verdicts(w, a)

    plan = flows(a, b)
    per_flow = 256
    _section(w, f"2. Traffic: {per_flow} packets per flow, {len(plan)} flows (IPv4 and IPv6, "
                "both ways), bursts of 32")
    delivered = send_all(link, plan, per_flow)
    w(f"  {delivered} packets delivered intact (each compared byte for byte)\n\n")
    _traffic_table(w, a, b)

    _section(w, "3. Edge cases, gw-a -> gw-b")
    _edge_cases(w, a, b, link)

    _section(w, "4. gw-b> show security ipsec security-associations")
    w(b.show("security ipsec security-associations"))
    _section(w, "   gw-b> show security ipsec security-associations detail vpn-name vpn-gcm256")
    w(b.show("security ipsec security-associations detail vpn-name vpn-gcm256"))
    _section(w, "   gw-b> show security ipsec security-associations detail vpn-name vpn-cbc  "
                "(tunnel lines; SA lines as above)")
    detail = b.show("security ipsec security-associations detail vpn-name vpn-cbc")
    w(detail[:detail.index("  Direction:")])
    for name, gw in (("gw-a", a), ("gw-b", b)):
        _section(w, f"   {name}> show security ipsec statistics")
        w(gw.show("security ipsec statistics"))
    cmd = "security flow statistics"
    _section(w, f"   gw-a> show {cmd:34} gw-b> show {cmd}")
    w(_side_by_side(a.show(cmd), b.show(cmd)))

    _section(w, "   gw-a> show security ike security-associations")
    w(a.show("security ike security-associations"))
    _section(w, "   gw-b> show security ike security-associations detail  (first IKE SA)")
    w(b.show("security ike security-associations detail").split("\n\n")[0])

    _section(w, "5. IKEv2 at work: a child SA rekey (CREATE_CHILD_SA) and a delete "
                "(INFORMATIONAL)")
    _rekey_and_delete(w, a, b, link)

    _section(w, "6. IKEv1 (RFC 2409): two more gateways on a v1-only IKE gateway, the Junos "
                "default")
    _ikev1(w)

    _section(w, "7. Throughput per path, measured in this run")
    _throughput(w, a, b, link)

    _section(w, "8. Second scenario: set security ipsec hw-offload-disable")
    a2, b2, link2 = build(hw_offload_disable=True)
    n = send_all(link2, flows(a2, b2), 32)
    offloaded = sum(1 for r in a2.distributor.tunnels() if r.offloaded)
    w(f"  {len(a2.tunnel_names())} tunnels, {offloaded} offloaded: every tunnel runs on the CPU"
      f" engine; {n} packets delivered\n")
    rec = a2.tunnel("vpn-gcm256")
    w(f"  vpn-gcm256: Hardware Offloaded: No ({'; '.join(rec.placement.reasons)})\n")
    f2 = b2.show("security flow statistics").splitlines()
    w("  gw-b> show security flow statistics (excerpt)\n")
    for line in f2[1:3] + f2[6:7]:
        w(f"  {line}\n")

    link2.ike.close()
    ike.close()

    _section(w, "9. Group VPN (GDOI, RFC 6407): a key server and three members, group SAs on "
                "the CPU")
    from .groupvpn.demo import run_section
    run_section(w)

    _section(w, "10. Hub and spoke on the CPU path: AutoVPN, NHTB and one ADVPN shortcut "
                "(docs/advpn.md)")
    from .hub.demo import run_hub_demo
    run_hub_demo(w)

    _section(w, "11. The PFE against the raw crypto loop, one core, AES-GCM-128, bursts of 32")
    print_bench_table(quick_report((64, 1400, IMIX), 128, 32, 150), out)
    w("\n'raw' is the same OpenSSL AES-GCM calls with no ESP work: the crypto limit. "
      "'naive' builds the same packets\nwith Python and cryptography's AESGCM. "
      "More: inline-ipsec bench --help\n")
    w(f"\ndemo finished in {time.perf_counter() - t0:.1f} s\n")
    return 0


def print_bench_table(rows: list[dict], out=sys.stdout) -> None:
    out.write(f"{'size':>6} {'PFE enc pps':>13} {'Gbit/s':>7} {'raw enc pps':>13} "
              f"{'enc/raw':>8} {'PFE dec pps':>13} {'dec/raw':>8} {'naive pps':>11} "
              f"{'PFE/naive':>9}\n")
    for r in rows:
        out.write(f"{str(r['size']):>6} {r['pfe_encrypt_pps']:>13,.0f} "
                  f"{r['pfe_encrypt_gbps']:>7.2f} {r['raw_encrypt_pps']:>13,.0f} "
                  f"{r['encrypt_vs_raw']:>8.2f} {r['pfe_decrypt_pps']:>13,.0f} "
                  f"{r['decrypt_vs_raw']:>8.2f} {r['naive_encrypt_pps']:>11,.0f} "
                  f"{r['encrypt_vs_naive']:>8.1f}x\n")


def quick_report(sizes: Sequence[int | str] = (64, 512, 1400, IMIX), bits: int = 128,
                 burst: int = 32, rounds: int = 200,
                 progress: Callable[[str], None] = lambda s: None,
                 duration: float = 0.1) -> list[dict]:
    """PFE (OpenSSL backend) encrypt/decrypt against the raw loop, measured as `inline-ipsec
    bench` measures (`perf.suite.measure_figure`, `duration` seconds each), and encrypt against
    the naive loop (`rounds` rounds), per size: the demo's short run."""
    from .perf.suite import measure_figure
    rows = []
    for size in sizes:
        progress(f"{size}")
        raw_e, pfe_e = measure_figure("pfe", "openssl", bits, "encrypt", size, burst, duration)
        raw_d, pfe_d = measure_figure("pfe", "openssl", bits, "decrypt", size, burst, duration)
        naive = measure_naive(bits, size, burst, max(10, rounds // 10))
        rows.append({
            "size": size, "cipher": f"aes-gcm-{bits}", "burst": burst,
            "pfe_encrypt_pps": pfe_e.pps, "pfe_encrypt_gbps": pfe_e.gbps,
            "pfe_decrypt_pps": pfe_d.pps, "raw_encrypt_pps": raw_e.pps,
            "raw_decrypt_pps": raw_d.pps, "naive_encrypt_pps": naive.pps,
            "encrypt_vs_raw": pfe_e.ratio, "decrypt_vs_raw": pfe_d.ratio,
            "encrypt_vs_naive": pfe_e.pps / naive.pps,
        })
    return rows

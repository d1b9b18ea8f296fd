"""The gateway runs IKEv2 from its Junos configuration (`IkeControl`): negotiated child SA
pairs reach the distributor (PFE or CPU per Table 1), rekeys and deletes follow, on-traffic
establishment, PPK, NAT-T, in memory and over loopback UDP."""
from __future__ import annotations

import datetime as _dt
import random

import pytest

from inline_ipsec.gateway import Gateway, WireLink
from inline_ipsec.gateway.demo_config import demo_config
from inline_ipsec.gateway.ike_config import ike_config_for_vpn
from inline_ipsec.gateway.ike_link import IkePump, IkeUdpPort, pair_controls, run_udp
from inline_ipsec.gateway.traffic import flows, packets, udp_packet
from inline_ipsec.ike import ChildSaDown, ChildSaRekeyed, Identity
from inline_ipsec.ike.constants import NON_ESP_MARKER

A_T = ("192.0.2.1", 500, 4500)
B_T = ("198.51.100.1", 500, 4500)
FIXED = _dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=_dt.timezone.utc)


def _pair(text_a: str, text_b: str, **kw):
    a = Gateway.from_text(text_a, name="gw-a", clock=lambda: FIXED)
    b = Gateway.from_text(text_b, name="gw-b", clock=lambda: FIXED)
    ia, ib = pair_controls(a, b, A_T, B_T, **kw)
    return a, b, ia, ib, IkePump(ia, ib)


def _demo(**kw):
    return _pair(demo_config("a"), demo_config("b"), **kw)


def _inbound_spis(gw: Gateway, vpn: str) -> list[int]:
    rec = gw.tunnel(vpn)
    return [p.inbound.spi for p in rec.pairs] + [d.spec.spi for d in rec.draining]


def _flow(a: Gateway, b: Gateway, vpn: str, sender: str = "a", ipv6: bool = False):
    return next(f for f in flows(a, b) if f.vpn == vpn and f.sender == sender
                and f.ipv6 == ipv6)


def _both_ways(a: Gateway, b: Gateway, vpn: str, n: int = 4) -> None:
    link = WireLink(a, b)
    for sender, gw in (("a", a), ("b", b)):
        pk = packets(_flow(a, b, vpn, sender), n, 300)
        assert link.send(gw, pk).delivered == pk, (vpn, sender)


def test_config_to_ike_config() -> None:
    from inline_ipsec.config import load_config
    cfg = load_config(demo_config("a"))
    ike = ike_config_for_vpn(cfg, cfg.ipsec_vpns["vpn-gcm256"])
    assert ike.proposals == ("aes256gcm16-prfsha384-ecp384",)       # group20, AES-256-GCM
    assert ike.psk == b"inline-ipsec-demo"
    assert ike.ppk_id == b"inline-ipsec-demo-ppk" and ike.ppk
    assert ike.local_id == Identity.parse("192.0.2.1")
    child = ike.children[0]
    assert child.proposals == ("aes256gcm16-ecp384-esn",)           # PFS group20, ESN
    assert child.local_ts == ("0.0.0.0/0",) and child.replay_window == 4096
    assert child.lifetime_seconds == 3600 and child.rekey_seconds == 3000
    cbc = ike_config_for_vpn(cfg, cfg.ipsec_vpns["vpn-cbc"])
    assert cbc.children[0].local_ts == ("0.0.0.0/0", "::/0")         # st0 inet + inet6
    assert cbc.children[0].proposals == ("aes256-sha256-noesn",)
    assert cbc.local_id == Identity.parse("@vpn-cbc.a.demo")
    multi = ike_config_for_vpn(cfg, cfg.ipsec_vpns["vpn-multi"])
    assert [c.local_ts for c in multi.children] == [("10.1.10.0/24",), ("10.1.110.0/24",)]


def test_gateways_negotiate_every_vpn_in_memory_and_carry_traffic() -> None:
    a, b, ia, ib, pump = _demo()
    assert ia.unsupported == {} and ia.vpns["vpn-ah"].config.children[0].protocol == "ah"
    ia.start(0.0)
    ib.start(0.0)
    pump.run(0.0)
    pump.advance(2.0)                                            # the other side's backoff
    assert ia.up() and ib.up() and not ia.errors and not ib.errors
    for gw in (a, b):
        assert gw.tunnel("vpn-gcm256").offloaded                   # PFE
        assert gw.tunnel("vpn-natt").offloaded
        assert not gw.tunnel("vpn-cbc").offloaded                  # CPU, with the reason
        assert "aes-cbc-256 not supported by PFE" in gw.tunnel("vpn-cbc").placement.reasons[0]
        assert gw.tunnel("vpn-window").placement.reasons == ("anti-replay window 8192 > 4096",)
        assert len(gw.tunnel("vpn-multi").pairs) == 2
    # one IKE SA per VPN, no duplicates from both ends initiating
    assert len(ia.sessions()) == len(ia.vpns) == 10
    assert a.tunnel("vpn-ah").pairs[0].outbound.protocol == "ah"   # RFC 4302, on the CPU
    assert a.tunnel("vpn-ah").placement.reasons == ("AH protocol not supported by PFE",)
    # the SPIs mirror: a's inbound is b's outbound
    ra, rb = a.tunnel("vpn-gcm256").pairs[0], b.tunnel("vpn-gcm256").pairs[0]
    assert ra.inbound.spi == rb.outbound.spi and ra.outbound.spi == rb.inbound.spi
    for vpn in ("vpn-gcm256", "vpn-cbc", "vpn-chacha", "vpn-lifesize", "vpn-multi", "vpn-ah"):
        _both_ways(a, b, vpn)
    pk = packets(_flow(a, b, "vpn-gcm128-v6", ipv6=True), 3, 200)
    assert WireLink(a, b).send(a, pk).delivered == pk


def test_gateways_negotiate_over_loopback_udp() -> None:
    a = Gateway.from_text(demo_config("a"), name="gw-a")
    b = Gateway.from_text(demo_config("b"), name="gw-b")
    with IkeUdpPort("127.0.0.1") as pa, IkeUdpPort("127.0.0.1") as pb:
        ia, ib = pair_controls(a, b, pa.transport, pb.transport, a_kw={"nat_t": ["vpn-natt"]})
        pa.attach(ia)
        pb.attach(ib)
        import time
        ia.start(time.monotonic())
        ib.start(time.monotonic())
        assert run_udp([pa, pb], lambda: ia.up() and ib.up(), 15.0)
        assert pa.sent > 0 and pb.received > 0
        assert ia.session_of("vpn-natt").natt and ib.session_of("vpn-natt").natt
    assert a.tunnel("vpn-gcm256").offloaded and not a.tunnel("vpn-cbc").offloaded
    for vpn in ("vpn-gcm256", "vpn-natt", "vpn-cbc", "vpn-p2mp"):
        _both_ways(a, b, vpn)
    # the data plane uses the configured outer addresses, not the loopback transport
    out = a.tunnel("vpn-natt").pairs[0].outbound
    assert (out.tunnel_src, out.tunnel_dst, out.udp_encap, out.udp_dport) == \
        ("192.0.2.1", "198.51.100.1", True, 4500)


def test_on_traffic_establishment_drops_then_carries() -> None:
    text_a = demo_config("a").replace(
        "set security ipsec vpn vpn-cbc establish-tunnels immediately\n", "")
    text_b = demo_config("b").replace(
        "set security ipsec vpn vpn-cbc establish-tunnels immediately\n", "")
    a, b, ia, ib, pump = _pair(text_a, text_b)
    ia.start(0.0)
    ib.start(0.0)
    pump.run(0.0)
    pump.advance(2.0)
    assert "vpn-cbc" not in a.distributor and "vpn-gcm256" in a.distributor
    cbc_pkt = udp_packet("10.1.5.1", "10.2.5.1", b"first packet")     # st0.5 -> vpn-cbc
    before = a.counters.no_route
    out = a.outbound([cbc_pkt, cbc_pkt])
    assert out.wire == [] and out.dropped == 2                      # dropped, counted
    assert a.counters.no_route == before + 2 and ia.on_traffic_dropped["vpn-cbc"] == 2
    assert ia.get_timer() == 2.0                                    # initiate now
    pump.advance(2.0)
    assert "vpn-cbc" in a.distributor and "vpn-cbc" in b.distributor
    assert ia.session_of("vpn-cbc").ike.initiator                  # a initiated it
    assert WireLink(a, b).send(a, [cbc_pkt]).delivered == [cbc_pkt]
    assert "establish-tunnels-on-traffic" in a.show(
        "security ipsec security-associations detail vpn-name vpn-cbc")


def test_soft_lifetime_rekey_and_delete_reach_the_distributor() -> None:
    a, b, ia, ib, pump = _demo()
    ia.start(0.0)
    ib.start(0.0)
    pump.run(0.0)
    pump.advance(2.0)
    first_a, first_b = _inbound_spis(a, "vpn-cbc"), _inbound_spis(b, "vpn-cbc")
    assert len(first_a) == 1 and first_a[0] == b.tunnel("vpn-cbc").pairs[0].outbound.spi
    pump.advance(2999.0)                      # before the soft lifetime (3000 s): nothing
    assert _inbound_spis(a, "vpn-cbc") == first_a
    pump.advance(3000.5)                      # a (the initiator) rekeys: CREATE_CHILD_SA
    second_a, second_b = _inbound_spis(a, "vpn-cbc"), _inbound_spis(b, "vpn-cbc")
    assert len(second_a) == 1 and second_a != first_a and second_b != first_b
    assert second_a[0] == b.tunnel("vpn-cbc").pairs[0].outbound.spi
    kinds = [type(e).__name__ for v, e in ia.events if v == "vpn-cbc"]
    assert kinds[-2:] == ["ChildSaRekeyed", "ChildSaDown"]            # make-before-break
    assert any("rekey" in e.lower() for e in a.distributor.events("vpn-cbc"))
    _both_ways(a, b, "vpn-cbc")
    # delete from b (INFORMATIONAL, RFC 7296 §1.4.1): the tunnel goes on both sides
    session = ib.session_of("vpn-cbc")
    session.delete_child(next(iter(session.children)), 3001.0)
    pump.run(3001.0)
    assert "vpn-cbc" not in a.distributor and "vpn-cbc" not in b.distributor
    assert any(isinstance(e, ChildSaDown) for v, e in ia.events if v == "vpn-cbc")
    assert "vpn-gcm256" in a.distributor                            # others untouched


def test_hard_lifetime_deletes() -> None:
    a, b, ia, ib, pump = _demo()
    ia.start(0.0)
    ib.start(0.0)
    pump.run(0.0)
    pump.advance(2.0)
    for ctl in (ia, ib):                      # no rekey: the hard lifetime (3600 s) ends it
        for child in ctl.session_of("vpn-window").children.values():
            child.rekey_at = None
    for t in range(3500, 3560):               # the others rekey (retrying after a
        pump.advance(float(t))                # collision, RFC 7296 §2.25); vpn-window not
    assert "vpn-window" in a.distributor
    pump.advance(3605.0)
    assert "vpn-window" not in a.distributor and "vpn-window" not in b.distributor
    assert "vpn-gcm256" in a.distributor
    # both ends expire it at once: each sends a Delete (INFORMATIONAL, §1.4.1)
    assert all(any(isinstance(e, ChildSaDown) for v, e in ctl.events if v == "vpn-window")
               for ctl in (ia, ib))


def test_cpu_engine_kilobyte_lifetime_triggers_rekey() -> None:
    texts = [demo_config(s).replace("lifetime-kilobytes 500000", "lifetime-kilobytes 64")
             for s in "ab"]
    a, b, ia, ib, pump = _pair(*texts)
    ia.start(0.0)
    ib.start(0.0)
    pump.run(0.0)
    pump.advance(2.0)
    rec = a.tunnel("vpn-lifesize")
    assert not rec.offloaded and rec.pairs[0].outbound.lifetime.hard_kilobytes == 64
    first = _inbound_spis(a, "vpn-lifesize")
    link = WireLink(a, b)
    f = _flow(a, b, "vpn-lifesize")
    for i in range(5):                        # about 56 KB: past the soft limit (54 KB)
        link.send(a, packets(f, 8, 1400, i * 8))
    assert ia.poll_engines(10.0) + ib.poll_engines(10.0) >= 1        # "rekey-due"
    pump.run(10.0)
    assert _inbound_spis(a, "vpn-lifesize") != first
    assert any(isinstance(e, ChildSaRekeyed) for v, e in ia.events + ib.events
               if v == "vpn-lifesize")
    _both_ways(a, b, "vpn-lifesize")


def test_ppk_vpn_is_quantum_secured() -> None:
    a, b, ia, ib, pump = _demo()
    ia.start(0.0)
    ib.start(0.0)
    pump.run(0.0)
    pump.advance(2.0)
    assert ia.session_of("vpn-gcm256").ppk_used and ib.session_of("vpn-gcm256").ppk_used
    for gw in (a, b):
        detail = gw.show("security ipsec security-associations detail vpn-name vpn-gcm256")
        assert "Version: IKEv2\n  Quantum Secured: Yes\n  Hardware Offloaded: Yes" in detail
        other = gw.show("security ipsec security-associations detail vpn-name vpn-cbc")
        assert "Quantum Secured: No" in other
        assert "Hard lifetime: Expires in 3600 seconds" in detail


def test_nat_t_switch() -> None:
    a, b, ia, ib, pump = _demo(a_kw={"nat_t": ["vpn-natt"]})
    pump.keep_log = True
    ia.start(0.0)
    ib.start(0.0)
    pump.run(0.0)
    pump.advance(2.0)
    sa, sb = ia.session_of("vpn-natt"), ib.session_of("vpn-natt")
    assert sa.natt and sb.natt and sb.remote_nat                  # b sees a's claimed NAT
    assert not ia.session_of("vpn-gcm256").natt
    natt_spis = (sa.ike.spi_i, )
    marked = [d for _, d in pump.log if d.startswith(NON_ESP_MARKER)]
    assert marked and all(d[4:12] in natt_spis for d in marked)    # IKE_AUTH on 4500
    for gw in (a, b):
        out = gw.tunnel("vpn-natt").pairs[0].outbound
        assert out.udp_encap and (out.udp_sport, out.udp_dport) == (4500, 4500)
        assert gw.tunnel("vpn-natt").offloaded                      # NAT-T stays on the PFE
        assert not gw.tunnel("vpn-gcm256").pairs[0].outbound.udp_encap
    _both_ways(a, b, "vpn-natt")
    assert "Port: 4500" in a.show("security ipsec security-associations detail vpn-name "
                                  "vpn-natt")


def _seeded(seed: int):
    rng = random.Random(seed)
    return lambda n: bytes(rng.getrandbits(8) for _ in range(n))


GOLDEN_SUMMARY = """\
Index   State  Initiator cookie  Responder cookie  Mode           Remote Address
1       UP     52f22665a60c12d2  ae886dc6507795ec  IKEv2          198.51.100.1
"""

GOLDEN_DETAIL = """\
IKE peer 198.51.100.1, Index 1, Gateway Name: peer-v4
 Role: Initiator, State: UP
 Initiator cookie: 52f22665a60c12d2, Responder cookie: ae886dc6507795ec
 Exchange type: IKEv2, Authentication method: Pre-shared-keys
 Local: 192.0.2.1:500, Remote: 198.51.100.1:500
 Lifetime: Expires in 28780 seconds
 Reauth Lifetime: Disabled
 IKE Fragmentation: Enabled, Size: 1280
 Remote Access Client Info: Unknown Client
 Peer ike-id: 198.51.100.1
 AAA assigned IP: 0.0.0.0
 Algorithms:
  Authentication        : aes256-gcm
  Encryption            : aes256-gcm
  Pseudo random function: hmac-sha384
  Diffie-Hellman group  : DH-group-20
 Traffic statistics:
  Input  bytes  :                  519
  Output bytes  :                  595
  Input  packets:                    2
  Output packets:                    2
  Input  fragmentated packets:       0
  Output fragmentated packets:       0
 IPSec security associations: 1 created, 0 deleted
 Phase 2 negotiations in progress: 0
"""


def test_show_ike_security_associations_golden() -> None:
    keep = {"vpn-gcm256"}
    texts = []
    for side in "ab":
        lines = [ln for ln in demo_config(side).splitlines()
                 if "ipsec vpn" not in ln or any(f"vpn {k} " in ln for k in keep)]
        texts.append("\n".join(lines) + "\n")
    a, b, ia, ib, pump = _pair(*texts, config_overrides={"random": _seeded(7)})
    ia.start(100.0)
    ib.start(100.0)
    pump.run(100.0)
    # the SPIs come from the seeded random source (RFC 7296 §2.6: 8 random octets)
    assert a.show("show security ike security-associations") == GOLDEN_SUMMARY
    ia._now = 120.0                                   # 20 s later: the lifetime counts down
    assert a.show("security ike security-associations detail") == GOLDEN_DETAIL
    ci, cr = "52f22665a60c12d2", "ae886dc6507795ec"
    responder = b.show("security ike security-associations detail")
    assert "Role: Responder, State: UP" in responder and "Gateway Name: peer-v4" in responder
    assert f"Initiator cookie: {ci}, Responder cookie: {cr}" in responder
    # with no IKE running, the table is empty
    assert Gateway(name="x").show("security ike security-associations").count("\n") == 1


@pytest.mark.slow
def test_scale_2000_tunnels_fill_the_pfe_then_the_cpu() -> None:
    """2001 IKEv2 tunnels between two gateways over loopback UDP: the PFE holds exactly 2000
    tunnels / 4000 SAs, the 2001st is placed on the CPU with the capacity reasons (the time
    is the benchmark's business, benchmarks/bench_ike.py)."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from bench_ike import scale_up
    r = scale_up(2001, timeout=120.0)
    assert r["ok"]
    for gw in (r["a"], r["b"]):
        d = gw.distributor
        assert len(gw.tunnel_names()) == 2001
        assert d.pfe_tunnels_in_use == 2000 and d.pfe_sas_in_use == 4000
        # Tunnels come up in whatever order IKE completes them (cookies above the half-open
        # threshold reorder them), and each end places its own: the last one up is on the CPU.
        cpu = [t for t in d.tunnels() if not t.offloaded]
        assert len(cpu) == 1
        assert cpu[0].placement.reasons == ("PFE SA capacity exceeded (4002 > 4000)",
                                            "PFE tunnel capacity exceeded (2001 > 2000)")
        assert "PFE tunnel capacity exceeded" in gw.show(
            f"security ipsec security-associations detail vpn-name {cpu[0].name}")


def test_ike_on_the_data_path_wire_with_nat_t_demux() -> None:
    """IKE as outer UDP packets through `Gateway.inbound`: UDP 500, then UDP 4500 behind the
    non-ESP marker once vpn-natt floats (RFC 3948 §2.2), all reaching IKE via `Output.ike`."""
    from inline_ipsec.gateway.ike_link import IkeOnWire
    a, b, ia, ib, _ = _demo(a_kw={"nat_t": ["vpn-natt"]})
    wire = IkeOnWire(ia, ib)
    ia.start(0.0)
    ib.start(0.0)
    wire.run(0.0)
    ib.handle_timer(2.0)
    wire.run(2.0)
    assert ia.up() and ib.up()
    assert a.counters.ike_packets > 0 and b.counters.ike_packets == a.counters.ike_packets
    assert ia.session_of("vpn-natt").natt
    _both_ways(a, b, "vpn-natt")
    _both_ways(a, b, "vpn-gcm256")


def test_crossing_initiations_leave_one_ike_sa_per_vpn() -> None:
    """Both ends initiate vpn-cbc at the same moment: two IKE SAs come up, the one gw-b
    (the higher address) initiated is deleted on both sides, one child SA pair remains."""
    a, b, ia, ib, pump = _demo()
    ia.connect("vpn-cbc", 0.0)
    ib.connect("vpn-cbc", 0.0)
    pump.run(0.0)
    for gw, ctl in ((a, ia), (b, ib)):
        assert len(gw.tunnel("vpn-cbc").pairs) == 1 and not gw.tunnel("vpn-cbc").draining
        live = ctl.sessions("vpn-cbc")
        assert len(live) == 1 and live[0].state == "established"
    assert ia.session_of("vpn-cbc").ike.initiator                  # a's IKE SA was kept
    assert a.tunnel("vpn-cbc").pairs[0].inbound.spi == \
        b.tunnel("vpn-cbc").pairs[0].outbound.spi
    _both_ways(a, b, "vpn-cbc")


def test_immediately_vpn_is_negotiated_again_after_its_ike_sa_is_deleted() -> None:
    a, b, ia, ib, pump = _demo()
    ia.start(0.0)
    ib.start(0.0)
    pump.run(0.0)
    pump.advance(2.0)
    old = ia.session_of("vpn-chacha")
    old.close(10.0)                                   # INFORMATIONAL Delete of the IKE SA
    pump.run(10.0)
    assert "vpn-chacha" not in a.distributor and "vpn-chacha" not in b.distributor
    pump.advance(12.0)                                # a (lower address) after the backoff
    new = ia.session_of("vpn-chacha")
    assert new is not None and new is not old and new.ike.initiator
    assert "vpn-chacha" in a.distributor and "vpn-chacha" in b.distributor
    _both_ways(a, b, "vpn-chacha")


def test_certificate_authentication_from_the_policy() -> None:
    """`ike policy ... certificate local-certificate <name>`: RFC 7427 signatures with the key
    and chain loaded for that name, the peer checked against the CA."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ike"))
    from cryptography.hazmat.primitives.asymmetric import ec
    from ike_helpers import _cert
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("Demo CA", ca_key, ca=True)
    creds = {}
    for side in "ab":
        key = ec.generate_private_key(ec.SECP256R1())
        creds[side] = {"gw-cert": (key, [_cert(f"vpn-cbc.{side}.demo", key, ca, ca_key,
                                               san=f"vpn-cbc.{side}.demo")])}
    texts = []
    for side in "ab":
        lines = [ln for ln in demo_config(side).splitlines()
                 if "ipsec vpn" not in ln or "vpn vpn-cbc " in ln]
        lines = [ln for ln in lines if "pre-shared-key" not in ln]
        lines.append("set security ike policy ike-1 certificate local-certificate gw-cert")
        texts.append("\n".join(lines) + "\n")
    a, b, ia, ib, pump = _pair(*texts, a_kw={"credentials": creds["a"]},
                               b_kw={"credentials": creds["b"]}, ca_certificates=[ca])
    assert ia.vpns["vpn-cbc"].config.auth == "pubkey"
    ia.start(0.0)
    ib.start(0.0)
    pump.run(0.0)
    assert ia.up() and ib.up(), (ia.errors, [s.errors for s in ia.sessions()])
    assert str(ib.session_of("vpn-cbc").peer_id) == "vpn-cbc.a.demo"
    assert "Authentication method: Signature" in a.show(
        "security ike security-associations detail")
    _both_ways(a, b, "vpn-cbc")


def _engine_sas(gw: Gateway) -> int:
    return sum(len(e.handles()) for e in gw.engines)


@pytest.mark.parametrize("seed", range(6))
def test_simultaneous_child_rekey_leaves_one_pair_on_each_gateway(seed) -> None:
    #   gw-a                                          gw-b
    #   N(REKEY_SA, old) ...  -->          <--  N(REKEY_SA, old) ...   (both at once)
    #   answers b's request                     answers a's request
    #   (both exchanges complete; RFC 7296 §2.8.1: the end whose exchange holds the lowest
    #    of the four nonces deletes the SA it created, the other deletes the old SA)
    #   each gateway: one ChildSaRekeyed(old -> survivor) -> Gateway.rekey, then
    #   ChildSaDown(old) -> the drained old inbound SA goes; the redundant pair never
    #   reaches the data plane
    a, b, ia, ib, pump = _demo()
    ia.start(0.0)
    ib.start(0.0)
    pump.run(0.0)
    pump.advance(2.0)
    vpn = "vpn-cbc"
    sa, sb = ia.session_of(vpn), ib.session_of(vpn)
    rng = random.Random(seed)
    sa.random, sb.random = rng.randbytes, random.Random(seed + 99).randbytes
    before_a, before_b = _engine_sas(a), _engine_sas(b)
    (old_a,), (old_b,) = list(sa.children), list(sb.children)
    sa.rekey_child(old_a, 10.0)           # both rekey before any datagram moves
    sb.rekey_child(old_b, 10.0)
    pump.run(10.0)
    ra = [e for v, e in ia.events if v == vpn and isinstance(e, ChildSaRekeyed)]
    rb = [e for v, e in ib.events if v == vpn and isinstance(e, ChildSaRekeyed)]
    assert len(ra) == len(rb) == 1 and ra[0].old_spi_in == old_a
    downs_a = [e.spi_in for v, e in ia.events if v == vpn and isinstance(e, ChildSaDown)]
    downs_b = [e.spi_in for v, e in ib.events if v == vpn and isinstance(e, ChildSaDown)]
    assert downs_a == [old_a] and downs_b == [old_b]
    assert not ia.errors and not ib.errors and not sa.errors and not sb.errors
    # exactly one installed pair per gateway, the survivor, matching across the two
    rec_a, rec_b = a.tunnel(vpn), b.tunnel(vpn)
    assert len(rec_a.pairs) == len(rec_b.pairs) == 1 and not rec_a.draining \
        and not rec_b.draining
    assert rec_a.pairs[0].inbound.spi == rec_b.pairs[0].outbound.spi == ra[0].new.spi_in
    assert rec_b.pairs[0].inbound.spi == rec_a.pairs[0].outbound.spi == rb[0].new.spi_in
    assert list(sa.children) == [rec_a.pairs[0].inbound.spi]
    assert list(sb.children) == [rec_b.pairs[0].inbound.spi]
    assert _engine_sas(a) == before_a and _engine_sas(b) == before_b
    _both_ways(a, b, vpn)
    _both_ways(a, b, "vpn-gcm256")        # the other tunnels are untouched


def test_simultaneous_child_rekey_on_gateways_runs_both_branches() -> None:
    winners = set()
    for seed in range(6):
        a, b, ia, ib, pump = _demo()
        ia.start(0.0)
        ib.start(0.0)
        pump.run(0.0)
        pump.advance(2.0)
        sa, sb = ia.session_of("vpn-cbc"), ib.session_of("vpn-cbc")
        sa.random, sb.random = random.Random(seed).randbytes, \
            random.Random(seed + 99).randbytes
        sa.rekey_child(next(iter(sa.children)), 10.0)
        sb.rekey_child(next(iter(sb.children)), 10.0)
        pump.run(10.0)
        (ev,) = [e for v, e in ia.events if v == "vpn-cbc" and isinstance(e, ChildSaRekeyed)]
        winners.add("a" if ev.new.initiator else "b")
    assert winners == {"a", "b"}


def test_simultaneous_soft_lifetime_rekey_on_both_gateways() -> None:
    # The soft lifetimes of both ends fire at the same instant (the responder's later
    # rekey time is overridden): the collision resolves as above and traffic flows.
    a, b, ia, ib, pump = _demo()
    ia.start(0.0)
    ib.start(0.0)
    pump.run(0.0)
    pump.advance(2.0)
    vpn = "vpn-cbc"
    for ctl in (ia, ib):
        session = ctl.session_of(vpn)
        for child in session.children.values():
            child.rekey_at = 100.0
        session.listener(session)         # the manager's timer heap learns of the change
    pump.keep_log = True
    pump.advance(100.0)
    requests = [tag for tag, d in pump.log
                if d[4 if d.startswith(NON_ESP_MARKER) else 0:][18] == 36 and
                not d[4 if d.startswith(NON_ESP_MARKER) else 0:][19] & 0x20]
    assert sorted(requests) == ["a->b", "b->a"]          # the two rekeys did collide
    kinds_a = [type(e).__name__ for v, e in ia.events if v == vpn]
    kinds_b = [type(e).__name__ for v, e in ib.events if v == vpn]
    assert kinds_a.count("ChildSaRekeyed") == kinds_b.count("ChildSaRekeyed") == 1
    assert kinds_a[-2:] == kinds_b[-2:] == ["ChildSaRekeyed", "ChildSaDown"]
    assert len(a.tunnel(vpn).pairs) == len(b.tunnel(vpn).pairs) == 1
    assert a.tunnel(vpn).sa_count == b.tunnel(vpn).sa_count == 2
    assert a.tunnel(vpn).pairs[0].inbound.spi == b.tunnel(vpn).pairs[0].outbound.spi
    _both_ways(a, b, vpn)


def test_flood_protection_scales_with_the_configured_vpns() -> None:
    """Cookies (RFC 7296 §2.6) must not slow a gateway's own peers negotiating all at once:
    the thresholds grow with the number of IKE VPNs, never below the manager's defaults."""
    from inline_ipsec.gateway.demo_config import scale_config
    from inline_ipsec.gateway.ike_control import IkeControl
    from inline_ipsec.ike import IkeManager
    small = IkeControl(Gateway.from_text(demo_config("a"), name="s"))
    assert small.manager.cookie_threshold == IkeManager.COOKIE_THRESHOLD
    assert small.manager.max_half_open == IkeManager.MAX_HALF_OPEN
    big = IkeControl(Gateway.from_text(scale_config("a", 600), name="b"))
    assert big.manager.cookie_threshold == 1200 and big.manager.max_half_open == 2400


def test_nat_keepalives_from_the_side_behind_the_nat() -> None:
    """RFC 3948 §2.3: the IKE SA behind a NAT (vpn-natt's, gw-a claims the NAT) sends one
    0xFF byte from its NAT-T port every `nat-keepalive` seconds (20 s by default, as
    gw-vpn-natt sets none); gw-b's data path counts them, and sends none itself."""
    from inline_ipsec.gateway.ike_link import IkeOnWire
    a, b, ia, ib, _ = _demo(a_kw={"nat_t": ["vpn-natt"]})
    wire = IkeOnWire(ia, ib)
    ia.start(0.0)
    ib.start(0.0)
    wire.run(0.0)
    ib.handle_timer(2.0)
    wire.run(2.0)
    assert ia.session_of("vpn-natt").local_nat and not ib.session_of("vpn-natt").local_nat
    for t in range(3, 65):
        for c in (ia, ib):
            if (due := c.get_timer()) is not None and due <= t:
                c.handle_timer(float(t))
        wire.run(float(t))
    assert ia.keepalives_sent == 3 and ib.keepalives_sent == 0      # at 20, 40, 60 s
    assert b.counters.nat_keepalives == 3 and a.counters.nat_keepalives == 0
    _both_ways(a, b, "vpn-natt")

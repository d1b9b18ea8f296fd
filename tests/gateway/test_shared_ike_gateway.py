"""Several VPNs on one IKE gateway: one IKE SA, a child SA pair per VPN (per traffic
selector), as Junos does it.

    gw-a                                                   gw-b
    IKE_SA_INIT, IKE_AUTH {SA, TSi=vpn-s1's, TSr}  -->
                            <--  {SA, TSi, TSr}           (b picks vpn-s1 by the TS)
    CREATE_CHILD_SA {SA, Ni, TSi=vpn-s2's, TSr}    -->
                            <--  {SA, Nr, TSi, TSr}       (b picks vpn-s2 by the TS)
    (vpn-s3, on-traffic: its first packet triggers a CREATE_CHILD_SA on the same IKE SA)

Rekeys and deletes are per VPN; the IKE SA stays while the gateway has it. Two VPNs that
propose the same selectors on one gateway cannot be told apart: `check` says so and the
later one is not negotiated.
"""
from __future__ import annotations

import datetime as _dt
import time

from inline_ipsec.config import load_config
from inline_ipsec.gateway import Gateway, WireLink
from inline_ipsec.gateway.ike_link import IkePump, IkeUdpPort, pair_controls, run_udp
from inline_ipsec.gateway.traffic import udp_packet
from inline_ipsec.gateway.vpn_verdict import vpn_verdicts
from inline_ipsec.ike import ChildSaDown, ChildSaRekeyed, IkeSaUp

OUTER = {"a": "192.0.2.1", "b": "198.51.100.1"}
A_T = ("192.0.2.1", 500, 4500)
B_T = ("198.51.100.1", 500, 4500)
FIXED = _dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=_dt.timezone.utc)
SIDE = {"a": 1, "b": 2}
#: (VPN, st0 unit, traffic selector?, establish-tunnels)
VPNS = (("vpn-s1", 31, True, "immediately"), ("vpn-s2", 32, True, "immediately"),
        ("vpn-s3", 33, False, "on-traffic"))


def lan(side: str, unit: int) -> str:
    return f"10.{SIDE[side]}.{unit}.0/24"


def host(side: str, unit: int) -> str:
    return f"10.{SIDE[side]}.{unit}.7"


def shared_config(side: str, vpns=VPNS, reverse: bool = False, extra: str = "") -> str:
    """Gateway `side` with every VPN of `vpns` on the one IKE gateway "shared"."""
    peer = "b" if side == "a" else "a"
    lines = [
        "set system license ipsec-offload permanent",
        f"set interfaces ge-0/0/0 unit 0 family inet address {OUTER[side]}/24",
        "set security ike proposal ike-1 authentication-method pre-shared-keys",
        "set security ike proposal ike-1 dh-group group19",
        "set security ike proposal ike-1 encryption-algorithm aes-128-gcm",
        "set security ike policy ike-1 proposals ike-1",
        'set security ike policy ike-1 pre-shared-key ascii-text "one IKE SA, many VPNs"',
        "set security ike gateway shared ike-policy ike-1",
        f"set security ike gateway shared address {OUTER[peer]}",
        "set security ike gateway shared external-interface ge-0/0/0.0",
        "set security ike gateway shared version v2-only",
        "set security ipsec proposal p-gcm encryption-algorithm aes-256-gcm",
        "set security ipsec policy pol proposals p-gcm",
    ]
    for name, unit, ts, establish in (reversed(vpns) if reverse else vpns):
        pre = f"set security ipsec vpn {name}"
        lines += [f"set interfaces st0 unit {unit} family inet",
                  f"{pre} bind-interface st0.{unit}",
                  f"{pre} ike gateway shared",
                  f"{pre} ike ipsec-policy pol"]
        if establish == "immediately":
            lines.append(f"{pre} establish-tunnels immediately")
        if ts:
            lines.append(f"{pre} traffic-selector ts local-ip {lan(side, unit)} "
                         f"remote-ip {lan(peer, unit)}")
        else:
            lines.append(f"set routing-options static route {lan(peer, unit)} "
                         f"next-hop st0.{unit}")
    return "\n".join(lines) + "\n" + extra


def _pair(text_a: str, text_b: str):
    a = Gateway.from_text(text_a, name="gw-a", clock=lambda: FIXED)
    b = Gateway.from_text(text_b, name="gw-b", clock=lambda: FIXED)
    ia, ib = pair_controls(a, b, A_T, B_T)
    return a, b, ia, ib, IkePump(ia, ib)


def _up(**kw):
    a, b, ia, ib, pump = _pair(shared_config("a"), shared_config("b", **kw))
    ia.start(0.0)
    ib.start(0.0)
    pump.run(0.0)
    pump.advance(2.0)
    return a, b, ia, ib, pump


def _carries(a: Gateway, b: Gateway, vpn: str, unit: int, n: int = 3) -> None:
    """`vpn` carries its own traffic both ways, and only its tunnel counts it."""
    link = WireLink(a, b)
    for src_gw, src, dst in ((a, "a", "b"), (b, "b", "a")):
        pk = [udp_packet(host(src, unit), host(dst, unit), bytes([i]) * 40) for i in range(n)]
        before = {t: src_gw.tunnel_flow(t).out_encrypted for t in src_gw.tunnel_names()}
        assert link.send(src_gw, pk).delivered == pk, (vpn, src)
        after = {t: src_gw.tunnel_flow(t).out_encrypted for t in src_gw.tunnel_names()}
        assert {t for t in after if after[t] != before[t]} == {vpn}
        assert after[vpn] == before[vpn] + n


def _spis(gw: Gateway, vpn: str) -> list[int]:
    return [p.inbound.spi for p in gw.tunnel(vpn).pairs]


def test_vpns_on_one_ike_gateway_share_one_ike_sa_in_memory() -> None:
    a, b, ia, ib, pump = _up(reverse=True)     # b lists the VPNs the other way round
    assert ia.up(["vpn-s1", "vpn-s2"]) and ib.up(["vpn-s1", "vpn-s2"])
    assert not ia.errors and not ib.errors and not ia.unsupported
    assert len(ia.sessions()) == len(ib.sessions()) == 1          # one IKE SA
    assert ia.session_of("vpn-s1") is ia.session_of("vpn-s2")
    assert len(ia.session_of("vpn-s1").children) == 2
    for gw, other in ((a, b), (b, a)):
        for vpn in ("vpn-s1", "vpn-s2"):
            (pair,) = gw.tunnel(vpn).pairs
            assert pair.inbound.spi == other.tunnel(vpn).pairs[0].outbound.spi
    _carries(a, b, "vpn-s1", 31)
    _carries(a, b, "vpn-s2", 32)
    summary = a.show("security ipsec security-associations")
    assert "Total active tunnels: 2" in summary
    assert a.show("security ike security-associations").count("IKEv2") == 1
    detail = a.show("security ike security-associations detail")
    assert "Gateway Name: shared" in detail and "IPSec security associations: 2 created" \
        in detail


def test_on_traffic_vpn_is_a_create_child_sa_on_the_existing_ike_sa() -> None:
    a, b, ia, ib, pump = _up()
    session = ia.session_of("vpn-s1")
    pk = udp_packet(host("a", 33), host("b", 33), b"first")
    out = a.outbound([pk])
    assert out.wire == [] and ia.on_traffic_dropped["vpn-s3"] == 1
    pump.advance(3.0)
    assert ia.up() and ib.up()
    assert ia.sessions() == [session] and len(session.children) == 3
    _carries(a, b, "vpn-s3", 33)
    _carries(a, b, "vpn-s1", 31)
    assert "Total active tunnels: 3" in b.show("security ipsec security-associations")


def test_rekey_and_delete_are_per_vpn_and_the_ike_sa_stays() -> None:
    a, b, ia, ib, pump = _up()
    session = ia.session_of("vpn-s1")
    s1_a, s2_a, s2_b = _spis(a, "vpn-s1"), _spis(a, "vpn-s2"), _spis(b, "vpn-s2")
    session.rekey_child(s1_a[0], 10.0)
    pump.run(10.0)
    assert _spis(a, "vpn-s1") != s1_a and _spis(a, "vpn-s2") == s2_a
    assert _spis(b, "vpn-s2") == s2_b
    rekeyed = [v for v, e in ia.events if isinstance(e, ChildSaRekeyed)]
    assert rekeyed == ["vpn-s1"]
    _carries(a, b, "vpn-s1", 31)
    # delete vpn-s2's child SA from b: only vpn-s2 goes, the IKE SA stays
    sb = ib.session_of("vpn-s2")
    s2_child = next(s for s, c in sb.children.items() if c.config.name == "vpn-s2/ts")
    sb.delete_child(s2_child, 11.0)
    pump.run(11.0)
    for gw in (a, b):
        assert "vpn-s2" not in gw.distributor and "vpn-s1" in gw.distributor
    assert [v for v, e in ia.events if isinstance(e, ChildSaDown)][-1] == "vpn-s2"
    assert ia.sessions() == [session] and session.state == "established"
    _carries(a, b, "vpn-s1", 31)
    assert "IPsec SA deleted" in ia.status["vpn-s2"].down_reason


def test_losing_the_ike_sa_takes_every_vpn_and_brings_them_back_together() -> None:
    a, b, ia, ib, pump = _up()
    old = ia.session_of("vpn-s1")
    old.close(20.0)
    pump.run(20.0)
    for gw in (a, b):
        assert "vpn-s1" not in gw.distributor and "vpn-s2" not in gw.distributor
    pump.advance(22.0)                     # the lower address renegotiates after the backoff
    new = ia.session_of("vpn-s1")
    assert new is not None and new is not old and ia.session_of("vpn-s2") is new
    assert ia.up(["vpn-s1", "vpn-s2"]) and ib.up(["vpn-s1", "vpn-s2"])
    assert len(ia.sessions()) == 1
    _carries(a, b, "vpn-s2", 32)
    assert sum(isinstance(e, IkeSaUp) for v, e in ia.events if v == "vpn-s1") == 2


def test_both_ends_bringing_up_the_same_vpn_leave_one_pair() -> None:
    """Both ends create vpn-s3's child SA at the same moment on the shared IKE SA: the one
    gw-a (the lower address) initiated stays on both sides, the other is deleted."""
    a, b, ia, ib, pump = _up()
    ia.ensure("vpn-s3", 5.0)
    ib.ensure("vpn-s3", 5.0)
    pump.run(5.0)
    for gw in (a, b):
        assert len(gw.tunnel("vpn-s3").pairs) == 1
    (pa,), (pb,) = a.tunnel("vpn-s3").pairs, b.tunnel("vpn-s3").pairs
    assert pa.inbound.spi == pb.outbound.spi and pa.outbound.spi == pb.inbound.spi
    sa = ia.session_of("vpn-s3")
    assert sa.children[pa.inbound.spi].initiator                  # a's child SA was kept
    assert sum(c.config.name == "vpn-s3" for c in sa.children.values()) == 1
    assert not ia.errors and not ib.errors
    _carries(a, b, "vpn-s3", 33)


def test_identical_selectors_on_one_gateway_cannot_come_up() -> None:
    """Two route-based VPNs on one IKE gateway both propose 0.0.0.0/0: the responder could
    not tell them apart. The first comes up, the second is reported and not negotiated."""
    vpns = (("vpn-r1", 41, False, "immediately"), ("vpn-r2", 42, False, "immediately"))
    verdicts = vpn_verdicts(load_config(shared_config("a", vpns)))
    assert verdicts["vpn-r1"].can_come_up and not verdicts["vpn-r2"].can_come_up
    assert "vpn-r1 on the same ike gateway shared proposes the same traffic selectors" in \
        verdicts["vpn-r2"].down_reason
    a, b, ia, ib, pump = _pair(shared_config("a", vpns), shared_config("b", vpns))
    assert list(ia.unsupported) == ["vpn-r2"] and list(ia.vpns) == ["vpn-r1"]
    ia.start(0.0)
    ib.start(0.0)
    pump.run(0.0)
    assert a.tunnel_names() == ["vpn-r1"] and b.tunnel_names() == ["vpn-r1"]


def test_three_vpns_on_one_ike_gateway_over_loopback_udp() -> None:
    vpns = VPNS[:2] + (("vpn-s3", 33, False, "immediately"),)
    a = Gateway.from_text(shared_config("a", vpns), name="gw-a")
    b = Gateway.from_text(shared_config("b", vpns, reverse=True), name="gw-b")
    with IkeUdpPort("127.0.0.1") as pa, IkeUdpPort("127.0.0.1") as pb:
        ia, ib = pair_controls(a, b, pa.transport, pb.transport)
        pa.attach(ia)
        pb.attach(ib)
        ia.start(time.monotonic())
        ib.start(time.monotonic())
        assert run_udp([pa, pb], lambda: ia.up() and ib.up(), 15.0)
    assert len(ia.sessions()) == len(ib.sessions()) == 1
    for vpn, unit in (("vpn-s1", 31), ("vpn-s2", 32), ("vpn-s3", 33)):
        _carries(a, b, vpn, unit)
    assert "Total active tunnels: 3" in a.show("security ipsec security-associations")
    assert b.show("security ike security-associations").count("IKEv2") == 1

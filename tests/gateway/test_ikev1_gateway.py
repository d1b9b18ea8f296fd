"""The gateway negotiates `v1-only` IKE gateways with IKEv1 (RFC 2409): Main and Aggressive
Mode, Quick Mode child SAs through the same SA distribution as IKEv2's (AES-GCM-128 on the
PFE, CBC/HMAC on the CPU), traffic both ways, make-before-break rekeys, Deletes from either
side, DPD with the Junos interval and threshold, the show commands, and one pair of ports
for both IKE versions."""
from __future__ import annotations

import pytest

from inline_ipsec.config import load_config
from inline_ipsec.control.ike_config import ike_config_for_vpn
from inline_ipsec.control.ike_control import DPD_EVENT
from inline_ipsec.control.vpn_verdict import vpn_verdicts
from inline_ipsec.gateway import Gateway, WireLink
from inline_ipsec.io.demo_config import IKEV1_VPNS, demo_config, ikev1_config
from inline_ipsec.io.ike_link import IkePump, IkeUdpPort, pair_controls, run_udp
from inline_ipsec.io.traffic import flows, packets
from inline_ipsec.ike import ChildSaDown, ChildSaRekeyed, Identity
from inline_ipsec.ike.v1 import IkeV1Config, IkeV1Session

from gw_helpers import FIXED

A_T = ("192.0.2.1", 500, 4500)
B_T = ("198.51.100.1", 500, 4500)
NAMES = [v[0] for v in IKEV1_VPNS]


def _pair(text_a: str, text_b: str, **kw):
    a = Gateway.from_text(text_a, name="gw-a", clock=lambda: FIXED)
    b = Gateway.from_text(text_b, name="gw-b", clock=lambda: FIXED)
    ia, ib = pair_controls(a, b, A_T, B_T, **kw)
    return a, b, ia, ib, IkePump(ia, ib)


def _up(mode: str = "main", **kw):
    a, b, ia, ib, pump = _pair(ikev1_config("a", mode), ikev1_config("b", mode), **kw)
    ia.start(0.0)
    ib.start(0.0)
    pump.run(0.0)
    pump.advance(2.0)                  # the higher address waits its backoff
    assert ia.up() and ib.up(), (list(ia.errors), list(ib.errors))
    return a, b, ia, ib, pump


def _both_ways(a: Gateway, b: Gateway, vpn: str, n: int = 4, seq: int = 0) -> None:
    link = WireLink(a, b)
    for f in flows(a, b):
        if f.vpn != vpn:
            continue
        pk = packets(f, n, 300, seq)
        gw = a if f.sender == "a" else b
        assert link.send(gw, pk).delivered == pk, (vpn, f.sender)


def _inbound(gw: Gateway, vpn: str) -> list[int]:
    return [p.inbound.spi for p in gw.tunnel(vpn).pairs]


def test_v1_only_gateway_becomes_an_ikev1_configuration() -> None:
    cfg = load_config(ikev1_config("a", "aggressive"))
    assert cfg.ike_gateways["v1"].version == "v1-only"        # Junos default, not written
    ike = ike_config_for_vpn(cfg, cfg.ipsec_vpns["v1-cbc"])
    assert isinstance(ike, IkeV1Config) and ike.mode == "aggressive"
    p1 = ike.proposals[0]
    assert (p1.auth_method, p1.encryption, p1.hash, p1.dh_group, p1.lifetime_seconds) == \
        ("pre-shared-keys", "aes-256-cbc", "sha-256", 19, 28800)
    assert ike.psk == b"inline-ipsec-demo-v1"
    assert ike.local_id == Identity.parse("@a.v1.demo")
    assert ike.remote_id == Identity.parse("@b.v1.demo")
    assert (ike.dpd_interval, ike.dpd_threshold, ike.dpd_mode) == \
        (10.0, 3, "probe-idle-tunnel")
    child = ike.children[0]
    assert child.proposals == ("aes256-sha256-ecp256-noesn",)    # PFS group 19
    assert child.local_ts == ("10.1.21.0/24",) and child.remote_ts == ("10.2.21.0/24",)


def test_verdict_says_ikev1_can_come_up_and_reports_what_ikev1_cannot_do() -> None:
    verdicts = vpn_verdicts(load_config(ikev1_config("a")))
    assert all(verdicts[n].can_come_up for n in NAMES), verdicts
    # IKEv1 has no AEAD Phase 1 cipher and no PPK: named, not a crash
    text = "\n".join(line for line in demo_config("a").splitlines()
                     if "ppk" not in line and "key-manager" not in line)
    bad = vpn_verdicts(load_config(text.replace("version v2-only", "version v1-only")))
    reason = bad["vpn-cbc"].down_reason
    assert not bad["vpn-cbc"].can_come_up and "aes-256-gcm" in reason, reason


@pytest.mark.parametrize("mode", ["main", "aggressive"])
def test_two_gateways_over_ikev1_offload_gcm_and_carry_traffic(mode: str) -> None:
    a, b, ia, ib, _ = _up(mode)
    for gw, ike in ((a, ia), (b, ib)):
        (s,) = ike.sessions()
        assert isinstance(s, IkeV1Session) and s.exchange_mode == mode.capitalize()
        assert gw.tunnel("v1-gcm128").offloaded                     # AES-GCM-128: PFE
        rec = gw.tunnel("v1-cbc")
        assert not rec.offloaded and "aes-cbc-256" in rec.placement.reasons[0]
    assert not ia.errors and not ib.errors
    for vpn in NAMES:
        _both_ways(a, b, vpn)
    # the two ends agree on the SPIs
    for vpn in NAMES:
        (pa,), (pb,) = a.tunnel(vpn).pairs, b.tunnel(vpn).pairs
        assert pa.inbound.spi == pb.outbound.spi and pb.inbound.spi == pa.outbound.spi


def test_ikev1_shows_as_junos_prints_them() -> None:
    a, b, ia, ib, _ = _up("main")
    rows = a.show("security ike security-associations").splitlines()
    assert rows[0].startswith("Index   State  Initiator cookie  Responder cookie  Mode")
    (row,) = rows[1:]
    s = ia.sessions()[0]
    assert f"{s.ike.spi_i.hex()}  {s.ike.spi_r.hex()}  Main " in row
    assert row.rstrip().endswith("198.51.100.1") and " UP " in row
    detail = b.show("security ike security-associations detail")
    for line in ("Gateway Name: v1", " Role: Responder, State: UP",
                 " Exchange type: Main, Authentication method: Pre-shared-keys",
                 " Local: 198.51.100.1:500, Remote: 192.0.2.1:500",
                 " Lifetime: Expires in 2879",       # 28800 s, counted since Phase 1
                 "  Authentication        : hmac-sha256-128",
                 "  Encryption            : aes256-cbc",
                 "  Pseudo random function: hmac-sha256",
                 "  Diffie-Hellman group  : DH-group-19",
                 " Peer ike-id: a.v1.demo",
                 " IPSec security associations: 2 created, 0 deleted"):
        assert line in detail, (line, detail)
    ipsec = a.show("security ipsec security-associations detail vpn-name v1-gcm128")
    assert "  Version: IKEv1\n" in ipsec and "  Hardware Offloaded: Yes\n" in ipsec
    assert "  Quantum Secured: No\n" in ipsec
    cbc = a.show("security ipsec security-associations detail vpn-name v1-cbc")
    assert "  Version: IKEv1\n" in cbc and "  Hardware Offloaded: No\n" in cbc
    assert "PFS group: DH-group-19" in cbc
    agg = _up("aggressive")
    assert " Aggressive " in agg[0].show("security ike security-associations")
    assert "Exchange type: Aggressive," in agg[1].show(
        "security ike security-associations detail")


def test_quick_mode_rekey_is_make_before_break_with_traffic_on_the_new_spis() -> None:
    a, b, ia, ib, pump = _up()
    before = {v: (_inbound(a, v), _inbound(b, v)) for v in NAMES}
    mark = len(ia.events)
    pump.advance(3001.0)               # the soft lifetime (5/6 of 3600 s) on the initiator
    pump.advance(3002.0)
    kinds = [(v, type(e).__name__) for v, e in ia.events[mark:]]
    for vpn in NAMES:
        assert (vpn, "ChildSaRekeyed") in kinds and (vpn, "ChildSaDown") in kinds, kinds
        new_a, new_b = _inbound(a, vpn), _inbound(b, vpn)
        assert len(new_a) == len(new_b) == 1
        assert new_a != before[vpn][0] and new_b != before[vpn][1]
        assert a.tunnel(vpn).pairs[0].outbound.spi == new_b[0]
        _both_ways(a, b, vpn, seq=100)
    assert a.tunnel("v1-gcm128").offloaded and b.tunnel("v1-gcm128").offloaded
    assert not ia.errors and not ib.errors


@pytest.mark.parametrize("deleter", ["a", "b"])
def test_delete_from_either_side_removes_the_pair_on_both(deleter: str) -> None:
    a, b, ia, ib, pump = _up()
    gw, ike = (a, ia) if deleter == "a" else (b, ib)
    session = ike.session_of("v1-cbc")
    spi = _inbound(gw, "v1-cbc")[0]
    session.delete_child(spi, 10.0)
    pump.run(10.0)
    for g in (a, b):
        assert "v1-cbc" not in g.distributor               # both ends removed it
        assert "v1-gcm128" in g.distributor                # the other VPN stays
    other = ib if deleter == "a" else ia
    assert any(v == "v1-cbc" and isinstance(e, ChildSaDown) for v, e in other.events)
    # closing the ISAKMP SA deletes the rest (RFC 2408 §4.8)
    ike.session_of("v1-gcm128").close(11.0)
    pump.run(11.0)
    assert "v1-gcm128" not in a.distributor and "v1-gcm128" not in b.distributor


def test_dpd_clears_a_silent_peer_after_interval_times_threshold() -> None:
    a, b, ia, ib, pump = _up()
    t = 2.0
    while ia.sessions() and t < 120.0:     # b is silent from now on: only a's timers run
        t += 1.0
        if (due := ia.get_timer()) is not None and due <= t:
            ia.handle_timer(t)
        ia.datagrams_to_send(t)            # R-U-THERE, lost
    assert not ia.sessions() and 40.0 <= t <= 60.0, t   # 10 s idle + 3 probes 10 s apart
    for vpn in NAMES:
        assert vpn not in a.distributor
        assert DPD_EVENT in ia.status[vpn].event_lines()[-1]
    # while b answers, DPD keeps the tunnels
    a, b, ia, ib, pump = _up()
    for t in range(3, 100, 5):
        pump.advance(float(t))
    assert ia.up() and ib.up() and ia.sessions()[0].dpd_outstanding == 0


def test_one_pair_of_ports_serves_an_ikev1_and_an_ikev2_gateway() -> None:
    """A `v1-only` and a `v2-only` gateway to the same peer address: each datagram reaches
    the manager of its header's major version."""
    def both(side: str) -> str:
        text = ikev1_config(side)
        demo = [line for line in demo_config(side).splitlines()
                if "peer-v6" not in line and "gw-vpn" not in line and "ppk" not in line
                and "key-manager" not in line and "unit 0 family inet address" not in line
                and "vpn-" not in line or "vpn-gcm256" in line]
        return text + "\n".join(demo) + "\n"
    a, b, ia, ib, pump = _pair(both("a"), both("b"))
    assert ia.unsupported == {}, ia.unsupported
    ia.start(0.0)
    ib.start(0.0)
    pump.run(0.0)
    pump.advance(2.0)
    assert ia.up() and ib.up()
    versions = sorted(type(s).__name__ for s in ia.sessions())
    assert versions == ["IkeV1Session", "IkeV2Session"]
    rows = a.show("security ike security-associations")
    assert " Main " in rows and " IKEv2 " in rows
    for vpn in (*NAMES, "vpn-gcm256"):
        assert vpn in a.distributor and vpn in b.distributor


def test_many_ikev1_gateways_to_one_peer_told_apart_by_identity() -> None:
    """Main Mode PSK picks the key by address (RFC 2409 §5.4); gateways sharing the peer
    address and the policy are told apart by the identity the peer proves."""
    from inline_ipsec.io.demo_config import scale_config
    a, b, ia, ib, pump = _pair(scale_config("a", 6, version="v1-only"),
                               scale_config("b", 6, version="v1-only"))
    ia.start(0.0)
    ib.start(0.0)
    pump.run(0.0)
    pump.advance(2.0)
    assert ia.up() and ib.up() and not ia.errors and not ib.errors
    assert len(ib.sessions()) == 6
    for s in ib.sessions():               # each responder session took its own gateway
        assert s.config.name == "g" + str(s.peer_id).split(".")[0][1:]


def test_re_authentication_keeps_the_tunnels_and_moves_them_to_the_new_isakmp_sa() -> None:
    a, b, ia, ib, pump = _up()
    old = ia.sessions()[0]
    spis = {v: _inbound(a, v) for v in NAMES}
    fresh = ia.manager_v1.reauthenticate(old, 5.0)
    assert fresh is not None
    pump.run(5.0)
    assert fresh.state == "established" and not old.children
    assert old.state == "established"     # its Delete waits for the peer to move the pairs
    pump.advance(5.0 + old.config.reauth_delete_delay)
    assert old.state == "closed"
    assert ia.sessions() == [fresh]
    for vpn in NAMES:
        assert _inbound(a, vpn) == spis[vpn]              # the IPsec SAs stay
        assert ia.session_of(vpn) is fresh
    # their later rekey runs on the new ISAKMP SA
    pump.advance(3001.0)
    pump.advance(3002.0)
    for vpn in NAMES:
        assert _inbound(a, vpn) != spis[vpn]
        _both_ways(a, b, vpn, seq=50)
    assert not any(isinstance(e, ChildSaRekeyed) and v not in NAMES for v, e in ia.events)


@pytest.mark.slow
def test_two_gateways_over_ikev1_on_loopback_udp() -> None:
    a = Gateway.from_text(ikev1_config("a"), name="gw-a")
    b = Gateway.from_text(ikev1_config("b"), name="gw-b")
    with IkeUdpPort("127.0.0.1") as pa, IkeUdpPort("127.0.0.1") as pb:
        ia, ib = pair_controls(a, b, pa.transport, pb.transport, backoff=0.2)
        pa.attach(ia)
        pb.attach(ib)
        import time
        ia.start(time.monotonic())
        ib.start(time.monotonic())
        assert run_udp([pa, pb], lambda: ia.up() and ib.up(), 10.0)
        for vpn in NAMES:
            _both_ways(a, b, vpn)


@pytest.mark.parametrize("method", ["ecdsa-signatures-256", "rsa-signatures"])
def test_ikev1_certificates_from_the_policy(method: str) -> None:
    """`certificate local-certificate <name>` with an IKEv1 `authentication-method`
    (RFC 2409 §5.1 signatures, RFC 4754 ECDSA): the key and chain loaded for that name, the
    peer's certificate checked against the CA, the identity its subject's alternative name."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ike"))
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from ike_helpers import _cert

    def new_key():
        return ec.generate_private_key(ec.SECP256R1()) if method.startswith("ecdsa") \
            else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_key = new_key()
    ca = _cert("Demo CA", ca_key, ca=True)
    creds = {}
    for side in "ab":
        key = new_key()
        creds[side] = {"gw-cert": (key, [_cert(f"{side}.v1.demo", key, ca, ca_key,
                                               san=f"{side}.v1.demo")])}
    texts = []
    for side in "ab":
        lines = [ln for ln in ikev1_config(side).splitlines() if "pre-shared-key " not in ln]
        lines = [ln.replace("authentication-method pre-shared-keys",
                            f"authentication-method {method}") for ln in lines]
        if method == "rsa-signatures":      # no method: the key's (an RSA key here)
            lines = [ln for ln in lines if "authentication-method" not in ln]
        lines.append("set security ike policy ike-v1 certificate local-certificate gw-cert")
        texts.append("\n".join(lines) + "\n")
    a, b, ia, ib, pump = _pair(*texts, a_kw={"credentials": creds["a"]},
                               b_kw={"credentials": creds["b"]}, ca_certificates=[ca])
    assert ia.peers["v1"].config.suites[0].uses_signatures
    ia.start(0.0)
    ib.start(0.0)
    pump.run(0.0)
    pump.advance(2.0)
    assert ia.up() and ib.up(), (list(ia.errors), [s.errors for s in ia.sessions()])
    assert str(ib.sessions()[0].peer_id) == "a.v1.demo"
    shown = {"ecdsa-signatures-256": "ECDSA-signatures-256",
             "rsa-signatures": "RSA-signatures"}[method]
    assert f"Exchange type: Main, Authentication method: {shown}" in a.show(
        "security ike security-associations detail")
    for vpn in NAMES:
        _both_ways(a, b, vpn)

"""CREATE_CHILD_SA (new child, child rekey, IKE rekey) and INFORMATIONAL (delete, DPD) on an
in-memory pair (RFC 7296 §1.3, §1.4, §2.4, §2.8, §2.18). Make-before-break: the tests check
which SPI pairs each side holds after each exchange.
"""
import pytest

from inline_ipsec.ike import (ChildConfig, ChildSaDown, ChildSaRekeyed, ChildSaUp, IkeSaDown,
                              IkeSaRekeyed)
from inline_ipsec.ike.constants import ExchangeType
from inline_ipsec.ike.message import decode_message
from inline_ipsec.ike.payloads import KePayload

from ike_helpers import configs, established


def _of(events, cls):
    return [e for e in events if isinstance(e, cls)]


def _pairs(session):
    return sorted((c.spi_in, c.spi_out) for c in session.children.values())


def _mirror(session):
    return sorted((o, i) for i, o in _pairs(session))


def _exchanges(pair, start=0):
    out = []
    for direction, d, _ in pair.log[start:]:
        raw = d[4:] if d.startswith(b"\0\0\0\0") else d
        out.append((direction, ExchangeType(raw[18]).name))
    return out


@pytest.mark.parametrize("who", ["i", "r"])
def test_child_rekey_make_before_break(who):
    #   A (rekey initiator)                                  B
    #   HDR, SK{N(REKEY_SA, old spi), SA, Ni, TSi, TSr}  -->
    #                                           <--  HDR, SK{SA, Nr, TSi, TSr}
    #   (both: ChildSaRekeyed, old + new installed)
    #   HDR, SK{D(ESP, old spi_in of A)}                -->
    #                                           <--  HDR, SK{D(ESP, old spi_in of B)}
    #   (both: ChildSaDown(old))
    p = established(*configs())
    old = _pairs(p.i)[0]
    a, b = (p.i, p.r) if who == "i" else (p.r, p.i)
    a_events = p.i_events if who == "i" else p.r_events
    b_events = p.r_events if who == "i" else p.i_events
    start = len(p.log)
    spi = next(iter(a.children))
    a.rekey_child(spi, p.now)
    p.deliver(who)                          # CREATE_CHILD_SA request
    p.deliver("r" if who == "i" else "i")   # ... and its response
    (ra,), (rb,) = _of(a_events, ChildSaRekeyed), _of(b_events, ChildSaRekeyed)
    assert len(a.children) == 2 and len(b.children) == 2   # make before break
    assert ra.new.spi_out == rb.new.spi_in and ra.new.key_out == rb.new.key_in
    assert ra.new.key_in == rb.new.key_out
    assert {ra.old_spi_in, ra.old_spi_out} == set(old)
    assert ra.new.spi_in not in old
    p.run()    # INFORMATIONAL delete of the old pair
    assert _exchanges(p, start) == [(f"{who}->{'r' if who == 'i' else 'i'}", "CREATE_CHILD_SA"),
                                    (f"{'r' if who == 'i' else 'i'}->{who}", "CREATE_CHILD_SA"),
                                    (f"{who}->{'r' if who == 'i' else 'i'}", "INFORMATIONAL"),
                                    (f"{'r' if who == 'i' else 'i'}->{who}", "INFORMATIONAL")]
    assert _pairs(p.i) == _mirror(p.r) and len(p.i.children) == 1
    assert _pairs(a) == [(ra.new.spi_in, ra.new.spi_out)]
    downs_a, downs_b = _of(a_events, ChildSaDown), _of(b_events, ChildSaDown)
    assert [(d.spi_in, d.spi_out) for d in downs_a] == [(ra.old_spi_in, ra.old_spi_out)]
    assert [(d.spi_in, d.spi_out) for d in downs_b] == [(rb.old_spi_in, rb.old_spi_out)]


def test_rekey_with_pfs_uses_fresh_dh():
    icfg, rcfg = configs(children=[ChildConfig(proposals=["aes256gcm16-x25519"])])
    p = established(icfg, rcfg)
    first = _of(p.i_events, ChildSaUp)[0].child
    p.i.rekey_child(first.spi_in, p.now)
    p.run()
    (ri,), (rr,) = _of(p.i_events, ChildSaRekeyed), _of(p.r_events, ChildSaRekeyed)
    assert ri.new.key_out == rr.new.key_in and ri.new.key_out != first.key_out
    # The CREATE_CHILD_SA request carried a fresh Curve25519 KE payload (§1.3.3 PFS).
    req = next(d for direction, d, _ in p.log if direction == "i->r" and d[18] == 36)
    inner = p.r.ike.sk_in.open(decode_message(req))
    assert any(isinstance(x, KePayload) and x.group == 31 for x in inner)


def test_rekey_triggered_by_soft_lifetime_timer():
    icfg, rcfg = configs(i_children=[ChildConfig(lifetime_seconds=100, rekey_seconds=60)],
                         r_children=[ChildConfig(lifetime_seconds=200)])
    p = established(icfg, rcfg)
    assert p.i.get_timer() == pytest.approx(60)
    p.advance(59)
    assert not _of(p.i_events, ChildSaRekeyed)
    p.advance(1)
    assert _of(p.i_events, ChildSaRekeyed) and _of(p.r_events, ChildSaRekeyed)
    assert len(p.i.children) == 1 and _pairs(p.i) == _mirror(p.r)
    new = next(iter(p.i.children.values()))
    assert new.rekey_at == pytest.approx(120)


def test_hard_lifetime_deletes_child():
    icfg, rcfg = configs(children=[ChildConfig(lifetime_seconds=50, rekey_seconds=1000)])
    p = established(icfg, rcfg)
    p.advance(50)
    assert not p.i.children and not p.r.children
    assert _of(p.i_events, ChildSaDown) and _of(p.r_events, ChildSaDown)
    assert p.i.state == p.r.state == "established"


def test_create_additional_child_sa():
    #   HDR, SK{SA, Ni, TSi, TSr}  -->
    #                          <--  HDR, SK{SA, Nr, TSi, TSr}
    second = ChildConfig(name="second", local_ts=["10.3.0.0/16"], remote_ts=["10.4.0.0/16"])
    icfg, rcfg = configs(r_children=[ChildConfig(), ChildConfig(
        name="second", local_ts=["10.4.0.0/16"], remote_ts=["10.3.0.0/16"])])
    p = established(icfg, rcfg)
    p.i.create_child(second, p.now)
    p.run()
    ups_i, ups_r = _of(p.i_events, ChildSaUp), _of(p.r_events, ChildSaUp)
    assert len(ups_i) == len(ups_r) == 2
    assert ups_i[1].child.spi_out == ups_r[1].child.spi_in
    assert ups_i[1].child.key_out == ups_r[1].child.key_in
    assert ups_r[1].child.name == "second"
    assert [str(t) for t in ups_i[1].child.remote_ts] == ["10.4.0.0/16"]
    assert len(p.i.children) == len(p.r.children) == 2


def test_delete_child_both_sides():
    p = established(*configs())
    spi_in, spi_out = _pairs(p.r)[0]
    p.r.delete_child(spi_in, p.now)
    p.run()
    assert not p.i.children and not p.r.children
    assert [(d.spi_in, d.spi_out) for d in _of(p.r_events, ChildSaDown)] == [(spi_in, spi_out)]
    assert [(d.spi_in, d.spi_out) for d in _of(p.i_events, ChildSaDown)] == [(spi_out, spi_in)]


def test_crossed_deletes():
    #   D(ESP, a) -->   <-- D(ESP, b)   (both requests cross on the wire)
    #   <-- {}           {} -->          (responses carry no Delete payload, §1.4.1)
    p = established(*configs())
    (ia, io), = _pairs(p.i)
    p.i.delete_child(ia, p.now)
    p.r.delete_child(io, p.now)
    p.run()
    assert not p.i.children and not p.r.children
    assert len(_of(p.i_events, ChildSaDown)) == 1 and len(_of(p.r_events, ChildSaDown)) == 1
    assert p.i.state == p.r.state == "established"


def test_ike_rekey_moves_children_and_deletes_old_sa():
    #   HDR(old), SK{SA(IKE, SPIi'), Ni, KEi}  -->
    #                                    <--  HDR(old), SK{SA(IKE, SPIr'), Nr, KEr}
    #   HDR(old), SK{D(IKE)}  -->
    #                                    <--  HDR(old), SK{}
    p = established(*configs())
    old_spis = (p.i.ike.spi_i, p.i.ike.spi_r)
    children_before = _pairs(p.i)
    p.i.rekey_ike(p.now)
    p.run()
    (ei,), (er,) = _of(p.i_events, IkeSaRekeyed), _of(p.r_events, IkeSaRekeyed)
    assert (ei.old_spi_i, ei.old_spi_r) == old_spis == (er.old_spi_i, er.old_spi_r)
    assert (ei.spi_i, ei.spi_r) == (er.spi_i, er.spi_r) != old_spis
    assert (p.i.ike.spi_i, p.i.ike.spi_r) == (ei.spi_i, ei.spi_r)
    assert p.i.ike.keys.sk_d == p.r.ike.keys.sk_d and p.i.ike.keys.sk_d != b""
    assert not p.i.old_ike and not p.r.old_ike          # old IKE SA deleted
    assert _pairs(p.i) == children_before               # children moved over
    assert p.i.ike.next_mid == 0 and p.r.ike.peer_mid == 0
    # The new IKE SA works: a child rekey over it derives matching keys from the new SK_d.
    p.i.rekey_child(children_before[0][0], p.now)
    p.run()
    (ri,), (rr,) = _of(p.i_events, ChildSaRekeyed), _of(p.r_events, ChildSaRekeyed)
    assert ri.new.key_out == rr.new.key_in
    assert not _of(p.i_events, IkeSaDown) and not _of(p.r_events, IkeSaDown)


def test_ike_rekey_by_responder():
    p = established(*configs())
    p.r.rekey_ike(p.now)
    p.run()
    assert _of(p.i_events, IkeSaRekeyed) and _of(p.r_events, IkeSaRekeyed)
    assert p.r.ike.initiator and not p.i.ike.initiator   # rekey initiator = new "original"
    p.i.delete_child(next(iter(p.i.children)), p.now)
    p.run()
    assert not p.i.children and not p.r.children


def test_dpd_exchange_and_dead_peer():
    #   HDR, SK{}  -->
    #          <--  HDR, SK{}
    icfg, rcfg = configs(i_dpd_interval=30.0, i_dpd_threshold=2, retransmit_timeout=1.0,
                         retransmit_base=2.0, retransmit_tries=2)
    p = established(icfg, rcfg)
    start = len(p.log)
    assert p.i.get_timer() == pytest.approx(30.0)
    p.advance(30.0)
    assert _exchanges(p, start) == [("i->r", "INFORMATIONAL"), ("r->i", "INFORMATIONAL")]
    assert p.i.state == "established"
    # Now the responder goes silent: a probe at 60 s, again at 90 s (the DPD interval, not
    # the retransmission back-off), and with threshold 2 the peer is dead at 120 s.
    p.r = type(p.r)(rcfg, initiator=False, local_addr=p.r.local_addr,
                    remote_addr=p.r.remote_addr)  # a fresh responder knows no SPIs
    sent = []
    for _ in range(4):
        t = p.i.get_timer()
        if t is None:
            break
        p.now = t
        p.i.handle_timer(t)
        sent += [t for _ in p.i.datagrams_to_send(t)]
    p.drain_events()
    assert sent == [60.0, 90.0]
    down = _of(p.i_events, IkeSaDown)
    assert down and down[0].reason == "dead peer" and p.now == 120.0
    assert down[0].children and p.i.state == "closed"


def test_close_deletes_ike_sa_on_both_sides():
    p = established(*configs())
    children = _pairs(p.i)
    p.i.close(p.now)
    p.run()
    assert p.i.state == p.r.state == "closed"
    (di,), (dr,) = _of(p.i_events, IkeSaDown), _of(p.r_events, IkeSaDown)
    assert di.reason == "deleted" and dr.reason == "deleted by peer"
    assert di.children == children and dr.children == [(o, i) for i, o in children]


def test_ike_rekey_triggered_by_lifetime_timer():
    icfg, rcfg = configs(i_ike_rekey_seconds=100.0)
    p = established(icfg, rcfg)
    assert p.i.get_timer() == pytest.approx(100.0)
    p.advance(99.0)
    assert not _of(p.i_events, IkeSaRekeyed)
    p.advance(1.0)
    assert _of(p.i_events, IkeSaRekeyed) and _of(p.r_events, IkeSaRekeyed)
    assert p.i.ike_rekey_at == pytest.approx(200.0)
    assert p.i.ike.spi_i == p.r.ike.spi_i and not p.i.old_ike and not p.r.old_ike


def _made_sas(monkeypatch):
    """Every IKE SA a rekey exchange creates, on either end, in order."""
    from inline_ipsec.ike.v2.tasks import ike_rekey
    made = []
    real = ike_rekey._new_sa

    def spy(*args, **kw):
        sa = real(*args, **kw)
        made.append(sa)
        return sa
    monkeypatch.setattr(ike_rekey, "_new_sa", spy)
    return made


def _check_collision_outcome(p, made, old_spi, children) -> None:
    """Both ends agree on the IKE SA whose exchange did not carry the lowest of the four
    nonces (RFC 7296 §2.8.2); nothing else is left, and the child SAs moved to it."""
    from inline_ipsec.ike.constants import NotifyType
    from inline_ipsec.ike.v2.tasks.ike_rekey import redundant
    by_spi = {}
    for sa in made:                    # each exchange's SA exists on both ends
        by_spi.setdefault((sa.spi_i, sa.spi_r), sa)
    assert len(by_spi) == 2, by_spi.keys()
    a, b = by_spi.values()
    loser = redundant(a, b)
    winner = b if loser is a else a
    assert min(loser.nonce_i, loser.nonce_r) < min(winner.nonce_i, winner.nonce_r)
    for s in (p.i, p.r):
        assert (s.ike.spi_i, s.ike.spi_r) == (winner.spi_i, winner.spi_r) != old_spi
        assert s.old_ike == [] and s.state == "established"
        assert not [e for e in s.errors if getattr(e, "notify_hint", None) ==
                    NotifyType.TEMPORARY_FAILURE]
    assert p.i.ike.keys.sk_d == p.r.ike.keys.sk_d
    assert _pairs(p.i) == children
    # the survivor works: a liveness check and a child rekey on it
    p.i.send_dpd(p.now)
    p.r.rekey_child(next(iter(p.r.children)), p.now)
    p.run()
    assert p.i.state == p.r.state == "established" and len(p.i.children) == 1
    assert p.i.ike.spi_i == winner.spi_i


@pytest.mark.parametrize("seed", range(6))
def test_simultaneous_ike_rekey_keeps_the_sa_without_the_lowest_nonce(monkeypatch, seed):
    #   SA(IKE) Ni KEi -->   <-- SA(IKE) Ni KEi      (requests cross)
    #   <-- SA(IKE) Nr KEr   SA(IKE) Nr KEr -->      (each answers the other)
    #   the exchange with the lowest of the four nonces made the redundant SA: its initiator
    #   deletes it; the survivor's initiator deletes the old SA (§2.8.2)
    made = _made_sas(monkeypatch)
    p = established(*configs())
    old = (p.i.ike.spi_i, p.i.ike.spi_r)
    children = _pairs(p.i)
    p.i.rekey_ike(p.now)
    p.r.rekey_ike(p.now)
    p.run()
    assert len(_of(p.i_events, IkeSaRekeyed)) == len(_of(p.r_events, IkeSaRekeyed)) == 1
    _check_collision_outcome(p, made, old, children)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("late", ["i", "r"])
def test_late_colliding_ike_rekey_is_decided_alike(monkeypatch, seed, late):
    #   one end's rekey completes (and it deletes the old SA) before the other end's
    #   colliding request, delayed, arrives on the old SA: the same rule decides
    made = _made_sas(monkeypatch)
    p = established(*configs())
    old = (p.i.ike.spi_i, p.i.ike.spi_r)
    children = _pairs(p.i)
    p.i.rekey_ike(p.now)
    p.r.rekey_ike(p.now)
    slow, fast = (p.i, "r") if late == "i" else (p.r, "i")
    held = slow.datagrams_to_send(p.now)          # the delayed request
    p.deliver(fast)                                # fast's request; slow answers it
    p.deliver("i" if fast == "r" else "r")         # the answer; fast's rekey completes
    peer = p.r if slow is p.i else p.i
    for d, _addr in held:
        src = p.i_seen if slow is p.i else (p.i.remote_addr[0], 500)
        peer.receive_datagram(d, src, p.now)
    p.drain_events()
    p.run()
    _check_collision_outcome(p, made, old, children)


def test_ike_rekey_uses_the_negotiated_group_and_retries_on_invalid_ke():
    #   IKE_SA_INIT settled on x25519 after INVALID_KE_PAYLOAD; the rekey offers x25519
    #   first. If the responder's policy changed meanwhile, INVALID_KE_PAYLOAD makes us retry
    #   with the group it names.
    icfg, rcfg = configs(i_proposals=["aes128gcm16-prfsha256-ecp256",
                                      "aes128gcm16-prfsha256-x25519"],
                         r_proposals=["aes128gcm16-prfsha256-x25519"])
    p = established(icfg, rcfg)
    n_log = len(p.log)
    p.i.rekey_ike(p.now)
    p.run()
    assert _of(p.i_events, IkeSaRekeyed)
    assert len(p.log) - n_log == 4          # CREATE_CHILD_SA + delete, no INVALID_KE round
    assert p.i.ike.suite.dh == 31
    rcfg.proposals = ["aes128gcm16-prfsha256-ecp256"]   # responder now wants ecp256
    p.i.rekey_ike(p.now)
    p.run()
    assert len(_of(p.i_events, IkeSaRekeyed)) == 2 and p.i.ike.suite.dh == 19
    assert p.r.ike.keys.sk_d == p.i.ike.keys.sk_d


def test_child_pfs_invalid_ke_retry_and_rekey_keeps_the_group():
    #   SA(esp: x25519 | ecp256), KEi(x25519)  -->
    #                             <--  N(INVALID_KE_PAYLOAD, 19)
    #   SA(esp: ecp256 first), KEi(ecp256)     -->
    #                             <--  SA, Nr, KEr(ecp256)
    second_i = ChildConfig(name="pfs", proposals=["aes128gcm16-x25519", "aes128gcm16-ecp256"],
                           local_ts=["10.5.0.0/16"], remote_ts=["10.6.0.0/16"])
    second_r = ChildConfig(name="pfs", proposals=["aes128gcm16-ecp256"],
                           local_ts=["10.6.0.0/16"], remote_ts=["10.5.0.0/16"])
    icfg, rcfg = configs(r_children=[ChildConfig(), second_r])
    p = established(icfg, rcfg)
    p.i.create_child(second_i, p.now)
    p.run()
    ups = [e.child for e in _of(p.i_events, ChildSaUp)]
    assert len(ups) == 2 and ups[1].name == "pfs"
    child = p.i.children[ups[1].spi_in]
    assert child.suite.dh == 19
    ccsa = [d for direction, d, _ in p.log if d[18] == 36]
    assert len(ccsa) == 4                      # one refused round, one good round
    p.i.rekey_child(child.spi_in, p.now)
    p.run()
    (rk,) = _of(p.i_events, ChildSaRekeyed)
    assert p.i.children[rk.new.spi_in].suite.dh == 19
    assert len([d for direction, d, _ in p.log if d[18] == 36]) == 6   # no INVALID_KE now

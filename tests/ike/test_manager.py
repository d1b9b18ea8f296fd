"""`IkeManager`: several IKE SAs behind one address pair, dispatched by SPI (RFC 7296 §2.1)."""
from inline_ipsec.ike import ChildSaUp, IkeSaRekeyed, IkeSaUp
from inline_ipsec.ike.manager import IkeManager

from ike_helpers import configs

A, B = ("192.0.2.1", 500), ("198.51.100.1", 500)


def _shuttle(ma, mb, now=0.0, rounds=10):
    for _ in range(rounds):
        moved = 0
        for d, _ in ma.datagrams_to_send(now):
            mb.receive_datagram(d, A, now)
            moved += 1
        for d, _ in mb.datagrams_to_send(now):
            ma.receive_datagram(d, B, now)
            moved += 1
        if not moved:
            return


def _events(m):
    return list(iter(m.next_event, None))


def test_two_ike_sas_between_the_same_addresses_are_kept_apart():
    icfg, rcfg = configs()
    ma, mb = IkeManager(A, 4500), IkeManager(B, 4500)
    mb.add_peer("192.0.2.0/24", rcfg)
    s1 = ma.connect(icfg, B, 0.0)
    s2 = ma.connect(icfg, B, 0.0)
    _shuttle(ma, mb)
    assert s1.state == s2.state == "established"
    assert len(mb.sessions) == 2
    ups = [e for _, e in _events(ma) if isinstance(e, ChildSaUp)]
    rups = {e.child.spi_in: e.child for _, e in _events(mb) if isinstance(e, ChildSaUp)}
    assert len(ups) == 2 and len(rups) == 2
    for up in ups:   # each initiator child pairs with exactly the right responder child
        assert rups[up.child.spi_out].key_in == up.child.key_out


def test_unknown_peer_is_ignored_and_stateless_replies_leave_no_session():
    icfg, rcfg = configs(r_require_cookie=True)
    ma, mb = IkeManager(A, 4500), IkeManager(B, 4500)
    s = ma.connect(icfg, B, 0.0)
    for d, _ in ma.datagrams_to_send(0.0):
        mb.receive_datagram(d, A, 0.0)       # no peer configured: dropped
    assert mb.sessions == [] and mb.datagrams_to_send(0.0) == []
    mb.add_peer("192.0.2.1/32", rcfg)
    s.handle_timer(s.get_timer())            # retransmit
    for d, _ in ma.datagrams_to_send(4.0):
        mb.receive_datagram(d, A, 4.0)
    out = mb.datagrams_to_send(4.0)          # COOKIE request, and nothing kept
    assert len(out) == 1 and mb.sessions == []
    for d, _ in out:
        ma.receive_datagram(d, B, 4.0)
    _shuttle(ma, mb, 4.0)
    assert s.state == "established" and len(mb.sessions) == 1


def test_dispatch_follows_ike_rekey_and_closed_sessions_are_pruned():
    icfg, rcfg = configs()
    ma, mb = IkeManager(A, 4500), IkeManager(B, 4500)
    mb.add_peer("0.0.0.0/0", rcfg)
    s = ma.connect(icfg, B, 0.0)
    _shuttle(ma, mb)
    s.rekey_ike(1.0)
    _shuttle(ma, mb, 1.0)
    assert any(isinstance(e, IkeSaRekeyed) for _, e in _events(mb))
    assert mb.sessions[0].ike.spi_i == s.ike.spi_i and not s.old_ike
    s.close(2.0)
    _shuttle(ma, mb, 2.0)
    assert ma.sessions == [] and mb.sessions == []
    assert ma.get_timer() is None


def test_manager_timer_drives_retransmission():
    icfg, _ = configs()
    ma = IkeManager(A, 4500)
    ma.connect(icfg, B, 0.0)
    first = ma.datagrams_to_send(0.0)
    assert ma.get_timer() == 4.0
    ma.handle_timer(4.0)
    again = ma.datagrams_to_send(4.0)
    assert again == first and not any(isinstance(e, IkeSaUp) for _, e in _events(ma))


def test_initial_contact_replaces_stale_ike_sa_of_the_same_peer():
    #   (peer reboots, forgets its IKE SA, connects again)
    #   HDR, SK{IDi, AUTH, N(INITIAL_CONTACT), ...}  -->  old IKE SA of IDi is dropped
    from inline_ipsec.ike import IkeSaDown
    icfg, rcfg = configs()
    ma, mb = IkeManager(A, 4500), IkeManager(B, 4500)
    mb.add_peer("0.0.0.0/0", rcfg)
    ma.connect(icfg, B, 0.0)
    _shuttle(ma, mb)
    stale = mb.sessions[0]
    _events(mb)
    ma2 = IkeManager(A, 4500)          # the rebooted peer
    ma2.connect(icfg, B, 1.0)
    _shuttle(ma2, mb, 1.0)
    events = _events(mb)
    downs = [(s, e) for s, e in events if isinstance(e, IkeSaDown)]
    assert [(s is stale, e.reason) for s, e in downs] == [(True, "replaced by INITIAL_CONTACT")]
    assert downs[0][1].children            # its child SAs go with it
    assert len(mb.sessions) == 1 and mb.sessions[0] is not stale

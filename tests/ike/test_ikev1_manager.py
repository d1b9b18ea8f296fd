"""`IkeV1Manager`: sessions by cookie, responders on demand, INITIAL-CONTACT; and two managers
over loopback UDP through the asyncio endpoint."""
from __future__ import annotations

import asyncio

import pytest

from ikev1_helpers import I_ADDR, R_ADDR, configs
from inline_ipsec.ike import ChildConfig, ChildSaDown, ChildSaUp, IkeSaDown, IkeSaUp
from inline_ipsec.ike.v1.manager import IkeV1Manager
from inline_ipsec.ike.v1.udp import create_endpoint


def _shuttle(a: IkeV1Manager, b: IkeV1Manager, now: float = 0.0, rounds: int = 40) -> None:
    for _ in range(rounds):
        moved = 0
        for src, dst in ((a, b), (b, a)):
            for data, addr in src.datagrams_to_send(now):
                port = 4500 if data[:4] == bytes(4) else 500
                dst.receive_datagram(data, (src.local_addr[0], port), now)
                moved += 1
        if not moved:
            return


def _events(m: IkeV1Manager) -> list:
    out = []
    while (item := m.next_event()) is not None:
        out.append(item)
    return out


def test_many_isakmp_sas_between_two_managers():
    """Twenty tunnels between two gateways, told apart by their identities (RFC 2409 §5)."""
    from dataclasses import replace
    from inline_ipsec.ike import Identity
    i_cfg, r_cfg = configs(r_remote_id=None)
    a = IkeV1Manager(I_ADDR, 4500)
    b = IkeV1Manager(R_ADDR, 4500, lookup=lambda addr: r_cfg)
    sessions = [a.connect(replace(i_cfg, local_id=Identity.parse(f"@t{n}.i.example")),
                          R_ADDR, 0.0) for n in range(20)]
    _shuttle(a, b)
    ea, eb = _events(a), _events(b)
    assert sum(isinstance(e, ChildSaUp) for _, e in ea) == 20
    assert sum(isinstance(e, ChildSaUp) for _, e in eb) == 20
    assert all(s.state == "established" for s in sessions + b.sessions)
    assert len(b.sessions) == 20 and b.half_open == 0
    # each responder session is the peer of exactly one initiator session (by cookies)
    assert {(s.sa.cky_i, s.sa.cky_r) for s in sessions} == \
        {(s.sa.cky_i, s.sa.cky_r) for s in b.sessions}
    # only the first ISAKMP SA with the peer carried INITIAL-CONTACT; no adoption between
    # SAs of different identities
    assert sum(s.peer_initial_contact for s in b.sessions) == 1
    assert all(len(s.children) == 1 for s in b.sessions)
    assert len({str(s.peer_id) for s in b.sessions}) == 20


def test_initial_contact_replaces_the_peers_stale_sas():
    """A peer that lost its state (a fresh manager) says INITIAL-CONTACT: our older ISAKMP
    SA with that identity goes (RFC 2407 §4.6.3.3)."""
    i_cfg, r_cfg = configs()
    b = IkeV1Manager(R_ADDR, 4500, lookup=lambda addr: r_cfg)
    first = IkeV1Manager(I_ADDR, 4500)
    first.connect(i_cfg, R_ADDR, 0.0)
    _shuttle(first, b)
    _events(b)
    old = b.sessions[0]
    rebooted = IkeV1Manager(I_ADDR, 4500)
    rebooted.connect(i_cfg, R_ADDR, 1.0)
    _shuttle(rebooted, b, 1.0)
    events = _events(b)
    assert old.state == "closed"
    downs = [e for s, e in events if isinstance(e, IkeSaDown)]
    assert [d.reason for d in downs] == ["replaced by INITIAL-CONTACT"]
    assert len(downs[0].children) == 1
    b.datagrams_to_send(1.0)
    assert len(b.sessions) == 1 and b.sessions[0] is not old


def test_keepalive_targets_behind_a_nat():
    i_cfg, r_cfg = configs(i_force_encap=True)
    a = IkeV1Manager(I_ADDR, 4500)
    b = IkeV1Manager(R_ADDR, 4500, lookup=lambda addr: r_cfg)
    a.connect(i_cfg, R_ADDR, 0.0)
    _shuttle(a, b)
    assert a.keepalive_targets() == [(R_ADDR[0], 4500)]
    assert b.keepalive_targets() == []


def test_two_gateways_over_loopback_udp():
    """Our initiator and our responder over real sockets on 127.0.0.1: the asyncio endpoint
    drives `IkeV1Manager` as it drives `IkeManager`."""
    async def main():
        i_cfg, r_cfg = configs(esp=("aes256-sha256-modp2048",), mode="aggressive")
        resp = await create_endpoint("127.0.0.1", 0, 0, lookup=lambda addr: r_cfg)
        init = await create_endpoint("127.0.0.1", 0, 0)
        try:
            session = init.connect(i_cfg, ("127.0.0.1", resp.ike_port))

            async def until(ep, cls):
                while True:
                    _, e = await ep.next_event(10)
                    if isinstance(e, cls):
                        return e
            up_i = await until(init, ChildSaUp)
            up_r = await until(resp, ChildSaUp)
            session.delete_child(up_i.child.spi_in, init.now())
            init.flush()
            gone = await until(resp, ChildSaDown)
            session.close(init.now())
            init.flush()
            down = await until(resp, IkeSaDown)
            return session, up_i, up_r, gone, down
        finally:
            init.close()
            resp.close()
    session, up_i, up_r, gone, down = asyncio.run(main())
    a, b = up_i.child, up_r.child
    assert (a.spi_in, a.spi_out) == (b.spi_out, b.spi_in) and a.key_in == b.key_out
    assert (a.cipher, a.integrity) == ("aes-cbc-256", "hmac-sha256-128")
    assert gone.spi_in == b.spi_in and down.reason == "deleted by peer"
    assert session.exchange_mode == "Aggressive" and session.state == "closed"


def test_a_second_child_config_through_the_manager():
    i_cfg, r_cfg = configs()
    extra_i = ChildConfig(name="d", local_ts=["10.1.5.0/24"], remote_ts=["10.2.5.0/24"])
    extra_r = ChildConfig(name="d", local_ts=["10.2.5.0/24"], remote_ts=["10.1.5.0/24"])
    r_cfg.children = list(r_cfg.children) + [extra_r]
    a = IkeV1Manager(I_ADDR, 4500)
    b = IkeV1Manager(R_ADDR, 4500, lookup=lambda addr: r_cfg)
    s = a.connect(i_cfg, R_ADDR, 0.0)
    s.create_child(extra_i, 0.0)         # queued until Phase 1 is done
    _shuttle(a, b)
    names = sorted(e.child.name for _, e in _events(b) if isinstance(e, ChildSaUp))
    assert names == ["c", "d"]
    events = [e for _, e in _events(a)]
    assert sum(isinstance(e, ChildSaUp) for e in events) == 2
    assert isinstance(events[0], IkeSaUp) and events[0].version == 1


def _advance(a: IkeV1Manager, b: IkeV1Manager, start: float, end: float) -> list:
    """Run both managers' timers from `start` to `end`; returns the events, in order."""
    now, events = start, []
    while now < end:
        timers = [t for t in (a.get_timer(), b.get_timer()) if t is not None]
        now = min([end] + [t for t in timers if t > now] + [now + 1.0])
        for m in (a, b):
            m.handle_timer(now)
        _shuttle(a, b, now)
        events += [(m, s, e) for m in (a, b) for s, e in _events(m)]
    return events


def test_the_old_isakmp_sa_is_deleted_after_the_reauth_delete_delay():
    """The IPsec SAs move to the new ISAKMP SA at once; the old one's Delete waits
    `reauth_delete_delay` seconds, so a peer that moves them only after its last Main Mode
    message does not lose them with the old SA."""
    i_cfg, r_cfg = configs(i_reauth_delete_delay=3.0)
    a = IkeV1Manager(I_ADDR, 4500)
    b = IkeV1Manager(R_ADDR, 4500, lookup=lambda addr: r_cfg)
    old = a.connect(i_cfg, R_ADDR, 0.0)
    _shuttle(a, b)
    (spi,) = old.children
    fresh = a.reauthenticate(old, 10.0)
    _shuttle(a, b, 10.0)
    assert fresh.state == "established" and spi in fresh.children and not old.children
    assert old.state == "established" and a.get_timer() == pytest.approx(13.0)
    assert len(b.sessions) == 2
    _advance(a, b, 10.0, 12.9)
    assert old.state == "established"
    _advance(a, b, 12.9, 13.1)
    assert old.state == "closed" and len(b.sessions) == 1
    assert spi in fresh.children and b.sessions[0].children


def test_a_pair_made_on_the_old_isakmp_sa_while_its_delete_waits_moves_too():
    """The peer may still negotiate on the old ISAKMP SA before it moved to the new one: the
    pair that Quick Mode makes moves to the new ISAKMP SA when the old one goes, and is not
    deleted with it."""
    i_cfg, r_cfg = configs(i_reauth_delete_delay=3.0)
    a = IkeV1Manager(I_ADDR, 4500)
    b = IkeV1Manager(R_ADDR, 4500, lookup=lambda addr: r_cfg)
    old = a.connect(i_cfg, R_ADDR, 0.0)
    _shuttle(a, b)
    (old_r,) = b.sessions
    fresh = a.reauthenticate(old, 10.0)
    _shuttle(a, b, 10.0)
    old_r.create_child(r_cfg.children[0], 11.0)
    _shuttle(a, b, 11.0)
    (late,) = old.children
    events = _advance(a, b, 11.0, 14.0)
    assert old.state == old_r.state == "closed"
    assert late in fresh.children and not any(isinstance(e, ChildSaDown) for _, _, e in events)
    (new_r,) = b.sessions
    assert any(c.spi_out == late for c in new_r.children.values())


def test_a_negative_reauth_delete_delay_is_refused():
    from inline_ipsec.ike.errors import LocalIkeError
    with pytest.raises(LocalIkeError, match="reauth_delete_delay"):
        configs(reauth_delete_delay=-1.0)


def test_phase1_reauthentication_keeps_the_ipsec_sas():
    """IKEv1 cannot rekey Phase 1: at 90 % of its lifetime the initiator negotiates a new
    one, which adopts the IPsec SAs; the old ISAKMP SA is deleted, the IPsec SAs never go
    down, and their next rekey runs on the new ISAKMP SA."""
    from inline_ipsec.ike import ChildSaRekeyed, IkeSaRekeyed
    from inline_ipsec.ike.v1 import Phase1Proposal
    child = lambda lo, hi: ChildConfig(name="c", local_ts=[lo], remote_ts=[hi],  # noqa: E731
                                       lifetime_seconds=400, rekey_seconds=300)
    i_cfg, r_cfg = configs(proposals=[Phase1Proposal(lifetime_seconds=200)],
                           i_children=[child("10.1.0.0/24", "10.2.0.0/24")],
                           r_children=[child("10.2.0.0/24", "10.1.0.0/24")])
    a = IkeV1Manager(I_ADDR, 4500)
    b = IkeV1Manager(R_ADDR, 4500, lookup=lambda addr: r_cfg)
    first = a.connect(i_cfg, R_ADDR, 0.0)
    _shuttle(a, b)
    _events(a), _events(b)
    (old_r,) = b.sessions
    (spi,) = first.children
    events = _advance(a, b, 0.0, 250.0)
    kinds = [type(e).__name__ for _, _, e in events]
    assert not any(isinstance(e, ChildSaDown) for _, _, e in events), kinds
    downs = [e for _, _, e in events if isinstance(e, IkeSaDown)]
    assert sorted(d.reason for d in downs) == ["deleted by peer", "re-authenticated"]
    assert all(d.children == [] for d in downs)
    assert sum(isinstance(e, IkeSaRekeyed) for _, _, e in events) == 2
    (new_i,), (new_r,) = a.sessions, b.sessions
    assert new_i is not first and new_r is not old_r
    assert spi in new_i.children and first.state == old_r.state == "closed"
    assert new_i.phase1_seq > 0 and new_i.established_at == pytest.approx(180.0, abs=1)
    # the IPsec SA's rekey (at 300 s) runs on the new ISAKMP SA and keeps both ends in step
    events = _advance(a, b, 250.0, 320.0)
    rekeys = [(m, s) for m, s, e in events if isinstance(e, ChildSaRekeyed)]
    assert {m for m, _ in rekeys} == {a, b} and {s for _, s in rekeys} == {new_i, new_r}
    (c_i,), (c_r,) = new_i.children.values(), new_r.children.values()
    assert (c_i.spi_in, c_i.key_in) == (c_r.spi_out, c_r.key_out)


def test_both_versions_behind_one_pair_of_ports():
    """An IKEv2 and an IKEv1 initiator reach one responder endpoint whose `VersionDispatch`
    sends each datagram to the manager of its header's major version."""
    from inline_ipsec.ike import IkeConfig, IkeManager
    from inline_ipsec.ike.udp import IkeUdpEndpoint
    from inline_ipsec.ike.v1.dispatch import VersionDispatch, ike_major_version

    async def main():
        v1_i, v1_r = configs()
        v2_r = IkeConfig(psk=b"v2 secret", local_id=v1_r.local_id, remote_id=None)
        v2_i = IkeConfig(psk=b"v2 secret", local_id=v1_i.local_id, remote_id=None)
        both = await IkeUdpEndpoint.create("127.0.0.1", 0, 0)
        addr = both.manager.local_addr
        both.manager = VersionDispatch(IkeManager(addr, both.natt_port, lambda a: v2_r),
                                       IkeV1Manager(addr, both.natt_port, lambda a: v1_r))
        one = await create_endpoint("127.0.0.1", 0, 0)
        two = await IkeUdpEndpoint.create("127.0.0.1", 0, 0)
        try:
            one.connect(v1_i, ("127.0.0.1", both.ike_port))
            two.connect(v2_i, ("127.0.0.1", both.ike_port))
            ups = []
            while len(ups) < 2:
                session, event = await both.next_event(10)
                if isinstance(event, ChildSaUp):
                    ups.append((type(session).__name__, event.child.ike_version))
            return sorted(ups), both.manager.dropped
        finally:
            for ep in (one, two, both):
                ep.close()
    ups, dropped = asyncio.run(main())
    assert ups == [("IkeV1Session", 1), ("IkeV2Session", 2)] and dropped == 0
    assert ike_major_version(b"\x01" * 17 + b"\x10" + bytes(10)) == 1
    assert ike_major_version(b"\0\0\0\0" + b"\x01" * 17 + b"\x20" + bytes(10)) == 2
    assert ike_major_version(b"short") is None


def test_ipv6_outer_and_inner():
    """IPv6 peers (NAT-D over 16-byte addresses) and IPv6 proxy IDs (ID_IPV6_ADDR_SUBNET)."""
    i_addr, r_addr = ("2001:db8::1", 500), ("2001:db8:ffff::1", 500)
    i_cfg, r_cfg = configs(
        i_children=[ChildConfig(name="c", local_ts=["2001:db8:a1::/64"],
                                remote_ts=["2001:db8:a2::/64"])],
        r_children=[ChildConfig(name="c", local_ts=["2001:db8:a2::/64"],
                                remote_ts=["2001:db8:a1::/64"])])
    a = IkeV1Manager(i_addr, 4500)
    b = IkeV1Manager(r_addr, 4500, lookup=lambda addr: r_cfg)
    s = a.connect(i_cfg, r_addr, 0.0)
    _shuttle(a, b)
    (up,) = [e for _, e in _events(a) if isinstance(e, ChildSaUp)]
    assert s.state == "established" and not s.nat_detected
    assert [str(t) for t in up.child.local_ts] == ["2001:db8:a1::/64"]
    assert [str(t) for t in up.child.remote_ts] == ["2001:db8:a2::/64"]
    out, inb = up.child.to_sa_specs(i_addr[0], r_addr[0])
    assert out.tunnel_dst == r_addr[0] and inb.tunnel_src == r_addr[0]

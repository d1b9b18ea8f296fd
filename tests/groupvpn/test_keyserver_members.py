"""One key server and three members in one process (datagrams passed by hand):
registration, member-to-member traffic with outer == inner addresses, pushed rekeys without
loss, eviction, and every way a GROUPKEY-PUSH must be refused."""
from __future__ import annotations

import itertools
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from scapy.layers.inet import IP

from gdoi_helpers import KS, MEMBERS, Net, ipv4_udp
from inline_ipsec.groupvpn.constants import GdoiExchange
from inline_ipsec.groupvpn.payloads import GdoiSaPayload, KdPayload
from inline_ipsec.groupvpn.push import Kek, open_push, seal_push
from inline_ipsec.groupvpn.server import MAX_SESSIONS


def pushes_to(n: Net, host: str) -> list[bytes]:
    return [d for s, dst, d in n.wire if dst == host and d[18] == GdoiExchange.GROUPKEY_PUSH]


def send(n: Net, src: str, dst: str, payload: bytes) -> bytes:
    """Member `src` protects a packet of 10.x hosts behind it; member `dst` receives it."""
    inner = ipv4_udp(f"10.0.0.{MEMBERS.index(src) + 1}", f"10.0.0.{MEMBERS.index(dst) + 1}",
                     payload)
    kind, esp = n.members[src].engine.protect(inner, n.now)
    assert kind == "esp"
    outer = IP(esp)
    assert (outer.src, outer.dst) == (IP(inner).src, IP(inner).dst)
    assert n.members[dst].engine.unprotect(esp, n.now) == inner
    return esp


@pytest.fixture
def net() -> Net:
    n = Net(activation_time_delay=5)
    n.register_all()
    return n


def test_three_members_register_and_share_one_sa(net: Net) -> None:
    spis = {h: sorted(m.engine.sas) for h, m in net.members.items()}
    assert all(m.state == "registered" for m in net.members.values())
    assert len(set(map(tuple, spis.values()))) == 1 and len(spis[MEMBERS[0]]) == 1
    regs = net.ks.registered_members(1)
    assert sorted(r.address[0] for r in regs) == MEMBERS
    # each member got its own KEK (unicast pushes are readable only by their member)
    assert len({r.kek.spi for r in regs}) == 3


def test_traffic_between_any_two_members(net: Net) -> None:
    for a, b in itertools.permutations(MEMBERS, 2):
        send(net, a, b, f"{a}->{b}".encode())


def test_pushed_rekey_traffic_continues_without_loss(net: Net) -> None:
    old = set(net.members[MEMBERS[0]].engine.sas)
    # the key server rekeys by itself before the TEK expires (lifetime 600 s)
    margin = net.ks.groups[1].config.margin
    net.advance(600 - margin - 1, step=20)
    assert net.ks.groups[1].rekeys == 0
    delivered = 0
    for _ in range(int(margin) + 20):
        net.advance(1)
        for a, b in itertools.permutations(MEMBERS, 2):
            send(net, a, b, b"during rekey")       # asserts delivery: no packet lost
            delivered += 1
    assert net.ks.groups[1].rekeys >= 1
    new = set(net.members[MEMBERS[0]].engine.sas) - old
    assert new, "the pushed TEK is installed"
    esp = send(net, MEMBERS[0], MEMBERS[1], b"after")
    assert int.from_bytes(esp[20:24], "big") in new       # senders moved to the new TEK
    assert all(m.pushes >= 1 and not m.push_drops for m in net.members.values())
    assert delivered > 100


def test_activation_delay_then_switch(net: Net) -> None:
    old = set(net.members[MEMBERS[0]].engine.sas)
    net.ks.rekey(1, net.now)
    net.pump()
    esp = send(net, MEMBERS[0], MEMBERS[2], b"x")
    assert int.from_bytes(esp[20:24], "big") in old      # still within the activation delay
    net.advance(6)
    esp = send(net, MEMBERS[0], MEMBERS[2], b"x")
    assert int.from_bytes(esp[20:24], "big") not in old


def test_evicted_member_can_no_longer_decrypt(net: Net) -> None:
    a, b, c = MEMBERS
    send(net, a, c, b"before")
    assert net.ks.evict(1, c, net.now)
    net.pump()
    # c even sees every push on the wire: they are under other members' KEKs
    for d in pushes_to(net, a) + pushes_to(net, b):
        net.members[c].receive_datagram(d, (KS, 848), net.now)
    assert net.members[c].push_drops.get("unknown-kek", 0) >= 2
    inner = ipv4_udp("10.0.0.1", "10.0.0.3", b"secret")
    _, esp = net.members[a].engine.protect(inner, net.now)
    assert net.members[c].engine.unprotect(esp, net.now) is None
    assert net.members[c].engine.drops == {"unknown-spi": 1}
    send(net, a, b, b"the others carry on")
    # the old TEK is deleted at the remaining members at once
    assert not set(net.members[a].engine.sas) & set(net.members[c].engine.sas)
    # c may not come back (banned until readmitted)
    net.members[c].start(net.now)
    net.pump()
    assert net.members[c].state == "failed"
    assert net.ks.groups[1].refused == 1
    net.ks.readmit(1, c)
    net.members[c].start(net.now)
    net.pump()
    assert net.members[c].state == "registered"
    send(net, a, c, b"welcome back")


def test_replayed_push_is_rejected_and_counted(net: Net) -> None:
    net.ks.rekey(1, net.now)
    net.pump()
    m = net.members[MEMBERS[1]]
    before = set(m.engine.sas)
    last = pushes_to(net, MEMBERS[1])[-1]
    m.receive_datagram(last, (KS, 848), net.now)
    assert m.push_drops == {"replayed": 1}
    assert set(m.engine.sas) == before


def test_older_push_replayed_after_a_newer_one(net: Net) -> None:
    net.ks.rekey(1, net.now)
    net.pump()
    net.ks.rekey(1, net.now)
    net.pump()
    m = net.members[MEMBERS[0]]
    first = pushes_to(net, MEMBERS[0])[0]
    m.receive_datagram(first, (KS, 848), net.now)
    assert m.push_drops == {"replayed": 1}


def _member_kek(net: Net, host: str) -> Kek:
    return net.ks.groups[1].members[host].kek


def test_push_signed_by_another_key_is_rejected(net: Net) -> None:
    """Someone who knows a member's KEK (but not the server's signing key) cannot push."""
    host = MEMBERS[0]
    m = net.members[host]
    k = _member_kek(net, host)
    forger = Kek(k.spi, k.key, k.expires, k.sig_hash,
                 private_key=rsa.generate_private_key(65537, 2048))
    before = set(m.engine.sas)
    m.receive_datagram(seal_push(forger, 99, [GdoiSaPayload(), KdPayload()]), (KS, 848),
                       net.now)
    assert m.push_drops == {"bad-signature": 1}
    assert set(m.engine.sas) == before and m.last_seq == 0


@pytest.mark.parametrize("where", [28, 40, 60, -1])
def test_tampered_push_is_rejected(net: Net, where: int) -> None:
    net.ks.rekey(1, net.now)
    msg = net.ks.datagrams_to_send(net.now)[0][0]
    m = net.members[MEMBERS[0]]
    bad = bytearray(msg)
    bad[where] ^= 0x40
    m.receive_datagram(bytes(bad), (KS, 848), net.now)
    assert sum(m.push_drops.values()) == 1
    assert set(m.push_drops) <= {"bad-signature", "malformed"}
    m.receive_datagram(msg, (KS, 848), net.now)           # the genuine one still works
    assert m.pushes == 1


def test_push_for_an_unknown_kek_and_garbage(net: Net) -> None:
    m = net.members[MEMBERS[0]]
    foreign = struct.pack("!16sBBBBII", b"\x01" * 16, 18, 0x10, 33, 1, 0, 28)
    m.receive_datagram(foreign, (KS, 848), net.now)
    m.receive_datagram(b"\x00" * 3, (KS, 848), net.now)
    assert m.push_drops == {"unknown-kek": 1, "unknown-sa": 1}


def test_open_push_round_trip_and_sequence_rule() -> None:
    key = rsa.generate_private_key(65537, 2048)
    k = Kek(b"K" * 16, b"k" * 32, 1e9, private_key=key)
    member = Kek(k.spi, k.key, k.expires, public_key=key.public_key())
    msg = seal_push(k, 7, [KdPayload()])
    seq, payloads = open_push(member, msg, 6)
    assert seq == 7 and [type(p) for p in payloads] == [KdPayload]
    with pytest.raises(Exception) as exc:
        open_push(member, msg, 7)
    assert exc.value.reason == "replayed"                  # type: ignore[attr-defined]


def test_unknown_group_is_refused() -> None:
    n = Net(count=2)
    n.members[MEMBERS[0]].vpn.group_id = 99
    n.register_all()
    # the key server's protected INVALID-ID-INFORMATION ends the member's GROUPKEY-PULL
    assert n.members[MEMBERS[0]].state == "failed"
    assert [(e.kind, e.detail) for e in n.members[MEMBERS[0]].events] == \
        [("registration-failed", "peer sent INVALID_ID_INFORMATION")]
    assert n.members[MEMBERS[1]].state == "registered"


def test_member_not_in_group_gateways_is_refused() -> None:
    n = Net(count=2, members=["192.0.2.11/32"])
    n.register_all()
    assert n.members[MEMBERS[0]].state == "registered"
    assert n.members[MEMBERS[1]].state == "failed"
    assert n.ks.groups[1].refused == 1


def test_member_threshold() -> None:
    n = Net(member_threshold=2)
    n.register_all()
    states = sorted(m.state for m in n.members.values())
    assert states == ["failed", "registered", "registered"]
    assert len(n.ks.registered_members(1)) == 2


def test_kek_is_replaced_before_it_expires() -> None:
    n = Net(kek_lifetime_seconds=300)
    n.register_all()
    m = n.members[MEMBERS[0]]
    first = m.kek.spi
    n.advance(290, step=10)
    assert m.kek.spi != first and m.state == "registered"
    send(n, MEMBERS[0], MEMBERS[1], b"still fine")


def test_member_reregisters_when_a_push_was_lost() -> None:
    n = Net()
    n.register_all()
    n.blocked.add(MEMBERS[2])                      # pushes to this member are lost
    margin = n.ks.groups[1].config.margin
    n.advance(600 - margin + 1, step=10)
    n.blocked.clear()
    assert n.members[MEMBERS[2]].pushes == 0
    n.advance(margin + 30, step=5)
    # it re-registered before its TEK expired and has the new TEK like everyone else
    assert n.members[MEMBERS[2]].state == "registered"
    send(n, MEMBERS[0], MEMBERS[2], b"caught up")


def test_server_state_is_bounded() -> None:
    """Many half-open Phase 1s from many addresses never grow the server beyond its bound."""
    n = Net(count=1)
    from inline_ipsec.groupvpn import server as srv
    limit = 50
    srv_max, srv.MAX_SESSIONS = srv.MAX_SESSIONS, limit
    try:
        for i in range(limit * 3):
            hdr = struct.pack("!8s8sBBBBII", i.to_bytes(8, "big") or b"\x01" * 8, bytes(8), 1,
                              0x10, 2, 0, 0, 28)
            n.ks.receive_datagram(hdr, (f"192.0.2.{100 + i % 100}", 848), n.now)
        assert len(n.ks.sessions) <= limit
    finally:
        srv.MAX_SESSIONS = srv_max
    assert MAX_SESSIONS >= 1024


def test_a_gap_in_the_push_sequence_triggers_a_new_registration(net: Net) -> None:
    """Pushes are numbered per member: after a lost push the next one shows the gap, and the
    member registers again at once instead of sending with keys the group dropped."""
    a, b = MEMBERS[0], MEMBERS[1]
    net.blocked.add(a)
    net.ks.evict(1, MEMBERS[2], net.now)          # a misses the push that deletes the old TEK
    net.pump()
    net.blocked.clear()
    m = net.members[a]
    assert m.pushes == 0 and m.registrations == 1
    net.ks.rekey(1, net.now, activation_delay=0)
    net.pump()
    assert m.missed_pushes == 1 and m.registrations == 2 and m.state == "registered"
    assert set(m.engine.sas) == {t.spi for t in net.ks.groups[1].teks}
    send(net, a, b, b"back in sync")

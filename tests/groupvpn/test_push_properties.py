"""Property tests of a member's GROUPKEY-PUSH handling: whatever order, duplicates and
corruptions the network delivers a key server's pushes in, a member acts on a push only once,
only on genuine ones, only in increasing SEQ order, and every drop is counted."""
from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from gdoi_helpers import KS, MEMBERS, Net, ipv4_udp


def _pushes(count: int) -> tuple[Net, list[bytes]]:
    n = Net(count=1)
    n.register_all()
    out = []
    for _ in range(count):
        n.ks.rekey(1, n.now, activation_delay=0)
        out += [d for d, _ in n.ks.datagrams_to_send(n.now)]
    return n, out


NET, PUSHES = _pushes(6)
SEQS = list(range(1, len(PUSHES) + 1))          # each member's own sequence


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(PUSHES) - 1), st.integers(0, 600),
                          st.integers(0, 255)), max_size=20))
def test_any_delivery_order(deliveries) -> None:
    n = Net(count=1)
    # the same member state as when the pushes were made: its registration (KEK, SEQ)
    m = n.members[MEMBERS[0]]
    ref = NET.members[MEMBERS[0]]
    m.kek, m.last_seq, m.state = ref.kek, SEQS[0] - 1, "registered"
    m.start = lambda now: None                 # a gap would re-register: not here
    accepted: list[int] = []
    for idx, pos, flip in deliveries:
        data = bytearray(PUSHES[idx])
        if flip:
            data[pos % len(data)] ^= flip
        before, drops = m.last_seq, sum(m.push_drops.values())
        m.receive_datagram(bytes(data), (KS, 848), n.now)
        if m.last_seq != before:
            accepted.append(m.last_seq)
            assert m.last_seq == SEQS[idx] and bytes(data) == PUSHES[idx]
        else:
            assert sum(m.push_drops.values()) == drops + 1
    assert accepted == sorted(set(accepted))             # each once, increasing
    assert m.pushes == len(accepted)
    # what is installed came from genuine pushes only: every SA decrypts a peer's traffic
    for spi, sa in m.engine.sas.items():
        assert sa.spi == spi and sa.group_id == 1


def test_ipv6_group() -> None:
    from inline_ipsec.groupvpn import GroupIpsecSa, MatchPolicy
    n = Net(ipsec_sas=[GroupIpsecSa("V6", MatchPolicy("M6", "2001:db8::/32", "2001:db8::/32"))])
    n.register_all()
    a, b = (n.members[h] for h in MEMBERS[:2])
    from scapy.layers.inet import UDP
    from scapy.layers.inet6 import IPv6
    from scapy.packet import Raw, raw
    p = raw(IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=1, dport=2) / Raw(b"v6"))
    kind, esp = a.engine.protect(p, n.now)
    assert kind == "esp" and b.engine.unprotect(esp, n.now) == p
    assert a.engine.protect(ipv4_udp("10.0.0.1", "10.0.0.2", b"x"), n.now)[0] == "bypass"
    sa = next(iter(a.engine.sas.values()))
    assert sa.policy.src == ipaddress.ip_network("2001:db8::/32")


def test_long_tek_lifetime_short_kek_lifetime_no_push_storm() -> None:
    from inline_ipsec.groupvpn import GroupIpsecSa, MatchPolicy
    n = Net(ipsec_sas=[GroupIpsecSa("S", MatchPolicy(), lifetime_seconds=86400)],
            kek_lifetime_seconds=300)
    n.register_all()
    n.advance(600, step=10)
    pushes = [m.pushes for m in n.members.values()]
    # one KEK replacement per KEK lifetime, no TEK rekey yet
    assert all(1 <= p <= 3 for p in pushes), pushes
    assert n.ks.groups[1].rekeys == 0

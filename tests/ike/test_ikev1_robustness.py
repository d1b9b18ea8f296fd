"""Malformed and unauthenticated ISAKMP never raise out of an IKEv1 session or manager, never
break an established SA, and never grow state without bound (hypothesis, like IKEv2's
session fuzzing)."""
from __future__ import annotations

import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ikev1_helpers import I_ADDR, R_ADDR, configs, pair
from inline_ipsec.ike import ChildSaUp
from inline_ipsec.ike.v1.constants import ExchangeType, Flag, PayloadType
from inline_ipsec.ike.v1.fragments import MAX_FRAGMENTS
from inline_ipsec.ike.v1.isakmp import (FragmentPayload, HashPayload, IsakmpHeader, SaPayload,
                                        encode)
from inline_ipsec.ike.v1.manager import IkeV1Manager
from inline_ipsec.ike.v1.session import MAX_ERRORS, MAX_QUICK_MODES, IkeV1Session

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _established():
    p = pair(esp=("aes128gcm16",)).connect()
    assert p.i.state == p.r.state == "established"
    return p


def _header(s: IkeV1Session, exchange: int, mid: int, flags: int = Flag.ENCRYPTION,
            nxt: int = PayloadType.HASH) -> IsakmpHeader:
    return IsakmpHeader(s.sa.cky_i, s.sa.cky_r, nxt, exchange, flags, mid)


def _assert_healthy(p) -> None:
    for s in (p.i, p.r):
        assert s.state == "established"
        assert s.drops.get("internal-error", 0) == 0, list(s.errors)
        assert len(s.exchanges) <= MAX_QUICK_MODES and len(s.errors) <= MAX_ERRORS
    # still fully working: a new IPsec SA pair comes up
    before = len(p.of("i", ChildSaUp))
    p.i.create_child(p.i.config.children[0], p.now)
    p.run()
    assert len(p.of("i", ChildSaUp)) == before + 1


@FUZZ
@given(st.lists(st.tuples(st.sampled_from([ExchangeType.QUICK, ExchangeType.INFORMATIONAL,
                                           ExchangeType.MAIN, ExchangeType.AGGRESSIVE, 99]),
                          st.integers(0, 2 ** 32 - 1), st.integers(0, 255),
                          st.integers(0, 255), st.binary(max_size=200)), max_size=12))
def test_garbage_with_the_right_cookies(messages):
    """Encrypted-looking and plain garbage inside the ISAKMP SA's cookies: counted drops."""
    p = _established()
    for exch, mid, flags, nxt, body in messages:
        for s, src in ((p.r, I_ADDR), (p.i, R_ADDR)):
            hdr = _header(s, exch, mid, flags, nxt)
            hdr.length = 28 + len(body)
            s.receive_datagram(hdr.encode() + body, src, p.now)
    _assert_healthy(p)


@FUZZ
@given(st.integers(0, 10 ** 6), st.binary(min_size=1, max_size=6), st.booleans())
def test_mutated_real_messages(pos, patch, to_initiator):
    """Real Quick Mode / Phase 1 messages with bytes changed: dropped, never accepted, never
    an exception (the CBC ciphertext is not authenticated by itself; HASH catches it)."""
    p = pair(esp=("aes128gcm16",))
    p.connect()
    wires = [d for who, d, _ in p.log if who == ("r->i" if to_initiator else "i->r")]
    target, src = (p.i, R_ADDR) if to_initiator else (p.r, I_ADDR)
    for d in wires:
        i = pos % len(d)
        target.receive_datagram(d[:i] + patch + d[i + len(patch):], src, p.now)
    _assert_healthy(p)


@FUZZ
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_random_datagrams_to_a_manager(blobs):
    i_cfg, r_cfg = configs()
    m = IkeV1Manager(R_ADDR, 4500, lookup=lambda addr: r_cfg)
    for b in blobs:
        m.receive_datagram(b, I_ADDR, 0.0)
        m.receive_datagram(b"\0\0\0\0" + b, (I_ADDR[0], 4500), 0.0)
    m.datagrams_to_send(0.0)
    assert all(s.drops.get("internal-error", 0) == 0 for s in m.sessions)
    assert len(m.sessions) <= 2 * len(blobs)


def test_quick_mode_flood_is_bounded():
    """Authenticated Quick Mode first messages beyond MAX_QUICK_MODES are dropped, counted."""
    from inline_ipsec.ike.v1.quick_mode import QuickMode
    p = _established()
    for _ in range(MAX_QUICK_MODES + 10):
        qm = QuickMode(p.i, p.i.new_mid(), initiator=True, config=p.i.config.children[0])
        p.i.exchanges[qm.mid] = qm
        qm.start()
        for d, _ in p.i.datagrams_to_send(p.now):
            p.r.receive_datagram(d, I_ADDR, p.now)
    assert len(p.r.exchanges) == MAX_QUICK_MODES
    assert p.r.drops["quick-mode-limit"] == 10


def test_unauthenticated_informational_is_ignored():
    """An Informational with a wrong HASH (e.g. a forged Delete) changes nothing."""
    from inline_ipsec.ike.v1.isakmp import DeletePayload
    p = _established()
    s = p.r
    mid = 0x01020304
    chain = s.phase2_chain(mid)
    hdr = _header(s, ExchangeType.INFORMATIONAL, mid, 0, 0)
    forged = s.sa.cipher.seal(hdr, [HashPayload(bytes(32)), DeletePayload(1, [s.sa.cky_i
                                                                                + s.sa.cky_r])],
                              chain)
    s.receive_datagram(forged, I_ADDR, p.now)
    assert s.state == "established" and s.drops["bad-hash"] == 1
    plain = encode(_header(s, ExchangeType.INFORMATIONAL, mid, 0, 0),
                   [DeletePayload(1, [s.sa.cky_i + s.sa.cky_r])])
    s.receive_datagram(plain, I_ADDR, p.now)
    assert s.state == "established" and s.drops["unprotected-informational"] == 1


def test_fragment_flood_is_bounded():
    p = _established()
    s = p.r
    for n in range(1, 200):
        hdr = IsakmpHeader(s.sa.cky_i, s.sa.cky_r, 0, ExchangeType.MAIN, 0, 0)
        s.receive_datagram(encode(hdr, [FragmentPayload(n % 3, n, False, b"x" * 900)]),
                           I_ADDR, p.now)
    assert s.fragments.pending <= MAX_FRAGMENTS
    assert s.state == "established" and s.drops.get("internal-error", 0) == 0


def test_many_rejected_datagrams_keep_memory_bounded():
    """20 000 forged datagrams to an established session: memory stays flat (errors are a
    bounded ring plus counters)."""
    p = _established()
    s = p.r
    hdr = _header(s, ExchangeType.QUICK, 7)
    junk = hdr.encode()[:24] + (28 + 64).to_bytes(4, "big") + bytes(64)
    tracemalloc.start()
    for _ in range(2000):                       # warm up caches and the ring
        s.receive_datagram(junk, I_ADDR, p.now)
    base = tracemalloc.take_snapshot()
    for _ in range(20000):
        s.receive_datagram(junk, I_ADDR, p.now)
    grown = sum(st.size_diff for st in tracemalloc.take_snapshot().compare_to(base, "filename"))
    tracemalloc.stop()
    assert grown < 64 * 1024, grown
    assert s.drops.get("bad-hash", 0) + s.drops.get("malformed", 0) + \
        s.drops.get("rejected", 0) == 22000 and len(s.errors) == MAX_ERRORS


def test_half_open_responders_are_bounded_and_time_out():
    i_cfg, r_cfg = configs(half_open_timeout=10.0)
    m = IkeV1Manager(R_ADDR, 4500, lookup=lambda addr: r_cfg, max_half_open=5)
    for n in range(8):
        s = IkeV1Session(i_cfg, initiator=True, local_addr=("192.0.2.%d" % (n + 2), 500),
                         remote_addr=R_ADDR)
        s.connect(0.0)
        for d, _ in s.datagrams_to_send(0.0):
            m.receive_datagram(d, ("192.0.2.%d" % (n + 2), 500), 0.0)
    m.datagrams_to_send(0.0)
    assert m.half_open == 5 and m.drops["limit"] == 3
    m.handle_timer(11.0)
    m.datagrams_to_send(11.0)
    assert m.half_open == 0 and not m.sessions


def test_first_message_without_configuration_is_dropped():
    i_cfg, _ = configs()
    m = IkeV1Manager(R_ADDR, 4500, lookup=lambda addr: None)
    s = IkeV1Session(i_cfg, initiator=True, local_addr=I_ADDR, remote_addr=R_ADDR)
    s.connect(0.0)
    for d, _ in s.datagrams_to_send(0.0):
        m.receive_datagram(d, I_ADDR, 0.0)
    assert not m.sessions and m.drops["no-configuration"] == 1
    m.receive_datagram(encode(IsakmpHeader(b"x" * 8, b"y" * 8, 0, 32, 1, 5), []), I_ADDR, 0.0)
    assert m.drops["no-session"] == 1


def test_sa_payload_for_the_wrong_exchange_keeps_the_session():
    p = _established()
    hdr = IsakmpHeader(p.r.sa.cky_i, bytes(8), 0, ExchangeType.MAIN, 0, 0)
    p.r.receive_datagram(encode(hdr, [SaPayload([])]), I_ADDR, p.now)
    _assert_healthy(p)

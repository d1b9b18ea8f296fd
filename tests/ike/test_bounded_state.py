"""Nothing an unauthenticated sender does grows IKE state without limit.

IKE SPIs are on the wire, so anyone on the path can aim datagrams at an established IKE SA
(RFC 7296 §2.21: they are dropped) or at the manager (new IKE_SA_INIT requests, unknown
SPIs). Each rejected datagram is counted by reason; only a short ring of recent failures
(`ErrorLog`, `ERROR_HISTORY` records of a few hundred bytes) is kept. The per-session and
per-manager collections each have a documented bound (fragments being reassembled, child SAs,
rekeyed-away IKE SAs, stateless answers, the SPI index).
"""
from __future__ import annotations

import gc
import os
import struct
import tracemalloc

import pytest
from ike_helpers import I_ADDR, R_ADDR, configs, established

from inline_ipsec.ike import ChildConfig, IkeManager, IkeV2Session
from inline_ipsec.ike.constants import ExchangeType, HeaderFlag, NotifyType
from inline_ipsec.ike.errors import ERROR_HISTORY, ErrorLog, RemoteIkeError
from inline_ipsec.ike.message import IkeHeader, decode_message
from inline_ipsec.ike.payloads import notify
from inline_ipsec.ike.v2 import fragments
from inline_ipsec.ike.v2.session import MAX_OLD_IKE_SAS

FLOOD = 20_000
#: what 20,000 datagrams may leave behind. Before the bound, each rejected datagram kept its
#: exception with traceback (about 2.4 KB): 20,000 of them held some 49 MB.
BOUND = 1 << 20


def _forged(session: IkeV2Session, n: int) -> bytes:
    """A request to `session` with its SPIs and the message ID it expects next, whose
    Encrypted payload is garbage: it reaches the ICV check and fails it (§2.21)."""
    ike = session.ike
    body = os.urandom(64) + n.to_bytes(4, "big")
    hdr = IkeHeader(ike.spi_i, ike.spi_r, 0, ExchangeType.INFORMATIONAL,
                    HeaderFlag.NONE if ike.initiator else HeaderFlag.INITIATOR, ike.peer_mid)
    sk = struct.pack("!BBH", 0, 0, 4 + len(body)) + body
    raw = bytearray(hdr.encode() + sk)
    raw[16] = 46                                          # first payload: SK
    struct.pack_into("!I", raw, 24, len(raw))
    return bytes(raw)


def _grown(run) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_error_log_counts_everything_and_keeps_a_short_history() -> None:
    log = ErrorLog()
    for n in range(100):
        log.add("integrity check failed", RemoteIkeError("x" * 1000, NotifyType.INVALID_SYNTAX),
                float(n))
    assert log.counts == {"integrity check failed": 100} and log.total == 100
    assert len(log) == ERROR_HISTORY and log[-1].at == 99.0 and log[0].at == 100 - ERROR_HISTORY
    assert log[-1].notify_hint == NotifyType.INVALID_SYNTAX
    assert len(log[-1].message) <= 160 and not isinstance(log[-1], BaseException)
    assert not ErrorLog() and log


def test_garbage_to_an_established_ike_sa_leaves_memory_bounded() -> None:
    p = established(*configs())
    r = p.r
    datagrams = [_forged(r, n) for n in range(FLOOD // 2)]
    datagrams += [r.ike.spi_i + r.ike.spi_r + os.urandom(40) for _ in range(FLOOD // 4)]
    datagrams += [os.urandom(60) for _ in range(FLOOD // 4)]

    def flood() -> None:
        for d in datagrams:
            r.receive_datagram(d, I_ADDR, 1.0)
    grown = _grown(flood)
    assert grown < BOUND, f"{grown} bytes kept for {FLOOD} rejected datagrams"
    assert r.state == "established" and r.errors.total >= FLOOD // 2
    assert r.errors.counts["integrity check failed"] == FLOOD // 2
    assert len(r.errors) == ERROR_HISTORY
    # the SA still works: a liveness check is answered
    p.i.send_dpd(2.0)
    p.now = 2.0
    p.run()
    assert p.i.ike.pending is None and p.i.state == "established"


def test_copies_of_an_answered_request_queue_one_response() -> None:
    """A retransmitted request is recognised by its message ID before decryption (§2.1), so
    anyone can send copies; the cached response goes out once per flush, not per copy."""
    p = established(*configs())
    p.i.send_dpd(1.0)
    [(request, _)] = p.i.datagrams_to_send(1.0)
    p.r.receive_datagram(request, I_ADDR, 1.0)
    assert len(p.r.datagrams_to_send(1.0)) == 1
    for _ in range(FLOOD):
        p.r.receive_datagram(request, I_ADDR, 1.5)
    assert len(p.r.datagrams_to_send(1.5)) == 1


def test_flood_of_a_manager_leaves_memory_and_sessions_bounded() -> None:
    """Unknown SPIs, malformed datagrams, IKE_SA_INIT answered statelessly with
    INVALID_KE_PAYLOAD (§1.2) and forged requests to an established IKE SA, 20,000 in all
    between two flushes: counted, and nothing kept per datagram."""
    icfg, rcfg = configs(r_proposals=("aes128gcm16-prfsha256-x25519",),
                         i_proposals=("aes128gcm16-prfsha256-x25519",))
    m = IkeManager(R_ADDR, 4500)
    m.add_peer("0.0.0.0/0", rcfg)
    i = IkeV2Session(icfg, initiator=True, local_addr=I_ADDR, remote_addr=R_ADDR)
    i.connect(0.0)
    for _ in range(6):
        for d, _a in i.datagrams_to_send(0.0):
            m.receive_datagram(d, I_ADDR, 0.0)
        for d, _a in m.datagrams_to_send(0.0):
            i.receive_datagram(d, R_ADDR, 0.0)
    [r] = m.sessions
    assert r.state == i.state == "established"
    # IKE_SA_INIT whose KE is for a group the responder does not pick: INVALID_KE_PAYLOAD
    wrong = IkeV2Session(configs(i_proposals=("aes128gcm16-prfsha256-ecp256",
                                              "aes128gcm16-prfsha256-x25519"))[0],
                         initiator=True, local_addr=I_ADDR, remote_addr=R_ADDR)
    wrong.connect(0.0)
    [(init, _a)] = wrong.datagrams_to_send(0.0)
    datagrams = []
    for n in range(FLOOD // 4):
        datagrams.append(((0x5A << 56 | n).to_bytes(8, "big") + b"\x01" * 8 + init[16:],
                          (f"10.0.{n >> 8 & 255}.{n & 255}", 500)))
        datagrams.append((os.urandom(16) + init[16:], I_ADDR))           # unknown SPIs
        datagrams.append((os.urandom(24), I_ADDR))                         # too short
        datagrams.append((_forged(r, n), I_ADDR))
    for k in range(FLOOD // 4):     # IKE_SA_INIT requests have SPIr = 0 (§3.1)
        d, a = datagrams[4 * k]
        datagrams[4 * k] = (d[:8] + bytes(8) + d[16:], a)

    def flood() -> None:
        for d, a in datagrams:
            m.receive_datagram(d, a, 1.0)
    grown = _grown(flood)
    assert grown < BOUND, f"{grown} bytes kept for {FLOOD} datagrams"
    assert m.sessions == [r] and len(m._by_spi) == 1 and m.half_open == 0
    c = m.counters()
    assert c["unknown_spi"] == FLOOD // 2
    assert r.errors.counts["integrity check failed"] == FLOOD // 4
    out = m.datagrams_to_send(1.0)
    answers = [decode_message(d[4:] if d[:4] == bytes(4) else d) for d, _a in out]
    assert len(out) == IkeManager.MAX_STATELESS
    assert c["dropped_stateless"] == FLOOD // 4 - IkeManager.MAX_STATELESS
    assert all(any(getattr(pl, "notify_type", None) == NotifyType.INVALID_KE_PAYLOAD
                   for pl in msg.payloads) for msg in answers)


def test_reassembly_keeps_two_messages_and_a_byte_limit() -> None:
    """RFC 7383: fragments are verified one by one, then collected; at most the expected
    request and response are collected at once, each up to `MAX_MESSAGE_BYTES`."""
    icfg, rcfg = configs(fragment_size=300)
    p = established(icfg, rcfg)
    sk = p.i.ike.sk_out
    reasm = fragments.Reassembly()
    for mid in range(10):
        hdr = IkeHeader(p.i.ike.spi_i, p.i.ike.spi_r, 0, ExchangeType.INFORMATIONAL,
                        HeaderFlag.INITIATOR, mid)
        wires = sk.seal_fragments(hdr, [notify(16384 + 5, b"y" * 900)], 300)
        assert len(wires) > 2
        assert reasm.add(False, decode_message(wires[0]), p.r.ike.sk_in) is None
        assert len(reasm) <= fragments.MAX_MESSAGES
    hdr = IkeHeader(p.i.ike.spi_i, p.i.ike.spi_r, 0, ExchangeType.INFORMATIONAL,
                    HeaderFlag.INITIATOR, 99)
    huge = sk.seal_fragments(hdr, [notify(16384 + 5, b"z" * 60000)] * 3, 4000)
    assert len(huge) < fragments.MAX_FRAGMENTS
    with pytest.raises(RemoteIkeError, match="larger than"):
        for w in huge:
            reasm.add(False, decode_message(w), p.r.ike.sk_in)
    assert len(reasm) <= fragments.MAX_MESSAGES


def test_child_sas_per_ike_sa_are_bounded() -> None:
    icfg, rcfg = configs(r_max_child_sas=3)
    p = established(icfg, rcfg)
    for n in range(4):
        p.i.create_child(ChildConfig(name=f"extra{n}"), p.now)
        p.run()
    assert len(p.r.children) == 3 and len(p.i.children) == 3
    assert p.i.errors[-1].notify_hint == NotifyType.NO_ADDITIONAL_SAS
    assert p.r.errors.counts["request refused"] == 2


def test_rekeyed_away_ike_sas_are_bounded() -> None:
    """A peer that rekeys the IKE SA again and again but never deletes the old ones
    (§2.18) leaves at most `MAX_OLD_IKE_SAS` of them behind."""
    p = established(*configs())

    def no_delete(direction: str, data: bytes) -> bool:
        raw = data[4:] if data[:4] == bytes(4) else data
        return direction == "i->r" and raw[18] == ExchangeType.INFORMATIONAL
    for n in range(MAX_OLD_IKE_SAS + 4):
        p.i.rekey_ike(p.now)
        p.run(drop=no_delete)
        p.i.old_ike.clear()          # the initiator gave up its Deletes
        p.i.ike.pending = None
    assert len(p.r.old_ike) == MAX_OLD_IKE_SAS
    p.i.send_dpd(p.now)
    p.run()
    assert p.i.ike.pending is None and p.r.state == "established"

"""Simultaneous rekeying of the same child SA (RFC 7296 §2.8.1) on an in-memory pair.

    I                                                    R
    N(REKEY_SA, old) SA Ni(i1) ...  -->     <--  N(REKEY_SA, old) SA Ni(r1) ...
    (the requests cross: each answers the other's although its own is in flight)
    <--  SA Nr(r2) ...  (answer to I)             SA Nr(i2) ...  -->  (answer to R)
    (both exchanges complete; the one holding the lowest of i1, r2, r1, i2 created the
     redundant SA: its initiator, the loser, deletes that SA; the winner deletes the old one)
    loser:  D(ESP, redundant SA)  -->       <--  D(ESP, old SA)  :winner
    (each end: one ChildSaRekeyed(old -> surviving), one ChildSaDown(old); the redundant
     SA is never reported, so it gets no event)

The nonces come from seeded generators, so the seeds below run both "I wins" and "R wins".
"""
from __future__ import annotations

import random

import pytest

from inline_ipsec.ike import ChildSaDown, ChildSaRekeyed, ChildSaUp
from inline_ipsec.ike.constants import ExchangeType, NotifyType
from inline_ipsec.ike.message import decode_message
from inline_ipsec.ike.payloads import NoncePayload, NotifyPayload

from ike_helpers import configs, established

SEEDS = range(12)


def _of(events, cls):
    return [e for e in events if isinstance(e, cls)]


def _pairs(session):
    return sorted((c.spi_in, c.spi_out) for c in session.children.values())


def _seeded_pair(seed: int):
    icfg, rcfg = configs()
    ri, rr = random.Random(seed), random.Random(10_000 + seed)
    icfg.random, rcfg.random = ri.randbytes, rr.randbytes
    return established(icfg, rcfg)


def _messages(p, start):
    """(direction, is_response, exchange, inner payloads) of every logged message."""
    out = []
    for direction, d, _ in p.log[start:]:
        raw = d[4:] if d.startswith(b"\0\0\0\0") else d
        msg = decode_message(raw)
        receiver = p.r if direction == "i->r" else p.i
        ike = next(s for s in [receiver.ike, *receiver.old_ike]
                   if s.spi_i == msg.header.spi_i)
        inner = ike.sk_in.open(msg)
        out.append((direction, msg.header.is_response, ExchangeType(msg.header.exchange).name,
                    inner))
    return out


def _expected_loser(msgs) -> str:
    """Who initiated the exchange carrying the lowest of the four nonces (octet order)."""
    nonces = []
    for direction, is_resp, exch, inner in msgs:
        if exch != "CREATE_CHILD_SA":
            continue
        initiator = direction[0] if not is_resp else direction[-1]
        nonces += [(p.nonce, initiator) for p in inner if isinstance(p, NoncePayload)]
    assert len(nonces) == 4
    return min(nonces)[1]


def _collide(seed: int):
    p = _seeded_pair(seed)
    (old_i, old_o), = _pairs(p.i)
    start = len(p.log)
    p.i.rekey_child(old_i, p.now)          # both start before any datagram is delivered
    p.r.rekey_child(old_o, p.now)
    p.run()
    return p, (old_i, old_o), _messages(p, start)


@pytest.mark.parametrize("seed", SEEDS)
def test_simultaneous_child_rekey_both_complete_and_lowest_nonce_loses(seed):
    p, old, msgs = _collide(seed)
    loser = _expected_loser(msgs)
    winner = "r" if loser == "i" else "i"
    # Both CREATE_CHILD_SA exchanges completed; no TEMPORARY_FAILURE (or other error).
    seen = [(d, r, e) for d, r, e, _ in msgs]
    assert seen[:4] == [
        ("i->r", False, "CREATE_CHILD_SA"), ("r->i", False, "CREATE_CHILD_SA"),
        ("r->i", True, "CREATE_CHILD_SA"), ("i->r", True, "CREATE_CHILD_SA")]
    # then two INFORMATIONAL exchanges, one started by each end (the Deletes cross)
    assert sorted(seen[4:]) == sorted([("i->r", False, "INFORMATIONAL"),
                                       ("r->i", False, "INFORMATIONAL"),
                                       ("i->r", True, "INFORMATIONAL"),
                                       ("r->i", True, "INFORMATIONAL")])
    deletes = {d[0]: [x for x in inner if type(x).__name__ == "DeletePayload"]
               for d, r, e, inner in msgs[4:] if not r}
    assert [s_ for x in deletes[winner] for s_ in x.spis] == \
        [old[0 if winner == "i" else 1].to_bytes(4, "big")]     # the winner: old SA
    assert len(deletes[loser]) == 1 and old[0].to_bytes(4, "big") not in deletes[loser][0].spis
    assert not any(isinstance(x, NotifyPayload) and x.notify_type < 16384
                   for *_, inner in msgs for x in inner)
    assert not any(isinstance(x, NotifyPayload) and x.notify_type ==
                   NotifyType.TEMPORARY_FAILURE for *_, inner in msgs for x in inner)
    assert not p.i.errors and not p.r.errors
    # One ChildSaRekeyed per end, old -> the winner's SA; the same keys at both ends.
    (ei,), (er,) = _of(p.i_events, ChildSaRekeyed), _of(p.r_events, ChildSaRekeyed)
    assert (ei.old_spi_in, ei.old_spi_out) == old and (er.old_spi_in, er.old_spi_out) == \
        old[::-1]
    assert ei.new.spi_in == er.new.spi_out and ei.new.spi_out == er.new.spi_in
    assert ei.new.key_out == er.new.key_in and ei.new.key_in == er.new.key_out
    assert ei.new.integrity_key_out == er.new.integrity_key_in
    assert ei.new.initiator == (winner == "i") and er.new.initiator == (winner == "r")
    # Only the old pair is reported down; the redundant pair is never reported at all.
    assert [(d.spi_in, d.spi_out) for d in _of(p.i_events, ChildSaDown)] == [old]
    assert [(d.spi_in, d.spi_out) for d in _of(p.r_events, ChildSaDown)] == [old[::-1]]
    assert len(_of(p.i_events, ChildSaUp)) == len(_of(p.r_events, ChildSaUp)) == 1
    # Exactly the surviving pair remains on each side.
    assert _pairs(p.i) == [(ei.new.spi_in, ei.new.spi_out)]
    assert _pairs(p.r) == [(er.new.spi_in, er.new.spi_out)]
    assert all(c.state == "installed" and c.reported for s in (p.i, p.r)
               for c in s.children.values())
    # The survivor rekeys normally later, and nothing else is pending.
    p.advance(60.0)
    assert len(_of(p.i_events, ChildSaRekeyed)) == 1 and p.i.state == p.r.state == \
        "established"


def test_the_seeds_run_both_branches():
    losers = {_expected_loser(_collide(seed)[2]) for seed in SEEDS}
    assert losers == {"i", "r"}


@pytest.mark.parametrize("late", ["i", "r"])
def test_rekey_request_arriving_after_the_own_rekey_completed(late):
    #   A                                             B (its request is delayed)
    #   N(REKEY_SA, old) ... -->                      (B has sent its own request)
    #                        <--  SA Nr ...           (B answers A; its SA_A waits)
    #   (A: ChildSaRekeyed(old -> SA_A))
    #   D(ESP, old)  -->
    #                        <--  N(REKEY_SA, old) ... (B's delayed request)
    #   N(TEMPORARY_FAILURE) -->                      (§2.25.1: A is deleting the old SA)
    #   (B: ChildSaRekeyed(old -> SA_A) when the Delete or the refusal arrives, then
    #    ChildSaDown(old); B does not retry)
    p = _seeded_pair(7)
    a, b = (p.r, p.i) if late == "i" else (p.i, p.r)
    a_events, b_events = (p.r_events, p.i_events) if late == "i" else \
        (p.i_events, p.r_events)
    (spi_a, spi_b), = _pairs(a)
    a.rekey_child(spi_a, p.now)
    b.rekey_child(spi_b, p.now)
    b_request = b.datagrams_to_send(p.now)          # held back
    for d, _ in a.datagrams_to_send(p.now):
        b.receive_datagram(d, a.local_addr, p.now)
    for d, _ in b.datagrams_to_send(p.now):          # B's answer to A
        a.receive_datagram(d, b.local_addr, p.now)
    for d, _ in a.datagrams_to_send(p.now):          # A's Delete(old)
        b.receive_datagram(d, a.local_addr, p.now)
    for d, _ in b_request:                           # B's late request
        a.receive_datagram(d, b.local_addr, p.now)
    p.run()
    p.advance(60.0)
    p.drain_events()
    (ea,), (eb,) = _of(a_events, ChildSaRekeyed), _of(b_events, ChildSaRekeyed)
    assert ea.new.spi_in == eb.new.spi_out and ea.new.key_out == eb.new.key_in
    assert ea.new.initiator and not eb.new.initiator
    assert len(_of(a_events, ChildSaUp)) == len(_of(b_events, ChildSaUp)) == 1
    assert [(d.spi_in, d.spi_out) for d in _of(a_events, ChildSaDown)] == [(spi_a, spi_b)]
    assert [(d.spi_in, d.spi_out) for d in _of(b_events, ChildSaDown)] == [(spi_b, spi_a)]
    assert _pairs(a) == [(ea.new.spi_in, ea.new.spi_out)]
    assert _pairs(b) == [(eb.new.spi_in, eb.new.spi_out)]
    assert [e.notify_hint for e in b.errors] == [NotifyType.TEMPORARY_FAILURE]


def test_loser_sees_the_winners_delete_before_its_own_response():
    #   the winner's D(ESP, old) overtakes its answer to the loser's request: the loser
    #   reports the winner's SA at the Delete (make-before-break), then deletes its own
    #   SA as redundant when its exchange completes.
    # Build the reordering explicitly: i's request -> r, r's request -> i, then i's answer
    # is held while r completes and (if it wins) sends Delete(old) to i first.
    for seed in SEEDS:
        p = _seeded_pair(seed)
        (old_i, old_o), = _pairs(p.i)
        p.i.rekey_child(old_i, p.now)
        p.r.rekey_child(old_o, p.now)
        i_req = p.i.datagrams_to_send(p.now)
        r_req = p.r.datagrams_to_send(p.now)
        for d, _ in i_req:
            p.r.receive_datagram(d, p.i.local_addr, p.now)
        for d, _ in r_req:
            p.i.receive_datagram(d, p.r.local_addr, p.now)
        r_answer = p.r.datagrams_to_send(p.now)      # r's answer to i: held back
        for d, _ in p.i.datagrams_to_send(p.now):    # i's answer to r: r completes
            p.r.receive_datagram(d, p.i.local_addr, p.now)
        r_next = p.r.datagrams_to_send(p.now)        # r's Delete (old or redundant)
        p.drain_events()
        r_won = bool(_of(p.r_events, ChildSaRekeyed)) and \
            _of(p.r_events, ChildSaRekeyed)[0].new.initiator
        if not r_won:
            continue
        for d, _ in r_next:                          # Delete(old) overtakes the answer
            p.i.receive_datagram(d, p.r.local_addr, p.now)
        p.drain_events()
        (ei,) = _of(p.i_events, ChildSaRekeyed)
        assert [(x.spi_in, x.spi_out) for x in _of(p.i_events, ChildSaDown)] == \
            [(old_i, old_o)]
        for d, _ in r_answer:
            p.i.receive_datagram(d, p.r.local_addr, p.now)
        p.run()
        p.drain_events()
        (er,) = _of(p.r_events, ChildSaRekeyed)
        assert len(_of(p.i_events, ChildSaRekeyed)) == 1
        assert len(_of(p.i_events, ChildSaUp)) == 1          # the redundant SA: no event
        assert ei.new.spi_in == er.new.spi_out and ei.new.key_out == er.new.key_in
        assert _pairs(p.i) == [(ei.new.spi_in, ei.new.spi_out)]
        assert _pairs(p.r) == [(er.new.spi_in, er.new.spi_out)]
        assert len(_of(p.i_events, ChildSaDown)) == 1
        assert [(x.spi_in, x.spi_out) for x in _of(p.r_events, ChildSaDown)] == \
            [(old_o, old_i)]
        return
    pytest.fail("no seed where the responder wins")

"""Anti-replay (RFC 4303 §3.4.3, RFC 6479, ESN per RFC 4303 Appendix A) against a reference
model written from the RFC text, for random arrival orders, window sizes 32..4096, bursts with
duplicates, and ESN wrap-around."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _pfe_core import ReplayWindow, Status
from helpers import esp_seal, inner_packet, outer_v4, spec, trailer
from inline_ipsec import Burst, Pfe


class ReferenceWindow:
    """RFC 4303 §3.4.3 in its plainest form: remember every accepted number; a packet is
    accepted if it is right of the window or inside it and not yet seen."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.top = 0
        self.seen: set[int] = set()

    def receive(self, seq: int) -> int:
        if seq == 0:
            return Status.REPLAY_BELOW_WINDOW
        if self.size and seq <= self.top:
            if seq <= self.top - self.size:
                return Status.REPLAY_BELOW_WINDOW
            if seq in self.seen:
                return Status.REPLAY_DUPLICATE
        self.seen.add(seq)
        self.top = max(self.top, seq)
        return Status.OK


windows = st.sampled_from([32, 64, 100, 128, 1000, 1024, 4000, 4096])


@st.composite
def arrivals(draw, base: int = 1):
    """A mostly increasing stream with reordering, duplicates and a few very old packets."""
    size = draw(windows)
    n = draw(st.integers(1, 300))
    seqs, top = [], base
    for _ in range(n):
        kind = draw(st.sampled_from(["next", "jump", "reorder", "dup", "old"]))
        if kind == "next":
            top += 1
            seqs.append(top)
        elif kind == "jump":
            top += draw(st.integers(1, 3 * size))
            seqs.append(top)
        elif kind == "reorder":
            seqs.append(max(base, top - draw(st.integers(0, size + 2))))
        elif kind == "dup" and seqs:
            seqs.append(draw(st.sampled_from(seqs)))
        else:
            seqs.append(max(base, top - draw(st.integers(size - 2, 2 * size))))
    return size, seqs


@settings(max_examples=300, deadline=None)
@given(arrivals())
def test_window_matches_reference(case):
    size, seqs = case
    ref, win = ReferenceWindow(size), ReplayWindow(size)
    for seq in seqs:
        assert win.receive(seq) == ref.receive(seq), (size, seq)


@settings(max_examples=200, deadline=None)
@given(arrivals(base=(1 << 32) - 5000))
def test_esn_window_across_2_32_matches_reference(case):
    """The receiver sees only the low 32 bits and infers the rest (RFC 4303 A2.1)."""
    size, seqs = case
    ref, win = ReferenceWindow(size), ReplayWindow(size, esn=True)
    start = (1 << 32) - 5000
    # Put both windows where the stream starts, as after many packets.
    for w in (ref, win):
        w.receive(start)
    for seq in seqs:
        if seq <= start:
            continue
        if seq <= ref.top - size:
            # Below the window, the low 32 bits alone are taken for the next 2^32 block
            # (A2.1); the ICV, computed over the true high bits, then rejects the packet.
            assert win.infer(seq & 0xFFFFFFFF) == seq + (1 << 32)
            continue
        assert win.receive(seq & 0xFFFFFFFF) == ref.receive(seq), (size, seq)
    assert win.top == ref.top


def test_window_off_accepts_everything():
    win = ReplayWindow(0)
    assert [win.receive(s) for s in (5, 5, 1, 5)] == [Status.OK] * 4


def test_window_size_limits():
    for bad in (1, 31, 4097, 65536):
        with pytest.raises(ValueError, match="range"):
            ReplayWindow(bad)


def test_esn_inference_cases_from_rfc_appendix_a():
    win = ReplayWindow(64, esn=True)
    win.advance((5 << 32) | 100)            # case A: window inside one subspace
    assert win.infer(90) == (5 << 32) | 90
    assert win.infer(10) == (6 << 32) | 10  # far below the window: next subspace
    win = ReplayWindow(64, esn=True)
    win.advance((5 << 32) | 10)             # case B: window spans two subspaces
    assert win.infer(0xFFFFFFF0) == (4 << 32) | 0xFFFFFFF0
    assert win.infer(20) == (5 << 32) | 20
    assert ReplayWindow(64, esn=True).infer(0xFFFFFFF0) is None  # would be below 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 80), min_size=1, max_size=64), st.sampled_from([32, 64, 4096]))
def test_burst_with_duplicates_accepts_each_number_once(seqs, size):
    """Two-phase replay in a burst: all copies pass the pre-check against the old window, only
    the first to verify is accepted; later copies are duplicates (caught by the re-check)."""
    s = spec(replay_window=size)
    pfe = Pfe()
    h = pfe.add_inbound(s)
    packets = [outer_v4(esp_seal(s.key, s.spi, q, trailer(inner_packet(), 4))) for q in seqs]
    burst = Burst.from_packets(packets)
    good = pfe.decrypt_burst(burst)
    ref = ReferenceWindow(size)
    expected = [ref.receive(q) for q in seqs]
    assert list(burst.status[:len(seqs)]) == expected
    assert good == expected.count(Status.OK) >= 1
    assert all(burst.sa[i] == h for i in range(len(seqs)))
    c = pfe.counters(h)
    assert c.replay_duplicate == expected.count(Status.REPLAY_DUPLICATE)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.booleans()), min_size=1, max_size=70))
def test_burst_decides_as_one_packet_at_a_time(items):
    """Genuine and forged copies of numbers in one burst get the statuses and counters they
    get one packet per burst: a forged copy of a number an earlier packet of the burst took
    is a replay (the window is checked before the ICV, RFC 4303 §3.4.3), else AUTH_FAILED."""
    s = spec(replay_window=64)
    packets = []
    for q, forged in items:
        wire = bytearray(outer_v4(esp_seal(s.key, s.spi, q, trailer(inner_packet(), 4))))
        if forged:
            wire[-1] ^= 1
        packets.append(bytes(wire))
    burst_pfe, single_pfe = Pfe(), Pfe()
    hb, hs = burst_pfe.add_inbound(s), single_pfe.add_inbound(s)
    burst = Burst.from_packets(packets)
    burst_pfe.decrypt_burst(burst)
    one_by_one = []
    for p in packets:
        single = Burst.from_packets([p])
        single_pfe.decrypt_burst(single)
        one_by_one.append(int(single.status[0]))
    assert [int(x) for x in burst.status[:len(packets)]] == one_by_one
    assert burst_pfe.counters(hb) == single_pfe.counters(hs)


def test_forged_packet_does_not_move_the_window():
    s = spec(replay_window=64)
    pfe = Pfe()
    h = pfe.add_inbound(s)
    forged = bytearray(outer_v4(esp_seal(s.key, s.spi, 10_000, trailer(inner_packet(), 4))))
    forged[-1] ^= 1
    good = outer_v4(esp_seal(s.key, s.spi, 5, trailer(inner_packet(), 4)))
    burst = Burst.from_packets([bytes(forged), good])
    assert pfe.decrypt_burst(burst) == 1
    assert list(burst.status[:2]) == [Status.AUTH_FAILED, Status.OK]
    assert pfe.sequence(h) == 5


def test_esn_burst_across_wrap_through_pfe():
    s = spec(esn=True, replay_window=128)
    pfe = Pfe()
    out, inb = pfe.add_outbound(s), pfe.add_inbound(s)
    pfe.set_sequence(out, (1 << 32) - 40)
    pfe.set_sequence(inb, (1 << 32) - 40)
    wires = [pfe.encrypt(out, inner_packet()) for _ in range(80)]
    order = list(np.random.default_rng(7).permutation(80))
    order = sorted(order, key=lambda i: i + (order.index(i) % 5) * 3)  # local reordering only
    burst = Burst.from_packets([wires[i] for i in order] + [wires[79], wires[3]])
    assert pfe.decrypt_burst(burst) == 80
    assert list(burst.status[80:82]) == [Status.REPLAY_DUPLICATE, Status.REPLAY_DUPLICATE]
    assert pfe.sequence(inb) == (1 << 32) + 40
    assert struct.unpack("!I", wires[79][24:28])[0] == 40

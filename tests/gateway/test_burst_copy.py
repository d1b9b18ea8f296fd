"""The list-of-bytes APIs' copies in and out of a burst (`PipelineArrays.load` / `collect`):
what they copy, and the bad lengths they refuse instead of reading or writing past a slot."""
from __future__ import annotations

import pytest

from inline_ipsec.packet.burst import Burst
from inline_ipsec.pfe import Verdict, pipeline_arrays


def _burst() -> Burst:
    return Burst(8, 512, 64)


def test_load_places_packets_at_the_headroom():
    b = _burst()
    pkts = [bytes([i]) * (20 + i) for i in range(5)] + [bytearray(b"\x45" * 30)]
    n = pipeline_arrays(b).load(pkts, b.headroom, 7)
    b.count = n
    assert n == 6
    assert b.packets() == [bytes(p) for p in pkts]
    assert b.sa[:6].tolist() == [7] * 6
    assert b.offset[:6].tolist() == [64] * 6


def test_load_refuses_a_packet_without_tailroom():
    b = _burst()
    with pytest.raises(ValueError, match="does not fit"):
        pipeline_arrays(b).load([b"x" * (512 - 64 - 63)], b.headroom)
    pipeline_arrays(b).load([b"x" * (512 - 64 - 64)], b.headroom)     # exactly fits


def test_load_refuses_more_packets_than_slots():
    b = _burst()
    with pytest.raises(ValueError):
        pipeline_arrays(b).load([b"x"] * 9, b.headroom)


def test_collect_sorts_by_verdict_and_counts_drops():
    b = Burst.from_packets([b"a" * 10, b"b" * 11, b"c" * 12, b"d" * 13, b"e" * 14])
    b.verdict[:5] = [Verdict.WIRE, Verdict.DELIVER, Verdict.DROP_TS, Verdict.DROP_KEEPALIVE,
                     Verdict.WIRE]
    wire: list = []
    delivered: list = []
    assert pipeline_arrays(b).collect(5, wire, delivered) == 1
    assert wire == [b"a" * 10, b"e" * 14]
    assert delivered == [b"b" * 11]
    # from a first slot on: the ranges around a punted slot give the same, in order
    b.verdict[1] = Verdict.PUNT_CPU
    parts: tuple[list, list] = ([], [])
    assert pipeline_arrays(b).collect(1, *parts) + pipeline_arrays(b).collect(5, *parts, 2) == 1
    assert parts == ([b"a" * 10, b"e" * 14], [])
    assert pipeline_arrays(b).collect(5, [], [], 5) == 0
    for first in (-1, 6):
        with pytest.raises(ValueError, match="first slot"):
            pipeline_arrays(b).collect(5, [], [], first)


def test_collect_refuses_a_length_outside_the_slot():
    b = _burst()
    b.count = pipeline_arrays(b).load([b"x" * 40], b.headroom)
    b.verdict[0] = Verdict.WIRE
    b.length[0] = 10_000
    with pytest.raises(ValueError, match="outside"):
        pipeline_arrays(b).collect(1, [], [])


@pytest.mark.parametrize("capacity,slot,headroom", [(1, 2048, 128), (32, 2048, 128), (5, 600, 64),
                                                    (3, 1000, 100)])
def test_slots_start_on_a_cache_line_and_copies_keep_it(capacity, slot, headroom):
    # Where headers fall among cache lines must not change from process to process (the
    # benchmark ratios depend on it), so the slot array is aligned, in copies too.
    from inline_ipsec.packet.burst import SLOT_ALIGN
    b = Burst(capacity, slot, headroom)
    assert SLOT_ALIGN == 64
    assert b.data.ctypes.data % SLOT_ALIGN == 0
    assert b.data.shape == (capacity, slot) and b.data.flags["C_CONTIGUOUS"]
    assert not b.data.any()
    b.data[-1, -1] = 7
    c = b.copy()
    assert c.data.ctypes.data % SLOT_ALIGN == 0
    assert c.data[-1, -1] == 7 and c.data.flags["C_CONTIGUOUS"]
    c.data[0, 0] = 1
    assert b.data[0, 0] == 0                      # a copy, not a view of the same slots


def test_restore_packets_from_copies_the_packets_and_their_metadata():
    clean = Burst.from_packets([bytes([i]) * (30 + 10 * i) for i in range(4)], sa=[5, 6, 7, 8])
    b = clean.copy()
    b.data[:] = 0xEE                      # an engine wrote headers, trailers and ciphertext
    b.offset[:] = 3
    b.length[:] = 9
    b.sa[:] = -1
    b.verdict[:] = 2
    b.count = 1
    b.restore_packets_from(clean)
    assert b.count == 4
    assert b.packets() == clean.packets()
    assert b.offset.tolist() == clean.offset.tolist()
    assert b.length.tolist() == clean.length.tolist()
    assert b.sa.tolist() == clean.sa.tolist()
    assert b.verdict.tolist() == clean.verdict.tolist()
    # Head- and tailroom are scratch: left as they were.
    assert b.data[0, 0] == 0xEE and b.data[0, -1] == 0xEE


def test_restore_packets_from_an_empty_burst_copies_no_bytes():
    clean = Burst(2, 256, 64)
    b = Burst(2, 256, 64)
    b.data[:] = 1
    b.count = 2
    b.restore_packets_from(clean)
    assert b.count == 0 and b.data.all()

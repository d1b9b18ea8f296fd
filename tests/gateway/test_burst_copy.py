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


def test_collect_refuses_a_length_outside_the_slot():
    b = _burst()
    b.count = pipeline_arrays(b).load([b"x" * 40], b.headroom)
    b.verdict[0] = Verdict.WIRE
    b.length[0] = 10_000
    with pytest.raises(ValueError, match="outside"):
        pipeline_arrays(b).collect(1, [], [])

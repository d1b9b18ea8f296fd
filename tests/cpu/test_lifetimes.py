"""SA lifetimes (RFC 4301 §4.4.2.1) on the CPU engine with an injected clock: soft limits raise
one "rekey-due" event, hard limits stop the SA (Status.EXPIRED, counter `expired`) and raise
one "expired" event; in seconds, kilobytes (protected inner bytes) and packets, both ways."""
from __future__ import annotations

import pytest

from inline_ipsec import Burst, Lifetime, SaExpiredError, Status
from inline_ipsec.cpu import CpuEngine, SaEvent

from .helpers import esp_spec, inner_v4


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def events(cpu: CpuEngine) -> list[SaEvent]:
    out = []
    while (e := cpu.next_event()) is not None:
        out.append(e)
    return out


def engine(lifetime: Lifetime, cipher="aes-cbc-128"):
    clock = Clock()
    cpu = CpuEngine(clock=clock)
    spec = esp_spec(cipher, lifetime=lifetime)
    return cpu, clock, cpu.add_outbound(spec), cpu.add_inbound(spec)


def test_packets_soft_then_hard_outbound_and_inbound():
    cpu, _clock, h, hin = engine(Lifetime(soft_packets=3, hard_packets=5))
    pkt = inner_v4(80)
    wires = []
    for n in range(1, 6):
        wires.append(cpu.encrypt(h, pkt))
        evs = events(cpu)
        if n == 3:
            assert [(e.kind, e.limit, e.direction) for e in evs] == [
                ("rekey-due", "packets", "outbound")]
            assert cpu.rekey_needed(h)
        elif n == 5:
            assert [(e.kind, e.limit, e.handle, e.spi) for e in evs] == [
                ("expired", "packets", h, 0x1001)]
        else:
            assert evs == []
    with pytest.raises(SaExpiredError):
        cpu.encrypt(h, pkt)
    assert cpu.counters(h).expired == 1 and cpu.counters(h).packets == 5
    assert cpu.expired(h) and events(cpu) == []        # events are raised once
    # inbound counts too: the first five open, the SA then expires
    for w in wires:
        assert cpu.decrypt(w) == pkt
    assert [(e.kind, e.direction) for e in events(cpu)] == [("rekey-due", "inbound"),
                                                            ("expired", "inbound")]
    burst = Burst.from_packets([wires[0]])
    assert cpu.decrypt_burst(burst) == 0 and burst.status[0] == Status.EXPIRED
    assert cpu.counters(hin).expired == 1


def test_kilobytes_soft_and_hard():
    cpu, _clock, h, _ = engine(Lifetime(soft_kilobytes=2, hard_kilobytes=4))
    pkt = inner_v4(1000)
    burst = Burst.from_packets([pkt] * 6, h)
    assert cpu.encrypt_burst(burst) == 5       # 5000 bytes >= 4096 after the fifth
    assert burst.status.tolist()[:6] == [0, 0, 0, 0, 0, Status.EXPIRED]
    evs = events(cpu)
    assert [(e.kind, e.limit) for e in evs] == [("rekey-due", "kilobytes"),
                                                ("expired", "kilobytes")]
    assert cpu.counters(h).bytes == 5000 and cpu.counters(h).expired == 1


@pytest.mark.parametrize("cipher", ["aes-gcm-128", "aes-cbc-256"])
def test_seconds_with_injected_clock(cipher):
    cpu, clock, h, hin = engine(Lifetime(soft_seconds=60, hard_seconds=120), cipher)
    pkt = inner_v4(64)
    cpu.encrypt(h, pkt)
    clock.t += 59.9
    assert events(cpu) == []
    clock.t += 0.1
    evs = events(cpu)                          # idle SAs expire too: polled
    assert {(e.kind, e.limit, e.at) for e in evs} == {("rekey-due", "seconds", 1060.0)}
    assert len(evs) == 2                       # both directions
    wire = cpu.encrypt(h, pkt)                 # still carries traffic
    clock.t += 60
    burst = Burst.from_packets([pkt], h)
    assert cpu.encrypt_burst(burst) == 0 and burst.status[0] == Status.EXPIRED
    burst = Burst.from_packets([wire])
    assert cpu.decrypt_burst(burst) == 0 and burst.status[0] == Status.EXPIRED
    assert sorted((e.kind, e.direction) for e in events(cpu)) == [
        ("expired", "inbound"), ("expired", "outbound")]
    assert cpu.counters(h).expired == 1 and cpu.counters(hin).expired == 1


def test_hard_only_implies_rekey_needed_and_unlimited_sa_never_expires():
    cpu, clock, h, _ = engine(Lifetime(hard_packets=1))
    other = cpu.add_outbound(esp_spec("aes-gcm-128", spi=0x9999))
    cpu.encrypt(h, inner_v4(50))
    assert [e.kind for e in events(cpu)] == ["expired"]
    assert cpu.rekey_needed(h) and not cpu.rekey_needed(other)
    clock.t += 10 ** 9
    cpu.encrypt(other, inner_v4(50))
    assert events(cpu) == [] and not cpu.expired(other)


def test_sequence_exhaustion_raises_rekey_event():
    cpu, _clock, h, _ = engine(Lifetime())
    cpu.set_sequence(h, 0xFFFFFFFF)
    burst = Burst.from_packets([inner_v4(50)] * 2, h)
    assert cpu.encrypt_burst(burst) == 0
    assert burst.status.tolist()[:2] == [Status.SEQ_OVERFLOW] * 2
    assert [(e.kind, e.limit) for e in events(cpu)] == [("rekey-due", "sequence")]
    assert cpu.rekey_needed(h) and cpu.counters(h).seq_overflow == 2

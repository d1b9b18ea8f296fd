"""Edges both engines must draw in the same place (each PFE backend and the CPU engine):

- the anti-replay boundary of RFC 4303 §3.4.3: with the highest accepted number T and a
  window of W, T - W + 1 is the oldest number still inside the window (accepted once), T - W
  the newest one below it: dropped as below the window, or with ESN taken for T - W + 2^32
  (RFC 4303 Appendix A2.1), which then fails the ICV computed over the true high bits;
- NAT-T over IPv6: the UDP checksum is mandatory, so zero is as bad as a wrong one
  (RFC 8200 §8.1; RFC 3948 §2.1 allows zero over IPv4 only), while over IPv4 zero is the rule."""
from __future__ import annotations

import pytest
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw, raw

from helpers import V4, esp_seal, inner_packet, outer_v4, spec, trailer
from inline_ipsec import (Burst, CpuEngine, IntegrityError, MalformedPacketError, Pfe,
                          ReplayError, Status)

ENGINES = {"pfe": Pfe, "cpu": CpuEngine}


def sealed(s, seq: int) -> bytes:
    return outer_v4(esp_seal(s.key, s.spi, seq, trailer(inner_packet(), 4), esn=s.esn))


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("window", [32, 64, 1000, 4096])
@pytest.mark.parametrize("esn", [False, True])
def test_replay_boundary_top_minus_window(engine, window, esn):
    eng = ENGINES[engine]()
    s = spec(replay_window=window, esn=esn)
    h = eng.add_inbound(s)
    top = 5 * window + 17
    assert eng.decrypt(sealed(s, top)) == inner_packet()
    burst = Burst.from_packets([sealed(s, top - window), sealed(s, top - window + 1),
                                sealed(s, top - window + 1), sealed(s, top - window + 2)])
    below = Status.AUTH_FAILED if esn else Status.REPLAY_BELOW_WINDOW
    assert eng.decrypt_burst(burst) == 2
    assert burst.status[:4].tolist() == [below, Status.OK, Status.REPLAY_DUPLICATE, Status.OK]
    c = eng.counters(h)
    assert (c.packets, c.replay_duplicate) == (3, 1)
    assert (c.auth_failed, c.replay_below_window) == ((1, 0) if esn else (0, 1))
    assert eng.sequence(h) == top
    with pytest.raises(IntegrityError if esn else ReplayError):
        eng.decrypt(sealed(s, top - window))


@pytest.mark.parametrize("window", [4097, 65536])
def test_replay_boundary_cpu_windows_above_the_pfe(window):
    cpu = CpuEngine()
    s = spec(replay_window=window)
    h = cpu.add_inbound(s)
    top = 3 * window
    cpu.decrypt(sealed(s, top))
    burst = Burst.from_packets([sealed(s, top - window), sealed(s, top - window + 1)])
    assert cpu.decrypt_burst(burst) == 1
    assert burst.status[:2].tolist() == [Status.REPLAY_BELOW_WINDOW, Status.OK]
    assert cpu.counters(h).replay_below_window == 1


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_natt_ipv6_zero_or_wrong_udp_checksum_is_dropped(engine):
    eng = ENGINES[engine]()
    s = spec(outer6=True, udp_encap=True)
    out, inb = eng.add_outbound(s), eng.add_inbound(s)
    wire = eng.encrypt(out, inner_packet())
    assert wire[46:48] != b"\x00\x00"
    zero = bytearray(wire)
    zero[46:48] = b"\x00\x00"
    wrong = bytearray(wire)
    wrong[46] ^= 0x01
    burst = Burst.from_packets([bytes(zero), bytes(wrong), wire])
    assert eng.decrypt_burst(burst) == 1
    assert burst.status[:3].tolist() == [Status.MALFORMED, Status.MALFORMED, Status.OK]
    assert eng.engine_counters().malformed == 2
    assert eng.counters(inb).packets == 1
    with pytest.raises(MalformedPacketError):
        eng.decrypt(bytes(zero))


def test_cpu_engine_rejects_a_zero_natt_checksum_over_ipv6():
    """The CPU engine on its own (it also carries ciphers the PFE does not)."""
    cpu = CpuEngine()
    s = spec(outer6=True, udp_encap=True)
    h = cpu.add_outbound(s)
    cpu.add_inbound(s)
    zero = bytearray(cpu.encrypt(h, inner_packet(size=99)))
    zero[46:48] = b"\x00\x00"
    with pytest.raises(MalformedPacketError):
        cpu.decrypt(bytes(zero))
    assert cpu.engine_counters().malformed == 1


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_natt_ipv4_zero_udp_checksum_is_the_rule(engine):
    eng = ENGINES[engine]()
    s = spec(udp_encap=True)
    out = eng.add_outbound(s)
    eng.add_inbound(s)
    wire = eng.encrypt(out, inner_packet())
    second = eng.encrypt(out, inner_packet(size=90))
    assert IP(wire)[UDP].chksum == 0 and IP(second)[UDP].chksum == 0
    assert eng.decrypt(wire) == inner_packet()
    # a sender that fills in the optional IPv4 UDP checksum (RFC 768) is accepted as well
    filled = raw(IP(src=V4[0], dst=V4[1]) / UDP(sport=4500, dport=4500)
                 / Raw(raw(IP(second)[UDP].payload)))
    assert IP(filled)[UDP].chksum != 0
    assert eng.decrypt(filled) == inner_packet(size=90)

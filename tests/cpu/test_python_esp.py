"""The minimal Python ESP loop the CPU engine is measured against: same bytes as the engine
(and therefore the PFE) for the same SA and sequence numbers, and the receiver checks it
claims (protocol, SPI, anti-replay, ICV, trailer)."""
from __future__ import annotations

import pytest

from inline_ipsec import Burst
from inline_ipsec.benchmark import gcm_spec, inner_ipv4_udp
from inline_ipsec.cpu import CpuEngine
from inline_ipsec.perf.python_esp import PythonEsp


@pytest.mark.parametrize("size", [28, 64, 65, 66, 67, 1400])
def test_same_bytes_as_the_engine_and_round_trip(size):
    spec = gcm_spec(256)
    inner = [inner_ipv4_udp(size, i) for i in range(5)]
    ref = PythonEsp(spec)
    wires = [ref.encrypt(p) for p in inner]
    cpu = CpuEngine()
    burst = Burst.from_packets(inner, cpu.add_outbound(spec))
    assert cpu.encrypt_burst(burst) == 5
    assert burst.packets() == wires
    rx = PythonEsp(spec)
    assert [rx.decrypt(w) for w in wires] == inner
    cpu.add_inbound(spec)
    assert cpu.decrypt_burst(burst) == 5 and burst.packets() == inner


def test_receiver_drops():
    spec = gcm_spec(128)
    tx, rx = PythonEsp(spec), PythonEsp(spec)
    wires = [tx.encrypt(inner_ipv4_udp(64, i)) for i in range(70)]
    assert rx.decrypt(wires[1]) is not None
    assert rx.decrypt(wires[1]) is None                 # duplicate
    assert rx.decrypt(wires[0]) is not None             # late but inside the window
    assert rx.decrypt(wires[69]) is not None
    assert rx.decrypt(wires[2]) is None                 # now below the 64-packet window
    forged = bytearray(wires[50])
    forged[-1] ^= 1
    assert rx.decrypt(bytes(forged)) is None            # ICV
    assert rx.decrypt(wires[50]) is not None            # the forgery did not take seq 51
    other = PythonEsp(gcm_spec(128, spi=0x2000)).encrypt(inner_ipv4_udp(64))
    assert rx.decrypt(other) is None                    # SPI
    assert rx.decrypt(b"\x60" + wires[60][1:]) is None  # not IPv4
    assert rx.decrypt(wires[60][:40]) is None           # truncated


def test_refuses_what_it_does_not_model():
    with pytest.raises(ValueError):
        PythonEsp(gcm_spec(128, esn=True))

"""The QAT-style crypto device on the CPU path: the same bytes and decisions as without it,
at any ring depth and batch size; its rings stay bounded and its counters add up."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inline_ipsec import Burst, Status
from inline_ipsec.cpu import CpuEngine, QatDevice

from .helpers import esp_spec, inner_v4
from .test_pmi import SPECS, inner, mutate, order, stream


def pair(depth: int, batch: int, threaded: bool = False):
    dev = QatDevice(ring_depth=depth, batch_size=batch, threaded=threaded)
    return CpuEngine("qat", qat=dev), CpuEngine("plain"), dev


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream, order, st.sampled_from([1, 2, 8, 64]), st.sampled_from([1, 4, 16]))
def test_same_decisions_as_without_the_device(packets, picks, depth, batch):
    q, plain, dev = pair(depth, batch)
    tx = CpuEngine("tx")
    outs = [tx.add_outbound(s) for s in SPECS]
    ins = [(q.add_inbound(s), plain.add_inbound(s)) for s in SPECS]
    wires = []
    for sa, kind, size, tos, how, where in packets:
        b = Burst.single(inner(kind, size, tos & 0xFC), outs[sa])
        if tx.encrypt_burst(b) == 1:
            wires.append(mutate(b.packet(0), how, where) if how and where % 3 == 0
                         else b.packet(0))
    if not wires:
        return
    chosen = [wires[k % len(wires)] for k in picks]
    results = []
    for e in (q, plain):
        b = Burst.from_packets(chosen)
        results.append((e.decrypt_burst(b), b.status[:b.count].tolist(),
                        b.length[:b.count].tolist(), b.ok_packets()))
    assert results[0] == results[1]
    assert [q.counters(a) for a, _ in ins] == [plain.counters(b) for _, b in ins]
    c = dev.counters
    assert c.requests == c.responses and c.max_in_flight <= depth


@pytest.mark.parametrize("depth", [1, 8, 64])
def test_threaded_device_round_trip_and_counters(depth):
    spec = esp_spec("aes-gcm-256", replay_window=256)
    dev_tx = QatDevice(ring_depth=depth, batch_size=8)
    dev_rx = QatDevice(ring_depth=depth, batch_size=8)
    try:
        tx, rx = CpuEngine(qat=dev_tx), CpuEngine(qat=dev_rx)
        pkts = [inner_v4(60 + k) for k in range(32)]
        b = Burst.from_packets(pkts, tx.add_outbound(spec))
        reference = CpuEngine()
        rb = Burst.from_packets(pkts, reference.add_outbound(spec))
        assert tx.encrypt_burst(b) == 32 and reference.encrypt_burst(rb) == 32
        assert b.packets() == rb.packets()
        h = rx.add_inbound(spec)
        assert rx.decrypt_burst(b) == 32 and b.packets() == pkts
        assert rx.sequence(h) == 32
        for dev in (dev_tx, dev_rx):
            c = dev.counters
            assert c.requests == c.responses == 32 and c.max_in_flight == min(depth, 32)
            assert (c.ring_full > 0) == (depth < 32) and c.ring_full <= max(0, 32 - depth)
            assert c.doorbells >= 32 // min(depth, 8)
        assert rx.qat_counters() == dev_rx.counters
    finally:
        dev_tx.close()
        dev_rx.close()


def test_forged_packets_through_the_device_never_move_the_window():
    spec = esp_spec("aes-gcm-128", replay_window=64)
    tx = CpuEngine()
    b = Burst.from_packets([inner_v4(100)] * 6, tx.add_outbound(spec))
    tx.encrypt_burst(b)
    wires = b.packets()
    forged = [bytearray(w) for w in wires]
    for w in forged[3:]:
        w[-1] ^= 1
    rx, dev = CpuEngine(qat=QatDevice(ring_depth=4, batch_size=2, threaded=False)), None
    h = rx.add_inbound(spec)
    burst = Burst.from_packets([bytes(w) for w in forged])
    assert rx.decrypt_burst(burst) == 3
    assert burst.status[:6].tolist() == [0, 0, 0] + [Status.AUTH_FAILED] * 3
    assert rx.sequence(h) == 3 and rx.counters(h).auth_failed == 3
    assert rx.qat_counters().errors == 3
    again = Burst.from_packets(wires[3:])                  # the genuine ones still pass
    assert rx.decrypt_burst(again) == 3 and rx.sequence(h) == 6
    del dev


@pytest.mark.parametrize("depth,batch", [(0, 1), (4097, 1), (8, 0), (8, 257)])
def test_bounds(depth, batch):
    with pytest.raises(ValueError):
        QatDevice(ring_depth=depth, batch_size=batch, threaded=False)


def test_the_device_implies_pmi():
    assert CpuEngine(pmi=False, qat=QatDevice(threaded=False)).pmi


@pytest.mark.parametrize("threaded", [False, True])
def test_a_refused_request_is_an_error_response_not_a_dead_device(threaded):
    dev = QatDevice(ring_depth=4, batch_size=2, threaded=threaded)
    try:
        def bad(*args):
            raise ValueError("buffer must be 84 bytes")
        ok = []
        dev.submit(lambda *a: ok.append(a), 1)
        dev.submit(bad, 2)
        dev.submit(lambda *a: ok.append(a), 3)
        assert dev.drain() == [1] and ok == [(1,), (3,)]
        assert dev.counters.errors == 1 and dev.counters.responses == 3
        dev.submit(lambda *a: ok.append(a), 4)           # the device still works
        assert dev.drain() == [] and ok[-1] == (4,)
    finally:
        dev.close()

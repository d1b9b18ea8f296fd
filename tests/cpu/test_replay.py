"""Anti-replay on the CPU engine (RFC 4303 §3.4.3, Appendix A): windows above the PFE's 4096
(8192, 65536), off, ESN inference; same semantics as the PFE's ring (checked against
`_pfe_core.ReplayWindow` where the PFE's range allows)."""
from __future__ import annotations

import random

import pytest

from inline_ipsec import Burst, Status
from inline_ipsec.cpu import CpuEngine, ReplayWindow

from .helpers import esp_spec, inner_v4


@pytest.mark.parametrize("window", [8192, 65536])
def test_large_windows_through_the_engine(window):
    spec = esp_spec("aes-gcm-128", replay_window=window)
    cpu = CpuEngine()
    h = cpu.add_outbound(spec)
    hin = cpu.add_inbound(spec)
    pkt = inner_v4(40)
    total = window + 10
    cpu.set_sequence(h, 0)
    wires = {}
    for seq in (1, 2, 3, window // 2, window + 5, window + 9, window + 10):
        cpu.set_sequence(h, seq - 1)
        wires[seq] = cpu.encrypt(h, pkt)
    # newest first, then older ones still inside the window, then duplicates
    order = [window + 10, window + 5, window // 2, 3, 2, 1, window + 9, window // 2]
    burst = Burst.from_packets([wires[s] for s in order])
    cpu.decrypt_burst(burst)
    expected = [Status.OK, Status.OK, Status.OK, Status.OK, Status.OK,
                Status.REPLAY_BELOW_WINDOW, Status.OK, Status.REPLAY_DUPLICATE]
    # seq 1, 2 and 3: inside the window iff top - seq < window
    expected[3] = Status.OK if total - 3 < window else Status.REPLAY_BELOW_WINDOW
    expected[4] = Status.OK if total - 2 < window else Status.REPLAY_BELOW_WINDOW
    assert burst.status.tolist()[:8] == expected
    c = cpu.counters(hin)
    assert c.replay_duplicate == 1 and c.replay_below_window == expected.count(3)
    assert cpu.sequence(hin) == total


def test_window_off_accepts_replays_and_duplicates_in_one_burst_are_caught():
    cpu = CpuEngine()
    off = esp_spec("aes-gcm-128", replay_window=0, spi=0x111)
    on = esp_spec("aes-gcm-128", replay_window=32, spi=0x222)
    ho, hn = cpu.add_outbound(off), cpu.add_outbound(on)
    cpu.add_inbound(off)
    hin = cpu.add_inbound(on)
    a, b = cpu.encrypt(ho, inner_v4(50)), cpu.encrypt(hn, inner_v4(50))
    burst = Burst.from_packets([a, a, b, b, a])
    assert cpu.decrypt_burst(burst) == 4
    assert burst.status.tolist()[:5] == [0, 0, 0, Status.REPLAY_DUPLICATE, 0]
    assert cpu.counters(hin).replay_duplicate == 1


@pytest.mark.parametrize("esn", [False, True])
@pytest.mark.parametrize("window", [0, 32, 64, 1000, 4096])
def test_same_decisions_as_the_pfe_window(window, esn):
    """A random walk (forward jumps up to 2^30, so ESN crosses several 2^32 boundaries, and
    receptions around the top): both windows infer, decide and slide alike."""
    from _pfe_core import ReplayWindow as PfeWindow
    rng = random.Random(window * 2 + esn)
    ours, theirs = ReplayWindow(window, esn), PfeWindow(window, esn)
    span = max(window, 64) * 2
    top = 1
    for _ in range(4000):
        if rng.random() < 0.05:
            top += rng.randint(1, 1 << 30)
        s = max(1, top + rng.randint(-span, span))
        lo = s & 0xFFFFFFFF
        assert ours.infer(lo) == theirs.infer(lo)
        assert ours.receive(lo) == theirs.receive(lo)
        assert ours.top == theirs.top
    if esn:
        assert ours.top > 1 << 32


def test_esn_inference_across_the_boundary():
    w = ReplayWindow(128, esn=True)
    w.reset((7 << 32) | 0xFFFFFFF0)
    assert w.infer(0xFFFFFFF5) == (7 << 32) | 0xFFFFFFF5
    assert w.infer(3) == (8 << 32) | 3                 # Case A: wrapped into the next half
    w.advance((8 << 32) | 3)
    assert w.infer(0xFFFFFFF9) == (7 << 32) | 0xFFFFFFF9   # Case B: the previous half
    assert w.check((7 << 32) | 0xFFFFFFF9) == Status.OK
    assert w.check((8 << 32) | 3) == Status.REPLAY_DUPLICATE
    fresh = ReplayWindow(64, esn=True)
    assert fresh.infer(0xFFFFFFFF) is None               # only below sequence number 1

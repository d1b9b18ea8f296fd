"""The cost split: a line through per-burst times at several burst sizes."""
from __future__ import annotations

import pytest

from inline_ipsec.cli import main
from inline_ipsec.perf.costs import MIN_ROUNDS, CostSplit, _rounds, fit, split_rounds


def test_fit_recovers_fixed_and_per_packet_costs():
    bursts = [1, 2, 4, 8, 16, 32]
    fixed, per_packet = fit(bursts, [600 + 75 * n for n in bursts])
    assert fixed == pytest.approx(600) and per_packet == pytest.approx(75)
    with pytest.raises(ValueError):
        fit([32, 32], [1.0, 2.0])


def test_model_per_packet_cost():
    c = CostSplit("ipsec-mb", "encrypt", 64, crypto_ns=47.0, framing_ns=15.0, fixed_ns=640.0)
    assert c.at(32) == pytest.approx(82.0) and c.at(1) == pytest.approx(702.0)


def test_cost_split_from_the_cli(capsys):
    assert main(["bench", "--cost-split", "--backends", "openssl", "--directions", "encrypt",
                 "--sizes", "64", "--duration", "0.01"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["backend", "direction", "size", "crypto", "framing", "kernel",
                                "call", "fixed", "at", "32"]
    row = lines[2].split()
    assert row[:3] == ["openssl", "encrypt", "64"] and float(row[3]) > 0
    kernel, call, fixed = map(float, row[5:8])
    assert fixed == pytest.approx(kernel + call, abs=0.11)
    assert len(lines) == 3


def test_kernel_timed_in_c_matches_its_packets():
    """The kernel window restores its bursts, so every pass processes every packet OK."""
    from inline_ipsec.benchmark import EngineBursts
    from inline_ipsec.perf.costs import KernelBursts
    for direction in ("encrypt", "decrypt"):
        k = KernelBursts(EngineBursts("pfe", "openssl", 128, 64, 8, bursts=2), direction)
        assert k.window_ns(3) > 0
        assert k.window_ns(1) > 0


def test_a_machine_slowing_down_does_not_bend_the_split():
    """Each round fits its own lines, so a machine that slows down round after round (here
    to half speed) moves the costs by its speed but never makes a fixed cost negative, as one
    line through sizes measured one after another would."""
    bursts = [1, 2, 4, 8, 16, 32]
    crypto, framing, kernel_fixed, call = 50.0, 12.0, 60.0, 100.0
    rounds = []
    for r in range(21):
        slow = 1.0 + r / 20              # this round's speed, the same for all its windows
        rounds.append([[slow * crypto * n for n in bursts],
                       [slow * (kernel_fixed + (crypto + framing) * n) for n in bursts],
                       [slow * (kernel_fixed + call + (crypto + framing) * n) for n in bursts]])
    got = split_rounds(bursts, rounds)
    assert got == pytest.approx((1.5 * crypto, 1.5 * framing, 1.5 * kernel_fixed,
                                 1.5 * (kernel_fixed + call)))
    # the same drift spread over the sizes instead (size i measured in stretch i): the old way
    sequential = [(1.0 + i / 5) * (kernel_fixed + (crypto + framing) * n)
                  for i, n in enumerate(bursts)]
    assert fit(bursts, sequential)[0] < 0


def test_every_round_times_every_size_once_in_rotating_order():
    calls = []

    class Windows:
        def __init__(self, i):
            self.steps = [lambda k=k: calls.append((i, k)) or float(10 * i + k)
                          for k in range(3)]

    rounds = _rounds([Windows(i) for i in range(4)], duration=0.0)
    assert len(rounds) == MIN_ROUNDS
    for row in rounds:
        assert row == [[10.0 * i + k for i in range(4)] for k in range(3)]
    timed = calls[12:]                  # after one warm-up call of each
    per_round = [timed[j:j + 12] for j in range(0, len(timed), 12)]
    assert all(sorted(r) == sorted((i, k) for i in range(4) for k in range(3))
               for r in per_round)
    assert per_round[0][0][0] != per_round[1][0][0]      # the first size rotates

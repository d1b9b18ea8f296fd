"""The cost split: a line through per-burst times at several burst sizes."""
from __future__ import annotations

import pytest

from inline_ipsec.cli import main
from inline_ipsec.perf.costs import CostSplit, fit


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

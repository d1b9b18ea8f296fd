"""CpuEngine throughput (pytest-benchmark): encrypt and decrypt per algorithm at 64, 512 and
1400 bytes and IMIX (7:4:1 of 40/576/1500), bursts of 32; and, in the same file, the naive
reference: a per-packet Python loop on `cryptography`'s AESGCM building the same ESP packets
(docs/wire-format.md), so that the CPU engine's AES-GCM is compared with what anyone would
write by hand. Target: CPU-engine AES-GCM encrypt >= 80% of the naive loop's packets/s.

    python -m pytest benchmarks/bench_cpu.py --benchmark-only

Every figure goes to `benchmark.extra_info` (pps, and for AES-GCM the naive pps and ratio).
"""
from __future__ import annotations

import hashlib
import statistics
import struct
import time

import pytest

from inline_ipsec import Burst, SaSpec
from inline_ipsec.benchmark import NaiveEsp
from inline_ipsec.cpu import CpuEngine
from inline_ipsec.sa import CIPHER_KEY_MATERIAL, INTEGRITY_ALGORITHMS

BURST = 32
SIZES = [64, 512, 1400, "imix"]
IMIX = (40,) * 7 + (576,) * 4 + (1500,)
TUNNEL = ("192.0.2.1", "198.51.100.1")
ROUNDS = 60
ALGORITHMS = [
    ("esp", "aes-gcm-128", None), ("esp", "aes-gcm-256", None), ("esp", "aes-gmac-128", None),
    ("esp", "chacha20-poly1305", None), ("esp", "aes-ctr-128", "hmac-sha256-128"),
    ("esp", "aes-cbc-128", "hmac-sha1-96"), ("esp", "aes-cbc-256", "hmac-sha256-128"),
    ("esp", "3des-cbc", "hmac-sha1-96"), ("esp", "null", "hmac-sha256-128"),
    ("ah", "null", "hmac-sha256-128"),
]
IDS = [f"{p}-{c}" + (f"-{a}" if a else "") for p, c, a in ALGORITHMS]


def sizes_of(size) -> list[int]:
    if size == "imix":
        return [IMIX[i % len(IMIX)] for i in range(BURST)]
    return [size] * BURST


def inner_ipv4_udp(size: int, ident: int) -> bytes:
    """An IPv4/UDP packet of `size` bytes (40-byte IMIX packets: 28 bytes of headers)."""
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, size, ident, 0, 64, 17, 0,
                                bytes([10, 1, 0, 1]), bytes([10, 2, 0, 1])))
    s = sum(struct.unpack("!10H", bytes(hdr)))
    s = (s & 0xFFFF) + (s >> 16)
    struct.pack_into("!H", hdr, 10, ~s & 0xFFFF)
    return bytes(hdr) + struct.pack("!HHHH", 1024, 5001, size - 20, 0) + bytes(size - 28)


def make_spec(protocol: str, cipher: str, integrity) -> SaSpec:
    def km(label, n):
        return (hashlib.sha256(label.encode()).digest() * 3)[:n]
    return SaSpec(spi=0x1000, protocol=protocol, cipher=cipher,
                  key=km(cipher, CIPHER_KEY_MATERIAL[cipher]), integrity=integrity,
                  integrity_key=km(str(integrity), INTEGRITY_ALGORITHMS[integrity][0])
                  if integrity else b"", tunnel_src=TUNNEL[0], tunnel_dst=TUNNEL[1],
                  replay_window=1024)


class Workload:
    """One outbound and one inbound SA on a CpuEngine and a burst of 32 inner packets."""

    def __init__(self, spec: SaSpec, size) -> None:
        self.cpu = CpuEngine()
        self.out = self.cpu.add_outbound(spec)
        self.inb = self.cpu.add_inbound(spec)
        self.inner = [inner_ipv4_udp(n, i) for i, n in enumerate(sizes_of(size))]
        self.burst = Burst.from_packets(self.inner, self.out)
        self.pristine = self.burst.copy()
        self.bytes = sum(len(p) for p in self.inner)

    def restore(self) -> None:
        self.burst.restore_from(self.pristine)

    def encrypt(self) -> int:
        return self.cpu.encrypt_burst(self.burst)

    def restore_and_encrypt(self) -> None:
        self.restore()
        self.encrypt()

    def decrypt(self) -> int:
        return self.cpu.decrypt_burst(self.burst)


def _median_ns(fn, setup, rounds: int) -> float:
    samples = []
    for k in range(rounds + 3):
        setup()
        t0 = time.perf_counter_ns()
        fn()
        t1 = time.perf_counter_ns()
        if k >= 3:
            samples.append(t1 - t0)
    return statistics.median(samples)


@pytest.mark.parametrize("size", SIZES, ids=[str(s) for s in SIZES])
@pytest.mark.parametrize("protocol,cipher,integrity", ALGORITHMS, ids=IDS)
def test_cpu_encrypt(benchmark, protocol, cipher, integrity, size):
    w = Workload(make_spec(protocol, cipher, integrity), size)
    result = benchmark.pedantic(w.encrypt, setup=w.restore, rounds=ROUNDS, iterations=1,
                                warmup_rounds=2)
    assert result == BURST
    if benchmark.stats is None:  # --benchmark-disable: a smoke run
        return
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(pps=BURST / median, mbps=w.bytes * 8 / median / 1e6,
                                direction="encrypt", cipher=cipher, size=size)


@pytest.mark.parametrize("size", SIZES, ids=[str(s) for s in SIZES])
@pytest.mark.parametrize("protocol,cipher,integrity", ALGORITHMS, ids=IDS)
def test_cpu_decrypt(benchmark, protocol, cipher, integrity, size):
    w = Workload(make_spec(protocol, cipher, integrity), size)
    result = benchmark.pedantic(w.decrypt, setup=w.restore_and_encrypt, rounds=ROUNDS,
                                iterations=1, warmup_rounds=2)
    assert result == BURST
    assert w.burst.packets() == w.inner
    if benchmark.stats is None:  # --benchmark-disable: a smoke run
        return
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(pps=BURST / median, mbps=w.bytes * 8 / median / 1e6,
                                direction="decrypt", cipher=cipher, size=size)


@pytest.mark.parametrize("size", SIZES, ids=[str(s) for s in SIZES])
@pytest.mark.parametrize("bits", [128, 256])
def test_naive_aesgcm_loop(benchmark, bits, size):
    """The naive loop alone (the reference figure)."""
    spec = make_spec("esp", f"aes-gcm-{bits}", None)
    naive = NaiveEsp(spec)
    inner = [inner_ipv4_udp(n, i) for i, n in enumerate(sizes_of(size))]

    def run() -> list[bytes]:
        enc = naive.encrypt
        return [enc(p) for p in inner]

    out = benchmark.pedantic(run, rounds=ROUNDS, iterations=1, warmup_rounds=2)
    # the naive loop builds exactly the CpuEngine's packets
    w = Workload(spec, size)
    w.cpu.set_sequence(w.out, naive.seq - BURST)
    w.encrypt()
    assert w.burst.packets() == out
    if benchmark.stats is not None:
        benchmark.extra_info.update(pps=BURST / benchmark.stats.stats.median,
                                    cipher=spec.cipher, size=size)


@pytest.mark.parametrize("size", SIZES, ids=[str(s) for s in SIZES])
@pytest.mark.parametrize("bits", [128, 256])
def test_cpu_gcm_vs_naive(benchmark, bits, size):
    """CpuEngine AES-GCM encrypt against the naive loop, timed alternately in this test so the
    ratio is not skewed by load that comes and goes; target ratio >= 0.8."""
    spec = make_spec("esp", f"aes-gcm-{bits}", None)
    w = Workload(spec, size)
    naive = NaiveEsp(spec)
    enc = naive.encrypt

    def naive_run() -> None:
        for p in w.inner:
            enc(p)

    cpu_ns, naive_ns = [], []
    for _ in range(5):
        cpu_ns.append(_median_ns(w.encrypt, w.restore, ROUNDS))
        naive_ns.append(_median_ns(naive_run, lambda: None, ROUNDS))
    result = benchmark.pedantic(w.encrypt, setup=w.restore, rounds=ROUNDS, iterations=1)
    assert result == BURST
    cpu_pps = BURST / (statistics.median(cpu_ns) * 1e-9)
    naive_pps = BURST / (statistics.median(naive_ns) * 1e-9)
    benchmark.extra_info.update(cpu_pps=cpu_pps, naive_pps=naive_pps,
                                ratio=cpu_pps / naive_pps, target=0.8, cipher=spec.cipher,
                                size=size)

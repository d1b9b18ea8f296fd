"""Throughput of the PFE's ESP kernels against the crypto limit and naive references, on every
crypto backend built here (openssl, ipsec-mb).

Sizes 64/512/1400 B and IMIX (7:4:1 of 40/576/1500), bursts of 32 and 256, AES-GCM-128/-256,
encrypt and decrypt. Each PFE and CPU-engine figure is measured against the raw-crypto loop of
its backend (`RawBursts`: the same AES-GCM calls with no ESP work, a tight C loop timed in C)
in interleaved windows by `measure_figure`, as `inline-ipsec bench` does; its ratio goes to
`extra_info`. Besides: the raw loop alone, a naive per-packet loop with `cryptography`'s
AESGCM building the same packets, scapy's ESP, and two PFEs in two threads against one."""
from __future__ import annotations

import threading

import pytest

from inline_ipsec.benchmark import (
    IMIX,
    WINDOW_BURSTS,
    EngineBursts,
    NaiveEsp,
    PfeWorkload,
    RawReference,
    gcm_spec,
    inner_ipv4_udp,
    packet_sizes,
)
from inline_ipsec.perf.suite import make_figure, measure_figure
from inline_ipsec.pfe import PFE_BACKENDS

SIZES = [64, 512, 1400, IMIX]
BURSTS = [32, 256]
BITS = [128, 256]
DIRECTIONS = ["encrypt", "decrypt"]
ROUNDS = 100
DURATION = 0.25    # seconds of interleaved windows per ratio


def ids(bits, size, burst):
    return f"gcm{bits}-{size}-b{burst}"


MATRIX = [(be, d, b, s, n) for be in PFE_BACKENDS for d in DIRECTIONS for b in BITS
          for s in SIZES for n in BURSTS]
MATRIX_IDS = [f"{be}-{d}-{ids(b, s, n)}" for be, d, b, s, n in MATRIX]


@pytest.mark.parametrize("backend,direction,bits,size,burst", MATRIX, ids=MATRIX_IDS)
def test_raw_crypto_loop(benchmark, figure_recorder, backend, direction, bits, size, burst):
    """The raw loop alone; its packets/s is timed inside C, pytest-benchmark's adds the
    Python call."""
    w = RawReference(bits, size, burst, encrypt=direction == "encrypt", backend=backend,
                     bursts=WINDOW_BURSTS["pfe"])
    samples = []

    def window() -> None:
        samples.append(w.window_ns())

    benchmark.pedantic(window, rounds=ROUNDS, warmup_rounds=5)
    assert w.loop.verified == w.packets_per_pass   # every call succeeded (every tag verified)
    figure_recorder(benchmark, make_figure("raw", backend, bits, direction, size, burst,
                                           samples, w.inner_bytes))


def _engine_benchmark(benchmark, figure_recorder, path, backend, direction, bits, size,
                      burst) -> None:
    # --benchmark-disable (a smoke run): the fewest windows measure_figure allows
    duration = 0.0 if benchmark.disabled else DURATION
    raw, fig = measure_figure(path, backend, bits, direction, size, burst, duration)
    assert fig.ratio is not None and fig.ratio_low <= fig.ratio <= fig.ratio_high
    w = EngineBursts(path, backend, bits, size, burst, bursts=WINDOW_BURSTS[path])
    benchmark.pedantic(lambda: w.window_ns(direction), setup=lambda: w.prepare(direction),
                       rounds=ROUNDS if path == "pfe" else 20, warmup_rounds=3)
    figure_recorder(benchmark, fig)


@pytest.mark.parametrize("backend,direction,bits,size,burst", MATRIX, ids=MATRIX_IDS)
def test_pfe(benchmark, figure_recorder, backend, direction, bits, size, burst):
    _engine_benchmark(benchmark, figure_recorder, "pfe", backend, direction, bits, size, burst)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("size", [64, 1400])
def test_cpu_engine(benchmark, figure_recorder, direction, size):
    """The CPU engine on the same AES-GCM workload (the PFE's target: >= 3x at 64 B)."""
    _engine_benchmark(benchmark, figure_recorder, "cpu", "openssl", direction, 128, size, 32)


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("size", SIZES)
def test_naive_cryptography_loop(benchmark, recorder, bits, size):
    naive = NaiveEsp(gcm_spec(bits))
    inner = [inner_ipv4_udp(n, i) for i, n in enumerate(packet_sizes(size, 32))]

    def run():
        enc = naive.encrypt
        for p in inner:
            enc(p)

    benchmark.pedantic(run, rounds=40, warmup_rounds=2)
    recorder(benchmark, ("naive", "encrypt", bits, size, 32), 32)


@pytest.mark.parametrize("size", [64, 1400])
def test_scapy_esp(benchmark, recorder, size):
    from scapy.layers.inet import IP
    from scapy.layers.ipsec import ESP, SecurityAssociation
    spec = gcm_spec(128)
    sa = SecurityAssociation(ESP, spi=spec.spi, crypt_algo="AES-GCM", crypt_key=spec.key,
                             auth_algo="NULL",
                             tunnel_header=IP(src=spec.tunnel_src, dst=spec.tunnel_dst))
    inner = [IP(inner_ipv4_udp(n, i)) for i, n in enumerate(packet_sizes(size, 32))]

    def run():
        for p in inner:
            sa.encrypt(p)

    benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    recorder(benchmark, ("scapy", "encrypt", 128, size, 32), 32)


@pytest.mark.parametrize("backend", PFE_BACKENDS)
@pytest.mark.parametrize("threads", [1, 2])
def test_pfe_threads(benchmark, recorder, threads, backend):
    """N PFEs in N threads, each encrypting then decrypting its own bursts of 32 (the GIL is
    released for each whole burst and held only between them)."""
    workloads = [PfeWorkload(128, 64, 32, backend=backend) for _ in range(threads)]
    loops = 1600

    def work(w):
        burst, out = w.burst, w.out
        fill = burst.sa.fill
        encrypt, decrypt = w.pfe.encrypt_burst, w.pfe.decrypt_burst
        for _ in range(loops):
            fill(out)
            encrypt(burst)
            decrypt(burst)

    def run():
        pool = [threading.Thread(target=work, args=(w,)) for w in workloads]
        for t in pool:
            t.start()
        for t in pool:
            t.join()

    benchmark.pedantic(run, rounds=7, warmup_rounds=1)
    assert all((w.burst.status[:32] == 0).all() for w in workloads)
    recorder(benchmark, ("threads", "both", 128, 64, threads, backend),
             threads * loops * 32 * 2)

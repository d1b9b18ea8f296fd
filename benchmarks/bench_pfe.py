"""Throughput of the PFE's ESP kernels against the crypto limit and naive references, on every
crypto backend built here (openssl, ipsec-mb).

Sizes 64/512/1400 B and IMIX (7:4:1 of 40/576/1500), bursts of 32 and 256, AES-GCM-128/-256,
encrypt and decrypt; in the same run: (a) the raw OpenSSL loop (`RawGcm`, the same calls with no
ESP work), (b) a naive per-packet loop with `cryptography`'s AESGCM building the same packets,
(c) scapy's ESP, and two PFEs in two threads against one."""
from __future__ import annotations

import threading

import pytest

from inline_ipsec.benchmark import (
    IMIX,
    NaiveEsp,
    PfeWorkload,
    RawWorkload,
    gcm_spec,
    inner_ipv4_udp,
    packet_sizes,
)
from inline_ipsec.pfe import PFE_BACKENDS

SIZES = [64, 512, 1400, IMIX]
BURSTS = [32, 256]
BITS = [128, 256]
DIRECTIONS = ["encrypt", "decrypt"]
ROUNDS = 300


def ids(bits, size, burst):
    return f"gcm{bits}-{size}-b{burst}"


MATRIX = [(be, d, b, s, n) for be in PFE_BACKENDS for d in DIRECTIONS for b in BITS
          for s in SIZES for n in BURSTS]
MATRIX_IDS = [f"{be}-{d}-{ids(b, s, n)}" for be, d, b, s, n in MATRIX]


@pytest.mark.parametrize("backend,direction,bits,size,burst", MATRIX, ids=MATRIX_IDS)
def test_raw_crypto_loop(benchmark, recorder, backend, direction, bits, size, burst):
    w = RawWorkload(bits, size, burst, encrypt=direction == "encrypt", backend=backend)
    benchmark.pedantic(w.run, setup=w.prepare, rounds=ROUNDS, warmup_rounds=5)
    w.prepare()
    assert w.run() == burst
    recorder(benchmark, ("raw", direction, bits, size, burst, backend), burst, backend)


@pytest.mark.parametrize("backend,direction,bits,size,burst", MATRIX, ids=MATRIX_IDS)
def test_pfe(benchmark, recorder, backend, direction, bits, size, burst):
    w = PfeWorkload(bits, size, burst, backend=backend)
    if direction == "encrypt":
        benchmark.pedantic(w.encrypt, setup=w.restore, rounds=ROUNDS, warmup_rounds=5)
    else:
        benchmark.pedantic(w.decrypt, setup=w.restore_and_encrypt, rounds=ROUNDS,
                           warmup_rounds=5)
    assert (w.burst.status[:burst] == 0).all()
    recorder(benchmark, ("pfe", direction, bits, size, burst, backend), burst, backend)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("size", [64, 1400])
def test_cpu_engine(benchmark, recorder, direction, size):
    """The CPU engine on the same AES-GCM workload (the PFE's target: >= 3x at 64 B)."""
    w = PfeWorkload(128, size, 32, path="cpu")
    if direction == "encrypt":
        benchmark.pedantic(w.encrypt, setup=w.restore, rounds=60, warmup_rounds=3)
    else:
        benchmark.pedantic(w.decrypt, setup=w.restore_and_encrypt, rounds=60, warmup_rounds=3)
    assert (w.burst.status[:32] == 0).all()
    recorder(benchmark, ("cpu", direction, 128, size, 32, "openssl"), 32, "openssl")


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
    """N PFEs in N threads, each encrypting then decrypting its own 1024-packet bursts."""
    workloads = [PfeWorkload(128, 64, 1024, backend=backend) for _ in range(threads)]
    loops = 50

    def work(w):
        sa = w.burst.sa
        for _ in range(loops):
            sa.fill(w.out)
            w.encrypt()
            w.decrypt()

    def run():
        pool = [threading.Thread(target=work, args=(w,)) for w in workloads]
        for t in pool:
            t.start()
        for t in pool:
            t.join()

    benchmark.pedantic(run, rounds=7, warmup_rounds=1)
    assert all((w.burst.status[:1024] == 0).all() for w in workloads)
    recorder(benchmark, ("threads", "both", 128, 64, threads, backend),
             threads * loops * 1024 * 2, backend)

"""Throughput workloads of the ESP fast path, and the references they are measured against.

Absolute packets per second depend on the machine and on whatever else it is running, so every
figure comes with a reference measured in the same run, on the same packets:
  raw      the crypto limit of the backend: the AES-GCM calls the PFE makes per packet, with no
           ESP work, in a tight C loop timed inside C (`RawReference`, over
           `_pfe_core.calibrate.RawBursts`, re-exported by `inline_ipsec.pfe`);
  naive    a per-packet Python loop with `cryptography`'s AESGCM building the same ESP packets;
  scapy    scapy's ESP (`SecurityAssociation.encrypt`), when scapy is installed.
`EngineBursts` and `RawReference` are the two sides of every ratio (`perf.measure` times them
in interleaved windows); `PfeWorkload`/`RawWorkload` are the single-burst forms the tests and
the thread figures use. `idle_burst` (a burst call with no work, `_pfe_core.calibrate`) is
re-exported for the thread figures' GIL floor (`dataplane.bench.idle_scaling`).

INLINE_IPSEC_BENCH_SLOWDOWN=N (a whole number, default 1) makes every timed PFE burst call
process N identical bursts, each on its own SA pair: the PFE's work, and nothing else, done N
times. It exists to show that the regression gate catches a real slowdown
(docs/performance.md); it changes no product behaviour.
"""
from __future__ import annotations

import os
import platform
import statistics
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .packet.burst import DEFAULT_HEADROOM, Burst
from .pfe import (OPENSSL_VERSION, PFE_BACKENDS, Pfe, RawBursts, RawGcm, core_round_trip_ns,
                  idle_burst, ipsec_mb_status)
from .sa import SaSpec

IMIX = "imix"
#: Simple IMIX, 7:4:1 of 40/576/1500-byte packets.
IMIX_PATTERN = (40,) * 7 + (576,) * 4 + (1500,)
TUNNEL = ("192.0.2.1", "198.51.100.1")


def packet_sizes(size: int | str, count: int) -> list[int]:
    """`count` inner packet sizes: all `size`, or the IMIX pattern repeated."""
    if size == IMIX:
        return [IMIX_PATTERN[i % len(IMIX_PATTERN)] for i in range(count)]
    return [int(size)] * count


def _ipv4_checksum(header: bytes) -> bytes:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return struct.pack("!H", ~total & 0xFFFF)


def inner_ipv4_udp(size: int, ident: int = 0) -> bytes:
    """An IPv4/UDP packet of exactly `size` bytes (at least 28), checksum filled in."""
    if size < 28:
        raise ValueError("an IPv4/UDP packet is at least 28 bytes")
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, size, ident & 0xFFFF, 0, 64, 17, 0,
                         bytes([10, 1, 0, 1]), bytes([10, 2, 0, 1]))
    header = header[:10] + _ipv4_checksum(header) + header[12:]
    udp = struct.pack("!HHHH", 1024, 5001, size - 20, 0)
    return header + udp + bytes((i & 0xFF for i in range(size - 28)))


def inner_ipv6_udp(size: int, ident: int = 0) -> bytes:
    """An IPv6/UDP packet of exactly `size` bytes (at least 48), UDP checksum filled in
    (mandatory over IPv6, RFC 8200 §8.1)."""
    if size < 48:
        raise ValueError("an IPv6/UDP packet is at least 48 bytes")
    src = bytes.fromhex("20010db8000100000000000000000001")
    dst = bytes.fromhex("20010db8000200000000000000000001")
    payload = bytes(((i + ident) & 0xFF for i in range(size - 48)))
    udp = struct.pack("!HHHH", 1024, 5001, size - 40, 0) + payload
    pseudo = src + dst + struct.pack("!IxxxB", size - 40, 17)
    data = pseudo + udp + (b"\0" if len(udp) % 2 else b"")
    checksum = _ipv4_checksum(data)
    if checksum == b"\0\0":
        checksum = b"\xff\xff"
    udp = udp[:6] + checksum + udp[8:]
    return struct.pack("!IHBB", 0x60000000, size - 40, 17, 64) + src + dst + udp


def gcm_spec(bits: int = 128, spi: int = 0x1000, **kw) -> SaSpec:
    key = bytes((spi + 7 * i) & 0xFF for i in range(bits // 8 + 4))
    return SaSpec(spi=spi, cipher=f"aes-gcm-{bits}", key=key, tunnel_src=TUNNEL[0],
                  tunnel_dst=TUNNEL[1], **kw)


def esp_plain_len(size: int) -> int:
    """Bytes of ESP payload + trailer for an inner packet (RFC 4303 4-byte alignment)."""
    return size + 2 + (-(size + 2)) % 4


class NaiveEsp:
    """The naive per-packet reference: Python builds each ESP packet with `cryptography`'s
    AESGCM, exactly the bytes the PFE emits for the same SA (docs/wire-format.md)."""

    def __init__(self, spec: SaSpec) -> None:
        self.aead = AESGCM(spec.key[:-4])
        self.salt = spec.key[-4:]
        self.spi = spec.spi
        self.seq = 0
        self.ttl = spec.ttl
        self.src = bytes(int(x) for x in spec.tunnel_src.split("."))
        self.dst = bytes(int(x) for x in spec.tunnel_dst.split("."))

    def encrypt(self, inner: bytes) -> bytes:
        self.seq += 1
        seq = self.seq
        pad = (-(len(inner) + 2)) % 4
        plain = inner + bytes(range(1, pad + 1)) + bytes((pad, 4))
        iv = struct.pack("!Q", seq)
        esp = struct.pack("!II", self.spi, seq & 0xFFFFFFFF)
        sealed = self.aead.encrypt(self.salt + iv, plain, esp)
        header = struct.pack("!BBHHHBBH4s4s", 0x45, inner[1], 36 + len(sealed), seq & 0xFFFF,
                             0, self.ttl, 50, 0, self.src, self.dst)
        return header[:10] + _ipv4_checksum(header) + header[12:] + esp + iv + sealed


@dataclass
class Measurement:
    """Median time of one burst and what it means in packets and bits per second."""

    path: str
    direction: str
    cipher: str
    size: int | str
    burst: int
    median_ns: float
    rounds: int
    packets: int
    bytes: int
    extra: dict = field(default_factory=dict)

    @property
    def pps(self) -> float:
        return self.packets / (self.median_ns * 1e-9)

    @property
    def gbps(self) -> float:
        return self.bytes * 8 / self.median_ns

    def as_dict(self) -> dict:
        return {"path": self.path, "direction": self.direction, "cipher": self.cipher,
                "size": self.size, "burst": self.burst, "median_ns": self.median_ns,
                "rounds": self.rounds, "pps": self.pps, "gbps": self.gbps, **self.extra}


def _median_ns(timed: Callable[[], object], setup: Callable[[], object], rounds: int,
               warmup: int = 3) -> float:
    samples = []
    for i in range(rounds + warmup):
        setup()
        t0 = time.perf_counter_ns()
        timed()
        t1 = time.perf_counter_ns()
        if i >= warmup:
            samples.append(t1 - t0)
    return float(statistics.median(samples))


def make_engine(path: str, backend: str = "openssl", name: str = "bench") -> Any:
    """A PFE on `backend` ("pfe") or the CPU engine ("cpu")."""
    if path == "pfe":
        return Pfe(name, backend=backend)
    if path == "cpu":
        from .cpu import CpuEngine
        return CpuEngine(name)
    raise ValueError(f"unknown path {path!r}: expected 'pfe' or 'cpu'")


class PfeWorkload:
    """One SA on one engine (the PFE by default) and a burst of inner packets; encrypt or
    decrypt it repeatedly."""

    def __init__(self, bits: int = 128, size: int | str = 64, burst: int = 32,
                 replay_window: int = 1024, backend: str = "openssl", path: str = "pfe",
                 name: str = "bench") -> None:
        self.bits, self.size, self.burst_size = bits, size, burst
        self.spec = gcm_spec(bits, replay_window=replay_window)
        self.pfe = make_engine(path, backend, name)
        self.out = self.pfe.add_outbound(self.spec)
        self.inb = self.pfe.add_inbound(self.spec)
        self.sizes = packet_sizes(size, burst)
        self.inner = [inner_ipv4_udp(n, i) for i, n in enumerate(self.sizes)]
        self.burst = Burst.from_packets(self.inner, self.out)
        self.pristine = self.burst.copy()
        self.inner_bytes = sum(self.sizes)

    def restore(self) -> None:
        self.burst.restore_from(self.pristine)

    def encrypt(self) -> int:
        return self.pfe.encrypt_burst(self.burst)

    def decrypt(self) -> int:
        return self.pfe.decrypt_burst(self.burst)

    def restore_and_encrypt(self) -> None:
        self.restore()
        self.encrypt()


class RawWorkload:
    """The crypto limit: the PFE's OpenSSL calls over the same lengths, nothing else.

    For decryption the burst is sealed first (untimed) with the same nonces, so every open
    verifies its tag, as the PFE's do."""

    def __init__(self, bits: int = 128, size: int | str = 64, burst: int = 32,
                 encrypt: bool = True, backend: str = "openssl") -> None:
        sizes = packet_sizes(size, burst)
        self.burst = Burst(burst)
        self.burst.count = burst
        self.burst.length[:] = [esp_plain_len(n) for n in sizes]
        self.burst.offset[:] = DEFAULT_HEADROOM
        key = gcm_spec(bits).key[:-4]
        self.seal = RawGcm(key, True, backend)
        self.gcm = self.seal if encrypt else RawGcm(key, False, backend)
        self.inner_bytes = sum(sizes)

    def prepare(self) -> None:
        """Before an open: seal the burst with the nonces the open will use."""
        if self.gcm is not self.seal:
            self.seal.counter = self.gcm.counter
            self._run(self.seal)

    def run(self) -> int:
        return self._run(self.gcm)

    def _run(self, gcm: RawGcm) -> int:
        b = self.burst
        return gcm.run(b.data, b.offset, b.length, b.count)


def clock_reads_ns() -> int:
    """What a window's two `perf_counter_ns` reads cost inside the interval they time: the
    least of three empty windows timed the same way (an interrupt only lengthens one). Every
    Python-timed window takes it off, as the C-timed ones (the raw loops, the kernel alone)
    take off their own clock reads, so that no side of a ratio carries its timer."""
    least = -1
    for _ in range(3):
        t0 = time.perf_counter_ns()
        empty = time.perf_counter_ns() - t0
        if least < 0 or empty < least:
            least = empty
    return least


def untimed(elapsed_ns: int) -> int:
    """`elapsed_ns` of a Python-timed window less its clock reads (`clock_reads_ns`)."""
    clock = clock_reads_ns()
    return elapsed_ns - clock if elapsed_ns > clock else elapsed_ns


#: Bursts per measurement window, PFE and CPU engine (the raw reference uses the same): few
#: enough that the engine's bursts and their clear-text copies stay in a core's cache.
WINDOW_BURSTS = {"pfe": 4, "cpu": 2}
SLOWDOWN_ENV = "INLINE_IPSEC_BENCH_SLOWDOWN"


def slowdown() -> int:
    """The INLINE_IPSEC_BENCH_SLOWDOWN factor (module docstring); 1 when unset."""
    text = os.environ.get(SLOWDOWN_ENV, "1")
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{SLOWDOWN_ENV}={text!r}: expected a whole number >= 1") from None
    if value < 1:
        raise ValueError(f"{SLOWDOWN_ENV}={text!r}: expected a whole number >= 1")
    return value


def esp_payload(inner: bytes) -> bytes:
    """What the PFE encrypts for an inner packet: the packet, padding 1, 2, 3 ... to 4-byte
    alignment, the pad length and next header 4 (IPv4), RFC 4303 §2.4-2.6."""
    pad = (-(len(inner) + 2)) % 4
    return inner + bytes(range(1, pad + 1)) + bytes((pad, 4))


class RawReference:
    """The raw side of a ratio: `RawBursts` (a tight C loop timed in C) over `bursts` bursts of
    the same packets the engine gets, as ESP payload (the very bytes the PFE encrypts)."""

    def __init__(self, bits: int = 128, size: int | str = 64, burst: int = 32,
                 encrypt: bool = True, backend: str = "openssl", bursts: int = 4) -> None:
        spec = gcm_spec(bits)
        sizes = packet_sizes(size, burst)
        payloads = [esp_payload(inner_ipv4_udp(n, i)) for i, n in enumerate(sizes)]
        self.bursts = [Burst.from_packets(payloads) for _ in range(bursts)]
        self.loop = RawBursts(spec.key[:-4], spec.key[-4:], encrypt, backend, self.bursts)
        self.packets_per_pass = self.loop.packets
        self.burst_size = burst
        self.inner_bytes = sum(sizes)    # per burst

    def window_ns(self, rounds: int = 1) -> float:
        """Nanoseconds per burst over `rounds` passes of every burst, timed inside C, after
        one untimed pass (the engine's window, too, starts on bursts its preparation has just
        touched)."""
        self.loop.time_ns(1)
        elapsed = self.loop.time_ns(rounds)
        if self.loop.verified != rounds * self.packets_per_pass:
            raise RuntimeError(f"raw {self.loop.backend} loop: {self.loop.verified} of "
                               f"{rounds * self.packets_per_pass} calls succeeded")
        return elapsed / (rounds * len(self.bursts))


#: The most tunnels a benchmark interleaves in its bursts (two SAs each, the PFE's table
#: holding 4,000 SAs).
MAX_BENCH_TUNNELS = 1024


def check_tunnels(tunnels: int) -> None:
    """ValueError unless a benchmark can interleave `tunnels` SA pairs (1..MAX_BENCH_TUNNELS)."""
    if not 1 <= tunnels <= MAX_BENCH_TUNNELS:
        raise ValueError(f"tunnels must be 1..{MAX_BENCH_TUNNELS}")


class EngineBursts:
    """The engine side of a ratio: one engine (the PFE on a backend, or the CPU engine), one SA
    pair and `bursts` bursts of inner packets; `window_ns` times one call per burst, in Python,
    as a user of the burst API makes them. With `tunnels` > 1 the packets of each burst belong
    to that many SA pairs in turn (packet i to pair i mod `tunnels`): tunnels interleaved, as
    a gateway carrying many sees them. With INLINE_IPSEC_BENCH_SLOWDOWN=N each PFE call is
    followed by N-1 calls on twin bursts of twin SA pairs."""

    def __init__(self, path: str = "pfe", backend: str = "openssl", bits: int = 128,
                 size: int | str = 64, burst: int = 32, bursts: int = 4,
                 repeat: Optional[int] = None, tunnels: int = 1) -> None:
        check_tunnels(tunnels)
        self.path, self.burst_size, self.tunnels = path, burst, tunnels
        self.repeat = (slowdown() if path == "pfe" else 1) if repeat is None else repeat
        self.engine = make_engine(path, backend)
        sizes = packet_sizes(size, burst)
        self.inner = [inner_ipv4_udp(n, i) for i, n in enumerate(sizes)]
        self.inner_bytes = sum(sizes)    # per burst
        # replicas[k][r]: burst k of SA pairs r (r > 0 only with a slowdown)
        self.replicas: list[list[Burst]] = [[] for _ in range(bursts)]
        self.pristine: list[list[Burst]] = [[] for _ in range(bursts)]
        self.outbound: list[int] = []    # SA handles, `tunnels` pairs per repeat
        self.inbound: list[int] = []
        for r in range(self.repeat):
            outs = []
            for t in range(tunnels):
                spec = gcm_spec(bits, spi=0x1000 + r * MAX_BENCH_TUNNELS + t,
                                replay_window=1024)
                outs.append(self.engine.add_outbound(spec))
                self.inbound.append(self.engine.add_inbound(spec))
            self.outbound.extend(outs)
            handles = [outs[i % tunnels] for i in range(len(self.inner))]
            for k in range(bursts):
                b = Burst.from_packets(self.inner, handles)
                self.replicas[k].append(b)
                self.pristine[k].append(b.copy())
        self.calls = [b for group in self.replicas for b in group]

    def prepare(self, direction: str) -> None:
        """Untimed: clear text back in every burst, and for a decrypt window, encrypted."""
        for group, clean in zip(self.replicas, self.pristine):
            for b, c in zip(group, clean):
                b.restore_packets_from(c)
                if direction == "decrypt":
                    self.engine.encrypt_burst(b)
        if direction == "decrypt":
            self._check("encrypt (preparing a decrypt window)")

    def window_ns(self, direction: str) -> float:
        """Nanoseconds per burst (of the first SA pair) to encrypt or decrypt every burst:
        the calls a user's loop makes, without the window's own clock reads (`untimed`)."""
        run = self.engine.encrypt_burst if direction == "encrypt" else \
            self.engine.decrypt_burst
        calls = self.calls
        t0 = time.perf_counter_ns()
        for b in calls:
            run(b)
        elapsed = time.perf_counter_ns() - t0
        self._check(direction)
        return untimed(elapsed) / len(self.replicas)

    def _check(self, what: str) -> None:
        for b in self.calls:
            if b.status[:b.count].any():
                raise RuntimeError(f"{self.path} {what} dropped benchmark packets: statuses "
                                   f"{sorted(set(b.status[:b.count].tolist()))}")


def measure_naive(bits: int, size: int | str, burst: int, rounds: int) -> Measurement:
    spec = gcm_spec(bits)
    naive = NaiveEsp(spec)
    inner = [inner_ipv4_udp(n, i) for i, n in enumerate(packet_sizes(size, burst))]

    def run() -> None:
        enc = naive.encrypt
        for p in inner:
            enc(p)

    median = _median_ns(run, lambda: None, rounds)
    return Measurement("naive", "encrypt", f"aes-gcm-{bits}", size, burst, median, rounds,
                       burst, sum(len(p) for p in inner))


def machine() -> dict:
    """What the figures were measured on."""
    import os

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import cryptography
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "openssl": OPENSSL_VERSION,
            "ipsec_mb": ipsec_mb_status()[1] if "ipsec-mb" in PFE_BACKENDS else None,
            "backends": list(PFE_BACKENDS), "numpy": np.__version__,
            "cryptography": cryptography.__version__, "platform": platform.platform()}

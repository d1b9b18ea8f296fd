"""Workloads of the forwarding pipeline's figures: two gateways end to end against the bare
PFE, and the pipeline in one thread against two.

  - `GatewayPairWorkload`: gateway a routes and encrypts a burst (`outbound_burst`), gateway b
    takes the very same burst buffer (`inbound_burst(select=WIRE)`): demux, SPI lookup,
    decrypt, selector check, route of the inner packet. One AES-GCM tunnel (offloaded) with
    traffic selectors, so every step of both directions is on the path.
  - `BarePfeWorkload`: the same packets, the same cipher, one PFE: `encrypt_burst` then
    `decrypt_burst` on the same burst. Nothing but the ESP kernels.

Both keep `bursts` bursts and their pristine copies; a window restores them (untimed) and times
one pass over all of them, so both sides of a ratio pay the same per-burst Python call cost.
Only the burst calls are timed: whether every packet arrived is checked after the clock stops
(`delivered`), as a forwarder hands its DELIVER slots on in C without looking at them from
Python (checking them with numpy inside the window cost 15-25 ns per packet at 64 B).
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Optional

from ..benchmark import untimed
from ..config import License
from ..io.traffic import udp_packet
from ..packet.burst import Burst
from ..pfe import Pfe, Verdict
from ..sa import SaSpec
from .gateway import Gateway

__all__ = ["GatewayPairWorkload", "BarePfeWorkload", "paired_ratio", "thread_scaling",
           "idle_scaling", "idle_call_ns", "raw_scaling", "measure_pipeline"]

_A, _B = "192.0.2.1", "198.51.100.1"
_WIRE = int(Verdict.WIRE)
_DELIVER = int(Verdict.DELIVER)


def _specs(bits: int) -> tuple[SaSpec, SaSpec]:
    """The two directions of one AES-GCM tunnel between _A and _B."""
    def one(spi: int, src: str, dst: str) -> SaSpec:
        key = bytes((spi + 7 * i) & 0xFF for i in range(bits // 8 + 4))
        return SaSpec(spi=spi, cipher=f"aes-gcm-{bits}", key=key, tunnel_src=src,
                      tunnel_dst=dst, replay_window=1024)
    return one(0x1000, _A, _B), one(0x2000, _B, _A)


def _packets(size: int, burst: int) -> list[bytes]:
    """`burst` IPv4/UDP packets of `size` bytes from 10.1.0.1 to 10.2.0.1."""
    if size < 28:
        raise ValueError("an IPv4/UDP packet is at least 28 bytes")
    return [udp_packet("10.1.0.1", "10.2.0.1", bytes([i & 0xFF]) * (size - 28), 1024, 5001)
            for i in range(burst)]


class GatewayPairWorkload:
    """Two gateways back to back over one offloaded tunnel (module docstring)."""

    def __init__(self, bits: int = 256, size: int = 64, burst: int = 32,
                 bursts: int = 4, backend: Optional[str] = None, name: str = "pair") -> None:
        ab, ba = _specs(bits)
        self.a = Gateway(name=f"{name}-a", license=License(), pfes=1, pfe_backend=backend)
        self.b = Gateway(name=f"{name}-b", license=License(), pfes=1, pfe_backend=backend)
        self.a.install_child_sa("t", ab, ba, local_ts=["10.1.0.0/16"],
                                remote_ts=["10.2.0.0/16"])
        self.b.install_child_sa("t", ba, ab, local_ts=["10.2.0.0/16"],
                                remote_ts=["10.1.0.0/16"])
        inner = _packets(int(size), burst)
        self.sizes = [len(p) for p in inner]
        self.bursts = [Burst.from_packets(inner) for _ in range(bursts)]
        self.pristine = [b.copy() for b in self.bursts]
        self.packets_per_pass = burst * bursts
        self.inner_bytes = sum(self.sizes) * bursts

    def restore(self) -> None:
        for b, clean in zip(self.bursts, self.pristine):
            b.restore_from(clean)

    def one_pass(self) -> None:
        """Every burst through a then b."""
        a_out, b_in = self.a.outbound_burst, self.b.inbound_burst
        for b in self.bursts:
            a_out(b)
            b_in(b, _WIRE)

    def delivered(self) -> int:
        """The packets the last pass delivered at b."""
        return sum(int((b.verdict[:b.count] == _DELIVER).sum()) for b in self.bursts)

    def window_ns(self, rounds: int = 1) -> float:
        """Nanoseconds per burst over `rounds` passes (each after an untimed restore)."""
        return _timed(self, rounds)


class BarePfeWorkload:
    """One PFE, one SA pair, the same packets: encrypt then decrypt each burst."""

    def __init__(self, bits: int = 256, size: int = 64, burst: int = 32,
                 bursts: int = 4, backend: Optional[str] = None, name: str = "bare") -> None:
        ab, _ = _specs(bits)
        self.pfe = Pfe(name, backend=backend)
        out = self.pfe.add_outbound(ab)
        self.pfe.add_inbound(ab)
        inner = _packets(int(size), burst)
        self.sizes = [len(p) for p in inner]
        self.bursts = [Burst.from_packets(inner, out) for _ in range(bursts)]
        self.pristine = [b.copy() for b in self.bursts]
        self.packets_per_pass = burst * bursts

    def restore(self) -> None:
        for b, clean in zip(self.bursts, self.pristine):
            b.restore_from(clean)

    def one_pass(self) -> None:
        """Every burst encrypted, then decrypted."""
        enc, dec = self.pfe.encrypt_burst, self.pfe.decrypt_burst
        for b in self.bursts:
            enc(b)
            dec(b)

    def delivered(self) -> int:
        """The packets the last pass decrypted (OK status)."""
        return sum(int((b.status[:b.count] == 0).sum()) for b in self.bursts)

    def window_ns(self, rounds: int = 1) -> float:
        """Nanoseconds per burst over `rounds` passes (each after an untimed restore)."""
        return _timed(self, rounds)


def _timed(w, rounds: int) -> float:
    total = 0
    for _ in range(rounds):
        w.restore()
        t0 = time.perf_counter_ns()
        w.one_pass()
        total += untimed(time.perf_counter_ns() - t0)
        if w.delivered() != w.packets_per_pass:
            raise RuntimeError(f"{type(w).__name__}: packets lost in a timed pass")
    return total / (rounds * len(w.bursts))


def paired_ratio(num: Callable[[], float], den: Callable[[], float], duration: float = 1.0,
                 min_pairs: int = 21) -> tuple[float, float, float, int]:
    """Interleaved windows of two workloads: (median of den/num per pair, median ns of num,
    median ns of den, pairs). A ratio of time per window `den / num` is the throughput ratio
    num/den (same packets per window on both sides)."""
    ratios, nums, dens = [], [], []
    t_end = time.perf_counter() + duration
    while len(ratios) < min_pairs or time.perf_counter() < t_end:
        n, d = num(), den()
        nums.append(n)
        dens.append(d)
        ratios.append(d / n)
    return _median(ratios), _median(nums), _median(dens), len(ratios)


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    k = len(s) // 2
    return s[k] if len(s) % 2 else (s[k - 1] + s[k]) / 2


def thread_scaling(threads: int, duration: float = 1.0, bits: int = 256, size: int = 64,
                   burst: int = 32, backend: Optional[str] = None) -> tuple[float, list[int]]:
    """Packets/s of `threads` gateway pairs, one per thread, each forwarding its own bursts
    through its two gateways (the pipeline releases the GIL for each burst). Returns
    (packets/s in all, packets per thread)."""
    loads = [GatewayPairWorkload(bits, size, burst, bursts=1, backend=backend, name=f"t{k}")
             for k in range(threads)]
    counts = [0] * threads
    barrier = threading.Barrier(threads + 1)
    running = [True]     # read per 16 round trips: cheaper than an Event between bursts

    def loop(k: int) -> None:
        w = loads[k]
        b = w.bursts[0]
        verdict = b.verdict
        a_out, b_in = w.a.outbound_burst, w.b.inbound_burst
        rounds = 0
        barrier.wait()
        while running[0]:
            # No restore: decapsulation leaves each inner packet where encapsulation found it
            # (same offset, same length), so the burst is ready for the next round trip.
            for _ in range(16):
                a_out(b)
                b_in(b, _WIRE)
            rounds += 16
        if not (verdict[:b.count] == _DELIVER).all():
            raise RuntimeError("a packet of the thread-scaling round trip was not delivered")
        counts[k] = rounds * b.count

    return _run_threads(loop, threads, barrier, running, duration, counts, "pipeline")


def idle_scaling(threads: int, call_ns: int, duration: float = 1.0,
                 burst: int = 32) -> tuple[float, list[int]]:
    """The GIL floor of `thread_scaling`: the same loop, each thread calling
    `calibrate.idle_burst(call_ns)` where a gateway pair calls `outbound_burst` and
    `inbound_burst`. An idle burst gives up the GIL as those do and stays in C for `call_ns`
    without touching memory, so with `call_ns` set to a gateway burst's length
    (`idle_call_ns`) this is the speed-up the GIL allows that loop and nothing else costs.
    Returns (round trips/s × `burst`, the same per thread), comparable to `thread_scaling`."""
    from ..benchmark import idle_burst
    counts = [0] * threads
    barrier = threading.Barrier(threads + 1)
    running = [True]

    def loop(k: int) -> None:
        idle, ns = idle_burst, call_ns
        rounds = 0
        barrier.wait()
        while running[0]:
            for _ in range(16):
                idle(ns)
                idle(ns)
            rounds += 16
        counts[k] = rounds * burst

    return _run_threads(loop, threads, barrier, running, duration, counts, "idle")


def idle_call_ns(single_pps: float, burst: int = 32, duration: float = 0.2) -> int:
    """How long each idle burst must stay in C for one thread of `idle_scaling` to run at
    `single_pps` (one thread's `thread_scaling` rate): half a round trip, less the loop's own
    time per call (measured with idle bursts of no length)."""
    if single_pps <= 0:
        raise ValueError("the one-thread rate must be positive")
    empty, _ = idle_scaling(1, 0, duration, burst)
    round_trip = burst * 1e9 / single_pps
    loop = burst * 1e9 / empty
    return max(0, round((round_trip - loop) / 2))


#: Passes over a raw reference's bursts per call of `raw_scaling` (each call some 50-100 µs
#: in C): long enough that the GIL, taken between calls, plays no part.
RAW_PASSES = 16


def raw_scaling(threads: int, duration: float = 1.0, backend: str = "openssl",
                size: int = 64, burst: int = 32, bits: int = 256) -> tuple[float, list[int]]:
    """The crypto library's own thread scaling: each thread runs the raw AES-GCM loops of the
    benchmark ratios (`benchmark.RawReference`: the PFE's seal and open calls, a tight C loop)
    on its own key and bursts, sealing then opening, each call `RAW_PASSES` passes with the GIL
    released. Nothing of the PFE or the pipeline runs, and no Python between bursts, so what
    keeps N threads from N times one is the library and the machine. Returns (seal+open pairs
    per second, the same per thread), comparable to `thread_scaling`'s packets/s."""
    from ..benchmark import RawReference
    pairs = [(RawReference(bits, size, burst, True, backend, bursts=4),
              RawReference(bits, size, burst, False, backend, bursts=4))
             for _ in range(threads)]
    for seal, open_ in pairs:
        seal.window_ns(1)
        open_.window_ns(1)
    counts = [0] * threads
    barrier = threading.Barrier(threads + 1)
    running = [True]

    def loop(k: int) -> None:
        seal, open_ = pairs[k][0].loop, pairs[k][1].loop
        per_call = RAW_PASSES * seal.packets
        done = 0
        barrier.wait()
        while running[0]:
            seal.time_ns(RAW_PASSES)
            open_.time_ns(RAW_PASSES)
            done += per_call
        counts[k] = done

    rate, per = _run_threads(loop, threads, barrier, running, duration, counts, "raw")
    for seal, open_ in pairs:
        if open_.loop.verified != RAW_PASSES * open_.loop.packets:
            raise RuntimeError(f"raw {backend} open loop: tags failed in the thread rounds")
    return rate, per


def _run_threads(loop: Callable[[int], None], threads: int, barrier: threading.Barrier,
                 running: list, duration: float, counts: list[int],
                 name: str) -> tuple[float, list[int]]:
    """Start `threads` threads on `loop`, let them run `duration` seconds after the barrier,
    stop them; (counts summed per second of wall clock, counts)."""
    pool = [threading.Thread(target=loop, args=(k,), name=f"{name}{k}")
            for k in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    time.sleep(duration)
    running[0] = False
    for t in pool:
        t.join()
    return sum(counts) / (time.perf_counter() - t0), counts


def measure_pipeline(backend: Optional[str], size: int = 64, burst: int = 32,
                     duration: float = 1.0, bits: int = 256):
    """Two gateways end to end against the bare PFE, in interleaved windows
    (`perf.measure.paired_windows`): returns (Paired, inner bytes per burst). Its ratios are
    pipeline packets/s over bare PFE (encrypt + decrypt) packets/s."""
    from ..perf.measure import paired_windows
    pair = GatewayPairWorkload(bits, size, burst, backend=backend)
    bare = BarePfeWorkload(bits, size, burst, backend=backend)
    pair.restore()
    pair.one_pass()
    if pair.delivered() != pair.packets_per_pass:
        raise RuntimeError("the end-to-end pipeline workload lost packets")
    paired = paired_windows(bare.window_ns, pair.window_ns, lambda: None, duration)
    return paired, sum(pair.sizes)

"""The benchmark matrix: paths × backends × ciphers × directions × sizes, one run.

Every PFE and CPU-engine figure is measured against the raw-crypto loop of the same backend,
cipher, direction and size in interleaved windows (`measure.paired_windows`) for `duration`
seconds: its packets/s is the median over its windows, its ratio the median of the per-pair
ratios with a confidence interval (`measure.summarize`). Ratios survive noisy and different
machines, absolute packet rates do not. `measure_figure` is the one place a ratio is made:
`inline-ipsec bench` and the pytest-benchmark files both call it."""
from __future__ import annotations

import statistics
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Callable, Optional, Sequence

from .. import __version__
from ..benchmark import (
    IMIX,
    WINDOW_BURSTS,
    EngineBursts,
    PfeWorkload,
    RawReference,
    check_tunnels,
    core_round_trip_ns,
    machine,
    packet_sizes,
    untimed,
)
from ..pfe import PFE_BACKENDS
from .measure import (CONFIDENCE, MIN_PAIRS, Paired, Scaling, ThreadRun, paired_windows,
                      scaling_rounds)

ALL_SIZES: tuple = (64, 128, 256, 512, 1024, 1400, IMIX)
SCHEMA = "inline-ipsec-bench/2"
PATHS = ("pfe", "cpu")
#: The raw loop the CPU engine's figures are measured against (always built).
CPU_REFERENCE = "openssl"


@dataclass(frozen=True)
class BenchConfig:
    """What to measure. `threads` > 1 adds the multi-core figures (N PFEs in N threads).
    Each engine figure gets `duration` seconds of window pairs, spread over `passes` rounds
    of the whole matrix, so that its samples come from several moments of the run."""

    sizes: Sequence = ALL_SIZES
    bits: Sequence[int] = (128, 256)
    directions: Sequence[str] = ("encrypt", "decrypt")
    backends: Sequence[str] = PFE_BACKENDS
    paths: Sequence[str] = PATHS
    burst: int = 32
    duration: float = 0.25
    threads: int = 1
    e2e: bool = False   # also through two gateways (routing, selectors, MTU, both engines)
    passes: int = 4
    tunnels: int = 1    # PFE and CPU-engine figures: SA pairs interleaved in each burst

    def __post_init__(self) -> None:
        for b in self.backends:
            if b not in PFE_BACKENDS:
                raise ValueError(f"backend {b!r} is not available here (have: "
                                 f"{', '.join(PFE_BACKENDS)})")
        for p in self.paths:
            if p not in PATHS:
                raise ValueError(f"path {p!r}: expected one of {PATHS}")
        if self.burst < 1 or self.burst > 4096:
            raise ValueError("burst size must be 1..4096")
        if self.duration <= 0:
            raise ValueError("duration must be positive")
        if self.threads < 1:
            raise ValueError("threads must be at least 1")
        if self.passes < 1:
            raise ValueError("passes must be at least 1")
        check_tunnels(self.tunnels)


def figure_key(path: str, backend: str, cipher: str, direction: str, size, burst: int = 32,
               threads: int = 1, tunnels: int = 1) -> str:
    """The name of a figure across runs and entry points: path/backend/cipher/direction/size,
    plus /bN for bursts other than 32, /nN for N tunnels interleaved in the bursts and /tN for
    thread figures. `backend` is the crypto
    library: "openssl" or "ipsec-mb" for the PFE and the raw loops, "cryptography" for the CPU
    engine (whatever library the caller names, see `engine_backend`)."""
    if path in ("cpu", "gateway-cpu"):
        backend = "cryptography"
    key = f"{path}/{backend}/{cipher}/{direction}/{size}"
    if path.endswith("-threads"):
        return f"{key}/t{threads}"
    if burst != 32:
        key = f"{key}/b{burst}"
    return key if tunnels == 1 else f"{key}/n{tunnels}"


def engine_backend(path: str, backend: str) -> str:
    """The crypto library a figure of `path` runs on: the CPU engine always uses
    `cryptography`, whichever PFE backend its raw reference is."""
    return "cryptography" if path in ("cpu", "gateway-cpu") else backend


@dataclass
class Figure:
    """One measured figure. `ratio` is to the raw-crypto figure of the same backend, cipher,
    direction and size in the same run (None for the raw figures themselves): the median of
    `samples` (one per pair of windows), inside [`ratio_low`, `ratio_high`], its confidence
    interval (`measure.CONFIDENCE`). `rounds` is the number of window pairs."""

    path: str            # "pfe", "cpu", "raw", or "pfe-threads"
    backend: str         # crypto backend ("openssl", "ipsec-mb"); the CPU engine: "cryptography"
    cipher: str
    direction: str       # "encrypt", "decrypt", or "both" (thread figures: encrypt + decrypt)
    # Thread figures: `ratio` is N threads over one thread, `efficiency` that over N.
    size: int | str
    burst: int
    pps: float
    gbps: float
    rounds: int
    ratio: Optional[float] = None
    threads: int = 1
    efficiency: Optional[float] = None   # thread figures: pps / (threads × single-thread pps)
    per_thread: Optional[list] = None    # thread figures: packets/s of each PFE's thread
    ratio_low: Optional[float] = None
    ratio_high: Optional[float] = None
    samples: Optional[list] = None       # ratio per pair of windows
    gil_held: Optional[float] = None     # thread figures: share of a thread's time with the GIL
    gil_bound: Optional[float] = None    # thread figures: the speed-up the GIL allows on free cores
    core_rtt_ns: Optional[float] = None  # thread figures: cache-line round trip between cores
    # pipeline-threads, two controls in the same rounds (`dataplane.bench`): the GIL floor,
    # idle bursts as long as the gateway bursts (`idle_scaling`: median ratio, per round, the
    # length in ns), and the raw crypto loops themselves in threads (`raw_scaling`)
    floor_ratio: Optional[float] = None
    floor_samples: Optional[list] = None
    floor_call_ns: Optional[int] = None
    raw_threads_ratio: Optional[float] = None
    raw_threads_samples: Optional[list] = None
    tunnels: int = 1                     # SA pairs whose packets interleave in each burst

    @property
    def key(self) -> str:
        """Identifies the figure across runs (for the regression gate)."""
        return figure_key(self.path, self.backend, self.cipher, self.direction, self.size,
                          self.burst, self.threads, self.tunnels)


@dataclass
class BenchResult:
    config: dict
    machine: dict
    version: str
    started: str
    seconds: float
    figures: list[Figure] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"schema": SCHEMA, "confidence": CONFIDENCE, "version": self.version,
                "started": self.started, "seconds": round(self.seconds, 3),
                "machine": self.machine, "config": self.config,
                "figures": [dict(asdict(f), key=f.key) for f in self.figures]}

    def find(self, key: str) -> Optional[Figure]:
        return next((f for f in self.figures if f.key == key), None)


def make_figure(path: str, backend: str, bits: int, direction: str, size, burst: int,
                ns_per_burst: Sequence[float], inner_bytes: int,
                paired: Optional[Paired] = None, cipher: Optional[str] = None,
                tunnels: int = 1) -> Figure:
    """A figure from per-burst window times; with `paired`, the ratio and its interval."""
    median_ns = float(statistics.median(ns_per_burst))
    fig = Figure(path, engine_backend(path, backend), cipher or f"aes-gcm-{bits}", direction,
                 size, burst, burst / (median_ns * 1e-9), inner_bytes * 8 / median_ns,
                 len(ns_per_burst), tunnels=tunnels)
    if paired is not None:
        summary = paired.summary()
        fig.ratio, fig.ratio_low, fig.ratio_high = summary.ratio, summary.low, summary.high
        fig.samples = [round(r, 5) for r in paired.ratios]
    return fig


class FigureBench:
    """One engine figure and its raw-crypto reference, ready to be measured in several passes
    (`measure` adds window pairs each time) and summarised once (`figures`)."""

    def __init__(self, path: str, backend: str, bits: int, direction: str, size,
                 burst: int = 32, tunnels: int = 1) -> None:
        self.args = (backend, bits, direction, size, burst)
        self.path, self.tunnels = path, tunnels
        bursts = WINDOW_BURSTS[path]
        # One key for the raw loop whatever `tunnels`: switching among expanded keys that
        # all sit in L1 costs the library's seal nothing (docs/performance.md).
        self.raw = RawReference(bits, size, burst, encrypt=direction == "encrypt",
                                backend=backend, bursts=bursts)
        self.engine = EngineBursts(path, backend, bits, size, burst, bursts=bursts,
                                   tunnels=tunnels)
        self.paired = Paired([], [])

    def measure(self, duration: float, min_pairs: int = MIN_PAIRS) -> None:
        direction = self.args[2]
        more = paired_windows(self.raw.window_ns, lambda: self.engine.window_ns(direction),
                              lambda: self.engine.prepare(direction), duration,
                              min_pairs=min_pairs)
        self.paired.reference_ns += more.reference_ns
        self.paired.engine_ns += more.engine_ns

    def figures(self) -> tuple[Figure, Figure]:
        """The raw-crypto figure and the engine's, which carries the ratio."""
        backend, bits, direction, size, burst = self.args
        raw_fig = make_figure("raw", backend, bits, direction, size, burst,
                              self.paired.reference_ns, self.raw.inner_bytes)
        return raw_fig, make_figure(self.path, backend, bits, direction, size, burst,
                                    self.paired.engine_ns, self.engine.inner_bytes,
                                    self.paired, tunnels=self.tunnels)


def measure_figure(path: str, backend: str, bits: int, direction: str, size, burst: int = 32,
                   duration: float = 0.25, passes: int = 1,
                   tunnels: int = 1) -> tuple[Figure, Figure]:
    """The raw-crypto figure and the engine's ("pfe" on `backend`, or "cpu"), measured in
    interleaved windows for `duration` seconds in all (in `passes` separate stretches); the
    engine's carries the ratio. `tunnels`: SA pairs whose packets interleave in each burst."""
    bench = FigureBench(path, backend, bits, direction, size, burst, tunnels)
    for _ in range(passes):
        bench.measure(duration / passes, min_pairs=-(-MIN_PAIRS // passes))
    return bench.figures()


def measure_threads(threads: int, backend: str, bits: int, size, burst: int,
                    duration: float, empty: bool = False) -> tuple[float, list[int]]:
    """Aggregate packets/s of `threads` PFEs, one per thread ("Anchorship: Thread k"), each
    with its own tunnel, each encrypting and then decrypting its own bursts; both kernels run
    without the GIL. Returns (packets/s, packets per thread)."""
    workloads = [PfeWorkload(bits, size, burst, backend=backend, name=f"thread{k}")
                 for k in range(threads)]
    if empty:        # the same Python calls, but the kernels return at once (GIL held)
        for w in workloads:
            w.burst.count = 0
    counts = [0] * threads
    burst_size = burst
    barrier = threading.Barrier(threads + 1)
    running = [True]     # a list read per 16 bursts: cheaper than an Event while holding the GIL

    def loop(k: int) -> None:
        w = workloads[k]
        burst, out = w.burst, w.out
        fill = burst.sa.fill
        encrypt, decrypt = w.pfe.encrypt_burst, w.pfe.decrypt_burst
        n = 0
        barrier.wait()
        rounds = 0
        while running[0]:
            for _ in range(16):
                fill(out)  # decrypt wrote the inbound handles there
                n += encrypt(burst) + decrypt(burst)
            rounds += 16
        # with empty bursts: the packets the same number of real bursts would carry
        counts[k] = rounds * 2 * burst_size if empty else n

    pool = [threading.Thread(target=loop, args=(k,), name=f"pfe-thread{k}")
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


def plan(cfg: BenchConfig) -> list[tuple]:
    """The measurements `run_suite` makes, in order (for progress reporting). Each engine
    figure comes with its own raw-crypto reference, measured alongside it."""
    steps = []
    for backend in cfg.backends:
        for bits in cfg.bits:
            for direction in cfg.directions:
                for size in cfg.sizes:
                    if "pfe" in cfg.paths:
                        steps.append(("pfe", backend, bits, direction, size))
                    if "cpu" in cfg.paths and backend == CPU_REFERENCE:
                        steps.append(("cpu", backend, bits, direction, size))
    if cfg.e2e:
        for size in cfg.sizes:
            for path in cfg.paths:
                steps.append((f"gateway-{path}", "openssl", 256, "both", size))
    if cfg.threads > 1 and "pfe" in cfg.paths:
        for backend in cfg.backends:
            steps.append(("pfe-threads", backend, cfg.bits[0], "both", cfg.sizes[0]))
    if cfg.e2e and "pfe" in cfg.paths:
        # the forwarding pipeline: two gateways against the bare PFE, and N threads against 1
        for backend in cfg.backends:
            steps.append(("pipeline", backend, 256, "both", 64))
            if cfg.threads > 1:
                steps.append(("pipeline-threads", backend, 256, "both", 64))
    return steps


def run_suite(cfg: BenchConfig,
              progress: Callable[[int, int, str], None] = lambda i, n, s: None) -> BenchResult:
    """Measure everything `cfg` asks for; `progress(done, total, label)` after each step.

    The raw-crypto figure reported for a (backend, cipher, direction, size) is the one measured
    alongside the PFE; the CPU engine's ratio uses the reference measured alongside it."""
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    result = BenchResult(
        config={"sizes": list(cfg.sizes), "bits": list(cfg.bits),
                "directions": list(cfg.directions), "backends": list(cfg.backends),
                "paths": list(cfg.paths), "burst": cfg.burst, "duration": cfg.duration,
                "threads": cfg.threads, "e2e": cfg.e2e, "passes": cfg.passes,
                "tunnels": cfg.tunnels},
        machine=machine(), version=__version__, started=started, seconds=0.0)
    steps = plan(cfg)
    engine_steps = [st for st in steps if st[0] in PATHS]
    benches = {st: FigureBench(*st, burst=cfg.burst, tunnels=cfg.tunnels)
               for st in engine_steps}
    total = len(engine_steps) * cfg.passes + len(steps) - len(engine_steps)
    done = 0
    # The whole matrix once per pass: each figure's samples come from `passes` moments.
    for n in range(cfg.passes):
        for st, bench in benches.items():
            progress(done, total, f"{' '.join(map(str, st))} (pass {n + 1}/{cfg.passes})")
            bench.measure(cfg.duration / cfg.passes, min_pairs=-(-MIN_PAIRS // cfg.passes))
            done += 1
    reported_raw: set = set()
    for st in steps:
        path, backend, bits, direction, size = st
        if st in benches:
            raw, fig = benches[st].figures()
            if (backend, bits, direction, size) not in reported_raw:
                reported_raw.add((backend, bits, direction, size))
                result.figures.append(raw)
            result.figures.append(fig)
            continue
        progress(done, total, f"{path} {backend} aes-gcm-{bits} {direction} {size}")
        done += 1
        if path == "pfe-threads":
            result.figures.append(_measure_thread_scaling(cfg, backend, bits, size))
        elif path in ("pipeline", "pipeline-threads"):
            result.figures.append(_measure_pipeline(path, backend, size, cfg))
        else:
            result.figures.append(_measure_gateway(path[len("gateway-"):], size, cfg))
    progress(total, total, "done")
    result.seconds = time.perf_counter() - t0
    return result


#: Alternating rounds (one thread, then N) per thread figure; its ratio is their median.
THREAD_ROUNDS = 5


def _thread_figure(path: str, backend: str, cipher: str, size, cfg: BenchConfig,
                   run: ThreadRun, inner: int = 0,
                   controls: Optional[dict[str, ThreadRun]] = None) -> tuple[Figure, Scaling]:
    """A thread figure from `THREAD_ROUNDS` alternating rounds (`measure.scaling_rounds`, with
    `controls` in the same rounds); also returns the rounds."""
    seconds = max(cfg.duration * 4, 1.0) / THREAD_ROUNDS
    rtts: list[float] = []

    def timed_run(n: int, secs: float) -> tuple[float, list[int]]:
        if n > 1:                   # where the host put the cores, just before the N threads
            try:
                rtts.append(core_round_trip_ns())
            except (OSError, TimeoutError):
                pass
        return run(n, secs)

    sc = scaling_rounds(timed_run, cfg.threads, THREAD_ROUNDS, seconds, controls)
    summary = sc.summary()
    k = sc.median_round()
    multi = sc.multi_pps[k]
    fig = Figure(path, backend, cipher, "both", size, cfg.burst, multi,
                 multi * inner * 8 / 1e9 if inner else 0.0, THREAD_ROUNDS,
                 ratio=summary.ratio, threads=cfg.threads,
                 efficiency=summary.ratio / cfg.threads,
                 per_thread=[round(n / seconds) for n in sc.per_thread[k]],
                 ratio_low=summary.low, ratio_high=summary.high,
                 samples=[round(r, 4) for r in sc.ratios],
                 core_rtt_ns=round(statistics.median(rtts), 1) if rtts else None)
    return fig, sc


def _measure_thread_scaling(cfg: BenchConfig, backend: str, bits: int, size) -> Figure:
    burst = cfg.burst   # the GIL is released for each whole burst; held only between them

    def run(n: int, seconds: float) -> tuple[float, list[int]]:
        return measure_threads(n, backend, bits, size, burst, seconds)

    inner = sum(PfeWorkload(bits, size, 1).sizes) if size != IMIX else 0
    fig, sc = _thread_figure("pfe-threads", backend, f"aes-gcm-{bits}", size, cfg, run, inner)
    single = statistics.median(sc.single_pps)
    held = gil_held_share(backend, bits, size, burst, single, max(cfg.duration * 2, 0.5))
    fig.gil_held = held
    fig.gil_bound = 1.0 / (held + (1.0 - held) / cfg.threads)
    return fig


def _measure_pipeline(path: str, backend: str, size, cfg: BenchConfig) -> Figure:
    """The forwarding pipeline (dataplane/bench.py): "pipeline" is two gateways end to end
    (route, encrypt, demux, decrypt, selector check, inner route) with its ratio to the bare
    PFE's encrypt + decrypt of the same packets; "pipeline-threads" is `cfg.threads` gateway
    pairs in as many threads, its ratio to one thread, with two controls in the same rounds:
    the GIL floor of the same loop (`idle_scaling`: idle bursts as long as the gateway
    bursts) and the raw crypto loops in as many threads (`raw_scaling`)."""
    from ..dataplane.bench import (idle_call_ns, idle_scaling, measure_pipeline, raw_scaling,
                                   thread_scaling)
    if path == "pipeline":
        paired, inner = measure_pipeline(backend, size, cfg.burst, max(cfg.duration * 4, 1.0))
        return make_figure("pipeline", backend, 256, "both", size, cfg.burst,
                           paired.engine_ns, inner, paired)

    def run(n: int, seconds: float) -> tuple[float, list[int]]:
        return thread_scaling(n, seconds, 256, size, cfg.burst, backend)

    call_ns = idle_call_ns(run(1, 0.3)[0], cfg.burst)

    def floor(n: int, seconds: float) -> tuple[float, list[int]]:
        return idle_scaling(n, call_ns, seconds, cfg.burst)

    def raw(n: int, seconds: float) -> tuple[float, list[int]]:
        return raw_scaling(n, seconds, backend, size, cfg.burst)

    fig, sc = _thread_figure("pipeline-threads", backend, "aes-gcm-256", size, cfg, run,
                             controls={"floor": floor, "raw": raw})
    fig.floor_call_ns = call_ns
    fig.floor_ratio, fig.floor_samples = _control(sc, "floor")
    fig.raw_threads_ratio, fig.raw_threads_samples = _control(sc, "raw")
    return fig


def _control(sc: Scaling, name: str) -> tuple[float, list[float]]:
    """A control's median ratio and its ratio per round."""
    ratios = sc.control_ratios(name)
    return float(statistics.median(ratios)), [round(r, 4) for r in ratios]


def gil_held_share(backend: str, bits: int, size, burst: int, single_pps: float,
                   duration: float) -> float:
    """The share of one thread's time spent holding the GIL in the thread figure's loop: the
    loop's time with kernels that return at once (everything but the GIL-free burst work)
    over its time with the real kernels (`single_pps`). With N threads on N free cores, the
    GIL bounds the speed-up to 1 / (share + (1 - share) / N) (Amdahl): the figure a loaded
    machine cannot show, read from one thread."""
    empty_pps, _ = measure_threads(1, backend, bits, size, burst, duration, empty=True)
    return min(1.0, single_pps / empty_pps)


#: The demo configuration's tunnels used end to end: AES-GCM-256 offloaded, AES-CBC-256 +
#: HMAC-SHA-256 on the CPU.
E2E_VPNS = {"pfe": "vpn-gcm256", "cpu": "vpn-cbc"}


def _measure_gateway(kind: str, size, cfg: BenchConfig) -> Figure:
    """End to end through two gateways on the built-in demo configuration: route lookup, MTU
    check and encryption at gateway a, SPI lookup, decryption and the selector check at b.
    The ratio is to the raw AES-GCM-256 encrypt limit of the same size, timed alongside."""
    from ..dataplane.gateway import Gateway
    from ..io.link import WireLink
    from ..io.demo_config import NAT_T_VPNS, demo_config
    from ..io.traffic import flows, packets

    a = Gateway.from_text(demo_config("a"), name="gw-a")
    b = Gateway.from_text(demo_config("b"), name="gw-b")
    a.establish_prekeyed(udp_encap=NAT_T_VPNS)
    b.establish_prekeyed(udp_encap=NAT_T_VPNS)
    link = WireLink(a, b)
    flow = next(f for f in flows(a, b)
                if f.vpn == E2E_VPNS[kind] and f.sender == "a" and not f.ipv6)
    sizes = packet_sizes(size, cfg.burst)
    inner = [packets(flow, 1, n, i)[0] for i, n in enumerate(sizes)]

    def send() -> None:
        out = link.send(a, inner)
        # Inner packets above the tunnel MTU (IMIX's 1500 B) arrive as two fragments.
        if len(out.delivered) < len(inner):
            raise RuntimeError(f"end-to-end {kind}: {len(inner) - len(out.delivered)} "
                               "packets lost")

    raw = RawReference(256, size, cfg.burst, bursts=1)

    def window() -> float:
        t0 = time.perf_counter_ns()
        send()
        return float(untimed(time.perf_counter_ns() - t0))

    paired = paired_windows(raw.window_ns, window, lambda: None, cfg.duration)
    fig = make_figure(f"gateway-{kind}", "openssl", 256, "both", size, cfg.burst,
                      paired.engine_ns, sum(len(p) for p in inner), paired,
                      cipher=None if kind == "pfe" else "aes-cbc-256")
    # the CPU tunnel is AES-CBC-256 with HMAC-SHA-256-128; its ratio stays to raw AES-GCM-256
    return fig

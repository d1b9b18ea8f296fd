"""The two sides of every ratio: the raw loop (`RawBursts`, timed in C) does the PFE's crypto
calls on the PFE's bytes, the engine side does exactly the engine's work (N times with the
slowdown hook), and both entry points name and compute figures alike."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.compat import raw as raw_bytes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from _pfe_core.calibrate import RawBursts
from inline_ipsec import Burst
from inline_ipsec.benchmark import (
    SLOWDOWN_ENV,
    EngineBursts,
    RawReference,
    clock_reads_ns,
    esp_payload,
    gcm_spec,
    inner_ipv4_udp,
    slowdown,
    untimed,
)
from inline_ipsec.perf import compare
from inline_ipsec.perf.gate import figures
from inline_ipsec.perf.suite import figure_key, measure_figure
from inline_ipsec.pfe import PFE_BACKENDS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("backend", PFE_BACKENDS)
@pytest.mark.parametrize("bits", [128, 256])
def test_raw_seal_is_rfc4106_aes_gcm_of_the_esp_payload(backend: str, bits: int) -> None:
    """What the raw loop computes, checked with `cryptography`: payload sealed in place under
    nonce salt || counter, AAD the 8 bytes before it, ICV after it."""
    spec = gcm_spec(bits)
    key, salt = spec.key[:-4], spec.key[-4:]
    payloads = [esp_payload(inner_ipv4_udp(n, i)) for i, n in enumerate((64, 100, 1400))]
    burst = Burst.from_packets(payloads)
    aad = bytes(range(8))
    for i in range(3):
        start = i * burst.slot_size + int(burst.offset[i])
        burst._flat[start - 8:start] = aad
    loop = RawBursts(key, salt, True, backend, [burst])
    assert loop.packets == 3 and loop.payload_bytes == sum(map(len, payloads))
    loop.time_ns(1)
    assert loop.verified == 3
    for i, payload in enumerate(payloads):
        start = i * burst.slot_size + int(burst.offset[i])
        sealed = bytes(burst._flat[start:start + len(payload) + 16])
        nonce = salt + (i + 1).to_bytes(8, "big")
        assert sealed == AESGCM(key).encrypt(nonce, payload, aad)


@pytest.mark.parametrize("backend", PFE_BACKENDS)
def test_raw_open_verifies_every_tag_in_every_round(backend: str) -> None:
    ref = RawReference(128, "imix", 32, encrypt=False, backend=backend, bursts=2)
    assert ref.packets_per_pass == 64
    ns = ref.window_ns(rounds=3)
    assert ns > 0 and ref.loop.verified == 3 * 64


@pytest.mark.parametrize("backend", PFE_BACKENDS)
def test_raw_open_counts_a_bad_tag(backend: str) -> None:
    ref = RawReference(128, 64, 4, encrypt=False, backend=backend, bursts=1)
    b = ref.bursts[0]
    start = 1 * b.slot_size + int(b.offset[1]) + int(b.length[1])
    b._flat[start] ^= 1                       # packet 1's ICV
    ref.loop.time_ns(2)
    assert ref.loop.verified == 2 * 3
    with pytest.raises(RuntimeError, match="3 of 4 calls succeeded"):
        ref.window_ns(rounds=1)


def test_raw_bursts_refuses_what_it_cannot_run() -> None:
    b = Burst.from_packets([bytes(64)])
    with pytest.raises(ValueError, match="16- or 32-byte key"):
        RawBursts(bytes(24), b"salt", True, "openssl", [b])
    with pytest.raises(ValueError, match="unknown backend"):
        RawBursts(bytes(16), b"salt", True, "nss", [b])
    with pytest.raises(ValueError, match="no packets"):
        RawBursts(bytes(16), b"salt", True, "openssl", [Burst(4)])
    b.offset[0] = 4
    with pytest.raises(ValueError, match="8 bytes before"):
        RawBursts(bytes(16), b"salt", True, "openssl", [b])
    b.offset[0] = b.slot_size - 70
    with pytest.raises(ValueError, match="16 after"):
        RawBursts(bytes(16), b"salt", True, "openssl", [b])
    with pytest.raises(ValueError, match="rounds"):
        RawReference(128, 64, 4).loop.time_ns(0)


def test_the_raw_reference_encrypts_the_bytes_the_pfe_encrypts() -> None:
    ref = RawReference(128, 64, 4, bursts=1)
    assert ref.bursts[0].packets() == [esp_payload(inner_ipv4_udp(64, i)) for i in range(4)]
    assert all(len(p) == 68 for p in ref.bursts[0].packets())


@pytest.mark.parametrize("path", ["pfe", "cpu"])
@pytest.mark.parametrize("direction", ["encrypt", "decrypt"])
def test_the_engine_window_does_the_engines_work_repeat_times(path: str, direction: str
                                                              ) -> None:
    """INLINE_IPSEC_BENCH_SLOWDOWN=2: every burst call is doubled by an identical one on a
    twin SA pair, so the engine does exactly twice its work."""
    for repeat in (1, 2):
        w = EngineBursts(path, "openssl", 128, 64, 32, bursts=2, repeat=repeat)
        w.prepare(direction)
        assert w.window_ns(direction) > 0
        assert len(w.calls) == 2 * repeat
        handles = w.outbound if direction == "encrypt" else w.inbound
        assert len(handles) == repeat
        # each SA pair carried both bursts of the window: 64 packets each
        assert [w.engine.counters(h).packets for h in handles] == [64] * repeat


def test_slowdown_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv(SLOWDOWN_ENV, raising=False)
    assert slowdown() == 1
    monkeypatch.setenv(SLOWDOWN_ENV, "2")
    assert slowdown() == 2 and EngineBursts("pfe", bursts=1).repeat == 2
    assert EngineBursts("cpu", bursts=1).repeat == 1          # the PFE's slowdown only
    for bad in ("0", "two", "-1", "1.5"):
        monkeypatch.setenv(SLOWDOWN_ENV, bad)
        with pytest.raises(ValueError, match=SLOWDOWN_ENV):
            slowdown()


def test_measure_figure_keys_and_ratio() -> None:
    raw, fig = measure_figure("cpu", "openssl", 128, "encrypt", 64, 32, duration=0.0)
    assert raw.key == "raw/openssl/aes-gcm-128/encrypt/64"
    assert fig.key == "cpu/cryptography/aes-gcm-128/encrypt/64" == \
        figure_key("cpu", "openssl", "aes-gcm-128", "encrypt", 64)
    assert fig.rounds == len(fig.samples) >= 15
    assert fig.ratio_low <= fig.ratio <= fig.ratio_high


def test_both_entry_points_name_and_gate_the_same_figures(tmp_path: Path) -> None:
    """pytest-benchmark JSON from benchmarks/ and `inline-ipsec bench` JSON: same keys, and
    the gate compares one with the other figure for figure."""
    pb = tmp_path / "pb.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "benchmarks/bench_pfe.py",
         "-k", "test_pfe and openssl-encrypt-gcm128-64-b32 or test_cpu_engine and 64-encrypt",
         "--benchmark-min-rounds=5", f"--benchmark-json={pb}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    from inline_ipsec.cli import main
    ours = tmp_path / "ours.json"
    assert main(["bench", "--sizes", "64", "--ciphers", "aes-gcm-128", "--directions",
                 "encrypt", "--backends", "openssl", "--duration", "0.02", "--threads", "1",
                 "--json", str(ours)]) == 0
    pb_doc, our_doc = json.loads(pb.read_text()), json.loads(ours.read_text())
    keys = {"pfe/openssl/aes-gcm-128/encrypt/64", "cpu/cryptography/aes-gcm-128/encrypt/64"}
    assert set(figures(pb_doc)) == keys
    assert keys <= set(figures(our_doc))
    for a, b in ((pb_doc, our_doc), (our_doc, pb_doc)):
        result = compare(a, b, 35)
        assert {c.key for c in result.compared} >= keys


def _compiler_for(program: str) -> str:
    """The C compiler to build `program` (a C benchmark against intel-ipsec-mb) with; a
    missing compiler or library is reported as `helpers.missing` does."""
    from helpers import missing
    if "ipsec-mb" not in PFE_BACKENDS:
        missing("built without intel-ipsec-mb (libipsec-mb-dev)")
    cc = shutil.which(os.environ.get("CC", "cc"))
    if cc is None:
        missing(f"no C compiler (cc) to build {program}")
    return cc


def test_the_esp_floor_loop_emits_esp_the_pfe_opens(tmp_path):
    """benchmarks/esp_floor.c, the tightest ESP loops against which docs/performance.md sets the
    PFE, does the real work: the packet its encrypt loop emits is ESP tunnel mode that the PFE
    decrypts to the inner packet the loop was given (and scapy reads as IPv4/ESP)."""
    from scapy.layers.inet import IP
    from scapy.layers.ipsec import ESP

    from inline_ipsec import Pfe
    from inline_ipsec.sa import SaSpec
    cc = _compiler_for("benchmarks/esp_floor.c")
    exe = tmp_path / "esp_floor"
    subprocess.run([cc, "-O2", "-DINLINE_IPSEC_HAVE_IPSEC_MB", f"-I{ROOT / 'src' / '_pfe_core'}",
                    "-o", str(exe), str(ROOT / "benchmarks" / "esp_floor.c"), "-lIPSec_MB",
                    "-lcrypto"], check=True)
    wire = bytes.fromhex(subprocess.run([str(exe), "--packet"], check=True, capture_output=True,
                                        text=True).stdout.strip())
    outer = IP(wire)
    assert outer.src == "192.0.2.1" and outer.dst == "198.51.100.1" and outer.haslayer(ESP)
    assert outer[ESP].spi == 0x1000 and outer[ESP].seq == 2 and len(wire) == outer.len
    recomputed = outer.copy()
    del recomputed.chksum                   # scapy computes it afresh from the other fields
    assert IP(raw_bytes(recomputed)).chksum == outer.chksum
    pfe = Pfe(backend="ipsec-mb")
    pfe.add_inbound(SaSpec(spi=0x1000, cipher="aes-gcm-256",
                           key=bytes(range(0x10, 0x30)) + bytes((1, 2, 3, 4)),
                           tunnel_src="192.0.2.1", tunnel_dst="198.51.100.1"))
    burst = Burst.from_packets([wire])
    assert pfe.decrypt_burst(burst) == 1
    inner = IP(burst.packet(0))
    assert (inner.src, inner.dst, len(burst.packet(0))) == ("10.1.0.1", "10.2.0.1", 100)
    assert bytes(inner.payload)[8:] == bytes([1]) * 72      # the loop's filler for packet 1
    # and the timing run itself completes, checking its decrypts as it goes
    out = subprocess.run([str(exe), "0.05"], check=True, capture_output=True, text=True).stdout
    assert "64 B  encrypt: raw" in out and "1400 B  encrypt: raw" in out


def test_the_library_thread_program_runs_both_copies_and_the_control(tmp_path):
    """benchmarks/imb_threads.c, cited in docs/performance.md for what limits two threads of
    intel-ipsec-mb: it builds, loads a second copy of the library, verifies every packet it
    decrypts in each arrangement (it exits non-zero otherwise) and reports all three ratios."""
    cc = _compiler_for("benchmarks/imb_threads.c")
    exe = tmp_path / "imb_threads"
    subprocess.run([cc, "-O2", "-maes", "-mpclmul", "-msse4.1", "-o", str(exe),
                    str(ROOT / "benchmarks" / "imb_threads.c"), "-lIPSec_MB", "-lpthread",
                    "-ldl"], check=True)
    out = subprocess.run([str(exe), "2", "20"], check=True, capture_output=True, text=True,
                         timeout=120).stdout.splitlines()
    assert out[0].startswith("intel-ipsec-mb ") and "2 rounds" in out[0]
    ratios = [line for line in out if line.startswith("2 threads / 1: median ")]
    assert [r.split("  ", 1)[1].split(":")[0] for r in ratios] == ["shared", "private", "aes"]
    for line in ratios:
        assert float(line.split("median ")[1].split("x")[0]) > 0
    bad = subprocess.run([str(exe), "0"], capture_output=True, text=True)
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_windows_take_off_their_clock_reads_and_never_go_negative() -> None:
    """A window's own two clock reads are measured (an empty window) and taken off; a window
    shorter than that is left as it was rather than made zero or negative."""
    clock = clock_reads_ns()
    assert 0 <= clock < 1_000_000
    assert untimed(10_000_000) < 10_000_000
    assert untimed(10_000_000) >= 10_000_000 - 1_000_000
    assert untimed(0) == 0
    assert untimed(1) == 1


@pytest.mark.parametrize("backend", PFE_BACKENDS)
def test_the_raw_loop_takes_off_its_clock_reads(backend: str) -> None:
    """RawBursts.time_ns takes off its own clock reads: even a pass over one 64-byte packet,
    about as short as those reads, must stay positive, and every seal must have run."""
    ref = RawReference(128, 64, 1, backend=backend, bursts=1)
    ns = ref.loop.time_ns(1)
    assert 0 < ns < 1_000_000
    assert ref.loop.verified == 1


@pytest.mark.parametrize("path", ["pfe", "cpu"])
def test_interleaved_tunnels_spread_each_burst_over_their_sa_pairs(path):
    """EngineBursts(tunnels=N): packet i of every burst goes through SA pair i mod N, both
    ways, and a window decrypts all of them."""
    w = EngineBursts(path, "openssl", 128, 64, 8, bursts=2, repeat=1, tunnels=3)
    assert len(w.outbound) == len(w.inbound) == 3
    assert [int(h) for h in w.calls[0].sa[:8]] == [w.outbound[i % 3] for i in range(8)]
    w.prepare("encrypt")
    w.window_ns("encrypt")
    w.prepare("decrypt")
    w.window_ns("decrypt")
    # each outbound SA sealed its share of both windows' packets (3, 3, 2 of each burst of 8:
    # two bursts, the encrypt window and the decrypt window's preparation)
    sent = [w.engine.counters(h).packets for h in w.outbound]
    assert sent == [12, 12, 8]
    assert [w.engine.counters(h).packets for h in w.inbound] == [6, 6, 4]
    with pytest.raises(ValueError, match="tunnels must be 1..1024"):
        EngineBursts(path, "openssl", 128, 64, 8, bursts=1, tunnels=0)

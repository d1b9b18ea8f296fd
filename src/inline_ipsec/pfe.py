"""`Pfe`: the modelled Packet Forwarding Engine (the ASIC path, "Hardware Offloaded: Yes").

A thin class over `_pfe_core`: it validates an `SaSpec` against what the ASIC can carry
(docs/design.md Table 1: ESP tunnel mode, AES-GCM-128/256, anti-replay window up to 4096, at most
4000 SAs) and hands bursts to the C kernels, which run with the GIL released. Each `Pfe` is
independent: run several in several threads, one per modelled PFE.
"""
from __future__ import annotations

import ipaddress
import os
from typing import Optional

try:
    import _pfe_core
except ImportError as exc:  # pragma: no cover - exercised in a subprocess (tests/test_package.py)
    raise ImportError(
        "inline_ipsec's PFE needs its compiled _pfe_core extension (the modelled ASIC), which "
        f"failed to import: {exc}. Reinstall with `pip install .` on a machine with "
        "libssl-dev. The CPU engine (inline_ipsec.cpu) works without it."
    ) from exc
from _pfe_core import gcm as _pfe_gcm
from _pfe_core.pipeline import ENGINE_CPU, Pipeline, PipelineArrays, Verdict, run_pair
from _pfe_core.pipeline import pipeline_view as _pipeline_view
from _pfe_core.burst_io import (GSO_MAX_SEGS, VNET_HDR_LEN, IoResult, count_packets,
                                read_packets, recv_packets, recv_udp, send_packets,
                                write_packets)
from _pfe_core.table import DuplicateSpi, SaTable, TableFull, TableLock
# The references of the throughput figures (inline_ipsec.benchmark): the tight crypto loops
# timed inside C that every ratio is measured against, re-exported so that this module stays
# the only one that imports the extension.
from _pfe_core.calibrate import RawBursts, RawGcm, core_round_trip_ns, idle_burst

import dataclasses
from collections import deque

from .engine import EngineCounters, SaCounters, SaEvent, SinglePacketCalls, Status
from .errors import (
    BackendUnavailableError,
    CapacityError,
    IntegrityError,
    MalformedPacketError,
    UnknownSaError,
    UnsupportedSaError,
)
from .packet.burst import Burst
from .sa import SaSpec

__all__ = ["Pfe", "PFE_BACKENDS", "resolve_backend", "open_esp_gcm", "pfe_limitations",
           "PFE_MAX_SAS", "PFE_CIPHERS", "PFE_MAX_REPLAY_WINDOW", "Pipeline", "Verdict",
           "ENGINE_CPU", "new_pipeline", "pipeline_arrays", "run_pair", "IoResult",
           "read_packets", "write_packets", "recv_packets", "send_packets", "count_packets",
           "VNET_HDR_LEN", "GSO_MAX_SEGS", "recv_udp"]

if {s.name: int(s) for s in _pfe_core.Status} != {s.name: int(s) for s in Status}:
    raise ImportError("the _pfe_core kernels and inline_ipsec.engine.Status disagree on the "
                      "per-packet status codes: rebuild the extension")

PFE_MAX_SAS: int = _pfe_core.MAX_SAS
#: The OpenSSL the kernels were built against and run with.
OPENSSL_VERSION: str = _pfe_core.OPENSSL_VERSION
PFE_MAX_REPLAY_WINDOW: int = _pfe_core.MAX_REPLAY_WINDOW
PFE_MIN_REPLAY_WINDOW: int = _pfe_core.MIN_REPLAY_WINDOW
PFE_CIPHERS = ("aes-gcm-128", "aes-gcm-256")
_DF_MODES = {"clear": 0, "set": 1, "copy": 2}

#: Crypto backends of the PFE usable here ("openssl" always; "ipsec-mb" when built with
#: intel-ipsec-mb and the CPU supports it).
PFE_BACKENDS: tuple[str, ...] = _pfe_core.BACKENDS
#: The environment variable that pins intel-ipsec-mb's instruction set in this process (read
#: whenever a PFE or a raw loop makes its manager), and its values: "auto" (or unset) lets the
#: library take the widest the CPU has.
IPSEC_MB_ARCH_ENV: str = _pfe_core.IPSEC_MB_ARCH_ENV
IPSEC_MB_ARCHS: tuple[str, ...] = _pfe_core.IPSEC_MB_ARCHS


def ipsec_mb_status() -> tuple[bool, str]:
    """(usable, description) of the ipsec-mb backend as of now: its version and instruction
    set, or why it cannot run (not built, no AES-NI, or an instruction set this CPU lacks)."""
    return _pfe_core.ipsec_mb_probe()


#: The backend of `Pfe()` when none is named: INLINE_IPSEC_PFE_BACKEND, else "openssl".
DEFAULT_BACKEND: str = os.environ.get("INLINE_IPSEC_PFE_BACKEND", "openssl")


def resolve_backend(backend: Optional[str] = None) -> str:
    """The concrete backend for "openssl", "ipsec-mb", "auto" (the fastest here) or None."""
    name = backend or DEFAULT_BACKEND
    if name == "auto":
        return "ipsec-mb" if "ipsec-mb" in PFE_BACKENDS else "openssl"
    if name not in ("openssl", "ipsec-mb"):
        raise ValueError(f"unknown PFE backend {name!r}: expected 'openssl', 'ipsec-mb' or "
                         "'auto'")
    if name not in PFE_BACKENDS:
        raise BackendUnavailableError(
            f"the {name} backend is not available: {_pfe_core.IPSEC_MB_DESCRIPTION}")
    return name
_OUTBOUND, _INBOUND = 1, 2


def pfe_limitations(spec: SaSpec) -> list[str]:
    """Every reason the PFE cannot carry this SA (empty when it can), per docs/design.md Table 1."""
    reasons = []
    if spec.protocol != "esp":
        reasons.append(f"{spec.protocol.upper()} is processed on the CPU; the PFE carries ESP only")
    if spec.mode != "tunnel":
        reasons.append(f"{spec.mode} mode is processed on the CPU; the PFE carries tunnel "
                       "mode only")
    if spec.cipher not in PFE_CIPHERS:
        reasons.append(f"cipher {spec.cipher} is processed on the CPU; the PFE carries "
                       "AES-GCM with 128- or 256-bit keys only")
    if spec.replay_window > PFE_MAX_REPLAY_WINDOW:
        reasons.append(f"anti-replay window {spec.replay_window} > {PFE_MAX_REPLAY_WINDOW}")
    elif 0 < spec.replay_window < PFE_MIN_REPLAY_WINDOW:
        reasons.append(f"anti-replay window {spec.replay_window} < {PFE_MIN_REPLAY_WINDOW}")
    if spec.lifetime.has_kilobytes:
        reasons.append("lifetime in kilobytes is processed on the CPU")
    return reasons


class Pfe(SinglePacketCalls):
    """The ASIC model. Same engine protocol as `CpuEngine` (see `inline_ipsec.engine`).

    >>> pfe = Pfe()
    >>> h = pfe.add_outbound(spec); pfe.add_inbound(spec)
    >>> wire = pfe.encrypt(h, inner_ip_packet)
    >>> inner = pfe.decrypt(wire)
    """

    kind = "pfe"
    capacity = PFE_MAX_SAS

    def __init__(self, name: str = "pfe0", backend: Optional[str] = None) -> None:
        """`backend`: "openssl" (the default, always built), "ipsec-mb" (intel-ipsec-mb, when
        built) or "auto" (the fastest available). Both emit byte-identical packets."""
        self.name = name
        self.backend = resolve_backend(backend)
        try:
            self._table = SaTable(self.backend)
        except RuntimeError as exc:     # e.g. INLINE_IPSEC_IPSEC_MB_ARCH asks for what cannot run
            raise BackendUnavailableError(str(exc)) from None
        self._specs: dict[int, SaSpec] = {}
        self._events: deque[SaEvent] = deque(maxlen=2 * PFE_MAX_SAS)
        self._reported: set[int] = set()     # outbound handles whose exhaustion was reported
        # Bursts release the GIL; the table's lock keeps two threads off one table (each
        # SA's cipher context belongs to one thread at a time). One PFE per thread scales.
        # The burst calls take it inside C, without the GIL; changes take it here.
        self._lock = self._table.lock
        # The burst calls go straight to the table: no Python frame per burst.
        self.encrypt_burst = self._table.encrypt  # type: ignore[method-assign]
        self.decrypt_burst = self._table.decrypt  # type: ignore[method-assign]

    def __len__(self) -> int:
        return len(self._table)

    @property
    def lock(self) -> TableLock:
        """Held around every use of the SA table: the burst calls and a gateway's forwarding
        pipeline take it inside C, without the GIL; changes take it here (`with pfe.lock:`).
        One table is never used by two threads at once."""
        return self._lock

    def __repr__(self) -> str:
        return f"Pfe({self.name!r}, {self.backend}, {len(self)}/{PFE_MAX_SAS} SAs)"

    # -- install -------------------------------------------------------------------------------

    def add_outbound(self, spec: SaSpec) -> int:
        """Install the sending direction of an SA; returns its handle for `encrypt`."""
        return self._add(_OUTBOUND, spec)

    def add_inbound(self, spec: SaSpec) -> int:
        """Install the receiving direction of an SA; `decrypt` finds it by SPI."""
        return self._add(_INBOUND, spec)

    def _add(self, direction: int, spec: SaSpec) -> int:
        reasons = pfe_limitations(spec)
        if reasons:
            raise UnsupportedSaError("the PFE cannot carry this SA: " + "; ".join(reasons)
                                     + " (it belongs on the CPU path)")
        src = ipaddress.ip_address(spec.tunnel_src).packed
        dst = ipaddress.ip_address(spec.tunnel_dst).packed
        with self._lock:
            try:
                handle = self._table.add(
                    direction, spec.spi, spec.key[:-4], spec.key[-4:], spec.esn,
                    spec.replay_window, spec.udp_encap, src, dst, spec.udp_sport,
                    spec.udp_dport, spec.ttl, _DF_MODES[spec.df_bit], spec.copy_outer_dscp)
            except TableFull as exc:
                raise CapacityError(str(exc)) from None
            except DuplicateSpi as exc:
                raise UnsupportedSaError(str(exc)) from None
            self._specs[handle] = spec
        return handle

    def update(self, handle: int, spec: SaSpec) -> None:
        """Change an installed SA's DF-bit mode and DSCP copy in place (keys, sequence number
        and anti-replay window stay). The ASIC cannot change anything else of an SA: other
        changes raise `UnsupportedSaError` (they need a new SA, i.e. a rekey)."""
        old = self.spec(handle)
        same = dataclasses.replace(spec, df_bit=old.df_bit, copy_outer_dscp=old.copy_outer_dscp)
        if same != old:
            raise UnsupportedSaError(f"{self.name}: the PFE changes only df_bit and "
                                     "copy_outer_dscp of an installed SA; rekey for the rest")
        with self._lock:
            self._checked(self._table.set_options, handle, _DF_MODES[spec.df_bit],
                          spec.copy_outer_dscp)
            self._specs[handle] = spec

    def next_event(self) -> Optional[SaEvent]:
        """The next event for the control plane, or None: "rekey-due" (limit "sequence") once
        for each outbound SA that used its last sequence number (RFC 4303 §3.3.3). The PFE
        keeps no other lifetime: SAs with volume lifetimes are placed on the CPU path
        (`pfe_limitations`), and time lifetimes are IKE's timers. Polling reads every
        outbound SA's flag: O(SAs), for the control plane's tick, never per packet."""
        if not self._events:
            with self._lock:
                for handle, spec in self._specs.items():
                    if handle in self._reported or self._table.direction(handle) != _OUTBOUND:
                        continue
                    if self._table.rekey_needed(handle):
                        self._reported.add(handle)
                        self._events.append(SaEvent("rekey-due", handle, spec.spi, "outbound",
                                                    "sequence", 0.0))
        return self._events.popleft() if self._events else None

    def remove(self, handle: int) -> None:
        """Uninstall an SA and wipe its keys. Its slot becomes free, under a new generation:
        the handle names nothing from now on (`UnknownSaError`, `Status.NO_SA`)."""
        with self._lock:
            self._checked(self._table.remove, handle)
            del self._specs[handle]
            self._reported.discard(handle)

    def _checked(self, call, handle: int, *args):
        """`call(handle, *args)` on the table, with `UnknownSaError` for a handle that names
        no installed SA (never issued, or stale)."""
        try:
            return call(handle, *args)
        except (KeyError, OverflowError, TypeError):
            raise UnknownSaError(f"{self.name}: no SA with handle {handle!r}") from None

    def spec(self, handle: int) -> SaSpec:
        try:
            return self._specs[handle]
        except KeyError:
            raise UnknownSaError(f"{self.name}: no SA with handle {handle!r}") from None

    def handles(self) -> list[int]:
        return sorted(self._specs)

    def lookup_inbound(self, spi: int) -> int:
        """The handle of the inbound SA with this SPI, or -1."""
        return self._table.lookup(spi)

    # -- packets ---------------------------------------------------------------------------------

    def encrypt_burst(self, burst: Burst) -> int:
        """Encrypt `burst.count` packets in place with the outbound SAs named in `burst.sa`.

        One C call for the whole burst, GIL released. `burst.status` gets a `Status` per
        packet; returns the number of packets encrypted."""
        return self._table.encrypt(burst)   # bound per instance in __init__

    def decrypt_burst(self, burst: Burst) -> int:
        """Decrypt `burst.count` outer packets in place, finding each SA by SPI.

        `burst.sa` gets the inbound SA handle per packet (-1 if none), `burst.status` a
        `Status`; returns the number of packets decrypted."""
        return self._table.decrypt(burst)   # bound per instance in __init__

    # -- state -----------------------------------------------------------------------------------

    def counters(self, handle: int) -> SaCounters:
        return SaCounters.from_mapping(self._checked(self._table.counters, handle))

    def engine_counters(self) -> EngineCounters:
        return EngineCounters.from_mapping(self._table.engine_counters())

    def rekey_needed(self, handle: int) -> bool:
        """True once an outbound SA used its last sequence number (RFC 4303 §3.3.3)."""
        return self._checked(self._table.rekey_needed, handle)

    def sequence(self, handle: int) -> int:
        """Outbound: the last sequence number sent; inbound: the highest accepted."""
        return self._checked(self._table.sequence, handle)

    def set_sequence(self, handle: int, seq: int) -> None:
        """Outbound: make `seq` the last sequence number sent; inbound: the highest received
        (tests of the 2^32 limit and of ESN, and SAs moved between engines)."""
        with self._lock:
            self._checked(self._table.set_sequence, handle, seq)
            self._reported.discard(handle)


def new_pipeline(pfes: "list[Pfe]", **kw: object) -> Pipeline:
    """The forwarding pipeline (`_pfe_core.pipeline`) over these PFEs' SA tables: PFE `i`
    of the list is engine `i` of the pipeline's tunnels and SPI map."""
    return Pipeline([p._table for p in pfes], **kw)


def pipeline_arrays(burst: Burst) -> PipelineArrays:
    """The burst's arrays as the pipeline takes them, viewed once and kept on the burst."""
    return _pipeline_view(burst)


def open_esp_gcm(key_material: bytes, esp_packet: bytes, esn_high: int | None = None) -> bytes:
    """Open a bare ESP packet (SPI ‖ seq ‖ IV ‖ ciphertext ‖ ICV) with the PFE's AES-GCM layer
    (RFC 4106), whatever its mode, and return the plaintext with its trailer.

    `key_material` is key ‖ salt (20 or 36 bytes); `esn_high` the upper half of a 64-bit ESN.
    Raises `IntegrityError` when the ICV does not verify. The PFE itself only forwards tunnel
    mode; this is the same crypto, for published vectors and diagnostics."""
    try:
        return _pfe_gcm.esp_open(key_material, esp_packet, esn_high)
    except _pfe_gcm.GcmAuthError:
        raise IntegrityError("ICV verification failed") from None
    except ValueError as exc:
        raise MalformedPacketError(str(exc)) from None

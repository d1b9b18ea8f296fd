"""The engine protocol shared by the PFE (`Pfe`) and the CPU path (`CpuEngine`).

Both engines take the same `SaSpec`, return the same per-packet `Status` codes from their burst
calls and raise the same typed errors from their single-packet calls, so the gateway can move a
tunnel from one engine to the other without caring where it lives (docs/design.md §1).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Mapping, Optional, Protocol, runtime_checkable

from .errors import (
    IntegrityError,
    IpsecError,
    MalformedPacketError,
    NotEspError,
    ReplayError,
    SaExpiredError,
    SequenceOverflowError,
    UnknownSaError,
    UnknownSpiError,
)
from .packet.burst import Burst
from .sa import SaSpec
from .stats.catalogue import counter_fields

__all__ = ["Engine", "SaCounters", "EngineCounters", "SaEvent", "Status", "raise_for_status",
           "encrypt_one", "decrypt_one", "SinglePacketCalls"]


@dataclass(frozen=True)
@counter_fields("sa")
class SaCounters:
    """Counters of one SA, one field per "sa" counter of the counter catalogue
    (inline_ipsec.stats.catalogue), in its order. `packets`/`bytes` count packets that were
    encrypted (outbound) or decrypted and accepted (inbound); `bytes` counts the inner
    (protected) packet bytes. Every other field counts packets dropped for one reason."""

    @property
    def dropped(self) -> int:
        """Packets dropped for any reason."""
        return sum(getattr(self, name) for name in self.DROPS)  # type: ignore[attr-defined]

    @classmethod
    def from_mapping(cls, values: Mapping[str, int]) -> "SaCounters":
        return cls(**{name: int(values.get(name, 0))  # type: ignore[call-arg]
                      for name in cls.COUNTERS})  # type: ignore[attr-defined]


@dataclass(frozen=True)
@counter_fields("engine")
class EngineCounters:
    """Counters of drops that belong to no SA (the packet named none): one field per
    "engine" counter of the counter catalogue."""

    @classmethod
    def from_mapping(cls, values: Mapping[str, int]) -> "EngineCounters":
        return cls(**{name: int(values.get(name, 0))  # type: ignore[call-arg]
                      for name in cls.COUNTERS})  # type: ignore[attr-defined]


@dataclass(frozen=True)
class SaEvent:
    """Something the control plane must act on.

    kind: "rekey-due" (a soft limit, or the sequence space is about to end) or "expired"
    (a hard limit: the SA carries no more traffic). limit: "seconds", "kilobytes", "packets"
    or "sequence". direction: "outbound" or "inbound". at: the engine clock's reading."""

    kind: str
    handle: int
    spi: int
    direction: str
    limit: str
    at: float



@runtime_checkable
class Engine(Protocol):
    """The one contract of an engine: the PFE (`Pfe`) and the CPU engine (`CpuEngine`) both
    implement all of it, so the gateway and the distributor never probe for a method.

    Handles are non-negative integers that fit an int32 (`Burst.sa`); a handle names one SA
    for its whole life and is never reused for another, so a handle kept after `remove` gets
    `Status.NO_SA` / `UnknownSaError`."""

    #: "pfe" or "cpu"; shown as `Hardware Offloaded: Yes` for the PFE.
    kind: str
    #: the library doing the crypto: "openssl" or "ipsec-mb" (PFE), "cryptography" or "qat"
    #: (CPU engine); `show security ipsec security-associations detail` prints the PFE's.
    backend: str

    # install / update / remove
    def add_outbound(self, spec: SaSpec) -> int: ...
    def add_inbound(self, spec: SaSpec) -> int: ...
    def update(self, handle: int, spec: SaSpec) -> None:
        """Apply new options (DF bit, DSCP copy) to an installed SA in place, keeping its
        sequence number and anti-replay window; `UnsupportedSaError` for anything else."""
    def remove(self, handle: int) -> None: ...
    def spec(self, handle: int) -> SaSpec: ...
    def handles(self) -> list[int]: ...
    def lookup_inbound(self, spi: int) -> int: ...
    # packets
    def encrypt(self, handle: int, packet: bytes) -> bytes: ...
    def decrypt(self, packet: bytes) -> bytes: ...
    def encrypt_burst(self, burst: Burst) -> int: ...
    def decrypt_burst(self, burst: Burst) -> int: ...
    # sequence numbers (RFC 4303 §3.3.3) and the events the control plane acts on
    def sequence(self, handle: int) -> int: ...
    def set_sequence(self, handle: int, seq: int) -> None: ...
    def rekey_needed(self, handle: int) -> bool: ...
    def next_event(self) -> Optional[SaEvent]: ...
    # counters
    def counters(self, handle: int) -> SaCounters: ...
    def engine_counters(self) -> EngineCounters: ...
    def __len__(self) -> int: ...


class Status(IntEnum):
    """Per-packet result of every engine's burst calls. The C kernels return the same codes
    (`_pfe_core.status.Status`; `inline_ipsec.pfe` refuses to load if the two differ), so the
    CPU engine and everything above the engines use these without the C extension."""

    OK = 0
    AUTH_FAILED = 1          # ICV did not verify (RFC 4303 §3.4.4)
    REPLAY_DUPLICATE = 2     # already received (RFC 4303 §3.4.3)
    REPLAY_BELOW_WINDOW = 3  # left of the anti-replay window
    MALFORMED = 4            # truncated or bad header, absurd length, fragment
    BAD_TRAILER = 5          # bad padding bytes, pad length or next header
    UNKNOWN_SPI = 6          # no inbound SA with this SPI
    SEQ_OVERFLOW = 7         # outbound sequence space exhausted: rekey needed
    DUMMY = 8                # next header 59: dropped silently (RFC 4303 §2.6)
    NO_SA = 9                # the handle names no installed SA of that direction
    NO_ROOM = 10             # the result does not fit the slot or an IP length field
    NOT_ESP = 11             # NAT-T: non-ESP marker, an IKE message (RFC 3948 §2.2)
    KEEPALIVE = 12           # NAT-T keepalive 0xFF (RFC 3948 §2.3)
    EXPIRED = 13             # hard lifetime reached (CPU engine)
    CRYPTO_ERROR = 14        # the crypto library failed for a reason other than the ICV
    ECN_DROP = 15            # outer CE over a Not-ECT inner packet: MUST drop (RFC 6040 §4.2)


_STATUS_ERRORS: dict[int, tuple[type[IpsecError], str]] = {
    Status.AUTH_FAILED: (IntegrityError, "ICV verification failed"),
    Status.REPLAY_DUPLICATE: (ReplayError, "duplicate sequence number"),
    Status.REPLAY_BELOW_WINDOW: (ReplayError, "sequence number below the anti-replay window"),
    Status.MALFORMED: (MalformedPacketError, "truncated or malformed packet"),
    Status.BAD_TRAILER: (MalformedPacketError, "bad ESP padding or next header"),
    Status.UNKNOWN_SPI: (UnknownSpiError, "no inbound SA with this SPI"),
    Status.SEQ_OVERFLOW: (SequenceOverflowError,
                          "sequence number space exhausted; the SA must be rekeyed"),
    Status.NO_SA: (UnknownSaError, "no installed SA of that direction for this handle "
                                   "(never issued, or its SA was removed)"),
    Status.NO_ROOM: (MalformedPacketError, "the packet is too large for the slot or for IP"),
    Status.NOT_ESP: (NotEspError, "not ESP: IKE message behind the non-ESP marker"),
    Status.KEEPALIVE: (NotEspError, "not ESP: NAT-T keepalive"),
    Status.EXPIRED: (SaExpiredError, "the SA reached its hard lifetime"),
    Status.CRYPTO_ERROR: (IpsecError, "the crypto library failed"),
    Status.ECN_DROP: (MalformedPacketError,
                      "outer CE mark over a Not-ECT inner packet: dropped (RFC 6040 §4.2)"),
}


def encrypt_one(engine: "Engine", handle: int, packet: bytes) -> bytes:
    """An engine's single-packet encrypt: a burst of one; the typed error on a drop."""
    burst = Burst.single(packet, handle)
    engine.encrypt_burst(burst)
    raise_for_status(int(burst.status[0]), "encrypt")
    return burst.packet(0)


def decrypt_one(engine: "Engine", packet: bytes) -> bytes:
    """An engine's single-packet decrypt: a burst of one; the typed error on a drop, and b""
    for a dummy packet (next header 59, RFC 4303 §2.6), which is dropped without an error."""
    burst = Burst.single(packet, -1)
    engine.decrypt_burst(burst)
    status = int(burst.status[0])
    raise_for_status(status, "decrypt")
    return b"" if status == Status.DUMMY else burst.packet(0)


class SinglePacketCalls:
    """`encrypt`/`decrypt` for one packet, as bursts of one, for any engine with burst calls
    (docs/design.md §4: one code path)."""

    def encrypt(self, handle: int, packet: bytes) -> bytes:
        """Encrypt one inner IP packet: a burst of one. Raises the typed error on a drop."""
        return encrypt_one(self, handle, packet)  # type: ignore[arg-type]

    def decrypt(self, packet: bytes) -> bytes:
        """Decrypt one outer packet to its inner IP packet: a burst of one.

        Raises the typed error on a drop; a dummy packet (next header 59) returns b""."""
        return decrypt_one(self, packet)  # type: ignore[arg-type]


def raise_for_status(status: int, what: str = "") -> None:
    """Raise the typed error for a non-OK, non-dummy status (single-packet calls only)."""
    if status == Status.OK or status == Status.DUMMY:
        return
    cls, text = _STATUS_ERRORS.get(status, (IpsecError, f"status {status}"))
    raise cls(f"{what}: {text}" if what else text)


"""SA lifetimes and the events they raise (RFC 4301 §4.4.2.1, "SA Lifetime").

Each SA may have soft and hard limits in seconds, kilobytes and packets (`SaSpec.lifetime`).
Crossing a soft limit raises one `SaEvent(kind="rekey-due")` so IKE starts a rekey; crossing a
hard limit raises one `SaEvent(kind="expired")` and stops the SA: every later packet is dropped
with `Status.EXPIRED` and counted in `expired`. Kilobytes count the protected (inner) bytes, as
Junos `lifetime-kilobytes`. Time comes from the engine's injected clock, read once per burst,
never per packet. Events are queued and polled (`CpuEngine.next_event()`), never printed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..engine import SaEvent
from ..sa import Lifetime

REKEY_DUE = "rekey-due"
EXPIRED = "expired"

#: A limit that is never reached (counters are bounded by 2^64 on any real SA).
NEVER = 1 << 64


class LifetimeState:
    """The lifetime book-keeping of one SA direction.

    The per-packet check is two integer comparisons against `next_packets`/`next_bytes`, the
    nearest limit not yet crossed; `crossed` does the rest only when one of them is reached."""

    __slots__ = (
        "_sink",
        "direction",
        "expired",
        "handle",
        "installed",
        "lifetime",
        "next_bytes",
        "next_packets",
        "soft_done",
        "spi",
    )

    def __init__(self, handle: int, spi: int, direction: str, lifetime: Lifetime,
                 now: float, sink: Callable[[SaEvent], None]) -> None:
        self.handle = handle
        self.spi = spi
        self.direction = direction
        self.lifetime = lifetime
        self.installed = now
        self.soft_done = False
        self.expired = False
        self._sink = sink
        self._refresh()

    @staticmethod
    def _kb(v: int | None) -> int:
        return NEVER if v is None else v * 1024

    @staticmethod
    def _n(v: int | None) -> int:
        return NEVER if v is None else v

    def _refresh(self) -> None:
        lt = self.lifetime
        hard_p, hard_b = self._n(lt.hard_packets), self._kb(lt.hard_kilobytes)
        if self.expired:
            self.next_packets = self.next_bytes = NEVER
        elif self.soft_done:
            self.next_packets, self.next_bytes = hard_p, hard_b
        else:
            self.next_packets = min(self._n(lt.soft_packets), hard_p)
            self.next_bytes = min(self._kb(lt.soft_kilobytes), hard_b)

    def _emit(self, kind: str, limit: str, now: float) -> None:
        self._sink(SaEvent(kind, self.handle, self.spi, self.direction, limit, now))

    def crossed(self, packets: int, nbytes: int, now: float) -> None:
        """Called when `packets` or `nbytes` reached `next_packets`/`next_bytes`."""
        lt = self.lifetime
        if not self.soft_done:
            if lt.soft_packets is not None and packets >= lt.soft_packets:
                self.soft(now, "packets")
            elif lt.soft_kilobytes is not None and nbytes >= lt.soft_kilobytes * 1024:
                self.soft(now, "kilobytes")
        if not self.expired:
            if lt.hard_packets is not None and packets >= lt.hard_packets:
                self.expire(now, "packets")
            elif lt.hard_kilobytes is not None and nbytes >= lt.hard_kilobytes * 1024:
                self.expire(now, "kilobytes")
        self._refresh()

    def soft(self, now: float, limit: str) -> None:
        if not self.soft_done:
            self.soft_done = True
            self._emit(REKEY_DUE, limit, now)
            self._refresh()

    def expire(self, now: float, limit: str) -> None:
        if not self.expired:
            if not self.soft_done:     # a hard limit implies the soft one
                self.soft_done = True
            self.expired = True
            self._emit(EXPIRED, limit, now)
            self._refresh()

    def check_time(self, now: float) -> bool:
        """Apply the time limits at `now`; True when the SA is (now) expired."""
        lt = self.lifetime
        age = now - self.installed
        if not self.soft_done and lt.soft_seconds is not None and age >= lt.soft_seconds:
            self.soft(now, "seconds")
        if not self.expired and lt.hard_seconds is not None and age >= lt.hard_seconds:
            self.expire(now, "seconds")
        return self.expired

"""Fake engines for the distributor tests: every install/remove is logged in order."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import pytest

from inline_ipsec.errors import CapacityError
from inline_ipsec.sa import SaSpec


@dataclasses.dataclass
class FakeCounters:
    packets: int = 0
    bytes: int = 0


class FakeEngine:
    """Records every install/remove in a log shared by all engines of a test, in order, like
    strongSwan's mock kernel (`mock_ipsec.h`). `capacity` is in SAs (None: unlimited)."""

    def __init__(self, kind: str, name: str, log: list[tuple[str, str, int]],
                 capacity: Optional[int] = None, with_update: bool = False) -> None:
        self.kind = kind
        self.name = name
        self.log = log
        self.capacity = capacity
        self.sas: dict[int, tuple[str, SaSpec]] = {}
        self._next = 0
        self.updates: list[tuple[int, SaSpec]] = []
        if with_update:
            self.update = self._update

    def _add(self, direction: str, spec: SaSpec) -> int:
        if self.capacity is not None and len(self.sas) >= self.capacity:
            raise CapacityError(f"{self.name}: SA table full")
        handle = self._next
        self._next += 1
        self.sas[handle] = (direction, spec)
        self.log.append((f"add_{direction}", self.name, spec.spi))
        return handle

    def add_outbound(self, spec: SaSpec) -> int:
        return self._add("outbound", spec)

    def add_inbound(self, spec: SaSpec) -> int:
        return self._add("inbound", spec)

    def remove(self, handle: int) -> None:
        _, spec = self.sas.pop(handle)
        self.log.append(("remove", self.name, spec.spi))

    def counters(self, handle: int) -> FakeCounters:
        return FakeCounters(packets=handle, bytes=10 * handle)

    def _update(self, handle: int, spec: SaSpec) -> None:
        self.sas[handle] = (self.sas[handle][0], spec)
        self.updates.append((handle, spec))

    def __len__(self) -> int:
        return len(self.sas)

    def spis(self, direction: Optional[str] = None) -> list[int]:
        return sorted(s.spi for d, s in self.sas.values() if direction in (None, d))


@pytest.fixture
def log() -> list[tuple[str, str, int]]:
    return []


@pytest.fixture
def make_engine(log: list[tuple[str, str, int]]) -> Callable[..., FakeEngine]:
    def make(kind: str = "pfe", name: Optional[str] = None, **kw: Any) -> FakeEngine:
        return FakeEngine(kind, name or kind, log, **kw)
    return make


def gcm_pair(spi_out: int, spi_in: int, **kw: Any) -> tuple[SaSpec, SaSpec]:
    """An AES-GCM-256 SA pair between 192.0.2.1 and 198.51.100.1."""
    out = SaSpec(spi=spi_out, cipher="aes-gcm-256", key=bytes(36), tunnel_src="192.0.2.1",
                 tunnel_dst="198.51.100.1", **kw)
    inb = SaSpec(spi=spi_in, cipher="aes-gcm-256", key=bytes(36), tunnel_src="198.51.100.1",
                 tunnel_dst="192.0.2.1", **kw)
    return out, inb


@pytest.fixture
def pair() -> Callable[..., tuple[SaSpec, SaSpec]]:
    return gcm_pair

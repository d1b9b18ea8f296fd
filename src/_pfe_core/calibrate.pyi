"""Type stubs of calibrate.pyx: the raw-crypto references of the benchmark ratios."""
from typing import Protocol, Sequence

import numpy as np
import numpy.typing as npt


class _Slots(Protocol):
    data: npt.NDArray[np.uint8]       # [slots, slot size]
    offset: npt.NDArray[np.uint32]
    length: npt.NDArray[np.uint32]
    count: int


class RawGcm:
    """One AES-GCM key on one backend, sealing or opening one burst per call."""

    counter: int
    backend: str

    def __init__(self, key: bytes, encrypt: bool = True, backend: str = "openssl") -> None: ...
    def run(self, data: npt.NDArray[np.uint8], offset: npt.NDArray[np.uint32],
            length: npt.NDArray[np.uint32], n: int) -> int: ...


class RawBursts:
    """The AES-GCM calls of the PFE over many bursts, in a C loop timed inside C."""

    encrypt: bool
    backend: str
    verified: int          # calls that succeeded in the last time_ns
    payload_bytes: int     # ESP payload bytes of one pass

    def __init__(self, key: bytes, salt: bytes, encrypt: bool, backend: str,
                 bursts: Sequence[_Slots]) -> None: ...
    @property
    def packets(self) -> int: ...
    def time_ns(self, rounds: int = 1) -> int: ...


def core_round_trip_ns(rounds: int = 200000) -> float:
    """Nanoseconds for a cache line to go to another thread's core and back."""
    ...


IDLE_BURST_MAX_NS: int


def idle_burst(ns: int) -> None:
    """A burst call with no work: gives up the GIL as a burst does, busy in C for `ns`."""
    ...

# cython: language_level=3
"""A Python handle on the PFE's anti-replay window (replay.pxd), for tests and tools.

The kernels use the inline functions directly; this class runs exactly that code."""
from libc.stdint cimport uint32_t, uint64_t
from _pfe_core.replay cimport (
    replay_t, replay_init, replay_infer, replay_check, replay_advance, replay_accept,
    REPLAY_MAX_WINDOW, REPLAY_MIN_WINDOW,
)
from _pfe_core.status cimport *

MAX_WINDOW = REPLAY_MAX_WINDOW
MIN_WINDOW = REPLAY_MIN_WINDOW


cdef class ReplayWindow:
    """RFC 4303 §3.4.3 window of `window` packets (0 = off, else 32..4096), optional ESN."""

    cdef replay_t r

    def __init__(self, int window, bint esn=False):
        if window != 0 and not REPLAY_MIN_WINDOW <= window <= REPLAY_MAX_WINDOW:
            raise ValueError(
                f"anti-replay window {window} is outside the PFE's range "
                f"(0 or {REPLAY_MIN_WINDOW}..{REPLAY_MAX_WINDOW})")
        replay_init(&self.r, window, esn)

    @property
    def top(self) -> int:
        return self.r.top

    def infer(self, uint32_t seq_lo):
        """The full sequence number for a received low half, or None (below sequence 1)."""
        cdef uint64_t seq
        if not replay_infer(&self.r, seq_lo, &seq):
            return None
        return seq

    def check(self, uint64_t seq) -> int:
        """Status of a full sequence number against the window, without changing it."""
        return replay_check(&self.r, seq)

    def advance(self, uint64_t seq) -> None:
        replay_advance(&self.r, seq)

    def receive(self, uint32_t seq_lo) -> int:
        """Infer, then check and (if OK) advance with `replay_accept`: what the kernel does
        for a packet whose ICV verified. Returns the status."""
        cdef uint64_t seq
        if not replay_infer(&self.r, seq_lo, &seq):
            return REPLAY_BELOW_WINDOW
        return replay_accept(&self.r, seq)

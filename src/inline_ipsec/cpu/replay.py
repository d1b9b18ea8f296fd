"""Anti-replay window of any size for the CPU path (RFC 4303 §3.4.3, Appendix A).

The PFE keeps a fixed ring of 64-bit words (RFC 6479) limited to 4096 packets; the CPU path
keeps the window as one Python integer used as a bitmap (bit k set: sequence number
`top - k` was received), so any size works (8192, 65536, ...) at the cost of a shift of a
`window`-bit integer when the window slides.

It has exactly the PFE's semantics and two-phase use: `check` (read-only) before the ICV is
verified, then `check` again and `advance` after it verified, so a forged packet never moves
the window and duplicates inside one burst are still caught. ESN high-order bits are inferred
per RFC 4303 Appendix A2.1; with anti-replay off a 64-packet window is used only for that
inference, as on the PFE.
"""
from __future__ import annotations

from ..engine import Status

#: The window used only to infer ESN high bits when anti-replay is switched off (as the PFE).
ESN_INFER_WINDOW = 64

OK = int(Status.OK)
DUPLICATE = int(Status.REPLAY_DUPLICATE)
BELOW = int(Status.REPLAY_BELOW_WINDOW)


class ReplayWindow:
    """RFC 4303 §3.4.3 window of `window` packets (0 = off), optionally with ESN."""

    __slots__ = ("_infer_w", "_trim", "bits", "esn", "top", "window")

    def __init__(self, window: int, esn: bool = False) -> None:
        if window < 0:
            raise ValueError("the anti-replay window is 0 (off) or a positive size")
        self.window = window
        self.esn = esn
        self.top = 0          # highest sequence number accepted (64-bit with ESN); 0 = none
        self.bits = 0         # bit k: top - k received
        self._infer_w = window if window else ESN_INFER_WINDOW
        self._trim = 2 * window + 64

    def reset(self, top: int) -> None:
        """Make `top` the highest number received with an empty window below it, as the PFE's
        `set_sequence` does (tests of ESN, SAs moved between engines)."""
        self.top = top
        self.bits = 0

    def infer(self, seq_lo: int) -> int | None:
        """The full sequence number of a received low half (RFC 4303 Appendix A2.1), or None
        when it can only lie below sequence number 1."""
        if not self.esn:
            return seq_lo
        w = self._infer_w
        top = self.top
        tl = top & 0xFFFFFFFF
        th = top >> 32
        bottom = (tl - w + 1) & 0xFFFFFFFF
        if tl >= w - 1:                   # Case A: the window lies within one subspace
            if seq_lo >= bottom:
                return (th << 32) | seq_lo
            return ((th + 1) << 32) | seq_lo
        if seq_lo >= bottom:              # Case B: the window spans two subspaces
            if th == 0:
                return None
            return ((th - 1) << 32) | seq_lo
        return (th << 32) | seq_lo

    def check(self, seq: int) -> int:
        """Status.OK, REPLAY_DUPLICATE or REPLAY_BELOW_WINDOW; changes nothing."""
        if seq == 0:
            return BELOW                  # sequence numbers start at 1 (RFC 4303 §3.3.3)
        top = self.top
        if not self.window or seq > top:
            return OK
        diff = top - seq
        if diff >= self.window:
            return BELOW
        if (self.bits >> diff) & 1:
            return DUPLICATE
        return OK

    def advance(self, seq: int) -> None:
        """Record `seq` (whose ICV verified) as received, sliding the window when it is the new
        highest (RFC 4303 §3.4.3)."""
        top = self.top
        if seq > top:
            if self.window:
                shift = seq - top
                bits = 1 if shift >= self.window else (self.bits << shift) | 1
                if bits.bit_length() > self._trim:
                    bits &= (1 << self.window) - 1
                self.bits = bits
            self.top = seq
        elif self.window:
            self.bits |= 1 << (top - seq)

    def receive(self, seq_lo: int) -> int:
        """Infer, check and (if OK) advance: what the engine does for a packet whose ICV
        verified. Returns the status (the PFE's `ReplayWindow.receive`)."""
        seq = self.infer(seq_lo)
        if seq is None:
            return BELOW
        st = self.check(seq)
        if st == OK:
            self.advance(seq)
        return st

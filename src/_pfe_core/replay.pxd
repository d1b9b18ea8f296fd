# Anti-replay window (RFC 4303 §3.4.3) as a ring of 64-bit words (RFC 6479), with Extended
# Sequence Number high-bit inference (RFC 4303 Appendix A2). Inline so every kernel gets the
# code without a call. The window is used in two phases: `replay_check` (read-only) before the
# ICV is verified, and `replay_check` again plus `replay_advance` only after it verified, so a
# forged packet cannot move the window and duplicates inside one burst are still caught.
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from _pfe_core.status cimport *

cdef enum:
    REPLAY_MAX_WINDOW = 4096
    REPLAY_MIN_WINDOW = 32
    # Ring size in 64-bit words: a power of two holding the largest window plus one word of
    # slack, so a whole window always survives the word being recycled (RFC 6479 §2).
    REPLAY_WORDS = 128
    # The window used only to infer ESN high bits when anti-replay is switched off.
    REPLAY_ESN_INFER_WINDOW = 64

ctypedef struct replay_t:
    uint64_t top        # highest sequence number accepted so far (64-bit with ESN); 0 = none
    uint32_t window     # window size in packets; 0 = anti-replay off
    uint8_t esn
    uint64_t bits[REPLAY_WORDS]


cdef inline bint replay_infer(const replay_t *r, uint32_t seq_lo, uint64_t *seq) noexcept nogil:
    """The full sequence number of a received low half (RFC 4303 A2.1). False when the packet
    can only lie below sequence number 1 (it is then below the window)."""
    cdef uint64_t th
    cdef uint32_t tl, w, bottom
    if not r.esn:
        seq[0] = seq_lo
        return True
    w = r.window if r.window else REPLAY_ESN_INFER_WINDOW
    tl = <uint32_t>r.top
    th = r.top >> 32
    bottom = <uint32_t>(tl - w + 1)  # modulo 2^32, as in the RFC's "Tl - W + 1"
    if tl >= w - 1:
        # Case A: the window lies within one 2^32 subspace.
        if seq_lo >= bottom:
            seq[0] = (th << 32) | seq_lo
        else:
            seq[0] = ((th + 1) << 32) | seq_lo
    else:
        # Case B: the window spans two subspaces.
        if seq_lo >= bottom:
            if th == 0:
                return False
            seq[0] = ((th - 1) << 32) | seq_lo
        else:
            seq[0] = (th << 32) | seq_lo
    return True


cdef inline Status replay_check(const replay_t *r, uint64_t seq) noexcept nogil:
    """OK, REPLAY_DUPLICATE or REPLAY_BELOW_WINDOW; changes nothing."""
    if seq == 0:
        return REPLAY_BELOW_WINDOW  # sequence numbers start at 1 (RFC 4303 §3.3.3)
    if r.window == 0 or seq > r.top:
        return OK
    if seq + r.window <= r.top:
        return REPLAY_BELOW_WINDOW
    if r.bits[(seq >> 6) & (REPLAY_WORDS - 1)] & ((<uint64_t>1) << (seq & 63)):
        return REPLAY_DUPLICATE
    return OK


cdef inline void replay_advance(replay_t *r, uint64_t seq) noexcept nogil:
    """Record `seq` as received, sliding the window when it is the new highest."""
    cdef uint64_t cur, new, k, words
    if seq > r.top:
        if r.window:
            cur = r.top >> 6
            new = seq >> 6
            words = new - cur
            if words > REPLAY_WORDS:
                words = REPLAY_WORDS
            k = 1
            while k <= words:
                r.bits[(cur + k) & (REPLAY_WORDS - 1)] = 0
                k += 1
        r.top = seq
    if r.window:
        r.bits[(seq >> 6) & (REPLAY_WORDS - 1)] |= (<uint64_t>1) << (seq & 63)


cdef inline void replay_advance_above(replay_t *r, uint64_t seq) noexcept nogil:
    """`replay_advance` for a number known to be above the top: within the top's word (63
    packets in 64) one bit and the top; otherwise the general slide."""
    if r.window and (seq >> 6) == (r.top >> 6):
        r.bits[(seq >> 6) & (REPLAY_WORDS - 1)] |= (<uint64_t>1) << (seq & 63)
        r.top = seq
    else:
        replay_advance(r, seq)


cdef inline Status replay_accept(replay_t *r, uint64_t seq) noexcept nogil:
    """`replay_check`, and when it says OK, `replay_advance`: the second phase, after the ICV
    verified. The common case, a new highest number, takes one comparison."""
    cdef Status st
    if seq > r.top and seq != 0:
        replay_advance(r, seq)
        return OK
    st = replay_check(r, seq)
    if st == OK:
        replay_advance(r, seq)
    return st


cdef inline void replay_init(replay_t *r, uint32_t window, bint esn) noexcept nogil:
    cdef int k
    r.top = 0
    r.window = window
    r.esn = esn
    for k in range(REPLAY_WORDS):
        r.bits[k] = 0

# Per-packet result codes of every burst kernel: a C enum for the kernels and, through
# `cpdef`, a Python IntEnum (`_pfe_core.status.Status`) for the engines. The CPU engine uses
# the same codes, so the gateway never cares which engine produced a status.
cpdef enum Status:
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

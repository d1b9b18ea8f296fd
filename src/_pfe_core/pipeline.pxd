# The gateway's forwarding pipeline as plain C data (pipeline.pyx): the tables the control
# plane fills from Python (FIB, tunnels with their child SA pairs and selectors, the SPI map)
# and the counters the per-packet steps keep. Bounded: every table grows only up to a limit
# given at construction, and an insert past it is refused in Python, never per packet.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t
from _pfe_core.sa cimport sa_table_t
from _pfe_core.counters cimport gateway_counters_t, tunnel_counters_t

cdef enum:
    PL_MAX_PFES = 16
    PL_ENGINE_CPU = 255         # an SPI map entry of a tunnel carried by the CPU engine
    PL_STATUS_CODES = 32        # per-tunnel inbound drops by Status (Status < 32)
    PL_SESSION_SLOTS = 131072   # open addressing, at most half full
    PL_SESSION_MAX = 65536      # as the Python model: the session count saturates here

cpdef enum Verdict:
    WIRE = 0                # the slot holds an outer packet for a peer
    DELIVER = 1             # the slot holds a decrypted inner packet for the local side
    DROP_MALFORMED = 2      # not an IP packet we can read (inner outbound, outer inbound)
    DROP_NO_ROUTE = 3       # no route into a tunnel, or no child SA whose selector matches
    DROP_UNKNOWN_SPI = 4    # no SA with this SPI (RFC 4303 §3.4.2)
    DROP_ENGINE = 5         # the ESP kernel dropped it: `status` says why
    DROP_TS = 6             # decrypted, outside the SA's selectors (RFC 4301 §5.2 step 4)
    DROP_KEEPALIVE = 7      # NAT-T keepalive, counted (RFC 3948 §2.3)
    PUNT_IKE = 16           # IKE: UDP 500, or UDP behind the non-ESP marker (RFC 3948 §2.2)
    PUNT_FRAGMENT = 17      # an outer IPv4 fragment to reassemble (RFC 791)
    PUNT_TOO_BIG = 18       # larger than the tunnel MTU: pre-fragment or ICMP (RFC 4301 §8)
    PUNT_CPU = 19           # its tunnel is carried by the CPU engine
    PUNT_ROUTE = 20         # routed to a tunnel that has no SAs yet (on-traffic setup)
    PUNT_HAIRPIN = 21       # decrypted, routed into another tunnel the C path cannot take
    SKIPPED = 255           # not selected by this call

ctypedef struct pl_net_t:
    uint8_t family          # 4 or 6
    uint8_t plen
    uint8_t addr[16]        # masked to plen

ctypedef struct pl_sel_t:   # a traffic selector pair: empty lists match any address
    pl_net_t *nets          # nlocal local networks, then nremote remote networks
    uint16_t nlocal
    uint16_t nremote

ctypedef struct pl_pair_t:  # one child SA pair of a tunnel, as the data path needs it
    int32_t out_handle      # the outbound SA's handle in the tunnel's PFE table
    uint32_t mtu_limit      # the largest inner packet whose outer packet fits the MTU

ctypedef struct pl_tunnel_t:
    uint8_t state           # TUNNEL_FREE, TUNNEL_PENDING (routed to, no SAs), TUNNEL_ACTIVE
    uint8_t cpu             # carried by the CPU engine: its packets are punted
    uint8_t engine          # index of its PFE table
    uint16_t npairs
    uint16_t nsel
    pl_pair_t *pairs
    pl_sel_t *sels          # selector i belongs to pair i; pairs beyond nsel take any
    tunnel_counters_t c
    uint64_t in_drop[PL_STATUS_CODES]

ctypedef struct fib_entry_t:
    uint8_t used
    uint8_t plen
    uint16_t ntids
    uint8_t addr[16]
    int32_t *tids           # the tunnels behind the prefix, tried in order

ctypedef struct fib_t:      # one address family: a hash table per prefix length, in one table
    fib_entry_t *slots
    uint32_t cap            # power of two; at most half full
    uint32_t count
    uint32_t per_len[129]
    uint8_t lens[129]       # the prefix lengths present, longest first
    uint32_t nlens

ctypedef struct spi_entry_t:
    uint32_t spi
    uint8_t used
    uint8_t engine          # PFE table index, or PL_ENGINE_CPU
    int32_t tid
    int32_t pair            # child SA pair index; -1: a draining SA after a rekey
    int32_t handle

ctypedef struct spi_map_t:
    spi_entry_t *slots
    uint32_t cap
    uint32_t count

ctypedef struct path_counters_t:   # the PFE path of this gateway
    uint64_t encrypted
    uint64_t decrypted
    uint64_t encrypt_drops
    uint64_t decrypt_drops
    uint64_t burst_calls    # burst calls in which a packet reached a PFE kernel
    uint64_t ns             # time spent in those calls

ctypedef struct last_route_t:   # the last routing decision: bursts are mostly one flow
    uint64_t gen            # pipeline_t.gen when it was taken
    uint32_t klen           # 8 (IPv4) or 32 (IPv6); 0: empty
    uint8_t key[32]         # source ‖ destination
    int32_t tid
    int32_t pair
    int result

ctypedef struct last_spi_t:     # the last SPI found: a burst is mostly one SA
    uint64_t gen
    uint32_t spi
    const spi_entry_t *entry

ctypedef struct last_ts_t:      # the last inbound selector verdict, per (tunnel, pair, flow)
    uint64_t gen
    int32_t tid
    int32_t pair
    uint32_t klen           # 0: empty
    uint8_t key[32]         # source ‖ destination
    uint8_t ok

ctypedef struct pipeline_t:
    sa_table_t *tables[PL_MAX_PFES]
    int *locks[PL_MAX_PFES]   # each table's lock word (table.pxd): held around its kernel calls
    int *held                 # the one lock a burst call holds now, NULL between calls
    uint32_t ntables
    pl_tunnel_t *tunnels
    uint32_t max_tunnels
    fib_t fib4
    fib_t fib6
    uint32_t max_routes
    spi_map_t spis
    uint32_t max_spis
    uint64_t *sessions
    uint32_t nsessions
    uint8_t hairpin
    uint64_t gen              # bumped by every change to the FIB, the tunnels or the SPI map
    last_route_t last_route
    last_spi_t last_spi
    last_ts_t last_ts
    uint32_t last_session_klen
    uint8_t last_session[33]  # source ‖ destination ‖ protocol of the last session counted
    uint32_t kernel_calls     # PFE kernel calls made by the last burst call
    gateway_counters_t c
    path_counters_t pfe


cdef class PipelineArrays:
    """The arrays of a burst the pipeline reads and writes, viewed once (pipeline.pyx); the
    I/O stage (burst_io.pyx) fills and drains the same slots."""
    cdef uint8_t[:, ::1] data
    cdef uint32_t[::1] offset
    cdef uint32_t[::1] length
    cdef int32_t[::1] sa
    cdef uint8_t[::1] status
    cdef uint8_t[::1] verdict
    cdef int32_t[::1] tunnel
    cdef readonly object source

    cdef int check(self, Py_ssize_t n) except -1

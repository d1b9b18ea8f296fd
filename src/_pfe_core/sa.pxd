# The PFE's SA table as plain C data: fixed capacity, allocated once, no Python objects.
# A slot holds one SA direction; its EVP_CIPHER_CTX is created and keyed at install.
#
# Handles: an SA's handle is its slot plus the slot's generation, packed in a non-negative
# int32 (generation << HANDLE_SLOT_BITS | slot). Every install in a slot takes the next
# generation, and the kernels compare the whole handle with the one stored in the slot, so a
# handle kept after its SA was removed names nothing (NO_SA) instead of the next SA installed
# in that slot. Free slots are reused first in, first out, so a slot's generation advances
# only after every other free slot was reused: a stale handle could alias only after its own
# slot went through all HANDLE_GEN_MAX generations while the handle was still held, which is
# 524,287 installs in that one slot (with k free slots, k times as many installs in all).
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t
from _pfe_core._openssl cimport EVP_CIPHER_CTX
from _pfe_core.replay cimport replay_t
from _pfe_core.imb cimport pfe_imb, pfe_gcm_key

cdef enum:
    PFE_MAX_SAS = 4000          # the ASIC's limit, both directions counted
    SPI_BUCKETS = 8192          # power of two > PFE_MAX_SAS: short chains
    OUTER_HDR_MAX = 48          # IPv6 (40) + UDP (8)
    ESP_HDR_LEN = 16            # SPI + sequence + 8-byte IV
    HANDLE_SLOT_BITS = 12       # 2^12 = 4096 >= PFE_MAX_SAS slots
    HANDLE_SLOT_MASK = 0xFFF
    HANDLE_GEN_MAX = 0x7FFFF    # 19 bits: the handle stays a non-negative int32

cdef enum SaDirection:
    SA_FREE = 0
    SA_OUTBOUND = 1
    SA_INBOUND = 2

cdef enum Backend:
    BACKEND_OPENSSL = 0
    BACKEND_IPSEC_MB = 1

cdef enum DfMode:
    DF_CLEAR = 0
    DF_SET = 1
    DF_COPY = 2

ctypedef struct sa_counters_t:
    uint64_t packets
    uint64_t bytes
    uint64_t auth_failed
    uint64_t replay_duplicate
    uint64_t replay_below_window
    uint64_t malformed
    uint64_t bad_trailer
    uint64_t seq_overflow
    uint64_t dummy
    uint64_t no_room
    uint64_t ecn_drop

ctypedef struct sa_t:
    EVP_CIPHER_CTX *ctx       # OpenSSL backend: keyed once at install
    pfe_gcm_key *imb_key      # intel-ipsec-mb backend: expanded keys and GHASH tables
    uint8_t key_len           # 16 or 32
    uint32_t spi
    uint8_t direction         # SaDirection
    uint8_t esn
    uint8_t udp_encap
    uint8_t ipv6              # outer header family
    uint8_t df_mode           # DfMode
    uint8_t copy_outer_dscp
    uint8_t rekey_needed
    uint8_t salt[4]
    uint16_t outer_len        # outer IP (+UDP) header bytes before ESP
    uint64_t seq              # outbound: last sequence number sent
    int32_t handle            # slot + generation of the installed SA; -1 when free
    int32_t next_in_bucket    # inbound SPI hash chain
    uint8_t hdr[OUTER_HDR_MAX]  # outer header template (addresses, TTL, protocol, ports)
    sa_counters_t c
    replay_t replay           # inbound only

ctypedef struct engine_counters_t:
    uint64_t unknown_spi
    uint64_t malformed
    uint64_t not_esp
    uint64_t keepalive
    uint64_t no_sa

ctypedef struct sa_table_t:
    sa_t *sas                 # PFE_MAX_SAS slots
    int32_t *buckets          # SPI_BUCKETS chain heads (slots), -1 = empty
    uint32_t *generation      # per slot: the generation of its latest SA (0: never used)
    int32_t *free_slots       # ring of free slots, oldest freed first (FIFO reuse)
    uint32_t free_head        # index in free_slots of the next slot to reuse
    uint32_t free_count
    uint32_t count
    uint8_t backend           # Backend, fixed for the table's life
    pfe_imb *imb              # intel-ipsec-mb manager (one per table: not thread-safe)
    engine_counters_t c


cdef inline uint32_t spi_bucket(uint32_t spi) noexcept nogil:
    # Fibonacci hashing: SPIs are often sequential; the multiply spreads them over the buckets.
    return (spi * <uint32_t>2654435761u) >> 19   # 32 - log2(SPI_BUCKETS)


cdef inline sa_t *sa_by_handle(sa_table_t *t, int32_t h) noexcept nogil:
    """The SA a handle names, or NULL: out of range, free slot, or an older generation."""
    cdef uint32_t slot
    if h < 0:
        return NULL
    slot = <uint32_t>h & HANDLE_SLOT_MASK
    if slot >= PFE_MAX_SAS or t.sas[slot].handle != h:
        return NULL
    return &t.sas[slot]


cdef inline int32_t sa_lookup_inbound(const sa_table_t *t, uint32_t spi) noexcept nogil:
    """The slot of the inbound SA with this SPI, or -1."""
    cdef int32_t i = t.buckets[spi_bucket(spi)]
    while i >= 0:
        if t.sas[i].spi == spi:
            return i
        i = t.sas[i].next_in_bucket
    return -1

# The PFE's SA table as plain C data: fixed capacity, allocated once, no Python objects.
# A slot holds one SA direction; its EVP_CIPHER_CTX is created and keyed at install.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t
from _pfe_core._openssl cimport EVP_CIPHER_CTX
from _pfe_core.replay cimport replay_t
from _pfe_core.imb cimport pfe_imb, pfe_gcm_key

cdef enum:
    PFE_MAX_SAS = 4000          # the ASIC's limit, both directions counted
    SPI_BUCKETS = 8192          # power of two > PFE_MAX_SAS: short chains
    OUTER_HDR_MAX = 48          # IPv6 (40) + UDP (8)
    ESP_HDR_LEN = 16            # SPI + sequence + 8-byte IV

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
    int32_t *buckets          # SPI_BUCKETS chain heads, -1 = empty
    uint32_t count
    uint8_t backend           # Backend, fixed for the table's life
    pfe_imb *imb              # intel-ipsec-mb manager (one per table: not thread-safe)
    engine_counters_t c


cdef inline uint32_t spi_bucket(uint32_t spi) noexcept nogil:
    # Fibonacci hashing: SPIs are often sequential; the multiply spreads them over the buckets.
    return (spi * <uint32_t>2654435761u) >> 19   # 32 - log2(SPI_BUCKETS)


cdef inline int32_t sa_lookup_inbound(const sa_table_t *t, uint32_t spi) noexcept nogil:
    cdef int32_t i = t.buckets[spi_bucket(spi)]
    while i >= 0:
        if t.sas[i].spi == spi:
            return i
        i = t.sas[i].next_in_bucket
    return -1

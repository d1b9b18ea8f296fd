# cython: language_level=3
"""The crypto limit of each backend: the same AES-GCM calls the kernels make per packet
(nonce, AAD, data, tag), over the same buffers, with no ESP work at all. Benchmarks report the
PFE as a ratio of `RawBursts`, a tight C loop timed inside C (raw_loops.h), measured in the same
run; `RawGcm` seals or opens one burst per Python call."""
cimport cython
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t
from libc.stdlib cimport calloc, malloc, free
from libc.string cimport memcpy
from _pfe_core._openssl cimport (
    EVP_CIPHER_CTX, EVP_CIPHER_CTX_new, EVP_CIPHER_CTX_free, EVP_CIPHER_CTX_ctrl,
    EVP_EncryptInit_ex, EVP_DecryptInit_ex, EVP_aes_128_gcm, EVP_aes_256_gcm,
    EVP_CTRL_AEAD_SET_IVLEN,
)
from _pfe_core.gcm cimport gcm_seal, gcm_open, GCM_NONCE_LEN
from _pfe_core.imb cimport (
    pfe_imb, pfe_gcm_key, pfe_imb_new, pfe_imb_free, pfe_imb_key_new, pfe_imb_key_free,
    pfe_imb_seal, pfe_imb_open,
)
from _pfe_core.wire cimport store64
from _pfe_core.table import ipsec_mb_probe
from _pfe_core.table cimport burst_keeps_gil, gil_handoff_enter, gil_handoff_leave

# Not in Cython's libc.stdlib declarations.
cdef extern from "<stdlib.h>" nogil:
    int posix_memalign(void **memptr, size_t alignment, size_t size)


cdef class RawGcm:
    """One AES-GCM key on one backend, sealing or opening whole bursts of slots."""

    cdef EVP_CIPHER_CTX *ctx
    cdef pfe_imb *imb
    cdef pfe_gcm_key *imb_key
    cdef int key_len
    cdef bint encrypt
    cdef public uint64_t counter
    cdef readonly str backend

    def __cinit__(self, bytes key, bint encrypt=True, str backend="openssl"):
        if len(key) not in (16, 32):
            raise ValueError("AES-GCM key must be 16 or 32 bytes")
        self.encrypt = encrypt
        self.key_len = len(key)
        self.backend = backend
        if backend == "ipsec-mb":
            self.imb = pfe_imb_new()
            if self.imb == NULL:
                raise RuntimeError(f"the ipsec-mb backend is not available: {ipsec_mb_probe()[1]}")
            self.imb_key = pfe_imb_key_new(self.imb, <const uint8_t *><const char *>key,
                                           self.key_len)
            if self.imb_key == NULL:
                raise MemoryError()
            return
        if backend != "openssl":
            raise ValueError(f"unknown backend {backend!r}")
        self.ctx = EVP_CIPHER_CTX_new()
        cipher = EVP_aes_128_gcm() if len(key) == 16 else EVP_aes_256_gcm()
        if encrypt:
            EVP_EncryptInit_ex(self.ctx, cipher, NULL, NULL, NULL)
            EVP_CIPHER_CTX_ctrl(self.ctx, EVP_CTRL_AEAD_SET_IVLEN, GCM_NONCE_LEN, NULL)
            EVP_EncryptInit_ex(self.ctx, NULL, NULL, <const unsigned char *>key, NULL)
        else:
            EVP_DecryptInit_ex(self.ctx, cipher, NULL, NULL, NULL)
            EVP_CIPHER_CTX_ctrl(self.ctx, EVP_CTRL_AEAD_SET_IVLEN, GCM_NONCE_LEN, NULL)
            EVP_DecryptInit_ex(self.ctx, NULL, NULL, <const unsigned char *>key, NULL)

    def __dealloc__(self):
        if self.ctx != NULL:
            EVP_CIPHER_CTX_free(self.ctx)
        pfe_imb_key_free(self.imb_key)
        pfe_imb_free(self.imb)

    def run(self, uint8_t[:, ::1] data, uint32_t[::1] offset, uint32_t[::1] length,
            Py_ssize_t n) -> int:
        """Seal (or open) `length[i]` bytes at `offset[i]` of each slot in place, with 8 bytes
        of AAD before them and the 16-byte tag after them. Returns the calls that succeeded
        (for an open: whose tag verified)."""
        cdef Py_ssize_t i, ok = 0
        cdef uint8_t nonce[GCM_NONCE_LEN]
        cdef uint8_t *p
        cdef uint32_t ln
        if n < 0 or n > data.shape[0] or n > offset.shape[0] or n > length.shape[0]:
            raise ValueError("burst does not fit the arrays")
        for i in range(n):
            if offset[i] < 8 or offset[i] + length[i] + 16 > <uint32_t>data.shape[1]:
                raise ValueError("each slot needs 8 bytes before and 16 after the data")
        with nogil:
            nonce[0] = nonce[1] = nonce[2] = nonce[3] = 0x5A
            for i in range(n):
                self.counter += 1
                store64(nonce + 4, self.counter)
                p = &data[i, 0] + offset[i]
                ln = length[i]
                if self.imb != NULL:
                    if self.encrypt:
                        pfe_imb_seal(self.imb, self.imb_key, self.key_len, nonce, p - 8, 8, p,
                                     ln, p + ln)
                        ok += 1
                    elif pfe_imb_open(self.imb, self.imb_key, self.key_len, nonce, p - 8, 8, p,
                                      ln, p + ln) == 1:
                        ok += 1
                elif self.encrypt:
                    if gcm_seal(self.ctx, nonce, p - 8, 8, p, ln, p + ln) == 0:
                        ok += 1
                elif gcm_open(self.ctx, nonce, p - 8, 8, p, ln, p + ln) == 1:
                    ok += 1
        return ok


cdef extern from "raw_loops.h" nogil:
    ctypedef struct raw_pkt:
        uint8_t *data
        uint32_t len
        uint8_t nonce[12]
    ctypedef struct raw_imb:
        pass
    const int raw_imb_available
    int64_t raw_now_ns()
    raw_imb *raw_imb_new(const uint8_t *key, int key_len)
    void raw_imb_free(raw_imb *m)
    int raw_evp_set_next_iv(EVP_CIPHER_CTX *ctx, const uint8_t *salt, uint64_t counter)
    int raw_evp_set_salt(EVP_CIPHER_CTX *ctx, const uint8_t *salt)
    int64_t raw_evp_seal(EVP_CIPHER_CTX *ctx, const raw_pkt *pkts, size_t n, uint32_t rounds,
                         const uint8_t *salt, uint64_t *counter, size_t *ok)
    int64_t raw_evp_open(EVP_CIPHER_CTX *ctx, const raw_pkt *pkts, size_t n, uint32_t rounds,
                         uint8_t *out, size_t *ok)
    int64_t raw_imb_seal(const raw_imb *m, const raw_pkt *pkts, size_t n, uint32_t rounds,
                         const uint8_t *salt, uint64_t *counter, size_t *ok)
    int64_t raw_imb_open(const raw_imb *m, const raw_pkt *pkts, size_t n, uint32_t rounds,
                         uint8_t *out, size_t *ok)


cdef class RawBursts:
    """The raw-crypto reference of the benchmark ratios: the AES-GCM calls the PFE makes per
    packet, over the packets of many bursts, in a tight C loop timed inside C (raw_loops.h).

    `bursts` are objects with `data` (uint8 [slots, slot size]), `offset`, `length` (uint32)
    and `count`, like `inline_ipsec.packet.Burst`: slot i holds `length[i]` bytes of ESP
    payload at `offset[i]`, with 8 bytes before it (AAD) and 16 after it (ICV). The pointers
    are taken once here; `time_ns(rounds)` then runs `rounds` passes over every packet without
    the GIL and returns the nanoseconds they took. For an open, every packet is sealed once
    here, and each open verifies its tag."""

    cdef EVP_CIPHER_CTX *ctx
    cdef raw_imb *imb
    cdef raw_pkt *pkts
    cdef size_t n
    cdef uint8_t *scratch
    cdef uint8_t *scratch_block
    cdef uint8_t salt[4]
    cdef uint64_t counter
    cdef readonly bint encrypt
    cdef readonly str backend
    cdef readonly size_t verified     # calls that succeeded in the last time_ns
    cdef readonly size_t payload_bytes  # ESP payload bytes of one pass
    cdef list _keep                   # the arrays the pointers point into
    cdef bytes _salt

    def __cinit__(self, bytes key, bytes salt, bint encrypt, str backend, list bursts):
        cdef uint8_t[:, ::1] data
        cdef uint32_t[::1] offset
        cdef uint32_t[::1] length
        cdef Py_ssize_t i, count, total = 0, longest = 0
        cdef size_t j = 0, ok = 0
        if len(key) not in (16, 32) or len(salt) != 4:
            raise ValueError("AES-GCM needs a 16- or 32-byte key and a 4-byte salt")
        self.encrypt = encrypt
        self.backend = backend
        self._keep = []
        for b in bursts:
            count = b.count
            if count < 0 or count > b.data.shape[0] or count > b.offset.shape[0] \
                    or count > b.length.shape[0]:
                raise ValueError("burst count does not fit its arrays")
            total += count
        if total == 0:
            raise ValueError("no packets")
        self.pkts = <raw_pkt *>calloc(total, sizeof(raw_pkt))
        if self.pkts == NULL:
            raise MemoryError()
        for b in bursts:
            data, offset, length = b.data, b.offset, b.length
            self._keep.append((b.data, b.offset, b.length))
            for i in range(b.count):
                if offset[i] < 8 or <Py_ssize_t>offset[i] + length[i] + 16 > data.shape[1]:
                    raise ValueError("each slot needs 8 bytes before and 16 after the data")
                self.pkts[j].data = &data[i, 0] + offset[i]
                self.pkts[j].len = length[i]
                self.payload_bytes += length[i]
                longest = max(longest, <Py_ssize_t>length[i])
                j += 1
        self.n = j
        # The opens write their plaintext here. A load just after a store whose address
        # agrees with it in the low 12 bits waits as if it depended on it (4K aliasing): with
        # the plaintext written 16 bytes past the ciphertext's address modulo 4 KiB, the
        # ipsec-mb open took 40 ns per packet at 64 B instead of 33, and malloc put it
        # anywhere. It is placed 1 KiB past the first packet modulo 4 KiB, away from the
        # packets of 2 KiB slots, in the same place in every process.
        if posix_memalign(<void **>&self.scratch_block, 4096, longest + 16 + 4096) != 0:
            self.scratch_block = NULL
            raise MemoryError()
        self.scratch = self.scratch_block + (((<size_t>self.pkts[0].data & 4095) + 1024) & 4095)
        self._salt = salt
        memcpy(self.salt, <const char *>salt, 4)
        if backend == "ipsec-mb":
            if not raw_imb_available:
                raise RuntimeError("the ipsec-mb backend is not available")
            self.imb = raw_imb_new(<const uint8_t *><const char *>key, len(key))
            if self.imb == NULL:
                raise RuntimeError(f"the ipsec-mb backend is not available: {ipsec_mb_probe()[1]}")
        elif backend == "openssl":
            self.ctx = EVP_CIPHER_CTX_new()
            if self.ctx == NULL:
                raise MemoryError()
            cipher = EVP_aes_128_gcm() if len(key) == 16 else EVP_aes_256_gcm()
            if encrypt:
                ok = (EVP_EncryptInit_ex(self.ctx, cipher, NULL, NULL, NULL) == 1
                      and EVP_CIPHER_CTX_ctrl(self.ctx, EVP_CTRL_AEAD_SET_IVLEN, GCM_NONCE_LEN,
                                              NULL) == 1
                      and EVP_EncryptInit_ex(self.ctx, NULL, NULL,
                                             <const unsigned char *>key, NULL) == 1
                      and raw_evp_set_next_iv(self.ctx, self.salt, 1) == 0)
            else:
                ok = (EVP_DecryptInit_ex(self.ctx, cipher, NULL, NULL, NULL) == 1
                      and EVP_CIPHER_CTX_ctrl(self.ctx, EVP_CTRL_AEAD_SET_IVLEN, GCM_NONCE_LEN,
                                              NULL) == 1
                      and EVP_DecryptInit_ex(self.ctx, NULL, NULL,
                                             <const unsigned char *>key, NULL) == 1
                      and raw_evp_set_salt(self.ctx, self.salt) == 0)
            if not ok:
                raise RuntimeError("OpenSSL could not set up AES-GCM")
        else:
            raise ValueError(f"unknown backend {backend!r}")
        if not encrypt:
            self._seal_once(key)

    def _seal_once(self, bytes key):
        """Seal every packet with its own nonce (kept for the opens), with a sealing context
        of the same backend."""
        cdef RawBursts sealer = RawBursts(key, self._salt, True, self.backend,
                                          [_Slots(d, o, l) for d, o, l in self._keep])
        cdef size_t i
        sealer.counter = 0
        sealer.time_ns(1)
        if sealer.verified != self.n:
            raise RuntimeError("sealing the reference packets failed")
        for i in range(self.n):
            memcpy(self.pkts[i].nonce, self.salt, 4)
            store64(self.pkts[i].nonce + 4, i + 1)

    def __dealloc__(self):
        if self.ctx != NULL:
            EVP_CIPHER_CTX_free(self.ctx)
        raw_imb_free(self.imb)
        free(self.pkts)
        free(self.scratch_block)

    @property
    def packets(self) -> int:
        """Packets in one pass."""
        return self.n

    def time_ns(self, uint32_t rounds=1) -> int:
        """Run `rounds` passes over every packet; the nanoseconds they took, timed in C,
        less what the two clock reads themselves cost inside the interval (the least of three
        empty intervals timed the same way just after; an interrupt only lengthens one)."""
        cdef int64_t elapsed, empty, t0, least = -1
        cdef int k
        cdef size_t ok = 0
        if rounds < 1:
            raise ValueError("rounds must be at least 1")
        with nogil:
            if self.imb != NULL:
                if self.encrypt:
                    elapsed = raw_imb_seal(self.imb, self.pkts, self.n, rounds, self.salt,
                                           &self.counter, &ok)
                else:
                    elapsed = raw_imb_open(self.imb, self.pkts, self.n, rounds, self.scratch,
                                           &ok)
            elif self.encrypt:
                elapsed = raw_evp_seal(self.ctx, self.pkts, self.n, rounds, self.salt,
                                       &self.counter, &ok)
            else:
                elapsed = raw_evp_open(self.ctx, self.pkts, self.n, rounds, self.scratch, &ok)
            for k in range(3):
                t0 = raw_now_ns()
                empty = raw_now_ns() - t0
                if least < 0 or empty < least:
                    least = empty
        self.verified = ok
        return elapsed - least if elapsed > least else elapsed


class _Slots:
    """The (data, offset, length) of a burst, as `RawBursts` reads it."""

    def __init__(self, data, offset, length):
        self.data, self.offset, self.length = data, offset, length
        self.count = len(length)


cdef extern from *:
    """
    #include <pthread.h>
    #include <time.h>
    /* Two threads pass one cache line back and forth: the time of a round trip is what a
     * write by one core costs the other core's next read of the same line (the GIL's state
     * is such a line, written by every thread that takes or drops it). */
    typedef struct {
        volatile int flag __attribute__((aligned(64)));
        volatile int stop __attribute__((aligned(64)));   /* the measurement gave up */
        long rounds;
    } pp_line;
    static void *pp_other(void *arg) {
        pp_line *l = (pp_line *)arg;
        for (long i = 0; i < l->rounds && !l->stop; i++) {
            while (l->flag != 1 && !l->stop)
                ;
            l->flag = 0;
        }
        return NULL;
    }
    static double pp_elapsed_ns(const struct timespec *a) {
        struct timespec b;
        clock_gettime(CLOCK_MONOTONIC, &b);
        return (double)(b.tv_sec - a->tv_sec) * 1e9 + (double)(b.tv_nsec - a->tv_nsec);
    }
    /* -1: no second thread; -2: gave up after a second (no free core to spin on). */
    static double pp_round_trip_ns(long rounds) {
        static pp_line line;
        pthread_t t;
        struct timespec a;
        double ns = 0;
        line.flag = 0;
        line.stop = 0;
        line.rounds = rounds;
        if (pthread_create(&t, NULL, pp_other, &line) != 0)
            return -1.0;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (long i = 0; i < rounds && !line.stop; i++) {
            long spins = 0;
            line.flag = 1;
            while (line.flag != 0) {
                if ((++spins & 0xFFFF) == 0 && pp_elapsed_ns(&a) > 1e9) {
                    line.stop = 1;
                    break;
                }
            }
        }
        if (!line.stop)
            ns = pp_elapsed_ns(&a) / rounds;
        line.stop = 1;
        pthread_join(t, NULL);
        return ns > 0 ? ns : -2.0;
    }
    """
    double pp_round_trip_ns(long rounds) nogil


def core_round_trip_ns(long rounds=200000) -> float:
    """Nanoseconds for a cache line to go from this thread's core to another thread's and
    back (two threads passing a flag, timed inside C). On a VM it shows where the host put
    the two virtual CPUs: about 50-60 ns sharing a cache, several hundred across dies. Every
    burst call writes the GIL's shared state, so thread-scaling figures depend on it. Needs a
    free second core (the other thread spins)."""
    cdef double ns
    if rounds < 1:
        raise ValueError("rounds must be positive")
    with nogil:
        ns = pp_round_trip_ns(rounds)
    if ns == -1.0:
        raise OSError("could not start the second thread")
    if ns < 0:
        raise TimeoutError("no free second core: the round trips took more than a second")
    return ns


cdef extern from *:
    """
    #include <time.h>
    #include <stdint.h>
    /* Busy for `ns` nanoseconds of the monotonic clock, touching no memory. */
    static void floor_spin_ns(uint64_t ns) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        uint64_t t0 = (uint64_t)a.tv_sec * 1000000000u + (uint64_t)a.tv_nsec;
        do {
            clock_gettime(CLOCK_MONOTONIC, &b);
        } while ((uint64_t)b.tv_sec * 1000000000u + (uint64_t)b.tv_nsec - t0 < ns);
    }
    """
    void floor_spin_ns(uint64_t ns) nogil


IDLE_BURST_MAX_NS = 1_000_000_000


@cython.binding(False)
def idle_burst(uint64_t ns) -> None:
    """A burst call with no work in it: it gives up the GIL exactly as a PFE or pipeline burst
    does (kept by a thread alone, else released with the same hand-over, gil_handoff.h) and
    stays in C, busy and touching no memory, for `ns` nanoseconds (at most one second).
    Threads calling it show what the GIL alone allows bursts of that length: the floor of the
    thread-scaling figures."""
    if ns > IDLE_BURST_MAX_NS:
        raise ValueError(f"an idle burst lasts at most {IDLE_BURST_MAX_NS} ns, not {ns}")
    if burst_keeps_gil():
        floor_spin_ns(ns)
        return
    with nogil:
        gil_handoff_enter()
        floor_spin_ns(ns)
        gil_handoff_leave()

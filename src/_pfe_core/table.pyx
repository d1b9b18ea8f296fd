# cython: language_level=3
"""`SaTable`: the PFE's fixed-size SA table and the Python entry to the burst kernels.

One table is one modelled PFE: at most 4000 SAs (both directions count), inbound SAs found by
SPI in O(1), one EVP_CIPHER_CTX per SA keyed once at install. A handle is a slot plus that
slot's generation (sa.pxd), so a handle kept after `remove` never names a later SA. A table is not shared between
threads: each worker thread owns its own (docs/design.md §4); the burst calls release the GIL."""
cimport cython
import os
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t, int64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memset, memcpy
from _pfe_core._openssl cimport (
    EVP_CIPHER_CTX, EVP_CIPHER_CTX_new, EVP_CIPHER_CTX_free, EVP_CIPHER_CTX_ctrl,
    EVP_EncryptInit_ex, EVP_DecryptInit_ex, EVP_aes_128_gcm, EVP_aes_256_gcm, EVP_CIPHER,
    EVP_CTRL_AEAD_SET_IVLEN, OPENSSL_cleanse, ERR_clear_error, OPENSSL_VERSION_NUMBER,
    OpenSSL_version, OPENSSL_VERSION_CONST,
)
from _pfe_core.sa cimport (
    sa_t, sa_table_t, PFE_MAX_SAS, SPI_BUCKETS, SA_FREE, SA_OUTBOUND, SA_INBOUND, spi_bucket,
    sa_lookup_inbound, sa_by_handle, BACKEND_OPENSSL, BACKEND_IPSEC_MB, HANDLE_SLOT_BITS,
    HANDLE_SLOT_MASK, HANDLE_GEN_MAX,
)
from _pfe_core.imb cimport (
    pfe_imb, pfe_gcm_key, pfe_imb_available, pfe_imb_new, pfe_imb_free, pfe_imb_key_new, pfe_imb_key_free,
    pfe_imb_version, pfe_imb_arch_name, pfe_imb_arch_status, PFE_IMB_ARCH_ENV, PFE_IMB_ARCH_OK,
    PFE_IMB_ARCH_UNKNOWN, PFE_IMB_ARCH_UNSUPPORTED,
)
from _pfe_core.counters cimport (
    sa_counters_dict, sa_counters_layout, engine_counters_dict, engine_counters_layout,
)
from _pfe_core.replay cimport replay_t, replay_init, REPLAY_MAX_WINDOW, REPLAY_MIN_WINDOW
from _pfe_core.gcm cimport GCM_NONCE_LEN, gcm_set_next_iv, gcm_set_salt
from _pfe_core.esp_outb cimport esp_encrypt_burst
from _pfe_core.esp_inb cimport esp_decrypt_burst
from _pfe_core.burst_slots cimport burst_layout_t, burst_layout_view
from cpython.object cimport PyObject
from _pfe_core.wire cimport store16, store32, store64, csum_add, csum_fold_partial

MAX_SAS = PFE_MAX_SAS
#: handle = generation << HANDLE_SLOT_BITS | slot (sa.pxd)
HANDLE_SLOT_BITS_ = HANDLE_SLOT_BITS
HANDLE_GENERATIONS = HANDLE_GEN_MAX
#: The counter structs as compiled: (sizeof, ((name, byte offset), ...)), so that a test can
#: prove the C structs and the counter catalogue agree.
SA_COUNTER_LAYOUT = sa_counters_layout()
ENGINE_COUNTER_LAYOUT = engine_counters_layout()
MAX_REPLAY_WINDOW = REPLAY_MAX_WINDOW
MIN_REPLAY_WINDOW = REPLAY_MIN_WINDOW
OPENSSL_VERSION = OpenSSL_version(OPENSSL_VERSION_CONST).decode()
OPENSSL_VERSION_NUMBER_ = OPENSSL_VERSION_NUMBER
BACKEND_NAMES = {"openssl": BACKEND_OPENSSL, "ipsec-mb": BACKEND_IPSEC_MB}


#: The environment variable that pins intel-ipsec-mb's instruction set in this process, and
#: its values ("auto", or unset: the library's choice, the widest the CPU has). Both the PFE's
#: managers and the raw loop's read it when they are made (imb_shim.h).
IPSEC_MB_ARCH_ENV = PFE_IMB_ARCH_ENV.decode()
IPSEC_MB_ARCHS = ("auto", "sse", "avx", "avx2", "avx512")


def ipsec_mb_probe():
    """(usable, description), as of now: built with intel-ipsec-mb, and a manager initialises
    here on the instruction set INLINE_IPSEC_IPSEC_MB_ARCH asks for; the description names the
    library's version and that instruction set, or why it cannot be used."""
    cdef pfe_imb *m
    cdef int rc
    if not pfe_imb_available:
        return False, "not built (intel-ipsec-mb was not found when the extension was compiled)"
    rc = pfe_imb_arch_status()
    asked = os.environ.get(IPSEC_MB_ARCH_ENV, "")
    if rc == PFE_IMB_ARCH_UNKNOWN:
        return False, (f"{IPSEC_MB_ARCH_ENV}={asked!r} is not an instruction set of "
                       f"intel-ipsec-mb: expected one of {', '.join(IPSEC_MB_ARCHS)}")
    if rc == PFE_IMB_ARCH_UNSUPPORTED:
        return False, f"{IPSEC_MB_ARCH_ENV}={asked!r}: this CPU lacks the instructions it needs"
    m = pfe_imb_new() if rc == PFE_IMB_ARCH_OK else NULL
    if m == NULL:
        return False, "built, but the library did not initialise on this CPU (no AES-NI?)"
    desc = f"intel-ipsec-mb {pfe_imb_version().decode()} ({pfe_imb_arch_name(m).decode()}"
    desc += f", pinned by {IPSEC_MB_ARCH_ENV})" if asked not in ("", "auto") else ")"
    pfe_imb_free(m)
    return True, desc


_IMB_USABLE, IPSEC_MB_DESCRIPTION = ipsec_mb_probe()
#: Crypto backends this build can use on this machine, the default first.
BACKENDS = ("openssl", "ipsec-mb") if _IMB_USABLE else ("openssl",)

class TableFull(Exception):
    """No free slot left in the SA table."""


class DuplicateSpi(Exception):
    """An inbound SA with this SPI is installed already."""


# A table's lock is one word taken with an atomic exchange (pfe_lock, declared in table.pxd):
# uncontended (one PFE per thread, the design), a burst pays one locked instruction for it, not
# a semaphore call. A waiter yields the CPU between attempts, without the GIL.
cdef class TableLock:
    """The lock of one SA table: the burst calls (the table's own and a forwarding
    pipeline's) take it without the GIL, Python code takes it with `with` around changes to
    the table (installs, removals, sequence numbers). Not reentrant. Its word is declared in
    table.pxd."""

    def __enter__(self):
        if not pfe_try_lock(&self.word):
            with nogil:                     # wait for a burst in another thread to end
                pfe_lock(&self.word)
        return self

    def __exit__(self, *exc):
        pfe_unlock(&self.word)
        return False


cdef class SaTable:
    """One modelled PFE's SAs, on one crypto backend ("openssl" or "ipsec-mb").

    The burst calls release the GIL for the whole burst and hold `lock` meanwhile: callers
    that change the table from several threads take `lock` around the change (`with
    table.lock:`); the burst calls take it themselves. Its C fields are declared in
    table.pxd."""

    def __cinit__(self, str backend="openssl"):
        self.lock = TableLock()
        self._lk = &self.lock.word      # the lock object lives as long as the table
        if backend not in BACKEND_NAMES:
            raise ValueError(f"unknown crypto backend {backend!r}: expected one of "
                             f"{sorted(BACKEND_NAMES)}")
        if backend == "ipsec-mb":
            self.t.imb = pfe_imb_new()
            if self.t.imb == NULL:
                raise RuntimeError(f"the ipsec-mb backend is not available: "
                                   f"{ipsec_mb_probe()[1]}")
        self.t.backend = BACKEND_NAMES[backend]
        self.backend = backend
        self.t.sas = <sa_t *>calloc(PFE_MAX_SAS, sizeof(sa_t))
        self.t.replays = <replay_t *>calloc(PFE_MAX_SAS, sizeof(replay_t))
        self.t.buckets = <int32_t *>calloc(SPI_BUCKETS, sizeof(int32_t))
        self.t.generation = <uint32_t *>calloc(PFE_MAX_SAS, sizeof(uint32_t))
        self.t.free_slots = <int32_t *>calloc(PFE_MAX_SAS, sizeof(int32_t))
        if self.t.sas == NULL or self.t.replays == NULL or self.t.buckets == NULL or self.t.generation == NULL \
                or self.t.free_slots == NULL:
            raise MemoryError()
        for i in range(SPI_BUCKETS):
            self.t.buckets[i] = -1
        for i in range(PFE_MAX_SAS):
            self.t.sas[i].handle = -1
            self.t.free_slots[i] = i
        self.t.free_head = 0
        self.t.free_count = PFE_MAX_SAS
        self.t.count = 0
        self.t.common_runs = 1

    @property
    def common_runs(self) -> bool:
        """Whether the kernels take runs of common-case packets (IPv4 outer header, no NAT-T,
        no ESN) in their short loops; off, every packet goes through the general steps. The
        two give the same bytes, statuses and counters (tests compare them); on by default."""
        return bool(self.t.common_runs)

    @common_runs.setter
    def common_runs(self, bint on) -> None:
        self.t.common_runs = on

    def __dealloc__(self):
        cdef int i
        if self.t.sas != NULL:
            for i in range(PFE_MAX_SAS):
                if self.t.sas[i].direction != SA_FREE:
                    self._wipe(i)
            free(self.t.sas)
        free(self.t.replays)
        free(self.t.buckets)
        free(self.t.generation)
        free(self.t.free_slots)
        pfe_imb_free(self.t.imb)

    def __len__(self):
        return self.t.count

    def add(self, int direction, uint32_t spi, bytes key, bytes salt, bint esn,
            uint32_t replay_window, bint udp_encap, bytes src, bytes dst, uint16_t sport,
            uint16_t dport, uint8_t ttl, int df_mode, bint copy_outer_dscp) -> int:
        """Install one SA direction (1 outbound, 2 inbound); returns its handle.

        `key` is the 16- or 32-byte AES key, `salt` the 4-byte RFC 4106 salt, `src`/`dst` the
        packed outer addresses (4 or 16 bytes). Raises TableFull, DuplicateSpi or ValueError."""
        cdef int32_t h, slot
        cdef uint32_t gen
        cdef sa_t *sa
        cdef const EVP_CIPHER *cipher
        cdef EVP_CIPHER_CTX *ctx
        cdef pfe_gcm_key *imb_key
        if direction not in (SA_OUTBOUND, SA_INBOUND):
            raise ValueError("direction must be 1 (outbound) or 2 (inbound)")
        if len(key) == 16:
            cipher = EVP_aes_128_gcm()
        elif len(key) == 32:
            cipher = EVP_aes_256_gcm()
        else:
            raise ValueError("the PFE carries AES-GCM with 128- or 256-bit keys only")
        if len(salt) != 4:
            raise ValueError("the AES-GCM salt is 4 bytes (RFC 4106 §8.1)")
        if len(src) != len(dst) or len(src) not in (4, 16):
            raise ValueError("outer addresses must both be IPv4 or both IPv6")
        if replay_window != 0 and not REPLAY_MIN_WINDOW <= replay_window <= REPLAY_MAX_WINDOW:
            raise ValueError(
                f"anti-replay window {replay_window} is outside the PFE's range (0 or "
                f"{REPLAY_MIN_WINDOW}..{REPLAY_MAX_WINDOW}); such an SA belongs on the CPU path")
        if direction == SA_INBOUND and sa_lookup_inbound(&self.t, spi) >= 0:
            raise DuplicateSpi(f"an inbound SA with SPI 0x{spi:08x} is installed already")
        if self.t.count >= PFE_MAX_SAS or self.t.free_count == 0:
            raise TableFull(f"the PFE SA table is full ({PFE_MAX_SAS} SAs)")

        ctx = NULL
        imb_key = NULL
        if self.t.backend == BACKEND_IPSEC_MB:
            imb_key = pfe_imb_key_new(self.t.imb, <const uint8_t *><const char *>key, len(key))
            if imb_key == NULL:
                raise MemoryError()
        else:
            ctx = _new_gcm_ctx(cipher, key, salt, direction == SA_OUTBOUND)

        # The oldest freed slot, under its next generation (1..HANDLE_GEN_MAX, never 0, so a
        # zeroed handle array names no SA).
        slot = self.t.free_slots[self.t.free_head]
        self.t.free_head = (self.t.free_head + 1) % PFE_MAX_SAS
        self.t.free_count -= 1
        gen = self.t.generation[slot] + 1
        if gen > HANDLE_GEN_MAX:
            gen = 1
        self.t.generation[slot] = gen
        h = <int32_t>((gen << HANDLE_SLOT_BITS) | <uint32_t>slot)

        sa = &self.t.sas[slot]
        memset(sa, 0, sizeof(sa_t))
        sa.handle = h
        sa.ctx = ctx
        sa.imb_key = imb_key
        sa.key_len = len(key)
        sa.spi = spi
        store32(sa.spi_wire, spi)
        sa.direction = direction
        sa.esn = esn
        sa.udp_encap = udp_encap
        sa.ipv6 = len(src) == 16
        sa.df_mode = df_mode
        sa.copy_outer_dscp = copy_outer_dscp
        memcpy(sa.salt, <const char *>salt, 4)
        self._build_header_template(sa, src, dst, sport, dport, ttl)
        sa.next_in_bucket = -1
        if direction == SA_INBOUND:
            sa.replay = &self.t.replays[slot]
            replay_init(sa.replay, replay_window, esn)
            b = spi_bucket(spi)
            sa.next_in_bucket = self.t.buckets[b]
            self.t.buckets[b] = slot
        self.t.count += 1
        return h

    cdef void _build_header_template(self, sa_t *sa, bytes src, bytes dst, uint16_t sport,
                                     uint16_t dport, uint8_t ttl):
        """The constant part of the outer header: addresses, TTL/hop limit, protocol, ports.
        Lengths, DS field, identification, DF and checksums are filled per packet."""
        cdef uint8_t *hdr = sa.hdr
        cdef uint8_t proto = 17 if sa.udp_encap else 50
        cdef int ip_len
        memset(hdr, 0, sizeof(sa.hdr))
        if sa.ipv6:
            hdr[0] = 0x60
            hdr[6] = proto
            hdr[7] = ttl
            memcpy(hdr + 8, <const char *>src, 16)
            memcpy(hdr + 24, <const char *>dst, 16)
            ip_len = 40
        else:
            hdr[0] = 0x45
            hdr[8] = ttl
            hdr[9] = proto
            memcpy(hdr + 12, <const char *>src, 4)
            memcpy(hdr + 16, <const char *>dst, 4)
            ip_len = 20
        if sa.udp_encap:
            store16(hdr + ip_len, sport)
            store16(hdr + ip_len + 2, dport)
            ip_len += 8
        sa.outer_len = ip_len
        if not sa.ipv6:
            # Words of the IPv4 template that never change per packet (version/IHL,
            # TTL/protocol, addresses; the rest are zero there): the kernel adds DS field,
            # total length, identification and DF to this sum (RFC 1624 incremental update).
            sa.hdr_sum = csum_fold_partial(csum_add(0, hdr, 20))

    cdef void _wipe(self, int32_t slot):
        cdef sa_t *sa = &self.t.sas[slot]
        if sa.ctx != NULL:
            EVP_CIPHER_CTX_free(sa.ctx)   # frees and cleanses the key schedule
        pfe_imb_key_free(sa.imb_key)      # cleanses the expanded keys, then frees
        OPENSSL_cleanse(sa, sizeof(sa_t))
        memset(&self.t.replays[slot], 0, sizeof(replay_t))
        sa.direction = SA_FREE
        sa.handle = -1

    cdef sa_t *_get(self, long long h) except NULL:
        cdef sa_t *sa = NULL
        if 0 <= h <= 0x7FFFFFFF:
            sa = sa_by_handle(&self.t, <int32_t>h)
        if sa == NULL:
            raise KeyError(f"no SA with handle {h}")
        return sa

    def remove(self, long long h) -> None:
        """Uninstall an SA: unlink its SPI, free its cipher context, wipe its key material.
        Its slot goes to the back of the free ring; its handle names nothing from now on."""
        cdef sa_t *sa = self._get(h)
        cdef int32_t slot = <int32_t>(h & HANDLE_SLOT_MASK)
        cdef int32_t *link
        if sa.direction == SA_INBOUND:
            link = &self.t.buckets[spi_bucket(sa.spi)]
            while link[0] >= 0:
                if link[0] == slot:
                    link[0] = sa.next_in_bucket
                    break
                link = &self.t.sas[link[0]].next_in_bucket
        self._wipe(slot)
        self.t.free_slots[(self.t.free_head + self.t.free_count) % PFE_MAX_SAS] = slot
        self.t.free_count += 1
        self.t.count -= 1

    def inject_crypto_fault(self, long long h) -> None:
        """Fault injection for tests of the CRYPTO_ERROR path (and its counter): the SA's
        OpenSSL context is replaced by one with no cipher set, so that every seal or open
        of this SA fails inside the library. The ipsec-mb calls cannot fail."""
        cdef sa_t *sa = self._get(h)
        cdef EVP_CIPHER_CTX *ctx
        if self.t.backend != BACKEND_OPENSSL:
            raise ValueError("only the OpenSSL backend has a library failure to inject")
        ctx = EVP_CIPHER_CTX_new()
        if ctx == NULL:
            raise MemoryError()
        EVP_CIPHER_CTX_free(sa.ctx)
        sa.ctx = ctx

    def set_options(self, long long h, int df_mode, bint copy_outer_dscp) -> None:
        """Change the DF-bit mode and DSCP copy of an installed SA in place (its keys,
        sequence number and anti-replay window stay)."""
        cdef sa_t *sa = self._get(h)
        if df_mode not in (0, 1, 2):
            raise ValueError("df_mode is 0 (clear), 1 (set) or 2 (copy)")
        sa.df_mode = df_mode
        sa.copy_outer_dscp = copy_outer_dscp

    def direction(self, long long h) -> int:
        return self._get(h).direction

    def lookup(self, uint32_t spi) -> int:
        """The handle of the inbound SA with this SPI, or -1."""
        cdef int32_t slot = sa_lookup_inbound(&self.t, spi)
        return -1 if slot < 0 else self.t.sas[slot].handle

    def counters(self, long long h) -> dict:
        cdef sa_t *sa = self._get(h)
        return sa_counters_dict(&sa.c)

    def engine_counters(self) -> dict:
        return engine_counters_dict(&self.t.c)

    def rekey_needed(self, long long h) -> bool:
        return bool(self._get(h).rekey_needed)

    def sequence(self, long long h) -> int:
        """Outbound: the last sequence number sent. Inbound: the highest one accepted."""
        cdef sa_t *sa = self._get(h)
        return sa.seq if sa.direction == SA_OUTBOUND else sa.replay.top

    def set_sequence(self, long long h, uint64_t seq) -> None:
        """Outbound: make `seq` the last sequence number sent. Inbound: make `seq` the highest
        one received, with an empty window below it. For tests of the 2^32 limit and of ESN
        (RFC 4303 §3.3.3, Appendix A) and for SAs moved between engines."""
        cdef sa_t *sa = self._get(h)
        if not sa.esn and seq > 0xFFFFFFFF:
            raise ValueError("without ESN the sequence number is 32-bit")
        if sa.direction == SA_OUTBOUND:
            sa.seq = seq
            sa.rekey_needed = 0
            if sa.ctx != NULL and seq < <uint64_t>0xFFFFFFFFFFFFFFFFULL:
                _set_next_iv(sa.ctx, sa.salt, seq + 1)   # the kernel re-syncs it anyway
        else:
            replay_init(sa.replay, sa.replay.window, sa.esn)
            sa.replay.top = seq

    @cython.binding(False)
    def encrypt_burst(self, BurstArrays b, Py_ssize_t n) -> int:
        """Encrypt slots 0..n-1 in place; returns the number of OK packets."""
        return self._burst(b, n, True)

    @cython.binding(False)
    def decrypt_burst(self, BurstArrays b, Py_ssize_t n) -> int:
        """Decrypt slots 0..n-1 in place; returns the number of OK packets."""
        return self._burst(b, n, False)

    # The burst entry points of `Pfe`: one C call per burst from Python, taking the burst
    # object itself (its cached `kernel_view` and its `count`), so that no Python frame
    # and no Python-level lock stand between the caller and the kernel.
    @cython.binding(False)
    @cython.always_allow_keywords(False)
    def encrypt(self, burst) -> int:
        """Encrypt `burst.count` packets of a `Burst` in place; returns the number OK."""
        cdef Py_ssize_t n
        cdef BurstArrays b = _view_and_count(burst, &n)
        return self._burst(b, n, True)

    @cython.binding(False)
    @cython.always_allow_keywords(False)
    def decrypt(self, burst) -> int:
        """Decrypt `burst.count` packets of a `Burst` in place; returns the number OK."""
        cdef Py_ssize_t n
        cdef BurstArrays b = _view_and_count(burst, &n)
        return self._burst(b, n, False)

    def time_kernel(self, bint encrypt, list bursts, list pristine, uint32_t rounds=1):
        """The burst kernel alone, timed inside C, for the cost split (docs/performance.md).

        `bursts` and `pristine` are `Burst`s of equal shape (at most 64). Each pass restores
        every burst from its pristine twin (the packets' bytes, offsets, lengths and SA
        handles) and empties every inbound SA's anti-replay window, untimed, so that a decrypt
        pass sees the same sequence numbers again; then it runs the kernel over all bursts
        between two reads of a cycle counter, as a window of the Python-timed figures does.
        `rounds` passes, the table locked, the GIL released around the kernel calls. Returns
        (kernel nanoseconds, nanoseconds of the timer reads alone, kernel calls, packets OK)."""
        cdef list views = [_kernel_view(b) for b in bursts]
        cdef list clean = [_kernel_view(b) for b in pristine]
        cdef list counts = [b.count for b in pristine]
        cdef Py_ssize_t k, i, n, nb = len(views), good = 0, slot
        cdef uint32_t r
        cdef uint64_t ticks = 0, empty = 0, t0, t1, tick_start, tick_end
        cdef int64_t wall_start, wall_end
        cdef BurstArrays w, c
        cdef void *bp[64]
        cdef Py_ssize_t np_[64]
        if nb == 0 or nb > 64 or len(clean) != nb:
            raise ValueError("need 1..64 bursts and as many pristine twins")
        for k in range(nb):
            w, c = views[k], clean[k]
            n = counts[k]
            c.check(n)
            w.check(n)
            if w.data.shape[1] != c.data.shape[1]:
                raise ValueError("bursts and their pristine twins differ in slot size")
            for i in range(n):
                if c.offset[i] > c.data.shape[1] or c.length[i] > c.data.shape[1] - c.offset[i]:
                    raise ValueError("a pristine packet does not fit its slot")
        with nogil:
            pfe_lock(self._lk)
            wall_start = raw_now_ns()
            tick_start = raw_ticks()
        try:
            for r in range(rounds):
                if not encrypt:
                    for slot in range(PFE_MAX_SAS):
                        if self.t.sas[slot].direction == SA_INBOUND:
                            replay_init(self.t.sas[slot].replay, self.t.sas[slot].replay.window,
                                        self.t.sas[slot].esn)
                for k in range(nb):           # restore every burst, untimed
                    w = <BurstArrays>views[k]
                    c = <BurstArrays>clean[k]
                    n = counts[k]
                    with nogil:
                        for i in range(n):
                            w.offset[i] = c.offset[i]
                            w.length[i] = c.length[i]
                            w.sa[i] = c.sa[i]
                            memcpy(&w.data[i, 0] + c.offset[i], &c.data[i, 0] + c.offset[i],
                                   c.length[i])
                for k in range(nb):           # then the kernel over all of them, timed
                    bp[k] = <void *>views[k]
                    np_[k] = counts[k]
                with nogil:
                    t0 = raw_ticks()
                    for k in range(nb):
                        good += _kernel_call(&self.t, <BurstArrays>bp[k], np_[k], encrypt)
                    t1 = raw_ticks()
                    ticks += t1 - t0
                    t0 = raw_ticks()
                    t1 = raw_ticks()
                    empty += t1 - t0
        finally:
            with nogil:
                tick_end = raw_ticks()
                wall_end = raw_now_ns()
                pfe_unlock(self._lk)
        scale = (wall_end - wall_start) / (<double>(tick_end - tick_start) if tick_end > tick_start
                                            else 1.0)
        return ticks * scale, empty * scale, rounds * nb, good

    cdef Py_ssize_t _burst(self, BurstArrays b, Py_ssize_t n, bint encrypt) except -1:
        cdef Py_ssize_t good
        b.check(n)
        if n == 0:
            return 0
        if burst_keeps_gil():
            pfe_lock(self._lk)              # alone: no other thread can hold it
            good = _kernel_call(&self.t, b, n, encrypt)
            pfe_unlock(self._lk)
            return good
        with nogil:
            gil_handoff_enter()
            pfe_lock(self._lk)
            good = _kernel_call(&self.t, b, n, encrypt)
            pfe_unlock(self._lk)
            gil_handoff_leave()
        return good


cdef extern from "gil_handoff.h" nogil:
    void handoff_enter()
    void handoff_leave()
    int handoff_threads()
    void handoff_stats(uint64_t *out)
    int handoff_enabled
    int HANDOFF_SLOTS


# A burst releases the GIL for its C work so that other threads run meanwhile. When the
# calling thread is the only Python thread, no one could, and the release and the retake are a
# third of a burst call's fixed cost (about 60-80 ns of some 150): such a burst keeps the GIL,
# as numpy keeps it for small arrays. A thread started later lists its thread state before it
# asks for the GIL, so the next burst sees it and releases the GIL again. In CPython 3.11 all
# interpreters share one GIL, so a second interpreter counts as another thread.
cdef extern from *:
    """
    static int pfe_keep_gil_alone = 1;
    static PyInterpreterState *pfe_main_interp;
    static inline int pfe_only_python_thread(void) {
        /* The caller holds the GIL, so its thread state is in its interpreter's list of
         * thread states (CPython links each to its neighbours, `prev` and `next`): with
         * neither, the caller is alone in it. Interpreters are listed newest first, the main
         * one created first, so the main interpreter at the head is the only one. Two calls
         * and a few loads where walking both lists took five calls. The main interpreter is
         * kept once found (atomically: with CPython 3.12's own-GIL subinterpreters another
         * interpreter's thread may read it meanwhile). */
        PyThreadState *ts = PyThreadState_Get();
        PyInterpreterState *main_interp = __atomic_load_n(&pfe_main_interp, __ATOMIC_RELAXED);
        if (ts->prev != NULL || ts->next != NULL)
            return 0;
        if (ts->interp != main_interp) {
            if (ts->interp != PyInterpreterState_Main())
                return 0;
            main_interp = ts->interp;
            __atomic_store_n(&pfe_main_interp, main_interp, __ATOMIC_RELAXED);
        }
        return PyInterpreterState_Head() == main_interp;
    }
    """
    int pfe_keep_gil_alone
    int pfe_only_python_thread() noexcept


cdef bint burst_keeps_gil() noexcept:
    return pfe_keep_gil_alone and pfe_only_python_thread()


def set_keep_gil_alone(bint on) -> None:
    """Whether a burst called by the process's only Python thread keeps the GIL (on by
    default); off, every burst releases it, for comparison."""
    global pfe_keep_gil_alone
    pfe_keep_gil_alone = on


def burst_releases_gil() -> bool:
    """Whether a burst called now by this thread releases the GIL for its C work: True
    unless this is the process's only Python thread (and keeping is on)."""
    return not burst_keeps_gil()


cdef void gil_handoff_enter() noexcept nogil:
    handoff_enter()


cdef void gil_handoff_leave() noexcept nogil:
    handoff_leave()


def set_gil_handoff(bint on) -> None:
    """Whether burst calls wait (briefly, spinning) for another burst-calling thread to leave
    its Python section before taking the GIL back, instead of sleeping on it
    (gil_handoff.h). On by default; off is CPython's own behaviour, for comparison."""
    global handoff_enabled
    handoff_enabled = on


def gil_handoff() -> bool:
    """Whether the GIL hand-over of `set_gil_handoff` is on."""
    return bool(handoff_enabled)


def gil_handoff_stats() -> dict:
    """The hand-over's waits so far, all threads: how many bursts waited before taking the
    GIL back, for how many nanoseconds in all, and how many waits were cut off."""
    cdef uint64_t out[3]
    handoff_stats(out)
    return {"waits": out[0], "wait_ns": out[1], "timeouts": out[2]}


def gil_handoff_threads() -> tuple:
    """(threads that hold a hand-over slot now, slots): a thread takes one at its first
    burst and gives it back when it ends."""
    return handoff_threads(), HANDOFF_SLOTS


cdef extern from "raw_loops.h" nogil:
    uint64_t raw_ticks()
    int64_t raw_now_ns()


cdef inline Py_ssize_t _kernel_call(sa_table_t *t, BurstArrays w, Py_ssize_t n,
                                    bint encrypt) noexcept nogil:
    if encrypt:
        return esp_encrypt_burst(t, &w.data[0, 0], w.data.shape[1], &w.offset[0], &w.length[0],
                                 &w.sa[0], &w.status[0], n)
    return esp_decrypt_burst(t, &w.data[0, 0], w.data.shape[1], &w.offset[0], &w.length[0],
                             &w.sa[0], &w.status[0], n)


# Where a `Burst`'s `count` and `kernel_view` slots sit, learnt on the first call.
cdef burst_layout_t _kernel_layout


cdef inline BurstArrays _view_and_count(burst, Py_ssize_t *n):
    """The burst's cached view and its `count`, read from their slots (burst_slots.h)."""
    cdef PyObject *view = burst_layout_view(&_kernel_layout, burst, BurstArrays, "kernel_view", n)
    if view != NULL:
        return <BurstArrays>view
    n[0] = burst.count
    return _kernel_view(burst)


cdef inline BurstArrays _kernel_view(burst):
    """The burst's arrays as the kernels take them, viewed once and kept on the burst."""
    cdef BurstArrays b = burst.kernel_view
    if b is None:
        b = BurstArrays(burst.data, burst.offset, burst.length, burst.sa, burst.status, burst)
        burst.kernel_view = b
    return b


cdef int _set_next_iv(EVP_CIPHER_CTX *ctx, const uint8_t *salt, uint64_t seq) noexcept nogil:
    """Outbound: the context's next generated nonce is salt || seq (gcm.pxd)."""
    cdef uint8_t nonce[GCM_NONCE_LEN]
    memcpy(nonce, salt, 4)
    store64(nonce + 4, seq)
    return gcm_set_next_iv(ctx, nonce)


cdef EVP_CIPHER_CTX *_new_gcm_ctx(const EVP_CIPHER *cipher, bytes key, bytes salt,
                                  bint encrypt) except NULL:
    """An AES-GCM context keyed once, for the life of the SA (STYLE §4 rule 7), with its
    salt fixed: outbound it generates the IVs 1, 2, 3, ... (the sequence numbers), inbound
    each packet sets only its IV from the wire (gcm.pxd)."""
    cdef EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new()
    if ctx == NULL:
        raise MemoryError()
    if encrypt:
        ok = (EVP_EncryptInit_ex(ctx, cipher, NULL, NULL, NULL) == 1
              and EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, GCM_NONCE_LEN, NULL) == 1
              and EVP_EncryptInit_ex(ctx, NULL, NULL, <const unsigned char *>key, NULL) == 1
              and _set_next_iv(ctx, <const uint8_t *><const char *>salt, 1) == 0)
    else:
        ok = (EVP_DecryptInit_ex(ctx, cipher, NULL, NULL, NULL) == 1
              and EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, GCM_NONCE_LEN, NULL) == 1
              and EVP_DecryptInit_ex(ctx, NULL, NULL, <const unsigned char *>key, NULL) == 1
              and gcm_set_salt(ctx, <const uint8_t *><const char *>salt) == 0)
    if not ok:
        ERR_clear_error()
        EVP_CIPHER_CTX_free(ctx)
        raise RuntimeError("OpenSSL refused to set up AES-GCM")
    return ctx


cdef class BurstArrays:
    """The five arrays of a burst, viewed once. Acquiring a typed memoryview costs about a
    microsecond; a burst keeps one of these so that a call costs none of that per burst."""

    # fields in table.pxd; `source` is the object whose arrays these are

    def __init__(self, uint8_t[:, ::1] data, uint32_t[::1] offset, uint32_t[::1] length,
                 int32_t[::1] sa, uint8_t[::1] status, source=None):
        self.data, self.offset, self.length, self.sa, self.status = data, offset, length, sa, status
        self.source = source

    cdef int check(self, Py_ssize_t n) except -1:
        if n < 0 or n > self.data.shape[0] or n > self.offset.shape[0] \
                or n > self.length.shape[0] or n > self.sa.shape[0] or n > self.status.shape[0]:
            raise ValueError(f"burst of {n} packets does not fit the given arrays")
        return 0

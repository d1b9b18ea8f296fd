# The SA table's Python class, declared for the other kernels' modules: the forwarding pipeline
# (pipeline.pyx) reaches each PFE's `sa_table_t` through it, so the pipeline and the
# engine's own burst calls run the same kernels over the same table.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, int32_t
from _pfe_core.sa cimport sa_t, sa_table_t

# A table's lock: one word taken with an atomic exchange, released with a store. Every caller
# of the ESP kernels over a table holds it for the call (the table's burst calls and the
# forwarding pipeline alike), so an install in another thread never meets a burst halfway.
cdef extern from *:
    """
    #include <sched.h>
    static inline int pfe_try_lock(int *word) {
        return __atomic_exchange_n(word, 1, __ATOMIC_ACQUIRE) == 0;
    }
    static inline void pfe_lock(int *word) {
        while (!pfe_try_lock(word))
            sched_yield();
    }
    static inline void pfe_unlock(int *word) { __atomic_store_n(word, 0, __ATOMIC_RELEASE); }
    """
    bint pfe_try_lock(int *word) nogil
    void pfe_lock(int *word) nogil
    void pfe_unlock(int *word) nogil


# Bursts of several threads hand the GIL over without sleeping on it (gil_handoff.h): called
# first and last inside every burst call's GIL-free section.
cdef void gil_handoff_enter() noexcept nogil
cdef void gil_handoff_leave() noexcept nogil

# Whether a burst called now keeps the GIL for its C work: only when the calling thread is the
# process's only Python thread, so that releasing the GIL could let no one else run (table.pyx).
# Called with the GIL held.
cdef bint burst_keeps_gil() noexcept


cdef class TableLock:
    cdef int word


cdef class BurstArrays:
    cdef uint8_t[:, ::1] data
    cdef uint32_t[::1] offset
    cdef uint32_t[::1] length
    cdef int32_t[::1] sa
    cdef uint8_t[::1] status
    cdef readonly object source
    cdef int check(self, Py_ssize_t n) except -1


cdef class SaTable:
    cdef sa_table_t t
    cdef readonly str backend
    cdef readonly TableLock lock
    cdef int *_lk                 # &lock.word: the lock object lives as long as the table
    cdef void _build_header_template(self, sa_t *sa, bytes src, bytes dst, uint16_t sport,
                                     uint16_t dport, uint8_t ttl)
    cdef void _wipe(self, int32_t slot)
    cdef sa_t *_get(self, long long h) except NULL
    cdef Py_ssize_t _burst(self, BurstArrays b, Py_ssize_t n, bint encrypt) except -1

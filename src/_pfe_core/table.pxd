# The SA table's Python class, declared for the other kernels' modules: the forwarding pipeline
# (pipeline.pyx) reaches each PFE's `sa_table_t` through it, so the pipeline and the
# engine's own burst calls run the same kernels over the same table.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, int32_t
from _pfe_core.sa cimport sa_t, sa_table_t


cdef class SaTable:
    cdef sa_table_t t
    cdef readonly str backend
    cdef void _build_header_template(self, sa_t *sa, bytes src, bytes dst, uint16_t sport,
                                     uint16_t dport, uint8_t ttl)
    cdef void _wipe(self, int32_t slot)
    cdef sa_t *_get(self, long long h) except NULL


cdef class BurstArrays:
    cdef uint8_t[:, ::1] data
    cdef uint32_t[::1] offset
    cdef uint32_t[::1] length
    cdef int32_t[::1] sa
    cdef uint8_t[::1] status
    cdef readonly object source
    cdef int check(self, Py_ssize_t n) except -1

# A `Burst`'s `count` and cached view read from their slots (burst_slots.h): the burst calls
# of the SA table and of the forwarding pipeline each keep a layout of their own.
from cpython.object cimport PyObject

cdef extern from "burst_slots.h":
    ctypedef struct burst_layout_t:
        pass
    void burst_layout_learn(burst_layout_t *L, object obj, const char *view_name)
    bint burst_layout_read(const burst_layout_t *L, object obj, PyObject **count,
                           PyObject **view)

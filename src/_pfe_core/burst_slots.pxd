# A `Burst`'s `count` and cached view read from their slots (burst_slots.h): the burst calls
# of the SA table and of the forwarding pipeline each keep a layout of their own.
from cpython.object cimport PyObject

cdef extern from "burst_slots.h":
    ctypedef struct burst_layout_t:
        pass
    PyObject *burst_layout_view(burst_layout_t *L, object obj, type view_type,
                                const char *view_name, Py_ssize_t *n)

from libc.stdint cimport uint8_t, uint32_t, int32_t
from _pfe_core.sa cimport sa_table_t

cdef Py_ssize_t esp_encrypt_burst(sa_table_t *t, uint8_t *data, Py_ssize_t slot_size,
                                  uint32_t *offset, uint32_t *length, const int32_t *sa_index,
                                  uint8_t *status, Py_ssize_t n) noexcept nogil

/* A burst call's two reads of the `Burst` object: its `count` and its cached array view.
 *
 * Read through Python's attribute protocol, the two cost about 450 instructions per call
 * (type lookup, instance-dict probe, descriptor call), more than the rest of the call. A
 * `Burst` keeps both in `__slots__`, so each sits at a fixed offset in the object; this
 * reads them there, as CPython 3.11's own specialised LOAD_ATTR_SLOT does, under the same
 * guard: the object's type is the one the offsets were learnt from, and that type's version
 * tag is unchanged (assigning any class attribute, e.g. replacing `count` with a property,
 * changes it). Any other object takes the attribute protocol.
 */
#ifndef INLINE_IPSEC_BURST_SLOTS_H
#define INLINE_IPSEC_BURST_SLOTS_H

#include <Python.h>
#if PY_VERSION_HEX >= 0x030C0000
#define BURST_SLOT_OBJECT Py_T_OBJECT_EX
#define BURST_SLOT_READONLY Py_READONLY
#else
#include <structmember.h>
#define BURST_SLOT_OBJECT T_OBJECT_EX
#define BURST_SLOT_READONLY READONLY
#endif

typedef struct {
    PyTypeObject *type;          /* a strong reference, NULL until learnt */
    unsigned int version;
    Py_ssize_t count_at, view_at;
} burst_layout_t;

/* The offset of the writable object slot `name` of `tp`, or -1 if it is not one. */
static Py_ssize_t burst_slot_offset(PyTypeObject *tp, const char *name)
{
    Py_ssize_t at = -1;
    PyObject *d = PyObject_GetAttrString((PyObject *)tp, name);
    if (d == NULL) {
        PyErr_Clear();
        return -1;
    }
    if (Py_TYPE(d) == &PyMemberDescr_Type) {
        PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
        if (m->type == BURST_SLOT_OBJECT && !(m->flags & BURST_SLOT_READONLY) && m->offset > 0)
            at = m->offset;
    }
    Py_DECREF(d);
    return at;
}

/* Learn the layout of `obj`'s type: where its `count` and `view_name` slots sit. Types
 * without both slots are not learnt. */
static void burst_layout_learn(burst_layout_t *L, PyObject *obj, const char *view_name)
{
    PyTypeObject *tp = Py_TYPE(obj);
    Py_ssize_t count_at, view_at;
    if (L->type == tp && tp->tp_version_tag == L->version)
        return;
    count_at = burst_slot_offset(tp, "count");
    view_at = burst_slot_offset(tp, view_name);
    /* The lookups above gave the type a version tag if it can have one. */
    if (count_at < 0 || view_at < 0 || !(tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG))
        return;
    Py_INCREF(tp);
    Py_XDECREF(L->type);
    L->type = tp;
    L->version = tp->tp_version_tag;
    L->count_at = count_at;
    L->view_at = view_at;
}

/* The two slots of `obj` (borrowed references) if its layout is the learnt one and both are
 * set; 0 otherwise, and then the caller takes the attribute protocol. */
static inline int burst_layout_read(const burst_layout_t *L, PyObject *obj, PyObject **count,
                                    PyObject **view)
{
    PyTypeObject *tp = Py_TYPE(obj);
    if (tp != L->type || tp->tp_version_tag != L->version
            || !(tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG))
        return 0;
    *count = *(PyObject **)((char *)obj + L->count_at);
    *view = *(PyObject **)((char *)obj + L->view_at);
    return *count != NULL && *view != NULL;
}

/* The cached view of `obj` (borrowed) and its `count` in *n, read from their slots when `obj`
 * has the learnt layout (learnt here from its type when it has not), the view is of
 * `view_type` and the count an int that fits; NULL otherwise, with no error set, and then the
 * caller takes the attribute protocol, which raises whatever is wrong. */
static inline PyObject *burst_layout_view(burst_layout_t *L, PyObject *obj,
                                          PyTypeObject *view_type, const char *view_name,
                                          Py_ssize_t *n)
{
    PyObject *count, *view;
    if (!burst_layout_read(L, obj, &count, &view)) {
        burst_layout_learn(L, obj, view_name);
        if (!burst_layout_read(L, obj, &count, &view))
            return NULL;
    }
    if (Py_TYPE(view) != view_type || !PyLong_CheckExact(count))
        return NULL;
    *n = PyLong_AsSsize_t(count);
    if (*n == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return NULL;
    }
    return view;
}

#endif

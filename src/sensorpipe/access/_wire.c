/* sensorpipe.access._wire: decode a serialized tf.train.Example of a planned layout in one C pass.
 *
 * Why C: after the read, what a random access through sensorpipe.open() costs is
 * Python work per field (a window record has ~46), comparable to the read itself
 * (BENCHMARKS.md, "Loaders"). This walks the wire bytes once and builds the same nested dict
 * the exact decoder builds (sensorpipe/access/decode.py): tensors are read-only
 * numpy arrays over the record's bytes (a copy when a view would be misaligned),
 * texts are bytes, float32 scalars Python floats, bool scalars Python bools,
 * integers Python ints. Anything it does not expect -- an unknown,
 * a duplicate or missing key, an unpacked list, a wrong size -- returns None and
 * the protobuf (exact) decoder takes the record, so it never decides what a record means.
 *
 * Plan(leaves, dicts, inserts, ndarray):
 *   leaves  : sequence of (key: bytes, kind: int, nbytes: int, dtype, shape) in the order the
 *             writer emits map entries; kind 0 text, 1 tensor, 2 float32, 3 bool, 4 int64.
 *   dicts   : number of dicts in the output tree (index 0 is the root).
 *   inserts : sequence of (dict index, name: str, leaf index or -1 - child dict index), in the
 *             order keys are inserted (sorted at every level, like the exact decoder).
 *   ndarray : numpy.ndarray (called as ndarray(shape, dtype, buffer, offset)).
 * Plan.decode(record) -> dict | None (None also for a record that is not a bytes object)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define WIRE_ABI 1

enum { K_TEXT = 0, K_TENSOR = 1, K_FLOAT = 2, K_BOOL = 3, K_INT = 4 };

typedef struct {
    const char *key;
    Py_ssize_t key_len;
    int kind;
    Py_ssize_t nbytes;     /* tensors */
    Py_ssize_t itemsize;   /* tensors: alignment a view needs */
    PyObject *dtype;       /* tensors */
    PyObject *shape;       /* tensors */
} Leaf;

typedef struct {
    int dict;              /* where to insert */
    PyObject *name;        /* str key */
    int source;            /* leaf index, or -1 - child dict index */
} Insert;

typedef struct {
    PyObject_HEAD
    Py_ssize_t n_leaves;
    Leaf *leaves;
    PyObject *keys;        /* keeps the key bytes alive */
    Py_ssize_t n_dicts;
    Py_ssize_t n_inserts;
    Insert *inserts;
    PyObject *ndarray;
} Plan;

/* Read a varint at *p (bounded by end); 0 on malformed/overlong input. */
static inline int read_varint(const unsigned char **p, const unsigned char *end, uint64_t *out) {
    uint64_t v = 0;
    int shift = 0;
    const unsigned char *q = *p;
    while (q < end && shift < 64) {
        unsigned char b = *q++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *p = q;
            *out = v;
            return 1;
        }
        shift += 7;
    }
    return 0;
}

/* A length-delimited field with tag `tag` at *p: sets [*start, *stop) to its payload. */
static inline int read_len_field(const unsigned char **p, const unsigned char *end, unsigned char tag,
                                 const unsigned char **start, const unsigned char **stop) {
    uint64_t n;
    const unsigned char *q = *p;
    if (q >= end || *q != tag)
        return 0;
    q++;
    if (!read_varint(&q, end, &n) || n > (uint64_t)(end - q))
        return 0;
    *start = q;
    *stop = q + n;
    *p = q + n;
    return 1;
}

static void Plan_dealloc(Plan *self) {
    if (self->leaves) {
        for (Py_ssize_t i = 0; i < self->n_leaves; i++) {
            Py_XDECREF(self->leaves[i].dtype);
            Py_XDECREF(self->leaves[i].shape);
        }
        PyMem_Free(self->leaves);
    }
    if (self->inserts) {
        for (Py_ssize_t i = 0; i < self->n_inserts; i++)
            Py_XDECREF(self->inserts[i].name);
        PyMem_Free(self->inserts);
    }
    Py_XDECREF(self->keys);
    Py_XDECREF(self->ndarray);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Plan_init(Plan *self, PyObject *args, PyObject *kwds) {
    PyObject *leaves, *inserts, *ndarray;
    Py_ssize_t n_dicts;
    if (kwds && PyDict_GET_SIZE(kwds)) {
        PyErr_SetString(PyExc_TypeError, "Plan() takes positional arguments only");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "OnOO", &leaves, &n_dicts, &inserts, &ndarray))
        return -1;
    if (self->leaves || self->inserts) {
        PyErr_SetString(PyExc_TypeError, "a Plan is initialized once");
        return -1;
    }
    PyObject *lf = PySequence_Fast(leaves, "leaves must be a sequence");
    if (!lf)
        return -1;
    PyObject *ins = PySequence_Fast(inserts, "inserts must be a sequence");
    if (!ins) {
        Py_DECREF(lf);
        return -1;
    }
    Py_ssize_t nl = PySequence_Fast_GET_SIZE(lf), ni = PySequence_Fast_GET_SIZE(ins);
    self->leaves = PyMem_Calloc(nl ? nl : 1, sizeof(Leaf));
    self->inserts = PyMem_Calloc(ni ? ni : 1, sizeof(Insert));
    self->keys = PyList_New(0);
    if (!self->leaves || !self->inserts || !self->keys)
        goto fail;
    self->n_leaves = nl;
    self->n_inserts = ni;
    self->n_dicts = n_dicts;
    if (n_dicts < 1) {
        PyErr_SetString(PyExc_ValueError, "a plan needs a root dict");
        goto fail;
    }
    for (Py_ssize_t i = 0; i < nl; i++) {
        PyObject *key, *dtype, *shape;
        int kind;
        Py_ssize_t nbytes, itemsize;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(lf, i), "SinnOO", &key, &kind, &nbytes, &itemsize,
                              &dtype, &shape))
            goto fail;
        if (kind < K_TEXT || kind > K_INT || (kind == K_TENSOR && (nbytes < 0 || itemsize < 1))) {
            PyErr_Format(PyExc_ValueError, "leaf %zd: bad kind or size", i);
            goto fail;
        }
        if (PyList_Append(self->keys, key) < 0)
            goto fail;
        Leaf *l = &self->leaves[i];
        l->key = PyBytes_AS_STRING(key);
        l->key_len = PyBytes_GET_SIZE(key);
        l->kind = kind;
        l->nbytes = nbytes;
        l->itemsize = itemsize;
        Py_INCREF(dtype);
        l->dtype = dtype;
        Py_INCREF(shape);
        l->shape = shape;
    }
    for (Py_ssize_t i = 0; i < ni; i++) {
        int dict, source;
        PyObject *name;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(ins, i), "iUi", &dict, &name, &source))
            goto fail;
        if (dict < 0 || dict >= n_dicts || source >= nl || (source < 0 && -1 - source >= n_dicts)) {
            PyErr_Format(PyExc_ValueError, "insert %zd: index out of range", i);
            goto fail;
        }
        Py_INCREF(name);
        self->inserts[i] = (Insert){dict, name, source};
    }
    Py_INCREF(ndarray);
    self->ndarray = ndarray;
    Py_DECREF(lf);
    Py_DECREF(ins);
    return 0;
fail:
    Py_DECREF(lf);
    Py_DECREF(ins);
    return -1;
}

/* The one value of a Feature's list (field `tag` of Feature, field 1 of the list): [*start, *stop). */
static inline int one_list_value(const unsigned char *f, const unsigned char *fend, unsigned char tag,
                                 const unsigned char **start, const unsigned char **stop) {
    const unsigned char *ls, *le;
    if (!read_len_field(&f, fend, tag, &ls, &le) || f != fend)
        return 0;
    return read_len_field(&ls, le, 0x0a, start, stop) && ls == le;
}

static PyObject *tensor(Plan *self, const Leaf *l, PyObject *record, const unsigned char *base,
                        const unsigned char *v) {
    PyObject *buf, *offset, *args, *out;
    if (((uintptr_t)v) % (uintptr_t)l->itemsize == 0) {
        buf = record;
        Py_INCREF(buf);
        offset = PyLong_FromSsize_t((Py_ssize_t)(v - base));
    } else { /* a view would be misaligned: an aligned copy, read-only like TFDS's */
        buf = PyBytes_FromStringAndSize((const char *)v, l->nbytes);
        offset = PyLong_FromLong(0);
    }
    if (!buf || !offset) {
        Py_XDECREF(buf);
        Py_XDECREF(offset);
        return NULL;
    }
    args = PyTuple_Pack(4, l->shape, l->dtype, buf, offset);
    Py_DECREF(buf);
    Py_DECREF(offset);
    if (!args)
        return NULL;
    out = PyObject_Call(self->ndarray, args, NULL);
    Py_DECREF(args);
    return out;
}

/* The value of leaf `l` from its Feature bytes; NULL with no error set = not the planned layout. */
static PyObject *leaf_value(Plan *self, const Leaf *l, PyObject *record, const unsigned char *base,
                            const unsigned char *f, const unsigned char *fend) {
    const unsigned char *vs, *ve;
    switch (l->kind) {
    case K_TEXT:
        if (!one_list_value(f, fend, 0x0a, &vs, &ve))
            return NULL;
        return PyBytes_FromStringAndSize((const char *)vs, ve - vs);
    case K_TENSOR:
        if (!one_list_value(f, fend, 0x0a, &vs, &ve) || ve - vs != l->nbytes)
            return NULL;
        return tensor(self, l, record, base, vs);
    case K_FLOAT: {
        if (!read_len_field(&f, fend, 0x12, &vs, &ve) || f != fend)
            return NULL;
        const unsigned char *ps, *pe;
        if (!read_len_field(&vs, ve, 0x0a, &ps, &pe) || vs != ve || pe - ps != 4)
            return NULL;
        uint32_t bits = (uint32_t)ps[0] | (uint32_t)ps[1] << 8 | (uint32_t)ps[2] << 16 | (uint32_t)ps[3] << 24;
        float x;
        memcpy(&x, &bits, 4);
        return PyFloat_FromDouble((double)x);
    }
    case K_BOOL:
    case K_INT: {
        if (!read_len_field(&f, fend, 0x1a, &vs, &ve) || f != fend)
            return NULL;
        const unsigned char *ps, *pe;
        uint64_t v;
        if (!read_len_field(&vs, ve, 0x0a, &ps, &pe) || vs != ve || !read_varint(&ps, pe, &v) || ps != pe)
            return NULL;
        if (l->kind == K_BOOL)
            return PyBool_FromLong(v != 0);
        return PyLong_FromLongLong((long long)v);
    }
    }
    return NULL;
}

static PyObject *Plan_decode(Plan *self, PyObject *record) {
    if (!PyBytes_Check(record)) /* a bytearray or memoryview: the Python paths take any buffer */
        Py_RETURN_NONE;
    const unsigned char *base = (const unsigned char *)PyBytes_AS_STRING(record);
    const unsigned char *p = base, *end = base + PyBytes_GET_SIZE(record);
    const unsigned char *fs, *fe;
    /* Example{features (1)} and nothing else */
    if (!read_len_field(&p, end, 0x0a, &fs, &fe) || p != end)
        Py_RETURN_NONE;
    Py_ssize_t n = self->n_leaves;
    PyObject *stack_vals[64] = {NULL};
    PyObject **vals = n <= 64 ? stack_vals : PyMem_Calloc(n, sizeof(PyObject *));
    if (!vals)
        return PyErr_NoMemory();
    Py_ssize_t got = 0, next = 0;
    PyObject *result = NULL;
    int ok = 1;
    p = fs;
    while (p < fe) {
        const unsigned char *es, *ee, *ks, *ke, *vs, *ve;
        /* map entry {key (1), value (2)} */
        if (got >= n || !read_len_field(&p, fe, 0x0a, &es, &ee) || !read_len_field(&es, ee, 0x0a, &ks, &ke) ||
            !read_len_field(&es, ee, 0x12, &vs, &ve) || es != ee) {
            ok = 0;
            break;
        }
        /* our writer's order first; any other order (TFDS's own serializer) by a scan of the keys */
        Py_ssize_t i = next < n ? next : 0, tried = 0;
        while (tried < n && (ke - ks != self->leaves[i].key_len ||
                             memcmp(ks, self->leaves[i].key, (size_t)self->leaves[i].key_len) != 0)) {
            i = i + 1 < n ? i + 1 : 0;
            tried++;
        }
        if (tried == n || vals[i]) { /* an unknown key, or a key twice */
            ok = 0;
            break;
        }
        PyObject *v = leaf_value(self, &self->leaves[i], record, base, vs, ve);
        if (!v) {
            ok = 0;
            break;
        }
        vals[i] = v;
        got++;
        next = i + 1;
    }
    if (ok && got == n && !PyErr_Occurred()) {
        PyObject *stack_dicts[16];
        Py_ssize_t nd = self->n_dicts;
        PyObject **dicts = nd <= 16 ? stack_dicts : PyMem_Calloc(nd, sizeof(PyObject *));
        if (!dicts) {
            PyErr_NoMemory();
        } else {
            Py_ssize_t made = 0;
            for (; made < nd; made++)
                if (!(dicts[made] = PyDict_New()))
                    break;
            int err = made < nd;
            for (Py_ssize_t i = 0; !err && i < self->n_inserts; i++) {
                const Insert *in = &self->inserts[i];
                PyObject *v = in->source >= 0 ? vals[in->source] : dicts[-1 - in->source];
                err = PyDict_SetItem(dicts[in->dict], in->name, v) < 0;
            }
            if (!err) {
                result = dicts[0];
                Py_INCREF(result);
            }
            for (Py_ssize_t i = 0; i < made; i++)
                Py_DECREF(dicts[i]);
            if (dicts != stack_dicts)
                PyMem_Free(dicts);
        }
    }
    for (Py_ssize_t i = 0; i < n; i++)
        Py_XDECREF(vals[i]);
    if (vals != stack_vals)
        PyMem_Free(vals);
    if (result || PyErr_Occurred())
        return result;
    Py_RETURN_NONE;
}

static PyMethodDef Plan_methods[] = {
    {"decode", (PyCFunction)Plan_decode, METH_O,
     "decode(record: bytes) -> dict, or None when the record is not laid out as planned"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PlanType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sensorpipe.access._wire.Plan",
    .tp_basicsize = sizeof(Plan),
    .tp_dealloc = (destructor)Plan_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A record layout planned once; decode(record) builds the nested dict of one record.",
    .tp_methods = Plan_methods,
    .tp_init = (initproc)Plan_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef wire_module = {
    PyModuleDef_HEAD_INIT, "sensorpipe.access._wire",
    "Decode planned tf.train.Example records in C (see sensorpipe.access.decode).", -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__wire(void) {
    if (PyType_Ready(&PlanType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&wire_module);
    if (!m)
        return NULL;
    Py_INCREF(&PlanType);
    if (PyModule_AddObject(m, "Plan", (PyObject *)&PlanType) < 0 || PyModule_AddIntConstant(m, "ABI", WIRE_ABI) < 0) {
        Py_DECREF(&PlanType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

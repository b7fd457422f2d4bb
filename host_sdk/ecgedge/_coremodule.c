/*
 * ecgedge._core: the firmware's portable C core, compiled for the host.
 *
 * Why the CPython C API (and not cffi or ctypes): it adds no runtime dependency, `pip install -e .`
 * builds it with the compiler the machine already has, and the per-sample loops stay in C. The
 * module takes plain buffers (buffer protocol), so it needs no numpy headers; `ecgedge.core`
 * validates input and turns the results into numpy arrays. Heap use here is host-only glue; the
 * core itself never allocates.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <string.h>

#include "ecg/ecg_filter.h"
#include "ecg/ecg_qrs.h"

static int check_err(ecg_err_t err, const char *what)
{
    if (err != ECG_OK) {
        PyErr_Format(PyExc_ValueError, "%s: %s (error %d)", what, ecg_err_str(err), (int)err);
        return -1;
    }
    return 0;
}

/* A C-contiguous float32 buffer (struct format 'f'). */
static int get_f32(PyObject *obj, Py_buffer *view, int writable)
{
    if (PyObject_GetBuffer(obj, view,
                           PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) <
        0) {
        return -1;
    }
    if (view->itemsize != 4 || view->format == NULL || strcmp(view->format, "f") != 0) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_TypeError, "expected a C-contiguous float32 buffer");
        return -1;
    }
    return 0;
}

/* Float configuration fields settable by keyword, by name and offset. */
typedef struct {
    const char *name;
    size_t offset;
} field_t;

static const field_t FILTER_FIELDS[] = {
    {"highpass_hz", offsetof(ecg_filter_cfg_t, highpass_hz)},
    {"lowpass_hz", offsetof(ecg_filter_cfg_t, lowpass_hz)},
    {"notch_q", offsetof(ecg_filter_cfg_t, notch_q)},
    {NULL, 0}};

static const field_t QRS_FIELDS[] = {
    {"bandpass_hz", offsetof(ecg_qrs_cfg_t, bandpass_hz)},
    {"bandpass_q", offsetof(ecg_qrs_cfg_t, bandpass_q)},
    {"slope_ms", offsetof(ecg_qrs_cfg_t, slope_ms)},
    {"mwi_ms", offsetof(ecg_qrs_cfg_t, mwi_ms)},
    {"peak_hold_ms", offsetof(ecg_qrs_cfg_t, peak_hold_ms)},
    {"refractory_ms", offsetof(ecg_qrs_cfg_t, refractory_ms)},
    {"twave_ms", offsetof(ecg_qrs_cfg_t, twave_ms)},
    {"twave_slope_frac", offsetof(ecg_qrs_cfg_t, twave_slope_frac)},
    {"pwave_ms", offsetof(ecg_qrs_cfg_t, pwave_ms)},
    {"weak_slope_frac", offsetof(ecg_qrs_cfg_t, weak_slope_frac)},
    {"pwave_height_frac", offsetof(ecg_qrs_cfg_t, pwave_height_frac)},
    {"threshold_frac", offsetof(ecg_qrs_cfg_t, threshold_frac)},
    {"threshold_noise_gain", offsetof(ecg_qrs_cfg_t, threshold_noise_gain)},
    {"threshold_activity_gain", offsetof(ecg_qrs_cfg_t, threshold_activity_gain)},
    {"activity_clean", offsetof(ecg_qrs_cfg_t, activity_clean)},
    {"searchback_rr_frac", offsetof(ecg_qrs_cfg_t, searchback_rr_frac)},
    {"searchback_frac", offsetof(ecg_qrs_cfg_t, searchback_frac)},
    {"searchback_gap_frac", offsetof(ecg_qrs_cfg_t, searchback_gap_frac)},
    {"searchback_min_ms", offsetof(ecg_qrs_cfg_t, searchback_min_ms)},
    {"learn_ms", offsetof(ecg_qrs_cfg_t, learn_ms)},
    {NULL, 0}};

/* Apply {name: float} from `params` to the struct at `base` via one of the field tables. Keys not
 * in the table are an error unless `other` (the second table) knows them. */
static int apply_fields(PyObject *params, void *base, const field_t *fields, const field_t *other)
{
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    if (params == NULL || params == Py_None) {
        return 0;
    }
    if (!PyDict_Check(params)) {
        PyErr_SetString(PyExc_TypeError, "params must be a dict");
        return -1;
    }
    while (PyDict_Next(params, &pos, &key, &value)) {
        const char *name = PyUnicode_AsUTF8(key);
        const field_t *f;
        int found = 0;
        double v;
        if (name == NULL) {
            return -1;
        }
        for (f = fields; f->name != NULL; f++) {
            if (strcmp(f->name, name) == 0) {
                v = PyFloat_AsDouble(value);
                if (v == -1.0 && PyErr_Occurred()) {
                    return -1;
                }
                *(float *)((char *)base + f->offset) = (float)v;
                found = 1;
            }
        }
        for (f = other; !found && f != NULL && f->name != NULL; f++) {
            found = strcmp(f->name, name) == 0;
        }
        if (!found) {
            PyErr_Format(PyExc_TypeError, "unknown parameter '%s'", name);
            return -1;
        }
    }
    return 0;
}

static int make_filter_cfg(ecg_filter_cfg_t *cfg, float fs_hz, int mains_hz, PyObject *params,
                           const field_t *other)
{
    ecg_filter_default_cfg(cfg, fs_hz);
    if (mains_hz < 0 || mains_hz > 255) {
        PyErr_SetString(PyExc_ValueError, "mains_hz must be 0, 50 or 60");
        return -1;
    }
    cfg->mains_hz = (uint8_t)mains_hz;
    return apply_fields(params, cfg, FILTER_FIELDS, other);
}

/* ---------------------------------------------------------------- Filter */

typedef struct {
    PyObject_HEAD
    ecg_filter_t f;
} FilterObject;

static int Filter_init(FilterObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"fs_hz", "mains_hz", "params", NULL};
    ecg_filter_cfg_t cfg;
    float fs_hz;
    int mains_hz;
    PyObject *params = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "fi|O", kwlist, &fs_hz, &mains_hz, &params) ||
        make_filter_cfg(&cfg, fs_hz, mains_hz, params, NULL) < 0) {
        return -1;
    }
    return check_err(ecg_filter_init(&self->f, &cfg), "filter configuration");
}

static PyObject *Filter_process(FilterObject *self, PyObject *args)
{
    PyObject *src_obj, *dst_obj;
    Py_buffer src, dst;
    if (!PyArg_ParseTuple(args, "OO", &src_obj, &dst_obj) || get_f32(src_obj, &src, 0) < 0) {
        return NULL;
    }
    if (get_f32(dst_obj, &dst, 1) < 0) {
        PyBuffer_Release(&src);
        return NULL;
    }
    if (dst.len < src.len) {
        PyBuffer_Release(&src);
        PyBuffer_Release(&dst);
        PyErr_SetString(PyExc_ValueError, "output buffer is shorter than the input");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    ecg_filter_process(&self->f, (const float *)src.buf, (float *)dst.buf,
                       (size_t)(src.len / 4));
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    Py_RETURN_NONE;
}

static PyObject *Filter_reset(FilterObject *self, PyObject *Py_UNUSED(ignored))
{
    ecg_filter_reset(&self->f);
    Py_RETURN_NONE;
}

static PyObject *Filter_delay(FilterObject *self, void *Py_UNUSED(closure))
{
    return PyFloat_FromDouble((double)ecg_filter_delay_samples(&self->f));
}

static PyMethodDef Filter_methods[] = {
    {"process", (PyCFunction)Filter_process, METH_VARARGS, "process(src_f32, dst_f32)"},
    {"reset", (PyCFunction)Filter_reset, METH_NOARGS, "forget past input"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Filter_getset[] = {
    {"delay_samples", (getter)Filter_delay, NULL, "group delay at 10 Hz, samples", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject FilterType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ecgedge._core.Filter",
    .tp_basicsize = sizeof(FilterObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Filter(fs_hz, mains_hz, params=None): ecg_filter from the firmware core",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Filter_init,
    .tp_methods = Filter_methods,
    .tp_getset = Filter_getset,
};

/* ---------------------------------------------------------------- QrsDetector (filter + QRS) */

typedef struct {
    PyObject_HEAD
    ecg_filter_t f;
    ecg_qrs_t q;
} QrsObject;

static int Qrs_init(QrsObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"fs_hz", "mains_hz", "params", NULL};
    ecg_filter_cfg_t fcfg;
    ecg_qrs_cfg_t qcfg;
    float fs_hz;
    int mains_hz;
    PyObject *params = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "fi|O", kwlist, &fs_hz, &mains_hz, &params) ||
        make_filter_cfg(&fcfg, fs_hz, mains_hz, params, QRS_FIELDS) < 0 ||
        check_err(ecg_filter_init(&self->f, &fcfg), "filter configuration") < 0) {
        return -1;
    }
    ecg_qrs_default_cfg(&qcfg, fs_hz);
    qcfg.filter_delay_samples = ecg_filter_delay_samples(&self->f);
    if (apply_fields(params, &qcfg, QRS_FIELDS, FILTER_FIELDS) < 0) {
        return -1;
    }
    return check_err(ecg_qrs_init(&self->q, &qcfg), "QRS detector configuration");
}

/* Growable output: per beat, R-peak index and the index of the sample whose arrival decided it
 * (int64 pairs), and the quality flag (uint8). */
typedef struct {
    int64_t *index;
    uint8_t *quality;
    Py_ssize_t n, cap;
} beats_t;

static int beats_push(beats_t *b, const ecg_qrs_beat_t *beat, uint64_t decided_at)
{
    if (b->n == b->cap) {
        Py_ssize_t cap = b->cap ? 2 * b->cap : 64;
        int64_t *ni = PyMem_RawRealloc(b->index, (size_t)cap * 2u * sizeof(int64_t));
        uint8_t *nq;
        if (ni == NULL) {
            return -1;
        }
        b->index = ni;
        nq = PyMem_RawRealloc(b->quality, (size_t)cap);
        if (nq == NULL) {
            return -1;
        }
        b->quality = nq;
        b->cap = cap;
    }
    b->index[2 * b->n] = (int64_t)beat->index;
    b->index[2 * b->n + 1] = (int64_t)decided_at;
    b->quality[b->n] = beat->quality;
    b->n++;
    return 0;
}

static PyObject *beats_result(beats_t *b, int failed)
{
    PyObject *res = NULL;
    if (failed) {
        PyErr_NoMemory();
    } else {
        /* "y#" turns a NULL pointer into None, so an empty result passes "" instead. */
        res = Py_BuildValue("y#y#", b->n ? (const char *)b->index : "",
                            b->n * 2 * (Py_ssize_t)sizeof(int64_t),
                            b->n ? (const char *)b->quality : "", b->n);
    }
    PyMem_RawFree(b->index);
    PyMem_RawFree(b->quality);
    return res;
}

/* Filter in blocks, as the device does with what its front end delivers, then detect per sample. */
#define FILTER_BLOCK 64

static PyObject *Qrs_process(QrsObject *self, PyObject *args)
{
    PyObject *src_obj;
    Py_buffer src;
    beats_t b = {NULL, NULL, 0, 0};
    int failed = 0;
    Py_ssize_t i, k, n;
    if (!PyArg_ParseTuple(args, "O", &src_obj) || get_f32(src_obj, &src, 0) < 0) {
        return NULL;
    }
    n = src.len / 4;
    Py_BEGIN_ALLOW_THREADS
    for (i = 0; i < n && !failed; i += FILTER_BLOCK) {
        float block[FILTER_BLOCK];
        const Py_ssize_t len = n - i < FILTER_BLOCK ? n - i : FILTER_BLOCK;
        ecg_filter_process(&self->f, (const float *)src.buf + i, block, (size_t)len);
        for (k = 0; k < len && !failed; k++) {
            ecg_qrs_beat_t beat;
            if (ecg_qrs_step(&self->q, block[k], &beat)) {
                failed = beats_push(&b, &beat, self->q.n - 1u);
            }
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&src);
    return beats_result(&b, failed);
}

static PyObject *Qrs_flush(QrsObject *self, PyObject *Py_UNUSED(ignored))
{
    beats_t b = {NULL, NULL, 0, 0};
    ecg_qrs_beat_t beat;
    int failed = 0;
    while (!failed && ecg_qrs_flush(&self->q, &beat)) {
        failed = beats_push(&b, &beat, self->q.n ? self->q.n - 1u : 0u);
    }
    return beats_result(&b, failed);
}

static PyObject *Qrs_reset(QrsObject *self, PyObject *Py_UNUSED(ignored))
{
    ecg_filter_reset(&self->f);
    ecg_qrs_reset(&self->q);
    Py_RETURN_NONE;
}

static PyObject *Qrs_delay(QrsObject *self, void *Py_UNUSED(closure))
{
    return PyFloat_FromDouble((double)ecg_filter_delay_samples(&self->f));
}

static PyObject *Qrs_state_bytes(QrsObject *self, void *Py_UNUSED(closure))
{
    (void)self;
    return Py_BuildValue("{s:n,s:n}", "ecg_filter_t", (Py_ssize_t)sizeof(ecg_filter_t),
                         "ecg_qrs_t", (Py_ssize_t)sizeof(ecg_qrs_t));
}

static PyMethodDef Qrs_methods[] = {
    {"process", (PyCFunction)Qrs_process, METH_VARARGS,
     "process(src_f32) -> (int64 (index, decided_at) pair bytes, uint8 quality bytes)"},
    {"flush", (PyCFunction)Qrs_flush, METH_NOARGS, "decide pending beats at end of stream"},
    {"reset", (PyCFunction)Qrs_reset, METH_NOARGS, "forget all history"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Qrs_getset[] = {
    {"delay_samples", (getter)Qrs_delay, NULL, "filter group delay at 10 Hz, samples", NULL},
    {"state_bytes", (getter)Qrs_state_bytes, NULL, "sizes of the C state structs", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject QrsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ecgedge._core.QrsDetector",
    .tp_basicsize = sizeof(QrsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "QrsDetector(fs_hz, mains_hz, params=None): ecg_filter + ecg_qrs from the core",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Qrs_init,
    .tp_methods = Qrs_methods,
    .tp_getset = Qrs_getset,
};

static struct PyModuleDef coremodule = {PyModuleDef_HEAD_INIT, "ecgedge._core",
                                        "ecgedge firmware core, host build", -1, NULL,
                                        NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__core(void)
{
    PyObject *m;
    if (PyType_Ready(&FilterType) < 0 || PyType_Ready(&QrsType) < 0) {
        return NULL;
    }
    m = PyModule_Create(&coremodule);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&FilterType);
    Py_INCREF(&QrsType);
    if (PyModule_AddObject(m, "Filter", (PyObject *)&FilterType) < 0 ||
        PyModule_AddObject(m, "QrsDetector", (PyObject *)&QrsType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

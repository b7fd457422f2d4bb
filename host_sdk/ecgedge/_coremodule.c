/*
 * ecgedge._core: the firmware's portable C core, compiled for the host.
 *
 * Why the CPython C API (and not cffi or ctypes): it adds no runtime dependency, `pip install -e .`
 * builds it with the compiler the machine already has, and the per-sample loops stay in C. The
 * module takes plain buffers (buffer protocol), so it needs no numpy headers; `ecgedge.core`
 * validates input and turns the results into numpy arrays. Heap use here is host-only glue; the
 * core itself never allocates.
 *
 * Types: Filter (ecg_filter), QrsDetector (ecg_filter + ecg_qrs, the way the device runs them) and
 * Device (ecg_device: the whole device behind the wire protocol, with a fake HAL whose clock the
 * Python side sets; the virtual device `ecgedge.sim` drives it), BeatClassifier (ecg_classifier:
 * the int8 beat model; `ecgedge.classifier` wraps it).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <string.h>

#include "ecg/ecg_classifier.h"
#include "ecg/ecg_device.h"
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

static int beats_push(beats_t *b, const ecg_qrs_beat_t *beat)
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
    b->index[2 * b->n + 1] = (int64_t)beat->decided_at;
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
    Py_ssize_t i, n;
    if (!PyArg_ParseTuple(args, "O", &src_obj) || get_f32(src_obj, &src, 0) < 0) {
        return NULL;
    }
    n = src.len / 4;
    Py_BEGIN_ALLOW_THREADS
    for (i = 0; i < n && !failed; i += FILTER_BLOCK) {
        float block[FILTER_BLOCK];
        const Py_ssize_t len = n - i < FILTER_BLOCK ? n - i : FILTER_BLOCK;
        ecg_qrs_beat_t found[FILTER_BLOCK];
        size_t nb, j;
        ecg_filter_process(&self->f, (const float *)src.buf + i, block, (size_t)len);
        nb = ecg_qrs_process(&self->q, block, (size_t)len, found);
        for (j = 0; j < nb && !failed; j++) {
            failed = beats_push(&b, &found[j]);
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
        failed = beats_push(&b, &beat);
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

/* ---------------------------------------------------------------- Device (ecg_device + fake HAL) */

/* The HAL of the host build: the clock is whatever Python last set, sampling start/stop/rate are
 * recorded for the simulator to act on (it plays the front end), critical sections are not needed
 * (one thread, the GIL held), and the queue is drained by tx(). */
typedef struct {
    PyObject_HEAD
    ecg_hal_t hal;
    uint64_t clock_us;
    int sampling;
    unsigned long sampling_starts;
    uint16_t sampling_rate_hz;
    int ready;
    ecg_device_t dev;
} DeviceObject;

static uint64_t hal_time_us(void *ctx)
{
    return ((DeviceObject *)ctx)->clock_us;
}

static ecg_err_t hal_sampling_start(void *ctx)
{
    DeviceObject *self = (DeviceObject *)ctx;
    self->sampling = 1;
    self->sampling_starts++;
    return ECG_OK;
}

static void hal_sampling_stop(void *ctx)
{
    ((DeviceObject *)ctx)->sampling = 0;
}

static ecg_err_t hal_sampling_set_rate(void *ctx, uint16_t rate_hz)
{
    ((DeviceObject *)ctx)->sampling_rate_hz = rate_hz;
    return ECG_OK;
}

static int int_in(const char *name, long v, long lo, long hi)
{
    if (v < lo || v > hi) {
        PyErr_Format(PyExc_ValueError, "%s=%ld is outside %ld..%ld", name, v, lo, hi);
        return -1;
    }
    return 0;
}

static int Device_init(DeviceObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"fs_hz", "leads", "gain_uv_per_count", "mains_hz", "rates_mask",
                             "qrs_lead", "content", "source", "fw_version", "model_id",
                             "port_caps", "status_period_ms", "block_samples", "clock_us", NULL};
    long fs_hz, leads = 1, mains_hz = 50, rates_mask = 0, qrs_lead = 0, content = 0, source = 0;
    long model_id = 0, status_period_ms = 1000, block_samples = 0;
    unsigned long long clock_us = 0;
    unsigned long port_caps = 0;
    int fw_major = 0, fw_minor = 1, fw_patch = 0;
    float gain = 5.0f;
    ecg_device_cfg_t cfg;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "l|lfl$llll(iii)lkllK", kwlist, &fs_hz,
                                     &leads, &gain, &mains_hz, &rates_mask, &qrs_lead, &content,
                                     &source, &fw_major, &fw_minor, &fw_patch, &model_id,
                                     &port_caps, &status_period_ms, &block_samples, &clock_us)) {
        return -1;
    }
    if (int_in("fs_hz", fs_hz, 1, 65535) < 0 || int_in("leads", leads, 1, 255) < 0 ||
        int_in("mains_hz", mains_hz, 0, 255) < 0 || int_in("rates_mask", rates_mask, 0, 65535) < 0 ||
        int_in("qrs_lead", qrs_lead, 0, 255) < 0 || int_in("content", content, 0, 255) < 0 ||
        int_in("source", source, 0, 255) < 0 || int_in("fw_version[0]", fw_major, 0, 255) < 0 ||
        int_in("fw_version[1]", fw_minor, 0, 255) < 0 ||
        int_in("fw_version[2]", fw_patch, 0, 255) < 0 ||
        int_in("model_id", model_id, 0, 65535) < 0 ||
        int_in("status_period_ms", status_period_ms, 0, 65535) < 0 ||
        int_in("block_samples", block_samples, 0, 65535) < 0) {
        return -1;
    }
    ecg_device_default_cfg(&cfg);
    cfg.sample_rate_hz = (uint16_t)fs_hz;
    cfg.rates_mask = (uint16_t)rates_mask;
    cfg.leads = (uint8_t)leads;
    cfg.qrs_lead = (uint8_t)qrs_lead;
    cfg.gain_uv_per_count = gain;
    cfg.mains_hz = (uint8_t)mains_hz;
    cfg.content = (uint8_t)content;
    cfg.source = (uint8_t)source;
    cfg.fw_major = (uint8_t)fw_major;
    cfg.fw_minor = (uint8_t)fw_minor;
    cfg.fw_patch = (uint8_t)fw_patch;
    cfg.model_id = (uint16_t)model_id;
    cfg.port_caps = (uint32_t)port_caps;
    cfg.status_period_ms = (uint16_t)status_period_ms;
    cfg.block_samples = (uint16_t)block_samples;

    memset(&self->hal, 0, sizeof self->hal);
    self->hal.ctx = self;
    self->hal.time_us = hal_time_us;
    self->hal.sampling_start = hal_sampling_start;
    self->hal.sampling_stop = hal_sampling_stop;
    self->hal.sampling_set_rate = hal_sampling_set_rate;
    self->clock_us = (uint64_t)clock_us;
    self->sampling = 0;
    self->sampling_starts = 0;
    self->sampling_rate_hz = 0;
    self->ready = 0;
    if (check_err(ecg_device_init(&self->dev, &cfg, &self->hal), "device configuration") < 0) {
        return -1;
    }
    self->ready = 1;
    return 0;
}

static int device_ready(DeviceObject *self)
{
    if (!self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Device is not initialised");
        return -1;
    }
    return 0;
}

static PyObject *Device_push_samples(DeviceObject *self, PyObject *arg)
{
    Py_buffer view;
    size_t leads, n, taken;
    if (device_ready(self) < 0 ||
        PyObject_GetBuffer(arg, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        return NULL;
    }
    if (view.itemsize != 2 || view.format == NULL ||
        (strcmp(view.format, "h") != 0 && strcmp(view.format, "<h") != 0 &&
         strcmp(view.format, "=h") != 0)) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_TypeError, "expected a C-contiguous int16 buffer");
        return NULL;
    }
    leads = self->dev.cfg.leads;
    n = (size_t)view.len / 2u;
    if (n % leads != 0u) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_ValueError, "%zu values are not whole instants of %zu leads", n, leads);
        return NULL;
    }
    taken = ecg_device_push_samples(&self->dev, (const int16_t *)view.buf, n / leads);
    PyBuffer_Release(&view);
    return PyLong_FromSize_t(taken);
}

static PyObject *Device_rx(DeviceObject *self, PyObject *arg)
{
    Py_buffer view;
    size_t frames;
    if (device_ready(self) < 0 || PyObject_GetBuffer(arg, &view, PyBUF_C_CONTIGUOUS) < 0) {
        return NULL;
    }
    frames = ecg_device_rx(&self->dev, (const uint8_t *)view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyLong_FromSize_t(frames);
}

static PyObject *Device_poll(DeviceObject *self, PyObject *Py_UNUSED(ignored))
{
    if (device_ready(self) < 0) {
        return NULL;
    }
    return PyLong_FromSize_t(ecg_device_poll(&self->dev));
}

static PyObject *Device_tx(DeviceObject *self, PyObject *args)
{
    Py_ssize_t max_bytes = -1;
    size_t n;
    PyObject *out;
    if (device_ready(self) < 0 || !PyArg_ParseTuple(args, "|n", &max_bytes)) {
        return NULL;
    }
    n = ecg_device_tx_pending(&self->dev);
    if (max_bytes >= 0 && (size_t)max_bytes < n) {
        n = (size_t)max_bytes;
    }
    out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    if (out == NULL) {
        return NULL;
    }
    n = ecg_device_tx(&self->dev, (uint8_t *)PyBytes_AS_STRING(out), n);
    if (_PyBytes_Resize(&out, (Py_ssize_t)n) < 0) {
        return NULL;
    }
    return out;
}

static PyObject *Device_tx_frame(DeviceObject *self, PyObject *Py_UNUSED(ignored))
{
    uint8_t buf[ECG_PROTO_MAX_WIRE_LEN];
    size_t n;
    if (device_ready(self) < 0) {
        return NULL;
    }
    n = ecg_device_tx_frame(&self->dev, buf, sizeof buf);
    return PyBytes_FromStringAndSize((const char *)buf, (Py_ssize_t)n);
}

static PyObject *Device_link(DeviceObject *self, PyObject *arg)
{
    int up = PyObject_IsTrue(arg);
    if (up < 0 || device_ready(self) < 0) {
        return NULL;
    }
    ecg_device_link(&self->dev, up);
    Py_RETURN_NONE;
}

static PyObject *Device_stop(DeviceObject *self, PyObject *Py_UNUSED(ignored))
{
    if (device_ready(self) < 0) {
        return NULL;
    }
    ecg_device_stop(&self->dev);
    Py_RETURN_NONE;
}

static PyObject *Device_set_lead_off(DeviceObject *self, PyObject *arg)
{
    long v = PyLong_AsLong(arg);
    if ((v == -1 && PyErr_Occurred()) || int_in("mask", v, 0, 255) < 0 || device_ready(self) < 0) {
        return NULL;
    }
    ecg_device_set_lead_off(&self->dev, (uint8_t)v);
    Py_RETURN_NONE;
}

static PyObject *Device_set_battery(DeviceObject *self, PyObject *arg)
{
    long v = PyLong_AsLong(arg);
    if ((v == -1 && PyErr_Occurred()) || int_in("pct", v, 0, 255) < 0 || device_ready(self) < 0) {
        return NULL;
    }
    ecg_device_set_battery(&self->dev, (uint8_t)v);
    Py_RETURN_NONE;
}

static PyObject *Device_get_clock(DeviceObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(self->clock_us);
}

static int Device_set_clock(DeviceObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    unsigned long long v;
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete clock_us");
        return -1;
    }
    v = PyLong_AsUnsignedLongLong(value);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        return -1;
    }
    self->clock_us = (uint64_t)v;
    return 0;
}

static PyObject *Device_stats(DeviceObject *self, void *Py_UNUSED(closure))
{
    ecg_device_stats_t s;
    if (device_ready(self) < 0) {
        return NULL;
    }
    ecg_device_get_stats(&self->dev, &s);
    return Py_BuildValue(
        "{s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:k,"
        "s:k,s:k}",
        "frames_ok", (unsigned long)s.rx.frames_ok, "crc_errors", (unsigned long)s.rx.crc_errors,
        "cobs_errors", (unsigned long)s.rx.cobs_errors, "truncated", (unsigned long)s.rx.truncated,
        "oversize", (unsigned long)s.rx.oversize, "bad_version", (unsigned long)s.rx.bad_version,
        "unknown_type", (unsigned long)s.rx.unknown_type, "cmd_ok", (unsigned long)s.cmd_ok,
        "cmd_errors", (unsigned long)s.cmd_errors, "frames_queued", (unsigned long)s.frames_queued,
        "frames_dropped", (unsigned long)s.frames_dropped,
        "samples_dropped", (unsigned long)s.samples_dropped,
        "input_overruns", (unsigned long)s.input_overruns,
        "samples_ignored", (unsigned long)s.samples_ignored,
        "samples_in", (unsigned long)s.samples_in, "beats", (unsigned long)s.beats,
        "tx_bytes", (unsigned long)s.tx_bytes, "tx_high_water", (unsigned long)s.tx_high_water,
        "seq_info", (unsigned long)s.seq_info, "seq_samples", (unsigned long)s.seq_samples,
        "seq_beat", (unsigned long)s.seq_beat, "seq_status", (unsigned long)s.seq_status,
        "tx_capacity", (unsigned long)ecg_rb_capacity(&self->dev.tx));
}

static PyObject *Device_info(DeviceObject *self, void *Py_UNUSED(closure))
{
    ecg_proto_device_info_t i;
    if (device_ready(self) < 0) {
        return NULL;
    }
    ecg_device_get_info(&self->dev, &i);
    return Py_BuildValue(
        "{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:d,s:k,s:i,s:i,s:i}",
        "protocol_version", i.protocol_version, "fw_major", i.fw_major, "fw_minor", i.fw_minor,
        "fw_patch", i.fw_patch, "core_major", i.core_major, "core_minor", i.core_minor,
        "core_patch", i.core_patch, "leads", i.leads, "model_id", i.model_id, "sample_rate_hz",
        i.sample_rate_hz, "rates_mask", i.rates_mask, "gain_uv_per_count",
        (double)i.gain_uv_per_count, "capabilities", (unsigned long)i.capabilities, "mains_hz",
        i.mains_hz, "content", i.content, "source", i.source);
}

#define DEVICE_GETTER(name, expr)                                                                 \
    static PyObject *Device_##name(DeviceObject *self, void *Py_UNUSED(closure))                  \
    {                                                                                             \
        if (device_ready(self) < 0) {                                                             \
            return NULL;                                                                          \
        }                                                                                         \
        return expr;                                                                              \
    }

DEVICE_GETTER(sampling, PyBool_FromLong(self->sampling))
DEVICE_GETTER(sampling_starts, PyLong_FromUnsignedLong(self->sampling_starts))
DEVICE_GETTER(sampling_rate_hz, PyLong_FromLong(self->sampling_rate_hz))
DEVICE_GETTER(streaming, PyBool_FromLong(ecg_device_streaming(&self->dev)))
DEVICE_GETTER(tx_pending, PyLong_FromSize_t(ecg_device_tx_pending(&self->dev)))
DEVICE_GETTER(tx_free, PyLong_FromSize_t(ecg_device_tx_free(&self->dev)))
DEVICE_GETTER(in_free, PyLong_FromSize_t(ecg_device_in_free(&self->dev)))
DEVICE_GETTER(mv_per_count, PyFloat_FromDouble((double)self->dev.mv_per_count))
DEVICE_GETTER(block_samples, PyLong_FromLong(self->dev.block_n))
DEVICE_GETTER(state_bytes,
              Py_BuildValue("{s:n,s:n,s:n,s:n}", "ecg_device_t", (Py_ssize_t)sizeof(ecg_device_t),
                            "ecg_filter_t", (Py_ssize_t)sizeof(ecg_filter_t), "ecg_qrs_t",
                            (Py_ssize_t)sizeof(ecg_qrs_t), "ecg_frame_decoder_t",
                            (Py_ssize_t)sizeof(ecg_frame_decoder_t)))

static PyMethodDef Device_methods[] = {
    {"push_samples", (PyCFunction)Device_push_samples, METH_O,
     "push_samples(int16 buffer of n*leads counts) -> instants taken (front end side)"},
    {"rx", (PyCFunction)Device_rx, METH_O, "rx(bytes) -> frames delivered (host -> device)"},
    {"poll", (PyCFunction)Device_poll, METH_NOARGS, "poll() -> instants processed"},
    {"tx", (PyCFunction)Device_tx, METH_VARARGS,
     "tx(max_bytes=-1) -> bytes of the outgoing stream (device -> host)"},
    {"tx_frame", (PyCFunction)Device_tx_frame, METH_NOARGS,
     "tx_frame() -> the next whole frame, b'' when none"},
    {"link", (PyCFunction)Device_link, METH_O, "link(up): the host connected / disconnected"},
    {"stop", (PyCFunction)Device_stop, METH_NOARGS, "end the stream now, without a response"},
    {"set_lead_off", (PyCFunction)Device_set_lead_off, METH_O, "set_lead_off(mask)"},
    {"set_battery", (PyCFunction)Device_set_battery, METH_O, "set_battery(pct, 255 unknown)"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Device_getset[] = {
    {"clock_us", (getter)Device_get_clock, (setter)Device_set_clock,
     "the fake HAL clock (µs since boot) the device reads", NULL},
    {"stats", (getter)Device_stats, NULL, "counters (ecg_device_stats_t) as a dict", NULL},
    {"info", (getter)Device_info, NULL, "the DEVICE_INFO fields the device sends now", NULL},
    {"sampling", (getter)Device_sampling, NULL, "front end started by the HAL", NULL},
    {"sampling_starts", (getter)Device_sampling_starts, NULL, "HAL sampling_start calls", NULL},
    {"sampling_rate_hz", (getter)Device_sampling_rate_hz, NULL, "rate set through the HAL", NULL},
    {"streaming", (getter)Device_streaming, NULL, "between START_STREAM and its end", NULL},
    {"tx_pending", (getter)Device_tx_pending, NULL, "bytes in the outgoing queue", NULL},
    {"tx_free", (getter)Device_tx_free, NULL, "free bytes in the outgoing queue", NULL},
    {"in_free", (getter)Device_in_free, NULL, "room in the input ring, instants", NULL},
    {"mv_per_count", (getter)Device_mv_per_count, NULL,
     "float32 gain_uv_per_count / 1000: x_mv = float32(count) * mv_per_count", NULL},
    {"block_samples", (getter)Device_block_samples, NULL, "instants per sample block", NULL},
    {"state_bytes", (getter)Device_state_bytes, NULL, "sizes of the C state structs", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject DeviceType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ecgedge._core.Device",
    .tp_basicsize = sizeof(DeviceObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Device(fs_hz, leads=1, gain_uv_per_count=5.0, mains_hz=50, *, rates_mask=0, "
              "qrs_lead=0, content=0, source=0, fw_version=(0, 1, 0), model_id=0, port_caps=0, "
              "status_period_ms=1000, block_samples=0, clock_us=0): ecg_device with a fake HAL",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Device_init,
    .tp_methods = Device_methods,
    .tp_getset = Device_getset,
};

/* ---------------------------------------------------------------- BeatClassifier (ecg_classifier) */

/* A C-contiguous int8 buffer (struct format 'b'), at least min_len bytes. */
static int get_s8(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t min_len,
                  const char *what)
{
    if (PyObject_GetBuffer(obj, view,
                           PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) <
        0) {
        return -1;
    }
    if (view->itemsize != 1 || view->format == NULL || strcmp(view->format, "b") != 0) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_TypeError, "%s: expected a C-contiguous int8 buffer", what);
        return -1;
    }
    if (view->len < min_len) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes, need %zd", what, view->len, min_len);
        return -1;
    }
    return 0;
}

typedef struct {
    PyObject_HEAD
    ecg_classifier_t c;
    int8_t *scratch;
    ecg_classifier_head_t head;                   /* a head installed from Python */
    int8_t head_weights[ECG_CLASSIFIER_N_CLASSES * ECG_CLASSIFIER_EMBEDDING_LEN];
    int32_t head_bias[ECG_CLASSIFIER_N_CLASSES];
    ecg_nn_quant_t head_quant[ECG_CLASSIFIER_N_CLASSES];
} BeatClassifierObject;

static int BeatClassifier_init(BeatClassifierObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {NULL};
    ecg_classifier_cfg_t cfg;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "", kwlist)) {
        return -1;
    }
    if (self->scratch == NULL) {
        self->scratch = (int8_t *)PyMem_Malloc(ECG_CLASSIFIER_SCRATCH_BYTES);
        if (self->scratch == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    cfg.scratch = self->scratch;
    cfg.scratch_bytes = ECG_CLASSIFIER_SCRATCH_BYTES;
    cfg.head = NULL;
    return check_err(ecg_classifier_init(&self->c, &cfg), "classifier");
}

static void BeatClassifier_dealloc(BeatClassifierObject *self)
{
    PyMem_Free(self->scratch);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *BeatClassifier_run(BeatClassifierObject *self, PyObject *args)
{
    PyObject *w_obj, *r_obj, *l_obj, *e_obj;
    Py_ssize_t n, i;
    Py_buffer w, r, l, e;
    ecg_err_t err = ECG_OK;
    if (self->scratch == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "BeatClassifier not initialised");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "OOOOn", &w_obj, &r_obj, &l_obj, &e_obj, &n)) {
        return NULL;
    }
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "negative beat count");
        return NULL;
    }
    if (get_s8(w_obj, &w, 0, n * (Py_ssize_t)ECG_CLASSIFIER_WINDOW_LEN, "window") < 0) {
        return NULL;
    }
    if (get_s8(r_obj, &r, 0, n * (Py_ssize_t)ECG_CLASSIFIER_RR_LEN, "rr") < 0) {
        PyBuffer_Release(&w);
        return NULL;
    }
    if (get_s8(l_obj, &l, 1, n * (Py_ssize_t)ECG_CLASSIFIER_N_CLASSES, "logits") < 0) {
        PyBuffer_Release(&w);
        PyBuffer_Release(&r);
        return NULL;
    }
    if (get_s8(e_obj, &e, 1, n * (Py_ssize_t)ECG_CLASSIFIER_EMBEDDING_LEN, "embedding") < 0) {
        PyBuffer_Release(&w);
        PyBuffer_Release(&r);
        PyBuffer_Release(&l);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    for (i = 0; i < n && err == ECG_OK; i++) {
        err = ecg_classifier_run(&self->c, (const int8_t *)w.buf + i * ECG_CLASSIFIER_WINDOW_LEN,
                                 (const int8_t *)r.buf + i * ECG_CLASSIFIER_RR_LEN,
                                 (int8_t *)l.buf + i * ECG_CLASSIFIER_N_CLASSES,
                                 (int8_t *)e.buf + i * ECG_CLASSIFIER_EMBEDDING_LEN);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&w);
    PyBuffer_Release(&r);
    PyBuffer_Release(&l);
    PyBuffer_Release(&e);
    if (check_err(err, "classifier run") < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *BeatClassifier_run_head(BeatClassifierObject *self, PyObject *args)
{
    PyObject *e_obj, *l_obj;
    Py_ssize_t n, i;
    Py_buffer e, l;
    ecg_err_t err = ECG_OK;
    const ecg_classifier_head_t *head = ecg_classifier_get_head(&self->c);
    if (head == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "BeatClassifier not initialised");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "OOn", &e_obj, &l_obj, &n)) {
        return NULL;
    }
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "negative beat count");
        return NULL;
    }
    if (get_s8(e_obj, &e, 0, n * (Py_ssize_t)ECG_CLASSIFIER_EMBEDDING_LEN, "embedding") < 0) {
        return NULL;
    }
    if (get_s8(l_obj, &l, 1, n * (Py_ssize_t)ECG_CLASSIFIER_N_CLASSES, "logits") < 0) {
        PyBuffer_Release(&e);
        return NULL;
    }
    for (i = 0; i < n && err == ECG_OK; i++) {
        err = ecg_classifier_run_head(head, (const int8_t *)e.buf + i * ECG_CLASSIFIER_EMBEDDING_LEN,
                                      (int8_t *)l.buf + i * ECG_CLASSIFIER_N_CLASSES);
    }
    PyBuffer_Release(&e);
    PyBuffer_Release(&l);
    if (check_err(err, "classifier head") < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *BeatClassifier_decide(BeatClassifierObject *self, PyObject *args)
{
    PyObject *l_obj;
    Py_buffer l;
    ecg_classifier_decision_t d;
    const ecg_classifier_head_t *head = ecg_classifier_get_head(&self->c);
    if (head == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "BeatClassifier not initialised");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O", &l_obj) ||
        get_s8(l_obj, &l, 0, ECG_CLASSIFIER_N_CLASSES, "logits") < 0) {
        return NULL;
    }
    d = ecg_classifier_decide(head, (const int8_t *)l.buf);
    PyBuffer_Release(&l);
    return Py_BuildValue("(iidd)", (int)d.class_index, (int)d.margin_q, (double)d.margin,
                         (double)d.confidence);
}

/* set_head(weights_i8, bias_i32_bytes_or_None, multipliers, shifts, logits_scale,
 *          logits_zero_point, version): copies the tables into the object and installs them. */
static PyObject *BeatClassifier_set_head(BeatClassifierObject *self, PyObject *args)
{
    PyObject *w_obj, *b_obj, *m_obj, *s_obj;
    float scale;
    int zp;
    unsigned long version;
    Py_buffer w;
    Py_ssize_t k;
    ecg_classifier_head_t head;
    int32_t bias[ECG_CLASSIFIER_N_CLASSES];
    ecg_nn_quant_t quant[ECG_CLASSIFIER_N_CLASSES];
    if (!PyArg_ParseTuple(args, "OOOOfik", &w_obj, &b_obj, &m_obj, &s_obj, &scale, &zp,
                          &version)) {
        return NULL;
    }
    if (get_s8(w_obj, &w, 0, (Py_ssize_t)sizeof self->head_weights, "head weights") < 0) {
        return NULL;
    }
    for (k = 0; k < (Py_ssize_t)ECG_CLASSIFIER_N_CLASSES; k++) {
        PyObject *bi = b_obj == Py_None ? NULL : PySequence_GetItem(b_obj, k);
        PyObject *mi = PySequence_GetItem(m_obj, k);
        PyObject *si = PySequence_GetItem(s_obj, k);
        long bv = 0, mv = -1, sv = 0;
        if (bi != NULL) {
            bv = PyLong_AsLong(bi);
        }
        if (mi != NULL) {
            mv = PyLong_AsLong(mi);
        }
        if (si != NULL) {
            sv = PyLong_AsLong(si);
        }
        Py_XDECREF(bi);
        Py_XDECREF(mi);
        Py_XDECREF(si);
        if (PyErr_Occurred()) {
            PyBuffer_Release(&w);
            return NULL;
        }
        if (bv < INT32_MIN || bv > INT32_MAX || mv < 0 || mv > INT32_MAX || sv < -31 ||
            sv > 30) {
            PyBuffer_Release(&w);
            PyErr_Format(PyExc_ValueError, "head class %zd: bias, multiplier or shift out of range",
                         k);
            return NULL;
        }
        bias[k] = (int32_t)bv;
        quant[k].multiplier = (int32_t)mv;
        quant[k].shift = (int32_t)sv;
    }
    /* validate on a copy pointing at the caller's data, then install our own copy */
    if (check_err(ecg_classifier_head_init(&head, (const int8_t *)w.buf,
                                           b_obj == Py_None ? NULL : bias, quant, scale,
                                           (int32_t)zp, (uint32_t)version),
                  "head") < 0) {
        PyBuffer_Release(&w);
        return NULL;
    }
    memcpy(self->head_weights, w.buf, sizeof self->head_weights);
    PyBuffer_Release(&w);
    memcpy(self->head_bias, bias, sizeof bias);
    memcpy(self->head_quant, quant, sizeof quant);
    (void)ecg_classifier_head_init(&self->head, self->head_weights,
                                   b_obj == Py_None ? NULL : self->head_bias, self->head_quant,
                                   scale, (int32_t)zp, (uint32_t)version);
    if (check_err(ecg_classifier_set_head(&self->c, &self->head), "head") < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *BeatClassifier_reset_head(BeatClassifierObject *self,
                                           PyObject *Py_UNUSED(ignored))
{
    if (check_err(ecg_classifier_set_head(&self->c, NULL), "head") < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *BeatClassifier_selftest(BeatClassifierObject *self, PyObject *Py_UNUSED(ignored))
{
    int r;
    if (self->scratch == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "BeatClassifier not initialised");
        return NULL;
    }
    r = ecg_classifier_selftest(&self->c);
    if (r < 0) {
        (void)check_err((ecg_err_t)r, "selftest");
        return NULL;
    }
    return PyLong_FromLong(r);
}

static PyObject *BeatClassifier_head(BeatClassifierObject *self, void *Py_UNUSED(closure))
{
    const ecg_classifier_head_t *h = ecg_classifier_get_head(&self->c);
    const ecg_nn_fc_params_t *fc;
    PyObject *w, *b, *m, *s;
    Py_ssize_t k;
    if (h == NULL) {
        Py_RETURN_NONE;
    }
    fc = &h->fc;
    w = PyBytes_FromStringAndSize((const char *)fc->weights,
                                  (Py_ssize_t)fc->out_len * (Py_ssize_t)fc->in_len);
    b = fc->bias == NULL ? (Py_INCREF(Py_None), Py_None) : PyList_New(fc->out_len);
    m = PyList_New(fc->out_len);
    s = PyList_New(fc->out_len);
    if (w == NULL || b == NULL || m == NULL || s == NULL) {
        Py_XDECREF(w);
        Py_XDECREF(b);
        Py_XDECREF(m);
        Py_XDECREF(s);
        return NULL;
    }
    for (k = 0; k < (Py_ssize_t)fc->out_len; k++) {
        const ecg_nn_quant_t *q = &fc->quant[fc->per_channel ? k : 0];
        if (fc->bias != NULL) {
            PyList_SET_ITEM(b, k, PyLong_FromLong((long)fc->bias[k]));
        }
        PyList_SET_ITEM(m, k, PyLong_FromLong((long)q->multiplier));
        PyList_SET_ITEM(s, k, PyLong_FromLong((long)q->shift));
    }
    return Py_BuildValue("{s:N,s:N,s:N,s:N,s:d,s:i,s:k}", "weights", w, "bias", b, "multipliers",
                         m, "shifts", s, "logits_scale", (double)h->logits_scale,
                         "logits_zero_point", (int)fc->output_offset, "version",
                         (unsigned long)h->version);
}

static PyObject *BeatClassifier_model(PyObject *Py_UNUSED(self), void *Py_UNUSED(closure))
{
    return Py_BuildValue(
        "{s:s,s:s,s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:k,s:d,s:i,s:d,s:i,s:d,s:i,s:d,s:i}", "id",
        ECG_MODEL_ID, "sha256", ECG_MODEL_SHA256, "scratch_bytes",
        (unsigned long)ECG_CLASSIFIER_SCRATCH_BYTES, "weights_bytes",
        (unsigned long)ECG_MODEL_WEIGHTS_BYTES, "n_ops", (unsigned long)ECG_MODEL_N_OPS,
        "window_len", (unsigned long)ECG_CLASSIFIER_WINDOW_LEN, "rr_len",
        (unsigned long)ECG_CLASSIFIER_RR_LEN, "embedding_len",
        (unsigned long)ECG_CLASSIFIER_EMBEDDING_LEN, "n_classes",
        (unsigned long)ECG_CLASSIFIER_N_CLASSES, "n_samples", (unsigned long)ECG_MODEL_N_SAMPLES,
        "window_scale", (double)ECG_MODEL_WINDOW_SCALE, "window_zero_point",
        (int)ECG_MODEL_WINDOW_ZERO_POINT, "rr_scale", (double)ECG_MODEL_RR_SCALE,
        "rr_zero_point", (int)ECG_MODEL_RR_ZERO_POINT, "embedding_scale",
        (double)ECG_MODEL_EMBEDDING_SCALE, "embedding_zero_point",
        (int)ECG_MODEL_EMBEDDING_ZERO_POINT, "logits_scale", (double)ECG_MODEL_LOGITS_SCALE,
        "logits_zero_point", (int)ECG_MODEL_LOGITS_ZERO_POINT);
}

static PyMethodDef BeatClassifier_methods[] = {
    {"run", (PyCFunction)BeatClassifier_run, METH_VARARGS,
     "run(window_i8, rr_i8, logits_out_i8, embedding_out_i8, n): n beats, row-major buffers"},
    {"run_head", (PyCFunction)BeatClassifier_run_head, METH_VARARGS,
     "run_head(embedding_i8, logits_out_i8, n): the installed head only"},
    {"decide", (PyCFunction)BeatClassifier_decide, METH_VARARGS,
     "decide(logits_i8) -> (class, margin_q, margin, confidence) (ecg_classifier_decide)"},
    {"set_head", (PyCFunction)BeatClassifier_set_head, METH_VARARGS,
     "set_head(weights_i8, bias or None, multipliers, shifts, logits_scale, logits_zero_point, "
     "version): install a head (copied)"},
    {"reset_head", (PyCFunction)BeatClassifier_reset_head, METH_NOARGS,
     "install the factory head"},
    {"selftest", (PyCFunction)BeatClassifier_selftest, METH_NOARGS,
     "selftest() -> number of compiled-in sample beats that differ from TFLM (0: pass)"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef BeatClassifier_getset[] = {
    {"head", (getter)BeatClassifier_head, NULL, "the installed head's tables, as a dict", NULL},
    {"model", (getter)BeatClassifier_model, NULL, "the compiled model's constants", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject BeatClassifierType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ecgedge._core.BeatClassifier",
    .tp_basicsize = sizeof(BeatClassifierObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "BeatClassifier(): ecg_classifier (int8 beat model, bit-exact with TFLM)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)BeatClassifier_init,
    .tp_dealloc = (destructor)BeatClassifier_dealloc,
    .tp_methods = BeatClassifier_methods,
    .tp_getset = BeatClassifier_getset,
};

static struct PyModuleDef coremodule = {PyModuleDef_HEAD_INIT, "ecgedge._core",
                                        "ecgedge firmware core, host build", -1, NULL,
                                        NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__core(void)
{
    PyObject *m;
    if (PyType_Ready(&FilterType) < 0 || PyType_Ready(&QrsType) < 0 ||
        PyType_Ready(&DeviceType) < 0 || PyType_Ready(&BeatClassifierType) < 0) {
        return NULL;
    }
    m = PyModule_Create(&coremodule);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&FilterType);
    Py_INCREF(&QrsType);
    Py_INCREF(&DeviceType);
    if (PyModule_AddObject(m, "Filter", (PyObject *)&FilterType) < 0 ||
        PyModule_AddObject(m, "QrsDetector", (PyObject *)&QrsType) < 0 ||
        PyModule_AddObject(m, "Device", (PyObject *)&DeviceType) < 0 ||
        (Py_INCREF(&BeatClassifierType),
         PyModule_AddObject(m, "BeatClassifier", (PyObject *)&BeatClassifierType)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

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
 * the int8 beat model; `ecgedge.classifier` wraps it), HeadTrainer (ecg_trainer: the µ-trainer;
 * `ecgedge.personalize` wraps it).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <string.h>

#include "ecg/ecg_beatfeat.h"
#include "ecg/ecg_classifier.h"
#include "ecg/ecg_device.h"
#include "ecg/ecg_sha256.h"
#include <stdio.h>
#include "ecg/ecg_filter.h"
#include "ecg/ecg_qrs.h"
#include "ecg/ecg_trainer.h"

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

/* Storage slots of the host port (ecg_hal_slot_t): two head slots, and room for the labels of
 * ECG_TRAINER_MAX_BEATS beats (header + 5 bytes per label + tag). */
#define DEVICE_SLOT_HEAD_BYTES 256u
#define DEVICE_SLOT_LABELS_BYTES 8192u
typedef char device_slot_check[DEVICE_SLOT_HEAD_BYTES >= ECG_UPDATE_HEAD_SLOT_BYTES &&
                                       DEVICE_SLOT_LABELS_BYTES >=
                                           ECG_UPDATE_HEADER_LEN + ECG_TRAINER_MAX_BEATS *
                                               ECG_UPDATE_LABEL_LEN + ECG_UPDATE_TAG_LEN
                                   ? 1
                                   : -1];

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
    ecg_backfill_t backfill; /* ring over backfill_buf (PyMem), attached when backfill_s > 0 */
    /* storage HAL of the host port: three slots in RAM, mirrored to a file when one is given */
    uint8_t storage[3][DEVICE_SLOT_LABELS_BYTES];
    char storage_path[4096];
    ecg_update_t update;
    ecg_trainer_t trainer; /* the µ-trainer of LABELS packages (ecg_update_trainer_of) */
    uint8_t *backfill_buf;
    ecg_device_t dev;
} DeviceObject;

static const uint32_t device_slot_bytes[3] = {DEVICE_SLOT_HEAD_BYTES, DEVICE_SLOT_HEAD_BYTES,
                                               DEVICE_SLOT_LABELS_BYTES};

static uint32_t hal_storage_size(void *ctx, ecg_hal_slot_t slot)
{
    (void)ctx;
    return (unsigned)slot < 3u ? device_slot_bytes[slot] : 0u;
}

/* The slots' image goes to the file after every change (a whole rewrite: a few kB). */
static ecg_err_t storage_save(DeviceObject *self)
{
    FILE *f;
    size_t ok = 1;
    unsigned s;
    if (self->storage_path[0] == '\0') {
        return ECG_OK;
    }
    f = fopen(self->storage_path, "wb");
    if (f == NULL) {
        return ECG_ERR_STATE;
    }
    for (s = 0; s < 3u && ok; s++) {
        ok = fwrite(self->storage[s], 1, device_slot_bytes[s], f) == device_slot_bytes[s];
    }
    return fclose(f) == 0 && ok ? ECG_OK : ECG_ERR_STATE;
}

static ecg_err_t hal_storage_erase(void *ctx, ecg_hal_slot_t slot)
{
    DeviceObject *self = (DeviceObject *)ctx;
    if ((unsigned)slot >= 3u) {
        return ECG_ERR_RANGE;
    }
    memset(self->storage[slot], 0xFF, device_slot_bytes[slot]);
    return storage_save(self);
}

static ecg_err_t hal_storage_write(void *ctx, ecg_hal_slot_t slot, uint32_t offset,
                                   const uint8_t *data, size_t len)
{
    DeviceObject *self = (DeviceObject *)ctx;
    if ((unsigned)slot >= 3u || offset > device_slot_bytes[slot] ||
        len > device_slot_bytes[slot] - offset) {
        return ECG_ERR_RANGE;
    }
    memcpy(&self->storage[slot][offset], data, len);
    return storage_save(self);
}

static ecg_err_t hal_storage_read(void *ctx, ecg_hal_slot_t slot, uint32_t offset, uint8_t *data,
                                  size_t len)
{
    DeviceObject *self = (DeviceObject *)ctx;
    if ((unsigned)slot >= 3u || offset > device_slot_bytes[slot] ||
        len > device_slot_bytes[slot] - offset) {
        return ECG_ERR_RANGE;
    }
    memcpy(data, &self->storage[slot][offset], len);
    return ECG_OK;
}

/* Storage from `path` (a missing or short file reads as erased), or RAM only when NULL. Then the
 * update state restores the active head from it (ecg_update.h). */
static int device_attach_storage(DeviceObject *self, const char *path, const uint8_t *key,
                                 Py_ssize_t key_len)
{
    ecg_update_cfg_t uc;
    ecg_trainer_cfg_t tc;
    unsigned s;
    memset(self->storage, 0xFF, sizeof self->storage);
    self->storage_path[0] = '\0';
    if (path != NULL) {
        FILE *f;
        if (strlen(path) >= sizeof self->storage_path) {
            PyErr_SetString(PyExc_ValueError, "storage_path is too long");
            return -1;
        }
        strcpy(self->storage_path, path);
        f = fopen(path, "rb");
        if (f != NULL) {
            for (s = 0; s < 3u; s++) {
                if (fread(self->storage[s], 1, device_slot_bytes[s], f) != device_slot_bytes[s]) {
                    break;
                }
            }
            fclose(f);
        }
    }
    self->hal.storage_size = hal_storage_size;
    self->hal.storage_erase = hal_storage_erase;
    self->hal.storage_write = hal_storage_write;
    self->hal.storage_read = hal_storage_read;
    memset(&uc, 0, sizeof uc);
    uc.hal = &self->hal;
    uc.key = key;
    uc.key_len = (size_t)key_len;
    uc.classifier = ecg_device_classifier(&self->dev);
    ecg_trainer_default_cfg(&tc);
    if (check_err(ecg_trainer_init(&self->trainer, &tc), "trainer") < 0) {
        return -1;
    }
    uc.trainer = ecg_update_trainer_of(&self->trainer);
    if (check_err(ecg_update_init(&self->update, &uc), "device_key") < 0) {
        return -1;
    }
    ecg_device_attach_update(&self->dev, &self->update);
    return 0;
}

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
                             "port_caps", "status_period_ms", "block_samples", "clock_us",
                             "backfill_s", "storage_path", "device_key", NULL};
    long fs_hz, leads = 1, mains_hz = 50, rates_mask = 0, qrs_lead = 0, content = 0, source = 0;
    long model_id = 0, status_period_ms = 1000, block_samples = 0;
    unsigned long long clock_us = 0;
    unsigned long port_caps = 0;
    long backfill_s = 0;
    const char *storage_path = NULL;
    const char *device_key = NULL;
    Py_ssize_t device_key_len = 0;
    int fw_major = 0, fw_minor = 1, fw_patch = 0;
    float gain = 5.0f;
    ecg_device_cfg_t cfg;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "l|lfl$llll(iii)lkllKlzy#", kwlist, &fs_hz,
                                     &leads, &gain, &mains_hz, &rates_mask, &qrs_lead, &content,
                                     &source, &fw_major, &fw_minor, &fw_patch, &model_id,
                                     &port_caps, &status_period_ms, &block_samples, &clock_us,
                                     &backfill_s, &storage_path, &device_key,
                                     &device_key_len)) {
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
        int_in("block_samples", block_samples, 0, 65535) < 0 ||
        int_in("backfill_s", backfill_s, 0, 3600) < 0) {
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
    PyMem_Free(self->backfill_buf);
    self->backfill_buf = NULL;
    if (backfill_s > 0) { /* ring for backfill_s seconds of full blocks (ecg_backfill.h) */
        const size_t size = ECG_BACKFILL_BYTES(backfill_s, cfg.sample_rate_hz, cfg.leads,
                                               self->dev.block_n);
        self->backfill_buf = (uint8_t *)PyMem_Malloc(size);
        if (self->backfill_buf == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        (void)ecg_backfill_init(&self->backfill, self->backfill_buf, size);
        ecg_device_attach_backfill(&self->dev, &self->backfill);
    }
    if (device_key_len > (Py_ssize_t)ECG_UPDATE_MAX_KEY_LEN) {
        PyErr_Format(PyExc_ValueError, "device_key has %zd bytes; at most %u", device_key_len,
                     (unsigned)ECG_UPDATE_MAX_KEY_LEN);
        return -1;
    }
    if (device_attach_storage(self, storage_path, (const uint8_t *)device_key,
                              device_key_len) < 0) {
        return -1;
    }
    self->ready = 1;
    return 0;
}

static void Device_dealloc(DeviceObject *self)
{
    PyMem_Free(self->backfill_buf);
    Py_TYPE(self)->tp_free((PyObject *)self);
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
              "status_period_ms=1000, block_samples=0, clock_us=0, backfill_s=0, storage_path=None, "
              "device_key=b''): ecg_device "
              "with a fake HAL (and a backfill ring of backfill_s seconds when > 0)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Device_init,
    .tp_dealloc = (destructor)Device_dealloc,
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

/* ---------------------------------------------------------------- HeadTrainer (ecg_trainer) */

/* Tables cross the binding as the memory image of ecg_classifier_head_tables_t: fixed-width
 * fields without padding, so on a little-endian host it is the little-endian serialization
 * (ecgedge.personalize.HeadTables). */
typedef char head_tables_layout_check[sizeof(ecg_classifier_head_tables_t) == 148u ? 1 : -1];

typedef struct {
    PyObject_HEAD
    ecg_trainer_t *t; /* ~23 kB, PyMem */
} HeadTrainerObject;

static int HeadTrainer_init(HeadTrainerObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"iterations", "step_scale", "momentum", "l2", "balance_prior",
                             "match_tolerance_samples", NULL};
    ecg_trainer_cfg_t cfg;
    ecg_trainer_default_cfg(&cfg);
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|IffffI", kwlist, &cfg.iterations,
                                     &cfg.step_scale, &cfg.momentum, &cfg.l2, &cfg.balance_prior,
                                     &cfg.match_tolerance_samples)) {
        return -1;
    }
    if (self->t == NULL) {
        self->t = (ecg_trainer_t *)PyMem_Malloc(sizeof(ecg_trainer_t));
        if (self->t == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    return check_err(ecg_trainer_init(self->t, &cfg), "trainer configuration");
}

static void HeadTrainer_dealloc(HeadTrainerObject *self)
{
    PyMem_Free(self->t);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int HeadTrainer_ready(HeadTrainerObject *self)
{
    if (self->t == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "HeadTrainer not initialised");
        return 0;
    }
    return 1;
}

static PyObject *HeadTrainer_add_beat(HeadTrainerObject *self, PyObject *args)
{
    unsigned long index;
    PyObject *e_obj;
    Py_buffer e;
    ecg_err_t err;
    if (!HeadTrainer_ready(self) || !PyArg_ParseTuple(args, "kO", &index, &e_obj) ||
        get_s8(e_obj, &e, 0, ECG_CLASSIFIER_EMBEDDING_LEN, "embedding") < 0) {
        return NULL;
    }
    err = index > 0xFFFFFFFFul ? ECG_ERR_RANGE
                               : ecg_trainer_add_beat(self->t, (uint32_t)index,
                                                      (const int8_t *)e.buf);
    PyBuffer_Release(&e);
    if (check_err(err, "add_beat (sample indices must increase)") < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* label(index, class) -> True, or False when no buffered beat matches (ECG_ERR_STATE) */
static PyObject *HeadTrainer_label(HeadTrainerObject *self, PyObject *args)
{
    unsigned long index;
    int cls;
    ecg_err_t err;
    if (!HeadTrainer_ready(self) || !PyArg_ParseTuple(args, "ki", &index, &cls)) {
        return NULL;
    }
    if (cls < 0 || cls > 255 || index > 0xFFFFFFFFul) {
        err = ECG_ERR_RANGE;
    } else {
        err = ecg_trainer_label(self->t, (uint32_t)index, (uint8_t)cls);
    }
    if (err == ECG_ERR_STATE) {
        Py_RETURN_FALSE;
    }
    if (check_err(err, "label") < 0) {
        return NULL;
    }
    Py_RETURN_TRUE;
}

static PyObject *HeadTrainer_clear_labels(HeadTrainerObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!HeadTrainer_ready(self)) {
        return NULL;
    }
    ecg_trainer_clear_labels(self->t);
    Py_RETURN_NONE;
}

/* train(start_tables_bytes, version) -> tables bytes */
static PyObject *HeadTrainer_train(HeadTrainerObject *self, PyObject *args)
{
    Py_buffer b;
    unsigned long version;
    ecg_classifier_head_tables_t start_tables, out;
    ecg_classifier_head_t start;
    ecg_err_t err;
    if (!HeadTrainer_ready(self) || !PyArg_ParseTuple(args, "y*k", &b, &version)) {
        return NULL;
    }
    if (b.len != (Py_ssize_t)sizeof start_tables) {
        PyErr_Format(PyExc_ValueError, "start head tables: %zd bytes, need %zd", b.len,
                     (Py_ssize_t)sizeof start_tables);
        PyBuffer_Release(&b);
        return NULL;
    }
    memcpy(&start_tables, b.buf, sizeof start_tables);
    PyBuffer_Release(&b);
    err = ecg_classifier_head_from_tables(&start, &start_tables, (uint32_t)version);
    if (check_err(err, "start head") < 0) {
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    err = ecg_trainer_train(self->t, &start, &out);
    Py_END_ALLOW_THREADS
    if (check_err(err, "train") < 0) {
        return NULL;
    }
    return PyBytes_FromStringAndSize((const char *)&out, (Py_ssize_t)sizeof out);
}

static PyObject *HeadTrainer_stats(HeadTrainerObject *self, void *Py_UNUSED(closure))
{
    if (!HeadTrainer_ready(self)) {
        return NULL;
    }
    return Py_BuildValue("{s:k,s:k,s:d,s:k}", "count", (unsigned long)ecg_trainer_count(self->t),
                         "labelled", (unsigned long)ecg_trainer_labelled(self->t), "last_loss",
                         (double)ecg_trainer_last_loss(self->t), "max_beats",
                         (unsigned long)ECG_TRAINER_MAX_BEATS);
}

static PyObject *HeadTrainer_config(HeadTrainerObject *self, void *Py_UNUSED(closure))
{
    const ecg_trainer_cfg_t *c;
    if (!HeadTrainer_ready(self)) {
        return NULL;
    }
    c = &self->t->cfg;
    return Py_BuildValue("{s:k,s:d,s:d,s:d,s:d,s:k}", "iterations", (unsigned long)c->iterations,
                         "step_scale", (double)c->step_scale, "momentum", (double)c->momentum,
                         "l2", (double)c->l2, "balance_prior", (double)c->balance_prior,
                         "match_tolerance_samples", (unsigned long)c->match_tolerance_samples);
}

static PyMethodDef HeadTrainer_methods[] = {
    {"add_beat", (PyCFunction)HeadTrainer_add_beat, METH_VARARGS,
     "add_beat(sample_index, embedding_i8): buffer a beat (ecg_trainer_add_beat)"},
    {"label", (PyCFunction)HeadTrainer_label, METH_VARARGS,
     "label(sample_index, class) -> False when no buffered beat matches (ecg_trainer_label)"},
    {"clear_labels", (PyCFunction)HeadTrainer_clear_labels, METH_NOARGS,
     "remove every label (ecg_trainer_clear_labels)"},
    {"train", (PyCFunction)HeadTrainer_train, METH_VARARGS,
     "train(start_tables_bytes, version) -> trained tables bytes (ecg_trainer_train)"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef HeadTrainer_getset[] = {
    {"stats", (getter)HeadTrainer_stats, NULL, "count, labelled, last_loss, max_beats", NULL},
    {"config", (getter)HeadTrainer_config, NULL, "the configuration in use", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject HeadTrainerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ecgedge._core.HeadTrainer",
    .tp_basicsize = sizeof(HeadTrainerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "HeadTrainer(**cfg): ecg_trainer, the µ-trainer of the classifier head",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)HeadTrainer_init,
    .tp_dealloc = (destructor)HeadTrainer_dealloc,
    .tp_methods = HeadTrainer_methods,
    .tp_getset = HeadTrainer_getset,
};

/* ---------------------------------------------------------------- BeatFeatureStream (ecg_beatfeat) */

/* The device's per-beat feature extraction, driven from Python the way ecg_device drives it:
 * push filtered samples, add the detector's beats, finish, take the ready beats. For tests and
 * validation (ecgedge.validation.beats); the device itself calls the C directly. */
typedef struct {
    PyObject_HEAD
    ecg_beatfeat_t *bf; /* ~11 KB: on the heap of the host glue, not in the object */
} BeatFeatureStreamObject;

static int BeatFeatureStream_init(BeatFeatureStreamObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"fs_hz", "filter_delay_samples", NULL};
    float fs_hz, delay;
    ecg_beatfeat_cfg_t cfg;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ff", kwlist, &fs_hz, &delay)) {
        return -1;
    }
    if (self->bf == NULL) {
        self->bf = (ecg_beatfeat_t *)PyMem_Malloc(sizeof(ecg_beatfeat_t));
        if (self->bf == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    ecg_beatfeat_default_cfg(&cfg, fs_hz, delay);
    return check_err(ecg_beatfeat_init(self->bf, &cfg), "beat features");
}

static void BeatFeatureStream_dealloc(BeatFeatureStreamObject *self)
{
    PyMem_Free(self->bf);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int beatfeat_ready(BeatFeatureStreamObject *self)
{
    if (self->bf == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "BeatFeatureStream is not initialised");
        return -1;
    }
    return 0;
}

static PyObject *BeatFeatureStream_push(BeatFeatureStreamObject *self, PyObject *arg)
{
    Py_buffer y;
    if (beatfeat_ready(self) < 0 || get_f32(arg, &y, 0) < 0) {
        return NULL;
    }
    ecg_beatfeat_push(self->bf, (const float *)y.buf, (size_t)(y.len / 4));
    PyBuffer_Release(&y);
    Py_RETURN_NONE;
}

static PyObject *BeatFeatureStream_add_beat(BeatFeatureStreamObject *self, PyObject *arg)
{
    ecg_qrs_beat_t beat;
    unsigned long long index = PyLong_AsUnsignedLongLong(arg);
    if (beatfeat_ready(self) < 0 || (index == (unsigned long long)-1 && PyErr_Occurred())) {
        return NULL;
    }
    memset(&beat, 0, sizeof beat);
    beat.index = (uint64_t)index;
    if (check_err(ecg_beatfeat_add_beat(self->bf, &beat), "add_beat") < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *BeatFeatureStream_finish(BeatFeatureStreamObject *self,
                                          PyObject *Py_UNUSED(ignored))
{
    if (beatfeat_ready(self) < 0) {
        return NULL;
    }
    ecg_beatfeat_finish(self->bf);
    Py_RETURN_NONE;
}

static PyObject *BeatFeatureStream_reset(BeatFeatureStreamObject *self,
                                         PyObject *Py_UNUSED(ignored))
{
    if (beatfeat_ready(self) < 0) {
        return NULL;
    }
    ecg_beatfeat_reset(self->bf);
    Py_RETURN_NONE;
}

/* Every ready beat: (index int64 bytes, window int8 bytes, rr int8 bytes, scale f32 bytes,
 * late u8 bytes), concatenated per field. */
static PyObject *BeatFeatureStream_take(BeatFeatureStreamObject *self,
                                        PyObject *Py_UNUSED(ignored))
{
    PyObject *idx, *win, *rr, *scale, *late, *res;
    ecg_beatfeat_beat_t b;
    if (beatfeat_ready(self) < 0) {
        return NULL;
    }
    idx = PyByteArray_FromStringAndSize(NULL, 0);
    win = PyByteArray_FromStringAndSize(NULL, 0);
    rr = PyByteArray_FromStringAndSize(NULL, 0);
    scale = PyByteArray_FromStringAndSize(NULL, 0);
    late = PyByteArray_FromStringAndSize(NULL, 0);
    res = NULL;
    if (idx != NULL && win != NULL && rr != NULL && scale != NULL && late != NULL) {
        int failed = 0;
        while (!failed && ecg_beatfeat_next(self->bf, &b)) {
            const int64_t i64 = (int64_t)b.beat.index;
            PyObject *parts[5];
            const void *src[5];
            Py_ssize_t len[5], k;
            parts[0] = idx, src[0] = &i64, len[0] = 8;
            parts[1] = win, src[1] = b.window, len[1] = ECG_BEATFEAT_WINDOW_LEN;
            parts[2] = rr, src[2] = b.rr, len[2] = ECG_BEATFEAT_RR_LEN;
            parts[3] = scale, src[3] = &b.scale_mv, len[3] = 4;
            parts[4] = late, src[4] = &b.late, len[4] = 1;
            for (k = 0; k < 5 && !failed; k++) {
                const Py_ssize_t at = PyByteArray_GET_SIZE(parts[k]);
                failed = PyByteArray_Resize(parts[k], at + len[k]) < 0;
                if (!failed) {
                    memcpy(PyByteArray_AS_STRING(parts[k]) + at, src[k], (size_t)len[k]);
                }
            }
        }
        if (!failed) {
            res = PyTuple_Pack(5, idx, win, rr, scale, late);
        }
    }
    Py_XDECREF(idx);
    Py_XDECREF(win);
    Py_XDECREF(rr);
    Py_XDECREF(scale);
    Py_XDECREF(late);
    return res;
}

static PyObject *BeatFeatureStream_stats(BeatFeatureStreamObject *self,
                                         void *Py_UNUSED(closure))
{
    ecg_beatfeat_stats_t st;
    if (beatfeat_ready(self) < 0) {
        return NULL;
    }
    ecg_beatfeat_get_stats(self->bf, &st);
    return Py_BuildValue("{sksksksn}", "beats_in", (unsigned long)st.beats_in, "beats_out",
                         (unsigned long)st.beats_out, "late", (unsigned long)st.late, "pending",
                         (Py_ssize_t)ecg_beatfeat_pending(self->bf));
}

static PyObject *BeatFeatureStream_state_bytes(PyObject *Py_UNUSED(self),
                                               void *Py_UNUSED(closure))
{
    return PyLong_FromSize_t(sizeof(ecg_beatfeat_t));
}

static PyMethodDef BeatFeatureStream_methods[] = {
    {"push", (PyCFunction)BeatFeatureStream_push, METH_O, "push(float32 samples)"},
    {"add_beat", (PyCFunction)BeatFeatureStream_add_beat, METH_O, "add_beat(r_index)"},
    {"finish", (PyCFunction)BeatFeatureStream_finish, METH_NOARGS, "end of stream"},
    {"reset", (PyCFunction)BeatFeatureStream_reset, METH_NOARGS, "start a new stream"},
    {"take", (PyCFunction)BeatFeatureStream_take, METH_NOARGS,
     "ready beats: (index, window, rr, scale, late) as bytes"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef BeatFeatureStream_getset[] = {
    {"stats", (getter)BeatFeatureStream_stats, NULL, "counters", NULL},
    {"state_bytes", (getter)BeatFeatureStream_state_bytes, NULL, "sizeof(ecg_beatfeat_t)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject BeatFeatureStreamType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ecgedge._core.BeatFeatureStream",
    .tp_basicsize = sizeof(BeatFeatureStreamObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "BeatFeatureStream(fs_hz, filter_delay_samples): ecg_beatfeat",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)BeatFeatureStream_init,
    .tp_dealloc = (destructor)BeatFeatureStream_dealloc,
    .tp_methods = BeatFeatureStream_methods,
    .tp_getset = BeatFeatureStream_getset,
};

/* ---------------------------------------------------------------- ecg_sha256 (package tags) */

/* hmac_sha256(key, data) -> 32 bytes; sha256(data) when key is None. */
static PyObject *core_hmac_sha256(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer key, data;
    uint8_t out[ECG_SHA256_DIGEST_LEN];
    PyObject *key_obj;
    if (!PyArg_ParseTuple(args, "Oy*", &key_obj, &data)) {
        return NULL;
    }
    if (key_obj == Py_None) {
        ecg_sha256((const uint8_t *)data.buf, (size_t)data.len, out);
    } else {
        ecg_hmac_sha256_t h;
        if (PyObject_GetBuffer(key_obj, &key, PyBUF_SIMPLE) < 0) {
            PyBuffer_Release(&data);
            return NULL;
        }
        ecg_hmac_sha256_init(&h, (const uint8_t *)key.buf, (size_t)key.len);
        ecg_hmac_sha256_update(&h, (const uint8_t *)data.buf, (size_t)data.len);
        ecg_hmac_sha256_final(&h, out);
        PyBuffer_Release(&key);
    }
    PyBuffer_Release(&data);
    return PyBytes_FromStringAndSize((const char *)out, sizeof out);
}

static PyMethodDef core_methods[] = {
    {"hmac_sha256", core_hmac_sha256, METH_VARARGS,
     "hmac_sha256(key, data) -> 32-byte tag (ecg_sha256.c); key None: sha256(data)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef coremodule = {PyModuleDef_HEAD_INIT, "ecgedge._core",
                                        "ecgedge firmware core, host build", -1, core_methods,
                                        NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__core(void)
{
    PyObject *m;
    if (PyType_Ready(&FilterType) < 0 || PyType_Ready(&QrsType) < 0 ||
        PyType_Ready(&DeviceType) < 0 || PyType_Ready(&BeatClassifierType) < 0 ||
        PyType_Ready(&HeadTrainerType) < 0 || PyType_Ready(&BeatFeatureStreamType) < 0) {
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
         PyModule_AddObject(m, "BeatClassifier", (PyObject *)&BeatClassifierType)) < 0 ||
        (Py_INCREF(&HeadTrainerType),
         PyModule_AddObject(m, "HeadTrainer", (PyObject *)&HeadTrainerType)) < 0 ||
        (Py_INCREF(&BeatFeatureStreamType),
         PyModule_AddObject(m, "BeatFeatureStream", (PyObject *)&BeatFeatureStreamType)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

/*
 * Wire protocol tests for the C implementation (firmware/src/core/ecg_protocol.c, ecg_crc.c).
 *
 * Usage: test_protocol <tests/vectors/protocol.jsonl>
 *
 * Checks every shared vector (docs/protocol.md §9) plus C-only API contracts: capacity errors
 * never write past `cap` (guard bytes), NULL arguments, limits, decoder robustness. Prints
 * "N passed, M failed" last and exits 0 only when nothing failed. Plain C99, no framework; the
 * JSON reader understands exactly what tools/gen_protocol_vectors.py writes (no string escapes).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ecg/ecg_crc.h"
#include "ecg/ecg_backfill.h"
#include "ecg/ecg_protocol.h"
#include "ecg/ecg_update.h"

/* ------------------------------------------------------------------------------------------ */
/* Tiny assertion helpers                                                                     */
/* ------------------------------------------------------------------------------------------ */

#include "check.h"

static void check_bytes(const uint8_t *got, size_t got_len, const uint8_t *want, size_t want_len,
                        const char *what)
{
    size_t i;
    if (got_len != want_len) {
        g_failed++;
        printf("FAIL [%s] %s: length %zu, want %zu\n", g_test, what, got_len, want_len);
        return;
    }
    for (i = 0; i < want_len; ++i) {
        if (got[i] != want[i]) {
            g_failed++;
            printf("FAIL [%s] %s: byte %zu is %02x, want %02x\n", g_test, what, i, got[i], want[i]);
            return;
        }
    }
    g_passed++;
}

/* ------------------------------------------------------------------------------------------ */
/* Minimal JSON tokenizer (jsmn-like): objects, arrays, strings without escapes, primitives   */
/* ------------------------------------------------------------------------------------------ */

typedef enum { J_OBJ, J_ARR, J_STR, J_PRIM } jtype_t;

typedef struct {
    jtype_t type;
    size_t start, end; /* [start, end) in the text; strings exclude the quotes */
    int size;          /* children: values of an array, keys of an object */
} jtok_t;

typedef struct {
    const char *js;
    jtok_t *t;
    int n;
} json_t;

/* Returns the token count or -1. Tokens are in document order; a subtree follows its root. */
static int json_parse(const char *js, size_t len, jtok_t *t, int cap)
{
    int n = 0;
    int stack[64];
    int depth = 0;
    size_t i = 0;
    while (i < len) {
        char c = js[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == ',' || c == ':') {
            i++;
            continue;
        }
        if (c == '}' || c == ']') {
            if (depth == 0) {
                return -1;
            }
            t[stack[--depth]].end = i + 1;
            i++;
            continue;
        }
        if (n >= cap) {
            return -1;
        }
        if (depth > 0) {
            jtok_t *parent = &t[stack[depth - 1]];
            /* in an object, only keys count as children; a key is followed by ':' */
            if (parent->type == J_ARR) {
                parent->size++;
            } else {
                size_t k = i;
                if (c == '"') {
                    k++;
                    while (k < len && js[k] != '"') {
                        k++;
                    }
                    k++;
                    while (k < len && js[k] == ' ') {
                        k++;
                    }
                    if (k < len && js[k] == ':') {
                        parent->size++;
                    }
                }
            }
        }
        if (c == '{' || c == '[') {
            if (depth >= 64) {
                return -1;
            }
            t[n].type = c == '{' ? J_OBJ : J_ARR;
            t[n].start = i;
            t[n].end = 0;
            t[n].size = 0;
            stack[depth++] = n++;
            i++;
        } else if (c == '"') {
            size_t s = ++i;
            while (i < len && js[i] != '"') {
                if (js[i] == '\\') {
                    return -1; /* the generator never writes escapes */
                }
                i++;
            }
            if (i >= len) {
                return -1;
            }
            t[n].type = J_STR;
            t[n].start = s;
            t[n].end = i;
            t[n].size = 0;
            n++;
            i++;
        } else {
            size_t s = i;
            while (i < len && js[i] != ',' && js[i] != '}' && js[i] != ']' && js[i] != ' ' &&
                   js[i] != '\n') {
                i++;
            }
            t[n].type = J_PRIM;
            t[n].start = s;
            t[n].end = i;
            t[n].size = 0;
            n++;
        }
    }
    return depth == 0 ? n : -1;
}

/* Index of the first token after the subtree rooted at i. */
static int json_skip(const json_t *j, int i)
{
    int k = i + 1;
    while (k < j->n && j->t[k].start < j->t[i].end) {
        k++;
    }
    return k;
}

static int json_eq(const json_t *j, int i, const char *s)
{
    size_t len = j->t[i].end - j->t[i].start;
    return j->t[i].type == J_STR && strlen(s) == len && memcmp(j->js + j->t[i].start, s, len) == 0;
}

/* Value token of `key` in object `obj`, or -1. */
static int json_get(const json_t *j, int obj, const char *key)
{
    int k = obj + 1;
    int m;
    if (obj < 0 || j->t[obj].type != J_OBJ) {
        return -1;
    }
    for (m = 0; m < j->t[obj].size; ++m) {
        if (json_eq(j, k, key)) {
            return k + 1;
        }
        k = json_skip(j, k + 1);
    }
    return -1;
}

/* i-th element of array `arr`, or -1. */
static int json_at(const json_t *j, int arr, int idx)
{
    int k = arr + 1;
    int m;
    if (arr < 0 || j->t[arr].type != J_ARR || idx >= j->t[arr].size) {
        return -1;
    }
    for (m = 0; m < idx; ++m) {
        k = json_skip(j, k);
    }
    return k;
}

static long long json_int(const json_t *j, int i)
{
    char buf[32];
    size_t len;
    if (i < 0) {
        return -999999;
    }
    len = j->t[i].end - j->t[i].start;
    if (len >= sizeof buf) {
        len = sizeof buf - 1;
    }
    memcpy(buf, j->js + j->t[i].start, len);
    buf[len] = '\0';
    if (strcmp(buf, "true") == 0) {
        return 1;
    }
    if (strcmp(buf, "false") == 0 || strcmp(buf, "null") == 0) {
        return 0;
    }
    return strtoll(buf, NULL, 10);
}

static unsigned long long json_u64(const json_t *j, int i)
{
    char buf[32];
    size_t len;
    if (i < 0) {
        return 0;
    }
    len = j->t[i].end - j->t[i].start;
    if (len >= sizeof buf) {
        len = sizeof buf - 1;
    }
    memcpy(buf, j->js + j->t[i].start, len);
    buf[len] = '\0';
    return strtoull(buf, NULL, 10);
}

static double json_num(const json_t *j, int i)
{
    char buf[48];
    size_t len = j->t[i].end - j->t[i].start;
    if (len >= sizeof buf) {
        len = sizeof buf - 1;
    }
    memcpy(buf, j->js + j->t[i].start, len);
    buf[len] = '\0';
    return strtod(buf, NULL);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Decode the hex string at token i into out; returns the byte count or -1. */
static long json_hex(const json_t *j, int i, uint8_t *out, size_t cap)
{
    size_t len, k;
    if (i < 0 || j->t[i].type != J_STR) {
        return -1;
    }
    len = j->t[i].end - j->t[i].start;
    if (len % 2u != 0u || len / 2u > cap) {
        return -1;
    }
    for (k = 0; k < len / 2u; ++k) {
        int hi = hexval(j->js[j->t[i].start + 2u * k]);
        int lo = hexval(j->js[j->t[i].start + 2u * k + 1u]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        out[k] = (uint8_t)(hi * 16 + lo);
    }
    return (long)(len / 2u);
}

#define FIELD(j, obj, name) json_int((j), json_get((j), (obj), (name)))
#define FIELD_U(j, obj, name) json_u64((j), json_get((j), (obj), (name)))

/* ------------------------------------------------------------------------------------------ */
/* Vector kinds                                                                               */
/* ------------------------------------------------------------------------------------------ */

#define BIG 4096u
#define STREAM_CAP 65536u

static void run_crc(const json_t *j, int v)
{
    uint8_t data[BIG];
    long n = json_hex(j, json_get(j, v, "data_hex"), data, sizeof data);
    CHECK(n >= 0);
    if (n < 0) {
        return;
    }
    CHECK_EQ(ecg_crc16_ccitt(data, (size_t)n), FIELD(j, v, "crc"));
    /* split in two updates: same result */
    CHECK_EQ(ecg_crc16_update(ecg_crc16_update(ECG_CRC16_INIT, data, (size_t)n / 2u),
                              data + n / 2, (size_t)n - (size_t)n / 2u),
             FIELD(j, v, "crc"));
}

static void run_cobs(const json_t *j, int v)
{
    static uint8_t dec[BIG], enc[BIG], out[BIG + 8];
    long nd = json_hex(j, json_get(j, v, "decoded_hex"), dec, sizeof dec);
    long ne = json_hex(j, json_get(j, v, "encoded_hex"), enc, sizeof enc);
    int decode_only = json_get(j, v, "decode_only") >= 0;
    int32_t r;
    CHECK(nd >= 0 && ne >= 0);
    if (nd < 0 || ne < 0) {
        return;
    }
    if (!decode_only) {
        /* exact capacity works; guard bytes after it stay untouched */
        memset(out, 0xA5, sizeof out);
        r = ecg_cobs_encode(dec, (size_t)nd, out, (size_t)ne);
        CHECK_EQ(r, ne);
        if (r >= 0) {
            check_bytes(out, (size_t)r, enc, (size_t)ne, "cobs encode");
        }
        CHECK(out[ne] == 0xA5 && out[ne + 1] == 0xA5);
        CHECK((size_t)ne <= ECG_COBS_MAX_ENCODED_LEN((size_t)nd));
        /* one byte short: NO_SPACE, nothing written past cap */
        memset(out, 0xA5, sizeof out);
        r = ecg_cobs_encode(dec, (size_t)nd, out, (size_t)ne - 1u);
        CHECK_EQ(r, ECG_PROTO_ERR_NO_SPACE);
        CHECK(out[ne - 1] == 0xA5);
    }
    memset(out, 0xA5, sizeof out);
    r = ecg_cobs_decode(enc, (size_t)ne, out, (size_t)nd);
    CHECK_EQ(r, nd);
    if (r >= 0) {
        check_bytes(out, (size_t)r, dec, (size_t)nd, "cobs decode");
    }
    CHECK(out[nd] == 0xA5);
    if (nd > 0) {
        CHECK_EQ(ecg_cobs_decode(enc, (size_t)ne, out, (size_t)nd - 1u), ECG_PROTO_ERR_NO_SPACE);
    }
    /* in place */
    memcpy(out, enc, (size_t)ne);
    r = ecg_cobs_decode(out, (size_t)ne, out, (size_t)ne);
    CHECK_EQ(r, nd);
    if (r >= 0) {
        check_bytes(out, (size_t)r, dec, (size_t)nd, "cobs decode in place");
    }
}

static void run_cobs_invalid(const json_t *j, int v)
{
    uint8_t enc[BIG], out[BIG];
    long ne = json_hex(j, json_get(j, v, "encoded_hex"), enc, sizeof enc);
    CHECK(ne >= 0);
    if (ne < 0) {
        return;
    }
    CHECK_EQ(ecg_cobs_decode(enc, (size_t)ne, out, sizeof out), ECG_PROTO_ERR_COBS);
}

/* Alerts (§5.5-§5.7, §6.6): thresholds, status and page fields from / against JSON. */
static void alerts_cfg_of(const json_t *j, int f, ecg_alerts_cfg_t *c)
{
    c->enable_mask = (uint16_t)FIELD(j, f, "enable_mask");
    c->brady_bpm = (uint8_t)FIELD(j, f, "brady_bpm");
    c->tachy_bpm = (uint8_t)FIELD(j, f, "tachy_bpm");
    c->rate_beats = (uint8_t)FIELD(j, f, "rate_beats");
    c->rate_sustain_s = (uint8_t)FIELD(j, f, "rate_sustain_s");
    c->pause_ms = (uint16_t)FIELD(j, f, "pause_ms");
    c->asystole_ms = (uint16_t)FIELD(j, f, "asystole_ms");
    c->vt_beats = (uint8_t)FIELD(j, f, "vt_beats");
    c->vt_bpm = (uint8_t)FIELD(j, f, "vt_bpm");
    c->v_per_min = (uint8_t)FIELD(j, f, "v_per_min");
    c->s_per_min = (uint8_t)FIELD(j, f, "s_per_min");
    c->af_beats = (uint8_t)FIELD(j, f, "af_beats");
    c->af_nrmssd_permille = (uint16_t)FIELD(j, f, "af_nrmssd_permille");
    c->af_entropy_permille = (uint16_t)FIELD(j, f, "af_entropy_permille");
    c->lead_off_ms = (uint16_t)FIELD(j, f, "lead_off_ms");
    c->poor_signal_s = (uint8_t)FIELD(j, f, "poor_signal_s");
}

static void alerts_status_of(const json_t *j, int f, ecg_proto_alert_status_t *m)
{
    m->last_id = (uint32_t)FIELD(j, f, "last_id");
    m->queued = (uint16_t)FIELD(j, f, "queued");
    m->dropped = (uint32_t)FIELD(j, f, "dropped");
    m->max_severity = (uint8_t)FIELD(j, f, "max_severity");
}

static int32_t alerts_pack_fields(const json_t *j, uint8_t type, int f, uint8_t *out, size_t cap)
{
    switch (type) {
    case ECG_FT_ALERTS_PULL: {
        ecg_proto_alerts_pull_t m;
        m.after_id = (uint32_t)FIELD(j, f, "after_id");
        m.max_records = (uint8_t)FIELD(j, f, "max_records");
        return ecg_proto_pack_alerts_pull(&m, out, cap);
    }
    case ECG_FT_ALERTS_ACK:
        return ecg_proto_pack_alerts_ack((uint32_t)FIELD(j, f, "id"), out, cap);
    case ECG_FT_ALERTS_CONFIGURE: {
        ecg_alerts_cfg_t c;
        alerts_cfg_of(j, f, &c);
        return ecg_proto_pack_alerts_cfg(&c, out, cap);
    }
    case ECG_FT_ALERT_NOTICE: {
        ecg_proto_alert_status_t m;
        alerts_status_of(j, f, &m);
        return ecg_proto_pack_alert_status(&m, out, cap);
    }
    default: /* ALERTS_GET_CONFIG */
        return 0;
    }
}

static void alerts_check_cfg(const json_t *j, int f, const ecg_alerts_cfg_t *got)
{
    ecg_alerts_cfg_t w;
    alerts_cfg_of(j, f, &w);
    CHECK_EQ(got->enable_mask, w.enable_mask);
    CHECK_EQ(got->brady_bpm, w.brady_bpm);
    CHECK_EQ(got->tachy_bpm, w.tachy_bpm);
    CHECK_EQ(got->rate_beats, w.rate_beats);
    CHECK_EQ(got->rate_sustain_s, w.rate_sustain_s);
    CHECK_EQ(got->pause_ms, w.pause_ms);
    CHECK_EQ(got->asystole_ms, w.asystole_ms);
    CHECK_EQ(got->vt_beats, w.vt_beats);
    CHECK_EQ(got->vt_bpm, w.vt_bpm);
    CHECK_EQ(got->v_per_min, w.v_per_min);
    CHECK_EQ(got->s_per_min, w.s_per_min);
    CHECK_EQ(got->af_beats, w.af_beats);
    CHECK_EQ(got->af_nrmssd_permille, w.af_nrmssd_permille);
    CHECK_EQ(got->af_entropy_permille, w.af_entropy_permille);
    CHECK_EQ(got->lead_off_ms, w.lead_off_ms);
    CHECK_EQ(got->poor_signal_s, w.poor_signal_s);
}

static void alerts_check_status(const json_t *j, int f, const ecg_proto_alert_status_t *got)
{
    CHECK_EQ(got->last_id, FIELD(j, f, "last_id"));
    CHECK_EQ(got->queued, FIELD(j, f, "queued"));
    CHECK_EQ(got->dropped, FIELD(j, f, "dropped"));
    CHECK_EQ(got->max_severity, FIELD(j, f, "max_severity"));
}

/* An ALERTS_PULL answer body against its `result`; packing the result gives the same bytes. */
static void alerts_check_page(const json_t *j, int res, const uint8_t *body, size_t len)
{
    ecg_proto_alerts_page_t h;
    ecg_alert_t recs[ECG_PROTO_ALERTS_PER_PAGE];
    uint8_t again[ECG_PROTO_MAX_PAYLOAD];
    int arr = json_get(j, res, "records");
    uint8_t i;
    CHECK_EQ(ecg_proto_unpack_alerts_page(body, len, &h, recs, ECG_PROTO_ALERTS_PER_PAGE),
             ECG_OK);
    alerts_check_status(j, res, &h.status);
    CHECK_EQ(h.pending, FIELD(j, res, "pending"));
    CHECK_EQ(h.n, FIELD(j, res, "n"));
    CHECK_EQ(h.record_len, FIELD(j, res, "record_len"));
    CHECK_EQ(h.n, arr >= 0 ? j->t[arr].size : -1);
    for (i = 0; i < h.n && arr >= 0 && i < j->t[arr].size; i++) {
        int r = json_at(j, arr, i);
        CHECK_EQ(recs[i].id, FIELD(j, r, "id"));
        CHECK_EQ(recs[i].episode, FIELD(j, r, "episode"));
        CHECK_EQ(recs[i].type, FIELD(j, r, "type"));
        CHECK_EQ(recs[i].severity, FIELD(j, r, "severity"));
        CHECK_EQ(recs[i].flags, FIELD(j, r, "flags"));
        CHECK_EQ(recs[i].start_index, FIELD(j, r, "start_index"));
        CHECK_EQ(recs[i].end_index, FIELD(j, r, "end_index"));
        CHECK(recs[i].time_us == (uint64_t)FIELD_U(j, r, "time_us"));
        CHECK_EQ(recs[i].value, FIELD(j, r, "value"));
        CHECK_EQ(recs[i].count, FIELD(j, r, "count"));
    }
    CHECK_EQ(ecg_proto_pack_alerts_page(&h, recs, again, sizeof again), (int32_t)len);
    check_bytes(again, len, body, len, "repacked alerts page");
}

static void alerts_check_unpacked(const json_t *j, uint8_t type, int f, const uint8_t *p,
                                  size_t len)
{
    switch (type) {
    case ECG_FT_ALERTS_PULL: {
        ecg_proto_alerts_pull_t m;
        CHECK_EQ(ecg_proto_unpack_alerts_pull(p, len, &m), ECG_OK);
        CHECK_EQ(m.after_id, FIELD(j, f, "after_id"));
        CHECK_EQ(m.max_records, FIELD(j, f, "max_records"));
        break;
    }
    case ECG_FT_ALERTS_ACK: {
        uint32_t id = 0u;
        CHECK_EQ(ecg_proto_unpack_alerts_ack(p, len, &id), ECG_OK);
        CHECK_EQ(id, FIELD(j, f, "id"));
        break;
    }
    case ECG_FT_ALERTS_CONFIGURE: {
        ecg_alerts_cfg_t c;
        CHECK_EQ(ecg_proto_unpack_alerts_cfg(p, len, &c), ECG_OK);
        alerts_check_cfg(j, f, &c);
        break;
    }
    case ECG_FT_ALERT_NOTICE: {
        ecg_proto_alert_status_t m;
        CHECK_EQ(ecg_proto_unpack_alert_status(p, len, &m), ECG_OK);
        alerts_check_status(j, f, &m);
        break;
    }
    default: /* ALERTS_GET_CONFIG */
        CHECK_EQ(len, 0);
    }
}

/* Update packages (§11, ECG_FT_UPDATE_CASES): ecg_update.h packs their layouts. */

static size_t json_bytes(const json_t *j, int f, const char *key, uint8_t *out, size_t cap)
{
    int arr = json_get(j, f, key);
    int i;
    size_t n = 0;
    for (i = 0; arr >= 0 && i < j->t[arr].size && n < cap; i++) {
        out[n++] = (uint8_t)json_int(j, json_at(j, arr, i));
    }
    return n;
}

static int32_t update_pack(const json_t *j, uint8_t type, int f, uint8_t *out, size_t cap)
{
    uint8_t data[ECG_PROTO_MAX_PAYLOAD];
    size_t n;
    if (type == ECG_FT_PKG_BEGIN) {
        ecg_update_header_t h;
        h.magic = (uint32_t)FIELD_U(j, f, "magic");
        h.format = (uint8_t)FIELD(j, f, "format");
        h.kind = (uint8_t)FIELD(j, f, "kind");
        h.flags = (uint16_t)FIELD(j, f, "flags");
        h.model_id = (uint32_t)FIELD_U(j, f, "model_id");
        h.embedding_len = (uint16_t)FIELD(j, f, "embedding_len");
        h.n_classes = (uint16_t)FIELD(j, f, "n_classes");
        h.version = (uint32_t)FIELD_U(j, f, "version");
        h.payload_len = (uint32_t)FIELD_U(j, f, "payload_len");
        h.payload_crc32 = (uint32_t)FIELD_U(j, f, "payload_crc32");
        return ecg_update_pack_header(&h, out, cap);
    }
    if (type == ECG_FT_PKG_CHUNK) {
        n = json_bytes(j, f, "data", data, sizeof data);
        return ecg_update_pack_chunk((uint32_t)FIELD_U(j, f, "offset"), data, n, out, cap);
    }
    if (type == ECG_FT_PKG_COMMIT) {
        n = json_bytes(j, f, "tag", data, sizeof data);
        if (n != ECG_UPDATE_TAG_LEN) {
            return -1000;
        }
        if (cap < n) {
            return ECG_PROTO_ERR_NO_SPACE;
        }
        memcpy(out, data, n);
        return (int32_t)n;
    }
    if (type == ECG_FT_RESET_PERSONALIZATION) { /* version u32 | tag (§11.4) */
        const uint32_t v = (uint32_t)FIELD_U(j, f, "version");
        n = json_bytes(j, f, "tag", data, sizeof data);
        if (n != ECG_UPDATE_TAG_LEN) {
            return -1000;
        }
        if (cap < ECG_UPDATE_RESET_LEN) {
            return ECG_PROTO_ERR_NO_SPACE;
        }
        ecg_proto_put_u32(out, v);
        memcpy(&out[4], data, n);
        return (int32_t)ECG_UPDATE_RESET_LEN;
    }
    return 0; /* ABORT, GET_MODEL_INFO: empty */
}

static void update_check(const json_t *j, uint8_t type, int f, const uint8_t *p, size_t len)
{
    uint8_t data[ECG_PROTO_MAX_PAYLOAD];
    size_t n, i;
    if (type == ECG_FT_PKG_BEGIN) {
        ecg_update_header_t h;
        CHECK_EQ(ecg_update_unpack_header(p, len, &h), ECG_OK);
        CHECK(h.magic == (uint32_t)FIELD_U(j, f, "magic"));
        CHECK_EQ(h.format, FIELD(j, f, "format"));
        CHECK_EQ(h.kind, FIELD(j, f, "kind"));
        CHECK_EQ(h.flags, FIELD(j, f, "flags"));
        CHECK(h.model_id == (uint32_t)FIELD_U(j, f, "model_id"));
        CHECK_EQ(h.embedding_len, FIELD(j, f, "embedding_len"));
        CHECK_EQ(h.n_classes, FIELD(j, f, "n_classes"));
        CHECK(h.version == (uint32_t)FIELD_U(j, f, "version"));
        CHECK(h.payload_len == (uint32_t)FIELD_U(j, f, "payload_len"));
        CHECK(h.payload_crc32 == (uint32_t)FIELD_U(j, f, "payload_crc32"));
    } else if (type == ECG_FT_PKG_CHUNK) {
        uint32_t off;
        const uint8_t *d;
        CHECK_EQ(ecg_update_unpack_chunk(p, len, &off, &d, &n), ECG_OK);
        CHECK(off == (uint32_t)FIELD_U(j, f, "offset"));
        CHECK_EQ(n, json_bytes(j, f, "data", data, sizeof data));
        for (i = 0; i < n && i < sizeof data; i++) {
            CHECK_EQ(d[i], data[i]);
        }
    } else if (type == ECG_FT_PKG_COMMIT) {
        CHECK_EQ(len, ECG_UPDATE_TAG_LEN);
        CHECK_EQ(json_bytes(j, f, "tag", data, sizeof data), ECG_UPDATE_TAG_LEN);
        CHECK(memcmp(p, data, ECG_UPDATE_TAG_LEN) == 0);
    } else if (type == ECG_FT_RESET_PERSONALIZATION) {
        CHECK_EQ(len, ECG_UPDATE_RESET_LEN);
        CHECK(ecg_proto_get_u32(p) == (uint32_t)FIELD_U(j, f, "version"));
        CHECK_EQ(json_bytes(j, f, "tag", data, sizeof data), ECG_UPDATE_TAG_LEN);
        CHECK(memcmp(&p[4], data, ECG_UPDATE_TAG_LEN) == 0);
    } else {
        CHECK_EQ(len, 0);
    }
}

/* A RESPONSE body of an update command: MODEL_INFO, or PKG_CHUNK's next offset. */
static int update_has_result(uint8_t cmd_type)
{
    return cmd_type == ECG_FT_PKG_CHUNK || cmd_type == ECG_FT_PKG_COMMIT ||
           cmd_type == ECG_FT_GET_MODEL_INFO || cmd_type == ECG_FT_RESET_PERSONALIZATION;
}

static void update_check_result(const json_t *j, int res, uint8_t cmd_type, const uint8_t *b,
                                size_t len)
{
    if (cmd_type == ECG_FT_PKG_CHUNK) {
        CHECK_EQ(len, ECG_UPDATE_CHUNK_RESULT_LEN);
        CHECK_EQ((long)b[0] | ((long)b[1] << 8) | ((long)b[2] << 16) | ((long)b[3] << 24),
                 FIELD(j, res, "next_offset"));
    } else {
        ecg_update_model_info_t m;
        CHECK_EQ(ecg_update_unpack_model_info(b, len, &m), ECG_OK);
        CHECK(m.model_id == (uint32_t)FIELD_U(j, res, "model_id"));
        CHECK_EQ(m.active_slot, FIELD(j, res, "active_slot"));
        CHECK_EQ(m.state, FIELD(j, res, "state"));
        CHECK(m.head_version == (uint32_t)FIELD_U(j, res, "head_version"));
        CHECK(m.max_version == (uint32_t)FIELD_U(j, res, "max_version"));
        CHECK_EQ(m.trainer_beats, FIELD(j, res, "trainer_beats"));
        CHECK_EQ(m.trainer_labelled, FIELD(j, res, "trainer_labelled"));
    }
}

static int32_t update_unpack(uint8_t type, const uint8_t *p, size_t len)
{
    ecg_update_header_t h;
    uint32_t off;
    const uint8_t *d;
    size_t n;
    if (type == ECG_FT_PKG_BEGIN) {
        return ecg_update_unpack_header(p, len, &h);
    }
    if (type == ECG_FT_PKG_CHUNK) {
        return ecg_update_unpack_chunk(p, len, &off, &d, &n);
    }
    if (type == ECG_FT_PKG_COMMIT) {
        return len < ECG_UPDATE_TAG_LEN ? ECG_PROTO_ERR_LENGTH : ECG_OK;
    }
    return ECG_OK;
}

/* Pack `fields` of a message type the C way; returns the payload length or a negative error. */
static int32_t pack_fields(const json_t *j, uint8_t type, int f, uint8_t *out, size_t cap)
{
    switch (type) {
    ECG_FT_UPDATE_CASES:
        return update_pack(j, type, f, out, cap);
    case ECG_FT_GET_INFO:
    case ECG_FT_START_STREAM:
    case ECG_FT_STOP_STREAM:
        return 0;
    case ECG_FT_CONFIGURE: {
        ecg_proto_configure_t m;
        m.set_mask = (uint8_t)FIELD(j, f, "set_mask");
        m.sample_rate_hz = (uint16_t)FIELD(j, f, "sample_rate_hz");
        m.mains_hz = (uint8_t)FIELD(j, f, "mains_hz");
        m.content = (uint8_t)FIELD(j, f, "content");
        m.source = (uint8_t)FIELD(j, f, "source");
        return ecg_proto_pack_configure(&m, out, cap);
    }
    case ECG_FT_TIME_SYNC: {
        ecg_proto_time_sync_t m;
        m.host_time_us = (uint64_t)FIELD_U(j, f, "host_time_us");
        return ecg_proto_pack_time_sync(&m, out, cap);
    }
    case ECG_FT_RESPONSE: {
        uint8_t body[ECG_PROTO_MAX_PAYLOAD];
        ecg_proto_response_t m;
        long nb = json_hex(j, json_get(j, f, "body_hex"), body, sizeof body);
        if (nb < 0) {
            return -1000;
        }
        m.cmd_type = (uint8_t)FIELD(j, f, "cmd_type");
        m.status = (int8_t)FIELD(j, f, "status");
        m.body = body;
        m.body_len = (size_t)nb;
        return ecg_proto_pack_response(&m, out, cap);
    }
    case ECG_FT_DEVICE_INFO: {
        ecg_proto_device_info_t m;
        m.protocol_version = (uint8_t)FIELD(j, f, "protocol_version");
        m.fw_major = (uint8_t)FIELD(j, f, "fw_major");
        m.fw_minor = (uint8_t)FIELD(j, f, "fw_minor");
        m.fw_patch = (uint8_t)FIELD(j, f, "fw_patch");
        m.core_major = (uint8_t)FIELD(j, f, "core_major");
        m.core_minor = (uint8_t)FIELD(j, f, "core_minor");
        m.core_patch = (uint8_t)FIELD(j, f, "core_patch");
        m.leads = (uint8_t)FIELD(j, f, "leads");
        m.model_id = (uint16_t)FIELD(j, f, "model_id");
        m.sample_rate_hz = (uint16_t)FIELD(j, f, "sample_rate_hz");
        m.rates_mask = (uint16_t)FIELD(j, f, "rates_mask");
        m.gain_uv_per_count = (float)json_num(j, json_get(j, f, "gain_uv_per_count"));
        m.capabilities = (uint32_t)FIELD(j, f, "capabilities");
        m.mains_hz = (uint8_t)FIELD(j, f, "mains_hz");
        m.content = (uint8_t)FIELD(j, f, "content");
        m.source = (uint8_t)FIELD(j, f, "source");
        return ecg_proto_pack_device_info(&m, out, cap);
    }
    case ECG_FT_BEAT_EVENT: {
        ecg_proto_beat_t m;
        m.sample_index = (uint32_t)FIELD(j, f, "sample_index");
        m.rr_samples = (uint16_t)FIELD(j, f, "rr_samples");
        m.beat_class = (uint8_t)FIELD(j, f, "beat_class");
        m.quality = (uint8_t)FIELD(j, f, "quality");
        m.flags = (uint8_t)FIELD(j, f, "flags");
        m.confidence = (uint8_t)FIELD(j, f, "confidence");
        return ecg_proto_pack_beat(&m, out, cap);
    }
    case ECG_FT_STATUS: {
        ecg_proto_status_t m;
        m.sample_index = (uint32_t)FIELD(j, f, "sample_index");
        m.battery_pct = (uint8_t)FIELD(j, f, "battery_pct");
        m.lead_off = (uint8_t)FIELD(j, f, "lead_off");
        m.buffer_fill_pct = (uint8_t)FIELD(j, f, "buffer_fill_pct");
        m.flags = (uint8_t)FIELD(j, f, "flags");
        m.samples_dropped = (uint32_t)FIELD(j, f, "samples_dropped");
        m.frames_dropped = (uint32_t)FIELD(j, f, "frames_dropped");
        m.rx_crc_errors = (uint32_t)FIELD(j, f, "rx_crc_errors");
        m.rx_cobs_errors = (uint32_t)FIELD(j, f, "rx_cobs_errors");
        m.rx_truncated = (uint32_t)FIELD(j, f, "rx_truncated");
        m.rx_oversize = (uint32_t)FIELD(j, f, "rx_oversize");
        m.rx_bad_version = (uint32_t)FIELD(j, f, "rx_bad_version");
        m.rx_unknown_type = (uint32_t)FIELD(j, f, "rx_unknown_type");
        return ecg_proto_pack_status(&m, out, cap);
    }
    case ECG_FT_BACKFILL_REQUEST: {
        ecg_proto_backfill_request_t m;
        m.first_seq = (uint16_t)FIELD(j, f, "first_seq");
        m.count = (uint16_t)FIELD(j, f, "count");
        return ecg_proto_pack_backfill_request(&m, out, cap);
    }
    case ECG_FT_ALERTS_PULL:
    case ECG_FT_ALERTS_ACK:
    case ECG_FT_ALERTS_CONFIGURE:
    case ECG_FT_ALERTS_GET_CONFIG:
    case ECG_FT_ALERT_NOTICE:
        return alerts_pack_fields(j, type, f, out, cap);
    case ECG_FT_BACKFILL_END: {
        ecg_proto_backfill_end_t m;
        m.first_seq = (uint16_t)FIELD(j, f, "first_seq");
        m.count = (uint16_t)FIELD(j, f, "count");
        m.sent = (uint16_t)FIELD(j, f, "sent");
        return ecg_proto_pack_backfill_end(&m, out, cap);
    }
    case ECG_FT_BACKFILL_BLOCK:
    case ECG_FT_SAMPLE_BLOCK:
    case ECG_FT_INJECT_SAMPLES: {
        int16_t s[ECG_PROTO_MAX_PAYLOAD / 2u];
        ecg_proto_samples_hdr_t h;
        int arr = json_get(j, f, "samples");
        int r, c, k = 0;
        h.sample_index = (uint32_t)FIELD(j, f, "sample_index");
        h.leads = (uint8_t)FIELD(j, f, "leads");
        h.flags = (uint8_t)FIELD(j, f, "flags");
        h.n_samples = (uint16_t)(arr >= 0 ? j->t[arr].size : 0);
        for (r = 0; r < h.n_samples; ++r) {
            int row = json_at(j, arr, r);
            for (c = 0; c < h.leads && k < (int)(sizeof s / sizeof s[0]); ++c) {
                s[k++] = (int16_t)json_int(j, json_at(j, row, c));
            }
        }
        return ecg_proto_pack_samples(&h, s, out, cap);
    }
    default:
        return -1000;
    }
}

/* Unpack `payload` and compare it with `fields` (and a RESPONSE's `result`). */
static void check_unpacked(const json_t *j, int v, uint8_t type, int f, const uint8_t *p,
                           size_t len)
{
    switch (type) {
    ECG_FT_UPDATE_CASES:
        update_check(j, type, f, p, len);
        break;
    case ECG_FT_GET_INFO:
    case ECG_FT_START_STREAM:
    case ECG_FT_STOP_STREAM:
        CHECK_EQ(len, 0);
        break;
    case ECG_FT_CONFIGURE: {
        ecg_proto_configure_t m;
        CHECK_EQ(ecg_proto_unpack_configure(p, len, &m), ECG_OK);
        CHECK_EQ(m.set_mask, FIELD(j, f, "set_mask"));
        CHECK_EQ(m.sample_rate_hz, FIELD(j, f, "sample_rate_hz"));
        CHECK_EQ(m.mains_hz, FIELD(j, f, "mains_hz"));
        CHECK_EQ(m.content, FIELD(j, f, "content"));
        CHECK_EQ(m.source, FIELD(j, f, "source"));
        break;
    }
    case ECG_FT_TIME_SYNC: {
        ecg_proto_time_sync_t m;
        CHECK_EQ(ecg_proto_unpack_time_sync(p, len, &m), ECG_OK);
        CHECK(m.host_time_us == (uint64_t)FIELD_U(j, f, "host_time_us"));
        break;
    }
    case ECG_FT_RESPONSE: {
        ecg_proto_response_t m;
        uint8_t body[ECG_PROTO_MAX_PAYLOAD];
        long nb = json_hex(j, json_get(j, f, "body_hex"), body, sizeof body);
        int res = json_get(j, v, "result");
        CHECK_EQ(ecg_proto_unpack_response(p, len, &m), ECG_OK);
        CHECK_EQ(m.cmd_type, FIELD(j, f, "cmd_type"));
        CHECK_EQ(m.status, FIELD(j, f, "status"));
        check_bytes(m.body, m.body_len, body, nb < 0 ? 0u : (size_t)nb, "response body");
        if (res >= 0 && j->t[res].type == J_OBJ) {
            if (m.cmd_type == ECG_FT_GET_INFO) {
                check_unpacked(j, v, ECG_FT_DEVICE_INFO, res, m.body, m.body_len);
            } else if (m.cmd_type == ECG_FT_TIME_SYNC) {
                ecg_proto_time_sync_result_t t;
                CHECK_EQ(ecg_proto_unpack_time_sync_result(m.body, m.body_len, &t), ECG_OK);
                CHECK(t.host_time_us == (uint64_t)FIELD_U(j, res, "host_time_us"));
                CHECK(t.device_time_us == (uint64_t)FIELD_U(j, res, "device_time_us"));
                CHECK_EQ(t.sample_index, FIELD(j, res, "sample_index"));
            } else if (m.cmd_type == ECG_FT_BACKFILL_REQUEST) {
                ecg_proto_backfill_result_t r;
                CHECK_EQ(ecg_proto_unpack_backfill_result(m.body, m.body_len, &r), ECG_OK);
                CHECK_EQ(r.first_seq, FIELD(j, res, "first_seq"));
                CHECK_EQ(r.count, FIELD(j, res, "count"));
                CHECK_EQ(r.oldest_seq, FIELD(j, res, "oldest_seq"));
                CHECK_EQ(r.next_seq, FIELD(j, res, "next_seq"));
            } else if (m.cmd_type == ECG_FT_ALERTS_PULL) {
                alerts_check_page(j, res, m.body, m.body_len);
            } else if (m.cmd_type == ECG_FT_ALERTS_ACK) {
                ecg_proto_alert_status_t st;
                CHECK_EQ(ecg_proto_unpack_alert_status(m.body, m.body_len, &st), ECG_OK);
                alerts_check_status(j, res, &st);
            } else if (m.cmd_type == ECG_FT_ALERTS_GET_CONFIG) {
                ecg_alerts_cfg_t c;
                CHECK_EQ(ecg_proto_unpack_alerts_cfg(m.body, m.body_len, &c), ECG_OK);
                alerts_check_cfg(j, res, &c);
            } else if (update_has_result(m.cmd_type)) {
                update_check_result(j, res, m.cmd_type, m.body, m.body_len);
            } else if (m.cmd_type == ECG_FT_INJECT_SAMPLES) {
                ecg_proto_inject_result_t r;
                CHECK_EQ(ecg_proto_unpack_inject_result(m.body, m.body_len, &r), ECG_OK);
                CHECK_EQ(r.next_index, FIELD(j, res, "next_index"));
                CHECK_EQ(r.free_samples, FIELD(j, res, "free_samples"));
            } else {
                CHECK(0 && "result for a command without a body layout");
            }
        }
        break;
    }
    case ECG_FT_DEVICE_INFO: {
        ecg_proto_device_info_t m;
        CHECK_EQ(ecg_proto_unpack_device_info(p, len, &m), ECG_OK);
        CHECK_EQ(m.protocol_version, FIELD(j, f, "protocol_version"));
        CHECK_EQ(m.fw_major, FIELD(j, f, "fw_major"));
        CHECK_EQ(m.fw_minor, FIELD(j, f, "fw_minor"));
        CHECK_EQ(m.fw_patch, FIELD(j, f, "fw_patch"));
        CHECK_EQ(m.core_major, FIELD(j, f, "core_major"));
        CHECK_EQ(m.core_minor, FIELD(j, f, "core_minor"));
        CHECK_EQ(m.core_patch, FIELD(j, f, "core_patch"));
        CHECK_EQ(m.leads, FIELD(j, f, "leads"));
        CHECK_EQ(m.model_id, FIELD(j, f, "model_id"));
        CHECK_EQ(m.sample_rate_hz, FIELD(j, f, "sample_rate_hz"));
        CHECK_EQ(m.rates_mask, FIELD(j, f, "rates_mask"));
        CHECK((double)m.gain_uv_per_count == json_num(j, json_get(j, f, "gain_uv_per_count")));
        CHECK_EQ(m.capabilities, FIELD(j, f, "capabilities"));
        CHECK_EQ(m.mains_hz, FIELD(j, f, "mains_hz"));
        CHECK_EQ(m.content, FIELD(j, f, "content"));
        CHECK_EQ(m.source, FIELD(j, f, "source"));
        break;
    }
    case ECG_FT_BEAT_EVENT: {
        ecg_proto_beat_t m;
        CHECK_EQ(ecg_proto_unpack_beat(p, len, &m), ECG_OK);
        CHECK_EQ(m.sample_index, FIELD(j, f, "sample_index"));
        CHECK_EQ(m.rr_samples, FIELD(j, f, "rr_samples"));
        CHECK_EQ(m.beat_class, FIELD(j, f, "beat_class"));
        CHECK_EQ(m.quality, FIELD(j, f, "quality"));
        CHECK_EQ(m.flags, FIELD(j, f, "flags"));
        CHECK_EQ(m.confidence, FIELD(j, f, "confidence"));
        break;
    }
    case ECG_FT_STATUS: {
        ecg_proto_status_t m;
        CHECK_EQ(ecg_proto_unpack_status(p, len, &m), ECG_OK);
        CHECK_EQ(m.sample_index, FIELD(j, f, "sample_index"));
        CHECK_EQ(m.battery_pct, FIELD(j, f, "battery_pct"));
        CHECK_EQ(m.lead_off, FIELD(j, f, "lead_off"));
        CHECK_EQ(m.buffer_fill_pct, FIELD(j, f, "buffer_fill_pct"));
        CHECK_EQ(m.flags, FIELD(j, f, "flags"));
        CHECK_EQ(m.samples_dropped, FIELD(j, f, "samples_dropped"));
        CHECK_EQ(m.frames_dropped, FIELD(j, f, "frames_dropped"));
        CHECK_EQ(m.rx_crc_errors, FIELD(j, f, "rx_crc_errors"));
        CHECK_EQ(m.rx_cobs_errors, FIELD(j, f, "rx_cobs_errors"));
        CHECK_EQ(m.rx_truncated, FIELD(j, f, "rx_truncated"));
        CHECK_EQ(m.rx_oversize, FIELD(j, f, "rx_oversize"));
        CHECK_EQ(m.rx_bad_version, FIELD(j, f, "rx_bad_version"));
        CHECK_EQ(m.rx_unknown_type, FIELD(j, f, "rx_unknown_type"));
        break;
    }
    case ECG_FT_ALERTS_PULL:
    case ECG_FT_ALERTS_ACK:
    case ECG_FT_ALERTS_CONFIGURE:
    case ECG_FT_ALERTS_GET_CONFIG:
    case ECG_FT_ALERT_NOTICE:
        alerts_check_unpacked(j, type, f, p, len);
        break;
    case ECG_FT_BACKFILL_REQUEST: {
        ecg_proto_backfill_request_t m;
        CHECK_EQ(ecg_proto_unpack_backfill_request(p, len, &m), ECG_OK);
        CHECK_EQ(m.first_seq, FIELD(j, f, "first_seq"));
        CHECK_EQ(m.count, FIELD(j, f, "count"));
        break;
    }
    case ECG_FT_BACKFILL_END: {
        ecg_proto_backfill_end_t m;
        CHECK_EQ(ecg_proto_unpack_backfill_end(p, len, &m), ECG_OK);
        CHECK_EQ(m.first_seq, FIELD(j, f, "first_seq"));
        CHECK_EQ(m.count, FIELD(j, f, "count"));
        CHECK_EQ(m.sent, FIELD(j, f, "sent"));
        break;
    }
    case ECG_FT_BACKFILL_BLOCK:
    case ECG_FT_SAMPLE_BLOCK:
    case ECG_FT_INJECT_SAMPLES: {
        int16_t s[ECG_PROTO_MAX_PAYLOAD / 2u];
        ecg_proto_samples_hdr_t h;
        int arr = json_get(j, f, "samples");
        int r, c, k = 0;
        CHECK_EQ(ecg_proto_unpack_samples(p, len, &h, s, sizeof s / sizeof s[0]), ECG_OK);
        CHECK_EQ(h.sample_index, FIELD(j, f, "sample_index"));
        CHECK_EQ(h.leads, FIELD(j, f, "leads"));
        CHECK_EQ(h.flags, FIELD(j, f, "flags"));
        CHECK_EQ(h.n_samples, j->t[arr].size);
        for (r = 0; r < h.n_samples && r < j->t[arr].size; ++r) {
            int row = json_at(j, arr, r);
            for (c = 0; c < h.leads; ++c) {
                CHECK_EQ(s[k++], json_int(j, json_at(j, row, c)));
            }
        }
        break;
    }
    default:
        CHECK(0 && "unexpected type");
    }
}

static void run_message(const json_t *j, int v)
{
    static uint8_t payload[BIG], frame[BIG], out[BIG];
    uint8_t type = (uint8_t)FIELD(j, v, "type");
    uint16_t seq = (uint16_t)FIELD(j, v, "seq");
    int f = json_get(j, v, "fields");
    long np = json_hex(j, json_get(j, v, "payload_hex"), payload, sizeof payload);
    long nf = json_hex(j, json_get(j, v, "frame_hex"), frame, sizeof frame);
    uint8_t trailing[16];
    long nt = json_get(j, v, "trailing_hex") >= 0
                  ? json_hex(j, json_get(j, v, "trailing_hex"), trailing, sizeof trailing)
                  : 0;
    int32_t r;
    ecg_frame_decoder_t d;
    ecg_frame_t fr;
    long i;
    int delivered = 0;

    CHECK(np >= 0 && nf >= 0 && nt >= 0);
    if (np < 0 || nf < 0 || nt < 0) {
        return;
    }
    /* 1. fields -> payload (trailing bytes are a newer sender's extension) */
    memset(out, 0xA5, sizeof out);
    r = pack_fields(j, type, f, out, (size_t)(np - nt));
    CHECK_EQ(r, np - nt);
    if (r >= 0) {
        check_bytes(out, (size_t)r, payload, (size_t)(np - nt), "pack");
    }
    CHECK(out[np - nt] == 0xA5);
    if (np - nt > 0) {
        CHECK_EQ(pack_fields(j, type, f, out, (size_t)(np - nt - 1)), ECG_PROTO_ERR_NO_SPACE);
    }
    /* 2. payload -> wire frame, exact size, guard untouched, one byte short fails cleanly */
    CHECK_EQ(ECG_PROTO_WIRE_LEN((size_t)np), nf);
    CHECK(nf <= (long)ECG_PROTO_MAX_WIRE_LEN);
    memset(out, 0xA5, sizeof out);
    r = ecg_frame_encode(type, seq, payload, (size_t)np, out, (size_t)nf);
    CHECK_EQ(r, nf);
    if (r >= 0) {
        check_bytes(out, (size_t)r, frame, (size_t)nf, "frame encode");
    }
    CHECK(out[nf] == 0xA5);
    memset(out, 0xA5, sizeof out);
    CHECK_EQ(ecg_frame_encode(type, seq, payload, (size_t)np, out, (size_t)nf - 1u),
             ECG_PROTO_ERR_NO_SPACE);
    CHECK(out[0] == 0xA5);
    /* 3. wire -> frame through the streaming decoder, byte by byte */
    CHECK_EQ(ecg_frame_decoder_init(&d, ECG_PROTO_ACCEPT_ANY), ECG_OK);
    for (i = 0; i < nf; ++i) {
        r = ecg_frame_decoder_push_byte(&d, frame[i], &fr);
        if (i < nf - 1) {
            CHECK_EQ(r, 0);
        } else {
            CHECK_EQ(r, 1);
            delivered = r == 1;
        }
    }
    CHECK_EQ(d.stats.frames_ok, 1);
    if (!delivered) {
        return;
    }
    CHECK_EQ(fr.version, ECG_PROTO_VERSION);
    CHECK_EQ(fr.type, type);
    CHECK_EQ(fr.seq, seq);
    check_bytes(fr.payload, fr.payload_len, payload, (size_t)np, "decoded payload");
    /* 4. payload -> fields */
    check_unpacked(j, v, type, f, fr.payload, fr.payload_len);
}

static int32_t unpack_any(uint8_t type, const uint8_t *p, size_t len)
{
    union {
        ecg_proto_configure_t c;
        ecg_proto_time_sync_t t;
        ecg_proto_response_t r;
        ecg_proto_device_info_t i;
        ecg_proto_beat_t b;
        ecg_proto_status_t s;
        ecg_proto_samples_hdr_t h;
        ecg_proto_alerts_pull_t ap;
        uint32_t id;
        ecg_alerts_cfg_t ac;
        ecg_proto_alert_status_t as;
    } m;
    int16_t s[ECG_PROTO_MAX_PAYLOAD];
    switch (type) {
    ECG_FT_UPDATE_CASES: return update_unpack(type, p, len);
    case ECG_FT_CONFIGURE: return ecg_proto_unpack_configure(p, len, &m.c);
    case ECG_FT_TIME_SYNC: return ecg_proto_unpack_time_sync(p, len, &m.t);
    case ECG_FT_RESPONSE: return ecg_proto_unpack_response(p, len, &m.r);
    case ECG_FT_DEVICE_INFO: return ecg_proto_unpack_device_info(p, len, &m.i);
    case ECG_FT_BEAT_EVENT: return ecg_proto_unpack_beat(p, len, &m.b);
    case ECG_FT_STATUS: return ecg_proto_unpack_status(p, len, &m.s);
    case ECG_FT_ALERTS_PULL: return ecg_proto_unpack_alerts_pull(p, len, &m.ap);
    case ECG_FT_ALERTS_ACK: return ecg_proto_unpack_alerts_ack(p, len, &m.id);
    case ECG_FT_ALERTS_CONFIGURE: return ecg_proto_unpack_alerts_cfg(p, len, &m.ac);
    case ECG_FT_ALERT_NOTICE: return ecg_proto_unpack_alert_status(p, len, &m.as);
    case ECG_FT_SAMPLE_BLOCK:
    case ECG_FT_INJECT_SAMPLES: return ecg_proto_unpack_samples(p, len, &m.h, s, sizeof s / 2u);
    default: return -1000;
    }
}

static void run_malformed(const json_t *j, int v)
{
    uint8_t p[BIG];
    long n = json_hex(j, json_get(j, v, "payload_hex"), p, sizeof p);
    CHECK(n >= 0);
    if (n < 0) {
        return;
    }
    CHECK_EQ(unpack_any((uint8_t)FIELD(j, v, "type"), p, (size_t)n), ECG_PROTO_ERR_LENGTH);
}

static void run_seq_gap(const json_t *j, int v)
{
    CHECK_EQ(ecg_proto_seq_gap((uint16_t)FIELD(j, v, "last"), (uint16_t)FIELD(j, v, "seq")),
             FIELD(j, v, "gap"));
}

typedef struct {
    const json_t *j;
    int frames; /* the vector's "frames" array */
    int count;
} stream_ctx_t;

static void on_frame(void *ctx, const ecg_frame_t *fr)
{
    stream_ctx_t *c = (stream_ctx_t *)ctx;
    const json_t *j = c->j;
    int want = json_at(j, c->frames, c->count);
    uint8_t payload[BIG];
    long n;
    c->count++;
    CHECK(want >= 0);
    if (want < 0) {
        return;
    }
    n = json_hex(j, json_get(j, want, "payload_hex"), payload, sizeof payload);
    CHECK_EQ(fr->type, FIELD(j, want, "type"));
    CHECK_EQ(fr->seq, FIELD(j, want, "seq"));
    check_bytes(fr->payload, fr->payload_len, payload, n < 0 ? 0u : (size_t)n, "stream frame");
}

static void run_stream(const json_t *j, int v)
{
    static uint8_t data[STREAM_CAP];
    static const char *const names[] = {"frames_ok",   "crc_errors", "cobs_errors", "truncated",
                                        "oversize",    "bad_version", "unknown_type"};
    long n = json_hex(j, json_get(j, v, "stream_hex"), data, sizeof data);
    int acc = json_get(j, v, "accept");
    int st = json_get(j, v, "stats");
    uint8_t accept = json_eq(j, acc, "to_device")  ? (uint8_t)ECG_PROTO_ACCEPT_TO_DEVICE
                     : json_eq(j, acc, "to_host") ? (uint8_t)ECG_PROTO_ACCEPT_TO_HOST
                                                   : (uint8_t)ECG_PROTO_ACCEPT_ANY;
    ecg_frame_decoder_t d;
    stream_ctx_t ctx;
    size_t got;
    uint32_t counters[7];
    size_t k;

    CHECK(n >= 0);
    if (n < 0) {
        return;
    }
    ctx.j = j;
    ctx.frames = json_get(j, v, "frames");
    ctx.count = 0;
    CHECK_EQ(ecg_frame_decoder_init(&d, accept), ECG_OK);
    got = ecg_frame_decoder_push(&d, data, (size_t)n, on_frame, &ctx);
    CHECK_EQ(got, j->t[ctx.frames].size);
    CHECK_EQ(ctx.count, j->t[ctx.frames].size);
    counters[0] = d.stats.frames_ok;
    counters[1] = d.stats.crc_errors;
    counters[2] = d.stats.cobs_errors;
    counters[3] = d.stats.truncated;
    counters[4] = d.stats.oversize;
    counters[5] = d.stats.bad_version;
    counters[6] = d.stats.unknown_type;
    for (k = 0; k < 7u; ++k) {
        long long want = FIELD(j, st, names[k]);
        if ((long long)counters[k] != want) {
            g_failed++;
            printf("FAIL [%s] stats.%s = %lu, want %lld\n", g_test, names[k],
                   (unsigned long)counters[k], want);
        } else {
            g_passed++;
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* C-only API contracts                                                                       */
/* ------------------------------------------------------------------------------------------ */

static void test_limits(void)
{
    g_test = "limits";
    CHECK_EQ(ECG_PROTO_MAX_SAMPLES(1), 115);
    CHECK_EQ(ECG_PROTO_MAX_SAMPLES(2), 57);
    CHECK_EQ(ECG_PROTO_MAX_SAMPLES(3), 38);
    CHECK_EQ(ECG_PROTO_MAX_SAMPLES(8), 14);
    CHECK_EQ(ECG_PROTO_WIRE_LEN(ECG_PROTO_MAX_PAYLOAD), ECG_PROTO_MAX_WIRE_LEN);
    CHECK_EQ(ECG_PROTO_MAX_FRAME_LEN, ECG_PROTO_MAX_PAYLOAD + ECG_PROTO_OVERHEAD_LEN);
    CHECK_EQ(ECG_COBS_MAX_ENCODED_LEN(ECG_PROTO_MAX_FRAME_LEN), ECG_PROTO_MAX_ENCODED_LEN);
    CHECK_EQ(ecg_crc16_ccitt((const uint8_t *)"123456789", 9), ECG_CRC16_CHECK);
    CHECK_EQ(ecg_proto_rate_hz(0), 125);
    CHECK_EQ(ecg_proto_rate_hz(7), 1000);
    CHECK_EQ(ecg_proto_rate_hz(8), 0);
}

/* An older device's 9-byte BEAT_EVENT (no BEAT_CONFIDENCE) unpacks with confidence 0 (§6.4). */
static void test_beat_without_confidence(void)
{
    static const uint8_t nine[9] = {0x87, 0xd6, 0x12, 0x00, 0x91, 0x01, 0x02, 0x01, 0x01};
    ecg_proto_beat_t m;
    g_test = "beat without confidence";
    memset(&m, 0xAB, sizeof m);
    CHECK_EQ(ecg_proto_unpack_beat(nine, sizeof nine, &m), ECG_OK);
    CHECK_EQ(m.sample_index, 1234567u);
    CHECK_EQ(m.beat_class, 2);
    CHECK_EQ(m.flags, 1);
    CHECK_EQ(m.confidence, 0);
    CHECK_EQ(ecg_proto_unpack_beat(nine, 8u, &m), ECG_PROTO_ERR_LENGTH);
}

static void test_encode_errors(void)
{
    uint8_t payload[ECG_PROTO_MAX_PAYLOAD + 1u];
    uint8_t out[ECG_PROTO_MAX_WIRE_LEN + 16u];
    int16_t s[300];
    ecg_proto_samples_hdr_t h;
    ecg_proto_response_t resp;
    g_test = "encode errors";
    memset(payload, 0x11, sizeof payload);
    memset(s, 0, sizeof s);
    CHECK_EQ(ecg_frame_encode(ECG_FT_STATUS, 0, payload, ECG_PROTO_MAX_PAYLOAD + 1u, out,
                              sizeof out),
             ECG_PROTO_ERR_OVERSIZE);
    CHECK_EQ(ecg_frame_encode(ECG_FT_STATUS, 0, payload, ECG_PROTO_MAX_PAYLOAD, out, sizeof out),
             (int32_t)ECG_PROTO_MAX_WIRE_LEN);
    CHECK_EQ(ecg_frame_encode(ECG_FT_STATUS, 0, NULL, 3, out, sizeof out), ECG_ERR_NULL);
    CHECK_EQ(ecg_frame_encode(ECG_FT_STATUS, 0, NULL, 0, out, sizeof out), 8);
    CHECK_EQ(ecg_frame_encode(ECG_FT_STATUS, 0, payload, 1, NULL, 0), ECG_ERR_NULL);
    CHECK_EQ(ecg_cobs_encode(NULL, 1, out, sizeof out), ECG_ERR_NULL);
    CHECK_EQ(ecg_cobs_encode(payload, 1, out, 0), ECG_PROTO_ERR_NO_SPACE);
    CHECK_EQ(ecg_cobs_decode(NULL, 1, out, sizeof out), ECG_ERR_NULL);
    CHECK_EQ(ecg_cobs_decode(payload, 0, out, 0), 0);

    h.sample_index = 0;
    h.flags = 0;
    h.leads = 1;
    h.n_samples = 116;
    CHECK_EQ(ecg_proto_pack_samples(&h, s, out, sizeof out), ECG_ERR_RANGE);
    h.n_samples = 115;
    CHECK_EQ(ecg_proto_pack_samples(&h, s, out, sizeof out), 236);
    h.leads = 3;
    h.n_samples = 39;
    CHECK_EQ(ecg_proto_pack_samples(&h, s, out, sizeof out), ECG_ERR_RANGE);
    h.leads = 0;
    h.n_samples = 1;
    CHECK_EQ(ecg_proto_pack_samples(&h, s, out, sizeof out), ECG_ERR_RANGE);
    h.leads = 9;
    CHECK_EQ(ecg_proto_pack_samples(&h, s, out, sizeof out), ECG_ERR_RANGE);
    h.leads = 1;
    h.n_samples = 0;
    CHECK_EQ(ecg_proto_pack_samples(&h, s, out, sizeof out), ECG_ERR_RANGE);
    CHECK_EQ(ecg_proto_pack_samples(NULL, s, out, sizeof out), ECG_ERR_NULL);
    CHECK_EQ(ecg_proto_pack_beat(NULL, out, sizeof out), ECG_ERR_NULL);
    CHECK_EQ(ecg_proto_unpack_beat(out, 9, NULL), ECG_ERR_NULL);

    resp.cmd_type = ECG_FT_GET_INFO;
    resp.status = 0;
    resp.body = payload;
    resp.body_len = ECG_PROTO_MAX_PAYLOAD - 1u;
    CHECK_EQ(ecg_proto_pack_response(&resp, out, sizeof out), ECG_PROTO_ERR_OVERSIZE);
    resp.body = NULL;
    resp.body_len = 1;
    CHECK_EQ(ecg_proto_pack_response(&resp, out, sizeof out), ECG_ERR_NULL);

    /* unpack into a too-small sample buffer reports NO_SPACE and writes nothing past cap */
    h.leads = 2;
    h.n_samples = 4;
    CHECK_EQ(ecg_proto_pack_samples(&h, s, payload, sizeof payload), 22);
    s[7] = 0x5A5A;
    CHECK_EQ(ecg_proto_unpack_samples(payload, 22, &h, s, 7), ECG_PROTO_ERR_NO_SPACE);
    CHECK_EQ(s[7], 0x5A5A);
    CHECK_EQ(ecg_proto_unpack_samples(payload, 22, &h, NULL, 0), ECG_OK);
    CHECK_EQ(h.n_samples, 4);
}

static void test_decoder_api(void)
{
    ecg_frame_decoder_t d;
    ecg_frame_t fr;
    uint8_t wire[ECG_PROTO_MAX_WIRE_LEN];
    uint32_t x = 12345u;
    unsigned i;
    int32_t n;
    size_t frames = 0;
    g_test = "decoder api";
    CHECK_EQ(ecg_frame_decoder_init(NULL, ECG_PROTO_ACCEPT_ANY), ECG_ERR_NULL);
    CHECK_EQ(ecg_frame_decoder_init(&d, 0), ECG_ERR_RANGE);
    CHECK_EQ(ecg_frame_decoder_init(&d, 4), ECG_ERR_RANGE);
    CHECK_EQ(ecg_frame_decoder_init(&d, ECG_PROTO_ACCEPT_TO_HOST), ECG_OK);
    CHECK_EQ(ecg_frame_decoder_push_byte(&d, 1, NULL), ECG_ERR_NULL);
    CHECK_EQ(ecg_frame_decoder_push(&d, NULL, 5, NULL, NULL), 0);
    /* 100k bytes of pseudo-random garbage: no crash (ASan watches), counters move, and a good
     * frame after a flush delimiter is still delivered */
    for (i = 0; i < 100000u; ++i) {
        uint8_t b;
        x = x * 1103515245u + 12345u;
        b = (uint8_t)(x >> 24);
        (void)ecg_frame_decoder_push_byte(&d, (x & 0x3000u) == 0u ? 0u : b, &fr);
    }
    CHECK(d.stats.cobs_errors + d.stats.crc_errors + d.stats.truncated + d.stats.oversize > 0u);
    n = ecg_frame_encode(ECG_FT_STATUS, 42, NULL, 0, wire, sizeof wire);
    CHECK_EQ(n, 8);
    (void)ecg_frame_decoder_push_byte(&d, 0, &fr);
    frames = ecg_frame_decoder_push(&d, wire, (size_t)n, NULL, NULL);
    CHECK_EQ(frames, 1);
    /* reset drops a partial frame */
    (void)ecg_frame_decoder_push(&d, wire, 3, NULL, NULL);
    ecg_frame_decoder_reset(&d);
    CHECK_EQ(ecg_frame_decoder_push(&d, wire, (size_t)n, NULL, NULL), 1);
    CHECK(ecg_proto_err_str(ECG_PROTO_ERR_CRC)[0] != '\0');
    CHECK(ecg_proto_err_str(ECG_ERR_RANGE)[0] != '\0');
    CHECK_EQ(ecg_proto_type_known(ECG_FT_SAMPLE_BLOCK, ECG_PROTO_ACCEPT_TO_DEVICE), 0);
    CHECK_EQ(ecg_proto_type_known(ECG_FT_SAMPLE_BLOCK, ECG_PROTO_ACCEPT_TO_HOST), 1);
    CHECK_EQ(ecg_proto_type_known(ECG_FT_RSV_ALERTS_LAST, ECG_PROTO_ACCEPT_ANY), 0);
}

/* ------------------------------------------------------------------------------------------ */

static char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf;
    long sz;
    if (fp == NULL) {
        return NULL;
    }
    if (fseek(fp, 0, SEEK_END) != 0 || (sz = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        fclose(fp);
        return NULL;
    }
    buf = (char *)malloc((size_t)sz + 1u);
    if (buf == NULL || fread(buf, 1, (size_t)sz, fp) != (size_t)sz) {
        free(buf);
        fclose(fp);
        return NULL;
    }
    buf[sz] = '\0';
    *len = (size_t)sz;
    fclose(fp);
    return buf;
}

int main(int argc, char **argv)
{
    size_t len, pos = 0;
    char *text;
    unsigned vectors = 0;
    static char name[128];
    if (argc != 2) {
        fprintf(stderr, "usage: %s tests/vectors/protocol.jsonl\n", argv[0]);
        return 2;
    }
    text = read_file(argv[1], &len);
    if (text == NULL) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 2;
    }
    test_limits();
    test_beat_without_confidence();
    test_encode_errors();
    test_decoder_api();

    while (pos < len) {
        size_t end = pos;
        size_t line_len;
        jtok_t *toks;
        json_t j;
        int kind, nm;
        while (end < len && text[end] != '\n') {
            end++;
        }
        line_len = end - pos;
        if (line_len > 0u) {
            int cap = (int)(line_len / 2u + 16u);
            toks = (jtok_t *)malloc((size_t)cap * sizeof *toks);
            if (toks == NULL) {
                fprintf(stderr, "out of memory\n");
                return 2;
            }
            j.js = text + pos;
            j.t = toks;
            j.n = json_parse(text + pos, line_len, toks, cap);
            g_test = "json";
            CHECK(j.n > 0);
            if (j.n > 0) {
                size_t nl;
                nm = json_get(&j, 0, "name");
                nl = nm >= 0 ? j.t[nm].end - j.t[nm].start : 0u;
                if (nl >= sizeof name) {
                    nl = sizeof name - 1u;
                }
                memcpy(name, j.js + (nm >= 0 ? j.t[nm].start : 0u), nl);
                name[nl] = '\0';
                g_test = name;
                kind = json_get(&j, 0, "kind");
                vectors++;
                if (json_eq(&j, kind, "crc")) {
                    run_crc(&j, 0);
                } else if (json_eq(&j, kind, "cobs")) {
                    run_cobs(&j, 0);
                } else if (json_eq(&j, kind, "cobs_invalid")) {
                    run_cobs_invalid(&j, 0);
                } else if (json_eq(&j, kind, "message")) {
                    run_message(&j, 0);
                } else if (json_eq(&j, kind, "malformed")) {
                    run_malformed(&j, 0);
                } else if (json_eq(&j, kind, "seq_gap")) {
                    run_seq_gap(&j, 0);
                } else if (json_eq(&j, kind, "stream")) {
                    run_stream(&j, 0);
                } else {
                    g_failed++;
                    printf("FAIL [%s] unknown vector kind\n", name);
                }
            }
            free(toks);
        }
        pos = end + 1u;
    }
    free(text);
    g_test = "vectors";
    CHECK(vectors >= 50u); /* the file was read, not silently empty */
    printf("%u vectors; %u passed, %u failed\n", vectors, g_passed, g_failed);
    return g_failed == 0u ? 0 : 1;
}

/*
 * Tests of the device layer (firmware/src/core/ecg_device.c) and the SPSC ring (ecg_rb.c).
 *
 * Usage: test_device            (no arguments; tests/test_device.py builds it with every core
 *                                source under ASan/UBSan and runs it)
 *
 * The device is driven exactly as a port drives it: a fake HAL (clock, sampling, critical section
 * and an optional transport write), bytes in through ecg_device_rx, samples through
 * ecg_device_push_samples, bytes out through ecg_device_tx; what comes out is decoded with the
 * protocol's own host-side decoder. Prints one "ok"/"FAIL" line per test, then
 * "N passed, M failed", and exits 0 only when nothing failed. Plain C99, no framework.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ecg/ecg_device.h"
#include "ecg/ecg_filter.h"
#include "ecg/ecg_protocol.h"
#include "ecg/ecg_qrs.h"
#include "ecg/ecg_rb.h"

/* ------------------------------------------------------------------------------------------ */
/* Assertions                                                                                 */
/* ------------------------------------------------------------------------------------------ */

#include "check.h"

/* ------------------------------------------------------------------------------------------ */
/* Fake HAL                                                                                   */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    uint64_t clock_us;
    int sampling;
    unsigned starts, stops;
    uint16_t rate_hz;
    int depth, max_depth; /* critical-section nesting */
    unsigned enters;
    size_t write_cap;     /* bytes the fake transport takes per write call */
    uint8_t *sink;        /* where hal.write puts them */
    size_t sink_len, sink_cap;
} fake_t;

static uint64_t f_time(void *ctx) { return ((fake_t *)ctx)->clock_us; }
static ecg_err_t f_start(void *ctx)
{
    fake_t *f = (fake_t *)ctx;
    f->sampling = 1;
    f->starts++;
    return ECG_OK;
}
static void f_stop(void *ctx)
{
    fake_t *f = (fake_t *)ctx;
    f->sampling = 0;
    f->stops++;
}
static ecg_err_t f_rate(void *ctx, uint16_t hz)
{
    ((fake_t *)ctx)->rate_hz = hz;
    return ECG_OK;
}
static void f_enter(void *ctx)
{
    fake_t *f = (fake_t *)ctx;
    f->enters++;
    if (++f->depth > f->max_depth) {
        f->max_depth = f->depth;
    }
}
static void f_exit(void *ctx) { ((fake_t *)ctx)->depth--; }
static size_t f_write(void *ctx, const uint8_t *data, size_t len)
{
    fake_t *f = (fake_t *)ctx;
    size_t n = len < f->write_cap ? len : f->write_cap;
    if (n > f->sink_cap - f->sink_len) {
        n = f->sink_cap - f->sink_len;
    }
    memcpy(&f->sink[f->sink_len], data, n);
    f->sink_len += n;
    return n;
}

static void fake_hal(ecg_hal_t *hal, fake_t *f)
{
    memset(f, 0, sizeof *f);
    memset(hal, 0, sizeof *hal);
    hal->ctx = f;
    hal->time_us = f_time;
    hal->sampling_start = f_start;
    hal->sampling_stop = f_stop;
    hal->sampling_set_rate = f_rate;
    hal->critical_enter = f_enter;
    hal->critical_exit = f_exit;
}

/* ------------------------------------------------------------------------------------------ */
/* Host side: send commands, collect what the device sends                                    */
/* ------------------------------------------------------------------------------------------ */

#define MAX_FRAMES 4096

typedef struct {
    uint8_t type;
    uint16_t seq;
    uint16_t len;
    uint8_t payload[ECG_PROTO_MAX_PAYLOAD];
} rx_frame_t;

typedef struct {
    ecg_frame_decoder_t dec;
    rx_frame_t *frames;
    size_t n;
    size_t overflow;
    uint16_t seq; /* host command counter */
} host_t;

static void host_cb(void *ctx, const ecg_frame_t *f)
{
    host_t *h = (host_t *)ctx;
    if (h->n >= MAX_FRAMES) {
        h->overflow++;
        return;
    }
    h->frames[h->n].type = f->type;
    h->frames[h->n].seq = f->seq;
    h->frames[h->n].len = f->payload_len;
    if (f->payload_len) {
        memcpy(h->frames[h->n].payload, f->payload, f->payload_len);
    }
    h->n++;
}

static void host_init(host_t *h)
{
    memset(h, 0, sizeof *h);
    h->frames = (rx_frame_t *)calloc(MAX_FRAMES, sizeof(rx_frame_t));
    ecg_frame_decoder_init(&h->dec, ECG_PROTO_ACCEPT_TO_HOST);
}

static void host_free(host_t *h) { free(h->frames); }

/* Drain the device's queue into the host decoder (in odd-sized pieces). */
static void host_drain(host_t *h, ecg_device_t *dev)
{
    uint8_t buf[97];
    size_t n;
    while ((n = ecg_device_tx(dev, buf, sizeof buf)) > 0u) {
        ecg_frame_decoder_push(&h->dec, buf, n, host_cb, h);
    }
}

static uint16_t host_send(host_t *h, ecg_device_t *dev, uint8_t type, const uint8_t *payload,
                          size_t len)
{
    uint8_t wire[ECG_PROTO_MAX_WIRE_LEN];
    const uint16_t seq = ++h->seq;
    const int32_t n = ecg_frame_encode(type, seq, payload, len, wire, sizeof wire);
    CHECK(n > 0);
    if (n > 0) {
        ecg_device_rx(dev, wire, (size_t)n);
    }
    return seq;
}

/* Index of the RESPONSE to `seq` among the received frames, or -1. */
static long find_response(const host_t *h, uint16_t seq)
{
    size_t i;
    for (i = 0; i < h->n; i++) {
        if (h->frames[i].type == ECG_FT_RESPONSE && h->frames[i].seq == seq) {
            return (long)i;
        }
    }
    return -1;
}

/* Send a command, drain, and return the response status (-128 when there was none). */
static int command(host_t *h, ecg_device_t *dev, uint8_t type, const uint8_t *payload, size_t len,
                   ecg_proto_response_t *resp)
{
    const uint16_t seq = host_send(h, dev, type, payload, len);
    long i;
    ecg_proto_response_t r;
    host_drain(h, dev);
    i = find_response(h, seq);
    if (i < 0) {
        return -128;
    }
    CHECK_EQ(ecg_proto_unpack_response(h->frames[i].payload, h->frames[i].len, &r), ECG_OK);
    CHECK_EQ(r.cmd_type, type);
    if (resp != NULL) {
        *resp = r;
    }
    return r.status;
}

static int configure(host_t *h, ecg_device_t *dev, uint8_t mask, uint16_t rate, uint8_t mains,
                     uint8_t content, uint8_t source)
{
    ecg_proto_configure_t c;
    uint8_t p[ECG_PROTO_CONFIGURE_LEN];
    c.set_mask = mask;
    c.sample_rate_hz = rate;
    c.mains_hz = mains;
    c.content = content;
    c.source = source;
    ecg_proto_pack_configure(&c, p, sizeof p);
    return command(h, dev, ECG_FT_CONFIGURE, p, sizeof p, NULL);
}

/* INJECT_SAMPLES; returns the status and fills `res` (present on success and error). */
static int inject(host_t *h, ecg_device_t *dev, uint32_t index, uint8_t leads,
                  const int16_t *samples, uint16_t n, ecg_proto_inject_result_t *res)
{
    ecg_proto_samples_hdr_t hdr;
    ecg_proto_response_t r;
    uint8_t p[ECG_PROTO_MAX_PAYLOAD];
    int32_t len;
    int st;
    hdr.sample_index = index;
    hdr.leads = leads;
    hdr.flags = 0;
    hdr.n_samples = n;
    len = ecg_proto_pack_samples(&hdr, samples, p, sizeof p);
    CHECK(len > 0);
    st = command(h, dev, ECG_FT_INJECT_SAMPLES, p, (size_t)len, &r);
    CHECK_EQ(r.body_len, ECG_PROTO_INJECT_RESULT_LEN);
    if (res != NULL) {
        CHECK_EQ(ecg_proto_unpack_inject_result(r.body, r.body_len, res), ECG_OK);
    }
    return st;
}

static size_t count_type(const host_t *h, uint8_t type)
{
    size_t i, n = 0;
    for (i = 0; i < h->n; i++) {
        n += h->frames[i].type == type;
    }
    return n;
}

static ecg_device_t *new_device(ecg_device_cfg_t *cfg_out, ecg_hal_t *hal, fake_t *f,
                                uint16_t rate, uint8_t leads, uint8_t source)
{
    ecg_device_cfg_t cfg;
    ecg_device_t *dev = (ecg_device_t *)malloc(sizeof *dev);
    fake_hal(hal, f);
    ecg_device_default_cfg(&cfg);
    cfg.sample_rate_hz = rate;
    cfg.leads = leads;
    cfg.source = source;
    cfg.mains_hz = 60u;
    if (cfg_out != NULL) {
        *cfg_out = cfg;
    }
    CHECK_EQ(ecg_device_init(dev, &cfg, hal), ECG_OK);
    return dev;
}

/* A synthetic ECG in counts (5 µV/count): narrow QRS every 0.7-0.9 s, a T wave, baseline wander
 * and deterministic noise. */
static int16_t synth(uint32_t i, float fs, uint32_t lead)
{
    const float t = (float)i / fs;
    const float rr = 0.8f;
    float beat_t = fmodf(t, rr) - 0.1f * sinf(t * 0.37f);
    float mv = 0.3f * sinf(2.0f * 3.14159265f * 0.25f * t);
    uint32_t r = (i * 1103515245u + 12345u + lead * 7u) >> 16;
    mv += 1.2f * expf(-(beat_t - 0.2f) * (beat_t - 0.2f) / (2.0f * 0.012f * 0.012f));
    mv += 0.25f * expf(-(beat_t - 0.45f) * (beat_t - 0.45f) / (2.0f * 0.04f * 0.04f));
    mv += 0.02f * ((float)(r % 200u) / 100.0f - 1.0f);
    if (lead != 0u) {
        mv = -0.5f * mv;
    }
    return (int16_t)lrintf(mv * 200.0f);
}

/* ------------------------------------------------------------------------------------------ */
/* Ring                                                                                       */
/* ------------------------------------------------------------------------------------------ */

static void test_ring_holds_size_minus_one_and_returns_counts(void)
{
    uint8_t buf[8], out[16];
    const uint8_t data[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    ecg_rb_t rb;
    CHECK_EQ(ecg_rb_init(NULL, buf, sizeof buf), ECG_ERR_NULL);
    CHECK_EQ(ecg_rb_init(&rb, NULL, sizeof buf), ECG_ERR_NULL);
    CHECK_EQ(ecg_rb_init(&rb, buf, 1), ECG_ERR_RANGE);
    CHECK_EQ(ecg_rb_init(&rb, buf, sizeof buf), ECG_OK);
    CHECK_EQ(ecg_rb_capacity(&rb), 7);
    CHECK_EQ(ecg_rb_free_bytes(&rb), 7);
    CHECK_EQ(ecg_rb_used_bytes(&rb), 0);
    CHECK_EQ(ecg_rb_write(&rb, data, 10), 7); /* only what fits */
    CHECK_EQ(ecg_rb_free_bytes(&rb), 0);
    CHECK_EQ(ecg_rb_write(&rb, data, 1), 0);
    CHECK_EQ(ecg_rb_peek(&rb, 2, out, 3), 3);
    CHECK(out[0] == 3 && out[2] == 5);
    CHECK_EQ(ecg_rb_peek(&rb, 7, out, 3), 0);
    CHECK_EQ(ecg_rb_read(&rb, out, 5), 5);
    CHECK(memcmp(out, data, 5) == 0);
    CHECK_EQ(ecg_rb_write(&rb, data, 4), 4); /* wraps */
    CHECK_EQ(ecg_rb_used_bytes(&rb), 6);
    CHECK_EQ(ecg_rb_read(&rb, out, 16), 6);
    CHECK(out[0] == 6 && out[1] == 7 && out[2] == 1 && out[5] == 4);
    CHECK_EQ(ecg_rb_read(&rb, out, 1), 0);
    CHECK_EQ(ecg_rb_read(&rb, NULL, 1), 0);
    ecg_rb_write(&rb, data, 3);
    CHECK_EQ(ecg_rb_read(&rb, NULL, 2), 2); /* dropping */
    ecg_rb_reset(&rb);
    CHECK_EQ(ecg_rb_used_bytes(&rb), 0);
}

static void test_ring_random_traffic_keeps_byte_order_and_linear_blocks_cover_the_data(void)
{
    uint8_t buf[37], tmp[64];
    ecg_rb_t rb;
    uint32_t lcg = 1u;
    uint8_t next_w = 0, next_r = 0;
    unsigned step, errors = 0;
    ecg_rb_init(&rb, buf, sizeof buf);
    for (step = 0; step < 20000u; step++) {
        size_t want, n, i, len;
        lcg = lcg * 1664525u + 1013904223u;
        want = (lcg >> 24) % 40u;
        switch ((lcg >> 8) % 4u) {
        case 0: /* write */
            for (i = 0; i < want; i++) {
                tmp[i] = (uint8_t)(next_w + i);
            }
            n = ecg_rb_write(&rb, tmp, want);
            errors += n > want || (n < want && ecg_rb_free_bytes(&rb) != 0u); /* short: full */
            next_w = (uint8_t)(next_w + n);
            break;
        case 1: /* zero-copy write */ {
            uint8_t *p = ecg_rb_write_block(&rb, &len);
            n = len < want ? len : want;
            for (i = 0; i < n; i++) {
                p[i] = (uint8_t)(next_w + i);
            }
            errors += ecg_rb_advance(&rb, n) != n;
            next_w = (uint8_t)(next_w + n);
            break;
        }
        case 2: /* read */
            n = ecg_rb_read(&rb, tmp, want);
            for (i = 0; i < n; i++) {
                errors += tmp[i] != (uint8_t)(next_r + i);
            }
            next_r = (uint8_t)(next_r + n);
            break;
        default: /* zero-copy read */ {
            const uint8_t *p = ecg_rb_read_block(&rb, &len);
            n = len < want ? len : want;
            for (i = 0; i < n; i++) {
                errors += p[i] != (uint8_t)(next_r + i);
            }
            errors += ecg_rb_skip(&rb, n) != n;
            next_r = (uint8_t)(next_r + n);
            break;
        }
        }
        errors += ecg_rb_used_bytes(&rb) + ecg_rb_free_bytes(&rb) != ecg_rb_capacity(&rb);
        errors += (uint8_t)(next_w - next_r) != (uint8_t)ecg_rb_used_bytes(&rb);
    }
    CHECK_EQ(errors, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Device: init, info, commands                                                               */
/* ------------------------------------------------------------------------------------------ */

static void test_device_init_rejects_bad_configuration(void)
{
    ecg_device_t *dev = (ecg_device_t *)malloc(sizeof *dev);
    ecg_device_cfg_t cfg, bad;
    ecg_hal_t hal;
    fake_t f;
    fake_hal(&hal, &f);
    ecg_device_default_cfg(&cfg);
    CHECK_EQ(ecg_device_init(NULL, &cfg, &hal), ECG_ERR_NULL);
    CHECK_EQ(ecg_device_init(dev, NULL, &hal), ECG_ERR_NULL);
    CHECK_EQ(ecg_device_init(dev, &cfg, NULL), ECG_ERR_NULL);
    bad = cfg; bad.leads = 0; CHECK_EQ(ecg_device_init(dev, &bad, &hal), ECG_ERR_RANGE);
    bad = cfg; bad.leads = 9; CHECK_EQ(ecg_device_init(dev, &bad, &hal), ECG_ERR_RANGE);
    bad = cfg; bad.leads = 2; bad.qrs_lead = 2;
    CHECK_EQ(ecg_device_init(dev, &bad, &hal), ECG_ERR_CONFIG);
    bad = cfg; bad.gain_uv_per_count = 0.0f; CHECK_EQ(ecg_device_init(dev, &bad, &hal), ECG_ERR_RANGE);
    bad = cfg; bad.gain_uv_per_count = NAN; CHECK_EQ(ecg_device_init(dev, &bad, &hal), ECG_ERR_RANGE);
    bad = cfg; bad.sample_rate_hz = 100; CHECK_EQ(ecg_device_init(dev, &bad, &hal), ECG_ERR_RANGE);
    bad = cfg; bad.sample_rate_hz = 1001; CHECK_EQ(ecg_device_init(dev, &bad, &hal), ECG_ERR_RANGE);
    bad = cfg; bad.mains_hz = 55; CHECK_EQ(ecg_device_init(dev, &bad, &hal), ECG_ERR_RANGE);
    bad = cfg; bad.content = 3; CHECK_EQ(ecg_device_init(dev, &bad, &hal), ECG_ERR_RANGE);
    bad = cfg; bad.source = 2; CHECK_EQ(ecg_device_init(dev, &bad, &hal), ECG_ERR_RANGE);
    bad = cfg; bad.rates_mask = 0x100; CHECK_EQ(ecg_device_init(dev, &bad, &hal), ECG_ERR_RANGE);
    bad = cfg; bad.leads = 2; bad.block_samples = 58;
    CHECK_EQ(ecg_device_init(dev, &bad, &hal), ECG_ERR_CONFIG);
    bad = cfg; bad.sample_rate_hz = 300; /* not a table rate: allowed, rates_mask stays empty */
    CHECK_EQ(ecg_device_init(dev, &bad, &hal), ECG_OK);
    CHECK_EQ(f.rate_hz, 300);
    free(dev);
}

static void test_boot_device_info_has_seq_0_and_the_configuration(void)
{
    ecg_device_cfg_t cfg;
    ecg_hal_t hal;
    fake_t f;
    host_t h;
    ecg_proto_device_info_t info;
    ecg_device_t *dev = new_device(&cfg, &hal, &f, 360, 2, ECG_SOURCE_FRONT_END);
    host_init(&h);
    host_drain(&h, dev);
    CHECK_EQ(h.n, 1);
    CHECK_EQ(h.frames[0].type, ECG_FT_DEVICE_INFO);
    CHECK_EQ(h.frames[0].seq, 0);
    CHECK_EQ(h.frames[0].len, ECG_PROTO_DEVICE_INFO_LEN);
    CHECK_EQ(ecg_proto_unpack_device_info(h.frames[0].payload, h.frames[0].len, &info), ECG_OK);
    CHECK_EQ(info.protocol_version, 1);
    CHECK_EQ(info.leads, 2);
    CHECK_EQ(info.sample_rate_hz, 360);
    CHECK_EQ(info.rates_mask, 1u << 4); /* 360 Hz is bit 4 */
    CHECK(info.gain_uv_per_count == 5.0f);
    CHECK_EQ(info.mains_hz, 60);
    CHECK((info.capabilities & (ECG_CAP_STREAM_RAW | ECG_CAP_BEATS | ECG_CAP_INJECT)) ==
          (ECG_CAP_STREAM_RAW | ECG_CAP_BEATS | ECG_CAP_INJECT));
    CHECK((info.capabilities & (ECG_CAP_RATE_CONFIG | ECG_CAP_LEAD_OFF)) == 0);
    CHECK((info.capabilities & (ECG_CAP_CLASSIFIER | ECG_CAP_BEAT_CONFIDENCE)) ==
          (ECG_CAP_CLASSIFIER | ECG_CAP_BEAT_CONFIDENCE));
    CHECK_EQ(f.rate_hz, 360);
    host_free(&h);
    free(dev);
}

static void test_get_info_and_time_sync_round_trip(void)
{
    ecg_hal_t hal;
    fake_t f;
    host_t h;
    ecg_proto_response_t r;
    ecg_proto_device_info_t info;
    ecg_proto_time_sync_t ts;
    ecg_proto_time_sync_result_t res;
    uint8_t p[ECG_PROTO_TIME_SYNC_LEN];
    ecg_device_stats_t st;
    ecg_device_t *dev = new_device(NULL, &hal, &f, 250, 1, ECG_SOURCE_FRONT_END);
    host_init(&h);
    CHECK_EQ(command(&h, dev, ECG_FT_GET_INFO, NULL, 0, &r), ECG_OK);
    CHECK_EQ(ecg_proto_unpack_device_info(r.body, r.body_len, &info), ECG_OK);
    CHECK_EQ(info.sample_rate_hz, 250);
    /* empty commands accept and ignore payload bytes */
    CHECK_EQ(command(&h, dev, ECG_FT_GET_INFO, p, 3, NULL), ECG_OK);

    f.clock_us = 123456789012ull;
    ts.host_time_us = 0x1122334455667788ull;
    ecg_proto_pack_time_sync(&ts, p, sizeof p);
    CHECK_EQ(command(&h, dev, ECG_FT_TIME_SYNC, p, sizeof p, &r), ECG_OK);
    CHECK_EQ(ecg_proto_unpack_time_sync_result(r.body, r.body_len, &res), ECG_OK);
    CHECK(res.host_time_us == ts.host_time_us);
    CHECK(res.device_time_us == 123456789012ull);
    CHECK_EQ(res.sample_index, 0);
    CHECK_EQ(command(&h, dev, ECG_FT_TIME_SYNC, p, 7, NULL), ECG_PROTO_ERR_LENGTH);
    ecg_device_get_stats(dev, &st);
    CHECK_EQ(st.cmd_ok, 3);
    CHECK_EQ(st.cmd_errors, 1);
    CHECK_EQ(st.rx.frames_ok, 4);
    host_free(&h);
    free(dev);
}

static void test_configure_validates_everything_before_applying_anything(void)
{
    ecg_hal_t hal;
    fake_t f;
    host_t h;
    ecg_proto_device_info_t info;
    ecg_device_cfg_t cfg;
    ecg_device_t *dev = (ecg_device_t *)malloc(sizeof *dev);
    uint8_t p[ECG_PROTO_CONFIGURE_LEN] = {0};
    fake_hal(&hal, &f);
    ecg_device_default_cfg(&cfg);
    cfg.sample_rate_hz = 250;
    cfg.rates_mask = (1u << 2) | (1u << 4); /* 250 and 360 */
    CHECK_EQ(ecg_device_init(dev, &cfg, &hal), ECG_OK);
    host_init(&h);
    CHECK_EQ(command(&h, dev, ECG_FT_CONFIGURE, p, 5, NULL), ECG_PROTO_ERR_LENGTH);
    CHECK_EQ(configure(&h, dev, 0x10, 0, 0, 0, 0), ECG_ERR_UNSUPPORTED); /* reserved bit */
    CHECK_EQ(configure(&h, dev, ECG_CFG_SET_RATE, 300, 0, 0, 0), ECG_ERR_RANGE);
    CHECK_EQ(configure(&h, dev, ECG_CFG_SET_RATE, 500, 0, 0, 0), ECG_ERR_UNSUPPORTED);
    CHECK_EQ(configure(&h, dev, ECG_CFG_SET_MAINS, 0, 55, 0, 0), ECG_ERR_RANGE);
    CHECK_EQ(configure(&h, dev, ECG_CFG_SET_SOURCE, 0, 0, 0, 2), ECG_ERR_RANGE);
    /* a valid mains with an invalid content: refused whole */
    CHECK_EQ(configure(&h, dev, ECG_CFG_SET_MAINS | ECG_CFG_SET_CONTENT, 0, 60, 3, 0),
             ECG_ERR_RANGE);
    ecg_device_get_info(dev, &info);
    CHECK_EQ(info.mains_hz, 50);
    CHECK(info.capabilities & ECG_CAP_RATE_CONFIG);
    CHECK_EQ(configure(&h, dev, ECG_CFG_SET_RATE | ECG_CFG_SET_MAINS | ECG_CFG_SET_CONTENT, 360, 0,
                       ECG_CONTENT_FILTERED, 0),
             ECG_OK);
    ecg_device_get_info(dev, &info);
    CHECK_EQ(info.sample_rate_hz, 360);
    CHECK_EQ(info.mains_hz, 0);
    CHECK_EQ(info.content, ECG_CONTENT_FILTERED);
    CHECK_EQ(f.rate_hz, 360);
    /* while streaming: rate and source changes are refused, the rest is allowed */
    CHECK_EQ(command(&h, dev, ECG_FT_START_STREAM, NULL, 0, NULL), ECG_OK);
    CHECK_EQ(command(&h, dev, ECG_FT_START_STREAM, NULL, 0, NULL), ECG_ERR_STATE);
    CHECK_EQ(configure(&h, dev, ECG_CFG_SET_RATE, 250, 0, 0, 0), ECG_ERR_STATE);
    CHECK_EQ(configure(&h, dev, ECG_CFG_SET_RATE, 360, 0, 0, 0), ECG_OK); /* no change */
    CHECK_EQ(configure(&h, dev, ECG_CFG_SET_SOURCE, 0, 0, 0, 1), ECG_ERR_STATE);
    CHECK_EQ(configure(&h, dev, ECG_CFG_SET_MAINS, 0, 50, 0, 0), ECG_OK);
    CHECK_EQ(command(&h, dev, ECG_FT_STOP_STREAM, NULL, 0, NULL), ECG_OK);
    CHECK_EQ(command(&h, dev, ECG_FT_STOP_STREAM, NULL, 0, NULL), ECG_OK); /* idempotent */
    CHECK_EQ(f.starts, 1);
    CHECK_EQ(f.stops, 1);
    CHECK_EQ(f.depth, 0);
    host_free(&h);
    free(dev);
}

static void test_unknown_bad_truncated_and_oversized_frames_are_counted_and_dropped(void)
{
    ecg_hal_t hal;
    fake_t f;
    host_t h;
    ecg_device_stats_t st;
    uint8_t wire[ECG_PROTO_MAX_WIRE_LEN], junk[600];
    int32_t n;
    size_t i;
    ecg_device_t *dev = new_device(NULL, &hal, &f, 250, 1, ECG_SOURCE_FRONT_END);
    host_init(&h);
    host_drain(&h, dev);
    /* unknown (reserved) and device->host types */
    n = ecg_frame_encode(ECG_FT_RSV_ALERTS_CMD_LAST, 1, NULL, 0, wire, sizeof wire);
    ecg_device_rx(dev, wire, (size_t)n);
    n = ecg_frame_encode(ECG_FT_SAMPLE_BLOCK, 2, NULL, 0, wire, sizeof wire);
    ecg_device_rx(dev, wire, (size_t)n);
    /* bad CRC */
    n = ecg_frame_encode(ECG_FT_GET_INFO, 3, NULL, 0, wire, sizeof wire);
    wire[2] ^= 0x40;
    ecg_device_rx(dev, wire, (size_t)n);
    /* bad version: patch the raw frame and re-encode */
    {
        uint8_t raw[8] = {2, ECG_FT_GET_INFO, 4, 0, 0, 0};
        uint16_t crc = ecg_crc16_ccitt(raw, 4);
        raw[4] = (uint8_t)(crc & 0xFF);
        raw[5] = (uint8_t)(crc >> 8);
        n = ecg_cobs_encode(raw, 6, wire, sizeof wire);
        wire[n] = 0;
        ecg_device_rx(dev, wire, (size_t)n + 1u);
    }
    /* truncated (valid COBS of 3 bytes), a cut frame (COBS code past the end) */
    {
        const uint8_t t[] = {0x04, 0x01, 0x01, 0x05, 0x00, 0x05, 0x01, 0x00};
        ecg_device_rx(dev, t, sizeof t);
    }
    /* oversize: 600 non-zero bytes, then a delimiter */
    for (i = 0; i < sizeof junk; i++) {
        junk[i] = (uint8_t)(1u + i % 255u);
    }
    ecg_device_rx(dev, junk, sizeof junk);
    ecg_device_rx(dev, (const uint8_t *)"\0", 1);
    /* a command with a payload too short for its type gets LENGTH */
    CHECK_EQ(command(&h, dev, ECG_FT_CONFIGURE, junk, 2, NULL), ECG_PROTO_ERR_LENGTH);
    /* and the device still answers */
    CHECK_EQ(command(&h, dev, ECG_FT_GET_INFO, NULL, 0, NULL), ECG_OK);
    ecg_device_get_stats(dev, &st);
    CHECK_EQ(st.rx.unknown_type, 2);
    CHECK_EQ(st.rx.crc_errors, 1);
    CHECK_EQ(st.rx.bad_version, 1);
    CHECK_EQ(st.rx.truncated, 1);
    CHECK_EQ(st.rx.cobs_errors, 1);
    CHECK_EQ(st.rx.oversize, 1);
    CHECK_EQ(st.rx.frames_ok, 2);
    CHECK_EQ(count_type(&h, ECG_FT_RESPONSE), 2); /* no answer to any dropped frame */
    /* STATUS reports the receiver counters */
    f.clock_us += 1000000u;
    ecg_device_poll(dev);
    host_drain(&h, dev);
    CHECK_EQ(count_type(&h, ECG_FT_STATUS), 1);
    for (i = 0; i < h.n; i++) {
        ecg_proto_status_t s;
        if (h.frames[i].type == ECG_FT_STATUS &&
            ecg_proto_unpack_status(h.frames[i].payload, h.frames[i].len, &s) == ECG_OK) {
            CHECK_EQ(s.rx_unknown_type, 2);
            CHECK_EQ(s.rx_oversize, 1);
            CHECK_EQ(s.rx_crc_errors, 1);
            CHECK_EQ(s.battery_pct, ECG_BATTERY_UNKNOWN);
            CHECK_EQ(s.flags, 0);
        }
    }
    /* random garbage never crashes and never yields answers to nothing */
    {
        uint32_t lcg = 7u;
        size_t before = count_type(&h, ECG_FT_RESPONSE);
        for (i = 0; i < 20000u; i++) {
            uint8_t b;
            lcg = lcg * 1664525u + 1013904223u;
            b = (uint8_t)(lcg >> 24);
            ecg_device_rx(dev, &b, 1);
        }
        ecg_device_poll(dev);
        host_drain(&h, dev);
        CHECK(count_type(&h, ECG_FT_RESPONSE) >= before);
    }
    host_free(&h);
    free(dev);
}

/* ------------------------------------------------------------------------------------------ */
/* Device: streaming                                                                          */
/* ------------------------------------------------------------------------------------------ */

static void test_sample_blocks_carry_contiguous_indices_sequence_numbers_and_the_samples(void)
{
    ecg_hal_t hal;
    fake_t f;
    host_t h;
    static int16_t in[3000 * 2];
    size_t i, pushed = 0, got = 0, blocks = 0;
    const size_t chunks[] = {7, 113, 250, 1, 64, 300, 57, 500};
    uint32_t next_index = 0;
    uint16_t next_seq = 0;
    long stop;
    ecg_device_t *dev = new_device(NULL, &hal, &f, 360, 2, ECG_SOURCE_FRONT_END);
    host_init(&h);
    for (i = 0; i < 3000u; i++) {
        in[2 * i] = synth((uint32_t)i, 360.0f, 0);
        in[2 * i + 1] = synth((uint32_t)i, 360.0f, 1);
    }
    CHECK_EQ(ecg_device_push_samples(dev, in, 10), 0); /* not streaming: ignored */
    CHECK_EQ(command(&h, dev, ECG_FT_START_STREAM, NULL, 0, NULL), ECG_OK);
    CHECK_EQ(f.sampling, 1);
    for (i = 0; pushed < 3000u; i++) {
        size_t n = chunks[i % (sizeof chunks / sizeof chunks[0])];
        if (n > 3000u - pushed) {
            n = 3000u - pushed;
        }
        CHECK_EQ(ecg_device_push_samples(dev, &in[2 * pushed], n), n);
        pushed += n;
        f.clock_us += 1000000u;
        ecg_device_poll(dev);
        host_drain(&h, dev);
    }
    stop = (long)host_send(&h, dev, ECG_FT_STOP_STREAM, NULL, 0);
    host_drain(&h, dev);
    CHECK_EQ(f.sampling, 0);
    for (i = 0; i < h.n; i++) {
        ecg_proto_samples_hdr_t hdr;
        int16_t s[ECG_PROTO_MAX_SAMPLES(1)];
        if (h.frames[i].type != ECG_FT_SAMPLE_BLOCK) {
            continue;
        }
        CHECK(find_response(&h, (uint16_t)stop) > (long)i); /* the STOP answer comes last */
        CHECK_EQ(ecg_proto_unpack_samples(h.frames[i].payload, h.frames[i].len, &hdr, s, 115),
                 ECG_OK);
        CHECK_EQ(h.frames[i].seq, next_seq);
        CHECK_EQ(hdr.sample_index, next_index);
        CHECK_EQ(hdr.leads, 2);
        CHECK_EQ(hdr.flags, 0);
        CHECK(hdr.n_samples == 57 || got + hdr.n_samples == 3000u);
        CHECK(memcmp(s, &in[2 * got], (size_t)hdr.n_samples * 4u) == 0);
        next_seq++;
        next_index += hdr.n_samples;
        got += hdr.n_samples;
        blocks++;
    }
    CHECK_EQ(got, 3000);
    CHECK_EQ(blocks, (3000 + 56) / 57);
    CHECK(count_type(&h, ECG_FT_BEAT_EVENT) >= 6);
    /* STATUS every second of device time, with its own sequence */
    CHECK(count_type(&h, ECG_FT_STATUS) >= 10);
    CHECK_EQ(f.depth, 0);
    CHECK(f.enters > 0);
    host_free(&h);
    free(dev);
}

static void test_filtered_content_and_beats_only(void)
{
    ecg_hal_t hal;
    fake_t f;
    host_t h;
    static int16_t in[2000];
    ecg_filter_t ref;
    ecg_filter_cfg_t fc;
    size_t i, got = 0, max_err = 0;
    ecg_device_t *dev = new_device(NULL, &hal, &f, 250, 1, ECG_SOURCE_FRONT_END);
    host_init(&h);
    for (i = 0; i < 2000u; i++) {
        in[i] = synth((uint32_t)i, 250.0f, 0);
    }
    ecg_filter_default_cfg(&fc, 250.0f);
    fc.mains_hz = 60;
    ecg_filter_init(&ref, &fc);
    CHECK_EQ(configure(&h, dev, ECG_CFG_SET_CONTENT, 0, 0, ECG_CONTENT_FILTERED, 0), ECG_OK);
    CHECK_EQ(command(&h, dev, ECG_FT_START_STREAM, NULL, 0, NULL), ECG_OK);
    ecg_device_push_samples(dev, in, 1000);
    ecg_device_poll(dev);
    host_drain(&h, dev);
    for (i = 0; i < h.n; i++) {
        ecg_proto_samples_hdr_t hdr;
        int16_t s[115];
        size_t k;
        if (h.frames[i].type != ECG_FT_SAMPLE_BLOCK) {
            continue;
        }
        ecg_proto_unpack_samples(h.frames[i].payload, h.frames[i].len, &hdr, s, 115);
        CHECK_EQ(hdr.flags & ECG_SAMPLES_FLAG_CONTENT_MASK, ECG_CONTENT_FILTERED);
        for (k = 0; k < hdr.n_samples; k++) {
            const float y = ecg_filter_step(&ref, (float)in[got + k] * (5.0f / 1000.0f));
            const long want = lrintf(y * 200.0f);
            const size_t err = (size_t)labs(want - (long)s[k]);
            max_err = err > max_err ? err : max_err;
        }
        got += hdr.n_samples;
    }
    CHECK_EQ(got, 920); /* 8 full blocks of 115; the rest waits in the partial block */
    CHECK(max_err <= 1u);
    /* beats only: no more sample blocks, the counter keeps running */
    CHECK_EQ(configure(&h, dev, ECG_CFG_SET_CONTENT, 0, 0, ECG_CONTENT_BEATS_ONLY, 0), ECG_OK);
    host_drain(&h, dev); /* the partial filtered block was flushed by the switch */
    h.n = 0;
    ecg_device_push_samples(dev, &in[1000], 1000);
    ecg_device_poll(dev);
    host_drain(&h, dev);
    CHECK_EQ(count_type(&h, ECG_FT_SAMPLE_BLOCK), 0);
    CHECK(count_type(&h, ECG_FT_BEAT_EVENT) >= 4);
    host_free(&h);
    free(dev);
}

static void test_a_full_queue_drops_whole_frames_counted_and_visible_as_sequence_gaps(void)
{
    enum { STALLED = 20000, AFTER = 1150 };
    ecg_hal_t hal;
    fake_t f;
    host_t h;
    static int16_t in[STALLED + AFTER];
    ecg_device_stats_t st;
    size_t i, got = 0, gaps = 0, missing = 0, blocks = 0;
    int have_last = 0;
    uint16_t last_seq = 0;
    uint32_t next_index = 0;
    ecg_device_t *dev = new_device(NULL, &hal, &f, 250, 1, ECG_SOURCE_FRONT_END);
    host_init(&h);
    for (i = 0; i < (size_t)(STALLED + AFTER); i++) {
        in[i] = synth((uint32_t)i, 250.0f, 0);
    }
    CHECK_EQ(command(&h, dev, ECG_FT_START_STREAM, NULL, 0, NULL), ECG_OK);
    /* the link stalls: nothing is drained while 20000 samples arrive */
    for (i = 0; i < (size_t)STALLED; i += 500u) {
        CHECK_EQ(ecg_device_push_samples(dev, &in[i], 500), 500);
        ecg_device_poll(dev);
    }
    ecg_device_get_stats(dev, &st);
    CHECK(st.frames_dropped > 0);
    CHECK(st.samples_dropped > 0);
    CHECK_EQ(st.input_overruns, 0);
    CHECK(ecg_device_tx_pending(dev) <= ECG_DEVICE_TX_BYTES);
    CHECK(st.tx_high_water > ECG_DEVICE_TX_BYTES - ECG_PROTO_MAX_WIRE_LEN);
    /* the link recovers: the next blocks show the loss as a sequence and index gap */
    host_drain(&h, dev);
    CHECK_EQ(ecg_device_push_samples(dev, &in[STALLED], AFTER / 2), AFTER / 2);
    ecg_device_poll(dev);
    CHECK_EQ(ecg_device_push_samples(dev, &in[STALLED + AFTER / 2], AFTER / 2), AFTER / 2);
    ecg_device_poll(dev);
    host_drain(&h, dev);
    ecg_device_get_stats(dev, &st);
    for (i = 0; i < h.n; i++) {
        ecg_proto_samples_hdr_t hdr;
        int16_t s[115];
        if (h.frames[i].type != ECG_FT_SAMPLE_BLOCK) {
            continue;
        }
        ecg_proto_unpack_samples(h.frames[i].payload, h.frames[i].len, &hdr, s, 115);
        if (have_last) {
            const int32_t gap = ecg_proto_seq_gap(last_seq, h.frames[i].seq);
            CHECK(gap >= 0);
            gaps += (size_t)gap;
        }
        missing += hdr.sample_index - next_index;
        CHECK(memcmp(s, &in[hdr.sample_index], hdr.n_samples * 2u) == 0);
        next_index = hdr.sample_index + hdr.n_samples;
        last_seq = h.frames[i].seq;
        have_last = 1;
        got += hdr.n_samples;
        blocks++;
    }
    /* every dropped block is a gap in the sequence and in the sample indices */
    CHECK_EQ(got + st.samples_dropped + (STALLED + AFTER) % 115, STALLED + AFTER);
    CHECK_EQ(gaps * 115u, st.samples_dropped);
    CHECK_EQ(missing, st.samples_dropped);
    CHECK_EQ(blocks + gaps, st.seq_samples);
    CHECK_EQ(st.input_overruns, 0);
    /* an input overrun (the ring is full because poll did not run) is counted too */
    CHECK_EQ(ecg_device_push_samples(dev, in, 1500), ECG_DEVICE_IN_BYTES / 2);
    ecg_device_get_stats(dev, &st);
    CHECK_EQ(st.input_overruns, 1500 - ECG_DEVICE_IN_BYTES / 2);
    host_free(&h);
    free(dev);
}

static void test_injection_flow_control_and_errors(void)
{
    ecg_hal_t hal;
    fake_t f;
    host_t h;
    ecg_proto_inject_result_t res;
    static int16_t in[4000];
    ecg_device_stats_t st;
    uint32_t next = 0;
    size_t i;
    uint16_t free0;
    ecg_device_t *dev = new_device(NULL, &hal, &f, 360, 1, ECG_SOURCE_FRONT_END);
    host_init(&h);
    for (i = 0; i < 4000u; i++) {
        in[i] = synth((uint32_t)i, 360.0f, 0);
    }
    CHECK_EQ(inject(&h, dev, 0, 1, in, 100, &res), ECG_ERR_STATE); /* source is the front end */
    CHECK_EQ(configure(&h, dev, ECG_CFG_SET_SOURCE, 0, 0, 0, ECG_SOURCE_INJECT), ECG_OK);
    CHECK_EQ(inject(&h, dev, 0, 1, in, 100, &res), ECG_ERR_STATE); /* not streaming */
    CHECK_EQ(command(&h, dev, ECG_FT_START_STREAM, NULL, 0, NULL), ECG_OK);
    CHECK_EQ(f.starts, 0); /* the front end stays off while injecting */
    CHECK_EQ(ecg_device_push_samples(dev, in, 5), 0);
    CHECK_EQ(inject(&h, dev, 0, 2, in, 50, &res), ECG_ERR_CONFIG);
    CHECK_EQ(inject(&h, dev, 7, 1, in, 100, &res), ECG_PROTO_ERR_SEQUENCE);
    CHECK_EQ(res.next_index, 0);
    free0 = res.free_samples;
    CHECK_EQ(free0, ECG_DEVICE_IN_BYTES / 2);
    {
        const uint8_t bad[9] = {0, 0, 0, 0, 1, 0, 1, 2, 3}; /* odd sample bytes */
        ecg_proto_response_t r;
        CHECK_EQ(command(&h, dev, ECG_FT_INJECT_SAMPLES, bad, sizeof bad, &r), ECG_PROTO_ERR_LENGTH);
        CHECK_EQ(r.body_len, ECG_PROTO_INJECT_RESULT_LEN);
    }
    /* fill the input ring without polling: free_samples falls, then BUSY takes nothing */
    for (;;) {
        const int st2 = inject(&h, dev, next, 1, &in[next], 115, &res);
        if (st2 != ECG_OK) {
            CHECK_EQ(st2, ECG_PROTO_ERR_BUSY);
            CHECK_EQ(res.next_index, next);
            CHECK(res.free_samples < 115);
            break;
        }
        next += 115u;
        CHECK_EQ(res.next_index, next);
        CHECK_EQ(res.free_samples, free0 - next);
    }
    CHECK_EQ(next, (free0 / 115u) * 115u);
    /* the device processes them; the room comes back */
    ecg_device_poll(dev);
    host_drain(&h, dev);
    CHECK_EQ(inject(&h, dev, next, 1, &in[next], 115, &res), ECG_OK);
    CHECK(res.free_samples >= free0 - 115u);
    ecg_device_get_stats(dev, &st);
    CHECK_EQ(st.samples_ignored, 5);
    CHECK_EQ(st.samples_dropped, 0);
    host_free(&h);
    free(dev);
}

/* The detector run directly, the way ecgedge.core.QrsDetector runs it (64-sample filter blocks). */
static size_t reference_beats(const int16_t *counts, size_t n, float fs, uint8_t mains,
                              uint32_t *out, size_t cap)
{
    static ecg_filter_t filt;
    static ecg_qrs_t qrs;
    ecg_filter_cfg_t fc;
    ecg_qrs_cfg_t qc;
    ecg_qrs_beat_t beat;
    float x[64];
    size_t i, k, nb = 0;
    const float mv_per_count = 5.0f / 1000.0f;
    ecg_filter_default_cfg(&fc, fs);
    fc.mains_hz = mains;
    ecg_filter_init(&filt, &fc);
    ecg_qrs_default_cfg(&qc, fs);
    qc.filter_delay_samples = ecg_filter_delay_samples(&filt);
    ecg_qrs_init(&qrs, &qc);
    for (i = 0; i < n; i += 64u) {
        const size_t len = n - i < 64u ? n - i : 64u;
        for (k = 0; k < len; k++) {
            x[k] = (float)counts[i + k] * mv_per_count;
        }
        ecg_filter_process(&filt, x, x, len);
        for (k = 0; k < len; k++) {
            if (ecg_qrs_step(&qrs, x[k], &beat) && nb < cap) {
                out[nb++] = (uint32_t)beat.index;
            }
        }
    }
    while (ecg_qrs_flush(&qrs, &beat) && nb < cap) {
        out[nb++] = (uint32_t)beat.index;
    }
    return nb;
}

static void test_beats_from_injected_samples_equal_the_detector_run_directly(void)
{
    enum { N = 360 * 90, MAXB = 400 };
    ecg_hal_t hal;
    fake_t f;
    host_t h;
    static int16_t in[N];
    static uint32_t want[MAXB], got[MAXB];
    ecg_proto_inject_result_t res;
    size_t nwant, ngot = 0, i;
    uint32_t sent = 0, limit = 0;
    uint16_t stop_seq;
    long stop_at;
    ecg_device_t *dev = new_device(NULL, &hal, &f, 360, 1, ECG_SOURCE_INJECT);
    host_init(&h);
    for (i = 0; i < (size_t)N; i++) {
        in[i] = synth((uint32_t)i, 360.0f, 0);
    }
    nwant = reference_beats(in, N, 360.0f, 60u, want, MAXB);
    CHECK(nwant > 100u);
    CHECK_EQ(command(&h, dev, ECG_FT_START_STREAM, NULL, 0, NULL), ECG_OK);
    /* block sizes vary; the host keeps below next_index + free_samples */
    while (sent < (uint32_t)N) {
        uint16_t n = (uint16_t)(1u + (sent * 7u) % 115u);
        if (n > (uint32_t)N - sent) {
            n = (uint16_t)((uint32_t)N - sent);
        }
        if (sent != 0u && sent + n > limit) {
            ecg_device_poll(dev);
            host_drain(&h, dev);
            limit = sent + (uint32_t)ecg_device_in_free(dev);
            continue;
        }
        CHECK_EQ(inject(&h, dev, sent, 1, &in[sent], n, &res), ECG_OK);
        sent += n;
        limit = res.next_index + res.free_samples;
        if (h.n > MAX_FRAMES - 64) { /* keep only beats */
            size_t j, k = 0;
            for (j = 0; j < h.n; j++) {
                if (h.frames[j].type == ECG_FT_BEAT_EVENT) {
                    h.frames[k++] = h.frames[j];
                }
            }
            h.n = k;
        }
    }
    stop_seq = host_send(&h, dev, ECG_FT_STOP_STREAM, NULL, 0);
    for (i = 0; i < 100u && find_response(&h, stop_seq) < 0; i++) {
        ecg_device_poll(dev);
        host_drain(&h, dev);
    }
    stop_at = find_response(&h, stop_seq);
    CHECK(stop_at >= 0);
    for (i = 0; i < h.n; i++) {
        ecg_proto_beat_t b;
        if (h.frames[i].type == ECG_FT_BEAT_EVENT && ngot < MAXB) {
            CHECK((long)i < stop_at); /* every beat before the STOP answer */
            ecg_proto_unpack_beat(h.frames[i].payload, h.frames[i].len, &b);
            CHECK(b.beat_class <= ECG_BEAT_CLASS_Q); /* classified, with a confidence (§6.4) */
            CHECK(b.confidence >= 128u);
            CHECK_EQ(h.frames[i].len, ECG_PROTO_BEAT_LEN);
            got[ngot++] = b.sample_index;
        }
    }
    CHECK_EQ(ngot, nwant);
    CHECK(memcmp(got, want, nwant * sizeof want[0]) == 0);
    CHECK_EQ(h.overflow, 0);
    host_free(&h);
    free(dev);
}

static void test_stop_waits_for_queue_room_then_answers_after_the_last_beats(void)
{
    enum { N = 8000 };
    ecg_hal_t hal;
    fake_t f;
    host_t h;
    static int16_t in[N];
    ecg_proto_inject_result_t res;
    uint16_t stop_seq;
    size_t i;
    uint32_t next = 0;
    ecg_device_t *dev = new_device(NULL, &hal, &f, 360, 1, ECG_SOURCE_INJECT);
    host_init(&h);
    for (i = 0; i < (size_t)N; i++) {
        in[i] = synth((uint32_t)i, 360.0f, 0);
    }
    CHECK_EQ(command(&h, dev, ECG_FT_START_STREAM, NULL, 0, NULL), ECG_OK);
    /* the host stops reading: the queue fills with blocks, injected samples wait in the input
     * ring (the host sends while the device has room; it cannot read the answers) */
    while (next + 115u <= (uint32_t)N && ecg_device_in_free(dev) >= 115u) {
        ecg_proto_samples_hdr_t hdr;
        uint8_t p[ECG_PROTO_MAX_PAYLOAD];
        int32_t len;
        hdr.sample_index = next;
        hdr.leads = 1;
        hdr.flags = 0;
        hdr.n_samples = 115;
        len = ecg_proto_pack_samples(&hdr, &in[next], p, sizeof p);
        host_send(&h, dev, ECG_FT_INJECT_SAMPLES, p, (size_t)len);
        ecg_device_poll(dev);
        next += 115u;
    }
    CHECK(next + 115u <= (uint32_t)N); /* stopped by the full ring, not by running out */
    CHECK(ecg_device_tx_free(dev) < ECG_DEVICE_TX_RESERVE + ECG_DEVICE_TX_BATCH_ROOM);
    stop_seq = host_send(&h, dev, ECG_FT_STOP_STREAM, NULL, 0);
    ecg_device_poll(dev);
    CHECK(ecg_device_streaming(dev)); /* deferred: samples still wait */
    CHECK_EQ(inject(&h, dev, next, 1, in, 10, &res), ECG_ERR_STATE); /* no injection while stopping */
    for (i = 0; i < 50u && find_response(&h, stop_seq) < 0; i++) {
        host_drain(&h, dev);
        ecg_device_poll(dev);
    }
    host_drain(&h, dev);
    CHECK(find_response(&h, stop_seq) >= 0);
    CHECK(!ecg_device_streaming(dev));
    {
        ecg_device_stats_t st;
        size_t samples = 0;
        ecg_device_get_stats(dev, &st);
        CHECK_EQ(st.frames_dropped, 0);
        CHECK_EQ(st.samples_in, next);
        for (i = 0; i < h.n; i++) {
            if (h.frames[i].type == ECG_FT_SAMPLE_BLOCK) {
                samples += (h.frames[i].len - 6u) / 2u;
            }
        }
        CHECK_EQ(samples, next); /* nothing lost */
    }
    host_free(&h);
    free(dev);
}

/* ------------------------------------------------------------------------------------------ */
/* Device: transport helpers                                                                  */
/* ------------------------------------------------------------------------------------------ */

static void test_tx_frame_hal_write_and_link_up_down(void)
{
    ecg_hal_t hal;
    fake_t f;
    host_t h;
    uint8_t buf[ECG_PROTO_MAX_WIRE_LEN], sink[8192];
    size_t n, frames = 0;
    ecg_device_stats_t st;
    ecg_device_t *dev = new_device(NULL, &hal, &f, 250, 1, ECG_SOURCE_FRONT_END);
    host_init(&h);
    /* whole frames, one at a time, each ending with its delimiter */
    host_send(&h, dev, ECG_FT_GET_INFO, NULL, 0);
    host_send(&h, dev, ECG_FT_GET_INFO, NULL, 0);
    while ((n = ecg_device_tx_frame(dev, buf, sizeof buf)) > 0u) {
        CHECK_EQ(buf[n - 1u], 0);
        CHECK(memchr(buf, 0, n - 1u) == NULL);
        frames++;
    }
    CHECK_EQ(frames, 3); /* boot DEVICE_INFO and two responses */
    CHECK_EQ(ecg_device_tx_frame(dev, buf, 5), 0);

    /* link down: queued frames are discarded and counted; up: 0x00 and DEVICE_INFO seq 1 */
    host_send(&h, dev, ECG_FT_GET_INFO, NULL, 0);
    ecg_device_link(dev, 0);
    ecg_device_get_stats(dev, &st);
    CHECK_EQ(st.frames_dropped, 1);
    CHECK_EQ(ecg_device_tx_pending(dev), 0);
    f.clock_us += 5000000u;
    ecg_device_poll(dev);
    CHECK_EQ(ecg_device_tx_pending(dev), 0); /* no STATUS while the link is down */
    ecg_device_link(dev, 1);
    n = ecg_device_tx(dev, buf, sizeof buf);
    CHECK(n == ECG_PROTO_WIRE_LEN(ECG_PROTO_DEVICE_INFO_LEN) + 1u);
    CHECK_EQ(buf[0], 0);
    h.n = 0;
    ecg_frame_decoder_push(&h.dec, buf, n, host_cb, &h);
    CHECK_EQ(h.n, 1);
    CHECK_EQ(h.frames[0].type, ECG_FT_DEVICE_INFO);
    CHECK_EQ(h.frames[0].seq, 1);

    /* with a HAL write, poll drains the queue itself, as much as the transport takes */
    hal.write = f_write;
    f.write_cap = 10;
    f.sink = sink;
    f.sink_cap = sizeof sink;
    host_send(&h, dev, ECG_FT_GET_INFO, NULL, 0);
    ecg_device_poll(dev);
    CHECK_EQ(f.sink_len, 10);
    f.write_cap = sizeof sink;
    ecg_device_poll(dev);
    CHECK_EQ(f.sink_len, ECG_PROTO_WIRE_LEN(2u + ECG_PROTO_DEVICE_INFO_LEN));
    CHECK_EQ(ecg_device_tx_pending(dev), 0);
    host_free(&h);
    free(dev);
}

static void test_disconnect_stop_ends_the_stream_without_a_response(void)
{
    ecg_hal_t hal;
    fake_t f;
    host_t h;
    static int16_t in[500];
    size_t i;
    ecg_device_stats_t st;
    ecg_device_t *dev = new_device(NULL, &hal, &f, 250, 1, ECG_SOURCE_FRONT_END);
    host_init(&h);
    for (i = 0; i < 500u; i++) {
        in[i] = synth((uint32_t)i, 250.0f, 0);
    }
    CHECK_EQ(command(&h, dev, ECG_FT_START_STREAM, NULL, 0, NULL), ECG_OK);
    ecg_device_push_samples(dev, in, 500);
    h.n = 0;
    ecg_device_stop(dev);
    host_drain(&h, dev);
    CHECK(!ecg_device_streaming(dev));
    CHECK_EQ(f.sampling, 0);
    CHECK_EQ(count_type(&h, ECG_FT_RESPONSE), 0);
    ecg_device_get_stats(dev, &st);
    CHECK_EQ(st.samples_in, 500);
    CHECK_EQ(ecg_device_push_samples(dev, in, 10), 0);
    CHECK_EQ(command(&h, dev, ECG_FT_START_STREAM, NULL, 0, NULL), ECG_OK); /* restartable */
    host_free(&h);
    free(dev);
}

int main(void)
{
    RUN(test_ring_holds_size_minus_one_and_returns_counts);
    RUN(test_ring_random_traffic_keeps_byte_order_and_linear_blocks_cover_the_data);
    RUN(test_device_init_rejects_bad_configuration);
    RUN(test_boot_device_info_has_seq_0_and_the_configuration);
    RUN(test_get_info_and_time_sync_round_trip);
    RUN(test_configure_validates_everything_before_applying_anything);
    RUN(test_unknown_bad_truncated_and_oversized_frames_are_counted_and_dropped);
    RUN(test_sample_blocks_carry_contiguous_indices_sequence_numbers_and_the_samples);
    RUN(test_filtered_content_and_beats_only);
    RUN(test_a_full_queue_drops_whole_frames_counted_and_visible_as_sequence_gaps);
    RUN(test_injection_flow_control_and_errors);
    RUN(test_beats_from_injected_samples_equal_the_detector_run_directly);
    RUN(test_stop_waits_for_queue_room_then_answers_after_the_last_beats);
    RUN(test_tx_frame_hal_write_and_link_up_down);
    RUN(test_disconnect_stop_ends_the_stream_without_a_response);
    printf("sizeof(ecg_device_t) = %zu\n", sizeof(ecg_device_t));
    printf("%u passed, %u failed\n", g_passed, g_failed);
    return g_failed == 0u ? 0 : 1;
}

/*
 * Tests of ecg_beatfeat (firmware/src/core/ecg_beatfeat.c) in C, under ASan/UBSan: the stream
 * mechanics at every supported rate (interpolated windows included), which the bit-exactness
 * tests (tests/test_beatfeat.py, against ecgedge.beats) check for values through the Python
 * extension, without sanitizers.
 *
 * Usage: test_beatfeat   (tests/test_beatfeat.py builds it with every core source and runs it)
 * Prints one "ok"/"FAIL" line per test, then "N passed, M failed"; exits 0 only when nothing
 * failed. Plain C99, no framework.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ecg/ecg_beatfeat.h"

#include "check.h"

#define N_SAMPLES 12000u
static float g_y[N_SAMPLES];
static ecg_beatfeat_t g_bf;

/* A spiky synthetic ECG: a 1 mV spike every `period` samples over small noise (LCG). */
static void make_signal(uint32_t period)
{
    uint32_t i, s = 12345u;
    for (i = 0; i < N_SAMPLES; i++) {
        s = s * 1664525u + 1013904223u;
        g_y[i] = (float)((int32_t)(s >> 16) % 200 - 100) * 0.0005f + (i % period == 0u ? 1.0f : 0.0f);
    }
}

static ecg_qrs_beat_t beat_at(uint64_t index)
{
    ecg_qrs_beat_t b;
    memset(&b, 0, sizeof b);
    b.index = index;
    return b;
}

/* Stream the signal in `block`-sample pushes, each beat added `lag` samples after its peak;
 * returns the beats that came out, checks order, and fills `late`. */
static uint32_t run_stream(float fs, uint32_t period, uint32_t block, uint32_t lag, uint32_t *late)
{
    ecg_beatfeat_cfg_t cfg;
    ecg_beatfeat_beat_t out;
    uint64_t next_r = period, last_out = 0u;
    uint32_t i, n_out = 0u;
    ecg_beatfeat_default_cfg(&cfg, fs, 4.0f);
    CHECK_EQ(ecg_beatfeat_init(&g_bf, &cfg), ECG_OK);
    *late = 0u;
    for (i = 0; i < N_SAMPLES; i += block) {
        const uint32_t len = N_SAMPLES - i < block ? N_SAMPLES - i : block;
        ecg_beatfeat_push(&g_bf, &g_y[i], len);
        while (next_r + lag < i + len && next_r < N_SAMPLES) {
            const ecg_qrs_beat_t b = beat_at(next_r);
            CHECK_EQ(ecg_beatfeat_add_beat(&g_bf, &b), ECG_OK);
            next_r += period;
        }
        while (ecg_beatfeat_next(&g_bf, &out)) {
            CHECK(n_out == 0u || out.beat.index > last_out);
            CHECK(out.scale_mv >= 0.05f);
            last_out = out.beat.index;
            *late += out.late;
            n_out++;
        }
    }
    while (next_r < N_SAMPLES) {
        const ecg_qrs_beat_t b = beat_at(next_r);
        CHECK_EQ(ecg_beatfeat_add_beat(&g_bf, &b), ECG_OK);
        next_r += period;
        while (ecg_beatfeat_next(&g_bf, &out)) {
            *late += out.late;
            n_out++;
        }
    }
    ecg_beatfeat_finish(&g_bf);
    while (ecg_beatfeat_next(&g_bf, &out)) {
        *late += out.late;
        n_out++;
    }
    CHECK_EQ(ecg_beatfeat_pending(&g_bf), 0);
    return n_out;
}

static void test_every_beat_comes_out_once_in_order_at_every_rate(void)
{
    static const float rates[] = {125.0f, 250.0f, 256.0f, 360.0f, 500.0f, 1000.0f};
    size_t r;
    for (r = 0; r < sizeof rates / sizeof rates[0]; r++) {
        const uint32_t period = (uint32_t)(rates[r] * 0.8f); /* 75 bpm */
        uint32_t late, n;
        ecg_beatfeat_stats_t st;
        make_signal(period);
        n = run_stream(rates[r], period, 32u, (uint32_t)(rates[r] * 0.3f), &late);
        CHECK_EQ(n, (N_SAMPLES - 1u) / period);
        CHECK_EQ(late, 0);
        ecg_beatfeat_get_stats(&g_bf, &st);
        CHECK_EQ(st.beats_in, n);
        CHECK_EQ(st.beats_out, n);
    }
}

static void test_a_beat_reported_too_late_is_flagged(void)
{
    uint32_t late;
    make_signal(400u);
    /* 1200 samples of report latency at 360 Hz: the window's start has left the 1024-sample ring */
    (void)run_stream(360.0f, 400u, 32u, 1200u, &late);
    CHECK(late > 0u);
    CHECK_EQ(g_bf.stats.late, late);
}

static void test_refused_beats_change_nothing(void)
{
    ecg_beatfeat_cfg_t cfg;
    ecg_qrs_beat_t b = beat_at(500u);
    uint32_t k;
    ecg_beatfeat_default_cfg(&cfg, 360.0f, 4.2f);
    CHECK_EQ(ecg_beatfeat_init(&g_bf, &cfg), ECG_OK);
    CHECK_EQ(ecg_beatfeat_add_beat(&g_bf, &b), ECG_OK);
    CHECK_EQ(ecg_beatfeat_add_beat(&g_bf, &b), ECG_ERR_STATE); /* not after the previous one */
    for (k = 1; k < ECG_BEATFEAT_QUEUE; k++) { /* no samples: nothing is captured */
        b = beat_at(500u + 100u * k);
        CHECK_EQ(ecg_beatfeat_add_beat(&g_bf, &b), ECG_OK);
    }
    b = beat_at(5000u);
    CHECK_EQ(ecg_beatfeat_add_beat(&g_bf, &b), ECG_ERR_STATE); /* queue full */
    CHECK_EQ(ecg_beatfeat_pending(&g_bf), ECG_BEATFEAT_QUEUE);
    CHECK_EQ(ecg_beatfeat_add_beat(NULL, &b), ECG_ERR_NULL);
    ecg_beatfeat_reset(&g_bf);
    CHECK_EQ(ecg_beatfeat_pending(&g_bf), 0);
    CHECK_EQ(ecg_beatfeat_add_beat(&g_bf, &b), ECG_OK);
}

static void test_configuration_out_of_range_is_refused(void)
{
    ecg_beatfeat_cfg_t cfg;
    ecg_beatfeat_default_cfg(&cfg, 360.0f, 4.2f);
    cfg.fs_hz = 124.0f;
    CHECK_EQ(ecg_beatfeat_init(&g_bf, &cfg), ECG_ERR_RANGE);
    ecg_beatfeat_default_cfg(&cfg, 360.0f, 4.2f);
    cfg.window_scale = 0.0f;
    CHECK_EQ(ecg_beatfeat_init(&g_bf, &cfg), ECG_ERR_RANGE);
    ecg_beatfeat_default_cfg(&cfg, 360.0f, 4.2f);
    cfg.rr_zero_point = 128;
    CHECK_EQ(ecg_beatfeat_init(&g_bf, &cfg), ECG_ERR_RANGE);
    CHECK_EQ(ecg_beatfeat_init(NULL, &cfg), ECG_ERR_NULL);
}

int main(void)
{
    RUN(test_every_beat_comes_out_once_in_order_at_every_rate);
    RUN(test_a_beat_reported_too_late_is_flagged);
    RUN(test_refused_beats_change_nothing);
    RUN(test_configuration_out_of_range_is_refused);
    printf("sizeof(ecg_beatfeat_t) = %u\n", (unsigned)sizeof(ecg_beatfeat_t));
    printf("%u passed, %u failed\n", g_passed, g_failed);
    return g_failed == 0u ? 0 : 1;
}

/*
 * Unit tests of the portable C core (firmware/src/core), built with the host compiler.
 *
 * Plain C99, no framework: each test is a void function; CHECK* macros record failures and the
 * runner prints one line per test and a closing "N passed, M failed". Exit status 0 only when
 * every test passed. Built and run under ASan/UBSan by tests/test_c_core.py (or `make -C tests/c`).
 *
 * Expected values come from definitions (bilinear-transform Butterworth/notch properties, the
 * documented configuration ranges in the headers, pulse positions of a synthetic signal), never
 * from the implementation.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ecg/ecg_biquad.h"
#include "ecg/ecg_filter.h"
#include "ecg/ecg_qrs.h"
#include "ecg/ecg_types.h"

/* ------------------------------------------------------------------ tiny test harness */

static const char *g_test = "";
static int g_test_failures;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            printf("  %s:%d: %s: CHECK(%s) failed\n", __FILE__, __LINE__, g_test, #cond); \
            g_test_failures++;                                                         \
        }                                                                              \
    } while (0)

#define CHECK_ERR(expr, expected)                                                          \
    do {                                                                                   \
        const int got_ = (int)(expr);                                                      \
        if (got_ != (int)(expected)) {                                                     \
            printf("  %s:%d: %s: %s returned %d (%s), expected %d (%s)\n", __FILE__, __LINE__, \
                   g_test, #expr, got_, ecg_err_str((ecg_err_t)got_), (int)(expected),      \
                   ecg_err_str((ecg_err_t)(expected)));                                    \
            g_test_failures++;                                                             \
        }                                                                                  \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                 \
    do {                                                                                      \
        const double a_ = (double)(a), b_ = (double)(b), t_ = (double)(tol);                  \
        if (!(fabs(a_ - b_) <= t_)) {                                                         \
            printf("  %s:%d: %s: %s = %.9g, expected %.9g +- %.3g\n", __FILE__, __LINE__, g_test, \
                   #a, a_, b_, t_);                                                           \
            g_test_failures++;                                                                \
        }                                                                                     \
    } while (0)

/* Report a failure with a formatted context message (the condition is the caller's). */
#define FAIL_MSG(...)                                          \
    do {                                                       \
        printf("  %s:%d: %s: ", __FILE__, __LINE__, g_test);   \
        printf(__VA_ARGS__);                                   \
        printf("\n");                                          \
        g_test_failures++;                                     \
    } while (0)

static int g_passed, g_failed;

static void run(const char *name, void (*fn)(void))
{
    g_test = name;
    g_test_failures = 0;
    fn();
    if (g_test_failures == 0) {
        g_passed++;
        printf("ok   %s\n", name);
    } else {
        g_failed++;
        printf("FAIL %s (%d failed checks)\n", name, g_test_failures);
    }
}

#define RUN(fn) run(#fn, fn)

/* ------------------------------------------------------------------ helpers */

static const float RATES[] = {125.0f, 250.0f, 360.0f, 500.0f, 1000.0f};
#define N_RATES (sizeof RATES / sizeof RATES[0])
#define PI_D 3.14159265358979323846

/* |H(e^{jw})| of one stage {b0, b1, b2, a1, a2} (denominator 1 + a1 z^-1 + a2 z^-2), in double. */
static double stage_gain(const float *c, double f_hz, double fs_hz)
{
    const double w = 2.0 * PI_D * f_hz / fs_hz;
    const double nr = c[0] + c[1] * cos(w) + c[2] * cos(2.0 * w);
    const double ni = -(c[1] * sin(w) + c[2] * sin(2.0 * w));
    const double dr = 1.0 + c[3] * cos(w) + c[4] * cos(2.0 * w);
    const double di = -(c[3] * sin(w) + c[4] * sin(2.0 * w));
    return sqrt((nr * nr + ni * ni) / (dr * dr + di * di));
}

/* Poles strictly inside the unit circle (stability triangle of 1 + a1 z^-1 + a2 z^-2). */
static int stage_is_stable(const float *c)
{
    return fabsf(c[4]) < 1.0f && fabsf(c[3]) < 1.0f + c[4];
}

/* Deterministic noise: 32-bit LCG (Numerical Recipes constants), uniform in [-0.5, 0.5). */
static float lcg_uniform(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) * (1.0f / 16777216.0f) - 0.5f;
}

/* RMS gain of the conditioning filter for a sinusoid at f_hz: settle 6 s, measure over 4 s. */
static double filter_sine_gain(ecg_filter_t *f, float fs, float f_hz)
{
    const uint32_t settle = (uint32_t)(6.0f * fs), total = (uint32_t)(10.0f * fs);
    double sx = 0.0, sy = 0.0;
    uint32_t i;
    ecg_filter_reset(f);
    for (i = 0; i < total; i++) {
        const float x = (float)sin(2.0 * PI_D * f_hz * i / fs);
        const float y = ecg_filter_step(f, x);
        if (i >= settle) {
            sx += (double)x * x;
            sy += (double)y * y;
        }
    }
    return sqrt(sy / sx);
}

/* ------------------------------------------------------------------ error strings */

static void test_err_str_is_non_empty_and_distinct_for_every_code(void)
{
    const ecg_err_t codes[] = {ECG_OK, ECG_ERR_NULL, ECG_ERR_RANGE, ECG_ERR_CONFIG,
                               ECG_ERR_UNSUPPORTED, ECG_ERR_STATE};
    const size_t n = sizeof codes / sizeof codes[0];
    size_t i, j;
    for (i = 0; i < n; i++) {
        const char *s = ecg_err_str(codes[i]);
        CHECK(s != NULL && s[0] != '\0');
        for (j = 0; j < i; j++) {
            const char *t = ecg_err_str(codes[j]);
            if (s != NULL && t != NULL && strcmp(s, t) == 0) {
                FAIL_MSG("codes %d and %d share the message \"%s\"", (int)codes[i],
                         (int)codes[j], s);
            }
        }
    }
    /* Unknown codes still get a usable string. */
    CHECK(ecg_err_str((ecg_err_t)-99) != NULL && ecg_err_str((ecg_err_t)-99)[0] != '\0');
    CHECK(ecg_err_str((ecg_err_t)7) != NULL && ecg_err_str((ecg_err_t)7)[0] != '\0');
}

/* ------------------------------------------------------------------ biquad */

static void test_biquad_init_rejects_null_pointers_and_zero_stages(void)
{
    ecg_biquad_t s;
    float c[5] = {1.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    float st[ECG_BIQUAD_STATE_LEN(1)];
    CHECK_ERR(ecg_biquad_init(NULL, 1, c, st), ECG_ERR_NULL);
    CHECK_ERR(ecg_biquad_init(&s, 1, NULL, st), ECG_ERR_NULL);
    CHECK_ERR(ecg_biquad_init(&s, 1, c, NULL), ECG_ERR_NULL);
    CHECK_ERR(ecg_biquad_init(&s, 0, c, st), ECG_ERR_RANGE);
    CHECK_ERR(ecg_biquad_init(&s, 1, c, st), ECG_OK);
    c[0] = 0.0f; /* the normalised numerator needs b0 != 0 */
    CHECK_ERR(ecg_biquad_init(&s, 1, c, st), ECG_ERR_RANGE);
}

static void test_lowpass_design_has_unit_dc_gain_minus_3db_at_cutoff_and_zero_at_nyquist(void)
{
    size_t r;
    for (r = 0; r < N_RATES; r++) {
        const float fs = RATES[r];
        float c[5];
        ecg_biquad_design_lowpass(c, fs, 40.0f, 0.70710678f);
        CHECK_NEAR(stage_gain(c, 0.0, fs), 1.0, 1e-4);
        /* Butterworth (Q = 1/sqrt 2) with pre-warping: exactly -3 dB at the design frequency. */
        CHECK_NEAR(stage_gain(c, 40.0, fs), 1.0 / sqrt(2.0), 1e-3);
        CHECK(stage_gain(c, fs / 2.0, fs) < 1e-4);
        CHECK(stage_is_stable(c));
    }
}

static void test_highpass_design_blocks_dc_and_passes_nyquist(void)
{
    size_t r;
    for (r = 0; r < N_RATES; r++) {
        const float fs = RATES[r];
        float c[5];
        ecg_biquad_design_highpass(c, fs, 0.5f, 0.70710678f);
        /* b0 + b1 + b2 is the numerator at z = 1; it must vanish. */
        CHECK(fabs((double)c[0] + c[1] + c[2]) < 1e-7);
        CHECK_NEAR(stage_gain(c, fs / 2.0, fs), 1.0, 1e-4);
        CHECK_NEAR(stage_gain(c, 0.5, fs), 1.0 / sqrt(2.0), 2e-3);
        CHECK(stage_is_stable(c));
    }
}

static void test_notch_design_nulls_f0_and_passes_dc_and_nyquist(void)
{
    const float mains[] = {50.0f, 60.0f};
    size_t r, m;
    for (r = 0; r < N_RATES; r++) {
        for (m = 0; m < 2; m++) {
            const float fs = RATES[r];
            float c[5];
            if (mains[m] >= fs / 2.0f) {
                continue;
            }
            ecg_biquad_design_notch(c, fs, mains[m], 10.0f);
            if (!(stage_gain(c, mains[m], fs) < 1e-3)) { /* at least 60 dB deep */
                FAIL_MSG("fs %g, notch %g Hz: gain at f0 = %g", fs, (double)mains[m],
                         stage_gain(c, mains[m], fs));
            }
            CHECK_NEAR(stage_gain(c, 0.0, fs), 1.0, 1e-4);
            CHECK_NEAR(stage_gain(c, fs / 2.0, fs), 1.0, 1e-4);
            CHECK(stage_is_stable(c));
        }
    }
}

/* The documented lowest high-pass cut-off at rate fs (ecg_filter.h). */
static float min_highpass_hz(float fs)
{
    const float by_rate = ECG_FILTER_MIN_HIGHPASS_FRACTION_OF_FS * fs;
    return by_rate > ECG_FILTER_MIN_HIGHPASS_HZ ? by_rate : ECG_FILTER_MIN_HIGHPASS_HZ;
}

static void test_every_documented_extreme_design_is_stable_at_every_rate(void)
{
    /* Range ends of ecg_filter.h: high-pass max(0.05 Hz, fs/5000)..5 Hz (Butterworth Q), notch
     * Q 1..100 at 50 and 60 Hz, low-pass 15 Hz..min(150 Hz, 0.4 fs) as either 4th-order
     * Butterworth section. The slowest high-pass at the highest rate puts its poles closest to
     * z = 1. */
    const float nq[] = {1.0f, 100.0f}, mains[] = {50.0f, 60.0f};
    const float lq[] = {0.54119610f, 1.30656296f};
    size_t r, i, j;
    for (r = 0; r < N_RATES; r++) {
        const float fs = RATES[r];
        const float hp[] = {min_highpass_hz(fs), 5.0f};
        const float lp[] = {15.0f, 150.0f > 0.4f * fs ? 0.4f * fs : 150.0f};
        float c[5];
        for (i = 0; i < 2; i++) {
            ecg_biquad_design_highpass(c, fs, hp[i], 0.70710678f);
            if (!stage_is_stable(c)) {
                FAIL_MSG("fs %g: high-pass %g Hz is unstable (a1 = %.9g, a2 = %.9g)", fs,
                         (double)hp[i], c[3], c[4]);
            }
            for (j = 0; j < 2; j++) {
                ecg_biquad_design_notch(c, fs, mains[j], nq[i]);
                if (!stage_is_stable(c)) {
                    FAIL_MSG("fs %g: notch %g Hz Q %g is unstable", fs, (double)mains[j],
                             (double)nq[i]);
                }
                ecg_biquad_design_lowpass(c, fs, lp[i], lq[j]);
                if (!stage_is_stable(c)) {
                    FAIL_MSG("fs %g: low-pass %g Hz Q %g is unstable", fs, (double)lp[i],
                             (double)lq[j]);
                }
            }
        }
    }
}

static void test_group_delay_of_pure_and_symmetric_fir_stages(void)
{
    /* z^-1 delays by 1 sample, z^-2 by 2, and the symmetric FIR 1 + 2 z^-1 + z^-2 by 1 at every
     * frequency below Nyquist (linear phase). */
    const float d1[5] = {0.0f, 1.0f, 0.0f, 0.0f, 0.0f};
    const float d2[5] = {0.0f, 0.0f, 1.0f, 0.0f, 0.0f};
    const float sym[5] = {0.25f, 0.5f, 0.25f, 0.0f, 0.0f};
    CHECK_NEAR(ecg_biquad_group_delay_samples(d1, 360.0f, 10.0f), 1.0, 1e-3);
    CHECK_NEAR(ecg_biquad_group_delay_samples(d2, 360.0f, 10.0f), 2.0, 1e-3);
    CHECK_NEAR(ecg_biquad_group_delay_samples(sym, 250.0f, 10.0f), 1.0, 1e-3);
    CHECK_NEAR(ecg_biquad_group_delay_samples(sym, 250.0f, 100.0f), 1.0, 1e-3);
}

static void test_biquad_block_processing_in_place_equals_per_sample_steps(void)
{
    float c[10], st_a[ECG_BIQUAD_STATE_LEN(2)], st_b[ECG_BIQUAD_STATE_LEN(2)], x[257], y[257];
    ecg_biquad_t a, b;
    uint32_t seed = 12345u, i;
    ecg_biquad_design_highpass(&c[0], 360.0f, 0.5f, 0.70710678f);
    ecg_biquad_design_lowpass(&c[5], 360.0f, 40.0f, 0.70710678f);
    CHECK_ERR(ecg_biquad_init(&a, 2, c, st_a), ECG_OK);
    CHECK_ERR(ecg_biquad_init(&b, 2, c, st_b), ECG_OK);
    for (i = 0; i < 257; i++) {
        x[i] = lcg_uniform(&seed);
        y[i] = ecg_biquad_step(&a, x[i]);
    }
    ecg_biquad_process(&b, x, x, 257); /* src and dst alias */
    CHECK(memcmp(x, y, sizeof x) == 0);
}

static void test_biquad_leaves_memory_around_its_caller_owned_arrays_untouched(void)
{
    /* Canaries before and after the coefficient and state arrays of a 3-stage cascade. */
    enum { STATE_LEN = ECG_BIQUAD_STATE_LEN(3) };
    float cbuf[4 + 15 + 4], sbuf[4 + STATE_LEN + 4];
    ecg_biquad_t s;
    uint32_t i;
    const float guard = -12345.678f;
    for (i = 0; i < 4; i++) {
        cbuf[i] = cbuf[4 + 15 + i] = guard;
        sbuf[i] = sbuf[4 + STATE_LEN + i] = guard;
    }
    for (i = 0; i < 3; i++) {
        ecg_biquad_design_lowpass(&cbuf[4 + 5 * i], 500.0f, 40.0f, 0.70710678f);
    }
    CHECK_ERR(ecg_biquad_init(&s, 3, &cbuf[4], &sbuf[4]), ECG_OK);
    for (i = 0; i < 1000; i++) {
        (void)ecg_biquad_step(&s, (float)(i % 7));
    }
    ecg_biquad_reset(&s);
    for (i = 0; i < 4; i++) {
        CHECK(cbuf[i] == guard && cbuf[4 + 15 + i] == guard);
        CHECK(sbuf[i] == guard && sbuf[4 + STATE_LEN + i] == guard);
    }
}

/* ------------------------------------------------------------------ filter */

static void test_filter_init_rejects_null_cfg_and_null_state(void)
{
    ecg_filter_t f;
    ecg_filter_cfg_t cfg;
    ecg_filter_default_cfg(&cfg, 360.0f);
    CHECK_ERR(ecg_filter_init(&f, NULL), ECG_ERR_NULL);
    CHECK_ERR(ecg_filter_init(NULL, &cfg), ECG_ERR_NULL);
    CHECK_ERR(ecg_filter_init(NULL, NULL), ECG_ERR_NULL);
    ecg_filter_default_cfg(NULL, 360.0f); /* must not crash */
    CHECK_ERR(ecg_filter_init(&f, &cfg), ECG_OK);
}

static void test_filter_init_rejects_rates_outside_125_to_1000_hz_including_nan(void)
{
    const float bad[] = {124.9f, 1000.1f, 0.0f, -360.0f, NAN, INFINITY, -INFINITY};
    const float good[] = {125.0f, 1000.0f, 128.0f, 360.0f, 999.5f};
    ecg_filter_t f;
    ecg_filter_cfg_t cfg;
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ecg_filter_default_cfg(&cfg, 360.0f);
        cfg.fs_hz = bad[i];
        CHECK_ERR(ecg_filter_init(&f, &cfg), ECG_ERR_RANGE);
    }
    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        ecg_filter_default_cfg(&cfg, good[i]);
        CHECK_ERR(ecg_filter_init(&f, &cfg), ECG_OK);
    }
}

static void test_filter_init_accepts_only_mains_0_50_60(void)
{
    ecg_filter_t f;
    ecg_filter_cfg_t cfg;
    unsigned m;
    for (m = 0; m <= 255u; m++) {
        ecg_filter_default_cfg(&cfg, 500.0f);
        cfg.mains_hz = (uint8_t)m;
        CHECK_ERR(ecg_filter_init(&f, &cfg),
                  (m == 0u || m == 50u || m == 60u) ? ECG_OK : ECG_ERR_RANGE);
    }
}

typedef struct {
    const char *name;
    size_t offset;
    float lo, hi; /* documented range, inclusive */
} float_field_t;

/* Each field just outside its documented range, NaN and infinities give ECG_ERR_RANGE; both ends
 * of the range are accepted. `init` wraps the module's init on a default configuration. */
static void check_float_fields(const float_field_t *fields, size_t n, void *cfg, size_t cfg_size,
                               const void *defaults, int (*init)(const void *cfg))
{
    size_t i, k;
    for (i = 0; i < n; i++) {
        float *v = (float *)((char *)cfg + fields[i].offset);
        const float bad[] = {nextafterf(fields[i].lo, -INFINITY),
                             nextafterf(fields[i].hi, INFINITY), NAN, INFINITY, -INFINITY};
        const float good[] = {fields[i].lo, fields[i].hi};
        for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
            int err;
            memcpy(cfg, defaults, cfg_size);
            *v = bad[k];
            err = init(cfg);
            if (err != (int)ECG_ERR_RANGE) {
                FAIL_MSG("%s = %.9g: got %d (%s), expected ECG_ERR_RANGE", fields[i].name, bad[k],
                         err, ecg_err_str((ecg_err_t)err));
            }
        }
        for (k = 0; k < 2; k++) {
            int err;
            memcpy(cfg, defaults, cfg_size);
            *v = good[k];
            err = init(cfg);
            if (err != (int)ECG_OK) {
                FAIL_MSG("%s = %.9g (documented as valid): got %d (%s)", fields[i].name, good[k],
                         err, ecg_err_str((ecg_err_t)err));
            }
        }
    }
}

static int init_filter_cfg(const void *cfg)
{
    ecg_filter_t f;
    return (int)ecg_filter_init(&f, (const ecg_filter_cfg_t *)cfg);
}

static void test_filter_init_rejects_each_tuning_field_outside_its_documented_range(void)
{
    size_t r;
    for (r = 0; r < N_RATES; r++) {
        const float_field_t fields[] = {
            {"highpass_hz", offsetof(ecg_filter_cfg_t, highpass_hz), min_highpass_hz(RATES[r]),
             5.0f},
            {"lowpass_hz", offsetof(ecg_filter_cfg_t, lowpass_hz), 15.0f, 150.0f},
            {"notch_q", offsetof(ecg_filter_cfg_t, notch_q), 1.0f, 100.0f},
        };
        ecg_filter_cfg_t defaults, cfg;
        ecg_filter_default_cfg(&defaults, RATES[r]);
        check_float_fields(fields, sizeof fields / sizeof fields[0], &cfg, sizeof cfg, &defaults,
                           init_filter_cfg);
    }
}

static void test_filter_attenuates_mains_by_40db_and_passes_10hz_at_every_rate(void)
{
    const uint8_t mains[] = {50u, 60u};
    size_t r, m;
    for (r = 0; r < N_RATES; r++) {
        for (m = 0; m < 2; m++) {
            ecg_filter_t f;
            ecg_filter_cfg_t cfg;
            double g_mains, g_10;
            ecg_filter_default_cfg(&cfg, RATES[r]);
            cfg.mains_hz = mains[m];
            CHECK_ERR(ecg_filter_init(&f, &cfg), ECG_OK);
            g_mains = filter_sine_gain(&f, RATES[r], (float)mains[m]);
            g_10 = filter_sine_gain(&f, RATES[r], 10.0f);
            if (!(20.0 * log10(g_mains) <= -40.0)) {
                FAIL_MSG("fs %g Hz: %u Hz attenuated by only %.1f dB", RATES[r], (unsigned)mains[m],
                         -20.0 * log10(g_mains));
            }
            if (!(fabs(20.0 * log10(g_10)) <= 0.5)) {
                FAIL_MSG("fs %g Hz: 10 Hz gain %.3f dB", RATES[r], 20.0 * log10(g_10));
            }
        }
    }
}

static void test_filter_step_response_is_finite_bounded_and_returns_to_zero(void)
{
    size_t r;
    for (r = 0; r < N_RATES; r++) {
        const float fs = RATES[r], step = 1000.0f; /* 1 V: far beyond any ECG */
        const uint32_t n = (uint32_t)(15.0f * fs);
        ecg_filter_t f;
        ecg_filter_cfg_t cfg;
        float y = 0.0f, peak = 0.0f;
        int finite = 1;
        uint32_t i;
        ecg_filter_default_cfg(&cfg, fs);
        CHECK_ERR(ecg_filter_init(&f, &cfg), ECG_OK);
        for (i = 0; i < n; i++) {
            y = ecg_filter_step(&f, step);
            finite &= isfinite(y) != 0;
            if (fabsf(y) > peak) {
                peak = fabsf(y);
            }
        }
        CHECK(finite);
        /* A high-pass passes the step edge (peak near the step) without ringing up beyond it. */
        if (!(peak <= 1.5f * step && peak >= 0.5f * step)) {
            FAIL_MSG("fs %g: step peak %g", fs, peak);
        }
        /* DC is blocked: after 15 s the output is back to (nearly) zero. */
        if (!(fabsf(y) < 1e-3f * step)) {
            FAIL_MSG("fs %g: output %g after 15 s of a %g step", fs, y, step);
        }
    }
}

static void test_filter_reset_reproduces_a_fresh_filter_and_block_equals_steps(void)
{
    ecg_filter_t a, b;
    ecg_filter_cfg_t cfg;
    float x[600], ya[600], yb[600], yc[600];
    uint32_t seed = 777u, i;
    ecg_filter_default_cfg(&cfg, 250.0f);
    CHECK_ERR(ecg_filter_init(&a, &cfg), ECG_OK);
    CHECK_ERR(ecg_filter_init(&b, &cfg), ECG_OK);
    for (i = 0; i < 600; i++) {
        x[i] = 2.0f * lcg_uniform(&seed) + 1.0f;
        ya[i] = ecg_filter_step(&a, x[i]);
    }
    ecg_filter_process(&b, x, yb, 250);           /* blocks of uneven sizes */
    ecg_filter_process(&b, x + 250, yb + 250, 1);
    ecg_filter_process(&b, x + 251, yb + 251, 349);
    CHECK(memcmp(ya, yb, sizeof ya) == 0);
    ecg_filter_reset(&a);
    memcpy(yc, x, sizeof x);
    ecg_filter_process(&a, yc, yc, 600); /* in place */
    CHECK(memcmp(ya, yc, sizeof ya) == 0);
}

static void test_filter_delay_is_finite_positive_and_below_50ms(void)
{
    size_t r;
    for (r = 0; r < N_RATES; r++) {
        ecg_filter_t f;
        ecg_filter_cfg_t cfg;
        float d;
        ecg_filter_default_cfg(&cfg, RATES[r]);
        CHECK_ERR(ecg_filter_init(&f, &cfg), ECG_OK);
        d = ecg_filter_delay_samples(&f);
        if (!(isfinite(d) && d > 0.0f && d < 0.05f * RATES[r])) {
            FAIL_MSG("fs %g: delay %g samples", RATES[r], d);
        }
    }
}

typedef struct {
    uint32_t pre[8];
    ecg_filter_t f;
    uint32_t post[8];
} guarded_filter_t;

#define GUARD_WORD 0xDEADBEEFu

static void test_filter_writes_nothing_outside_its_state_struct(void)
{
    guarded_filter_t g;
    ecg_filter_cfg_t cfg, cfg_copy;
    float buf[300];
    uint32_t i, seed = 99u;
    memset(&g, 0x5A, sizeof g);
    for (i = 0; i < 8; i++) {
        g.pre[i] = g.post[i] = GUARD_WORD;
    }
    ecg_filter_default_cfg(&cfg, 1000.0f);
    cfg.mains_hz = 60u;
    cfg_copy = cfg;
    CHECK_ERR(ecg_filter_init(&g.f, &cfg), ECG_OK);
    CHECK(memcmp(&cfg, &cfg_copy, sizeof cfg) == 0); /* cfg is input-only */
    for (i = 0; i < 300; i++) {
        buf[i] = lcg_uniform(&seed);
    }
    ecg_filter_process(&g.f, buf, buf, 300);
    for (i = 0; i < 300; i++) {
        (void)ecg_filter_step(&g.f, 1.0f);
    }
    (void)ecg_filter_delay_samples(&g.f);
    ecg_filter_reset(&g.f);
    cfg.fs_hz = 2000.0f; /* a failing init must not scribble either */
    CHECK_ERR(ecg_filter_init(&g.f, &cfg), ECG_ERR_RANGE);
    for (i = 0; i < 8; i++) {
        CHECK(g.pre[i] == GUARD_WORD);
        CHECK(g.post[i] == GUARD_WORD);
    }
}

/* ------------------------------------------------------------------ QRS detector */

static void test_qrs_init_rejects_null_cfg_and_null_state(void)
{
    ecg_qrs_t q;
    ecg_qrs_cfg_t cfg;
    ecg_qrs_default_cfg(&cfg, 360.0f);
    CHECK_ERR(ecg_qrs_init(&q, NULL), ECG_ERR_NULL);
    CHECK_ERR(ecg_qrs_init(NULL, &cfg), ECG_ERR_NULL);
    CHECK_ERR(ecg_qrs_init(NULL, NULL), ECG_ERR_NULL);
    ecg_qrs_default_cfg(NULL, 360.0f); /* must not crash */
    CHECK_ERR(ecg_qrs_init(&q, &cfg), ECG_OK);
}

static void test_qrs_init_rejects_rates_outside_125_to_1000_hz_including_nan(void)
{
    const float bad[] = {124.9f, 1000.1f, 0.0f, -360.0f, NAN, INFINITY, -INFINITY};
    ecg_qrs_t q;
    ecg_qrs_cfg_t cfg;
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ecg_qrs_default_cfg(&cfg, 360.0f);
        cfg.fs_hz = bad[i];
        CHECK_ERR(ecg_qrs_init(&q, &cfg), ECG_ERR_RANGE);
    }
    for (i = 0; i < N_RATES; i++) {
        ecg_qrs_default_cfg(&cfg, RATES[i]);
        CHECK_ERR(ecg_qrs_init(&q, &cfg), ECG_OK);
    }
}

/* ecg_qrs_t is ~3 KB: keep it off the (sanitizer-enlarged) stack of the helper. */
static ecg_qrs_t g_scratch_qrs;

static int init_qrs_cfg(const void *cfg)
{
    return (int)ecg_qrs_init(&g_scratch_qrs, (const ecg_qrs_cfg_t *)cfg);
}

/* The documented ranges of ecg_qrs.h. */
static const float_field_t QRS_FIELDS[] = {
    {"bandpass_hz", offsetof(ecg_qrs_cfg_t, bandpass_hz), 5.0f, 30.0f},
    {"bandpass_q", offsetof(ecg_qrs_cfg_t, bandpass_q), 0.3f, 5.0f},
    {"slope_ms", offsetof(ecg_qrs_cfg_t, slope_ms), 2.0f, 30.0f},
    {"mwi_ms", offsetof(ecg_qrs_cfg_t, mwi_ms), 40.0f, 190.0f},
    {"peak_hold_ms", offsetof(ecg_qrs_cfg_t, peak_hold_ms), 20.0f, 200.0f},
    {"refractory_ms", offsetof(ecg_qrs_cfg_t, refractory_ms), 150.0f, 300.0f},
    {"twave_ms", offsetof(ecg_qrs_cfg_t, twave_ms), 200.0f, 500.0f},
    {"twave_slope_frac", offsetof(ecg_qrs_cfg_t, twave_slope_frac), 0.0f, 1.0f},
    {"pwave_ms", offsetof(ecg_qrs_cfg_t, pwave_ms), 150.0f, 400.0f},
    {"weak_slope_frac", offsetof(ecg_qrs_cfg_t, weak_slope_frac), 0.0f, 1.0f},
    {"pwave_height_frac", offsetof(ecg_qrs_cfg_t, pwave_height_frac), 0.0f, 1.0f},
    {"threshold_frac", offsetof(ecg_qrs_cfg_t, threshold_frac), 0.05f, 0.9f},
    {"threshold_noise_gain", offsetof(ecg_qrs_cfg_t, threshold_noise_gain), 0.0f, 4.0f},
    {"threshold_activity_gain", offsetof(ecg_qrs_cfg_t, threshold_activity_gain), 0.0f, 20.0f},
    {"activity_clean", offsetof(ecg_qrs_cfg_t, activity_clean), 0.0f, 1.0f},
    {"searchback_rr_frac", offsetof(ecg_qrs_cfg_t, searchback_rr_frac), 1.0f, 3.0f},
    {"searchback_gap_frac", offsetof(ecg_qrs_cfg_t, searchback_gap_frac), 1.0f, 3.0f},
    {"searchback_min_ms", offsetof(ecg_qrs_cfg_t, searchback_min_ms), 150.0f, 500.0f},
    {"learn_ms", offsetof(ecg_qrs_cfg_t, learn_ms), 1000.0f, 8000.0f},
};
#define N_QRS_FIELDS (sizeof QRS_FIELDS / sizeof QRS_FIELDS[0])

static void test_qrs_init_rejects_each_tuning_field_outside_its_documented_range(void)
{
    size_t r;
    for (r = 0; r < N_RATES; r++) {
        ecg_qrs_cfg_t defaults, cfg;
        ecg_qrs_default_cfg(&defaults, RATES[r]);
        check_float_fields(QRS_FIELDS, N_QRS_FIELDS, &cfg, sizeof cfg, &defaults, init_qrs_cfg);
    }
}

static void test_qrs_init_rejects_nan_or_negative_delay_and_searchback_fraction(void)
{
    /* Fields whose range the header does not spell out: NaN, infinities and negatives are never
     * meaningful for a delay or a fraction. */
    const float bad[] = {NAN, INFINITY, -INFINITY, -1.0f};
    ecg_qrs_cfg_t cfg;
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ecg_qrs_default_cfg(&cfg, 360.0f);
        cfg.filter_delay_samples = bad[i];
        CHECK_ERR(ecg_qrs_init(&g_scratch_qrs, &cfg), ECG_ERR_RANGE);
        ecg_qrs_default_cfg(&cfg, 360.0f);
        cfg.searchback_frac = bad[i];
        CHECK_ERR(ecg_qrs_init(&g_scratch_qrs, &cfg), ECG_ERR_RANGE);
    }
}

static void test_qrs_init_accepts_every_documented_extreme_at_both_extreme_rates(void)
{
    /* All fields at their lower (then upper) documented bound together, at 125 and 1000 Hz: the
     * fixed buffers must be sized for every documented configuration. */
    const float rates[] = {125.0f, 1000.0f};
    size_t r, i, side;
    for (r = 0; r < 2; r++) {
        for (side = 0; side < 2; side++) {
            ecg_qrs_cfg_t cfg;
            int err;
            ecg_qrs_default_cfg(&cfg, rates[r]);
            for (i = 0; i < N_QRS_FIELDS; i++) {
                *(float *)((char *)&cfg + QRS_FIELDS[i].offset) =
                    side ? QRS_FIELDS[i].hi : QRS_FIELDS[i].lo;
            }
            err = (int)ecg_qrs_init(&g_scratch_qrs, &cfg);
            if (err != (int)ECG_OK) {
                FAIL_MSG("fs %g, every field at its %s bound: got %d (%s)", rates[r],
                         side ? "upper" : "lower", err, ecg_err_str((ecg_err_t)err));
            }
        }
    }
}

/* Synthetic ECG: Gaussian QRS-like pulses (sigma 12 ms, 1.2 mV) every 800 ms from t = 0.5 s, a
 * 3 mV electrode offset, 0.15 mV of 50 Hz hum and +-0.05 mV of uniform noise. */
#define PULSE_T0_S 0.5
#define PULSE_RR_S 0.8

static float synth_sample(uint32_t i, float fs, uint32_t *seed)
{
    const double t = (double)i / fs;
    const double k = floor((t - PULSE_T0_S) / PULSE_RR_S + 0.5);
    const double tc = PULSE_T0_S + (k < 0.0 ? 0.0 : k) * PULSE_RR_S;
    const double sigma = 0.012;
    const double pulse = 1.2 * exp(-0.5 * ((t - tc) / sigma) * ((t - tc) / sigma));
    return (float)(3.0 + pulse + 0.15 * sin(2.0 * PI_D * 50.0 * t)) + 0.1f * lcg_uniform(seed);
}

#define MAX_BEATS 256u

typedef struct {
    uint64_t index[MAX_BEATS];
    uint32_t rr[MAX_BEATS];
    uint8_t quality[MAX_BEATS], searchback[MAX_BEATS];
    uint32_t n;
} beat_log_t;

static void log_beat(beat_log_t *log, const ecg_qrs_beat_t *b)
{
    if (log->n < MAX_BEATS) {
        log->index[log->n] = b->index;
        log->rr[log->n] = b->rr_samples;
        log->quality[log->n] = b->quality;
        log->searchback[log->n] = b->searchback;
    }
    log->n++;
}

/* Run filter + detector over `seconds` of the synthetic signal, then flush. */
static void run_pipeline(ecg_filter_t *f, ecg_qrs_t *q, float fs, double seconds, beat_log_t *log)
{
    const uint32_t n = (uint32_t)(seconds * fs);
    uint32_t i, seed = 2024u;
    ecg_qrs_beat_t b;
    log->n = 0;
    for (i = 0; i < n; i++) {
        if (ecg_qrs_step(q, ecg_filter_step(f, synth_sample(i, fs, &seed)), &b)) {
            log_beat(log, &b);
        }
    }
    while (ecg_qrs_flush(q, &b)) {
        log_beat(log, &b);
        if (log->n > MAX_BEATS) {
            break; /* a flush that never ends is caught below */
        }
    }
}

static int setup_pipeline(ecg_filter_t *f, ecg_qrs_t *q, float fs, ecg_qrs_cfg_t *qcfg)
{
    ecg_filter_cfg_t fcfg;
    ecg_filter_default_cfg(&fcfg, fs);
    fcfg.mains_hz = 50u;
    if (ecg_filter_init(f, &fcfg) != ECG_OK) {
        return 0;
    }
    ecg_qrs_default_cfg(qcfg, fs);
    qcfg->filter_delay_samples = ecg_filter_delay_samples(f);
    return ecg_qrs_init(q, qcfg) == ECG_OK;
}

static ecg_filter_t g_f;
static ecg_qrs_t g_q;
static beat_log_t g_log, g_log2;

static void test_qrs_finds_every_synthetic_pulse_after_learning_at_a_constant_offset(void)
{
    const double seconds = 60.4; /* last pulse at 59.7 s: only flush() can decide it */
    size_t r;
    for (r = 0; r < N_RATES; r++) {
        const float fs = RATES[r];
        ecg_qrs_cfg_t qcfg;
        double first_scored, min_err = 1e9, max_err = -1e9;
        uint32_t i, matched = 0, expected = 0, k;
        if (!setup_pipeline(&g_f, &g_q, fs, &qcfg)) {
            FAIL_MSG("fs %g: pipeline init failed", fs);
            continue;
        }
        run_pipeline(&g_f, &g_q, fs, seconds, &g_log);
        if (g_log.n > MAX_BEATS) {
            FAIL_MSG("fs %g: %u beats (runaway)", fs, (unsigned)g_log.n);
            continue;
        }
        /* Score pulses that start after the learning period plus one beat of adaptation. */
        first_scored = qcfg.learn_ms / 1000.0 + PULSE_RR_S;
        for (k = 0;; k++) {
            const double tc = PULSE_T0_S + k * PULSE_RR_S;
            const double centre = floor(tc * fs + 0.5); /* an integer at every tested rate */
            int hits = 0;
            if (tc > seconds - 0.05) {
                break;
            }
            if (tc < first_scored) {
                continue;
            }
            expected++;
            for (i = 0; i < g_log.n; i++) {
                const double err = (double)g_log.index[i] - centre;
                if (fabs(err) <= 0.05 * fs) { /* within 50 ms: half a QRS */
                    hits++;
                    if (err < min_err) min_err = err;
                    if (err > max_err) max_err = err;
                }
            }
            if (hits == 1) {
                matched++;
            } else {
                FAIL_MSG("fs %g: pulse at %.2f s detected %d times", fs, tc, hits);
            }
        }
        /* No detection away from a pulse. */
        for (i = 0; i < g_log.n; i++) {
            const double t = (double)g_log.index[i] / fs;
            const double k_near = floor((t - PULSE_T0_S) / PULSE_RR_S + 0.5);
            const double dt = t - (PULSE_T0_S + k_near * PULSE_RR_S);
            if (fabs(dt) > 0.05) {
                FAIL_MSG("fs %g: false detection at %.3f s", fs, t);
            }
            if (i > 0 && !(g_log.index[i] > g_log.index[i - 1])) {
                FAIL_MSG("fs %g: beat indices not increasing at beat %u", fs, (unsigned)i);
            }
            if (i > 0 && g_log.rr[i] != (uint32_t)(g_log.index[i] - g_log.index[i - 1])) {
                FAIL_MSG("fs %g: beat %u rr_samples %u != index difference %llu", fs, (unsigned)i,
                         (unsigned)g_log.rr[i],
                         (unsigned long long)(g_log.index[i] - g_log.index[i - 1]));
            }
            if (g_log.quality[i] > (uint8_t)ECG_QRS_QUALITY_UNUSABLE || g_log.searchback[i] > 1u) {
                FAIL_MSG("fs %g: beat %u has flags quality=%u searchback=%u", fs, (unsigned)i,
                         (unsigned)g_log.quality[i], (unsigned)g_log.searchback[i]);
            }
        }
        if (g_log.n > 0 && g_log.rr[0] != 0u) {
            FAIL_MSG("fs %g: first beat has rr_samples %u, expected 0", fs, (unsigned)g_log.rr[0]);
        }
        CHECK(expected > 60u);
        if (matched != expected) {
            FAIL_MSG("fs %g: %u of %u pulses found", fs, (unsigned)matched, (unsigned)expected);
        }
        /* The filter delay is compensated: R peaks land on the pulse centres within 10 ms, and
         * the error is the same for every beat (within one sample either side). */
        if (matched > 0 &&
            !(fabs(min_err) <= 0.01 * fs + 1.0 && fabs(max_err) <= 0.01 * fs + 1.0)) {
            FAIL_MSG("fs %g: R-peak error %g..%g samples", fs, min_err, max_err);
        }
        if (matched > 0 && !(max_err - min_err <= 2.0)) {
            FAIL_MSG("fs %g: R-peak error spread %g..%g samples", fs, min_err, max_err);
        }
        printf("  fs %6.1f Hz: %u/%u pulses, R-peak error %+.0f..%+.0f samples\n", fs,
               (unsigned)matched, (unsigned)expected, min_err, max_err);
    }
}

static void test_qrs_reset_reproduces_the_first_run(void)
{
    ecg_qrs_cfg_t qcfg;
    uint32_t i;
    CHECK(setup_pipeline(&g_f, &g_q, 360.0f, &qcfg));
    run_pipeline(&g_f, &g_q, 360.0f, 20.0, &g_log);
    ecg_filter_reset(&g_f);
    ecg_qrs_reset(&g_q);
    run_pipeline(&g_f, &g_q, 360.0f, 20.0, &g_log2);
    CHECK(g_log.n > 10u && g_log.n <= MAX_BEATS);
    CHECK(g_log.n == g_log2.n);
    for (i = 0; i < g_log.n && i < g_log2.n && i < MAX_BEATS; i++) {
        CHECK(g_log.index[i] == g_log2.index[i] && g_log.rr[i] == g_log2.rr[i] &&
              g_log.quality[i] == g_log2.quality[i]);
    }
}

static void test_qrs_flush_on_a_fresh_detector_reports_nothing(void)
{
    ecg_qrs_cfg_t cfg;
    ecg_qrs_beat_t b;
    ecg_qrs_default_cfg(&cfg, 250.0f);
    CHECK_ERR(ecg_qrs_init(&g_q, &cfg), ECG_OK);
    CHECK(ecg_qrs_flush(&g_q, &b) == 0);
}

static void test_qrs_reports_no_beat_on_a_flat_signal(void)
{
    ecg_qrs_cfg_t cfg;
    ecg_qrs_beat_t b;
    uint32_t i, beats = 0;
    ecg_qrs_default_cfg(&cfg, 1000.0f);
    CHECK_ERR(ecg_qrs_init(&g_q, &cfg), ECG_OK);
    for (i = 0; i < 70000u; i++) { /* 70 s: the sample counter passes 2^16 */
        beats += (uint32_t)ecg_qrs_step(&g_q, 0.0f, &b);
    }
    while (ecg_qrs_flush(&g_q, &b) && beats < 1000u) {
        beats++;
    }
    CHECK(beats == 0u);
}

static void test_qrs_survives_extreme_and_non_finite_samples_without_undefined_behaviour(void)
{
    /* Under UBSan/ASan: huge, denormal, infinite and NaN samples must not trigger UB (e.g. an
     * out-of-range float-to-integer conversion) nor out-of-bounds access. */
    const float odd[] = {3.0e38f, -3.0e38f, 1.0e-40f, INFINITY, -INFINITY, NAN, 0.0f};
    ecg_qrs_cfg_t cfg;
    ecg_qrs_beat_t b;
    uint32_t i, beats = 0;
    size_t k;
    for (k = 0; k < sizeof odd / sizeof odd[0]; k++) {
        ecg_qrs_default_cfg(&cfg, 500.0f);
        CHECK_ERR(ecg_qrs_init(&g_q, &cfg), ECG_OK);
        for (i = 0; i < 6000u; i++) {
            const float x = (i % 400u) < 5u ? odd[k] : 0.0f;
            if (ecg_qrs_step(&g_q, x, &b)) {
                CHECK(b.index <= i); /* an R peak cannot lie in the future */
                beats++;
            }
        }
        while (ecg_qrs_flush(&g_q, &b) && beats < 100000u) {
            beats++;
        }
    }
    CHECK(beats < 100000u);
}

typedef struct {
    uint32_t pre[8];
    ecg_qrs_t q;
    uint32_t post[8];
} guarded_qrs_t;

static guarded_qrs_t g_guarded_q;

static void test_qrs_writes_nothing_outside_its_state_struct(void)
{
    ecg_filter_t f;
    ecg_filter_cfg_t fcfg;
    ecg_qrs_cfg_t cfg, cfg_copy;
    ecg_qrs_beat_t b;
    size_t r;
    uint32_t i;
    for (r = 0; r < N_RATES; r++) {
        const float fs = RATES[r];
        uint32_t seed = 5u;
        memset(&g_guarded_q, 0x5A, sizeof g_guarded_q);
        for (i = 0; i < 8; i++) {
            g_guarded_q.pre[i] = g_guarded_q.post[i] = GUARD_WORD;
        }
        ecg_filter_default_cfg(&fcfg, fs);
        CHECK_ERR(ecg_filter_init(&f, &fcfg), ECG_OK);
        ecg_qrs_default_cfg(&cfg, fs);
        /* Longest windows: the circular buffers are used to their full extent. */
        cfg.mwi_ms = 190.0f;
        cfg.slope_ms = 30.0f;
        cfg.peak_hold_ms = 200.0f;
        cfg.filter_delay_samples = ecg_filter_delay_samples(&f);
        cfg_copy = cfg;
        CHECK_ERR(ecg_qrs_init(&g_guarded_q.q, &cfg), ECG_OK);
        CHECK(memcmp(&cfg, &cfg_copy, sizeof cfg) == 0);
        for (i = 0; i < (uint32_t)(20.0f * fs); i++) {
            (void)ecg_qrs_step(&g_guarded_q.q, ecg_filter_step(&f, synth_sample(i, fs, &seed)), &b);
        }
        while (ecg_qrs_flush(&g_guarded_q.q, &b)) {
        }
        ecg_qrs_reset(&g_guarded_q.q);
        cfg.fs_hz = NAN;
        CHECK_ERR(ecg_qrs_init(&g_guarded_q.q, &cfg), ECG_ERR_RANGE);
        for (i = 0; i < 8; i++) {
            CHECK(g_guarded_q.pre[i] == GUARD_WORD);
            CHECK(g_guarded_q.post[i] == GUARD_WORD);
        }
    }
}

static void test_state_sizes_are_reported(void)
{
    printf("  sizeof(ecg_filter_t) = %u bytes\n", (unsigned)sizeof(ecg_filter_t));
    printf("  sizeof(ecg_qrs_t)    = %u bytes\n", (unsigned)sizeof(ecg_qrs_t));
    /* A wearable MCU reserves these statically; keep the pair under 8 KB. */
    CHECK(sizeof(ecg_filter_t) + sizeof(ecg_qrs_t) < 8192u);
}

int main(void)
{
    RUN(test_err_str_is_non_empty_and_distinct_for_every_code);
    RUN(test_biquad_init_rejects_null_pointers_and_zero_stages);
    RUN(test_lowpass_design_has_unit_dc_gain_minus_3db_at_cutoff_and_zero_at_nyquist);
    RUN(test_highpass_design_blocks_dc_and_passes_nyquist);
    RUN(test_notch_design_nulls_f0_and_passes_dc_and_nyquist);
    RUN(test_every_documented_extreme_design_is_stable_at_every_rate);
    RUN(test_group_delay_of_pure_and_symmetric_fir_stages);
    RUN(test_biquad_block_processing_in_place_equals_per_sample_steps);
    RUN(test_biquad_leaves_memory_around_its_caller_owned_arrays_untouched);
    RUN(test_filter_init_rejects_null_cfg_and_null_state);
    RUN(test_filter_init_rejects_rates_outside_125_to_1000_hz_including_nan);
    RUN(test_filter_init_accepts_only_mains_0_50_60);
    RUN(test_filter_init_rejects_each_tuning_field_outside_its_documented_range);
    RUN(test_filter_attenuates_mains_by_40db_and_passes_10hz_at_every_rate);
    RUN(test_filter_step_response_is_finite_bounded_and_returns_to_zero);
    RUN(test_filter_reset_reproduces_a_fresh_filter_and_block_equals_steps);
    RUN(test_filter_delay_is_finite_positive_and_below_50ms);
    RUN(test_filter_writes_nothing_outside_its_state_struct);
    RUN(test_qrs_init_rejects_null_cfg_and_null_state);
    RUN(test_qrs_init_rejects_rates_outside_125_to_1000_hz_including_nan);
    RUN(test_qrs_init_rejects_each_tuning_field_outside_its_documented_range);
    RUN(test_qrs_init_rejects_nan_or_negative_delay_and_searchback_fraction);
    RUN(test_qrs_init_accepts_every_documented_extreme_at_both_extreme_rates);
    RUN(test_qrs_finds_every_synthetic_pulse_after_learning_at_a_constant_offset);
    RUN(test_qrs_reset_reproduces_the_first_run);
    RUN(test_qrs_flush_on_a_fresh_detector_reports_nothing);
    RUN(test_qrs_reports_no_beat_on_a_flat_signal);
    RUN(test_qrs_survives_extreme_and_non_finite_samples_without_undefined_behaviour);
    RUN(test_qrs_writes_nothing_outside_its_state_struct);
    RUN(test_state_sizes_are_reported);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}

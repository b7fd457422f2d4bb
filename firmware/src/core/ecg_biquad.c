#include "ecg/ecg_biquad.h"

#include <math.h>

#define ECG_PI_F 3.14159265358979f

/*
 * Arithmetic. Each section is evaluated as
 *
 *     y = b0 * ((r1 x1 + r2 x2) + x) - a1 y1 - a2 y2,   r1 = b1 / b0, r2 = b2 / b0,
 *
 * with fused multiply-adds where a product meets a sum (one rounding per step). fmaf() is a single VFMA on the
 * Cortex-M4F and correctly rounded in every C99 libm, so the host build and the targets compute
 * identical bits. The numerator is normalised so that the designs whose numerators are exact
 * multiples of {1, -2, 1} (high-pass), {1, 2, 1} (low-pass) or {1, r, 1} (notch) keep their exact
 * cancellations: a constant input X gives exactly (-2X + X) + X = 0 in the high-pass, so an
 * electrode offset is removed completely. (Fusing b0 x + b1 x1 + b2 x2 directly leaks DC.)
 */
static inline float section(float b0, float r1, float r2, float na1, float na2, float x, float x1,
                            float x2, float y1, float y2)
{
    /* Every fused chain accumulates into a fresh product, never into a value still needed (VFMA
     * overwrites its accumulator, so that would cost register copies). */
    const float num = fmaf(r2, x2, r1 * x1) + x;
    return fmaf(na2, y2, fmaf(na1, y1, b0 * num));
}

ecg_err_t ecg_biquad_init(ecg_biquad_t *s, uint8_t num_stages, const float *coeffs, float *state)
{
    uint8_t k;
    if (s == NULL || coeffs == NULL || state == NULL) {
        return ECG_ERR_NULL;
    }
    if (num_stages == 0u) {
        return ECG_ERR_RANGE;
    }
    for (k = 0; k < num_stages; k++) {
        const float *c = &coeffs[5u * k];
        float *r = &state[ECG_BIQUAD_HISTORY_LEN(num_stages) + 2u * k];
        if (!(c[0] != 0.0f)) {
            return ECG_ERR_RANGE; /* the normalised numerator needs b0 != 0 */
        }
        r[0] = c[1] / c[0];
        r[1] = c[2] / c[0];
    }
    s->num_stages = num_stages;
    s->coeffs = coeffs;
    s->state = state;
    ecg_biquad_reset(s);
    return ECG_OK;
}

void ecg_biquad_reset(ecg_biquad_t *s)
{
    uint32_t i;
    for (i = 0; i < ECG_BIQUAD_HISTORY_LEN(s->num_stages); i++) {
        s->state[i] = 0.0f;
    }
}

float ecg_biquad_step(ecg_biquad_t *s, float x)
{
    const float *c = s->coeffs;
    const float *r = &s->state[ECG_BIQUAD_HISTORY_LEN(s->num_stages)];
    float *st = s->state;
    /* st = {x[n-1], x[n-2]} of the cascade input, then {y[n-1], y[n-2]} of each stage; a stage's
     * output history is the next stage's input history, so it is stored once. */
    float x1 = st[0], x2 = st[1];
    uint8_t k;
    st[0] = x;
    st[1] = x1;
    for (k = 0; k < s->num_stages; k++, c += 5, r += 2) {
        const float y1 = st[2], y2 = st[3];
        const float y = section(c[0], r[0], r[1], -c[3], -c[4], x, x1, x2, y1, y2);
        st += 2;
        st[0] = y;
        st[1] = y1;
        x = y;
        x1 = y1;
        x2 = y2;
    }
    return x;
}

void ecg_biquad_process(ecg_biquad_t *s, const float *src, float *dst, size_t n)
{
    /* Stage by stage over the whole block, so each stage's coefficients and state stay in
     * registers. The same section() as ecg_biquad_step: bit-identical output. */
    const float *c = s->coeffs;
    const float *r = &s->state[ECG_BIQUAD_HISTORY_LEN(s->num_stages)];
    float *st = s->state;
    const float *in = src;
    float x1, x2, new_x1, new_x2;
    uint8_t k;
    size_t i;
    if (n == 0u) {
        return;
    }
    x1 = st[0];
    x2 = st[1];
    /* Read the input history before a stage may overwrite src (src and dst may alias). */
    new_x1 = src[n - 1u];
    new_x2 = n >= 2u ? src[n - 2u] : x1;
    for (k = 0; k < s->num_stages; k++, c += 5, r += 2) {
        const float b0 = c[0], r1 = r[0], r2 = r[1], na1 = -c[3], na2 = -c[4];
        float *out_hist = &st[2u + 2u * k];
        const float y1_start = out_hist[0], y2_start = out_hist[1];
        float y1 = y1_start, y2 = y2_start;
        /* Two samples per iteration: the history rotates through the variables instead of being
         * moved every sample (about a quarter fewer instructions on Cortex-M4). */
        for (i = 0; i + 1u < n; i += 2u) {
            const float xa = in[i], xb = in[i + 1u];
            const float ya = section(b0, r1, r2, na1, na2, xa, x1, x2, y1, y2);
            const float yb = section(b0, r1, r2, na1, na2, xb, xa, x1, ya, y1);
            dst[i] = ya;
            dst[i + 1u] = yb;
            x2 = xa;
            x1 = xb;
            y2 = ya;
            y1 = yb;
        }
        if (i < n) {
            const float x = in[i];
            const float y = section(b0, r1, r2, na1, na2, x, x1, x2, y1, y2);
            dst[i] = y;
            x2 = x1;
            x1 = x;
            y2 = y1;
            y1 = y;
        }
        out_hist[0] = y1;
        out_hist[1] = y2;
        /* The next stage's input history at the start of the block is this stage's. */
        x1 = y1_start;
        x2 = y2_start;
        in = dst;
    }
    st[0] = new_x1;
    st[1] = new_x2;
}

/* RBJ audio-EQ cookbook, normalised so that a0 = 1. K = tan(pi f / fs) pre-warps f.
 * The arithmetic after tanf is done in double (init time only): for a low cut-off the k^2 terms
 * are below float precision next to 1, and a1/a2 computed in float can put a pole outside the unit
 * circle. Only IEEE basic operations follow tanf, so host and target round identically. */
static void normalise(float *c, double b0, double b1, double b2, double a0, double a1, double a2)
{
    c[0] = (float)(b0 / a0);
    c[1] = (float)(b1 / a0);
    c[2] = (float)(b2 / a0);
    c[3] = (float)(a1 / a0);
    c[4] = (float)(a2 / a0);
}

static double prewarp(float fs_hz, float f_hz)
{
    return (double)tanf(ECG_PI_F * f_hz / fs_hz);
}

void ecg_biquad_design_highpass(float *c, float fs_hz, float f_hz, float q)
{
    const double k = prewarp(fs_hz, f_hz), k2 = k * k, kq = k / (double)q;
    normalise(c, 1.0, -2.0, 1.0, 1.0 + kq + k2, 2.0 * (k2 - 1.0), 1.0 - kq + k2);
}

void ecg_biquad_design_lowpass(float *c, float fs_hz, float f_hz, float q)
{
    const double k = prewarp(fs_hz, f_hz), k2 = k * k, kq = k / (double)q;
    normalise(c, k2, 2.0 * k2, k2, 1.0 + kq + k2, 2.0 * (k2 - 1.0), 1.0 - kq + k2);
}

void ecg_biquad_design_notch(float *c, float fs_hz, float f_hz, float q)
{
    const double k = prewarp(fs_hz, f_hz), k2 = k * k, kq = k / (double)q;
    normalise(c, 1.0 + k2, 2.0 * (k2 - 1.0), 1.0 + k2, 1.0 + kq + k2, 2.0 * (k2 - 1.0),
              1.0 - kq + k2);
}

int ecg_biquad_is_stable(const float *c)
{
    /* Stability triangle of 1 + a1 z^-1 + a2 z^-2: |a2| < 1 and |a1| < 1 + a2. */
    return c[4] < 1.0f && c[4] > -1.0f && c[3] < 1.0f + c[4] && -c[3] < 1.0f + c[4];
}

/* Phase of b0 + b1 z^-1 + b2 z^-2 over 1 + a1 z^-1 + a2 z^-2 at z = e^{jw}. */
static float stage_phase(const float *c, float w)
{
    const float c1 = cosf(w), s1 = sinf(w), c2 = cosf(2.0f * w), s2 = sinf(2.0f * w);
    const float nr = c[0] + c[1] * c1 + c[2] * c2, ni = -(c[1] * s1 + c[2] * s2);
    const float dr = 1.0f + c[3] * c1 + c[4] * c2, di = -(c[3] * s1 + c[4] * s2);
    return atan2f(ni, nr) - atan2f(di, dr);
}

float ecg_biquad_group_delay_samples(const float *c, float fs_hz, float f_hz)
{
    /* Central difference of the phase over +-0.25 Hz, unwrapped. */
    const float df_hz = 0.25f;
    const float w1 = 2.0f * ECG_PI_F * (f_hz - df_hz) / fs_hz;
    const float w2 = 2.0f * ECG_PI_F * (f_hz + df_hz) / fs_hz;
    float dphi = stage_phase(c, w2) - stage_phase(c, w1);
    while (dphi > ECG_PI_F) {
        dphi -= 2.0f * ECG_PI_F;
    }
    while (dphi < -ECG_PI_F) {
        dphi += 2.0f * ECG_PI_F;
    }
    return -dphi / (w2 - w1);
}

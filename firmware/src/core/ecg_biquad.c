#include "ecg/ecg_biquad.h"

#include <math.h>

#define ECG_PI_F 3.14159265358979f

ecg_err_t ecg_biquad_init(ecg_biquad_t *s, uint8_t num_stages, const float *coeffs, float *state)
{
    if (s == NULL || coeffs == NULL || state == NULL) {
        return ECG_ERR_NULL;
    }
    if (num_stages == 0u) {
        return ECG_ERR_RANGE;
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
    for (i = 0; i < ECG_BIQUAD_STATE_LEN(s->num_stages); i++) {
        s->state[i] = 0.0f;
    }
}

float ecg_biquad_step(ecg_biquad_t *s, float x)
{
    const float *c = s->coeffs;
    float *st = s->state;
    /* st = {x[n-1], x[n-2]} of the cascade input, then {y[n-1], y[n-2]} of each stage; a stage's
     * output history is the next stage's input history, so it is stored once. */
    float x1 = st[0], x2 = st[1];
    uint8_t k;
    st[0] = x;
    st[1] = x1;
    for (k = 0; k < s->num_stages; k++, c += 5) {
        const float y1 = st[2], y2 = st[3];
        /* y = b0 x + b1 x1 + b2 x2 - a1 y1 - a2 y2 */
        const float y = c[0] * x + c[1] * x1 + c[2] * x2 - c[3] * y1 - c[4] * y2;
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
     * registers. Same arithmetic, in the same order, as ecg_biquad_step: bit-identical output. */
    const float *c = s->coeffs;
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
    for (k = 0; k < s->num_stages; k++, c += 5) {
        const float b0 = c[0], b1 = c[1], b2 = c[2], a1 = c[3], a2 = c[4];
        float *out_hist = &st[2u + 2u * k];
        const float y1_start = out_hist[0], y2_start = out_hist[1];
        float y1 = y1_start, y2 = y2_start;
        for (i = 0; i < n; i++) {
            const float x = in[i];
            const float y = b0 * x + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
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

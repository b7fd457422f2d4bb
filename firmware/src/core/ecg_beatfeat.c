#include "ecg/ecg_beatfeat.h"

#include <math.h>
#include <string.h>

#include "ecg/ecg_model_data.h"

#define RING_MASK ((uint64_t)ECG_BEATFEAT_RING_SAMPLES - 1u)
#define IV_MASK ((uint64_t)ECG_BEATFEAT_IV_RING - 1u)
#define AMP_FIRST 72 /* R peak -50 ms at 360 Hz: window values 72..108 give A_n (step 3) */
#define AMP_LAST 108
#define AMP_FLOOR_MV 0.05f
#define WINDOW_CLIP 4.0f
#define RR_LOCAL_N 8u
#define RR_LONG_N 64u
#define RR_SECONDS_MAX 3.0f
#define RR_RATIO_MAX 4.0f

/* The ring is indexed with a mask; the model's input sizes are the specification's. */
typedef char ecg_beatfeat_ring_pow2[(ECG_BEATFEAT_RING_SAMPLES &
                                     (ECG_BEATFEAT_RING_SAMPLES - 1u)) == 0u &&
                                    ECG_BEATFEAT_RING_SAMPLES >= 1024u ? 1 : -1];
typedef char ecg_beatfeat_model_window[ECG_MODEL_WINDOW_LEN == ECG_BEATFEAT_WINDOW_LEN ? 1 : -1];
typedef char ecg_beatfeat_model_rr[ECG_MODEL_RR_LEN == ECG_BEATFEAT_RR_LEN ? 1 : -1];
typedef char ecg_beatfeat_queue_size[ECG_BEATFEAT_QUEUE >= 2u && ECG_BEATFEAT_QUEUE <= 255u ? 1
                                                                                             : -1];
typedef char ecg_beatfeat_iv_ring[ECG_BEATFEAT_IV_RING > RR_LONG_N + 1u &&
                                  (ECG_BEATFEAT_IV_RING & (ECG_BEATFEAT_IV_RING - 1u)) == 0u
                                  ? 1 : -1];

void ecg_beatfeat_default_cfg(ecg_beatfeat_cfg_t *cfg, float fs_hz, float filter_delay_samples)
{
    if (cfg == NULL) {
        return;
    }
    cfg->fs_hz = fs_hz;
    cfg->filter_delay_samples = filter_delay_samples;
    cfg->window_scale = ECG_MODEL_WINDOW_SCALE;
    cfg->window_zero_point = ECG_MODEL_WINDOW_ZERO_POINT;
    cfg->rr_scale = ECG_MODEL_RR_SCALE;
    cfg->rr_zero_point = ECG_MODEL_RR_ZERO_POINT;
}

static int zp_ok(int32_t zp)
{
    return zp >= -128 && zp <= 127;
}

ecg_err_t ecg_beatfeat_init(ecg_beatfeat_t *bf, const ecg_beatfeat_cfg_t *cfg)
{
    const ecg_beatfeat_cfg_t *c = cfg;
    if (bf == NULL || cfg == NULL) {
        return ECG_ERR_NULL;
    }
    if (!(c->fs_hz >= 125.0f && c->fs_hz <= 1000.0f) ||
        !(c->filter_delay_samples >= 0.0f && c->filter_delay_samples <= 100.0f) ||
        !(c->window_scale > 0.0f) || !(c->rr_scale > 0.0f) || !zp_ok(c->window_zero_point) ||
        !zp_ok(c->rr_zero_point)) {
        return ECG_ERR_RANGE;
    }
    bf->cfg = *cfg;
    /* beats.py filter_delay: floor(delay + 0.5), in double like Python's float */
    bf->delay = (int32_t)floor((double)c->filter_delay_samples + 0.5);
    bf->step = (double)c->fs_hz / ECG_BEATFEAT_MODEL_FS_HZ;
    if (bf->step == 1.0) {
        bf->span_lo = -ECG_BEATFEAT_WINDOW_PRE;
        bf->span_hi = (int32_t)ECG_BEATFEAT_WINDOW_LEN - 1 - ECG_BEATFEAT_WINDOW_PRE;
    } else {
        /* interpolation reads floor(p) and floor(p) + 1; one more sample of margin each side
         * covers the rounding of c + (k - 90) * step */
        bf->span_lo = (int32_t)floor(-(double)ECG_BEATFEAT_WINDOW_PRE * bf->step) - 1;
        bf->span_hi = (int32_t)ceil((double)((int32_t)ECG_BEATFEAT_WINDOW_LEN - 1 -
                                             ECG_BEATFEAT_WINDOW_PRE) * bf->step) + 2;
    }
    ecg_beatfeat_reset(bf);
    return ECG_OK;
}

void ecg_beatfeat_reset(ecg_beatfeat_t *bf)
{
    if (bf == NULL) {
        return;
    }
    bf->n_in = 0u;
    bf->finished = 0u;
    bf->q_head = bf->q_len = bf->q_cap = 0u;
    bf->n_beats = bf->n_out = 0u;
    bf->last_r = 0u;
    bf->n_amp = 0u;
    memset(&bf->stats, 0, sizeof bf->stats);
}

/* ---------------------------------------------------------------------------------------------
 * Window capture (steps 2-5)
 * ------------------------------------------------------------------------------------------- */

/* Filtered sample j: 0.0 before the stream and after its end; samples that already left the ring
 * (or, before the end, have not arrived) also read 0.0 and mark the beat late. */
static float sample_at(const ecg_beatfeat_t *bf, int64_t j, uint8_t *late)
{
    if (j < 0) {
        return 0.0f;
    }
    if ((uint64_t)j >= bf->n_in) {
        if (!bf->finished) {
            *late = 1u;
        }
        return 0.0f;
    }
    if (bf->n_in - (uint64_t)j > (uint64_t)ECG_BEATFEAT_RING_SAMPLES) {
        *late = 1u;
        return 0.0f;
    }
    return bf->ring[(uint64_t)j & RING_MASK];
}

/* Raw window value k of the beat centred on c (step 2). */
static float window_at(const ecg_beatfeat_t *bf, int64_t c, int32_t k, uint8_t *late)
{
    double p;
    double i0;
    float f, x0, x1;
    if (bf->step == 1.0) { /* 360 Hz: plain indexing */
        return sample_at(bf, c + k - ECG_BEATFEAT_WINDOW_PRE, late);
    }
    p = (double)c + (double)(k - ECG_BEATFEAT_WINDOW_PRE) * bf->step;
    i0 = floor(p);
    f = (float)(p - i0);
    x0 = sample_at(bf, (int64_t)i0, late);
    x1 = sample_at(bf, (int64_t)i0 + 1, late);
    return x0 + f * (x1 - x0);
}

/* clamp(round(x / scale) + zp, -128, 127): TFLite's AffineQuantize, rounding half away from
 * zero exactly as roundf (and beats.py's trunc + frac test) without a library call: below 2^23
 * the truncation and the fraction v - trunc(v) are exact in float32. */
static int8_t quantize(float x, float scale, int32_t zp)
{
    const float v = x / scale;
    int32_t t, q;
    float frac;
    if (!(v < 256.0f)) { /* round(v) + zp > 127 for any zero point (and NaN, not reached) */
        return 127;
    }
    if (v <= -256.0f) {
        return -128;
    }
    t = (int32_t)v;
    frac = v - (float)t;
    if (frac >= 0.5f) {
        t++;
    } else if (frac <= -0.5f) {
        t--;
    }
    q = t + zp;
    return (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
}

static float clampf(float x, float lo, float hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* S_n: the lower median of the latest min(n+1, 9) amplitudes, floored (step 4). */
static float amplitude_scale(ecg_beatfeat_t *bf, float a)
{
    float s[ECG_BEATFEAT_AMP_HISTORY];
    uint32_t m, i, j;
    float med;
    bf->amp[bf->n_amp % ECG_BEATFEAT_AMP_HISTORY] = a;
    bf->n_amp++;
    m = bf->n_amp < ECG_BEATFEAT_AMP_HISTORY ? (uint32_t)bf->n_amp : ECG_BEATFEAT_AMP_HISTORY;
    for (i = 0; i < m; i++) { /* insertion sort, ascending */
        const float v = bf->amp[i];
        for (j = i; j > 0u && s[j - 1u] > v; j--) {
            s[j] = s[j - 1u];
        }
        s[j] = v;
    }
    med = s[(m - 1u) / 2u];
    return med > AMP_FLOOR_MV ? med : AMP_FLOOR_MV;
}

static void capture(ecg_beatfeat_t *bf, ecg_beatfeat_beat_t *e)
{
    const int64_t c = (int64_t)e->beat.index + bf->delay;
    const int64_t j0 = c - ECG_BEATFEAT_WINDOW_PRE;
    const float lo = -WINDOW_CLIP, hi = WINDOW_CLIP;
    const float qs = bf->cfg.window_scale;
    const int32_t zp = bf->cfg.window_zero_point;
    /* 360 Hz with the whole window in the ring (the usual case): plain ring reads */
    const int direct = bf->step == 1.0 && j0 >= 0 &&
                       (uint64_t)j0 + ECG_BEATFEAT_WINDOW_LEN <= bf->n_in &&
                       bf->n_in - (uint64_t)j0 <= (uint64_t)ECG_BEATFEAT_RING_SAMPLES;
    float a = 0.0f, s;
    int32_t k;
    uint8_t late = 0u;
    for (k = AMP_FIRST; k <= AMP_LAST; k++) { /* step 3 */
        const float v = fabsf(direct ? bf->ring[((uint64_t)j0 + (uint64_t)k) & RING_MASK]
                                     : window_at(bf, c, k, &late));
        if (v > a) {
            a = v;
        }
    }
    s = amplitude_scale(bf, a);
    for (k = 0; k < (int32_t)ECG_BEATFEAT_WINDOW_LEN; k++) { /* step 5, then quantize */
        const float x = direct ? bf->ring[((uint64_t)j0 + (uint64_t)k) & RING_MASK]
                               : window_at(bf, c, k, &late);
        e->window[k] = quantize(clampf(x / s, lo, hi), qs, zp);
    }
    e->scale_mv = s;
    e->late = late;
}

/* Capture every waiting window whose samples have all arrived (or all of them at the end). */
static void capture_ready(ecg_beatfeat_t *bf)
{
    while (bf->q_cap < bf->q_len) {
        ecg_beatfeat_beat_t *e = &bf->q[(bf->q_head + bf->q_cap) % ECG_BEATFEAT_QUEUE];
        const int64_t last = (int64_t)e->beat.index + bf->delay + bf->span_hi;
        if (!bf->finished && (last < 0 ? 0 : (uint64_t)last) >= bf->n_in) {
            break;
        }
        capture(bf, e);
        bf->q_cap++;
    }
}

void ecg_beatfeat_push(ecg_beatfeat_t *bf, const float *y, size_t n)
{
    size_t done = 0;
    if (bf == NULL || y == NULL || bf->finished) {
        return;
    }
    while (done < n) { /* at most two straight copies (the ring wraps once per block) */
        const size_t w = (size_t)((bf->n_in + done) & RING_MASK);
        const size_t len = n - done < ECG_BEATFEAT_RING_SAMPLES - w ? n - done
                                                                    : ECG_BEATFEAT_RING_SAMPLES - w;
        float *dst = &bf->ring[w];
        const float *src = &y[done];
        const float *end = src + len;
        while (src < end) {
            *dst++ = *src++;
        }
        done += len;
    }
    bf->n_in += n;
    capture_ready(bf);
}

/* ---------------------------------------------------------------------------------------------
 * Beats and RR features
 * ------------------------------------------------------------------------------------------- */

ecg_err_t ecg_beatfeat_add_beat(ecg_beatfeat_t *bf, const ecg_qrs_beat_t *beat)
{
    ecg_beatfeat_beat_t *e;
    if (bf == NULL || beat == NULL) {
        return ECG_ERR_NULL;
    }
    if (bf->finished || bf->q_len >= ECG_BEATFEAT_QUEUE ||
        (bf->n_beats > 0u && beat->index <= bf->last_r)) {
        return ECG_ERR_STATE;
    }
    if (bf->n_beats > 0u) {
        const uint64_t iv = beat->index - bf->last_r;
        bf->iv[bf->n_beats & IV_MASK] = iv > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)iv;
    }
    e = &bf->q[(bf->q_head + bf->q_len) % ECG_BEATFEAT_QUEUE];
    e->beat = *beat;
    e->late = 0u;
    bf->q_len++;
    bf->last_r = beat->index;
    bf->n_beats++;
    bf->stats.beats_in++;
    capture_ready(bf); /* a beat reported after its window is complete */
    return ECG_OK;
}

void ecg_beatfeat_finish(ecg_beatfeat_t *bf)
{
    if (bf == NULL) {
        return;
    }
    bf->finished = 1u;
    capture_ready(bf);
}

static float f32(int64_t v)
{
    return (float)v;
}

/* The nine RR features of beat n (beats.py rr_features), quantized. */
static void rr_features(const ecg_beatfeat_t *bf, uint64_t n, int8_t *out)
{
    const float fs = bf->cfg.fs_hz;
    int64_t pre, post, L = 0, G = 0, V = 0, nl = 0, ng = 0, nv = 0;
    float f[ECG_BEATFEAT_RR_LEN];
    uint64_t k;
    uint32_t i;
    if (n >= 1u) {
        pre = (int64_t)bf->iv[n & IV_MASK];
    } else if (bf->n_beats > 1u) {
        pre = (int64_t)bf->iv[1u]; /* the first beat borrows I_1 */
    } else {
        pre = (int64_t)floor((double)fs + 0.5); /* a lone beat: round(fs) */
    }
    post = n + 1u < bf->n_beats ? (int64_t)bf->iv[(n + 1u) & IV_MASK] : pre;
    for (k = n >= RR_LOCAL_N ? n - RR_LOCAL_N + 1u : 1u; k <= n; k++) { /* k = max(1, n-7)..n */
        L += (int64_t)bf->iv[k & IV_MASK];
        nl++;
    }
    for (k = n >= RR_LONG_N ? n - RR_LONG_N + 1u : 1u; k <= n; k++) { /* k = max(1, n-63)..n */
        G += (int64_t)bf->iv[k & IV_MASK];
        ng++;
    }
    for (k = n >= RR_LOCAL_N - 1u ? n - RR_LOCAL_N + 2u : 2u; k <= n; k++) { /* max(2, n-6)..n */
        if (k >= 2u) {
            const int64_t d = (int64_t)bf->iv[k & IV_MASK] - (int64_t)bf->iv[(k - 1u) & IV_MASK];
            V += d < 0 ? -d : d;
            nv++;
        }
    }
    if (nl == 0) {
        L = pre;
        nl = 1;
    }
    if (ng == 0) {
        G = pre;
        ng = 1;
    }
    if (nv == 0) {
        nv = 1; /* V is 0 */
    }
    f[0] = f32(pre) / fs;
    f[1] = f32(post) / fs;
    f[2] = f32(L) / f32(nl) / fs;
    f[3] = f32(pre * nl) / f32(L);
    f[4] = f32(post * nl) / f32(L);
    f[5] = f32(pre) / f32(post);
    f[6] = f32(pre * ng) / f32(G);
    f[7] = f32(L * ng) / f32(G * nl);
    f[8] = f32(V * nl) / f32(L * nv);
    for (i = 0; i < ECG_BEATFEAT_RR_LEN; i++) {
        const float v = clampf(f[i], 0.0f, i < 3u ? RR_SECONDS_MAX : RR_RATIO_MAX);
        out[i] = quantize(v, bf->cfg.rr_scale, bf->cfg.rr_zero_point);
    }
}

int ecg_beatfeat_next(ecg_beatfeat_t *bf, ecg_beatfeat_beat_t *out)
{
    ecg_beatfeat_beat_t *e;
    if (bf == NULL || out == NULL || bf->q_cap == 0u) {
        return 0;
    }
    if (!bf->finished && bf->n_out + 1u >= bf->n_beats) {
        return 0; /* the successor is not known yet */
    }
    e = &bf->q[bf->q_head];
    rr_features(bf, bf->n_out, e->rr);
    *out = *e;
    bf->q_head = (uint8_t)((bf->q_head + 1u) % ECG_BEATFEAT_QUEUE);
    bf->q_len--;
    bf->q_cap--;
    bf->n_out++;
    bf->stats.beats_out++;
    if (out->late) {
        bf->stats.late++;
    }
    return 1;
}

size_t ecg_beatfeat_pending(const ecg_beatfeat_t *bf)
{
    return bf != NULL ? bf->q_len : 0u;
}

void ecg_beatfeat_get_stats(const ecg_beatfeat_t *bf, ecg_beatfeat_stats_t *out)
{
    if (bf != NULL && out != NULL) {
        *out = bf->stats;
    }
}

#include "ecg/ecg_trainer.h"

#include <string.h>

#define N_CLS ECG_CLASSIFIER_N_CLASSES
#define EMB_LEN ECG_CLASSIFIER_EMBEDDING_LEN
#define BIAS_COL EMB_LEN /* column of the bias in the float working set */

void ecg_trainer_default_cfg(ecg_trainer_cfg_t *cfg)
{
    if (cfg == NULL) {
        return;
    }
    cfg->iterations = 50u;
    cfg->step_scale = 1.0f;
    cfg->momentum = 0.9f;
    cfg->l2 = 1.0f;
    cfg->balance_prior = 300.0f;
    cfg->match_tolerance_samples = 0u;
}

static int finite_at_least(float x, float lo)
{
    return x >= lo && x <= 3.0e38f; /* false for NaN and infinities */
}

ecg_err_t ecg_trainer_init(ecg_trainer_t *t, const ecg_trainer_cfg_t *cfg)
{
    if (t == NULL || cfg == NULL) {
        return ECG_ERR_NULL;
    }
    if (cfg->iterations < 1u || cfg->iterations > 10000u || !(cfg->step_scale > 0.0f) ||
        cfg->step_scale > 2.0f || !finite_at_least(cfg->momentum, 0.0f) ||
        !(cfg->momentum < 1.0f) || !finite_at_least(cfg->l2, 0.0f) ||
        !finite_at_least(cfg->balance_prior, 0.0f)) {
        return ECG_ERR_RANGE;
    }
    memset(t, 0, sizeof(*t));
    t->cfg = *cfg;
    return ECG_OK;
}

/* Ring position of the k-th oldest beat. */
static uint32_t ring_pos(const ecg_trainer_t *t, uint32_t k)
{
    const uint32_t p = t->first + k;
    return p >= ECG_TRAINER_MAX_BEATS ? p - ECG_TRAINER_MAX_BEATS : p;
}

ecg_err_t ecg_trainer_add_beat(ecg_trainer_t *t, uint32_t sample_index, const int8_t *embedding)
{
    uint32_t p;
    if (t == NULL || embedding == NULL) {
        return ECG_ERR_NULL;
    }
    if (t->count > 0u && sample_index <= t->sample_index[ring_pos(t, t->count - 1u)]) {
        return ECG_ERR_RANGE;
    }
    if (t->count == ECG_TRAINER_MAX_BEATS) { /* drop the oldest */
        if (t->label[t->first] != ECG_TRAINER_UNLABELLED) {
            t->n_labelled--;
        }
        t->first = ring_pos(t, 1u);
        t->count--;
    }
    p = ring_pos(t, t->count);
    t->sample_index[p] = sample_index;
    memcpy(t->embedding[p], embedding, EMB_LEN);
    t->label[p] = ECG_TRAINER_UNLABELLED;
    t->count++;
    return ECG_OK;
}

ecg_err_t ecg_trainer_label(ecg_trainer_t *t, uint32_t sample_index, uint8_t beat_class)
{
    uint32_t lo = 0u, hi, best = 0u, best_dist = 0xFFFFFFFFu, p;
    if (t == NULL) {
        return ECG_ERR_NULL;
    }
    if (beat_class >= N_CLS) {
        return ECG_ERR_RANGE;
    }
    if (t->count == 0u) {
        return ECG_ERR_STATE;
    }
    /* lower bound: the first buffered beat at or after sample_index (indices increase) */
    hi = t->count;
    while (lo < hi) {
        const uint32_t mid = lo + (hi - lo) / 2u;
        if (t->sample_index[ring_pos(t, mid)] < sample_index) {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    if (lo > 0u) { /* the beat before: checked first, so it wins a tie */
        best = lo - 1u;
        best_dist = sample_index - t->sample_index[ring_pos(t, best)];
    }
    if (lo < t->count) {
        const uint32_t d = t->sample_index[ring_pos(t, lo)] - sample_index;
        if (d < best_dist) {
            best = lo;
            best_dist = d;
        }
    }
    if (best_dist > t->cfg.match_tolerance_samples) {
        return ECG_ERR_STATE;
    }
    p = ring_pos(t, best);
    if (t->label[p] == ECG_TRAINER_UNLABELLED) {
        t->n_labelled++;
    }
    t->label[p] = beat_class;
    return ECG_OK;
}

void ecg_trainer_clear_labels(ecg_trainer_t *t)
{
    if (t == NULL) {
        return;
    }
    memset(t->label, ECG_TRAINER_UNLABELLED, sizeof(t->label));
    t->n_labelled = 0u;
}

uint32_t ecg_trainer_count(const ecg_trainer_t *t)
{
    return t == NULL ? 0u : t->count;
}

uint32_t ecg_trainer_labelled(const ecg_trainer_t *t)
{
    return t == NULL ? 0u : t->n_labelled;
}

float ecg_trainer_last_loss(const ecg_trainer_t *t)
{
    return t == NULL ? 0.0f : t->last_loss;
}

/* ------------------------------------------------------------------------------------------ */
/* Deterministic float helpers (no libm: the same bits from glibc and newlib)                   */

static float bits_to_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static uint32_t float_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

/* exp(x) for x <= 0: Cody-Waite reduction x = k ln2 + r, |r| <= ln2 / 2, degree-7 Taylor
 * polynomial in Horner form, times 2^k built from the exponent bits. Relative error < 2e-7;
 * 0 below -87 (no denormals). */
static float exp_nonpositive(float x)
{
    int32_t k;
    float r, p;
    if (x < -87.0f) {
        return 0.0f;
    }
    k = (int32_t)(x * 1.44269504f - 0.5f); /* x <= 0: truncation toward zero rounds to nearest */
    r = x - (float)k * 0.693145751953125f;
    r = r - (float)k * 1.42860682e-6f;
    p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    return p * bits_to_float((uint32_t)(k + 127) << 23);
}

/* log(x) for a normal x > 0: x = 2^e * m with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s),
 * s = (m - 1) / (m + 1), odd series to s^11. Absolute error < 1e-7 on log m. */
static float log_positive(float x)
{
    const uint32_t u = float_to_bits(x);
    int32_t e = (int32_t)((u >> 23) & 0xFFu) - 127;
    float m = bits_to_float((u & 0x007FFFFFu) | 0x3F800000u); /* [1, 2) */
    float s, s2, p;
    if (m > 1.41421356f) {
        m = m * 0.5f;
        e++;
    }
    s = (m - 1.0f) / (m + 1.0f);
    s2 = s * s;
    p = 1.0f / 11.0f;
    p = p * s2 + 1.0f / 9.0f;
    p = p * s2 + 1.0f / 7.0f;
    p = p * s2 + 1.0f / 5.0f;
    p = p * s2 + 1.0f / 3.0f;
    p = p * s2 + 1.0f;
    return (float)e * 0.693147181f + 2.0f * s * p;
}

/* Round half away from zero, clamped to [lo, hi]; NaN gives lo. */
static int32_t round_clamp(float x, int32_t lo, int32_t hi)
{
    int32_t q;
    float frac;
    if (!(x > (float)lo)) {
        return lo;
    }
    if (!(x < (float)hi)) {
        return hi;
    }
    q = (int32_t)x;         /* toward zero */
    frac = x - (float)q;    /* exact: |x| < 2^31 and the fraction is 0 from 2^23 on */
    if (frac >= 0.5f) {
        q++;
    } else if (frac <= -0.5f) {
        q--;
    }
    return q < lo ? lo : (q > hi ? hi : q);
}

/* 2^n, exactly (repeated doubling or halving; |n| <= 62). */
static double pow2(int32_t n)
{
    double r = 1.0;
    for (; n > 0; n--) {
        r *= 2.0;
    }
    for (; n < 0; n++) {
        r *= 0.5;
    }
    return r;
}

/* ------------------------------------------------------------------------------------------ */
/* Training                                                                                     */

/* Real embedding of one buffered beat, x[i] = embedding_scale * (e[i] - zero_point). */
static void embedding_real(const int8_t *e, float *x)
{
    uint32_t i;
    for (i = 0; i < EMB_LEN; i++) {
        x[i] = ECG_MODEL_EMBEDDING_SCALE * (float)((int32_t)e[i] - ECG_MODEL_EMBEDDING_ZERO_POINT);
    }
}

/* Logits of the float head w (bias first, then inputs 0..15). */
static void logits_real(float w[N_CLS][EMB_LEN + 1u], const float *x, float *z)
{
    uint32_t o, i;
    for (o = 0; o < N_CLS; o++) {
        float acc = w[o][BIAS_COL];
        for (i = 0; i < EMB_LEN; i++) {
            acc += w[o][i] * x[i];
        }
        z[o] = acc;
    }
}

/* Softmax probabilities of z into p; returns the sum of exp(z - max z) (>= 1) and the max. */
static float softmax(const float *z, float *p, float *zmax)
{
    float m = z[0], s = 0.0f, inv;
    uint32_t o;
    for (o = 1; o < N_CLS; o++) {
        if (z[o] > m) {
            m = z[o];
        }
    }
    for (o = 0; o < N_CLS; o++) {
        p[o] = exp_nonpositive(z[o] - m);
        s += p[o];
    }
    inv = 1.0f / s;
    for (o = 0; o < N_CLS; o++) {
        p[o] = p[o] * inv;
    }
    *zmax = m;
    return s;
}

/* Start head -> float master weights (t->w0) and weight scales. */
static ecg_err_t dequantize_start(ecg_trainer_t *t, const ecg_classifier_head_t *start,
                                  float *wscale)
{
    const ecg_nn_fc_params_t *fc = &start->fc;
    uint32_t o, i;
    for (o = 0; o < N_CLS; o++) {
        const ecg_nn_quant_t *q = &fc->quant[fc->per_channel ? o : 0u];
        const double m = (double)q->multiplier * pow2(q->shift - 31);
        const float s =
            (float)(m * (double)start->logits_scale / (double)ECG_MODEL_EMBEDDING_SCALE);
        if (!(s > 0.0f) || !(s < 3.0e38f)) {
            return ECG_ERR_CONFIG;
        }
        wscale[o] = s;
        for (i = 0; i < EMB_LEN; i++) {
            t->w0[o][i] = s * (float)((int32_t)fc->weights[o * EMB_LEN + i] + fc->weights_offset);
        }
        t->w0[o][BIAS_COL] =
            fc->bias != NULL ? (ECG_MODEL_EMBEDDING_SCALE * s) * (float)fc->bias[o] : 0.0f;
    }
    return ECG_OK;
}

/* Gradient of the loss at t->w into t->g (and the loss when want_loss). a: class weights. */
static float gradient(ecg_trainer_t *t, const float *a, int want_loss)
{
    float x[EMB_LEN], z[N_CLS], p[N_CLS], zmax, s, loss = 0.0f;
    const float l2 = t->cfg.l2;
    uint32_t k, o, i;
    for (o = 0; o < N_CLS; o++) {
        for (i = 0; i <= BIAS_COL; i++) {
            const float d = t->w[o][i] - t->w0[o][i];
            t->g[o][i] = l2 * d;
            if (want_loss) {
                loss += 0.5f * l2 * d * d;
            }
        }
    }
    for (k = 0; k < t->count; k++) {
        const uint32_t pos = ring_pos(t, k);
        const uint32_t y = t->label[pos];
        if (y == ECG_TRAINER_UNLABELLED) {
            continue;
        }
        embedding_real(t->embedding[pos], x);
        logits_real(t->w, x, z);
        s = softmax(z, p, &zmax);
        if (want_loss) { /* CE = log sum exp(z - max) - (z_y - max) */
            loss += a[y] * (log_positive(s) - (z[y] - zmax));
        }
        for (o = 0; o < N_CLS; o++) {
            const float d = a[y] * (o == y ? p[o] - 1.0f : p[o]);
            t->g[o][BIAS_COL] += d;
            for (i = 0; i < EMB_LEN; i++) {
                t->g[o][i] += d * x[i];
            }
        }
    }
    return loss;
}

/* Float master weights -> int8 tables, as the model's head is quantized (file documentation). */
static ecg_err_t quantize(const ecg_trainer_t *t, const ecg_classifier_head_t *start,
                          const float *wscale_start, ecg_classifier_head_tables_t *out)
{
    ecg_classifier_head_tables_t q;
    uint32_t o, i;
    for (o = 0; o < N_CLS; o++) {
        float maxabs = 0.0f, ws, bs;
        for (i = 0; i < EMB_LEN; i++) {
            const float v = t->w[o][i] < 0.0f ? -t->w[o][i] : t->w[o][i];
            if (v > maxabs) {
                maxabs = v;
            }
        }
        ws = maxabs > 0.0f ? maxabs / 127.0f : wscale_start[o];
        for (i = 0; i < EMB_LEN; i++) {
            q.weights[o][i] = (int8_t)round_clamp(t->w[o][i] / ws, -127, 127);
        }
        bs = ECG_MODEL_EMBEDDING_SCALE * ws;
        q.bias[o] = round_clamp(t->w[o][BIAS_COL] / bs, INT32_MIN, INT32_MAX);
        if (ecg_nn_quantize_multiplier((double)ECG_MODEL_EMBEDDING_SCALE * (double)ws /
                                           (double)start->logits_scale,
                                       &q.quant[o]) != ECG_OK) {
            return ECG_ERR_RANGE;
        }
    }
    q.logits_scale = start->logits_scale;
    q.logits_zero_point = start->fc.output_offset;
    *out = q;
    return ECG_OK;
}

ecg_err_t ecg_trainer_train(ecg_trainer_t *t, const ecg_classifier_head_t *start,
                            ecg_classifier_head_tables_t *out)
{
    float wscale_start[N_CLS], a[N_CLS], step, curvature = 0.0f, x[EMB_LEN];
    uint32_t n_class[N_CLS] = {0u, 0u, 0u, 0u, 0u};
    uint32_t k, o, i, it;
    const float mu = t == NULL ? 0.0f : t->cfg.momentum;
    ecg_err_t err;
    if (t == NULL || start == NULL || out == NULL) {
        return ECG_ERR_NULL;
    }
    err = ecg_classifier_check_head(start);
    if (err != ECG_OK) {
        return ECG_ERR_CONFIG;
    }
    if (t->n_labelled == 0u) {
        return ECG_ERR_STATE;
    }
    err = dequantize_start(t, start, wscale_start);
    if (err != ECG_OK) {
        return err;
    }
    /* class weights and the curvature bound */
    for (k = 0; k < t->count; k++) {
        const uint32_t y = t->label[ring_pos(t, k)];
        if (y != ECG_TRAINER_UNLABELLED) {
            n_class[y]++;
        }
    }
    for (o = 0; o < N_CLS; o++) {
        const float den = (float)n_class[o] + t->cfg.balance_prior;
        a[o] = den > 0.0f ? 1.0f / den : 0.0f;
    }
    for (k = 0; k < t->count; k++) {
        const uint32_t pos = ring_pos(t, k);
        const uint32_t y = t->label[pos];
        float sq = 1.0f; /* the bias input */
        if (y == ECG_TRAINER_UNLABELLED) {
            continue;
        }
        embedding_real(t->embedding[pos], x);
        for (i = 0; i < EMB_LEN; i++) {
            sq += x[i] * x[i];
        }
        curvature += a[y] * sq;
    }
    curvature = 0.5f * curvature + t->cfg.l2;
    step = t->cfg.step_scale / curvature;
    /* Nesterov momentum on the look-ahead point w: g = grad(w), v' = mu v - step g,
     * w' = w + mu^2 v - (1 + mu) step g (= the look-ahead of the classical form). */
    memcpy(t->w, t->w0, sizeof(t->w));
    memset(t->v, 0, sizeof(t->v));
    for (it = 0; it < t->cfg.iterations; it++) {
        (void)gradient(t, a, 0);
        for (o = 0; o < N_CLS; o++) {
            for (i = 0; i <= BIAS_COL; i++) {
                const float sg = step * t->g[o][i];
                const float v_old = t->v[o][i];
                t->v[o][i] = mu * v_old - sg;
                t->w[o][i] = t->w[o][i] + mu * mu * v_old - (1.0f + mu) * sg;
            }
        }
    }
    t->last_loss = gradient(t, a, 1);
    return quantize(t, start, wscale_start, out);
}

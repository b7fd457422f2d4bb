#include "ecg/ecg_qrs.h"

#include <math.h>

#define HIST_MASK (ECG_QRS_HISTORY_MAX_SAMPLES - 1u)
#define SLOPE_MASK (ECG_QRS_SLOPE_MAX_SAMPLES - 1u)
#define PI_F 3.14159265358979f

void ecg_qrs_default_cfg(ecg_qrs_cfg_t *cfg, float fs_hz)
{
    if (cfg == NULL) {
        return;
    }
    cfg->fs_hz = fs_hz;
    cfg->filter_delay_samples = 0.0f;
    cfg->bandpass_hz = 14.0f;
    cfg->bandpass_q = 1.0f;
    cfg->slope_ms = 12.0f;
    cfg->mwi_ms = 80.0f;
    cfg->peak_hold_ms = 50.0f;
    cfg->refractory_ms = 200.0f;
    cfg->twave_ms = 360.0f;
    cfg->twave_slope_frac = 0.6f;
    cfg->pwave_ms = 300.0f;
    cfg->weak_slope_frac = 1.0f;
    cfg->pwave_height_frac = 1.0f;
    cfg->threshold_frac = 0.3125f;
    cfg->threshold_noise_gain = 1.3f;
    cfg->threshold_activity_gain = 0.5f;
    cfg->activity_clean = 0.25f;
    cfg->searchback_rr_frac = 1.75f;
    cfg->searchback_frac = 0.5f;
    cfg->searchback_gap_frac = 1.5f;
    cfg->searchback_min_ms = 360.0f;
    cfg->learn_ms = 2000.0f;
}

static int in_range(float v, float lo, float hi)
{
    return v >= lo && v <= hi; /* false for NaN */
}

static uint16_t ms_to_samples(float ms, float fs_hz)
{
    return (uint16_t)(ms * fs_hz / 1000.0f + 0.5f);
}

ecg_err_t ecg_qrs_init(ecg_qrs_t *q, const ecg_qrs_cfg_t *cfg)
{
    float k, a0;
    if (q == NULL || cfg == NULL) {
        return ECG_ERR_NULL;
    }
    if (!in_range(cfg->fs_hz, ECG_QRS_MIN_FS_HZ, ECG_QRS_MAX_FS_HZ) ||
        !in_range(cfg->filter_delay_samples, 0.0f, 200.0f) ||
        !in_range(cfg->bandpass_hz, 5.0f, 30.0f) || !in_range(cfg->bandpass_q, 0.3f, 5.0f) ||
        !in_range(cfg->slope_ms, 2.0f, 30.0f) || !in_range(cfg->mwi_ms, 40.0f, 190.0f) ||
        !in_range(cfg->peak_hold_ms, 20.0f, 200.0f) ||
        !in_range(cfg->refractory_ms, 150.0f, 300.0f) || !in_range(cfg->twave_ms, 200.0f, 500.0f) ||
        !in_range(cfg->twave_slope_frac, 0.0f, 1.0f) ||
        !in_range(cfg->pwave_ms, 150.0f, 400.0f) || !in_range(cfg->weak_slope_frac, 0.0f, 1.0f) ||
        !in_range(cfg->pwave_height_frac, 0.0f, 1.0f) ||
        !in_range(cfg->threshold_frac, 0.05f, 0.9f) ||
        !in_range(cfg->threshold_noise_gain, 0.0f, 4.0f) ||
        !in_range(cfg->threshold_activity_gain, 0.0f, 20.0f) ||
        !in_range(cfg->activity_clean, 0.0f, 1.0f) ||
        !in_range(cfg->searchback_rr_frac, 1.0f, 3.0f) ||
        !in_range(cfg->searchback_frac, 0.1f, 1.0f) ||
        !in_range(cfg->searchback_gap_frac, 1.0f, 3.0f) ||
        !in_range(cfg->searchback_min_ms, 150.0f, 500.0f) ||
 !in_range(cfg->learn_ms, 1000.0f, 8000.0f)) {
        return ECG_ERR_RANGE;
    }
    q->cfg = *cfg;
    q->slope_n = ms_to_samples(cfg->slope_ms, cfg->fs_hz);
    if (q->slope_n < 1u) {
        q->slope_n = 1u;
    }
    q->mwi_n = ms_to_samples(cfg->mwi_ms, cfg->fs_hz);
    q->hold_n = ms_to_samples(cfg->peak_hold_ms, cfg->fs_hz);
    q->refractory_n = ms_to_samples(cfg->refractory_ms, cfg->fs_hz);
    q->twave_n = ms_to_samples(cfg->twave_ms, cfg->fs_hz);
    q->learn_n = (uint16_t)(cfg->learn_ms * cfg->fs_hz / 1000.0f > 65535.0f
                                ? 65535u
                                : ms_to_samples(cfg->learn_ms, cfg->fs_hz));
    q->search_n = (uint16_t)(q->mwi_n + q->slope_n + ms_to_samples(20.0f, cfg->fs_hz));
    q->delay_n = (int32_t)(cfg->filter_delay_samples + 0.5f);
    q->pwave_n = ms_to_samples(cfg->pwave_ms, cfg->fs_hz);
    q->sb_min_n = ms_to_samples(cfg->searchback_min_ms, cfg->fs_hz);
    q->decide_n = (uint16_t)(q->refractory_n + q->mwi_n / 2u + q->hold_n);
    q->decide_weak_n = (uint16_t)(q->pwave_n + q->mwi_n / 2u + q->hold_n);
    if (q->slope_n >= ECG_QRS_SLOPE_MAX_SAMPLES || q->mwi_n >= ECG_QRS_MWI_MAX_SAMPLES ||
        (uint32_t)q->search_n + q->hold_n + ECG_QRS_BLOCK >= ECG_QRS_HISTORY_MAX_SAMPLES) {
        return ECG_ERR_CONFIG;
    }
    /* Band-pass section (RBJ, constant 0 dB peak gain): b = {k/Q, 0, -k/Q} / a0. */
    k = tanf(PI_F * cfg->bandpass_hz / cfg->fs_hz);
    a0 = 1.0f + k / cfg->bandpass_q + k * k;
    q->bp_c[0] = (k / cfg->bandpass_q) / a0;
    q->bp_c[1] = -(k / cfg->bandpass_q) / a0;
    q->bp_c[2] = 2.0f * (k * k - 1.0f) / a0;
    q->bp_c[3] = (1.0f - k / cfg->bandpass_q + k * k) / a0;
    ecg_qrs_reset(q);
    return ECG_OK;
}

void ecg_qrs_reset(ecg_qrs_t *q)
{
    uint32_t i;
    q->bp_x1 = q->bp_x2 = q->bp_y1 = q->bp_y2 = 0.0f;
    for (i = 0; i < ECG_QRS_HISTORY_MAX_SAMPLES; i++) {
        q->hist[i] = 0.0f;
    }
    for (i = 0; i < ECG_QRS_SLOPE_MAX_SAMPLES; i++) {
        q->bp_hist[i] = 0.0f;
    }
    for (i = 0; i < ECG_QRS_MWI_MAX_SAMPLES; i++) {
        q->mwi_buf[i] = 0.0f;
    }
    for (i = 0; i < ECG_QRS_LEVELS; i++) {
        q->sig_lv[i] = 0.0f;
        q->noise_lv[i] = 0.0f;
    }
    q->mwi_sum = q->mwi_fresh = 0.0f;
    q->mwi_pos = 0u;
    q->n = 0u;
    q->pk_val = 0.0f;
    q->prev_mwi = 0.0f;
    q->pk_index = 0u;
    q->sig_mean = q->noise_mean = q->threshold = 0.0f;
    q->sig_pos = q->noise_pos = 0u;
    q->learn_max = 0.0f;
    q->learning = 1u;
    q->last_r = 0u;
    q->gap_from = UINT64_MAX;
    q->sb_due = UINT64_MAX;
    q->pend_due = UINT64_MAX;
    q->next_due = UINT64_MAX;
    q->pk_due = 0u;
    q->have_beat = 0u;
    q->last_slope = 0.0f;
    q->slope_mean = 0.0f;
    q->rr_mean = 0.0f;
    q->sb.valid = 0u;
    q->pend.valid = 0u;
    q->activity = 0.0f;
    q->gap_sum = 0.0f;
    q->gap_count = 0u;

}

static float mean8(const float *v)
{
    float s = 0.0f;
    uint32_t i;
    for (i = 0; i < ECG_QRS_LEVELS; i++) {
        s += v[i];
    }
    return s * (1.0f / (float)ECG_QRS_LEVELS);
}

static void update_threshold(ecg_qrs_t *q)
{
    float frac;
    q->sig_mean = mean8(q->sig_lv);
    q->noise_mean = mean8(q->noise_lv);
    /* The threshold's place between noise and signal level rises with their ratio, so that it
     * tightens during noise bursts. */
    frac = q->cfg.threshold_frac;
    if (q->sig_mean > 0.0f) {
        frac += q->cfg.threshold_noise_gain * (q->noise_mean / q->sig_mean);
    }
    if (q->activity > q->cfg.activity_clean) {
        frac += q->cfg.threshold_activity_gain * (q->activity - q->cfg.activity_clean);
    }
    if (frac > 0.9f) {
        frac = 0.9f;
    }
    q->threshold = q->noise_mean + frac * (q->sig_mean - q->noise_mean);
}

/* Localise the candidate whose MWI maximum is at pk (filtered-signal index). */
/* First sample of the window in which the candidate whose MWI maximum is at pk is localised. */
static uint64_t localise_first(const ecg_qrs_t *q, uint64_t pk)
{
    uint64_t first = pk >= q->search_n ? pk - q->search_n : 0u;
    if (first + q->slope_n > pk) {
        first = pk >= q->slope_n ? pk - q->slope_n : 0u;
    }
    return first;
}

static void localise(const ecg_qrs_t *q, uint64_t pk, float height, ecg_qrs_candidate_t *c)
{
    uint64_t i;
    float best = -1.0f, slope = 0.0f;
    uint64_t best_i = pk;
    for (i = localise_first(q, pk); i <= pk; i++) {
        const float v = fabsf(q->hist[i & HIST_MASK]);
        if (v > best) {
            best = v;
            best_i = i;
        }
        if (i >= q->slope_n) {
            const float d = fabsf(q->hist[i & HIST_MASK] - q->hist[(i - q->slope_n) & HIST_MASK]);
            if (d > slope) {
                slope = d;
            }
        }
    }
    c->r_index = best_i;
    c->height = height;
    c->slope = slope;
    c->valid = 1u;
}

static void push_level(float *lv, uint8_t *pos, float v)
{
    lv[*pos] = v;
    *pos = (uint8_t)((*pos + 1u) % ECG_QRS_LEVELS);
}

/* Signal quality from the activity between beats: the mean MWI after the refractory period,
 * relative to the beat's own MWI height, smoothed over beats. Clean ECG is quiet between beats in
 * the QRS band; noise is not. */
static uint8_t quality_update(ecg_qrs_t *q, const ecg_qrs_candidate_t *c)
{
    if (q->gap_count > 0u && c->height > 0.0f) {
        const float activity = (q->gap_sum / (float)q->gap_count) / c->height;
        q->activity += (activity - q->activity) * 0.25f;
    }
    q->gap_sum = 0.0f;
    q->gap_count = 0u;
    if (q->activity > ECG_QRS_UNUSABLE_ACTIVITY) {
        return (uint8_t)ECG_QRS_QUALITY_UNUSABLE;
    }
    if (q->activity > ECG_QRS_NOISY_ACTIVITY) {
        return (uint8_t)ECG_QRS_QUALITY_NOISY;
    }
    return (uint8_t)ECG_QRS_QUALITY_GOOD;
}

/* The next sample at which decide() has anything to do: the pending beat's deadline, else the
 * time-based search-back's. */
static void update_next_due(ecg_qrs_t *q)
{
    q->next_due = q->pend.valid ? q->pend_due : q->sb_due;
}

static int accept(ecg_qrs_t *q, const ecg_qrs_candidate_t *c, uint8_t searchback,
                  ecg_qrs_beat_t *beat)
{
    const int64_t raw = (int64_t)c->r_index - q->delay_n;
    uint32_t rr = 0u;
    if (q->have_beat) {
        rr = (uint32_t)(c->r_index - q->last_r);
        if (q->rr_mean <= 0.0f) {
            q->rr_mean = (float)rr;
        } else {
            q->rr_mean += ((float)rr - q->rr_mean) * 0.125f;
        }
    }
    push_level(q->sig_lv, &q->sig_pos, c->height);
    update_threshold(q);
    q->last_r = c->r_index;
    q->gap_from = c->r_index + q->refractory_n + 1u;
    q->sb_due = q->rr_mean > 0.0f
                    ? c->r_index + (uint64_t)(q->cfg.searchback_rr_frac * q->rr_mean) + 1u
                    : UINT64_MAX;
    update_next_due(q);
    q->last_slope = c->slope;
    q->slope_mean = q->slope_mean > 0.0f ? q->slope_mean + (c->slope - q->slope_mean) * 0.125f
                                         : c->slope;
    q->have_beat = 1u;
    q->sb.valid = 0u;
    beat->index = raw > 0 ? (uint64_t)raw : 0u;
    beat->rr_samples = rr;
    beat->quality = quality_update(q, c);
    beat->searchback = searchback;
    return 1;
}

static void reject(ecg_qrs_t *q, float height)
{
    push_level(q->noise_lv, &q->noise_pos, height);
    update_threshold(q);
}

static int pend_is_weak(const ecg_qrs_t *q)
{
    return q->pend.slope < q->cfg.weak_slope_frac * q->slope_mean;
}

/* Make `c` the pending beat and fix when it will be decided: a pending beat as steep as the
 * recent beats after the refractory period, a weak one after the P-wave window, in case the true
 * QRS follows. (slope_mean only changes when a beat is accepted, and no beat is accepted while one
 * is pending, so the deadline stays valid.) */
static void set_pending(ecg_qrs_t *q, const ecg_qrs_candidate_t *c)
{
    q->pend = *c;
    q->pend_due = c->r_index + (pend_is_weak(q) ? q->decide_weak_n : q->decide_n);
    update_next_due(q);
}

/* Emit the pending beat. */
static int emit_pending(ecg_qrs_t *q, ecg_qrs_beat_t *beat)
{
    const ecg_qrs_candidate_t c = q->pend;
    q->pend.valid = 0u;
    return accept(q, &c, 0u, beat);
}

/* Classify a confirmed candidate peak; returns 1 when a beat was emitted. A candidate above
 * threshold becomes the pending beat; within the refractory period of the pending beat, the larger
 * of the two wins (a sharp P wave followed by its QRS keeps the QRS). */
static int classify(ecg_qrs_t *q, uint64_t pk, float height, ecg_qrs_beat_t *beat)
{
    ecg_qrs_candidate_t c;
    int64_t since;
    float base_slope;
    int got = 0;
    if (q->learning) {
        if (height > q->learn_max) {
            q->learn_max = height;
        }
        if (q->n >= q->learn_n && q->learn_max > 0.0f) {
            uint32_t i;
            for (i = 0; i < ECG_QRS_LEVELS; i++) {
                q->sig_lv[i] = 0.5f * q->learn_max;
                q->noise_lv[i] = 0.0f;
            }
            update_threshold(q);
            q->learning = 0u;
        }
        return 0;
    }
    /* Settle without localising what the bounds r in [localise_first(pk), pk] already decide:
     * - inside the refractory period of the previous beat, a candidate is ignored unless it is
     *   larger than a pending beat (which it would replace);
     * - most candidates are small ripples of the MWI between beats: below threshold, not larger
     *   than the pending beat, unable to become the search-back candidate (too close to the last
     *   beat, or not larger than the current one); outside the refractory period they are noise. */
    if (q->pend.valid || q->have_beat) {
        const uint64_t base = q->pend.valid ? q->pend.r_index : q->last_r;
        const int64_t since_hi = (int64_t)pk - (int64_t)base;
        const int64_t since_lo = (int64_t)localise_first(q, pk) - (int64_t)base;
        const int not_larger = !q->pend.valid || height <= q->pend.height;
        if (since_hi < (int64_t)q->refractory_n && not_larger) {
            return 0;
        }
        if (height <= q->threshold && since_lo >= (int64_t)q->refractory_n && not_larger &&
            (q->pend.valid || (q->sb.valid && height <= q->sb.height) ||
             since_hi < (int64_t)q->sb_min_n)) {
            reject(q, height);
            return 0;
        }
    }
    localise(q, pk, height, &c);
    if (q->pend.valid) {
        since = (int64_t)c.r_index - (int64_t)q->pend.r_index;
        base_slope = q->pend.slope;
        if (since < (int64_t)q->refractory_n) {
            if (c.height > q->pend.height) {
                set_pending(q, &c);
            }
            return 0;
        }
        /* P wave: a weak pending beat (less steep than the recent beats) followed closely by a
         * candidate much steeper or much larger than it. */
        if (since < (int64_t)q->pwave_n && c.height > q->pend.height && pend_is_weak(q) &&
            (q->pend.slope < q->cfg.twave_slope_frac * c.slope ||
             q->pend.height < q->cfg.pwave_height_frac * c.height)) {
            set_pending(q, &c);
            return 0;
        }
    } else {
        since = q->have_beat ? (int64_t)c.r_index - (int64_t)q->last_r : INT32_MAX;
        base_slope = q->last_slope;
        if (since < (int64_t)q->refractory_n) {
            return 0;
        }
    }
    if (height > q->threshold) {
        if (since < (int64_t)q->twave_n && c.slope < q->cfg.twave_slope_frac * base_slope) {
            reject(q, c.height);
            return 0;
        }
        if (q->pend.valid) {
            got = emit_pending(q, beat);
        } else if (q->sb.valid && q->rr_mean > 0.0f &&
                   (float)since > q->cfg.searchback_gap_frac * q->rr_mean &&
                   c.r_index - q->sb.r_index >= (uint64_t)q->sb_min_n &&
                   q->sb.height > q->cfg.searchback_frac * q->threshold) {
            /* Retroactive search-back: this beat ends an interval too long for the rhythm; the
             * largest candidate inside it is the beat that was missed. */
            const ecg_qrs_candidate_t missed = q->sb;
            got = accept(q, &missed, 1u, beat);
        }
        set_pending(q, &c);
        return got;
    }
    reject(q, c.height);
    if (!q->pend.valid && since >= (int64_t)q->sb_min_n && (!q->sb.valid || c.height > q->sb.height)) {
        q->sb = c;
    }
    return 0;
}

/* Time-based search-back: no beat for searchback_rr_frac mean RR intervals (sb_due). */
static int searchback(ecg_qrs_t *q, ecg_qrs_beat_t *beat)
{
    if (!q->pend.valid && q->n >= q->sb_due && q->sb.valid &&
        q->sb.height > q->cfg.searchback_frac * q->threshold) {
        ecg_qrs_candidate_t c = q->sb;
        return accept(q, &c, 1u, beat);
    }
    return 0;
}

/* The pending beat is decided once no candidate within its refractory period can still come. */
static int decide(ecg_qrs_t *q, ecg_qrs_beat_t *beat)
{
    if (q->pend.valid) {
        return q->n >= q->pend_due ? emit_pending(q, beat) : 0;
    }
    return q->n >= q->sb_due ? searchback(q, beat) : 0;
}

/* Feature of up to ECG_QRS_BLOCK samples: band-pass, slope, MWI into mwi[]. Writes the filtered
 * and band-passed histories ahead of the decision loop; localise() only reads samples at or
 * before the current one, and the history is sized for that look-ahead (see ecg_qrs_init). */
static void feature_block(ecg_qrs_t *q, const float *x_mv, uint32_t count, float *mwi)
{
    const float b0 = q->bp_c[0], na1 = -q->bp_c[2], na2 = -q->bp_c[3];
    const uint32_t slope_n = q->slope_n, mwi_n = q->mwi_n;
    uint32_t n = (uint32_t)q->n, mwi_pos = q->mwi_pos, k;
    float bp_x1 = q->bp_x1, bp_x2 = q->bp_x2, bp_y1 = q->bp_y1, bp_y2 = q->bp_y2;
    float mwi_sum = q->mwi_sum, mwi_fresh = q->mwi_fresh;
    for (k = 0u; k < count; k++, n++) {
        const float x = x_mv[k];
        float bp, slope;
        q->hist[n & HIST_MASK] = x;
        /* feature band-pass: y = b0 (x - x2) - a1 y1 - a2 y2, fused (fmaf is one VFMA on the
         * Cortex-M4F and correctly rounded everywhere, so host and target agree bit for bit) */
        bp = fmaf(na2, bp_y2, fmaf(na1, bp_y1, b0 * (x - bp_x2)));
        bp_x2 = bp_x1;
        bp_x1 = x;
        bp_y2 = bp_y1;
        bp_y1 = bp;
        q->bp_hist[n & SLOPE_MASK] = bp;
        slope = fabsf(bp - q->bp_hist[(n - slope_n) & SLOPE_MASK]);
        /* Moving-window integral. `mwi_fresh` re-sums the window from scratch each time the ring
         * wraps, so float round-off in the running sum cannot accumulate. */
        mwi_sum += slope - q->mwi_buf[mwi_pos];
        mwi_fresh += slope;
        q->mwi_buf[mwi_pos] = slope;
        if (++mwi_pos == mwi_n) {
            mwi_pos = 0u;
            mwi_sum = mwi_fresh;
            mwi_fresh = 0.0f;
        }
        mwi[k] = mwi_sum;
    }
    q->bp_x1 = bp_x1;
    q->bp_x2 = bp_x2;
    q->bp_y1 = bp_y1;
    q->bp_y2 = bp_y2;
    q->mwi_sum = mwi_sum;
    q->mwi_fresh = mwi_fresh;
    q->mwi_pos = (uint16_t)mwi_pos;
}

size_t ecg_qrs_process(ecg_qrs_t *q, const float *x_mv, size_t count, ecg_qrs_beat_t *beats)
{
    size_t done = 0u, nb = 0u;
    while (done < count) {
        float mwi[ECG_QRS_BLOCK];
        const uint32_t len =
            (uint32_t)(count - done < ECG_QRS_BLOCK ? count - done : ECG_QRS_BLOCK);
        uint64_t n = q->n, gap_from = q->gap_from, pk_due = q->pk_due, next_due = q->next_due;
        float prev = q->prev_mwi, pk_val = q->pk_val, gap_sum = q->gap_sum;
        uint32_t gap_count = q->gap_count, k;
        feature_block(q, x_mv + done, len, mwi);
        /* Decisions, sample by sample; q->n is the current sample while a candidate is
         * classified and the next one while pending beats and search-back are decided. The
         * state those calls read or change is synced around them (they are rare). */
        for (k = 0u; k < len; k++, n++) {
            const float m = mwi[k];
            int got = 0;
            if (n >= gap_from) {
                gap_sum += m;
                gap_count++;
            }
            /* Candidate peaks: a rising MWI starts tracking a maximum; it is confirmed when the
             * MWI falls below half of it or after the hold time. */
            if (m > pk_val && (pk_val > 0.0f || m > prev)) {
                pk_val = m;
                q->pk_index = n;
                pk_due = n + q->hold_n;
            } else if (pk_val > 0.0f && (m < 0.5f * pk_val || n >= pk_due)) {
                q->n = n;
                q->gap_sum = gap_sum;
                q->gap_count = gap_count;
                got = classify(q, q->pk_index, pk_val, &beats[nb]);
                gap_sum = q->gap_sum;
                gap_count = q->gap_count;
                gap_from = q->gap_from;
                next_due = q->next_due;
                pk_val = 0.0f;
            }
            prev = m;
            if (!got && n + 1u >= next_due) {
                q->n = n + 1u;
                q->gap_sum = gap_sum;
                q->gap_count = gap_count;
                got = decide(q, &beats[nb]);
                gap_sum = q->gap_sum;
                gap_count = q->gap_count;
                gap_from = q->gap_from;
                next_due = q->next_due;
            }
            if (got) {
                beats[nb++].decided_at = n;
            }
        }
        q->gap_sum = gap_sum;
        q->gap_count = gap_count;
        q->pk_due = pk_due;
        q->n = n;
        q->prev_mwi = prev;
        q->pk_val = pk_val;
        done += len;
    }
    return nb;
}

int ecg_qrs_step(ecg_qrs_t *q, float x_mv, ecg_qrs_beat_t *beat)
{
    return (int)ecg_qrs_process(q, &x_mv, 1u, beat);
}

int ecg_qrs_flush(ecg_qrs_t *q, ecg_qrs_beat_t *beat)
{
    beat->decided_at = q->n > 0u ? q->n - 1u : 0u;
    if (q->pk_val > 0.0f) {
        const float v = q->pk_val;
        q->pk_val = 0.0f;
        if (classify(q, q->pk_index, v, beat)) {
            return 1;
        }
    }
    if (q->pend.valid) {
        return emit_pending(q, beat);
    }
    return searchback(q, beat);
}

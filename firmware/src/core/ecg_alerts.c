#include "ecg/ecg_alerts.h"

#include <math.h>

#include "ecg/ecg_protocol.h"
#include <string.h>

#if ECG_ALERTS_QUEUE_LEN < 2 || ECG_ALERTS_QUEUE_LEN > 255
#error "ECG_ALERTS_QUEUE_LEN must be 2..255"
#endif

#define U16_MAX 65535u
#define MIN_FS_HZ 1u

/* Severity of each type (index 0 unused). */
static const uint8_t k_severity[ECG_ALERT_N_TYPES] = {
    0u,
    ECG_ALERT_SEV_WARNING,  /* BRADY */
    ECG_ALERT_SEV_WARNING,  /* TACHY */
    ECG_ALERT_SEV_URGENT,   /* PAUSE */
    ECG_ALERT_SEV_CRITICAL, /* ASYSTOLE */
    ECG_ALERT_SEV_CRITICAL, /* VT */
    ECG_ALERT_SEV_ADVISORY, /* V_ECTOPY */
    ECG_ALERT_SEV_ADVISORY, /* S_ECTOPY */
    ECG_ALERT_SEV_WARNING,  /* AF */
    ECG_ALERT_SEV_ADVISORY, /* LEAD_OFF */
    ECG_ALERT_SEV_ADVISORY  /* POOR_SIGNAL */
};

/* a - b as a signed distance on the wrapping u32 id / index counters. */
static int32_t diff32(uint32_t a, uint32_t b)
{
    const uint32_t d = a - b;
    return d < 0x80000000u ? (int32_t)d : -(int32_t)(0xFFFFFFFFu - d) - 1;
}

static uint16_t sat16(uint32_t v)
{
    return (uint16_t)(v > U16_MAX ? U16_MAX : v);
}

/* ---------------------------------------------------------------------------------------------
 * Queue
 * ------------------------------------------------------------------------------------------- */

void ecg_alert_queue_init(ecg_alert_queue_t *q)
{
    if (q != NULL) {
        memset(q, 0, sizeof *q);
        q->next_id = 1u;
    }
}

uint32_t ecg_alert_queue_push(ecg_alert_queue_t *q, ecg_alert_t *r)
{
    if (q == NULL || r == NULL) {
        return 0u;
    }
    r->id = q->next_id++;
    if (q->next_id == 0u) {
        q->next_id = 1u; /* id 0 means "none" */
    }
    if (r->episode == 0u) {
        r->episode = r->id;
    }
    q->added++;
    if (q->n >= ECG_ALERTS_QUEUE_LEN) {
        /* lowest severity, oldest first: the first minimum in id order */
        size_t v = 0u;
        size_t i;
        for (i = 1u; i < q->n; i++) {
            if (q->rec[i].severity < q->rec[v].severity) {
                v = i;
            }
        }
        q->dropped++;
        if (r->severity < q->rec[v].severity) {
            return r->id; /* the new record is the least severe: it goes */
        }
        memmove(&q->rec[v], &q->rec[v + 1u], (q->n - 1u - v) * sizeof q->rec[0]);
        q->n--;
    }
    q->rec[q->n++] = *r;
    return r->id;
}

size_t ecg_alert_queue_ack(ecg_alert_queue_t *q, uint32_t id)
{
    size_t k = 0u;
    if (q == NULL) {
        return 0u;
    }
    while (k < q->n && diff32(q->rec[k].id, id) <= 0) {
        k++;
    }
    if (k > 0u) {
        memmove(&q->rec[0], &q->rec[k], (q->n - k) * sizeof q->rec[0]);
        q->n = (uint8_t)(q->n - k);
    }
    if (diff32(id, q->acked) > 0) {
        q->acked = id;
    }
    return k;
}

/* Position of the first record with id > after_id. */
static size_t first_after(const ecg_alert_queue_t *q, uint32_t after_id)
{
    size_t i = 0u;
    while (i < q->n && diff32(q->rec[i].id, after_id) <= 0) {
        i++;
    }
    return i;
}

size_t ecg_alert_queue_count_after(const ecg_alert_queue_t *q, uint32_t after_id)
{
    return q != NULL ? q->n - first_after(q, after_id) : 0u;
}

size_t ecg_alert_queue_get(const ecg_alert_queue_t *q, uint32_t after_id, ecg_alert_t *out,
                           size_t max)
{
    size_t i;
    size_t k = 0u;
    if (q == NULL || out == NULL) {
        return 0u;
    }
    for (i = first_after(q, after_id); i < q->n && k < max; i++) {
        out[k++] = q->rec[i];
    }
    return k;
}

size_t ecg_alert_queue_len(const ecg_alert_queue_t *q)
{
    return q != NULL ? q->n : 0u;
}

uint32_t ecg_alert_queue_last_id(const ecg_alert_queue_t *q)
{
    return q != NULL ? q->next_id - 1u : 0u;
}

uint32_t ecg_alert_queue_dropped(const ecg_alert_queue_t *q)
{
    return q != NULL ? q->dropped : 0u;
}

uint32_t ecg_alert_queue_added(const ecg_alert_queue_t *q)
{
    return q != NULL ? q->added : 0u;
}

/* ---------------------------------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------------------------------- */

void ecg_alerts_default_cfg(ecg_alerts_cfg_t *cfg)
{
    if (cfg == NULL) {
        return;
    }
    memset(cfg, 0, sizeof *cfg);
    cfg->enable_mask = ECG_ALERT_ALL;
    cfg->brady_bpm = 50u;
    cfg->tachy_bpm = 120u;
    cfg->rate_beats = 8u;
    cfg->rate_sustain_s = 5u;
    cfg->pause_ms = 2500u;
    cfg->asystole_ms = 4000u;
    cfg->vt_beats = 3u;
    cfg->vt_bpm = 100u;
    cfg->v_per_min = 10u;
    cfg->s_per_min = 10u;
    cfg->af_beats = 64u;
    cfg->af_nrmssd_permille = 100u;
    cfg->af_entropy_permille = 700u;
    cfg->lead_off_ms = 1000u;
    cfg->poor_signal_s = 10u;
}

static int in_range(unsigned v, unsigned lo, unsigned hi)
{
    return v >= lo && v <= hi;
}

ecg_err_t ecg_alerts_check_cfg(const ecg_alerts_cfg_t *c)
{
    if (c == NULL) {
        return ECG_ERR_NULL;
    }
    if ((c->enable_mask & (uint16_t)~ECG_ALERT_ALL) != 0u || !in_range(c->brady_bpm, 20u, 200u) ||
        !in_range(c->tachy_bpm, 60u, 250u) ||
        !in_range(c->rate_beats, 2u, ECG_ALERTS_MAX_RATE_BEATS) || c->rate_sustain_s > 60u ||
        !in_range(c->pause_ms, 1000u, 10000u) || !in_range(c->asystole_ms, 2000u, 20000u) ||
        !in_range(c->vt_beats, 3u, 50u) || !in_range(c->vt_bpm, 60u, 250u) ||
        c->v_per_min < 1u || c->s_per_min < 1u ||
        !in_range(c->af_beats, ECG_ALERTS_MIN_AF_BEATS, ECG_ALERTS_MAX_AF_BEATS) ||
        c->af_beats % 16u != 0u || !in_range(c->af_nrmssd_permille, 1u, 1000u) ||
        !in_range(c->af_entropy_permille, 1u, 1000u) || c->lead_off_ms > 60000u ||
        !in_range(c->poor_signal_s, 1u, 120u)) {
        return ECG_ERR_RANGE;
    }
    if (c->brady_bpm >= c->tachy_bpm || c->asystole_ms <= c->pause_ms) {
        return ECG_ERR_CONFIG;
    }
    return ECG_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Episodes
 * ------------------------------------------------------------------------------------------- */

static int enabled(const ecg_alerts_t *a, unsigned type)
{
    return (a->cfg.enable_mask & ECG_ALERT_BIT(type)) != 0u;
}

static uint32_t samples_of_ms(const ecg_alerts_t *a, uint32_t ms)
{
    return (uint32_t)(((uint64_t)ms * a->fs_hz + 999u) / 1000u);
}

static uint16_t ms_of_samples(const ecg_alerts_t *a, uint32_t n)
{
    return sat16((uint32_t)(((uint64_t)n * 1000u + a->fs_hz / 2u) / a->fs_hz));
}

/* Rate in bpm of `beats` intervals spanning `samples`, rounded. */
static uint32_t bpm_of(const ecg_alerts_t *a, uint32_t beats, uint32_t samples)
{
    if (samples == 0u) {
        return 255u;
    }
    return (uint32_t)(((uint64_t)60u * a->fs_hz * beats + samples / 2u) / samples);
}

static void queue_record(ecg_alerts_t *a, unsigned type, uint8_t flags, uint32_t episode,
                         const ecg_alert_episode_t *e, uint64_t now_us, uint32_t *id_out)
{
    ecg_alert_t r;
    uint32_t id;
    r.id = 0u;
    r.episode = episode;
    r.type = (uint8_t)type;
    r.severity = k_severity[type];
    r.flags = flags;
    r.start_index = e->start_index;
    r.end_index = e->end_index;
    r.time_us = now_us;
    r.value = e->value;
    r.count = e->count;
    id = ecg_alert_queue_push(&a->q, &r);
    if (id_out != NULL) {
        *id_out = id;
    }
}

static void ep_open(ecg_alerts_t *a, unsigned type, uint32_t start, uint32_t end, uint32_t value,
                    uint32_t count, uint64_t now_us)
{
    ecg_alert_episode_t *e = &a->ep[type];
    e->open = 1u;
    e->start_index = start;
    e->end_index = end;
    e->value = sat16(value);
    e->count = sat16(count);
    queue_record(a, type, ECG_ALERT_FLAG_ONSET, 0u, e, now_us, &e->episode);
}

static void ep_close(ecg_alerts_t *a, unsigned type, uint8_t extra_flags, uint64_t now_us)
{
    ecg_alert_episode_t *e = &a->ep[type];
    if (!e->open) {
        return;
    }
    queue_record(a, type, (uint8_t)(ECG_ALERT_FLAG_END | extra_flags), e->episode, e, now_us,
                 NULL);
    e->open = 0u;
}

/* An event without duration: one record, onset and end. */
static void ep_instant(ecg_alerts_t *a, unsigned type, uint32_t start, uint32_t end,
                       uint32_t value, uint32_t count, uint64_t now_us)
{
    ecg_alert_episode_t e;
    e.open = 0u;
    e.episode = 0u;
    e.start_index = start;
    e.end_index = end;
    e.value = sat16(value);
    e.count = sat16(count);
    queue_record(a, type, ECG_ALERT_FLAG_ONSET | ECG_ALERT_FLAG_END, 0u, &e, now_us, NULL);
}

/* ---------------------------------------------------------------------------------------------
 * Engine life cycle
 * ------------------------------------------------------------------------------------------- */

static void restart_rules(ecg_alerts_t *a, uint32_t index)
{
    memset(a->ep, 0, sizeof a->ep);
    a->origin = index;
    a->have_beat = 0u;
    a->last_beat = index;
    a->last_detect = index;
    memset(a->rr, 0, sizeof a->rr);
    a->rr_n = 0u;
    a->rr_pos = 0u;
    a->rr_sum = 0u;
    a->brady_on = 0u;
    a->tachy_on = 0u;
    a->v_run = 0u;
    a->v_first = index;
    memset(a->v_bin, 0, sizeof a->v_bin);
    memset(a->s_bin, 0, sizeof a->s_bin);
    a->v_sum = 0u;
    a->s_sum = 0u;
    a->sec = index / a->fs_hz;
    a->af_n = 0u;
    a->af_pos = 0u;
    a->af_fail = 0u;
    a->af_had = 0u;
    a->af_last_end = index;
    a->prev_class = 255u;
    a->lead_off = 0u;
    a->lead_off_seen = 0u;
    a->lead_off_since = index;
    a->poor_run = 0u;
    a->good_run = 0u;
    a->poor_beats = 0u;
    a->poor_total = 0u;
}

ecg_err_t ecg_alerts_init(ecg_alerts_t *a, const ecg_alerts_cfg_t *cfg, uint32_t fs_hz)
{
    ecg_err_t err;
    if (a == NULL || cfg == NULL) {
        return ECG_ERR_NULL;
    }
    err = ecg_alerts_check_cfg(cfg);
    if (err != ECG_OK) {
        return err;
    }
    if (fs_hz < MIN_FS_HZ || fs_hz > U16_MAX) {
        return ECG_ERR_RANGE;
    }
    memset(a, 0, sizeof *a);
    a->cfg = *cfg;
    a->fs_hz = fs_hz;
    ecg_alert_queue_init(&a->q);
    restart_rules(a, 0u);
    return ECG_OK;
}

void ecg_alerts_stop(ecg_alerts_t *a, uint32_t index, uint64_t now_us)
{
    unsigned t;
    if (a == NULL) {
        return;
    }
    for (t = 1u; t < ECG_ALERT_N_TYPES; t++) {
        ecg_alert_episode_t *e = &a->ep[t];
        if (e->open) {
            if (t == ECG_ALERT_ASYSTOLE) {
                e->value = ms_of_samples(a, index - e->start_index);
            }
            if (diff32(index, e->end_index) > 0 &&
                (t == ECG_ALERT_ASYSTOLE || t == ECG_ALERT_LEAD_OFF)) {
                e->end_index = index - 1u; /* time-based episodes last to the end */
            }
            ep_close(a, t, ECG_ALERT_FLAG_STREAM_END, now_us);
        }
    }
}

void ecg_alerts_start(ecg_alerts_t *a, uint32_t index, uint32_t fs_hz)
{
    if (a == NULL) {
        return;
    }
    if (fs_hz >= MIN_FS_HZ && fs_hz <= U16_MAX) {
        a->fs_hz = fs_hz;
    }
    restart_rules(a, index);
}

ecg_err_t ecg_alerts_set_cfg(ecg_alerts_t *a, const ecg_alerts_cfg_t *cfg, uint32_t index,
                             uint64_t now_us)
{
    ecg_err_t err;
    if (a == NULL) {
        return ECG_ERR_NULL;
    }
    err = ecg_alerts_check_cfg(cfg);
    if (err != ECG_OK) {
        return err;
    }
    ecg_alerts_stop(a, index, now_us);
    a->cfg = *cfg;
    restart_rules(a, index);
    return ECG_OK;
}

void ecg_alerts_get_cfg(const ecg_alerts_t *a, ecg_alerts_cfg_t *out)
{
    if (a != NULL && out != NULL) {
        *out = a->cfg;
    }
}

void ecg_alerts_note_detection(ecg_alerts_t *a, uint32_t sample_index)
{
    if (a != NULL && diff32(sample_index, a->last_detect) > 0) {
        a->last_detect = sample_index;
    }
}

ecg_alert_queue_t *ecg_alerts_queue(ecg_alerts_t *a)
{
    return a != NULL ? &a->q : NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Rules
 * ------------------------------------------------------------------------------------------- */

/* BRADY / TACHY on the mean of the last rate_beats RR intervals. */
static void rule_rate(ecg_alerts_t *a, unsigned type, uint32_t idx, uint32_t rate, uint64_t now)
{
    const int brady = type == ECG_ALERT_BRADY;
    const uint32_t limit = brady ? a->cfg.brady_bpm : a->cfg.tachy_bpm;
    uint8_t *on = brady ? &a->brady_on : &a->tachy_on;
    uint32_t *since = brady ? &a->brady_since : &a->tachy_since;
    ecg_alert_episode_t *e = &a->ep[type];
    if (!enabled(a, type)) {
        return;
    }
    if (e->open) {
        const int over = brady ? rate >= limit + ECG_ALERTS_RATE_HYST_BPM
                               : rate + ECG_ALERTS_RATE_HYST_BPM <= limit;
        if (over) {
            *on = 0u;
            ep_close(a, type, 0u, now);
            return;
        }
        e->end_index = idx;
        e->count = sat16((uint32_t)e->count + 1u);
        if (brady ? rate < e->value : rate > e->value) {
            e->value = sat16(rate);
        }
        return;
    }
    if (brady ? rate < limit : rate > limit) {
        if (!*on) {
            *on = 1u;
            *since = idx;
        }
        if (idx - *since >= (uint32_t)a->cfg.rate_sustain_s * a->fs_hz) {
            ep_open(a, type, *since, idx, rate, 1u, now);
        }
    } else {
        *on = 0u;
    }
}

static void rate_beat(ecg_alerts_t *a, uint32_t idx, uint32_t rr, uint64_t now)
{
    const uint8_t n = a->cfg.rate_beats;
    uint32_t rate;
    if (rr == 0u || rr > samples_of_ms(a, a->cfg.pause_ms)) {
        return; /* a pause is its own alert (PAUSE / ASYSTOLE), not a slow rate */
    }
    if (a->rr_n == n) {
        a->rr_sum -= a->rr[a->rr_pos];
    } else {
        a->rr_n++;
    }
    a->rr[a->rr_pos] = rr;
    a->rr_sum += rr;
    a->rr_pos = (uint8_t)((a->rr_pos + 1u) % n);
    if (a->rr_n < n) {
        return;
    }
    rate = bpm_of(a, n, a->rr_sum);
    rule_rate(a, ECG_ALERT_BRADY, idx, rate, now);
    rule_rate(a, ECG_ALERT_TACHY, idx, rate, now);
}

/* Ectopy bins: advance the one-second ring to the second of `idx`. */
static void bins_advance(ecg_alerts_t *a, uint32_t idx)
{
    const uint32_t s = idx / a->fs_hz;
    uint32_t steps;
    if (diff32(s, a->sec) <= 0) {
        return;
    }
    steps = s - a->sec;
    if (steps > ECG_ALERTS_ECTOPY_BINS) {
        steps = ECG_ALERTS_ECTOPY_BINS;
    }
    while (steps-- > 0u) {
        const unsigned b = (unsigned)((s - steps) % ECG_ALERTS_ECTOPY_BINS);
        a->v_sum = (uint16_t)(a->v_sum - a->v_bin[b]);
        a->s_sum = (uint16_t)(a->s_sum - a->s_bin[b]);
        a->v_bin[b] = 0u;
        a->s_bin[b] = 0u;
    }
    a->sec = s;
}

static void rule_ectopy(ecg_alerts_t *a, unsigned type, uint32_t idx, int beat, uint64_t now)
{
    const int is_v = type == ECG_ALERT_V_ECTOPY;
    const uint32_t sum = is_v ? a->v_sum : a->s_sum;
    const uint32_t limit = is_v ? a->cfg.v_per_min : a->cfg.s_per_min;
    ecg_alert_episode_t *e = &a->ep[type];
    if (!enabled(a, type)) {
        return;
    }
    if (e->open) {
        if (2u * sum < limit) {
            e->end_index = idx;
            ep_close(a, type, 0u, now);
            return;
        }
        e->end_index = idx;
        if (beat) {
            e->count = sat16((uint32_t)e->count + 1u);
        }
        if (sum > e->value) {
            e->value = sat16(sum);
        }
    } else if (beat && sum >= limit) {
        /* the episode starts with the window: the first second counted, not before the stream */
        const uint32_t span = (ECG_ALERTS_ECTOPY_BINS - 1u) * a->fs_hz + idx % a->fs_hz;
        const uint32_t start = diff32(idx - span, a->origin) < 0 ? a->origin : idx - span;
        ep_open(a, type, start, idx, sum, sum, now);
    }
}

static void ectopy_beat(ecg_alerts_t *a, uint32_t idx, uint8_t cls, uint64_t now)
{
    unsigned b;
    bins_advance(a, idx);
    b = (unsigned)(a->sec % ECG_ALERTS_ECTOPY_BINS);
    if (cls == 2u && a->v_bin[b] < 255u) {
        a->v_bin[b]++;
        a->v_sum++;
    } else if (cls == 1u && a->s_bin[b] < 255u) {
        a->s_bin[b]++;
        a->s_sum++;
    }
    rule_ectopy(a, ECG_ALERT_V_ECTOPY, idx, cls == 2u, now);
    rule_ectopy(a, ECG_ALERT_S_ECTOPY, idx, cls == 1u, now);
}

static void vt_beat(ecg_alerts_t *a, uint32_t idx, uint8_t cls, uint64_t now)
{
    ecg_alert_episode_t *e = &a->ep[ECG_ALERT_VT];
    uint32_t rate;
    if (cls != 2u) {
        a->v_run = 0u;
        ep_close(a, ECG_ALERT_VT, 0u, now); /* ends at the last V beat */
        return;
    }
    if (a->v_run == 0u) {
        a->v_first = idx;
    }
    if (a->v_run < U16_MAX) {
        a->v_run++;
    }
    if (!enabled(a, ECG_ALERT_VT) || a->v_run < a->cfg.vt_beats) {
        return;
    }
    rate = bpm_of(a, (uint32_t)a->v_run - 1u, idx - a->v_first);
    if (e->open) {
        e->end_index = idx;
        e->count = a->v_run;
        e->value = sat16(rate);
    } else if (rate >= a->cfg.vt_bpm) {
        ep_open(a, ECG_ALERT_VT, a->v_first, idx, rate, a->v_run, now);
    }
}

/* Index of the first of the `n` sorted values not below `v` (`n` when there is none). */
static size_t sorted_lower_bound(const uint16_t *s, size_t n, uint16_t v)
{
    size_t lo = 0u;
    size_t hi = n;
    while (lo < hi) {
        const size_t mid = (lo + hi) / 2u;
        if (s[mid] < v) {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Insert `v` into the sorted array of `n` values. */
static void sorted_insert(uint16_t *s, size_t n, uint16_t v)
{
    const size_t at = sorted_lower_bound(s, n, v);
    memmove(&s[at + 1u], &s[at], (n - at) * sizeof s[0]);
    s[at] = v;
}

/* Remove one `v` from the sorted array of `n` values (present by construction). */
static void sorted_remove(uint16_t *s, size_t n, uint16_t v)
{
    const size_t at = sorted_lower_bound(s, n, v);
    if (at < n) {
        memmove(&s[at], &s[at + 1u], (n - at - 1u) * sizeof s[0]);
    }
}

/* Dash et al. 2009 on the full window; writes the normalised RMSSD in per mille. */
static int af_window(const ecg_alerts_t *a, uint32_t *nrmssd_pm)
{
    const size_t n = a->af_n;
    const size_t k = n / 16u;
    const uint16_t lo = a->af_sorted[k];
    const uint16_t hi = a->af_sorted[n - 1u - k];
    const size_t oldest = a->af_pos; /* the ring is full: the next slot holds the oldest */
    uint32_t hist[16];
    uint32_t sum = 0u;
    uint32_t m = 0u;
    float ssd = 0.0f;
    uint32_t nd = 0u;
    int have_prev = 0;
    uint16_t prev = 0u;
    uint32_t turns = 0u;
    float mean;
    float rmssd;
    float ent = 0.0f;
    float mu;
    float sigma;
    size_t i;

    memset(hist, 0, sizeof hist);
    for (i = 0; i < n; i++) {
        const uint16_t x = a->af_rr[(oldest + i) % n];
        if (x < lo || x > hi) {
            continue; /* outliers removed (Dash: 8 of 128 at each end) */
        }
        sum += x;
        m++;
        if (have_prev) {
            const float d = (float)x - (float)prev;
            ssd += d * d;
            nd++;
        }
        prev = x;
        have_prev = 1;
        if (hi > lo) {
            unsigned b = (unsigned)(((uint32_t)(x - lo) * 16u) / ((uint32_t)(hi - lo) + 1u));
            hist[b]++;
        } else {
            hist[0]++;
        }
    }
    for (i = 1; i + 1u < n; i++) {
        const int32_t x0 = a->af_rr[(oldest + i - 1u) % n];
        const int32_t x1 = a->af_rr[(oldest + i) % n];
        const int32_t x2 = a->af_rr[(oldest + i + 1u) % n];
        if ((x1 > x0 && x1 > x2) || (x1 < x0 && x1 < x2)) {
            turns++;
        }
    }
    if (m == 0u || nd == 0u || sum == 0u) {
        *nrmssd_pm = 0u;
        return 0;
    }
    mean = (float)sum / (float)m;
    rmssd = sqrtf(ssd / (float)nd);
    *nrmssd_pm = (uint32_t)(rmssd / mean * 1000.0f + 0.5f);
    for (i = 0; i < 16u; i++) {
        if (hist[i] != 0u) {
            const float p = (float)hist[i] / (float)m;
            ent -= p * logf(p);
        }
    }
    ent /= logf(16.0f);
    mu = (2.0f * (float)n - 4.0f) / 3.0f;
    sigma = sqrtf((16.0f * (float)n - 29.0f) / 90.0f);
    return *nrmssd_pm >= a->cfg.af_nrmssd_permille &&
           ent * 1000.0f >= (float)a->cfg.af_entropy_permille &&
           fabsf((float)turns - mu) <= 1.96f * sigma;
}

static void af_fail_window(ecg_alerts_t *a, uint64_t now)
{
    ecg_alert_episode_t *e = &a->ep[ECG_ALERT_AF];
    if (!e->open) {
        return;
    }
    if (++a->af_fail >= ECG_ALERTS_AF_OFF_WINDOWS) {
        a->af_had = 1u;
        a->af_last_end = e->end_index;
        ep_close(a, ECG_ALERT_AF, 0u, now);
        a->af_fail = 0u;
    }
}

static void af_beat(ecg_alerts_t *a, uint32_t idx, uint32_t rr, uint8_t cls, uint8_t quality,
                    uint64_t now)
{
    const uint8_t n = a->cfg.af_beats;
    ecg_alert_episode_t *e = &a->ep[ECG_ALERT_AF];
    uint16_t ms;
    uint32_t nrmssd = 0u;
    if (!enabled(a, ECG_ALERT_AF)) {
        return;
    }
    if (quality >= 2u) {
        a->af_n = 0u; /* noise: start the window again */
        a->af_pos = 0u;
        af_fail_window(a, now);
        return;
    }
    if (rr == 0u || cls == 2u || a->prev_class == 2u) {
        return; /* no interval, or one next to a V beat */
    }
    ms = ms_of_samples(a, rr);
    if (a->af_n == n) {
        sorted_remove(a->af_sorted, n, a->af_rr[a->af_pos]);
        a->af_n--;
    }
    sorted_insert(a->af_sorted, a->af_n, ms);
    a->af_rr[a->af_pos] = ms;
    a->af_idx[a->af_pos] = idx - rr;
    a->af_n++;
    a->af_pos = (uint8_t)((a->af_pos + 1u) % n);
    if (a->af_n < n) {
        return;
    }
    if (af_window(a, &nrmssd)) {
        a->af_fail = 0u;
        if (e->open) {
            e->end_index = idx;
            e->count = sat16((uint32_t)e->count + 1u);
            if (nrmssd > e->value) {
                e->value = sat16(nrmssd);
            }
        } else {
            uint32_t start = a->af_idx[a->af_pos];
            if (a->af_had && diff32(start, a->af_last_end) <= 0) {
                start = a->af_last_end + 1u; /* episodes do not overlap */
            }
            ep_open(a, ECG_ALERT_AF, start, idx, nrmssd, n, now);
        }
    } else {
        af_fail_window(a, now);
    }
}

static void poor_beat(ecg_alerts_t *a, uint32_t idx, uint8_t quality, uint64_t now)
{
    ecg_alert_episode_t *e = &a->ep[ECG_ALERT_POOR_SIGNAL];
    if (!enabled(a, ECG_ALERT_POOR_SIGNAL)) {
        return;
    }
    if (quality >= 1u) {
        if (!a->poor_run) {
            a->poor_run = 1u;
            a->poor_since = idx;
            a->poor_beats = 0u;
            a->poor_total = 0u;
        }
        a->good_run = 0u;
        a->poor_beats = sat16((uint32_t)a->poor_beats + 1u);
        a->poor_total = sat16((uint32_t)a->poor_total + 1u);
        a->poor_last = idx;
    } else {
        if (!a->poor_run) {
            return;
        }
        a->poor_total = sat16((uint32_t)a->poor_total + 1u);
        if (++a->good_run >= ECG_ALERTS_GOOD_TO_CLEAR) {
            a->poor_run = 0u;
            a->good_run = 0u;
            ep_close(a, ECG_ALERT_POOR_SIGNAL, 0u, now);
        }
        return; /* the episode's figures change on bad beats only */
    }
    if (e->open) {
        e->end_index = a->poor_last;
        e->count = a->poor_beats;
        e->value = (uint16_t)((100u * (uint32_t)a->poor_beats) / a->poor_total);
    } else if (a->poor_last - a->poor_since >= (uint32_t)a->cfg.poor_signal_s * a->fs_hz) {
        ep_open(a, ECG_ALERT_POOR_SIGNAL, a->poor_since, a->poor_last,
                (100u * (uint32_t)a->poor_beats) / a->poor_total, a->poor_beats, now);
    }
}

void ecg_alerts_beat(ecg_alerts_t *a, const ecg_alerts_beat_t *beat, uint64_t now_us)
{
    uint32_t idx;
    uint32_t gap;
    uint32_t rr;
    int asystole_seen = 0;
    if (a == NULL || beat == NULL) {
        return;
    }
    idx = beat->sample_index;
    rr = beat->rr_samples;
    gap = idx - a->last_beat;

    /* ASYSTOLE: an open episode ends at this beat; a gap the ticks did not see is reported now */
    if (a->ep[ECG_ALERT_ASYSTOLE].open) {
        ecg_alert_episode_t *e = &a->ep[ECG_ALERT_ASYSTOLE];
        if (diff32(idx, e->start_index) <= 0) {
            /* a held beat at or before the start (see ecg_alerts_note_detection): no pause or
             * asystole can end here; the other rules still see it */
            asystole_seen = 1;
        } else {
            e->end_index = idx;
            e->value = ms_of_samples(a, idx - e->start_index);
            ep_close(a, ECG_ALERT_ASYSTOLE, 0u, now_us);
            asystole_seen = 1;
        }
    } else if (a->have_beat && !a->lead_off_seen && enabled(a, ECG_ALERT_ASYSTOLE) &&
               gap >= samples_of_ms(a, a->cfg.asystole_ms)) {
        ep_instant(a, ECG_ALERT_ASYSTOLE, a->last_beat, idx, ms_of_samples(a, gap), 0u, now_us);
        asystole_seen = 1;
    }
    /* PAUSE: one long RR that was not an asystole */
    if (!asystole_seen && !a->lead_off_seen && enabled(a, ECG_ALERT_PAUSE) &&
        rr > samples_of_ms(a, a->cfg.pause_ms) &&
        rr < samples_of_ms(a, a->cfg.asystole_ms)) {
        ep_instant(a, ECG_ALERT_PAUSE, idx - rr, idx, ms_of_samples(a, rr), 1u, now_us);
    }
    a->last_beat = idx;
    a->have_beat = 1u;
    a->lead_off_seen = 0u;

    rate_beat(a, idx, rr, now_us);
    vt_beat(a, idx, beat->beat_class, now_us);
    ectopy_beat(a, idx, beat->beat_class, now_us);
    af_beat(a, idx, rr, beat->beat_class, beat->quality, now_us);
    poor_beat(a, idx, beat->quality, now_us);
    a->prev_class = beat->beat_class;
}

void ecg_alerts_tick(ecg_alerts_t *a, uint32_t index, uint8_t lead_off, uint64_t now_us)
{
    ecg_alert_episode_t *lo;
    if (a == NULL) {
        return;
    }
    lo = &a->ep[ECG_ALERT_LEAD_OFF];
    /* LEAD_OFF */
    if (lead_off != 0u) {
        if (a->lead_off == 0u) {
            a->lead_off_since = index;
        }
        /* no signal: the asystole clock restarts when the leads are back, and the RR that spans
         * this is no pause */
        a->lead_off_seen = 1u;
        a->last_beat = index;
        a->last_detect = index;
        if (lo->open) {
            lo->end_index = index - 1u;
            lo->value = (uint16_t)(lo->value | lead_off);
        } else if (enabled(a, ECG_ALERT_LEAD_OFF) &&
                   index - a->lead_off_since >= samples_of_ms(a, a->cfg.lead_off_ms)) {
            ep_open(a, ECG_ALERT_LEAD_OFF, a->lead_off_since, index - 1u, lead_off, 0u, now_us);
        }
    } else if (lo->open) {
        lo->end_index = index - 1u;
        ep_close(a, ECG_ALERT_LEAD_OFF, 0u, now_us);
    }
    a->lead_off = lead_off;

    /* ASYSTOLE: no beat for asystole_ms, allowing for the detector's decision latency */
    if (a->have_beat && enabled(a, ECG_ALERT_ASYSTOLE) && lead_off == 0u &&
        !a->ep[ECG_ALERT_ASYSTOLE].open) {
        const uint32_t need = samples_of_ms(a, a->cfg.asystole_ms) +
                              samples_of_ms(a, ECG_ALERTS_BEAT_LATENCY_MS);
        const uint32_t ref = diff32(a->last_detect, a->last_beat) > 0 ? a->last_detect
                                                                       : a->last_beat;
        if (diff32(index, ref) > 0 && index - ref >= need) {
            ep_open(a, ECG_ALERT_ASYSTOLE, ref, index - 1u, ms_of_samples(a, index - ref), 0u,
                    now_us);
        }
    }

    /* ectopy windows shrink with time even without beats */
    bins_advance(a, index);
    rule_ectopy(a, ECG_ALERT_V_ECTOPY, index - 1u, 0, now_us);
    rule_ectopy(a, ECG_ALERT_S_ECTOPY, index - 1u, 0, now_us);
}

/* ---------------------------------------------------------------------------------------------
 * Protocol side
 * ------------------------------------------------------------------------------------------- */

static void alert_status(const ecg_alerts_t *a, ecg_proto_alert_status_t *st)
{
    size_t i;
    st->last_id = ecg_alert_queue_last_id(&a->q);
    st->queued = a->q.n;
    st->dropped = a->q.dropped;
    st->max_severity = 0u;
    for (i = 0; i < a->q.n; i++) {
        if (a->q.rec[i].severity > st->max_severity) {
            st->max_severity = a->q.rec[i].severity;
        }
    }
}

int32_t ecg_alerts_command(ecg_alerts_t *a, uint8_t type, const uint8_t *payload, size_t len,
                           uint32_t index, uint64_t now_us, uint8_t *body, size_t cap,
                           size_t *body_len)
{
    int32_t n = 0;
    if (a == NULL || body == NULL || body_len == NULL || (payload == NULL && len != 0u)) {
        return ECG_ERR_NULL;
    }
    *body_len = 0u;
    switch (type) {
    case ECG_FT_ALERTS_PULL: {
        ecg_proto_alerts_pull_t req;
        ecg_proto_alerts_page_t page;
        ecg_alert_t recs[ECG_PROTO_ALERTS_PER_PAGE];
        size_t max = ECG_PROTO_ALERTS_PER_PAGE;
        if (ecg_proto_unpack_alerts_pull(payload, len, &req) != ECG_OK) {
            return ECG_PROTO_ERR_LENGTH;
        }
        if (req.max_records != 0u && req.max_records < max) {
            max = req.max_records;
        }
        alert_status(a, &page.status);
        page.pending = (uint16_t)ecg_alert_queue_count_after(&a->q, req.after_id);
        page.n = (uint8_t)ecg_alert_queue_get(&a->q, req.after_id, recs, max);
        page.record_len = (uint8_t)ECG_PROTO_ALERT_LEN;
        n = ecg_proto_pack_alerts_page(&page, recs, body, cap);
        break;
    }
    case ECG_FT_ALERTS_ACK: {
        uint32_t id;
        ecg_proto_alert_status_t st;
        if (ecg_proto_unpack_alerts_ack(payload, len, &id) != ECG_OK) {
            return ECG_PROTO_ERR_LENGTH;
        }
        (void)ecg_alert_queue_ack(&a->q, id);
        alert_status(a, &st);
        n = ecg_proto_pack_alert_status(&st, body, cap);
        break;
    }
    case ECG_FT_ALERTS_CONFIGURE: {
        ecg_alerts_cfg_t c;
        if (ecg_proto_unpack_alerts_cfg(payload, len, &c) != ECG_OK) {
            return ECG_PROTO_ERR_LENGTH;
        }
        return ecg_alerts_set_cfg(a, &c, index, now_us);
    }
    case ECG_FT_ALERTS_GET_CONFIG:
        n = ecg_proto_pack_alerts_cfg(&a->cfg, body, cap);
        break;
    default:
        return ECG_ERR_UNSUPPORTED;
    }
    if (n < 0) {
        return n;
    }
    *body_len = (size_t)n;
    return ECG_OK;
}

int32_t ecg_alerts_pack_notice(const ecg_alerts_t *a, uint32_t *seen, int force, uint8_t *out,
                               size_t cap)
{
    ecg_proto_alert_status_t st;
    if (a == NULL || seen == NULL || out == NULL) {
        return 0;
    }
    if (a->q.added == *seen && !(force && a->q.n != 0u)) {
        return 0;
    }
    *seen = a->q.added;
    alert_status(a, &st);
    return ecg_proto_pack_alert_status(&st, out, cap);
}

/*
 * Tests of the alert engine and its queue (firmware/src/core/ecg_alerts.c).
 *
 * Usage: test_alerts   (no arguments; tests/test_alerts_c.py builds it with every core source
 *                       under ASan/UBSan and runs it; `make -C tests/c alerts` does the same)
 *
 * Beats are hand-built sequences on a 250 Hz sample counter; every expected index, rate and count
 * is worked out from the rule definitions in ecg_alerts.h (the arithmetic is in the comments), not
 * taken from the engine. Prints one "ok"/"FAIL" line per test, then "N passed, M failed", and
 * exits 0 only when nothing failed. Plain C99, no framework.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ecg/ecg_alerts.h"

#include "check.h"

#define FS 250u
#define N_CLASS 0u
#define S_CLASS 1u
#define V_CLASS 2u
#define NO_CLASS 255u

typedef struct {
    ecg_alerts_t a;
    uint32_t idx; /* index of the latest beat */
    uint64_t now;
} sim_t;

static void sim_init(sim_t *s, const ecg_alerts_cfg_t *cfg)
{
    ecg_alerts_cfg_t def;
    if (cfg == NULL) {
        ecg_alerts_default_cfg(&def);
        cfg = &def;
    }
    memset(s, 0, sizeof *s);
    CHECK_EQ(ecg_alerts_init(&s->a, cfg, FS), ECG_OK);
    ecg_alerts_start(&s->a, 0u, FS);
    s->idx = 1000u;
}

/* One beat `rr` samples after the previous one (rr 0: the first beat, at s->idx). */
static uint32_t beat(sim_t *s, uint32_t rr, uint8_t cls, uint8_t quality)
{
    ecg_alerts_beat_t b;
    s->idx += rr;
    b.sample_index = s->idx;
    b.rr_samples = rr;
    b.beat_class = cls;
    b.quality = quality;
    b.flags = 0u;
    s->now = (uint64_t)s->idx * 4000u; /* 4 ms per sample */
    ecg_alerts_beat(&s->a, &b, s->now);
    ecg_alerts_tick(&s->a, s->idx + 1u, 0u, s->now);
    return s->idx;
}

static void beats(sim_t *s, unsigned n, uint32_t rr, uint8_t cls)
{
    unsigned i;
    for (i = 0; i < n; i++) {
        (void)beat(s, rr, cls, 0u);
    }
}

/* All records after id 0, and how many of a type. */
static size_t records(sim_t *s, ecg_alert_t *out, size_t max)
{
    return ecg_alert_queue_get(ecg_alerts_queue(&s->a), 0u, out, max);
}

static size_t count_type(sim_t *s, uint8_t type, uint8_t flags)
{
    ecg_alert_t r[ECG_ALERTS_QUEUE_LEN];
    size_t n = records(s, r, ECG_ALERTS_QUEUE_LEN);
    size_t i;
    size_t k = 0;
    for (i = 0; i < n; i++) {
        if (r[i].type == type && (r[i].flags & flags) == flags) {
            k++;
        }
    }
    return k;
}

/* The first record of `type` having all of `flags`; 0 when found. */
static int find(sim_t *s, uint8_t type, uint8_t flags, ecg_alert_t *out)
{
    ecg_alert_t r[ECG_ALERTS_QUEUE_LEN];
    size_t n = records(s, r, ECG_ALERTS_QUEUE_LEN);
    size_t i;
    for (i = 0; i < n; i++) {
        if (r[i].type == type && (r[i].flags & flags) == flags) {
            *out = r[i];
            return 0;
        }
    }
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Queue                                                                                      */
/* ------------------------------------------------------------------------------------------ */

static ecg_alert_t rec_of(uint8_t severity, uint32_t start)
{
    ecg_alert_t r;
    memset(&r, 0, sizeof r);
    r.type = ECG_ALERT_PAUSE;
    r.severity = severity;
    r.flags = ECG_ALERT_FLAG_ONSET | ECG_ALERT_FLAG_END;
    r.start_index = start;
    return r;
}

static void test_queue_ids_start_at_one_and_ack_frees_up_to_the_id(void)
{
    ecg_alert_queue_t q;
    ecg_alert_t out[4];
    unsigned i;
    ecg_alert_queue_init(&q);
    CHECK_EQ(ecg_alert_queue_last_id(&q), 0);
    for (i = 0; i < 5u; i++) {
        ecg_alert_t r = rec_of(2u, i);
        CHECK_EQ(ecg_alert_queue_push(&q, &r), i + 1u);
        CHECK_EQ(r.episode, i + 1u); /* an onset is its own episode */
    }
    CHECK_EQ(ecg_alert_queue_len(&q), 5);
    CHECK_EQ(ecg_alert_queue_count_after(&q, 2u), 3);
    CHECK_EQ(ecg_alert_queue_get(&q, 2u, out, 2u), 2);
    CHECK_EQ(out[0].id, 3);
    CHECK_EQ(out[1].id, 4);
    CHECK_EQ(out[1].start_index, 3);
    CHECK_EQ(ecg_alert_queue_ack(&q, 3u), 3);
    CHECK_EQ(ecg_alert_queue_len(&q), 2);
    CHECK_EQ(ecg_alert_queue_get(&q, 0u, out, 4u), 2);
    CHECK_EQ(out[0].id, 4);
    CHECK_EQ(ecg_alert_queue_ack(&q, 3u), 0); /* repeated ack: nothing more */
    CHECK_EQ(ecg_alert_queue_ack(&q, 100u), 2);
    CHECK_EQ(ecg_alert_queue_len(&q), 0);
    {
        ecg_alert_t r = rec_of(2u, 9u);
        CHECK_EQ(ecg_alert_queue_push(&q, &r), 6); /* ids are never reused */
    }
    CHECK_EQ(ecg_alert_queue_added(&q), 6);
}

static void test_queue_overflow_drops_lowest_severity_oldest_first_and_counts(void)
{
    ecg_alert_queue_t q;
    ecg_alert_t out[ECG_ALERTS_QUEUE_LEN];
    size_t i;
    size_t n;
    ecg_alert_queue_init(&q);
    /* fill: ids 1..LEN; ids 3 and 7 advisory (1), the rest urgent (3) */
    for (i = 1; i <= ECG_ALERTS_QUEUE_LEN; i++) {
        ecg_alert_t r = rec_of(i == 3u || i == 7u ? 1u : 3u, (uint32_t)i);
        (void)ecg_alert_queue_push(&q, &r);
    }
    CHECK_EQ(ecg_alert_queue_dropped(&q), 0);
    {
        ecg_alert_t r = rec_of(2u, 1000u); /* warning: drops id 3 (advisory, oldest) */
        CHECK_EQ(ecg_alert_queue_push(&q, &r), ECG_ALERTS_QUEUE_LEN + 1u);
    }
    CHECK_EQ(ecg_alert_queue_dropped(&q), 1);
    CHECK_EQ(ecg_alert_queue_len(&q), ECG_ALERTS_QUEUE_LEN);
    n = ecg_alert_queue_get(&q, 0u, out, ECG_ALERTS_QUEUE_LEN);
    CHECK_EQ(n, ECG_ALERTS_QUEUE_LEN);
    CHECK_EQ(out[0].id, 1);
    CHECK_EQ(out[1].id, 2);
    CHECK_EQ(out[2].id, 4); /* 3 is gone */
    CHECK_EQ(out[n - 1u].id, ECG_ALERTS_QUEUE_LEN + 1u);
    {
        ecg_alert_t r = rec_of(1u, 2000u); /* advisory vs advisory id 7: the older (7) goes */
        (void)ecg_alert_queue_push(&q, &r);
    }
    n = ecg_alert_queue_get(&q, 0u, out, ECG_ALERTS_QUEUE_LEN);
    for (i = 0; i < n; i++) {
        CHECK(out[i].id != 7u);
    }
    CHECK_EQ(out[n - 1u].start_index, 2000);
    {
        /* the least severe queued is now the advisory just added (severity 1); a record of
         * severity 0 is strictly lower, so it is the one dropped */
        ecg_alert_t r = rec_of(0u, 3000u);
        const uint32_t id = ecg_alert_queue_push(&q, &r);
        CHECK_EQ(id, ECG_ALERTS_QUEUE_LEN + 3u);
        CHECK_EQ(ecg_alert_queue_count_after(&q, id - 1u), 0); /* not queued */
    }
    CHECK_EQ(ecg_alert_queue_dropped(&q), 3);
    CHECK_EQ(ecg_alert_queue_len(&q), ECG_ALERTS_QUEUE_LEN);
    /* the ids given out stay increasing through all of it */
    n = ecg_alert_queue_get(&q, 0u, out, ECG_ALERTS_QUEUE_LEN);
    for (i = 1; i < n; i++) {
        CHECK(out[i].id > out[i - 1u].id);
    }
}

static void test_queue_ids_survive_the_u32_wrap_and_skip_zero(void)
{
    ecg_alert_queue_t q;
    ecg_alert_t out[4];
    ecg_alert_t r1 = rec_of(2u, 1u);
    ecg_alert_t r2 = rec_of(2u, 2u);
    ecg_alert_t r3 = rec_of(2u, 3u);
    ecg_alert_queue_init(&q);
    q.next_id = 0xFFFFFFFEu; /* private field, set to reach the wrap quickly */
    CHECK_EQ(ecg_alert_queue_push(&q, &r1), 0xFFFFFFFEu);
    CHECK_EQ(ecg_alert_queue_push(&q, &r2), 0xFFFFFFFFu);
    CHECK_EQ(ecg_alert_queue_push(&q, &r3), 1u);
    CHECK_EQ(ecg_alert_queue_count_after(&q, 0xFFFFFFFEu), 2); /* 0xFFFFFFFF and 1 */
    CHECK_EQ(ecg_alert_queue_get(&q, 0xFFFFFFFFu, out, 4u), 1);
    CHECK_EQ(out[0].id, 1u);
    CHECK_EQ(ecg_alert_queue_ack(&q, 0xFFFFFFFFu), 2);
    CHECK_EQ(ecg_alert_queue_len(&q), 1);
}

/* ------------------------------------------------------------------------------------------ */
/* Configuration                                                                              */
/* ------------------------------------------------------------------------------------------ */

static void test_config_ranges_and_consistency_are_checked(void)
{
    ecg_alerts_cfg_t c;
    ecg_alerts_t a;
    ecg_alerts_default_cfg(&c);
    CHECK_EQ(ecg_alerts_check_cfg(&c), ECG_OK);
    CHECK_EQ(c.enable_mask, 0x07FE);
    c.brady_bpm = 130u;
    CHECK_EQ(ecg_alerts_check_cfg(&c), ECG_ERR_CONFIG); /* brady >= tachy (120) */
    ecg_alerts_default_cfg(&c);
    c.af_beats = 40u;
    CHECK_EQ(ecg_alerts_check_cfg(&c), ECG_ERR_RANGE); /* not a multiple of 16 */
    ecg_alerts_default_cfg(&c);
    c.enable_mask = 0x0001u;
    CHECK_EQ(ecg_alerts_check_cfg(&c), ECG_ERR_RANGE); /* bit 0 is no type */
    ecg_alerts_default_cfg(&c);
    c.asystole_ms = 2000u;
    c.pause_ms = 2000u;
    CHECK_EQ(ecg_alerts_check_cfg(&c), ECG_ERR_CONFIG);
    ecg_alerts_default_cfg(&c);
    CHECK_EQ(ecg_alerts_init(&a, &c, 0u), ECG_ERR_RANGE);
    CHECK_EQ(ecg_alerts_init(NULL, &c, FS), ECG_ERR_NULL);
    CHECK_EQ(ecg_alerts_init(&a, &c, FS), ECG_OK);
    c.tachy_bpm = 30u;
    CHECK_EQ(ecg_alerts_set_cfg(&a, &c, 0u, 0u), ECG_ERR_RANGE);
    {
        ecg_alerts_cfg_t back;
        ecg_alerts_get_cfg(&a, &back);
        CHECK_EQ(back.tachy_bpm, 120); /* a refused configuration changes nothing */
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Rules                                                                                      */
/* ------------------------------------------------------------------------------------------ */

static void test_bradycardia_sustained_for_five_seconds_opens_and_closes_an_episode(void)
{
    sim_t s;
    ecg_alert_t on, end;
    uint32_t slow[10], fast[8];
    unsigned i;
    sim_init(&s, NULL);
    (void)beat(&s, 0u, N_CLASS, 0u);
    beats(&s, 20u, 214u, N_CLASS); /* 70 bpm */
    for (i = 0; i < 10u; i++) {
        slow[i] = beat(&s, 375u, N_CLASS, 0u); /* 40 bpm */
    }
    /* rate of the last 8 RR = 60*250*8/sum < 50 <=> sum > 2400; with j slow RR the sum is
     * 1712 + 161 j: first true at j = 5 (slow[4]); sustained 5 s = 1250 samples: 4 more RR of 375
     * (1500 >= 1250; 3 give 1125), so the onset is at slow[8], where all 8 RR are slow: 40 bpm */
    CHECK_EQ(find(&s, ECG_ALERT_BRADY, ECG_ALERT_FLAG_ONSET, &on), 0);
    CHECK_EQ(on.start_index, slow[4]);
    CHECK_EQ(on.end_index, slow[8]);
    CHECK_EQ(on.value, 40);
    CHECK_EQ(on.severity, ECG_ALERT_SEV_WARNING);
    CHECK_EQ(on.episode, on.id);
    CHECK_EQ(count_type(&s, ECG_ALERT_BRADY, ECG_ALERT_FLAG_END), 0);
    for (i = 0; i < 8u; i++) {
        fast[i] = beat(&s, 214u, N_CLASS, 0u);
    }
    /* ends when the rate, rounded to a whole bpm, reaches 50 + 5: 120000 / sum >= 54.5 <=>
     * sum <= 2201; with j fast RR the sum is 3000 - 161 j: first at j = 5 (fast[4]). The episode
     * ends at the last beat still in it, fast[3]. (The onset above is the same with rounding:
     * 120000 / sum < 49.5 <=> sum > 2424 <=> j >= 5.) */
    CHECK_EQ(find(&s, ECG_ALERT_BRADY, ECG_ALERT_FLAG_END, &end), 0);
    CHECK_EQ(end.end_index, fast[3]);
    CHECK_EQ(end.count, 1 + 1 + 4); /* slow[8], slow[9], fast[0..3] */
    CHECK_EQ(end.episode, on.id);
    CHECK_EQ(end.start_index, on.start_index);
    CHECK_EQ(end.value, 40);
    CHECK(end.id > on.id);
    CHECK_EQ(count_type(&s, ECG_ALERT_TACHY, 0u), 0);
}

static void test_a_pause_is_not_averaged_into_a_bradycardia(void)
{
    sim_t s;
    sim_init(&s, NULL);
    (void)beat(&s, 0u, N_CLASS, 0u);
    beats(&s, 20u, 250u, N_CLASS); /* 60 bpm */
    (void)beat(&s, 750u, N_CLASS, 0u); /* 3 s: a PAUSE */
    /* with it in the 8-RR mean the rate would be 60*250*8/(7*250+750) = 48 bpm for 8 beats
     * (8 s >= 5 s); RR over pause_ms are left out of the rate window */
    beats(&s, 20u, 250u, N_CLASS);
    CHECK_EQ(count_type(&s, ECG_ALERT_PAUSE, 0u), 1);
    CHECK_EQ(count_type(&s, ECG_ALERT_BRADY, 0u), 0);
}

static void test_tachycardia_opens_at_once_without_sustain_and_ends_with_hysteresis(void)
{
    sim_t s;
    ecg_alerts_cfg_t c;
    ecg_alert_t on, end;
    uint32_t fast[8];
    uint32_t back[8];
    unsigned i;
    ecg_alerts_default_cfg(&c);
    c.rate_sustain_s = 0u;
    c.rate_beats = 4u;
    sim_init(&s, &c);
    (void)beat(&s, 0u, N_CLASS, 0u);
    beats(&s, 6u, 250u, N_CLASS); /* 60 bpm */
    for (i = 0; i < 8u; i++) {
        fast[i] = beat(&s, 100u, N_CLASS, 0u); /* 150 bpm */
    }
    /* 4 RR: 60*250*4/sum > 120 <=> sum < 500; j fast: 1000 - 150 j < 500 <=> j >= 4 */
    CHECK_EQ(find(&s, ECG_ALERT_TACHY, ECG_ALERT_FLAG_ONSET, &on), 0);
    CHECK_EQ(on.start_index, fast[3]);
    CHECK_EQ(on.value, 150);
    for (i = 0; i < 8u; i++) {
        back[i] = beat(&s, 150u, N_CLASS, 0u); /* 100 bpm */
    }
    /* ends at a rounded rate <= 115: 60000 / sum < 115.5 <=> sum > 519.5; 400 + 50 j > 519.5
     * <=> j >= 3: back[2] ends it, the last beat in the episode is back[1] */
    CHECK_EQ(find(&s, ECG_ALERT_TACHY, ECG_ALERT_FLAG_END, &end), 0);
    CHECK_EQ(end.end_index, back[1]);
    CHECK_EQ(end.count, 7); /* fast[3..7] and back[0..1]; the closing beat is not counted */
    CHECK_EQ(end.value, 150);
}

static void test_pause_is_one_record_and_a_longer_gap_is_asystole_instead(void)
{
    sim_t s;
    ecg_alert_t r;
    uint32_t b;
    sim_init(&s, NULL);
    (void)beat(&s, 0u, N_CLASS, 0u);
    beats(&s, 5u, 200u, N_CLASS);
    b = beat(&s, 750u, N_CLASS, 0u); /* 3000 ms > 2500 */
    CHECK_EQ(find(&s, ECG_ALERT_PAUSE, ECG_ALERT_FLAG_ONSET | ECG_ALERT_FLAG_END, &r), 0);
    CHECK_EQ(r.start_index, b - 750u);
    CHECK_EQ(r.end_index, b);
    CHECK_EQ(r.value, 3000);
    CHECK_EQ(r.severity, ECG_ALERT_SEV_URGENT);
    beats(&s, 3u, 200u, N_CLASS);
    (void)beat(&s, 600u, N_CLASS, 0u); /* 2400 ms: below the limit */
    CHECK_EQ(count_type(&s, ECG_ALERT_PAUSE, 0u), 1);
    /* 2000 samples = 8 s, more than asystole_ms + latency: the ticks of `beat` run only after the
     * beat, so the gap is reported when the closing beat arrives: one asystole record, no pause */
    b = beat(&s, 2000u, N_CLASS, 0u);
    CHECK_EQ(count_type(&s, ECG_ALERT_PAUSE, 0u), 1);
    CHECK_EQ(find(&s, ECG_ALERT_ASYSTOLE, ECG_ALERT_FLAG_ONSET | ECG_ALERT_FLAG_END, &r), 0);
    CHECK_EQ(r.start_index, b - 2000u);
    CHECK_EQ(r.end_index, b);
    CHECK_EQ(r.value, 8000);
    CHECK_EQ(r.severity, ECG_ALERT_SEV_CRITICAL);
}

static void test_asystole_opens_from_the_tick_and_the_next_beat_closes_it(void)
{
    sim_t s;
    ecg_alert_t on, end;
    uint32_t last;
    uint32_t t;
    sim_init(&s, NULL);
    (void)beat(&s, 0u, N_CLASS, 0u);
    beats(&s, 5u, 200u, N_CLASS);
    last = s.idx;
    /* 4000 ms + 500 ms latency = 1125 samples after the last beat */
    for (t = last + 1u; t < last + 1125u; t += 5u) {
        ecg_alerts_tick(&s.a, t, 0u, 0u);
    }
    CHECK_EQ(count_type(&s, ECG_ALERT_ASYSTOLE, 0u), 0);
    ecg_alerts_tick(&s.a, last + 1125u, 0u, 0u);
    CHECK_EQ(find(&s, ECG_ALERT_ASYSTOLE, ECG_ALERT_FLAG_ONSET, &on), 0);
    CHECK_EQ(on.start_index, last);
    CHECK_EQ(on.end_index, last + 1124u);
    CHECK_EQ(on.value, 4500);
    ecg_alerts_tick(&s.a, last + 1500u, 0u, 0u);
    CHECK_EQ(count_type(&s, ECG_ALERT_ASYSTOLE, 0u), 1); /* still one episode */
    (void)beat(&s, 1750u, N_CLASS, 0u); /* 7 s after the last beat */
    CHECK_EQ(find(&s, ECG_ALERT_ASYSTOLE, ECG_ALERT_FLAG_END, &end), 0);
    CHECK_EQ(end.episode, on.id);
    CHECK_EQ(end.end_index, last + 1750u);
    CHECK_EQ(end.value, 7000);
    CHECK_EQ(count_type(&s, ECG_ALERT_PAUSE, 0u), 0);
}

static void test_lead_off_raises_lead_off_and_suppresses_asystole(void)
{
    sim_t s;
    ecg_alert_t on, end;
    uint32_t last;
    uint32_t t;
    sim_init(&s, NULL);
    (void)beat(&s, 0u, N_CLASS, 0u);
    beats(&s, 3u, 200u, N_CLASS);
    last = s.idx;
    for (t = last + 10u; t <= last + 3000u; t += 10u) {
        ecg_alerts_tick(&s.a, t, 0x02u, 0u);
    }
    /* off from last+10; 1000 ms = 250 samples: open at the tick at last+260 */
    CHECK_EQ(find(&s, ECG_ALERT_LEAD_OFF, ECG_ALERT_FLAG_ONSET, &on), 0);
    CHECK_EQ(on.start_index, last + 10u);
    CHECK_EQ(on.value, 0x02);
    CHECK_EQ(count_type(&s, ECG_ALERT_ASYSTOLE, 0u), 0);
    ecg_alerts_tick(&s.a, last + 3010u, 0u, 0u);
    CHECK_EQ(find(&s, ECG_ALERT_LEAD_OFF, ECG_ALERT_FLAG_END, &end), 0);
    CHECK_EQ(end.end_index, last + 3009u);
    CHECK_EQ(end.episode, on.id);
    /* the asystole clock restarted at the last tick that saw a lead off (last + 3000) */
    CHECK_EQ(count_type(&s, ECG_ALERT_ASYSTOLE, 0u), 0);
    ecg_alerts_tick(&s.a, last + 3000u + 1124u, 0u, 0u);
    CHECK_EQ(count_type(&s, ECG_ALERT_ASYSTOLE, 0u), 0);
    ecg_alerts_tick(&s.a, last + 3000u + 1125u, 0u, 0u);
    CHECK_EQ(count_type(&s, ECG_ALERT_ASYSTOLE, 0u), 1);
}

static void test_ventricular_run_of_three_fast_v_beats_is_vt_until_a_non_v_beat(void)
{
    sim_t s;
    ecg_alert_t on, end;
    uint32_t v[5];
    unsigned i;
    sim_init(&s, NULL);
    (void)beat(&s, 0u, N_CLASS, 0u);
    beats(&s, 5u, 200u, N_CLASS);
    for (i = 0; i < 5u; i++) {
        v[i] = beat(&s, 100u, V_CLASS, 0u); /* 150 bpm */
    }
    (void)beat(&s, 200u, N_CLASS, 0u);
    /* onset at the 3rd V: rate over the run = 60*250*2/200 = 150 */
    CHECK_EQ(find(&s, ECG_ALERT_VT, ECG_ALERT_FLAG_ONSET, &on), 0);
    CHECK_EQ(on.start_index, v[0]);
    CHECK_EQ(on.end_index, v[2]);
    CHECK_EQ(on.count, 3);
    CHECK_EQ(on.value, 150);
    CHECK_EQ(on.severity, ECG_ALERT_SEV_CRITICAL);
    CHECK_EQ(find(&s, ECG_ALERT_VT, ECG_ALERT_FLAG_END, &end), 0);
    CHECK_EQ(end.end_index, v[4]);
    CHECK_EQ(end.count, 5);
    CHECK_EQ(end.episode, on.id);
}

static void test_slow_ventricular_runs_and_unclassified_beats_are_not_vt(void)
{
    sim_t s;
    sim_init(&s, NULL);
    (void)beat(&s, 0u, N_CLASS, 0u);
    beats(&s, 4u, 200u, V_CLASS);     /* 75 bpm < 100 */
    beats(&s, 4u, 200u, N_CLASS);
    beats(&s, 10u, 100u, NO_CLASS);   /* fast, but no classifier */
    beats(&s, 2u, 100u, V_CLASS);     /* two V only */
    beats(&s, 2u, 200u, N_CLASS);
    CHECK_EQ(count_type(&s, ECG_ALERT_VT, 0u), 0);
}

static void test_frequent_v_and_s_ectopy_per_minute_open_and_close(void)
{
    sim_t s;
    ecg_alert_t on, end;
    uint32_t tenth = 0u;
    unsigned i;
    unsigned nv = 0;
    sim_init(&s, NULL);
    (void)beat(&s, 0u, N_CLASS, 0u);
    /* N, V alternating at 75 bpm (200 samples): a V every 1.6 s; the 10th V opens it */
    for (i = 0; i < 30u; i++) {
        (void)beat(&s, 200u, N_CLASS, 0u);
        if (nv < 12u) {
            const uint32_t b = beat(&s, 200u, V_CLASS, 0u);
            if (++nv == 10u) {
                tenth = b;
            }
        }
    }
    CHECK_EQ(find(&s, ECG_ALERT_V_ECTOPY, ECG_ALERT_FLAG_ONSET, &on), 0);
    CHECK_EQ(on.end_index, tenth);
    CHECK_EQ(on.value, 10);
    CHECK_EQ(on.start_index, 0); /* the 60-s window reaches back to the stream start */
    CHECK_EQ(count_type(&s, ECG_ALERT_S_ECTOPY, 0u), 0);
    CHECK_EQ(count_type(&s, ECG_ALERT_VT, 0u), 0);
    /* no more V: the count over the last 60 s falls below 5 some time within a minute */
    beats(&s, 80u, 200u, N_CLASS);
    CHECK_EQ(find(&s, ECG_ALERT_V_ECTOPY, ECG_ALERT_FLAG_END, &end), 0);
    CHECK_EQ(end.value, 12);
    CHECK_EQ(end.count, 12);
    CHECK(end.end_index > tenth);
    /* S beats */
    for (i = 0; i < 12u; i++) {
        (void)beat(&s, 200u, N_CLASS, 0u);
        (void)beat(&s, 200u, S_CLASS, 0u);
    }
    CHECK_EQ(count_type(&s, ECG_ALERT_S_ECTOPY, ECG_ALERT_FLAG_ONSET), 1);
}

/* Deterministic pseudo-random RR (LCG of Numerical Recipes), uniform in [lo, lo + span). */
static uint32_t lcg_next(uint32_t *state, uint32_t lo, uint32_t span)
{
    *state = *state * 1664525u + 1013904223u;
    return lo + (*state >> 8) % span;
}

static void test_af_fires_on_random_rr_and_not_on_regular_or_bigeminal_rhythm(void)
{
    sim_t s;
    ecg_alert_t on, end;
    uint32_t st = 12345u;
    uint32_t first_rr_start = 0u;
    unsigned i;
    sim_init(&s, NULL);
    (void)beat(&s, 0u, N_CLASS, 0u);
    /* regular with small jitter (+-2 samples, nRMSSD ~ 1 %): never AF */
    for (i = 0; i < 150u; i++) {
        (void)beat(&s, lcg_next(&st, 198u, 5u), N_CLASS, 0u);
    }
    /* bigeminy: 120, 280 alternating: irregular (nRMSSD ~ 0.8) but every point turns (TPR out) */
    for (i = 0; i < 150u; i++) {
        (void)beat(&s, (i & 1u) ? 280u : 120u, N_CLASS, 0u);
    }
    CHECK_EQ(count_type(&s, ECG_ALERT_AF, 0u), 0);
    /* random RR uniform in 100..249 samples (400..996 ms) */
    for (i = 0; i < 100u; i++) {
        const uint32_t prev = s.idx;
        (void)beat(&s, lcg_next(&st, 100u, 150u), N_CLASS, 0u);
        if (i == 0u) {
            first_rr_start = prev;
        }
    }
    CHECK_EQ(find(&s, ECG_ALERT_AF, ECG_ALERT_FLAG_ONSET, &on), 0);
    /* the first window that can be AF is the one made only of random RR (64 of them): it starts
     * at the beat before the first random RR, unless a window with a few bigeminal RR already
     * qualified, which would start earlier */
    CHECK(on.start_index <= first_rr_start);
    CHECK(on.start_index >= first_rr_start - 64u * 280u);
    CHECK(on.value >= 100);
    CHECK_EQ(on.count, 64);
    CHECK_EQ(on.severity, ECG_ALERT_SEV_WARNING);
    /* back to regular: the windows stop qualifying once enough regular RR are in; it ends after
     * 8 failing windows */
    for (i = 0; i < 100u; i++) {
        (void)beat(&s, 200u, N_CLASS, 0u);
    }
    CHECK_EQ(find(&s, ECG_ALERT_AF, ECG_ALERT_FLAG_END, &end), 0);
    CHECK_EQ(end.episode, on.id);
    CHECK(end.end_index > on.end_index);
}

static void test_poor_signal_sustained_ten_seconds_then_three_good_beats_end_it(void)
{
    sim_t s;
    ecg_alert_t on, end;
    uint32_t first_bad = 0u, last_bad = 0u;
    unsigned i;
    sim_init(&s, NULL);
    (void)beat(&s, 0u, N_CLASS, 0u);
    beats(&s, 3u, 200u, N_CLASS);
    for (i = 0; i < 15u; i++) {
        last_bad = beat(&s, 200u, N_CLASS, 1u); /* 0.8 s apart */
        if (i == 0u) {
            first_bad = last_bad;
        }
        if (i < 2u) {
            (void)beat(&s, 200u, N_CLASS, 0u); /* a good beat or two does not end it */
        }
    }
    /* 10 s = 2500 samples after first_bad */
    CHECK_EQ(find(&s, ECG_ALERT_POOR_SIGNAL, ECG_ALERT_FLAG_ONSET, &on), 0);
    CHECK_EQ(on.start_index, first_bad);
    CHECK(on.end_index - first_bad >= 2500u && on.end_index - first_bad < 2500u + 200u);
    beats(&s, 2u, 200u, N_CLASS);
    CHECK_EQ(count_type(&s, ECG_ALERT_POOR_SIGNAL, ECG_ALERT_FLAG_END), 0);
    beats(&s, 1u, 200u, N_CLASS);
    CHECK_EQ(find(&s, ECG_ALERT_POOR_SIGNAL, ECG_ALERT_FLAG_END, &end), 0);
    CHECK_EQ(end.end_index, last_bad);
    CHECK_EQ(end.count, 15);
    CHECK_EQ(end.value, 100 * 15 / 17);
}

static void test_stop_closes_open_episodes_with_the_stream_end_flag(void)
{
    sim_t s;
    ecg_alert_t end;
    unsigned i;
    sim_init(&s, NULL);
    (void)beat(&s, 0u, N_CLASS, 0u);
    beats(&s, 5u, 200u, N_CLASS);
    for (i = 0; i < 4u; i++) {
        (void)beat(&s, 100u, V_CLASS, 0u);
    }
    CHECK_EQ(count_type(&s, ECG_ALERT_VT, ECG_ALERT_FLAG_ONSET), 1);
    ecg_alerts_stop(&s.a, s.idx + 50u, 0u);
    CHECK_EQ(find(&s, ECG_ALERT_VT, ECG_ALERT_FLAG_END | ECG_ALERT_FLAG_STREAM_END, &end), 0);
    CHECK_EQ(end.end_index, s.idx);
    CHECK_EQ(end.count, 4);
    /* a new stream starts clean: a single V does not continue the run */
    ecg_alerts_start(&s.a, 0u, FS);
    s.idx = 0u;
    (void)beat(&s, 0u, V_CLASS, 0u);
    beats(&s, 1u, 100u, V_CLASS);
    CHECK_EQ(count_type(&s, ECG_ALERT_VT, ECG_ALERT_FLAG_ONSET), 1);
}

static void test_disabled_rules_raise_nothing(void)
{
    sim_t s;
    ecg_alerts_cfg_t c;
    ecg_alerts_default_cfg(&c);
    c.enable_mask = (uint16_t)(ECG_ALERT_ALL & ~ECG_ALERT_BIT(ECG_ALERT_PAUSE) &
                               ~ECG_ALERT_BIT(ECG_ALERT_VT));
    sim_init(&s, &c);
    (void)beat(&s, 0u, N_CLASS, 0u);
    beats(&s, 3u, 200u, N_CLASS);
    (void)beat(&s, 750u, N_CLASS, 0u);
    beats(&s, 5u, 100u, V_CLASS);
    CHECK_EQ(count_type(&s, ECG_ALERT_PAUSE, 0u), 0);
    CHECK_EQ(count_type(&s, ECG_ALERT_VT, 0u), 0);
}

int main(void)
{
    printf("sizeof(ecg_alerts_t) = %u\n", (unsigned)sizeof(ecg_alerts_t));
    RUN(test_queue_ids_start_at_one_and_ack_frees_up_to_the_id);
    RUN(test_queue_overflow_drops_lowest_severity_oldest_first_and_counts);
    RUN(test_queue_ids_survive_the_u32_wrap_and_skip_zero);
    RUN(test_config_ranges_and_consistency_are_checked);
    RUN(test_bradycardia_sustained_for_five_seconds_opens_and_closes_an_episode);
    RUN(test_a_pause_is_not_averaged_into_a_bradycardia);
    RUN(test_tachycardia_opens_at_once_without_sustain_and_ends_with_hysteresis);
    RUN(test_pause_is_one_record_and_a_longer_gap_is_asystole_instead);
    RUN(test_asystole_opens_from_the_tick_and_the_next_beat_closes_it);
    RUN(test_lead_off_raises_lead_off_and_suppresses_asystole);
    RUN(test_ventricular_run_of_three_fast_v_beats_is_vt_until_a_non_v_beat);
    RUN(test_slow_ventricular_runs_and_unclassified_beats_are_not_vt);
    RUN(test_frequent_v_and_s_ectopy_per_minute_open_and_close);
    RUN(test_af_fires_on_random_rr_and_not_on_regular_or_bigeminal_rhythm);
    RUN(test_poor_signal_sustained_ten_seconds_then_three_good_beats_end_it);
    RUN(test_stop_closes_open_episodes_with_the_stream_end_flag);
    RUN(test_disabled_rules_raise_nothing);
    printf("%u passed, %u failed\n", g_passed, g_failed);
    return g_failed == 0u ? 0 : 1;
}

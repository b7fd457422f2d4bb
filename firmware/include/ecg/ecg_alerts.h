/**
 * @file ecg_alerts.h
 * @brief Rhythm alerts: a rule engine over the beat stream and a bounded queue of alert records
 *        kept until the host acknowledges them.
 *
 * The engine sees what the device's host sees: one call per beat event (R-peak sample index,
 * RR interval, AAMI class, quality, flags; ::ecg_alerts_beat) and a tick from the device's poll
 * with the current sample index and lead-off mask (::ecg_alerts_tick) for the rules that fire
 * without beats. Everything is measured on the sample counter (exact, jitter-free); the device
 * clock (`now_us`) only dates the records. Thresholds live in ::ecg_alerts_cfg_t, which the host
 * reads and writes (docs/protocol.md §5.5). Rules, each enabled by its bit in `enable_mask`:
 *
 * | type | rule (defaults) | value | count | severity |
 * |---|---|---|---|---|
 * | BRADY | rate of the last `rate_beats` RR (8; RR longer than `pause_ms` left out) below `brady_bpm` (50) for `rate_sustain_s` (5 s); ends at `brady_bpm` + 5 | slowest rate, bpm | beats | WARNING |
 * | TACHY | same rate above `tachy_bpm` (120) for `rate_sustain_s`; ends at `tachy_bpm` - 5 | fastest rate, bpm | beats | WARNING |
 * | PAUSE | one RR longer than `pause_ms` (2500 ms), below the asystole limit, with the leads on | RR, ms | 1 | URGENT |
 * | ASYSTOLE | no beat for `asystole_ms` (4000 ms) after the stream's first beat and since the leads were last off; ends at the next beat | duration, ms (saturated) | 0 | CRITICAL |
 * | VT | >= `vt_beats` (3) consecutive V beats at >= `vt_bpm` (100, rate over the run); ends at the first beat that is not V | run rate, bpm | V beats | CRITICAL |
 * | V_ECTOPY | >= `v_per_min` (10) V beats in the last 60 s; ends below half of it | most per minute | V beats | ADVISORY |
 * | S_ECTOPY | >= `s_per_min` (10) S beats in the last 60 s; ends below half of it | most per minute | S beats | ADVISORY |
 * | AF | RR irregularity over the last `af_beats` (64) RR, Dash et al. 2009 (below); ends after 8 windows that fail | largest nRMSSD, per mille | the first window's RR + later AF beats | WARNING |
 * | LEAD_OFF | a lead-off bit set for `lead_off_ms` (1000 ms); ends when all leads are on | lead-off mask (OR) | 0 | ADVISORY |
 * | POOR_SIGNAL | beats of quality NOISY or worse without 3 GOOD beats in a row, for `poor_signal_s` (10 s) | share of bad beats, % | bad beats | ADVISORY |
 *
 * **AF** (Dash S, Chon KH, Lu S, Raeder EA. Automatic real time detection of atrial fibrillation.
 * Ann Biomed Eng 2009;37(9):1701-1709): over a window of N RR intervals, with the N/16 longest and
 * N/16 shortest removed (their outlier step), the window is "AF" when all three hold:
 *  - normalised RMSSD, RMSSD / mean RR >= `af_nrmssd_permille` / 1000 (0.100 as in the paper);
 *  - Shannon entropy of the RR histogram (16 equal bins between the trimmed min and max),
 *    normalised by log(16), >= `af_entropy_permille` / 1000 (0.700 as in the paper);
 *  - the turning-point count of the untrimmed series lies within the 95 % band of a random series,
 *    mu +- 1.96 sigma with mu = (2N - 4) / 3, sigma^2 = (16N - 29) / 90.
 * Beats of quality UNUSABLE restart the window (noise makes RR irregular, not AF). RR intervals
 * that end at a V beat or follow one (coupling interval and compensatory pause) are left out of
 * the window, so that ventricular ectopy does not pass for AF. The episode
 * starts at the first beat of the first AF window (but after the previous AF episode's end).
 *
 * **Episodes and records.** Every rule opens and closes episodes. A record is queued at onset
 * (::ECG_ALERT_FLAG_ONSET) and another at the end (::ECG_ALERT_FLAG_END) of each episode; both
 * carry the `episode` id (the onset record's id), the type and the start sample; the end record
 * has the final end sample, value and count. An event with no duration (PAUSE, or an ASYSTOLE
 * seen only after its closing beat) is one record with both flags. Records are never changed
 * once queued, so "records after id X" is exact. Open episodes are closed by ::ecg_alerts_stop
 * (end of stream) with ::ECG_ALERT_FLAG_STREAM_END.
 *
 * **Queue** (::ecg_alert_queue_t): ::ECG_ALERTS_QUEUE_LEN records in id order, kept until
 * acknowledged (::ecg_alert_queue_ack frees every record up to an id). Ids start at 1 and grow by
 * one per record, whatever the queue does (drops and acks leave holes, never reuse). When it is
 * full, the record dropped is the one of lowest severity, the oldest among equals, counting the
 * new record (which is dropped itself when it is strictly the least severe); `dropped` counts
 * them. The queue is independent of the link: what is not acknowledged survives a disconnect.
 *
 * **Where episodes start and end.** BRADY / TACHY start at the beat where the rate first crossed
 * the limit and end at the last beat still beyond the hysteresis limit; rates are the mean of the
 * window, rounded to whole bpm. PAUSE spans its RR; ASYSTOLE spans the last beat (or the last
 * tick that saw a lead off) to the next beat. VT spans its first to its last V beat. Ectopy starts
 * with the 60-s window that reached the limit. AF starts at the first beat of the first AF window
 * and ends at the last beat whose window was AF. LEAD_OFF spans the ticks that saw a lead off.
 * POOR_SIGNAL spans its first to its last bad beat. The onset record's `end_index` is where the
 * episode stood when it was raised.
 *
 * Cost: per beat, one pass over the rate window (<= 16 RR), an insertion into and a removal from
 * the sorted AF window and, once the window is full, one pass over it with 16 `logf` and two
 * `sqrtf` (float32: single-precision FPU on the Cortex-M4F); a tick is O(1). Not measured on the
 * M4 yet. State: `sizeof(ecg_alerts_t)` = 2856 bytes (x86-64 and Cortex-M4 alike) with the
 * default queue: 32 records of 40 bytes, and the 128-RR AF window (1 KB). No heap, no globals,
 * C99.
 */
#ifndef ECG_ALERTS_H
#define ECG_ALERTS_H

#include <stddef.h>
#include <stdint.h>

#include "ecg/ecg_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef ECG_ALERTS_QUEUE_LEN
/** Alert records the queue holds until acknowledged (2..255). */
#define ECG_ALERTS_QUEUE_LEN 32u
#endif
#define ECG_ALERTS_MAX_RATE_BEATS 16u  /**< most RR intervals in the rate window */
#define ECG_ALERTS_MIN_AF_BEATS 16u    /**< shortest AF window, RR intervals */
#define ECG_ALERTS_MAX_AF_BEATS 128u   /**< longest AF window (Dash et al. used 128) */
#define ECG_ALERTS_AF_OFF_WINDOWS 8u   /**< consecutive non-AF windows that end an AF episode */
#define ECG_ALERTS_GOOD_TO_CLEAR 3u    /**< GOOD beats in a row that end a POOR_SIGNAL episode */
#define ECG_ALERTS_RATE_HYST_BPM 5u    /**< BRADY / TACHY end this far inside the limit */
#define ECG_ALERTS_ECTOPY_BINS 60u     /**< one-second bins of the ectopy window */
/** Decision latency of the QRS detector allowed for before ASYSTOLE fires from a tick (a beat is
 *  reported up to about 400 ms after its R peak; see ecg_qrs.h). */
#define ECG_ALERTS_BEAT_LATENCY_MS 500u

/** Alert types (the record's `type`). */
typedef enum {
    ECG_ALERT_BRADY = 1,
    ECG_ALERT_TACHY = 2,
    ECG_ALERT_PAUSE = 3,
    ECG_ALERT_ASYSTOLE = 4,
    ECG_ALERT_VT = 5,
    ECG_ALERT_V_ECTOPY = 6,
    ECG_ALERT_S_ECTOPY = 7,
    ECG_ALERT_AF = 8,
    ECG_ALERT_LEAD_OFF = 9,
    ECG_ALERT_POOR_SIGNAL = 10
} ecg_alert_type_t;

#define ECG_ALERT_N_TYPES 11u /**< types are 1..ECG_ALERT_N_TYPES - 1 */
/** `enable_mask` bit of a type. */
#define ECG_ALERT_BIT(type) ((uint16_t)(1u << (unsigned)(type)))
/** Every rule enabled (bits 1..10). */
#define ECG_ALERT_ALL ((uint16_t)0x07FEu)

/** Severities (the record's `severity`); the queue drops the lowest first. */
typedef enum {
    ECG_ALERT_SEV_ADVISORY = 1, /**< ectopy, lead-off, poor signal */
    ECG_ALERT_SEV_WARNING = 2,  /**< brady, tachy, AF */
    ECG_ALERT_SEV_URGENT = 3,   /**< pause */
    ECG_ALERT_SEV_CRITICAL = 4  /**< asystole, VT */
} ecg_alert_severity_t;

/** Record flags. */
#define ECG_ALERT_FLAG_ONSET 0x01u      /**< the episode starts (id == episode) */
#define ECG_ALERT_FLAG_END 0x02u        /**< the episode ended: end, value and count are final */
#define ECG_ALERT_FLAG_STREAM_END 0x04u /**< ended because the stream ended, not the rhythm */

/** One alert record (docs/protocol.md §6.7: 31 bytes on the wire). */
typedef struct {
    uint32_t id;           /**< 1, 2, ...: unique, increasing, never reused */
    uint32_t episode;      /**< id of the episode's onset record */
    uint8_t type;          /**< ::ecg_alert_type_t */
    uint8_t severity;      /**< ::ecg_alert_severity_t */
    uint8_t flags;         /**< ECG_ALERT_FLAG_* */
    uint32_t start_index;  /**< first sample of the episode (sample counter) */
    uint32_t end_index;    /**< last sample so far (onset) or final (end) */
    uint64_t time_us;      /**< device clock when the record was made, µs since boot */
    uint16_t value;        /**< the rule's measure, see the table above */
    uint16_t count;        /**< beats involved, see the table above */
} ecg_alert_t;

/** Thresholds (docs/protocol.md §5.5: 22 bytes on the wire). Start from ::ecg_alerts_default_cfg. */
typedef struct {
    uint16_t enable_mask;         /**< ECG_ALERT_BIT(type) per enabled rule */
    uint8_t brady_bpm;            /**< 20..200, < tachy_bpm */
    uint8_t tachy_bpm;            /**< 60..250 */
    uint8_t rate_beats;           /**< RR intervals averaged for the rate, 2..16 */
    uint8_t rate_sustain_s;       /**< seconds the rate stays beyond its limit, 0..60 */
    uint16_t pause_ms;            /**< 1000..10000 */
    uint16_t asystole_ms;         /**< 2000..20000, > pause_ms */
    uint8_t vt_beats;             /**< 3..50 */
    uint8_t vt_bpm;               /**< 60..250 */
    uint8_t v_per_min;            /**< 1..250 */
    uint8_t s_per_min;            /**< 1..250 */
    uint8_t af_beats;             /**< 16..128, a multiple of 16 */
    uint16_t af_nrmssd_permille;  /**< 1..1000 */
    uint16_t af_entropy_permille; /**< 1..1000 */
    uint16_t lead_off_ms;         /**< 0..60000 */
    uint8_t poor_signal_s;        /**< 1..120 */
} ecg_alerts_cfg_t;

/** The bounded record queue. Caller-owned; fields are private. */
typedef struct {
    ecg_alert_t rec[ECG_ALERTS_QUEUE_LEN]; /* in id order */
    uint8_t n;
    uint32_t next_id;  /* id of the next record */
    uint32_t acked;    /* highest id acknowledged */
    uint32_t dropped;  /* records dropped by the overflow policy */
    uint32_t added;    /* records made since init (for notices) */
} ecg_alert_queue_t;

/** An open episode of one rule. */
typedef struct {
    uint8_t open;
    uint32_t episode;
    uint32_t start_index, end_index;
    uint16_t value, count;
} ecg_alert_episode_t;

/** Engine state. Caller-owned; fields are private to ecg_alerts.c. */
typedef struct {
    ecg_alerts_cfg_t cfg;
    uint32_t fs_hz;
    ecg_alert_queue_t q;
    ecg_alert_episode_t ep[ECG_ALERT_N_TYPES];
    /* beats */
    uint32_t origin;               /* sample index of the stream start */
    uint8_t have_beat;
    uint32_t last_beat;            /* index of the latest beat (or of the stream start) */
    uint32_t last_detect;          /* latest detection noted (ecg_alerts_note_detection) */
    /* rate */
    uint32_t rr[ECG_ALERTS_MAX_RATE_BEATS];
    uint8_t rr_n, rr_pos;
    uint32_t rr_sum;
    uint8_t brady_on, tachy_on;    /* condition holds */
    uint32_t brady_since, tachy_since;
    /* VT */
    uint16_t v_run;
    uint32_t v_first;
    /* ectopy: one-second bins of V and S counts */
    uint8_t v_bin[ECG_ALERTS_ECTOPY_BINS], s_bin[ECG_ALERTS_ECTOPY_BINS];
    uint16_t v_sum, s_sum;
    uint32_t sec;                  /* second of the newest bin */
    /* AF */
    uint16_t af_rr[ECG_ALERTS_MAX_AF_BEATS];   /* ring of RR, ms */
    uint32_t af_idx[ECG_ALERTS_MAX_AF_BEATS];  /* beat index that closed each RR */
    uint16_t af_sorted[ECG_ALERTS_MAX_AF_BEATS];
    uint8_t af_n, af_pos, af_fail;
    uint8_t af_had;                /* an AF episode ended in this stream, at af_last_end */
    uint8_t prev_class;            /* class of the previous beat */
    uint32_t af_last_end;
    /* lead-off */
    uint8_t lead_off, lead_off_seen; /* mask at the last tick; off since the last beat */
    uint32_t lead_off_since;
    /* poor signal */
    uint32_t poor_since, poor_last;
    uint16_t poor_beats, poor_total;
    uint8_t poor_run, good_run;
} ecg_alerts_t;

/** Input of ::ecg_alerts_beat: a BEAT_EVENT's fields. */
typedef struct {
    uint32_t sample_index; /**< R peak */
    uint32_t rr_samples;   /**< to the previous beat; 0 for the first */
    uint8_t beat_class;    /**< 0 N, 1 S, 2 V, 3 F, 4 Q, 255 none (no classifier) */
    uint8_t quality;       /**< 0 good, 1 noisy, 2 unusable */
    uint8_t flags;         /**< BEAT_EVENT flags (unused by the rules) */
} ecg_alerts_beat_t;

/** @brief The defaults of the table above, every rule enabled. */
void ecg_alerts_default_cfg(ecg_alerts_cfg_t *cfg);

/**
 * @brief Check a configuration against the documented ranges.
 * @return ::ECG_OK; ::ECG_ERR_NULL; ::ECG_ERR_RANGE (a value outside its range, an unknown
 *         enable bit); ::ECG_ERR_CONFIG (brady_bpm >= tachy_bpm, asystole_ms <= pause_ms)
 */
ecg_err_t ecg_alerts_check_cfg(const ecg_alerts_cfg_t *cfg);

/**
 * @brief Initialise the engine: empty queue (next id 1), no episode.
 * @param[out] a      engine state
 * @param[in]  cfg    thresholds (copied)
 * @param[in]  fs_hz  sampling rate of the sample counter, 1..65535
 * @return ::ECG_OK, ::ECG_ERR_NULL, or an error of ::ecg_alerts_check_cfg / ::ECG_ERR_RANGE (fs)
 */
ecg_err_t ecg_alerts_init(ecg_alerts_t *a, const ecg_alerts_cfg_t *cfg, uint32_t fs_hz);

/**
 * @brief Replace the thresholds; rule state restarts (open episodes are closed first, at
 *        `index`, with ::ECG_ALERT_FLAG_STREAM_END). The queue is kept.
 * @return as ::ecg_alerts_check_cfg; on error nothing changes
 */
ecg_err_t ecg_alerts_set_cfg(ecg_alerts_t *a, const ecg_alerts_cfg_t *cfg, uint32_t index,
                             uint64_t now_us);

/** @brief The current thresholds. */
void ecg_alerts_get_cfg(const ecg_alerts_t *a, ecg_alerts_cfg_t *out);

/**
 * @brief A stream starts at sample `index` with rate `fs_hz` (0: keep the rate): rule state
 *        restarts, the queue is kept. Open episodes should have been closed by ::ecg_alerts_stop.
 */
void ecg_alerts_start(ecg_alerts_t *a, uint32_t index, uint32_t fs_hz);

/** @brief The stream ended at sample `index`: every open episode is closed there. */
void ecg_alerts_stop(ecg_alerts_t *a, uint32_t index, uint64_t now_us);

/** @brief One beat (per-beat step). Beats must come in index order. */
void ecg_alerts_beat(ecg_alerts_t *a, const ecg_alerts_beat_t *beat, uint64_t now_us);

/**
 * @brief Time step: `index` is the next sample index the pipeline processes (every earlier
 *        sample's beats have been passed to ::ecg_alerts_beat), `lead_off` the lead-off mask.
 */
void ecg_alerts_tick(ecg_alerts_t *a, uint32_t index, uint8_t lead_off, uint64_t now_us);

/**
 * @brief The detector found a beat at `sample_index` whose event comes later (a device that
 *        classifies sends a beat once the next one is detected). Only the ASYSTOLE clock uses it,
 *        so that the held beat does not count as missing.
 */
void ecg_alerts_note_detection(ecg_alerts_t *a, uint32_t sample_index);

/** @brief The engine's queue (pull, ack, counters). */
ecg_alert_queue_t *ecg_alerts_queue(ecg_alerts_t *a);

/* ---------------------------------------------------------------------------------------------
 * Protocol side (docs/protocol.md §5.5-§5.7, §6.6), so that ecg_device.c only routes frames
 * ------------------------------------------------------------------------------------------- */

/**
 * @brief Answer one alert command (about 300 bytes of stack: a page's records): ALERTS_PULL (a page of records after an id), ALERTS_ACK (frees
 *        up to an id; answers the status), ALERTS_CONFIGURE (::ecg_alerts_set_cfg at `index`),
 *        ALERTS_GET_CONFIG (the thresholds).
 * @param[in,out] a         engine
 * @param[in]     type      the command's frame type
 * @param[in]     payload   its payload (may be NULL when `len` is 0)
 * @param[in]     len       payload length
 * @param[in]     index     the device's current sample index (open episodes close there when the
 *                          thresholds change)
 * @param[in]     now_us    device clock
 * @param[out]    body      RESPONSE body
 * @param[in]     cap       capacity of `body`; ECG_PROTO_MAX_PAYLOAD - 2 always suffices
 * @param[out]    body_len  bytes written to `body`
 * @return 0 or a negative ::ecg_err_t / protocol error for the RESPONSE status (LENGTH, RANGE,
 *         CONFIG, UNSUPPORTED for a type that is not an alert command)
 */
int32_t ecg_alerts_command(ecg_alerts_t *a, uint8_t type, const uint8_t *payload, size_t len,
                           uint32_t index, uint64_t now_us, uint8_t *body, size_t cap,
                           size_t *body_len);

/**
 * @brief ALERT_NOTICE payload when one is due: records were made since `*seen` (then updated to
 *        the queue's `added` count), or `force` and records are queued (a host just connected).
 * @return payload length (11), or 0 when no notice is due
 */
int32_t ecg_alerts_pack_notice(const ecg_alerts_t *a, uint32_t *seen, int force, uint8_t *out,
                               size_t cap);

/* ---------------------------------------------------------------------------------------------
 * Queue
 * ------------------------------------------------------------------------------------------- */

/** @brief Empty queue; the next id is 1; counters zero. */
void ecg_alert_queue_init(ecg_alert_queue_t *q);

/**
 * @brief Give `r` the next id and queue it (overflow policy above). `r->episode` 0 means "this
 *        record's own id" (an onset).
 * @return the id given (>= 1); 0 when `q` or `r` is NULL
 */
uint32_t ecg_alert_queue_push(ecg_alert_queue_t *q, ecg_alert_t *r);

/** @brief Free every record with id <= `id`. @return records freed */
size_t ecg_alert_queue_ack(ecg_alert_queue_t *q, uint32_t id);

/** @brief Records queued with id > `after_id`. */
size_t ecg_alert_queue_count_after(const ecg_alert_queue_t *q, uint32_t after_id);

/**
 * @brief Copy up to `max` records with id > `after_id`, oldest first.
 * @return records copied
 */
size_t ecg_alert_queue_get(const ecg_alert_queue_t *q, uint32_t after_id, ecg_alert_t *out,
                           size_t max);

/** @brief Records queued. */
size_t ecg_alert_queue_len(const ecg_alert_queue_t *q);

/** @brief Id of the latest record made (0: none yet). */
uint32_t ecg_alert_queue_last_id(const ecg_alert_queue_t *q);

/** @brief Records dropped by the overflow policy since init. */
uint32_t ecg_alert_queue_dropped(const ecg_alert_queue_t *q);

/** @brief Records made since init (a notice is due when this changes). */
uint32_t ecg_alert_queue_added(const ecg_alert_queue_t *q);

#ifdef __cplusplus
}
#endif

#endif /* ECG_ALERTS_H */

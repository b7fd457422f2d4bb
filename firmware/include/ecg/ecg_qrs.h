/**
 * @file ecg_qrs.h
 * @brief Real-time QRS detector: per sample, causal, adaptive thresholds, search-back.
 *
 * Input: the output of ecg_filter (millivolts, baseline removed), one sample at a time.
 * Output: an ::ecg_qrs_beat_t whenever a beat is decided, carrying the R-peak position as an
 * absolute sample index of the *raw* input stream (the conditioning filter's group delay, given in
 * the config, is subtracted).
 *
 * Algorithm (one pass, O(1) work per sample, O(window) work per candidate peak):
 *  1. feature: band-pass section around the QRS band (`bandpass_hz`, `bandpass_q`), slope over
 *     `slope_ms`, absolute value, moving-window integral over `mwi_ms` (MWI);
 *  2. candidate peaks: local maxima of the MWI, confirmed once the MWI falls below half of the
 *     maximum or `peak_hold_ms` has passed; R peak = largest |filtered sample| in the window that
 *     produced the candidate;
 *  3. threshold: `noise + f * (signal - noise)`, with signal and noise levels the running means of
 *     the last 8 QRS and noise peaks, and f = `threshold_frac` + `threshold_noise_gain` * noise /
 *     signal + `threshold_activity_gain` * (activity - `activity_clean`, if positive), capped at
 *     0.9: the threshold tightens during noise (activity: see signal quality below);
 *  4. a candidate above threshold becomes the *pending* beat unless it looks like a T wave (within
 *     `twave_ms` of the previous beat and its steepest slope below `twave_slope_frac` of that
 *     beat's). Within `refractory_ms` of the pending beat the larger candidate wins; a *weak*
 *     pending beat (slope below `weak_slope_frac` of the recent beats') followed within `pwave_ms`
 *     by a candidate steeper (`twave_slope_frac`) or larger (`pwave_height_frac`) is taken for a
 *     P wave and replaced;
 *  5. search-back: when no beat has come for `searchback_rr_frac` mean RR intervals, or when a beat
 *     closes an interval longer than `searchback_gap_frac` mean RR (retroactive), the largest
 *     sub-threshold candidate at least `searchback_min_ms` after the previous beat is taken if it
 *     clears `searchback_frac` of the threshold.
 *
 * Decision latency: a pending beat is decided `refractory_ms` + `mwi_ms`/2 + `peak_hold_ms` after
 * its R peak (290 ms with the defaults), a weak one `pwave_ms` + `mwi_ms`/2 + `peak_hold_ms`
 * (390 ms), plus the filter's group delay (~12 ms); search-back beats are reported when
 * search-back runs. Measured on MIT-BIH: median 297 ms, p99 397 ms (tools/bench_core.py).
 *
 * Signal quality: the mean MWI between beats (after the refractory period) relative to the beat's
 * own MWI height, smoothed over beats ("activity"). Clean ECG is quiet between beats in the QRS
 * band, noise is not: see ::ecg_qrs_quality_t and ECG_QRS_NOISY_ACTIVITY.
 */
#ifndef ECG_QRS_H
#define ECG_QRS_H

#include "ecg/ecg_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ECG_QRS_MIN_FS_HZ 125.0f
#define ECG_QRS_MAX_FS_HZ 1000.0f
/** Filtered-signal history kept for R-peak localisation, in ms. */
#define ECG_QRS_HISTORY_MS 512u
/** Sizes of the fixed buffers, for the highest supported rate. */
#define ECG_QRS_HISTORY_MAX_SAMPLES 512u /* ECG_QRS_HISTORY_MS at 1000 Hz */
#define ECG_QRS_MWI_MAX_SAMPLES 200u
#define ECG_QRS_SLOPE_MAX_SAMPLES 32u
#define ECG_QRS_LEVELS 8u
/** Between-beat activity (see ::ecg_qrs_quality_t) above which a beat is noisy / unusable. */
#define ECG_QRS_NOISY_ACTIVITY 0.30f
#define ECG_QRS_UNUSABLE_ACTIVITY 0.45f

/** Signal quality attached to each beat. */
typedef enum {
    ECG_QRS_QUALITY_GOOD = 0,  /**< clean: thresholds well separated from noise */
    ECG_QRS_QUALITY_NOISY = 1, /**< noisy: detections may include false beats or miss some */
    ECG_QRS_QUALITY_UNUSABLE = 2 /**< too noisy to trust */
} ecg_qrs_quality_t;

/** Detector configuration. Start from ::ecg_qrs_default_cfg. */
typedef struct {
    float fs_hz;                /**< sampling rate, 125..1000 Hz */
    float filter_delay_samples; /**< group delay of the upstream filter, subtracted from indices */
    float bandpass_hz;          /**< centre of the feature band-pass, 5..30 Hz */
    float bandpass_q;           /**< its quality factor, 0.3..5 */
    float slope_ms;             /**< slope span, 2..30 ms */
    float mwi_ms;               /**< moving-window integral length, 40..190 ms */
    float peak_hold_ms;         /**< candidate confirmed this long after its maximum, 20..200 ms */
    float refractory_ms;        /**< no second beat within this, 150..300 ms */
    float twave_ms;             /**< T-wave check applies within this of a beat, 200..500 ms */
    float twave_slope_frac;     /**< T wave if its max slope < this fraction of the beat's, 0..1 */
    float pwave_ms;             /**< P wave check: a beat followed this closely, 150..400 ms, */
    float weak_slope_frac;      /**< ... by a steeper one, when its slope < this of the mean, 0..1 */
    float pwave_height_frac;    /**< ... or by one this much larger (MWI height ratio), 0..1 */
    float threshold_frac;       /**< threshold between noise (0) and signal (1) level, 0.05..0.9 */
    float threshold_noise_gain; /**< threshold_frac grows by this times noise/signal level, 0..4 */
    float threshold_activity_gain; /**< ... and by this times the between-beat activity above */
    float activity_clean;          /**< ... this level (clean ECG stays below it), 0..1 */
    float searchback_rr_frac;   /**< search back after this many mean RR intervals, 1..3 */
    float searchback_frac;      /**< search-back candidates must clear this fraction of threshold */
    float searchback_gap_frac;  /**< retroactive search-back when a beat ends an interval longer
                                     than this many mean RR intervals, 1..3 */
    float searchback_min_ms;    /**< search-back candidates at least this far from a beat, 150..500 */
    float learn_ms;             /**< initial learning period, 1000..8000 ms */
} ecg_qrs_cfg_t;

/** One detected beat. */
typedef struct {
    uint64_t index;    /**< R peak, absolute sample index of the raw input stream */
    uint64_t decided_at; /**< index of the input sample whose arrival decided the beat */
    uint32_t rr_samples; /**< interval to the previous beat (0 for the first) */
    uint8_t quality;   /**< an ::ecg_qrs_quality_t */
    uint8_t searchback; /**< 1 when found by search-back */
} ecg_qrs_beat_t;

/** A candidate peak of the MWI, localised on the filtered signal. */
typedef struct {
    uint64_t r_index;  /**< filtered-signal index of the R peak */
    float height;      /**< MWI maximum */
    float slope;       /**< steepest |slope| in the candidate's window */
    uint8_t valid;
} ecg_qrs_candidate_t;

/** Detector state. Caller-owned; fields are private to ecg_qrs.c. */
typedef struct {
    ecg_qrs_cfg_t cfg;
    /* windows in samples, derived at init */
    uint16_t slope_n, mwi_n, hold_n, refractory_n, twave_n, learn_n, search_n, decide_n;
    uint16_t pwave_n, decide_weak_n, sb_min_n;
    int32_t delay_n;
    /* feature band-pass {b0, b2, a1, a2} (b1 = 0) and state */
    float bp_c[4];
    float bp_x1, bp_x2, bp_y1, bp_y2;
    /* histories (circular, indexed by sample counter) */
    float hist[ECG_QRS_HISTORY_MAX_SAMPLES];   /* filtered signal */
    float bp_hist[ECG_QRS_SLOPE_MAX_SAMPLES];  /* band-passed signal for the slope */
    float mwi_buf[ECG_QRS_MWI_MAX_SAMPLES];    /* |slope| values in the MWI window */
    float mwi_sum, mwi_fresh;
    uint16_t mwi_pos;
    uint64_t n; /* samples seen */
    /* peak tracking on the MWI */
    float pk_val, prev_mwi;
    uint64_t pk_index;
    uint64_t pk_due;       /* candidate confirmed at this sample at the latest */
    /* deadlines as sample indices, so the per-sample path only compares integers */
    uint64_t gap_from;     /* between-beat activity is summed from here */
    uint64_t sb_due;       /* time-based search-back from here */
    uint64_t pend_due;     /* pending beat decided here */
    uint64_t next_due;     /* the earlier of what decide() waits for */
    /* levels */
    float sig_lv[ECG_QRS_LEVELS], noise_lv[ECG_QRS_LEVELS];
    float sig_mean, noise_mean, threshold;
    uint8_t sig_pos, noise_pos;
    float learn_max;
    uint8_t learning;
    /* beats */
    uint64_t last_r;       /* filtered-signal index of the last beat */
    uint8_t have_beat;
    float last_slope;
    float slope_mean;      /* running mean of beat slopes */
    float rr_mean;         /* samples */
    ecg_qrs_candidate_t sb;   /* best search-back candidate since the last beat */
    ecg_qrs_candidate_t pend; /* beat waiting for its refractory period to pass */
    float activity;        /* smoothed between-beat MWI relative to beat height */
    float gap_sum;         /* MWI summed since the last beat's refractory period */
    uint32_t gap_count;

} ecg_qrs_t;

/** @brief Fill `cfg` with the defaults for `fs_hz`. */
void ecg_qrs_default_cfg(ecg_qrs_cfg_t *cfg, float fs_hz);

/**
 * @brief Initialise the detector.
 * @return ECG_OK, ECG_ERR_NULL, or ECG_ERR_RANGE for a value outside its documented range.
 */
ecg_err_t ecg_qrs_init(ecg_qrs_t *q, const ecg_qrs_cfg_t *cfg);

/** @brief Forget all history; the sample counter restarts at 0. */
void ecg_qrs_reset(ecg_qrs_t *q);

/**
 * @brief Process one filtered sample.
 * @param[in,out] q     detector
 * @param[in]     x_mv  filtered sample, millivolts
 * @param[out]    beat  filled when a beat is decided
 * @return 1 when `beat` was filled, 0 otherwise
 */
int ecg_qrs_step(ecg_qrs_t *q, float x_mv, ecg_qrs_beat_t *beat);

/** Samples of the feature computed ahead of the decisions inside ::ecg_qrs_process. */
#define ECG_QRS_BLOCK 32u

/**
 * @brief Process a block of filtered samples (the efficient form of ::ecg_qrs_step).
 *
 * Gives exactly the beats that ::ecg_qrs_step gives sample by sample, in order. At most one beat
 * is decided per sample.
 * @param[in,out] q      detector
 * @param[in]     x_mv   filtered samples, millivolts
 * @param[in]     count  number of samples
 * @param[out]    beats  decided beats, in order; room for `count` beats
 * @return number of beats written
 */
size_t ecg_qrs_process(ecg_qrs_t *q, const float *x_mv, size_t count, ecg_qrs_beat_t *beats);

/**
 * @brief Decide on what is pending at the end of a stream (a candidate still being confirmed).
 * @return 1 when `beat` was filled. Call until it returns 0.
 */
int ecg_qrs_flush(ecg_qrs_t *q, ecg_qrs_beat_t *beat);

#ifdef __cplusplus
}
#endif

#endif /* ECG_QRS_H */

/**
 * @file ecg_beatfeat.h
 * @brief Streaming per-beat feature extraction for the int8 beat classifier: the C port of
 *        `ecgedge.beats` (host_sdk/ecgedge/beats.py, the feature specification), bit for bit.
 *
 * Inputs are the device's own streams: the **filtered** QRS lead (the output of `ecg_filter`, in
 * millivolts, one float32 per sample instant) and the detector's beats (`ecg_qrs_beat_t`, R peaks
 * as raw sample indices, in time order). Output, per beat, the classifier's two int8 inputs
 * (`window`, `rr`) quantized with the compiled model's parameters, ready for ::ecg_classifier_run.
 * The `diff` input of `beats.py` (steps 6-7) is not computed: the shipped model has no such input.
 *
 * Steps (numbers as in beats.py; every float operation is float32 and in the order written there,
 * every sum and product of intervals int64, so the int8 inputs equal `beats.beat_features` +
 * `beats.quantize` on the same filtered signal and R peaks):
 *  1. the beat of raw R peak `r` is centred on filtered sample `c = r + D`,
 *     `D = floor(filter_delay_samples + 0.5)`;
 *  2. window value k (0..255) is the filtered sample `c + k - 90` at 360 Hz; at other rates the
 *     position `p_k = c + (k - 90) * (fs / 360)` is computed in double precision and the signal
 *     linearly interpolated (`x[i] + f * (x[i+1] - x[i])`, `f = (float)(p_k - floor(p_k))`);
 *     positions before the stream's first sample or after its last (known at
 *     ::ecg_beatfeat_finish) read as 0.0;
 *  3. `A_n = max |w_k|`, k = 72..108;
 *  4. `S_n = max(lower median of A_{n-8..n}, 0.05)`;
 *  5. `window_k = clip(w_k / S_n, -4, 4)`, quantized as `clamp(roundf(x / scale) + zp, -128, 127)`
 *     (roundf: half away from zero, TFLite's AffineQuantize);
 *  RR: the nine features of beats.py from the intervals `I_k = r_k - r_{k-1}` (pre, post, local,
 *     long and irregularity sums), quantized the same way with the `rr` parameters.
 *
 * @par One-beat delay
 * `post` needs the next beat's R peak, so beat n comes out of ::ecg_beatfeat_next once beat n+1
 * was added (or the stream ended: ::ecg_beatfeat_finish gives the last beat `post = pre`). Its
 * window is captured (step 2-5 done, 256 int8 bytes kept) as soon as the filtered samples up to
 * its end have been pushed, i.e. about 460 ms after the R peak; the raw samples are not kept
 * per beat.
 *
 * @par Memory and limits
 * The filtered samples live in a ring of ::ECG_BEATFEAT_RING_SAMPLES float32 values (4 KB by
 * default; the whole state is about 7.2 KB). A beat's window must still be in the ring when the
 * detector reports the beat: the ring covers a report latency of
 * `ECG_BEATFEAT_RING_SAMPLES - 2 - 90 * fs / 360` samples after the R peak. With the default that
 * is 2.6 s at 360 Hz and 1.8 s at 500 Hz, more than the detector's worst case on the 48 MIT-BIH
 * records (1.62 s, a search-back beat after a long pause; typical beats: 0.3-0.4 s), but only
 * 0.77 s at 1000 Hz, where such late search-back beats lose the start of their window: define
 * ECG_BEATFEAT_RING_SAMPLES 2048 (8 KB) for exact features at every rate. A beat reported later
 * reads its lost samples as 0.0, is flagged `late` and counted (::ecg_beatfeat_stats_t): its
 * features then differ from beats.py. At most ::ECG_BEATFEAT_QUEUE beats wait at once: the last
 * one for its successor, the others for the end of their window; since the detector's beats are
 * at least its refractory period (>= 150 ms) apart and a window ends 458 ms + D after its R peak,
 * at most 4 wait for their window, so a caller that takes every ready beat (::ecg_beatfeat_next)
 * after each ::ecg_beatfeat_add_beat never finds the queue full.
 *
 * @par Cost
 * Per sample one float store into the ring (::ecg_beatfeat_push, any block size). Per beat, one
 * pass over 37 window samples for the amplitude, a sort of at most 9 floats, then 256 reads,
 * divisions and roundings for the window and about 80 integer additions for the RR sums.
 *
 * No heap, no globals; caller-owned state; C99.
 */
#ifndef ECG_BEATFEAT_H
#define ECG_BEATFEAT_H

#include <stddef.h>
#include <stdint.h>

#include "ecg/ecg_qrs.h"
#include "ecg/ecg_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Model rate of the window, Hz (beats.py MODEL_FS_HZ). */
#define ECG_BEATFEAT_MODEL_FS_HZ 360.0
/** Window values per beat (beats.py WINDOW_LEN). */
#define ECG_BEATFEAT_WINDOW_LEN 256u
/** Window values before the R peak (beats.py WINDOW_PRE). */
#define ECG_BEATFEAT_WINDOW_PRE 90
/** RR features per beat (beats.py N_RR_FEATURES). */
#define ECG_BEATFEAT_RR_LEN 9u
/** Beats in the running median of R amplitudes (beats.py AMP_HISTORY). */
#define ECG_BEATFEAT_AMP_HISTORY 9u
/** Intervals kept for the long RR sum (beats.py RR_LONG_N), rounded up to a power of two with
 *  room for the next beat's interval. */
#define ECG_BEATFEAT_IV_RING 128u

#ifndef ECG_BEATFEAT_RING_SAMPLES
/** Filtered samples kept, a power of two (see Memory and limits). May be overridden with -D for
 *  the whole build. */
#define ECG_BEATFEAT_RING_SAMPLES 1024u
#endif
#ifndef ECG_BEATFEAT_QUEUE
/** Beats that may wait for their window or their successor at once (see Memory and limits). */
#define ECG_BEATFEAT_QUEUE 8u
#endif

/** Configuration. Start from ::ecg_beatfeat_default_cfg. */
typedef struct {
    float fs_hz;                /**< sampling rate of the lead, 125..1000 Hz */
    float filter_delay_samples; /**< `ecg_filter_delay_samples` of the lead's filter */
    float window_scale;         /**< quantization of the `window` input (> 0) ... */
    int32_t window_zero_point;  /**< ... and its zero point, -128..127 */
    float rr_scale;             /**< quantization of the `rr` input (> 0) ... */
    int32_t rr_zero_point;      /**< ... and its zero point, -128..127 */
} ecg_beatfeat_cfg_t;

/** One beat's classifier inputs. */
typedef struct {
    ecg_qrs_beat_t beat;                     /**< the detector's beat, as added */
    int8_t window[ECG_BEATFEAT_WINDOW_LEN];  /**< quantized `window` input */
    int8_t rr[ECG_BEATFEAT_RR_LEN];          /**< quantized `rr` input */
    float scale_mv;                          /**< S_n, the amplitude scale of the window */
    uint8_t late;                            /**< 1: part of the window was not available (see
                                                  Memory and limits); the features are not exact */
} ecg_beatfeat_beat_t;

/** Counters since the last reset. */
typedef struct {
    uint32_t beats_in;  /**< beats added */
    uint32_t beats_out; /**< beats whose features came out */
    uint32_t late;      /**< of those, flagged `late` */
} ecg_beatfeat_stats_t;

/** State. Caller-owned; fields are private to ecg_beatfeat.c. */
typedef struct {
    ecg_beatfeat_cfg_t cfg;
    int32_t delay;              /* D */
    double step;                /* fs / 360, the window's sample step in input samples */
    int32_t span_lo, span_hi;   /* window reach around c: first / last sample read, rel. to c */
    float ring[ECG_BEATFEAT_RING_SAMPLES];
    uint64_t n_in;              /* filtered samples pushed (the next one's index) */
    uint8_t finished;           /* the stream ended: samples from n_in on read as 0.0 */
    /* beats waiting: [q_head, q_head + q_len) in a circular queue; the first q_cap of them have
     * their window captured */
    ecg_beatfeat_beat_t q[ECG_BEATFEAT_QUEUE];
    uint8_t q_head, q_len, q_cap;
    uint64_t n_beats;           /* beats added: the next beat's number */
    uint64_t n_out;             /* number of the next beat to come out */
    uint64_t last_r;            /* R peak of the latest beat added */
    uint32_t iv[ECG_BEATFEAT_IV_RING]; /* iv[k % RING] = I_k, for recent beats k >= 1 */
    float amp[ECG_BEATFEAT_AMP_HISTORY]; /* R amplitudes of the latest beats, circular */
    uint64_t n_amp;             /* amplitudes pushed */
    ecg_beatfeat_stats_t stats;
} ecg_beatfeat_t;

/**
 * @brief Defaults for the compiled model (`ecg_model_data.h` quantization) at `fs_hz`, with the
 *        given filter delay.
 */
void ecg_beatfeat_default_cfg(ecg_beatfeat_cfg_t *cfg, float fs_hz, float filter_delay_samples);

/**
 * @brief Initialise (and start a stream).
 * @return ECG_OK, ECG_ERR_NULL, or ECG_ERR_RANGE (rate outside 125..1000 Hz, delay outside
 *         0..100 samples, scale not > 0, zero point outside -128..127)
 */
ecg_err_t ecg_beatfeat_init(ecg_beatfeat_t *bf, const ecg_beatfeat_cfg_t *cfg);

/** @brief Start a new stream: drop samples and beats, zero the counters; the configuration stays. */
void ecg_beatfeat_reset(ecg_beatfeat_t *bf);

/**
 * @brief Append `n` filtered samples (the lead's next instants, float32 mV) and capture the
 *        windows they complete. Per sample: one store.
 */
void ecg_beatfeat_push(ecg_beatfeat_t *bf, const float *y, size_t n);

/**
 * @brief Add the detector's next beat (R peaks strictly increasing; indices on the same counter
 *        as the pushed samples: sample 0 is the first pushed after init/reset).
 * @return ECG_OK, ECG_ERR_NULL, or ECG_ERR_STATE (not after the previous beat, after
 *         ::ecg_beatfeat_finish, or the queue is full: take the ready beats first); a refused
 *         beat changes nothing
 */
ecg_err_t ecg_beatfeat_add_beat(ecg_beatfeat_t *bf, const ecg_qrs_beat_t *beat);

/**
 * @brief The stream ended: the samples pushed are all there is (later positions read 0.0), and
 *        the last beat needs no successor. Call ::ecg_beatfeat_next until it returns 0, then
 *        ::ecg_beatfeat_reset before the next stream.
 */
void ecg_beatfeat_finish(ecg_beatfeat_t *bf);

/**
 * @brief Take the next beat whose features are complete (window captured and successor known or
 *        stream finished), in beat order.
 * @return 1 and `*out` filled, or 0 when no beat is ready yet
 */
int ecg_beatfeat_next(ecg_beatfeat_t *bf, ecg_beatfeat_beat_t *out);

/** @brief Beats added and not yet taken by ::ecg_beatfeat_next. */
size_t ecg_beatfeat_pending(const ecg_beatfeat_t *bf);

/** @brief Copy the counters. */
void ecg_beatfeat_get_stats(const ecg_beatfeat_t *bf, ecg_beatfeat_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif /* ECG_BEATFEAT_H */

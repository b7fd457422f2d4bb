/**
 * @file ecg_filter.h
 * @brief Streaming ECG conditioning filter: baseline-wander high-pass, mains notch, noise low-pass.
 *
 * Per sample, causal, float32 (the targets have single-precision FPUs; int16 counts are converted
 * at the edges). One cascade of second-order sections, designed at init from the sampling rate by
 * the bilinear transform, so any rate from ::ECG_FILTER_MIN_FS_HZ to ::ECG_FILTER_MAX_FS_HZ works:
 *
 *  1. high-pass, 2nd-order Butterworth at `highpass_hz` (baseline wander, default 0.5 Hz);
 *  2. notch at `mains_hz` (50 or 60 Hz, quality `notch_q`), left out when `mains_hz` is 0 or the
 *     mains frequency is not below fs/2;
 *  3. low-pass, 4th-order Butterworth (two sections) at `lowpass_hz` (default 40 Hz, clipped to
 *     0.4 fs for low rates).
 *
 * Group delay: IIR filters have a frequency-dependent delay. The delay the rest of the pipeline
 * uses is the group delay at ::ECG_FILTER_DELAY_REF_HZ (the centre of the QRS energy band),
 * computed at init from the designed coefficients and exposed by ::ecg_filter_delay_samples.
 * Units: the filter is linear, so any input unit works; the pipeline uses millivolts.
 */
#ifndef ECG_FILTER_H
#define ECG_FILTER_H

#include "ecg/ecg_biquad.h"
#include "ecg/ecg_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ECG_FILTER_MIN_FS_HZ 125.0f   /**< lowest supported sampling rate */
#define ECG_FILTER_MAX_FS_HZ 1000.0f  /**< highest supported sampling rate */
#define ECG_FILTER_MAX_STAGES 4u      /**< high-pass + notch + two low-pass sections */
#define ECG_FILTER_DELAY_REF_HZ 10.0f /**< frequency at which the reported group delay is taken */
/** The high-pass cut-off must be at least this, and at least this fraction of fs: below fs/5000 the
 * float32 coefficients of a Direct Form I section can no longer keep its poles inside the unit
 * circle (measured: 0.05 Hz at 1000 Hz is unstable). */
#define ECG_FILTER_MIN_HIGHPASS_HZ 0.05f
#define ECG_FILTER_MIN_HIGHPASS_FRACTION_OF_FS 0.0002f

/** Filter configuration. Start from ::ecg_filter_default_cfg and change what you need. */
typedef struct {
    float fs_hz;       /**< sampling rate, 125..1000 Hz */
    uint8_t mains_hz;  /**< 0 (no notch), 50 or 60 */
    float highpass_hz; /**< baseline-wander cut-off, max(0.05 Hz, fs/5000)..5 Hz */
    float lowpass_hz;  /**< noise cut-off, 15..150 Hz; clipped to 0.4 * fs_hz */
    float notch_q;     /**< notch quality factor f0 / bandwidth, 1..100 */
} ecg_filter_cfg_t;

/** Filter state. Caller-owned; fields are private to ecg_filter.c. */
typedef struct {
    ecg_biquad_t cascade;
    float coeffs[5u * ECG_FILTER_MAX_STAGES];
    float state[ECG_BIQUAD_STATE_LEN(ECG_FILTER_MAX_STAGES)];
    float delay_samples;
} ecg_filter_t;

/**
 * @brief Fill `cfg` with the defaults: 0.5 Hz high-pass, 50 Hz notch (Q 10), 40 Hz low-pass.
 * @param[out] cfg    configuration to fill
 * @param[in]  fs_hz  sampling rate
 */
void ecg_filter_default_cfg(ecg_filter_cfg_t *cfg, float fs_hz);

/**
 * @brief Design the filter for `cfg` and zero its state.
 * @return ECG_OK; ECG_ERR_NULL for a NULL argument; ECG_ERR_RANGE for a value outside its range,
 *         or a design whose float32 coefficients would be unstable (the state is then unusable).
 */
ecg_err_t ecg_filter_init(ecg_filter_t *f, const ecg_filter_cfg_t *cfg);

/** @brief Forget past input; the design is kept. */
void ecg_filter_reset(ecg_filter_t *f);

/** @brief Filter one sample. */
float ecg_filter_step(ecg_filter_t *f, float x);

/** @brief Filter a block of n samples; `src` and `dst` may alias. */
void ecg_filter_process(ecg_filter_t *f, const float *src, float *dst, size_t n);

/** @brief Group delay at ::ECG_FILTER_DELAY_REF_HZ, in samples (fractional). */
float ecg_filter_delay_samples(const ecg_filter_t *f);

#ifdef __cplusplus
}
#endif

#endif /* ECG_FILTER_H */

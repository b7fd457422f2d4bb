/**
 * @file ecg_biquad.h
 * @brief Cascade of second-order IIR sections, float32, Direct Form I.
 *
 * Each stage computes
 *
 *     y[n] = b0*x[n] + b1*x[n-1] + b2*x[n-2] - a1*y[n-1] - a2*y[n-2]
 *
 * Sign convention: a1 and a2 are stored exactly as scipy.signal returns them (denominator
 * `[1, a1, a2]`), and are subtracted here. (CMSIS-DSP stores them negated; we do not.)
 *
 * Coefficients per stage, in order: {b0, b1, b2, a1, a2} (b0 must not be 0). State: the history,
 * {x[n-1], x[n-2]} of the cascade input, then {y[n-1], y[n-2]} of each stage (a stage's output
 * history is the next stage's input history, so it is kept once), then {b1/b0, b2/b0} per stage
 * computed by init: ECG_BIQUAD_STATE_LEN(num_stages) floats. Each section is computed as
 * b0 (x + (b1/b0) x1 + (b2/b0) x2) - a1 y1 - a2 y2 with fused multiply-adds (see ecg_biquad.c
 * for why this form keeps a high-pass exactly blind to DC). Direct Form I is used rather than transposed DF2 because the
 * baseline-wander high-pass has poles within 0.3 % of z = 1, where DF1 in float32 has the lower
 * round-off noise.
 *
 * The caller owns the instance, the coefficient array and the state array.
 */
#ifndef ECG_BIQUAD_H
#define ECG_BIQUAD_H

#include "ecg/ecg_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** History floats of a cascade of `num_stages` sections (zeroed by reset). */
#define ECG_BIQUAD_HISTORY_LEN(num_stages) (2u * ((uint32_t)(num_stages) + 1u))
/** State floats a cascade of `num_stages` sections needs: history + numerator ratios. */
#define ECG_BIQUAD_STATE_LEN(num_stages) \
    (ECG_BIQUAD_HISTORY_LEN(num_stages) + 2u * (uint32_t)(num_stages))

/** Instance of a biquad cascade. Fields are set by ::ecg_biquad_init; treat as read-only. */
typedef struct {
    uint8_t num_stages;   /**< number of second-order sections */
    const float *coeffs;  /**< 5 * num_stages coefficients, {b0, b1, b2, a1, a2} per stage */
    float *state;         /**< ECG_BIQUAD_STATE_LEN(num_stages) values, zeroed by init and reset */
} ecg_biquad_t;

/**
 * @brief Initialise a cascade over caller-owned coefficients and state; zeroes the state.
 * @param[out] s           instance
 * @param[in]  num_stages  1..255
 * @param[in]  coeffs      5 * num_stages coefficients (kept by pointer, not copied)
 * @param[in]  state       ECG_BIQUAD_STATE_LEN(num_stages) floats (kept by pointer)
 * @return ECG_OK, ECG_ERR_NULL or ECG_ERR_RANGE (num_stages == 0, or a stage with b0 == 0)
 */
ecg_err_t ecg_biquad_init(ecg_biquad_t *s, uint8_t num_stages, const float *coeffs, float *state);

/** @brief Zero the history (the filter forgets its past input). */
void ecg_biquad_reset(ecg_biquad_t *s);

/**
 * @brief Filter one sample through every stage.
 * @param[in,out] s  instance
 * @param[in]     x  input sample
 * @return output sample
 */
float ecg_biquad_step(ecg_biquad_t *s, float x);

/**
 * @brief Filter a block. `src` and `dst` may be the same array.
 * @param[in,out] s           instance
 * @param[in]     src         n input samples
 * @param[out]    dst         n output samples
 * @param[in]     n           block size in samples
 */
void ecg_biquad_process(ecg_biquad_t *s, const float *src, float *dst, size_t n);

/**
 * @brief Design helpers (bilinear transform with frequency pre-warping, RBJ cookbook forms).
 * Each writes one stage's {b0, b1, b2, a1, a2} into `c`. Frequencies must satisfy
 * 0 < f_hz < fs_hz / 2; callers validate this.
 */
void ecg_biquad_design_highpass(float *c, float fs_hz, float f_hz, float q);
void ecg_biquad_design_lowpass(float *c, float fs_hz, float f_hz, float q);
void ecg_biquad_design_notch(float *c, float fs_hz, float f_hz, float q);

/** @brief 1 when the stage's poles, as stored in float32, are inside the unit circle. */
int ecg_biquad_is_stable(const float *c);

/**
 * @brief Group delay of one designed stage at frequency f_hz, in samples.
 * Computed from the coefficients, so it is exact for the stage as implemented.
 */
float ecg_biquad_group_delay_samples(const float *c, float fs_hz, float f_hz);

#ifdef __cplusplus
}
#endif

#endif /* ECG_BIQUAD_H */

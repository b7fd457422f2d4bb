#include "ecg/ecg_filter.h"

/* Butterworth section quality factors: order 2 -> 1/sqrt(2); order 4 -> 0.5412, 1.3066. */
#define Q_BUTTER2 0.70710678f
#define Q_BUTTER4_A 0.54119610f
#define Q_BUTTER4_B 1.30656296f
#define LOWPASS_MAX_FRACTION_OF_FS 0.4f

void ecg_filter_default_cfg(ecg_filter_cfg_t *cfg, float fs_hz)
{
    if (cfg == NULL) {
        return;
    }
    cfg->fs_hz = fs_hz;
    cfg->mains_hz = 50u;
    cfg->highpass_hz = 0.5f;
    cfg->lowpass_hz = 40.0f;
    cfg->notch_q = 10.0f;
}

ecg_err_t ecg_filter_init(ecg_filter_t *f, const ecg_filter_cfg_t *cfg)
{
    uint8_t n = 0;
    uint8_t k;
    float lowpass_hz;
    if (f == NULL || cfg == NULL) {
        return ECG_ERR_NULL;
    }
    /* Written as !(a <= x && x <= b) so that NaN is rejected too. */
    if (!(cfg->fs_hz >= ECG_FILTER_MIN_FS_HZ && cfg->fs_hz <= ECG_FILTER_MAX_FS_HZ)) {
        return ECG_ERR_RANGE;
    }
    if (cfg->mains_hz != 0u && cfg->mains_hz != 50u && cfg->mains_hz != 60u) {
        return ECG_ERR_RANGE;
    }
    if (!(cfg->highpass_hz >= ECG_FILTER_MIN_HIGHPASS_HZ &&
          cfg->highpass_hz >= ECG_FILTER_MIN_HIGHPASS_FRACTION_OF_FS * cfg->fs_hz &&
          cfg->highpass_hz <= 5.0f)) {
        return ECG_ERR_RANGE;
    }
    if (!(cfg->lowpass_hz >= 15.0f && cfg->lowpass_hz <= 150.0f)) {
        return ECG_ERR_RANGE;
    }
    if (!(cfg->notch_q >= 1.0f && cfg->notch_q <= 100.0f)) {
        return ECG_ERR_RANGE;
    }
    lowpass_hz = cfg->lowpass_hz;
    if (lowpass_hz > LOWPASS_MAX_FRACTION_OF_FS * cfg->fs_hz) {
        lowpass_hz = LOWPASS_MAX_FRACTION_OF_FS * cfg->fs_hz;
    }

    ecg_biquad_design_highpass(&f->coeffs[5u * n++], cfg->fs_hz, cfg->highpass_hz, Q_BUTTER2);
    if (cfg->mains_hz != 0u && (float)cfg->mains_hz < 0.5f * cfg->fs_hz) {
        ecg_biquad_design_notch(&f->coeffs[5u * n++], cfg->fs_hz, (float)cfg->mains_hz,
                                cfg->notch_q);
    }
    ecg_biquad_design_lowpass(&f->coeffs[5u * n++], cfg->fs_hz, lowpass_hz, Q_BUTTER4_A);
    ecg_biquad_design_lowpass(&f->coeffs[5u * n++], cfg->fs_hz, lowpass_hz, Q_BUTTER4_B);

    f->delay_samples = 0.0f;
    for (k = 0; k < n; k++) {
        if (!ecg_biquad_is_stable(&f->coeffs[5u * k])) {
            return ECG_ERR_RANGE; /* not representable in float32 at this rate */
        }
        f->delay_samples +=
            ecg_biquad_group_delay_samples(&f->coeffs[5u * k], cfg->fs_hz, ECG_FILTER_DELAY_REF_HZ);
    }
    return ecg_biquad_init(&f->cascade, n, f->coeffs, f->state);
}

void ecg_filter_reset(ecg_filter_t *f)
{
    ecg_biquad_reset(&f->cascade);
}

float ecg_filter_step(ecg_filter_t *f, float x)
{
    return ecg_biquad_step(&f->cascade, x);
}

void ecg_filter_process(ecg_filter_t *f, const float *src, float *dst, size_t n)
{
    ecg_biquad_process(&f->cascade, src, dst, n);
}

float ecg_filter_delay_samples(const ecg_filter_t *f)
{
    return f->delay_samples;
}

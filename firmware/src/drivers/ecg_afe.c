/*
 * Front-end logic shared by the board ports (see ecg_afe.h).
 */
#include "ecg_afe.h"

ecg_afe_kind_t ecg_afe_detect(ecg_afe_t *afe, uint16_t rate_hz, uint32_t timer_clock_hz,
                              uint32_t timer_max_ppm, ecg_max30003_xfer_fn xfer, void *spi_ctx)
{
    afe->rate_hz = rate_hz;
    afe->timer_clock_hz = timer_clock_hz;
    afe->timer_max_ppm = timer_max_ppm;
    afe->lead_off = 0u;
    ecg_ad8232_default_cfg(&afe->ad);
    ecg_max30003_default_cfg(&afe->max_cfg);
    afe->max_cfg.rate_hz = rate_hz;
    afe->kind = ECG_AFE_AD8232;
    if (ecg_max30003_bind(&afe->max, xfer, spi_ctx) == ECG_OK &&
        ecg_max30003_probe(&afe->max) == ECG_OK) {
        afe->kind = ECG_AFE_MAX30003;
        (void)ecg_max30003_stop(&afe->max);
    }
    return afe->kind;
}

float ecg_afe_uv_per_count(const ecg_afe_t *afe)
{
    return afe->kind == ECG_AFE_MAX30003 ? ecg_max30003_uv_per_count(afe->max_cfg.gain_vv)
                                         : afe->ad.uv_per_count;
}

uint16_t ecg_afe_rates_mask(const ecg_afe_t *afe)
{
    return afe->kind == ECG_AFE_MAX30003
               ? (uint16_t)ECG_MAX30003_RATES_MASK
               : ecg_ad8232_rates_mask(afe->timer_clock_hz, afe->timer_max_ppm);
}

ecg_err_t ecg_afe_set_rate(ecg_afe_t *afe, uint16_t rate_hz)
{
    int ok;
    if (afe->kind == ECG_AFE_MAX30003) {
        ecg_max30003_regs_t regs;
        ecg_max30003_cfg_t cfg = afe->max_cfg;
        cfg.rate_hz = rate_hz;
        ok = ecg_max30003_regs(&cfg, &regs) == ECG_OK;
    } else {
        ok = ecg_ad8232_timer_ticks(afe->timer_clock_hz, rate_hz, afe->timer_max_ppm) != 0u;
    }
    if (!ok) {
        return ECG_ERR_UNSUPPORTED;
    }
    afe->rate_hz = rate_hz;
    afe->max_cfg.rate_hz = rate_hz;
    return ECG_OK;
}

ecg_err_t ecg_afe_hal_set_rate(void *afe, uint16_t rate_hz)
{
    return ecg_afe_set_rate((ecg_afe_t *)afe, rate_hz);
}

uint32_t ecg_afe_timer_ticks(const ecg_afe_t *afe)
{
    return afe->kind == ECG_AFE_AD8232
               ? ecg_ad8232_timer_ticks(afe->timer_clock_hz, afe->rate_hz, afe->timer_max_ppm)
               : 0u;
}

ecg_err_t ecg_afe_start_max30003(ecg_afe_t *afe)
{
    return ecg_max30003_init(&afe->max, &afe->max_cfg);
}

ecg_err_t ecg_afe_stop(ecg_afe_t *afe)
{
    return afe->kind == ECG_AFE_MAX30003 ? ecg_max30003_stop(&afe->max) : ECG_OK;
}

void ecg_afe_push_ad8232(ecg_afe_t *afe, ecg_device_t *dev, float pin_mv, int lo_plus,
                         int lo_minus)
{
    const int16_t count = ecg_ad8232_counts(&afe->ad, pin_mv);
    afe->lead_off = ecg_ad8232_lead_off(lo_plus, lo_minus);
    (void)ecg_device_push_samples(dev, &count, 1u); /* an overrun is counted by the device */
}

size_t ecg_afe_push_max30003(ecg_afe_t *afe, ecg_device_t *dev)
{
    int16_t counts[ECG_MAX30003_FIFO_WORDS];
    ecg_max30003_fifo_t res;
    if (ecg_max30003_read_fifo(&afe->max, counts, ECG_MAX30003_FIFO_WORDS, &res) != ECG_OK) {
        return 0u;
    }
    afe->lead_off = res.lead_off;
    if (res.n != 0u) {
        (void)ecg_device_push_samples(dev, counts, res.n);
    }
    return res.n;
}

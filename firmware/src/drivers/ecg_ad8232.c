/*
 * AD8232 scaling, lead-off and sampling-timer period (see ecg_ad8232.h).
 */
#include "ecg_ad8232.h"

#include "ecg/ecg_protocol.h"

void ecg_ad8232_default_cfg(ecg_ad8232_cfg_t *cfg)
{
    cfg->gain_vv = 1100.0f;
    cfg->divider = 1.0f;
    cfg->ref_mv = 1650.0f;
    cfg->uv_per_count = 0.1f;
}

ecg_err_t ecg_ad8232_check(const ecg_ad8232_cfg_t *cfg)
{
    if (cfg == NULL) {
        return ECG_ERR_NULL;
    }
    /* written so that NaN fails every test */
    if (!(cfg->gain_vv > 0.0f) || !(cfg->divider > 0.0f && cfg->divider <= 1.0f) ||
        !(cfg->ref_mv >= 0.0f) || !(cfg->uv_per_count > 0.0f)) {
        return ECG_ERR_RANGE;
    }
    return ECG_OK;
}

float ecg_ad8232_code_mv(uint32_t code, unsigned bits, float vref_mv)
{
    return (float)code * vref_mv / (float)(1ul << bits);
}

int16_t ecg_ad8232_counts(const ecg_ad8232_cfg_t *cfg, float pin_mv)
{
    /* µV at the electrodes, then counts */
    const float x = (pin_mv / cfg->divider - cfg->ref_mv) * 1000.0f / cfg->gain_vv /
                    cfg->uv_per_count;
    if (!(x < 32767.0f)) {
        return x >= 32767.0f ? 32767 : 0; /* NaN (no reading) reads as 0 */
    }
    if (x <= -32768.0f) {
        return -32768;
    }
    return (int16_t)(x >= 0.0f ? (int32_t)(x + 0.5f) : -(int32_t)(-x + 0.5f));
}

uint8_t ecg_ad8232_lead_off(int lo_plus, int lo_minus)
{
    return (lo_plus != 0 || lo_minus != 0) ? 1u : 0u;
}

uint32_t ecg_ad8232_timer_ticks(uint32_t clock_hz, uint16_t rate_hz, uint32_t max_ppm)
{
    uint32_t ticks;
    uint64_t paced_x1e6, want_x1e6, err;
    if (rate_hz == 0u) {
        return 0u;
    }
    ticks = (uint32_t)(((uint64_t)clock_hz + rate_hz / 2u) / rate_hz);
    if (ticks == 0u) {
        return 0u;
    }
    /* |clock/ticks - rate| / rate <= max_ppm / 1e6, in integers:
     * |clock * 1e6 - rate * ticks * 1e6| <= max_ppm * rate * ticks */
    paced_x1e6 = (uint64_t)clock_hz * 1000000u;
    want_x1e6 = (uint64_t)rate_hz * ticks * 1000000u;
    err = paced_x1e6 > want_x1e6 ? paced_x1e6 - want_x1e6 : want_x1e6 - paced_x1e6;
    return err <= (uint64_t)max_ppm * rate_hz * ticks ? ticks : 0u;
}

uint16_t ecg_ad8232_rates_mask(uint32_t clock_hz, uint32_t max_ppm)
{
    uint16_t mask = 0u;
    unsigned bit;
    for (bit = 0; bit < ECG_PROTO_N_RATES; bit++) {
        if (ecg_ad8232_timer_ticks(clock_hz, ecg_proto_rate_hz(bit), max_ppm) != 0u) {
            mask = (uint16_t)(mask | (1u << bit));
        }
    }
    return mask;
}

/**
 * @file ecg_ad8232.h
 * @brief Analog Devices AD8232 single-lead front end on an MCU ADC pin: scaling to device counts,
 *        lead-off, and the sampling timer's period. Port-independent, C99, no heap, no globals.
 *
 * The AD8232 is analog only: the port samples its OUTPUT pin with the MCU's ADC from a hardware
 * timer and reads the LO+ / LO- comparator outputs (high = that electrode is off, DC lead-off
 * mode, AD8232 datasheet "Leads-Off Detection"). SDN (low = shutdown) is driven low between
 * streams. This module holds what is not hardware:
 *
 *     V_pin    = V_out * divider                (a resistor divider when the ADC range is smaller
 *                                                than the AD8232's 0..Vs output, e.g. Apollo3: 2 V)
 *     V_out    = V_ref + gain * V_ecg           (V_ref = REFOUT = Vs/2 with the usual circuit)
 *     counts   = round(V_ecg / uv_per_count)    (saturated to int16)
 *
 * `gain` is the whole analog gain from the electrodes to OUTPUT: 100 V/V in the AD8232's
 * instrumentation amplifier (fixed by the chip) times the gain the board's op-amp stage sets.
 * The datasheet's heart-rate-monitor circuit, which breakout boards such as SparkFun SEN-12650
 * follow, has 1100 V/V in total; check your board's schematic. `uv_per_count` is the device's
 * `gain_uv_per_count` (DEVICE_INFO): the default 0.1 µV keeps the AD8232's whole output swing
 * (±1.5 mV at the electrodes with 1100 V/V and Vs = 3.3 V) within int16 with room to spare and
 * below the ADC's own step (ESP32-S3: ~0.7 µV, Apollo3 with a 0.6 divider: ~0.19 µV).
 *
 * Sampling period: the ports run a hardware timer with an integer number of ticks of its clock
 * per sample; ::ecg_ad8232_timer_ticks rounds and refuses a rate whose error would exceed a bound,
 * and ::ecg_ad8232_rates_mask lists the protocol's table rates (§6.2) a timer clock can pace.
 */
#ifndef ECG_AD8232_H
#define ECG_AD8232_H

#include <stdint.h>

#include "ecg/ecg_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Scaling of one AD8232 channel. Start from ::ecg_ad8232_default_cfg. */
typedef struct {
    float gain_vv;      /**< electrodes -> OUTPUT, V/V (> 0), 1100 for the datasheet circuit */
    float divider;      /**< V at the ADC pin / V at OUTPUT, in (0, 1]; 1 without a divider */
    float ref_mv;       /**< OUTPUT at zero input, mV (REFOUT: 1650 at Vs = 3.3 V) */
    float uv_per_count; /**< µV at the electrodes per device count (> 0) */
} ecg_ad8232_cfg_t;

/** @brief Defaults: 1100 V/V, no divider, 1650 mV reference, 0.1 µV per count. */
void ecg_ad8232_default_cfg(ecg_ad8232_cfg_t *cfg);

/** @return ECG_OK, ECG_ERR_NULL or ECG_ERR_RANGE (a value outside its documented range) */
ecg_err_t ecg_ad8232_check(const ecg_ad8232_cfg_t *cfg);

/**
 * @brief Millivolts at the ADC pin from a raw code: `code * vref_mv / 2^bits` (for ADCs whose
 *        driver gives codes; ESP32-S3's analogReadMilliVolts already gives calibrated mV).
 */
float ecg_ad8232_code_mv(uint32_t code, unsigned bits, float vref_mv);

/**
 * @brief Device counts from the voltage at the ADC pin (formula in the file comment), rounded half
 *        away from zero and saturated to -32768..32767.
 */
int16_t ecg_ad8232_counts(const ecg_ad8232_cfg_t *cfg, float pin_mv);

/** @brief Lead-off mask (bit 0 = lead 0 off) from the LO+ and LO- pin levels (non-zero = high). */
uint8_t ecg_ad8232_lead_off(int lo_plus, int lo_minus);

/**
 * @brief Timer ticks per sample: `clock_hz / rate_hz` rounded to nearest.
 * @return the ticks, or 0 when `rate_hz` is 0, the ticks would be 0, or the rate actually paced,
 *         `clock_hz / ticks`, is off by more than `max_ppm` parts per million
 */
uint32_t ecg_ad8232_timer_ticks(uint32_t clock_hz, uint16_t rate_hz, uint32_t max_ppm);

/** @brief rates_mask bits (§6.2) of the table rates ::ecg_ad8232_timer_ticks accepts. */
uint16_t ecg_ad8232_rates_mask(uint32_t clock_hz, uint32_t max_ppm);

#ifdef __cplusplus
}
#endif

#endif /* ECG_AD8232_H */

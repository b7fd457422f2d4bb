/**
 * @file ecg_afe.h
 * @brief The ports' front-end logic, port-independent: which front end is fitted (MAX30003 on SPI
 *        or AD8232 on an ADC pin), its device gain and rates, the sampling timer's period, and
 *        the hand-over of samples and lead-off to the device. C99, no heap, no globals; tested on
 *        the host (tests/c/test_drivers.c) with a simulated SPI bus and a real ::ecg_device_t.
 *
 * A port owns the pins, the timer / INTB interrupt and the sampling task; per wake-up it calls
 * ::ecg_afe_push_ad8232 (one ADC reading) or ::ecg_afe_push_max30003 (one FIFO burst) from that
 * task. Both push with ::ecg_device_push_samples (ISR- and task-safe) and store the lead-off mask,
 * which the device's task context hands to ::ecg_device_set_lead_off (see ecg_port_poll).
 */
#ifndef ECG_AFE_H
#define ECG_AFE_H

#include <stddef.h>
#include <stdint.h>

#include "ecg/ecg_device.h"
#include "ecg_ad8232.h"
#include "ecg_max30003.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Front ends. */
typedef enum { ECG_AFE_AD8232 = 1, ECG_AFE_MAX30003 = 2 } ecg_afe_kind_t;

/** Front-end state. Caller-owned. */
typedef struct {
    ecg_afe_kind_t kind;
    uint16_t rate_hz;          /**< configured rate */
    uint32_t timer_clock_hz;   /**< AD8232 sampling timer's clock */
    uint32_t timer_max_ppm;    /**< largest rate error accepted for it */
    ecg_ad8232_cfg_t ad;       /**< AD8232 scaling (ports adjust the divider) */
    ecg_max30003_t max;        /**< MAX30003 driver (bound to the port's SPI) */
    ecg_max30003_cfg_t max_cfg;
    volatile uint8_t lead_off; /**< latest lead-off mask */
} ecg_afe_t;

/**
 * @brief Defaults for both front ends (ecg_ad8232_default_cfg, ecg_max30003_default_cfg), bind the
 *        MAX30003 to the port's SPI and detect it (::ecg_max30003_probe): MAX30003 when it answers,
 *        else AD8232. A MAX30003 found is left stopped (EN_ECG off).
 * @return the front end found
 */
ecg_afe_kind_t ecg_afe_detect(ecg_afe_t *afe, uint16_t rate_hz, uint32_t timer_clock_hz,
                              uint32_t timer_max_ppm, ecg_max30003_xfer_fn xfer, void *spi_ctx);

/** @brief µV per device count of the front end found. */
float ecg_afe_uv_per_count(const ecg_afe_t *afe);

/** @brief Table rates (§6.2 rates_mask) the front end can do. */
uint16_t ecg_afe_rates_mask(const ecg_afe_t *afe);

/** @brief Set the rate (sampling stopped). @return ECG_OK or ECG_ERR_UNSUPPORTED (rate kept) */
ecg_err_t ecg_afe_set_rate(ecg_afe_t *afe, uint16_t rate_hz);

/**
 * @brief ::ecg_afe_set_rate as the ecg_hal_t `sampling_set_rate` entry of a port whose HAL `ctx`
 *        is its ::ecg_afe_t (both board ports).
 * @param[in,out] afe      the port's ::ecg_afe_t
 * @param[in]     rate_hz  requested rate
 * @return ECG_OK or ECG_ERR_UNSUPPORTED (rate kept)
 */
ecg_err_t ecg_afe_hal_set_rate(void *afe, uint16_t rate_hz);

/** @brief AD8232: timer ticks per sample at the current rate (0 for the MAX30003). */
uint32_t ecg_afe_timer_ticks(const ecg_afe_t *afe);

/** @brief MAX30003: configure and start sampling at the current rate. @return a driver error */
ecg_err_t ecg_afe_start_max30003(ecg_afe_t *afe);

/** @brief Stop the front end's chip: MAX30003 EN_ECG off (nothing for the AD8232, whose SDN pin
 *  the port drives). @return a driver error */
ecg_err_t ecg_afe_stop(ecg_afe_t *afe);

/** @brief AD8232: one reading (mV at the ADC pin, LO+ and LO- levels) to the device. */
void ecg_afe_push_ad8232(ecg_afe_t *afe, ecg_device_t *dev, float pin_mv, int lo_plus,
                         int lo_minus);

/**
 * @brief MAX30003: one FIFO burst to the device.
 * @return samples read (the port reads again while this is non-zero and INTB stays low)
 */
size_t ecg_afe_push_max30003(ecg_afe_t *afe, ecg_device_t *dev);

/* ---------------------------------------------------------------------------------------------
 * Implemented by each board port (afe_<port>.cpp: pins, timer, interrupts, sampling task), not
 * by the drivers: the one front-end contract of the ports.
 * ------------------------------------------------------------------------------------------- */

/**
 * @brief Set up the pins, detect the front end (::ecg_afe_detect: a MAX30003 answering on SPI,
 *        else the AD8232) and start the sampling task.
 * @param[in] dev  receives the samples once sampling starts
 * @return the port's front-end state: the HAL's `ctx` (::ecg_afe_hal_set_rate)
 */
ecg_afe_t *afe_init(ecg_device_t *dev);

/** @brief The HAL's `sampling_start`: timer or INTB on, chip out of shutdown (`ctx` unused). */
ecg_err_t afe_start(void *ctx);

/** @brief The HAL's `sampling_stop`: timer or INTB off, chip in its low-power state (`ctx`
 *  unused). */
void afe_stop(void *ctx);

#ifdef __cplusplus
}
#endif

#endif /* ECG_AFE_H */

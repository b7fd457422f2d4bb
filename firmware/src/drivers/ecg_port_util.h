/**
 * @file ecg_port_util.h
 * @brief Small port-independent helpers the board ports share: a 64-bit microsecond clock from a
 *        wrapping 32-bit counter, and a LiPo battery percentage. C99, no heap, no globals.
 */
#ifndef ECG_PORT_UTIL_H
#define ECG_PORT_UTIL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Extension state of a 32-bit counter. Caller-owned; zero-initialise. */
typedef struct {
    uint32_t last; /**< counter value seen last */
    uint32_t high; /**< wraps seen */
} ecg_time_ext_t;

/**
 * @brief 64-bit count from a free-running 32-bit counter (e.g. Arduino `micros()`, which wraps
 *        every 71.6 minutes). Must be called at least once per wrap period, from one context.
 */
uint64_t ecg_time_extend(ecg_time_ext_t *t, uint32_t now);

/**
 * @brief Single-cell LiPo percentage from its voltage, linear between `empty_mv` (0 %) and
 *        `full_mv` (100 %), clamped. A rough gauge: the curve is not linear near either end.
 * @return 0..100
 */
uint8_t ecg_battery_pct(uint32_t mv, uint32_t empty_mv, uint32_t full_mv);

#ifdef __cplusplus
}
#endif

#endif /* ECG_PORT_UTIL_H */

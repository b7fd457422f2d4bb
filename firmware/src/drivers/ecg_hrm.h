/**
 * @file ecg_hrm.h
 * @brief Bluetooth Heart Rate Measurement (0x2A37) values from the device's BEAT_EVENT frames, for
 *        the ports' BLE Heart Rate Service (GATT profile: ecg/ecg_ble.h, docs/protocol.md §13).
 *
 * A port passes every device -> host byte it sends, on any link, through an ::ecg_hrm_tap_t (a
 * second frame decoder on the outgoing stream); each BEAT_EVENT with an RR interval yields one
 * measurement, encoded as the profile says (and as `ecgedge.ble.gatt.hrm_from_rr` does on the host,
 * integer arithmetic, halves rounded up):
 *
 *     flags 0x10 (uint8 bpm, one RR interval) or 0x11 (uint16 bpm when bpm > 255)
 *     bpm   = round(60 * fs / rr_samples)
 *     rr    = min(round(rr_samples * 1024 / fs), 0xFFFF)     in 1/1024 s, little-endian
 *
 * No heap, no globals, C99. The tap is used from the one context that drains the device's queue.
 */
#ifndef ECG_HRM_H
#define ECG_HRM_H

#include <stddef.h>
#include <stdint.h>

#include "ecg/ecg_protocol.h"
#include "ecg/ecg_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ECG_HRM_MAX_LEN 5u /**< flags + uint16 bpm + one RR interval */

/** Called with each measurement value (`len` 4 or 5 bytes, valid during the call). */
typedef void (*ecg_hrm_cb_t)(void *ctx, const uint8_t *value, size_t len);

/** Tap state. Caller-owned. */
typedef struct {
    ecg_frame_decoder_t dec;
    uint16_t fs_hz;     /**< sampling rate the beats' RR intervals count in */
    ecg_hrm_cb_t cb;
    void *ctx;
    uint32_t measurements; /**< values delivered */
} ecg_hrm_tap_t;

/**
 * @brief The measurement for one RR interval of `rr_samples` at `fs_hz`.
 * @return bytes written to `out` (4 or 5); 0 when `rr_samples` or `fs_hz` is 0 (the first beat
 *         has no interval)
 */
size_t ecg_hrm_encode(uint16_t rr_samples, uint16_t fs_hz, uint8_t out[ECG_HRM_MAX_LEN]);

/** @brief Start a tap calling `cb(ctx, ...)` per measurement. @return ECG_OK or ECG_ERR_NULL */
ecg_err_t ecg_hrm_tap_init(ecg_hrm_tap_t *tap, uint16_t fs_hz, ecg_hrm_cb_t cb, void *ctx);

/** @brief The device's sampling rate changed (e.g. after CONFIGURE). */
void ecg_hrm_tap_set_rate(ecg_hrm_tap_t *tap, uint16_t fs_hz);

/** @brief Device -> host wire bytes as sent (any split); a partial frame waits for the rest. */
void ecg_hrm_tap_feed(ecg_hrm_tap_t *tap, const uint8_t *data, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* ECG_HRM_H */

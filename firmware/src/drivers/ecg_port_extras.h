/**
 * @file ecg_port_extras.h
 * @brief What a board port attaches to its device besides the HAL: the backfill ring (§12) and
 *        the personalization packages (§11: update slots, per-device key, µ-trainer). C99, no heap,
 *        no globals; tested on the host (tests/c/test_drivers.c).
 *
 * The backfill ring holds ::ECG_PORT_BACKFILL_S seconds of 1-lead sample blocks at up to
 * ::ECG_PORT_BACKFILL_MAX_HZ (about 122 KB): at every rate either front end runs, up to 1000 Hz,
 * at least 60 s are kept, as the BLE reconnect needs.
 *
 * Packages need a per-device HMAC key (ecg_update.h). ::ecg_port_begin takes it at build time
 * from `-DPORT_DEVICE_KEY='{0x..,0x..,...}'` (platformio.ini build_flags; keep such a line out of
 * version control); without it the device takes no packages, as the QEMU port without
 * `--device-key`.
 *
 * ::ecg_port_t bundles everything a board port's main file keeps besides its pins: the device, the
 * HAL the port fills, the Heart Rate tap, the link state and these attachments.
 */
#ifndef ECG_PORT_EXTRAS_H
#define ECG_PORT_EXTRAS_H

#include <stddef.h>
#include <stdint.h>

#include "ecg/ecg_backfill.h"
#include "ecg/ecg_device.h"
#include "ecg/ecg_trainer.h"
#include "ecg/ecg_update.h"
#include "ecg_hrm.h"
#include "ecg_port_link.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ECG_PORT_BACKFILL_S 60u       /**< seconds the backfill ring covers ... */
#define ECG_PORT_BACKFILL_MAX_HZ 1000u/**< ... up to this rate (1 lead, full blocks) */

/** The attached state. Caller-owned (static: about 140 KB); must outlive the device. */
typedef struct {
    ecg_backfill_t backfill;
    uint8_t backfill_buf[ECG_BACKFILL_BYTES(ECG_PORT_BACKFILL_S, ECG_PORT_BACKFILL_MAX_HZ, 1u,
                                            ECG_PROTO_MAX_SAMPLES(1))];
    ecg_trainer_t trainer;
    ecg_update_t update;
} ecg_port_extras_t;

/**
 * @brief Attach the backfill ring, and the update packages (storage from `hal`, the key, the
 *        device's classifier, the µ-trainer; the active head is restored from storage).
 * @param key      per-device key, `key_len` bytes (0: no packages)
 * @return ECG_OK, or the first error of the backfill / trainer / update init (what came before
 *         it stays attached)
 */
ecg_err_t ecg_port_attach_extras(ecg_port_extras_t *x, ecg_device_t *dev, const ecg_hal_t *hal,
                                 const uint8_t *key, size_t key_len);

/** A board port's state besides its pins (static: about 165 KB with the defaults). */
typedef struct {
    ecg_device_t dev;
    ecg_hal_t hal;            /**< filled by the port before ::ecg_port_begin */
    ecg_hrm_tap_t tap;
    ecg_port_links_t links;
    ecg_port_extras_t extras;
} ecg_port_t;

/**
 * @brief Start the device (::ecg_port_device_init with `port->hal`), then attach the backfill ring
 *        and the update packages with the build-time key (PORT_DEVICE_KEY, if defined). The link
 *        starts as the byte stream (ecg_device_init considers the link up).
 * @return ECG_OK, or the error of ::ecg_port_device_init (the extras' errors only leave them off)
 */
ecg_err_t ecg_port_begin(ecg_port_t *port, const ecg_port_desc_t *desc, ecg_hrm_cb_t hrm_cb,
                         void *hrm_ctx);

#ifdef __cplusplus
}
#endif

#endif /* ECG_PORT_EXTRAS_H */

/*
 * ESP32-S3 port: the interfaces between its files (main.cpp wires them together).
 *
 *   afe_esp32s3.cpp   front end: AD8232 (hardware timer) or MAX30003 (SPI, INTB), detected at boot
 *   hal_esp32s3.cpp   ecg_hal_t: clock, critical sections, sampling, storage slots (partitions)
 *   ble_esp32s3.cpp   NimBLE GATT server: ECG service, Heart Rate, Device Information, Battery
 *   main.cpp          setup()/loop(): USB-CDC, link policy, watchdog, idle
 */
#ifndef ECG_PORT_ESP32S3_PORT_H
#define ECG_PORT_ESP32S3_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "ecg/ecg_device.h"
#include "ecg/ecg_hal.h"
#include "ecg_afe.h"
#include "ecg_port_link.h"
#include "port_config.h"

/* --- front end (afe_esp32s3.cpp): afe_init, afe_start, afe_stop, declared in ecg_afe.h ------ */

/* --- HAL (hal_esp32s3.cpp) ------------------------------------------------------------------ */
void hal_esp32s3_init(ecg_hal_t *hal, ecg_afe_t *afe);

/* --- BLE (ble_esp32s3.cpp) ------------------------------------------------------------------ */
void ble_init(const ecg_proto_device_info_t *info);
/** Subscription states of the connected central (0 and 0 without one). */
void ble_state(int *data_on, int *hrm_on);
size_t ble_rx(uint8_t *buf, size_t cap);           /**< control-characteristic bytes */
size_t ble_send(ecg_device_t *dev, ecg_hrm_tap_t *tap, unsigned max_notifications);
void ble_hrm(const uint8_t *value, size_t len);    /**< Heart Rate Measurement notify */
void ble_battery(uint8_t pct);

#endif /* ECG_PORT_ESP32S3_PORT_H */

/*
 * Apollo3 port: the interfaces between its files (main.cpp wires them together).
 *
 *   afe_apollo3.cpp   front end: AD8232 (mbed Ticker) or MAX30003 (SPI, INTB), detected at boot
 *   hal_apollo3.cpp   ecg_hal_t: clock, critical sections, sampling, storage slots (flash pages)
 *   ble_apollo3.cpp   ArduinoBLE GATT server: ECG service, Heart Rate, Device Information, Battery
 *   main.cpp          setup()/loop(): UART over the USB bridge, link policy, watchdog, idle
 */
#ifndef ECG_PORT_APOLLO3_PORT_H
#define ECG_PORT_APOLLO3_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "ecg/ecg_device.h"
#include "ecg/ecg_hal.h"
#include "ecg_afe.h"
#include "ecg_port_link.h"
#include "port_config.h"

/* front end (afe_apollo3.cpp): afe_init, afe_start, afe_stop, declared in ecg_afe.h */

void hal_apollo3_init(ecg_hal_t *hal, ecg_afe_t *afe);

void ble_init(ecg_device_t *dev, const ecg_proto_device_info_t *info);
void ble_state(int *data_on, int *hrm_on); /**< services the stack (BLE.poll) first */
size_t ble_send(ecg_device_t *dev, ecg_hrm_tap_t *tap, unsigned max_notifications);
void ble_hrm(const uint8_t *value, size_t len);

#endif /* ECG_PORT_APOLLO3_PORT_H */

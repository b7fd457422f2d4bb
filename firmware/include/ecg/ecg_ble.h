/**
 * @file ecg_ble.h
 * @brief The BLE GATT profile of an ecgedge device (docs/protocol.md §13): UUIDs and sizes for the
 *        ports' BLE stacks (NimBLE on ESP32-S3, the Apollo3 core's ArduinoBLE).
 *
 * Constants only; the ports build their GATT tables from them. `ecgedge.ble.gatt` holds the same
 * values for the host and tests/test_ble_gatt.py checks the two agree.
 *
 * **ECG service** (128-bit UUIDs, advertised with the device name):
 *  - data characteristic (notify): every device -> host frame of the wire protocol, COBS-encoded
 *    with its 0x00 delimiter. At ATT MTU >= 247 (::ECG_BLE_MTU) one notification carries exactly
 *    one frame (`ecg_device_tx_frame`). At a smaller MTU the port sends the byte stream in pieces
 *    of MTU - 3 bytes (`ecg_device_tx(dev, buf, mtu - 3)`); the host concatenates notifications
 *    and splits on 0x00, so a lost piece costs one frame (a CRC or COBS error, §2), never the
 *    stream. RESPONSE frames come the same way (notification, not indication: one ordered stream,
 *    no round trip per answer; the protocol's seq, timeout and retry cover loss).
 *  - control characteristic (write with response): host -> device frames, one or more whole frames
 *    or consecutive pieces of one (the device's frame decoder reassembles on 0x00).
 *
 * **Heart Rate Service** 0x180D: Heart Rate Measurement 0x2A37 (notify), one per detected beat
 * that has an RR interval: flags 0x10 (uint8 rate, RR present) or 0x11 (uint16 rate), the rate
 * `round(60 * fs / rr_samples)` bpm and one RR interval `round(rr_samples * 1024 / fs)` in
 * 1/1024 s; Body Sensor Location 0x2A38 = 1 (chest).
 * **Device Information** 0x180A: manufacturer, model number, firmware and software (core)
 * revision strings. **Battery** 0x180F: Battery Level 0x2A19 (read, notify), the STATUS battery.
 */
#ifndef ECG_BLE_H
#define ECG_BLE_H

/** ECG service, 128-bit UUID (string form, as the BLE stacks take it). */
#define ECG_BLE_SERVICE_UUID "e36a0001-5f8c-4d3b-9a61-0ecd9e7c0b1e"
/** Data characteristic (device -> host frames, notify). */
#define ECG_BLE_DATA_UUID "e36a0002-5f8c-4d3b-9a61-0ecd9e7c0b1e"
/** Control characteristic (host -> device frames, write with response). */
#define ECG_BLE_CONTROL_UUID "e36a0003-5f8c-4d3b-9a61-0ecd9e7c0b1e"

#define ECG_BLE_HRS_UUID16 0x180Du       /**< Heart Rate Service */
#define ECG_BLE_HRM_UUID16 0x2A37u       /**< Heart Rate Measurement */
#define ECG_BLE_BSL_UUID16 0x2A38u       /**< Body Sensor Location */
#define ECG_BLE_DIS_UUID16 0x180Au       /**< Device Information */
#define ECG_BLE_BAS_UUID16 0x180Fu       /**< Battery Service */
#define ECG_BLE_BATTERY_LEVEL_UUID16 0x2A19u

/** ATT MTU a port requests: one whole frame (::ECG_PROTO_MAX_WIRE_LEN = 244) per notification. */
#define ECG_BLE_MTU 247u
/** Body Sensor Location value: chest. */
#define ECG_BLE_BODY_SENSOR_CHEST 1u

#endif /* ECG_BLE_H */

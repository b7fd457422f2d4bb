/*
 * Apollo3 port: the BLE GATT server on ArduinoBLE (Cordio host of the mbed-based core), the
 * profile of ecg/ecg_ble.h (docs/protocol.md, GATT section):
 *
 *   ECG service    data (notify): device frames in pieces of MTU - 3 = 20 bytes
 *                  (ecg_port_link_notification at PORT_BLE_MTU: ArduinoBLE does not tell the
 *                  negotiated MTU, so the port assumes the minimum); control (write with
 *                  response): host frames, handed to ecg_device_rx from the write handler, which
 *                  ArduinoBLE runs inside BLE.poll() on the loop thread (the device's context).
 *   0x180D HRS     Heart Rate Measurement (notify) from the beat tap; Body Sensor Location = chest.
 *   0x180A DIS     manufacturer, model number, firmware revision, software (core) revision.
 *   0x180F BAS     Battery Level (read, notify): 100 (the ATP is USB powered, no gauge).
 * Advertising: the ECG service UUID and PORT_DEVICE_NAME; ArduinoBLE advertises again after a
 * disconnect. ble_state reports which notifications the central has enabled; ecg_port_link_update
 * turns that into the link and, for a heart-rate app alone, a started stream (§13).
 *
 * Not verified here: nothing of this file is compiled in CI (no Arduino_Apollo3 core offline);
 * written against the ArduinoBLE 1.3 API pinned in platformio.ini.
 */
#include <Arduino.h>
#include <ArduinoBLE.h>
#include <stdio.h>
#include <string.h>

#include "ecg/ecg_ble.h"
#include "port.h"

#define DIS_MANUFACTURER 0x2A29u
#define DIS_MODEL 0x2A24u
#define DIS_FIRMWARE 0x2A26u
#define DIS_SOFTWARE 0x2A28u
#define STR_LEN 16

/* 16-bit UUIDs as the strings ArduinoBLE takes, made from ecg_ble.h's numbers */
enum { U_HRS, U_HRM, U_BSL, U_DIS, U_BAS, U_BATT, U_MANU, U_MODEL, U_FW, U_SW, N_UUIDS };
static char s_uuid[N_UUIDS][5];
static char s_manu[STR_LEN] = "ecgedge", s_model[STR_LEN], s_fw[STR_LEN], s_sw[STR_LEN];
static ecg_device_t *s_dev;
static BLECharacteristic *s_data, *s_hrm;

static void on_control(BLEDevice central, BLECharacteristic c)
{
    (void)central;
    ecg_device_rx(s_dev, c.value(), (size_t)c.valueLength());
}

static void add_string(BLEService &svc, BLECharacteristic &c, const char *value)
{
    c.writeValue((const uint8_t *)value, (int)strlen(value));
    svc.addCharacteristic(c);
}

void ble_init(ecg_device_t *dev, const ecg_proto_device_info_t *info)
{
    static const uint16_t values[N_UUIDS] = {
        ECG_BLE_HRS_UUID16, ECG_BLE_HRM_UUID16, ECG_BLE_BSL_UUID16, ECG_BLE_DIS_UUID16,
        ECG_BLE_BAS_UUID16, ECG_BLE_BATTERY_LEVEL_UUID16, DIS_MANUFACTURER, DIS_MODEL,
        DIS_FIRMWARE, DIS_SOFTWARE};
    unsigned i;
    s_dev = dev;
    for (i = 0; i < N_UUIDS; i++) {
        snprintf(s_uuid[i], sizeof s_uuid[i], "%04X", values[i]);
    }
    snprintf(s_model, sizeof s_model, "%04X", info->model_id);
    snprintf(s_fw, sizeof s_fw, "%u.%u.%u", info->fw_major, info->fw_minor, info->fw_patch);
    snprintf(s_sw, sizeof s_sw, "%u.%u.%u", info->core_major, info->core_minor, info->core_patch);

    /* constructed here, after the UUID strings exist (ArduinoBLE keeps the pointers) */
    static BLEService ecg(ECG_BLE_SERVICE_UUID);
    static BLECharacteristic data(ECG_BLE_DATA_UUID, BLENotify, PORT_BLE_MTU - 3u);
    static BLECharacteristic control(ECG_BLE_CONTROL_UUID, BLEWrite, ECG_PROTO_MAX_WIRE_LEN);
    static BLEService hrs(s_uuid[U_HRS]);
    static BLECharacteristic hrm(s_uuid[U_HRM], BLENotify, ECG_HRM_MAX_LEN);
    static BLEByteCharacteristic bsl(s_uuid[U_BSL], BLERead);
    static BLEService dis(s_uuid[U_DIS]);
    static BLEService bas(s_uuid[U_BAS]);
    static BLEByteCharacteristic battery(s_uuid[U_BATT], BLERead | BLENotify);
    static BLECharacteristic manu(s_uuid[U_MANU], BLERead, STR_LEN);
    static BLECharacteristic model(s_uuid[U_MODEL], BLERead, STR_LEN);
    static BLECharacteristic fw(s_uuid[U_FW], BLERead, STR_LEN);
    static BLECharacteristic sw(s_uuid[U_SW], BLERead, STR_LEN);

    if (!BLE.begin()) {
        return; /* no radio: the port runs on the UART alone */
    }
    BLE.setLocalName(PORT_DEVICE_NAME);
    BLE.setDeviceName(PORT_DEVICE_NAME);
    BLE.setAdvertisedService(ecg);
    control.setEventHandler(BLEWritten, on_control);
    ecg.addCharacteristic(data);
    ecg.addCharacteristic(control);
    hrs.addCharacteristic(hrm);
    hrs.addCharacteristic(bsl);
    bsl.writeValue((uint8_t)ECG_BLE_BODY_SENSOR_CHEST);
    add_string(dis, manu, s_manu);
    add_string(dis, model, s_model);
    add_string(dis, fw, s_fw);
    add_string(dis, sw, s_sw);
    bas.addCharacteristic(battery);
    battery.writeValue((uint8_t)100u);
    BLE.addService(ecg);
    BLE.addService(hrs);
    BLE.addService(dis);
    BLE.addService(bas);
    s_data = &data;
    s_hrm = &hrm;
    BLE.advertise();
}

void ble_state(int *data_on, int *hrm_on)
{
    *data_on = *hrm_on = 0;
    if (s_data == NULL) {
        return;
    }
    BLE.poll(); /* runs the control write handler */
    if (BLE.connected()) {
        *data_on = s_data->subscribed() ? 1 : 0;
        *hrm_on = s_hrm->subscribed() ? 1 : 0;
    }
}

size_t ble_send(ecg_device_t *dev, ecg_hrm_tap_t *tap, unsigned max_notifications)
{
    uint8_t buf[ECG_PROTO_MAX_WIRE_LEN];
    size_t sent = 0, n;
    while (sent < max_notifications &&
           (n = ecg_port_link_notification(dev, tap, PORT_BLE_MTU, buf, sizeof buf)) != 0u) {
        s_data->writeValue(buf, (int)n); /* a notification to a subscribed central */
        sent++;
    }
    return sent;
}

void ble_hrm(const uint8_t *value, size_t len)
{
    if (s_hrm != NULL && BLE.connected()) {
        s_hrm->writeValue(value, (int)len);
    }
}

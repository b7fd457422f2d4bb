/*
 * ESP32-S3 port: the BLE GATT server on NimBLE-Arduino 1.4, the profile of ecg/ecg_ble.h
 * (docs/protocol.md, GATT section):
 *
 *   ECG service    data (notify): device frames, ecg_port_link_notification (whole frames at
 *                  MTU >= 247, else pieces of MTU - 3); control (write with response): host frames,
 *                  queued in a FreeRTOS stream buffer (the NimBLE host task runs on the other core)
 *                  and fed to ecg_device_rx by the loop task.
 *   0x180D HRS     Heart Rate Measurement (notify) from the beat tap; Body Sensor Location = chest.
 *   0x180A DIS     manufacturer, model number, firmware revision, software (core) revision.
 *   0x180F BAS     Battery Level (read, notify).
 * Advertising: the ECG service UUID and the name PORT_DEVICE_NAME (fits next to the 128-bit UUID).
 * One central at a time; NimBLE restarts advertising after a disconnect. ble_state reports which
 * notifications the central has enabled; ecg_port_link_update turns that into the link and, for
 * a heart-rate app alone, a started stream (§13).
 *
 * Flow control: NimBLE-Arduino 1.4's notify() reports no failure to the caller; when the stack is
 * out of buffers a notification is lost and the host sees a sequence gap (backfill recovers sample
 * blocks, §12). main.cpp limits notifications per loop turn so the stack can drain.
 *
 * Not verified here: nothing of this file is compiled in CI (no Xtensa toolchain); written against
 * the NimBLE-Arduino 1.4 API pinned in platformio.ini.
 */
#include <Arduino.h>
#include <NimBLEDevice.h>
#include <freertos/stream_buffer.h>
#include <stdio.h>

#include "ecg/ecg_ble.h"
#include "port.h"

#define RX_BUFFER_BYTES 1024
#define DEFAULT_MTU 23

static NimBLECharacteristic *s_data, *s_hrm, *s_battery;
static StreamBufferHandle_t s_rx;
static volatile int s_connected, s_data_on, s_hrm_on;
static volatile uint16_t s_mtu = DEFAULT_MTU;

class ServerCallbacks : public NimBLEServerCallbacks {
    void onConnect(NimBLEServer *server) override
    {
        (void)server;
        s_mtu = DEFAULT_MTU;
        s_connected = 1;
    }
    void onDisconnect(NimBLEServer *server) override
    {
        (void)server;
        s_connected = s_data_on = s_hrm_on = 0;
    }
    void onMTUChange(uint16_t mtu, ble_gap_conn_desc *desc) override
    {
        (void)desc;
        s_mtu = mtu;
    }
};

class ControlCallbacks : public NimBLECharacteristicCallbacks {
    void onWrite(NimBLECharacteristic *c) override
    {
        const NimBLEAttValue v = c->getValue();
        /* a full buffer drops bytes: the device counts the broken frame, the host retries */
        (void)xStreamBufferSend(s_rx, v.data(), v.length(), 0);
    }
};

/* Which notifications the central enabled (CCCD writes; subValue bit 0: notify). */
class SubscribeCallbacks : public NimBLECharacteristicCallbacks {
  public:
    explicit SubscribeCallbacks(volatile int *flag) : flag_(flag) {}
    void onSubscribe(NimBLECharacteristic *c, ble_gap_conn_desc *desc, uint16_t sub_value) override
    {
        (void)c;
        (void)desc;
        *flag_ = (sub_value & 1u) != 0u;
    }

  private:
    volatile int *flag_;
};

static ServerCallbacks s_server_cb;
static ControlCallbacks s_control_cb;
static SubscribeCallbacks s_data_cb(&s_data_on), s_hrm_cb(&s_hrm_on);

static void add_string(NimBLEService *svc, uint16_t uuid, const char *value)
{
    svc->createCharacteristic(uuid, NIMBLE_PROPERTY::READ)->setValue(value);
}

void ble_init(const ecg_proto_device_info_t *info)
{
    char fw[16], core[16], model[8];
    NimBLEServer *server;
    NimBLEService *ecg, *hrs, *dis, *bas;
    uint8_t bsl = ECG_BLE_BODY_SENSOR_CHEST;
    uint8_t full = 100u;

    s_rx = xStreamBufferCreate(RX_BUFFER_BYTES, 1);
    NimBLEDevice::init(PORT_DEVICE_NAME);
    NimBLEDevice::setMTU(ECG_BLE_MTU);
    server = NimBLEDevice::createServer();
    server->setCallbacks(&s_server_cb);

    ecg = server->createService(ECG_BLE_SERVICE_UUID);
    s_data = ecg->createCharacteristic(ECG_BLE_DATA_UUID, NIMBLE_PROPERTY::NOTIFY);
    s_data->setCallbacks(&s_data_cb);
    ecg->createCharacteristic(ECG_BLE_CONTROL_UUID, NIMBLE_PROPERTY::WRITE)
        ->setCallbacks(&s_control_cb);
    ecg->start();

    hrs = server->createService(NimBLEUUID((uint16_t)ECG_BLE_HRS_UUID16));
    s_hrm = hrs->createCharacteristic((uint16_t)ECG_BLE_HRM_UUID16, NIMBLE_PROPERTY::NOTIFY);
    s_hrm->setCallbacks(&s_hrm_cb);
    hrs->createCharacteristic((uint16_t)ECG_BLE_BSL_UUID16, NIMBLE_PROPERTY::READ)->setValue(&bsl, 1);
    hrs->start();

    snprintf(fw, sizeof fw, "%u.%u.%u", info->fw_major, info->fw_minor, info->fw_patch);
    snprintf(core, sizeof core, "%u.%u.%u", info->core_major, info->core_minor, info->core_patch);
    snprintf(model, sizeof model, "%04X", info->model_id);
    dis = server->createService(NimBLEUUID((uint16_t)ECG_BLE_DIS_UUID16));
    add_string(dis, 0x2A29, "ecgedge"); /* Manufacturer Name String */
    add_string(dis, 0x2A24, model);     /* Model Number String */
    add_string(dis, 0x2A26, fw);        /* Firmware Revision String */
    add_string(dis, 0x2A28, core);      /* Software Revision String: the portable core */
    dis->start();

    bas = server->createService(NimBLEUUID((uint16_t)ECG_BLE_BAS_UUID16));
    s_battery = bas->createCharacteristic((uint16_t)ECG_BLE_BATTERY_LEVEL_UUID16,
                                          NIMBLE_PROPERTY::READ | NIMBLE_PROPERTY::NOTIFY);
    s_battery->setValue(&full, 1);
    bas->start();

    NimBLEAdvertising *adv = NimBLEDevice::getAdvertising();
    adv->addServiceUUID(ECG_BLE_SERVICE_UUID);
    adv->start();
}

void ble_state(int *data_on, int *hrm_on)
{
    *data_on = s_connected && s_data_on;
    *hrm_on = s_connected && s_hrm_on;
}

size_t ble_rx(uint8_t *buf, size_t cap)
{
    return xStreamBufferReceive(s_rx, buf, cap, 0);
}

size_t ble_send(ecg_device_t *dev, ecg_hrm_tap_t *tap, unsigned max_notifications)
{
    uint8_t buf[ECG_PROTO_MAX_WIRE_LEN];
    size_t sent = 0, n;
    while (sent < max_notifications &&
           (n = ecg_port_link_notification(dev, tap, s_mtu, buf, sizeof buf)) != 0u) {
        s_data->setValue(buf, n);
        s_data->notify();
        sent++;
    }
    return sent;
}

void ble_hrm(const uint8_t *value, size_t len)
{
    if (s_connected) {
        s_hrm->setValue(value, len);
        s_hrm->notify();
    }
}

void ble_battery(uint8_t pct)
{
    s_battery->setValue(&pct, 1);
    if (s_connected) {
        s_battery->notify();
    }
}

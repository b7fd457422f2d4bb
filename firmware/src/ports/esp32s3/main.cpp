/*
 * ecgedge device firmware, ESP32-S3 port (PlatformIO env esp32s3): the portable ecg_device
 * behind the wire protocol (docs/protocol.md) on USB-CDC and BLE.
 *
 *  - USB: `Serial` is the chip's USB Serial/JTAG CDC port (ARDUINO_USB_CDC_ON_BOOT=1), the board's
 *    "USB" connector, /dev/ttyACM0 on Linux: `ecgedge stream serial:///dev/ttyACM0`. It counts as
 *    always up (like a UART: the device cannot tell a reader is there); a host starts with
 *    GET_INFO. While nobody reads, the CDC buffer fills and the device drops and counts frames.
 *  - BLE: a central with notifications on takes the link (ecg_port_link.h, §13); USB gets it
 *    back on disconnect. A heart-rate app alone starts the stream.
 *  - Heart Rate Measurement: every byte sent on either link passes the beat tap (ecg_hrm.h).
 *  - Backfill ring (60 s, §12) and personalization packages (§11, storage slots of the HAL, key
 *    from -DPORT_DEVICE_KEY) are attached by ecg_port_attach_extras.
 *  - Watchdog: the ESP-IDF task watchdog on the loop task, PORT_WDT_TIMEOUT_S, reset each turn.
 *  - Idle: when a turn had nothing to do the loop task sleeps one FreeRTOS tick (1 ms), so the
 *    idle task runs and the core waits for interrupts (WAITI). Automatic light sleep is not
 *    enabled: USB Serial/JTAG and BLE connections need the clocks this port keeps running.
 *
 * Not verified here: nothing of this file is compiled in CI (no Xtensa toolchain); see
 * firmware/README.md for what is and is not verified.
 */
#include <Arduino.h>
#include <esp_task_wdt.h>

#include "ecg_port_extras.h"
#include "ecg_port_util.h"
#include "port.h"

#define USB_CHUNK 256u
#define BLE_NOTIFICATIONS_PER_TURN 8u
#define BATTERY_PERIOD_MS 10000u

static ecg_port_t s_port; /* device, HAL, beat tap, link state, backfill, update packages */
static ecg_afe_t *s_afe;
static uint32_t s_battery_ms;

static void on_hrm(void *ctx, const uint8_t *value, size_t len)
{
    (void)ctx;
    ble_hrm(value, len);
}

static void update_battery(void)
{
#if PORT_VBAT_PIN >= 0
    const uint8_t pct =
        ecg_battery_pct(analogReadMilliVolts(PORT_VBAT_PIN) * PORT_VBAT_DIVIDER, 3300u, 4200u);
    ecg_device_set_battery(&s_port.dev, pct);
    ble_battery(pct);
#endif
}

void setup()
{
    ecg_port_desc_t desc = {};
    ecg_proto_device_info_t info;

    Serial.begin(115200); /* the baud rate means nothing to USB CDC */
    (void)esp_task_wdt_init(PORT_WDT_TIMEOUT_S, true); /* may already be on: then kept */
    (void)esp_task_wdt_add(NULL);

    s_afe = afe_init(&s_port.dev); /* before the device: its init sets the rate via the HAL */
    hal_esp32s3_init(&s_port.hal, s_afe);
    desc.rate_hz = PORT_RATE_HZ;
    desc.rates_mask = ecg_afe_rates_mask(s_afe);
    desc.uv_per_count = ecg_afe_uv_per_count(s_afe);
    desc.mains_hz = PORT_MAINS_HZ;
    desc.model_id = PORT_MODEL_ID;
    desc.caps = ECG_CAP_LEAD_OFF | (PORT_VBAT_PIN >= 0 ? ECG_CAP_BATTERY : 0u);
    desc.fw_minor = 1u; /* firmware 0.1.0 */
    if (ecg_port_begin(&s_port, &desc, on_hrm, NULL) != ECG_OK) {
        for (;;) {
            delay(1000); /* the task watchdog restarts the board */
        }
    }
    ecg_device_get_info(&s_port.dev, &info);
    ble_init(&info);
    update_battery();
}

void loop()
{
    uint8_t buf[USB_CHUNK];
    size_t n, work = 0;
    int data_on, hrm_on;

    esp_task_wdt_reset();
    ble_state(&data_on, &hrm_on);
    (void)ecg_port_link_update(&s_port.dev, &s_port.links, 1, data_on, hrm_on);

    /* each link's bytes separately: a frame may be split across turns on either */
    n = Serial.available() > 0 ? Serial.read(buf, sizeof buf) : 0u;
    if (n != 0u) {
        ecg_device_rx(&s_port.dev, buf, n);
    }
    work += n;
    n = ble_rx(buf, sizeof buf);
    if (n != 0u) {
        ecg_device_rx(&s_port.dev, buf, n);
    }
    work += n;
    work += ecg_port_poll(&s_port.dev, &s_port.tap, s_afe->lead_off);

    if (s_port.links.link == ECG_PORT_LINK_BLE) {
        work += ble_send(&s_port.dev, &s_port.tap, BLE_NOTIFICATIONS_PER_TURN);
    } else if (s_port.links.link == ECG_PORT_LINK_STREAM) {
        n = ecg_port_link_stream(&s_port.dev, &s_port.tap, buf, sizeof buf,
                                 (size_t)Serial.availableForWrite());
        if (n != 0u) {
            Serial.write(buf, n);
        }
        work += n;
    }

    if (millis() - s_battery_ms >= BATTERY_PERIOD_MS) {
        s_battery_ms = millis();
        update_battery();
    }
    if (work == 0u) {
        vTaskDelay(1); /* idle: WAITI in the FreeRTOS idle task until the next interrupt */
    }
}

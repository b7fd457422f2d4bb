/*
 * ecgedge device firmware, Apollo3 port (PlatformIO env apollo3, SparkFun RedBoard Artemis ATP):
 * the portable ecg_device behind the wire protocol (docs/protocol.md) on the USB serial port and
 * BLE.
 *
 *  - USB: the Apollo3 has no USB; the board's USB-serial bridge (CH340) connects UART0 (`Serial`,
 *    PORT_UART_BAUD 8N1): /dev/ttyUSB0 on Linux, `ecgedge stream serial:///dev/ttyUSB0?baud=115200`.
 *    Always up (a UART cannot tell a reader is there); a host starts with GET_INFO. Writes block
 *    at the baud rate, at most UART_CHUNK bytes per loop turn.
 *  - BLE: a central with notifications on takes the link (ecg_port_link.h, §13); the UART gets
 *    it back on disconnect. A heart-rate app alone starts the stream.
 *  - Heart Rate Measurement: every byte sent on either link passes the beat tap (ecg_hrm.h).
 *  - Backfill ring (60 s, §12) and personalization packages (§11, storage slots of the HAL, key
 *    from -DPORT_DEVICE_KEY) are attached by ecg_port_attach_extras.
 *  - Watchdog: the Apollo3 WDT (LFRC 16 Hz), reset after PORT_WDT_TIMEOUT_S without a loop turn.
 *  - Idle: when a turn had nothing to do the loop thread sleeps 1 ms; mbed's idle thread then
 *    sleeps the core (WFI; deep sleep stays locked while the sampling ticker runs).
 *
 * Not verified here: nothing of this file is compiled in CI (no Arduino_Apollo3 core offline); see
 * firmware/README.md for what is and is not verified.
 */
#include <Arduino.h>
#include <am_mcu_apollo.h>
#include <mbed.h>

#include "ecg_port_extras.h"
#include "port.h"

#define UART_CHUNK 64u
#define BLE_NOTIFICATIONS_PER_TURN 8u
#define WDT_TICKS_PER_S 16u

static ecg_port_t s_port; /* device, HAL, beat tap, link state, backfill, update packages */
static ecg_afe_t *s_afe;

static void on_hrm(void *ctx, const uint8_t *value, size_t len)
{
    (void)ctx;
    ble_hrm(value, len);
}

static void watchdog_start(void)
{
    am_hal_wdt_config_t cfg;
    cfg.ui32Config = AM_HAL_WDT_LFRC_CLK_16HZ | AM_HAL_WDT_ENABLE_RESET;
    cfg.ui16InterruptCount = 0u;
    cfg.ui16ResetCount = (uint16_t)(WDT_TICKS_PER_S * PORT_WDT_TIMEOUT_S);
    am_hal_clkgen_control(AM_HAL_CLKGEN_CONTROL_LFRC_START, 0);
    am_hal_wdt_init(&cfg);
    am_hal_wdt_start();
}

void setup()
{
    ecg_port_desc_t desc = {};
    ecg_proto_device_info_t info;

    Serial.begin(PORT_UART_BAUD);
    watchdog_start();
    s_afe = afe_init(&s_port.dev); /* before the device: its init sets the rate via the HAL */
    hal_apollo3_init(&s_port.hal, s_afe);
    desc.rate_hz = PORT_RATE_HZ;
    desc.rates_mask = ecg_afe_rates_mask(s_afe);
    desc.uv_per_count = ecg_afe_uv_per_count(s_afe);
    desc.mains_hz = PORT_MAINS_HZ;
    desc.model_id = PORT_MODEL_ID;
    desc.caps = ECG_CAP_LEAD_OFF; /* no battery gauge on the ATP */
    desc.fw_minor = 1u;           /* firmware 0.1.0 */
    while (ecg_port_begin(&s_port, &desc, on_hrm, NULL) != ECG_OK) {
        delay(1000); /* not restarted: the watchdog resets the chip */
    }
    ecg_device_get_info(&s_port.dev, &info);
    ble_init(&s_port.dev, &info);
}

void loop()
{
    uint8_t buf[UART_CHUNK];
    size_t n = 0, work = 0;
    int data_on, hrm_on;

    am_hal_wdt_restart();
    ble_state(&data_on, &hrm_on); /* services ArduinoBLE: control writes reach the device here */
    (void)ecg_port_link_update(&s_port.dev, &s_port.links, 1, data_on, hrm_on);

    while (n < sizeof buf && Serial.available() > 0) {
        buf[n++] = (uint8_t)Serial.read();
    }
    if (n != 0u) {
        ecg_device_rx(&s_port.dev, buf, n);
    }
    work += n + ecg_port_poll(&s_port.dev, &s_port.tap, s_afe->lead_off);

    if (s_port.links.link == ECG_PORT_LINK_BLE) {
        work += ble_send(&s_port.dev, &s_port.tap, BLE_NOTIFICATIONS_PER_TURN);
    } else if (s_port.links.link == ECG_PORT_LINK_STREAM) {
        /* blocking UART writes: UART_CHUNK bytes take 5.6 ms at 115200 baud */
        n = ecg_port_link_stream(&s_port.dev, &s_port.tap, buf, sizeof buf, sizeof buf);
        work += Serial.write(buf, n);
    }
    if (work == 0u) {
        rtos::ThisThread::sleep_for(std::chrono::milliseconds(1)); /* mbed idle: WFI */
    }
}

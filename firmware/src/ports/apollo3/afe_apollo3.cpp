/*
 * Apollo3 port: the analog front end, AD8232 or MAX30003 (detected at boot; wiring in
 * firmware/README.md). Detection, scaling, rates, register values and FIFO decoding are in the
 * portable drivers (firmware/src/drivers/ecg_afe.h and below, unit-tested in CI); this file only
 * owns the pins, the SPI bus, the ticker, the interrupts and the sampling thread.
 *
 * Pacing:
 *  - AD8232: an mbed Ticker (the core's microsecond ticker, hardware STIMER/CTIMER based) fires
 *    every ecg_ad8232_timer_ticks(1 MHz, rate) µs; only 125, 250, 500 and 1000 Hz are whole
 *    microseconds within 10 ppm (ecg_ad8232_rates_mask). The ISR counts the tick and sets a flag
 *    of the sampling thread, which reads the ADC (analogRead uses the HAL's ADC driver, not made for
 *    interrupt context) and LO+/LO-, one sample per counted tick, and pushes with
 *    ecg_device_push_samples.
 *  - MAX30003: the chip paces itself (32.768 kHz FCLK on the breakout); INTB's falling edge sets
 *    the thread flag and the thread burst-reads the FIFO over SPI. The thread also wakes every
 *    100 ms and reads while INTB is still low (a missed edge leaves INTB low).
 * The sampling thread runs at osPriorityRealtime; Apollo3 has one core, so the input ring's
 * single-core memory-order assumption holds.
 *
 * Not verified here: nothing of this file is compiled in CI (no Arduino_Apollo3 core offline);
 * written against the mbed-os based core v2.2.0 pinned in platformio.ini.
 */
#include <Arduino.h>
#include <SPI.h>
#include <mbed.h>
#include <string.h>

#include "ecg_afe.h"
#include "port.h"

#define FLAG_WAKE 1u
#define WAKE_TIMEOUT_MS 100
#define THREAD_STACK_BYTES 2048

static ecg_afe_t s_afe;
static ecg_device_t *s_dev;
static volatile uint32_t s_pending; /* ticker ticks not yet sampled */
static volatile uint8_t s_running;
static mbed::Ticker s_ticker;
static rtos::Thread s_thread(osPriorityRealtime, THREAD_STACK_BYTES);

static void tick_isr(void)
{
    s_pending++;
    s_thread.flags_set(FLAG_WAKE);
}

static void intb_isr(void)
{
    s_thread.flags_set(FLAG_WAKE);
}

static ecg_err_t spi_xfer(void *ctx, const uint8_t *tx, uint8_t *rx, size_t len)
{
    uint8_t buf[1u + 3u * ECG_MAX30003_FIFO_WORDS];
    (void)ctx;
    if (len > sizeof buf) {
        return ECG_ERR_RANGE;
    }
    memcpy(buf, tx, len); /* SPI.transfer works in place */
    SPI.beginTransaction(SPISettings(PORT_MAX_SPI_HZ, MSBFIRST, SPI_MODE0));
    digitalWrite(PORT_MAX_CS_PIN, LOW);
    SPI.transfer(buf, len);
    digitalWrite(PORT_MAX_CS_PIN, HIGH);
    SPI.endTransaction();
    if (rx != NULL) {
        memcpy(rx, buf, len);
    }
    return ECG_OK;
}

static void sampling_thread(void)
{
    for (;;) {
        rtos::ThisThread::flags_wait_any_for(FLAG_WAKE, std::chrono::milliseconds(WAKE_TIMEOUT_MS));
        if (!s_running) {
            continue;
        }
        if (s_afe.kind == ECG_AFE_AD8232) {
            while (s_pending != 0u) { /* one sample per counted tick */
                core_util_atomic_decr_u32(&s_pending, 1u);
                ecg_afe_push_ad8232(&s_afe, s_dev,
                                    ecg_ad8232_code_mv((uint32_t)analogRead(PORT_AD8232_OUT_PIN),
                                                       PORT_ADC_BITS, PORT_ADC_VREF_MV),
                                    digitalRead(PORT_AD8232_LOP_PIN),
                                    digitalRead(PORT_AD8232_LOM_PIN));
            }
        } else {
            while (ecg_afe_push_max30003(&s_afe, s_dev) != 0u &&
                   digitalRead(PORT_MAX_INTB_PIN) == LOW) {
            }
        }
    }
}

ecg_afe_t *afe_init(ecg_device_t *dev)
{
    s_dev = dev;
    pinMode(PORT_MAX_CS_PIN, OUTPUT);
    digitalWrite(PORT_MAX_CS_PIN, HIGH);
    SPI.begin();
    if (ecg_afe_detect(&s_afe, PORT_RATE_HZ, PORT_TICKER_CLOCK_HZ, PORT_TIMER_MAX_PPM, spi_xfer,
                       NULL) == ECG_AFE_MAX30003) {
        pinMode(PORT_MAX_INTB_PIN, INPUT_PULLUP);
    } else {
        SPI.end();
        s_afe.ad.divider = PORT_AD8232_DIVIDER;
        pinMode(PORT_AD8232_LOP_PIN, INPUT);
        pinMode(PORT_AD8232_LOM_PIN, INPUT);
        pinMode(PORT_AD8232_SDN_PIN, OUTPUT);
        digitalWrite(PORT_AD8232_SDN_PIN, LOW);
        analogReadResolution(PORT_ADC_BITS);
    }
    s_thread.start(mbed::callback(sampling_thread));
    return &s_afe;
}

ecg_err_t afe_start(void *ctx)
{
    (void)ctx;
    if (s_afe.kind == ECG_AFE_MAX30003) {
        if (ecg_afe_start_max30003(&s_afe) != ECG_OK) {
            return ECG_ERR_STATE;
        }
        s_running = 1u;
        attachInterrupt(digitalPinToInterrupt(PORT_MAX_INTB_PIN), intb_isr, FALLING);
        return ECG_OK;
    }
    digitalWrite(PORT_AD8232_SDN_PIN, HIGH);
    s_pending = 0u;
    s_running = 1u;
    s_ticker.attach(mbed::callback(tick_isr),
                    std::chrono::microseconds(ecg_afe_timer_ticks(&s_afe)));
    return ECG_OK;
}

void afe_stop(void *ctx)
{
    (void)ctx;
    s_running = 0u;
    if (s_afe.kind == ECG_AFE_AD8232) {
        s_ticker.detach();
        digitalWrite(PORT_AD8232_SDN_PIN, LOW); /* shutdown */
    } else {
        detachInterrupt(digitalPinToInterrupt(PORT_MAX_INTB_PIN));
    }
    (void)ecg_afe_stop(&s_afe); /* MAX30003: EN_ECG off */
}

/*
 * ESP32-S3 port: the analog front end, AD8232 or MAX30003 (detected at boot; wiring in
 * firmware/README.md). Detection, scaling, rates, register values and FIFO decoding are in the
 * portable drivers (firmware/src/drivers/ecg_afe.h and below, unit-tested in CI); this file only
 * owns the pins, the SPI bus, the timer, the interrupts and the sampling task.
 *
 * Pacing:
 *  - AD8232: hardware timer 0 at 40 MHz (APB / 2) raises an interrupt every
 *    ecg_ad8232_timer_ticks(40 MHz, rate) ticks (every table rate within 10 ppm). The ISR only
 *    gives the sampling task a notification; the task reads the ADC (analogReadMilliVolts takes a
 *    lock, which an ISR must not) and the LO+/LO- pins, one sample per notification (the count
 *    keeps ticks a late task has not served), and pushes it with ecg_device_push_samples.
 *  - MAX30003: the chip paces itself from its 32.768 kHz FCLK; INTB (EINT at the FIFO threshold,
 *    EOVF, DCLOFFINT) interrupts on its falling edge and the task burst-reads the FIFO over SPI.
 *    The task also wakes every 100 ms and reads while INTB is still low (an edge missed while the
 *    FIFO was being read leaves INTB low with no new edge).
 * The sampling task runs at the highest priority on PORT_SAMPLING_CORE, the core of the Arduino
 * loop task: the device's input ring (ecg_rb.h) then has its producer and consumer on one core,
 * as its single-core memory-order note requires.
 *
 * Lead-off: the task stores the mask; main.cpp hands it to ecg_device_set_lead_off (task-context
 * API). Power: SDN low (AD8232) or EN_ECG cleared (MAX30003) while not streaming.
 *
 * Not verified here: nothing of this file is compiled in CI (no Xtensa toolchain); the Arduino-ESP32
 * 2.0.x timer API (timerBegin(num, divider, up)) is assumed, as pinned in platformio.ini.
 */
#include <Arduino.h>
#include <SPI.h>

#include "ecg_afe.h"
#include "port.h"

#define TASK_STACK_BYTES 4096
#define WAKE_TIMEOUT_MS 100
#define PLL_SETTLE_MS 100

static ecg_afe_t s_afe;
static ecg_device_t *s_dev;
static TaskHandle_t s_task;
static hw_timer_t *s_timer;
static volatile uint8_t s_running;

static void IRAM_ATTR wake_isr(void)
{
    BaseType_t woken = pdFALSE;
    vTaskNotifyGiveFromISR(s_task, &woken);
    if (woken) {
        portYIELD_FROM_ISR();
    }
}

static ecg_err_t spi_xfer(void *ctx, const uint8_t *tx, uint8_t *rx, size_t len)
{
    uint8_t scratch[1u + 3u * ECG_MAX30003_FIFO_WORDS];
    (void)ctx;
    if (len > sizeof scratch) {
        return ECG_ERR_RANGE;
    }
    SPI.beginTransaction(SPISettings(PORT_MAX_SPI_HZ, MSBFIRST, SPI_MODE0));
    digitalWrite(PORT_MAX_CS_PIN, LOW);
    SPI.transferBytes(tx, rx != NULL ? rx : scratch, (uint32_t)len);
    digitalWrite(PORT_MAX_CS_PIN, HIGH);
    SPI.endTransaction();
    return ECG_OK;
}

static void sampling_task(void *arg)
{
    (void)arg;
    for (;;) {
        /* pdFALSE: one notification per turn, so each timer tick gives one sample */
        const uint32_t got = ulTaskNotifyTake(pdFALSE, pdMS_TO_TICKS(WAKE_TIMEOUT_MS));
        if (!s_running) {
            continue;
        }
        if (s_afe.kind == ECG_AFE_AD8232) {
            if (got != 0u) {
                ecg_afe_push_ad8232(&s_afe, s_dev, (float)analogReadMilliVolts(PORT_AD8232_OUT_PIN),
                                    digitalRead(PORT_AD8232_LOP_PIN),
                                    digitalRead(PORT_AD8232_LOM_PIN));
            }
        } else if (got != 0u || digitalRead(PORT_MAX_INTB_PIN) == LOW) {
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
    SPI.begin(PORT_MAX_SCK_PIN, PORT_MAX_MISO_PIN, PORT_MAX_MOSI_PIN, PORT_MAX_CS_PIN);
#if PORT_MAX_FCLK_PIN >= 0
    ledcSetup(0, 32768, 1); /* 32.768 kHz square wave for FCLK */
    ledcAttachPin(PORT_MAX_FCLK_PIN, 0);
    ledcWrite(0, 1);
#endif
    delay(PLL_SETTLE_MS);
    if (ecg_afe_detect(&s_afe, PORT_RATE_HZ, PORT_TIMER_CLOCK_HZ, PORT_TIMER_MAX_PPM, spi_xfer,
                       NULL) == ECG_AFE_MAX30003) {
        pinMode(PORT_MAX_INTB_PIN, INPUT_PULLUP);
    } else {
        SPI.end();
        pinMode(PORT_AD8232_LOP_PIN, INPUT);
        pinMode(PORT_AD8232_LOM_PIN, INPUT);
        pinMode(PORT_AD8232_SDN_PIN, OUTPUT);
        digitalWrite(PORT_AD8232_SDN_PIN, LOW);
        analogReadResolution(12);
        analogSetPinAttenuation(PORT_AD8232_OUT_PIN, ADC_11db); /* ~0..3.1 V */
        s_timer = timerBegin(0, 2, true);                        /* 80 MHz / 2 = 40 MHz */
        timerAttachInterrupt(s_timer, wake_isr, true);
    }
    xTaskCreatePinnedToCore(sampling_task, "ecg_afe", TASK_STACK_BYTES, NULL,
                            configMAX_PRIORITIES - 1, &s_task, PORT_SAMPLING_CORE);
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
        attachInterrupt(digitalPinToInterrupt(PORT_MAX_INTB_PIN), wake_isr, FALLING);
        return ECG_OK;
    }
    digitalWrite(PORT_AD8232_SDN_PIN, HIGH);
    s_running = 1u;
    timerAlarmWrite(s_timer, ecg_afe_timer_ticks(&s_afe), true);
    timerAlarmEnable(s_timer);
    return ECG_OK;
}

void afe_stop(void *ctx)
{
    (void)ctx;
    s_running = 0u;
    if (s_afe.kind == ECG_AFE_AD8232) {
        timerAlarmDisable(s_timer);
        digitalWrite(PORT_AD8232_SDN_PIN, LOW); /* shutdown */
    } else {
        detachInterrupt(digitalPinToInterrupt(PORT_MAX_INTB_PIN));
    }
    (void)ecg_afe_stop(&s_afe); /* MAX30003: EN_ECG off */
}

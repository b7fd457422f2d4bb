/*
 * ESP32-S3-DevKitC-1 port: pins and constants (firmware/README.md has the wiring tables).
 * Change the pins here for another ESP32-S3 board; avoid the strapping pins (GPIO0, 3, 45, 46),
 * the USB pins (GPIO19, 20) and, on modules with octal PSRAM, GPIO35-37.
 */
#ifndef ECG_PORT_ESP32S3_CONFIG_H
#define ECG_PORT_ESP32S3_CONFIG_H

/* AD8232 breakout (analog) */
#define PORT_AD8232_OUT_PIN 1 /* OUTPUT -> GPIO1 = ADC1_CH0 (ADC1: usable while the radio runs) */
#define PORT_AD8232_LOP_PIN 4 /* LO+ */
#define PORT_AD8232_LOM_PIN 5 /* LO- */
#define PORT_AD8232_SDN_PIN 6 /* SDN: low = shutdown between streams */

/* MAX30003 breakout (SPI, FSPI default pins of the Arduino core) */
#define PORT_MAX_SCK_PIN 12
#define PORT_MAX_MISO_PIN 13
#define PORT_MAX_MOSI_PIN 11
#define PORT_MAX_CS_PIN 10
#define PORT_MAX_INTB_PIN 9
/* FCLK: 32.768 kHz from the LEDC peripheral for breakouts without their own oscillator;
 * -1: the breakout has one (e.g. ProtoCentral's). */
#define PORT_MAX_FCLK_PIN (-1)
#define PORT_MAX_SPI_HZ 4000000u

/* Battery: ADC pin on a 1:2 divider from the LiPo, -1 when none (the DevKitC has no battery;
 * the Battery Service then reports 100 %: powered from USB). */
#define PORT_VBAT_PIN (-1)
#define PORT_VBAT_DIVIDER 2u

/* Device */
#define PORT_DEVICE_NAME "ecgedge"  /* BLE name: at most 8 characters fit the advertisement */
#define PORT_MODEL_ID 0x5333u       /* "S3" */
#define PORT_RATE_HZ 250u
#ifndef PORT_MAINS_HZ
#define PORT_MAINS_HZ 50u           /* -DPORT_MAINS_HZ=60 in build_flags for 60 Hz mains */
#endif
#define PORT_TIMER_CLOCK_HZ 40000000u /* hardware timer: APB 80 MHz / 2 */
#define PORT_TIMER_MAX_PPM 10u
#define PORT_WDT_TIMEOUT_S 5u
#define PORT_SAMPLING_CORE 1        /* the Arduino loop's core: see afe_esp32s3.cpp */

#endif /* ECG_PORT_ESP32S3_CONFIG_H */

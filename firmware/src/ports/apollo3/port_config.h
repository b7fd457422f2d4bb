/*
 * Apollo3 port (SparkFun RedBoard Artemis ATP): pins and constants (firmware/README.md has the
 * wiring tables). On the ATP the Arduino pin number is the Apollo3 pad number printed on the
 * board. Other Artemis boards: change the pins here (their variant maps numbers differently).
 */
#ifndef ECG_PORT_APOLLO3_CONFIG_H
#define ECG_PORT_APOLLO3_CONFIG_H

/* AD8232 breakout (analog) */
#define PORT_AD8232_OUT_PIN 16 /* OUTPUT -> 10 kΩ -> pad 16 (ADCSE0) -> 15 kΩ -> GND (see below) */
#define PORT_AD8232_LOP_PIN 14 /* LO+ */
#define PORT_AD8232_LOM_PIN 15 /* LO- */
#define PORT_AD8232_SDN_PIN 17 /* SDN: low = shutdown between streams */
/* The Apollo3 ADC reads 0..2.0 V (internal 2.0 V reference, 14 bits); the AD8232 swings 0..3.3 V,
 * so its OUTPUT goes through a 10 kΩ / 15 kΩ divider: x 0.6, 3.3 V -> 1.98 V. */
#define PORT_ADC_BITS 14u
#define PORT_ADC_VREF_MV 2000.0f
#define PORT_AD8232_DIVIDER 0.6f

/* MAX30003 breakout (SPI on IOM0: SCK pad 5, MISO pad 6, MOSI pad 7 = the core's `SPI`) */
#define PORT_MAX_CS_PIN 4
#define PORT_MAX_INTB_PIN 2
#define PORT_MAX_SPI_HZ 4000000u

/* Battery: no gauge on the ATP (USB powered): the Battery Service reports 100 %. */

/* Personalization slots in the top 80 KB of the 1 MB flash (8 KB pages). platformio.ini's
 * board_upload.maximum_size keeps the image (from 0x10000, after the SVL bootloader) below. */
#define PORT_SLOT_HEAD_A_ADDR 0xEC000u
#define PORT_SLOT_HEAD_B_ADDR 0xEE000u
#define PORT_SLOT_LABELS_ADDR 0xF0000u
#define PORT_SLOT_HEAD_BYTES 0x2000u
#define PORT_SLOT_LABELS_BYTES 0x10000u

/* Device */
#define PORT_DEVICE_NAME "ecgedge"  /* BLE name: at most 8 characters fit the advertisement */
#define PORT_MODEL_ID 0xA3A3u       /* Apollo3 */
#define PORT_RATE_HZ 250u
#ifndef PORT_MAINS_HZ
#define PORT_MAINS_HZ 50u           /* -DPORT_MAINS_HZ=60 in build_flags for 60 Hz mains */
#endif
#define PORT_UART_BAUD 115200u      /* the board's USB-serial bridge: serial:///dev/ttyUSB0 */
#define PORT_TICKER_CLOCK_HZ 1000000u /* mbed Ticker: whole microseconds */
#define PORT_TIMER_MAX_PPM 10u
#define PORT_WDT_TIMEOUT_S 4u
#define PORT_BLE_MTU 23u            /* ArduinoBLE gives no MTU: pieces of 20 bytes (profile) */

#endif /* ECG_PORT_APOLLO3_CONFIG_H */

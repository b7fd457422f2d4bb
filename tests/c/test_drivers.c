/*
 * Unit tests of the port-independent front-end drivers (firmware/src/drivers): the MAX30003
 * register driver against the datasheet's register map, power-on defaults and FIFO word format,
 * on a simulated SPI bus; the AD8232 scaling, lead-off and sampling-timer period; the Heart Rate
 * Measurement values (Bluetooth HRS format, profile in ecg/ecg_ble.h) tapped from BEAT_EVENT
 * frames; the ports' clock extension and battery gauge.
 *
 * Every expected value is worked out by hand from the datasheets (bit positions quoted in
 * ecg_max30003.h) or from the formula in ecg_ad8232.h, not taken from the code under test.
 * Built and run by tests/test_drivers.py (host gcc, ASan/UBSan); prints "N passed, M failed" last.
 */
#include <string.h>

#include "check.h"
#include "ecg_ad8232.h"
#include "ecg_afe.h"
#include "ecg_hrm.h"
#include "ecg_max30003.h"
#include "ecg_port_extras.h"
#include "ecg_port_link.h"
#include "ecg_port_util.h"

/* ---------------------------------------------------------------------------------------------
 * A simulated MAX30003 on the SPI bus
 * ------------------------------------------------------------------------------------------- */

#define SIM_LOG 32

typedef struct {
    uint32_t regs[128];
    uint32_t fifo[40];        /* FIFO words the burst read returns, then EMPTY words */
    size_t fifo_n;
    uint8_t log_reg[SIM_LOG]; /* registers written, in order */
    uint32_t log_val[SIM_LOG];
    size_t log_n;
    size_t last_len;          /* bytes of the last transfer */
    int fail;                 /* 1: every transfer fails */
} sim_t;

static ecg_err_t sim_xfer(void *ctx, const uint8_t *tx, uint8_t *rx, size_t len)
{
    sim_t *s = (sim_t *)ctx;
    const uint8_t reg = (uint8_t)(tx[0] >> 1);
    size_t i;
    s->last_len = len;
    if (s->fail) {
        return ECG_ERR_STATE;
    }
    if ((tx[0] & 1u) == 0u) { /* write: 24 bits after the command */
        if (len == 4u && s->log_n < SIM_LOG) {
            s->log_reg[s->log_n] = reg;
            s->log_val[s->log_n] = ((uint32_t)tx[1] << 16) | ((uint32_t)tx[2] << 8) | tx[3];
            s->regs[reg] = s->log_val[s->log_n];
            s->log_n++;
        }
        return ECG_OK;
    }
    if (rx == NULL) {
        return ECG_ERR_NULL;
    }
    rx[0] = 0xFFu; /* SDO is high impedance during the command byte */
    for (i = 0; (1u + 3u * i) < len; i++) {
        uint32_t w = reg == ECG_MAX30003_REG_ECG_FIFO_BURST
                         ? (i < s->fifo_n ? s->fifo[i] : 0x000037ul) /* ETAG 110, PTAG 111 */
                         : s->regs[reg];
        rx[1u + 3u * i] = (uint8_t)(w >> 16);
        rx[2u + 3u * i] = (uint8_t)(w >> 8);
        rx[3u + 3u * i] = (uint8_t)w;
    }
    return ECG_OK;
}

/* FIFO word from an 18-bit sample and an ETAG (PTAG 111, as the MAX30003 reads it). */
static uint32_t fifo_word(long sample18, unsigned etag)
{
    return (((uint32_t)sample18 & 0x3FFFFul) << 6) | ((uint32_t)etag << 3) | 7u;
}

static void sim_bound(sim_t *s, ecg_max30003_t *dev)
{
    memset(s, 0, sizeof *s);
    CHECK_EQ(ecg_max30003_bind(dev, sim_xfer, s), ECG_OK);
}

/* ---------------------------------------------------------------------------------------------
 * MAX30003
 * ------------------------------------------------------------------------------------------- */

static void test_max30003_command_bytes_follow_the_spi_frame_format(void)
{
    uint8_t b[4];
    ecg_max30003_command(ECG_MAX30003_REG_INFO, 1, 0x123456u, b); /* 0x0F << 1 | 1 */
    CHECK_EQ(b[0], 0x1F);
    CHECK_EQ(b[1] | b[2] | b[3], 0);
    ecg_max30003_command(ECG_MAX30003_REG_CNFG_GEN, 0, 0x081007u, b); /* 0x10 << 1 | 0 */
    CHECK_EQ(b[0], 0x20);
    CHECK_EQ(b[1], 0x08);
    CHECK_EQ(b[2], 0x10);
    CHECK_EQ(b[3], 0x07);
    ecg_max30003_command(ECG_MAX30003_REG_ECG_FIFO_BURST, 1, 0u, b);
    CHECK_EQ(b[0], 0x41);
    ecg_max30003_command(ECG_MAX30003_REG_ECG_FIFO, 1, 0u, b);
    CHECK_EQ(b[0], 0x43);
    ecg_max30003_command(ECG_MAX30003_REG_SW_RST, 0, 0u, b);
    CHECK_EQ(b[0], 0x10);
}

static void test_max30003_power_on_defaults_are_reproduced_by_their_settings(void)
{
    /* Datasheet POR values: CNFG_ECG 0x805000 = 128 sps (FMSTR 00, RATE 10), 20 V/V, DHPF on,
     * DLPF 01; MNGR_INT 0x780004 = EFIT 15 (16 samples), CLR_SAMP. */
    ecg_max30003_cfg_t cfg;
    ecg_max30003_regs_t r;
    ecg_max30003_default_cfg(&cfg);
    cfg.rate_hz = 128u;
    cfg.fifo_threshold = 16u;
    cfg.lead_off = 0u;
    cfg.rbias = 0u;
    CHECK_EQ(ecg_max30003_regs(&cfg, &r), ECG_OK);
    CHECK_EQ(r.cnfg_ecg, 0x805000);
    CHECK_EQ(r.mngr_int, 0x780004);
    CHECK_EQ(r.cnfg_gen, 0x080000); /* FMSTR 00, EN_ECG; nothing else */
    CHECK_EQ(r.cnfg_emux, 0);       /* OPENP/OPENN cleared: electrodes connected */
    CHECK_EQ(r.en_int, 0xC00003);   /* EINT, EOVF, INTB open drain with pull-up */
}

static void test_max30003_default_config_registers(void)
{
    /* 250 sps = FMSTR 01 + RATE 01; lead-off: EN_DCLOFF 01, IMAG 010 (10 nA), VTH 00;
     * RBIAS: EN_RBIAS 01, RBIASV 01 (100 MΩ), RBIASP, RBIASN */
    ecg_max30003_cfg_t cfg;
    ecg_max30003_regs_t r;
    ecg_max30003_default_cfg(&cfg);
    CHECK_EQ(ecg_max30003_regs(&cfg, &r), ECG_OK);
    CHECK_EQ(r.cnfg_gen, 0x100000 + 0x080000 + 0x001000 + 0x000200 + 0x10 + 0x04 + 0x2 + 0x1);
    CHECK_EQ(r.cnfg_ecg, 0x400000 + 0x004000 + 0x001000);
    CHECK_EQ(r.mngr_int, 0x380004); /* EFIT 7: 8 samples */
    CHECK_EQ(r.en_int, 0xD00003);   /* + DCLOFFINT */
    CHECK_EQ(r.cnfg_cal, 0);
}

static void test_max30003_rates_gains_and_limits(void)
{
    ecg_max30003_cfg_t cfg;
    ecg_max30003_regs_t r;
    ecg_max30003_default_cfg(&cfg);
    cfg.lead_off = 0u;
    cfg.rbias = 0u;
    cfg.rate_hz = 512u; /* FMSTR 00, RATE 00 */
    CHECK_EQ(ecg_max30003_regs(&cfg, &r), ECG_OK);
    CHECK_EQ(r.cnfg_gen >> 20, 0);
    CHECK_EQ(r.cnfg_ecg >> 22, 0);
    cfg.rate_hz = 500u; /* FMSTR 01, RATE 00 */
    CHECK_EQ(ecg_max30003_regs(&cfg, &r), ECG_OK);
    CHECK_EQ(r.cnfg_gen >> 20, 1);
    CHECK_EQ(r.cnfg_ecg >> 22, 0);
    cfg.rate_hz = 125u; /* FMSTR 01, RATE 10 */
    CHECK_EQ(ecg_max30003_regs(&cfg, &r), ECG_OK);
    CHECK_EQ(r.cnfg_gen >> 20, 1);
    CHECK_EQ(r.cnfg_ecg >> 22, 2);
    cfg.rate_hz = 256u; /* FMSTR 00, RATE 01 */
    CHECK_EQ(ecg_max30003_regs(&cfg, &r), ECG_OK);
    CHECK_EQ(r.cnfg_gen >> 20, 0);
    CHECK_EQ(r.cnfg_ecg >> 22, 1);
    cfg.gain_vv = 40u;
    CHECK_EQ(ecg_max30003_regs(&cfg, &r), ECG_OK);
    CHECK_EQ((r.cnfg_ecg >> 16) & 3u, 1);
    cfg.gain_vv = 160u;
    CHECK_EQ(ecg_max30003_regs(&cfg, &r), ECG_OK);
    CHECK_EQ((r.cnfg_ecg >> 16) & 3u, 3);
    cfg.gain_vv = 30u;
    CHECK_EQ(ecg_max30003_regs(&cfg, &r), ECG_ERR_RANGE);
    cfg.gain_vv = 20u;
    cfg.rate_hz = 360u;
    CHECK_EQ(ecg_max30003_regs(&cfg, &r), ECG_ERR_RANGE);
    cfg.rate_hz = 1000u;
    CHECK_EQ(ecg_max30003_regs(&cfg, &r), ECG_ERR_RANGE);
    cfg.rate_hz = 250u;
    cfg.fifo_threshold = 0u;
    CHECK_EQ(ecg_max30003_regs(&cfg, &r), ECG_ERR_RANGE);
    cfg.fifo_threshold = 33u;
    CHECK_EQ(ecg_max30003_regs(&cfg, &r), ECG_ERR_RANGE);
    cfg.fifo_threshold = 32u; /* EFIT 31 */
    CHECK_EQ(ecg_max30003_regs(&cfg, &r), ECG_OK);
    CHECK_EQ(r.mngr_int >> 19, 31);
    cfg.dlpf = 4u;
    CHECK_EQ(ecg_max30003_regs(&cfg, &r), ECG_ERR_RANGE);
    CHECK_EQ(ecg_max30003_regs(NULL, &r), ECG_ERR_NULL);
    /* the rates mask: 125 (bit 0), 128 (1), 250 (2), 256 (3), 500 (5), 512 (6) */
    CHECK_EQ(ECG_MAX30003_RATES_MASK, 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40);
}

static void test_max30003_fifo_word_decoding_rounds_and_saturates(void)
{
    int16_t c = 1234;
    CHECK_EQ(ecg_max30003_decode(fifo_word(0, 0), &c), ECG_MAX30003_ETAG_VALID);
    CHECK_EQ(c, 0);
    CHECK_EQ(ecg_max30003_decode(fifo_word(4, 0), &c), 0);
    CHECK_EQ(c, 1);
    ecg_max30003_decode(fifo_word(5, 0), &c); /* 1.25 */
    CHECK_EQ(c, 1);
    ecg_max30003_decode(fifo_word(6, 0), &c); /* 1.5: ties up */
    CHECK_EQ(c, 2);
    ecg_max30003_decode(fifo_word(-6, 0), &c); /* -1.5: ties up */
    CHECK_EQ(c, -1);
    ecg_max30003_decode(fifo_word(-7, 0), &c); /* -1.75 */
    CHECK_EQ(c, -2);
    CHECK_EQ(fifo_word(-7, 0), 0xFFFE47); /* the word itself: 0x3FFF9 << 6 | 7 */
    ecg_max30003_decode(fifo_word(-1, 0), &c); /* -0.25 */
    CHECK_EQ(c, 0);
    ecg_max30003_decode(fifo_word(131071, 0), &c); /* full scale: 32767.75 saturates */
    CHECK_EQ(c, 32767);
    ecg_max30003_decode(fifo_word(-131072, 0), &c);
    CHECK_EQ(c, -32768);
    CHECK_EQ(ecg_max30003_decode(fifo_word(400, 1), &c), ECG_MAX30003_ETAG_FAST);
    CHECK_EQ(c, 100);
    CHECK_EQ(ecg_max30003_decode(fifo_word(-400, 2), &c), ECG_MAX30003_ETAG_VALID_EOF);
    CHECK_EQ(c, -100);
    c = 77;
    CHECK_EQ(ecg_max30003_decode(0x000037ul, &c), ECG_MAX30003_ETAG_EMPTY);
    CHECK_EQ(c, 77); /* no sample in an empty word */
    CHECK_EQ(ecg_max30003_decode(fifo_word(8, 7), &c), ECG_MAX30003_ETAG_OVERFLOW);
    CHECK_EQ(c, 77);
}

static void test_max30003_scale_and_lead_off(void)
{
    /* V = ADC * 1000 mV / (2^17 * G); one count = 4 ADC LSBs */
    CHECK(ecg_max30003_uv_per_count(20u) == 1.52587890625f);
    CHECK(ecg_max30003_uv_per_count(160u) == 0.19073486328125f);
    CHECK_EQ(ecg_max30003_lead_off(0u), 0);
    CHECK_EQ(ecg_max30003_lead_off(0x800000ul), 0); /* EINT alone */
    CHECK_EQ(ecg_max30003_lead_off(0x100000ul), 1); /* DCLOFFINT */
    CHECK_EQ(ecg_max30003_lead_off(0x000008ul), 1); /* LDOFF_PH */
    CHECK_EQ(ecg_max30003_lead_off(0x000001ul), 1); /* LDOFF_NL */
}

static void test_max30003_probe_reads_info(void)
{
    sim_t s;
    ecg_max30003_t dev;
    sim_bound(&s, &dev);
    s.regs[ECG_MAX30003_REG_INFO] = 0x540000ul;
    CHECK_EQ(ecg_max30003_probe(&dev), ECG_OK);
    CHECK_EQ(s.last_len, 4);
    s.regs[ECG_MAX30003_REG_INFO] = 0u; /* MISO low */
    CHECK_EQ(ecg_max30003_probe(&dev), ECG_ERR_UNSUPPORTED);
    s.regs[ECG_MAX30003_REG_INFO] = 0xFFFFFFul; /* MISO pulled up */
    CHECK_EQ(ecg_max30003_probe(&dev), ECG_ERR_UNSUPPORTED);
    s.fail = 1;
    CHECK_EQ(ecg_max30003_probe(&dev), ECG_ERR_STATE);
    CHECK_EQ(dev.spi_errors, 1);
}

static void test_max30003_init_writes_the_datasheet_sequence(void)
{
    sim_t s;
    ecg_max30003_t dev;
    ecg_max30003_cfg_t cfg;
    static const uint8_t order[] = {0x08, 0x10, 0x12, 0x14, 0x15, 0x04, 0x02, 0x09};
    size_t i;
    sim_bound(&s, &dev);
    ecg_max30003_default_cfg(&cfg);
    CHECK_EQ(ecg_max30003_init(&dev, &cfg), ECG_OK);
    CHECK_EQ(s.log_n, sizeof order);
    for (i = 0; i < sizeof order && i < s.log_n; i++) {
        CHECK_EQ(s.log_reg[i], order[i]);
    }
    CHECK_EQ(s.regs[ECG_MAX30003_REG_CNFG_GEN], 0x181217);
    CHECK_EQ(s.regs[ECG_MAX30003_REG_CNFG_ECG], 0x405000);
    CHECK_EQ(s.regs[ECG_MAX30003_REG_MNGR_INT], 0x380004);
    CHECK_EQ(s.regs[ECG_MAX30003_REG_EN_INT], 0xD00003);
    /* stop: EN_ECG (D19) cleared, the rest kept */
    CHECK_EQ(ecg_max30003_stop(&dev), ECG_OK);
    CHECK_EQ(s.regs[ECG_MAX30003_REG_CNFG_GEN], 0x101217);
    /* a bad configuration writes nothing */
    s.log_n = 0;
    cfg.rate_hz = 360u;
    CHECK_EQ(ecg_max30003_init(&dev, &cfg), ECG_ERR_RANGE);
    CHECK_EQ(s.log_n, 0);
}

static void test_max30003_fifo_read_stops_at_empty_and_end_of_fifo(void)
{
    sim_t s;
    ecg_max30003_t dev;
    ecg_max30003_cfg_t cfg;
    ecg_max30003_fifo_t res;
    int16_t out[32];
    sim_bound(&s, &dev);
    ecg_max30003_default_cfg(&cfg); /* threshold 8 */
    CHECK_EQ(ecg_max30003_init(&dev, &cfg), ECG_OK);
    s.regs[ECG_MAX30003_REG_STATUS] = 0x800000ul; /* EINT */
    s.fifo[0] = fifo_word(40, 0);
    s.fifo[1] = fifo_word(-40, 0);
    s.fifo[2] = fifo_word(400, 0);
    s.fifo_n = 3; /* then EMPTY words */
    CHECK_EQ(ecg_max30003_read_fifo(&dev, out, 32u, &res), ECG_OK);
    CHECK_EQ(s.last_len, 1 + 3 * 8); /* one burst of the threshold */
    CHECK_EQ(res.n, 3);
    CHECK_EQ(out[0], 10);
    CHECK_EQ(out[1], -10);
    CHECK_EQ(out[2], 100);
    CHECK_EQ(res.overflow, 0);
    CHECK_EQ(res.lead_off, 0);
    /* the last valid sample (ETAG 010) ends the read even if more words follow */
    s.fifo[0] = fifo_word(8, 0);
    s.fifo[1] = fifo_word(12, 2);
    s.fifo[2] = fifo_word(16, 0);
    s.regs[ECG_MAX30003_REG_STATUS] = 0x900000ul; /* EINT + DCLOFFINT */
    CHECK_EQ(ecg_max30003_read_fifo(&dev, out, 32u, &res), ECG_OK);
    CHECK_EQ(res.n, 2);
    CHECK_EQ(out[1], 3);
    CHECK_EQ(res.lead_off, 1);
    /* cap limits the burst */
    CHECK_EQ(ecg_max30003_read_fifo(&dev, out, 1u, &res), ECG_OK);
    CHECK_EQ(s.last_len, 1 + 3 * 1);
    CHECK_EQ(res.n, 1);
    CHECK_EQ(dev.samples, 3 + 2 + 1);
}

static void test_max30003_overflow_resets_the_fifo(void)
{
    sim_t s;
    ecg_max30003_t dev;
    ecg_max30003_cfg_t cfg;
    ecg_max30003_fifo_t res;
    int16_t out[32];
    sim_bound(&s, &dev);
    ecg_max30003_default_cfg(&cfg);
    CHECK_EQ(ecg_max30003_init(&dev, &cfg), ECG_OK);
    /* STATUS.EOVF: nothing read, FIFO_RST written */
    s.log_n = 0;
    s.regs[ECG_MAX30003_REG_STATUS] = 0xC00000ul;
    CHECK_EQ(ecg_max30003_read_fifo(&dev, out, 32u, &res), ECG_OK);
    CHECK_EQ(res.n, 0);
    CHECK_EQ(res.overflow, 1);
    CHECK_EQ(s.log_n, 1);
    CHECK_EQ(s.log_reg[0], ECG_MAX30003_REG_FIFO_RST);
    /* an overflow tag inside the burst: samples before it kept, FIFO_RST written */
    s.log_n = 0;
    s.regs[ECG_MAX30003_REG_STATUS] = 0x800000ul;
    s.fifo[0] = fifo_word(20, 0);
    s.fifo[1] = fifo_word(0, 7);
    s.fifo_n = 2;
    CHECK_EQ(ecg_max30003_read_fifo(&dev, out, 32u, &res), ECG_OK);
    CHECK_EQ(res.n, 1);
    CHECK_EQ(out[0], 5);
    CHECK_EQ(res.overflow, 1);
    CHECK_EQ(s.log_n, 1);
    CHECK_EQ(s.log_reg[0], ECG_MAX30003_REG_FIFO_RST);
    CHECK_EQ(dev.overflows, 2);
    /* a failing bus delivers nothing */
    s.fail = 1;
    CHECK_EQ(ecg_max30003_read_fifo(&dev, out, 32u, &res), ECG_ERR_STATE);
    CHECK_EQ(res.n, 0);
}

/* ---------------------------------------------------------------------------------------------
 * AD8232
 * ------------------------------------------------------------------------------------------- */

static void test_ad8232_counts_follow_the_gain_chain(void)
{
    ecg_ad8232_cfg_t cfg;
    ecg_ad8232_default_cfg(&cfg); /* 1100 V/V, no divider, 1650 mV, 0.1 µV/count */
    CHECK_EQ(ecg_ad8232_check(&cfg), ECG_OK);
    CHECK_EQ(ecg_ad8232_counts(&cfg, 1650.0f), 0);
    CHECK_EQ(ecg_ad8232_counts(&cfg, 1651.1f), 10);     /* 1.1 mV / 1100 = 1 µV */
    CHECK_EQ(ecg_ad8232_counts(&cfg, 1760.0f), 1000);   /* 110 mV / 1100 = 100 µV */
    CHECK_EQ(ecg_ad8232_counts(&cfg, 3300.0f), 15000);  /* rail: 1.5 mV */
    CHECK_EQ(ecg_ad8232_counts(&cfg, 0.0f), -15000);
    cfg.divider = 0.6f; /* Apollo3: 2 V ADC range, 10k/15k divider */
    CHECK_EQ(ecg_ad8232_counts(&cfg, 990.0f), 0);
    CHECK_EQ(ecg_ad8232_counts(&cfg, 1056.0f), 1000);
    cfg.uv_per_count = 0.01f;
    cfg.divider = 1.0f;
    CHECK_EQ(ecg_ad8232_counts(&cfg, 3300.0f), 32767); /* 150000: saturates */
    CHECK_EQ(ecg_ad8232_counts(&cfg, 0.0f), -32768);
    /* ties round away from zero: 500 µV / 200 µV per count = 2.5 */
    cfg.gain_vv = 1.0f;
    cfg.ref_mv = 0.0f;
    cfg.uv_per_count = 200.0f;
    CHECK_EQ(ecg_ad8232_counts(&cfg, 0.5f), 3);
    CHECK_EQ(ecg_ad8232_counts(&cfg, -0.5f), -3);
}

static void test_ad8232_config_limits_and_adc_codes(void)
{
    ecg_ad8232_cfg_t cfg;
    volatile float zero = 0.0f;
    ecg_ad8232_default_cfg(&cfg);
    cfg.divider = 0.0f;
    CHECK_EQ(ecg_ad8232_check(&cfg), ECG_ERR_RANGE);
    cfg.divider = 1.5f;
    CHECK_EQ(ecg_ad8232_check(&cfg), ECG_ERR_RANGE);
    cfg.divider = 1.0f;
    cfg.gain_vv = 0.0f;
    CHECK_EQ(ecg_ad8232_check(&cfg), ECG_ERR_RANGE);
    cfg.gain_vv = zero / zero; /* NaN */
    CHECK_EQ(ecg_ad8232_check(&cfg), ECG_ERR_RANGE);
    CHECK_EQ(ecg_ad8232_check(NULL), ECG_ERR_NULL);
    /* Apollo3: 14-bit codes on a 2.0 V reference */
    CHECK(ecg_ad8232_code_mv(8192u, 14u, 2000.0f) == 1000.0f);
    CHECK(ecg_ad8232_code_mv(16383u, 14u, 2000.0f) > 1999.8f);
    CHECK(ecg_ad8232_code_mv(0u, 12u, 3300.0f) == 0.0f);
    CHECK_EQ(ecg_ad8232_lead_off(0, 0), 0);
    CHECK_EQ(ecg_ad8232_lead_off(1, 0), 1);
    CHECK_EQ(ecg_ad8232_lead_off(0, 1), 1);
}

static void test_ad8232_timer_period_and_rates(void)
{
    /* ESP32-S3 timer at 40 MHz (APB 80 MHz / 2): 360 Hz -> 111111 ticks, 360.0004 Hz (1 ppm) */
    CHECK_EQ(ecg_ad8232_timer_ticks(40000000u, 360u, 10u), 111111);
    CHECK_EQ(ecg_ad8232_timer_ticks(40000000u, 128u, 0u), 312500);
    CHECK_EQ(ecg_ad8232_rates_mask(40000000u, 10u), 0xFF);
    /* 1 MHz ticks (a microsecond ticker): 360 Hz -> 2778 ticks = 359.97 Hz, 80 ppm off;
     * 128 Hz -> 7813 ticks, 64 ppm off */
    CHECK_EQ(ecg_ad8232_timer_ticks(1000000u, 360u, 10u), 0);
    CHECK_EQ(ecg_ad8232_timer_ticks(1000000u, 360u, 100u), 2778);
    CHECK_EQ(ecg_ad8232_timer_ticks(1000000u, 128u, 10u), 0);
    CHECK_EQ(ecg_ad8232_timer_ticks(1000000u, 250u, 0u), 4000);
    CHECK_EQ(ecg_ad8232_rates_mask(1000000u, 10u), 0x01 | 0x04 | 0x20 | 0x80); /* 125 250 500 1000 */
    CHECK_EQ(ecg_ad8232_timer_ticks(1000000u, 0u, 10u), 0);
    CHECK_EQ(ecg_ad8232_timer_ticks(100u, 1000u, 1000000u), 0); /* rounds to 0 ticks */
}

/* ---------------------------------------------------------------------------------------------
 * Heart Rate Measurement, port helpers
 * ------------------------------------------------------------------------------------------- */

static void test_hrm_values_follow_the_heart_rate_profile(void)
{
    uint8_t v[ECG_HRM_MAX_LEN];
    /* 360 Hz, 288 samples = 0.8 s: 75 bpm, RR 819.2 -> 819 = 0x0333 /1024 s */
    CHECK_EQ(ecg_hrm_encode(288u, 360u, v), 4);
    CHECK_EQ(v[0], 0x10);
    CHECK_EQ(v[1], 75);
    CHECK_EQ(v[2], 0x33);
    CHECK_EQ(v[3], 0x03);
    /* 250 Hz, 400 samples: 37.5 bpm rounds up to 38; RR 1638.4 -> 1638 = 0x0666 */
    CHECK_EQ(ecg_hrm_encode(400u, 250u, v), 4);
    CHECK_EQ(v[1], 38);
    CHECK_EQ(v[2], 0x66);
    CHECK_EQ(v[3], 0x06);
    /* 1000 Hz, 200 samples: 300 bpm needs the uint16 format (flags bit 0) */
    CHECK_EQ(ecg_hrm_encode(200u, 1000u, v), 5);
    CHECK_EQ(v[0], 0x11);
    CHECK_EQ(v[1], 0x2C);
    CHECK_EQ(v[2], 0x01);
    CHECK_EQ(v[3], 205); /* 204.8 */
    CHECK_EQ(v[4], 0);
    /* RR saturates at 0xFFFF */
    CHECK_EQ(ecg_hrm_encode(65535u, 125u, v), 4);
    CHECK_EQ(v[1], 0);
    CHECK_EQ(v[2], 0xFF);
    CHECK_EQ(v[3], 0xFF);
    CHECK_EQ(ecg_hrm_encode(0u, 360u, v), 0); /* first beat: no interval */
    CHECK_EQ(ecg_hrm_encode(288u, 0u, v), 0);
}

typedef struct {
    uint8_t value[ECG_HRM_MAX_LEN];
    size_t len;
    unsigned calls;
} hrm_sink_t;

static void hrm_sink(void *ctx, const uint8_t *value, size_t len)
{
    hrm_sink_t *s = (hrm_sink_t *)ctx;
    memcpy(s->value, value, len);
    s->len = len;
    s->calls++;
}

static size_t beat_frame(uint16_t seq, uint32_t index, uint16_t rr, uint8_t *out, size_t cap)
{
    ecg_proto_beat_t b;
    uint8_t payload[ECG_PROTO_MAX_PAYLOAD];
    int32_t n;
    memset(&b, 0, sizeof b);
    b.sample_index = index;
    b.rr_samples = rr;
    n = ecg_proto_pack_beat(&b, payload, sizeof payload);
    CHECK(n > 0);
    n = ecg_frame_encode(ECG_FT_BEAT_EVENT, seq, payload, (size_t)n, out, cap);
    CHECK(n > 0);
    return n > 0 ? (size_t)n : 0u;
}

static void test_hrm_tap_finds_beats_in_the_outgoing_stream(void)
{
    ecg_hrm_tap_t tap;
    hrm_sink_t sink;
    uint8_t wire[4 * ECG_PROTO_MAX_WIRE_LEN];
    size_t n = 0, i;
    memset(&sink, 0, sizeof sink);
    CHECK_EQ(ecg_hrm_tap_init(&tap, 360u, hrm_sink, &sink), ECG_OK);
    n += beat_frame(0u, 100u, 0u, wire + n, sizeof wire - n);   /* first beat: no measurement */
    n += (size_t)ecg_frame_encode(ECG_FT_STATUS, 0u, NULL, 0u, wire + n, sizeof wire - n);
    n += beat_frame(1u, 388u, 288u, wire + n, sizeof wire - n); /* 75 bpm */
    for (i = 0; i < n; i++) { /* byte by byte: frames split anywhere */
        ecg_hrm_tap_feed(&tap, wire + i, 1u);
    }
    CHECK_EQ(sink.calls, 1);
    CHECK_EQ(sink.len, 4);
    CHECK_EQ(sink.value[1], 75);
    CHECK_EQ(tap.measurements, 1);
    /* a damaged frame yields nothing; the rate follows set_rate */
    n = beat_frame(2u, 676u, 288u, wire, sizeof wire);
    wire[3] ^= 0x40u;
    ecg_hrm_tap_feed(&tap, wire, n);
    CHECK_EQ(sink.calls, 1);
    ecg_hrm_tap_set_rate(&tap, 250u);
    n = beat_frame(3u, 964u, 250u, wire, sizeof wire);
    ecg_hrm_tap_feed(&tap, wire, n);
    CHECK_EQ(sink.calls, 2);
    CHECK_EQ(sink.value[1], 60);
    CHECK_EQ(sink.value[2], 0x00); /* 1024 /1024 s */
    CHECK_EQ(sink.value[3], 0x04);
    CHECK_EQ(ecg_hrm_tap_init(NULL, 360u, hrm_sink, &sink), ECG_ERR_NULL);
}

static void test_port_clock_extension_and_battery_gauge(void)
{
    ecg_time_ext_t t;
    memset(&t, 0, sizeof t);
    CHECK(ecg_time_extend(&t, 100u) == 100u);
    CHECK(ecg_time_extend(&t, 0xFFFFFFF0u) == 0xFFFFFFF0u);
    CHECK(ecg_time_extend(&t, 5u) == 0x100000005ull);
    CHECK(ecg_time_extend(&t, 10u) == 0x10000000Aull);
    CHECK_EQ(ecg_battery_pct(3300u, 3300u, 4200u), 0);
    CHECK_EQ(ecg_battery_pct(3000u, 3300u, 4200u), 0);
    CHECK_EQ(ecg_battery_pct(3750u, 3300u, 4200u), 50);
    CHECK_EQ(ecg_battery_pct(4200u, 3300u, 4200u), 100);
    CHECK_EQ(ecg_battery_pct(5000u, 3300u, 4200u), 100);
    CHECK_EQ(ecg_battery_pct(3309u, 3300u, 4200u), 1); /* 1.0 % */
    CHECK_EQ(ecg_battery_pct(3304u, 3300u, 4200u), 0); /* 0.44 % */
    CHECK_EQ(ecg_battery_pct(3500u, 4200u, 3300u), 0); /* bad range */
}

static ecg_device_t g_dev; /* ~14 KB: not on the stack */

/* 1 when buf[0..n) is exactly one frame: a single 0x00, at the end */
static int one_whole_frame(const uint8_t *buf, size_t n)
{
    size_t i;
    if (n < ECG_PROTO_WIRE_LEN(0) || buf[n - 1u] != 0u) {
        return 0;
    }
    for (i = 0; i + 1u < n; i++) {
        if (buf[i] == 0u) {
            return 0;
        }
    }
    return 1;
}

static void test_port_link_selection_and_ble_notification_sizes(void)
{
    ecg_device_cfg_t cfg;
    ecg_hal_t hal;
    ecg_port_links_t st = {ECG_PORT_LINK_NONE, 0u};
    uint8_t buf[ECG_PROTO_MAX_WIRE_LEN];
    size_t n;
    memset(&hal, 0, sizeof hal);
    ecg_device_default_cfg(&cfg);
    CHECK_EQ(ecg_device_init(&g_dev, &cfg, &hal), ECG_OK);
    /* MTU 247: the boot DEVICE_INFO comes as one whole frame */
    n = ecg_port_link_notification(&g_dev, NULL, 247u, buf, sizeof buf);
    CHECK(one_whole_frame(buf, n));
    /* a byte link comes up: greeting = lone 0x00 + DEVICE_INFO (§6.2) */
    CHECK_EQ(ecg_port_link_update(&g_dev, &st, 1, 0, 0), ECG_PORT_LINK_STREAM);
    CHECK_EQ(st.link, ECG_PORT_LINK_STREAM);
    CHECK(ecg_device_tx_pending(&g_dev) > ECG_PROTO_WIRE_LEN(0));
    n = ecg_port_link_stream(&g_dev, NULL, buf, sizeof buf, 5u); /* the link takes 5 bytes */
    CHECK_EQ(n, 5);
    CHECK_EQ(buf[0], 0);
    /* BLE (data notifications on) wins over the byte link; the queue restarts with the greeting */
    CHECK_EQ(ecg_port_link_update(&g_dev, &st, 1, 1, 0), ECG_PORT_LINK_BLE);
    /* MTU 23 (the default): pieces of 20 bytes of the stream */
    n = ecg_port_link_notification(&g_dev, NULL, 23u, buf, sizeof buf);
    CHECK_EQ(n, 20);
    CHECK_EQ(buf[0], 0);
    CHECK_EQ(ecg_port_link_notification(&g_dev, NULL, 3u, buf, sizeof buf), 0);
    /* an ecgedge host on the data characteristic also enables heart rate: no stream started */
    CHECK_EQ(ecg_port_link_update(&g_dev, &st, 1, 1, 1), ECG_PORT_LINK_BLE);
    CHECK_EQ(ecg_device_streaming(&g_dev), 0);
    /* no link: the queue is discarded */
    CHECK_EQ(ecg_port_link_update(&g_dev, &st, 0, 0, 0), ECG_PORT_LINK_NONE);
    CHECK_EQ(ecg_device_tx_pending(&g_dev), 0);
    /* unchanged state: nothing queued */
    CHECK_EQ(ecg_port_link_update(&g_dev, &st, 0, 0, 0), ECG_PORT_LINK_NONE);
    CHECK_EQ(ecg_device_tx_pending(&g_dev), 0);
    /* a heart-rate app alone (§13): the link comes up and the port starts the stream, once */
    CHECK_EQ(ecg_port_link_update(&g_dev, &st, 0, 0, 1), ECG_PORT_LINK_BLE);
    CHECK_EQ(ecg_device_streaming(&g_dev), 1);
    CHECK_EQ(ecg_port_link_update(&g_dev, &st, 0, 0, 1), ECG_PORT_LINK_BLE);
    CHECK_EQ(ecg_device_streaming(&g_dev), 1);
}

static unsigned g_hrm_calls;

static void count_hrm(void *ctx, const uint8_t *value, size_t len)
{
    (void)ctx;
    (void)value;
    (void)len;
    g_hrm_calls++;
}

static void test_port_device_init_and_poll(void)
{
    ecg_port_desc_t desc;
    ecg_hal_t hal;
    ecg_hrm_tap_t tap;
    ecg_proto_device_info_t info;
    memset(&hal, 0, sizeof hal);
    memset(&desc, 0, sizeof desc);
    desc.rate_hz = 256u;
    desc.rates_mask = ECG_MAX30003_RATES_MASK;
    desc.uv_per_count = ecg_max30003_uv_per_count(20u);
    desc.mains_hz = 60u;
    desc.model_id = 0x5333u;
    desc.caps = ECG_CAP_LEAD_OFF;
    desc.fw_major = 1u;
    desc.fw_minor = 2u;
    desc.fw_patch = 3u;
    CHECK_EQ(ecg_port_device_init(&g_dev, &hal, &desc, &tap, count_hrm, NULL), ECG_OK);
    ecg_device_get_info(&g_dev, &info);
    CHECK_EQ(info.sample_rate_hz, 256);
    CHECK_EQ(info.model_id, 0x5333);
    CHECK_EQ(info.fw_major, 1);
    CHECK_EQ(info.fw_patch, 3);
    CHECK(info.capabilities & ECG_CAP_LEAD_OFF);
    CHECK_EQ(tap.fs_hz, 256);
    CHECK_EQ(ecg_port_poll(&g_dev, &tap, 1u), 0); /* not streaming: nothing processed */
    desc.mains_hz = 55u; /* the notch is 0, 50 or 60 Hz: the device refuses, the error comes back */
    CHECK_EQ(ecg_port_device_init(&g_dev, &hal, &desc, &tap, count_hrm, NULL), ECG_ERR_RANGE);
    CHECK_EQ(ecg_port_device_init(&g_dev, &hal, NULL, &tap, count_hrm, NULL), ECG_ERR_NULL);
    CHECK_EQ(g_hrm_calls, 0);
}

/* A RAM "flash" with the Apollo3 port's slot sizes (NOR semantics are the core's business). */
static uint8_t g_flash[3][0x10000];
static const uint32_t g_slot_bytes[3] = {0x2000u, 0x2000u, 0x10000u};
static ecg_port_extras_t g_extras; /* ~90 KB */

static uint32_t ram_size(void *ctx, ecg_hal_slot_t slot)
{
    (void)ctx;
    return (unsigned)slot < 3u ? g_slot_bytes[slot] : 0u;
}

static ecg_err_t ram_erase(void *ctx, ecg_hal_slot_t slot)
{
    (void)ctx;
    memset(g_flash[slot], 0xFF, g_slot_bytes[slot]);
    return ECG_OK;
}

static ecg_err_t ram_write(void *ctx, ecg_hal_slot_t slot, uint32_t off, const uint8_t *d, size_t n)
{
    (void)ctx;
    memcpy(&g_flash[slot][off], d, n);
    return ECG_OK;
}

static ecg_err_t ram_read(void *ctx, ecg_hal_slot_t slot, uint32_t off, uint8_t *d, size_t n)
{
    (void)ctx;
    memcpy(d, &g_flash[slot][off], n);
    return ECG_OK;
}

static void test_port_extras_attach_backfill_and_packages(void)
{
    ecg_device_cfg_t cfg;
    ecg_hal_t hal;
    ecg_proto_device_info_t info;
    static const uint8_t key[32] = {1, 2, 3, 4, 5, 6, 7, 8};
    memset(&hal, 0, sizeof hal);
    memset(g_flash, 0xFF, sizeof g_flash);
    hal.storage_size = ram_size;
    hal.storage_erase = ram_erase;
    hal.storage_write = ram_write;
    hal.storage_read = ram_read;
    ecg_device_default_cfg(&cfg);
    /* 60 s of 512 Hz in full 1-lead blocks fit the ring */
    CHECK(sizeof g_extras.backfill_buf >= (60u * 512u / 115u + 1u) * (3u + 6u + 230u));
    /* no key: backfill only */
    CHECK_EQ(ecg_device_init(&g_dev, &cfg, &hal), ECG_OK);
    CHECK_EQ(ecg_port_attach_extras(&g_extras, &g_dev, &hal, NULL, 0u), ECG_OK);
    ecg_device_get_info(&g_dev, &info);
    CHECK(info.capabilities & ECG_CAP_BACKFILL);
    CHECK((info.capabilities & ECG_CAP_HEAD_PACKAGES) == 0u);
    /* a key and the slots: head packages and labels too */
    CHECK_EQ(ecg_device_init(&g_dev, &cfg, &hal), ECG_OK);
    CHECK_EQ(ecg_port_attach_extras(&g_extras, &g_dev, &hal, key, sizeof key), ECG_OK);
    ecg_device_get_info(&g_dev, &info);
    CHECK(info.capabilities & ECG_CAP_BACKFILL);
    CHECK(info.capabilities & ECG_CAP_HEAD_PACKAGES);
    CHECK(info.capabilities & ECG_CAP_PERSONALIZE_LABELS);
    CHECK_EQ(ecg_port_attach_extras(NULL, &g_dev, &hal, key, sizeof key), ECG_ERR_NULL);
}

static void start_stream(ecg_device_t *dev)
{
    uint8_t frame[ECG_PROTO_WIRE_LEN(0)];
    const int32_t n = ecg_frame_encode(ECG_FT_START_STREAM, 1u, NULL, 0u, frame, sizeof frame);
    CHECK(n > 0);
    ecg_device_rx(dev, frame, (size_t)n);
    CHECK_EQ(ecg_device_streaming(dev), 1);
}

static uint32_t samples_in(ecg_device_t *dev)
{
    ecg_device_stats_t st;
    (void)ecg_device_poll(dev);
    ecg_device_get_stats(dev, &st);
    return st.samples_in;
}

static void test_afe_detects_the_front_end_and_its_rates(void)
{
    sim_t s;
    ecg_afe_t afe;
    memset(&s, 0, sizeof s);
    /* MAX30003 answering: 6 rates, 1.526 µV, left stopped (EN_ECG off) */
    s.regs[ECG_MAX30003_REG_INFO] = 0x520000ul;
    CHECK_EQ(ecg_afe_detect(&afe, 250u, 1000000u, 10u, sim_xfer, &s), ECG_AFE_MAX30003);
    CHECK_EQ(s.log_n, 1);
    CHECK_EQ(s.log_reg[0], ECG_MAX30003_REG_CNFG_GEN);
    CHECK_EQ(s.log_val[0] & ECG_MAX30003_EN_ECG, 0);
    CHECK(ecg_afe_uv_per_count(&afe) == 1.52587890625f);
    CHECK_EQ(ecg_afe_rates_mask(&afe), 0x6F);
    CHECK_EQ(ecg_afe_set_rate(&afe, 360u), ECG_ERR_UNSUPPORTED);
    CHECK_EQ(afe.rate_hz, 250);
    CHECK_EQ(ecg_afe_set_rate(&afe, 512u), ECG_OK);
    CHECK_EQ(afe.max_cfg.rate_hz, 512);
    CHECK_EQ(ecg_afe_timer_ticks(&afe), 0);
    CHECK_EQ(ecg_afe_start_max30003(&afe), ECG_OK);
    CHECK_EQ(s.regs[ECG_MAX30003_REG_CNFG_ECG] >> 22, 0); /* 512 sps: RATE 00 */
    CHECK_EQ(ecg_afe_stop(&afe), ECG_OK);
    CHECK_EQ(s.regs[ECG_MAX30003_REG_CNFG_GEN] & ECG_MAX30003_EN_ECG, 0);
    /* nothing on the bus: the AD8232, paced by a 1 MHz ticker */
    memset(&s, 0, sizeof s);
    CHECK_EQ(ecg_afe_detect(&afe, 250u, 1000000u, 10u, sim_xfer, &s), ECG_AFE_AD8232);
    CHECK(ecg_afe_uv_per_count(&afe) == 0.1f);
    CHECK_EQ(ecg_afe_rates_mask(&afe), 0xA5);
    CHECK_EQ(ecg_afe_timer_ticks(&afe), 4000);
    CHECK_EQ(ecg_afe_set_rate(&afe, 360u), ECG_ERR_UNSUPPORTED);
    CHECK_EQ(ecg_afe_set_rate(&afe, 500u), ECG_OK);
    CHECK_EQ(ecg_afe_timer_ticks(&afe), 2000);
    /* the same through the HAL entry the ports install (ctx = the ecg_afe_t) */
    CHECK_EQ(ecg_afe_hal_set_rate(&afe, 360u), ECG_ERR_UNSUPPORTED);
    CHECK_EQ(ecg_afe_timer_ticks(&afe), 2000);
    CHECK_EQ(ecg_afe_hal_set_rate(&afe, 1000u), ECG_OK);
    CHECK_EQ(ecg_afe_timer_ticks(&afe), 1000);
    CHECK_EQ(ecg_afe_stop(&afe), ECG_OK);
    CHECK_EQ(s.log_n, 0); /* no SPI traffic for the AD8232 */
}

static void test_afe_hands_samples_and_lead_off_to_the_device(void)
{
    sim_t s;
    ecg_afe_t afe;
    ecg_device_cfg_t cfg;
    ecg_hal_t hal;
    memset(&s, 0, sizeof s);
    memset(&hal, 0, sizeof hal);
    ecg_device_default_cfg(&cfg);
    CHECK_EQ(ecg_device_init(&g_dev, &cfg, &hal), ECG_OK);
    start_stream(&g_dev);
    CHECK_EQ(ecg_afe_detect(&afe, 250u, 40000000u, 10u, sim_xfer, &s), ECG_AFE_AD8232);
    ecg_afe_push_ad8232(&afe, &g_dev, 1760.0f, 1, 0);
    CHECK_EQ(afe.lead_off, 1);
    ecg_afe_push_ad8232(&afe, &g_dev, 1650.0f, 0, 0);
    CHECK_EQ(afe.lead_off, 0);
    CHECK_EQ(samples_in(&g_dev), 2);
    /* MAX30003: one burst of three samples */
    s.regs[ECG_MAX30003_REG_INFO] = 0x510000ul;
    CHECK_EQ(ecg_afe_detect(&afe, 250u, 40000000u, 10u, sim_xfer, &s), ECG_AFE_MAX30003);
    CHECK_EQ(ecg_afe_start_max30003(&afe), ECG_OK);
    s.regs[ECG_MAX30003_REG_STATUS] = 0x800008ul; /* EINT + LDOFF_PH */
    s.fifo[0] = fifo_word(4, 0);
    s.fifo[1] = fifo_word(8, 0);
    s.fifo[2] = fifo_word(12, 2);
    s.fifo_n = 3;
    CHECK_EQ(ecg_afe_push_max30003(&afe, &g_dev), 3);
    CHECK_EQ(afe.lead_off, 1);
    CHECK_EQ(samples_in(&g_dev), 5);
    s.fail = 1;
    CHECK_EQ(ecg_afe_push_max30003(&afe, &g_dev), 0);
}

static void test_port_begin_starts_the_device_with_its_attachments(void)
{
    static ecg_port_t port;
    ecg_port_desc_t desc;
    ecg_proto_device_info_t info;
    memset(&desc, 0, sizeof desc);
    memset(&port.hal, 0, sizeof port.hal);
    desc.rate_hz = 250u;
    desc.rates_mask = 0xA5u;
    desc.uv_per_count = 0.1f;
    desc.mains_hz = 50u;
    CHECK_EQ(ecg_port_begin(&port, &desc, count_hrm, NULL), ECG_OK);
    CHECK_EQ(port.links.link, ECG_PORT_LINK_STREAM);
    ecg_device_get_info(&port.dev, &info);
    CHECK_EQ(info.sample_rate_hz, 250);
    CHECK(info.capabilities & ECG_CAP_BACKFILL);
    CHECK((info.capabilities & ECG_CAP_HEAD_PACKAGES) == 0u); /* no storage, no key */
    desc.mains_hz = 55u;
    CHECK_EQ(ecg_port_begin(&port, &desc, count_hrm, NULL), ECG_ERR_RANGE);
}

int main(void)
{
    RUN(test_max30003_command_bytes_follow_the_spi_frame_format);
    RUN(test_max30003_power_on_defaults_are_reproduced_by_their_settings);
    RUN(test_max30003_default_config_registers);
    RUN(test_max30003_rates_gains_and_limits);
    RUN(test_max30003_fifo_word_decoding_rounds_and_saturates);
    RUN(test_max30003_scale_and_lead_off);
    RUN(test_max30003_probe_reads_info);
    RUN(test_max30003_init_writes_the_datasheet_sequence);
    RUN(test_max30003_fifo_read_stops_at_empty_and_end_of_fifo);
    RUN(test_max30003_overflow_resets_the_fifo);
    RUN(test_ad8232_counts_follow_the_gain_chain);
    RUN(test_ad8232_config_limits_and_adc_codes);
    RUN(test_ad8232_timer_period_and_rates);
    RUN(test_hrm_values_follow_the_heart_rate_profile);
    RUN(test_hrm_tap_finds_beats_in_the_outgoing_stream);
    RUN(test_port_clock_extension_and_battery_gauge);
    RUN(test_port_link_selection_and_ble_notification_sizes);
    RUN(test_port_device_init_and_poll);
    RUN(test_port_extras_attach_backfill_and_packages);
    RUN(test_afe_detects_the_front_end_and_its_rates);
    RUN(test_afe_hands_samples_and_lead_off_to_the_device);
    RUN(test_port_begin_starts_the_device_with_its_attachments);
    printf("%u passed, %u failed\n", g_passed, g_failed);
    return g_failed == 0u ? 0 : 1;
}

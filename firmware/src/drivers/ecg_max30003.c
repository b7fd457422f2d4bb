/*
 * MAX30003 register-level driver (see ecg_max30003.h for the datasheet references).
 */
#include "ecg_max30003.h"

#include <string.h>

#define WORD_BYTES 3u
#define CMD_READ 1u
#define MASK24 0xFFFFFFul
#define ADC_MASK 0x3FFFFul   /* 18-bit sample */
#define ADC_SIGN 0x20000l    /* its sign bit */
#define ADC_SPAN 0x40000l    /* 2^18 */
#define ADC_HALF 0x20000l    /* 2^17: offset that makes every sample non-negative */
#define COUNT_SHIFT_DIV 4l   /* 18 -> 16 bits */
#define RBIASV_100M 1ul
#define DCLOFF_IMAG_10NA 2ul
#define DCLOFF_VTH_300MV 0ul
#define LDOFF_ANY (ECG_MAX30003_LDOFF_PH | ECG_MAX30003_LDOFF_PL | ECG_MAX30003_LDOFF_NH | \
                   ECG_MAX30003_LDOFF_NL)

void ecg_max30003_default_cfg(ecg_max30003_cfg_t *cfg)
{
    cfg->rate_hz = 250u;
    cfg->gain_vv = 20u;
    cfg->dhpf = 1u;
    cfg->dlpf = 1u;
    cfg->lead_off = 1u;
    cfg->rbias = 1u;
    cfg->fifo_threshold = 8u;
}

/* FMSTR and RATE codes for a rate (datasheet CNFG_ECG "RATE" table, FCLK = 32.768 kHz). */
static int rate_codes(uint16_t rate_hz, uint32_t *fmstr, uint32_t *rate)
{
    static const uint16_t rates[6] = {512u, 256u, 128u, 500u, 250u, 125u};
    unsigned i;
    for (i = 0; i < 6u; i++) {
        if (rates[i] == rate_hz) {
            *fmstr = i / 3u;
            *rate = i % 3u;
            return 1;
        }
    }
    return 0;
}

static int gain_code(uint8_t gain_vv, uint32_t *code)
{
    switch (gain_vv) {
    case 20u: *code = 0u; return 1;
    case 40u: *code = 1u; return 1;
    case 80u: *code = 2u; return 1;
    case 160u: *code = 3u; return 1;
    default: return 0;
    }
}

ecg_err_t ecg_max30003_regs(const ecg_max30003_cfg_t *cfg, ecg_max30003_regs_t *out)
{
    uint32_t fmstr, rate, gain;
    if (cfg == NULL || out == NULL) {
        return ECG_ERR_NULL;
    }
    if (!rate_codes(cfg->rate_hz, &fmstr, &rate) || !gain_code(cfg->gain_vv, &gain) ||
        cfg->dlpf > 3u || cfg->fifo_threshold < 1u ||
        cfg->fifo_threshold > ECG_MAX30003_FIFO_WORDS) {
        return ECG_ERR_RANGE;
    }
    out->cnfg_gen = (fmstr << ECG_MAX30003_FMSTR_SHIFT) | ECG_MAX30003_EN_ECG;
    if (cfg->lead_off) {
        out->cnfg_gen |= (1ul << ECG_MAX30003_EN_DCLOFF_SHIFT) |
                         (DCLOFF_IMAG_10NA << ECG_MAX30003_DCLOFF_IMAG_SHIFT) |
                         (DCLOFF_VTH_300MV << ECG_MAX30003_DCLOFF_VTH_SHIFT);
    }
    if (cfg->rbias) {
        out->cnfg_gen |= (1ul << ECG_MAX30003_EN_RBIAS_SHIFT) |
                         (RBIASV_100M << ECG_MAX30003_RBIASV_SHIFT) | ECG_MAX30003_RBIASP |
                         ECG_MAX30003_RBIASN;
    }
    out->cnfg_cal = 0u;  /* calibration source off */
    out->cnfg_emux = 0u; /* ECGP/ECGN connected (power-on default isolates them), no polarity swap */
    out->cnfg_ecg = (rate << ECG_MAX30003_RATE_SHIFT) | (gain << ECG_MAX30003_GAIN_SHIFT) |
                    (cfg->dhpf ? ECG_MAX30003_DHPF : 0u) |
                    ((uint32_t)cfg->dlpf << ECG_MAX30003_DLPF_SHIFT);
    out->mngr_int = ((uint32_t)(cfg->fifo_threshold - 1u) << ECG_MAX30003_EFIT_SHIFT) |
                    ECG_MAX30003_CLR_SAMP;
    out->en_int = ECG_MAX30003_EINT | ECG_MAX30003_EOVF |
                  (cfg->lead_off ? ECG_MAX30003_DCLOFFINT : 0u) | ECG_MAX30003_INTB_TYPE_OD_PULLUP;
    return ECG_OK;
}

void ecg_max30003_command(uint8_t reg, int read, uint32_t value, uint8_t out[4])
{
    out[0] = (uint8_t)((uint8_t)(reg << 1) | (read ? CMD_READ : 0u));
    if (read) {
        value = 0u;
    }
    out[1] = (uint8_t)(value >> 16);
    out[2] = (uint8_t)(value >> 8);
    out[3] = (uint8_t)value;
}

uint8_t ecg_max30003_lead_off(uint32_t status)
{
    return (status & (ECG_MAX30003_DCLOFFINT | LDOFF_ANY)) != 0u ? 1u : 0u;
}

uint8_t ecg_max30003_decode(uint32_t word, int16_t *count)
{
    const uint8_t etag = (uint8_t)((word >> 3) & 7u);
    if (etag <= ECG_MAX30003_ETAG_FAST_EOF) {
        long v = (long)((word >> 6) & ADC_MASK);
        long q;
        if (v & ADC_SIGN) {
            v -= ADC_SPAN;
        }
        /* round(v / 4), ties up, on a non-negative operand so that C's division truncates as
         * floor: q in 0..65536, minus 32768 -> -32768..32768 */
        q = (v + ADC_HALF + COUNT_SHIFT_DIV / 2) / COUNT_SHIFT_DIV - 32768l;
        *count = (int16_t)(q > 32767l ? 32767l : q);
    }
    return etag;
}

float ecg_max30003_uv_per_count(uint8_t gain_vv)
{
    /* 1000 mV * 1000 µV/mV / 2^17 per ADC LSB at unity gain, 4 LSBs per count */
    return (4.0f * 1000000.0f / 131072.0f) / (float)gain_vv;
}

ecg_err_t ecg_max30003_bind(ecg_max30003_t *dev, ecg_max30003_xfer_fn xfer, void *ctx)
{
    if (dev == NULL || xfer == NULL) {
        return ECG_ERR_NULL;
    }
    memset(dev, 0, sizeof *dev);
    dev->xfer = xfer;
    dev->ctx = ctx;
    dev->fifo_threshold = 1u;
    return ECG_OK;
}

static ecg_err_t xfer(ecg_max30003_t *dev, const uint8_t *tx, uint8_t *rx, size_t len)
{
    const ecg_err_t err = dev->xfer(dev->ctx, tx, rx, len);
    if (err != ECG_OK) {
        dev->spi_errors++;
    }
    return err;
}

ecg_err_t ecg_max30003_read_reg(ecg_max30003_t *dev, uint8_t reg, uint32_t *value)
{
    uint8_t tx[4], rx[4];
    ecg_err_t err;
    ecg_max30003_command(reg, 1, 0u, tx);
    err = xfer(dev, tx, rx, sizeof tx);
    if (err == ECG_OK) {
        *value = ((uint32_t)rx[1] << 16) | ((uint32_t)rx[2] << 8) | rx[3];
    }
    return err;
}

ecg_err_t ecg_max30003_write_reg(ecg_max30003_t *dev, uint8_t reg, uint32_t value)
{
    uint8_t tx[4];
    ecg_max30003_command(reg, 0, value & MASK24, tx);
    return xfer(dev, tx, NULL, sizeof tx);
}

ecg_err_t ecg_max30003_probe(ecg_max30003_t *dev)
{
    uint32_t info = 0u;
    const ecg_err_t err = ecg_max30003_read_reg(dev, ECG_MAX30003_REG_INFO, &info);
    if (err != ECG_OK) {
        return err;
    }
    return (info >> 20) == ECG_MAX30003_INFO_ID ? ECG_OK : ECG_ERR_UNSUPPORTED;
}

ecg_err_t ecg_max30003_init(ecg_max30003_t *dev, const ecg_max30003_cfg_t *cfg)
{
    ecg_max30003_regs_t r;
    ecg_err_t err = ecg_max30003_regs(cfg, &r);
    const struct {
        uint8_t reg;
        uint32_t value;
    } seq[] = {
        {ECG_MAX30003_REG_SW_RST, 0u},
        {ECG_MAX30003_REG_CNFG_GEN, r.cnfg_gen},
        {ECG_MAX30003_REG_CNFG_CAL, r.cnfg_cal},
        {ECG_MAX30003_REG_CNFG_EMUX, r.cnfg_emux},
        {ECG_MAX30003_REG_CNFG_ECG, r.cnfg_ecg},
        {ECG_MAX30003_REG_MNGR_INT, r.mngr_int},
        {ECG_MAX30003_REG_EN_INT, r.en_int},
        {ECG_MAX30003_REG_SYNCH, 0u},
    };
    size_t i;
    if (err != ECG_OK) {
        return err;
    }
    for (i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        err = ecg_max30003_write_reg(dev, seq[i].reg, seq[i].value);
        if (err != ECG_OK) {
            return err;
        }
    }
    dev->fifo_threshold = cfg->fifo_threshold;
    dev->cnfg_gen = r.cnfg_gen;
    return ECG_OK;
}

ecg_err_t ecg_max30003_stop(ecg_max30003_t *dev)
{
    dev->cnfg_gen &= ~ECG_MAX30003_EN_ECG;
    return ecg_max30003_write_reg(dev, ECG_MAX30003_REG_CNFG_GEN, dev->cnfg_gen);
}

static ecg_err_t fifo_reset(ecg_max30003_t *dev, ecg_max30003_fifo_t *res)
{
    dev->overflows++;
    res->overflow = 1u;
    return ecg_max30003_write_reg(dev, ECG_MAX30003_REG_FIFO_RST, 0u);
}

ecg_err_t ecg_max30003_read_fifo(ecg_max30003_t *dev, int16_t *counts, size_t cap,
                                 ecg_max30003_fifo_t *res)
{
    uint8_t tx[1u + WORD_BYTES * ECG_MAX30003_FIFO_WORDS];
    uint8_t rx[sizeof tx];
    size_t words = dev->fifo_threshold;
    size_t i;
    ecg_err_t err;

    res->n = 0u;
    res->overflow = 0u;
    err = ecg_max30003_read_reg(dev, ECG_MAX30003_REG_STATUS, &dev->status);
    if (err != ECG_OK) {
        return err;
    }
    res->lead_off = ecg_max30003_lead_off(dev->status);
    if (dev->status & ECG_MAX30003_EOVF) {
        return fifo_reset(dev, res);
    }
    if (words > cap) {
        words = cap;
    }
    if (words == 0u) {
        return ECG_OK;
    }
    memset(tx, 0, 1u + WORD_BYTES * words);
    tx[0] = (uint8_t)((ECG_MAX30003_REG_ECG_FIFO_BURST << 1) | CMD_READ);
    err = xfer(dev, tx, rx, 1u + WORD_BYTES * words);
    if (err != ECG_OK) {
        return err;
    }
    for (i = 0; i < words; i++) {
        const uint8_t *b = &rx[1u + WORD_BYTES * i];
        const uint32_t word = ((uint32_t)b[0] << 16) | ((uint32_t)b[1] << 8) | b[2];
        const uint8_t etag = ecg_max30003_decode(word, &counts[res->n]);
        if (etag == ECG_MAX30003_ETAG_OVERFLOW) {
            err = fifo_reset(dev, res);
            break;
        }
        if (etag > ECG_MAX30003_ETAG_FAST_EOF) {
            break; /* empty (or a reserved tag): no more samples */
        }
        res->n++;
        if (etag == ECG_MAX30003_ETAG_VALID_EOF || etag == ECG_MAX30003_ETAG_FAST_EOF) {
            break;
        }
    }
    dev->samples += (uint32_t)res->n;
    return err;
}

/**
 * @file ecg_max30003.h
 * @brief Register-level driver for the Maxim (Analog Devices) MAX30003 single-lead ECG front end,
 *        port-independent: the port supplies one SPI transfer function.
 *
 * Register addresses and bit fields are those of the MAX30003 datasheet (Maxim Integrated, now
 * Analog Devices: the "Register Map" table and the per-register descriptions); the macros below
 * name the fields as the datasheet does. What the
 * driver does:
 *
 *  - **SPI transaction** (datasheet "SPI Interface"): 32 SCLK cycles with CSB low, mode 0, MSB
 *    first. Byte 0 is the command `A[6:0] << 1 | R/W` (1 = read), bytes 1..3 are the 24-bit
 *    register value D[23:0]. A burst read of ECG_FIFO_BURST (0x20) keeps CSB low and clocks one
 *    more 24-bit FIFO word per 3 bytes.
 *  - **init** (::ecg_max30003_init): SW_RST, then CNFG_GEN, CNFG_CAL, CNFG_EMUX, CNFG_ECG,
 *    MNGR_INT, EN_INT from ::ecg_max30003_regs, then SYNCH (starts the ECG channel and empties the
 *    FIFO). INFO is read first to detect the part (::ecg_max30003_probe).
 *  - **rates**: the 32.768 kHz FCLK gives, through FMSTR and CNFG_ECG.RATE, 512 / 256 / 128 sps
 *    (FMSTR = 00) and 500 / 250 / 125 sps (FMSTR = 01): six of the protocol's eight table rates
 *    (::ECG_MAX30003_RATES_MASK, rates_mask bits of docs/protocol.md §6.2).
 *  - **FIFO** (ECG_FIFO word): D[23:6] the 18-bit two's-complement sample, D[5:3] ETAG, D[2:0]
 *    PTAG. Volts at the electrodes: V = ADC * VREF / (2^17 * GAIN), VREF = 1000 mV. The driver
 *    keeps the top 16 of the 18 bits (rounded, saturated) as the device's int16 counts, so one
 *    count is 4 ADC LSBs: ::ecg_max30003_uv_per_count (1.526 µV at 20 V/V).
 *  - **lead-off**: DC lead-off detection (CNFG_GEN.EN_DCLOFF = 01, current source on ECGP/ECGN,
 *    threshold VMID ± DCLOFF_VTH); STATUS.DCLOFFINT and LDOFF_PH/PL/NH/NL report it.
 *
 * Interrupt use (the ports): INTB (open drain, active low) asserts when EFIT + 1 samples wait in
 * the FIFO (STATUS.EINT), on FIFO overflow (EOVF) and on lead-off (DCLOFFINT); the port's INTB
 * handler wakes a task that calls ::ecg_max30003_read_fifo. The SPI transfer runs in task context,
 * never in the ISR.
 *
 * No heap, no globals; C99. Not verified here: a real MAX30003 (the unit tests check the bytes
 * against the datasheet's tables with a simulated SPI bus).
 */
#ifndef ECG_MAX30003_H
#define ECG_MAX30003_H

#include <stddef.h>
#include <stdint.h>

#include "ecg/ecg_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- register addresses (datasheet "Register Map") ----------------------------------------- */
#define ECG_MAX30003_REG_NO_OP 0x00u
#define ECG_MAX30003_REG_STATUS 0x01u
#define ECG_MAX30003_REG_EN_INT 0x02u
#define ECG_MAX30003_REG_EN_INT2 0x03u
#define ECG_MAX30003_REG_MNGR_INT 0x04u
#define ECG_MAX30003_REG_MNGR_DYN 0x05u
#define ECG_MAX30003_REG_SW_RST 0x08u
#define ECG_MAX30003_REG_SYNCH 0x09u
#define ECG_MAX30003_REG_FIFO_RST 0x0Au
#define ECG_MAX30003_REG_INFO 0x0Fu
#define ECG_MAX30003_REG_CNFG_GEN 0x10u
#define ECG_MAX30003_REG_CNFG_CAL 0x12u
#define ECG_MAX30003_REG_CNFG_EMUX 0x14u
#define ECG_MAX30003_REG_CNFG_ECG 0x15u
#define ECG_MAX30003_REG_CNFG_RTOR1 0x1Du
#define ECG_MAX30003_REG_CNFG_RTOR2 0x1Eu
#define ECG_MAX30003_REG_ECG_FIFO_BURST 0x20u
#define ECG_MAX30003_REG_ECG_FIFO 0x21u
#define ECG_MAX30003_REG_RTOR 0x25u

/* --- STATUS (0x01) and EN_INT (0x02) bits: the same positions -------------------------------- */
#define ECG_MAX30003_EINT (1ul << 23)      /**< ECG FIFO holds >= EFIT + 1 samples */
#define ECG_MAX30003_EOVF (1ul << 22)      /**< ECG FIFO overflow: FIFO_RST needed */
#define ECG_MAX30003_FSTINT (1ul << 21)    /**< fast recovery mode */
#define ECG_MAX30003_DCLOFFINT (1ul << 20) /**< DC lead-off detected */
#define ECG_MAX30003_LONINT (1ul << 11)    /**< ultra-low-power leads-on */
#define ECG_MAX30003_RRINT (1ul << 10)     /**< R-to-R detector */
#define ECG_MAX30003_SAMP (1ul << 9)       /**< sample synchronisation pulse */
#define ECG_MAX30003_PLLINT (1ul << 8)     /**< PLL unlocked (FCLK missing or wrong) */
#define ECG_MAX30003_LDOFF_PH (1ul << 3)   /**< STATUS: ECGP above VMID + DCLOFF_VTH */
#define ECG_MAX30003_LDOFF_PL (1ul << 2)   /**< STATUS: ECGP below VMID - DCLOFF_VTH */
#define ECG_MAX30003_LDOFF_NH (1ul << 1)   /**< STATUS: ECGN above VMID + DCLOFF_VTH */
#define ECG_MAX30003_LDOFF_NL (1ul << 0)   /**< STATUS: ECGN below VMID - DCLOFF_VTH */
#define ECG_MAX30003_INTB_TYPE_OD_PULLUP 3ul /**< EN_INT D[1:0]: open drain, internal 125 kΩ pull-up */

/* --- MNGR_INT (0x04) -------------------------------------------------------------------------- */
#define ECG_MAX30003_EFIT_SHIFT 19u      /**< D[23:19] EFIT: EINT when >= EFIT + 1 samples */
#define ECG_MAX30003_CLR_SAMP (1ul << 2) /**< D2: SAMP self-clears */

/* --- CNFG_GEN (0x10) -------------------------------------------------------------------------- */
#define ECG_MAX30003_FMSTR_SHIFT 20u        /**< D[21:20] master clock: 00 32768 Hz, 01 32000 Hz */
#define ECG_MAX30003_EN_ECG (1ul << 19)     /**< D19 ECG channel enabled */
#define ECG_MAX30003_EN_DCLOFF_SHIFT 12u    /**< D[13:12] 01: DC lead-off on ECGP/ECGN */
#define ECG_MAX30003_DCLOFF_IMAG_SHIFT 8u   /**< D[10:8] current: 000 0, 001 5, 010 10, 011 20 nA */
#define ECG_MAX30003_DCLOFF_VTH_SHIFT 6u    /**< D[7:6] threshold VMID ± 300/400/450/500 mV */
#define ECG_MAX30003_EN_RBIAS_SHIFT 4u      /**< D[5:4] 01: bias resistors on the ECG inputs */
#define ECG_MAX30003_RBIASV_SHIFT 2u        /**< D[3:2] 00 50, 01 100, 10 200 MΩ */
#define ECG_MAX30003_RBIASP (1ul << 1)      /**< D1 ECGP biased through RBIAS */
#define ECG_MAX30003_RBIASN (1ul << 0)      /**< D0 ECGN biased through RBIAS */

/* --- CNFG_EMUX (0x14) ------------------------------------------------------------------------- */
#define ECG_MAX30003_EMUX_OPENP (1ul << 21) /**< D21 ECGP isolated (power-on default) */
#define ECG_MAX30003_EMUX_OPENN (1ul << 20) /**< D20 ECGN isolated (power-on default) */

/* --- CNFG_ECG (0x15) -------------------------------------------------------------------------- */
#define ECG_MAX30003_RATE_SHIFT 22u  /**< D[23:22] RATE, with FMSTR: see the file comment */
#define ECG_MAX30003_GAIN_SHIFT 16u  /**< D[17:16] 00 20, 01 40, 10 80, 11 160 V/V */
#define ECG_MAX30003_DHPF (1ul << 14) /**< D14 digital high-pass 0.5 Hz (0: bypass) */
#define ECG_MAX30003_DLPF_SHIFT 12u  /**< D[13:12] digital low-pass: 00 bypass, 01 ~40 Hz */

/* --- FIFO word ---------------------------------------------------------------------------------- */
#define ECG_MAX30003_ETAG_VALID 0u      /**< valid sample */
#define ECG_MAX30003_ETAG_FAST 1u       /**< fast-mode sample */
#define ECG_MAX30003_ETAG_VALID_EOF 2u  /**< last valid sample of the FIFO */
#define ECG_MAX30003_ETAG_FAST_EOF 3u   /**< last fast-mode sample */
#define ECG_MAX30003_ETAG_EMPTY 6u      /**< FIFO empty: no sample in this word */
#define ECG_MAX30003_ETAG_OVERFLOW 7u   /**< FIFO overflowed: samples lost, FIFO_RST needed */

#define ECG_MAX30003_FIFO_WORDS 32u     /**< ECG FIFO depth */
#define ECG_MAX30003_INFO_ID 0x5u       /**< INFO D[23:20]: the fixed 0101 pattern */
/** rates_mask bits (docs/protocol.md §6.2: 125, 128, 250, 256, 360, 500, 512, 1000 Hz) the
 *  MAX30003 can do from its 32.768 kHz FCLK: all but 360 and 1000. */
#define ECG_MAX30003_RATES_MASK 0x6Fu

/**
 * SPI full-duplex transfer with CSB held low for all `len` bytes (mode 0, MSB first, SCLK up to
 * the datasheet's limit). `rx` may be NULL when nothing is read. Return ECG_OK or an error.
 */
typedef ecg_err_t (*ecg_max30003_xfer_fn)(void *ctx, const uint8_t *tx, uint8_t *rx, size_t len);

/** Configuration. Start from ::ecg_max30003_default_cfg. */
typedef struct {
    uint16_t rate_hz;       /**< 125, 128, 250, 256, 500 or 512 */
    uint8_t gain_vv;        /**< ECG channel gain: 20, 40, 80 or 160 V/V */
    uint8_t dhpf;           /**< 1: digital 0.5 Hz high-pass, 0: bypass */
    uint8_t dlpf;           /**< CNFG_ECG.DLPF code 0..3 (01: ~40 Hz at 500/512 sps) */
    uint8_t lead_off;       /**< 1: DC lead-off detection, 10 nA, VMID ± 300 mV */
    uint8_t rbias;          /**< 1: 100 MΩ bias resistors on ECGP and ECGN (no RLD electrode) */
    uint8_t fifo_threshold; /**< samples that raise EINT / INTB, 1..32 (EFIT + 1) */
} ecg_max30003_cfg_t;

/** Register values ::ecg_max30003_init writes (24-bit, in D[23:0]). */
typedef struct {
    uint32_t cnfg_gen, cnfg_cal, cnfg_emux, cnfg_ecg, mngr_int, en_int;
} ecg_max30003_regs_t;

/** Driver state. Caller-owned. */
typedef struct {
    ecg_max30003_xfer_fn xfer;
    void *ctx;
    uint8_t fifo_threshold;
    uint32_t cnfg_gen;        /**< CNFG_GEN as written by init (stop clears EN_ECG in it) */
    uint32_t status;          /**< last STATUS read */
    uint32_t samples;         /**< samples delivered */
    uint32_t overflows;       /**< FIFO overflows seen (each followed by FIFO_RST) */
    uint32_t spi_errors;      /**< failed transfers */
} ecg_max30003_t;

/** Result of one FIFO read. */
typedef struct {
    size_t n;         /**< int16 samples written */
    uint8_t overflow; /**< 1: the FIFO overflowed (samples were lost); it has been reset */
    uint8_t lead_off; /**< ::ecg_max30003_lead_off of the STATUS read with it */
} ecg_max30003_fifo_t;

/** @brief Defaults: 250 sps, 20 V/V, DHPF 0.5 Hz, DLPF 40 Hz, DC lead-off on, RBIAS on, 8 samples. */
void ecg_max30003_default_cfg(ecg_max30003_cfg_t *cfg);

/**
 * @brief The register values for `cfg` (pure; what ::ecg_max30003_init writes).
 * @return ECG_OK; ECG_ERR_NULL; ECG_ERR_RANGE (rate, gain, dlpf or fifo_threshold not allowed)
 */
ecg_err_t ecg_max30003_regs(const ecg_max30003_cfg_t *cfg, ecg_max30003_regs_t *out);

/**
 * @brief Encode one register transaction: `out[0]` = `reg << 1 | read`, `out[1..3]` = `value`
 *        big-endian (zeros for a read).
 */
void ecg_max30003_command(uint8_t reg, int read, uint32_t value, uint8_t out[4]);

/** @brief Lead-off mask for the device (bit 0 = lead 0 off) from a STATUS value. */
uint8_t ecg_max30003_lead_off(uint32_t status);

/**
 * @brief Decode one ECG_FIFO word (D[23:0]).
 * @param[out] count  the sample as int16 device counts (top 16 of 18 bits, rounded to nearest,
 *                    ties up, saturated); set only when the ETAG carries a sample (0..3)
 * @return the ETAG (ECG_MAX30003_ETAG_*)
 */
uint8_t ecg_max30003_decode(uint32_t word, int16_t *count);

/** @brief µV at the electrodes per int16 count at `gain_vv`: 4 * 1000 mV / (2^17 * gain) * 1000. */
float ecg_max30003_uv_per_count(uint8_t gain_vv);

/**
 * @brief Bind the SPI transfer; no bus traffic.
 * @return ECG_OK, ECG_ERR_NULL
 */
ecg_err_t ecg_max30003_bind(ecg_max30003_t *dev, ecg_max30003_xfer_fn xfer, void *ctx);

/** @brief Read a register (24-bit value in `*value`). */
ecg_err_t ecg_max30003_read_reg(ecg_max30003_t *dev, uint8_t reg, uint32_t *value);

/** @brief Write a register (D[23:0] of `value`). */
ecg_err_t ecg_max30003_write_reg(ecg_max30003_t *dev, uint8_t reg, uint32_t value);

/**
 * @brief Is a MAX30003 on the bus? Reads INFO and checks its fixed D[23:20] = 0101 pattern (a
 *        floating MISO reads all zeros or all ones).
 * @return ECG_OK when it answers, ECG_ERR_UNSUPPORTED when not, or the transfer's error
 */
ecg_err_t ecg_max30003_probe(ecg_max30003_t *dev);

/**
 * @brief Reset and configure the part (sequence in the file comment), ending with SYNCH: the FIFO
 *        fills from now on at `cfg->rate_hz`.
 * @return ECG_OK; ECG_ERR_RANGE for a bad `cfg`; a transfer error
 */
ecg_err_t ecg_max30003_init(ecg_max30003_t *dev, const ecg_max30003_cfg_t *cfg);

/**
 * @brief Stop sampling: CNFG_GEN with EN_ECG cleared (the part's low-power state between
 *        streams). ::ecg_max30003_init starts it again.
 */
ecg_err_t ecg_max30003_stop(ecg_max30003_t *dev);

/**
 * @brief Read STATUS, then burst-read up to `cap` FIFO words (at most the FIFO threshold, or
 *        ECG_MAX30003_FIFO_WORDS after an overflow) into `counts`, stopping at an empty word. On
 *        overflow (EOVF or an overflow ETAG) the FIFO is reset with FIFO_RST and
 *        `res->overflow` is set: samples were lost.
 * @return ECG_OK or a transfer error (nothing delivered then)
 */
ecg_err_t ecg_max30003_read_fifo(ecg_max30003_t *dev, int16_t *counts, size_t cap,
                                 ecg_max30003_fifo_t *res);

#ifdef __cplusplus
}
#endif

#endif /* ECG_MAX30003_H */

/*
 * Apollo3 port: the ecg_hal_t entries (ecg_hal.h rules).
 *
 *  - time_us: Arduino micros() (32-bit, wraps every 71.6 min) extended to 64 bits
 *    (ecg_time_extend; the device polls far more often than once per wrap).
 *  - critical sections: mbed's core_util_critical_section_enter/exit (PRIMASK, nesting counted),
 *    usable from the sampling thread and from interrupts.
 *  - sampling_*: the front end: afe_start/afe_stop (afe_apollo3.cpp) and ecg_afe_hal_set_rate
 *    (the rate check, ecg_afe.h).
 *  - write: NULL; main.cpp drains the queue to the link in use (ecg_port_link.h).
 *  - storage_*: three regions of the internal flash (port_config.h), 8 KB pages erased with
 *    am_hal_flash_page_erase and programmed in 32-bit words with am_hal_flash_program_main (the
 *    Ambiq HAL of the Arduino core). Writes at any offset/length: a partial word is padded with
 *    0xFF, which leaves the erased bits as they are (NOR: programming only clears bits); this
 *    assumes a word may be programmed twice when the second write only clears further bits. Flash
 *    operations run with interrupts off (code and ISRs execute from the flash being written); a
 *    page erase delays the sampling ticker, which then catches up (the ISR counts the ticks).
 *
 * Not verified here: nothing of this file is compiled in CI (no Arduino_Apollo3 core offline).
 */
#include <Arduino.h>
#include <string.h>

#include <am_mcu_apollo.h>
#include "ecg_port_util.h"
#include <mbed.h>
#include "port.h"

#define WORD_BYTES 4u

static ecg_time_ext_t s_clock;

static uint64_t hal_time_us(void *ctx)
{
    (void)ctx;
    return ecg_time_extend(&s_clock, (uint32_t)micros());
}

static void hal_critical_enter(void *ctx)
{
    (void)ctx;
    core_util_critical_section_enter();
}

static void hal_critical_exit(void *ctx)
{
    (void)ctx;
    core_util_critical_section_exit();
}

static int slot_region(ecg_hal_slot_t slot, uint32_t *addr, uint32_t *size)
{
    switch (slot) {
    case ECG_HAL_SLOT_HEAD_A: *addr = PORT_SLOT_HEAD_A_ADDR; *size = PORT_SLOT_HEAD_BYTES; return 1;
    case ECG_HAL_SLOT_HEAD_B: *addr = PORT_SLOT_HEAD_B_ADDR; *size = PORT_SLOT_HEAD_BYTES; return 1;
    case ECG_HAL_SLOT_LABELS: *addr = PORT_SLOT_LABELS_ADDR; *size = PORT_SLOT_LABELS_BYTES; return 1;
    default: return 0;
    }
}

/* The address of [offset, offset + len) in the slot; 0 when it does not fit (`*err` says why). */
static uint32_t slot_span(ecg_hal_slot_t slot, uint32_t offset, size_t len, ecg_err_t *err)
{
    uint32_t addr, size;
    if (!slot_region(slot, &addr, &size)) {
        *err = ECG_ERR_UNSUPPORTED;
        return 0u;
    }
    *err = ECG_ERR_RANGE;
    return (uint64_t)offset + len <= size ? addr + offset : 0u;
}

static uint32_t hal_storage_size(void *ctx, ecg_hal_slot_t slot)
{
    uint32_t addr, size;
    (void)ctx;
    return slot_region(slot, &addr, &size) ? size : 0u;
}

static ecg_err_t hal_storage_erase(void *ctx, ecg_hal_slot_t slot)
{
    uint32_t addr, size, a;
    int rc = 0;
    (void)ctx;
    if (!slot_region(slot, &addr, &size)) {
        return ECG_ERR_UNSUPPORTED;
    }
    for (a = addr; a < addr + size && rc == 0; a += AM_HAL_FLASH_PAGE_SIZE) {
        core_util_critical_section_enter();
        rc = am_hal_flash_page_erase(AM_HAL_FLASH_PROGRAM_KEY, AM_HAL_FLASH_ADDR2INST(a),
                                     AM_HAL_FLASH_ADDR2PAGE(a));
        core_util_critical_section_exit();
    }
    return rc == 0 ? ECG_OK : ECG_ERR_STATE;
}

static ecg_err_t hal_storage_write(void *ctx, ecg_hal_slot_t slot, uint32_t offset,
                                   const uint8_t *data, size_t len)
{
    ecg_err_t err;
    uint32_t addr = slot_span(slot, offset, len, &err);
    (void)ctx;
    if (addr == 0u) {
        return err;
    }
    while (len != 0u) {
        const uint32_t word_addr = addr & ~(WORD_BYTES - 1u);
        const uint32_t lead = addr - word_addr;
        const size_t take = len < WORD_BYTES - lead ? len : WORD_BYTES - lead;
        uint32_t word = 0xFFFFFFFFu;
        int rc;
        memcpy((uint8_t *)&word + lead, data, take); /* little-endian: byte i at address + i */
        core_util_critical_section_enter();
        rc = am_hal_flash_program_main(AM_HAL_FLASH_PROGRAM_KEY, &word, (uint32_t *)(uintptr_t)word_addr, 1);
        core_util_critical_section_exit();
        if (rc != 0) {
            return ECG_ERR_STATE;
        }
        addr += (uint32_t)take;
        data += take;
        len -= take;
    }
    return ECG_OK;
}

static ecg_err_t hal_storage_read(void *ctx, ecg_hal_slot_t slot, uint32_t offset, uint8_t *data,
                                  size_t len)
{
    ecg_err_t err;
    const uint32_t addr = slot_span(slot, offset, len, &err);
    (void)ctx;
    if (addr == 0u) {
        return err;
    }
    memcpy(data, (const void *)(uintptr_t)addr, len); /* flash is memory-mapped */
    return ECG_OK;
}

void hal_apollo3_init(ecg_hal_t *hal, ecg_afe_t *afe)
{
    /* in ecg_hal_t's declaration order; the assert stops the build if the struct changes */
    static_assert(sizeof(ecg_hal_t) == 12u * sizeof(void *), "ecg_hal_t changed: update the table");
    *hal = ecg_hal_t{afe, hal_time_us, NULL /* write: main.cpp drains the queue */,
                     afe_start, afe_stop, ecg_afe_hal_set_rate,
                     hal_critical_enter, hal_critical_exit,
                     hal_storage_size, hal_storage_erase, hal_storage_write, hal_storage_read};
}

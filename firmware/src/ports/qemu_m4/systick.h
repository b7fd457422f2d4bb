/**
 * @file systick.h
 * @brief SysTick as a free-running 24-bit tick counter on the core clock, polled (no interrupt).
 *
 * On QEMU's mps2-an386 the core clock (SysTick CLKSOURCE = 1) is 25 MHz, so one tick is 40 ns of
 * QEMU's virtual clock. Run with `-icount shift=0`, every guest instruction advances the virtual
 * clock by exactly 1 ns, so one tick = 40 guest instructions; tools/bench_firmware.py calibrates
 * this at run time with a block of a known number of instructions instead of assuming it.
 *
 * No wrap interrupt is used (it would add its own instructions to a measurement): an interval is
 * the modular difference of two readings, valid for intervals shorter than 2^24 ticks (0.67 s of
 * virtual time, 671 million instructions under `-icount shift=0`).
 */
#ifndef QEMU_M4_SYSTICK_H
#define QEMU_M4_SYSTICK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SYSTICK_RELOAD 0x00FFFFFFu
#define SYST_CVR_REG (*(volatile uint32_t *)0xE000E018u)

/** @brief Start SysTick free-running on the core clock, interrupt disabled. */
void systick_start(void);

/** @brief Current value of the down-counter (inline: one load, for tight measurements). */
static inline uint32_t systick_now(void)
{
    return SYST_CVR_REG;
}

/** @brief Ticks from reading `start` to reading `end` (intervals < 2^24 ticks). */
static inline uint32_t systick_elapsed(uint32_t start, uint32_t end)
{
    return (start - end) & SYSTICK_RELOAD;
}

#ifdef __cplusplus
}
#endif

#endif /* QEMU_M4_SYSTICK_H */

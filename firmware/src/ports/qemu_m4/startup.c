/*
 * Startup for QEMU's mps2-an386 (Cortex-M4F): vector table, reset handler, fault handlers.
 * See port.h for what the reset handler does and mps2_an386.ld for the memory map.
 */
#include <stdint.h>

#include "port.h"
#include "semihost.h"

/* Linker-script symbols (mps2_an386.ld). */
extern uint32_t __data_load__, __data_start__, __data_end__;
extern uint32_t __bss_start__, __bss_end__;
extern uint32_t __stack_limit__, __stack_top__;

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define CPACR_CP10_CP11_FULL ((3u << 20) | (3u << 22))
#define STACK_PAINT 0xA5A5A5A5u
#define NUM_IRQS 32u /* external interrupts wired on the MPS2 CMSDK images */

void Reset_Handler(void) __attribute__((noreturn));
void Default_Handler(void);
void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void HardFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("Default_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));

typedef void (*vector_t)(void);

/* Entry 0 is the initial main stack pointer; the core loads it and the reset vector at reset. */
__attribute__((section(".vectors"), used)) const vector_t g_vectors[16u + NUM_IRQS] = {
    (vector_t)(uintptr_t)&__stack_top__,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0,
    0,
    0,
    0,
    SVC_Handler,
    DebugMon_Handler,
    0,
    PendSV_Handler,
    SysTick_Handler,
    /* IRQ0..31: nothing is enabled; any stray interrupt lands in Default_Handler. */
    [16 ... 16u + NUM_IRQS - 1u] = Default_Handler,
};

void Reset_Handler(void)
{
    /* Volatile pointers keep GCC from turning these loops into memcpy/memset calls, which would
     * run before the C environment they depend on exists. */
    volatile uint32_t *dst;
    const volatile uint32_t *src;
    uint32_t sp;

    /* The FPU must be enabled before any floating-point instruction: -mfloat-abi=hard code may
     * use s-registers anywhere. */
    SCB_CPACR |= CPACR_CP10_CP11_FULL;
    __asm__ volatile("dsb\n\tisb" ::: "memory");

    for (src = &__data_load__, dst = &__data_start__; dst < &__data_end__;) {
        *dst++ = *src++;
    }
    for (dst = &__bss_start__; dst < &__bss_end__;) {
        *dst++ = 0u;
    }
    /* Paint the free stack below our own frame (with a margin) for port_stack_used(). */
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (dst = &__stack_limit__; (uintptr_t)dst < sp - 64u;) {
        *dst++ = STACK_PAINT;
    }

    semihost_exit((uint32_t)main());
}

uint32_t port_stack_size(void)
{
    return (uint32_t)((uintptr_t)&__stack_top__ - (uintptr_t)&__stack_limit__);
}

uint32_t port_stack_used(void)
{
    const volatile uint32_t *p = &__stack_limit__;
    while (p < &__stack_top__ && *p == STACK_PAINT) {
        p++;
    }
    return (uint32_t)((uintptr_t)&__stack_top__ - (uintptr_t)p);
}

static const char *const k_exc_names[16] = {
    "thread", "reset", "NMI", "HardFault", "MemManage", "BusFault", "UsageFault", "reserved",
    "reserved", "reserved", "reserved", "SVCall", "DebugMonitor", "reserved", "PendSV", "SysTick",
};

void Default_Handler(void)
{
    static char msg[80];
    const uint32_t exc = SCB_ICSR & 0x1FFu; /* VECTACTIVE */
    const uint32_t cfsr = SCB_CFSR;
    const char *name = exc < 16u ? k_exc_names[exc] : "IRQ";
    static const char hex[] = "0123456789abcdef";
    uint32_t i = 0u;
    int shift;
    const char *s;
    for (s = "qemu_m4: unexpected exception "; *s != '\0';) {
        msg[i++] = *s++;
    }
    for (s = name; *s != '\0' && i < 50u;) {
        msg[i++] = *s++;
    }
    for (s = " CFSR=0x"; *s != '\0';) {
        msg[i++] = *s++;
    }
    for (shift = 28; shift >= 0; shift -= 4) {
        msg[i++] = hex[(cfsr >> shift) & 0xFu];
    }
    msg[i++] = '\n';
    msg[i] = '\0';
    semihost_write0(msg);
    semihost_exit(PORT_EXIT_FAULT_BASE + (exc & 0x7Fu));
}

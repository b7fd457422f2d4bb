/*
 * Port glue of the device firmware for QEMU's mps2-an386: HAL entries, UART0 link with an RX
 * interrupt ring, SysTick time base, and the compiled-in excerpt played as the front end.
 * See hal_qemu.h for the design.
 */
#include "hal_qemu.h"

#include <string.h>

#include "uart.h"

#ifndef QEMU_DEVICE_NO_EXCERPT
#include "ecg_excerpt.h"
#endif

/* ---------------------------------------------------------------------------------------------
 * Registers
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    volatile uint32_t DATA;
    volatile uint32_t STATE;
    volatile uint32_t CTRL;
    volatile uint32_t INTSTATUS;
    volatile uint32_t BAUDDIV;
} hal_uart_regs_t;

#define UART ((hal_uart_regs_t *)UART0_BASE)
#define UART_STATE_TXFULL (1u << 0)
#define UART_STATE_RXFULL (1u << 1)
#define UART_STATE_RXOVR (1u << 3)
#define UART_CTRL_RXINTEN (1u << 3)
#define UART_INT_RX (1u << 1)
#define UART0_RX_IRQ 0u /* mps2-an386: UART0 RX on IRQ 0, TX on IRQ 1 */

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE (1u << 2)
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define SCB_ICSR_PENDSTSET (1u << 26)
#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)
#define NVIC_ISER0 (*(volatile uint32_t *)0xE000E100u)
#define NVIC_ISPR0 (*(volatile uint32_t *)0xE000E200u)

#define CORE_HZ MPS2_SYSCLK_HZ
#define TICKS_PER_MS (CORE_HZ / HAL_QEMU_TICK_HZ)  /* 25 000 */
#define TICKS_PER_US (CORE_HZ / 1000000u)          /* 25 */
#define N_VECTORS (16u + 32u)                      /* as startup.c's table */
#define RX_MASK (HAL_QEMU_RX_RING - 1u)

#if (HAL_QEMU_RX_RING & RX_MASK) != 0u
#error "HAL_QEMU_RX_RING must be a power of two"
#endif

/* ---------------------------------------------------------------------------------------------
 * State (all static: no heap)
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    ecg_device_t *dev;
    uint32_t crit_depth;   /* nesting of critical_enter */
    uint32_t crit_primask; /* PRIMASK before the outermost enter */
    uint16_t rate_hz;      /* configured sampling rate */
} hal_ctx_t;

static hal_ctx_t g_ctx;

/* RAM copy of the vector table (VTOR needs 256-byte alignment for 48 entries). */
static uint32_t g_vectors_ram[N_VECTORS] __attribute__((aligned(256)));

static volatile uint64_t g_ms;            /* milliseconds since hal_qemu_init */

static uint8_t g_rx_buf[HAL_QEMU_RX_RING];
static volatile uint32_t g_rx_head;        /* written by the ISR */
static volatile uint32_t g_rx_tail;        /* written by the main loop */
static volatile uint32_t g_rx_throttled;   /* ISR masked the RX interrupt: ring full */
static volatile uint32_t g_rx_check;       /* the RX handler was pended by software */

static volatile uint32_t g_fe_running;     /* front end plays */
#ifndef QEMU_DEVICE_NO_EXCERPT
static uint32_t g_fe_acc;                  /* rate accumulator, in 1/TICK_HZ sample units */
static uint32_t g_fe_pos;                  /* next excerpt sample */
#endif

static volatile hal_qemu_stats_t g_stats;

/* ---------------------------------------------------------------------------------------------
 * PRIMASK
 * ------------------------------------------------------------------------------------------- */

static inline uint32_t irq_save(void)
{
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    return primask;
}

static inline void irq_restore(uint32_t primask)
{
    __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
}

/* ---------------------------------------------------------------------------------------------
 * Interrupt handlers
 * ------------------------------------------------------------------------------------------- */

/* Front end: the excerpt at the configured rate, one SysTick (1 ms) at a time. */
static void frontend_tick(void)
{
#ifndef QEMU_DEVICE_NO_EXCERPT
    int16_t s[(1000u + HAL_QEMU_TICK_HZ - 1u) / HAL_QEMU_TICK_HZ + 1u];
    uint32_t n = 0u;
    size_t took;
    if (!g_fe_running || g_ctx.dev == NULL) {
        return;
    }
    g_fe_acc += g_ctx.rate_hz;
    while (g_fe_acc >= HAL_QEMU_TICK_HZ && n < sizeof s / sizeof s[0]) {
        g_fe_acc -= HAL_QEMU_TICK_HZ;
        s[n++] = (int16_t)((int32_t)ecg_excerpt_counts[g_fe_pos] - ECG_EXCERPT_BASELINE);
        g_fe_pos = g_fe_pos + 1u < ECG_EXCERPT_N ? g_fe_pos + 1u : 0u;
    }
    if (n != 0u) {
        took = ecg_device_push_samples(g_ctx.dev, s, n);
        g_stats.fe_pushed += (uint32_t)took;
        g_stats.fe_lost += n - (uint32_t)took;
    }
#endif
}

void SysTick_Handler(void)
{
    g_ms++;
    frontend_tick();
}

/* UART0 RX: one byte per interrupt. QEMU offers the next byte only after DATA is read (its
 * model has a one-byte buffer), asynchronously, and raises the interrupt again for it; the
 * interrupt flag is cleared before DATA is read so that this is never missed. Every register
 * access costs QEMU a trip through its global lock, so a raised interrupt, which guarantees a
 * byte is there, is served with two accesses; STATE is only checked when the handler was pended
 * by software (g_rx_check) and may find nothing. */
static void uart0_rx_handler(void)
{
    uint32_t head;
    uint32_t next;
    UART->INTSTATUS = UART_INT_RX;
    if (g_rx_check) {
        const uint32_t st = UART->STATE;
        g_rx_check = 0u;
        if (st & UART_STATE_RXOVR) {
            UART->STATE = UART_STATE_RXOVR;
            g_stats.rx_overruns++;
        }
        if ((st & UART_STATE_RXFULL) == 0u) {
            return;
        }
    }
    head = g_rx_head;
    next = (head + 1u) & RX_MASK;
    if (next == g_rx_tail) {
        /* Ring full: leave the byte in the UART and stop listening until the main loop has made
         * room; QEMU holds the following bytes meanwhile. */
        UART->CTRL &= ~UART_CTRL_RXINTEN;
        g_rx_throttled = 1u;
        g_stats.rx_throttled++;
        return;
    }
    g_rx_buf[head] = (uint8_t)UART->DATA;
    g_rx_head = next;
    g_stats.rx_bytes++;
}

/* ---------------------------------------------------------------------------------------------
 * HAL entries
 * ------------------------------------------------------------------------------------------- */

static uint64_t hal_time_us(void *ctx)
{
    uint64_t ms;
    uint32_t cvr;
    const uint32_t primask = irq_save();
    (void)ctx;
    ms = g_ms;
    cvr = SYST_CVR;
    if (SCB_ICSR & SCB_ICSR_PENDSTSET) {
        /* The counter wrapped and its interrupt waits (we hold PRIMASK, or it fired between the
         * two reads): read again, past the wrap, and count the millisecond it has not yet. */
        cvr = SYST_CVR;
        ms++;
    }
    irq_restore(primask);
    return ms * 1000u + (uint64_t)((TICKS_PER_MS - 1u - cvr) / TICKS_PER_US);
}

static size_t hal_write(void *ctx, const uint8_t *data, size_t len)
{
    size_t i;
    (void)ctx;
    for (i = 0; i < len; i++) {
        if (UART->STATE & UART_STATE_TXFULL) {
            break; /* the host is not reading: take the rest later */
        }
        UART->DATA = data[i];
    }
    return i;
}

static ecg_err_t hal_sampling_start(void *ctx)
{
    hal_ctx_t *c = (hal_ctx_t *)ctx;
#ifdef QEMU_DEVICE_NO_EXCERPT
    (void)c;
    return ECG_ERR_UNSUPPORTED; /* injection-only build */
#else
    uint32_t primask;
    if ((float)c->rate_hz != ECG_EXCERPT_FS_HZ) {
        return ECG_ERR_UNSUPPORTED; /* the excerpt plays at its own rate only */
    }
    primask = irq_save();
    g_fe_pos = 0u;
    g_fe_acc = 0u;
    g_fe_running = 1u;
    irq_restore(primask);
    return ECG_OK;
#endif
}

static void hal_sampling_stop(void *ctx)
{
    (void)ctx;
    g_fe_running = 0u;
}

static ecg_err_t hal_sampling_set_rate(void *ctx, uint16_t rate_hz)
{
    /* Every table rate is accepted: injection runs at any of them; the front end checks its
     * own rate when it starts. */
    ((hal_ctx_t *)ctx)->rate_hz = rate_hz;
    return ECG_OK;
}

static void hal_critical_enter(void *ctx)
{
    hal_ctx_t *c = (hal_ctx_t *)ctx;
    const uint32_t primask = irq_save();
    if (c->crit_depth++ == 0u) {
        c->crit_primask = primask;
    }
}

static void hal_critical_exit(void *ctx)
{
    hal_ctx_t *c = (hal_ctx_t *)ctx;
    if (c->crit_depth != 0u && --c->crit_depth == 0u) {
        irq_restore(c->crit_primask);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Port API
 * ------------------------------------------------------------------------------------------- */

void hal_qemu_init(ecg_hal_t *hal, ecg_device_t *dev)
{
    const volatile uint32_t *flash_vectors = (const volatile uint32_t *)SCB_VTOR;
    uint32_t i;

    __asm__ volatile("cpsid i" ::: "memory");
    g_ctx.dev = dev;
    g_ctx.crit_depth = 0u;
    g_ctx.rate_hz = 0u;

    /* vector table in RAM, with the UART0 RX handler; SysTick_Handler overrides startup.c's
     * weak alias and is copied along */
    for (i = 0; i < N_VECTORS; i++) {
        g_vectors_ram[i] = flash_vectors[i];
    }
    g_vectors_ram[16u + UART0_RX_IRQ] = (uint32_t)(uintptr_t)uart0_rx_handler;
    SCB_VTOR = (uint32_t)(uintptr_t)g_vectors_ram;
    __asm__ volatile("dsb\n\tisb" ::: "memory");

    /* SysTick: 1 ms period on the core clock, with its interrupt */
    SYST_CSR = 0u;
    SYST_RVR = TICKS_PER_MS - 1u;
    SYST_CVR = 0u;
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE;

    /* UART0: 115200 8N1 (QEMU does not pace it), RX interrupt on */
    uart_init(115200u);
    UART->CTRL |= UART_CTRL_RXINTEN;
    NVIC_ISER0 = 1u << UART0_RX_IRQ;
    /* A byte the host sent early may have arrived between uart_init enabling RX and the
     * interrupt enable: it raised no interrupt, and QEMU offers no further byte while it waits.
     * Pend the handler once so it reads it (the handler checks RXFULL). */
    g_rx_check = 1u;
    NVIC_ISPR0 = 1u << UART0_RX_IRQ;

    hal->ctx = &g_ctx;
    hal->time_us = hal_time_us;
    hal->write = hal_write;
    hal->sampling_start = hal_sampling_start;
    hal->sampling_stop = hal_sampling_stop;
    hal->sampling_set_rate = hal_sampling_set_rate;
    hal->critical_enter = hal_critical_enter;
    hal->critical_exit = hal_critical_exit;
    hal_qemu_storage(hal);
    __asm__ volatile("cpsie i" ::: "memory");
}

size_t hal_qemu_rx(uint8_t *buf, size_t cap)
{
    uint32_t tail = g_rx_tail;
    const uint32_t head = g_rx_head;
    size_t n = 0;
    while (tail != head && n < cap) {
        buf[n++] = g_rx_buf[tail];
        tail = (tail + 1u) & RX_MASK;
    }
    __asm__ volatile("" ::: "memory"); /* bytes copied before the slot is released */
    g_rx_tail = tail;
    if (g_rx_throttled && n != 0u) {
        const uint32_t primask = irq_save();
        g_rx_throttled = 0u;
        UART->CTRL |= UART_CTRL_RXINTEN;
        g_rx_check = 1u;
        NVIC_ISPR0 = 1u << UART0_RX_IRQ; /* the byte left waiting raised no interrupt */
        irq_restore(primask);
    }
    return n;
}

uint32_t hal_qemu_ticks(void)
{
    return (uint32_t)g_ms; /* the low word: an atomic read */
}

int hal_qemu_tx_busy(void)
{
    return (UART->STATE & UART_STATE_TXFULL) != 0u;
}

void hal_qemu_idle(void)
{
    const uint32_t primask = irq_save();
    if (g_rx_head == g_rx_tail) {
        /* WFI wakes on a pending interrupt even with PRIMASK set; it is taken on restore. */
        __asm__ volatile("dsb\n\twfi" ::: "memory");
    }
    irq_restore(primask);
}

void hal_qemu_get_stats(hal_qemu_stats_t *out)
{
    const uint32_t primask = irq_save();
    out->rx_bytes = g_stats.rx_bytes;
    out->rx_throttled = g_stats.rx_throttled;
    out->rx_overruns = g_stats.rx_overruns;
    out->fe_pushed = g_stats.fe_pushed;
    out->fe_lost = g_stats.fe_lost;
    irq_restore(primask);
}

/* ---------------------------------------------------------------------------------------------
 * Storage slots (ecg_hal.h storage_*): a RAM region in .noinit, so the slots survive a device
 * re-init and a QEMU system_reset within one run (a cold boot finds RAM zeroed: no guard, the
 * region is formatted as erased).
 * ------------------------------------------------------------------------------------------- */

#define STORAGE_GUARD 0x45434753u /* "SGCE": the region holds slots */
static const uint32_t g_slot_bytes[3] = {HAL_QEMU_SLOT_HEAD_BYTES, HAL_QEMU_SLOT_HEAD_BYTES,
                                         HAL_QEMU_SLOT_LABELS_BYTES};

static struct {
    uint32_t guard;
    uint8_t head_a[HAL_QEMU_SLOT_HEAD_BYTES];
    uint8_t head_b[HAL_QEMU_SLOT_HEAD_BYTES];
    uint8_t labels[HAL_QEMU_SLOT_LABELS_BYTES];
} g_storage __attribute__((section(".noinit")));

/* Slot i's bytes; each slot has its own size (g_slot_bytes), the region is not padded to the
 * largest. */
static uint8_t *const g_slot[3] = {g_storage.head_a, g_storage.head_b, g_storage.labels};

static uint32_t hal_storage_size(void *ctx, ecg_hal_slot_t slot)
{
    (void)ctx;
    return (unsigned)slot < 3u ? g_slot_bytes[slot] : 0u;
}

static ecg_err_t hal_storage_erase(void *ctx, ecg_hal_slot_t slot)
{
    (void)ctx;
    if ((unsigned)slot >= 3u) {
        return ECG_ERR_RANGE;
    }
    memset(g_slot[slot], 0xFF, g_slot_bytes[slot]);
    return ECG_OK;
}

static ecg_err_t hal_storage_write(void *ctx, ecg_hal_slot_t slot, uint32_t offset,
                                   const uint8_t *data, size_t len)
{
    (void)ctx;
    if ((unsigned)slot >= 3u || offset > g_slot_bytes[slot] ||
        len > g_slot_bytes[slot] - offset) {
        return ECG_ERR_RANGE;
    }
    memcpy(&g_slot[slot][offset], data, len);
    return ECG_OK;
}

static ecg_err_t hal_storage_read(void *ctx, ecg_hal_slot_t slot, uint32_t offset, uint8_t *data,
                                  size_t len)
{
    (void)ctx;
    if ((unsigned)slot >= 3u || offset > g_slot_bytes[slot] ||
        len > g_slot_bytes[slot] - offset) {
        return ECG_ERR_RANGE;
    }
    memcpy(data, &g_slot[slot][offset], len);
    return ECG_OK;
}

void hal_qemu_storage(ecg_hal_t *hal)
{
    if (g_storage.guard != STORAGE_GUARD) {
        memset(g_storage.head_a, 0xFF, sizeof g_storage.head_a);
        memset(g_storage.head_b, 0xFF, sizeof g_storage.head_b);
        memset(g_storage.labels, 0xFF, sizeof g_storage.labels);
        g_storage.guard = STORAGE_GUARD;
    }
    hal->storage_size = hal_storage_size;
    hal->storage_erase = hal_storage_erase;
    hal->storage_write = hal_storage_write;
    hal->storage_read = hal_storage_read;
}

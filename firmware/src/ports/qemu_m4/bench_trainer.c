/*
 * µ-trainer pass of bench.elf (called by bench_main.c after the classifier pass): the cost of
 * ecg_trainer_train on a 5-minute label set, and the trained bytes for the host comparison.
 *
 * Label set: BENCH_TRN_BEATS = 600 beats, all labelled (five minutes at 120 bpm; MIT-BIH's
 * busiest first five minutes, record 215, hold 568 beats). Embeddings are the toy beats of
 * tests/c/test_trainer.c (class c lights up inputs 3c..3c+2, noise from the same LCG), classes
 * round robin: the training loop's work does not depend on the values (no data-dependent
 * branch but exp's underflow cut-off), so the count is that of any 600 labelled beats.
 *
 * Output keys (tools/bench_firmware.py, trainer_metrics / profile_trainer):
 *   trn_beats, trn_iterations, trn_sizeof_state, trn_ticks (one timed training, SysTick at one
 *   tick per 40 instructions under -icount shift=0), trn_ticks_empty (the same call path with
 *   nothing to do: an untrained ring gives ECG_ERR_STATE at once), trn_head (hex of the tables
 *   trained on the 600 beats), trn_toy_head (hex of the tables for tests/c/test_trainer.c's
 *   60-beat reference set, seed 4242). One more untimed training runs between the
 *   bench_trn_profile_begin/end markers for the instruction-profile plugin.
 */
#include <stdint.h>

#include "ecg/ecg_classifier.h"
#include "ecg/ecg_trainer.h"
#include "systick.h"
#include "uart.h"

#define BENCH_TRN_BEATS 600u

void bench_trainer(void);

__attribute__((noinline, used)) void bench_trn_profile_begin(void)
{
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline, used)) void bench_trn_profile_end(void)
{
    __asm__ volatile("nop" ::: "memory");
}

static ecg_trainer_t g_trn;
static ecg_classifier_head_tables_t g_trn_out;
static uint32_t g_trn_scratch[(ECG_CLASSIFIER_SCRATCH_BYTES + 3u) / 4u];
static ecg_classifier_t g_trn_clf;
static uint32_t g_trn_rng;

static uint32_t trn_rnd(void)
{
    g_trn_rng = g_trn_rng * 1664525u + 1013904223u;
    return g_trn_rng >> 8;
}

/* tests/c/test_trainer.c toy_embedding + fill_toy (labelled) */
static int trn_fill(uint32_t seed, uint32_t n)
{
    int8_t e[ECG_CLASSIFIER_EMBEDDING_LEN];
    ecg_trainer_cfg_t cfg;
    uint32_t k, i;
    ecg_trainer_default_cfg(&cfg);
    if (ecg_trainer_init(&g_trn, &cfg) != ECG_OK) {
        return -1;
    }
    g_trn_rng = seed;
    for (k = 0; k < n; k++) {
        const uint32_t c = k % ECG_CLASSIFIER_N_CLASSES;
        for (i = 0; i < ECG_CLASSIFIER_EMBEDDING_LEN; i++) {
            const int32_t noise = (int32_t)(trn_rnd() % 20u);
            e[i] = (int8_t)(i / 3u == c ? 30 + noise : -128 + noise);
        }
        if (ecg_trainer_add_beat(&g_trn, 1000u + 100u * k, e) != ECG_OK ||
            ecg_trainer_label(&g_trn, 1000u + 100u * k, (uint8_t)c) != ECG_OK) {
            return -1;
        }
    }
    return 0;
}

static void put_tables(const char *key)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *b = (const unsigned char *)&g_trn_out;
    uint32_t k;
    uart_puts(key);
    uart_putc('=');
    for (k = 0; k < sizeof g_trn_out; k++) {
        uart_putc(hex[b[k] >> 4]);
        uart_putc(hex[b[k] & 15u]);
    }
    uart_putc('\n');
}

static void kv(const char *key, uint32_t v)
{
    uart_puts(key);
    uart_putc('=');
    uart_put_u32(v);
    uart_putc('\n');
}

void bench_trainer(void)
{
    ecg_classifier_cfg_t cfg;
    const ecg_classifier_head_t *start;
    uint32_t t0, t_empty, t_train;
    ecg_err_t err;
    cfg.scratch = g_trn_scratch;
    cfg.scratch_bytes = sizeof g_trn_scratch;
    cfg.head = NULL;
    if (ecg_classifier_init(&g_trn_clf, &cfg) != ECG_OK ||
        (start = ecg_classifier_factory_head(&g_trn_clf)) == NULL) {
        uart_puts("trn_error=classifier\n");
        return;
    }
    /* empty call path: no label -> ECG_ERR_STATE after the argument checks */
    if (trn_fill(1u, 0u) != 0) {
        uart_puts("trn_error=init\n");
        return;
    }
    t0 = systick_now();
    (void)ecg_trainer_train(&g_trn, start, &g_trn_out);
    t_empty = systick_elapsed(t0, systick_now());
    if (trn_fill(2026u, BENCH_TRN_BEATS) != 0) {
        uart_puts("trn_error=fill\n");
        return;
    }
    t0 = systick_now();
    err = ecg_trainer_train(&g_trn, start, &g_trn_out);
    t_train = systick_elapsed(t0, systick_now());
    if (err != ECG_OK) {
        uart_puts("trn_error=train\n");
        return;
    }
    kv("trn_beats", ecg_trainer_labelled(&g_trn));
    kv("trn_iterations", g_trn.cfg.iterations);
    kv("trn_sizeof_state", (uint32_t)sizeof(ecg_trainer_t));
    kv("trn_ticks", t_train);
    kv("trn_ticks_empty", t_empty);
    put_tables("trn_head");
    bench_trn_profile_begin();
    (void)ecg_trainer_train(&g_trn, start, &g_trn_out);
    bench_trn_profile_end();
    if (trn_fill(4242u, 60u) != 0 || ecg_trainer_train(&g_trn, start, &g_trn_out) != ECG_OK) {
        uart_puts("trn_error=toy\n");
        return;
    }
    put_tables("trn_toy_head");
}

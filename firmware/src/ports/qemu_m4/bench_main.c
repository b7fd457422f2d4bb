/*
 * Bench firmware for the QEMU Cortex-M4 port: runs the signal core (ecg_filter_process on blocks, then
 * ecg_qrs_step) over an ECG excerpt compiled into the image and measures its cost.
 *
 * Measurement (tools/bench_firmware.py runs this under `qemu-system-arm -icount shift=0`, where
 * every guest instruction advances the virtual clock by exactly 1 ns and SysTick counts that
 * clock at 25 MHz, i.e. one tick per 40 instructions):
 *   - calibration: a block of exactly 1 + 1000 * 1002 = 1,002,001 instructions (1000 NOPs in an
 *     inline-assembly loop run 1000 times) minus an empty call, giving instructions per tick;
 *   - three passes over the excerpt, each from freshly reset state and each a noinline loop of
 *     the same shape: `empty` (convert the count to mV and store it), `filter` (also
 *     ecg_filter_process on 32-sample blocks) and `both` (also ecg_qrs_step). filter = filter - empty,
 *     QRS = both - filter, filter + QRS = both - empty, so the loop harness cancels out;
 *   - a fourth pass timing each sample of `both` separately, for the worst single sample
 *     (resolution one tick, i.e. 40 instructions);
 *   - a fifth, untimed `both` pass between calls of bench_profile_begin/bench_profile_end, the
 *     markers of the optional instruction-profile plugin (qemu_plugin/insn_profile.c), which
 *     counts instructions exactly per address and so per function.
 * The beats of the `both` pass (plus ecg_qrs_flush at the end) are printed for comparison with
 * ecgedge.core.QrsDetector on the same samples. Then the int8 beat classifier (ecg_classifier) on
 * the sample beats compiled with its model: self-test against TFLM's outputs and instructions per
 * beat (`clf_*` keys, see bench_classifier()), and the beat features on the device's sample
 * path (`feat_*` keys, see bench_beatfeat()).
 *
 * UART0 output, one `key=value` or `beat INDEX QUALITY SEARCHBACK` per line, ends with `end`;
 * the image then waits for one byte from the host (bounded) before it exits.
 * Exit code (semihosting): 0 success, 1 core init failed, 3 beat buffer overflow.
 */
#include <stdint.h>
#include <string.h>

#include "ecg/ecg_beatfeat.h"
#include "ecg/ecg_classifier.h"
#include "ecg/ecg_filter.h"
#include "ecg/ecg_qrs.h"
#include "ecg_excerpt.h"
#include "port.h"
#include "semihost.h"
#include "systick.h"
#include "uart.h"

#ifndef BENCH_MAINS_HZ
#define BENCH_MAINS_HZ 60u /* MIT-BIH was recorded in the USA */
#endif
#ifndef BENCH_VARIANT
#define BENCH_VARIANT "unknown"
#endif
#define MAX_BEATS 400u
#define ACK_POLL_LIMIT 100000000u /* give up waiting for the host's acknowledgement */
#define CAL_INSTRUCTIONS 1002001u /* 1 (movw) + 1000 * (1000 nop + subs + bne) */

static ecg_filter_t g_filter;
static ecg_qrs_t g_qrs;
/* The `both` pass's beats (printed before the classifier benches run), then the beat features'
 * state of bench_beatfeat(): one static block for both keeps the image in its RAM budget. */
static union {
    ecg_qrs_beat_t beats[MAX_BEATS];
    ecg_beatfeat_t feat;
} g_mem;
#define g_beats g_mem.beats
static uint32_t g_nbeats;
static uint32_t g_overflow;
volatile float g_sink; /* keeps each pass's result observable */

static inline float sample_mv(uint32_t i)
{
    return (float)((int32_t)ecg_excerpt_counts[i] - ECG_EXCERPT_BASELINE) / ECG_EXCERPT_GAIN;
}

static void record_beat(const ecg_qrs_beat_t *b)
{
    if (g_nbeats < MAX_BEATS) {
        g_beats[g_nbeats++] = *b;
    } else {
        g_overflow = 1u;
    }
}

static int setup(void)
{
    ecg_filter_cfg_t fcfg;
    ecg_qrs_cfg_t qcfg;
    ecg_filter_default_cfg(&fcfg, ECG_EXCERPT_FS_HZ);
    fcfg.mains_hz = BENCH_MAINS_HZ;
    if (ecg_filter_init(&g_filter, &fcfg) != ECG_OK) {
        return -1;
    }
    ecg_qrs_default_cfg(&qcfg, ECG_EXCERPT_FS_HZ);
    qcfg.filter_delay_samples = ecg_filter_delay_samples(&g_filter);
    return ecg_qrs_init(&g_qrs, &qcfg) == ECG_OK ? 0 : -1;
}

static void reset_state(void)
{
    ecg_filter_reset(&g_filter);
    ecg_qrs_reset(&g_qrs);
    g_nbeats = 0u;
    g_overflow = 0u;
}

/* ------------------------------------------------------------------ measured loops */

/* The device filters the blocks its front end delivers (BLOCK samples), then runs the detector
 * per sample; all three passes share that shape so that their differences isolate the core. */
#define BLOCK 32u
static float g_block[BLOCK];

static uint32_t load_block(uint32_t i, uint32_t n)
{
    uint32_t k, len = n - i < BLOCK ? n - i : BLOCK;
    for (k = 0; k < len; k++) {
        g_block[k] = sample_mv(i + k);
    }
    return len;
}

__attribute__((noinline)) static void pass_empty(uint32_t n)
{
    uint32_t i, k, len;
    for (i = 0; i < n; i += len) {
        len = load_block(i, n);
        for (k = 0; k < len; k++) {
            g_sink = g_block[k];
        }
    }
}

__attribute__((noinline)) static void pass_filter(uint32_t n)
{
    uint32_t i, k, len;
    for (i = 0; i < n; i += len) {
        len = load_block(i, n);
        ecg_filter_process(&g_filter, g_block, g_block, len);
        for (k = 0; k < len; k++) {
            g_sink = g_block[k];
        }
    }
}

__attribute__((noinline)) static void pass_both(uint32_t n)
{
    uint32_t i, k, len;
    for (i = 0; i < n; i += len) {
        ecg_qrs_beat_t beats[BLOCK];
        size_t nb;
        len = load_block(i, n);
        ecg_filter_process(&g_filter, g_block, g_block, len);
        for (k = 0; k < len; k++) {
            g_sink = g_block[k];
        }
        nb = ecg_qrs_process(&g_qrs, g_block, len, beats);
        for (k = 0; k < nb; k++) {
            record_beat(&beats[k]);
        }
    }
}

/* Worst single sample: each sample timed on its own (one-tick resolution). */
__attribute__((noinline)) static uint32_t pass_both_max(uint32_t n, uint32_t *at, uint32_t *ref)
{
    uint32_t i, worst = 0u, floor_ticks = 0u;
    for (i = 0; i < n; i++) {
        ecg_qrs_beat_t beat;
        uint32_t t0 = systick_now(), t1, d;
        const float y = ecg_filter_step(&g_filter, sample_mv(i));
        g_sink = y;
        if (ecg_qrs_step(&g_qrs, y, &beat)) {
            record_beat(&beat);
        }
        t1 = systick_now();
        d = systick_elapsed(t0, t1);
        if (d > worst) {
            worst = d;
            *at = i;
        }
        /* the same pair of reads around nothing, for the harness floor */
        t0 = systick_now();
        t1 = systick_now();
        d = systick_elapsed(t0, t1);
        if (d > floor_ticks) {
            floor_ticks = d;
        }
    }
    *ref = floor_ticks;
    return worst;
}

/* Markers for the instruction-profile plugin (qemu_plugin/insn_profile.c): it counts every
 * instruction executed between a call of the first and a call of the second. Not static, so
 * their addresses are in the symbol table; `used` and the asm keep them as distinct functions. */
__attribute__((noinline, used)) void bench_profile_begin(void)
{
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline, used)) void bench_profile_end(void)
{
    __asm__ volatile("nop" ::: "memory");
}

/* The same markers for the classifier round of bench_classifier(). */
__attribute__((noinline, used)) void bench_clf_profile_begin(void)
{
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline, used)) void bench_clf_profile_end(void)
{
    __asm__ volatile("nop" ::: "memory");
}

__attribute__((noinline)) static void cal_empty(void)
{
    __asm__ volatile("" ::: "memory");
}

/* Exactly CAL_INSTRUCTIONS instructions between entry and the return. */
__attribute__((noinline)) static void cal_block(void)
{
    __asm__ volatile("movw r0, #1000\n"
                     "1:\n"
                     ".rept 1000\n"
                     "nop\n"
                     ".endr\n"
                     "subs r0, r0, #1\n"
                     "bne 1b\n" ::
                         : "r0", "cc", "memory");
}

typedef void (*pass_fn)(uint32_t);

static uint32_t time_pass(pass_fn fn, uint32_t n)
{
    uint32_t t0, t1;
    reset_state();
    t0 = systick_now();
    fn(n);
    t1 = systick_now();
    return systick_elapsed(t0, t1);
}

static uint32_t time_call(void (*fn)(void))
{
    const uint32_t t0 = systick_now();
    uint32_t t1;
    fn();
    t1 = systick_now();
    return systick_elapsed(t0, t1);
}

/* ------------------------------------------------------------------ output */

static void kv_u32(const char *key, uint32_t v)
{
    uart_puts(key);
    uart_putc('=');
    uart_put_u32(v);
    uart_putc('\n');
}

static void kv_str(const char *key, const char *v)
{
    uart_puts(key);
    uart_putc('=');
    uart_puts(v);
    uart_putc('\n');
}

/* ------------------------------------------------------------------ beat classifier */

/* The int8 beat classifier (ecg_classifier) on the sample beats compiled with the model
 * (ecg_model_samples: real MIT-BIH beats with the outputs of the TFLM interpreter):
 *   - selftest: every sample's embedding and logits must equal TFLM's (bit-exact on target);
 *   - timed: CLF_REPS rounds over the samples, whole classifier (backbone + head) and the
 *     backbone alone, minus the same loop with no call; instructions per beat from the ticks. */
#define CLF_REPS 8u
static uint32_t g_clf_scratch[(ECG_CLASSIFIER_SCRATCH_BYTES + 3u) / 4u]; /* 4-byte aligned */
static ecg_classifier_t g_clf;
static int8_t g_clf_logits[ECG_CLASSIFIER_N_CLASSES];
static int8_t g_clf_emb[ECG_CLASSIFIER_EMBEDDING_LEN];

__attribute__((noinline)) static void clf_pass(uint32_t mode)
{
    uint32_t r, s;
    for (r = 0; r < CLF_REPS; r++) {
        for (s = 0; s < ECG_MODEL_N_SAMPLES; s++) {
            const ecg_model_sample_t *smp = &ecg_model_samples[s];
            if (mode == 1u) {
                (void)ecg_classifier_run(&g_clf, smp->window, smp->rr, g_clf_logits, g_clf_emb);
            } else if (mode == 2u) {
                (void)ecg_classifier_run(&g_clf, smp->window, smp->rr, NULL, g_clf_emb);
            } else {
                g_sink = (float)smp->window[0];
            }
        }
    }
}

void bench_trainer(void); /* bench_trainer.c */
void bench_alerts(const ecg_qrs_beat_t *beats, uint32_t n_beats, uint32_t n_samples,
                  uint32_t fs_hz, void (*kv)(const char *key, uint32_t v)); /* bench_alerts.c */

static void bench_classifier(void)
{
    ecg_classifier_cfg_t cfg;
    uint32_t t0, t_empty, t_full, t_backbone, s;
    int failed;
    cfg.scratch = g_clf_scratch;
    cfg.scratch_bytes = sizeof g_clf_scratch;
    cfg.head = NULL;
    if (ecg_classifier_init(&g_clf, &cfg) != ECG_OK) {
        uart_puts("clf_error=init\n");
        return;
    }
    failed = ecg_classifier_selftest(&g_clf);
    uart_puts("clf_model=");
    uart_puts(ECG_MODEL_ID);
    uart_putc(' ');
    uart_put_hex32(ECG_MODEL_ID_U32);
    uart_putc('\n');
    kv_u32("clf_samples", ECG_MODEL_N_SAMPLES);
    kv_u32("clf_selftest_failed", failed < 0 ? 0xFFFFFFFFu : (uint32_t)failed);
    kv_u32("clf_scratch_bytes", ECG_CLASSIFIER_SCRATCH_BYTES);
    kv_u32("clf_weights_bytes", ECG_MODEL_WEIGHTS_BYTES);
    kv_u32("clf_sizeof_state", (uint32_t)sizeof(ecg_classifier_t));
    kv_u32("clf_runs", CLF_REPS * ECG_MODEL_N_SAMPLES);
    t0 = systick_now();
    clf_pass(0u);
    t_empty = systick_elapsed(t0, systick_now());
    t0 = systick_now();
    clf_pass(1u);
    t_full = systick_elapsed(t0, systick_now());
    t0 = systick_now();
    clf_pass(2u);
    t_backbone = systick_elapsed(t0, systick_now());
    kv_u32("clf_ticks_empty", t_empty);
    kv_u32("clf_ticks_full", t_full);
    kv_u32("clf_ticks_backbone", t_backbone);
    for (s = 0; s < ECG_MODEL_N_SAMPLES; s++) { /* the last run's logits, per sample */
        uint32_t k;
        (void)ecg_classifier_run(&g_clf, ecg_model_samples[s].window, ecg_model_samples[s].rr,
                                 g_clf_logits, NULL);
        uart_puts("clf_logits ");
        for (k = 0; k < ECG_CLASSIFIER_N_CLASSES; k++) {
            uart_put_i32((int32_t)g_clf_logits[k]);
            uart_putc(k + 1u < ECG_CLASSIFIER_N_CLASSES ? ' ' : '\n');
        }
    }
    /* one untimed round between the classifier's profile markers (tools/bench_firmware.py
     * profile_classifier points the instruction-profile plugin at them) */
    bench_clf_profile_begin();
    for (s = 0; s < ECG_MODEL_N_SAMPLES; s++) {
        (void)ecg_classifier_run(&g_clf, ecg_model_samples[s].window, ecg_model_samples[s].rr,
                                 g_clf_logits, g_clf_emb);
    }
    bench_clf_profile_end();
}

/* ------------------------------------------------------------------ beat features */

/* ecg_beatfeat on the device's sample path (ecg_device.c): the `both` pass plus, per block,
 * ecg_beatfeat_push (mode 1), and also each beat added and the ready ones taken (mode 2), like
 * the device does before it runs the classifier. push = mode 1 - both (per sample), features =
 * mode 2 - mode 1 (per beat); the classifier's own cost is bench_classifier's. (Beats are counted
 * instead of recorded as `both` does: a few instructions per beat, 0.01 per sample.) */
#define g_feat g_mem.feat /* g_beats' storage, no longer needed (see g_mem) */
static ecg_beatfeat_beat_t g_feat_beat;
static uint32_t g_feat_mode, g_feat_in, g_feat_out;

__attribute__((noinline)) static void pass_feat(uint32_t n)
{
    uint32_t i, k, len;
    ecg_beatfeat_reset(&g_feat);
    for (i = 0; i < n; i += len) {
        ecg_qrs_beat_t beats[BLOCK];
        size_t nb;
        len = load_block(i, n);
        ecg_filter_process(&g_filter, g_block, g_block, len);
        for (k = 0; k < len; k++) {
            g_sink = g_block[k];
        }
        ecg_beatfeat_push(&g_feat, g_block, len);
        nb = ecg_qrs_process(&g_qrs, g_block, len, beats);
        for (k = 0; k < nb; k++) {
            g_feat_in++; /* counted, not stored: g_beats shares its memory with g_feat */
            if (g_feat_mode == 2u && ecg_beatfeat_add_beat(&g_feat, &beats[k]) == ECG_OK) {
                while (ecg_beatfeat_next(&g_feat, &g_feat_beat)) {
                    g_feat_out++;
                }
            }
        }
        if (g_feat_mode == 2u) {
            while (ecg_beatfeat_next(&g_feat, &g_feat_beat)) {
                g_feat_out++;
            }
        }
    }
}

static void bench_beatfeat(void)
{
    ecg_beatfeat_cfg_t cfg;
    uint32_t t_push, t_feat;
    ecg_beatfeat_default_cfg(&cfg, ECG_EXCERPT_FS_HZ, ecg_filter_delay_samples(&g_filter));
    if (ecg_beatfeat_init(&g_feat, &cfg) != ECG_OK) {
        uart_puts("feat_error=init\n");
        return;
    }
    g_feat_mode = 1u;
    t_push = time_pass(pass_feat, ECG_EXCERPT_N);
    g_feat_mode = 2u;
    g_feat_out = 0u;
    t_feat = time_pass(pass_feat, ECG_EXCERPT_N);
    kv_u32("feat_ticks_push", t_push);
    kv_u32("feat_ticks_beats", t_feat);
    kv_u32("feat_beats", g_feat_out); /* beats whose features came out during the pass */
    kv_u32("feat_sizeof_state", (uint32_t)sizeof(ecg_beatfeat_t));
}

int main(void)
{
    const uint32_t n = ECG_EXCERPT_N;
    uint32_t i, sum = 0u, bits, t_cal, t_cal0, t_empty, t_filter, t_both, worst, worst_at = 0u,
                worst_ref = 0u;
    ecg_qrs_beat_t beat;
    float delay;

    uart_init(115200u);
    systick_start();
    uart_puts("ecgedge qemu_m4 bench\n");
    kv_str("variant", BENCH_VARIANT);
    kv_str("record", ECG_EXCERPT_RECORD);
    kv_u32("start", ECG_EXCERPT_START);
    kv_u32("n", n);
    kv_u32("mains_hz", BENCH_MAINS_HZ);
    for (i = 0; i < n; i++) {
        sum += (uint32_t)(int32_t)ecg_excerpt_counts[i];
    }
    kv_u32("checksum", sum);

    if (setup() != 0) {
        uart_puts("error=core init failed\nend\n");
        return 1;
    }
    delay = ecg_filter_delay_samples(&g_filter);
    memcpy(&bits, &delay, sizeof bits);
    uart_puts("delay_bits=");
    uart_put_hex32(bits);
    uart_putc('\n');
    kv_u32("sizeof_filter", (uint32_t)sizeof(ecg_filter_t));
    kv_u32("sizeof_qrs", (uint32_t)sizeof(ecg_qrs_t));

    /* Calibration: instructions per SysTick tick. */
    t_cal0 = time_call(cal_empty);
    t_cal = time_call(cal_block);
    kv_u32("cal_instructions", CAL_INSTRUCTIONS);
    kv_u32("cal_ticks", t_cal);
    kv_u32("cal_ref_ticks", t_cal0);

    /* Passes; `both` last so its beats are the ones printed. */
    t_empty = time_pass(pass_empty, n);
    t_filter = time_pass(pass_filter, n);
    reset_state();
    worst = pass_both_max(n, &worst_at, &worst_ref);
    /* An untimed run of the `both` pass for the profile plugin (when QEMU loads it). */
    reset_state();
    bench_profile_begin();
    pass_both(n);
    bench_profile_end();
    t_both = time_pass(pass_both, n);
    kv_u32("ticks_empty", t_empty);
    kv_u32("ticks_filter", t_filter);
    kv_u32("ticks_both", t_both);
    kv_u32("max_ticks_both_sample", worst);
    kv_u32("max_ticks_at", worst_at);
    kv_u32("max_ticks_ref", worst_ref);

    while (ecg_qrs_flush(&g_qrs, &beat)) {
        record_beat(&beat);
    }
    for (i = 0; i < g_nbeats; i++) {
        uart_puts("beat ");
        uart_put_u64(g_beats[i].index);
        uart_putc(' ');
        uart_put_u32(g_beats[i].quality);
        uart_putc(' ');
        uart_put_u32(g_beats[i].searchback);
        uart_putc('\n');
    }
    kv_u32("beats", g_nbeats);
    bench_alerts(g_beats, g_nbeats, n, ECG_EXCERPT_FS_HZ, kv_u32); /* alr_* keys */
    bench_classifier();
    bench_beatfeat();
    bench_trainer(); /* bench_trainer.c: the µ-trainer (trn_* keys) */
    kv_u32("stack_used", port_stack_used());
    kv_u32("stack_size", port_stack_size());
    uart_puts("end\n");
    (void)uart_wait_byte(ACK_POLL_LIMIT); /* host acknowledges: it has read everything */
    semihost_write0("ecgedge qemu_m4 bench done\n");
    return g_overflow ? 3 : 0;
}

/*
 * Alert-engine pass of bench.elf (called by bench_main.c with the beats of its filter+QRS pass):
 * what ecg_alerts costs the device per beat (ecg_alerts_beat, from emit_beat) and per poll
 * (ecg_alerts_tick, once per ecg_device_poll, i.e. per batch of at most ECG_DEVICE_BATCH
 * instants).
 *
 * Beats: the detector's beats of the excerpt with their RR and quality, classes in a fixed
 * pattern that keeps the ectopy and VT rules busy (every 7th beat V, a run of 4 V beats every
 * 60 beats), replayed ALR_REPS times with the indices moved on by the excerpt's length so the
 * stream continues; the queue is never acknowledged, so it fills and its overflow policy runs
 * too. Every rule is enabled (defaults). The empty passes run the same loops without the call.
 *
 * Keys (tools/bench_firmware.py, alerts_metrics): alr_beats, alr_ticks_beats,
 * alr_ticks_beats_empty, alr_polls, alr_ticks_polls, alr_ticks_polls_empty, alr_sizeof_state,
 * alr_last_id (records the pass raised).
 */
#include <stdint.h>

#include "ecg/ecg_alerts.h"
#include "ecg/ecg_device.h"
#include "ecg/ecg_qrs.h"
#include "systick.h"
#include "uart.h"

#define ALR_REPS 4u

void bench_alerts(const ecg_qrs_beat_t *beats, uint32_t n_beats, uint32_t n_samples,
                  uint32_t fs_hz, void (*kv)(const char *key, uint32_t v));

static ecg_alerts_t g_alr;
static volatile uint32_t g_alr_sink;

static uint8_t pattern_class(uint32_t k)
{
    return (k % 60u) >= 56u || (k % 7u) == 6u ? 2u : 0u; /* V : N */
}

__attribute__((noinline)) static void alr_beats(const ecg_qrs_beat_t *beats, uint32_t n_beats,
                                                uint32_t n_samples, int call)
{
    uint32_t r, i, k = 0u;
    for (r = 0; r < ALR_REPS; r++) {
        for (i = 0; i < n_beats; i++, k++) {
            ecg_alerts_beat_t b;
            b.sample_index = (uint32_t)beats[i].index + r * n_samples;
            b.rr_samples = beats[i].rr_samples;
            b.beat_class = pattern_class(k);
            b.quality = beats[i].quality;
            b.flags = beats[i].searchback;
            if (call) {
                ecg_alerts_beat(&g_alr, &b, (uint64_t)b.sample_index * 1000u);
            } else {
                g_alr_sink = b.sample_index + b.beat_class;
            }
        }
    }
}

__attribute__((noinline)) static uint32_t alr_polls(uint32_t n_samples, int call)
{
    uint32_t r, i, polls = 0u;
    for (r = 0; r < ALR_REPS; r++) {
        for (i = 0; i < n_samples; i += ECG_DEVICE_BATCH, polls++) {
            const uint32_t index = i + r * n_samples;
            if (call) {
                ecg_alerts_tick(&g_alr, index, 0u, (uint64_t)index * 1000u);
            } else {
                g_alr_sink = index;
            }
        }
    }
    return polls;
}

void bench_alerts(const ecg_qrs_beat_t *beats, uint32_t n_beats, uint32_t n_samples,
                  uint32_t fs_hz, void (*kv)(const char *key, uint32_t v))
{
    ecg_alerts_cfg_t cfg;
    uint32_t t0, t_beats, t_beats0, t_polls, t_polls0, polls;
    ecg_alerts_default_cfg(&cfg);
    if (ecg_alerts_init(&g_alr, &cfg, fs_hz) != ECG_OK) {
        uart_puts("alr_error=init\n");
        return;
    }
    ecg_alerts_start(&g_alr, 0u, fs_hz);
    t0 = systick_now();
    alr_beats(beats, n_beats, n_samples, 0);
    t_beats0 = systick_elapsed(t0, systick_now());
    t0 = systick_now();
    alr_beats(beats, n_beats, n_samples, 1);
    t_beats = systick_elapsed(t0, systick_now());
    t0 = systick_now();
    (void)alr_polls(n_samples, 0);
    t_polls0 = systick_elapsed(t0, systick_now());
    t0 = systick_now();
    polls = alr_polls(n_samples, 1);
    t_polls = systick_elapsed(t0, systick_now());
    kv("alr_beats", ALR_REPS * n_beats);
    kv("alr_ticks_beats", t_beats);
    kv("alr_ticks_beats_empty", t_beats0);
    kv("alr_polls", polls);
    kv("alr_ticks_polls", t_polls);
    kv("alr_ticks_polls_empty", t_polls0);
    kv("alr_sizeof_state", (uint32_t)sizeof(ecg_alerts_t));
    kv("alr_last_id", ecg_alerts_queue(&g_alr)->next_id - 1u);
}

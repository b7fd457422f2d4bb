/**
 * @file ecg_trainer.h
 * @brief µ-trainer: on-device personalization of the beat classifier's head from labelled beats.
 *
 * The classifier (ecg_classifier.h) is a frozen backbone, beat -> ECG_CLASSIFIER_EMBEDDING_LEN
 * int8 embedding, and a replaceable head, one int8 fully connected layer embedding -> the
 * ECG_CLASSIFIER_N_CLASSES AAMI classes. The µ-trainer keeps the embeddings of the most recent
 * beats, takes class labels for some of them (e.g. from a clinician's review, pushed by the host),
 * and retrains the head only, starting from a given head (normally the factory head):
 *
 *  1. ::ecg_trainer_add_beat for every classified beat (sample index + embedding) into a ring of
 *     ECG_TRAINER_MAX_BEATS entries; when full, the oldest beat (and its label) is dropped;
 *  2. ::ecg_trainer_label attaches a class to a buffered beat, found by its sample index (see
 *     ::ecg_trainer_cfg_t::match_tolerance_samples);
 *  3. ::ecg_trainer_train fits the head to the labelled beats and writes new int8 tables, ready
 *     for ::ecg_classifier_head_from_tables + ::ecg_classifier_set_head (atomic switch).
 *
 * @par Training (::ecg_trainer_train)
 * Master weights are float32, initialised from the start head dequantized (W[o][i] =
 * weight_scale[o] * (q[o][i] + weights_offset), b[o] = embedding_scale * weight_scale[o] *
 * bias[o], weight_scale[o] = M[o] * logits_scale / embedding_scale with M[o] the real value of the
 * head's quantized multiplier). Inputs are the real embeddings x = embedding_scale * (e -
 * embedding_zero_point). The loss, over the labelled beats n with classes y_n, is
 *
 *     L(W, b) = sum_n a[y_n] * CE(softmax(W x_n + b), y_n)
 *               + (l2 / 2) * (|W - W_start|^2 + |b - b_start|^2)
 *     a[c]    = 1 / (n_c + balance_prior)      (n_c: labelled beats of class c)
 *
 * i.e. class-balanced cross entropy (each class weighs n_c / (n_c + balance_prior) <= 1 in total,
 * so a class with a handful of labels moves the head less than one with hundreds) and an L2 pull
 * towards the start head, so that few labels cannot wreck it. It is minimised by `iterations`
 * full-batch gradient steps with Nesterov momentum; the step is `step_scale` / L_max with L_max =
 * 0.5 * sum_n a[y_n] * (|x_n|^2 + 1) + l2, a bound of the loss's curvature (the softmax Hessian
 * is at most 1/2 in norm), so the step is stable whatever the embeddings and labels are. The
 * problem is convex: the result depends on the labelled set and the start head, not on the order
 * the beats arrived in (up to float rounding).
 *
 * @par Quantization of the result (as the model's head is quantized)
 * Per output channel, symmetric int8 weights: weight_scale[o] = max_i |W[o][i]| / 127 (the start
 * head's scale when the row is all zero), q = round(W / weight_scale) (half away from zero,
 * clamped to +-127); int32 bias = round(b / (embedding_scale * weight_scale[o])) (the float
 * product, as the TFLite converter computes it); multiplier = ::ecg_nn_quantize_multiplier of
 * (double)embedding_scale * (double)weight_scale[o] / (double)logits_scale (TFLM's double
 * expression). The logits scale and zero point are the start head's, kept: logits beyond its range
 * saturate at -128 / 127 (a saturated tie resolves to the lowest class, as any tie does).
 *
 * @par Determinism
 * The same buffered beats, labels, configuration and start head give the same output bytes on the
 * host (x86-64, `ecgedge.core.HeadTrainer`) and on the Cortex-M4F: float32 arithmetic only (plus
 * the double expression of the multiplier), every sum in a fixed order (beats oldest to newest,
 * then inputs 0..15, classes 0..4), no libm call whose result differs between libcs (exp and log
 * are fixed polynomials in ecg_trainer.c, rounding is done in integers; only the exact `frexp` of
 * ::ecg_nn_quantize_multiplier), no fused multiply-add: build with FP contraction off
 * (`-ffp-contract=off`, as firmware/qemu/Makefile and setup.py do). A target evaluating float in
 * higher precision (FLT_EVAL_METHOD != 0, e.g. x87) or flushing denormals may differ in the last
 * bits. tools/bench_firmware.py checks the QEMU Cortex-M4F's trained bytes against the host's.
 *
 * @par Memory and cost
 * No heap, no globals. The state (::ecg_trainer_t) holds the ring (21 bytes per beat: sample
 * index, embedding, label) and the float working set (~1.5 kB): `sizeof(ecg_trainer_t)` is
 * 17 528 bytes with the default ECG_TRAINER_MAX_BEATS = 768 (measured in tests/c/test_trainer.c).
 * ::ecg_trainer_add_beat and ::ecg_trainer_label are O(1) and O(log ECG_TRAINER_MAX_BEATS);
 * ::ecg_trainer_train costs O(iterations * labelled beats): on the Cortex-M4F (`-O2`), about
 * 1,590 instructions per labelled beat per iteration, i.e. 48.6 million for a 5-minute label set
 * of 600 beats with the default 50 iterations (0.76 s at 64 MHz), 528 bytes of stack and 2.9 kB
 * of code (`python tools/bench_firmware.py --variants o2`, key `trainer`; docs/benchmarks.md,
 * "µ-trainer personalization"). Training runs in the caller's context: call it outside the
 * per-sample path (e.g. from the main loop once the labels are in).
 */
#ifndef ECG_TRAINER_H
#define ECG_TRAINER_H

#include "ecg/ecg_classifier.h"
#include "ecg/ecg_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Beats the ring keeps: 5 minutes at up to 150 bpm (MIT-BIH's busiest first 5 minutes hold 568
 * beats, record 215). 21 bytes each; override at build time if needed. */
#ifndef ECG_TRAINER_MAX_BEATS
#define ECG_TRAINER_MAX_BEATS 768u
#endif

/** Label value of a buffered beat that has no label. */
#define ECG_TRAINER_UNLABELLED 0xFFu

/** Trainer configuration (::ecg_trainer_default_cfg gives the defaults quoted here). */
typedef struct {
    uint32_t iterations;     /**< full-batch gradient steps, 1..10000 (default 50) */
    float step_scale;        /**< step as a fraction of the stable step 1 / L_max, (0, 2]
                                  (default 1.0) */
    float momentum;          /**< Nesterov momentum, [0, 1) (default 0.9) */
    float l2;                /**< L2 pull towards the start head, >= 0 (default 1.0) */
    float balance_prior;     /**< class weight a[c] = 1 / (n_c + balance_prior), >= 0, > 0 when
                                  any class may have a single label (default 300) */
    uint32_t match_tolerance_samples; /**< ::ecg_trainer_label matches the buffered beat nearest
                                           to the given index within this many samples; 0: exact
                                           match only (default 0) */
} ecg_trainer_cfg_t;

/** Trainer state. Caller-owned; fields are private to ecg_trainer.c. */
typedef struct {
    ecg_trainer_cfg_t cfg;
    uint32_t first;          /* ring position of the oldest beat */
    uint32_t count;          /* beats in the ring */
    uint32_t n_labelled;     /* labelled beats in the ring */
    float last_loss;         /* loss after the last training, NaN-free; 0 before */
    uint32_t sample_index[ECG_TRAINER_MAX_BEATS];
    int8_t embedding[ECG_TRAINER_MAX_BEATS][ECG_CLASSIFIER_EMBEDDING_LEN];
    uint8_t label[ECG_TRAINER_MAX_BEATS];
    /* float working set of ecg_trainer_train: master weights, start, momentum, gradient */
    float w[ECG_CLASSIFIER_N_CLASSES][ECG_CLASSIFIER_EMBEDDING_LEN + 1u];
    float w0[ECG_CLASSIFIER_N_CLASSES][ECG_CLASSIFIER_EMBEDDING_LEN + 1u];
    float v[ECG_CLASSIFIER_N_CLASSES][ECG_CLASSIFIER_EMBEDDING_LEN + 1u];
    float g[ECG_CLASSIFIER_N_CLASSES][ECG_CLASSIFIER_EMBEDDING_LEN + 1u];
} ecg_trainer_t;

/**
 * @brief Fill a configuration with the defaults (tuned on MIT-BIH DS1, see docs/benchmarks.md).
 * @param[out] cfg  configuration (ignored when NULL)
 */
void ecg_trainer_default_cfg(ecg_trainer_cfg_t *cfg);

/**
 * @brief Initialise (or reset) a trainer: empty ring, no labels.
 * @param[out] t    state
 * @param[in]  cfg  configuration, copied
 * @return ECG_OK, ECG_ERR_NULL or ECG_ERR_RANGE (a field outside its documented range)
 */
ecg_err_t ecg_trainer_init(ecg_trainer_t *t, const ecg_trainer_cfg_t *cfg);

/**
 * @brief Buffer a classified beat's embedding (unlabelled); drops the oldest beat when full.
 * @param[in,out] t             state
 * @param[in]     sample_index  the beat's sample index; must be greater than the previous beat's
 *                              (re-initialise the trainer when the sample counter restarts)
 * @param[in]     embedding     `[ECG_CLASSIFIER_EMBEDDING_LEN]` int8, as ::ecg_classifier_run
 *                              gives it
 * @return ECG_OK, ECG_ERR_NULL or ECG_ERR_RANGE (index not increasing; nothing stored)
 */
ecg_err_t ecg_trainer_add_beat(ecg_trainer_t *t, uint32_t sample_index, const int8_t *embedding);

/**
 * @brief Label a buffered beat.
 *
 * The beat is the buffered one whose sample index is nearest to `sample_index` and at most
 * ::ecg_trainer_cfg_t::match_tolerance_samples away (equal distances: the earlier beat). A beat
 * labelled again takes the new class.
 * @param[in,out] t             state
 * @param[in]     sample_index  the beat's sample index
 * @param[in]     beat_class    an ::ecg_beat_class_t
 * @return ECG_OK, ECG_ERR_NULL, ECG_ERR_RANGE (class >= ECG_CLASSIFIER_N_CLASSES) or
 *         ECG_ERR_STATE (no buffered beat matches: never seen, or already dropped from the ring)
 */
ecg_err_t ecg_trainer_label(ecg_trainer_t *t, uint32_t sample_index, uint8_t beat_class);

/**
 * @brief Remove every label (the buffered beats stay).
 * @param[in,out] t  state (ignored when NULL)
 */
void ecg_trainer_clear_labels(ecg_trainer_t *t);

/** @brief Beats in the ring (0 when `t` is NULL). */
uint32_t ecg_trainer_count(const ecg_trainer_t *t);

/** @brief Labelled beats in the ring (0 when `t` is NULL). */
uint32_t ecg_trainer_labelled(const ecg_trainer_t *t);

/** @brief Loss (see the file documentation) at the end of the last successful training. */
float ecg_trainer_last_loss(const ecg_trainer_t *t);

/**
 * @brief Train a head on the labelled beats, starting from `start`.
 *
 * Bounded time: `iterations` passes over the labelled beats (see the file documentation). The
 * buffered beats and labels are left as they are, so training again with another start head or
 * configuration is possible.
 * @param[in,out] t      state (its float working set is overwritten)
 * @param[in]     start  the head to start from and pull towards (e.g.
 *                       ::ecg_classifier_factory_head); must pass ::ecg_classifier_check_head
 * @param[out]    out    the trained head's tables (::ecg_classifier_head_from_tables); written
 *                       only on success; may not be the tables `start` points to
 * @return ECG_OK, ECG_ERR_NULL, ECG_ERR_CONFIG (`start` rejected, or its multipliers give no
 *         usable weight scale), ECG_ERR_STATE (no labelled beat) or ECG_ERR_RANGE (the trained
 *         weights do not fit the quantization: a multiplier out of range)
 */
ecg_err_t ecg_trainer_train(ecg_trainer_t *t, const ecg_classifier_head_t *start,
                            ecg_classifier_head_tables_t *out);

#ifdef __cplusplus
}
#endif

#endif /* ECG_TRAINER_H */

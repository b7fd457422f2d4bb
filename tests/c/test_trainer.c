/*
 * Tests of the µ-trainer (firmware/src/core/ecg_trainer.c): the beat ring, labelling, and head
 * training on toy embeddings whose classes are separable by construction.
 *
 * Usage: test_trainer           (no arguments; tests/test_trainer.py builds it with every core
 *                                source under ASan/UBSan and runs it; `make -C tests/c trainer`)
 *
 * Expected values come from the construction of the toy problem (class c lights up embedding
 * inputs 3c..3c+2) and from the documented API (ranges, error codes, ring size), never from the
 * implementation. Prints one "ok"/"FAIL" line per test, then "N passed, M failed"; exits 0 only
 * when nothing failed. Plain C99, no framework.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ecg/ecg_classifier.h"
#include "ecg/ecg_trainer.h"

#include "check.h"

#define CHECK_ERR(expr, code) CHECK_EQ((int)(expr), (int)(code))

/* Large objects are static (the test's, not the core's: the core keeps no globals). */
static ecg_trainer_t g_t, g_t2;
static uint32_t g_scratch[ECG_CLASSIFIER_SCRATCH_BYTES / 4u + 1u];
static ecg_classifier_t g_clf;

static const ecg_classifier_head_t *factory(void)
{
    ecg_classifier_cfg_t cfg;
    cfg.scratch = g_scratch;
    cfg.scratch_bytes = sizeof(g_scratch);
    cfg.head = NULL;
    if (ecg_classifier_init(&g_clf, &cfg) != ECG_OK) {
        return NULL;
    }
    return ecg_classifier_factory_head(&g_clf);
}

/* Deterministic pseudo-random numbers (LCG). */
static uint32_t g_rng = 12345u;
static uint32_t rnd(void)
{
    g_rng = g_rng * 1664525u + 1013904223u;
    return g_rng >> 8;
}

/* A toy embedding of class c (0..4): inputs 3c..3c+2 high (real ~4), the rest low (real < 0.5),
 * with noise. The embedding zero point is -128, so -128 is real 0. */
static void toy_embedding(uint32_t c, int8_t *e)
{
    uint32_t i;
    for (i = 0; i < ECG_CLASSIFIER_EMBEDDING_LEN; i++) {
        const int32_t noise = (int32_t)(rnd() % 20u);
        e[i] = (int8_t)(i / 3u == c ? 30 + noise : -128 + noise);
    }
}

/* Fill the trainer with n toy beats (indices 1000, 1100, ...) labelled by class, round robin
 * over `n_classes` classes. */
static void fill_toy(ecg_trainer_t *t, uint32_t n, uint32_t n_classes, int label)
{
    int8_t e[ECG_CLASSIFIER_EMBEDDING_LEN];
    uint32_t k;
    for (k = 0; k < n; k++) {
        const uint32_t c = k % n_classes;
        toy_embedding(c, e);
        CHECK_ERR(ecg_trainer_add_beat(t, 1000u + 100u * k, e), ECG_OK);
        if (label) {
            CHECK_ERR(ecg_trainer_label(t, 1000u + 100u * k, (uint8_t)c), ECG_OK);
        }
    }
}

/* Fraction of fresh toy beats a head classifies right. */
static double toy_accuracy(const ecg_classifier_head_t *h, uint32_t n_classes)
{
    int8_t e[ECG_CLASSIFIER_EMBEDDING_LEN], logits[ECG_CLASSIFIER_N_CLASSES];
    uint32_t k, right = 0u, n = 500u;
    for (k = 0; k < n; k++) {
        const uint32_t c = k % n_classes;
        toy_embedding(c, e);
        if (ecg_classifier_run_head(h, e, logits) != ECG_OK) {
            return -1.0;
        }
        right += ecg_classifier_decide(h, logits).class_index == c;
    }
    return (double)right / (double)n;
}

static void test_default_cfg_is_accepted_and_each_field_is_range_checked(void)
{
    ecg_trainer_cfg_t cfg, bad;
    const float nan = 0.0f / 0.0f * 0.0f; /* NaN without math.h macros */
    ecg_trainer_default_cfg(&cfg);
    CHECK_ERR(ecg_trainer_init(&g_t, &cfg), ECG_OK);
    CHECK_ERR(ecg_trainer_init(NULL, &cfg), ECG_ERR_NULL);
    CHECK_ERR(ecg_trainer_init(&g_t, NULL), ECG_ERR_NULL);
    bad = cfg; bad.iterations = 0u;       CHECK_ERR(ecg_trainer_init(&g_t, &bad), ECG_ERR_RANGE);
    bad = cfg; bad.iterations = 10001u;   CHECK_ERR(ecg_trainer_init(&g_t, &bad), ECG_ERR_RANGE);
    bad = cfg; bad.iterations = 10000u;   CHECK_ERR(ecg_trainer_init(&g_t, &bad), ECG_OK);
    bad = cfg; bad.step_scale = 0.0f;     CHECK_ERR(ecg_trainer_init(&g_t, &bad), ECG_ERR_RANGE);
    bad = cfg; bad.step_scale = 2.01f;    CHECK_ERR(ecg_trainer_init(&g_t, &bad), ECG_ERR_RANGE);
    bad = cfg; bad.step_scale = nan;      CHECK_ERR(ecg_trainer_init(&g_t, &bad), ECG_ERR_RANGE);
    bad = cfg; bad.momentum = -0.1f;      CHECK_ERR(ecg_trainer_init(&g_t, &bad), ECG_ERR_RANGE);
    bad = cfg; bad.momentum = 1.0f;       CHECK_ERR(ecg_trainer_init(&g_t, &bad), ECG_ERR_RANGE);
    bad = cfg; bad.l2 = -1e-6f;           CHECK_ERR(ecg_trainer_init(&g_t, &bad), ECG_ERR_RANGE);
    bad = cfg; bad.l2 = nan;              CHECK_ERR(ecg_trainer_init(&g_t, &bad), ECG_ERR_RANGE);
    bad = cfg; bad.balance_prior = -1.0f; CHECK_ERR(ecg_trainer_init(&g_t, &bad), ECG_ERR_RANGE);
    bad = cfg; bad.balance_prior = nan;   CHECK_ERR(ecg_trainer_init(&g_t, &bad), ECG_ERR_RANGE);
    CHECK_EQ(ecg_trainer_count(&g_t), 0);
    CHECK_EQ(ecg_trainer_labelled(&g_t), 0);
}

static void test_add_beat_needs_increasing_indices_and_stores_nothing_otherwise(void)
{
    ecg_trainer_cfg_t cfg;
    int8_t e[ECG_CLASSIFIER_EMBEDDING_LEN] = {0};
    ecg_trainer_default_cfg(&cfg);
    CHECK_ERR(ecg_trainer_init(&g_t, &cfg), ECG_OK);
    CHECK_ERR(ecg_trainer_add_beat(&g_t, 500u, e), ECG_OK);
    CHECK_ERR(ecg_trainer_add_beat(&g_t, 500u, e), ECG_ERR_RANGE);
    CHECK_ERR(ecg_trainer_add_beat(&g_t, 499u, e), ECG_ERR_RANGE);
    CHECK_ERR(ecg_trainer_add_beat(&g_t, 501u, NULL), ECG_ERR_NULL);
    CHECK_ERR(ecg_trainer_add_beat(NULL, 501u, e), ECG_ERR_NULL);
    CHECK_EQ(ecg_trainer_count(&g_t), 1);
    CHECK_ERR(ecg_trainer_add_beat(&g_t, 501u, e), ECG_OK);
    CHECK_EQ(ecg_trainer_count(&g_t), 2);
}

static void test_labels_match_exactly_by_default_and_unknown_beats_give_a_state_error(void)
{
    ecg_trainer_cfg_t cfg;
    ecg_trainer_default_cfg(&cfg);
    CHECK_EQ(cfg.match_tolerance_samples, 0);
    CHECK_ERR(ecg_trainer_init(&g_t, &cfg), ECG_OK);
    CHECK_ERR(ecg_trainer_label(&g_t, 1000u, ECG_BEAT_N), ECG_ERR_STATE); /* empty ring */
    fill_toy(&g_t, 10u, 5u, 0);                                          /* 1000..1900 */
    CHECK_ERR(ecg_trainer_label(&g_t, 1000u, ECG_BEAT_V), ECG_OK);
    CHECK_ERR(ecg_trainer_label(&g_t, 1900u, ECG_BEAT_S), ECG_OK);
    CHECK_ERR(ecg_trainer_label(&g_t, 1001u, ECG_BEAT_V), ECG_ERR_STATE);
    CHECK_ERR(ecg_trainer_label(&g_t, 999u, ECG_BEAT_V), ECG_ERR_STATE);
    CHECK_ERR(ecg_trainer_label(&g_t, 1950u, ECG_BEAT_V), ECG_ERR_STATE);
    CHECK_ERR(ecg_trainer_label(&g_t, 0xFFFFFFFFu, ECG_BEAT_V), ECG_ERR_STATE);
    CHECK_ERR(ecg_trainer_label(&g_t, 1100u, ECG_CLASSIFIER_N_CLASSES), ECG_ERR_RANGE);
    CHECK_ERR(ecg_trainer_label(NULL, 1100u, ECG_BEAT_N), ECG_ERR_NULL);
    CHECK_EQ(ecg_trainer_labelled(&g_t), 2);
    CHECK_ERR(ecg_trainer_label(&g_t, 1000u, ECG_BEAT_N), ECG_OK); /* relabel: still 2 */
    CHECK_EQ(ecg_trainer_labelled(&g_t), 2);
    ecg_trainer_clear_labels(&g_t);
    CHECK_EQ(ecg_trainer_labelled(&g_t), 0);
    CHECK_EQ(ecg_trainer_count(&g_t), 10);
}

static void test_label_tolerance_takes_the_nearest_beat_and_the_earlier_one_on_a_tie(void)
{
    ecg_trainer_cfg_t cfg;
    ecg_trainer_default_cfg(&cfg);
    cfg.match_tolerance_samples = 50u;
    CHECK_ERR(ecg_trainer_init(&g_t, &cfg), ECG_OK);
    fill_toy(&g_t, 3u, 5u, 0); /* beats at 1000, 1100, 1200 */
    CHECK_ERR(ecg_trainer_label(&g_t, 950u, ECG_BEAT_V), ECG_OK);    /* -> 1000 (at 50) */
    CHECK_ERR(ecg_trainer_label(&g_t, 949u, ECG_BEAT_V), ECG_ERR_STATE);
    CHECK_ERR(ecg_trainer_label(&g_t, 1250u, ECG_BEAT_V), ECG_OK);   /* -> 1200 (at 50) */
    CHECK_ERR(ecg_trainer_label(&g_t, 1251u, ECG_BEAT_V), ECG_ERR_STATE);
    /* the widest tolerance matches any buffered beat, but never one of an empty ring */
    cfg.match_tolerance_samples = 0xFFFFFFFFu;
    CHECK_ERR(ecg_trainer_init(&g_t2, &cfg), ECG_OK);
    CHECK_ERR(ecg_trainer_label(&g_t2, 1000u, ECG_BEAT_V), ECG_ERR_STATE);
    CHECK_EQ(ecg_trainer_labelled(&g_t2), 0);
    CHECK_EQ(ecg_trainer_labelled(&g_t), 2);
    CHECK_ERR(ecg_trainer_label(&g_t, 1150u, ECG_BEAT_S), ECG_OK);   /* tie -> 1100 */
    CHECK_EQ(ecg_trainer_labelled(&g_t), 3);
    CHECK_ERR(ecg_trainer_label(&g_t, 1160u, ECG_BEAT_N), ECG_OK);   /* nearer 1200 */
    CHECK_EQ(ecg_trainer_labelled(&g_t), 3);
}

static void test_full_ring_drops_the_oldest_beat_with_its_label(void)
{
    ecg_trainer_cfg_t cfg;
    int8_t e[ECG_CLASSIFIER_EMBEDDING_LEN] = {0};
    uint32_t k;
    ecg_trainer_default_cfg(&cfg);
    CHECK_ERR(ecg_trainer_init(&g_t, &cfg), ECG_OK);
    for (k = 0; k < ECG_TRAINER_MAX_BEATS; k++) {
        CHECK_ERR(ecg_trainer_add_beat(&g_t, 10u * k, e), ECG_OK);
    }
    CHECK_EQ(ecg_trainer_count(&g_t), ECG_TRAINER_MAX_BEATS);
    CHECK_ERR(ecg_trainer_label(&g_t, 0u, ECG_BEAT_V), ECG_OK);
    CHECK_ERR(ecg_trainer_label(&g_t, 10u, ECG_BEAT_S), ECG_OK);
    CHECK_EQ(ecg_trainer_labelled(&g_t), 2);
    CHECK_ERR(ecg_trainer_add_beat(&g_t, 10u * ECG_TRAINER_MAX_BEATS, e), ECG_OK);
    CHECK_EQ(ecg_trainer_count(&g_t), ECG_TRAINER_MAX_BEATS);
    CHECK_EQ(ecg_trainer_labelled(&g_t), 1);                          /* beat 0 is gone */
    CHECK_ERR(ecg_trainer_label(&g_t, 0u, ECG_BEAT_V), ECG_ERR_STATE);
    CHECK_ERR(ecg_trainer_label(&g_t, 10u, ECG_BEAT_V), ECG_OK);
    CHECK_ERR(ecg_trainer_label(&g_t, 10u * ECG_TRAINER_MAX_BEATS, ECG_BEAT_N), ECG_OK);
    CHECK_EQ(ecg_trainer_labelled(&g_t), 2);
    /* wrap the ring fully once more: the lower-bound search must still find every beat */
    for (k = 1; k <= ECG_TRAINER_MAX_BEATS + 7u; k++) {
        CHECK_ERR(ecg_trainer_add_beat(&g_t, 10u * (ECG_TRAINER_MAX_BEATS + k), e), ECG_OK);
    }
    CHECK_EQ(ecg_trainer_labelled(&g_t), 0);
    for (k = 8; k <= ECG_TRAINER_MAX_BEATS + 7u; k += 97u) {
        CHECK_ERR(ecg_trainer_label(&g_t, 10u * (ECG_TRAINER_MAX_BEATS + k), ECG_BEAT_N), ECG_OK);
    }
    CHECK_ERR(ecg_trainer_label(&g_t, 10u * (ECG_TRAINER_MAX_BEATS + 7u), ECG_BEAT_N),
              ECG_ERR_STATE);
}

static void test_train_errors_no_labels_null_arguments_and_a_bad_start_head(void)
{
    ecg_trainer_cfg_t cfg;
    ecg_classifier_head_tables_t out;
    ecg_classifier_head_t bad;
    const ecg_classifier_head_t *start = factory();
    CHECK(start != NULL);
    ecg_trainer_default_cfg(&cfg);
    CHECK_ERR(ecg_trainer_init(&g_t, &cfg), ECG_OK);
    fill_toy(&g_t, 20u, 5u, 0);
    CHECK_ERR(ecg_trainer_train(&g_t, start, &out), ECG_ERR_STATE);
    CHECK_ERR(ecg_trainer_label(&g_t, 1000u, ECG_BEAT_N), ECG_OK);
    CHECK_ERR(ecg_trainer_train(NULL, start, &out), ECG_ERR_NULL);
    CHECK_ERR(ecg_trainer_train(&g_t, NULL, &out), ECG_ERR_NULL);
    CHECK_ERR(ecg_trainer_train(&g_t, start, NULL), ECG_ERR_NULL);
    bad = *start;
    bad.fc.in_len = 15u;
    CHECK_ERR(ecg_trainer_train(&g_t, &bad, &out), ECG_ERR_CONFIG);
    CHECK_ERR(ecg_trainer_train(&g_t, start, &out), ECG_OK);
}

static void test_trainer_learns_a_separable_toy_problem_from_the_factory_head(void)
{
    ecg_trainer_cfg_t cfg;
    ecg_classifier_head_tables_t out;
    ecg_classifier_head_t head;
    const ecg_classifier_head_t *start = factory();
    double before, after;
    ecg_trainer_default_cfg(&cfg);
    cfg.l2 = 0.01f;          /* the defaults pull hard towards the start head (tuned for */
    cfg.balance_prior = 5.0f; /* patients, whose factory head is mostly right): loosen it */
    cfg.iterations = 300u;
    CHECK_ERR(ecg_trainer_init(&g_t, &cfg), ECG_OK);
    fill_toy(&g_t, 300u, 5u, 1);
    CHECK_EQ(ecg_trainer_labelled(&g_t), 300);
    before = toy_accuracy(start, 5u);
    CHECK_ERR(ecg_trainer_train(&g_t, start, &out), ECG_OK);
    CHECK_ERR(ecg_classifier_head_from_tables(&head, &out, 7u), ECG_OK);
    CHECK_ERR(ecg_classifier_check_head(&head), ECG_OK);
    after = toy_accuracy(&head, 5u);
    printf("  toy accuracy: factory head %.3f, trained head %.3f, loss %.4f\n", before, after,
           (double)ecg_trainer_last_loss(&g_t));
    CHECK(before < 0.9); /* the toy problem is not the factory head's */
    CHECK(after >= 0.99);
}

static void test_training_is_deterministic_and_leaves_the_ring_and_labels_alone(void)
{
    ecg_trainer_cfg_t cfg;
    ecg_classifier_head_tables_t a, b;
    const ecg_classifier_head_t *start = factory();
    ecg_trainer_default_cfg(&cfg);
    memset(&a, 0x55, sizeof(a));
    memset(&b, 0xAA, sizeof(b)); /* padding bytes (none expected) would differ */
    g_rng = 99u;
    CHECK_ERR(ecg_trainer_init(&g_t, &cfg), ECG_OK);
    fill_toy(&g_t, 120u, 3u, 1);
    g_rng = 99u;
    CHECK_ERR(ecg_trainer_init(&g_t2, &cfg), ECG_OK);
    fill_toy(&g_t2, 120u, 3u, 1);
    CHECK_ERR(ecg_trainer_train(&g_t, start, &a), ECG_OK);
    CHECK_ERR(ecg_trainer_train(&g_t2, start, &b), ECG_OK);
    CHECK(memcmp(&a, &b, sizeof(a)) == 0);
    /* training again on the same state gives the same head */
    CHECK_ERR(ecg_trainer_train(&g_t, start, &b), ECG_OK);
    CHECK(memcmp(&a, &b, sizeof(a)) == 0);
    CHECK_EQ(ecg_trainer_labelled(&g_t), 120);
    CHECK_EQ(ecg_trainer_count(&g_t), 120);
}

static void test_strong_l2_keeps_the_start_head_within_one_step_of_quantization(void)
{
    ecg_trainer_cfg_t cfg;
    ecg_classifier_head_tables_t out, fac;
    const ecg_classifier_head_t *start = factory();
    uint32_t o, i;
    int worst = 0;
    CHECK_ERR(ecg_classifier_head_to_tables(start, &fac), ECG_OK);
    ecg_trainer_default_cfg(&cfg);
    cfg.l2 = 1.0e6f;
    CHECK_ERR(ecg_trainer_init(&g_t, &cfg), ECG_OK);
    fill_toy(&g_t, 50u, 5u, 1);
    CHECK_ERR(ecg_trainer_train(&g_t, start, &out), ECG_OK);
    for (o = 0; o < ECG_CLASSIFIER_N_CLASSES; o++) {
        for (i = 0; i < ECG_CLASSIFIER_EMBEDDING_LEN; i++) {
            const int d = out.weights[o][i] - fac.weights[o][i];
            worst = d < 0 ? (-d > worst ? -d : worst) : (d > worst ? d : worst);
        }
        /* same bias in real units, within a rounding step of the (possibly new) bias scale */
        CHECK(out.quant[o].multiplier > 0);
    }
    CHECK(worst <= 1);
    CHECK(out.logits_scale == fac.logits_scale);
    CHECK_EQ(out.logits_zero_point, fac.logits_zero_point);
}

static void test_few_labels_of_one_class_do_not_wreck_the_other_classes(void)
{
    /* 2 labelled beats of class 1 and nothing else: the trained head still classifies the other
     * toy classes as the factory head does on most beats (the L2 pull and the class weight
     * 2 / (2 + balance_prior) bound the change). */
    ecg_trainer_cfg_t cfg;
    ecg_classifier_head_tables_t out;
    ecg_classifier_head_t head;
    const ecg_classifier_head_t *start = factory();
    int8_t e[ECG_CLASSIFIER_EMBEDDING_LEN], l0[ECG_CLASSIFIER_N_CLASSES],
        l1[ECG_CLASSIFIER_N_CLASSES];
    uint32_t k, same = 0u;
    ecg_trainer_default_cfg(&cfg);
    CHECK_ERR(ecg_trainer_init(&g_t, &cfg), ECG_OK);
    fill_toy(&g_t, 10u, 5u, 0);
    CHECK_ERR(ecg_trainer_label(&g_t, 1100u, ECG_BEAT_S), ECG_OK); /* class-1 toy beats */
    CHECK_ERR(ecg_trainer_label(&g_t, 1600u, ECG_BEAT_S), ECG_OK);
    CHECK_ERR(ecg_trainer_train(&g_t, start, &out), ECG_OK);
    CHECK_ERR(ecg_classifier_head_from_tables(&head, &out, 1u), ECG_OK);
    for (k = 0; k < 400u; k++) {
        toy_embedding(k % 5u == 1u ? 0u : k % 5u, e);
        CHECK_ERR(ecg_classifier_run_head(start, e, l0), ECG_OK);
        CHECK_ERR(ecg_classifier_run_head(&head, e, l1), ECG_OK);
        same += ecg_classifier_decide(start, l0).class_index ==
                ecg_classifier_decide(&head, l1).class_index;
    }
    printf("  unchanged decisions on other classes: %u / 400\n", same);
    CHECK(same >= 360u);
}

/* The head trained on a fixed toy set, printed for tests/test_trainer.py, which trains the same
 * set through ecgedge.core.HeadTrainer (and tools/bench_firmware.py on the Cortex-M4) and
 * requires the same bytes. */
static void test_reference_toy_head_is_printed_for_the_binding_and_device_checks(void)
{
    ecg_trainer_cfg_t cfg;
    ecg_classifier_head_tables_t out;
    const unsigned char *b = (const unsigned char *)&out;
    uint32_t k;
    ecg_trainer_default_cfg(&cfg);
    g_rng = 4242u;
    CHECK_ERR(ecg_trainer_init(&g_t, &cfg), ECG_OK);
    fill_toy(&g_t, 60u, 5u, 1);
    CHECK_ERR(ecg_trainer_train(&g_t, factory(), &out), ECG_OK);
    printf("  toy head: ");
    for (k = 0; k < sizeof(out); k++) {
        printf("%02x", b[k]);
    }
    printf("\n");
}

static void test_state_size_is_reported(void)
{
    printf("  sizeof(ecg_trainer_t) = %u bytes (ECG_TRAINER_MAX_BEATS = %u)\n",
           (unsigned)sizeof(ecg_trainer_t), (unsigned)ECG_TRAINER_MAX_BEATS);
    /* 21 bytes per buffered beat plus under 2 kB of working set */
    CHECK(sizeof(ecg_trainer_t) <= 21u * ECG_TRAINER_MAX_BEATS + 2048u);
}

int main(void)
{
    RUN(test_default_cfg_is_accepted_and_each_field_is_range_checked);
    RUN(test_add_beat_needs_increasing_indices_and_stores_nothing_otherwise);
    RUN(test_labels_match_exactly_by_default_and_unknown_beats_give_a_state_error);
    RUN(test_label_tolerance_takes_the_nearest_beat_and_the_earlier_one_on_a_tie);
    RUN(test_full_ring_drops_the_oldest_beat_with_its_label);
    RUN(test_train_errors_no_labels_null_arguments_and_a_bad_start_head);
    RUN(test_trainer_learns_a_separable_toy_problem_from_the_factory_head);
    RUN(test_training_is_deterministic_and_leaves_the_ring_and_labels_alone);
    RUN(test_strong_l2_keeps_the_start_head_within_one_step_of_quantization);
    RUN(test_few_labels_of_one_class_do_not_wreck_the_other_classes);
    RUN(test_reference_toy_head_is_printed_for_the_binding_and_device_checks);
    RUN(test_state_size_is_reported);
    printf("%u passed, %u failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}

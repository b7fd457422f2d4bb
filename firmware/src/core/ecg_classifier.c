#include "ecg/ecg_classifier.h"

#include <math.h>
#include <string.h>

/* The logits are the AAMI classes of ecg_beat_class_t: a model with another class set must not
 * build silently against this API. */
typedef char ecg_classifier_classes_check[ECG_MODEL_N_CLASSES == 5u ? 1 : -1];

/* The model's own head over the generated tables (flash). Filled in the state at init rather than
 * kept as a const object: a const table of pointers would need load-time relocations on hosts that
 * build position-independent code, and the core keeps no writable global data. */
static void factory_head_fill(ecg_classifier_head_t *h)
{
    h->fc.batches = 1u;
    h->fc.in_len = (uint16_t)ECG_MODEL_EMBEDDING_LEN;
    h->fc.out_len = (uint16_t)ECG_MODEL_N_CLASSES;
    h->fc.per_channel = (uint16_t)ECG_MODEL_HEAD_PER_CHANNEL;
    h->fc.input_offset = -(ECG_MODEL_EMBEDDING_ZERO_POINT);
    h->fc.weights_offset = ECG_MODEL_HEAD_WEIGHTS_OFFSET;
    h->fc.output_offset = ECG_MODEL_LOGITS_ZERO_POINT;
    h->fc.act_min = ECG_MODEL_HEAD_ACT_MIN;
    h->fc.act_max = ECG_MODEL_HEAD_ACT_MAX;
    h->fc.weights = ECG_MODEL_HEAD_WEIGHTS;
    h->fc.bias = ECG_MODEL_HEAD_BIAS;
    h->fc.quant = ECG_MODEL_HEAD_QUANT;
    h->logits_scale = ECG_MODEL_LOGITS_SCALE;
    h->version = 0u;
}

const ecg_classifier_head_t *ecg_classifier_factory_head(const ecg_classifier_t *c)
{
    return c == NULL || c->head == NULL ? NULL : &c->factory;
}

static int quant_ok(const ecg_nn_quant_t *q)
{
    return q->multiplier >= 0 && q->shift >= -31 && q->shift <= 30;
}

ecg_err_t ecg_classifier_check_head(const ecg_classifier_head_t *head)
{
    const ecg_nn_fc_params_t *fc;
    uint32_t o, n_quant;
    if (head == NULL) {
        return ECG_ERR_NULL;
    }
    fc = &head->fc;
    if (fc->weights == NULL || fc->quant == NULL) {
        return ECG_ERR_NULL;
    }
    if (fc->batches != 1u || fc->in_len != ECG_CLASSIFIER_EMBEDDING_LEN ||
        fc->out_len != ECG_CLASSIFIER_N_CLASSES ||
        fc->input_offset != -(ECG_MODEL_EMBEDDING_ZERO_POINT) || fc->per_channel > 1u) {
        return ECG_ERR_CONFIG;
    }
    if (fc->output_offset < -128 || fc->output_offset > 127 || fc->act_min < -128 ||
        fc->act_max > 127 || fc->act_min > fc->act_max || fc->weights_offset < -255 ||
        fc->weights_offset > 255 || !(head->logits_scale > 0.0f)) {
        return ECG_ERR_CONFIG;
    }
    n_quant = fc->per_channel ? fc->out_len : 1u;
    for (o = 0; o < n_quant; o++) {
        if (!quant_ok(&fc->quant[o])) {
            return ECG_ERR_CONFIG;
        }
    }
    return ECG_OK;
}

ecg_err_t ecg_classifier_head_init(ecg_classifier_head_t *head, const int8_t *weights,
                                   const int32_t *bias, const ecg_nn_quant_t *quant,
                                   float logits_scale, int32_t logits_zero_point,
                                   uint32_t version)
{
    if (head == NULL || weights == NULL || quant == NULL) {
        return ECG_ERR_NULL;
    }
    head->fc.batches = 1u;
    head->fc.in_len = (uint16_t)ECG_CLASSIFIER_EMBEDDING_LEN;
    head->fc.out_len = (uint16_t)ECG_CLASSIFIER_N_CLASSES;
    head->fc.per_channel = 1u;
    head->fc.input_offset = -(ECG_MODEL_EMBEDDING_ZERO_POINT);
    head->fc.weights_offset = 0;
    head->fc.output_offset = logits_zero_point;
    head->fc.act_min = -128;
    head->fc.act_max = 127;
    head->fc.weights = weights;
    head->fc.bias = bias;
    head->fc.quant = quant;
    head->logits_scale = logits_scale;
    head->version = version;
    return ecg_classifier_check_head(head);
}

ecg_err_t ecg_classifier_head_from_tables(ecg_classifier_head_t *head,
                                          const ecg_classifier_head_tables_t *tables,
                                          uint32_t version)
{
    if (tables == NULL) {
        return ECG_ERR_NULL;
    }
    return ecg_classifier_head_init(head, &tables->weights[0][0], tables->bias, tables->quant,
                                    tables->logits_scale, tables->logits_zero_point, version);
}

ecg_err_t ecg_classifier_head_to_tables(const ecg_classifier_head_t *head,
                                        ecg_classifier_head_tables_t *tables)
{
    uint32_t o, i;
    const ecg_nn_fc_params_t *fc;
    if (head == NULL || tables == NULL || head->fc.weights == NULL || head->fc.quant == NULL) {
        return ECG_ERR_NULL;
    }
    fc = &head->fc;
    for (o = 0; o < ECG_CLASSIFIER_N_CLASSES; o++) {
        for (i = 0; i < ECG_CLASSIFIER_EMBEDDING_LEN; i++) {
            tables->weights[o][i] = fc->weights[o * ECG_CLASSIFIER_EMBEDDING_LEN + i];
        }
        tables->bias[o] = fc->bias != NULL ? fc->bias[o] : 0;
        tables->quant[o] = fc->quant[fc->per_channel ? o : 0u];
    }
    tables->logits_scale = head->logits_scale;
    tables->logits_zero_point = fc->output_offset;
    return ECG_OK;
}

ecg_err_t ecg_classifier_init(ecg_classifier_t *c, const ecg_classifier_cfg_t *cfg)
{
    const ecg_classifier_head_t *head;
    ecg_err_t err;
    if (c == NULL || cfg == NULL || cfg->scratch == NULL) {
        return ECG_ERR_NULL;
    }
    if (cfg->scratch_bytes < ECG_CLASSIFIER_SCRATCH_BYTES) {
        return ECG_ERR_RANGE;
    }
    if (((uintptr_t)cfg->scratch & (ECG_NN_ARENA_ALIGN - 1u)) != 0u) {
        return ECG_ERR_CONFIG;
    }
    factory_head_fill(&c->factory);
    head = cfg->head != NULL ? cfg->head : &c->factory;
    err = ecg_classifier_check_head(head);
    if (err != ECG_OK) {
        c->head = NULL;
        return err == ECG_ERR_NULL ? ECG_ERR_CONFIG : err;
    }
    c->scratch = (int8_t *)cfg->scratch;
    c->scratch_bytes = cfg->scratch_bytes;
    c->head = head;
    c->runs = 0u;
    return ECG_OK;
}

ecg_err_t ecg_classifier_set_head(ecg_classifier_t *c, const ecg_classifier_head_t *head)
{
    ecg_err_t err;
    if (c == NULL) {
        return ECG_ERR_NULL;
    }
    if (c->head == NULL) {
        return ECG_ERR_STATE; /* not initialised */
    }
    if (head == NULL) {
        head = &c->factory;
    }
    err = ecg_classifier_check_head(head);
    if (err != ECG_OK) {
        return err == ECG_ERR_NULL ? ECG_ERR_CONFIG : err;
    }
    c->head = head; /* one aligned pointer store: atomic on every 32-bit target */
    return ECG_OK;
}

const ecg_classifier_head_t *ecg_classifier_get_head(const ecg_classifier_t *c)
{
    return c == NULL ? NULL : c->head;
}

ecg_err_t ecg_classifier_run_head(const ecg_classifier_head_t *head, const int8_t *embedding,
                                  int8_t *logits)
{
    if (head == NULL || embedding == NULL || logits == NULL) {
        return ECG_ERR_NULL;
    }
    return ecg_nn_fully_connected_s8(&head->fc, embedding, logits);
}

ecg_err_t ecg_classifier_run(ecg_classifier_t *c, const int8_t *window, const int8_t *rr,
                             int8_t *logits, int8_t *embedding)
{
    const ecg_classifier_head_t *head;
    const int8_t *emb;
    ecg_err_t err;
    if (c == NULL || c->scratch == NULL || c->head == NULL || window == NULL || rr == NULL) {
        return ECG_ERR_NULL;
    }
    head = c->head; /* read once: a concurrent set_head applies from the next run */
    memmove(c->scratch + ECG_MODEL_WINDOW_OFFSET, window, ECG_CLASSIFIER_WINDOW_LEN);
    memmove(c->scratch + ECG_MODEL_RR_OFFSET, rr, ECG_CLASSIFIER_RR_LEN);
    err = ecg_model_run(c->scratch, c->scratch_bytes);
    if (err != ECG_OK) {
        return err;
    }
    emb = c->scratch + ECG_MODEL_EMBEDDING_OFFSET;
    if (logits != NULL) {
        err = ecg_nn_fully_connected_s8(&head->fc, emb, logits);
        if (err != ECG_OK) {
            return err;
        }
    }
    if (embedding != NULL) {
        memcpy(embedding, emb, ECG_CLASSIFIER_EMBEDDING_LEN);
    }
    c->runs++;
    return ECG_OK;
}

ecg_classifier_decision_t ecg_classifier_decide(const ecg_classifier_head_t *head,
                                                const int8_t *logits)
{
    ecg_classifier_decision_t d = {0u, 0u, 0.0f, 0.0f};
    int32_t best = -129, second = -129;
    uint32_t k;
    if (head == NULL || logits == NULL) {
        return d;
    }
    for (k = 0; k < ECG_CLASSIFIER_N_CLASSES; k++) {
        const int32_t v = logits[k];
        if (v > best) { /* strictly greater: ties keep the lowest index */
            second = best;
            best = v;
            d.class_index = (uint8_t)k;
        } else if (v > second) {
            second = v;
        }
    }
    d.margin_q = (uint8_t)(best - second);
    d.margin = (float)d.margin_q * head->logits_scale;
    d.confidence = 1.0f / (1.0f + expf(-d.margin));
    return d;
}

int ecg_classifier_selftest(ecg_classifier_t *c)
{
#if ECG_MODEL_N_SAMPLES > 0
    int failed = 0;
    uint32_t s;
    if (c == NULL || c->scratch == NULL || c->head == NULL) {
        return (int)ECG_ERR_NULL;
    }
    for (s = 0; s < ECG_MODEL_N_SAMPLES; s++) {
        const ecg_model_sample_t *smp = &ecg_model_samples[s];
        int8_t emb[ECG_CLASSIFIER_EMBEDDING_LEN];
        int8_t logits[ECG_CLASSIFIER_N_CLASSES];
        ecg_err_t err = ecg_classifier_run(c, smp->window, smp->rr, NULL, emb);
        if (err == ECG_OK) {
            err = ecg_classifier_run_head(&c->factory, emb, logits);
        }
        if (err != ECG_OK) {
            return (int)err;
        }
        if (memcmp(emb, smp->embedding, sizeof emb) != 0 ||
            memcmp(logits, smp->logits, sizeof logits) != 0) {
            failed++;
        }
    }
    return failed;
#else
    return c == NULL ? (int)ECG_ERR_NULL : 0;
#endif
}

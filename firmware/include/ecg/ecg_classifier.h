/**
 * @file ecg_classifier.h
 * @brief int8 beat classifier: the compiled transformer model (`ecg_model_data.h`) behind a small
 *        API, with a replaceable head for on-device personalization.
 *
 * Per beat the caller supplies the two int8 model inputs (see `ecgedge.beats`, the feature
 * specification, and the quantization in ecg_model_data.h):
 *  - `window`: ECG_CLASSIFIER_WINDOW_LEN values, the amplitude-normalised filtered ECG around the R
 *    peak, quantized with ECG_MODEL_WINDOW_SCALE / ECG_MODEL_WINDOW_ZERO_POINT;
 *  - `rr`: ECG_CLASSIFIER_RR_LEN RR-interval features, quantized with ECG_MODEL_RR_SCALE /
 *    ECG_MODEL_RR_ZERO_POINT.
 *
 * ::ecg_classifier_run computes, bit-exactly as the TFLite Micro reference interpreter does for
 * the `.tflite` file the tables were generated from:
 *  1. the backbone graph, window + rr -> `embedding` (ECG_CLASSIFIER_EMBEDDING_LEN int8 values,
 *     ECG_MODEL_EMBEDDING_SCALE / _ZERO_POINT), in the caller's scratch;
 *  2. the *head*, a fully connected layer embedding -> `logits` (ECG_CLASSIFIER_N_CLASSES int8
 *     values, classes ::ecg_beat_class_t), with the head currently installed.
 * The class is the argmax of the int8 logits, ties going to the lowest class index
 * (::ecg_classifier_decide).
 *
 * @par Personalization
 * The head is a separate ::ecg_classifier_head_t the state points to; the factory head is the
 * model's own, kept in the state (::ecg_classifier_factory_head). A retrained head (same
 * embedding, same classes)
 * is installed with ::ecg_classifier_set_head, which validates it and swaps one pointer: a run
 * reads the pointer once, so it finishes with the head it started with, and the new head applies
 * from the next run. The head's memory (struct and the tables it points to) must stay valid and
 * unchanged while it is installed and until a run that may have started with it has returned:
 * build the new head in a spare buffer, install it, and only then reuse the old one.
 * ::ecg_classifier_run_head recomputes logits from stored embeddings (e.g. to evaluate a
 * candidate head before installing it).
 *
 * @par Memory and cost
 * No heap, no globals. The state is a few dozen bytes; the inference scratch
 * (ECG_CLASSIFIER_SCRATCH_BYTES, 4-byte aligned) is the caller's and can be shared with other code
 * between runs. Weights and tables are `const` (flash).
 */
#ifndef ECG_CLASSIFIER_H
#define ECG_CLASSIFIER_H

#include "ecg/ecg_model_data.h"
#include "ecg/ecg_nn.h"
#include "ecg/ecg_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Inference scratch the caller provides, bytes (activations of the compiled graph). */
#define ECG_CLASSIFIER_SCRATCH_BYTES ECG_MODEL_ARENA_BYTES
/** int8 values of the `window` input. */
#define ECG_CLASSIFIER_WINDOW_LEN ECG_MODEL_WINDOW_LEN
/** int8 values of the `rr` input. */
#define ECG_CLASSIFIER_RR_LEN ECG_MODEL_RR_LEN
/** int8 values of the embedding (the head's input). */
#define ECG_CLASSIFIER_EMBEDDING_LEN ECG_MODEL_EMBEDDING_LEN
/** Classes, i.e. int8 logits. */
#define ECG_CLASSIFIER_N_CLASSES ECG_MODEL_N_CLASSES

/** AAMI beat classes, the order of the logits. */
typedef enum {
    ECG_BEAT_N = 0, /**< normal and bundle-branch-block beats (N L R e j) */
    ECG_BEAT_S = 1, /**< supraventricular ectopic (A a J S) */
    ECG_BEAT_V = 2, /**< ventricular ectopic (V E) */
    ECG_BEAT_F = 3, /**< fusion of ventricular and normal (F) */
    ECG_BEAT_Q = 4  /**< unknown / paced (/ f Q) */
} ecg_beat_class_t;

/**
 * The classifier head: one int8 fully connected layer, embedding -> logits.
 *
 * `fc.in_len` must be ECG_CLASSIFIER_EMBEDDING_LEN, `fc.out_len` ECG_CLASSIFIER_N_CLASSES,
 * `fc.batches` 1, and `fc.input_offset` the negative embedding zero point (the head reads the raw
 * embedding); see ::ecg_nn_fc_params_t for the arithmetic and ::ecg_classifier_head_init to fill
 * one from int8 weights, int32 biases and multipliers.
 */
typedef struct {
    ecg_nn_fc_params_t fc;  /**< the layer */
    float logits_scale;     /**< real logit = logits_scale * (q - fc.output_offset) */
    uint32_t version;       /**< the caller's tag (0: the factory head) */
} ecg_classifier_head_t;

/**
 * A head's tables in one block, owning its data: what a head package carries and what the
 * µ-trainer produces. ::ecg_classifier_head_from_tables points an ::ecg_classifier_head_t at it
 * (the block must then outlive the head, see the file documentation).
 */
typedef struct {
    int8_t weights[ECG_CLASSIFIER_N_CLASSES][ECG_CLASSIFIER_EMBEDDING_LEN]; /**< symmetric int8 */
    int32_t bias[ECG_CLASSIFIER_N_CLASSES];     /**< at embedding_scale * weight_scale[o] */
    ecg_nn_quant_t quant[ECG_CLASSIFIER_N_CLASSES]; /**< embedding_scale * weight_scale[o] /
                                                         logits_scale */
    float logits_scale;                          /**< scale of the int8 logits */
    int32_t logits_zero_point;                   /**< zero point of the int8 logits */
} ecg_classifier_head_tables_t;

/** Classifier configuration. */
typedef struct {
    void *scratch;          /**< caller-owned, >= ECG_CLASSIFIER_SCRATCH_BYTES bytes, aligned to
                                 ECG_NN_ARENA_ALIGN (e.g. a uint32_t array) */
    size_t scratch_bytes;   /**< size of `scratch` */
    const ecg_classifier_head_t *head; /**< initial head; NULL: the factory head */
} ecg_classifier_cfg_t;

/** Classifier state. Caller-owned; fields are private to ecg_classifier.c. */
typedef struct {
    int8_t *scratch;
    size_t scratch_bytes;
    const ecg_classifier_head_t *volatile head; /* swapped by ecg_classifier_set_head */
    ecg_classifier_head_t factory;              /* the model's head, over its flash tables */
    uint32_t runs;                              /* completed runs (wraps) */
} ecg_classifier_t;

/** What the logits say about one beat. */
typedef struct {
    uint8_t class_index;  /**< argmax of the int8 logits, ties -> lowest index (::ecg_beat_class_t) */
    uint8_t margin_q;     /**< top logit minus the runner-up, in int8 steps (0: a tie) */
    float margin;         /**< the same in real logit units: margin_q * logits_scale (nats) */
    float confidence;     /**< 1 / (1 + exp(-margin)), in [0.5, 1); see ::ecg_classifier_decide */
} ecg_classifier_decision_t;

/**
 * @brief The model's own head (its tables are in flash), the one the sample beats and the
 *        bit-exactness tests use; valid while the state is.
 * @return the head inside `c` (call after a successful ::ecg_classifier_init), or NULL
 */
const ecg_classifier_head_t *ecg_classifier_factory_head(const ecg_classifier_t *c);

/**
 * @brief Initialise a classifier.
 * @param[out] c    state
 * @param[in]  cfg  scratch and optional initial head
 * @return ECG_OK, ECG_ERR_NULL, ECG_ERR_RANGE (scratch smaller than
 *         ECG_CLASSIFIER_SCRATCH_BYTES) or ECG_ERR_CONFIG (scratch misaligned, or the head does not
 *         fit the model, see ::ecg_classifier_check_head)
 */
ecg_err_t ecg_classifier_init(ecg_classifier_t *c, const ecg_classifier_cfg_t *cfg);

/**
 * @brief Classify one beat: backbone, then the installed head.
 * @param[in,out] c          state (its scratch is overwritten)
 * @param[in]     window     `[ECG_CLASSIFIER_WINDOW_LEN]` int8 model input
 * @param[in]     rr         `[ECG_CLASSIFIER_RR_LEN]` int8 model input
 * @param[out]    logits     `[ECG_CLASSIFIER_N_CLASSES]`, or NULL to skip the head
 * @param[out]    embedding  `[ECG_CLASSIFIER_EMBEDDING_LEN]`, or NULL
 * @return ECG_OK or ECG_ERR_NULL (or a kernel's error, which a generated model never gives);
 *         on an error the outputs are not written
 */
ecg_err_t ecg_classifier_run(ecg_classifier_t *c, const int8_t *window, const int8_t *rr,
                             int8_t *logits, int8_t *embedding);

/**
 * @brief Apply a head to an embedding (no backbone).
 * @param[in]  head       a head that passes ::ecg_classifier_check_head
 * @param[in]  embedding  `[ECG_CLASSIFIER_EMBEDDING_LEN]`
 * @param[out] logits     `[ECG_CLASSIFIER_N_CLASSES]`
 * @return ECG_OK, ECG_ERR_NULL or ECG_ERR_CONFIG
 */
ecg_err_t ecg_classifier_run_head(const ecg_classifier_head_t *head, const int8_t *embedding,
                                  int8_t *logits);

/**
 * @brief Check that a head fits the model: dimensions, batches = 1, input offset = -embedding
 *        zero point, tables present, multipliers in range (>= 0, shift -31..30), clamp within int8.
 * @return ECG_OK, ECG_ERR_NULL or ECG_ERR_CONFIG
 */
ecg_err_t ecg_classifier_check_head(const ecg_classifier_head_t *head);

/**
 * @brief Fill a head from its tables (for a personalized head built on the device).
 * @param[out] head               the head; its `fc` points to the tables, which must outlive it
 * @param[in]  weights            `[ECG_CLASSIFIER_N_CLASSES][ECG_CLASSIFIER_EMBEDDING_LEN]` int8,
 *                                symmetric (zero point 0)
 * @param[in]  bias               `[ECG_CLASSIFIER_N_CLASSES]` int32 at scale embedding_scale *
 *                                weight_scale[o], or NULL
 * @param[in]  quant              `[ECG_CLASSIFIER_N_CLASSES]`: embedding_scale * weight_scale[o] /
 *                                logits_scale (::ecg_nn_quantize_multiplier)
 * @param[in]  logits_scale       scale of the int8 logits
 * @param[in]  logits_zero_point  zero point of the int8 logits, -128..127
 * @param[in]  version            the caller's tag
 * @return ECG_OK, ECG_ERR_NULL or ECG_ERR_CONFIG
 */
ecg_err_t ecg_classifier_head_init(ecg_classifier_head_t *head, const int8_t *weights,
                                   const int32_t *bias, const ecg_nn_quant_t *quant,
                                   float logits_scale, int32_t logits_zero_point,
                                   uint32_t version);

/**
 * @brief Fill a head from a tables block (::ecg_classifier_head_init on its fields).
 * @param[out] head     the head; points into `tables`
 * @param[in]  tables   the tables; must outlive the head
 * @param[in]  version  the caller's tag
 * @return ECG_OK, ECG_ERR_NULL or ECG_ERR_CONFIG
 */
ecg_err_t ecg_classifier_head_from_tables(ecg_classifier_head_t *head,
                                          const ecg_classifier_head_tables_t *tables,
                                          uint32_t version);

/**
 * @brief Copy a head's tables into a block (e.g. the factory head, as the µ-trainer's start).
 * @return ECG_OK or ECG_ERR_NULL
 */
ecg_err_t ecg_classifier_head_to_tables(const ecg_classifier_head_t *head,
                                        ecg_classifier_head_tables_t *tables);

/**
 * @brief Install a head atomically (one pointer store), effective from the next run.
 * @param[in,out] c     state
 * @param[in]     head  the new head, or NULL for the factory head; see the file documentation
 *                      for its lifetime
 * @return ECG_OK, ECG_ERR_NULL or ECG_ERR_CONFIG (the head was rejected, the old one stays)
 */
ecg_err_t ecg_classifier_set_head(ecg_classifier_t *c, const ecg_classifier_head_t *head);

/** @brief The head currently installed. */
const ecg_classifier_head_t *ecg_classifier_get_head(const ecg_classifier_t *c);

/**
 * @brief Class and confidence from int8 logits.
 *
 * The confidence needs no softmax over all classes: it is the logistic of the margin between the
 * two largest logits, i.e. the top class's probability in a two-way softmax against the
 * runner-up. It is an upper bound of the full softmax probability (exact for two classes), 0.5
 * for a tie, and monotonic in the margin, so a threshold on it is a threshold on the margin.
 * @param[in] head    the head that produced the logits (for its scale)
 * @param[in] logits  `[ECG_CLASSIFIER_N_CLASSES]`
 * @return the decision (all zero when an argument is NULL)
 */
ecg_classifier_decision_t ecg_classifier_decide(const ecg_classifier_head_t *head,
                                                const int8_t *logits);

/**
 * @brief Run the sample beats compiled with the model and compare with the outputs the TFLM
 *        interpreter gave for them (a power-on self-test of kernels and tables). Uses the factory
 *        head; leaves the installed head alone.
 * @param[in,out] c  state (scratch overwritten)
 * @return the number of samples whose embedding or logits differ (0: pass), or a negative
 *         ::ecg_err_t
 */
int ecg_classifier_selftest(ecg_classifier_t *c);

#ifdef __cplusplus
}
#endif

#endif /* ECG_CLASSIFIER_H */

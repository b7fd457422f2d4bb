/**
 * @file ecg_update.h
 * @brief Signed, versioned classifier-head and label packages, staged in A/B storage slots and
 *        switched atomically: updates that never brick the device (docs/protocol.md §11).
 *
 * A **package** is a 28-byte header, a payload and a 32-byte HMAC-SHA256 tag over header +
 * payload made with the per-device key (ecg_sha256.h). Header (little-endian, ::ecg_update_header_t):
 *
 *     magic u32 "ECGP" | format u8 (1) | kind u8 | flags u16 (0) | model_id u32 |
 *     embedding_len u16 | n_classes u16 | version u32 | payload_len u32 | payload_crc32 u32
 *
 * Kinds: HEAD, a new classifier head (payload: ::ecg_classifier_head_tables_t serialized
 * little-endian, ::ECG_UPDATE_HEAD_PAYLOAD_LEN bytes, ::ecg_update_pack_head); LABELS, class
 * labels of beats the device has seen (payload: (sample_index u32, class u8) records) for the
 * µ-trainer, which turns them into a new head on the device.
 *
 * **Transfer** (commands of the wire protocol, one RESPONSE each): PKG_BEGIN(header) opens a
 * transfer (checks model id, shape, version, length, erases the target slot, writes the header);
 * PKG_CHUNK(offset, <= ::ECG_UPDATE_CHUNK_MAX bytes) appends payload bytes, in order (an offset
 * other than the bytes received so far is ORDER, nothing taken; every answer carries the offset
 * expected next); PKG_COMMIT(tag) writes the tag, reads the whole package back from storage and
 * verifies it (length, CRC-32, HMAC, model id + shape, version, head validity), and only then
 * switches. PKG_ABORT, a new PKG_BEGIN, a link drop (::ecg_update_abort) or a reset discard a
 * transfer.
 *
 * **A/B slots and the atomic switch.** Heads live in storage slots ECG_HAL_SLOT_HEAD_A / _B, each
 *
 *     record (20 bytes) | header (28) | payload | tag (32)
 *
 * The record (::ECG_UPDATE_RECORD_LEN: magic "ECGS", sequence u32, state u8, 3 reserved, highest
 * accepted version u32, CRC-32 of the first 16 bytes) is the slot selector: at init the slot whose
 * record is valid and has the higher sequence (serial-number arithmetic) is active, provided its
 * package verifies again; otherwise the other slot, otherwise the factory head. A new head is
 * written into the *inactive* slot (erase, header, payload, tag), verified from storage, and the
 * record, sequence + 1, is written last. Power lost at any point leaves either a slot without a
 * valid record (erased, or a torn record that fails its CRC) — the old head stays — or the complete
 * new record — the new head is active. The active slot is never written while it is active.
 * RESET_PERSONALIZATION is authenticated like a package: its payload (::ECG_UPDATE_RESET_LEN) is
 * version u32 | tag, tag = HMAC-SHA256(key, ::ECG_UPDATE_RESET_DOMAIN | model_id u32 | version
 * u32), and the version must exceed every version accepted before (AUTH, REPLAY, LENGTH
 * otherwise, nothing touched). It then writes a record of state FACTORY (no package) carrying that
 * version into the inactive slot the same way. The record carries the highest version ever
 * accepted, so a replayed older or equal version (package or reset) is refused (REPLAY) across
 * resets and factory resets alike.
 *
 * LABELS packages are staged in ECG_HAL_SLOT_LABELS (header | payload | tag, no record) and
 * verified the same way; then the labels go to the trainer (::ecg_update_trainer_t), which trains
 * from the factory head, and the resulting tables are written as a HEAD package (signed by the
 * device with its own key, version = the labels package's) and switched to like a pushed head.
 *
 * Rejections (PKG_* and RESET answers) never touch the active slot or the installed head.
 *
 * Memory: ::ecg_update_t is 624 bytes on x86-64 (tests/c/test_update.c prints it; two head-table buffers, so the installed head stays
 * valid while the next one is built, see ecg_classifier.h). No heap, no globals.
 */
#ifndef ECG_UPDATE_H
#define ECG_UPDATE_H

#include <stddef.h>
#include <stdint.h>

#include "ecg/ecg_classifier.h"
#include "ecg/ecg_hal.h"
#include "ecg/ecg_sha256.h"
#include "ecg/ecg_trainer.h"
#include "ecg/ecg_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ECG_UPDATE_MAGIC 0x50474345u        /**< header magic, bytes "ECGP" */
#define ECG_UPDATE_RECORD_MAGIC 0x53474345u /**< slot record magic, bytes "ECGS" */
#define ECG_UPDATE_FORMAT 1u                /**< header format version */
#define ECG_UPDATE_HEADER_LEN 28u           /**< package header, bytes */
#define ECG_UPDATE_TAG_LEN ECG_SHA256_DIGEST_LEN /**< HMAC-SHA256 tag, bytes */
#define ECG_UPDATE_RECORD_LEN 20u           /**< slot record, bytes */
#define ECG_UPDATE_CHUNK_MAX 200u           /**< payload bytes per PKG_CHUNK */
#define ECG_UPDATE_CHUNK_HDR_LEN 4u         /**< PKG_CHUNK prefix: offset u32 */
#define ECG_UPDATE_MAX_KEY_LEN 64u          /**< longest per-device key, bytes */
#define ECG_UPDATE_LABEL_LEN 5u             /**< one label: sample_index u32, class u8 */
#define ECG_UPDATE_MODEL_INFO_LEN 18u       /**< GET_MODEL_INFO answer body, bytes */
#define ECG_UPDATE_CHUNK_RESULT_LEN 4u      /**< PKG_CHUNK answer body: next offset u32 */
#define ECG_UPDATE_RESET_LEN 36u            /**< RESET_PERSONALIZATION payload: version u32, tag */
/** Domain-separation prefix of the RESET_PERSONALIZATION tag (16 ASCII bytes, no NUL). */
#define ECG_UPDATE_RESET_DOMAIN "ECGEDGE-RESET-v1"
#define ECG_UPDATE_RESET_DOMAIN_LEN 16u     /**< bytes of ::ECG_UPDATE_RESET_DOMAIN hashed */
/** HEAD payload: weights, bias, (multiplier, shift) per class, logits scale and zero point. */
#define ECG_UPDATE_HEAD_PAYLOAD_LEN                                                              \
    (ECG_CLASSIFIER_N_CLASSES * ECG_CLASSIFIER_EMBEDDING_LEN + 4u * ECG_CLASSIFIER_N_CLASSES +   \
     8u * ECG_CLASSIFIER_N_CLASSES + 8u)
/** Storage a head slot needs, bytes. */
#define ECG_UPDATE_HEAD_SLOT_BYTES                                                               \
    (ECG_UPDATE_RECORD_LEN + ECG_UPDATE_HEADER_LEN + ECG_UPDATE_HEAD_PAYLOAD_LEN +                \
     ECG_UPDATE_TAG_LEN)

/** Package kinds. */
typedef enum {
    ECG_UPDATE_KIND_HEAD = 1,  /**< classifier head tables */
    ECG_UPDATE_KIND_LABELS = 2 /**< beat labels for the µ-trainer */
} ecg_update_kind_t;

/** What the active head is (MODEL_INFO `state`, the slot record's state). */
typedef enum {
    ECG_UPDATE_STATE_FACTORY = 0, /**< the model's own head */
    ECG_UPDATE_STATE_PUSHED = 1,  /**< a head package from the host */
    ECG_UPDATE_STATE_TRAINED = 2  /**< trained on the device from a labels package */
} ecg_update_state_t;

/** Package header (see the file documentation). */
typedef struct {
    uint32_t magic;         /**< ::ECG_UPDATE_MAGIC */
    uint8_t format;         /**< ::ECG_UPDATE_FORMAT */
    uint8_t kind;           /**< ::ecg_update_kind_t */
    uint16_t flags;         /**< reserved, 0 */
    uint32_t model_id;      /**< ECG_MODEL_ID_U32 of the model the package is for */
    uint16_t embedding_len; /**< ECG_CLASSIFIER_EMBEDDING_LEN */
    uint16_t n_classes;     /**< ECG_CLASSIFIER_N_CLASSES */
    uint32_t version;       /**< package version; must exceed every version accepted before */
    uint32_t payload_len;   /**< payload bytes */
    uint32_t payload_crc32; /**< CRC-32 (zlib) of the payload */
} ecg_update_header_t;

/** GET_MODEL_INFO answer (and the body of successful PKG_COMMIT / RESET answers). */
typedef struct {
    uint32_t model_id;         /**< ECG_MODEL_ID_U32 */
    uint8_t active_slot;       /**< 0 A, 1 B, 255 none (factory head, no record yet) */
    uint8_t state;             /**< ::ecg_update_state_t */
    uint32_t head_version;     /**< version of the active head (0: factory) */
    uint32_t max_version;      /**< highest package version accepted: the next must exceed it */
    uint16_t trainer_beats;    /**< beats in the µ-trainer's buffer */
    uint16_t trainer_labelled; /**< of which labelled */
} ecg_update_model_info_t;

/**
 * The µ-trainer as the update module sees it (the device wires these to ecg_trainer.h). Any
 * entry may be NULL: without `label` and `train`, LABELS packages are UNSUPPORTED.
 */
typedef struct {
    void *ctx;
    /** Buffer a classified beat (::ecg_update_beat). */
    void (*add)(void *ctx, uint32_t sample_index, const int8_t *embedding);
    /** Start a new label set (forget earlier labels). */
    void (*clear)(void *ctx);
    /** Label one buffered beat; an error means the beat is not in the buffer (skipped). */
    ecg_err_t (*label)(void *ctx, uint32_t sample_index, uint8_t beat_class);
    /** Train from `start` on the labels given; write the new head's tables. */
    ecg_err_t (*train)(void *ctx, const ecg_classifier_head_t *start,
                       ecg_classifier_head_tables_t *out);
    /** Beats buffered and labelled (MODEL_INFO). */
    void (*fill)(void *ctx, uint16_t *beats, uint16_t *labelled);
} ecg_update_trainer_t;

/** Configuration. */
typedef struct {
    const ecg_hal_t *hal;         /**< storage entries (storage_*); NULL or missing: no packages */
    const uint8_t *key;           /**< per-device HMAC key (copied at init) */
    size_t key_len;               /**< 1..::ECG_UPDATE_MAX_KEY_LEN; 0: no key, no packages */
    ecg_classifier_t *classifier; /**< where heads are installed; may be NULL (tests) */
    ecg_update_trainer_t trainer; /**< µ-trainer entries (all NULL: no LABELS packages) */
} ecg_update_cfg_t;

/** State. Caller-owned; fields are private to ecg_update.c. Do not copy after init. */
typedef struct {
    const ecg_hal_t *hal;
    uint8_t key[ECG_UPDATE_MAX_KEY_LEN];
    uint8_t key_len;
    uint8_t has_storage;
    ecg_classifier_t *classifier;
    ecg_update_trainer_t trainer;
    /* active head */
    uint8_t active_slot;    /* 0, 1, or 255: no valid record */
    uint8_t state;          /* ecg_update_state_t */
    uint32_t active_seq;
    uint32_t head_version;
    uint32_t max_version;
    uint8_t tables_in_use;  /* which of tables[] the installed head points to (255: none) */
    ecg_classifier_head_tables_t tables[2];
    ecg_classifier_head_t head[2];
    /* open transfer */
    uint8_t open;           /* a transfer is open */
    uint8_t target;         /* its ecg_hal_slot_t */
    ecg_update_header_t hdr;
    uint32_t received;      /* payload bytes received */
} ecg_update_t;

/**
 * @brief Initialise and restore the active head from storage (verified again; a slot that fails
 *        verification is ignored). Installs it in `cfg->classifier` when one is given.
 * @return ECG_OK (also when there is no storage or no valid slot: the factory head), ECG_ERR_NULL,
 *         ECG_ERR_RANGE (key longer than ::ECG_UPDATE_MAX_KEY_LEN)
 */
ecg_err_t ecg_update_init(ecg_update_t *u, const ecg_update_cfg_t *cfg);

/**
 * @brief 1 when head packages can be taken (storage with both head slots large enough, and a
 *        key): capability HEAD_PACKAGES.
 */
int ecg_update_can_head(const ecg_update_t *u);

/** @brief 1 when LABELS packages can be taken (as above, plus a trainer and a LABELS slot). */
int ecg_update_can_labels(const ecg_update_t *u);

/**
 * @brief Handle one personalization command (frame types 0x18-0x1D, docs/protocol.md §11).
 * @param[in,out] u         state
 * @param[in]     type      frame type (ECG_FT_PKG_BEGIN ... ECG_FT_RESET_PERSONALIZATION)
 * @param[in]     payload   the command's payload
 * @param[in]     len       its length
 * @param[out]    body      the answer's body, >= ::ECG_UPDATE_MODEL_INFO_LEN bytes
 * @param[out]    body_len  its length (0: no body)
 * @return the RESPONSE status: ECG_OK or a negative ::ecg_err_t / ::ecg_proto_err_t
 */
int32_t ecg_update_command(ecg_update_t *u, uint8_t type, const uint8_t *payload, size_t len,
                           uint8_t *body, size_t *body_len);

/** @brief Discard an open transfer (link down, abort); the active head is untouched. */
void ecg_update_abort(ecg_update_t *u);

/** @brief The current MODEL_INFO. */
void ecg_update_get_info(const ecg_update_t *u, ecg_update_model_info_t *out);

/**
 * @brief The trainer entries over an ::ecg_trainer_t (ecg_trainer.h): `add` is
 *        ::ecg_trainer_add_beat (a beat index at or below the last one means a new stream: the
 *        buffer restarts, with the trainer's configuration), `clear` ::ecg_trainer_clear_labels,
 *        `label`, `train`, and `fill` its counts (saturated at 65535).
 * @param[in] t  an initialised trainer that outlives the update state
 */
ecg_update_trainer_t ecg_update_trainer_of(ecg_trainer_t *t);

/**
 * @brief A classified beat (sample index, embedding) for the µ-trainer's buffer: the device calls
 *        this for every beat it classifies. Nothing happens without a trainer.
 */
void ecg_update_beat(ecg_update_t *u, uint32_t sample_index, const int8_t *embedding);

/* --- layouts (pack: bytes written or a negative error; unpack: ECG_OK or an error) ---------- */

/** @brief Pack a package header (28 bytes). */
int32_t ecg_update_pack_header(const ecg_update_header_t *h, uint8_t *out, size_t cap);
/** @brief Unpack a package header; ECG_PROTO_ERR_LENGTH when shorter than 28 bytes. */
int32_t ecg_update_unpack_header(const uint8_t *p, size_t len, ecg_update_header_t *h);
/** @brief Pack a MODEL_INFO body (18 bytes). */
int32_t ecg_update_pack_model_info(const ecg_update_model_info_t *m, uint8_t *out, size_t cap);
/** @brief Unpack a MODEL_INFO body. */
int32_t ecg_update_unpack_model_info(const uint8_t *p, size_t len, ecg_update_model_info_t *m);
/**
 * @brief Pack a PKG_CHUNK payload: offset u32, then `n` bytes (1..::ECG_UPDATE_CHUNK_MAX).
 * @return 4 + n; ECG_ERR_NULL; ECG_ERR_RANGE (n out of range); ECG_PROTO_ERR_NO_SPACE
 */
int32_t ecg_update_pack_chunk(uint32_t offset, const uint8_t *data, size_t n, uint8_t *out,
                              size_t cap);
/**
 * @brief Unpack a PKG_CHUNK payload; `*data` points into `p`.
 * @return ECG_OK; ECG_ERR_NULL; ECG_PROTO_ERR_LENGTH (no data bytes, or more than
 *         ::ECG_UPDATE_CHUNK_MAX)
 */
int32_t ecg_update_unpack_chunk(const uint8_t *p, size_t len, uint32_t *offset,
                                const uint8_t **data, size_t *n);
/** @brief Serialize head tables into a HEAD payload (::ECG_UPDATE_HEAD_PAYLOAD_LEN bytes). */
int32_t ecg_update_pack_head(const ecg_classifier_head_tables_t *t, uint8_t *out, size_t cap);
/** @brief Deserialize a HEAD payload; ECG_PROTO_ERR_LENGTH unless exactly the right length. */
int32_t ecg_update_unpack_head(const uint8_t *p, size_t len, ecg_classifier_head_tables_t *t);

#ifdef __cplusplus
}
#endif

#endif /* ECG_UPDATE_H */

#include "ecg/ecg_update.h"

#include <string.h>

#include "ecg/ecg_crc.h"
#include "ecg/ecg_protocol.h"

#define NO_SLOT 255u
#define PIECE 64u /* bytes read back from storage at a time */

/* Little-endian fields: ecg_protocol.c's byte-by-byte packers. */
#define put_u16 ecg_proto_put_u16
#define put_u32 ecg_proto_put_u32
#define get_u16 ecg_proto_get_u16
#define get_u32 ecg_proto_get_u32

/* Serial-number comparison of record sequences: 1 when a is newer than b. */
static int seq_newer(uint32_t a, uint32_t b)
{
    return (uint32_t)(a - b) != 0u && (uint32_t)(a - b) < 0x80000000u;
}

/* ---------------------------------------------------------------------------------------------
 * Layouts
 * ------------------------------------------------------------------------------------------- */

int32_t ecg_update_pack_header(const ecg_update_header_t *h, uint8_t *out, size_t cap)
{
    if (h == NULL || out == NULL) {
        return ECG_ERR_NULL;
    }
    if (cap < ECG_UPDATE_HEADER_LEN) {
        return ECG_PROTO_ERR_NO_SPACE;
    }
    put_u32(&out[0], h->magic);
    out[4] = h->format;
    out[5] = h->kind;
    put_u16(&out[6], h->flags);
    put_u32(&out[8], h->model_id);
    put_u16(&out[12], h->embedding_len);
    put_u16(&out[14], h->n_classes);
    put_u32(&out[16], h->version);
    put_u32(&out[20], h->payload_len);
    put_u32(&out[24], h->payload_crc32);
    return (int32_t)ECG_UPDATE_HEADER_LEN;
}

int32_t ecg_update_unpack_header(const uint8_t *p, size_t len, ecg_update_header_t *h)
{
    if (p == NULL || h == NULL) {
        return ECG_ERR_NULL;
    }
    if (len < ECG_UPDATE_HEADER_LEN) {
        return ECG_PROTO_ERR_LENGTH;
    }
    h->magic = get_u32(&p[0]);
    h->format = p[4];
    h->kind = p[5];
    h->flags = get_u16(&p[6]);
    h->model_id = get_u32(&p[8]);
    h->embedding_len = get_u16(&p[12]);
    h->n_classes = get_u16(&p[14]);
    h->version = get_u32(&p[16]);
    h->payload_len = get_u32(&p[20]);
    h->payload_crc32 = get_u32(&p[24]);
    return ECG_OK;
}

int32_t ecg_update_pack_model_info(const ecg_update_model_info_t *m, uint8_t *out, size_t cap)
{
    if (m == NULL || out == NULL) {
        return ECG_ERR_NULL;
    }
    if (cap < ECG_UPDATE_MODEL_INFO_LEN) {
        return ECG_PROTO_ERR_NO_SPACE;
    }
    put_u32(&out[0], m->model_id);
    out[4] = m->active_slot;
    out[5] = m->state;
    put_u32(&out[6], m->head_version);
    put_u32(&out[10], m->max_version);
    put_u16(&out[14], m->trainer_beats);
    put_u16(&out[16], m->trainer_labelled);
    return (int32_t)ECG_UPDATE_MODEL_INFO_LEN;
}

int32_t ecg_update_unpack_model_info(const uint8_t *p, size_t len, ecg_update_model_info_t *m)
{
    if (p == NULL || m == NULL) {
        return ECG_ERR_NULL;
    }
    if (len < ECG_UPDATE_MODEL_INFO_LEN) {
        return ECG_PROTO_ERR_LENGTH;
    }
    m->model_id = get_u32(&p[0]);
    m->active_slot = p[4];
    m->state = p[5];
    m->head_version = get_u32(&p[6]);
    m->max_version = get_u32(&p[10]);
    m->trainer_beats = get_u16(&p[14]);
    m->trainer_labelled = get_u16(&p[16]);
    return ECG_OK;
}

int32_t ecg_update_pack_chunk(uint32_t offset, const uint8_t *data, size_t n, uint8_t *out,
                              size_t cap)
{
    if (data == NULL || out == NULL) {
        return ECG_ERR_NULL;
    }
    if (n < 1u || n > ECG_UPDATE_CHUNK_MAX) {
        return ECG_ERR_RANGE;
    }
    if (cap < ECG_UPDATE_CHUNK_HDR_LEN + n) {
        return ECG_PROTO_ERR_NO_SPACE;
    }
    put_u32(out, offset);
    memcpy(&out[ECG_UPDATE_CHUNK_HDR_LEN], data, n);
    return (int32_t)(ECG_UPDATE_CHUNK_HDR_LEN + n);
}

int32_t ecg_update_unpack_chunk(const uint8_t *p, size_t len, uint32_t *offset,
                                const uint8_t **data, size_t *n)
{
    if (p == NULL || offset == NULL || data == NULL || n == NULL) {
        return ECG_ERR_NULL;
    }
    if (len < ECG_UPDATE_CHUNK_HDR_LEN + 1u || len > ECG_UPDATE_CHUNK_HDR_LEN + ECG_UPDATE_CHUNK_MAX) {
        return ECG_PROTO_ERR_LENGTH;
    }
    *offset = get_u32(p);
    *data = p + ECG_UPDATE_CHUNK_HDR_LEN;
    *n = len - ECG_UPDATE_CHUNK_HDR_LEN;
    return ECG_OK;
}

int32_t ecg_update_pack_head(const ecg_classifier_head_tables_t *t, uint8_t *out, size_t cap)
{
    uint32_t o, i, scale_bits;
    uint8_t *p = out;
    if (t == NULL || out == NULL) {
        return ECG_ERR_NULL;
    }
    if (cap < ECG_UPDATE_HEAD_PAYLOAD_LEN) {
        return ECG_PROTO_ERR_NO_SPACE;
    }
    for (o = 0; o < ECG_CLASSIFIER_N_CLASSES; o++) {
        for (i = 0; i < ECG_CLASSIFIER_EMBEDDING_LEN; i++) {
            *p++ = (uint8_t)t->weights[o][i];
        }
    }
    for (o = 0; o < ECG_CLASSIFIER_N_CLASSES; o++, p += 4) {
        put_u32(p, (uint32_t)t->bias[o]);
    }
    for (o = 0; o < ECG_CLASSIFIER_N_CLASSES; o++, p += 8) {
        put_u32(p, (uint32_t)t->quant[o].multiplier);
        put_u32(p + 4, (uint32_t)t->quant[o].shift);
    }
    memcpy(&scale_bits, &t->logits_scale, sizeof scale_bits);
    put_u32(p, scale_bits);
    put_u32(p + 4, (uint32_t)t->logits_zero_point);
    return (int32_t)ECG_UPDATE_HEAD_PAYLOAD_LEN;
}

/* uint32 -> int32 without implementation-defined conversion */
static int32_t as_i32(uint32_t v)
{
    return v < 0x80000000u ? (int32_t)v : -(int32_t)(~v) - 1;
}

int32_t ecg_update_unpack_head(const uint8_t *p, size_t len, ecg_classifier_head_tables_t *t)
{
    uint32_t o, i, scale_bits;
    if (p == NULL || t == NULL) {
        return ECG_ERR_NULL;
    }
    if (len != ECG_UPDATE_HEAD_PAYLOAD_LEN) {
        return ECG_PROTO_ERR_LENGTH;
    }
    for (o = 0; o < ECG_CLASSIFIER_N_CLASSES; o++) {
        for (i = 0; i < ECG_CLASSIFIER_EMBEDDING_LEN; i++) {
            t->weights[o][i] = (int8_t)as_i32(*p >= 128u ? 0xFFFFFF00u | *p : *p);
            p++;
        }
    }
    for (o = 0; o < ECG_CLASSIFIER_N_CLASSES; o++, p += 4) {
        t->bias[o] = as_i32(get_u32(p));
    }
    for (o = 0; o < ECG_CLASSIFIER_N_CLASSES; o++, p += 8) {
        t->quant[o].multiplier = as_i32(get_u32(p));
        t->quant[o].shift = as_i32(get_u32(p + 4));
    }
    scale_bits = get_u32(p);
    memcpy(&t->logits_scale, &scale_bits, sizeof scale_bits);
    t->logits_zero_point = as_i32(get_u32(p + 4));
    return ECG_OK;
}

/* Slot record: magic u32 | seq u32 | state u8 | 3 reserved | max_version u32 | crc32 u32. */
typedef struct {
    uint32_t seq;
    uint8_t state;
    uint32_t max_version;
} record_t;

static void pack_record(const record_t *r, uint8_t out[ECG_UPDATE_RECORD_LEN])
{
    put_u32(&out[0], ECG_UPDATE_RECORD_MAGIC);
    put_u32(&out[4], r->seq);
    out[8] = r->state;
    out[9] = out[10] = out[11] = 0u;
    put_u32(&out[12], r->max_version);
    put_u32(&out[16], ecg_crc32_update(0u, out, 16u));
}

static int unpack_record(const uint8_t in[ECG_UPDATE_RECORD_LEN], record_t *r)
{
    if (get_u32(&in[0]) != ECG_UPDATE_RECORD_MAGIC ||
        get_u32(&in[16]) != ecg_crc32_update(0u, in, 16u) ||
        in[8] > (uint8_t)ECG_UPDATE_STATE_TRAINED) {
        return 0;
    }
    r->seq = get_u32(&in[4]);
    r->state = in[8];
    r->max_version = get_u32(&in[12]);
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * Storage
 * ------------------------------------------------------------------------------------------- */

static int32_t st_read(const ecg_update_t *u, uint8_t slot, uint32_t off, uint8_t *buf,
                       size_t len)
{
    return u->hal->storage_read(u->hal->ctx, (ecg_hal_slot_t)slot, off, buf, len) == ECG_OK
               ? ECG_OK
               : ECG_PROTO_ERR_STORAGE;
}

static int32_t st_write(const ecg_update_t *u, uint8_t slot, uint32_t off, const uint8_t *buf,
                        size_t len)
{
    return u->hal->storage_write(u->hal->ctx, (ecg_hal_slot_t)slot, off, buf, len) == ECG_OK
               ? ECG_OK
               : ECG_PROTO_ERR_STORAGE;
}

static int32_t st_erase(const ecg_update_t *u, uint8_t slot)
{
    return u->hal->storage_erase(u->hal->ctx, (ecg_hal_slot_t)slot) == ECG_OK
               ? ECG_OK
               : ECG_PROTO_ERR_STORAGE;
}

static uint32_t st_size(const ecg_update_t *u, uint8_t slot)
{
    return u->has_storage ? u->hal->storage_size(u->hal->ctx, (ecg_hal_slot_t)slot) : 0u;
}

/* Where a slot's package starts: head slots keep the record first. */
static uint32_t base_of(uint8_t slot)
{
    return slot == (uint8_t)ECG_HAL_SLOT_LABELS ? 0u : ECG_UPDATE_RECORD_LEN;
}

/* ---------------------------------------------------------------------------------------------
 * Verification
 * ------------------------------------------------------------------------------------------- */

/* Header checks that need no payload: magic, format, model, shape, kind and length. */
static int32_t check_header(const ecg_update_t *u, const ecg_update_header_t *h, uint8_t slot)
{
    if (h->magic != ECG_UPDATE_MAGIC || h->format != ECG_UPDATE_FORMAT || h->flags != 0u) {
        return ECG_ERR_UNSUPPORTED;
    }
    if (h->model_id != ECG_MODEL_ID_U32 || h->embedding_len != ECG_CLASSIFIER_EMBEDDING_LEN ||
        h->n_classes != ECG_CLASSIFIER_N_CLASSES) {
        return ECG_PROTO_ERR_MODEL;
    }
    if (h->kind == (uint8_t)ECG_UPDATE_KIND_HEAD) {
        if (h->payload_len != ECG_UPDATE_HEAD_PAYLOAD_LEN) {
            return ECG_PROTO_ERR_LENGTH;
        }
    } else if (h->kind == (uint8_t)ECG_UPDATE_KIND_LABELS) {
        if (h->payload_len == 0u || h->payload_len % ECG_UPDATE_LABEL_LEN != 0u) {
            return ECG_PROTO_ERR_LENGTH;
        }
    } else {
        return ECG_ERR_UNSUPPORTED;
    }
    if ((uint64_t)base_of(slot) + ECG_UPDATE_HEADER_LEN + h->payload_len + ECG_UPDATE_TAG_LEN >
        (uint64_t)st_size(u, slot)) {
        return ECG_ERR_RANGE; /* does not fit the slot */
    }
    return ECG_OK;
}

/* Read a slot's package back and verify it: header, CRC-32, then the HMAC tag. The payload is
 * copied to `payload` when it fits `cap` (the head tables). */
static int32_t verify_slot(const ecg_update_t *u, uint8_t slot, ecg_update_header_t *h,
                           uint8_t *payload, size_t cap)
{
    uint8_t buf[PIECE];
    uint8_t tag[ECG_UPDATE_TAG_LEN];
    uint8_t want[ECG_UPDATE_TAG_LEN];
    ecg_hmac_sha256_t mac;
    uint32_t crc = 0u;
    uint32_t off = 0u;
    const uint32_t base = base_of(slot);
    int32_t err = st_read(u, slot, base, buf, ECG_UPDATE_HEADER_LEN);
    if (err != ECG_OK) {
        return err;
    }
    (void)ecg_update_unpack_header(buf, ECG_UPDATE_HEADER_LEN, h);
    err = check_header(u, h, slot);
    if (err != ECG_OK) {
        return err;
    }
    ecg_hmac_sha256_init(&mac, u->key, u->key_len);
    ecg_hmac_sha256_update(&mac, buf, ECG_UPDATE_HEADER_LEN);
    while (off < h->payload_len) {
        const uint32_t n = h->payload_len - off < PIECE ? h->payload_len - off : PIECE;
        err = st_read(u, slot, base + ECG_UPDATE_HEADER_LEN + off, buf, n);
        if (err != ECG_OK) {
            return err;
        }
        crc = ecg_crc32_update(crc, buf, n);
        ecg_hmac_sha256_update(&mac, buf, n);
        if (payload != NULL && h->payload_len <= cap) {
            memcpy(&payload[off], buf, n);
        }
        off += n;
    }
    err = st_read(u, slot, base + ECG_UPDATE_HEADER_LEN + h->payload_len, tag, sizeof tag);
    if (err != ECG_OK) {
        return err;
    }
    ecg_hmac_sha256_final(&mac, want);
    if (crc != h->payload_crc32) {
        return ECG_PROTO_ERR_PKG_CRC;
    }
    if (!ecg_hmac_sha256_equal(tag, want, sizeof tag)) {
        return ECG_PROTO_ERR_AUTH;
    }
    return ECG_OK;
}

/* A verified HEAD payload -> tables in the spare buffer -> a checked head. Returns the buffer
 * index, or a negative error (ECG_ERR_CONFIG: the tables do not make a valid head). */
static int32_t load_head(ecg_update_t *u, const uint8_t *payload, uint32_t version)
{
    const uint8_t spare = u->tables_in_use == 0u ? 1u : 0u;
    if (ecg_update_unpack_head(payload, ECG_UPDATE_HEAD_PAYLOAD_LEN, &u->tables[spare]) !=
            ECG_OK ||
        ecg_classifier_head_from_tables(&u->head[spare], &u->tables[spare], version) != ECG_OK) {
        return ECG_ERR_CONFIG;
    }
    return spare;
}

/* Install a loaded head (index) or the factory head (NO_SLOT) in the classifier. */
static void install(ecg_update_t *u, uint8_t index)
{
    if (u->classifier != NULL) {
        (void)ecg_classifier_set_head(u->classifier, index == NO_SLOT ? NULL : &u->head[index]);
    }
    u->tables_in_use = index;
}

/* ---------------------------------------------------------------------------------------------
 * Switching
 * ------------------------------------------------------------------------------------------- */

static uint8_t inactive_slot(const ecg_update_t *u)
{
    return u->active_slot == (uint8_t)ECG_HAL_SLOT_HEAD_A ? (uint8_t)ECG_HAL_SLOT_HEAD_B
                                                          : (uint8_t)ECG_HAL_SLOT_HEAD_A;
}

/* Write the record that makes `slot` active (the atomic step), read it back, and update the
 * RAM state. The slot's package (if any) has been verified and loaded into `head_index`. */
static int32_t switch_to(ecg_update_t *u, uint8_t slot, uint8_t state, uint32_t version,
                         uint8_t head_index)
{
    uint8_t buf[ECG_UPDATE_RECORD_LEN];
    record_t r, back;
    int32_t err;
    r.seq = u->active_seq + 1u;
    r.state = state;
    r.max_version = version > u->max_version ? version : u->max_version;
    pack_record(&r, buf);
    err = st_write(u, slot, 0u, buf, sizeof buf);
    if (err == ECG_OK) {
        err = st_read(u, slot, 0u, buf, sizeof buf);
    }
    if (err == ECG_OK && (!unpack_record(buf, &back) || back.seq != r.seq)) {
        err = ECG_PROTO_ERR_STORAGE;
    }
    if (err != ECG_OK) {
        return err; /* the record did not take: the old slot stays the newest */
    }
    u->active_slot = slot;
    u->active_seq = r.seq;
    u->state = state;
    u->head_version = state == (uint8_t)ECG_UPDATE_STATE_FACTORY ? 0u : version;
    u->max_version = r.max_version;
    install(u, head_index);
    return ECG_OK;
}

/* Verify the HEAD package staged in `slot` and switch to it. */
static int32_t commit_head(ecg_update_t *u, uint8_t slot, uint8_t state)
{
    uint8_t payload[ECG_UPDATE_HEAD_PAYLOAD_LEN];
    ecg_update_header_t h;
    int32_t idx;
    int32_t err = verify_slot(u, slot, &h, payload, sizeof payload);
    if (err != ECG_OK) {
        return err;
    }
    if (h.kind != (uint8_t)ECG_UPDATE_KIND_HEAD) {
        return ECG_ERR_UNSUPPORTED;
    }
    if (h.version <= u->max_version) {
        return ECG_PROTO_ERR_REPLAY;
    }
    idx = load_head(u, payload, h.version);
    if (idx < 0) {
        return idx;
    }
    return switch_to(u, slot, state, h.version, (uint8_t)idx);
}

/* Write a whole HEAD package made and signed by the device (a trained head) into `slot`. */
static int32_t write_own_head(ecg_update_t *u, uint8_t slot, const ecg_classifier_head_tables_t *t,
                              uint32_t version)
{
    uint8_t payload[ECG_UPDATE_HEAD_PAYLOAD_LEN];
    uint8_t hdr[ECG_UPDATE_HEADER_LEN];
    uint8_t tag[ECG_UPDATE_TAG_LEN];
    ecg_update_header_t h;
    ecg_hmac_sha256_t mac;
    int32_t err;
    (void)ecg_update_pack_head(t, payload, sizeof payload);
    h.magic = ECG_UPDATE_MAGIC;
    h.format = ECG_UPDATE_FORMAT;
    h.kind = (uint8_t)ECG_UPDATE_KIND_HEAD;
    h.flags = 0u;
    h.model_id = ECG_MODEL_ID_U32;
    h.embedding_len = (uint16_t)ECG_CLASSIFIER_EMBEDDING_LEN;
    h.n_classes = (uint16_t)ECG_CLASSIFIER_N_CLASSES;
    h.version = version;
    h.payload_len = ECG_UPDATE_HEAD_PAYLOAD_LEN;
    h.payload_crc32 = ecg_crc32_update(0u, payload, sizeof payload);
    (void)ecg_update_pack_header(&h, hdr, sizeof hdr);
    ecg_hmac_sha256_init(&mac, u->key, u->key_len);
    ecg_hmac_sha256_update(&mac, hdr, sizeof hdr);
    ecg_hmac_sha256_update(&mac, payload, sizeof payload);
    ecg_hmac_sha256_final(&mac, tag);
    err = st_erase(u, slot);
    if (err == ECG_OK) {
        err = st_write(u, slot, ECG_UPDATE_RECORD_LEN, hdr, sizeof hdr);
    }
    if (err == ECG_OK) {
        err = st_write(u, slot, ECG_UPDATE_RECORD_LEN + ECG_UPDATE_HEADER_LEN, payload,
                       sizeof payload);
    }
    if (err == ECG_OK) {
        err = st_write(u, slot, ECG_UPDATE_RECORD_LEN + ECG_UPDATE_HEADER_LEN + sizeof payload,
                       tag, sizeof tag);
    }
    return err;
}

/* Verify the LABELS package staged in the labels slot, hand the labels to the trainer, train
 * from the factory head, and switch to the result. */
static int32_t commit_labels(ecg_update_t *u)
{
    ecg_update_header_t h;
    uint8_t buf[12u * ECG_UPDATE_LABEL_LEN];
    uint32_t off = 0u, matched = 0u;
    const ecg_classifier_head_t *start;
    int32_t err = verify_slot(u, (uint8_t)ECG_HAL_SLOT_LABELS, &h, NULL, 0u);
    uint8_t spare;
    if (err != ECG_OK) {
        return err;
    }
    if (h.kind != (uint8_t)ECG_UPDATE_KIND_LABELS) {
        return ECG_ERR_UNSUPPORTED;
    }
    if (h.version <= u->max_version) {
        return ECG_PROTO_ERR_REPLAY;
    }
    if (u->trainer.clear != NULL) {
        u->trainer.clear(u->trainer.ctx);
    }
    while (off < h.payload_len) {
        const uint32_t n = h.payload_len - off < sizeof buf ? h.payload_len - off
                                                            : (uint32_t)sizeof buf;
        uint32_t k;
        err = st_read(u, (uint8_t)ECG_HAL_SLOT_LABELS, ECG_UPDATE_HEADER_LEN + off, buf, n);
        if (err != ECG_OK) {
            return err;
        }
        for (k = 0; k < n; k += ECG_UPDATE_LABEL_LEN) {
            if (buf[k + 4u] < ECG_CLASSIFIER_N_CLASSES &&
                u->trainer.label(u->trainer.ctx, get_u32(&buf[k]), buf[k + 4u]) == ECG_OK) {
                matched++;
            }
        }
        off += n;
    }
    if (matched == 0u) {
        return ECG_ERR_STATE; /* none of the labelled beats is in the trainer's buffer */
    }
    /* train from the factory head (ecg_update_can_labels: there is a classifier), into the
     * spare tables buffer (the installed head's stays valid) */
    start = ecg_classifier_factory_head(u->classifier);
    if (start == NULL) {
        return ECG_ERR_STATE;
    }
    spare = u->tables_in_use == 0u ? 1u : 0u;
    err = u->trainer.train(u->trainer.ctx, start, &u->tables[spare]);
    if (err != ECG_OK) {
        return err;
    }
    err = write_own_head(u, inactive_slot(u), &u->tables[spare], h.version);
    if (err != ECG_OK) {
        return err;
    }
    return commit_head(u, inactive_slot(u), (uint8_t)ECG_UPDATE_STATE_TRAINED);
}

/* ---------------------------------------------------------------------------------------------
 * The µ-trainer behind ecg_update_trainer_t
 * ------------------------------------------------------------------------------------------- */

static void tr_add(void *ctx, uint32_t sample_index, const int8_t *embedding)
{
    ecg_trainer_t *t = (ecg_trainer_t *)ctx;
    if (ecg_trainer_add_beat(t, sample_index, embedding) == ECG_ERR_RANGE) {
        /* the sample counter went back (START_STREAM): the buffered beats are of another stream */
        const ecg_trainer_cfg_t cfg = t->cfg;
        (void)ecg_trainer_init(t, &cfg);
        (void)ecg_trainer_add_beat(t, sample_index, embedding);
    }
}

static void tr_clear(void *ctx)
{
    ecg_trainer_clear_labels((ecg_trainer_t *)ctx);
}

static ecg_err_t tr_label(void *ctx, uint32_t sample_index, uint8_t beat_class)
{
    return ecg_trainer_label((ecg_trainer_t *)ctx, sample_index, beat_class);
}

static ecg_err_t tr_train(void *ctx, const ecg_classifier_head_t *start,
                          ecg_classifier_head_tables_t *out)
{
    return ecg_trainer_train((ecg_trainer_t *)ctx, start, out);
}

static void tr_fill(void *ctx, uint16_t *beats, uint16_t *labelled)
{
    const uint32_t n = ecg_trainer_count((const ecg_trainer_t *)ctx);
    const uint32_t k = ecg_trainer_labelled((const ecg_trainer_t *)ctx);
    *beats = (uint16_t)(n > 65535u ? 65535u : n);
    *labelled = (uint16_t)(k > 65535u ? 65535u : k);
}

ecg_update_trainer_t ecg_update_trainer_of(ecg_trainer_t *t)
{
    ecg_update_trainer_t ops;
    memset(&ops, 0, sizeof ops);
    if (t != NULL) {
        ops.ctx = t;
        ops.add = tr_add;
        ops.clear = tr_clear;
        ops.label = tr_label;
        ops.train = tr_train;
        ops.fill = tr_fill;
    }
    return ops;
}

void ecg_update_beat(ecg_update_t *u, uint32_t sample_index, const int8_t *embedding)
{
    if (u != NULL && u->trainer.add != NULL && embedding != NULL) {
        u->trainer.add(u->trainer.ctx, sample_index, embedding);
    }
}

/* ---------------------------------------------------------------------------------------------
 * API
 * ------------------------------------------------------------------------------------------- */

ecg_err_t ecg_update_init(ecg_update_t *u, const ecg_update_cfg_t *cfg)
{
    record_t rec[2];
    int ok[2];
    uint8_t buf[ECG_UPDATE_RECORD_LEN];
    uint8_t payload[ECG_UPDATE_HEAD_PAYLOAD_LEN];
    uint8_t s, order[2];
    unsigned k;
    if (u == NULL || cfg == NULL) {
        return ECG_ERR_NULL;
    }
    if (cfg->key_len > ECG_UPDATE_MAX_KEY_LEN || (cfg->key_len > 0u && cfg->key == NULL)) {
        return ECG_ERR_RANGE;
    }
    memset(u, 0, sizeof *u);
    u->hal = cfg->hal;
    u->has_storage = cfg->hal != NULL && cfg->hal->storage_size != NULL &&
                     cfg->hal->storage_read != NULL && cfg->hal->storage_write != NULL &&
                     cfg->hal->storage_erase != NULL;
    if (cfg->key_len > 0u) {
        memcpy(u->key, cfg->key, cfg->key_len);
    }
    u->key_len = (uint8_t)cfg->key_len;
    u->classifier = cfg->classifier;
    u->trainer = cfg->trainer;
    u->active_slot = NO_SLOT;
    u->state = (uint8_t)ECG_UPDATE_STATE_FACTORY;
    u->tables_in_use = NO_SLOT;
    install(u, NO_SLOT);
    if (!ecg_update_can_head(u)) {
        return ECG_OK;
    }
    for (s = 0; s < 2u; s++) {
        ok[s] = st_read(u, s, 0u, buf, sizeof buf) == ECG_OK && unpack_record(buf, &rec[s]);
        if (ok[s]) {
            if (rec[s].max_version > u->max_version) {
                u->max_version = rec[s].max_version;
            }
            if (u->active_slot == NO_SLOT || seq_newer(rec[s].seq, u->active_seq)) {
                u->active_seq = rec[s].seq; /* the newest sequence seen: the next is above it */
                u->active_slot = s;
            }
        }
    }
    /* newest valid record first; fall back to the other slot when its package fails */
    order[0] = u->active_slot == 1u ? 1u : 0u;
    order[1] = (uint8_t)(1u - order[0]);
    u->active_slot = NO_SLOT;
    for (k = 0; k < 2u; k++) {
        ecg_update_header_t h;
        int32_t idx;
        s = order[k];
        if (!ok[s]) {
            continue;
        }
        if (rec[s].state == (uint8_t)ECG_UPDATE_STATE_FACTORY) {
            u->active_slot = s;
            break;
        }
        if (verify_slot(u, s, &h, payload, sizeof payload) != ECG_OK ||
            h.kind != (uint8_t)ECG_UPDATE_KIND_HEAD) {
            continue;
        }
        idx = load_head(u, payload, h.version);
        if (idx < 0) {
            continue;
        }
        u->active_slot = s;
        u->state = rec[s].state;
        u->head_version = h.version;
        install(u, (uint8_t)idx);
        break;
    }
    return ECG_OK;
}

int ecg_update_can_head(const ecg_update_t *u)
{
    return u != NULL && u->has_storage && u->key_len > 0u &&
           st_size(u, (uint8_t)ECG_HAL_SLOT_HEAD_A) >= ECG_UPDATE_HEAD_SLOT_BYTES &&
           st_size(u, (uint8_t)ECG_HAL_SLOT_HEAD_B) >= ECG_UPDATE_HEAD_SLOT_BYTES;
}

int ecg_update_can_labels(const ecg_update_t *u)
{
    return ecg_update_can_head(u) && u->trainer.label != NULL && u->trainer.train != NULL &&
           u->classifier != NULL &&
           st_size(u, (uint8_t)ECG_HAL_SLOT_LABELS) >=
               ECG_UPDATE_HEADER_LEN + ECG_UPDATE_LABEL_LEN + ECG_UPDATE_TAG_LEN;
}

void ecg_update_abort(ecg_update_t *u)
{
    if (u != NULL) {
        u->open = 0u;
        u->received = 0u;
    }
}

void ecg_update_get_info(const ecg_update_t *u, ecg_update_model_info_t *out)
{
    if (u == NULL || out == NULL) {
        return;
    }
    memset(out, 0, sizeof *out);
    out->model_id = ECG_MODEL_ID_U32;
    out->active_slot = u->active_slot;
    out->state = u->state;
    out->head_version = u->head_version;
    out->max_version = u->max_version;
    if (u->trainer.fill != NULL) {
        u->trainer.fill(u->trainer.ctx, &out->trainer_beats, &out->trainer_labelled);
    }
}

static int32_t cmd_begin(ecg_update_t *u, const uint8_t *p, size_t len)
{
    uint8_t slot;
    ecg_update_header_t h;
    int32_t err;
    ecg_update_abort(u);
    if (ecg_update_unpack_header(p, len, &h) != ECG_OK) {
        return ECG_PROTO_ERR_LENGTH;
    }
    if (h.kind == (uint8_t)ECG_UPDATE_KIND_LABELS ? !ecg_update_can_labels(u)
                                                  : !ecg_update_can_head(u)) {
        return ECG_ERR_UNSUPPORTED;
    }
    slot = h.kind == (uint8_t)ECG_UPDATE_KIND_LABELS ? (uint8_t)ECG_HAL_SLOT_LABELS
                                                     : inactive_slot(u);
    err = check_header(u, &h, slot);
    if (err != ECG_OK) {
        return err;
    }
    if (h.version <= u->max_version) {
        return ECG_PROTO_ERR_REPLAY;
    }
    /* the active slot is never the target: HEAD goes to the inactive one, LABELS to its own */
    err = st_erase(u, slot);
    if (err == ECG_OK) {
        err = st_write(u, slot, base_of(slot), p, ECG_UPDATE_HEADER_LEN);
    }
    if (err != ECG_OK) {
        return err;
    }
    u->hdr = h;
    u->target = slot;
    u->received = 0u;
    u->open = 1u;
    return ECG_OK;
}

static int32_t cmd_chunk(ecg_update_t *u, const uint8_t *p, size_t len, uint8_t *body,
                         size_t *body_len)
{
    uint32_t offset = 0u;
    const uint8_t *data = NULL;
    size_t n = 0u;
    int32_t err;
    if (p == NULL || ecg_update_unpack_chunk(p, len, &offset, &data, &n) != ECG_OK) {
        err = ECG_PROTO_ERR_LENGTH;
    } else if (!u->open) {
        err = ECG_ERR_STATE;
    } else {
        if (offset != u->received) {
            err = ECG_PROTO_ERR_ORDER;
        } else if ((uint64_t)offset + n > u->hdr.payload_len) {
            err = ECG_PROTO_ERR_LENGTH;
        } else {
            err = st_write(u, u->target, base_of(u->target) + ECG_UPDATE_HEADER_LEN + offset,
                           data, n);
            if (err == ECG_OK) {
                u->received += (uint32_t)n;
            } else {
                ecg_update_abort(u);
            }
        }
    }
    put_u32(body, u->received);
    *body_len = ECG_UPDATE_CHUNK_RESULT_LEN;
    return err;
}

static int32_t cmd_commit(ecg_update_t *u, const uint8_t *p, size_t len)
{
    int32_t err;
    uint8_t target;
    if (len < ECG_UPDATE_TAG_LEN) {
        return ECG_PROTO_ERR_LENGTH;
    }
    if (!u->open) {
        return ECG_ERR_STATE;
    }
    if (u->received != u->hdr.payload_len) {
        return ECG_PROTO_ERR_INCOMPLETE; /* the transfer stays open: send what is missing */
    }
    target = u->target;
    ecg_update_abort(u); /* one COMMIT per transfer, whatever its outcome */
    err = st_write(u, target, base_of(target) + ECG_UPDATE_HEADER_LEN + u->hdr.payload_len, p,
                   ECG_UPDATE_TAG_LEN);
    if (err != ECG_OK) {
        return err;
    }
    if (u->hdr.kind == (uint8_t)ECG_UPDATE_KIND_LABELS) {
        return commit_labels(u);
    }
    return commit_head(u, target, (uint8_t)ECG_UPDATE_STATE_PUSHED);
}

/* RESET_PERSONALIZATION: version u32 | tag, tag = HMAC(key, domain | model_id u32 | version u32).
 * Verified (LENGTH, AUTH, REPLAY) before anything changes; then a FACTORY record carrying the
 * version (the new replay floor) is written into the inactive slot. */
static int32_t cmd_reset(ecg_update_t *u, const uint8_t *p, size_t len)
{
    uint8_t slot;
    uint8_t msg[ECG_UPDATE_RESET_DOMAIN_LEN + 8u];
    uint8_t want[ECG_UPDATE_TAG_LEN];
    uint32_t version;
    ecg_hmac_sha256_t mac;
    int32_t err;
    if (!ecg_update_can_head(u)) {
        return ECG_ERR_UNSUPPORTED;
    }
    if (len != ECG_UPDATE_RESET_LEN) {
        return ECG_PROTO_ERR_LENGTH;
    }
    version = get_u32(p);
    memcpy(msg, ECG_UPDATE_RESET_DOMAIN, ECG_UPDATE_RESET_DOMAIN_LEN);
    put_u32(&msg[ECG_UPDATE_RESET_DOMAIN_LEN], ECG_MODEL_ID_U32);
    put_u32(&msg[ECG_UPDATE_RESET_DOMAIN_LEN + 4u], version);
    ecg_hmac_sha256_init(&mac, u->key, u->key_len);
    ecg_hmac_sha256_update(&mac, msg, sizeof msg);
    ecg_hmac_sha256_final(&mac, want);
    if (!ecg_hmac_sha256_equal(&p[4], want, sizeof want)) {
        return ECG_PROTO_ERR_AUTH;
    }
    if (version <= u->max_version) {
        return ECG_PROTO_ERR_REPLAY;
    }
    ecg_update_abort(u);
    if (u->trainer.clear != NULL) {
        u->trainer.clear(u->trainer.ctx);
    }
    slot = inactive_slot(u);
    err = st_erase(u, slot);
    if (err != ECG_OK) {
        return err;
    }
    return switch_to(u, slot, (uint8_t)ECG_UPDATE_STATE_FACTORY, version, NO_SLOT);
}

int32_t ecg_update_command(ecg_update_t *u, uint8_t type, const uint8_t *payload, size_t len,
                           uint8_t *body, size_t *body_len)
{
    int32_t st;
    ecg_update_model_info_t info;
    if (u == NULL || body == NULL || body_len == NULL || (payload == NULL && len > 0u)) {
        return ECG_ERR_NULL;
    }
    *body_len = 0u;
    switch (type) {
    case ECG_FT_PKG_BEGIN:
        return cmd_begin(u, payload, len);
    case ECG_FT_PKG_CHUNK:
        return cmd_chunk(u, payload, len, body, body_len);
    case ECG_FT_PKG_COMMIT:
        st = cmd_commit(u, payload, len);
        break;
    case ECG_FT_PKG_ABORT:
        ecg_update_abort(u);
        return ECG_OK;
    case ECG_FT_GET_MODEL_INFO:
        st = ECG_OK;
        break;
    case ECG_FT_RESET_PERSONALIZATION:
        st = cmd_reset(u, payload, len);
        break;
    default:
        return ECG_ERR_UNSUPPORTED;
    }
    if (st == ECG_OK) {
        ecg_update_get_info(u, &info);
        *body_len = (size_t)ecg_update_pack_model_info(&info, body, ECG_UPDATE_MODEL_INFO_LEN);
    }
    return st;
}

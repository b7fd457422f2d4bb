/*
 * Tests of update packages and A/B slots (firmware/src/core/ecg_update.c).
 *
 * Usage: test_update            (no arguments; tests/test_update_sha256.py builds it with every
 *                                core source under ASan/UBSan and runs it)
 *
 * A fake flash (three RAM slots that must be erased before they are written, like NOR flash)
 * stands in for the HAL storage entries; it can "lose power" after any number of erase / write
 * operations, tearing the write it is in (half of its bytes land). Packages are built here by
 * hand (header bytes, CRC-32, HMAC-SHA256 with ecg_sha256.h, which tests/c/test_sha256.c checks
 * against the published vectors). Every rejection is checked to leave the installed head and the
 * storage's active slot untouched. Prints one "ok"/"FAIL" line per test, then
 * "N passed, M failed"; exits 0 only when nothing failed. Plain C99, no framework.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ecg/ecg_classifier.h"
#include "ecg/ecg_crc.h"
#include "ecg/ecg_protocol.h"
#include "ecg/ecg_sha256.h"
#include "ecg/ecg_update.h"

#include "check.h"

/* ------------------------------------------------------------------------------------------ */
/* Fake flash                                                                                 */
/* ------------------------------------------------------------------------------------------ */

#define SLOT_BYTES 4096u

typedef struct {
    uint8_t mem[3][SLOT_BYTES];
    uint32_t size[3];
    long ops_left;   /* erase/write operations before the power fails; < 0: never */
    int dead;        /* power lost: every later operation fails */
    unsigned writes, erases;
} flash_t;

static uint32_t fl_size(void *ctx, ecg_hal_slot_t slot)
{
    return (unsigned)slot < 3u ? ((flash_t *)ctx)->size[slot] : 0u;
}

/* Counts one operation; returns 0 when the power fails during it. */
static int fl_power(flash_t *f)
{
    if (f->dead) {
        return 0;
    }
    if (f->ops_left == 0) {
        f->dead = 1;
        return 0;
    }
    if (f->ops_left > 0) {
        f->ops_left--;
    }
    return 1;
}

static ecg_err_t fl_erase(void *ctx, ecg_hal_slot_t slot)
{
    flash_t *f = (flash_t *)ctx;
    if ((unsigned)slot >= 3u) {
        return ECG_ERR_RANGE;
    }
    if (!fl_power(f)) {
        memset(f->mem[slot], 0xFF, f->size[slot] / 2u); /* torn erase */
        return ECG_ERR_STATE;
    }
    memset(f->mem[slot], 0xFF, sizeof f->mem[slot]);
    f->erases++;
    return ECG_OK;
}

static ecg_err_t fl_write(void *ctx, ecg_hal_slot_t slot, uint32_t off, const uint8_t *data,
                          size_t len)
{
    flash_t *f = (flash_t *)ctx;
    size_t i;
    if ((unsigned)slot >= 3u || off + len > f->size[slot]) {
        return ECG_ERR_RANGE;
    }
    for (i = 0; i < len; i++) {
        if (f->mem[slot][off + i] != 0xFFu) {
            printf("     flash: write over unerased byte (slot %d offset %u)\n", (int)slot,
                   (unsigned)(off + i));
            return ECG_ERR_STATE; /* NOR flash cannot do this: a bug in the write order */
        }
    }
    if (!fl_power(f)) {
        memcpy(&f->mem[slot][off], data, len / 2u); /* torn write */
        return ECG_ERR_STATE;
    }
    memcpy(&f->mem[slot][off], data, len);
    f->writes++;
    return ECG_OK;
}

static ecg_err_t fl_read(void *ctx, ecg_hal_slot_t slot, uint32_t off, uint8_t *data, size_t len)
{
    flash_t *f = (flash_t *)ctx;
    if ((unsigned)slot >= 3u || off + len > f->size[slot]) {
        return ECG_ERR_RANGE;
    }
    if (f->dead) {
        return ECG_ERR_STATE;
    }
    memcpy(data, &f->mem[slot][off], len);
    return ECG_OK;
}

static flash_t g_flash;
static ecg_hal_t g_hal;

static void flash_reset(void)
{
    memset(&g_flash, 0xFF, sizeof g_flash.mem);
    g_flash.size[0] = g_flash.size[1] = 512u;
    g_flash.size[2] = SLOT_BYTES;
    g_flash.ops_left = -1;
    g_flash.dead = 0;
    g_flash.writes = g_flash.erases = 0u;
    memset(&g_hal, 0, sizeof g_hal);
    g_hal.ctx = &g_flash;
    g_hal.storage_size = fl_size;
    g_hal.storage_erase = fl_erase;
    g_hal.storage_write = fl_write;
    g_hal.storage_read = fl_read;
}

/* ------------------------------------------------------------------------------------------ */
/* Fake trainer: labels are recorded; "training" shifts the factory head's class-2 bias up     */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    unsigned cleared, labels, trained;
    uint32_t known_first, known_last; /* sample indices "in the buffer" */
} trainer_t;

static trainer_t g_trainer;

static void tr_clear(void *ctx)
{
    ((trainer_t *)ctx)->cleared++;
    ((trainer_t *)ctx)->labels = 0u;
}

static ecg_err_t tr_label(void *ctx, uint32_t index, uint8_t cls)
{
    trainer_t *t = (trainer_t *)ctx;
    (void)cls;
    if (index < t->known_first || index > t->known_last) {
        return ECG_ERR_STATE;
    }
    t->labels++;
    return ECG_OK;
}

static ecg_err_t tr_train(void *ctx, const ecg_classifier_head_t *start,
                          ecg_classifier_head_tables_t *out)
{
    ecg_err_t err = ecg_classifier_head_to_tables(start, out);
    ((trainer_t *)ctx)->trained++;
    out->bias[ECG_BEAT_V] += 1000000;
    return err;
}

static void tr_fill(void *ctx, uint16_t *beats, uint16_t *labelled)
{
    *beats = 100u;
    *labelled = (uint16_t)((trainer_t *)ctx)->labels;
}

/* ------------------------------------------------------------------------------------------ */
/* Device under test: classifier + update state, re-initialised on the same flash = a reset    */
/* ------------------------------------------------------------------------------------------ */

static const uint8_t KEY[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t OTHER_KEY[32] = {99};

static uint32_t g_scratch[(ECG_CLASSIFIER_SCRATCH_BYTES + 3u) / 4u];
static ecg_classifier_t g_clf;
static ecg_update_t g_upd;

static void boot(void)
{
    ecg_classifier_cfg_t cc;
    ecg_update_cfg_t uc;
    memset(&cc, 0, sizeof cc);
    cc.scratch = g_scratch;
    cc.scratch_bytes = sizeof g_scratch;
    CHECK_EQ(ecg_classifier_init(&g_clf, &cc), ECG_OK);
    memset(&uc, 0, sizeof uc);
    uc.hal = &g_hal;
    uc.key = KEY;
    uc.key_len = sizeof KEY;
    uc.classifier = &g_clf;
    uc.trainer.ctx = &g_trainer;
    uc.trainer.clear = tr_clear;
    uc.trainer.label = tr_label;
    uc.trainer.train = tr_train;
    uc.trainer.fill = tr_fill;
    g_flash.dead = 0;
    g_flash.ops_left = -1;
    CHECK_EQ(ecg_update_init(&g_upd, &uc), ECG_OK);
}

/* The logits of the installed head on a fixed embedding: what "the classes the device emits"
 * depend on. */
static void head_logits(int8_t logits[ECG_CLASSIFIER_N_CLASSES])
{
    int8_t emb[ECG_CLASSIFIER_EMBEDDING_LEN];
    unsigned i;
    for (i = 0; i < ECG_CLASSIFIER_EMBEDDING_LEN; i++) {
        emb[i] = (int8_t)(i * 9u);
    }
    CHECK_EQ(ecg_classifier_run_head(ecg_classifier_get_head(&g_clf), emb, logits), ECG_OK);
}

static int same_logits(const int8_t a[ECG_CLASSIFIER_N_CLASSES],
                       const int8_t b[ECG_CLASSIFIER_N_CLASSES])
{
    return memcmp(a, b, ECG_CLASSIFIER_N_CLASSES) == 0;
}

static ecg_update_model_info_t info(void)
{
    ecg_update_model_info_t m;
    ecg_update_get_info(&g_upd, &m);
    return m;
}

/* ------------------------------------------------------------------------------------------ */
/* Packages                                                                                   */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    uint8_t header[ECG_UPDATE_HEADER_LEN];
    uint8_t payload[SLOT_BYTES];
    uint32_t payload_len;
    uint8_t tag[ECG_UPDATE_TAG_LEN];
} pkg_t;

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Header bytes written field by field from docs/protocol.md §11, not with the packer. */
static void make_pkg(pkg_t *k, uint8_t kind, uint32_t version, const uint8_t *key)
{
    ecg_hmac_sha256_t mac;
    uint8_t *h = k->header;
    wr32(&h[0], 0x50474345u); /* "ECGP" */
    h[4] = 1u;
    h[5] = kind;
    h[6] = h[7] = 0u;
    wr32(&h[8], ECG_MODEL_ID_U32);
    h[12] = (uint8_t)ECG_CLASSIFIER_EMBEDDING_LEN;
    h[13] = 0u;
    h[14] = (uint8_t)ECG_CLASSIFIER_N_CLASSES;
    h[15] = 0u;
    wr32(&h[16], version);
    wr32(&h[20], k->payload_len);
    wr32(&h[24], ecg_crc32_update(0u, k->payload, k->payload_len));
    ecg_hmac_sha256_init(&mac, key, 32u);
    ecg_hmac_sha256_update(&mac, k->header, sizeof k->header);
    ecg_hmac_sha256_update(&mac, k->payload, k->payload_len);
    ecg_hmac_sha256_final(&mac, k->tag);
}

/* A HEAD package: the factory head with class `boost`'s bias raised (a head that changes the
 * argmax towards `boost`). */
static void head_pkg(pkg_t *k, uint32_t version, uint8_t boost)
{
    ecg_classifier_head_tables_t t;
    CHECK_EQ(ecg_classifier_head_to_tables(ecg_classifier_factory_head(&g_clf), &t), ECG_OK);
    t.bias[boost] += 1000000;
    k->payload_len = ECG_UPDATE_HEAD_PAYLOAD_LEN;
    CHECK_EQ(ecg_update_pack_head(&t, k->payload, sizeof k->payload),
             (int32_t)ECG_UPDATE_HEAD_PAYLOAD_LEN);
    make_pkg(k, ECG_UPDATE_KIND_HEAD, version, KEY);
}

static int32_t cmd(uint8_t type, const uint8_t *p, size_t len, uint8_t *body, size_t *body_len)
{
    return ecg_update_command(&g_upd, type, p, len, body, body_len);
}

static int32_t begin(const pkg_t *k)
{
    uint8_t body[32];
    size_t n;
    return cmd(ECG_FT_PKG_BEGIN, k->header, sizeof k->header, body, &n);
}

/* PKG_CHUNK at `off` with `len` payload bytes; returns the status, *next the offset answered. */
static int32_t chunk(const pkg_t *k, uint32_t off, uint32_t len, uint32_t *next)
{
    uint8_t frame[ECG_UPDATE_CHUNK_HDR_LEN + ECG_UPDATE_CHUNK_MAX];
    uint8_t body[32];
    size_t n = 0;
    int32_t st;
    wr32(frame, off);
    memcpy(&frame[4], &k->payload[off], len);
    st = cmd(ECG_FT_PKG_CHUNK, frame, 4u + len, body, &n);
    CHECK_EQ(n, 4);
    if (next != NULL) {
        *next = (uint32_t)body[0] | ((uint32_t)body[1] << 8) | ((uint32_t)body[2] << 16) |
                ((uint32_t)body[3] << 24);
    }
    return st;
}

static int32_t commit(const pkg_t *k)
{
    uint8_t body[32];
    size_t n;
    return cmd(ECG_FT_PKG_COMMIT, k->tag, sizeof k->tag, body, &n);
}

/* The whole transfer; returns the first non-OK status (or the COMMIT's). */
static int32_t push(const pkg_t *k)
{
    uint32_t off = 0;
    int32_t st = begin(k);
    while (st == ECG_OK && off < k->payload_len) {
        const uint32_t n = k->payload_len - off < 100u ? k->payload_len - off : 100u;
        st = chunk(k, off, n, NULL);
        off += n;
    }
    return st == ECG_OK ? commit(k) : st;
}

/* ------------------------------------------------------------------------------------------ */
/* Tests                                                                                      */
/* ------------------------------------------------------------------------------------------ */

static void test_layouts_round_trip_and_head_payload_is_148_bytes(void)
{
    ecg_classifier_head_tables_t a, b;
    uint8_t buf[ECG_UPDATE_HEAD_PAYLOAD_LEN + 1u];
    ecg_update_model_info_t m, m2;
    uint8_t mb[ECG_UPDATE_MODEL_INFO_LEN];
    flash_reset();
    boot();
    CHECK_EQ(ECG_UPDATE_HEAD_PAYLOAD_LEN, 5 * 16 + 5 * 4 + 5 * 8 + 4 + 4);
    CHECK_EQ(ecg_classifier_head_to_tables(ecg_classifier_factory_head(&g_clf), &a), ECG_OK);
    a.bias[3] = -5;
    a.quant[1].shift = -7;
    a.logits_zero_point = -53;
    CHECK_EQ(ecg_update_pack_head(&a, buf, sizeof buf), (int32_t)ECG_UPDATE_HEAD_PAYLOAD_LEN);
    CHECK_EQ(ecg_update_pack_head(&a, buf, ECG_UPDATE_HEAD_PAYLOAD_LEN - 1u),
             ECG_PROTO_ERR_NO_SPACE);
    CHECK_EQ(ecg_update_unpack_head(buf, ECG_UPDATE_HEAD_PAYLOAD_LEN, &b), ECG_OK);
    CHECK(memcmp(a.weights, b.weights, sizeof a.weights) == 0);
    CHECK(memcmp(a.bias, b.bias, sizeof a.bias) == 0);
    CHECK(memcmp(a.quant, b.quant, sizeof a.quant) == 0);
    CHECK(a.logits_scale == b.logits_scale);
    CHECK_EQ(b.logits_zero_point, -53);
    CHECK_EQ(ecg_update_unpack_head(buf, ECG_UPDATE_HEAD_PAYLOAD_LEN + 1u, &b),
             ECG_PROTO_ERR_LENGTH);
    /* bias of class 3 is at offset 80 + 12, little-endian -5 */
    CHECK_EQ(buf[92], 0xFB);
    CHECK_EQ(buf[95], 0xFF);
    m.model_id = 0x01020304u;
    m.active_slot = 1;
    m.state = 2;
    m.head_version = 7;
    m.max_version = 9;
    m.trainer_beats = 300;
    m.trainer_labelled = 20;
    CHECK_EQ(ecg_update_pack_model_info(&m, mb, sizeof mb), 18);
    CHECK_EQ(mb[0], 0x04);
    CHECK_EQ(mb[4], 1);
    CHECK_EQ(mb[5], 2);
    CHECK_EQ(mb[6], 7);
    CHECK_EQ(mb[10], 9);
    CHECK_EQ(mb[14], 300 & 0xFF);
    CHECK_EQ(ecg_update_unpack_model_info(mb, sizeof mb, &m2), ECG_OK);
    CHECK(memcmp(&m, &m2, sizeof m) == 0 || (m2.trainer_labelled == 20 && m2.max_version == 9));
    CHECK_EQ(ecg_update_unpack_model_info(mb, 17, &m2), ECG_PROTO_ERR_LENGTH);
}

static void test_fresh_device_runs_the_factory_head(void)
{
    flash_reset();
    boot();
    CHECK(ecg_classifier_get_head(&g_clf) == ecg_classifier_factory_head(&g_clf));
    CHECK_EQ(info().state, ECG_UPDATE_STATE_FACTORY);
    CHECK_EQ(info().active_slot, 255);
    CHECK_EQ(info().max_version, 0);
    CHECK_EQ(info().model_id, ECG_MODEL_ID_U32);
    CHECK(ecg_update_can_head(&g_upd));
    CHECK(ecg_update_can_labels(&g_upd));
}

static void test_head_push_switches_the_head_and_survives_a_reset(void)
{
    static pkg_t k;
    int8_t before[5], after[5], rebooted[5];
    flash_reset();
    boot();
    head_logits(before);
    head_pkg(&k, 1u, ECG_BEAT_V);
    CHECK_EQ(push(&k), ECG_OK);
    head_logits(after);
    CHECK(!same_logits(before, after));
    CHECK_EQ(after[ECG_BEAT_V], 127); /* the boosted class saturates: argmax V */
    CHECK_EQ(info().state, ECG_UPDATE_STATE_PUSHED);
    CHECK_EQ(info().head_version, 1);
    CHECK_EQ(info().max_version, 1);
    CHECK_EQ(info().active_slot, 0);
    boot(); /* reset: the same flash, a new state */
    head_logits(rebooted);
    CHECK(same_logits(after, rebooted));
    CHECK_EQ(info().state, ECG_UPDATE_STATE_PUSHED);
    CHECK_EQ(info().head_version, 1);
    /* the next push goes to the other slot */
    head_pkg(&k, 2u, ECG_BEAT_S);
    CHECK_EQ(push(&k), ECG_OK);
    CHECK_EQ(info().active_slot, 1);
    head_logits(after);
    CHECK_EQ(after[ECG_BEAT_S], 127);
    boot();
    CHECK_EQ(info().active_slot, 1);
    CHECK_EQ(info().head_version, 2);
}

/* Each rejection: its status, and neither the installed head nor the flash's active slot moved. */
static void expect_untouched(const int8_t ref[5], uint32_t version)
{
    int8_t now[5];
    head_logits(now);
    CHECK(same_logits(ref, now));
    CHECK_EQ(info().head_version, version);
    boot();
    head_logits(now);
    CHECK(same_logits(ref, now));
    CHECK_EQ(info().head_version, version);
}

static void test_rejections_leave_the_active_head_untouched(void)
{
    static pkg_t good, k;
    int8_t ref[5];
    uint32_t next = 0;
    flash_reset();
    boot();
    head_pkg(&good, 5u, ECG_BEAT_V);
    CHECK_EQ(push(&good), ECG_OK);
    head_logits(ref);

    /* wrong tag: signed with another key */
    head_pkg(&k, 6u, ECG_BEAT_S);
    make_pkg(&k, ECG_UPDATE_KIND_HEAD, 6u, OTHER_KEY);
    CHECK_EQ(push(&k), ECG_PROTO_ERR_AUTH);
    expect_untouched(ref, 5u);
    /* one payload bit flipped after signing, header CRC re-made: the tag no longer matches */
    head_pkg(&k, 6u, ECG_BEAT_S);
    k.tag[0] ^= 1u;
    CHECK_EQ(push(&k), ECG_PROTO_ERR_AUTH);
    expect_untouched(ref, 5u);

    /* wrong CRC: the header's CRC field does not match (signed as is, so HMAC alone would pass) */
    head_pkg(&k, 6u, ECG_BEAT_S);
    k.payload[3] ^= 0x40u;
    {
        ecg_hmac_sha256_t mac;
        ecg_hmac_sha256_init(&mac, KEY, sizeof KEY);
        ecg_hmac_sha256_update(&mac, k.header, sizeof k.header);
        ecg_hmac_sha256_update(&mac, k.payload, k.payload_len);
        ecg_hmac_sha256_final(&mac, k.tag);
    }
    CHECK_EQ(push(&k), ECG_PROTO_ERR_PKG_CRC);
    expect_untouched(ref, 5u);

    /* wrong model id, wrong shape */
    head_pkg(&k, 6u, ECG_BEAT_S);
    wr32(&k.header[8], ECG_MODEL_ID_U32 ^ 1u);
    CHECK_EQ(push(&k), ECG_PROTO_ERR_MODEL);
    expect_untouched(ref, 5u);
    head_pkg(&k, 6u, ECG_BEAT_S);
    k.header[12] = 32u;
    CHECK_EQ(push(&k), ECG_PROTO_ERR_MODEL);
    expect_untouched(ref, 5u);
    head_pkg(&k, 6u, ECG_BEAT_S);
    k.header[14] = 4u;
    CHECK_EQ(push(&k), ECG_PROTO_ERR_MODEL);
    expect_untouched(ref, 5u);

    /* replayed older or equal version */
    head_pkg(&k, 5u, ECG_BEAT_S);
    CHECK_EQ(push(&k), ECG_PROTO_ERR_REPLAY);
    head_pkg(&k, 4u, ECG_BEAT_S);
    CHECK_EQ(push(&k), ECG_PROTO_ERR_REPLAY);
    CHECK_EQ(push(&good), ECG_PROTO_ERR_REPLAY); /* the very package accepted before */
    expect_untouched(ref, 5u);

    /* out-of-order chunk: nothing taken, the answer says where to continue */
    head_pkg(&k, 6u, ECG_BEAT_S);
    CHECK_EQ(begin(&k), ECG_OK);
    CHECK_EQ(chunk(&k, 0u, 50u, &next), ECG_OK);
    CHECK_EQ(next, 50);
    CHECK_EQ(chunk(&k, 100u, 48u, &next), ECG_PROTO_ERR_ORDER);
    CHECK_EQ(next, 50);
    CHECK_EQ(chunk(&k, 0u, 50u, &next), ECG_PROTO_ERR_ORDER); /* a repeat is not taken twice */
    CHECK_EQ(next, 50);
    /* missing chunk: COMMIT is INCOMPLETE and the transfer stays open to be finished */
    CHECK_EQ(commit(&k), ECG_PROTO_ERR_INCOMPLETE);
    expect_untouched(ref, 5u); /* (reboots: the open transfer is gone) */
    CHECK_EQ(commit(&k), ECG_ERR_STATE);
    CHECK_EQ(chunk(&k, 0u, 10u, &next), ECG_ERR_STATE);
    /* a chunk beyond the declared length */
    CHECK_EQ(begin(&k), ECG_OK);
    CHECK_EQ(chunk(&k, 0u, 148u, &next), ECG_OK);
    CHECK_EQ(chunk(&k, 148u, 1u, &next), ECG_PROTO_ERR_LENGTH);
    /* abort */
    {
        uint8_t body[32];
        size_t n = 99;
        CHECK_EQ(cmd(ECG_FT_PKG_ABORT, NULL, 0, body, &n), ECG_OK);
        CHECK_EQ(n, 0);
    }
    CHECK_EQ(commit(&k), ECG_ERR_STATE);
    expect_untouched(ref, 5u);
}

static void test_unsupported_and_malformed_packages_are_refused(void)
{
    static pkg_t k;
    uint8_t body[32];
    size_t n;
    flash_reset();
    boot();
    head_pkg(&k, 1u, ECG_BEAT_V);
    CHECK_EQ(cmd(ECG_FT_PKG_BEGIN, k.header, 27u, body, &n), ECG_PROTO_ERR_LENGTH);
    k.header[0] ^= 1u; /* magic */
    CHECK_EQ(begin(&k), ECG_ERR_UNSUPPORTED);
    head_pkg(&k, 1u, ECG_BEAT_V);
    k.header[5] = 9u; /* kind */
    CHECK_EQ(begin(&k), ECG_ERR_UNSUPPORTED);
    head_pkg(&k, 1u, ECG_BEAT_V);
    wr32(&k.header[20], 147u); /* a HEAD payload has exactly 148 bytes */
    CHECK_EQ(begin(&k), ECG_PROTO_ERR_LENGTH);
    head_pkg(&k, 1u, ECG_BEAT_V);
    CHECK_EQ(cmd(ECG_FT_PKG_COMMIT, k.tag, 31u, body, &n), ECG_PROTO_ERR_LENGTH);
    CHECK_EQ(info().state, ECG_UPDATE_STATE_FACTORY);
    /* a device without a key takes no packages */
    {
        ecg_update_t u;
        ecg_update_cfg_t uc;
        memset(&uc, 0, sizeof uc);
        uc.hal = &g_hal;
        CHECK_EQ(ecg_update_init(&u, &uc), ECG_OK);
        CHECK(!ecg_update_can_head(&u));
        CHECK_EQ(ecg_update_command(&u, ECG_FT_PKG_BEGIN, k.header, sizeof k.header, body, &n),
                 ECG_ERR_UNSUPPORTED);
        uc.key_len = ECG_UPDATE_MAX_KEY_LEN + 1u;
        uc.key = KEY;
        CHECK_EQ(ecg_update_init(&u, &uc), ECG_ERR_RANGE);
    }
}

/* Power fails after every possible number of storage operations of a head push (and of the
 * write that tears); after the reset the device runs either the old head or the new one, never
 * anything else, and a verified slot is always found. */
static void test_power_loss_at_any_point_keeps_the_old_or_the_new_head(void)
{
    static pkg_t old_pkg, new_pkg;
    int8_t old_logits[5], new_logits[5], now[5];
    long ops, total;
    unsigned saw_old = 0, saw_new = 0;
    flash_reset();
    boot();
    head_pkg(&old_pkg, 1u, ECG_BEAT_S);
    CHECK_EQ(push(&old_pkg), ECG_OK);
    head_logits(old_logits);
    head_pkg(&new_pkg, 2u, ECG_BEAT_V);
    /* count the operations of a complete push on a copy of the flash */
    {
        static flash_t saved;
        unsigned w0, e0;
        saved = g_flash;
        w0 = g_flash.writes;
        e0 = g_flash.erases;
        CHECK_EQ(push(&new_pkg), ECG_OK);
        head_logits(new_logits);
        total = (long)(g_flash.writes - w0 + g_flash.erases - e0);
        g_flash = saved;
    }
    CHECK(total >= 4); /* erase, header, chunks, tag, record */
    for (ops = 0; ops <= total; ops++) {
        static flash_t saved;
        saved = g_flash;
        boot();
        g_flash.ops_left = ops;
        (void)push(&new_pkg);
        boot(); /* power back: re-init on the flash as the failure left it */
        head_logits(now);
        if (same_logits(now, old_logits)) {
            saw_old++;
            CHECK_EQ(info().head_version, 1);
        } else {
            saw_new++;
            CHECK(same_logits(now, new_logits));
            CHECK_EQ(info().head_version, 2);
            CHECK_EQ(ops, total); /* only the complete record switches */
        }
        CHECK(info().active_slot != 255);
        g_flash = saved;
    }
    CHECK_EQ(saw_old, (unsigned)total);
    CHECK_EQ(saw_new, 1);
}

static void test_corrupted_active_slot_falls_back_to_the_other(void)
{
    static pkg_t a, b;
    int8_t la[5], now[5];
    flash_reset();
    boot();
    head_pkg(&a, 1u, ECG_BEAT_S);
    CHECK_EQ(push(&a), ECG_OK);
    head_logits(la);
    head_pkg(&b, 2u, ECG_BEAT_V);
    CHECK_EQ(push(&b), ECG_OK);
    CHECK_EQ(info().active_slot, 1);
    g_flash.mem[1][ECG_UPDATE_RECORD_LEN + ECG_UPDATE_HEADER_LEN + 7u] ^= 0x10u; /* bit rot */
    boot();
    head_logits(now);
    CHECK(same_logits(now, la));
    CHECK_EQ(info().active_slot, 0);
    CHECK_EQ(info().max_version, 2); /* the replay floor is kept from the newer record */
    head_pkg(&b, 2u, ECG_BEAT_V);
    CHECK_EQ(push(&b), ECG_PROTO_ERR_REPLAY);
    head_pkg(&b, 3u, ECG_BEAT_V);
    CHECK_EQ(push(&b), ECG_OK); /* into the corrupted slot, the inactive one */
    CHECK_EQ(info().active_slot, 1);
}

/* RESET_PERSONALIZATION payload written from docs/protocol.md §11.4, not with the device's code:
 * version u32 | HMAC-SHA256(key, "ECGEDGE-RESET-v1" | model_id u32 | version u32). */
static void reset_payload(uint32_t version, const uint8_t *key, uint8_t out[36])
{
    ecg_hmac_sha256_t mac;
    uint8_t msg[24];
    memcpy(msg, "ECGEDGE-RESET-v1", 16u);
    wr32(&msg[16], ECG_MODEL_ID_U32);
    wr32(&msg[20], version);
    wr32(out, version);
    ecg_hmac_sha256_init(&mac, key, 32u);
    ecg_hmac_sha256_update(&mac, msg, sizeof msg);
    ecg_hmac_sha256_final(&mac, &out[4]);
}

static int32_t reset_cmd(const uint8_t *p, size_t len, uint8_t *body, size_t *n)
{
    return cmd(ECG_FT_RESET_PERSONALIZATION, p, len, body, n);
}

static void test_reset_personalization_restores_the_factory_head_persistently(void)
{
    static pkg_t k;
    int8_t factory[5], now[5];
    uint8_t body[32], r[40];
    size_t n;
    flash_reset();
    boot();
    head_logits(factory);
    head_pkg(&k, 3u, ECG_BEAT_V);
    CHECK_EQ(push(&k), ECG_OK);
    head_logits(now);
    CHECK(!same_logits(now, factory));
    reset_payload(7u, KEY, r);
    CHECK_EQ(reset_cmd(r, 36u, body, &n), ECG_OK);
    CHECK_EQ(n, ECG_UPDATE_MODEL_INFO_LEN);
    CHECK_EQ(body[5], ECG_UPDATE_STATE_FACTORY);
    CHECK_EQ(info().max_version, 7); /* the reset's version is the new floor */
    CHECK(ecg_classifier_get_head(&g_clf) == ecg_classifier_factory_head(&g_clf));
    boot();
    head_logits(now);
    CHECK(same_logits(now, factory));
    CHECK_EQ(info().state, ECG_UPDATE_STATE_FACTORY);
    CHECK_EQ(info().head_version, 0);
    CHECK_EQ(info().max_version, 7);
    CHECK_EQ(push(&k), ECG_PROTO_ERR_REPLAY); /* the old package cannot come back */
    head_pkg(&k, 6u, ECG_BEAT_V);
    CHECK_EQ(push(&k), ECG_PROTO_ERR_REPLAY); /* nor a newer one below the reset's version */
    CHECK_EQ(reset_cmd(r, 36u, body, &n), ECG_PROTO_ERR_REPLAY); /* nor the reset itself */
    /* power lost during the reset: still the pushed head or the factory, nothing else */
    head_pkg(&k, 8u, ECG_BEAT_V);
    CHECK_EQ(push(&k), ECG_OK);
    reset_payload(9u, KEY, r);
    g_flash.ops_left = 1; /* the erase happens, the record tears */
    CHECK(reset_cmd(r, 36u, body, &n) != ECG_OK);
    boot();
    CHECK_EQ(info().head_version, 8);
}

static void test_reset_personalization_refusals_touch_neither_head_nor_slots(void)
{
    static pkg_t k;
    static flash_t before;
    int8_t pushed[5];
    uint8_t body[32], r[40];
    size_t n;
    unsigned writes, erases;
    flash_reset();
    boot();
    head_pkg(&k, 5u, ECG_BEAT_V);
    CHECK_EQ(push(&k), ECG_OK);
    head_logits(pushed);
    before = g_flash;
    writes = g_flash.writes;
    erases = g_flash.erases;
    reset_payload(6u, OTHER_KEY, r); /* wrong key */
    CHECK_EQ(reset_cmd(r, 36u, body, &n), ECG_PROTO_ERR_AUTH);
    CHECK_EQ(n, 0);
    reset_payload(6u, KEY, r);
    r[4] ^= 0x01u; /* tampered tag */
    CHECK_EQ(reset_cmd(r, 36u, body, &n), ECG_PROTO_ERR_AUTH);
    reset_payload(6u, KEY, r);
    wr32(r, 7u); /* version changed after signing */
    CHECK_EQ(reset_cmd(r, 36u, body, &n), ECG_PROTO_ERR_AUTH);
    reset_payload(5u, KEY, r); /* replayed: equal to the highest accepted */
    CHECK_EQ(reset_cmd(r, 36u, body, &n), ECG_PROTO_ERR_REPLAY);
    reset_payload(2u, KEY, r); /* older */
    CHECK_EQ(reset_cmd(r, 36u, body, &n), ECG_PROTO_ERR_REPLAY);
    reset_payload(6u, KEY, r);
    CHECK_EQ(reset_cmd(NULL, 0u, body, &n), ECG_PROTO_ERR_LENGTH); /* the old empty form */
    CHECK_EQ(reset_cmd(r, 35u, body, &n), ECG_PROTO_ERR_LENGTH);
    r[36] = 0u;
    CHECK_EQ(reset_cmd(r, 37u, body, &n), ECG_PROTO_ERR_LENGTH);
    CHECK_EQ(g_flash.writes, writes);
    CHECK_EQ(g_flash.erases, erases);
    CHECK(memcmp(before.mem, g_flash.mem, sizeof before.mem) == 0);
    CHECK_EQ(info().state, ECG_UPDATE_STATE_PUSHED);
    CHECK_EQ(info().max_version, 5);
    expect_untouched(pushed, 5u);
    /* the good one still works after all that */
    CHECK_EQ(reset_cmd(r, 36u, body, &n), ECG_OK);
    CHECK_EQ(info().state, ECG_UPDATE_STATE_FACTORY);
    CHECK_EQ(info().max_version, 6);
}

static void test_labels_package_trains_and_switches_like_a_head(void)
{
    static pkg_t k;
    uint32_t i;
    int8_t factory[5], now[5];
    flash_reset();
    boot();
    head_logits(factory);
    g_trainer.known_first = 1000u;
    g_trainer.known_last = 2000u;
    g_trainer.trained = 0u;
    /* 40 labels, 30 of them for beats "in the buffer" */
    k.payload_len = 40u * ECG_UPDATE_LABEL_LEN;
    for (i = 0; i < 40u; i++) {
        wr32(&k.payload[5u * i], 700u + 50u * i);
        k.payload[5u * i + 4u] = (uint8_t)(i % 5u);
    }
    make_pkg(&k, ECG_UPDATE_KIND_LABELS, 1u, KEY);
    CHECK_EQ(push(&k), ECG_OK);
    CHECK_EQ(g_trainer.trained, 1);
    CHECK_EQ(g_trainer.labels, 21); /* 700 + 50 i in [1000, 2000]: i = 6..26 */
    CHECK_EQ(info().state, ECG_UPDATE_STATE_TRAINED);
    CHECK_EQ(info().head_version, 1);
    CHECK_EQ(info().trainer_labelled, 21);
    head_logits(now);
    CHECK_EQ(now[ECG_BEAT_V], 127);
    boot();
    head_logits(now);
    CHECK_EQ(now[ECG_BEAT_V], 127);
    CHECK_EQ(info().state, ECG_UPDATE_STATE_TRAINED);
    /* labels for beats the device no longer has: STATE, head untouched */
    g_trainer.known_first = g_trainer.known_last = 5u;
    make_pkg(&k, ECG_UPDATE_KIND_LABELS, 2u, KEY);
    CHECK_EQ(push(&k), ECG_ERR_STATE);
    CHECK_EQ(info().head_version, 1);
    /* a forged labels package */
    g_trainer.known_first = 0u;
    g_trainer.known_last = 100000u;
    make_pkg(&k, ECG_UPDATE_KIND_LABELS, 3u, OTHER_KEY);
    CHECK_EQ(push(&k), ECG_PROTO_ERR_AUTH);
    CHECK_EQ(info().head_version, 1);
    /* a labels payload that is not whole records */
    k.payload_len = 7u;
    make_pkg(&k, ECG_UPDATE_KIND_LABELS, 3u, KEY);
    CHECK_EQ(begin(&k), ECG_PROTO_ERR_LENGTH);
}

static void test_storage_without_room_or_entries_means_no_packages(void)
{
    ecg_update_t u;
    ecg_update_cfg_t uc;
    flash_reset();
    g_flash.size[1] = ECG_UPDATE_HEAD_SLOT_BYTES - 1u;
    memset(&uc, 0, sizeof uc);
    uc.hal = &g_hal;
    uc.key = KEY;
    uc.key_len = sizeof KEY;
    CHECK_EQ(ecg_update_init(&u, &uc), ECG_OK);
    CHECK(!ecg_update_can_head(&u));
    CHECK(!ecg_update_can_labels(&u));
    g_flash.size[1] = ECG_UPDATE_HEAD_SLOT_BYTES;
    CHECK_EQ(ecg_update_init(&u, &uc), ECG_OK);
    CHECK(ecg_update_can_head(&u));
    CHECK(!ecg_update_can_labels(&u)); /* no trainer, no classifier */
    g_hal.storage_erase = NULL;
    CHECK_EQ(ecg_update_init(&u, &uc), ECG_OK);
    CHECK(!ecg_update_can_head(&u));
}

/* Random commands: pure noise, and a real package's frames with random bytes changed, in random
 * order. Nothing is signed with the device's key except the unmutated package, so the head may
 * only ever be the pushed one (version 1) or the factory head; under ASan/UBSan nothing may
 * read or write out of bounds. */
static void test_random_commands_never_install_an_unsigned_head(void)
{
    static pkg_t k;
    uint32_t x = 0x12345678u;
    unsigned it, installs = 0;
    flash_reset();
    boot();
    head_pkg(&k, 1u, ECG_BEAT_V);
    for (it = 0; it < 20000u; it++) {
        uint8_t p[ECG_UPDATE_CHUNK_HDR_LEN + ECG_UPDATE_CHUNK_MAX + 8u];
        uint8_t body[32];
        size_t n = 0, len, i;
        uint8_t type;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        type = (uint8_t)(ECG_FT_PKG_BEGIN + x % 6u);
        if (type == ECG_FT_RESET_PERSONALIZATION && (x >> 8) % 64u != 0u) {
            type = ECG_FT_PKG_CHUNK;
        }
        if (type == ECG_FT_PKG_BEGIN) {
            memcpy(p, k.header, sizeof k.header);
            len = sizeof k.header;
        } else if (type == ECG_FT_PKG_COMMIT) {
            memcpy(p, k.tag, sizeof k.tag);
            len = sizeof k.tag;
        } else {
            const uint32_t off = (x >> 4) % 160u;
            len = 4u + (x >> 12) % 60u;
            wr32(p, off);
            memcpy(&p[4], &k.payload[off], len - 4u);
        }
        if ((x >> 20) % 3u != 0u) { /* mutate some bytes, or cut the payload */
            for (i = 0; i < 1u + (x >> 24) % 3u; i++) {
                p[(x >> (i * 5u)) % len] ^= (uint8_t)(1u << ((x >> 28) & 7u));
            }
            if ((x >> 22) % 5u == 0u) {
                len = (x >> 9) % (len + 1u);
            }
        }
        if (cmd(type, p, len, body, &n) == ECG_OK && type == ECG_FT_PKG_COMMIT) {
            installs++;
        }
        CHECK(n <= ECG_UPDATE_MODEL_INFO_LEN);
        if (info().head_version != 0u && info().head_version != 1u) {
            CHECK_EQ(info().head_version, 1);
            break;
        }
    }
    CHECK(installs <= 1u); /* version 1 can only be installed once */
    boot();
    CHECK(info().head_version == 0u || info().head_version == 1u);
}

int main(void)
{
    RUN(test_layouts_round_trip_and_head_payload_is_148_bytes);
    RUN(test_fresh_device_runs_the_factory_head);
    RUN(test_head_push_switches_the_head_and_survives_a_reset);
    RUN(test_rejections_leave_the_active_head_untouched);
    RUN(test_unsupported_and_malformed_packages_are_refused);
    RUN(test_power_loss_at_any_point_keeps_the_old_or_the_new_head);
    RUN(test_corrupted_active_slot_falls_back_to_the_other);
    RUN(test_reset_personalization_restores_the_factory_head_persistently);
    RUN(test_reset_personalization_refusals_touch_neither_head_nor_slots);
    RUN(test_labels_package_trains_and_switches_like_a_head);
    RUN(test_storage_without_room_or_entries_means_no_packages);
    RUN(test_random_commands_never_install_an_unsigned_head);
    printf("sizeof(ecg_update_t)=%u\n", (unsigned)sizeof(ecg_update_t));
    printf("%u passed, %u failed\n", g_passed, g_failed);
    return g_failed == 0u ? 0 : 1;
}

#include "ecg/ecg_protocol.h"

#include <string.h>

/* ---------------------------------------------------------------------------------------------
 * Little-endian byte packing. Never cast structs onto buffers: the layouts are packed and the
 * targets differ in alignment rules.
 * ------------------------------------------------------------------------------------------- */

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)(v >> 24);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v & 0xFFFFFFFFu));
    put_u32(p + 4, (uint32_t)(v >> 32));
}

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] | ((unsigned)p[1] << 8));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | ((uint64_t)get_u32(p + 4) << 32);
}

/* The same, for the layouts other modules pack (ecg_update.c). */
void ecg_proto_put_u16(uint8_t *p, uint16_t v)
{
    put_u16(p, v);
}

void ecg_proto_put_u32(uint8_t *p, uint32_t v)
{
    put_u32(p, v);
}

uint16_t ecg_proto_get_u16(const uint8_t *p)
{
    return get_u16(p);
}

uint32_t ecg_proto_get_u32(const uint8_t *p)
{
    return get_u32(p);
}

/* Two's complement without implementation-defined conversions. */
static uint16_t i16_bits(int16_t v)
{
    return (uint16_t)((int32_t)v < 0 ? (int32_t)v + 65536 : (int32_t)v);
}

static int16_t i16_from_bits(uint16_t u)
{
    return (int16_t)((int32_t)u - ((u & 0x8000u) != 0u ? 65536 : 0));
}

static uint8_t i8_bits(int8_t v)
{
    return (uint8_t)((int)v < 0 ? (int)v + 256 : (int)v);
}

static int8_t i8_from_bits(uint8_t u)
{
    return (int8_t)((int)u - ((u & 0x80u) != 0u ? 256 : 0));
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---------------------------------------------------------------------------------------------
 * Errors, types, rates
 * ------------------------------------------------------------------------------------------- */

const char *ecg_proto_err_str(int32_t err)
{
#ifdef ECG_NO_ERRMSG
    (void)err;
    return "";
#else
    switch (err) {
    case ECG_PROTO_ERR_NO_SPACE: return "output buffer too small";
    case ECG_PROTO_ERR_COBS: return "invalid COBS encoding";
    case ECG_PROTO_ERR_TRUNCATED: return "frame shorter than header + CRC";
    case ECG_PROTO_ERR_OVERSIZE: return "frame too long";
    case ECG_PROTO_ERR_CRC: return "CRC mismatch";
    case ECG_PROTO_ERR_VERSION: return "unsupported protocol version";
    case ECG_PROTO_ERR_TYPE: return "unknown frame type";
    case ECG_PROTO_ERR_LENGTH: return "payload length wrong for its type";
    case ECG_PROTO_ERR_BUSY: return "busy, retry later";
    case ECG_PROTO_ERR_SEQUENCE: return "injected block does not continue the stream";
    case ECG_PROTO_ERR_AUTH: return "package authentication (HMAC) failed";
    case ECG_PROTO_ERR_PKG_CRC: return "package CRC-32 mismatch";
    case ECG_PROTO_ERR_MODEL: return "package is for another model or head shape";
    case ECG_PROTO_ERR_REPLAY: return "package version not above the highest accepted";
    case ECG_PROTO_ERR_ORDER: return "package chunk out of order";
    case ECG_PROTO_ERR_INCOMPLETE: return "package incomplete";
    case ECG_PROTO_ERR_STORAGE: return "storage failed";
    default: return ecg_err_str((ecg_err_t)err);
    }
#endif
}

int ecg_proto_type_known(uint8_t type, uint8_t accept)
{
    int to_host = (type & ECG_FT_DIR_TO_HOST) != 0u;
    if ((accept & (to_host ? ECG_PROTO_ACCEPT_TO_HOST : ECG_PROTO_ACCEPT_TO_DEVICE)) == 0u) {
        return 0;
    }
    switch (type) {
    case ECG_FT_GET_INFO:
    case ECG_FT_START_STREAM:
    case ECG_FT_STOP_STREAM:
    case ECG_FT_CONFIGURE:
    case ECG_FT_TIME_SYNC:
    case ECG_FT_INJECT_SAMPLES:
    case ECG_FT_ALERTS_PULL:
    case ECG_FT_ALERTS_ACK:
    case ECG_FT_ALERTS_CONFIGURE:
    case ECG_FT_ALERTS_GET_CONFIG:
    case ECG_FT_ALERT_NOTICE:
    ECG_FT_UPDATE_CASES:
    case ECG_FT_RESPONSE:
    case ECG_FT_DEVICE_INFO:
    case ECG_FT_SAMPLE_BLOCK:
    case ECG_FT_BEAT_EVENT:
    case ECG_FT_STATUS:
    case ECG_FT_BACKFILL_REQUEST:
    case ECG_FT_BACKFILL_BLOCK:
    case ECG_FT_BACKFILL_END:
        return 1;
    default:
        return 0;
    }
}

uint16_t ecg_proto_rate_hz(unsigned bit)
{
    static const uint16_t rates_hz[ECG_PROTO_N_RATES] = {125u, 128u, 250u, 256u,
                                                         360u, 500u, 512u, 1000u};
    return bit < ECG_PROTO_N_RATES ? rates_hz[bit] : 0u;
}

/* ---------------------------------------------------------------------------------------------
 * COBS. The encoder is incremental so a frame (header, payload, CRC) is encoded in one pass
 * straight into the caller's buffer, without a scratch copy of the raw frame.
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    uint8_t *dst;
    size_t cap;
    size_t pos;      /* next write position */
    size_t code_pos; /* position of the open block's code byte */
    uint8_t code;    /* 1 + data bytes in the open block */
    uint8_t open;    /* a block (and its code byte) is open */
    uint8_t err;     /* ran out of space */
} cobs_enc_t;

static void cobs_open(cobs_enc_t *e)
{
    if (e->pos >= e->cap) {
        e->err = 1u;
        return;
    }
    e->code_pos = e->pos++;
    e->code = 1u;
    e->open = 1u;
}

static void cobs_begin(cobs_enc_t *e, uint8_t *dst, size_t cap)
{
    e->dst = dst;
    e->cap = cap;
    e->pos = 0u;
    e->code_pos = 0u;
    e->code = 1u;
    e->open = 0u;
    e->err = 0u;
    cobs_open(e); /* even empty input encodes to one code byte */
}

static void cobs_put(cobs_enc_t *e, uint8_t b)
{
    if (e->err != 0u) {
        return;
    }
    if (e->open == 0u) { /* the previous block was a full 254-byte block: open lazily */
        cobs_open(e);
        if (e->err != 0u) {
            return;
        }
    }
    if (b == 0u) {
        /* the zero ends the block; a new one always follows (it may stay empty: code 0x01) */
        e->dst[e->code_pos] = e->code;
        cobs_open(e);
        return;
    }
    if (e->pos >= e->cap) {
        e->err = 1u;
        return;
    }
    e->dst[e->pos++] = b;
    e->code++;
    if (e->code == 0xFFu) {
        /* 254 data bytes: close without an implied zero; the next block opens only if more data
         * follows, which gives the minimal form (no trailing 0x01). */
        e->dst[e->code_pos] = e->code;
        e->open = 0u;
    }
}

static void cobs_put_n(cobs_enc_t *e, const uint8_t *src, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) {
        cobs_put(e, src[i]);
    }
}

/* Returns the encoded length or ECG_PROTO_ERR_NO_SPACE. */
static int32_t cobs_end(cobs_enc_t *e)
{
    if (e->err != 0u) {
        return ECG_PROTO_ERR_NO_SPACE;
    }
    if (e->open != 0u) {
        e->dst[e->code_pos] = e->code;
    }
    return (int32_t)e->pos;
}

int32_t ecg_cobs_encode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap)
{
    cobs_enc_t e;
    if ((src == NULL && len != 0u) || dst == NULL) {
        return ECG_ERR_NULL;
    }
    if (len > (size_t)INT32_MAX / 2u) {
        return ECG_ERR_RANGE;
    }
    cobs_begin(&e, dst, cap);
    cobs_put_n(&e, src, len);
    return cobs_end(&e);
}

int32_t ecg_cobs_decode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap)
{
    size_t i = 0u; /* read position */
    size_t o = 0u; /* write position; o < i while copying, so dst == src is safe */
    if (src == NULL || dst == NULL) {
        return ECG_ERR_NULL;
    }
    if (len > (size_t)INT32_MAX) {
        return ECG_ERR_RANGE;
    }
    while (i < len) {
        size_t n;
        size_t k;
        uint8_t code = src[i++];
        if (code == 0u) {
            return ECG_PROTO_ERR_COBS;
        }
        n = (size_t)code - 1u;
        if (n > len - i) {
            return ECG_PROTO_ERR_COBS; /* block runs past the end: typically a cut frame */
        }
        if (n > cap - o) {
            return ECG_PROTO_ERR_NO_SPACE;
        }
        for (k = 0; k < n; ++k) {
            uint8_t b = src[i + k];
            if (b == 0u) {
                return ECG_PROTO_ERR_COBS;
            }
            dst[o + k] = b;
        }
        i += n;
        o += n;
        if (code != 0xFFu && i < len) { /* the implied zero; never after the last block */
            if (o >= cap) {
                return ECG_PROTO_ERR_NO_SPACE;
            }
            dst[o++] = 0u;
        }
    }
    return (int32_t)o;
}

/* ---------------------------------------------------------------------------------------------
 * Frames
 * ------------------------------------------------------------------------------------------- */

int32_t ecg_frame_encode(uint8_t type, uint16_t seq, const uint8_t *payload, size_t payload_len,
                         uint8_t *out, size_t cap)
{
    uint8_t hdr[ECG_PROTO_HEADER_LEN];
    uint8_t crc_le[ECG_PROTO_CRC_LEN];
    uint16_t crc;
    cobs_enc_t e;
    int32_t n;

    if ((payload == NULL && payload_len != 0u) || out == NULL) {
        return ECG_ERR_NULL;
    }
    if (payload_len > ECG_PROTO_MAX_PAYLOAD) {
        return ECG_PROTO_ERR_OVERSIZE;
    }
    if (cap < ECG_PROTO_WIRE_LEN(payload_len)) {
        return ECG_PROTO_ERR_NO_SPACE; /* exact size is known: fail before writing anything */
    }
    hdr[0] = (uint8_t)ECG_PROTO_VERSION;
    hdr[1] = type;
    put_u16(&hdr[2], seq);
    crc = ecg_crc16_update((uint16_t)ECG_CRC16_INIT, hdr, sizeof hdr);
    crc = ecg_crc16_update(crc, payload, payload_len);
    put_u16(crc_le, crc);

    cobs_begin(&e, out, cap - 1u); /* keep one byte for the delimiter */
    cobs_put_n(&e, hdr, sizeof hdr);
    cobs_put_n(&e, payload, payload_len);
    cobs_put_n(&e, crc_le, sizeof crc_le);
    n = cobs_end(&e);
    if (n < 0) {
        return n;
    }
    out[n] = (uint8_t)ECG_PROTO_DELIMITER;
    return n + 1;
}

int32_t ecg_frame_parse_raw(const uint8_t *raw, size_t len, uint8_t accept, ecg_frame_t *frame)
{
    uint16_t crc_rx;
    if (raw == NULL || frame == NULL) {
        return ECG_ERR_NULL;
    }
    if (len < ECG_PROTO_OVERHEAD_LEN) {
        return ECG_PROTO_ERR_TRUNCATED;
    }
    if (len > ECG_PROTO_MAX_FRAME_LEN) {
        return ECG_PROTO_ERR_OVERSIZE;
    }
    crc_rx = get_u16(&raw[len - ECG_PROTO_CRC_LEN]);
    if (ecg_crc16_ccitt(raw, len - ECG_PROTO_CRC_LEN) != crc_rx) {
        return ECG_PROTO_ERR_CRC;
    }
    if (raw[0] != ECG_PROTO_VERSION) {
        return ECG_PROTO_ERR_VERSION;
    }
    if (ecg_proto_type_known(raw[1], accept) == 0) {
        return ECG_PROTO_ERR_TYPE;
    }
    frame->version = raw[0];
    frame->type = raw[1];
    frame->seq = get_u16(&raw[2]);
    frame->payload = &raw[ECG_PROTO_HEADER_LEN];
    frame->payload_len = (uint16_t)(len - ECG_PROTO_OVERHEAD_LEN);
    return ECG_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Streaming decoder
 * ------------------------------------------------------------------------------------------- */

ecg_err_t ecg_frame_decoder_init(ecg_frame_decoder_t *d, uint8_t accept)
{
    if (d == NULL) {
        return ECG_ERR_NULL;
    }
    if (accept == 0u || accept > ECG_PROTO_ACCEPT_ANY) {
        return ECG_ERR_RANGE;
    }
    memset(d, 0, sizeof *d);
    d->accept = accept;
    return ECG_OK;
}

void ecg_frame_decoder_reset(ecg_frame_decoder_t *d)
{
    if (d != NULL) {
        d->len = 0u;
        d->discarding = 0u;
    }
}

static void count_error(ecg_proto_stats_t *s, int32_t err)
{
    switch (err) {
    case ECG_PROTO_ERR_COBS: s->cobs_errors++; break;
    case ECG_PROTO_ERR_TRUNCATED: s->truncated++; break;
    case ECG_PROTO_ERR_OVERSIZE: s->oversize++; break;
    case ECG_PROTO_ERR_CRC: s->crc_errors++; break;
    case ECG_PROTO_ERR_VERSION: s->bad_version++; break;
    default: s->unknown_type++; break; /* ECG_PROTO_ERR_TYPE; nothing else reaches here */
    }
}

int32_t ecg_frame_decoder_push_byte(ecg_frame_decoder_t *d, uint8_t byte, ecg_frame_t *frame)
{
    int32_t n;
    int32_t rc;
    size_t len;

    if (d == NULL || frame == NULL) {
        return ECG_ERR_NULL;
    }
    if (byte != ECG_PROTO_DELIMITER) {
        if (d->discarding != 0u) {
            return 0;
        }
        if (d->len >= ECG_PROTO_MAX_ENCODED_LEN) {
            /* counted now, once; the rest up to the delimiter is dropped */
            d->len = 0u;
            d->discarding = 1u;
            d->stats.oversize++;
            return ECG_PROTO_ERR_OVERSIZE;
        }
        d->buf[d->len++] = byte;
        return 0;
    }
    /* delimiter */
    if (d->discarding != 0u) {
        d->discarding = 0u;
        return 0;
    }
    len = d->len;
    d->len = 0u;
    if (len == 0u) {
        return 0; /* empty frame: flush marker, not counted */
    }
    n = ecg_cobs_decode(d->buf, len, d->buf, sizeof d->buf);
    if (n < 0) {
        rc = ECG_PROTO_ERR_COBS; /* NO_SPACE cannot happen in place */
    } else {
        rc = ecg_frame_parse_raw(d->buf, (size_t)n, d->accept, frame);
    }
    if (rc != ECG_OK) {
        count_error(&d->stats, rc);
        return rc;
    }
    d->stats.frames_ok++;
    return 1;
}

size_t ecg_frame_decoder_push(ecg_frame_decoder_t *d, const uint8_t *data, size_t len,
                              ecg_frame_cb_t cb, void *ctx)
{
    size_t i;
    size_t frames = 0u;
    ecg_frame_t frame;
    if (d == NULL || data == NULL) {
        return 0u;
    }
    for (i = 0; i < len; ++i) {
        if (ecg_frame_decoder_push_byte(d, data[i], &frame) == 1) {
            frames++;
            if (cb != NULL) {
                cb(ctx, &frame);
            }
        }
    }
    return frames;
}

int32_t ecg_proto_seq_gap(uint16_t last, uint16_t seq)
{
    uint32_t d = ((uint32_t)seq + 65536u - (uint32_t)last - 1u) & 0xFFFFu;
    return d < 32768u ? (int32_t)d : -1;
}

/* ---------------------------------------------------------------------------------------------
 * Messages
 * ------------------------------------------------------------------------------------------- */

/* Common prologue of pack functions. */
#define PACK_CHECK(m, out, cap, need)                                                             \
    do {                                                                                          \
        if ((m) == NULL || (out) == NULL) {                                                       \
            return ECG_ERR_NULL;                                                                  \
        }                                                                                         \
        if ((cap) < (need)) {                                                                     \
            return ECG_PROTO_ERR_NO_SPACE;                                                        \
        }                                                                                         \
    } while (0)

/* Common prologue of unpack functions: longer payloads are accepted (§2). */
#define UNPACK_CHECK(p, len, m, need)                                                             \
    do {                                                                                          \
        if ((p) == NULL || (m) == NULL) {                                                         \
            return ECG_ERR_NULL;                                                                  \
        }                                                                                         \
        if ((len) < (need)) {                                                                     \
            return ECG_PROTO_ERR_LENGTH;                                                          \
        }                                                                                         \
    } while (0)

int32_t ecg_proto_pack_configure(const ecg_proto_configure_t *m, uint8_t *out, size_t cap)
{
    PACK_CHECK(m, out, cap, ECG_PROTO_CONFIGURE_LEN);
    out[0] = m->set_mask;
    put_u16(&out[1], m->sample_rate_hz);
    out[3] = m->mains_hz;
    out[4] = m->content;
    out[5] = m->source;
    return (int32_t)ECG_PROTO_CONFIGURE_LEN;
}

int32_t ecg_proto_unpack_configure(const uint8_t *p, size_t len, ecg_proto_configure_t *m)
{
    UNPACK_CHECK(p, len, m, ECG_PROTO_CONFIGURE_LEN);
    m->set_mask = p[0];
    m->sample_rate_hz = get_u16(&p[1]);
    m->mains_hz = p[3];
    m->content = p[4];
    m->source = p[5];
    return ECG_OK;
}

int32_t ecg_proto_pack_time_sync(const ecg_proto_time_sync_t *m, uint8_t *out, size_t cap)
{
    PACK_CHECK(m, out, cap, ECG_PROTO_TIME_SYNC_LEN);
    put_u64(out, m->host_time_us);
    return (int32_t)ECG_PROTO_TIME_SYNC_LEN;
}

int32_t ecg_proto_unpack_time_sync(const uint8_t *p, size_t len, ecg_proto_time_sync_t *m)
{
    UNPACK_CHECK(p, len, m, ECG_PROTO_TIME_SYNC_LEN);
    m->host_time_us = get_u64(p);
    return ECG_OK;
}

int32_t ecg_proto_pack_time_sync_result(const ecg_proto_time_sync_result_t *m, uint8_t *out,
                                        size_t cap)
{
    PACK_CHECK(m, out, cap, ECG_PROTO_TIME_SYNC_RESULT_LEN);
    put_u64(&out[0], m->host_time_us);
    put_u64(&out[8], m->device_time_us);
    put_u32(&out[16], m->sample_index);
    return (int32_t)ECG_PROTO_TIME_SYNC_RESULT_LEN;
}

int32_t ecg_proto_unpack_time_sync_result(const uint8_t *p, size_t len,
                                          ecg_proto_time_sync_result_t *m)
{
    UNPACK_CHECK(p, len, m, ECG_PROTO_TIME_SYNC_RESULT_LEN);
    m->host_time_us = get_u64(&p[0]);
    m->device_time_us = get_u64(&p[8]);
    m->sample_index = get_u32(&p[16]);
    return ECG_OK;
}

int32_t ecg_proto_pack_inject_result(const ecg_proto_inject_result_t *m, uint8_t *out, size_t cap)
{
    PACK_CHECK(m, out, cap, ECG_PROTO_INJECT_RESULT_LEN);
    put_u32(&out[0], m->next_index);
    put_u16(&out[4], m->free_samples);
    return (int32_t)ECG_PROTO_INJECT_RESULT_LEN;
}

int32_t ecg_proto_unpack_inject_result(const uint8_t *p, size_t len, ecg_proto_inject_result_t *m)
{
    UNPACK_CHECK(p, len, m, ECG_PROTO_INJECT_RESULT_LEN);
    m->next_index = get_u32(&p[0]);
    m->free_samples = get_u16(&p[4]);
    return ECG_OK;
}

int32_t ecg_proto_pack_response(const ecg_proto_response_t *m, uint8_t *out, size_t cap)
{
    if (m == NULL || out == NULL || (m->body == NULL && m->body_len != 0u)) {
        return ECG_ERR_NULL;
    }
    if (m->body_len > ECG_PROTO_MAX_PAYLOAD - ECG_PROTO_RESPONSE_HDR_LEN) {
        return ECG_PROTO_ERR_OVERSIZE;
    }
    if (cap < ECG_PROTO_RESPONSE_HDR_LEN + m->body_len) {
        return ECG_PROTO_ERR_NO_SPACE;
    }
    out[0] = m->cmd_type;
    out[1] = i8_bits(m->status);
    if (m->body_len != 0u) {
        memmove(&out[ECG_PROTO_RESPONSE_HDR_LEN], m->body, m->body_len);
    }
    return (int32_t)(ECG_PROTO_RESPONSE_HDR_LEN + m->body_len);
}

int32_t ecg_proto_unpack_response(const uint8_t *p, size_t len, ecg_proto_response_t *m)
{
    UNPACK_CHECK(p, len, m, ECG_PROTO_RESPONSE_HDR_LEN);
    m->cmd_type = p[0];
    m->status = i8_from_bits(p[1]);
    m->body = &p[ECG_PROTO_RESPONSE_HDR_LEN];
    m->body_len = len - ECG_PROTO_RESPONSE_HDR_LEN;
    return ECG_OK;
}

int32_t ecg_proto_pack_device_info(const ecg_proto_device_info_t *m, uint8_t *out, size_t cap)
{
    PACK_CHECK(m, out, cap, ECG_PROTO_DEVICE_INFO_LEN);
    out[0] = m->protocol_version;
    out[1] = m->fw_major;
    out[2] = m->fw_minor;
    out[3] = m->fw_patch;
    out[4] = m->core_major;
    out[5] = m->core_minor;
    out[6] = m->core_patch;
    out[7] = m->leads;
    put_u16(&out[8], m->model_id);
    put_u16(&out[10], m->sample_rate_hz);
    put_u16(&out[12], m->rates_mask);
    put_u32(&out[14], f32_bits(m->gain_uv_per_count));
    put_u32(&out[18], m->capabilities);
    out[22] = m->mains_hz;
    out[23] = m->content;
    out[24] = m->source;
    return (int32_t)ECG_PROTO_DEVICE_INFO_LEN;
}

int32_t ecg_proto_unpack_device_info(const uint8_t *p, size_t len, ecg_proto_device_info_t *m)
{
    UNPACK_CHECK(p, len, m, ECG_PROTO_DEVICE_INFO_LEN);
    m->protocol_version = p[0];
    m->fw_major = p[1];
    m->fw_minor = p[2];
    m->fw_patch = p[3];
    m->core_major = p[4];
    m->core_minor = p[5];
    m->core_patch = p[6];
    m->leads = p[7];
    m->model_id = get_u16(&p[8]);
    m->sample_rate_hz = get_u16(&p[10]);
    m->rates_mask = get_u16(&p[12]);
    m->gain_uv_per_count = f32_from_bits(get_u32(&p[14]));
    m->capabilities = get_u32(&p[18]);
    m->mains_hz = p[22];
    m->content = p[23];
    m->source = p[24];
    return ECG_OK;
}

int32_t ecg_proto_pack_beat(const ecg_proto_beat_t *m, uint8_t *out, size_t cap)
{
    PACK_CHECK(m, out, cap, ECG_PROTO_BEAT_LEN);
    put_u32(&out[0], m->sample_index);
    put_u16(&out[4], m->rr_samples);
    out[6] = m->beat_class;
    out[7] = m->quality;
    out[8] = m->flags;
    out[9] = m->confidence;
    return (int32_t)ECG_PROTO_BEAT_LEN;
}

int32_t ecg_proto_unpack_beat(const uint8_t *p, size_t len, ecg_proto_beat_t *m)
{
    UNPACK_CHECK(p, len, m, ECG_PROTO_BEAT_MIN_LEN);
    m->sample_index = get_u32(&p[0]);
    m->rr_samples = get_u16(&p[4]);
    m->beat_class = p[6];
    m->quality = p[7];
    m->flags = p[8];
    m->confidence = len >= ECG_PROTO_BEAT_LEN ? p[9] : 0u;
    return ECG_OK;
}

int32_t ecg_proto_pack_status(const ecg_proto_status_t *m, uint8_t *out, size_t cap)
{
    PACK_CHECK(m, out, cap, ECG_PROTO_STATUS_LEN);
    put_u32(&out[0], m->sample_index);
    out[4] = m->battery_pct;
    out[5] = m->lead_off;
    out[6] = m->buffer_fill_pct;
    out[7] = m->flags;
    put_u32(&out[8], m->samples_dropped);
    put_u32(&out[12], m->frames_dropped);
    put_u32(&out[16], m->rx_crc_errors);
    put_u32(&out[20], m->rx_cobs_errors);
    put_u32(&out[24], m->rx_truncated);
    put_u32(&out[28], m->rx_oversize);
    put_u32(&out[32], m->rx_bad_version);
    put_u32(&out[36], m->rx_unknown_type);
    return (int32_t)ECG_PROTO_STATUS_LEN;
}

int32_t ecg_proto_unpack_status(const uint8_t *p, size_t len, ecg_proto_status_t *m)
{
    UNPACK_CHECK(p, len, m, ECG_PROTO_STATUS_LEN);
    m->sample_index = get_u32(&p[0]);
    m->battery_pct = p[4];
    m->lead_off = p[5];
    m->buffer_fill_pct = p[6];
    m->flags = p[7];
    m->samples_dropped = get_u32(&p[8]);
    m->frames_dropped = get_u32(&p[12]);
    m->rx_crc_errors = get_u32(&p[16]);
    m->rx_cobs_errors = get_u32(&p[20]);
    m->rx_truncated = get_u32(&p[24]);
    m->rx_oversize = get_u32(&p[28]);
    m->rx_bad_version = get_u32(&p[32]);
    m->rx_unknown_type = get_u32(&p[36]);
    return ECG_OK;
}

int32_t ecg_proto_pack_samples(const ecg_proto_samples_hdr_t *h, const int16_t *samples,
                               uint8_t *out, size_t cap)
{
    size_t count;
    size_t need;
    size_t i;
    if (h == NULL || samples == NULL || out == NULL) {
        return ECG_ERR_NULL;
    }
    if (h->leads < 1u || h->leads > ECG_PROTO_MAX_LEADS || h->n_samples < 1u ||
        h->n_samples > ECG_PROTO_MAX_SAMPLES(h->leads)) {
        return ECG_ERR_RANGE;
    }
    count = (size_t)h->n_samples * h->leads;
    need = ECG_PROTO_SAMPLES_HDR_LEN + 2u * count;
    if (cap < need) {
        return ECG_PROTO_ERR_NO_SPACE;
    }
    put_u32(&out[0], h->sample_index);
    out[4] = h->leads;
    out[5] = h->flags;
    for (i = 0; i < count; ++i) {
        put_u16(&out[ECG_PROTO_SAMPLES_HDR_LEN + 2u * i], i16_bits(samples[i]));
    }
    return (int32_t)need;
}

int32_t ecg_proto_unpack_samples(const uint8_t *p, size_t len, ecg_proto_samples_hdr_t *h,
                                 int16_t *samples, size_t cap)
{
    size_t body;
    size_t stride;
    size_t count;
    size_t i;
    uint8_t leads;
    UNPACK_CHECK(p, len, h, ECG_PROTO_SAMPLES_HDR_LEN + 2u);
    leads = p[4];
    if (leads < 1u || leads > ECG_PROTO_MAX_LEADS || len > ECG_PROTO_MAX_PAYLOAD) {
        return ECG_PROTO_ERR_LENGTH;
    }
    body = len - ECG_PROTO_SAMPLES_HDR_LEN;
    stride = 2u * (size_t)leads;
    if (body % stride != 0u) {
        return ECG_PROTO_ERR_LENGTH;
    }
    count = body / 2u;
    if (samples != NULL && cap < count) {
        return ECG_PROTO_ERR_NO_SPACE;
    }
    h->sample_index = get_u32(&p[0]);
    h->leads = leads;
    h->flags = p[5];
    h->n_samples = (uint16_t)(body / stride);
    if (samples != NULL) {
        for (i = 0; i < count; ++i) {
            samples[i] = i16_from_bits(get_u16(&p[ECG_PROTO_SAMPLES_HDR_LEN + 2u * i]));
        }
    }
    return ECG_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Alerts
 * ------------------------------------------------------------------------------------------- */

int32_t ecg_proto_pack_alerts_pull(const ecg_proto_alerts_pull_t *m, uint8_t *out, size_t cap)
{
    PACK_CHECK(m, out, cap, ECG_PROTO_ALERTS_PULL_LEN);
    put_u32(&out[0], m->after_id);
    out[4] = m->max_records;
    return (int32_t)ECG_PROTO_ALERTS_PULL_LEN;
}

int32_t ecg_proto_unpack_alerts_pull(const uint8_t *p, size_t len, ecg_proto_alerts_pull_t *m)
{
    UNPACK_CHECK(p, len, m, ECG_PROTO_ALERTS_PULL_LEN);
    m->after_id = get_u32(&p[0]);
    m->max_records = p[4];
    return ECG_OK;
}

int32_t ecg_proto_pack_alerts_ack(uint32_t id, uint8_t *out, size_t cap)
{
    PACK_CHECK(&id, out, cap, ECG_PROTO_ALERTS_ACK_LEN);
    put_u32(out, id);
    return (int32_t)ECG_PROTO_ALERTS_ACK_LEN;
}

int32_t ecg_proto_unpack_alerts_ack(const uint8_t *p, size_t len, uint32_t *id)
{
    UNPACK_CHECK(p, len, id, ECG_PROTO_ALERTS_ACK_LEN);
    *id = get_u32(p);
    return ECG_OK;
}

int32_t ecg_proto_pack_alerts_cfg(const ecg_alerts_cfg_t *m, uint8_t *out, size_t cap)
{
    PACK_CHECK(m, out, cap, ECG_PROTO_ALERTS_CFG_LEN);
    put_u16(&out[0], m->enable_mask);
    out[2] = m->brady_bpm;
    out[3] = m->tachy_bpm;
    out[4] = m->rate_beats;
    out[5] = m->rate_sustain_s;
    put_u16(&out[6], m->pause_ms);
    put_u16(&out[8], m->asystole_ms);
    out[10] = m->vt_beats;
    out[11] = m->vt_bpm;
    out[12] = m->v_per_min;
    out[13] = m->s_per_min;
    out[14] = m->af_beats;
    put_u16(&out[15], m->af_nrmssd_permille);
    put_u16(&out[17], m->af_entropy_permille);
    put_u16(&out[19], m->lead_off_ms);
    out[21] = m->poor_signal_s;
    return (int32_t)ECG_PROTO_ALERTS_CFG_LEN;
}

int32_t ecg_proto_unpack_alerts_cfg(const uint8_t *p, size_t len, ecg_alerts_cfg_t *m)
{
    UNPACK_CHECK(p, len, m, ECG_PROTO_ALERTS_CFG_LEN);
    m->enable_mask = get_u16(&p[0]);
    m->brady_bpm = p[2];
    m->tachy_bpm = p[3];
    m->rate_beats = p[4];
    m->rate_sustain_s = p[5];
    m->pause_ms = get_u16(&p[6]);
    m->asystole_ms = get_u16(&p[8]);
    m->vt_beats = p[10];
    m->vt_bpm = p[11];
    m->v_per_min = p[12];
    m->s_per_min = p[13];
    m->af_beats = p[14];
    m->af_nrmssd_permille = get_u16(&p[15]);
    m->af_entropy_permille = get_u16(&p[17]);
    m->lead_off_ms = get_u16(&p[19]);
    m->poor_signal_s = p[21];
    return ECG_OK;
}

int32_t ecg_proto_pack_alert_status(const ecg_proto_alert_status_t *m, uint8_t *out, size_t cap)
{
    PACK_CHECK(m, out, cap, ECG_PROTO_ALERT_STATUS_LEN);
    put_u32(&out[0], m->last_id);
    put_u16(&out[4], m->queued);
    put_u32(&out[6], m->dropped);
    out[10] = m->max_severity;
    return (int32_t)ECG_PROTO_ALERT_STATUS_LEN;
}

int32_t ecg_proto_unpack_alert_status(const uint8_t *p, size_t len, ecg_proto_alert_status_t *m)
{
    UNPACK_CHECK(p, len, m, ECG_PROTO_ALERT_STATUS_LEN);
    m->last_id = get_u32(&p[0]);
    m->queued = get_u16(&p[4]);
    m->dropped = get_u32(&p[6]);
    m->max_severity = p[10];
    return ECG_OK;
}

int32_t ecg_proto_pack_alert(const ecg_alert_t *m, uint8_t *out, size_t cap)
{
    PACK_CHECK(m, out, cap, ECG_PROTO_ALERT_LEN);
    put_u32(&out[0], m->id);
    put_u32(&out[4], m->episode);
    out[8] = m->type;
    out[9] = m->severity;
    out[10] = m->flags;
    put_u32(&out[11], m->start_index);
    put_u32(&out[15], m->end_index);
    put_u64(&out[19], m->time_us);
    put_u16(&out[27], m->value);
    put_u16(&out[29], m->count);
    return (int32_t)ECG_PROTO_ALERT_LEN;
}

int32_t ecg_proto_unpack_alert(const uint8_t *p, size_t len, ecg_alert_t *m)
{
    UNPACK_CHECK(p, len, m, ECG_PROTO_ALERT_LEN);
    m->id = get_u32(&p[0]);
    m->episode = get_u32(&p[4]);
    m->type = p[8];
    m->severity = p[9];
    m->flags = p[10];
    m->start_index = get_u32(&p[11]);
    m->end_index = get_u32(&p[15]);
    m->time_us = get_u64(&p[19]);
    m->value = get_u16(&p[27]);
    m->count = get_u16(&p[29]);
    return ECG_OK;
}

int32_t ecg_proto_pack_alerts_page(const ecg_proto_alerts_page_t *h, const ecg_alert_t *recs,
                                   uint8_t *out, size_t cap)
{
    size_t need;
    size_t i;
    if (h == NULL || out == NULL || (recs == NULL && h->n != 0u)) {
        return ECG_ERR_NULL;
    }
    if (h->n > ECG_PROTO_ALERTS_PER_PAGE) {
        return ECG_ERR_RANGE;
    }
    need = ECG_PROTO_ALERTS_PAGE_HDR_LEN + (size_t)h->n * ECG_PROTO_ALERT_LEN;
    if (cap < need) {
        return ECG_PROTO_ERR_NO_SPACE;
    }
    (void)ecg_proto_pack_alert_status(&h->status, out, cap);
    put_u16(&out[11], h->pending);
    out[13] = h->n;
    out[14] = (uint8_t)ECG_PROTO_ALERT_LEN;
    for (i = 0; i < h->n; i++) {
        (void)ecg_proto_pack_alert(&recs[i],
                                   &out[ECG_PROTO_ALERTS_PAGE_HDR_LEN + i * ECG_PROTO_ALERT_LEN],
                                   ECG_PROTO_ALERT_LEN);
    }
    return (int32_t)need;
}

int32_t ecg_proto_unpack_alerts_page(const uint8_t *p, size_t len, ecg_proto_alerts_page_t *h,
                                     ecg_alert_t *recs, size_t cap)
{
    size_t i;
    size_t rl;
    UNPACK_CHECK(p, len, h, ECG_PROTO_ALERTS_PAGE_HDR_LEN);
    rl = p[14];
    if (rl < ECG_PROTO_ALERT_LEN || len < ECG_PROTO_ALERTS_PAGE_HDR_LEN + (size_t)p[13] * rl) {
        return ECG_PROTO_ERR_LENGTH;
    }
    if (recs != NULL && cap < p[13]) {
        return ECG_PROTO_ERR_NO_SPACE;
    }
    (void)ecg_proto_unpack_alert_status(p, len, &h->status);
    h->pending = get_u16(&p[11]);
    h->n = p[13];
    h->record_len = p[14];
    if (recs != NULL) {
        for (i = 0; i < h->n; i++) {
            (void)ecg_proto_unpack_alert(&p[ECG_PROTO_ALERTS_PAGE_HDR_LEN + i * rl], rl, &recs[i]);
        }
    }
    return ECG_OK;
}

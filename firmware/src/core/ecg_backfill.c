#include "ecg/ecg_backfill.h"

#include <string.h>

#define SEQ_HALF 32768u

/* ---------------------------------------------------------------------------------------------
 * Byte access that wraps around the end of the caller's array
 * ------------------------------------------------------------------------------------------- */

static size_t wrap(const ecg_backfill_t *bf, size_t off)
{
    return off >= bf->size ? off - bf->size : off;
}

static void ring_write(ecg_backfill_t *bf, size_t off, const uint8_t *src, size_t n)
{
    const size_t first = n < bf->size - off ? n : bf->size - off;
    memcpy(&bf->buf[off], src, first);
    if (n > first) {
        memcpy(bf->buf, src + first, n - first);
    }
}

static void ring_read(const ecg_backfill_t *bf, size_t off, uint8_t *dst, size_t n)
{
    const size_t first = n < bf->size - off ? n : bf->size - off;
    memcpy(dst, &bf->buf[off], first);
    if (n > first) {
        memcpy(dst + first, bf->buf, n - first);
    }
}

/* Bytes of the record at `off` (header included). */
static size_t record_len(const ecg_backfill_t *bf, size_t off)
{
    return ECG_BACKFILL_REC_HDR + (size_t)bf->buf[off];
}

static uint16_t record_seq(const ecg_backfill_t *bf, size_t off)
{
    return (uint16_t)((unsigned)bf->buf[wrap(bf, off + 1u)] |
                      ((unsigned)bf->buf[wrap(bf, off + 2u)] << 8));
}

/* Offset of the k-th record from the oldest (k < records). */
static size_t record_at(const ecg_backfill_t *bf, uint16_t k)
{
    size_t off = bf->head;
    uint16_t i;
    for (i = 0; i < k; i++) {
        off = wrap(bf, off + record_len(bf, off));
    }
    return off;
}

static void evict_oldest(ecg_backfill_t *bf)
{
    const size_t n = record_len(bf, bf->head);
    if (bf->cur_ok && bf->cur_off == bf->head) {
        bf->cur_ok = 0u;
    }
    bf->head = wrap(bf, bf->head + n);
    bf->used -= n;
    bf->records--;
}

/* ---------------------------------------------------------------------------------------------
 * API
 * ------------------------------------------------------------------------------------------- */

ecg_err_t ecg_backfill_init(ecg_backfill_t *bf, uint8_t *buf, size_t size_bytes)
{
    if (bf == NULL || buf == NULL) {
        return ECG_ERR_NULL;
    }
    if (size_bytes < ECG_BACKFILL_MIN_BYTES) {
        return ECG_ERR_RANGE;
    }
    memset(bf, 0, sizeof *bf);
    bf->buf = buf;
    bf->size = size_bytes;
    return ECG_OK;
}

void ecg_backfill_reset(ecg_backfill_t *bf)
{
    if (bf == NULL) {
        return;
    }
    bf->head = 0u;
    bf->used = 0u;
    bf->records = 0u;
    bf->active = 0u;
    bf->cur_ok = 0u;
}

void ecg_backfill_put(ecg_backfill_t *bf, uint16_t seq, const uint8_t *payload, size_t len)
{
    uint8_t hdr[ECG_BACKFILL_REC_HDR];
    size_t need;
    if (bf == NULL || payload == NULL || len == 0u || len > ECG_PROTO_MAX_PAYLOAD) {
        return;
    }
    if (bf->records != 0u && seq != bf->next_seq) {
        ecg_backfill_reset(bf); /* keep the records a run of consecutive seqs */
    }
    need = ECG_BACKFILL_REC_HDR + len;
    while (bf->size - bf->used < need) {
        evict_oldest(bf);
    }
    hdr[0] = (uint8_t)len;
    hdr[1] = (uint8_t)(seq & 0xFFu);
    hdr[2] = (uint8_t)(seq >> 8);
    {
        const size_t off = wrap(bf, bf->head + bf->used);
        ring_write(bf, off, hdr, sizeof hdr);
        ring_write(bf, wrap(bf, off + sizeof hdr), payload, len);
    }
    bf->used += need;
    bf->records++;
    bf->next_seq = (uint16_t)(seq + 1u);
}

size_t ecg_backfill_records(const ecg_backfill_t *bf)
{
    return bf != NULL ? bf->records : 0u;
}

uint16_t ecg_backfill_oldest_seq(const ecg_backfill_t *bf)
{
    return bf != NULL ? (uint16_t)(bf->next_seq - bf->records) : 0u;
}

/* Copy the payload of the record at `off`; 0 when it does not fit `cap`. */
static size_t copy_payload(const ecg_backfill_t *bf, size_t off, uint8_t *out, size_t cap)
{
    const size_t len = bf->buf[off];
    if (len > cap) {
        return 0u;
    }
    ring_read(bf, wrap(bf, off + ECG_BACKFILL_REC_HDR), out, len);
    return len;
}

size_t ecg_backfill_get(const ecg_backfill_t *bf, uint16_t seq, uint8_t *out, size_t cap)
{
    uint16_t k;
    if (bf == NULL || out == NULL) {
        return 0u;
    }
    k = (uint16_t)(seq - ecg_backfill_oldest_seq(bf));
    if (k >= bf->records) {
        return 0u;
    }
    return copy_payload(bf, record_at(bf, k), out, cap);
}

ecg_err_t ecg_backfill_request(ecg_backfill_t *bf, const ecg_proto_backfill_request_t *req,
                               uint16_t cmd_seq, ecg_proto_backfill_result_t *res)
{
    uint16_t age_first;
    uint16_t age_last;
    uint16_t n = 0u;
    uint16_t start;
    if (bf == NULL || req == NULL || res == NULL) {
        return ECG_ERR_NULL;
    }
    if (req->count == 0u || req->count > SEQ_HALF) {
        return ECG_ERR_RANGE;
    }
    /* Ages count back from the newest block held (age 0); an age >= 32768 is in the future. */
    age_first = (uint16_t)(bf->next_seq - 1u - req->first_seq);
    age_last = (uint16_t)(bf->next_seq - 1u - (uint16_t)(req->first_seq + req->count - 1u));
    start = req->first_seq;
    if (bf->records != 0u && age_first < SEQ_HALF) {
        if (age_last >= SEQ_HALF) {
            age_last = 0u; /* the range runs past the newest block: clip */
        }
        if (age_first >= bf->records) {
            age_first = (uint16_t)(bf->records - 1u); /* starts before the oldest: clip */
        }
        if (age_first >= age_last) {
            n = (uint16_t)(age_first - age_last + 1u);
            start = (uint16_t)(bf->next_seq - 1u - age_first);
        }
    }
    res->first_seq = start;
    res->count = n;
    res->oldest_seq = ecg_backfill_oldest_seq(bf);
    res->next_seq = bf->next_seq;
    bf->active = 1u;
    bf->cmd_seq = cmd_seq;
    bf->want_seq = start;
    bf->left = n;
    bf->end.first_seq = start;
    bf->end.count = n;
    bf->end.sent = 0u;
    bf->cur_ok = 0u;
    return ECG_OK;
}

size_t ecg_backfill_next(ecg_backfill_t *bf, uint16_t *seq, uint8_t *payload, size_t cap)
{
    if (bf == NULL || seq == NULL || payload == NULL) {
        return 0u;
    }
    while (bf->active && bf->left != 0u) {
        const uint16_t oldest = ecg_backfill_oldest_seq(bf);
        const uint16_t k = (uint16_t)(bf->want_seq - oldest);
        size_t len;
        if (bf->records == 0u) {
            bf->left = 0u;
            break;
        }
        if (k >= bf->records) { /* evicted since the request: skip to the oldest held */
            const uint16_t skip = (uint16_t)(oldest - bf->want_seq);
            if (skip >= bf->left) {
                bf->left = 0u;
                break;
            }
            bf->want_seq = oldest;
            bf->left = (uint16_t)(bf->left - skip);
            bf->cur_ok = 0u;
            continue;
        }
        if (!bf->cur_ok) {
            bf->cur_off = record_at(bf, k);
            bf->cur_ok = 1u;
        }
        len = copy_payload(bf, bf->cur_off, payload, cap);
        if (len == 0u) {
            return 0u; /* `cap` too small: the caller's bug; the replay waits */
        }
        *seq = record_seq(bf, bf->cur_off);
        bf->cur_off = wrap(bf, bf->cur_off + record_len(bf, bf->cur_off));
        bf->cur_ok = (uint8_t)(bf->left > 1u);
        bf->want_seq++;
        bf->left--;
        bf->end.sent++;
        return len;
    }
    return 0u;
}

int ecg_backfill_end(ecg_backfill_t *bf, ecg_proto_backfill_end_t *end, uint16_t *cmd_seq)
{
    if (bf == NULL || end == NULL || cmd_seq == NULL || !bf->active || bf->left != 0u) {
        return 0;
    }
    *end = bf->end;
    *cmd_seq = bf->cmd_seq;
    bf->active = 0u;
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * Payloads (§12), little-endian u16 fields
 * ------------------------------------------------------------------------------------------- */

static void put_u16s(uint8_t *out, const uint16_t *v, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        out[2u * i] = (uint8_t)(v[i] & 0xFFu);
        out[2u * i + 1u] = (uint8_t)(v[i] >> 8);
    }
}

static int32_t pack_u16s(const uint16_t *v, size_t n, uint8_t *out, size_t cap)
{
    if (out == NULL) {
        return ECG_ERR_NULL;
    }
    if (cap < 2u * n) {
        return ECG_PROTO_ERR_NO_SPACE;
    }
    put_u16s(out, v, n);
    return (int32_t)(2u * n);
}

int32_t ecg_proto_pack_backfill_request(const ecg_proto_backfill_request_t *m, uint8_t *out,
                                        size_t cap)
{
    uint16_t v[2];
    if (m == NULL) {
        return ECG_ERR_NULL;
    }
    v[0] = m->first_seq;
    v[1] = m->count;
    return pack_u16s(v, 2u, out, cap);
}

/* Read `n` u16 fields; LENGTH when the payload is shorter (longer is accepted, §2). */
static int32_t unpack_u16s(const uint8_t *p, size_t len, uint16_t *v, size_t n)
{
    size_t i;
    if (len < 2u * n) {
        return ECG_PROTO_ERR_LENGTH;
    }
    for (i = 0; i < n; i++) {
        v[i] = (uint16_t)((unsigned)p[2u * i] | ((unsigned)p[2u * i + 1u] << 8));
    }
    return ECG_OK;
}

int32_t ecg_proto_unpack_backfill_request(const uint8_t *p, size_t len,
                                          ecg_proto_backfill_request_t *m)
{
    uint16_t v[2] = {0u, 0u};
    int32_t r;
    if (p == NULL || m == NULL) {
        return ECG_ERR_NULL;
    }
    r = unpack_u16s(p, len, v, 2u);
    m->first_seq = v[0];
    m->count = v[1];
    return r;
}

int32_t ecg_proto_unpack_backfill_result(const uint8_t *p, size_t len,
                                         ecg_proto_backfill_result_t *m)
{
    uint16_t v[4] = {0u, 0u, 0u, 0u};
    int32_t r;
    if (p == NULL || m == NULL) {
        return ECG_ERR_NULL;
    }
    r = unpack_u16s(p, len, v, 4u);
    m->first_seq = v[0];
    m->count = v[1];
    m->oldest_seq = v[2];
    m->next_seq = v[3];
    return r;
}

int32_t ecg_proto_unpack_backfill_end(const uint8_t *p, size_t len, ecg_proto_backfill_end_t *m)
{
    uint16_t v[3] = {0u, 0u, 0u};
    int32_t r;
    if (p == NULL || m == NULL) {
        return ECG_ERR_NULL;
    }
    r = unpack_u16s(p, len, v, 3u);
    m->first_seq = v[0];
    m->count = v[1];
    m->sent = v[2];
    return r;
}

int32_t ecg_proto_pack_backfill_result(const ecg_proto_backfill_result_t *m, uint8_t *out,
                                       size_t cap)
{
    uint16_t v[4];
    if (m == NULL) {
        return ECG_ERR_NULL;
    }
    v[0] = m->first_seq;
    v[1] = m->count;
    v[2] = m->oldest_seq;
    v[3] = m->next_seq;
    return pack_u16s(v, 4u, out, cap);
}

int32_t ecg_proto_pack_backfill_end(const ecg_proto_backfill_end_t *m, uint8_t *out, size_t cap)
{
    uint16_t v[3];
    if (m == NULL) {
        return ECG_ERR_NULL;
    }
    v[0] = m->first_seq;
    v[1] = m->count;
    v[2] = m->sent;
    return pack_u16s(v, 3u, out, cap);
}

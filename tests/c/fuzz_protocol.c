/*
 * Fuzz harness for the wire protocol decoder (ecg_protocol.c).
 *
 * libFuzzer (clang):  clang -std=c99 -g -O1 -fsanitize=fuzzer,address,undefined -DECG_LIBFUZZER \
 *                       -Ifirmware/include firmware/src/core/ecg_{crc,protocol,types}.c \
 *                       tests/c/fuzz_protocol.c -o fuzz_protocol && ./fuzz_protocol
 * Stand-alone (any C99 compiler, best with -fsanitize=address,undefined):
 *                     ./fuzz_protocol [iterations] [seed]
 *   generates damaged frame streams and random bytes itself and prints "N inputs, 0 failed".
 *
 * Properties checked on every input (abort() on violation):
 *  - the decoder never reads or writes out of bounds (the sanitizers watch);
 *  - every delimited non-empty segment is delivered or counted exactly once;
 *  - delivered frames are well-formed (version 1, known type, payload <= 236) and re-encode to
 *    a frame that decodes to the same thing;
 *  - unpacking any delivered payload never fails other than with LENGTH;
 *  - COBS encode -> decode is the identity on the input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ecg/ecg_protocol.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_protocol: property violated: %s\n", what);
    abort();
}

static void check_payload(const ecg_frame_t *f)
{
    union {
        ecg_proto_configure_t c;
        ecg_proto_time_sync_t t;
        ecg_proto_response_t r;
        ecg_proto_device_info_t i;
        ecg_proto_beat_t b;
        ecg_proto_status_t s;
        ecg_proto_samples_hdr_t h;
        ecg_proto_time_sync_result_t tr;
        ecg_proto_inject_result_t ir;
        ecg_proto_alerts_pull_t ap;
        ecg_proto_alert_status_t as;
        ecg_proto_alerts_page_t pg;
        ecg_alerts_cfg_t ac;
        uint32_t id;
    } m;
    ecg_alert_t recs[ECG_PROTO_ALERTS_PER_PAGE];
    int16_t samples[ECG_PROTO_MAX_PAYLOAD / 2u];
    int32_t rc = ECG_OK;
    switch (f->type) {
    case ECG_FT_CONFIGURE: rc = ecg_proto_unpack_configure(f->payload, f->payload_len, &m.c); break;
    case ECG_FT_TIME_SYNC: rc = ecg_proto_unpack_time_sync(f->payload, f->payload_len, &m.t); break;
    case ECG_FT_RESPONSE:
        rc = ecg_proto_unpack_response(f->payload, f->payload_len, &m.r);
        if (rc == ECG_OK) {
            size_t n = m.r.body_len;
            const uint8_t *body = m.r.body;
            if (n + 2u != f->payload_len) {
                fail("response body length");
            }
            (void)ecg_proto_unpack_device_info(body, n, &m.i);
            (void)ecg_proto_unpack_time_sync_result(body, n, &m.tr);
            (void)ecg_proto_unpack_inject_result(body, n, &m.ir);
            if (ecg_proto_unpack_alerts_page(body, n, &m.pg, recs, ECG_PROTO_ALERTS_PER_PAGE) ==
                    ECG_OK &&
                15u + (size_t)m.pg.n * m.pg.record_len > n) {
                fail("alerts page length");
            }
        }
        break;
    case ECG_FT_DEVICE_INFO:
        rc = ecg_proto_unpack_device_info(f->payload, f->payload_len, &m.i);
        break;
    case ECG_FT_BEAT_EVENT: rc = ecg_proto_unpack_beat(f->payload, f->payload_len, &m.b); break;
    case ECG_FT_STATUS: rc = ecg_proto_unpack_status(f->payload, f->payload_len, &m.s); break;
    case ECG_FT_ALERTS_PULL:
        rc = ecg_proto_unpack_alerts_pull(f->payload, f->payload_len, &m.ap);
        break;
    case ECG_FT_ALERTS_ACK: rc = ecg_proto_unpack_alerts_ack(f->payload, f->payload_len, &m.id); break;
    case ECG_FT_ALERTS_CONFIGURE:
        rc = ecg_proto_unpack_alerts_cfg(f->payload, f->payload_len, &m.ac);
        break;
    case ECG_FT_ALERT_NOTICE:
        rc = ecg_proto_unpack_alert_status(f->payload, f->payload_len, &m.as);
        break;
    case ECG_FT_SAMPLE_BLOCK:
    case ECG_FT_INJECT_SAMPLES:
        rc = ecg_proto_unpack_samples(f->payload, f->payload_len, &m.h, samples,
                                      sizeof samples / sizeof samples[0]);
        if (rc == ECG_OK && (size_t)m.h.n_samples * m.h.leads * 2u + 6u != f->payload_len) {
            fail("sample count");
        }
        break;
    default: break;
    }
    if (rc != ECG_OK && rc != ECG_PROTO_ERR_LENGTH) {
        fail("unpack error other than LENGTH");
    }
}

static void on_frame(void *ctx, const ecg_frame_t *f)
{
    uint8_t wire[ECG_PROTO_MAX_WIRE_LEN];
    ecg_frame_decoder_t d2;
    ecg_frame_t g;
    int32_t n, i, rc = 0;
    (void)ctx;
    if (f->version != ECG_PROTO_VERSION || f->payload_len > ECG_PROTO_MAX_PAYLOAD ||
        !ecg_proto_type_known(f->type, ECG_PROTO_ACCEPT_ANY)) {
        fail("delivered frame is malformed");
    }
    check_payload(f);
    n = ecg_frame_encode(f->type, f->seq, f->payload, f->payload_len, wire, sizeof wire);
    if (n != (int32_t)ECG_PROTO_WIRE_LEN(f->payload_len)) {
        fail("re-encode size");
    }
    (void)ecg_frame_decoder_init(&d2, ECG_PROTO_ACCEPT_ANY);
    for (i = 0; i < n; ++i) {
        rc = ecg_frame_decoder_push_byte(&d2, wire[i], &g);
    }
    if (rc != 1 || g.type != f->type || g.seq != f->seq || g.payload_len != f->payload_len ||
        memcmp(g.payload, f->payload, f->payload_len) != 0) {
        fail("re-encoded frame does not decode to itself");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t enc[ECG_COBS_MAX_ENCODED_LEN(65536u)];
    static uint8_t dec[65536u];
    static const uint8_t accepts[3] = {ECG_PROTO_ACCEPT_ANY, ECG_PROTO_ACCEPT_TO_HOST,
                                       ECG_PROTO_ACCEPT_TO_DEVICE};
    size_t a, i, segments = 0, seg_len = 0;
    unsigned long accounted;
    ecg_frame_decoder_t d;
    int32_t n;

    if (size > sizeof dec) {
        return 0;
    }
    for (i = 0; i < size; ++i) {
        if (data[i] == 0u) {
            segments += seg_len > 0u;
            seg_len = 0;
        } else {
            seg_len++;
        }
    }
    for (a = 0; a < 3u; ++a) {
        (void)ecg_frame_decoder_init(&d, accepts[a]);
        (void)ecg_frame_decoder_push(&d, data, size, on_frame, NULL);
        accounted = (unsigned long)d.stats.frames_ok + d.stats.crc_errors + d.stats.cobs_errors +
                    d.stats.truncated + d.stats.oversize + d.stats.bad_version +
                    d.stats.unknown_type;
        if (accounted != segments + (seg_len > ECG_PROTO_MAX_ENCODED_LEN ? 1u : 0u)) {
            fail("segments not accounted exactly once");
        }
    }
    n = ecg_cobs_encode(data, size, enc, sizeof enc);
    if (n < 0 || (size_t)n > ECG_COBS_MAX_ENCODED_LEN(size) || memchr(enc, 0, (size_t)n) != NULL) {
        fail("cobs encode");
    }
    n = ecg_cobs_decode(enc, (size_t)n, dec, sizeof dec);
    if (n != (int32_t)size || (size > 0u && memcmp(dec, data, size) != 0)) {
        fail("cobs round trip");
    }
    /* decoding arbitrary bytes must fail cleanly or succeed within bounds */
    n = ecg_cobs_decode(data, size, dec, size);
    if (n < 0 && n != ECG_PROTO_ERR_COBS && n != ECG_PROTO_ERR_NO_SPACE) {
        fail("cobs decode error code");
    }
    return 0;
}

#ifndef ECG_LIBFUZZER

static uint32_t rng_state;

static uint32_t rnd(void)
{
    /* xorshift32 */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static size_t make_input(uint8_t *buf, size_t cap)
{
    static const uint8_t types[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x80, 0x81,
                                    0x90, 0x91, 0x92, 0x10, 0xA0, 0x00, 0x7F, 0xFF};
    size_t len = 0;
    unsigned frames = rnd() % 8u;
    unsigned k;
    if (rnd() % 5u == 0u) { /* plain random bytes, sometimes long without a zero */
        size_t n = rnd() % 1200u;
        int zeros = (int)(rnd() % 2u);
        for (k = 0; k < n && len < cap; ++k) {
            uint8_t b = (uint8_t)rnd();
            buf[len++] = (zeros == 0 && b == 0u) ? 1u : b;
        }
        return len;
    }
    for (k = 0; k < frames; ++k) {
        uint8_t payload[ECG_PROTO_MAX_PAYLOAD];
        size_t plen = rnd() % (ECG_PROTO_MAX_PAYLOAD + 1u);
        size_t i;
        int32_t n;
        unsigned damage;
        for (i = 0; i < plen; ++i) {
            payload[i] = (rnd() % 3u == 0u) ? 0u : (uint8_t)rnd();
        }
        if (rnd() % 3u == 0u && plen >= 8u) { /* a plausible sample block prefix */
            payload[4] = (uint8_t)(1u + rnd() % 8u);
        }
        if (cap - len < ECG_PROTO_MAX_WIRE_LEN) {
            break;
        }
        n = ecg_frame_encode(types[rnd() % sizeof types], (uint16_t)rnd(), payload, plen,
                             buf + len, cap - len);
        if (n < 0) {
            fail("encode of a valid payload failed");
        }
        damage = rnd() % 4u;
        while (damage-- > 0u && n > 1) {
            size_t at = rnd() % (size_t)n;
            buf[len + at] = (uint8_t)rnd();
        }
        len += (size_t)n;
    }
    if (len > 0u && rnd() % 4u == 0u) {
        len -= rnd() % len; /* cut the stream anywhere */
    }
    return len;
}

int main(int argc, char **argv)
{
    static uint8_t buf[8192];
    unsigned long iterations = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000ul;
    unsigned long i;
    rng_state = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 0x1234567u;
    if (rng_state == 0u) {
        rng_state = 1u;
    }
    for (i = 0; i < iterations; ++i) {
        size_t n = make_input(buf, sizeof buf);
        (void)LLVMFuzzerTestOneInput(buf, n);
    }
    printf("%lu inputs, 0 failed\n", iterations);
    return 0;
}

#endif /* ECG_LIBFUZZER */

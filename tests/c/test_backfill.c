/*
 * Tests of the backfill ring (firmware/src/core/ecg_backfill.c) and its wiring in ecg_device.c.
 *
 * Usage: test_backfill          (no arguments; tests/test_backfill.py builds it with every core
 *                                source under ASan/UBSan and runs it)
 *
 * Ring tests store payloads whose bytes encode their seq, so every payload read back names the
 * block it must be. The device test streams known counts from a fake front end, drops the link
 * (the queued frames are lost), asks for the lost seq range and checks that the replayed blocks
 * carry exactly the samples pushed. Prints one "ok"/"FAIL" line per test, then
 * "N passed, M failed", and exits 0 only when nothing failed. Plain C99, no framework.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ecg/ecg_backfill.h"
#include "ecg/ecg_device.h"
#include "ecg/ecg_protocol.h"

#include "check.h"

/* A payload of `len` bytes that names `seq`: seq lo, seq hi, then seq lo + i. */
static void make_payload(uint16_t seq, uint8_t *p, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        p[i] = (uint8_t)(i == 0 ? (seq & 0xFFu) : i == 1 ? (seq >> 8) : ((seq + i) & 0xFFu));
    }
}

static int payload_names(const uint8_t *p, size_t len, uint16_t seq)
{
    uint8_t want[ECG_PROTO_MAX_PAYLOAD];
    make_payload(seq, want, len);
    return memcmp(p, want, len) == 0;
}

static void put(ecg_backfill_t *bf, uint16_t seq, size_t len)
{
    uint8_t p[ECG_PROTO_MAX_PAYLOAD];
    make_payload(seq, p, len);
    ecg_backfill_put(bf, seq, p, len);
}

static void test_init_rejects_null_and_arrays_smaller_than_one_record(void)
{
    ecg_backfill_t bf;
    uint8_t buf[ECG_BACKFILL_MIN_BYTES];
    CHECK_EQ(ecg_backfill_init(NULL, buf, sizeof buf), ECG_ERR_NULL);
    CHECK_EQ(ecg_backfill_init(&bf, NULL, sizeof buf), ECG_ERR_NULL);
    CHECK_EQ(ecg_backfill_init(&bf, buf, sizeof buf - 1u), ECG_ERR_RANGE);
    CHECK_EQ(ecg_backfill_init(&bf, buf, sizeof buf), ECG_OK);
    CHECK_EQ(ecg_backfill_records(&bf), 0);
}

static void test_sizing_macro_counts_records_of_full_blocks(void)
{
    /* 60 s at 360 Hz in 115-instant blocks: ceil(21600 / 115) = 188 blocks, + 1; each record is
     * 3 + 6 + 230 bytes. */
    CHECK_EQ(ECG_BACKFILL_BYTES(60, 360, 1, 115), 189 * 239);
    /* 2 leads, 57-instant blocks: ceil(21600 / 57) = 379, + 1; 3 + 6 + 228 bytes. */
    CHECK_EQ(ECG_BACKFILL_BYTES(60, 360, 2, 57), 380 * 237);
}

static void test_ring_keeps_the_newest_records_across_the_array_end(void)
{
    /* 5 records of 103 bytes fit 520 bytes (515), a sixth evicts the oldest; 40 puts wrap the
     * array many times at odd offsets. */
    ecg_backfill_t bf;
    uint8_t buf[520];
    uint8_t out[ECG_PROTO_MAX_PAYLOAD];
    uint16_t s;
    CHECK_EQ(ecg_backfill_init(&bf, buf, sizeof buf), ECG_OK);
    for (s = 65520u; s != 24u; s++) { /* wraps the 16-bit seq too */
        put(&bf, s, 100u);
    }
    CHECK_EQ(ecg_backfill_records(&bf), 5);
    CHECK_EQ(ecg_backfill_oldest_seq(&bf), 19);
    for (s = 19u; s < 24u; s++) {
        CHECK_EQ(ecg_backfill_get(&bf, s, out, sizeof out), 100);
        CHECK(payload_names(out, 100u, s));
    }
    CHECK_EQ(ecg_backfill_get(&bf, 18u, out, sizeof out), 0);  /* evicted */
    CHECK_EQ(ecg_backfill_get(&bf, 24u, out, sizeof out), 0);  /* not yet */
    CHECK_EQ(ecg_backfill_get(&bf, 20u, out, 99u), 0);         /* does not fit */
}

static void test_a_seq_that_does_not_continue_the_run_restarts_the_ring(void)
{
    ecg_backfill_t bf;
    uint8_t buf[2000];
    uint8_t out[ECG_PROTO_MAX_PAYLOAD];
    CHECK_EQ(ecg_backfill_init(&bf, buf, sizeof buf), ECG_OK);
    put(&bf, 10u, 50u);
    put(&bf, 11u, 50u);
    put(&bf, 40u, 60u);
    CHECK_EQ(ecg_backfill_records(&bf), 1);
    CHECK_EQ(ecg_backfill_oldest_seq(&bf), 40);
    CHECK_EQ(ecg_backfill_get(&bf, 40u, out, sizeof out), 60);
    CHECK(payload_names(out, 60u, 40u));
}

/* Request [first, first + count) with 20 records 100..119 held; expect (first, count) back. */
static void check_clip(uint16_t first, uint16_t count, uint16_t want_first, uint16_t want_count)
{
    ecg_backfill_t bf;
    uint8_t buf[20 * 63];
    ecg_proto_backfill_request_t req;
    ecg_proto_backfill_result_t res;
    uint16_t s;
    CHECK_EQ(ecg_backfill_init(&bf, buf, sizeof buf), ECG_OK);
    for (s = 90u; s < 120u; s++) {
        put(&bf, s, 60u);
    }
    CHECK_EQ(ecg_backfill_records(&bf), 20);
    req.first_seq = first;
    req.count = count;
    CHECK_EQ(ecg_backfill_request(&bf, &req, 7u, &res), ECG_OK);
    CHECK_EQ(res.count, want_count);
    if (want_count != 0u) {
        CHECK_EQ(res.first_seq, want_first);
    }
    CHECK_EQ(res.oldest_seq, 100);
    CHECK_EQ(res.next_seq, 120);
}

static void test_request_is_clipped_to_the_blocks_held(void)
{
    check_clip(105u, 5u, 105u, 5u);    /* inside */
    check_clip(95u, 10u, 100u, 5u);    /* starts before the oldest */
    check_clip(115u, 20u, 115u, 5u);   /* runs past the newest */
    check_clip(50u, 200u, 100u, 20u);  /* covers everything */
    check_clip(80u, 10u, 0u, 0u);      /* entirely evicted */
    check_clip(120u, 5u, 0u, 0u);      /* entirely in the future */
}

static void test_request_of_zero_or_more_than_half_the_seq_space_is_a_range_error(void)
{
    ecg_backfill_t bf;
    uint8_t buf[ECG_BACKFILL_MIN_BYTES];
    ecg_proto_backfill_request_t req;
    ecg_proto_backfill_result_t res;
    CHECK_EQ(ecg_backfill_init(&bf, buf, sizeof buf), ECG_OK);
    req.first_seq = 0u;
    req.count = 0u;
    CHECK_EQ(ecg_backfill_request(&bf, &req, 1u, &res), ECG_ERR_RANGE);
    req.count = 32769u;
    CHECK_EQ(ecg_backfill_request(&bf, &req, 1u, &res), ECG_ERR_RANGE);
    req.count = 32768u;
    CHECK_EQ(ecg_backfill_request(&bf, &req, 1u, &res), ECG_OK);
    CHECK_EQ(res.count, 0);
}

static void test_replay_hands_out_blocks_in_order_then_one_end(void)
{
    ecg_backfill_t bf;
    uint8_t buf[4000];
    uint8_t out[ECG_PROTO_MAX_PAYLOAD];
    ecg_proto_backfill_request_t req;
    ecg_proto_backfill_result_t res;
    ecg_proto_backfill_end_t end;
    uint16_t s;
    uint16_t seq = 0u;
    uint16_t cmd = 0u;
    size_t n;
    CHECK_EQ(ecg_backfill_init(&bf, buf, sizeof buf), ECG_OK);
    for (s = 0u; s < 30u; s++) {
        put(&bf, s, (size_t)(40u + s)); /* lengths differ */
    }
    req.first_seq = 10u;
    req.count = 6u;
    CHECK_EQ(ecg_backfill_request(&bf, &req, 99u, &res), ECG_OK);
    CHECK_EQ(ecg_backfill_end(&bf, &end, &cmd), 0); /* not before the blocks */
    for (s = 10u; s < 16u; s++) {
        n = ecg_backfill_next(&bf, &seq, out, sizeof out);
        CHECK_EQ(n, 40u + s);
        CHECK_EQ(seq, s);
        CHECK(payload_names(out, n, s));
        put(&bf, (uint16_t)(20u + s), 40u); /* live blocks 30.. keep coming meanwhile */
    }
    CHECK_EQ(ecg_backfill_next(&bf, &seq, out, sizeof out), 0);
    CHECK_EQ(ecg_backfill_end(&bf, &end, &cmd), 1);
    CHECK_EQ(cmd, 99);
    CHECK_EQ(end.first_seq, 10);
    CHECK_EQ(end.count, 6);
    CHECK_EQ(end.sent, 6);
    CHECK_EQ(ecg_backfill_end(&bf, &end, &cmd), 0); /* once */
}

static void test_blocks_evicted_during_a_replay_are_skipped_and_not_counted_as_sent(void)
{
    ecg_backfill_t bf;
    uint8_t buf[10 * 103];
    uint8_t out[ECG_PROTO_MAX_PAYLOAD];
    ecg_proto_backfill_request_t req;
    ecg_proto_backfill_result_t res;
    ecg_proto_backfill_end_t end;
    uint16_t s;
    uint16_t seq = 0u;
    uint16_t cmd = 0u;
    CHECK_EQ(ecg_backfill_init(&bf, buf, sizeof buf), ECG_OK);
    for (s = 0u; s < 10u; s++) {
        put(&bf, s, 100u);
    }
    req.first_seq = 0u;
    req.count = 10u;
    CHECK_EQ(ecg_backfill_request(&bf, &req, 5u, &res), ECG_OK);
    CHECK_EQ(res.count, 10);
    CHECK_EQ(ecg_backfill_next(&bf, &seq, out, sizeof out), 100);
    CHECK_EQ(seq, 0);
    for (s = 10u; s < 14u; s++) { /* evicts 0..3: 1, 2 and 3 were not sent yet */
        put(&bf, s, 100u);
    }
    CHECK_EQ(ecg_backfill_next(&bf, &seq, out, sizeof out), 100);
    CHECK_EQ(seq, 4);
    CHECK(payload_names(out, 100u, 4u));
    for (s = 5u; s < 10u; s++) {
        CHECK_EQ(ecg_backfill_next(&bf, &seq, out, sizeof out), 100);
        CHECK_EQ(seq, s);
    }
    CHECK_EQ(ecg_backfill_next(&bf, &seq, out, sizeof out), 0);
    CHECK_EQ(ecg_backfill_end(&bf, &end, &cmd), 1);
    CHECK_EQ(end.count, 10);
    CHECK_EQ(end.sent, 7);
}

static void test_payload_layouts_are_little_endian_u16_fields(void)
{
    ecg_proto_backfill_request_t req = {0x1234u, 0x0102u};
    ecg_proto_backfill_request_t back;
    ecg_proto_backfill_result_t res = {1u, 2u, 0xFFFEu, 0x8000u};
    ecg_proto_backfill_end_t end = {0xA1B2u, 3u, 2u};
    uint8_t out[8];
    static const uint8_t want_req[4] = {0x34, 0x12, 0x02, 0x01};
    static const uint8_t want_res[8] = {1, 0, 2, 0, 0xFE, 0xFF, 0x00, 0x80};
    static const uint8_t want_end[6] = {0xB2, 0xA1, 3, 0, 2, 0};
    CHECK_EQ(ecg_proto_pack_backfill_request(&req, out, sizeof out), 4);
    CHECK(memcmp(out, want_req, 4) == 0);
    CHECK_EQ(ecg_proto_unpack_backfill_request(out, 4u, &back), ECG_OK);
    CHECK_EQ(back.first_seq, 0x1234);
    CHECK_EQ(back.count, 0x0102);
    CHECK_EQ(ecg_proto_unpack_backfill_request(out, 3u, &back), ECG_PROTO_ERR_LENGTH);
    CHECK_EQ(ecg_proto_pack_backfill_result(&res, out, sizeof out), 8);
    CHECK(memcmp(out, want_res, 8) == 0);
    CHECK_EQ(ecg_proto_pack_backfill_end(&end, out, 5u), ECG_PROTO_ERR_NO_SPACE);
    CHECK_EQ(ecg_proto_pack_backfill_end(&end, out, sizeof out), 6);
    CHECK(memcmp(out, want_end, 6) == 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Device wiring                                                                              */
/* ------------------------------------------------------------------------------------------ */

#define MAX_RX 512

/* What the host received: each frame's type, seq and payload (the decoder's frame is copied out
 * byte by byte as it completes). */
typedef struct {
    uint8_t type;
    uint16_t seq;
    uint16_t len;
    uint8_t payload[ECG_PROTO_MAX_PAYLOAD];
} rx_t;

typedef struct {
    ecg_frame_decoder_t dec;
    rx_t frames[MAX_RX];
    size_t n;
} host_t;

/* Take everything the device has to send, polling between reads (the replay runs in poll). */
static void drain(ecg_device_t *dev, host_t *h)
{
    uint8_t byte;
    ecg_frame_t fr;
    (void)ecg_device_poll(dev);
    while (ecg_device_tx(dev, &byte, 1u) == 1u) {
        if (ecg_frame_decoder_push_byte(&h->dec, byte, &fr) == 1 && h->n < MAX_RX) {
            rx_t *r = &h->frames[h->n++];
            r->type = fr.type;
            r->seq = fr.seq;
            r->len = fr.payload_len;
            memcpy(r->payload, fr.payload, fr.payload_len);
        }
        if (byte == 0u) {
            (void)ecg_device_poll(dev);
        }
    }
}

static void command(ecg_device_t *dev, uint8_t type, uint16_t seq, const uint8_t *p, size_t len)
{
    uint8_t wire[ECG_PROTO_MAX_WIRE_LEN];
    const int32_t n = ecg_frame_encode(type, seq, p, len, wire, sizeof wire);
    (void)ecg_device_rx(dev, wire, (size_t)n);
}

static ecg_device_t g_dev; /* large: keep it off the stack (test program only) */
static host_t g_host;

static void test_device_replays_the_blocks_a_dropped_link_lost(void)
{
    static uint8_t ring[ECG_BACKFILL_BYTES(10, 250, 1, 50)];
    ecg_backfill_t bf;
    ecg_hal_t hal;
    ecg_device_cfg_t cfg;
    ecg_proto_device_info_t info;
    ecg_proto_backfill_request_t req;
    uint8_t p[ECG_PROTO_BACKFILL_REQUEST_LEN];
    int16_t x[50];
    size_t i;
    size_t k;
    size_t replayed = 0;
    size_t ends = 0;
    uint16_t last_live = 0;
    uint16_t first_after = 0;
    int have_after = 0;
    int have_live = 0;
    memset(&hal, 0, sizeof hal);
    ecg_device_default_cfg(&cfg);
    cfg.block_samples = 50u;
    cfg.status_period_ms = 0u;
    CHECK_EQ(ecg_device_init(&g_dev, &cfg, &hal), ECG_OK);
    ecg_device_get_info(&g_dev, &info);
    CHECK_EQ(info.capabilities & ECG_CAP_BACKFILL, 0);
    CHECK_EQ(ecg_backfill_init(&bf, ring, sizeof ring), ECG_OK);
    ecg_device_attach_backfill(&g_dev, &bf);
    ecg_device_get_info(&g_dev, &info);
    CHECK(info.capabilities & ECG_CAP_BACKFILL);
    memset(&g_host, 0, sizeof g_host);
    (void)ecg_frame_decoder_init(&g_host.dec, ECG_PROTO_ACCEPT_TO_HOST);
    command(&g_dev, ECG_FT_START_STREAM, 1u, NULL, 0u);
    drain(&g_dev, &g_host);
    /* 20 blocks reach the host, 10 are queued and lost with the link, 10 more after it. */
    for (k = 0; k < 40u; k++) {
        for (i = 0; i < 50u; i++) {
            x[i] = (int16_t)((k * 50u + i) % 3000u);
        }
        CHECK_EQ(ecg_device_push_samples(&g_dev, x, 50u), 50);
        (void)ecg_device_poll(&g_dev);
        if (k < 20u || k >= 30u) {
            drain(&g_dev, &g_host);
        }
        if (k == 29u) {
            ecg_device_link(&g_dev, 0);
            ecg_device_link(&g_dev, 1);
        }
    }
    for (i = 0; i < g_host.n; i++) {
        if (g_host.frames[i].type == ECG_FT_SAMPLE_BLOCK) {
            if (!have_after && have_live &&
                g_host.frames[i].seq != (uint16_t)(last_live + 1u)) {
                first_after = g_host.frames[i].seq;
                have_after = 1;
            }
            last_live = g_host.frames[i].seq;
            have_live = 1;
        }
    }
    CHECK(have_after);
    CHECK_EQ(first_after, 30);
    req.first_seq = 20u;
    req.count = 10u;
    (void)ecg_proto_pack_backfill_request(&req, p, sizeof p);
    k = g_host.n;
    command(&g_dev, ECG_FT_BACKFILL_REQUEST, 77u, p, sizeof p);
    drain(&g_dev, &g_host);
    for (i = k; i < g_host.n; i++) {
        const rx_t *f = &g_host.frames[i];
        if (f->type == ECG_FT_RESPONSE) {
            CHECK_EQ(f->seq, 77);
            CHECK_EQ(f->len, 2 + ECG_PROTO_BACKFILL_RESULT_LEN);
            CHECK_EQ(f->payload[1], 0);
            CHECK_EQ(f->payload[2] | (f->payload[3] << 8), 20); /* first_seq */
            CHECK_EQ(f->payload[4] | (f->payload[5] << 8), 10); /* count */
        } else if (f->type == ECG_FT_BACKFILL_BLOCK) {
            ecg_proto_samples_hdr_t h;
            int16_t s[ECG_PROTO_MAX_SAMPLES(1)];
            CHECK_EQ(f->seq, 20u + replayed);
            CHECK_EQ(ecg_proto_unpack_samples(f->payload, f->len, &h, s, 115u), ECG_OK);
            CHECK_EQ(h.sample_index, (uint32_t)(f->seq * 50u));
            CHECK_EQ(h.n_samples, 50);
            CHECK_EQ(s[0], (int16_t)((f->seq * 50u) % 3000u));
            CHECK_EQ(s[49], (int16_t)((f->seq * 50u + 49u) % 3000u));
            CHECK_EQ(ends, 0);
            replayed++;
        } else if (f->type == ECG_FT_BACKFILL_END) {
            CHECK_EQ(f->seq, 77);
            CHECK_EQ(f->len, ECG_PROTO_BACKFILL_END_LEN);
            CHECK_EQ(f->payload[4] | (f->payload[5] << 8), 10); /* sent */
            ends++;
        }
    }
    CHECK_EQ(replayed, 10);
    CHECK_EQ(ends, 1);
}

static void test_blocks_dropped_for_a_full_queue_are_replayed_from_the_ring(void)
{
    static uint8_t ring[ECG_BACKFILL_BYTES(10, 250, 1, 50)];
    ecg_backfill_t bf;
    ecg_hal_t hal;
    ecg_device_cfg_t cfg;
    ecg_device_stats_t st;
    uint8_t p[ECG_PROTO_BACKFILL_REQUEST_LEN];
    ecg_proto_backfill_request_t req;
    int16_t x[50];
    size_t i;
    size_t k;
    size_t replayed = 0;
    uint16_t seqs[64];
    size_t n_live = 0;
    memset(&hal, 0, sizeof hal);
    ecg_device_default_cfg(&cfg);
    cfg.block_samples = 50u;
    cfg.status_period_ms = 0u;
    CHECK_EQ(ecg_device_init(&g_dev, &cfg, &hal), ECG_OK);
    CHECK_EQ(ecg_backfill_init(&bf, ring, sizeof ring), ECG_OK);
    ecg_device_attach_backfill(&g_dev, &bf);
    memset(&g_host, 0, sizeof g_host);
    (void)ecg_frame_decoder_init(&g_host.dec, ECG_PROTO_ACCEPT_TO_HOST);
    command(&g_dev, ECG_FT_START_STREAM, 1u, NULL, 0u);
    drain(&g_dev, &g_host);
    /* 60 blocks of 108 wire bytes into a 4 KB queue nobody drains: the later ones are dropped */
    for (k = 0; k < 60u; k++) {
        for (i = 0; i < 50u; i++) {
            x[i] = (int16_t)(k * 50u + i);
        }
        (void)ecg_device_push_samples(&g_dev, x, 50u);
        (void)ecg_device_poll(&g_dev);
    }
    ecg_device_get_stats(&g_dev, &st);
    CHECK(st.frames_dropped > 0u);
    drain(&g_dev, &g_host);
    for (i = 0; i < g_host.n; i++) {
        if (g_host.frames[i].type == ECG_FT_SAMPLE_BLOCK && n_live < 64u) {
            seqs[n_live++] = g_host.frames[i].seq;
        }
    }
    CHECK(n_live > 0u && n_live < 60u);
    CHECK_EQ(seqs[n_live - 1u], n_live - 1u); /* the first blocks arrived, the rest were dropped */
    req.first_seq = (uint16_t)n_live;
    req.count = (uint16_t)(60u - n_live);
    (void)ecg_proto_pack_backfill_request(&req, p, sizeof p);
    k = g_host.n;
    command(&g_dev, ECG_FT_BACKFILL_REQUEST, 9u, p, sizeof p);
    drain(&g_dev, &g_host);
    for (i = k; i < g_host.n; i++) {
        const rx_t *f = &g_host.frames[i];
        if (f->type == ECG_FT_BACKFILL_BLOCK) {
            ecg_proto_samples_hdr_t h;
            int16_t s[ECG_PROTO_MAX_SAMPLES(1)];
            CHECK_EQ(f->seq, n_live + replayed);
            CHECK_EQ(ecg_proto_unpack_samples(f->payload, f->len, &h, s, 115u), ECG_OK);
            CHECK_EQ(s[0], (int16_t)(f->seq * 50u));
            replayed++;
        }
    }
    CHECK_EQ(replayed, 60u - n_live);
}

static void test_device_without_a_ring_answers_backfill_unsupported(void)
{
    ecg_hal_t hal;
    ecg_device_cfg_t cfg;
    uint8_t p[ECG_PROTO_BACKFILL_REQUEST_LEN] = {0, 0, 1, 0};
    size_t i;
    int answered = 0;
    memset(&hal, 0, sizeof hal);
    ecg_device_default_cfg(&cfg);
    CHECK_EQ(ecg_device_init(&g_dev, &cfg, &hal), ECG_OK);
    memset(&g_host, 0, sizeof g_host);
    (void)ecg_frame_decoder_init(&g_host.dec, ECG_PROTO_ACCEPT_TO_HOST);
    command(&g_dev, ECG_FT_BACKFILL_REQUEST, 3u, p, sizeof p);
    command(&g_dev, ECG_FT_BACKFILL_REQUEST, 4u, p, 3u);
    drain(&g_dev, &g_host);
    for (i = 0; i < g_host.n; i++) {
        const rx_t *f = &g_host.frames[i];
        if (f->type == ECG_FT_RESPONSE && f->seq == 3u) {
            CHECK_EQ((int8_t)f->payload[1], ECG_ERR_UNSUPPORTED);
            answered++;
        }
        if (f->type == ECG_FT_RESPONSE && f->seq == 4u) {
            CHECK_EQ((int8_t)f->payload[1], ECG_ERR_UNSUPPORTED);
            answered++;
        }
    }
    CHECK_EQ(answered, 2);
}

int main(void)
{
    RUN(test_init_rejects_null_and_arrays_smaller_than_one_record);
    RUN(test_sizing_macro_counts_records_of_full_blocks);
    RUN(test_ring_keeps_the_newest_records_across_the_array_end);
    RUN(test_a_seq_that_does_not_continue_the_run_restarts_the_ring);
    RUN(test_request_is_clipped_to_the_blocks_held);
    RUN(test_request_of_zero_or_more_than_half_the_seq_space_is_a_range_error);
    RUN(test_replay_hands_out_blocks_in_order_then_one_end);
    RUN(test_blocks_evicted_during_a_replay_are_skipped_and_not_counted_as_sent);
    RUN(test_payload_layouts_are_little_endian_u16_fields);
    RUN(test_device_replays_the_blocks_a_dropped_link_lost);
    RUN(test_blocks_dropped_for_a_full_queue_are_replayed_from_the_ring);
    RUN(test_device_without_a_ring_answers_backfill_unsupported);
    printf("%u passed, %u failed\n", g_passed, g_failed);
    return g_failed == 0u ? 0 : 1;
}

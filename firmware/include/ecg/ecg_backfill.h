/**
 * @file ecg_backfill.h
 * @brief Backfill ring: the last sample blocks a device sent, keyed by their `seq`, replayed on
 *        request after a reconnect (docs/protocol.md §12).
 *
 * A wearable keeps streaming while its radio link is down; the frames it queues meanwhile are lost
 * (`ecg_device_link(dev, 0)` discards them) and the host sees a `seq` gap in the SAMPLE_BLOCK
 * stream. With a backfill ring attached (::ecg_device_attach_backfill), every SAMPLE_BLOCK payload
 * the device packs is also stored here under its block `seq`, and a BACKFILL_REQUEST for a `seq`
 * range re-sends the blocks still held as BACKFILL_BLOCK frames (same payload, the original `seq`
 * in the frame header), followed by one BACKFILL_END. Only blocks older than the ring are lost.
 *
 * **Storage.** The caller's byte array holds variable-length records, oldest first:
 *
 *     len u8 | seq u16 (little-endian) | payload (len bytes, the SAMPLE_BLOCK payload)
 *
 * A new record evicts the oldest ones until it fits. Records wrap around the end of the array, so
 * no byte is wasted. Size the array with ::ECG_BACKFILL_BYTES for the time it must cover, e.g.
 * 60 s of 1 lead at 360 Hz in 115-instant blocks: `ECG_BACKFILL_BYTES(60, 360, 1, 115)` =
 * 45 171 bytes (189 records of 239 bytes).
 *
 * **Replay.** ::ecg_backfill_request clips the requested range to what the ring holds and arms a
 * cursor; ::ecg_backfill_next hands out the armed blocks in `seq` order, one per call, so the device
 * sends them only as its outgoing queue has room (never dropping a live frame for a replayed one).
 * A block evicted while a replay is under way is skipped (the host then reports that gap). A new
 * request replaces the one under way.
 *
 * **Cost.** ::ecg_backfill_put copies one payload per sample block (about 2 bytes per sample
 * instant); nothing runs per sample. Lookups walk the records from the oldest (at most a few
 * hundred), once per request; the replay then advances record by record.
 *
 * Memory: no heap, no globals; the caller owns the ::ecg_backfill_t and the array.
 *
 * \note Contexts: every function runs in the device's task context (the one that calls
 *       ::ecg_device_poll and ::ecg_device_rx).
 */
#ifndef ECG_BACKFILL_H
#define ECG_BACKFILL_H

#include <stddef.h>
#include <stdint.h>

#include "ecg/ecg_protocol.h"
#include "ecg/ecg_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Bytes of a record header: len u8, seq u16. */
#define ECG_BACKFILL_REC_HDR 3u

/**
 * Array size (bytes) that holds `seconds` of `leads` leads at `rate_hz` in blocks of `block_n`
 * instants: one record more than the blocks the time spans (the oldest may be partly outside it).
 */
#define ECG_BACKFILL_BYTES(seconds, rate_hz, leads, block_n)                                      \
    (((((size_t)(seconds) * (size_t)(rate_hz)) + (size_t)(block_n) - 1u) / (size_t)(block_n) +   \
      1u) *                                                                                       \
     (ECG_BACKFILL_REC_HDR + ECG_PROTO_SAMPLES_HDR_LEN + 2u * (size_t)(block_n) * (size_t)(leads)))

/** Smallest array ::ecg_backfill_init accepts: one record of the largest payload. */
#define ECG_BACKFILL_MIN_BYTES (ECG_BACKFILL_REC_HDR + ECG_PROTO_MAX_PAYLOAD)

/** BACKFILL_REQUEST payload length (§12.1). */
#define ECG_PROTO_BACKFILL_REQUEST_LEN 4u
/** BACKFILL_REQUEST response body length (§12.1). */
#define ECG_PROTO_BACKFILL_RESULT_LEN 8u
/** BACKFILL_END payload length (§12.3). */
#define ECG_PROTO_BACKFILL_END_LEN 6u

/** BACKFILL_REQUEST payload (§12.1): the SAMPLE_BLOCK `seq` range wanted. */
typedef struct {
    uint16_t first_seq; /**< first block seq */
    uint16_t count;     /**< blocks, 1..32768 */
} ecg_proto_backfill_request_t;

/** BACKFILL_REQUEST response body (§12.1): what will be replayed and what the ring holds. */
typedef struct {
    uint16_t first_seq;  /**< first block that will be sent (the request's, or the oldest held) */
    uint16_t count;      /**< blocks that will be sent; 0: none of the range is held */
    uint16_t oldest_seq; /**< oldest block held (= next_seq when the ring is empty) */
    uint16_t next_seq;   /**< seq the next live SAMPLE_BLOCK will get */
} ecg_proto_backfill_result_t;

/** BACKFILL_END payload (§12.3); the frame's `seq` echoes the request's. */
typedef struct {
    uint16_t first_seq; /**< as in the response */
    uint16_t count;     /**< as in the response */
    uint16_t sent;      /**< BACKFILL_BLOCK frames actually sent (fewer if blocks were evicted) */
} ecg_proto_backfill_end_t;

/** Backfill ring. Caller-owned; fields are private to ecg_backfill.c. */
typedef struct {
    uint8_t *buf;         /* the caller's array */
    size_t size;          /* its size in bytes */
    size_t head;          /* offset of the oldest record */
    size_t used;          /* bytes held */
    uint16_t records;     /* records held */
    uint16_t next_seq;    /* seq after the newest record (the next live block's) */
    /* replay */
    uint8_t active;       /* a replay is armed (until its BACKFILL_END is taken) */
    uint16_t cmd_seq;     /* seq of the request (echoed by BACKFILL_END) */
    uint16_t want_seq;    /* next block to replay */
    uint16_t left;        /* blocks of the range not yet handed out */
    ecg_proto_backfill_end_t end;
    size_t cur_off;       /* offset of the record holding want_seq, when cur_ok */
    uint8_t cur_ok;
} ecg_backfill_t;

/**
 * @brief Wrap the caller's array; the ring starts empty.
 * @param[out] bf          ring
 * @param[in]  buf         array of `size_bytes` bytes, kept by pointer
 * @param[in]  size_bytes  >= ::ECG_BACKFILL_MIN_BYTES; see ::ECG_BACKFILL_BYTES
 * @return ECG_OK; ECG_ERR_NULL; ECG_ERR_RANGE (array too small)
 */
ecg_err_t ecg_backfill_init(ecg_backfill_t *bf, uint8_t *buf, size_t size_bytes);

/** @brief Forget every record and any replay under way. */
void ecg_backfill_reset(ecg_backfill_t *bf);

/**
 * @brief Store one SAMPLE_BLOCK payload under its block `seq`, evicting the oldest records until
 *        it fits. Blocks are expected in `seq` order (a device stores every block it numbers).
 * @param[in,out] bf       ring
 * @param[in]     seq      the block's SAMPLE_BLOCK seq
 * @param[in]     payload  the packed SAMPLE_BLOCK payload
 * @param[in]     len      1..::ECG_PROTO_MAX_PAYLOAD (longer payloads are not stored)
 */
void ecg_backfill_put(ecg_backfill_t *bf, uint16_t seq, const uint8_t *payload, size_t len);

/** @brief Records held. */
size_t ecg_backfill_records(const ecg_backfill_t *bf);

/** @brief Seq of the oldest record (= the next live block's seq when empty). */
uint16_t ecg_backfill_oldest_seq(const ecg_backfill_t *bf);

/**
 * @brief Copy the payload stored under `seq`.
 * @return payload length, 0 when `seq` is not held or `cap` is too small
 */
size_t ecg_backfill_get(const ecg_backfill_t *bf, uint16_t seq, uint8_t *out, size_t cap);

/**
 * @brief Arm a replay of the held blocks of `req` (§12.1) and say what will be sent.
 * @param[in,out] bf       ring
 * @param[in]     req      requested range
 * @param[in]     cmd_seq  seq of the BACKFILL_REQUEST frame (echoed by BACKFILL_END)
 * @param[out]    res      the response body
 * @return ECG_OK (also when nothing of the range is held: `res->count` is 0, BACKFILL_END still
 *         follows); ECG_ERR_NULL; ECG_ERR_RANGE (`count` 0 or above 32768)
 */
ecg_err_t ecg_backfill_request(ecg_backfill_t *bf, const ecg_proto_backfill_request_t *req,
                               uint16_t cmd_seq, ecg_proto_backfill_result_t *res);

/**
 * @brief The next block of the armed replay.
 * @param[in,out] bf       ring
 * @param[out]    seq      its block seq
 * @param[out]    payload  receives the payload (`cap` >= ::ECG_PROTO_MAX_PAYLOAD always suffices)
 * @param[in]     cap      capacity of `payload`
 * @return payload length; 0 when the replay has no further block (then ::ecg_backfill_end is due)
 */
size_t ecg_backfill_next(ecg_backfill_t *bf, uint16_t *seq, uint8_t *payload, size_t cap);

/**
 * @brief Whether the armed replay has handed out its last block and BACKFILL_END is due; if so,
 *        fill `end` and the request's `cmd_seq`, and clear the replay.
 * @return 1 when BACKFILL_END is to be sent now, else 0
 */
int ecg_backfill_end(ecg_backfill_t *bf, ecg_proto_backfill_end_t *end, uint16_t *cmd_seq);

/** @brief Pack a BACKFILL_REQUEST payload (4 bytes); bytes written or a negative error. */
int32_t ecg_proto_pack_backfill_request(const ecg_proto_backfill_request_t *m, uint8_t *out,
                                        size_t cap);
/** @brief Unpack a BACKFILL_REQUEST payload: ECG_OK, ECG_ERR_NULL, ECG_PROTO_ERR_LENGTH. */
int32_t ecg_proto_unpack_backfill_request(const uint8_t *p, size_t len,
                                          ecg_proto_backfill_request_t *m);
/** @brief Pack a BACKFILL_REQUEST response body (8 bytes). */
int32_t ecg_proto_pack_backfill_result(const ecg_proto_backfill_result_t *m, uint8_t *out,
                                       size_t cap);
/** @brief Pack a BACKFILL_END payload (6 bytes). */
int32_t ecg_proto_pack_backfill_end(const ecg_proto_backfill_end_t *m, uint8_t *out, size_t cap);
/** @brief Unpack a BACKFILL_REQUEST response body (host side). */
int32_t ecg_proto_unpack_backfill_result(const uint8_t *p, size_t len,
                                         ecg_proto_backfill_result_t *m);
/** @brief Unpack a BACKFILL_END payload (host side). */
int32_t ecg_proto_unpack_backfill_end(const uint8_t *p, size_t len, ecg_proto_backfill_end_t *m);

#ifdef __cplusplus
}
#endif

#endif /* ECG_BACKFILL_H */

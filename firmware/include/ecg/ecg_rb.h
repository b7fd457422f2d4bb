/**
 * @file ecg_rb.h
 * @brief Single-producer / single-consumer byte ring over a caller-owned array (lwrb-style).
 *
 * The ring wraps the caller's `uint8_t` array of `size` bytes and holds at most `size - 1` bytes
 * (one byte stays empty so that "full" and "empty" differ without a shared counter). Read and
 * write functions move as many bytes as they can and return that count: compare it with the
 * request. Records of several bytes (an int16 sample instant of L leads, an encoded frame) are
 * kept whole by checking ::ecg_rb_free_bytes before writing: the producer alone adds data, so the
 * free space it sees can only grow until it writes.
 *
 * Zero-copy access for DMA and BLE stacks: ::ecg_rb_read_block gives the longest contiguous
 * readable region, ::ecg_rb_skip releases it after the DMA / notification is done;
 * ::ecg_rb_write_block and ::ecg_rb_advance do the same on the producer side.
 *
 * \note Concurrency. One producer context (calls write, write_block, advance, free_bytes) and one
 *       consumer context (read, peek, read_block, skip, used_bytes) may run concurrently, e.g. a
 *       front-end ISR producing and a task consuming, or a task producing and a UART TX ISR
 *       consuming; neither needs a lock. Each index is written by one side only: the producer
 *       writes `w`, the consumer writes `r`. ::ecg_rb_init and ::ecg_rb_reset touch both and must
 *       not run concurrently with anything else.
 *
 * \note Memory-order assumption (C99 has no <stdatomic.h>). The indices are `volatile size_t`:
 *       an aligned word, read and written with single loads and stores, which are atomic on every
 *       supported target (Cortex-M: aligned 32-bit LDR/STR; x86-64 and AArch64 hosts: 64-bit).
 *       The producer copies the data, then ::ECG_RB_BARRIER, then publishes `w`; the consumer
 *       reads `w`, then the barrier, then the data, then the barrier, then publishes `r`. The
 *       default barrier is a compiler barrier, which suffices on a single-core Cortex-M0/M3/M4
 *       (an exception handler observes the core's own stores in program order). Define
 *       ::ECG_RB_BARRIER as a `dmb` for a multi-core part or a bus master that reads the buffer
 *       (Cortex-M7 with D-cache and DMA also needs cache maintenance, which is the port's job).
 *
 * No heap, no globals; the caller owns the ::ecg_rb_t and the array.
 */
#ifndef ECG_RB_H
#define ECG_RB_H

#include <stddef.h>
#include <stdint.h>

#include "ecg/ecg_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Ordering point between data accesses and index publication (see the \note above). Default: a
 * compiler barrier with GCC/Clang, nothing elsewhere (the indices are volatile, the data is not:
 * give other compilers their own barrier). Example for a dual-core part:
 * `-D'ECG_RB_BARRIER()=__asm__ __volatile__("dmb" ::: "memory")'`.
 */
#ifndef ECG_RB_BARRIER
#if defined(__GNUC__) || defined(__clang__)
#define ECG_RB_BARRIER() __asm__ __volatile__("" ::: "memory")
#else
#define ECG_RB_BARRIER() ((void)0)
#endif
#endif

/** Ring state. Caller-owned; fields are private to ecg_rb.c. */
typedef struct {
    uint8_t *buf;      /**< caller's array */
    size_t size;       /**< its length in bytes; the ring holds `size - 1` */
    volatile size_t r; /**< read index, 0..size-1, written by the consumer only */
    volatile size_t w; /**< write index, 0..size-1, written by the producer only */
} ecg_rb_t;

/**
 * @brief Wrap `size` bytes of the caller's array; the ring starts empty.
 * @param[out] rb    ring
 * @param[in]  buf   array of `size` bytes, kept by pointer
 * @param[in]  size  2 or more; the ring holds `size - 1` bytes
 * @return ECG_OK, ECG_ERR_NULL, ECG_ERR_RANGE (`size` < 2)
 */
ecg_err_t ecg_rb_init(ecg_rb_t *rb, void *buf, size_t size);

/** @brief Empty the ring. Not concurrent-safe (see the \note). */
void ecg_rb_reset(ecg_rb_t *rb);

/** @brief Bytes the ring can hold: `size - 1`. */
size_t ecg_rb_capacity(const ecg_rb_t *rb);

/** @brief Bytes that can be written now (producer side; may only grow until the next write). */
size_t ecg_rb_free_bytes(const ecg_rb_t *rb);

/** @brief Bytes that can be read now (consumer side; may only grow until the next read). */
size_t ecg_rb_used_bytes(const ecg_rb_t *rb);

/**
 * @brief Producer: copy up to `len` bytes in.
 * @return bytes written: `min(len, free)`
 */
size_t ecg_rb_write(ecg_rb_t *rb, const void *data, size_t len);

/**
 * @brief Consumer: copy up to `len` bytes out and release them.
 * @param[out] data  destination; may be NULL to drop bytes unread
 * @return bytes read: `min(len, used)`
 */
size_t ecg_rb_read(ecg_rb_t *rb, void *data, size_t len);

/**
 * @brief Consumer: copy up to `len` bytes from `skip` bytes past the read position, leaving the
 *        ring unchanged.
 * @return bytes copied: `min(len, used - skip)`, 0 when `skip >= used`
 */
size_t ecg_rb_peek(const ecg_rb_t *rb, size_t skip, void *data, size_t len);

/**
 * @brief Consumer, zero-copy: the longest contiguous readable region.
 * @param[out] len  its length in bytes (0 when empty)
 * @return its address (inside the caller's array); release it with ::ecg_rb_skip
 */
const uint8_t *ecg_rb_read_block(const ecg_rb_t *rb, size_t *len);

/**
 * @brief Consumer: release `len` bytes (after ::ecg_rb_read_block, or to drop data).
 * @return bytes released: `min(len, used)`
 */
size_t ecg_rb_skip(ecg_rb_t *rb, size_t len);

/**
 * @brief Producer, zero-copy: the longest contiguous writable region.
 * @param[out] len  its length in bytes (0 when full)
 * @return its address; publish what was written there with ::ecg_rb_advance
 */
uint8_t *ecg_rb_write_block(const ecg_rb_t *rb, size_t *len);

/**
 * @brief Producer: publish `len` bytes written through ::ecg_rb_write_block.
 * @return bytes published: `min(len, free)`
 */
size_t ecg_rb_advance(ecg_rb_t *rb, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* ECG_RB_H */

/**
 * @file ecg_hal.h
 * @brief The hardware abstraction a port implements: the only door from the core to hardware.
 *
 * The portable core (ecg_device.c and the modules it wires together) never touches a register, a
 * socket or an RTOS. A port fills one ::ecg_hal_t with function pointers and a context pointer and
 * passes it to ::ecg_device_init; everything else (pipeline, command handling, framing, queues) is
 * core logic. Ports only move bytes and samples:
 *
 *     front end ISR / DMA --ecg_device_push_samples()--> core --ecg_device_tx() / hal.write--> link
 *     link RX ------------------ecg_device_rx()--------> core
 *
 * Every entry may be NULL; the core then does without it (documented per entry). The struct is
 * kept by pointer: it must outlive the device.
 *
 * Rules for implementations:
 *  1. `time_us`, `critical_enter` and `critical_exit` are called from the device's task context
 *     and, for the critical section, from wherever ::ecg_device_push_samples is called (an ISR on
 *     most ports). `critical_enter`/`critical_exit` must nest safely, e.g. save PRIMASK and
 *     disable interrupts / restore PRIMASK on Cortex-M, a spinlock on a dual-core part.
 *  2. No entry may call back into the device.
 *  3. Entries must not block for long: they run inside ::ecg_device_poll / ::ecg_device_rx.
 *
 * Storage slots hold the personalization packages (ecg_update.h, docs/protocol.md §11): two A/B
 * slots for classifier heads and one for labels. Only ecg_update.c calls the storage entries,
 * from the device's task context; a port without them (any entry NULL) takes no packages.
 */
#ifndef ECG_HAL_H
#define ECG_HAL_H

#include <stddef.h>
#include <stdint.h>

#include "ecg/ecg_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Storage slots a port may provide (personalization packages, A/B switching: ecg_update.h). */
typedef enum {
    ECG_HAL_SLOT_HEAD_A = 0, /**< classifier head package, slot A */
    ECG_HAL_SLOT_HEAD_B = 1, /**< classifier head package, slot B */
    ECG_HAL_SLOT_LABELS = 2  /**< personalization labels */
} ecg_hal_slot_t;

/** The port's functions. `ctx` is passed back to every call. */
typedef struct ecg_hal {
    void *ctx; /**< port state, passed to every entry */

    /**
     * Monotonic time since boot in microseconds (TIME_SYNC, periodic STATUS).
     * NULL: the device clock reads 0 and no periodic STATUS is sent.
     */
    uint64_t (*time_us)(void *ctx);

    /**
     * Transport write, non-blocking: take up to `len` bytes of encoded frames, return how many
     * were taken (0 when the link is busy). Called by ::ecg_device_poll to drain the outgoing
     * queue. NULL: the port drains the queue itself with ::ecg_device_tx / ::ecg_device_tx_frame.
     */
    size_t (*write)(void *ctx, const uint8_t *data, size_t len);

    /**
     * Start the analog front end at the configured rate; from now on it delivers samples through
     * ::ecg_device_push_samples. Called by START_STREAM when the source is the front end.
     * NULL: nothing to start (e.g. samples are pushed by a simulator).
     * @return ECG_OK, or an error answered to the host (ECG_ERR_STATE, ECG_ERR_UNSUPPORTED)
     */
    ecg_err_t (*sampling_start)(void *ctx);

    /** Stop the front end (STOP_STREAM, or before switching to injection). NULL: nothing to do. */
    void (*sampling_stop)(void *ctx);

    /**
     * Set the front end's sampling rate (only called while sampling is stopped). Called at init
     * and by CONFIGURE. NULL: the rate is accepted as configured.
     * @return ECG_OK, or ECG_ERR_UNSUPPORTED when the front end cannot do `rate_hz`
     */
    ecg_err_t (*sampling_set_rate)(void *ctx, uint16_t rate_hz);

    /** Enter / leave a critical section (see rule 1). NULL: no protection (single context). */
    void (*critical_enter)(void *ctx);
    void (*critical_exit)(void *ctx);

    /* --- storage (ecg_update.c): flash sectors on a target, a file on the host, RAM in QEMU ---- */

    /** Size in bytes of a storage slot (0: the slot does not exist). */
    uint32_t (*storage_size)(void *ctx, ecg_hal_slot_t slot);
    /** Erase a whole slot (every byte reads 0xFF after). */
    ecg_err_t (*storage_erase)(void *ctx, ecg_hal_slot_t slot);
    /** Write `len` bytes at `offset` of an erased slot (the core writes each byte at most once
     *  between erases, NOR-flash style; it never writes the active head slot). */
    ecg_err_t (*storage_write)(void *ctx, ecg_hal_slot_t slot, uint32_t offset,
                               const uint8_t *data, size_t len);
    /** Read `len` bytes at `offset` of a slot. */
    ecg_err_t (*storage_read)(void *ctx, ecg_hal_slot_t slot, uint32_t offset, uint8_t *data,
                              size_t len);
} ecg_hal_t;

#ifdef __cplusplus
}
#endif

#endif /* ECG_HAL_H */

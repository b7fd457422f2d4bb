/**
 * @file ecg_device.h
 * @brief The device: signal pipeline, command handler and outgoing frame queue, behind one struct.
 *
 * `ecg_device.c` wires the core modules together and speaks the wire protocol (docs/protocol.md,
 * sections quoted as §n). It touches hardware only through ::ecg_hal_t. Data flow:
 *
 *     front end (ISR/DMA) --push_samples--+
 *                                         +--> input ring --poll--> filter --> QRS --> beat events
 *     INJECT_SAMPLES (rx) ----------------+        (int16)     |                          |
 *                                                              +--> sample blocks ---------+
 *     rx bytes --> frame decoder --> command handler --> responses ------------------------+
 *                                                      STATUS (periodic) ------------------+
 *                                                                                          v
 *                                   transport <-- tx() / tx_frame() / hal.write <-- outgoing queue
 *
 * **Pipeline** (identical to `ecgedge.core.QrsDetector`, whose extension runs the same steps):
 * instants are taken from the input ring in batches of at most ::ECG_DEVICE_BATCH, the QRS lead
 * is converted to millivolts, filtered as a block with `ecg_filter_process`, then detected on as
 * a block with `ecg_qrs_process` (exactly the beats of `ecg_qrs_step` per sample). Both are
 * bit-identical whatever the block split, so the beats equal those of `QrsDetector.process` +
 * `flush` on the same millivolt samples.
 *
 * **Counts to millivolts** (the exact conversion; hosts must use the same to compare beats):
 *
 *     mv_per_count = gain_uv_per_count / 1000.0f        (float32 division, once, at init)
 *     x_mv         = (float)count * mv_per_count         (one float32 multiply per sample)
 *
 * numpy: `counts.astype(np.float32) * (np.float32(gain_uv_per_count) / np.float32(1000))`.
 * Filtered samples (content 1) go back to counts as `round_half_away(y_mv * (1000.0f / gain))`,
 * saturated to int16, so they share the raw samples' gain (§5.1).
 *
 * **Sample index**: the counter of sample instants that entered the pipeline since START_STREAM.
 * Beat indices are on the same counter. Front-end instants that find the input ring full are
 * lost before numbering (counted in `input_overruns` and STATUS `samples_dropped`); size the ring
 * so that ::ecg_device_poll runs before it fills (see ::ECG_DEVICE_IN_BYTES).
 *
 * **Outgoing queue**: one byte ring of complete encoded frames (COBS + delimiter). A frame that
 * does not fit is dropped whole and counted (`frames_dropped`; sample blocks also add their
 * instants to `samples_dropped`); its stream's sequence number is still used, so the host sees
 * the drop as a gap (§4). With the front end as source, the pipeline never waits for the queue
 * (it runs in real time); with injection it does: injected instants stay in the input ring until
 * the queue has room for what they produce, so `free_samples` shrinks and the host slows down —
 * an injected record streams back without loss as long as the host honours flow control.
 *
 * **Injection** (§5.3): with source = injection, INJECT_SAMPLES writes into the same input ring
 * the front end uses; the front end is stopped (HAL) for as long as injection is the source, and
 * ::ecg_device_push_samples ignores (and counts) samples then. `free_samples` is the room left in
 * the input ring, in instants. A host keeps every block it sends below
 * `next_index + free_samples` of the latest INJECT response (answers of BUSY also carry them).
 *
 * **End of stream**: STOP_STREAM processes every instant already accepted, sends the last partial
 * SAMPLE_BLOCK and the beats still pending at the end of the stream (`ecg_qrs_flush`), then its
 * RESPONSE; a host that injected a record has all its beats when that response arrives. If the
 * queue lacks room, the response is deferred to a later ::ecg_device_poll (nothing is dropped).
 * START_STREAM while streaming is answered STATE.
 *
 * **Contexts**: ::ecg_device_push_samples may run in an ISR (the input ring's producer; it takes
 * the HAL critical section briefly). ::ecg_device_tx / ::ecg_device_tx_frame may run in the
 * transport's context (the outgoing ring's consumer). Everything else — init, rx, poll, link,
 * stop, setters, stats — runs in one task context. The struct holds pointers into itself: do
 * not copy it after init.
 *
 * **Personalization** (§11): the port attaches an ::ecg_update_t (::ecg_device_attach_update);
 * commands 0x18-0x1D go to `ecg_update_command`, every classified beat's embedding to the
 * µ-trainer (`ecg_update_beat`), and a link drop discards an open package transfer.
 *
 * **Later issues slot in here** (not implemented in protocol version 1):
 *  - backfill (done, ecg_backfill.h, §12): every packed SAMPLE_BLOCK passes through
 *    `emit_samples()`, which also stores it under its block `seq` in the ring attached with
 *    ::ecg_device_attach_backfill; BACKFILL_REQUEST (0x20) re-sends a seq range as
 *    BACKFILL_BLOCK frames (0xB0) and a BACKFILL_END (0xB1), from ::ecg_device_poll.
 *
 * **Beat classes** (capabilities CLASSIFIER and BEAT_CONFIDENCE): the QRS lead's filtered samples
 * also go into `ecg_beatfeat` (one store per sample), which turns each detected beat into the
 * int8 inputs of `ecg_classifier` (the feature specification is `ecgedge.beats`); the class and
 * its confidence go into BEAT_EVENT (§6.4). The RR features need the next beat, so a beat's event
 * leaves when the next beat is detected (one beat later) or at the end of the stream (STOP_STREAM
 * flushes it). ::ecg_device_classifier gives the classifier state (e.g. to install a personalized
 * head); every classified beat's embedding and logits pass through `beat_classified()` in
 * ecg_device.c, the hook for on-device training.
 *
 * **Alerts** (capability ALERTS, ecg_alerts.h): every BEAT_EVENT sent also feeds the alert
 * engine (so it sees exactly the beats and classes the host sees), ::ecg_device_poll ticks it with
 * the sample index and lead-off mask, START_STREAM restarts its rules and the end of a stream
 * closes open episodes. Records wait in its queue, not in the outgoing queue, so a link drop loses
 * none; ALERTS_PULL / ACK / CONFIGURE / GET_CONFIG are answered by `ecg_alerts_command`, and an
 * ALERT_NOTICE goes out after a poll that made records, and on connect when records are queued.
 *
 * **State size**: `sizeof(ecg_device_t)` is about 26 KB with the defaults (8-lead filters,
 * 3.4 KB detector, 2 KB input ring, 4 KB outgoing queue, 2.5 KB scratch and decoder, 7.2 KB beat
 * features of which 4 KB are the filtered-sample ring, 1.5 KB classifier scratch); the
 * Python binding reports it as `Device.state_bytes`. No heap, no globals, C99.
 */
#ifndef ECG_DEVICE_H
#define ECG_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "ecg/ecg_alerts.h"
#include "ecg/ecg_backfill.h"
#include "ecg/ecg_beatfeat.h"
#include "ecg/ecg_classifier.h"
#include "ecg/ecg_filter.h"
#include "ecg/ecg_hal.h"
#include "ecg/ecg_protocol.h"
#include "ecg/ecg_qrs.h"
#include "ecg/ecg_rb.h"
#include "ecg/ecg_update.h"
#include "ecg/ecg_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Version of the portable core, reported in DEVICE_INFO. */
#define ECG_CORE_VERSION_MAJOR 0u
#define ECG_CORE_VERSION_MINOR 1u
#define ECG_CORE_VERSION_PATCH 0u

/*
 * Sizes. Each may be overridden with -D for the whole build (every unit that includes this header
 * must see the same values, since they set the struct layout).
 */
#ifndef ECG_DEVICE_MAX_LEADS
/** Leads the state has room for (one filter each): 1..::ECG_PROTO_MAX_LEADS. */
#define ECG_DEVICE_MAX_LEADS 8u
#endif
#ifndef ECG_DEVICE_IN_BYTES
/** Input ring capacity in bytes: 1024 instants of 1 lead (2.8 s at 360 Hz), 512 of 2 leads. */
#define ECG_DEVICE_IN_BYTES 2048u
#endif
#ifndef ECG_DEVICE_TX_BYTES
/** Outgoing queue capacity in bytes: 16 full frames (about 1.8 k samples of 1 lead). */
#define ECG_DEVICE_TX_BYTES 4096u
#endif
#ifndef ECG_DEVICE_BATCH
/** Instants filtered and detected per block inside ::ecg_device_poll (scratch size; any value
 *  gives the same output; ::ECG_QRS_BLOCK is the detector's own block). */
#define ECG_DEVICE_BATCH 32u
#endif

/** Outgoing-queue room kept free for responses and STATUS while injected samples are processed,
 *  in bytes (injection waits rather than crowd out the answers that carry flow control). */
#define ECG_DEVICE_TX_RESERVE (2u * ECG_PROTO_MAX_WIRE_LEN)
/** Room a batch needs before it is processed under flow control: one full sample block and a few
 *  beat events. */
#define ECG_DEVICE_TX_BATCH_ROOM (ECG_PROTO_MAX_WIRE_LEN + 4u * ECG_PROTO_WIRE_LEN(ECG_PROTO_BEAT_LEN))

/** Device configuration. Start from ::ecg_device_default_cfg. */
typedef struct {
    uint16_t sample_rate_hz;    /**< current rate, 125..1000 Hz */
    uint16_t rates_mask;        /**< rates the front end supports (§6.2 bits); the current
                                     rate's bit is added when it is a table rate */
    uint8_t leads;              /**< 1..::ECG_DEVICE_MAX_LEADS */
    uint8_t qrs_lead;           /**< lead the detector runs on, < leads */
    float gain_uv_per_count;    /**< µV per int16 count, > 0 (raw and filtered samples) */
    uint8_t mains_hz;           /**< 0, 50 or 60: the filter's notch */
    uint8_t content;            /**< initial ::ecg_proto_content_t */
    uint8_t source;             /**< initial ::ecg_proto_source_t */
    uint8_t fw_major, fw_minor, fw_patch; /**< firmware version for DEVICE_INFO */
    uint16_t model_id;          /**< hardware model for DEVICE_INFO */
    uint32_t port_caps;         /**< capabilities the port adds: ECG_CAP_LEAD_OFF, ECG_CAP_BATTERY */
    uint16_t status_period_ms;  /**< STATUS period while the link is up; 0: never */
    uint16_t block_samples;     /**< instants per SAMPLE_BLOCK, 1..ECG_PROTO_MAX_SAMPLES(leads);
                                     0: the maximum (115 for 1 lead) */
} ecg_device_cfg_t;

/** Counters, all cumulative since init and wrapping at 2^32. */
typedef struct {
    ecg_proto_stats_t rx;      /**< receiver counters (§2): bad frames counted and dropped */
    uint32_t cmd_ok;           /**< commands answered OK */
    uint32_t cmd_errors;       /**< commands answered with an error status */
    uint32_t frames_queued;    /**< frames put in the outgoing queue */
    uint32_t frames_dropped;   /**< frames dropped before sending: queue full, or link down */
    uint32_t samples_dropped;  /**< instants never sent: dropped blocks + input overruns */
    uint32_t input_overruns;   /**< front-end instants lost to a full input ring */
    uint32_t samples_ignored;  /**< front-end instants pushed while not streaming from it */
    uint32_t samples_in;       /**< instants processed by the pipeline */
    uint32_t beats;            /**< beats detected */
    uint32_t tx_bytes;         /**< bytes handed to the transport */
    uint16_t tx_high_water;    /**< most bytes ever waiting in the outgoing queue */
    uint16_t seq_info, seq_samples, seq_beat, seq_status; /**< next seq of each stream (§4) */
} ecg_device_stats_t;

/** Device state. Caller-owned; fields are private to ecg_device.c. Do not copy after init. */
typedef struct {
    ecg_device_cfg_t cfg;      /* current configuration (rate, mains, content, source live here) */
    const ecg_hal_t *hal;
    uint32_t caps;
    float mv_per_count, counts_per_mv;
    uint8_t stride;            /* bytes per instant: 2 * leads */
    uint8_t block_n;           /* instants per sample block */
    /* pipeline */
    ecg_filter_t filt[ECG_DEVICE_MAX_LEADS];
    ecg_qrs_t qrs;
    uint32_t qrs_base;         /* sample index of the detector's sample 0 */
    /* input: the front end ISR or INJECT_SAMPLES produce, poll consumes */
    ecg_rb_t in;
    uint8_t in_buf[ECG_DEVICE_IN_BYTES + 1u];
    volatile uint32_t in_next; /* index the next instant entering the ring gets (producer) */
    volatile uint32_t input_overruns;  /* producer-owned counters */
    volatile uint32_t samples_ignored;
    volatile uint8_t fe_enabled;       /* push_samples accepts samples */
    /* stream state */
    uint8_t streaming, stop_pending, link_up;
    uint16_t stop_seq;
    uint32_t sample_index;     /* index of the next instant the pipeline processes */
    uint8_t lead_off, block_lead_off, battery_pct;
    uint8_t block_fill;        /* instants in `block` */
    uint32_t block_index;      /* index of the block's first instant */
    int16_t block[ECG_PROTO_MAX_SAMPLES(1)];
    uint64_t last_status_us;
    /* outgoing queue */
    ecg_rb_t tx;
    uint8_t tx_buf[ECG_DEVICE_TX_BYTES + 1u];
    /* alert engine and its queue (ecg_alerts.h): kept across link drops until acknowledged */
    ecg_alerts_t alerts;
    uint32_t alerts_seen;      /* queue's `added` count at the last ALERT_NOTICE */
    uint16_t seq_alert;        /* ALERT_NOTICE stream (§4) */
    /* backfill ring (caller-provided, ::ecg_device_attach_backfill), NULL: none */
    ecg_backfill_t *backfill;
    /* update packages (caller-provided, ::ecg_device_attach_update), NULL: none */
    ecg_update_t *update;
    /* beat classifier: features (ring of filtered samples), inference state and scratch */
    ecg_beatfeat_t feat;
    ecg_classifier_t clf;
    uint32_t clf_scratch[(ECG_CLASSIFIER_SCRATCH_BYTES + 3u) / 4u];
    ecg_beatfeat_beat_t feat_beat;     /* the beat being classified */
    int8_t clf_logits[ECG_CLASSIFIER_N_CLASSES];
    int8_t clf_embedding[ECG_CLASSIFIER_EMBEDDING_LEN];
    /* receiver */
    ecg_frame_decoder_t dec;
    ecg_device_stats_t stats;
    /* scratch */
    int16_t batch[ECG_DEVICE_BATCH * ECG_DEVICE_MAX_LEADS];
    float x[ECG_DEVICE_BATCH], y[ECG_DEVICE_BATCH];
    ecg_qrs_beat_t beats[ECG_DEVICE_BATCH]; /* ecg_qrs_process: at most one beat per sample */
    int16_t cmd_samples[ECG_PROTO_MAX_SAMPLES(1)];
    uint8_t payload[ECG_PROTO_MAX_PAYLOAD];
    uint8_t wire[ECG_PROTO_MAX_WIRE_LEN];
} ecg_device_t;

/**
 * @brief Defaults: 1 lead at 250 Hz (rates_mask: 250 only), 5 µV/count, 50 Hz notch, raw content,
 *        front-end source, firmware 0.1.0, model 0, STATUS every 1000 ms, full blocks.
 */
void ecg_device_default_cfg(ecg_device_cfg_t *cfg);

/**
 * @brief Initialise the device: design the pipeline, empty the queues, zero the counters, and
 *        queue the boot DEVICE_INFO (seq 0, §4). The link is considered up.
 * @param[out] dev  device state (caller-owned, about 26 KB)
 * @param[in]  cfg  configuration (copied)
 * @param[in]  hal  port functions (kept by pointer; entries may be NULL)
 * @return ECG_OK; ECG_ERR_NULL; ECG_ERR_RANGE (a value outside its range, reserved rates_mask
 *         bits); ECG_ERR_CONFIG (qrs_lead >= leads, block_samples too large); an error from
 *         `hal->sampling_set_rate` or from the filter / detector design
 */
ecg_err_t ecg_device_init(ecg_device_t *dev, const ecg_device_cfg_t *cfg, const ecg_hal_t *hal);

/**
 * @brief Front end: hand over `n` sample instants (`n * leads` int16 counts, interleaved by
 *        instant). ISR-safe (see Contexts). Samples are only taken while streaming from the
 *        front end; otherwise they are counted in `samples_ignored`.
 * @return instants taken; the rest found the input ring full and are counted in `input_overruns`
 */
size_t ecg_device_push_samples(ecg_device_t *dev, const int16_t *counts, size_t n);

/**
 * @brief Bytes received from the transport: frames are decoded (bad ones counted and dropped,
 *        §2) and commands answered into the outgoing queue.
 * @return frames delivered
 */
size_t ecg_device_rx(ecg_device_t *dev, const uint8_t *data, size_t len);

/**
 * @brief Run the pipeline on the pending instants, finish a deferred STOP_STREAM, send a due
 *        STATUS, and drain the queue into `hal->write` when the port has one.
 * @return instants processed
 */
size_t ecg_device_poll(ecg_device_t *dev);

/**
 * @brief Transport: take up to `cap` bytes of the outgoing byte stream (frames may be split
 *        across calls; the stream is the same).
 * @return bytes copied to `buf`
 */
size_t ecg_device_tx(ecg_device_t *dev, uint8_t *buf, size_t cap);

/**
 * @brief Transport: take the next whole frame (through its 0x00 delimiter), e.g. one BLE
 *        notification. `cap` >= ::ECG_PROTO_MAX_WIRE_LEN always suffices.
 * @return bytes copied, 0 when the queue is empty or the frame does not fit `cap`
 */
size_t ecg_device_tx_frame(ecg_device_t *dev, uint8_t *buf, size_t cap);

/** @brief Bytes waiting in the outgoing queue. */
size_t ecg_device_tx_pending(const ecg_device_t *dev);

/** @brief Free bytes in the outgoing queue. */
size_t ecg_device_tx_free(const ecg_device_t *dev);

/** @brief Room in the input ring, in sample instants. */
size_t ecg_device_in_free(const ecg_device_t *dev);

/**
 * @brief The link to the host came up or went down. Up: the partial frame the decoder holds is
 *        dropped, and a lone 0x00 plus an unsolicited DEVICE_INFO are queued (§6.2 "on connect").
 *        Down: the queued frames are discarded (counted in `frames_dropped`), STATUS stops until
 *        the link is up again. Streaming is not affected: the port decides (see ::ecg_device_stop).
 */
void ecg_device_link(ecg_device_t *dev, int up);

/**
 * @brief End the stream now without a command (e.g. a port's policy on disconnect): the front end
 *        is stopped, pending instants are processed and the stream flushed as for STOP_STREAM, but
 *        without waiting for queue room (frames that do not fit are dropped and counted) and
 *        without a RESPONSE. A deferred STOP_STREAM is answered.
 */
void ecg_device_stop(ecg_device_t *dev);

/** @brief Lead-off state from the front end: bit i = lead i off (STATUS, sample block flag). */
void ecg_device_set_lead_off(ecg_device_t *dev, uint8_t mask);

/** @brief Battery level 0..100, or ::ECG_BATTERY_UNKNOWN (STATUS). */
void ecg_device_set_battery(ecg_device_t *dev, uint8_t pct);

/** @brief Copy the counters (see ::ecg_device_stats_t). */
void ecg_device_get_stats(const ecg_device_t *dev, ecg_device_stats_t *out);

/** @brief The DEVICE_INFO this device sends now (§6.2). */
void ecg_device_get_info(const ecg_device_t *dev, ecg_proto_device_info_t *out);

/** @brief 1 while streaming (between START_STREAM and the end of STOP_STREAM). */
int ecg_device_streaming(const ecg_device_t *dev);

/**
 * @brief The device's beat classifier (task context only): install a personalized head with
 *        `ecg_classifier_set_head`, read the installed one with `ecg_classifier_get_head`.
 * @return the classifier inside `dev`, or NULL when `dev` is NULL
 */
ecg_classifier_t *ecg_device_classifier(ecg_device_t *dev);

/**
 * @brief Attach a backfill ring (ecg_backfill.h; call after ::ecg_device_init): from now on every
 *        SAMPLE_BLOCK payload is also stored there under its block seq, BACKFILL_REQUEST is
 *        answered, replayed blocks go out as the outgoing queue has room (link up only, never
 *        crowding out live frames), and DEVICE_INFO reports capability BACKFILL.
 * @param[in,out] dev  device
 * @param[in]     bf   an initialised ring that outlives the device; NULL detaches
 */
void ecg_device_attach_backfill(ecg_device_t *dev, ecg_backfill_t *bf);

/**
 * @brief Attach the update-package state (ecg_update.h; initialised by the port with its storage
 *        HAL, per-device key, the classifier and the µ-trainer): from now on the personalization
 *        commands PKG_BEGIN .. RESET_PERSONALIZATION (§11) are answered, a link drop discards an
 *        open transfer, and DEVICE_INFO reports HEAD_PACKAGES / PERSONALIZE_LABELS as it can.
 * @param[in,out] dev  device
 * @param[in]     u    an initialised ::ecg_update_t that outlives the device; NULL detaches
 */
void ecg_device_attach_update(ecg_device_t *dev, ecg_update_t *u);

#ifdef __cplusplus
}
#endif

#endif /* ECG_DEVICE_H */

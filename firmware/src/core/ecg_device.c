#include "ecg/ecg_device.h"

#include <string.h>

#define U16_MAX 65535u
#define MAX_FLUSH_BEATS 8u /* ecg_qrs_flush yields at most three; a bound for the loop */
/* Room a deferred STOP needs to finish: the partial block, the flushed beats, the response. */
#define STOP_ROOM (ECG_DEVICE_TX_BATCH_ROOM + ECG_PROTO_WIRE_LEN(ECG_PROTO_RESPONSE_HDR_LEN) + \
                   ECG_BEATFEAT_QUEUE * ECG_PROTO_WIRE_LEN(ECG_PROTO_BEAT_LEN))

#if ECG_DEVICE_MAX_LEADS < 1 || ECG_DEVICE_MAX_LEADS > ECG_PROTO_MAX_LEADS
#error "ECG_DEVICE_MAX_LEADS must be 1..ECG_PROTO_MAX_LEADS"
#endif
#if ECG_DEVICE_BATCH < 1 || ECG_DEVICE_BATCH > 255
#error "ECG_DEVICE_BATCH must be 1..255"
#endif
#if ECG_DEVICE_TX_BYTES < 4 * ECG_PROTO_MAX_WIRE_LEN
#error "ECG_DEVICE_TX_BYTES must hold at least four full frames"
#endif

/* ---------------------------------------------------------------------------------------------
 * HAL helpers
 * ------------------------------------------------------------------------------------------- */

static uint64_t now_us(const ecg_device_t *dev)
{
    return dev->hal->time_us != NULL ? dev->hal->time_us(dev->hal->ctx) : 0u;
}

static void crit_enter(const ecg_device_t *dev)
{
    if (dev->hal->critical_enter != NULL) {
        dev->hal->critical_enter(dev->hal->ctx);
    }
}

static void crit_exit(const ecg_device_t *dev)
{
    if (dev->hal->critical_exit != NULL) {
        dev->hal->critical_exit(dev->hal->ctx);
    }
}

/* Stop taking front-end samples, and stop the front end when it was running. */
static void frontend_off(ecg_device_t *dev)
{
    crit_enter(dev);
    dev->fe_enabled = 0u;
    crit_exit(dev);
    if (dev->cfg.source == ECG_SOURCE_FRONT_END && dev->hal->sampling_stop != NULL) {
        dev->hal->sampling_stop(dev->hal->ctx);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------------------- */

/* rates_mask bit of a table rate, or -1. */
static int rate_bit(uint16_t hz)
{
    unsigned b;
    for (b = 0; b < ECG_PROTO_N_RATES; b++) {
        if (ecg_proto_rate_hz(b) == hz) {
            return (int)b;
        }
    }
    return -1;
}

static unsigned popcount16(uint16_t v)
{
    unsigned n = 0;
    while (v != 0u) {
        n += v & 1u;
        v = (uint16_t)(v >> 1);
    }
    return n;
}

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* Filtered millivolts back to counts: round half away from zero, saturated to int16. */
static int16_t mv_to_counts(float mv, float counts_per_mv)
{
    const float c = mv * counts_per_mv;
    if (!(c > -32768.5f)) { /* also NaN */
        return INT16_MIN;
    }
    if (c >= 32767.5f) {
        return INT16_MAX;
    }
    if (c >= 0.0f) {
        return (int16_t)(int32_t)(c + 0.5f);
    }
    return (int16_t)(-(int32_t)(0.5f - c));
}

/* ---------------------------------------------------------------------------------------------
 * Outgoing queue
 * ------------------------------------------------------------------------------------------- */

/* Encode and queue one frame whole. Returns 0, or -1 when it was dropped (counted). */
static int send_frame(ecg_device_t *dev, uint8_t type, uint16_t seq, const uint8_t *payload,
                      size_t len)
{
    const int32_t n = ecg_frame_encode(type, seq, payload, len, dev->wire, sizeof dev->wire);
    size_t used;
    if (n < 0 || ecg_rb_free_bytes(&dev->tx) < (size_t)n) {
        dev->stats.frames_dropped++;
        return -1;
    }
    (void)ecg_rb_write(&dev->tx, dev->wire, (size_t)n);
    dev->stats.frames_queued++;
    used = ecg_rb_used_bytes(&dev->tx);
    if (used > dev->stats.tx_high_water) {
        dev->stats.tx_high_water = (uint16_t)min_size(used, U16_MAX);
    }
    return 0;
}

static void send_info(ecg_device_t *dev)
{
    ecg_proto_device_info_t info;
    int32_t n;
    ecg_device_get_info(dev, &info);
    n = ecg_proto_pack_device_info(&info, dev->payload, sizeof dev->payload);
    (void)send_frame(dev, ECG_FT_DEVICE_INFO, dev->stats.seq_info++, dev->payload, (size_t)n);
}

static void send_status(ecg_device_t *dev)
{
    ecg_proto_status_t st;
    const ecg_proto_stats_t *rx = &dev->dec.stats;
    int32_t n;
    st.sample_index = dev->in_next;
    st.battery_pct = dev->battery_pct;
    st.lead_off = dev->lead_off;
    st.buffer_fill_pct =
        (uint8_t)((ecg_rb_used_bytes(&dev->tx) * 100u) / ecg_rb_capacity(&dev->tx));
    st.flags = (uint8_t)((dev->streaming ? ECG_STATUS_FLAG_STREAMING : 0u) |
                         (dev->cfg.source == ECG_SOURCE_INJECT ? ECG_STATUS_FLAG_INJECTING : 0u));
    st.samples_dropped = dev->stats.samples_dropped + dev->input_overruns;
    st.frames_dropped = dev->stats.frames_dropped;
    st.rx_crc_errors = rx->crc_errors;
    st.rx_cobs_errors = rx->cobs_errors;
    st.rx_truncated = rx->truncated;
    st.rx_oversize = rx->oversize;
    st.rx_bad_version = rx->bad_version;
    st.rx_unknown_type = rx->unknown_type;
    n = ecg_proto_pack_status(&st, dev->payload, sizeof dev->payload);
    (void)send_frame(dev, ECG_FT_STATUS, dev->stats.seq_status++, dev->payload, (size_t)n);
}

/* ALERT_NOTICE (§6.6) when the alert engine made records since the last one, or (`force`, on
 * connect) when records wait in its queue. */
static void send_alert_notice(ecg_device_t *dev, int force)
{
    int32_t n;
    if (!dev->link_up) {
        return;
    }
    n = ecg_alerts_pack_notice(&dev->alerts, &dev->alerts_seen, force, dev->payload,
                               sizeof dev->payload);
    if (n > 0) {
        (void)send_frame(dev, ECG_FT_ALERT_NOTICE, dev->seq_alert++, dev->payload, (size_t)n);
    }
}

/* RESPONSE to a command; `status` is 0 or a negative ecg_err_t / ecg_proto_err_t. */
static void respond(ecg_device_t *dev, uint8_t cmd_type, uint16_t seq, int32_t status,
                    const uint8_t *body, size_t body_len)
{
    ecg_proto_response_t r;
    int32_t n;
    r.cmd_type = cmd_type;
    r.status = (int8_t)status;
    r.body = body;
    r.body_len = body_len;
    if (status == ECG_OK) {
        dev->stats.cmd_ok++;
    } else {
        dev->stats.cmd_errors++;
    }
    n = ecg_proto_pack_response(&r, dev->payload, sizeof dev->payload);
    if (n < 0) {
        dev->stats.frames_dropped++; /* cannot happen: bodies are at most 25 bytes */
        return;
    }
    (void)send_frame(dev, ECG_FT_RESPONSE, seq, dev->payload, (size_t)n);
}

/* ---------------------------------------------------------------------------------------------
 * Pipeline
 * ------------------------------------------------------------------------------------------- */

/* Design every lead's filter, the detector and the beat features for the current rate and mains. */
static ecg_err_t design_pipeline(ecg_device_t *dev)
{
    ecg_filter_cfg_t fc;
    ecg_qrs_cfg_t qc;
    ecg_err_t err;
    uint8_t l;
    const float fs = (float)dev->cfg.sample_rate_hz;
    ecg_filter_default_cfg(&fc, fs);
    fc.mains_hz = dev->cfg.mains_hz;
    for (l = 0; l < dev->cfg.leads; l++) {
        err = ecg_filter_init(&dev->filt[l], &fc);
        if (err != ECG_OK) {
            return err;
        }
    }
    ecg_qrs_default_cfg(&qc, fs);
    qc.filter_delay_samples = ecg_filter_delay_samples(&dev->filt[dev->cfg.qrs_lead]);
    err = ecg_qrs_init(&dev->qrs, &qc);
    if (err != ECG_OK) {
        return err;
    }
    {
        ecg_beatfeat_cfg_t bc; /* the classifier's features of the QRS lead (ecgedge.beats) */
        ecg_beatfeat_default_cfg(&bc, fs, qc.filter_delay_samples);
        return ecg_beatfeat_init(&dev->feat, &bc);
    }
}

/* Queue the sample block being filled (backfill hook: this is the one place blocks leave). */
static void emit_samples(ecg_device_t *dev)
{
    ecg_proto_samples_hdr_t h;
    int32_t n;
    if (dev->block_fill == 0u) {
        return;
    }
    h.sample_index = dev->block_index;
    h.leads = dev->cfg.leads;
    h.flags = (uint8_t)((dev->cfg.content & ECG_SAMPLES_FLAG_CONTENT_MASK) |
                        (dev->cfg.source == ECG_SOURCE_INJECT ? ECG_SAMPLES_FLAG_INJECTED : 0u) |
                        (dev->block_lead_off != 0u ? ECG_SAMPLES_FLAG_LEAD_OFF : 0u));
    h.n_samples = dev->block_fill;
    n = ecg_proto_pack_samples(&h, dev->block, dev->payload, sizeof dev->payload);
    if (n > 0 && dev->backfill != NULL) {
        ecg_backfill_put(dev->backfill, dev->stats.seq_samples, dev->payload, (size_t)n);
    }
    if (n < 0 ||
        send_frame(dev, ECG_FT_SAMPLE_BLOCK, dev->stats.seq_samples, dev->payload, (size_t)n) != 0) {
        dev->stats.samples_dropped += dev->block_fill;
    }
    dev->stats.seq_samples++;
    dev->block_fill = 0u;
    dev->block_lead_off = dev->lead_off;
}

/* Queue a beat's event: the detector's fields, its class and the confidence byte (§6.4). */
static void send_beat(ecg_device_t *dev, const ecg_qrs_beat_t *beat, uint8_t beat_class,
                      uint8_t confidence)
{
    ecg_proto_beat_t b;
    int32_t n;
    b.sample_index = dev->qrs_base + (uint32_t)beat->index;
    b.rr_samples = (uint16_t)(beat->rr_samples > U16_MAX ? U16_MAX : beat->rr_samples);
    b.beat_class = beat_class;
    b.quality = beat->quality;
    b.flags = beat->searchback ? ECG_BEAT_FLAG_SEARCHBACK : 0u;
    b.confidence = confidence;
    n = ecg_proto_pack_beat(&b, dev->payload, sizeof dev->payload);
    (void)send_frame(dev, ECG_FT_BEAT_EVENT, dev->stats.seq_beat++, dev->payload, (size_t)n);
    dev->stats.beats++;
    {
        ecg_alerts_beat_t ab; /* the alert engine sees the beat the host sees */
        ab.sample_index = b.sample_index;
        ab.rr_samples = beat->rr_samples;
        ab.beat_class = b.beat_class;
        ab.quality = b.quality;
        ab.flags = b.flags;
        ecg_alerts_beat(&dev->alerts, &ab, now_us(dev));
    }
}

/* Classifier hook: every classified beat passes here with its sample index, the backbone's
 * embedding and the installed head's logits (also in dev->clf_embedding / clf_logits until the
 * next beat). On-device training takes (sample_index, embedding) from here. */
static void beat_classified(ecg_device_t *dev, uint32_t sample_index, const int8_t *embedding,
                            const int8_t *logits)
{
    (void)logits;
    ecg_update_beat(dev->update, sample_index, embedding); /* µ-trainer buffer (§11) */
}

/* BEAT_EVENT confidence byte (§6.4): round(255 * confidence), confidence in [0.5, 1). */
static uint8_t confidence_byte(float confidence)
{
    const float c = 255.0f * confidence + 0.5f;
    return (uint8_t)(c >= 255.0f ? 255u : (c <= 0.0f ? 0u : (unsigned)c));
}

/* Classify and send every beat whose features are complete: a beat leaves once the next one is
 * detected (its RR features need it) or the stream ended. */
static void classify_ready(ecg_device_t *dev)
{
    ecg_beatfeat_beat_t *fb = &dev->feat_beat;
    while (ecg_beatfeat_next(&dev->feat, fb)) {
        uint8_t cls = ECG_BEAT_CLASS_NONE;
        uint8_t conf = 0u;
        if (ecg_classifier_run(&dev->clf, fb->window, fb->rr, dev->clf_logits,
                               dev->clf_embedding) == ECG_OK) {
            const ecg_classifier_decision_t d =
                ecg_classifier_decide(ecg_classifier_get_head(&dev->clf), dev->clf_logits);
            cls = d.class_index;
            conf = confidence_byte(d.confidence);
            beat_classified(dev, dev->qrs_base + (uint32_t)fb->beat.index, dev->clf_embedding,
                            dev->clf_logits);
        }
        send_beat(dev, &fb->beat, cls, conf);
    }
}

/* A beat from the detector: queued for its features, sent when classified (classify_ready). */
static void emit_beat(ecg_device_t *dev, const ecg_qrs_beat_t *beat)
{
    ecg_alerts_note_detection(&dev->alerts, dev->qrs_base + (uint32_t)beat->index);
    if (ecg_beatfeat_add_beat(&dev->feat, beat) != ECG_OK) {
        send_beat(dev, beat, ECG_BEAT_CLASS_NONE, 0u); /* not reached: see ECG_BEATFEAT_QUEUE */
        return;
    }
    classify_ready(dev);
}

/* End of a detector run (end of stream, or a mid-stream redesign): classify the beats still
 * waiting for a successor or the end of their window, and start the features over. */
static void classify_flush(ecg_device_t *dev)
{
    ecg_beatfeat_finish(&dev->feat);
    classify_ready(dev);
    ecg_beatfeat_reset(&dev->feat);
}

/* Run `k` instants of dev->batch through the pipeline: the QRS lead is converted to millivolts,
 * filtered as one block, then detected on as one block (ecg_qrs_process, which gives exactly the
 * beats of ecg_qrs_step per sample), like ecgedge.core.QrsDetector. */
static void process_batch(ecg_device_t *dev, size_t k)
{
    const size_t L = dev->cfg.leads;
    const size_t q = dev->cfg.qrs_lead;
    const float mv = dev->mv_per_count;
    const int16_t *in = dev->batch;
    size_t i;
    size_t l;
    for (i = 0; i < k; i++) {
        dev->x[i] = (float)in[i * L + q] * mv;
    }
    ecg_filter_process(&dev->filt[q], dev->x, dev->y, k);
    ecg_beatfeat_push(&dev->feat, dev->y, k); /* one store per sample */
    classify_ready(dev);

    if (dev->cfg.content != ECG_CONTENT_BEATS_ONLY) {
        int16_t *out = &dev->block[(size_t)dev->block_fill * L];
        if (dev->block_fill == 0u) {
            dev->block_index = dev->sample_index;
        }
        if (dev->cfg.content == ECG_CONTENT_FILTERED) {
            for (l = 0; l < L; l++) {
                const float *src = dev->y;
                if (l != q) {
                    for (i = 0; i < k; i++) {
                        dev->x[i] = (float)in[i * L + l] * mv;
                    }
                    ecg_filter_process(&dev->filt[l], dev->x, dev->x, k);
                    src = dev->x;
                }
                for (i = 0; i < k; i++) {
                    out[i * L + l] = mv_to_counts(src[i], dev->counts_per_mv);
                }
            }
        } else {
            memcpy(out, in, k * L * sizeof(int16_t));
        }
        dev->block_lead_off |= dev->lead_off;
    }

    {
        const size_t nb = ecg_qrs_process(&dev->qrs, dev->y, k, dev->beats);
        for (i = 0; i < nb; i++) {
            emit_beat(dev, &dev->beats[i]);
        }
    }
    dev->sample_index += (uint32_t)k;
    dev->stats.samples_in += (uint32_t)k;
    if (dev->cfg.content != ECG_CONTENT_BEATS_ONLY) {
        dev->block_fill = (uint8_t)(dev->block_fill + k);
        if (dev->block_fill >= dev->block_n) {
            emit_samples(dev);
        }
    }
}

/* Process pending input. With `flow`, only while the queue has room for what a batch produces
 * (injection and draining a STOP): the samples wait in the input ring instead of being lost. */
static size_t process_input(ecg_device_t *dev, int flow)
{
    size_t total = 0;
    for (;;) {
        size_t k = ecg_rb_used_bytes(&dev->in) / dev->stride;
        if (k == 0u) {
            break;
        }
        if (flow && ecg_rb_free_bytes(&dev->tx) < ECG_DEVICE_TX_RESERVE + ECG_DEVICE_TX_BATCH_ROOM) {
            break;
        }
        k = min_size(k, ECG_DEVICE_BATCH);
        if (dev->cfg.content != ECG_CONTENT_BEATS_ONLY) {
            k = min_size(k, (size_t)(dev->block_n - dev->block_fill)); /* a batch never spans
                                                                          two blocks */
        }
        (void)ecg_rb_read(&dev->in, dev->batch, k * dev->stride);
        process_batch(dev, k);
        total += k;
    }
    return total;
}

/* End of stream: the partial block, then the beats still pending. */
static void finish_stream(ecg_device_t *dev)
{
    ecg_qrs_beat_t beat;
    unsigned i;
    emit_samples(dev);
    for (i = 0; i < MAX_FLUSH_BEATS && ecg_qrs_flush(&dev->qrs, &beat); i++) {
        emit_beat(dev, &beat);
    }
    classify_flush(dev);
    ecg_alerts_stop(&dev->alerts, dev->sample_index, now_us(dev));
    dev->streaming = 0u;
}

/* Complete a deferred STOP_STREAM once every accepted instant is processed and there is room. */
static void try_finish_stop(ecg_device_t *dev)
{
    if (!dev->stop_pending) {
        return;
    }
    (void)process_input(dev, 1);
    if (ecg_rb_used_bytes(&dev->in) >= dev->stride || ecg_rb_free_bytes(&dev->tx) < STOP_ROOM) {
        return;
    }
    finish_stream(dev);
    dev->stop_pending = 0u;
    respond(dev, ECG_FT_STOP_STREAM, dev->stop_seq, ECG_OK, NULL, 0u);
}

/* ---------------------------------------------------------------------------------------------
 * Commands (§5)
 * ------------------------------------------------------------------------------------------- */

static int32_t cmd_start(ecg_device_t *dev)
{
    uint8_t l;
    if (dev->streaming) {
        return ECG_ERR_STATE;
    }
    for (l = 0; l < dev->cfg.leads; l++) {
        ecg_filter_reset(&dev->filt[l]);
    }
    ecg_qrs_reset(&dev->qrs);
    ecg_beatfeat_reset(&dev->feat);
    ecg_alerts_start(&dev->alerts, 0u, dev->cfg.sample_rate_hz);
    dev->qrs_base = 0u;
    dev->sample_index = 0u;
    dev->block_fill = 0u;
    dev->block_index = 0u;
    dev->block_lead_off = dev->lead_off;
    crit_enter(dev);
    ecg_rb_reset(&dev->in);
    dev->in_next = 0u;
    dev->fe_enabled = dev->cfg.source == ECG_SOURCE_FRONT_END ? 1u : 0u;
    crit_exit(dev);
    if (dev->cfg.source == ECG_SOURCE_FRONT_END && dev->hal->sampling_start != NULL) {
        const ecg_err_t err = dev->hal->sampling_start(dev->hal->ctx);
        if (err != ECG_OK) {
            crit_enter(dev);
            dev->fe_enabled = 0u;
            crit_exit(dev);
            return err;
        }
    }
    dev->streaming = 1u;
    return ECG_OK;
}

static void cmd_stop(ecg_device_t *dev, uint16_t seq)
{
    if (!dev->streaming) {
        respond(dev, ECG_FT_STOP_STREAM, seq, ECG_OK, NULL, 0u);
        return;
    }
    if (dev->stop_pending) {
        respond(dev, ECG_FT_STOP_STREAM, seq, ECG_PROTO_ERR_BUSY, NULL, 0u);
        return;
    }
    frontend_off(dev);
    dev->stop_pending = 1u;
    dev->stop_seq = seq;
    try_finish_stop(dev);
}

static int32_t cmd_configure(ecg_device_t *dev, const ecg_frame_t *f)
{
    ecg_proto_configure_t c;
    uint16_t rate = dev->cfg.sample_rate_hz;
    uint8_t mains = dev->cfg.mains_hz;
    uint8_t content = dev->cfg.content;
    uint8_t source = dev->cfg.source;
    uint8_t l;
    if (ecg_proto_unpack_configure(f->payload, f->payload_len, &c) != ECG_OK) {
        return ECG_PROTO_ERR_LENGTH;
    }
    if ((c.set_mask & 0xF0u) != 0u) {
        return ECG_ERR_UNSUPPORTED;
    }
    /* validate everything first, then apply: a refused CONFIGURE changes nothing */
    if (c.set_mask & ECG_CFG_SET_RATE) {
        const int bit = rate_bit(c.sample_rate_hz);
        if (bit < 0) {
            return ECG_ERR_RANGE;
        }
        if ((dev->cfg.rates_mask & (1u << (unsigned)bit)) == 0u) {
            return ECG_ERR_UNSUPPORTED;
        }
        if (dev->streaming && c.sample_rate_hz != rate) {
            return ECG_ERR_STATE;
        }
        rate = c.sample_rate_hz;
    }
    if (c.set_mask & ECG_CFG_SET_MAINS) {
        if (c.mains_hz != 0u && c.mains_hz != 50u && c.mains_hz != 60u) {
            return ECG_ERR_RANGE;
        }
        mains = c.mains_hz;
    }
    if (c.set_mask & ECG_CFG_SET_CONTENT) {
        if (c.content > ECG_CONTENT_BEATS_ONLY) {
            return ECG_ERR_RANGE;
        }
        content = c.content;
    }
    if (c.set_mask & ECG_CFG_SET_SOURCE) {
        if (c.source > ECG_SOURCE_INJECT) {
            return ECG_ERR_RANGE;
        }
        if (dev->streaming && c.source != source) {
            return ECG_ERR_STATE;
        }
        source = c.source;
    }

    if (rate != dev->cfg.sample_rate_hz && dev->hal->sampling_set_rate != NULL) {
        const ecg_err_t err = dev->hal->sampling_set_rate(dev->hal->ctx, rate);
        if (err != ECG_OK) {
            return err;
        }
    }
    if (rate != dev->cfg.sample_rate_hz || mains != dev->cfg.mains_hz) {
        classify_flush(dev); /* the beats of the detector run that ends here */
        dev->cfg.sample_rate_hz = rate;
        dev->cfg.mains_hz = mains;
        if (design_pipeline(dev) != ECG_OK) {
            return ECG_ERR_RANGE; /* not reached: every table rate and notch designs */
        }
        dev->qrs_base = dev->sample_index; /* mid-stream: the detector starts over here */
    }
    if (content != dev->cfg.content) {
        emit_samples(dev); /* the partial block keeps the content it was filled with */
        if (content == ECG_CONTENT_FILTERED) {
            for (l = 0; l < dev->cfg.leads; l++) {
                if (l != dev->cfg.qrs_lead) {
                    ecg_filter_reset(&dev->filt[l]);
                }
            }
        }
        dev->cfg.content = content;
    }
    dev->cfg.source = source;
    return ECG_OK;
}

static void cmd_time_sync(ecg_device_t *dev, const ecg_frame_t *f)
{
    ecg_proto_time_sync_t ts;
    ecg_proto_time_sync_result_t res;
    uint8_t body[ECG_PROTO_TIME_SYNC_RESULT_LEN];
    if (ecg_proto_unpack_time_sync(f->payload, f->payload_len, &ts) != ECG_OK) {
        respond(dev, f->type, f->seq, ECG_PROTO_ERR_LENGTH, NULL, 0u);
        return;
    }
    res.host_time_us = ts.host_time_us;
    crit_enter(dev); /* the clock and the counter, read together */
    res.device_time_us = now_us(dev);
    res.sample_index = dev->in_next;
    crit_exit(dev);
    (void)ecg_proto_pack_time_sync_result(&res, body, sizeof body);
    respond(dev, f->type, f->seq, ECG_OK, body, sizeof body);
}

static void cmd_inject(ecg_device_t *dev, const ecg_frame_t *f)
{
    ecg_proto_samples_hdr_t h;
    ecg_proto_inject_result_t res;
    uint8_t body[ECG_PROTO_INJECT_RESULT_LEN];
    int32_t status;
    const int32_t rc = ecg_proto_unpack_samples(f->payload, f->payload_len, &h, dev->cmd_samples,
                                                sizeof dev->cmd_samples / sizeof dev->cmd_samples[0]);
    if (rc != ECG_OK) {
        status = ECG_PROTO_ERR_LENGTH;
    } else if (!dev->streaming || dev->stop_pending || dev->cfg.source != ECG_SOURCE_INJECT) {
        status = ECG_ERR_STATE;
    } else if (h.leads != dev->cfg.leads) {
        status = ECG_ERR_CONFIG;
    } else if (h.sample_index != dev->in_next) {
        status = ECG_PROTO_ERR_SEQUENCE;
    } else if (h.n_samples > ecg_device_in_free(dev)) {
        status = ECG_PROTO_ERR_BUSY;
    } else {
        (void)ecg_rb_write(&dev->in, dev->cmd_samples, (size_t)h.n_samples * dev->stride);
        dev->in_next += h.n_samples;
        status = ECG_OK;
    }
    res.next_index = dev->in_next;
    res.free_samples = (uint16_t)min_size(ecg_device_in_free(dev), U16_MAX);
    (void)ecg_proto_pack_inject_result(&res, body, sizeof body);
    respond(dev, f->type, f->seq, status, body, sizeof body);
}

/* BACKFILL_REQUEST (§12.1): arm the ring's replay; pump_backfill sends it. */
static void cmd_backfill(ecg_device_t *dev, const ecg_frame_t *f)
{
    ecg_proto_backfill_request_t req;
    ecg_proto_backfill_result_t res;
    uint8_t body[ECG_PROTO_BACKFILL_RESULT_LEN];
    int32_t status;
    if (dev->backfill == NULL) {
        status = ECG_ERR_UNSUPPORTED;
    } else if (ecg_proto_unpack_backfill_request(f->payload, f->payload_len, &req) != ECG_OK) {
        status = ECG_PROTO_ERR_LENGTH;
    } else {
        status = ecg_backfill_request(dev->backfill, &req, f->seq, &res);
    }
    if (status != ECG_OK) {
        respond(dev, f->type, f->seq, status, NULL, 0u);
        return;
    }
    (void)ecg_proto_pack_backfill_result(&res, body, sizeof body);
    respond(dev, f->type, f->seq, ECG_OK, body, sizeof body);
}

/* Send the armed replay while the queue keeps room for live frames, then BACKFILL_END. */
static void pump_backfill(ecg_device_t *dev)
{
    ecg_proto_backfill_end_t end;
    uint16_t seq;
    uint8_t body[ECG_PROTO_BACKFILL_END_LEN];
    if (dev->backfill == NULL || !dev->link_up) {
        return;
    }
    while (ecg_rb_free_bytes(&dev->tx) >=
           ECG_DEVICE_TX_RESERVE + ECG_DEVICE_TX_BATCH_ROOM + ECG_PROTO_MAX_WIRE_LEN) {
        const size_t n = ecg_backfill_next(dev->backfill, &seq, dev->payload, sizeof dev->payload);
        if (n == 0u) {
            if (ecg_backfill_end(dev->backfill, &end, &seq)) {
                (void)ecg_proto_pack_backfill_end(&end, body, sizeof body);
                (void)send_frame(dev, ECG_FT_BACKFILL_END, seq, body, sizeof body);
            }
            return;
        }
        (void)send_frame(dev, ECG_FT_BACKFILL_BLOCK, seq, dev->payload, n);
    }
}

/* Personalization commands (§11): all handled by ecg_update. */
static void cmd_update(ecg_device_t *dev, const ecg_frame_t *f)
{
    uint8_t body[ECG_UPDATE_MODEL_INFO_LEN];
    size_t n = 0u;
    const int32_t status =
        dev->update == NULL
            ? ECG_ERR_UNSUPPORTED
            : ecg_update_command(dev->update, f->type, f->payload, f->payload_len, body, &n);
    respond(dev, f->type, f->seq, status, body, n);
}

/* Decoder callback: one valid host -> device frame (the decoder has already counted the rest). */
static void on_frame(void *ctx, const ecg_frame_t *f)
{
    ecg_device_t *dev = (ecg_device_t *)ctx;
    switch (f->type) {
    case ECG_FT_GET_INFO: {
        ecg_proto_device_info_t info;
        uint8_t body[ECG_PROTO_DEVICE_INFO_LEN];
        ecg_device_get_info(dev, &info);
        (void)ecg_proto_pack_device_info(&info, body, sizeof body);
        respond(dev, f->type, f->seq, ECG_OK, body, sizeof body);
        break;
    }
    case ECG_FT_START_STREAM:
        respond(dev, f->type, f->seq, cmd_start(dev), NULL, 0u);
        break;
    case ECG_FT_STOP_STREAM:
        cmd_stop(dev, f->seq);
        break;
    case ECG_FT_CONFIGURE:
        respond(dev, f->type, f->seq, cmd_configure(dev, f), NULL, 0u);
        break;
    case ECG_FT_TIME_SYNC:
        cmd_time_sync(dev, f);
        break;
    case ECG_FT_INJECT_SAMPLES:
        cmd_inject(dev, f);
        break;
    case ECG_FT_BACKFILL_REQUEST:
        cmd_backfill(dev, f);
        break;
    case ECG_FT_ALERTS_PULL:
    case ECG_FT_ALERTS_ACK:
    case ECG_FT_ALERTS_CONFIGURE:
    case ECG_FT_ALERTS_GET_CONFIG: {
        uint8_t body[ECG_PROTO_MAX_PAYLOAD - ECG_PROTO_RESPONSE_HDR_LEN];
        size_t nb = 0u;
        const int32_t st = ecg_alerts_command(&dev->alerts, f->type, f->payload, f->payload_len,
                                              dev->sample_index, now_us(dev), body, sizeof body,
                                              &nb);
        respond(dev, f->type, f->seq, st, body, nb);
        break;
    }
    ECG_FT_UPDATE_CASES:
        cmd_update(dev, f);
        break;
    default:
        break; /* not delivered: the decoder accepts host -> device types of version 1 only */
    }
}

/* ---------------------------------------------------------------------------------------------
 * API
 * ------------------------------------------------------------------------------------------- */

void ecg_device_default_cfg(ecg_device_cfg_t *cfg)
{
    if (cfg == NULL) {
        return;
    }
    memset(cfg, 0, sizeof *cfg);
    cfg->sample_rate_hz = 250u;
    cfg->rates_mask = 0u;
    cfg->leads = 1u;
    cfg->qrs_lead = 0u;
    cfg->gain_uv_per_count = 5.0f;
    cfg->mains_hz = 50u;
    cfg->content = ECG_CONTENT_RAW;
    cfg->source = ECG_SOURCE_FRONT_END;
    cfg->fw_major = 0u;
    cfg->fw_minor = 1u;
    cfg->fw_patch = 0u;
    cfg->model_id = 0u;
    cfg->port_caps = 0u;
    cfg->status_period_ms = 1000u;
    cfg->block_samples = 0u;
}

ecg_err_t ecg_device_init(ecg_device_t *dev, const ecg_device_cfg_t *cfg, const ecg_hal_t *hal)
{
    ecg_err_t err;
    int bit;
    size_t max_block;
    if (dev == NULL || cfg == NULL || hal == NULL) {
        return ECG_ERR_NULL;
    }
    if (cfg->leads < 1u || cfg->leads > ECG_DEVICE_MAX_LEADS) {
        return ECG_ERR_RANGE;
    }
    if (cfg->qrs_lead >= cfg->leads) {
        return ECG_ERR_CONFIG;
    }
    if (!(cfg->gain_uv_per_count > 0.0f && cfg->gain_uv_per_count <= 1.0e6f)) { /* and NaN */
        return ECG_ERR_RANGE;
    }
    if (!((float)cfg->sample_rate_hz >= ECG_FILTER_MIN_FS_HZ &&
          (float)cfg->sample_rate_hz <= ECG_FILTER_MAX_FS_HZ)) {
        return ECG_ERR_RANGE;
    }
    if (cfg->mains_hz != 0u && cfg->mains_hz != 50u && cfg->mains_hz != 60u) {
        return ECG_ERR_RANGE;
    }
    if (cfg->content > ECG_CONTENT_BEATS_ONLY || cfg->source > ECG_SOURCE_INJECT ||
        (cfg->rates_mask >> ECG_PROTO_N_RATES) != 0u) {
        return ECG_ERR_RANGE;
    }
    max_block = ECG_PROTO_MAX_SAMPLES(cfg->leads);
    if (cfg->block_samples > max_block) {
        return ECG_ERR_CONFIG;
    }

    memset(dev, 0, sizeof *dev);
    dev->cfg = *cfg;
    bit = rate_bit(cfg->sample_rate_hz);
    if (bit >= 0) {
        dev->cfg.rates_mask = (uint16_t)(dev->cfg.rates_mask | (1u << (unsigned)bit));
    }
    dev->hal = hal;
    dev->stride = (uint8_t)(2u * cfg->leads);
    dev->block_n = (uint8_t)(cfg->block_samples != 0u ? cfg->block_samples : max_block);
    dev->mv_per_count = cfg->gain_uv_per_count / 1000.0f;
    dev->counts_per_mv = 1000.0f / cfg->gain_uv_per_count;
    dev->caps = ECG_CAP_STREAM_RAW | ECG_CAP_STREAM_FILTERED | ECG_CAP_BEATS | ECG_CAP_INJECT |
                ECG_CAP_TIME_SYNC | ECG_CAP_MAINS_CONFIG | ECG_CAP_CLASSIFIER |
                ECG_CAP_BEAT_CONFIDENCE | ECG_CAP_ALERTS |
                (popcount16(dev->cfg.rates_mask) > 1u ? ECG_CAP_RATE_CONFIG : 0u) |
                (cfg->port_caps & (ECG_CAP_LEAD_OFF | ECG_CAP_BATTERY));
    dev->battery_pct = ECG_BATTERY_UNKNOWN;
    (void)ecg_rb_init(&dev->in, dev->in_buf, sizeof dev->in_buf);
    (void)ecg_rb_init(&dev->tx, dev->tx_buf, sizeof dev->tx_buf);
    (void)ecg_frame_decoder_init(&dev->dec, ECG_PROTO_ACCEPT_TO_DEVICE);
    if (hal->sampling_set_rate != NULL) {
        err = hal->sampling_set_rate(hal->ctx, cfg->sample_rate_hz);
        if (err != ECG_OK) {
            return err;
        }
    }
    err = design_pipeline(dev);
    if (err != ECG_OK) {
        return err;
    }
    {
        ecg_classifier_cfg_t cc;
        cc.scratch = dev->clf_scratch;
        cc.scratch_bytes = sizeof dev->clf_scratch;
        cc.head = NULL;
        err = ecg_classifier_init(&dev->clf, &cc);
        if (err != ECG_OK) {
            return err;
        }
    }
    {
        ecg_alerts_cfg_t ac;
        ecg_alerts_default_cfg(&ac);
        err = ecg_alerts_init(&dev->alerts, &ac, cfg->sample_rate_hz);
        if (err != ECG_OK) {
            return err;
        }
    }
    dev->link_up = 1u;
    dev->last_status_us = now_us(dev);
    send_info(dev); /* boot: seq 0 */
    return ECG_OK;
}

size_t ecg_device_push_samples(ecg_device_t *dev, const int16_t *counts, size_t n)
{
    size_t k;
    if (dev == NULL || counts == NULL || n == 0u) {
        return 0u;
    }
    crit_enter(dev);
    if (!dev->fe_enabled) {
        dev->samples_ignored += (uint32_t)n;
        crit_exit(dev);
        return 0u;
    }
    k = min_size(n, ecg_rb_free_bytes(&dev->in) / dev->stride);
    (void)ecg_rb_write(&dev->in, counts, k * dev->stride);
    dev->in_next += (uint32_t)k;
    if (k < n) {
        dev->input_overruns += (uint32_t)(n - k);
    }
    crit_exit(dev);
    return k;
}

size_t ecg_device_rx(ecg_device_t *dev, const uint8_t *data, size_t len)
{
    if (dev == NULL || data == NULL) {
        return 0u;
    }
    return ecg_frame_decoder_push(&dev->dec, data, len, on_frame, dev);
}

size_t ecg_device_poll(ecg_device_t *dev)
{
    size_t n;
    if (dev == NULL) {
        return 0u;
    }
    n = process_input(dev, dev->cfg.source == ECG_SOURCE_INJECT || dev->stop_pending);
    try_finish_stop(dev);
    if (dev->streaming) {
        ecg_alerts_tick(&dev->alerts, dev->sample_index, dev->lead_off, now_us(dev));
    }
    send_alert_notice(dev, 0);
    pump_backfill(dev);
    if (dev->link_up && dev->cfg.status_period_ms != 0u && dev->hal->time_us != NULL) {
        const uint64_t t = now_us(dev);
        if (t - dev->last_status_us >= (uint64_t)dev->cfg.status_period_ms * 1000u) {
            dev->last_status_us = t;
            send_status(dev);
        }
    }
    if (dev->hal->write != NULL) {
        for (;;) {
            size_t len;
            size_t w;
            const uint8_t *p = ecg_rb_read_block(&dev->tx, &len);
            if (len == 0u) {
                break;
            }
            w = min_size(dev->hal->write(dev->hal->ctx, p, len), len);
            (void)ecg_rb_skip(&dev->tx, w);
            dev->stats.tx_bytes += (uint32_t)w;
            if (w < len) {
                break;
            }
        }
    }
    return n;
}

size_t ecg_device_tx(ecg_device_t *dev, uint8_t *buf, size_t cap)
{
    size_t n;
    if (dev == NULL || buf == NULL) {
        return 0u;
    }
    n = ecg_rb_read(&dev->tx, buf, cap);
    dev->stats.tx_bytes += (uint32_t)n;
    return n;
}

size_t ecg_device_tx_frame(ecg_device_t *dev, uint8_t *buf, size_t cap)
{
    size_t n;
    size_t i;
    if (dev == NULL || buf == NULL) {
        return 0u;
    }
    for (;;) {
        n = ecg_rb_peek(&dev->tx, 0u, buf, cap);
        for (i = 0; i < n && buf[i] != 0u; i++) {
        }
        if (i == n) {
            return 0u; /* no delimiter yet, or the frame is longer than cap */
        }
        if (i > 0u) {
            (void)ecg_rb_skip(&dev->tx, i + 1u);
            dev->stats.tx_bytes += (uint32_t)(i + 1u);
            return i + 1u;
        }
        (void)ecg_rb_skip(&dev->tx, 1u); /* a lone delimiter: not worth a notification */
        dev->stats.tx_bytes++;
    }
}

size_t ecg_device_tx_pending(const ecg_device_t *dev)
{
    return dev != NULL ? ecg_rb_used_bytes(&dev->tx) : 0u;
}

size_t ecg_device_tx_free(const ecg_device_t *dev)
{
    return dev != NULL ? ecg_rb_free_bytes(&dev->tx) : 0u;
}

size_t ecg_device_in_free(const ecg_device_t *dev)
{
    return dev != NULL ? ecg_rb_free_bytes(&dev->in) / dev->stride : 0u;
}

void ecg_device_link(ecg_device_t *dev, int up)
{
    if (dev == NULL) {
        return;
    }
    ecg_frame_decoder_reset(&dev->dec);
    if (up) {
        static const uint8_t delimiter = ECG_PROTO_DELIMITER;
        dev->link_up = 1u;
        (void)ecg_rb_write(&dev->tx, &delimiter, 1u);
        send_info(dev);
        send_alert_notice(dev, 1); /* alerts still queued from before the drop */
        dev->last_status_us = now_us(dev);
    } else {
        /* count the whole frames thrown away: delimiters that end a non-empty frame */
        uint8_t prev = 0u;
        for (;;) {
            size_t len;
            size_t i;
            const uint8_t *p = ecg_rb_read_block(&dev->tx, &len);
            if (len == 0u) {
                break;
            }
            for (i = 0; i < len; i++) {
                if (p[i] == 0u && prev != 0u) {
                    dev->stats.frames_dropped++;
                }
                prev = p[i];
            }
            (void)ecg_rb_skip(&dev->tx, len);
        }
        dev->link_up = 0u;
        ecg_update_abort(dev->update); /* a package cut by the link is discarded */
    }
}

void ecg_device_stop(ecg_device_t *dev)
{
    if (dev == NULL || !dev->streaming) {
        return;
    }
    if (!dev->stop_pending) {
        frontend_off(dev);
    }
    (void)process_input(dev, 0);
    finish_stream(dev);
    if (dev->stop_pending) {
        dev->stop_pending = 0u;
        respond(dev, ECG_FT_STOP_STREAM, dev->stop_seq, ECG_OK, NULL, 0u);
    }
}

void ecg_device_set_lead_off(ecg_device_t *dev, uint8_t mask)
{
    if (dev != NULL) {
        dev->lead_off = mask;
    }
}

void ecg_device_set_battery(ecg_device_t *dev, uint8_t pct)
{
    if (dev != NULL) {
        dev->battery_pct = pct;
    }
}

void ecg_device_get_stats(const ecg_device_t *dev, ecg_device_stats_t *out)
{
    if (dev == NULL || out == NULL) {
        return;
    }
    *out = dev->stats;
    out->rx = dev->dec.stats;
    out->input_overruns = dev->input_overruns;
    out->samples_ignored = dev->samples_ignored;
    out->samples_dropped = dev->stats.samples_dropped + dev->input_overruns;
}

void ecg_device_get_info(const ecg_device_t *dev, ecg_proto_device_info_t *out)
{
    if (dev == NULL || out == NULL) {
        return;
    }
    out->protocol_version = ECG_PROTO_VERSION;
    out->fw_major = dev->cfg.fw_major;
    out->fw_minor = dev->cfg.fw_minor;
    out->fw_patch = dev->cfg.fw_patch;
    out->core_major = ECG_CORE_VERSION_MAJOR;
    out->core_minor = ECG_CORE_VERSION_MINOR;
    out->core_patch = ECG_CORE_VERSION_PATCH;
    out->leads = dev->cfg.leads;
    out->model_id = dev->cfg.model_id;
    out->sample_rate_hz = dev->cfg.sample_rate_hz;
    out->rates_mask = dev->cfg.rates_mask;
    out->gain_uv_per_count = dev->cfg.gain_uv_per_count;
    out->capabilities = dev->caps;
    out->mains_hz = dev->cfg.mains_hz;
    out->content = dev->cfg.content;
    out->source = dev->cfg.source;
}

int ecg_device_streaming(const ecg_device_t *dev)
{
    return dev != NULL && dev->streaming ? 1 : 0;
}

void ecg_device_attach_backfill(ecg_device_t *dev, ecg_backfill_t *bf)
{
    if (dev == NULL) {
        return;
    }
    dev->backfill = bf;
    dev->caps = bf != NULL ? (dev->caps | ECG_CAP_BACKFILL) : (dev->caps & ~ECG_CAP_BACKFILL);
}

void ecg_device_attach_update(ecg_device_t *dev, ecg_update_t *u)
{
    if (dev == NULL) {
        return;
    }
    dev->update = u;
    dev->caps &= ~(ECG_CAP_HEAD_PACKAGES | ECG_CAP_PERSONALIZE_LABELS);
    dev->caps |= (ecg_update_can_head(u) ? ECG_CAP_HEAD_PACKAGES : 0u) |
                 (ecg_update_can_labels(u) ? ECG_CAP_PERSONALIZE_LABELS : 0u);
}

ecg_classifier_t *ecg_device_classifier(ecg_device_t *dev)
{
    return dev != NULL ? &dev->clf : NULL;
}

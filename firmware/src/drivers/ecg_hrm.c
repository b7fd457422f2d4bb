/*
 * Heart Rate Measurement values from BEAT_EVENT frames (see ecg_hrm.h).
 */
#include "ecg_hrm.h"

#define HRM_FLAG_U16 0x01u
#define HRM_FLAG_RR 0x10u

/* num / den rounded half up (non-negative integers) */
static uint32_t div_round(uint32_t num, uint32_t den)
{
    return (2u * num + den) / (2u * den);
}

size_t ecg_hrm_encode(uint16_t rr_samples, uint16_t fs_hz, uint8_t out[ECG_HRM_MAX_LEN])
{
    uint32_t bpm, rr;
    size_t n = 0;
    if (rr_samples == 0u || fs_hz == 0u) {
        return 0u;
    }
    bpm = div_round(60u * fs_hz, rr_samples);
    rr = div_round((uint32_t)rr_samples * 1024u, fs_hz);
    if (rr > 0xFFFFu) {
        rr = 0xFFFFu;
    }
    if (bpm < 256u) {
        out[n++] = HRM_FLAG_RR;
        out[n++] = (uint8_t)bpm;
    } else {
        out[n++] = HRM_FLAG_RR | HRM_FLAG_U16;
        out[n++] = (uint8_t)bpm;
        out[n++] = (uint8_t)(bpm >> 8);
    }
    out[n++] = (uint8_t)rr;
    out[n++] = (uint8_t)(rr >> 8);
    return n;
}

ecg_err_t ecg_hrm_tap_init(ecg_hrm_tap_t *tap, uint16_t fs_hz, ecg_hrm_cb_t cb, void *ctx)
{
    if (tap == NULL || cb == NULL) {
        return ECG_ERR_NULL;
    }
    tap->fs_hz = fs_hz;
    tap->cb = cb;
    tap->ctx = ctx;
    tap->measurements = 0u;
    return ecg_frame_decoder_init(&tap->dec, ECG_PROTO_ACCEPT_TO_HOST);
}

void ecg_hrm_tap_set_rate(ecg_hrm_tap_t *tap, uint16_t fs_hz)
{
    tap->fs_hz = fs_hz;
}

void ecg_hrm_tap_feed(ecg_hrm_tap_t *tap, const uint8_t *data, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        ecg_frame_t f;
        ecg_proto_beat_t beat;
        uint8_t value[ECG_HRM_MAX_LEN];
        size_t n;
        if (ecg_frame_decoder_push_byte(&tap->dec, data[i], &f) != 1 ||
            f.type != ECG_FT_BEAT_EVENT ||
            ecg_proto_unpack_beat(f.payload, f.payload_len, &beat) != ECG_OK) {
            continue;
        }
        n = ecg_hrm_encode(beat.rr_samples, tap->fs_hz, value);
        if (n != 0u) {
            tap->measurements++;
            tap->cb(tap->ctx, value, n);
        }
    }
}

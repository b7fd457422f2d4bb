/*
 * Link policy of the board ports (see ecg_port_link.h).
 */
#include "ecg_port_link.h"

#include "ecg/ecg_ble.h"

#define ATT_NOTIFY_OVERHEAD 3u /* opcode + handle */

ecg_port_link_t ecg_port_link_update(ecg_device_t *dev, ecg_port_links_t *st, int stream_up,
                                     int ble_data_on, int ble_hrm_on)
{
    const ecg_port_link_t want = (ble_data_on || ble_hrm_on) ? ECG_PORT_LINK_BLE
                                 : stream_up                 ? ECG_PORT_LINK_STREAM
                                                             : ECG_PORT_LINK_NONE;
    if (want != st->link) {
        if (st->link != ECG_PORT_LINK_NONE) {
            ecg_device_link(dev, 0);
        }
        if (want != ECG_PORT_LINK_NONE) {
            ecg_device_link(dev, 1);
        }
        st->link = want;
    }
    if (ble_hrm_on && !st->hrm_on && !ble_data_on && !ecg_device_streaming(dev)) {
        uint8_t frame[ECG_PROTO_WIRE_LEN(0)];
        const int32_t n = ecg_frame_encode(ECG_FT_START_STREAM, 0u, NULL, 0u, frame, sizeof frame);
        if (n > 0) {
            (void)ecg_device_rx(dev, frame, (size_t)n);
        }
    }
    st->hrm_on = ble_hrm_on ? 1u : 0u;
    return want;
}

static size_t tapped(ecg_hrm_tap_t *tap, const uint8_t *buf, size_t n)
{
    if (tap != NULL && n != 0u) {
        ecg_hrm_tap_feed(tap, buf, n);
    }
    return n;
}

size_t ecg_port_link_stream(ecg_device_t *dev, ecg_hrm_tap_t *tap, uint8_t *buf, size_t cap,
                            size_t room)
{
    return tapped(tap, buf, ecg_device_tx(dev, buf, room < cap ? room : cap));
}

size_t ecg_port_link_notification(ecg_device_t *dev, ecg_hrm_tap_t *tap, uint16_t mtu,
                                  uint8_t *buf, size_t cap)
{
    size_t piece;
    if (mtu >= ECG_BLE_MTU) {
        return tapped(tap, buf, ecg_device_tx_frame(dev, buf, cap));
    }
    if (mtu <= ATT_NOTIFY_OVERHEAD) {
        return 0u;
    }
    piece = (size_t)mtu - ATT_NOTIFY_OVERHEAD;
    return tapped(tap, buf, ecg_device_tx(dev, buf, piece < cap ? piece : cap));
}

ecg_err_t ecg_port_device_init(ecg_device_t *dev, const ecg_hal_t *hal, const ecg_port_desc_t *desc,
                               ecg_hrm_tap_t *tap, ecg_hrm_cb_t hrm_cb, void *hrm_ctx)
{
    ecg_device_cfg_t cfg;
    ecg_err_t err;
    if (desc == NULL) {
        return ECG_ERR_NULL;
    }
    ecg_device_default_cfg(&cfg);
    cfg.sample_rate_hz = desc->rate_hz;
    cfg.rates_mask = desc->rates_mask;
    cfg.leads = 1u;
    cfg.qrs_lead = 0u;
    cfg.gain_uv_per_count = desc->uv_per_count;
    cfg.mains_hz = desc->mains_hz;
    cfg.model_id = desc->model_id;
    cfg.port_caps = desc->caps;
    cfg.fw_major = desc->fw_major;
    cfg.fw_minor = desc->fw_minor;
    cfg.fw_patch = desc->fw_patch;
    err = ecg_device_init(dev, &cfg, hal);
    if (err != ECG_OK) {
        return err;
    }
    return ecg_hrm_tap_init(tap, desc->rate_hz, hrm_cb, hrm_ctx);
}

size_t ecg_port_poll(ecg_device_t *dev, ecg_hrm_tap_t *tap, uint8_t lead_off)
{
    ecg_proto_device_info_t info;
    const size_t n = ecg_device_poll(dev);
    ecg_device_set_lead_off(dev, lead_off);
    ecg_device_get_info(dev, &info);
    ecg_hrm_tap_set_rate(tap, info.sample_rate_hz);
    return n;
}

/**
 * @file ecg_port_link.h
 * @brief The board ports' link policy, port-independent: which link (USB/UART byte stream or BLE)
 *        carries the device's frames, and how the outgoing queue is cut for each. C99, no heap,
 *        no globals; tested on the host (tests/c/test_drivers.c) with a real ::ecg_device_t.
 *
 * - **Selection** (::ecg_port_link_update): BLE when a connected central has enabled notifications
 *   of the data characteristic or of Heart Rate Measurement (docs/protocol.md §13, "Link up"),
 *   else the byte link if it is up, else none. A change is reported to the device
 *   (::ecg_device_link: down discards the queue, up queues the 0x00 + DEVICE_INFO greeting, §6.2),
 *   so the new link starts clean.
 * - **Heart-rate apps**: when Heart Rate Measurement notifications get enabled while nobody listens
 *   on the data characteristic (no ecgedge host to send commands) and no stream runs, the port
 *   starts one by handing the device a START_STREAM frame, as the profile's reference peripheral
 *   (`ecgedge.ble.peripheral`) does: any heart-rate app then gets the detector's beats.
 * - **Byte link** (::ecg_port_link_stream): up to `room` bytes of the stream (frames may be split).
 * - **BLE** (::ecg_port_link_notification): one notification of the data characteristic, as the
 *   GATT profile (ecg/ecg_ble.h) says: a whole frame at ATT MTU >= ::ECG_BLE_MTU, else a piece of
 *   at most MTU - 3 bytes of the stream.
 * Every byte handed out also goes through the Heart Rate tap (ecg_hrm.h) when one is given, so the
 * Heart Rate Measurement follows the beats on whichever link carries them.
 *
 * - **Start-up and service** (::ecg_port_device_init, ::ecg_port_poll): the device configuration
 *   every port builds from its front end, and the per-turn work besides moving bytes.
 *
 * All functions run in the device's task context (the one that calls ::ecg_device_poll).
 */
#ifndef ECG_PORT_LINK_H
#define ECG_PORT_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "ecg/ecg_device.h"
#include "ecg_hrm.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Links. */
typedef enum {
    ECG_PORT_LINK_NONE = 0,
    ECG_PORT_LINK_STREAM = 1, /**< USB-CDC / UART byte stream */
    ECG_PORT_LINK_BLE = 2     /**< BLE data characteristic */
} ecg_port_link_t;

/** What a port tells the device about itself (::ecg_port_device_init). */
typedef struct {
    uint16_t rate_hz;      /**< initial sampling rate */
    uint16_t rates_mask;   /**< table rates the front end can do (§6.2) */
    float uv_per_count;    /**< front end's µV per count */
    uint8_t mains_hz;      /**< 50 or 60: the filter's notch */
    uint16_t model_id;     /**< DEVICE_INFO model */
    uint32_t caps;         /**< ECG_CAP_LEAD_OFF, ECG_CAP_BATTERY */
    uint8_t fw_major, fw_minor, fw_patch;
} ecg_port_desc_t;

/**
 * @brief Configure and start the device for a 1-lead port (defaults of ::ecg_device_default_cfg
 *        otherwise), and start the Heart Rate tap at the device's rate.
 * @return ECG_OK or the error of ::ecg_device_init / ::ecg_hrm_tap_init
 */
ecg_err_t ecg_port_device_init(ecg_device_t *dev, const ecg_hal_t *hal, const ecg_port_desc_t *desc,
                               ecg_hrm_tap_t *tap, ecg_hrm_cb_t hrm_cb, void *hrm_ctx);

/**
 * @brief One turn of device work: ::ecg_device_poll, the front end's lead-off mask, and the tap's
 *        rate (CONFIGURE may have changed it).
 * @return instants processed (as ::ecg_device_poll)
 */
size_t ecg_port_poll(ecg_device_t *dev, ecg_hrm_tap_t *tap, uint8_t lead_off);

/** Link state of a port. Caller-owned; start from {ECG_PORT_LINK_STREAM, 0} right after
 *  ::ecg_device_init (which considers the link up). */
typedef struct {
    ecg_port_link_t link; /**< the link in use */
    uint8_t hrm_on;       /**< Heart Rate Measurement notifications were enabled */
} ecg_port_links_t;

/**
 * @brief Pick the link from the links' states, tell the device when it changes, and start a
 *        stream for a heart-rate app (see the file comment).
 * @param stream_up    the byte link is usable
 * @param ble_data_on  a connected central has the data characteristic's notifications on
 * @param ble_hrm_on   a connected central has Heart Rate Measurement notifications on
 * @return the link now in use
 */
ecg_port_link_t ecg_port_link_update(ecg_device_t *dev, ecg_port_links_t *st, int stream_up,
                                     int ble_data_on, int ble_hrm_on);

/**
 * @brief Take up to `room` bytes (and at most `cap`) of the outgoing stream into `buf`.
 * @return bytes to write to the byte link
 */
size_t ecg_port_link_stream(ecg_device_t *dev, ecg_hrm_tap_t *tap, uint8_t *buf, size_t cap,
                            size_t room);

/**
 * @brief The next data notification for a connection with ATT MTU `mtu`.
 * @param[out] buf  at least ::ECG_PROTO_MAX_WIRE_LEN bytes
 * @return bytes to notify, 0 when nothing is waiting
 */
size_t ecg_port_link_notification(ecg_device_t *dev, ecg_hrm_tap_t *tap, uint16_t mtu,
                                  uint8_t *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* ECG_PORT_LINK_H */

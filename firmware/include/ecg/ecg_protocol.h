/**
 * @file ecg_protocol.h
 * @brief Wire protocol v1: COBS framing, frame header + CRC, streaming decoder, message layouts.
 *
 * docs/protocol.md is the specification; this header implements it and quotes its section
 * numbers. Layers (all multi-byte fields little-endian, packed byte by byte, never by struct cast):
 *
 *     wire:       COBS(raw frame) 0x00 COBS(raw frame) 0x00 ...
 *     raw frame:  version u8 | type u8 | seq u16 | payload (0..236 bytes) | crc16 u16
 *
 * The CRC is CRC-16/CCITT-FALSE (ecg_crc.h) over version..payload. A frame with an N-byte payload
 * is exactly N + 8 bytes on the wire (COBS of <= 254 bytes adds exactly one byte, plus the
 * delimiter), at most ::ECG_PROTO_MAX_WIRE_LEN = 244: one BLE notification at ATT MTU 247.
 *
 * Return convention: functions that produce bytes return the count (>= 0) or a negative error:
 * an ::ecg_err_t value or an ::ecg_proto_err_t value (the two sets do not overlap). Unpack
 * functions return ::ECG_OK or a negative error.
 *
 * Memory: no heap, no globals (only const tables). The decoder is a caller-owned struct of about
 * 280 bytes; frames it delivers point into it.
 *
 * \note Thread safety: functions are re-entrant; one ::ecg_frame_decoder_t must be used by one
 *       context at a time (e.g. the UART RX task, not the ISR and the task together).
 */
#ifndef ECG_PROTOCOL_H
#define ECG_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "ecg/ecg_alerts.h"
#include "ecg/ecg_crc.h"
#include "ecg/ecg_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Limits (§1)
 * ------------------------------------------------------------------------------------------- */

#define ECG_PROTO_VERSION 1u          /**< value of the header's version byte */
#define ECG_PROTO_HEADER_LEN 4u       /**< version, type, seq */
#define ECG_PROTO_CRC_LEN 2u          /**< CRC-16, little-endian, after the payload */
#define ECG_PROTO_OVERHEAD_LEN 6u     /**< header + CRC */
#define ECG_PROTO_MAX_WIRE_LEN 244u   /**< encoded frame including the 0x00 delimiter */
#define ECG_PROTO_MAX_ENCODED_LEN 243u /**< encoded frame without the delimiter */
#define ECG_PROTO_MAX_FRAME_LEN 242u  /**< raw frame: header + payload + CRC */
#define ECG_PROTO_MAX_PAYLOAD 236u    /**< payload bytes */
#define ECG_PROTO_DELIMITER 0x00u     /**< frame delimiter on the wire */

/** Bytes on the wire (delimiter included) of a frame with a `payload_len`-byte payload. */
#define ECG_PROTO_WIRE_LEN(payload_len) ((size_t)(payload_len) + 8u)

#define ECG_PROTO_MAX_LEADS 8u            /**< leads in a sample block */
#define ECG_PROTO_SAMPLES_HDR_LEN 6u      /**< sample_index, leads, flags */
/** Max sample instants per block for `leads` leads: 115 (1 lead), 57 (2), 38 (3). */
#define ECG_PROTO_MAX_SAMPLES(leads) \
    ((ECG_PROTO_MAX_PAYLOAD - ECG_PROTO_SAMPLES_HDR_LEN) / (2u * (unsigned)(leads)))

/** Worst-case COBS output (without delimiter) for `len` input bytes, minimal form. */
#define ECG_COBS_MAX_ENCODED_LEN(len) ((size_t)(len) + (size_t)(len) / 254u + 1u)

/* ---------------------------------------------------------------------------------------------
 * Error codes (§7): 0..-31 are ecg_err_t, protocol codes start at -32.
 * ------------------------------------------------------------------------------------------- */

/** Protocol error codes; negative like ::ecg_err_t and disjoint from it. */
typedef enum {
    ECG_PROTO_ERR_NO_SPACE = -32,  /**< output buffer too small (C API only) */
    ECG_PROTO_ERR_COBS = -33,      /**< invalid COBS encoding */
    ECG_PROTO_ERR_TRUNCATED = -34, /**< frame shorter than header + CRC */
    ECG_PROTO_ERR_OVERSIZE = -35,  /**< over ::ECG_PROTO_MAX_ENCODED_LEN bytes before a delimiter */
    ECG_PROTO_ERR_CRC = -36,       /**< CRC mismatch */
    ECG_PROTO_ERR_VERSION = -37,   /**< version byte is not ::ECG_PROTO_VERSION */
    ECG_PROTO_ERR_TYPE = -38,      /**< frame type unknown or not for this receiver */
    ECG_PROTO_ERR_LENGTH = -39,    /**< payload length wrong for its type (sent in RESPONSE) */
    ECG_PROTO_ERR_BUSY = -40,      /**< resource full, retry later (sent in RESPONSE) */
    ECG_PROTO_ERR_SEQUENCE = -41,  /**< injected block does not continue the stream (RESPONSE) */
    /* update packages (§11, ecg_update.h), all sent in RESPONSE */
    ECG_PROTO_ERR_AUTH = -48,       /**< package HMAC tag wrong (wrong key, or forged) */
    ECG_PROTO_ERR_PKG_CRC = -49,    /**< package payload CRC-32 mismatch */
    ECG_PROTO_ERR_MODEL = -50,      /**< package for another model id or head shape */
    ECG_PROTO_ERR_REPLAY = -51,     /**< package version not above the highest accepted */
    ECG_PROTO_ERR_ORDER = -52,      /**< chunk offset is not the next expected one */
    ECG_PROTO_ERR_INCOMPLETE = -53, /**< COMMIT before every payload byte arrived */
    ECG_PROTO_ERR_STORAGE = -54     /**< storage HAL read / write / erase failed */
} ecg_proto_err_t;

/**
 * @brief Name of an ::ecg_err_t or ::ecg_proto_err_t value.
 * @param[in] err  error code
 * @return a static string; "" when built with ECG_NO_ERRMSG
 */
const char *ecg_proto_err_str(int32_t err);

/* ---------------------------------------------------------------------------------------------
 * Frame types (§3). Bit 7 set: device -> host.
 * ------------------------------------------------------------------------------------------- */

/** Frame types defined by protocol version 1. */
typedef enum {
    ECG_FT_GET_INFO = 0x01,       /**< H->D, empty */
    ECG_FT_START_STREAM = 0x02,   /**< H->D, empty; resets the sample counter */
    ECG_FT_STOP_STREAM = 0x03,    /**< H->D, empty */
    ECG_FT_CONFIGURE = 0x04,      /**< H->D, ::ecg_proto_configure_t */
    ECG_FT_TIME_SYNC = 0x05,      /**< H->D, ::ecg_proto_time_sync_t */
    ECG_FT_INJECT_SAMPLES = 0x06, /**< H->D, sample block layout */
    ECG_FT_ALERTS_PULL = 0x10,    /**< H->D, ::ecg_proto_alerts_pull_t; answer: a page (§5.5) */
    ECG_FT_ALERTS_ACK = 0x11,     /**< H->D, id u32; answer: ::ecg_proto_alert_status_t */
    ECG_FT_ALERTS_CONFIGURE = 0x12, /**< H->D, ::ecg_alerts_cfg_t (§5.6) */
    ECG_FT_ALERTS_GET_CONFIG = 0x13, /**< H->D, empty; answer: ::ecg_alerts_cfg_t */
    ECG_FT_ALERT_NOTICE = 0xA0,   /**< D->H, ::ecg_proto_alert_status_t: new alerts (§6.6) */
    ECG_FT_PKG_BEGIN = 0x18,      /**< H->D, package header (ecg_update.h, §11) */
    ECG_FT_PKG_CHUNK = 0x19,      /**< H->D, offset u32 + payload bytes */
    ECG_FT_PKG_COMMIT = 0x1A,     /**< H->D, HMAC-SHA256 tag */
    ECG_FT_PKG_ABORT = 0x1B,      /**< H->D, empty */
    ECG_FT_GET_MODEL_INFO = 0x1C, /**< H->D, empty; answered with the MODEL_INFO body */
    ECG_FT_RESET_PERSONALIZATION = 0x1D, /**< H->D, version u32 + tag: back to the factory head */
    ECG_FT_RESPONSE = 0x80,       /**< D->H, ::ecg_proto_response_t; seq echoes the command */
    ECG_FT_DEVICE_INFO = 0x81,    /**< D->H, ::ecg_proto_device_info_t */
    ECG_FT_SAMPLE_BLOCK = 0x90,   /**< D->H, ::ecg_proto_samples_hdr_t + int16 samples */
    ECG_FT_BEAT_EVENT = 0x91,     /**< D->H, ::ecg_proto_beat_t */
    ECG_FT_STATUS = 0x92,         /**< D->H, ::ecg_proto_status_t */
    ECG_FT_BACKFILL_REQUEST = 0x20, /**< H->D, seq range to replay (ecg_backfill.h, §12.1) */
    ECG_FT_BACKFILL_BLOCK = 0xB0,   /**< D->H, a replayed SAMPLE_BLOCK; seq = its block seq */
    ECG_FT_BACKFILL_END = 0xB1      /**< D->H, end of a replay; seq echoes the request */
} ecg_frame_type_t;

#define ECG_FT_DIR_TO_HOST 0x80u /**< type bit 7: device -> host */

/**
 * @brief The `case` labels of the update-package commands (§11, answered by ecg_update.h's
 *        ecg_update_command()): `ECG_FT_UPDATE_CASES:` in a switch on a frame type.
 */
#define ECG_FT_UPDATE_CASES                                                                     \
    case ECG_FT_PKG_BEGIN:                                                                      \
    case ECG_FT_PKG_CHUNK:                                                                      \
    case ECG_FT_PKG_COMMIT:                                                                     \
    case ECG_FT_PKG_ABORT:                                                                      \
    case ECG_FT_GET_MODEL_INFO:                                                                 \
    case ECG_FT_RESET_PERSONALIZATION

/* Reserved type ranges (first, last), not implemented in v1; receivers count them unknown. */
#define ECG_FT_RSV_ALERTS_CMD_FIRST 0x10u   /**< H->D alerts pull / ack */
#define ECG_FT_RSV_ALERTS_CMD_LAST 0x17u
#define ECG_FT_RSV_PERSONALIZE_CMD_FIRST 0x18u /**< H->D label / head-package chunks */
#define ECG_FT_RSV_PERSONALIZE_CMD_LAST 0x1Fu
#define ECG_FT_RSV_BACKFILL_CMD_FIRST 0x21u /**< H->D further backfill commands */
#define ECG_FT_RSV_BACKFILL_CMD_LAST 0x27u
#define ECG_FT_RSV_ALERTS_FIRST 0xA0u       /**< D->H "new alerts" notice, alert records */
#define ECG_FT_RSV_ALERTS_LAST 0xA7u
#define ECG_FT_RSV_PERSONALIZE_FIRST 0xA8u  /**< D->H personalization progress / results */
#define ECG_FT_RSV_PERSONALIZE_LAST 0xAFu
#define ECG_FT_RSV_BACKFILL_FIRST 0xB2u     /**< D->H further backfill frames */
#define ECG_FT_RSV_BACKFILL_LAST 0xB7u

/** Which directions a decoder delivers; the others count as unknown type. */
#define ECG_PROTO_ACCEPT_TO_DEVICE 0x01u /**< host -> device types (a device's receiver) */
#define ECG_PROTO_ACCEPT_TO_HOST 0x02u   /**< device -> host types (a host's receiver) */
#define ECG_PROTO_ACCEPT_ANY 0x03u

/**
 * @brief Whether a type is defined by this protocol version for the given directions.
 * @param[in] type    frame type
 * @param[in] accept  ::ECG_PROTO_ACCEPT_TO_DEVICE, ::ECG_PROTO_ACCEPT_TO_HOST or both
 * @return 1 if known and accepted, else 0
 */
int ecg_proto_type_known(uint8_t type, uint8_t accept);

/* ---------------------------------------------------------------------------------------------
 * Field values
 * ------------------------------------------------------------------------------------------- */

/** Capability bits of ::ecg_proto_device_info_t (§8). */
#define ECG_CAP_STREAM_RAW ((uint32_t)1u << 0)
#define ECG_CAP_STREAM_FILTERED ((uint32_t)1u << 1)
#define ECG_CAP_BEATS ((uint32_t)1u << 2)
#define ECG_CAP_CLASSIFIER ((uint32_t)1u << 3)
#define ECG_CAP_INJECT ((uint32_t)1u << 4)
#define ECG_CAP_TIME_SYNC ((uint32_t)1u << 5)
#define ECG_CAP_RATE_CONFIG ((uint32_t)1u << 6)
#define ECG_CAP_MAINS_CONFIG ((uint32_t)1u << 7)
#define ECG_CAP_LEAD_OFF ((uint32_t)1u << 8)
#define ECG_CAP_BATTERY ((uint32_t)1u << 9)
#define ECG_CAP_ALERTS ((uint32_t)1u << 16) /**< alert pull / ack / configure, notices (§5.5) */
#define ECG_CAP_PERSONALIZE_LABELS ((uint32_t)1u << 17) /**< LABELS packages (§11) */
#define ECG_CAP_HEAD_PACKAGES ((uint32_t)1u << 18)      /**< HEAD packages, A/B slots (§11) */
#define ECG_CAP_BACKFILL ((uint32_t)1u << 19) /**< backfill after reconnect (ecg_backfill.h) */
#define ECG_CAP_BEAT_CONFIDENCE ((uint32_t)1u << 20)        /**< BEAT_EVENT carries `confidence` */

/** `content` of CONFIGURE / DEVICE_INFO; also bits 0-1 of sample block flags (raw / filtered). */
typedef enum {
    ECG_CONTENT_RAW = 0,      /**< raw sample blocks + beat events */
    ECG_CONTENT_FILTERED = 1, /**< filtered sample blocks + beat events */
    ECG_CONTENT_BEATS_ONLY = 2 /**< beat events only */
} ecg_proto_content_t;

/** `source` of CONFIGURE / DEVICE_INFO. */
typedef enum {
    ECG_SOURCE_FRONT_END = 0, /**< analog front end */
    ECG_SOURCE_INJECT = 1     /**< host sample injection (INJECT_SAMPLES) */
} ecg_proto_source_t;

/** CONFIGURE `set_mask` bits. */
#define ECG_CFG_SET_RATE 0x01u
#define ECG_CFG_SET_MAINS 0x02u
#define ECG_CFG_SET_CONTENT 0x04u
#define ECG_CFG_SET_SOURCE 0x08u

/** Sample block `flags`. */
#define ECG_SAMPLES_FLAG_CONTENT_MASK 0x03u /**< ::ECG_CONTENT_RAW or ::ECG_CONTENT_FILTERED */
#define ECG_SAMPLES_FLAG_INJECTED 0x04u
#define ECG_SAMPLES_FLAG_LEAD_OFF 0x08u

/** `beat_class` values (AAMI EC57 classes). */
#define ECG_BEAT_CLASS_N 0u
#define ECG_BEAT_CLASS_S 1u
#define ECG_BEAT_CLASS_V 2u
#define ECG_BEAT_CLASS_F 3u
#define ECG_BEAT_CLASS_Q 4u
#define ECG_BEAT_CLASS_NONE 255u /**< no classifier */

#define ECG_BEAT_FLAG_SEARCHBACK 0x01u
#define ECG_STATUS_FLAG_STREAMING 0x01u
#define ECG_STATUS_FLAG_INJECTING 0x02u
#define ECG_BATTERY_UNKNOWN 255u

/** `rates_mask` bit i means rate ECG_PROTO_RATES_HZ[i]: 125, 128, 250, 256, 360, 500, 512, 1000. */
#define ECG_PROTO_N_RATES 8u

/**
 * @brief The sampling rate of `rates_mask` bit `bit`.
 * @return the rate in Hz, 0 when `bit` >= ::ECG_PROTO_N_RATES
 */
uint16_t ecg_proto_rate_hz(unsigned bit);

/* ---------------------------------------------------------------------------------------------
 * COBS (§1)
 * ------------------------------------------------------------------------------------------- */

/**
 * @brief COBS-encode `len` bytes (minimal form, no delimiter appended).
 * @param[in]  src  input bytes; may be NULL when `len` is 0
 * @param[in]  len  input length
 * @param[out] dst  output buffer; must not overlap `src`
 * @param[in]  cap  capacity of `dst` in bytes; ::ECG_COBS_MAX_ENCODED_LEN(len) always suffices
 * @return encoded length (>= 1, never contains 0x00); ::ECG_ERR_NULL; ::ECG_PROTO_ERR_NO_SPACE
 *         (nothing beyond `cap` is written)
 */
int32_t ecg_cobs_encode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap);

/**
 * @brief Decode one COBS block sequence (the bytes between two delimiters, delimiter excluded).
 * @param[in]  src  encoded bytes
 * @param[in]  len  encoded length
 * @param[out] dst  output; may be exactly `src` (in-place decoding), no other overlap
 * @param[in]  cap  capacity of `dst`; `len` always suffices
 * @return decoded length; ::ECG_ERR_NULL; ::ECG_PROTO_ERR_COBS (a 0x00 byte, or a code byte that
 *         points past the end); ::ECG_PROTO_ERR_NO_SPACE
 */
int32_t ecg_cobs_decode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap);

/* ---------------------------------------------------------------------------------------------
 * Frames (§1, §2)
 * ------------------------------------------------------------------------------------------- */

/** A decoded frame. `payload` points into the decoder (or the caller's buffer). */
typedef struct {
    uint8_t version;
    uint8_t type;           /**< an ::ecg_frame_type_t */
    uint16_t seq;
    const uint8_t *payload; /**< NULL only when payload_len is 0 and no buffer was given */
    uint16_t payload_len;
} ecg_frame_t;

/**
 * @brief Encode one frame: header + payload + CRC, COBS, then the 0x00 delimiter.
 * @param[in]  type         frame type (not checked, so tests can send unknown types)
 * @param[in]  seq          sequence number (§4)
 * @param[in]  payload      payload bytes; may be NULL when `payload_len` is 0
 * @param[in]  payload_len  0..::ECG_PROTO_MAX_PAYLOAD
 * @param[out] out          wire bytes; must not overlap `payload`
 * @param[in]  cap          capacity of `out`; ::ECG_PROTO_WIRE_LEN(payload_len) is exactly needed
 * @return bytes written (= ::ECG_PROTO_WIRE_LEN(payload_len)); ::ECG_ERR_NULL;
 *         ::ECG_PROTO_ERR_OVERSIZE (payload too long); ::ECG_PROTO_ERR_NO_SPACE
 */
int32_t ecg_frame_encode(uint8_t type, uint16_t seq, const uint8_t *payload, size_t payload_len,
                         uint8_t *out, size_t cap);

/**
 * @brief Check and split a raw (already COBS-decoded) frame: length, CRC, version, type.
 * @param[in]  raw     raw frame bytes
 * @param[in]  len     raw length
 * @param[in]  accept  ::ECG_PROTO_ACCEPT_ANY etc.
 * @param[out] frame   filled on success; `payload` points into `raw`
 * @return ::ECG_OK; ::ECG_ERR_NULL; ::ECG_PROTO_ERR_TRUNCATED / _OVERSIZE / _CRC / _VERSION / _TYPE
 */
int32_t ecg_frame_parse_raw(const uint8_t *raw, size_t len, uint8_t accept, ecg_frame_t *frame);

/** Receiver counters (§2). u32, wrapping. */
typedef struct {
    uint32_t frames_ok;    /**< frames delivered */
    uint32_t crc_errors;   /**< CRC mismatch */
    uint32_t cobs_errors;  /**< invalid COBS (typically a cut frame) */
    uint32_t truncated;    /**< decoded frame shorter than 6 bytes */
    uint32_t oversize;     /**< over ::ECG_PROTO_MAX_ENCODED_LEN bytes before a delimiter */
    uint32_t bad_version;  /**< version byte not ::ECG_PROTO_VERSION */
    uint32_t unknown_type; /**< type not defined, or for the other direction */
} ecg_proto_stats_t;

/** Streaming frame decoder. Caller-owned; fields other than `stats` are private. */
typedef struct {
    uint8_t buf[ECG_PROTO_MAX_ENCODED_LEN]; /**< encoded bytes, decoded in place */
    uint16_t len;
    uint8_t discarding; /**< 1 after an oversize frame until the next delimiter */
    uint8_t accept;
    ecg_proto_stats_t stats;
} ecg_frame_decoder_t;

/** Called by ::ecg_frame_decoder_push per delivered frame; `frame` is valid during the call. */
typedef void (*ecg_frame_cb_t)(void *ctx, const ecg_frame_t *frame);

/**
 * @brief Initialise a decoder: empty buffer, zero counters.
 * @param[out] d       decoder
 * @param[in]  accept  directions to deliver: ::ECG_PROTO_ACCEPT_TO_DEVICE on a device,
 *                     ::ECG_PROTO_ACCEPT_TO_HOST on a host, ::ECG_PROTO_ACCEPT_ANY for sniffers
 * @return ::ECG_OK; ::ECG_ERR_NULL; ::ECG_ERR_RANGE (`accept` not 1..3)
 */
ecg_err_t ecg_frame_decoder_init(ecg_frame_decoder_t *d, uint8_t accept);

/** @brief Drop any partial frame; counters are kept. */
void ecg_frame_decoder_reset(ecg_frame_decoder_t *d);

/**
 * @brief Feed one received byte.
 * @param[in,out] d      decoder
 * @param[in]     byte   received byte
 * @param[out]    frame  filled when 1 is returned; its payload points into `d` and is valid
 *                       until the next push
 * @return 1 when a frame was delivered; 0 when none is complete (or an empty frame was skipped);
 *         a negative ::ecg_proto_err_t when a frame was dropped (already counted in `d->stats`)
 */
int32_t ecg_frame_decoder_push_byte(ecg_frame_decoder_t *d, uint8_t byte, ecg_frame_t *frame);

/**
 * @brief Feed `len` bytes; `cb` is called for every frame delivered.
 * @param[in,out] d     decoder
 * @param[in]     data  received bytes
 * @param[in]     len   number of bytes
 * @param[in]     cb    callback; may be NULL (frames are then only counted)
 * @param[in]     ctx   passed to `cb`
 * @return number of frames delivered (errors are in `d->stats`)
 */
size_t ecg_frame_decoder_push(ecg_frame_decoder_t *d, const uint8_t *data, size_t len,
                              ecg_frame_cb_t cb, void *ctx);

/**
 * @brief Frames lost between two sequence numbers of one stream (§4).
 * @param[in] last  seq of the previous frame received on the stream
 * @param[in] seq   seq of the new frame
 * @return 0 in order; 1..32767 frames missing; -1 duplicate or late frame
 */
int32_t ecg_proto_seq_gap(uint16_t last, uint16_t seq);

/** @brief Store `v` little-endian at `p` (2 bytes), byte by byte: for layouts of other modules. */
void ecg_proto_put_u16(uint8_t *p, uint16_t v);
/** @brief Store `v` little-endian at `p` (4 bytes). */
void ecg_proto_put_u32(uint8_t *p, uint32_t v);
/** @brief Load a little-endian u16 from `p`. */
uint16_t ecg_proto_get_u16(const uint8_t *p);
/** @brief Load a little-endian u32 from `p`. */
uint32_t ecg_proto_get_u32(const uint8_t *p);

/* ---------------------------------------------------------------------------------------------
 * Messages (§5, §6). pack: returns bytes written or a negative error (::ECG_ERR_NULL,
 * ::ECG_PROTO_ERR_NO_SPACE). unpack: ::ECG_OK, ::ECG_ERR_NULL, or ::ECG_PROTO_ERR_LENGTH when the
 * payload is shorter than the layout (longer payloads are accepted, §2).
 * ------------------------------------------------------------------------------------------- */

#define ECG_PROTO_CONFIGURE_LEN 6u
#define ECG_PROTO_TIME_SYNC_LEN 8u
#define ECG_PROTO_TIME_SYNC_RESULT_LEN 20u
#define ECG_PROTO_INJECT_RESULT_LEN 6u
#define ECG_PROTO_RESPONSE_HDR_LEN 2u
#define ECG_PROTO_DEVICE_INFO_LEN 25u
#define ECG_PROTO_BEAT_LEN 10u
/** BEAT_EVENT of a device without capability BEAT_CONFIDENCE: no `confidence` byte. */
#define ECG_PROTO_BEAT_MIN_LEN 9u
#define ECG_PROTO_STATUS_LEN 40u

/** CONFIGURE payload (§5.1). */
typedef struct {
    uint8_t set_mask;        /**< ECG_CFG_SET_* bits: which fields apply */
    uint16_t sample_rate_hz; /**< requested rate */
    uint8_t mains_hz;        /**< 0, 50, 60 */
    uint8_t content;         /**< ::ecg_proto_content_t */
    uint8_t source;          /**< ::ecg_proto_source_t */
} ecg_proto_configure_t;

/** TIME_SYNC payload (§5.2). */
typedef struct {
    uint64_t host_time_us; /**< host clock, echoed */
} ecg_proto_time_sync_t;

/** TIME_SYNC response body (§5.2). */
typedef struct {
    uint64_t host_time_us;   /**< echoed from the command */
    uint64_t device_time_us; /**< device monotonic clock when handled, µs since boot */
    uint32_t sample_index;   /**< index the next acquired sample gets */
} ecg_proto_time_sync_result_t;

/** INJECT_SAMPLES response body (§5.3). */
typedef struct {
    uint32_t next_index;   /**< sample index the device expects next */
    uint16_t free_samples; /**< room left, in sample instants */
} ecg_proto_inject_result_t;

/** RESPONSE payload (§6.1). */
typedef struct {
    uint8_t cmd_type;    /**< type of the command answered */
    int8_t status;       /**< 0 or a negative error code */
    const uint8_t *body; /**< command-specific result; NULL allowed when body_len is 0 */
    size_t body_len;
} ecg_proto_response_t;

/** DEVICE_INFO payload and GET_INFO response body (§6.2). */
typedef struct {
    uint8_t protocol_version;
    uint8_t fw_major, fw_minor, fw_patch;
    uint8_t core_major, core_minor, core_patch;
    uint8_t leads;             /**< 1..8 */
    uint16_t model_id;
    uint16_t sample_rate_hz;   /**< current rate */
    uint16_t rates_mask;       /**< supported rates, see ::ecg_proto_rate_hz */
    float gain_uv_per_count;   /**< µV per int16 count */
    uint32_t capabilities;     /**< ECG_CAP_* bits */
    uint8_t mains_hz;          /**< current notch: 0, 50, 60 */
    uint8_t content;           /**< current ::ecg_proto_content_t */
    uint8_t source;            /**< current ::ecg_proto_source_t */
} ecg_proto_device_info_t;

/** SAMPLE_BLOCK / INJECT_SAMPLES prefix (§6.3); `n_samples` is derived from the length. */
typedef struct {
    uint32_t sample_index; /**< index of the first sample instant */
    uint8_t leads;         /**< 1..::ECG_PROTO_MAX_LEADS */
    uint8_t flags;         /**< ECG_SAMPLES_FLAG_* */
    uint16_t n_samples;    /**< sample instants (each `leads` int16 values) */
} ecg_proto_samples_hdr_t;

/** BEAT_EVENT payload (§6.4). */
typedef struct {
    uint32_t sample_index; /**< R peak on the sample counter */
    uint16_t rr_samples;   /**< interval to the previous beat, saturated; 0 for the first */
    uint8_t beat_class;    /**< ECG_BEAT_CLASS_* */
    uint8_t quality;       /**< ::ecg_qrs_quality_t */
    uint8_t flags;         /**< ECG_BEAT_FLAG_* */
    uint8_t confidence;    /**< round(255 * confidence) of the class, 128..255; 0: none (§6.4) */
} ecg_proto_beat_t;

/** STATUS payload (§6.5). */
typedef struct {
    uint32_t sample_index;
    uint8_t battery_pct;     /**< 0..100, ::ECG_BATTERY_UNKNOWN */
    uint8_t lead_off;        /**< bit i: lead i off */
    uint8_t buffer_fill_pct; /**< outgoing queue fill 0..100 */
    uint8_t flags;           /**< ECG_STATUS_FLAG_* */
    uint32_t samples_dropped;
    uint32_t frames_dropped;
    uint32_t rx_crc_errors;
    uint32_t rx_cobs_errors;
    uint32_t rx_truncated;
    uint32_t rx_oversize;
    uint32_t rx_bad_version;
    uint32_t rx_unknown_type;
} ecg_proto_status_t;

/** @brief Pack a CONFIGURE payload (6 bytes). */
int32_t ecg_proto_pack_configure(const ecg_proto_configure_t *m, uint8_t *out, size_t cap);
/** @brief Unpack a CONFIGURE payload. */
int32_t ecg_proto_unpack_configure(const uint8_t *p, size_t len, ecg_proto_configure_t *m);

/** @brief Pack a TIME_SYNC payload (8 bytes). */
int32_t ecg_proto_pack_time_sync(const ecg_proto_time_sync_t *m, uint8_t *out, size_t cap);
/** @brief Unpack a TIME_SYNC payload. */
int32_t ecg_proto_unpack_time_sync(const uint8_t *p, size_t len, ecg_proto_time_sync_t *m);

/** @brief Pack a TIME_SYNC response body (20 bytes). */
int32_t ecg_proto_pack_time_sync_result(const ecg_proto_time_sync_result_t *m, uint8_t *out,
                                        size_t cap);
/** @brief Unpack a TIME_SYNC response body. */
int32_t ecg_proto_unpack_time_sync_result(const uint8_t *p, size_t len,
                                          ecg_proto_time_sync_result_t *m);

/** @brief Pack an INJECT_SAMPLES response body (6 bytes). */
int32_t ecg_proto_pack_inject_result(const ecg_proto_inject_result_t *m, uint8_t *out, size_t cap);
/** @brief Unpack an INJECT_SAMPLES response body. */
int32_t ecg_proto_unpack_inject_result(const uint8_t *p, size_t len, ecg_proto_inject_result_t *m);

/**
 * @brief Pack a RESPONSE payload: cmd_type, status, then `body_len` body bytes.
 * @return 2 + body_len; ::ECG_ERR_NULL; ::ECG_PROTO_ERR_NO_SPACE; ::ECG_PROTO_ERR_OVERSIZE when
 *         it would not fit a frame
 */
int32_t ecg_proto_pack_response(const ecg_proto_response_t *m, uint8_t *out, size_t cap);
/** @brief Unpack a RESPONSE payload; `m->body` points into `p`. */
int32_t ecg_proto_unpack_response(const uint8_t *p, size_t len, ecg_proto_response_t *m);

/** @brief Pack a DEVICE_INFO payload (25 bytes). */
int32_t ecg_proto_pack_device_info(const ecg_proto_device_info_t *m, uint8_t *out, size_t cap);
/** @brief Unpack a DEVICE_INFO payload. */
int32_t ecg_proto_unpack_device_info(const uint8_t *p, size_t len, ecg_proto_device_info_t *m);

/** @brief Pack a BEAT_EVENT payload (10 bytes, with `confidence`). */
int32_t ecg_proto_pack_beat(const ecg_proto_beat_t *m, uint8_t *out, size_t cap);
/** @brief Unpack a BEAT_EVENT payload; a 9-byte one (no BEAT_CONFIDENCE) gives confidence 0. */
int32_t ecg_proto_unpack_beat(const uint8_t *p, size_t len, ecg_proto_beat_t *m);

/** @brief Pack a STATUS payload (40 bytes). */
int32_t ecg_proto_pack_status(const ecg_proto_status_t *m, uint8_t *out, size_t cap);
/** @brief Unpack a STATUS payload. */
int32_t ecg_proto_unpack_status(const uint8_t *p, size_t len, ecg_proto_status_t *m);

/**
 * @brief Pack a SAMPLE_BLOCK / INJECT_SAMPLES payload.
 * @param[in]  h        prefix; `leads` 1..8, `n_samples` >= 1
 * @param[in]  samples  `n_samples * leads` values, interleaved by instant (C order of (n, leads))
 * @param[out] out      payload buffer
 * @param[in]  cap      capacity of `out`
 * @return 6 + 2 * n_samples * leads; ::ECG_ERR_NULL; ::ECG_ERR_RANGE (leads or n_samples out of
 *         range, or more than ::ECG_PROTO_MAX_SAMPLES(leads)); ::ECG_PROTO_ERR_NO_SPACE
 */
int32_t ecg_proto_pack_samples(const ecg_proto_samples_hdr_t *h, const int16_t *samples,
                               uint8_t *out, size_t cap);

/**
 * @brief Unpack a SAMPLE_BLOCK / INJECT_SAMPLES payload.
 * @param[in]  p        payload
 * @param[in]  len      payload length
 * @param[out] h        prefix, with `n_samples` derived from `len`
 * @param[out] samples  receives `n_samples * leads` values; may be NULL to read the prefix only
 * @param[in]  cap      capacity of `samples`, in int16 values
 * @return ::ECG_OK; ::ECG_ERR_NULL; ::ECG_PROTO_ERR_LENGTH (leads not 1..8, no samples, or a
 *         length that is not 6 + a multiple of 2 * leads); ::ECG_PROTO_ERR_NO_SPACE
 */
int32_t ecg_proto_unpack_samples(const uint8_t *p, size_t len, ecg_proto_samples_hdr_t *h,
                                 int16_t *samples, size_t cap);

/* ---------------------------------------------------------------------------------------------
 * Alerts (§5.5-§5.7, §6.6, §6.7; capability ALERTS). Records and thresholds are ecg_alerts.h's
 * own structs; the alert status is shared by ALERTS_ACK's answer, the page header and the notice.
 * ------------------------------------------------------------------------------------------- */

#define ECG_PROTO_ALERTS_PULL_LEN 5u        /**< after_id u32, max_records u8 */
#define ECG_PROTO_ALERTS_ACK_LEN 4u         /**< id u32 */
#define ECG_PROTO_ALERTS_CFG_LEN 22u        /**< ::ecg_alerts_cfg_t */
#define ECG_PROTO_ALERT_STATUS_LEN 11u      /**< ::ecg_proto_alert_status_t */
#define ECG_PROTO_ALERT_LEN 31u             /**< one ::ecg_alert_t */
#define ECG_PROTO_ALERTS_PAGE_HDR_LEN 15u   /**< status + pending u16 + n u8 + record_len u8 */
/** Records per ALERTS_PULL answer: (236 - 2 - 15) / 31 = 7. */
#define ECG_PROTO_ALERTS_PER_PAGE \
    ((ECG_PROTO_MAX_PAYLOAD - ECG_PROTO_RESPONSE_HDR_LEN - ECG_PROTO_ALERTS_PAGE_HDR_LEN) / \
     ECG_PROTO_ALERT_LEN)

/** ALERTS_PULL payload (§5.5). */
typedef struct {
    uint32_t after_id;   /**< records with a larger id are wanted (0: all queued) */
    uint8_t max_records; /**< at most this many in the answer; 0: as many as fit */
} ecg_proto_alerts_pull_t;

/** The device's alert queue at a glance: ALERTS_ACK answer, page header, ALERT_NOTICE (§6.6). */
typedef struct {
    uint32_t last_id;     /**< id of the latest record made; 0: none yet */
    uint16_t queued;      /**< records kept (not acknowledged) */
    uint32_t dropped;     /**< records dropped by the overflow policy since boot */
    uint8_t max_severity; /**< highest severity among the queued records; 0: none */
} ecg_proto_alert_status_t;

/** ALERTS_PULL answer header (§5.5); `n` records of `record_len` bytes follow. */
typedef struct {
    ecg_proto_alert_status_t status;
    uint16_t pending;   /**< records with id > after_id, this page's included */
    uint8_t n;          /**< records in this page */
    uint8_t record_len; /**< bytes per record: ::ECG_PROTO_ALERT_LEN in this version */
} ecg_proto_alerts_page_t;

/** @brief Pack an ALERTS_PULL payload (5 bytes). */
int32_t ecg_proto_pack_alerts_pull(const ecg_proto_alerts_pull_t *m, uint8_t *out, size_t cap);
/** @brief Unpack an ALERTS_PULL payload. */
int32_t ecg_proto_unpack_alerts_pull(const uint8_t *p, size_t len, ecg_proto_alerts_pull_t *m);
/** @brief Pack an ALERTS_ACK payload (4 bytes). */
int32_t ecg_proto_pack_alerts_ack(uint32_t id, uint8_t *out, size_t cap);
/** @brief Unpack an ALERTS_ACK payload. */
int32_t ecg_proto_unpack_alerts_ack(const uint8_t *p, size_t len, uint32_t *id);
/** @brief Pack ALERTS_CONFIGURE payload / ALERTS_GET_CONFIG answer body (22 bytes). */
int32_t ecg_proto_pack_alerts_cfg(const ecg_alerts_cfg_t *m, uint8_t *out, size_t cap);
/** @brief Unpack thresholds (no range check: ::ecg_alerts_check_cfg does that). */
int32_t ecg_proto_unpack_alerts_cfg(const uint8_t *p, size_t len, ecg_alerts_cfg_t *m);
/** @brief Pack an alert status: ALERT_NOTICE payload, ALERTS_ACK answer body (11 bytes). */
int32_t ecg_proto_pack_alert_status(const ecg_proto_alert_status_t *m, uint8_t *out, size_t cap);
/** @brief Unpack an alert status. */
int32_t ecg_proto_unpack_alert_status(const uint8_t *p, size_t len, ecg_proto_alert_status_t *m);
/** @brief Pack one alert record (31 bytes). */
int32_t ecg_proto_pack_alert(const ecg_alert_t *m, uint8_t *out, size_t cap);
/** @brief Unpack one alert record. */
int32_t ecg_proto_unpack_alert(const uint8_t *p, size_t len, ecg_alert_t *m);

/**
 * @brief Pack an ALERTS_PULL answer body: the header, then `h->n` records.
 * @return 15 + 31 n; ::ECG_ERR_NULL; ::ECG_ERR_RANGE (n > ::ECG_PROTO_ALERTS_PER_PAGE);
 *         ::ECG_PROTO_ERR_NO_SPACE
 */
int32_t ecg_proto_pack_alerts_page(const ecg_proto_alerts_page_t *h, const ecg_alert_t *recs,
                                   uint8_t *out, size_t cap);

/**
 * @brief Unpack an ALERTS_PULL answer body.
 * @param[out] recs  receives up to `cap` records; may be NULL to read the header only
 * @return ::ECG_OK; ::ECG_ERR_NULL; ::ECG_PROTO_ERR_LENGTH (shorter than the header, a
 *         record_len below 31, or fewer bytes than n records); ::ECG_PROTO_ERR_NO_SPACE
 */
int32_t ecg_proto_unpack_alerts_page(const uint8_t *p, size_t len, ecg_proto_alerts_page_t *h,
                                     ecg_alert_t *recs, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* ECG_PROTOCOL_H */

"""Wire protocol v1 (docs/protocol.md): COBS framing, CRC-16/CCITT-FALSE, frame header, payloads.

Layers, all little-endian::

    wire:       COBS(raw frame) 0x00 COBS(raw frame) 0x00 ...
    raw frame:  version u8 | type u8 | seq u16 | payload (0..236 bytes) | crc16 u16

Every payload layout is declared with `construct` (`PAYLOADS`, `RESPONSE_BODIES`); the firmware's
`ecg_protocol.h` packs the same bytes by hand and both sides are tested against
`tests/vectors/protocol.jsonl`. Sample blocks are decoded with `np.frombuffer`, not per sample
(`decode_samples`), and the receive path (`FrameDecoder`) splits on delimiters with `bytes.split`
and checks CRCs with `binascii.crc_hqx`, so the Python loops run per COBS block, not per byte.

Example:
    >>> from ecgedge import protocol as p
    >>> wire = p.encode_frame(p.FrameType.BEAT_EVENT, 7, p.build_payload(
    ...     p.FrameType.BEAT_EVENT, dict(sample_index=1234, rr_samples=300, beat_class=0,
    ...                                  quality=0, flags=0)))
    >>> dec = p.FrameDecoder(p.Accept.TO_HOST)
    >>> [f] = dec.feed(wire)
    >>> p.parse_payload(f.type, f.payload).sample_index
    1234
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import asdict, dataclass
from enum import IntEnum, IntFlag
from typing import Any, Mapping, NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt
from construct import (
    Array,
    Check,
    Container,
    ConstructError,
    Float32l,
    GreedyBytes,
    GreedyRange,
    Int8sl,
    Int8ul,
    Int16sl,
    Int16ul,
    Int32ul,
    Int64ul,
    Padded,
    Struct,
    this,
)

__all__ = [
    "Accept", "BeatClass", "Capability", "ConfigSet", "Content", "DecoderStats", "ErrorCode",
    "Frame", "FrameDecoder", "FrameType", "ProtocolError", "SampleBlock", "SeqTracker", "Source",
    "build_payload", "build_response", "cobs_decode", "cobs_encode", "crc16", "decode_frame",
    "decode_samples", "encode_frame", "encode_samples", "max_samples", "parse_payload",
    "parse_response", "seq_gap",
]

# --------------------------------------------------------------------------------------------
# Limits (§1)
# --------------------------------------------------------------------------------------------

PROTOCOL_VERSION = 1
HEADER_LEN = 4
CRC_LEN = 2
OVERHEAD_LEN = HEADER_LEN + CRC_LEN
MAX_WIRE_LEN = 244  #: encoded frame including the 0x00 delimiter: one BLE notification
MAX_ENCODED_LEN = 243  #: encoded frame without the delimiter
MAX_FRAME_LEN = 242  #: raw frame: header + payload + CRC
MAX_PAYLOAD = 236
MAX_LEADS = 8
SAMPLES_HDR_LEN = 6
RATES_HZ = (125, 128, 250, 256, 360, 500, 512, 1000)  #: `rates_mask` bit i -> RATES_HZ[i]
CRC16_INIT = 0xFFFF
CRC16_CHECK = 0x29B1  #: crc16(b"123456789")


def max_samples(leads: int) -> int:
    """Most sample instants one SAMPLE_BLOCK can carry for `leads` leads (115, 57, 38 for 1-3)."""
    if not 1 <= leads <= MAX_LEADS:
        raise ValueError(f"leads={leads!r} is outside 1..{MAX_LEADS}")
    return (MAX_PAYLOAD - SAMPLES_HDR_LEN) // (2 * leads)


def wire_len(payload_len: int) -> int:
    """Bytes on the wire (delimiter included) of a frame with a `payload_len`-byte payload."""
    return payload_len + 8


# --------------------------------------------------------------------------------------------
# Enums (§3, §5-§8)
# --------------------------------------------------------------------------------------------


class FrameType(IntEnum):
    """Frame types of version 1. Bit 7 set: device -> host."""

    GET_INFO = 0x01
    START_STREAM = 0x02
    STOP_STREAM = 0x03
    CONFIGURE = 0x04
    TIME_SYNC = 0x05
    INJECT_SAMPLES = 0x06
    ALERTS_PULL = 0x10  #: H->D: alert records after an id; answered with a page (§5.5)
    ALERTS_ACK = 0x11  #: H->D: free the records up to an id; answered with the status (§5.6)
    ALERTS_CONFIGURE = 0x12  #: H->D: alert thresholds (§5.7)
    ALERTS_GET_CONFIG = 0x13  #: H->D: read the thresholds back (§5.7)
    PKG_BEGIN = 0x18  #: H->D: package header, opens a transfer (§11)
    PKG_CHUNK = 0x19  #: H->D: offset u32 + payload bytes (§11)
    PKG_COMMIT = 0x1A  #: H->D: HMAC-SHA256 tag; verify and switch (§11)
    PKG_ABORT = 0x1B  #: H->D: discard the open transfer (§11)
    GET_MODEL_INFO = 0x1C  #: H->D: model id, active slot, head version (§11)
    RESET_PERSONALIZATION = 0x1D  #: H->D: version + tag; back to the factory head, persisted (§11)
    RESPONSE = 0x80
    DEVICE_INFO = 0x81
    SAMPLE_BLOCK = 0x90
    BEAT_EVENT = 0x91
    STATUS = 0x92
    BACKFILL_REQUEST = 0x20  #: H->D: replay a SAMPLE_BLOCK seq range (§12.1)
    BACKFILL_BLOCK = 0xB0  #: D->H: a replayed SAMPLE_BLOCK, header seq = its block seq (§12.2)
    BACKFILL_END = 0xB1  #: D->H: end of a replay, seq echoes the request (§12.3)
    ALERT_NOTICE = 0xA0  #: D->H: new alert records exist (§6.6)

    @property
    def to_host(self) -> bool:
        """True for device -> host types."""
        return bool(self & 0x80)


#: Reserved type ranges (inclusive), not implemented in v1; receivers count them unknown.
RESERVED_TYPE_RANGES: dict[str, tuple[int, int]] = {
    "alerts_cmd": (0x10, 0x17),
    "personalize_cmd": (0x18, 0x1F),
    "backfill_cmd": (0x21, 0x27),  # 0x20 is BACKFILL_REQUEST
    "alerts": (0xA0, 0xA7),
    "personalize": (0xA8, 0xAF),
    "backfill": (0xB2, 0xB7),  # 0xB0, 0xB1 are BACKFILL_BLOCK, BACKFILL_END
}


class Accept(IntFlag):
    """Which directions a `FrameDecoder` delivers; other types count as unknown."""

    TO_DEVICE = 0x01
    TO_HOST = 0x02
    ANY = 0x03


class ErrorCode(IntEnum):
    """`ecg_err_t` (0..-31) and the protocol codes (from -32); `RESPONSE.status` values."""

    OK = 0
    NULL = -1
    RANGE = -2
    CONFIG = -3
    UNSUPPORTED = -4
    STATE = -5
    NO_SPACE = -32
    COBS = -33
    TRUNCATED = -34
    OVERSIZE = -35
    CRC = -36
    VERSION = -37
    TYPE = -38
    LENGTH = -39
    BUSY = -40
    SEQUENCE = -41
    AUTH = -48  #: package HMAC tag wrong (§11)
    PKG_CRC = -49  #: package payload CRC-32 mismatch
    MODEL = -50  #: package for another model id or head shape
    REPLAY = -51  #: package version not above the highest accepted
    ORDER = -52  #: chunk offset is not the next expected one
    INCOMPLETE = -53  #: COMMIT before every payload byte arrived
    STORAGE = -54  #: the device's storage failed


class Capability(IntFlag):
    """`DEVICE_INFO.capabilities` bits (§8). `RSV_*` are reserved for later issues."""

    STREAM_RAW = 1 << 0
    STREAM_FILTERED = 1 << 1
    BEATS = 1 << 2
    CLASSIFIER = 1 << 3
    INJECT = 1 << 4
    TIME_SYNC = 1 << 5
    RATE_CONFIG = 1 << 6
    MAINS_CONFIG = 1 << 7
    LEAD_OFF = 1 << 8
    BATTERY = 1 << 9
    ALERTS = 1 << 16  #: alert pull / ack / configure and ALERT_NOTICE (§5.5-§5.7, §6.6)
    PERSONALIZE_LABELS = 1 << 17  #: LABELS packages for the µ-trainer (§11)
    HEAD_PACKAGES = 1 << 18  #: HEAD packages into A/B slots (§11)
    BACKFILL = 1 << 19  #: keeps >= 60 s of sample blocks and replays them (§12)
    BEAT_CONFIDENCE = 1 << 20  #: BEAT_EVENT carries `confidence` (§6.4)


class Content(IntEnum):
    """Stream content (CONFIGURE, DEVICE_INFO); RAW/FILTERED also in sample block flags."""

    RAW = 0
    FILTERED = 1
    BEATS_ONLY = 2


class Source(IntEnum):
    """Sample source (CONFIGURE, DEVICE_INFO)."""

    FRONT_END = 0
    INJECT = 1


class ConfigSet(IntFlag):
    """CONFIGURE `set_mask` bits: which fields the device applies."""

    RATE = 0x01
    MAINS = 0x02
    CONTENT = 0x04
    SOURCE = 0x08


class SampleFlag(IntFlag):
    """SAMPLE_BLOCK `flags` bits above the 2-bit content field."""

    INJECTED = 0x04
    LEAD_OFF = 0x08


class BeatClass(IntEnum):
    """AAMI EC57 beat classes of BEAT_EVENT; NONE when the device has no classifier."""

    N = 0
    S = 1
    V = 2
    F = 3
    Q = 4
    NONE = 255


_E = TypeVar("_E", bound=IntEnum)


def enum_or_int(enum: type[_E], value: int) -> _E | int:
    """`enum(value)`, or the plain int for a value this host does not know (a newer device's)."""
    try:
        return enum(value)
    except ValueError:
        return int(value)


class ProtocolError(ValueError):
    """A frame or payload that breaks the protocol; `code` says how."""

    def __init__(self, code: ErrorCode, message: str = "") -> None:
        super().__init__(f"{code.name}: {message}" if message else code.name)
        self.code = code


# --------------------------------------------------------------------------------------------
# Layouts (construct). Field names are the C struct member names.
# --------------------------------------------------------------------------------------------

FrameHeader = Struct("version" / Int8ul, "type" / Int8ul, "seq" / Int16ul)
Empty = Struct()
Configure = Struct(
    "set_mask" / Int8ul, "sample_rate_hz" / Int16ul, "mains_hz" / Int8ul, "content" / Int8ul,
    "source" / Int8ul,
)
TimeSync = Struct("host_time_us" / Int64ul)
TimeSyncResult = Struct(
    "host_time_us" / Int64ul, "device_time_us" / Int64ul, "sample_index" / Int32ul
)
InjectResult = Struct("next_index" / Int32ul, "free_samples" / Int16ul)
Response = Struct("cmd_type" / Int8ul, "status" / Int8sl, "body" / GreedyBytes)
DeviceInfo = Struct(
    "protocol_version" / Int8ul,
    "fw_major" / Int8ul, "fw_minor" / Int8ul, "fw_patch" / Int8ul,
    "core_major" / Int8ul, "core_minor" / Int8ul, "core_patch" / Int8ul,
    "leads" / Int8ul,
    "model_id" / Int16ul,
    "sample_rate_hz" / Int16ul,
    "rates_mask" / Int16ul,
    "gain_uv_per_count" / Float32l,
    "capabilities" / Int32ul,
    "mains_hz" / Int8ul,
    "content" / Int8ul,
    "source" / Int8ul,
)
SampleBlockPrefix = Struct("sample_index" / Int32ul, "leads" / Int8ul, "flags" / Int8ul)
#: Reference layout of SAMPLE_BLOCK / INJECT_SAMPLES; `decode_samples` is the fast equivalent.
SampleBlockLayout = Struct(
    "sample_index" / Int32ul, "leads" / Int8ul, "flags" / Int8ul,
    "samples" / GreedyRange(Int16sl),
)
#: BEAT_EVENT of a device without capability BEAT_CONFIDENCE (9 bytes): `parse_payload` gives
#: `confidence` None for it, `build_payload` builds it when `confidence` is None or missing.
BeatEventNoConfidence = Struct(
    "sample_index" / Int32ul, "rr_samples" / Int16ul, "beat_class" / Int8ul, "quality" / Int8ul,
    "flags" / Int8ul,
)
BeatEvent = Struct(*BeatEventNoConfidence.subcons, "confidence" / Int8ul)
#: Update packages (§11): header of PKG_BEGIN, prefix of PKG_CHUNK, GET_MODEL_INFO answer.
PackageHeader = Struct(
    "magic" / Int32ul, "format" / Int8ul, "kind" / Int8ul, "flags" / Int16ul,
    "model_id" / Int32ul, "embedding_len" / Int16ul, "n_classes" / Int16ul,
    "version" / Int32ul, "payload_len" / Int32ul, "payload_crc32" / Int32ul,
)
#: `data` and `tag` are byte values (build from bytes; parse gives lists of ints).
PackageChunk = Struct("offset" / Int32ul, "data" / GreedyRange(Int8ul))
PackageCommit = Struct("tag" / Array(32, Int8ul))
#: RESET_PERSONALIZATION (§11.4): version, then HMAC-SHA256(key, domain | model_id | version)
ResetPersonalization = Struct("version" / Int32ul, "tag" / Array(32, Int8ul))
ChunkResult = Struct("next_offset" / Int32ul)
ModelInfo = Struct(
    "model_id" / Int32ul, "active_slot" / Int8ul, "state" / Int8ul, "head_version" / Int32ul,
    "max_version" / Int32ul, "trainer_beats" / Int16ul, "trainer_labelled" / Int16ul,
)
BackfillRequest = Struct("first_seq" / Int16ul, "count" / Int16ul)
BackfillResult = Struct(
    "first_seq" / Int16ul, "count" / Int16ul, "oldest_seq" / Int16ul, "next_seq" / Int16ul
)
BackfillEnd = Struct("first_seq" / Int16ul, "count" / Int16ul, "sent" / Int16ul)
# Alerts (§5.5-§5.7, §6.6, §6.7); records and thresholds are ecg_alerts.h's structs.
AlertsPull = Struct("after_id" / Int32ul, "max_records" / Int8ul)
AlertsAck = Struct("id" / Int32ul)
AlertsConfig = Struct(
    "enable_mask" / Int16ul, "brady_bpm" / Int8ul, "tachy_bpm" / Int8ul, "rate_beats" / Int8ul,
    "rate_sustain_s" / Int8ul, "pause_ms" / Int16ul, "asystole_ms" / Int16ul,
    "vt_beats" / Int8ul, "vt_bpm" / Int8ul, "v_per_min" / Int8ul, "s_per_min" / Int8ul,
    "af_beats" / Int8ul, "af_nrmssd_permille" / Int16ul, "af_entropy_permille" / Int16ul,
    "lead_off_ms" / Int16ul, "poor_signal_s" / Int8ul,
)
AlertStatus = Struct(
    "last_id" / Int32ul, "queued" / Int16ul, "dropped" / Int32ul, "max_severity" / Int8ul
)
AlertRecord = Struct(
    "id" / Int32ul, "episode" / Int32ul, "type" / Int8ul, "severity" / Int8ul, "flags" / Int8ul,
    "start_index" / Int32ul, "end_index" / Int32ul, "time_us" / Int64ul, "value" / Int16ul,
    "count" / Int16ul,
)
ALERT_RECORD_LEN = 31  #: bytes of one record in this version (a page says its own record_len)
#: ALERTS_PULL answer: the status, then `n` records of `record_len` bytes (a newer device's longer
#: records are read by their first 31 bytes).
AlertsPage = Struct(
    "last_id" / Int32ul, "queued" / Int16ul, "dropped" / Int32ul, "max_severity" / Int8ul,
    "pending" / Int16ul, "n" / Int8ul, "record_len" / Int8ul,
    Check(this.record_len >= 31),
    "records" / Array(this.n, Padded(this.record_len, AlertRecord)),
)
#: Records per ALERTS_PULL answer: (236 - 2 - 15) // 31.
ALERTS_PER_PAGE = (MAX_PAYLOAD - 2 - 15) // ALERT_RECORD_LEN
Status = Struct(
    "sample_index" / Int32ul,
    "battery_pct" / Int8ul,
    "lead_off" / Int8ul,
    "buffer_fill_pct" / Int8ul,
    "flags" / Int8ul,
    "samples_dropped" / Int32ul,
    "frames_dropped" / Int32ul,
    "rx_crc_errors" / Int32ul,
    "rx_cobs_errors" / Int32ul,
    "rx_truncated" / Int32ul,
    "rx_oversize" / Int32ul,
    "rx_bad_version" / Int32ul,
    "rx_unknown_type" / Int32ul,
)

#: Fixed layout of each frame type's payload (sample types: see `decode_samples`).
PAYLOADS: dict[FrameType, Struct] = {
    FrameType.GET_INFO: Empty,
    FrameType.START_STREAM: Empty,
    FrameType.STOP_STREAM: Empty,
    FrameType.CONFIGURE: Configure,
    FrameType.TIME_SYNC: TimeSync,
    FrameType.INJECT_SAMPLES: SampleBlockLayout,
    FrameType.RESPONSE: Response,
    FrameType.DEVICE_INFO: DeviceInfo,
    FrameType.SAMPLE_BLOCK: SampleBlockLayout,
    FrameType.BEAT_EVENT: BeatEvent,
    FrameType.STATUS: Status,
    FrameType.BACKFILL_REQUEST: BackfillRequest,
    FrameType.PKG_BEGIN: PackageHeader,
    FrameType.PKG_CHUNK: PackageChunk,
    FrameType.PKG_COMMIT: PackageCommit,
    FrameType.PKG_ABORT: Empty,
    FrameType.GET_MODEL_INFO: Empty,
    FrameType.RESET_PERSONALIZATION: ResetPersonalization,
    FrameType.BACKFILL_BLOCK: SampleBlockLayout,
    FrameType.BACKFILL_END: BackfillEnd,
    FrameType.ALERTS_PULL: AlertsPull,
    FrameType.ALERTS_ACK: AlertsAck,
    FrameType.ALERTS_CONFIGURE: AlertsConfig,
    FrameType.ALERTS_GET_CONFIG: Empty,
    FrameType.ALERT_NOTICE: AlertStatus,
}
#: Body layout of a successful RESPONSE, by the command answered (INJECT_SAMPLES: always).
RESPONSE_BODIES: dict[FrameType, Struct] = {
    FrameType.GET_INFO: DeviceInfo,
    FrameType.TIME_SYNC: TimeSyncResult,
    FrameType.INJECT_SAMPLES: InjectResult,
    FrameType.BACKFILL_REQUEST: BackfillResult,
    FrameType.ALERTS_PULL: AlertsPage,
    FrameType.ALERTS_ACK: AlertStatus,
    FrameType.ALERTS_GET_CONFIG: AlertsConfig,
    FrameType.PKG_CHUNK: ChunkResult,
    FrameType.PKG_COMMIT: ModelInfo,
    FrameType.GET_MODEL_INFO: ModelInfo,
    FrameType.RESET_PERSONALIZATION: ModelInfo,
}
_SAMPLE_TYPES = (FrameType.SAMPLE_BLOCK, FrameType.INJECT_SAMPLES, FrameType.BACKFILL_BLOCK)

# Hot-path twins of construct layouts (tests check they agree).
_HEADER = struct.Struct("<BBH")
_PREFIX = struct.Struct("<IBB")
_I16 = np.dtype("<i2")

# --------------------------------------------------------------------------------------------
# CRC and COBS
# --------------------------------------------------------------------------------------------


def crc16(data: bytes, crc: int = CRC16_INIT) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, xorout 0), in C via binascii."""
    return binascii.crc_hqx(data, crc)


def crc16_reference(data: bytes, crc: int = CRC16_INIT) -> int:
    """Bit-by-bit CRC-16/CCITT-FALSE, the textbook definition (slow; for tests)."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def cobs_encode(data: bytes) -> bytes:
    """COBS-encode `data` in the minimal form (no trailing 0x01 after a final 254-byte block).

    The result never contains 0x00 and carries no delimiter.
    """
    out = bytearray()
    chunks = bytes(data).split(b"\x00")
    last = len(chunks) - 1
    for i, chunk in enumerate(chunks):
        full = 0
        while len(chunk) >= 254:
            out.append(0xFF)
            out += chunk[:254]
            chunk = chunk[254:]
            full += 1
        # A zero follows every chunk but the last; the last chunk needs a code byte unless it
        # ended exactly on a full block (minimal form).
        if i < last or chunk or not full:
            out.append(len(chunk) + 1)
            out += chunk
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Decode one COBS sequence (the bytes between two delimiters).

    Raises:
        ProtocolError: COBS, for a 0x00 byte or a code byte that points past the end.
    """
    n = len(data)
    if n == 0:
        return b""
    if 0 in data:
        raise ProtocolError(ErrorCode.COBS, "0x00 inside a frame")
    # Code bytes sit where the decoded zeros go: walk the code chain (one step per block) and
    # turn each code byte into a zero, or drop it after a full 254-byte block.
    out = bytearray(data)
    drop: list[int] = []
    p = 0
    while True:
        code = data[p]
        q = p + code
        if q >= n:
            if q > n:
                raise ProtocolError(ErrorCode.COBS, f"block at {p} runs past the end")
            break
        if code == 0xFF:
            drop.append(q)
        else:
            out[q] = 0
        p = q
    if drop:
        for q in reversed(drop):
            del out[q]
    del out[0]
    return bytes(out)


# --------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------


class Frame(NamedTuple):
    """A delivered frame. `type` is a `FrameType` (an int)."""

    type: int
    seq: int
    payload: bytes
    version: int = PROTOCOL_VERSION


def encode_frame(
    ftype: int, seq: int, payload: bytes = b"", *, version: int = PROTOCOL_VERSION
) -> bytes:
    """Header + payload + CRC, COBS-encoded, with the 0x00 delimiter: the bytes to send.

    `ftype` and `version` are not checked so tests can produce unknown types and versions.

    Raises:
        ProtocolError: OVERSIZE when the payload exceeds `MAX_PAYLOAD`.
    """
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(ErrorCode.OVERSIZE, f"{len(payload)}-byte payload > {MAX_PAYLOAD}")
    raw = FrameHeader.build(dict(version=version, type=ftype, seq=seq & 0xFFFF)) + bytes(payload)
    crc = crc16(raw)
    return cobs_encode(raw + bytes((crc & 0xFF, crc >> 8))) + b"\x00"


def _known_types(accept: Accept) -> dict[int, FrameType]:
    return {
        int(t): t
        for t in FrameType
        if accept & (Accept.TO_HOST if t.to_host else Accept.TO_DEVICE)
    }


def _decode(enc: bytes, known: Mapping[int, FrameType]) -> Frame | ErrorCode:
    """Check one delimited frame (without the delimiter) in the §2 order."""
    try:
        raw = cobs_decode(enc)
    except ProtocolError:
        return ErrorCode.COBS
    n = len(raw)
    if n < OVERHEAD_LEN:
        return ErrorCode.TRUNCATED
    if n > MAX_FRAME_LEN:
        return ErrorCode.OVERSIZE
    if binascii.crc_hqx(raw[:-2], CRC16_INIT) != raw[-2] | (raw[-1] << 8):
        return ErrorCode.CRC
    version, ftype, seq = _HEADER.unpack_from(raw)
    if version != PROTOCOL_VERSION:
        return ErrorCode.VERSION
    t = known.get(ftype)
    if t is None:
        return ErrorCode.TYPE
    return Frame(t, seq, raw[4:-2], version)


def decode_frame(encoded: bytes, accept: Accept = Accept.ANY) -> Frame:
    """Decode one frame: its COBS bytes, with or without the trailing delimiter.

    Raises:
        ProtocolError: COBS, TRUNCATED, OVERSIZE, CRC, VERSION or TYPE.
    """
    enc = bytes(encoded)
    if enc.endswith(b"\x00"):
        enc = enc[:-1]
    if len(enc) > MAX_ENCODED_LEN:
        raise ProtocolError(ErrorCode.OVERSIZE, f"{len(enc)} encoded bytes > {MAX_ENCODED_LEN}")
    result = _decode(enc, _known_types(accept))
    if isinstance(result, ErrorCode):
        raise ProtocolError(result)
    return result


@dataclass
class DecoderStats:
    """Receiver counters (§2); the same names as `ecg_proto_stats_t`."""

    frames_ok: int = 0
    crc_errors: int = 0
    cobs_errors: int = 0
    truncated: int = 0
    oversize: int = 0
    bad_version: int = 0
    unknown_type: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return asdict(self)

    @property
    def dropped(self) -> int:
        """All frames dropped, whatever the reason."""
        return sum(self.as_dict().values()) - self.frames_ok


_COUNTER = {
    ErrorCode.COBS: "cobs_errors",
    ErrorCode.TRUNCATED: "truncated",
    ErrorCode.OVERSIZE: "oversize",
    ErrorCode.CRC: "crc_errors",
    ErrorCode.VERSION: "bad_version",
    ErrorCode.TYPE: "unknown_type",
}


class FrameDecoder:
    """Streaming receiver: feed bytes in chunks of any size, get the frames that pass §2.

    Frames that fail are dropped and counted in `stats` exactly as the C `ecg_frame_decoder_t`
    counts them; it never raises on any input.
    """

    def __init__(self, accept: Accept = Accept.ANY) -> None:
        self.accept = Accept(accept)
        self.stats = DecoderStats()
        self._known = _known_types(self.accept)
        self._pending = b""
        self._discarding = False

    def reset(self) -> None:
        """Drop any partial frame; counters are kept."""
        self._pending = b""
        self._discarding = False

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Consume `data`; return the frames it completed, in order."""
        parts = bytes(data).split(b"\x00")
        tail = parts.pop()  # not terminated yet
        frames: list[Frame] = []
        stats = self.stats
        known = self._known
        for part in parts:
            if self._discarding:  # the rest of an oversize frame
                self._discarding = False
                continue
            if self._pending:
                part = self._pending + part
                self._pending = b""
            if not part:
                continue  # empty frame: flush marker, not counted
            if len(part) > MAX_ENCODED_LEN:
                stats.oversize += 1
                continue
            result = _decode(part, known)
            if isinstance(result, Frame):
                stats.frames_ok += 1
                frames.append(result)
            else:
                name = _COUNTER[result]
                setattr(stats, name, getattr(stats, name) + 1)
        if tail and not self._discarding:
            pending = self._pending + tail
            if len(pending) > MAX_ENCODED_LEN:  # counted as soon as byte 244 arrives, like C
                stats.oversize += 1
                self._discarding = True
                pending = b""
            self._pending = pending
        return frames


def seq_gap(last: int, seq: int) -> int:
    """Frames lost between `last` and `seq` on one stream: 0 in order, 1..32767, -1 late (§4)."""
    d = (seq - last - 1) & 0xFFFF
    return d if d < 0x8000 else -1


class SeqTracker:
    """Per-stream gap and late-frame counts from sequence numbers (§4).

    Streams are the device -> host frame types; RESPONSE frames echo command numbers and are
    ignored. An unsolicited DEVICE_INFO with seq 0 means a reboot: all streams restart.
    """

    def __init__(self) -> None:
        self.last: dict[int, int] = {}
        self.gaps: dict[int, int] = {}
        self.late: dict[int, int] = {}

    def update(self, frame: Frame) -> int:
        """Account for `frame`; return the frames missing just before it (-1 when late)."""
        t = frame.type
        if t == FrameType.RESPONSE:
            return 0
        if t == FrameType.DEVICE_INFO and frame.seq == 0:
            self.last.clear()
        prev = self.last.get(t)
        if prev is None:
            self.last[t] = frame.seq
            return 0
        gap = seq_gap(prev, frame.seq)
        if gap < 0:
            self.late[t] = self.late.get(t, 0) + 1
        else:
            self.gaps[t] = self.gaps.get(t, 0) + gap
            self.last[t] = frame.seq
        return gap


# --------------------------------------------------------------------------------------------
# Payloads
# --------------------------------------------------------------------------------------------


class SampleBlock(NamedTuple):
    """A decoded SAMPLE_BLOCK / INJECT_SAMPLES payload; `samples` is (n, leads) int16 counts."""

    sample_index: int
    leads: int
    flags: int
    samples: npt.NDArray[np.int16]

    @property
    def content(self) -> Content:
        """RAW or FILTERED (flags bits 0-1)."""
        return Content(self.flags & 0x03)


def decode_samples(payload: bytes) -> SampleBlock:
    """Decode a sample payload without copying the samples (a read-only view into `payload`).

    Raises:
        ProtocolError: LENGTH when leads is not 1..8, there are no samples, or the length is not
            6 + a multiple of 2 * leads.
    """
    n = len(payload)
    if n < SAMPLES_HDR_LEN + 2 or n > MAX_PAYLOAD:
        raise ProtocolError(ErrorCode.LENGTH, f"{n}-byte sample payload")
    index, leads, flags = _PREFIX.unpack_from(payload)
    if not 1 <= leads <= MAX_LEADS or (n - SAMPLES_HDR_LEN) % (2 * leads):
        raise ProtocolError(ErrorCode.LENGTH, f"{n}-byte sample payload with {leads} leads")
    samples = np.frombuffer(payload, dtype=_I16, offset=SAMPLES_HDR_LEN).reshape(-1, leads)
    return SampleBlock(index, leads, flags, samples)


def encode_samples(samples: npt.ArrayLike, sample_index: int, flags: int = 0) -> bytes:
    """SAMPLE_BLOCK / INJECT_SAMPLES payload from an (n, leads) or (n,) array of int16 counts.

    Raises:
        ValueError: for a shape or size a block cannot carry, or values outside int16.
    """
    arr = np.asarray(samples)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"samples must be (n, leads), got shape {arr.shape}")
    n, leads = arr.shape
    if not 1 <= n <= max_samples(leads):
        raise ValueError(f"{n} samples x {leads} leads do not fit one block "
                         f"(1..{max_samples(leads)})")
    if arr.dtype != np.int16:
        if arr.size and (arr.min() < -32768 or arr.max() > 32767):
            raise ValueError("samples outside the int16 range")
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"samples must be integer counts, got {arr.dtype}")
    body = np.ascontiguousarray(arr, dtype=_I16).tobytes()
    return _PREFIX.pack(sample_index & 0xFFFFFFFF, leads, flags) + body


def build_payload(ftype: int, fields: Mapping[str, Any] | None = None) -> bytes:
    """Pack `fields` with the layout of `ftype` (sample types take `samples` as an array).

    Raises:
        ProtocolError: TYPE for an unknown type; ValueError / construct errors for bad fields.
    """
    t = _frame_type(ftype)
    f = dict(fields or {})
    if t in _SAMPLE_TYPES:
        return encode_samples(f["samples"], f["sample_index"], f.get("flags", 0))
    if t == FrameType.RESPONSE:
        return build_response(f["cmd_type"], f["status"], f.get("body", b""))
    if t == FrameType.BEAT_EVENT and f.get("confidence") is None:
        return BeatEventNoConfidence.build(f)
    return PAYLOADS[t].build(f)


def parse_payload(ftype: int, payload: bytes) -> Container:
    """Unpack a payload of type `ftype` into a construct `Container` (field names as in C).

    Trailing bytes beyond a fixed layout are ignored (§2). Sample types give `samples` as an
    (n, leads) int16 array; RESPONSE gives `body` (bytes) and `result` (see `parse_response`).

    Raises:
        ProtocolError: LENGTH when the payload is too short or malformed; TYPE for unknown types.
    """
    t = _frame_type(ftype)
    if t in _SAMPLE_TYPES:
        blk = decode_samples(payload)
        return Container(sample_index=blk.sample_index, leads=blk.leads, flags=blk.flags,
                         samples=blk.samples)
    if t == FrameType.RESPONSE:
        return parse_response(payload)
    if t == FrameType.BEAT_EVENT and len(payload) < BeatEvent.sizeof():
        c = _parse(BeatEventNoConfidence, payload)
        c.confidence = None
        return c
    return _parse(PAYLOADS[t], payload)


def build_response(cmd_type: int, status: int, body: bytes | Mapping[str, Any] = b"") -> bytes:
    """RESPONSE payload; `body` as bytes or as fields of `RESPONSE_BODIES[cmd_type]`."""
    if isinstance(body, Mapping):
        body = RESPONSE_BODIES[_frame_type(cmd_type)].build(dict(body))
    if len(body) > MAX_PAYLOAD - 2:
        raise ProtocolError(ErrorCode.OVERSIZE, f"{len(body)}-byte response body")
    return Response.build(dict(cmd_type=int(cmd_type), status=int(status), body=bytes(body)))


def parse_response(payload: bytes) -> Container:
    """Unpack a RESPONSE: `cmd_type`, `status` (an `ErrorCode` when known), `body`, `result`.

    `result` is the parsed body when the command has a body layout and the body is present
    (§6.1: on success; INJECT_SAMPLES also on error), else None.
    """
    c = _parse(Response, payload)
    try:
        c.status = ErrorCode(c.status)
    except ValueError:
        pass  # a newer device's code: keep the int
    layout = RESPONSE_BODIES.get(c.cmd_type)  # type: ignore[call-overload]
    c.result = _parse(layout, c.body) if layout is not None and c.body else None
    return c


def _frame_type(ftype: int) -> FrameType:
    try:
        return FrameType(ftype)
    except ValueError:
        raise ProtocolError(ErrorCode.TYPE, f"type 0x{int(ftype):02X}") from None


def _parse(layout: Struct, payload: bytes) -> Container:
    try:
        c = layout.parse(payload)
    except ConstructError as e:  # StreamError: payload shorter than the layout
        raise ProtocolError(ErrorCode.LENGTH, str(e)) from None
    c.pop("_io", None)
    return c

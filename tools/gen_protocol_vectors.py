#!/usr/bin/env python3
"""Write the shared wire-protocol test vectors: tests/vectors/protocol.jsonl (docs/protocol.md §9).

Both the C test (tests/c/test_protocol.c) and the Python test (tests/test_protocol.py) check
against the file, so the two implementations agree byte for byte. The expectations are written
here by hand (bytes taken from the spec, counters from §2) and this script asserts that the
Python implementation meets them before writing; only the `random_corruption` stream records the
Python decoder's output, to cross-check the C decoder on a long mixed stream.

Usage: python tools/gen_protocol_vectors.py [--out tests/vectors/protocol.jsonl] [--check]
  --check  exit 1 if the file on disk differs from what would be written
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host_sdk"))
from ecgedge import protocol as p  # noqa: E402
from ecgedge.protocol import FrameType as T  # noqa: E402

DEFAULT_OUT = ROOT / "tests" / "vectors" / "protocol.jsonl"
STAT_NAMES = list(p.DecoderStats().as_dict())


def stats(**nonzero: int) -> dict[str, int]:
    """A full counter dict: the named counters, the rest 0."""
    unknown = set(nonzero) - set(STAT_NAMES)
    assert not unknown, unknown
    return {k: nonzero.get(k, 0) for k in STAT_NAMES}


# --------------------------------------------------------------------------------------------
# CRC and COBS
# --------------------------------------------------------------------------------------------


def crc_vectors() -> list[dict[str, Any]]:
    cases = [
        ("crc_check_string", b"123456789", p.CRC16_CHECK),  # the catalogue check value
        ("crc_empty", b"", 0xFFFF),
        ("crc_single_zero", b"\x00", None),
        ("crc_all_bytes", bytes(range(256)), None),
        ("crc_ff_run", b"\xff" * 32, None),
    ]
    out = []
    for name, data, expected in cases:
        crc = p.crc16_reference(data)
        assert p.crc16(data) == crc
        if expected is not None:
            assert crc == expected, (name, hex(crc))
        out.append(dict(kind="crc", name=name, data_hex=data.hex(), crc=crc))
    return out


def cobs_vectors() -> list[dict[str, Any]]:
    nz254 = bytes(range(1, 255))
    rng = random.Random(7)
    mixed = bytes(rng.choice([0, 0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)]) for _ in range(600))
    # (name, decoded, encoded or None to only check the round trip, decode_only)
    cases: list[tuple[str, bytes, bytes | None, bool]] = [
        ("cobs_empty", b"", bytes.fromhex("01"), False),
        ("cobs_one_zero", b"\x00", bytes.fromhex("0101"), False),
        ("cobs_two_zeros", b"\x00\x00", bytes.fromhex("010101"), False),
        ("cobs_zero_run_10", b"\x00" * 10, b"\x01" * 11, False),
        ("cobs_inner_zero", bytes.fromhex("11220033"), bytes.fromhex("0311220233"), False),
        ("cobs_no_zero", bytes.fromhex("11223344"), bytes.fromhex("0511223344"), False),
        ("cobs_trailing_zeros", bytes.fromhex("11000000"), bytes.fromhex("0211010101"), False),
        ("cobs_253_nonzero", nz254[:253], b"\xfe" + nz254[:253], False),
        ("cobs_254_nonzero", nz254, b"\xff" + nz254, False),
        ("cobs_zero_then_254", b"\x00" + nz254, b"\x01\xff" + nz254, False),
        ("cobs_255_nonzero", bytes(range(1, 256)), b"\xff" + nz254 + b"\x02\xff", False),
        ("cobs_254_then_zero", bytes(range(2, 256)) + b"\x00",
         b"\xff" + bytes(range(2, 256)) + b"\x01\x01", False),
        ("cobs_253_zero_one", bytes(range(3, 256)) + b"\x00\x01",
         b"\xfe" + bytes(range(3, 256)) + b"\x02\x01", False),
        ("cobs_508_nonzero", nz254 * 2, b"\xff" + nz254 + b"\xff" + nz254, False),
        ("cobs_mixed_600", mixed, None, False),
        # Non-minimal but valid: a trailing 0x01 after a final full block decodes the same.
        ("cobs_nonminimal_trailing_01", nz254, b"\xff" + nz254 + b"\x01", True),
    ]
    out = []
    for name, dec, enc, decode_only in cases:
        if not decode_only:
            got = p.cobs_encode(dec)
            if enc is not None:
                assert got == enc, name
            enc = got
            assert 0 not in enc
        assert enc is not None
        assert p.cobs_decode(enc) == dec, name
        v = dict(kind="cobs", name=name, decoded_hex=dec.hex(), encoded_hex=enc.hex())
        if decode_only:
            v["decode_only"] = True
        out.append(v)
    invalid = [
        ("cobs_bad_code_past_end", bytes.fromhex("02")),
        ("cobs_bad_block_past_end", bytes.fromhex("051122")),
        ("cobs_bad_inner_zero", bytes.fromhex("030100")),
        ("cobs_bad_full_block_short", b"\xff" + nz254[:253]),
    ]
    for name, enc in invalid:
        try:
            p.cobs_decode(enc)
        except p.ProtocolError as e:
            assert e.code == p.ErrorCode.COBS
        else:
            raise AssertionError(name)
        out.append(dict(kind="cobs_invalid", name=name, encoded_hex=enc.hex()))
    return out


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------

DEVICE_INFO = dict(
    protocol_version=1, fw_major=0, fw_minor=3, fw_patch=12, core_major=0, core_minor=1,
    core_patch=0, leads=2, model_id=0xEC02, sample_rate_hz=500, rates_mask=0b0010_0101,
    gain_uv_per_count=2.5,
    capabilities=int(p.Capability.STREAM_RAW | p.Capability.STREAM_FILTERED | p.Capability.BEATS
                     | p.Capability.INJECT | p.Capability.TIME_SYNC | p.Capability.RATE_CONFIG
                     | p.Capability.MAINS_CONFIG | p.Capability.LEAD_OFF),
    mains_hz=50, content=int(p.Content.FILTERED), source=int(p.Source.FRONT_END),
)
STATUS = dict(
    sample_index=0xFFFFFFF0, battery_pct=255, lead_off=0b10, buffer_fill_pct=37,
    flags=0x01, samples_dropped=115, frames_dropped=1, rx_crc_errors=3, rx_cobs_errors=0,
    rx_truncated=2, rx_oversize=0x01000000, rx_bad_version=0, rx_unknown_type=0xDEADBEEF,
)


def ramp(n: int, leads: int, seed: int) -> list[list[int]]:
    """Samples that include the int16 extremes and byte patterns with 0x00 / 0xFF."""
    rng = np.random.default_rng(seed)
    a = rng.integers(-32768, 32768, size=(n, leads)).astype(np.int16)
    special = np.array([0, -1, 1, 255, 256, -256, 32767, -32768, 0x00FF, -0x0100], np.int16)
    flat = a.reshape(-1)
    flat[: min(len(special), flat.size)] = special[: flat.size]
    return a.tolist()


def message(name: str, ftype: int, seq: int, fields: dict[str, Any], *,
            trailing: bytes = b"", result: dict[str, Any] | None = None,
            payload_hex: str | None = None) -> dict[str, Any]:
    """One message vector, checked through the Python implementation both ways."""
    payload = p.build_payload(ftype, fields) + trailing
    if payload_hex is not None:  # layout written out by hand from the spec tables
        assert payload.hex() == payload_hex, (name, payload.hex())
    wire = p.encode_frame(ftype, seq, payload)
    assert len(wire) == p.wire_len(len(payload)) <= p.MAX_WIRE_LEN
    frame = p.decode_frame(wire, p.Accept.ANY)
    assert (frame.type, frame.seq, frame.payload) == (ftype, seq, payload)
    parsed = p.parse_payload(ftype, payload)
    for k, v in fields.items():
        got = parsed[k]
        if isinstance(got, np.ndarray):
            got = got.tolist()
        if k == "body":
            continue
        assert got == v, (name, k, got, v)
    v: dict[str, Any] = dict(kind="message", name=name, type=int(ftype), seq=seq)
    if ftype == T.RESPONSE:
        body = fields.get("body", b"")
        body_bytes = body if isinstance(body, (bytes, bytearray)) else p.RESPONSE_BODIES[
            T(fields["cmd_type"])].build(body)
        v["fields"] = dict(cmd_type=fields["cmd_type"], status=fields["status"],
                           body_hex=bytes(body_bytes).hex())
        assert (parsed.result is None) == (result is None), name
        if result is not None:
            assert all(parsed.result[k] == x for k, x in result.items()), name
            v["result"] = result
    else:
        v["fields"] = fields
    if trailing:
        v["trailing_hex"] = trailing.hex()
    v["payload_hex"] = payload.hex()
    v["frame_hex"] = wire.hex()
    return v


def seq_with_zero_crc_byte() -> int:
    """A seq whose BEAT_EVENT frame has a 0x00 CRC byte (the CRC gets COBS-stuffed too)."""
    payload = p.build_payload(T.BEAT_EVENT, dict(sample_index=77, rr_samples=0, beat_class=255,
                                                 quality=0, flags=0, confidence=0))
    for seq in range(1, 65536):
        crc = p.crc16(bytes((1, T.BEAT_EVENT, seq & 0xFF, seq >> 8)) + payload)
        if crc & 0xFF == 0 or crc >> 8 == 0:
            return seq
    raise AssertionError("no seq found")


def message_vectors() -> list[dict[str, Any]]:
    cfg = dict(set_mask=0x0F, sample_rate_hz=1000, mains_hz=60, content=int(p.Content.RAW),
               source=int(p.Source.INJECT))
    beat = dict(sample_index=1234567, rr_samples=401, beat_class=int(p.BeatClass.V), quality=1,
                flags=0x01, confidence=200)
    sync_result = dict(host_time_us=1_732_000_000_123_456, device_time_us=86_400_000_001,
                       sample_index=43_200_000)
    inject_result = dict(next_index=2000, free_samples=384)
    info_body = p.DeviceInfo.build(DEVICE_INFO)
    v = [
        message("get_info", T.GET_INFO, 0, {}, payload_hex=""),
        message("start_stream", T.START_STREAM, 1, {}, payload_hex=""),
        message("stop_stream", T.STOP_STREAM, 0xFFFF, {}, payload_hex=""),
        message("configure_all", T.CONFIGURE, 2, cfg, payload_hex="0fe8033c0001"),
        message("configure_mains_only", T.CONFIGURE, 3,
                dict(set_mask=0x02, sample_rate_hz=0, mains_hz=0, content=0, source=0),
                payload_hex="020000000000"),
        message("time_sync", T.TIME_SYNC, 4, dict(host_time_us=0x0102030405060708),
                payload_hex="0807060504030201"),
        message("inject_2_leads", T.INJECT_SAMPLES, 5,
                dict(sample_index=2000, leads=2, flags=0, samples=[[100, -100], [0, -1], [1, 2]]),
                payload_hex="d00700000200" + "64009cff" + "0000ffff" + "01000200"),
        message("response_ok_empty", T.RESPONSE, 1,
                dict(cmd_type=int(T.START_STREAM), status=0, body=b""), payload_hex="0200"),
        message("response_state_error", T.RESPONSE, 2,
                dict(cmd_type=int(T.CONFIGURE), status=int(p.ErrorCode.STATE), body=b""),
                payload_hex="04fb"),
        message("response_get_info", T.RESPONSE, 0,
                dict(cmd_type=int(T.GET_INFO), status=0, body=info_body), result=DEVICE_INFO),
        message("response_time_sync", T.RESPONSE, 4,
                dict(cmd_type=int(T.TIME_SYNC), status=0, body=sync_result), result=sync_result),
        message("response_inject_sequence_error", T.RESPONSE, 5,
                dict(cmd_type=int(T.INJECT_SAMPLES), status=int(p.ErrorCode.SEQUENCE),
                     body=inject_result), result=inject_result,
                payload_hex="06d7" + "d0070000" + "8001"),
        message("device_info", T.DEVICE_INFO, 0, DEVICE_INFO,
                payload_hex="01" "00030c" "000100" "02" "02ec" "f401" "2500" "00002040" "f7010000"
                "32" "01" "00"),
        message("beat_event", T.BEAT_EVENT, 9, beat, payload_hex="87d61200910102" + "0101" + "c8"),
        message("beat_event_unclassified_seq_wrap", T.BEAT_EVENT, 0xFFFF,
                dict(sample_index=0, rr_samples=0, beat_class=255, quality=2, flags=0,
                     confidence=0)),
        message("beat_event_crc_has_zero", T.BEAT_EVENT, seq_with_zero_crc_byte(),
                dict(sample_index=77, rr_samples=0, beat_class=255, quality=0, flags=0,
                     confidence=0)),
        message("beat_event_future_trailing_byte", T.BEAT_EVENT, 10, beat, trailing=b"\xc8"),
        message("status", T.STATUS, 11, STATUS),
        message("sample_block_1_sample", T.SAMPLE_BLOCK, 0,
                dict(sample_index=0, leads=1, flags=0, samples=[[-2]]),
                payload_hex="000000000100feff"),
    ]
    # Backfill (§12): hand-written layouts, every field a little-endian u16.
    backfill_result = dict(first_seq=0xFFF0, count=32, oldest_seq=0xFF00, next_seq=0x0010)
    v += [
        message("backfill_request", T.BACKFILL_REQUEST, 12, dict(first_seq=0xFFF0, count=32),
                payload_hex="f0ff" "2000"),
        message("response_backfill", T.RESPONSE, 12,
                dict(cmd_type=int(T.BACKFILL_REQUEST), status=0, body=backfill_result),
                result=backfill_result, payload_hex="2000" "f0ff" "2000" "00ff" "1000"),
        message("response_backfill_unsupported", T.RESPONSE, 13,
                dict(cmd_type=int(T.BACKFILL_REQUEST), status=int(p.ErrorCode.UNSUPPORTED),
                     body=b""), payload_hex="20fc"),
        message("backfill_block", T.BACKFILL_BLOCK, 0xFFF0,
                dict(sample_index=1150, leads=1, flags=0, samples=[[5], [-5]]),
                payload_hex="7e0400000100" "0500" "fbff"),
        message("backfill_end", T.BACKFILL_END, 12, dict(first_seq=0xFFF0, count=32, sent=31),
                payload_hex="f0ff" "2000" "1f00"),
    ]
    for leads, seed in ((1, 1), (2, 2), (3, 3)):
        n = p.max_samples(leads)
        flags = int(p.Content.FILTERED) | int(p.SampleFlag.LEAD_OFF) if leads == 3 else 0
        vec = message(f"sample_block_max_{leads}_lead", T.SAMPLE_BLOCK, 100 + leads,
                      dict(sample_index=0x7FFFFFFF + leads, leads=leads, flags=flags,
                           samples=ramp(n, leads, seed)))
        assert len(bytes.fromhex(vec["frame_hex"])) == (244 if leads == 1 else 242)
        v.append(vec)
    zeros = message("sample_block_max_1_lead_zeros", T.SAMPLE_BLOCK, 0,
                    dict(sample_index=0, leads=1, flags=0, samples=[[0]] * 115))
    assert len(bytes.fromhex(zeros["frame_hex"])) == p.MAX_WIRE_LEN
    v.append(zeros)
    return v


def malformed_vectors() -> list[dict[str, Any]]:
    cases = [
        ("configure_short", T.CONFIGURE, "0fe8033c00"),
        ("time_sync_short", T.TIME_SYNC, "08070605040302"),
        ("response_short", T.RESPONSE, "02"),
        ("device_info_short", T.DEVICE_INFO, "00" * 24),
        ("beat_event_short", T.BEAT_EVENT, "00" * 8),
        ("status_short", T.STATUS, "00" * 39),
        ("sample_block_no_samples", T.SAMPLE_BLOCK, "000000000100"),
        ("sample_block_zero_leads", T.SAMPLE_BLOCK, "0000000000000100"),
        ("sample_block_nine_leads", T.SAMPLE_BLOCK, "000000000900" + "0100" * 9),
        ("sample_block_odd_length", T.SAMPLE_BLOCK, "000000000100010002"),
        ("sample_block_partial_instant", T.SAMPLE_BLOCK, "000000000200" + "0100" * 3),
        ("sample_block_too_long", T.SAMPLE_BLOCK, "000000000100" + "0100" * 116),
        ("inject_partial_instant", T.INJECT_SAMPLES, "000000000300" + "0100" * 4),
        ("alerts_pull_short", T.ALERTS_PULL, "04030201"),
        ("alerts_ack_short", T.ALERTS_ACK, "0d0c0b"),
        ("alerts_configure_short", T.ALERTS_CONFIGURE, "00" * 21),
        ("alert_notice_short", T.ALERT_NOTICE, "00" * 10),
        ("pkg_begin_short", T.PKG_BEGIN, "00" * 27),
        ("pkg_chunk_short", T.PKG_CHUNK, "000100"),
        ("pkg_commit_short", T.PKG_COMMIT, "00" * 31),
    ]
    out = []
    for name, ftype, hexs in cases:
        try:
            p.parse_payload(ftype, bytes.fromhex(hexs))
        except p.ProtocolError as e:
            assert e.code == p.ErrorCode.LENGTH, name
        else:
            raise AssertionError(name)
        out.append(dict(kind="malformed", name=name, type=int(ftype), payload_hex=hexs))
    return out


def seq_gap_vectors() -> list[dict[str, Any]]:
    cases = [(0, 1, 0), (0, 2, 1), (65535, 0, 0), (65534, 1, 2), (5, 5, -1), (5, 4, -1),
             (0, 32768, 32767), (0, 32769, -1), (40000, 7000, 32535)]
    out = []
    for last, seq, gap in cases:
        assert p.seq_gap(last, seq) == gap
        out.append(dict(kind="seq_gap", name=f"seq_gap_{last}_{seq}", last=last, seq=seq, gap=gap))
    return out


# --------------------------------------------------------------------------------------------
# Decoder streams
# --------------------------------------------------------------------------------------------


def beat_frame(seq: int, index: int = 500) -> tuple[bytes, dict[str, Any]]:
    payload = p.build_payload(T.BEAT_EVENT, dict(sample_index=index, rr_samples=250, beat_class=0,
                                                 quality=0, flags=0))
    return p.encode_frame(T.BEAT_EVENT, seq, payload), dict(
        type=int(T.BEAT_EVENT), seq=seq, payload_hex=payload.hex())


def info_cmd(seq: int) -> tuple[bytes, dict[str, Any]]:
    return p.encode_frame(T.GET_INFO, seq), dict(type=int(T.GET_INFO), seq=seq, payload_hex="")


def raw_frame(version: int, ftype: int, seq: int, payload: bytes) -> bytes:
    return p.encode_frame(ftype, seq, payload, version=version)


def flip_payload_byte(wire: bytes) -> bytes:
    """Corrupt a data byte (not a COBS code byte) without creating a 0x00: a CRC error."""
    b = bytearray(wire)
    i = 6  # inside the first block of a frame whose header has no zero: header bytes 1..4
    assert b[i] not in (0, 0xFF)
    b[i] ^= 0xFF
    return bytes(b)


def stream(name: str, accept: str, parts: list[bytes], frames: list[dict[str, Any]],
           expected: dict[str, int] | None) -> dict[str, Any]:
    data = b"".join(parts)
    acc = {"any": p.Accept.ANY, "to_device": p.Accept.TO_DEVICE, "to_host": p.Accept.TO_HOST}
    whole = p.FrameDecoder(acc[accept])
    got = whole.feed(data)
    bytewise = p.FrameDecoder(acc[accept])
    got_b = [f for i in range(len(data)) for f in bytewise.feed(data[i:i + 1])]
    assert got == got_b and whole.stats == bytewise.stats, name
    got_frames = [dict(type=int(f.type), seq=f.seq, payload_hex=f.payload.hex()) for f in got]
    if expected is None:  # recorded from Python (random_corruption only)
        frames, expected = got_frames, whole.stats.as_dict()
    assert got_frames == frames, (name, got_frames)
    assert whole.stats.as_dict() == expected, (name, whole.stats)
    return dict(kind="stream", name=name, accept=accept, stream_hex=data.hex(), frames=frames,
                stats=expected)


def stream_vectors() -> list[dict[str, Any]]:
    b1, f1 = beat_frame(1)
    b2, f2 = beat_frame(2, 750)
    b3, f3 = beat_frame(3, 1000)
    c7, fc7 = info_cmd(7)
    v = [
        stream("two_good_frames", "any", [b1, b2], [f1, f2], stats(frames_ok=2)),
        stream("empty_frames_ignored", "any", [b"\x00\x00\x00", b1, b"\x00\x00"], [f1],
               stats(frames_ok=1)),
        stream("unterminated_tail_held", "any", [b1, b2[:-1]], [f1], stats(frames_ok=1)),
        stream("bad_crc_then_good", "any", [flip_payload_byte(b1), b2], [f2],
               stats(frames_ok=1, crc_errors=1)),
        stream("crc_byte_flipped", "any",
               [b1[:-2] + bytes([b1[-2] ^ 0x01]) + b"\x00", b2], [f2],
               stats(frames_ok=1, crc_errors=1)),
        # The first half of a frame, cut inside a COBS block, then a new frame.
        stream("cut_frame_bad_cobs", "any", [b1[:5], b"\x00", b2], [f2],
               stats(frames_ok=1, cobs_errors=1)),
        stream("garbage_bad_cobs", "any", [bytes.fromhex("05112233"), b"\x00", b1], [f1],
               stats(frames_ok=1, cobs_errors=1)),
        stream("short_frames_truncated", "any",
               [p.cobs_encode(b"\x01\x91\x00\x00\x12") + b"\x00", p.cobs_encode(b"\x01") + b"\x00",
                b2], [f2], stats(frames_ok=1, truncated=2)),
        stream("joined_mid_frame", "any", [b1[7:], b2], [f2], stats(frames_ok=1, crc_errors=1)),
        stream("oversize_then_good", "any", [b"\x55" * 300, b"\x00", b2], [f2],
               stats(frames_ok=1, oversize=1)),
        # 243 encoded bytes is the limit: checked further (here a CRC error); 244 is oversize.
        stream("limit_243_not_oversize", "any", [b"\x01" * 243, b"\x00", b1], [f1],
               stats(frames_ok=1, crc_errors=1)),
        stream("limit_244_oversize", "any", [b"\x01" * 244, b"\x00", b1], [f1],
               stats(frames_ok=1, oversize=1)),
        stream("oversize_unterminated_counted_once", "any", [b1, b"\x42" * 600], [f1],
               stats(frames_ok=1, oversize=1)),
        stream("unknown_types_dropped", "any",
               [raw_frame(1, 0x17, 0, b""), raw_frame(1, 0xA7, 0, b"\x01"),
                raw_frame(1, 0x7F, 0, b""), raw_frame(1, 0x00, 0, b""), b3],
               [f3], stats(frames_ok=1, unknown_type=4)),
        stream("bad_version_dropped", "any",
               [raw_frame(2, int(T.BEAT_EVENT), 1, bytes.fromhex(f1["payload_hex"])),
                raw_frame(0, int(T.GET_INFO), 1, b""), b2],
               [f2], stats(frames_ok=1, bad_version=2)),
        stream("device_receiver_drops_host_types", "to_device", [b1, c7, b2], [fc7],
               stats(frames_ok=1, unknown_type=2)),
        stream("host_receiver_drops_commands", "to_host", [b1, c7, b2], [f1, f2],
               stats(frames_ok=2, unknown_type=1)),
    ]
    # Three maximum-size blocks back to back, 244 + 242 + 242 bytes.
    blocks, frames = [], []
    for leads in (1, 2, 3):
        payload = p.encode_samples(np.array(ramp(p.max_samples(leads), leads, leads)),
                                   sample_index=leads)
        blocks.append(p.encode_frame(T.SAMPLE_BLOCK, leads, payload))
        frames.append(dict(type=int(T.SAMPLE_BLOCK), seq=leads, payload_hex=payload.hex()))
    v.append(stream("max_size_blocks", "to_host", blocks, frames, stats(frames_ok=3)))
    v.append(random_corruption())
    return v


def random_corruption() -> dict[str, Any]:
    """40 frames with random byte flips, deletions and inserted garbage (recorded)."""
    rng = random.Random(2024)
    parts = []
    for seq in range(40):
        n = rng.randrange(1, 40)
        payload = p.encode_samples(np.array([rng.randrange(-300, 300) for _ in range(n)]), seq * n)
        wire = bytearray(p.encode_frame(T.SAMPLE_BLOCK, seq, payload))
        r = rng.random()
        if r < 0.2:
            i = rng.randrange(len(wire) - 1)
            wire[i] = rng.randrange(256)  # may create a delimiter inside the frame
        elif r < 0.3:
            del wire[rng.randrange(len(wire) - 1)]
        elif r < 0.4:
            wire[rng.randrange(len(wire)):rng.randrange(len(wire))] = bytes(
                rng.randrange(256) for _ in range(rng.randrange(1, 8)))
        parts.append(bytes(wire))
    return stream("random_corruption", "to_host", parts, [], None)


def alert_vectors() -> list[dict[str, Any]]:
    """Alerts (§5.5-§5.7, §6.6, §6.7): commands, answers and the notice, spelled out by hand."""
    cfg = dict(enable_mask=0x07FE, brady_bpm=50, tachy_bpm=120, rate_beats=8, rate_sustain_s=5,
               pause_ms=2500, asystole_ms=4000, vt_beats=3, vt_bpm=100, v_per_min=10,
               s_per_min=10, af_beats=64, af_nrmssd_permille=100, af_entropy_permille=700,
               lead_off_ms=1000, poor_signal_s=10)
    cfg_hex = "fe07" "32" "78" "08" "05" "c409" "a00f" "03" "64" "0a" "0a" "40" "6400" "bc02" \
        "e803" "0a"
    record = dict(id=7, episode=5, type=5, severity=4, flags=2, start_index=0x12345,
                  end_index=0x12400, time_us=0x0102030405, value=150, count=5)
    record_hex = "07000000" "05000000" "05" "04" "02" "45230100" "00240100" \
        "0504030201000000" "9600" "0500"
    page = dict(last_id=7, queued=2, dropped=1, max_severity=4, pending=2, n=1, record_len=31,
                records=[record])
    page_hex = "07000000" "0200" "01000000" "04" "0200" "01" "1f" + record_hex
    acked = dict(last_id=7, queued=0, dropped=1, max_severity=0)
    return [
        message("alerts_pull", T.ALERTS_PULL, 20, dict(after_id=0x01020304, max_records=7),
                payload_hex="0403020107"),
        message("alerts_ack", T.ALERTS_ACK, 21, dict(id=0x0A0B0C0D), payload_hex="0d0c0b0a"),
        message("alerts_configure", T.ALERTS_CONFIGURE, 22, cfg, payload_hex=cfg_hex),
        message("alerts_get_config", T.ALERTS_GET_CONFIG, 23, {}, payload_hex=""),
        message("alert_notice", T.ALERT_NOTICE, 0xFFFF,
                dict(last_id=0x11223344, queued=3, dropped=1, max_severity=4),
                payload_hex="44332211" "0300" "01000000" "04"),
        message("response_alerts_page", T.RESPONSE, 20,
                dict(cmd_type=int(T.ALERTS_PULL), status=0, body=page), result=page,
                payload_hex="1000" + page_hex),
        message("response_alerts_ack", T.RESPONSE, 21,
                dict(cmd_type=int(T.ALERTS_ACK), status=0, body=acked), result=acked,
                payload_hex="1100" "07000000" "0000" "01000000" "00"),
        message("response_alerts_get_config", T.RESPONSE, 23,
                dict(cmd_type=int(T.ALERTS_GET_CONFIG), status=0, body=cfg), result=cfg,
                payload_hex="1300" + cfg_hex),
        message("response_alerts_configure_range", T.RESPONSE, 22,
                dict(cmd_type=int(T.ALERTS_CONFIGURE), status=int(p.ErrorCode.RANGE), body=b""),
                payload_hex="12fe"),
    ]


def update_vectors() -> list[dict[str, Any]]:
    """Update packages (§11): commands and answers, spelled out by hand from the §11 tables."""
    header = dict(magic=0x50474345, format=1, kind=1, flags=0, model_id=0xE9AEC08A,
                  embedding_len=16, n_classes=5, version=7, payload_len=148,
                  payload_crc32=0x01020304)
    header_hex = "45434750" "01" "01" "0000" "8ac0aee9" "1000" "0500" "07000000" "94000000" \
        "04030201"
    info = dict(model_id=0xE9AEC08A, active_slot=1, state=2, head_version=7, max_version=9,
                trainer_beats=300, trainer_labelled=20)
    info_hex = "8ac0aee9" "01" "02" "07000000" "09000000" "2c01" "1400"
    tag = list(range(0xE0, 0x100))
    return [
        message("pkg_begin", T.PKG_BEGIN, 30, header, payload_hex=header_hex),
        message("pkg_chunk", T.PKG_CHUNK, 31, dict(offset=0x100, data=[0x00, 0xFF, 0x10]),
                payload_hex="00010000" "00ff10"),
        message("pkg_chunk_full", T.PKG_CHUNK, 32,
                dict(offset=0x01020304, data=[(7 * i) & 0xFF for i in range(200)]),
                payload_hex="04030201" + bytes((7 * i) & 0xFF for i in range(200)).hex()),
        message("pkg_commit", T.PKG_COMMIT, 33, dict(tag=tag), payload_hex=bytes(tag).hex()),
        message("pkg_abort", T.PKG_ABORT, 34, {}, payload_hex=""),
        message("get_model_info", T.GET_MODEL_INFO, 35, {}, payload_hex=""),
        message("reset_personalization", T.RESET_PERSONALIZATION, 36,
                dict(version=0x0A0B0C0D, tag=tag), payload_hex="0d0c0b0a" + bytes(tag).hex()),
        message("response_model_info", T.RESPONSE, 35,
                dict(cmd_type=int(T.GET_MODEL_INFO), status=0, body=info), result=info,
                payload_hex="1c00" + info_hex),
        message("response_pkg_commit", T.RESPONSE, 33,
                dict(cmd_type=int(T.PKG_COMMIT), status=0, body=info), result=info,
                payload_hex="1a00" + info_hex),
        message("response_pkg_commit_auth", T.RESPONSE, 33,
                dict(cmd_type=int(T.PKG_COMMIT), status=int(p.ErrorCode.AUTH), body=b""),
                payload_hex="1ad0"),
        message("response_pkg_chunk_order", T.RESPONSE, 31,
                dict(cmd_type=int(T.PKG_CHUNK), status=int(p.ErrorCode.ORDER),
                     body=dict(next_offset=200)), result=dict(next_offset=200),
                payload_hex="19cc" "c8000000"),
        message("response_reset_personalization", T.RESPONSE, 36,
                dict(cmd_type=int(T.RESET_PERSONALIZATION), status=0, body=info), result=info,
                payload_hex="1d00" + info_hex),
    ]


def all_vectors() -> list[dict[str, Any]]:
    vecs = (crc_vectors() + cobs_vectors() + message_vectors() + malformed_vectors()
            + seq_gap_vectors() + stream_vectors() + alert_vectors() + update_vectors())
    names = [v["name"] for v in vecs]
    assert len(names) == len(set(names)), "duplicate vector names"
    return vecs


def render(vecs: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(v, separators=(",", ":")) + "\n" for v in vecs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="fail if the file is out of date")
    args = ap.parse_args(argv)
    text = render(all_vectors())
    if args.check:
        if not args.out.exists() or args.out.read_text() != text:
            print(f"{args.out} is out of date: run tools/gen_protocol_vectors.py", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {text.count(chr(10))} vectors to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

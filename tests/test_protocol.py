"""Wire protocol (docs/protocol.md): Python against the shared vectors, the C implementation
compiled under ASan/UBSan against the same vectors, and property-based checks of both."""

from __future__ import annotations

import importlib.util
import json
import random
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecgedge import protocol as p
from ecgedge.protocol import Accept, ErrorCode, FrameType

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "tests" / "vectors" / "protocol.jsonl"
INCLUDE = ROOT / "firmware" / "include"
C_SOURCES = [ROOT / "firmware" / "src" / "core" / n
             for n in ("ecg_crc.c", "ecg_protocol.c", "ecg_types.c", "ecg_backfill.c",
                       # update packages (§11) and what ecg_update.c links against
                       "ecg_update.c", "ecg_sha256.c", "ecg_classifier.c", "ecg_nn.c",
                       "ecg_model_data.c", "ecg_trainer.c")]
C_TEST = ROOT / "tests" / "c" / "test_protocol.c"
C_FUZZ = ROOT / "tests" / "c" / "fuzz_protocol.c"
SAN_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic",
             "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
ACCEPT = {"any": Accept.ANY, "to_device": Accept.TO_DEVICE, "to_host": Accept.TO_HOST}


def _load() -> list[dict[str, Any]]:
    return [json.loads(line) for line in VECTORS.read_text().splitlines() if line.strip()]


ALL = _load()


def vectors(kind: str) -> Any:
    return pytest.mark.parametrize("v", [v for v in ALL if v["kind"] == kind],
                                   ids=lambda v: v["name"])


def _cc() -> str:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler on PATH")
    return cc


# --------------------------------------------------------------------------------------------
# Shared vectors, Python side
# --------------------------------------------------------------------------------------------


def test_vector_file_is_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location("gen", ROOT / "tools" / "gen_protocol_vectors.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert VECTORS.read_text() == gen.render(gen.all_vectors()), \
        "run tools/gen_protocol_vectors.py and commit the result"


def test_vector_file_covers_every_kind_and_frame_type() -> None:
    kinds = {v["kind"] for v in ALL}
    assert kinds == {"crc", "cobs", "cobs_invalid", "message", "malformed", "seq_gap", "stream"}
    assert {v["type"] for v in ALL if v["kind"] == "message"} == {int(t) for t in FrameType}


@vectors("crc")
def test_crc_matches_vector(v: dict[str, Any]) -> None:
    data = bytes.fromhex(v["data_hex"])
    assert p.crc16(data) == v["crc"]
    assert p.crc16_reference(data) == v["crc"]


@vectors("cobs")
def test_cobs_matches_vector(v: dict[str, Any]) -> None:
    dec, enc = bytes.fromhex(v["decoded_hex"]), bytes.fromhex(v["encoded_hex"])
    if not v.get("decode_only"):
        assert p.cobs_encode(dec) == enc
    assert p.cobs_decode(enc) == dec


@vectors("cobs_invalid")
def test_invalid_cobs_is_rejected(v: dict[str, Any]) -> None:
    with pytest.raises(p.ProtocolError) as e:
        p.cobs_decode(bytes.fromhex(v["encoded_hex"]))
    assert e.value.code == ErrorCode.COBS


def _normalize(value: Any) -> Any:
    return value.tolist() if isinstance(value, np.ndarray) else value


@vectors("message")
def test_message_encodes_and_decodes_as_vector(v: dict[str, Any]) -> None:
    ftype, fields = v["type"], v["fields"]
    payload = bytes.fromhex(v["payload_hex"])
    trailing = bytes.fromhex(v.get("trailing_hex", ""))
    if ftype == FrameType.RESPONSE:
        built = p.build_response(fields["cmd_type"], fields["status"],
                                 bytes.fromhex(fields["body_hex"]))
    else:
        built = p.build_payload(ftype, fields)
    assert built + trailing == payload
    wire = bytes.fromhex(v["frame_hex"])
    assert p.encode_frame(ftype, v["seq"], payload) == wire
    assert len(wire) == p.wire_len(len(payload)) <= p.MAX_WIRE_LEN

    frame = p.decode_frame(wire)
    assert (frame.type, frame.seq, frame.payload, frame.version) == (ftype, v["seq"], payload, 1)
    parsed = p.parse_payload(frame.type, frame.payload)
    if ftype == FrameType.RESPONSE:
        assert parsed.cmd_type == fields["cmd_type"] and parsed.status == fields["status"]
        assert parsed.body.hex() == fields["body_hex"]
        if "result" in v:
            assert {k: parsed.result[k] for k in v["result"]} == v["result"]
        else:
            assert parsed.result is None
    else:
        assert {k: _normalize(parsed[k]) for k in fields} == fields


@vectors("malformed")
def test_malformed_payload_is_a_length_error(v: dict[str, Any]) -> None:
    with pytest.raises(p.ProtocolError) as e:
        p.parse_payload(v["type"], bytes.fromhex(v["payload_hex"]))
    assert e.value.code == ErrorCode.LENGTH


@vectors("seq_gap")
def test_seq_gap_matches_vector(v: dict[str, Any]) -> None:
    assert p.seq_gap(v["last"], v["seq"]) == v["gap"]


def _frames_as_dicts(frames: list[p.Frame]) -> list[dict[str, Any]]:
    return [dict(type=int(f.type), seq=f.seq, payload_hex=f.payload.hex()) for f in frames]


@vectors("stream")
@pytest.mark.parametrize("chunking", ["whole", "bytewise", "random"])
def test_decoder_stream_matches_vector(v: dict[str, Any], chunking: str) -> None:
    data = bytes.fromhex(v["stream_hex"])
    dec = p.FrameDecoder(ACCEPT[v["accept"]])
    if chunking == "whole":
        frames = dec.feed(data)
    else:
        rng = random.Random(len(data))
        frames, i = [], 0
        while i < len(data):
            n = 1 if chunking == "bytewise" else rng.randrange(1, 300)
            frames += dec.feed(data[i:i + n])
            i += n
    assert _frames_as_dicts(frames) == v["frames"]
    assert dec.stats.as_dict() == v["stats"]


# --------------------------------------------------------------------------------------------
# The C implementation against the same vectors (ASan + UBSan)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def c_test_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = _cc()
    exe = tmp_path_factory.mktemp("c_protocol") / "test_protocol"
    cmd = [cc, *SAN_FLAGS, f"-I{INCLUDE}", *map(str, C_SOURCES), str(C_TEST), "-lm", "-o", str(exe)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, f"compile failed:\n{' '.join(cmd)}\n{r.stderr}"
    return exe


def _run_c(exe: Path, vectors_file: Path) -> str:
    r = subprocess.run([str(exe), str(vectors_file)], capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    last = r.stdout.strip().splitlines()[-1]
    assert re.search(r"\b\d+ passed, 0 failed$", last), out[-4000:]
    return last


def test_c_implementation_passes_shared_vectors(c_test_binary: Path) -> None:
    last = _run_c(c_test_binary, VECTORS)
    assert last.startswith(f"{len(ALL)} vectors;")


def test_c_sources_compile_clean_with_wconversion(tmp_path: Path) -> None:
    cc = _cc()
    for src in C_SOURCES[:2]:
        cmd = [cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wconversion",
               "-Wsign-conversion", "-Wshadow", f"-I{INCLUDE}", "-c", str(src),
               "-o", str(tmp_path / (src.stem + ".o"))]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr


def _random_stream(rng: random.Random) -> bytes:
    """Frames of random types and payloads with random damage and garbage between them."""
    out = bytearray()
    for _ in range(rng.randrange(1, 12)):
        r = rng.random()
        if r < 0.15:
            out += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
            continue
        ftype = rng.choice([int(t) for t in FrameType] + [0x10, 0xA5, 0x00])
        payload = bytes(rng.randrange(256) if rng.random() < 0.7 else 0
                        for _ in range(rng.randrange(0, p.MAX_PAYLOAD + 1)))
        wire = bytearray(p.encode_frame(ftype, rng.randrange(65536), payload,
                                        version=1 if rng.random() < 0.9 else rng.randrange(256)))
        if r < 0.45:
            for _ in range(rng.randrange(1, 4)):
                i = rng.randrange(len(wire))
                op = rng.randrange(3)
                if op == 0:
                    wire[i] = rng.randrange(256)
                elif op == 1:
                    del wire[i]
                else:
                    wire.insert(i, rng.randrange(256))
        out += wire
    return bytes(out)


def test_c_decoder_matches_python_on_random_streams(c_test_binary: Path, tmp_path: Path) -> None:
    """Differential test: 400 random damaged streams, expectations recorded from Python."""
    rng = random.Random(20241124)
    lines = []
    for i in range(400):
        data = _random_stream(rng)
        accept = rng.choice(list(ACCEPT))
        dec = p.FrameDecoder(ACCEPT[accept])
        frames = dec.feed(data)
        lines.append(json.dumps(dict(kind="stream", name=f"random_{i}", accept=accept,
                                     stream_hex=data.hex(), frames=_frames_as_dicts(frames),
                                     stats=dec.stats.as_dict())))
    f = tmp_path / "random_streams.jsonl"
    f.write_text("\n".join(lines) + "\n")
    _run_c(c_test_binary, f)


def test_c_fuzz_harness_runs_clean(tmp_path: Path) -> None:
    cc = _cc()
    exe = tmp_path / "fuzz_protocol"
    cmd = [cc, *SAN_FLAGS, f"-I{INCLUDE}", *map(str, C_SOURCES), str(C_FUZZ), "-lm", "-o", str(exe)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(exe), "20000"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    assert "20000 inputs, 0 failed" in r.stdout


# --------------------------------------------------------------------------------------------
# One source of truth: C header, Python enums and the spec agree
# --------------------------------------------------------------------------------------------


def _c_values(header: str, prefix: str) -> dict[str, int]:
    text = (INCLUDE / "ecg" / header).read_text()
    pattern = rf"\b({prefix}\w+)\s*=\s*(-?(?:0x)?[0-9A-Fa-f]+)"
    vals = {name: int(value, 0) for name, value in re.findall(pattern, text)}
    for name, shift in re.findall(rf"#define ({prefix}\w+) \(\(uint32_t\)1u << (\d+)\)", text):
        vals[name] = 1 << int(shift)
    for name, value in re.findall(rf"#define ({prefix}\w+) (\d+)u\b", text):
        vals[name] = int(value)
    return vals


def test_python_enums_mirror_c_header() -> None:
    types = _c_values("ecg_protocol.h", "ECG_FT_")
    assert {k[len("ECG_FT_"):]: v for k, v in types.items()
            if not k.startswith(("ECG_FT_RSV_", "ECG_FT_DIR_"))} == \
        {t.name: int(t) for t in FrameType}
    errors = {**_c_values("ecg_types.h", "ECG_ERR_"),
              **_c_values("ecg_protocol.h", "ECG_PROTO_ERR_")}
    assert {k.split("_ERR_")[1]: v for k, v in errors.items()} == \
        {e.name: int(e) for e in ErrorCode if e != ErrorCode.OK}
    caps = _c_values("ecg_protocol.h", "ECG_CAP_")
    assert {k[len("ECG_CAP_"):]: v for k, v in caps.items()} == \
        {c.name: int(c) for c in p.Capability}
    limits = _c_values("ecg_protocol.h", "ECG_PROTO_")
    for name in ("MAX_WIRE_LEN", "MAX_ENCODED_LEN", "MAX_FRAME_LEN", "MAX_PAYLOAD", "MAX_LEADS",
                 "VERSION", "HEADER_LEN", "CRC_LEN"):
        py = p.PROTOCOL_VERSION if name == "VERSION" else getattr(p, name)
        assert limits[f"ECG_PROTO_{name}"] == py, name


def test_spec_tables_list_every_type_error_and_capability() -> None:
    doc = (ROOT / "docs" / "protocol.md").read_text()
    for t in FrameType:
        assert f"| `0x{int(t):02X}` | `{t.name}` |" in doc, t
    for e in ErrorCode:
        assert re.search(rf"\| {'−' if e < 0 else ''}{abs(int(e))} \| `{e.name}` \|", doc), e
    for c in p.Capability:
        assert f"| {c.bit_length() - 1} | `{c.name.removeprefix('RSV_')}` |" in doc, c
    for leads, n in ((1, 115), (2, 57), (3, 38)):
        assert p.max_samples(leads) == n
        assert re.search(rf"\| {leads}\s+\| {n}\s+\|", doc)


def test_construct_layouts_have_the_documented_sizes() -> None:
    sizes = {p.FrameHeader: 4, p.Configure: 6, p.TimeSync: 8, p.TimeSyncResult: 20,
             p.InjectResult: 6, p.DeviceInfo: 25, p.BeatEvent: 10, p.Status: 40,
             p.BeatEventNoConfidence: 9,
             p.SampleBlockPrefix: 6}
    for layout, n in sizes.items():
        assert layout.sizeof() == n


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------

PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(st.binary(max_size=1200))
def test_cobs_round_trips_any_bytes(data: bytes) -> None:
    enc = p.cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= len(data) + len(data) // 254 + 1
    if len(data) <= 254:
        assert len(enc) == len(data) + 1
    assert p.cobs_decode(enc) == data


@PROPS
@given(st.sampled_from(list(FrameType)), st.integers(0, 0xFFFF), st.binary(max_size=p.MAX_PAYLOAD))
def test_frame_round_trips_any_payload(ftype: FrameType, seq: int, payload: bytes) -> None:
    wire = p.encode_frame(ftype, seq, payload)
    assert wire.endswith(b"\x00") and wire.count(0) == 1
    assert len(wire) == len(payload) + 8 <= p.MAX_WIRE_LEN
    assert p.decode_frame(wire) == p.Frame(ftype, seq, payload, 1)
    dec = p.FrameDecoder()
    assert dec.feed(wire) == [p.Frame(ftype, seq, payload, 1)]


def test_oversized_payload_is_refused() -> None:
    with pytest.raises(p.ProtocolError) as e:
        p.encode_frame(FrameType.STATUS, 0, bytes(p.MAX_PAYLOAD + 1))
    assert e.value.code == ErrorCode.OVERSIZE


def _good_frame() -> tuple[bytes, p.Frame]:
    payload = p.build_payload(FrameType.STATUS, dict(
        sample_index=5, battery_pct=80, lead_off=0, buffer_fill_pct=1, flags=1,
        samples_dropped=0, frames_dropped=0, rx_crc_errors=0, rx_cobs_errors=0, rx_truncated=0,
        rx_oversize=0, rx_bad_version=0, rx_unknown_type=0))
    return p.encode_frame(FrameType.STATUS, 321, payload), p.Frame(FrameType.STATUS, 321, payload)


@PROPS
@given(st.binary(max_size=3000), st.lists(st.integers(1, 64), max_size=20))
def test_decoder_survives_garbage_and_recovers_on_next_frame(garbage: bytes,
                                                            cuts: list[int]) -> None:
    dec = p.FrameDecoder()
    i = 0
    for n in cuts:  # feed in arbitrary chunk sizes, then the rest
        dec.feed(garbage[i:i + n])
        i += n
    dec.feed(garbage[i:])
    # Every non-empty delimited segment is delivered or counted exactly once (an unterminated
    # tail only once it is oversize).
    *segments, tail = garbage.split(b"\x00")
    accounted = sum(dec.stats.as_dict().values())
    assert accounted == sum(1 for s in segments if s) + (len(tail) > p.MAX_ENCODED_LEN)
    wire, frame = _good_frame()
    assert dec.feed(b"\x00" + wire) == [frame]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.data())
def test_corrupted_stream_yields_only_sent_frames_plus_counted_errors(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 25))
    sent = [p.Frame(FrameType.SAMPLE_BLOCK, seq, p.encode_samples(
        np.full((data.draw(st.integers(1, 115)), 1), seq * 7 - 40, np.int16), seq * 115))
        for seq in range(n)]
    stream, intact = bytearray(), []
    for f in sent:
        wire = bytearray(p.encode_frame(f.type, f.seq, f.payload))
        if data.draw(st.booleans()):
            for _ in range(data.draw(st.integers(1, 3))):
                i = data.draw(st.integers(0, len(wire) - 2))  # the delimiter survives
                op = data.draw(st.sampled_from(["flip", "drop", "insert"]))
                if op == "flip":
                    wire[i] ^= data.draw(st.integers(1, 255))
                elif op == "drop":
                    del wire[i]
                else:
                    wire.insert(i, data.draw(st.integers(0, 255)))
        else:
            intact.append(f)
        stream += wire
    dec = p.FrameDecoder(Accept.TO_HOST)
    got = dec.feed(bytes(stream))
    assert all(f in sent for f in got)  # nothing that was not sent gets through
    it = iter(got)
    assert all(f in it for f in intact)  # every undamaged frame arrives, in order
    assert dec.stats.frames_ok == len(got)
    damaged_segments = sum(1 for s in bytes(stream).split(b"\x00")[:-1] if s) - len(got)
    assert dec.stats.dropped == damaged_segments


@PROPS
@given(st.integers(1, p.MAX_LEADS).flatmap(lambda leads: st.tuples(
    st.just(leads), st.lists(st.integers(-32768, 32767), min_size=leads,
                             max_size=leads * p.max_samples(leads)))),
       st.integers(0, 0xFFFFFFFF), st.integers(0, 255))
def test_fast_sample_decode_equals_construct_layout(block: tuple[int, list[int]], index: int,
                                                    flags: int) -> None:
    leads, values = block
    values = values[: len(values) // leads * leads]
    arr = np.array(values, np.int16).reshape(-1, leads)
    payload = p.encode_samples(arr, index, flags)
    fast = p.decode_samples(payload)
    ref = p.SampleBlockLayout.parse(payload)
    assert (fast.sample_index, fast.leads, fast.flags) == (ref.sample_index, ref.leads, ref.flags)
    assert fast.samples.dtype == np.int16 and fast.samples.shape == (len(values) // leads, leads)
    assert fast.samples.reshape(-1).tolist() == list(ref.samples)
    assert np.array_equal(fast.samples, arr)


def test_encode_samples_rejects_what_a_block_cannot_carry() -> None:
    with pytest.raises(ValueError):
        p.encode_samples(np.zeros((116, 1), np.int16), 0)
    with pytest.raises(ValueError):
        p.encode_samples(np.zeros((1, 9), np.int16), 0)
    with pytest.raises(ValueError):
        p.encode_samples(np.zeros((0, 1), np.int16), 0)
    with pytest.raises(ValueError):
        p.encode_samples(np.array([[40000]]), 0)
    with pytest.raises(ValueError):
        p.encode_samples(np.array([[0.5]]), 0)


def test_seq_tracker_counts_gaps_late_frames_and_reboots() -> None:
    tr = p.SeqTracker()
    blk = FrameType.SAMPLE_BLOCK
    assert [tr.update(p.Frame(blk, s, b"")) for s in (65534, 65535, 2, 1, 3)] == [0, 0, 2, -1, 0]
    assert tr.gaps[blk] == 2 and tr.late[blk] == 1
    assert tr.update(p.Frame(FrameType.RESPONSE, 9, b"")) == 0
    tr.update(p.Frame(FrameType.DEVICE_INFO, 0, b""))  # reboot: streams restart
    assert tr.update(p.Frame(blk, 0, b"")) == 0 and tr.gaps[blk] == 2


def test_response_status_and_body_parse() -> None:
    payload = p.build_response(FrameType.TIME_SYNC, 0, dict(
        host_time_us=1, device_time_us=2, sample_index=3))
    r = p.parse_payload(FrameType.RESPONSE, payload)
    assert r.status is ErrorCode.OK and (r.result.device_time_us, r.result.sample_index) == (2, 3)
    err = p.parse_response(p.build_response(FrameType.CONFIGURE, ErrorCode.UNSUPPORTED))
    assert err.status is ErrorCode.UNSUPPORTED and err.result is None
    newer = p.parse_response(bytes([FrameType.CONFIGURE, 0x90]))  # a code from a newer device
    assert newer.status == -112


def test_sample_block_decode_rate_is_fast() -> None:
    """Regression guard far below the measured rate (tools/bench_protocol.py: ~15 M/s here)."""
    rng = np.random.default_rng(0)
    wire = b"".join(
        p.encode_frame(FrameType.SAMPLE_BLOCK, i, p.encode_samples(
            rng.normal(0, 300, (115, 1)).astype(np.int16), i * 115)) for i in range(2000))
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        dec = p.FrameDecoder(Accept.TO_HOST)
        blocks = [p.decode_samples(f.payload).samples for f in dec.feed(wire)]
        out = np.concatenate(blocks)
        best = min(best, time.perf_counter() - t)
    assert out.shape == (2000 * 115, 1)
    assert out.size / best > 2.5e6, f"{out.size / best / 1e6:.2f} M samples/s"

"""`ecg_beatfeat` (the device's per-beat feature extraction, C) against `ecgedge.beats` (the
feature specification, numpy), bit for bit.

The C module is driven through `ecgedge._core.BeatFeatureStream` the way `ecg_device` drives it:
filtered samples pushed in blocks, each beat added when the detector decides it (its
`decided_at`, or an arbitrary delay for reference positions), beats taken as soon as they are
ready, `finish` at the end of the stream. Expected values: `beats.beat_features` on the whole
filtered record + `beats.quantize` with the compiled model's input quantization, i.e. the host's
offline path; nothing is computed by the code under test.

Records: 100 and 208 (DS1, many V beats), 213 and 232 (DS2; 232 has long pauses, so search-back
beats reported late), at 360 Hz; 232 resampled to 250 Hz and 119 to 500 Hz (the interpolated
window, step 2 of the specification).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from ecgedge import _core
from ecgedge import beats as B
from ecgedge.classifier import BeatClassifier
from ecgedge.core import Filter, QrsDetector
from ecgedge.validation.wfdb_db import read_annotations, read_lead
from support import ROOT, build_sanitized, run_c_tests

MAINS_HZ = 60


class CFeatures(NamedTuple):
    r_index: np.ndarray
    window: np.ndarray
    rr: np.ndarray
    scale: np.ndarray
    late: np.ndarray


def run_c(filtered: np.ndarray, fs_hz: float, delay_samples: float, r_peaks: np.ndarray,
          decided_at: np.ndarray, block: int) -> tuple[CFeatures, dict[str, int]]:
    """The C extraction, streamed: blocks of `block` samples; beat k added once the samples up
    to decided_at[k] are in; ready beats taken after every call."""
    s = _core.BeatFeatureStream(fs_hz, delay_samples)
    parts = []
    k = 0
    for a in range(0, len(filtered), block):
        s.push(filtered[a:a + block])
        parts.append(s.take())
        end = min(a + block, len(filtered))
        while k < len(r_peaks) and decided_at[k] < end:
            s.add_beat(int(r_peaks[k]))
            parts.append(s.take())
            k += 1
    for r in r_peaks[k:]:
        s.add_beat(int(r))
        parts.append(s.take())
    s.finish()
    parts.append(s.take())
    cat = [b"".join(bytes(p[i]) for p in parts) for i in range(5)]
    return CFeatures(np.frombuffer(cat[0], np.int64), np.frombuffer(cat[1], np.int8).reshape(-1, 256),
                     np.frombuffer(cat[2], np.int8).reshape(-1, 9), np.frombuffer(cat[3], np.float32),
                     np.frombuffer(cat[4], np.uint8)), s.stats


def spec(filtered: np.ndarray, fs_hz: float, delay_samples: float,
         r_peaks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """beats.py + quantize: the int8 inputs and the scales."""
    m = BeatClassifier().model
    bf = B.beat_features(filtered, fs_hz, r_peaks, B.filter_delay(delay_samples))
    return (B.quantize(bf.window, m.window_scale, m.window_zero_point),
            B.quantize(bf.rr, m.rr_scale, m.rr_zero_point), bf.scale)


def assert_identical(got: CFeatures, want: tuple[np.ndarray, np.ndarray, np.ndarray],
                     r_peaks: np.ndarray, what: str) -> None:
    w, r, scale = want
    assert got.r_index.tolist() == r_peaks.tolist(), f"{what}: beats out of order or missing"
    bad_w = np.flatnonzero(np.any(got.window != w, axis=1))
    bad_r = np.flatnonzero(np.any(got.rr != r, axis=1))
    assert bad_w.size == 0, f"{what}: window differs on {bad_w.size} beats, first {bad_w[:5]}"
    assert bad_r.size == 0, (f"{what}: rr differs on {bad_r.size} beats, first {bad_r[:5]}: "
                             f"C {got.rr[bad_r[0]]} spec {r[bad_r[0]]}")
    assert np.array_equal(got.scale, scale), f"{what}: amplitude scales differ"
    assert not got.late.any(), f"{what}: {int(got.late.sum())} beats flagged late"


def load(mitdb: Path, name: str, fs_hz: int | None = None) -> tuple[np.ndarray, float, np.ndarray]:
    """MLII in mV (optionally resampled) and the reference beat positions at that rate."""
    import wfdb
    from scipy.signal import resample_poly

    ch = list(wfdb.rdheader(str(mitdb / name)).sig_name).index("MLII")
    lead = read_lead(mitdb, name, ch)
    ann = read_annotations(mitdb, name, "atr", lead.fs_hz)
    pos, _ = B.reference_beats(ann.samples, ann.symbols)
    x, fs = lead.signal_mv, lead.fs_hz
    if fs_hz is not None and fs_hz != fs:
        g = np.gcd(int(fs_hz), int(fs))
        x = resample_poly(x, int(fs_hz) // g, int(fs) // g)
        pos = np.unique(np.rint(pos * (fs_hz / fs)).astype(np.int64))
        fs = float(fs_hz)
    return x, fs, pos


CASES = [("100", None), ("208", None), ("213", None), ("232", None), ("232", 250), ("119", 500)]


@pytest.mark.parametrize("name,fs_hz", CASES, ids=[f"{n}@{f or 360}" for n, f in CASES])
def test_c_features_equal_the_spec_on_reference_and_detector_beats(mitdb: Path, name: str,
                                                                    fs_hz: int | None) -> None:
    x, fs, ref = load(mitdb, name, fs_hz)
    filt = Filter(fs, MAINS_HZ)
    y = filt.process(x)
    # reference positions, each reported 0..700 ms after its R peak, blocks of 37 samples
    rng = np.random.default_rng(int(name))
    latency = rng.integers(0, int(0.7 * fs), ref.size)
    got, stats = run_c(y, fs, filt.delay_samples, ref, ref + latency, 37)
    assert_identical(got, spec(y, fs, filt.delay_samples, ref), ref, f"{name} reference")
    assert stats["beats_in"] == stats["beats_out"] == ref.size and stats["pending"] == 0
    # the detector's beats, each added when the detector decided it, blocks of 32 (the device's)
    det = QrsDetector(fs, MAINS_HZ)
    a, b = det.process_beats(x), det.flush_beats()
    r = np.concatenate([a.index, b.index])
    decided = np.concatenate([a.decided_at, np.full(b.index.size, len(x))])
    got, _ = run_c(y, fs, filt.delay_samples, r, decided, 32)
    assert_identical(got, spec(y, fs, filt.delay_samples, r), r, f"{name} detector")


def test_block_size_does_not_change_the_features(mitdb: Path) -> None:
    x, fs, ref = load(mitdb, "105")
    x, ref = x[: 120 * 360], ref[ref < 120 * 360 - 10]
    filt = Filter(fs, MAINS_HZ)
    y = filt.process(x)
    outs = [run_c(y, fs, filt.delay_samples, ref, ref + 200, blk)[0] for blk in (1, 7, 32, 500)]
    for o in outs[1:]:
        for f in CFeatures._fields:
            assert np.array_equal(getattr(o, f), getattr(outs[0], f)), f


def test_beats_at_the_stream_edges_read_zeros_like_the_spec() -> None:
    """A beat 10 samples into the stream and one 20 samples before its end: the window reaches
    past both ends, where the specification reads 0.0."""
    fs = 360.0
    t = np.arange(3000)
    y = (np.sin(t / 9.0) * np.exp(-((t % 300) - 150) ** 2 / 50.0)).astype(np.float32)
    r = np.array([10, 300, 610, 905, 1200, 1500, 1790, 2100, 2400, 2700, 2979])
    got, stats = run_c(y, fs, 4.2, r, r + 100, 64)
    assert_identical(got, spec(y, fs, 4.2, r), r, "edges")


@pytest.mark.parametrize("n_beats", [1, 2, 3])
def test_one_two_and_three_beat_streams_follow_the_rr_fallbacks(n_beats: int) -> None:
    """The first beat borrows I_1, a lone beat uses round(fs) for pre and post."""
    fs = 250.0
    y = np.random.default_rng(5).normal(0, 0.2, 2000).astype(np.float32)
    r = np.array([400, 700, 1100])[:n_beats]
    got, _ = run_c(y, fs, 2.8, r, r + 60, 50)
    assert_identical(got, spec(y, fs, 2.8, r), r, f"{n_beats} beats")


def test_a_beat_reported_after_its_window_left_the_ring_is_flagged_late() -> None:
    """The ring keeps 1024 samples: a beat added 1200 samples after its R peak cannot be exact;
    it still comes out, flagged and counted, and the next beats are exact again once the amplitude
    history has moved past it."""
    fs = 360.0
    y = np.random.default_rng(2).normal(0, 0.3, 20000).astype(np.float32)
    r = np.arange(500, 19000, 400)
    decided = r + 100
    decided[5] = r[5] + 1200  # reported late: its window start has left the ring
    got, stats = run_c(y, fs, 4.2, r, np.maximum.accumulate(decided), 32)
    assert got.r_index.tolist() == r.tolist()
    assert got.late.tolist() == [1 if i == 5 else 0 for i in range(r.size)]
    assert stats["late"] == 1
    w, rr, _ = spec(y, fs, 4.2, r)
    assert np.array_equal(got.rr, rr)  # RR features need no samples
    assert np.array_equal(got.window[:5], w[:5]) and np.array_equal(got.window[14:], w[14:])


def test_beats_must_be_strictly_increasing() -> None:
    s = _core.BeatFeatureStream(360.0, 4.2)
    s.add_beat(1000)
    with pytest.raises(ValueError, match="add_beat"):
        s.add_beat(1000)
    with pytest.raises(ValueError, match="add_beat"):
        s.add_beat(999)
    s.finish()
    with pytest.raises(ValueError, match="add_beat"):
        s.add_beat(5000)


@pytest.mark.parametrize("fs,delay", [(100.0, 4.0), (1200.0, 4.0), (360.0, -1.0), (360.0, 1e3)])
def test_out_of_range_configuration_is_refused(fs: float, delay: float) -> None:
    with pytest.raises(ValueError, match="beat features"):
        _core.BeatFeatureStream(fs, delay)


def test_c_stream_tests_pass_under_address_and_undefined_behaviour_sanitizers(
        tmp_path: Path) -> None:
    """tests/c/test_beatfeat.c: order, counts and flags at every rate from 125 to 1000 Hz."""
    sources = [ROOT / "firmware" / "src" / "core" / "ecg_beatfeat.c",  # needs no other module
               ROOT / "tests" / "c" / "test_beatfeat.c"]
    exe = build_sanitized(tmp_path / "test_beatfeat", sources, timeout=300)
    run_c_tests(exe, timeout=120)

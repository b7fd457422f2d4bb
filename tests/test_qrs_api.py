"""`ecgedge.core.QrsDetector`: the API contract (streaming, reset, output type, errors, state size).

Accuracy on the databases is scored elsewhere; here a real excerpt (MIT-BIH record 100, lead MLII,
millivolts) exercises the streaming contract: chunked feeding, including `flush()`, must give
exactly the beats of a single call. The only accuracy checks are a sanity check that detection
works at every supported rate (record 100 resampled to 125..1000 Hz, scored against the resampled
reference beats with `ecgedge.validation.ec57.compare`).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import wfdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.signal import resample_poly

from ecgedge.core import Filter, QrsDetector, Quality, detect_qrs
from ecgedge.validation.ec57 import Reference, compare

RECORD = "100"
FS = 360.0
MAINS = 60  # MIT-BIH was recorded in Boston
EXCERPT_S = 300  # 5 minutes


class Excerpt:
    def __init__(self, mitdb: Path, seconds: float) -> None:
        n = int(seconds * FS)
        rec = wfdb.rdrecord(str(mitdb / RECORD), channels=[0], sampto=n)
        assert rec.fs == FS and rec.units == ["mV"]
        ann = wfdb.rdann(str(mitdb / RECORD), "atr", sampto=n)
        self.signal = np.asarray(rec.p_signal[:, 0], dtype=np.float64)
        self.ann_samples = np.asarray(ann.sample, dtype=np.int64)
        self.ann_symbols = list(ann.symbol)
        self.reference = Reference.from_annotations(self.ann_samples, self.ann_symbols, n)


@pytest.fixture(scope="module")
def excerpt(mitdb: Path) -> Excerpt:
    return Excerpt(mitdb, EXCERPT_S)


def run_whole(x: np.ndarray, fs: float = FS, **params: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices and quality flags of one call plus flush."""
    det = QrsDetector(fs, mains_hz=MAINS, **params)
    b, f = det.process_beats(x), det.flush_beats()
    return np.concatenate([b.index, f.index]), np.concatenate([b.quality, f.quality])


def run_chunked(x: np.ndarray, cuts: list[int], fs: float = FS) -> tuple[np.ndarray, np.ndarray]:
    det = QrsDetector(fs, mains_hz=MAINS)
    edges = [0, *sorted(set(cuts)), x.size]
    idx, qual = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        if hi > lo:
            b = det.process_beats(x[lo:hi])
            assert b.index.dtype == np.int64 and b.quality.dtype == np.uint8
            idx.append(b.index)
            qual.append(b.quality)
    f = det.flush_beats()
    return np.concatenate([*idx, f.index]), np.concatenate([*qual, f.quality])


@pytest.fixture(scope="module")
def whole_run(excerpt: Excerpt) -> tuple[np.ndarray, np.ndarray]:
    return run_whole(excerpt.signal)


# ----------------------------------------------------------------------- streaming contract

@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_chunking_with_flush_gives_the_beats_of_one_call(
        excerpt: Excerpt, whole_run: tuple[np.ndarray, np.ndarray], data: st.DataObject) -> None:
    n = excerpt.signal.size
    # Random cut points, plus some placed near R peaks, where the decision logic is busy.
    cuts = data.draw(st.lists(st.integers(1, n - 1), max_size=60), label="cuts")
    beats = excerpt.reference.beats
    near = data.draw(st.lists(st.tuples(st.integers(0, beats.size - 1), st.integers(-80, 120)),
                              max_size=20), label="near-beat cuts")
    cuts += [int(beats[i] + d) for i, d in near if 0 < beats[i] + d < n]
    idx, qual = run_chunked(excerpt.signal, cuts)
    assert np.array_equal(idx, whole_run[0])
    assert np.array_equal(qual, whole_run[1])


def test_chunks_cut_at_every_r_peak_give_the_beats_of_one_call(
        excerpt: Excerpt, whole_run: tuple[np.ndarray, np.ndarray]) -> None:
    for offset in (-20, 0, 1, 36, 72):  # samples from each annotated beat
        cuts = [int(b + offset) for b in excerpt.reference.beats
                if 0 < b + offset < excerpt.signal.size]
        idx, qual = run_chunked(excerpt.signal, cuts)
        assert np.array_equal(idx, whole_run[0]), offset
        assert np.array_equal(qual, whole_run[1]), offset


def test_sample_by_sample_feeding_gives_the_beats_of_one_call(excerpt: Excerpt) -> None:
    x = excerpt.signal[: int(120 * FS)]
    expected = run_whole(x)
    got = run_chunked(x, list(range(1, x.size)))
    assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert expected[0].size > 100


def test_flush_decides_the_beat_still_pending_at_the_end_of_the_stream(excerpt: Excerpt) -> None:
    # Stop 30 ms after an annotated R peak: too early for any detector with a look-ahead to have
    # decided it, so the beat can only come from flush().
    r_peak = int(excerpt.reference.beats[100])
    det = QrsDetector(FS, mains_hz=MAINS)
    streamed = det.process(excerpt.signal[: r_peak + int(0.030 * FS)])
    flushed = det.flush()
    assert not np.any(np.abs(streamed - r_peak) <= 0.15 * FS)
    assert flushed.dtype == np.int64 and flushed.size >= 1
    assert np.min(np.abs(flushed - r_peak)) <= 0.15 * FS
    assert det.flush().size == 0  # nothing is left to decide


def test_detect_qrs_equals_process_then_flush(excerpt: Excerpt,
                                              whole_run: tuple[np.ndarray, np.ndarray]) -> None:
    assert np.array_equal(detect_qrs(excerpt.signal, FS, mains_hz=MAINS), whole_run[0])


def test_reset_reproduces_the_first_run(excerpt: Excerpt,
                                        whole_run: tuple[np.ndarray, np.ndarray]) -> None:
    det = QrsDetector(FS, mains_hz=MAINS)
    first = np.concatenate([det.process(excerpt.signal), det.flush()])
    det.reset()
    second = np.concatenate([det.process(excerpt.signal), det.flush()])
    assert np.array_equal(first, second)
    # Reset in mid-stream, with beats pending and the conditioning filter charged by a 100 mV
    # electrode jump, also starts from scratch (indices from 0, filter and detector state).
    det.reset()
    det.process(excerpt.signal[: int(61.03 * FS)])
    det.process(np.full(int(0.5 * FS), 100.0))
    det.reset()
    third = np.concatenate([det.process(excerpt.signal), det.flush()])
    assert np.array_equal(third, whole_run[0])


# ----------------------------------------------------------------------- output

def test_indices_are_int64_strictly_ascending_and_within_the_signal(
        excerpt: Excerpt, whole_run: tuple[np.ndarray, np.ndarray]) -> None:
    idx, qual = whole_run
    assert idx.dtype == np.int64
    assert idx.size > 0.9 * excerpt.reference.beats.size  # it does detect beats
    assert np.all(np.diff(idx) > 0), "R-peak indices must be strictly increasing"
    assert idx[0] >= 0 and idx[-1] < excerpt.signal.size
    assert qual.dtype == np.uint8 and qual.shape == idx.shape
    assert set(np.unique(qual)) <= {Quality.GOOD, Quality.NOISY, Quality.UNUSABLE}


def test_a_chunk_without_beats_returns_an_empty_int64_array() -> None:
    det = QrsDetector(FS, mains_hz=MAINS)
    out = det.process(np.zeros(10))
    assert out.dtype == np.int64 and out.shape == (0,)
    out = det.flush()
    assert out.dtype == np.int64 and out.shape == (0,)


def test_int16_and_float64_input_give_the_float32_result(excerpt: Excerpt) -> None:
    counts = np.round(excerpt.signal[: int(60 * FS)] * 200).astype(np.int16)  # 200 adu/mV
    ref = run_whole(counts.astype(np.float32))[0]
    assert ref.size > 40
    assert np.array_equal(run_whole(counts)[0], ref)
    assert np.array_equal(run_whole(counts.astype(np.float64))[0], ref)


def test_detector_delay_is_the_filter_delay() -> None:
    for fs in (125.0, 360.0, 1000.0):
        assert QrsDetector(fs, mains_hz=MAINS).delay_samples == Filter(fs, MAINS).delay_samples


def test_state_size_is_reported_and_below_8_kb(capsys: pytest.CaptureFixture[str]) -> None:
    sizes = QrsDetector(FS, mains_hz=MAINS).state_bytes
    with capsys.disabled():  # shown with or without -s
        print(f"\n[QrsDetector.state_bytes] {sizes} -> {sum(sizes.values())} bytes in total")
    assert set(sizes) == {"ecg_filter_t", "ecg_qrs_t"}
    assert all(isinstance(v, int) and v > 0 for v in sizes.values())
    assert sum(sizes.values()) < 8 * 1024


# ----------------------------------------------------------------------- any rate

@pytest.mark.parametrize("fs", [125, 250, 500, 1000], ids=lambda fs: f"{fs}Hz")
def test_detects_record_100_resampled_to_each_rate_with_se_and_ppv_of_99_percent(
        excerpt: Excerpt, fs: int) -> None:
    n = int(120 * FS)  # 2 minutes
    ratio = Fraction(fs) / Fraction(int(FS))
    x = resample_poly(excerpt.signal[:n], ratio.numerator, ratio.denominator)
    keep = excerpt.ann_samples < n
    ref = Reference.from_annotations(
        np.round(excerpt.ann_samples[keep] * float(ratio)).astype(np.int64),
        [s for s, k in zip(excerpt.ann_symbols, keep) if k], x.size)
    det = detect_qrs(x, fs, mains_hz=MAINS)
    # Scored from 10 s on: after the longest documented learning period (8 s).
    counts = compare(ref, det, fs, start=int(10 * fs)).counts
    assert counts.tp > 120
    assert counts.se >= 99.0 and counts.ppv >= 99.0, counts.as_dict()


# ----------------------------------------------------------------------- errors

@pytest.mark.parametrize("fs", [124.9, 1000.1, 0.0, float("nan"), float("inf")])
def test_rate_outside_125_to_1000hz_is_rejected(fs: float) -> None:
    with pytest.raises(ValueError, match=r"fs_hz=.*125.*1000"):
        QrsDetector(fs, mains_hz=MAINS)


@pytest.mark.parametrize("mains", [55, 0, 50.5, "60"])
def test_mains_other_than_50_60_or_none_is_rejected(mains: object) -> None:
    with pytest.raises(ValueError, match=r"mains_hz=.*50, 60.*None"):
        QrsDetector(FS, mains_hz=mains)  # type: ignore[arg-type]


@pytest.mark.parametrize("mains", [50, 60, None])
def test_every_mains_setting_is_accepted(mains: int | None) -> None:
    assert QrsDetector(FS, mains_hz=mains).process(np.zeros(5)).size == 0


def test_unknown_tuning_parameter_is_rejected_by_name() -> None:
    with pytest.raises(TypeError, match="refactory_ms"):  # sic: a typo of refractory_ms
        QrsDetector(FS, mains_hz=MAINS, refactory_ms=250.0)


# Mid-range values of the documented tuning fields (ecg_qrs.h, ecg_filter.h).
DOCUMENTED_FIELDS = {
    "bandpass_hz": 15.0, "bandpass_q": 1.0, "slope_ms": 10.0, "mwi_ms": 100.0,
    "peak_hold_ms": 100.0, "refractory_ms": 220.0, "twave_ms": 350.0, "twave_slope_frac": 0.5,
    "pwave_ms": 250.0, "weak_slope_frac": 0.5, "pwave_height_frac": 0.5,
    "threshold_frac": 0.3, "threshold_noise_gain": 1.0, "threshold_activity_gain": 2.0,
    "activity_clean": 0.3, "searchback_rr_frac": 1.6,
    "searchback_frac": 0.5, "searchback_gap_frac": 1.8, "searchback_min_ms": 300.0,
    "learn_ms": 3000.0,
    "highpass_hz": 0.7, "lowpass_hz": 35.0, "notch_q": 8.0,
}


@pytest.mark.parametrize("name", list(DOCUMENTED_FIELDS))
def test_each_documented_tuning_parameter_is_accepted_by_name(name: str) -> None:
    QrsDetector(FS, mains_hz=MAINS, **{name: DOCUMENTED_FIELDS[name]})


@pytest.mark.parametrize("params", [{"refractory_ms": 1000.0}, {"mwi_ms": 10.0},
                                    {"threshold_frac": float("nan")}, {"lowpass_hz": 1.0},
                                    {"learn_ms": -1.0}])
def test_tuning_value_outside_its_range_is_rejected(params: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="out of range"):
        QrsDetector(FS, mains_hz=MAINS, **params)


BAD_CHUNKS = {
    "nan": (np.array([0.1, np.nan, 0.3]), r"NaN or infinity.*position 1"),
    "inf": (np.array([np.inf]), r"NaN or infinity.*position 0"),
    "2-D": (np.zeros((50, 2)), r"one-dimensional.*\(50, 2\)"),
    "object": (np.array([0.1, 0.2], dtype=object), r"dtype object"),
    "str": (np.array(["0.1"]), r"dtype <U3"),
    "complex": (np.array([0.1j]), r"dtype complex128"),
    "bool": (np.array([True]), r"dtype bool"),
    "empty": (np.array([]), r"empty"),
}


@pytest.mark.parametrize("name", list(BAD_CHUNKS))
def test_bad_chunk_raises_a_clear_value_error_and_leaves_the_state_untouched(
        excerpt: Excerpt, name: str) -> None:
    chunk, message = BAD_CHUNKS[name]
    x = excerpt.signal[: int(40 * FS)]
    cut = int(20.01 * FS)
    expected = run_whole(x)[0]
    det = QrsDetector(FS, mains_hz=MAINS)
    first = det.process(x[:cut])
    with pytest.raises(ValueError, match=message):
        det.process(chunk)
    got = np.concatenate([first, det.process(x[cut:]), det.flush()])
    assert np.array_equal(got, expected)

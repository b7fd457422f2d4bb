"""`ecgedge.beats`: the classifier's feature extraction (windows, amplitude scale, RR features,
quantization, AAMI class map), checked against a plain re-statement of the documented spec.

The spec re-statements below are deliberately naive (Python loops over float32 scalars), the way
the firmware's C port will be written, so that a vectorisation slip in the module shows up as a
bit difference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgedge import beats as B
from ecgedge.core import Filter
from ecgedge.validation.wfdb_db import read_annotations, read_lead

F32 = np.float32


# ------------------------------------------------------------------------------------ classes

@pytest.mark.parametrize("symbols, cls", [("NLRej", 0), ("AaJS", 1), ("VE", 2), ("F", 3),
                                          ("/fQ", 4)])
def test_aami_class_map(symbols: str, cls: int) -> None:
    for s in symbols:
        assert B.aami_class(s) == cls


@pytest.mark.parametrize("symbol", list("BrnJ?+~|x\"![]") + ["(AFIB", ""])
def test_unclassed_symbols(symbol: str) -> None:
    expected = 1 if symbol == "J" else -1
    assert B.aami_class(symbol) == expected


def test_reference_beats_keeps_all_beats_drops_the_rest() -> None:
    samples = [10, 5, 20, 30, 40, 50, 60, 70]
    symbols = ["N", "+", "V", "~", "?", "A", "[", "F"]
    pos, cls = B.reference_beats(samples, symbols)
    assert pos.tolist() == [10, 20, 40, 50, 70]
    assert cls.tolist() == [0, 2, -1, 1, 3]


def test_reference_beats_sorts_and_checks_lengths() -> None:
    pos, cls = B.reference_beats([30, 10], ["V", "N"])
    assert pos.tolist() == [10, 30] and cls.tolist() == [0, 2]
    with pytest.raises(ValueError):
        B.reference_beats([1, 2], ["N"])


def test_split_is_the_de_chazal_split() -> None:
    assert len(B.DS1) == len(B.DS2) == 22
    assert not set(B.DS1) & set(B.DS2)
    assert not set(B.PACED_RECORDS) & (set(B.DS1) | set(B.DS2))


# ------------------------------------------------------------------------------------ windows

def test_filter_delay_rounds_half_up() -> None:
    assert B.filter_delay(4.21) == 4
    assert B.filter_delay(4.5) == 5
    assert B.filter_delay(Filter(360, 60).delay_samples) == 4


def test_windows_at_model_rate_are_plain_slices_zero_outside() -> None:
    x = np.arange(1000, dtype=np.float32) + 1
    w = B.sample_windows(x, 360.0, [500, 50, 900], delay=4)
    assert w.shape == (3, B.WINDOW_LEN) and w.dtype == np.float32
    c = 504
    assert np.array_equal(w[0], x[c - B.WINDOW_PRE: c - B.WINDOW_PRE + B.WINDOW_LEN])
    assert w[0, B.WINDOW_PRE] == x[c]  # the R sample (plus the filter delay) is sample 90
    # beat at 50: positions -36..-1 read 0, then x[0:220]
    assert np.all(w[1, :36] == 0) and np.array_equal(w[1, 36:], x[: B.WINDOW_LEN - 36])
    # beat at 900: window ends past the signal
    n_in = 1000 - (904 - B.WINDOW_PRE)
    assert np.array_equal(w[2, :n_in], x[904 - B.WINDOW_PRE:]) and np.all(w[2, n_in:] == 0)


def test_window_margin_extends_both_sides() -> None:
    x = np.random.default_rng(0).standard_normal(2000).astype(np.float32)
    w = B.sample_windows(x, 360.0, [700, 1000], delay=3)
    wide = B.sample_windows(x, 360.0, [700, 1000], delay=3, margin=5)
    assert wide.shape == (2, B.WINDOW_LEN + 10)
    assert np.array_equal(wide[:, 5:-5], w)
    assert np.array_equal(wide[:, 3: 3 + B.WINDOW_LEN],
                          B.sample_windows(x, 360.0, [698, 998], delay=3))


def test_windows_at_other_rates_interpolate_linearly() -> None:
    fs = 250.0
    x = (np.arange(3000, dtype=np.float32) * F32(0.5)).astype(np.float32)  # a ramp
    r = 1500
    w = B.sample_windows(x, fs, [r], delay=2)[0]
    for k in (0, 1, 89, 90, 91, 200, 255):
        p = (r + 2) + (k - B.WINDOW_PRE) * (fs / B.MODEL_FS_HZ)
        i = int(np.floor(p))
        f = F32(p - i)
        expect = x[i] + f * (x[i + 1] - x[i])
        assert w[k] == expect
        assert abs(float(w[k]) - 0.5 * p) < 1e-3


def test_amplitude_is_max_abs_around_r() -> None:
    w = np.zeros((2, B.WINDOW_LEN), np.float32)
    w[0, B.WINDOW_PRE + 18] = -2.0  # inside +-50 ms
    w[0, B.WINDOW_PRE + 19] = 5.0   # outside
    w[1, B.WINDOW_PRE - 19] = 7.0   # outside
    w[1, B.WINDOW_PRE - 18] = 0.5
    assert B.r_amplitudes(w).tolist() == [2.0, 0.5]


def spec_scales(a: np.ndarray) -> np.ndarray:
    out = []
    for i in range(a.size):
        hist = sorted(a[max(0, i - 8): i + 1].tolist())
        out.append(max(F32(hist[(len(hist) - 1) // 2]), F32(0.05)))
    return np.asarray(out, np.float32)


def test_amplitude_scale_is_lower_running_median_of_nine() -> None:
    rng = np.random.default_rng(1)
    a = rng.uniform(0.0, 3.0, 40).astype(np.float32)
    a[5] = 0.001
    assert np.array_equal(B.amplitude_scales(a), spec_scales(a))
    assert B.amplitude_scales(np.array([0.2, 1.0], np.float32)).tolist() == [F32(0.2), F32(0.2)]
    assert B.amplitude_scales(np.array([0.01], np.float32))[0] == F32(0.05)


def test_normalisation_divides_and_clips() -> None:
    w = np.array([[1.0, -3.0, 9.0, -9.0]], np.float32)
    out = B.normalize_windows(w, np.array([2.0], np.float32))
    assert out.tolist() == [[0.5, -1.5, 4.0, -4.0]]
    x = np.array([[0.1]], np.float32)
    assert B.normalize_windows(x, np.array([0.3], np.float32))[0, 0] == F32(0.1) / F32(0.3)


def spec_diffs(w: np.ndarray) -> np.ndarray:
    """Steps 6-7 of the module docs, one float32 scalar at a time."""
    n, m = w.shape
    out = np.zeros((n, m), np.float32)
    t = [F32(v) for v in w[0]] if n else []
    for i in range(n):
        for k in range(m):
            d = F32(w[i, k]) - t[k]
            out[i, k] = min(max(d, F32(-4.0)), F32(4.0))
            t[k] = F32(t[k] + F32(d * F32(0.03125)))
    return out


def test_template_diffs_match_spec() -> None:
    rng = np.random.default_rng(4)
    w = np.clip(rng.normal(0, 1.5, (60, 12)), -4, 4).astype(np.float32)
    w[30] = 4.0
    w[31] = -4.0
    got = B.template_diffs(w)
    assert np.array_equal(got, spec_diffs(w))
    assert not got[0].any()                                   # first beat: diff 0
    assert np.array_equal(got[1], np.clip(w[1] - w[0], F32(-4), F32(4)))  # T_1 = window_0
    assert np.abs(got).max() <= 4.0
    assert B.template_diffs(np.zeros((0, 256), np.float32)).shape == (0, 256)
    # a steady beat converges to its template
    steady = np.tile(w[:1], (400, 1))
    steady[:100] = w[5]
    assert np.abs(B.template_diffs(steady)[-1]).max() < 1e-3


# ------------------------------------------------------------------------------------ RR

def spec_rr(r: list[int], fs: float) -> np.ndarray:
    """The module docstring's RR features, one beat at a time."""
    n = len(r)
    iv = [0] + [r[k] - r[k - 1] for k in range(1, n)]
    out = np.zeros((n, 9), np.float32)
    for i in range(n):
        if i >= 1:
            pre = iv[i]
        elif n >= 2:
            pre = iv[1]
        else:
            pre = int(np.floor(fs + 0.5))
        post = iv[i + 1] if i + 1 < n else pre
        loc = iv[max(1, i - 7): i + 1]
        lon = iv[max(1, i - 63): i + 1]
        L, nl = (sum(loc), len(loc)) if loc else (pre, 1)
        G, ng = (sum(lon), len(lon)) if lon else (pre, 1)
        pairs = [abs(iv[k] - iv[k - 1]) for k in range(max(2, i - 6), i + 1)]
        V, nv = (sum(pairs), len(pairs)) if pairs else (0, 1)
        f, fsf = F32, F32(fs)
        vals = [f(pre) / fsf, f(post) / fsf, f(L) / f(nl) / fsf,
                f(pre * nl) / f(L), f(post * nl) / f(L), f(pre) / f(post),
                f(pre * ng) / f(G), f(L * ng) / f(G * nl), f(V * nl) / f(L * nv)]
        for j, v in enumerate(vals):
            hi = F32(3.0) if j < 3 else F32(4.0)
            out[i, j] = min(max(v, F32(0.0)), hi)
    return out


def test_rr_features_hand_example() -> None:
    r = [0, 360, 720, 900, 1440, 1800]
    got = B.rr_features(r, 360.0)
    # beat 3 comes early (180 after 360, 360): pre 0.5 s, post 1.5 s, local mean 300 samples
    assert got[3, 0] == F32(0.5) and got[3, 1] == F32(1.5)
    assert got[3, 2] == F32(900) / F32(3) / F32(360)
    assert got[3, 3] == F32(0.6) and got[3, 4] == F32(1.8)
    assert got[3, 5] == F32(180) / F32(540)
    assert got[3, 8] == F32(180 * 3) / F32(900 * 2)  # |360-360| + |180-360| over 2 pairs
    # first beat borrows the first interval; last beat's post is its pre
    assert got[0, 0] == got[0, 1] == F32(1.0)
    assert got[5, 1] == got[5, 0] == F32(1.0)
    assert np.array_equal(got, spec_rr(r, 360.0))


def test_rr_features_match_spec_on_irregular_sequences() -> None:
    rng = np.random.default_rng(2)
    for fs in (360.0, 250.0, 128.0):
        iv = rng.integers(int(0.25 * fs), int(2.5 * fs), 150)
        iv[rng.integers(0, 150, 5)] = int(5 * fs)  # pauses beyond the clip
        r = np.cumsum(iv).tolist()
        assert np.array_equal(B.rr_features(r, fs), spec_rr(r, fs))


def test_rr_features_boundaries() -> None:
    assert B.rr_features([], 360.0).shape == (0, B.N_RR_FEATURES)
    one = B.rr_features([100], 360.0)
    assert one.tolist() == [[1, 1, 1, 1, 1, 1, 1, 1, 0]]
    two = B.rr_features([100, 280], 360.0)
    assert np.array_equal(two[0], two[1]) and two[0, 0] == F32(0.5)
    with pytest.raises(ValueError):
        B.rr_features([5, 5], 360.0)
    far = B.rr_features([0, 10 * 360, 10 * 360 + 36], 360.0)
    assert far[:, :3].max() == 3.0 and far[:, 3:].max() <= 4.0 and far.min() >= 0.0


# ------------------------------------------------------------------------------------ quantize

def test_quantize_rounds_half_away_and_clamps() -> None:
    x = np.array([0.5, -0.5, 1.5, -1.5, 0.49999997, 2.5, 1000.0, -1000.0], np.float32)
    assert B.quantize(x, 1.0, 0).tolist() == [1, -1, 2, -2, 0, 3, 127, -128]
    assert B.quantize(np.array([0.0, 0.25], np.float32), 0.5, -128).tolist() == [-128, -127]


def test_quantize_is_float32_division() -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(-4, 4, 10000).astype(np.float32)
    s = F32(0.031372551)
    q = B.quantize(x, float(s), -1)
    for v, got in zip(x[:500], q[:500]):
        t = v / s
        r = int(np.trunc(t)) + (int(np.sign(t)) if abs(t - np.trunc(t)) >= 0.5 else 0)
        assert got == min(127, max(-128, r - 1))


# ------------------------------------------------------------------------------------ real data

def test_beat_features_on_a_record(mitdb: Path) -> None:
    lead = read_lead(mitdb, "100", 0)
    ann = read_annotations(mitdb, "100", "atr", lead.fs_hz)
    pos, cls = B.reference_beats(ann.samples, ann.symbols)
    assert pos.size == 2273 and (cls == 0).sum() == 2239 and (cls == 1).sum() == 33
    filt = Filter(lead.fs_hz, 60)
    y = filt.process(lead.signal_mv)
    bf = B.beat_features(y, lead.fs_hz, pos, B.filter_delay(filt.delay_samples))
    assert bf.window.shape == (pos.size, B.WINDOW_LEN) and bf.rr.shape == (pos.size, 9)
    assert bf.diff.shape == bf.window.shape
    assert np.array_equal(bf.diff, B.template_diffs(bf.window))
    # record 100 is nearly all normal beats: they sit close to the running template
    assert float(np.median(np.abs(bf.diff[100:]).mean(axis=1))) < 0.1
    assert np.isfinite(bf.window).all() and np.abs(bf.window).max() <= 4.0
    # the R peak is near the top of its window: normal beats of record 100 scale to about 1
    assert 0.7 < float(np.median(np.abs(bf.window[:, B.WINDOW_PRE]))) <= 1.3
    assert 0.5 < float(np.median(bf.scale)) < 2.5
    assert abs(float(np.median(bf.rr[:, 3])) - 1.0) < 0.05


def test_ds1_class_counts_match_the_literature(mitdb: Path) -> None:
    """de Chazal 2004, Table: DS1 has N 45866, S 944, V 3788, F 415, Q 8 beats."""
    counts = np.zeros(5, int)
    for name in B.DS1:
        ann = read_annotations(mitdb, name, "atr", 360.0)
        _, cls = B.reference_beats(ann.samples, ann.symbols)
        counts += np.bincount(cls[cls >= 0], minlength=5)
    assert counts.tolist() == [45866, 944, 3788, 415, 8]

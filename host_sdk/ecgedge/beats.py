"""Beat features for the int8 beat classifier: the one reference that training, validation and the
firmware's C port all follow.

Everything here is pure numpy and deterministic. The float32 steps use only +, -, *, / and
comparisons in the order written below, and every sum is an integer sum, so a C implementation
following this text reproduces the features bit for bit before it quantizes them.

Per beat the model gets two inputs, ``window`` and ``rr``; ``diff`` (steps 6-7) is an optional
third input, used only by a model whose card lists a ``diff`` input (the shipped
``models/beat_tx.tflite`` does not: a firmware need not compute it):

``window`` — 256 float32 values, the **filtered** ECG around the R peak, amplitude-normalised
    1. Filter the lead with the firmware's conditioning filter (`ecgedge.core.Filter(fs, mains)`:
       0.5 Hz high-pass, mains notch, 40 Hz low-pass; float32, causal). Its group delay
       ``D = floor(Filter.delay_samples + 0.5)`` samples (4 at 360 Hz) is compensated: a beat
       whose R peak is at raw sample ``r`` is centred on filtered sample ``c = r + D``.
    2. Sample the window at the model rate ``MODEL_FS_HZ`` = 360 Hz: value k (0..255) is the
       filtered signal at position ``p_k = c + (k - WINDOW_PRE) * (fs / 360)``, computed in
       float64. At fs = 360 Hz ``p_k`` is the integer ``c + k - 90``: plain indexing, window =
       filtered[c-90 : c+166] (250 ms before the R peak, 458 ms after it). At other rates linear
       interpolation in float32: ``i = floor(p_k)``, ``f = float32(p_k - i)``,
       ``w_k = x[i] + f * (x[i+1] - x[i])``. Positions outside the filtered signal read as 0.0.
    3. R amplitude of beat n: ``A_n = max |w_k|`` over k = 72..108 (R peak +-50 ms, in mV).
    4. Scale of beat n: ``S_n = max(median(A_{n-8}, ..., A_n), 0.05)`` — the lower median
       (element ``(m-1)//2`` of the ascending sort) of the amplitudes of the last 9 beats
       including this one; the first beats of a stream use the m < 9 beats there are.
    5. ``window_k = clip(w_k / S_n, -4, 4)`` (float32 division, no reciprocal).

``diff`` — 256 float32 values, the beat minus the patient's running average beat (template):
    6. Template before beat n, ``T_n`` (256 float32): ``T_0 = window_0`` (the first beat's
       normalised window, step 5); after beat n, ``T_{n+1} = T_n + (window_n - T_n) * 0.03125``
       (exponential mean over about 32 beats, every beat whatever its class, float32, this
       exact order of operations: subtract, multiply by the power of two, add).
    7. ``diff_n = clip(window_n - T_n, -4, 4)`` (float32). The first beat of a stream has
       ``diff_0 = 0``. Causal: beat n uses beats 0..n only.

``rr`` — 9 float32 RR-interval features. Intervals are integers in samples at the record's rate:
    ``I_n = r_n - r_{n-1}``. Beat n uses
        pre  = I_n            (for the first beat of a stream: I_{n+1}; for a lone beat: round(fs))
        post = I_{n+1}        (needs the next beat: one beat of delay; the last beat uses pre)
        local sum  L, count nl: intervals I_k, k = max(1, n-7)..n (the first beat, which has
            none: L = pre, nl = 1)
        long sum   G, count ng: intervals I_k, k = max(1, n-63)..n (first beat: G = pre, ng = 1)
        irregularity sum V, count nv: sum of |I_k - I_{k-1}| for k = max(2, n-6)..n, i.e. the
            consecutive pairs inside the local intervals (when there is none: V = 0, nv = 1)
    and the features are (``F(x)`` is conversion to float32, every product an int64 product):
        0 pre_s    = F(pre) / F(fs)                       seconds, clipped to [0, 3]
        1 post_s   = F(post) / F(fs)                      seconds, clipped to [0, 3]
        2 local_s  = F(L) / F(nl) / F(fs)                 seconds, clipped to [0, 3]
        3 pre/local   = F(pre * nl) / F(L)                clipped to [0, 4]
        4 post/local  = F(post * nl) / F(L)               clipped to [0, 4]
        5 pre/post    = F(pre) / F(post)                  clipped to [0, 4]
        6 pre/long    = F(pre * ng) / F(G)                clipped to [0, 4]
        7 local/long  = F(L * ng) / F(G * nl)             clipped to [0, 4]
        8 irregular   = F(V * nl) / F(L * nv)             clipped to [0, 4]
    (the premature-beat cue for S beats is pre/local < 1 with post/local > 1).

Quantization to the model's int8 inputs (`quantize`): ``q = clamp(round(x / scale) + zero_point,
-128, 127)``, float32 division, rounding half away from zero (TFLite's ``AffineQuantize``); the
scale and zero point are the input tensor's, listed in the model card.

Classes (AAMI, per ``../shared/data/README.md``): 0 N = N L R e j; 1 S = A a J S; 2 V = V E;
3 F = F; 4 Q = / f Q. Other beat symbols (B r n ?) stay in the RR sequence but carry no class (-1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "AAMI_CLASSES",
    "BEAT_SYMBOLS",
    "DS1",
    "DS2",
    "MODEL_FS_HZ",
    "N_RR_FEATURES",
    "PACED_RECORDS",
    "RR_FEATURE_NAMES",
    "WINDOW_LEN",
    "WINDOW_PRE",
    "BeatFeatures",
    "aami_class",
    "amplitude_scales",
    "beat_features",
    "template_diffs",
    "filter_delay",
    "normalize_windows",
    "quantize",
    "r_amplitudes",
    "reference_beats",
    "rr_features",
    "sample_windows",
]

MODEL_FS_HZ = 360.0
WINDOW_PRE = 90        # samples before the R peak (250 ms at 360 Hz); the R peak is sample 90
WINDOW_LEN = 256       # 90 before, the R sample, 165 after
AMP_HALF_WIDTH = 18    # +-50 ms around the R peak for the amplitude
AMP_HISTORY = 9        # beats in the running median of amplitudes
AMP_FLOOR_MV = 0.05    # smallest scale, mV
WINDOW_CLIP = 4.0
TEMPLATE_RATE = 0.03125  # 1/32: weight of the newest beat in the running template (step 6)
RR_LOCAL_N = 8
RR_LONG_N = 64
RR_SECONDS_MAX = 3.0
RR_RATIO_MAX = 4.0

RR_FEATURE_NAMES = ("pre_s", "post_s", "local_s", "pre_local", "post_local", "pre_post",
                    "pre_long", "local_long", "irregular")
N_RR_FEATURES = len(RR_FEATURE_NAMES)

AAMI_CLASSES = ("N", "S", "V", "F", "Q")
_CLASS_OF = {**{s: 0 for s in "NLRej"}, **{s: 1 for s in "AaJS"}, **{s: 2 for s in "VE"},
             "F": 3, **{s: 4 for s in "/fQ"}}
BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")  # WFDB beat symbols; the rest are not beats

# de Chazal 2004 inter-patient split of MIT-BIH; paced records are left out of both.
DS1 = ("101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122", "124", "201",
       "203", "205", "207", "208", "209", "215", "220", "223", "230")
DS2 = ("100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210", "212", "213",
       "214", "219", "221", "222", "228", "231", "232", "233", "234")
PACED_RECORDS = ("102", "104", "107", "217")

F32 = np.float32
FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


def aami_class(symbol: str) -> int:
    """AAMI class index (0 N, 1 S, 2 V, 3 F, 4 Q) of a WFDB beat symbol; -1 for anything else."""
    return _CLASS_OF.get(symbol, -1)


def reference_beats(samples: Sequence[int] | IntArray,
                    symbols: Sequence[str]) -> tuple[IntArray, npt.NDArray[np.int8]]:
    """Beat positions and AAMI classes from reference annotations.

    Every beat symbol (`BEAT_SYMBOLS`) is kept, in time order, since all beats shape the RR
    sequence; non-beat annotations (rhythm, noise, VF markers...) are dropped. Beats without an
    AAMI class (B r n ?) get class -1.
    """
    s = np.asarray(samples, dtype=np.int64)
    if s.shape[0] != len(symbols):
        raise ValueError(f"{s.shape[0]} samples but {len(symbols)} symbols")
    keep = np.fromiter((y in BEAT_SYMBOLS for y in symbols), dtype=bool, count=len(symbols))
    pos = s[keep]
    cls = np.fromiter((aami_class(y) for y, k in zip(symbols, keep) if k), dtype=np.int8,
                      count=int(keep.sum()))
    order = np.argsort(pos, kind="stable")
    return pos[order], cls[order]


def filter_delay(delay_samples: float) -> int:
    """The integer delay D used to centre windows: floor(delay + 0.5)."""
    return int(np.floor(float(delay_samples) + 0.5))


def sample_windows(filtered: npt.ArrayLike, fs_hz: float, r_peaks: npt.ArrayLike,
                   delay: int, margin: int = 0) -> FloatArray:
    """Raw (un-normalised) windows, shape (n, WINDOW_LEN), float32 mV; see the module docs, step 2.

    Args:
        filtered: the whole filtered lead (float32, as `ecgedge.core.Filter.process` returns).
        fs_hz: its sampling rate.
        r_peaks: R-peak sample indices of the raw signal.
        delay: the integer filter delay D (`filter_delay`).
        margin: extra samples on each side (training uses them to shift windows by a few
            samples); the result is then (n, WINDOW_LEN + 2 * margin), and its columns
            margin..margin+WINDOW_LEN-1 are the model's window.
    """
    x = np.asarray(filtered, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"filtered must be one-dimensional, got shape {x.shape}")
    r = np.asarray(r_peaks, dtype=np.int64).reshape(-1)
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    k = np.arange(WINDOW_LEN + 2 * margin, dtype=np.int64) - WINDOW_PRE - margin
    centre = r + int(delay)
    padded = np.concatenate([x, np.zeros(1, np.float32)])  # index x.size reads as 0.0
    n_x = x.size

    def read(idx: IntArray) -> FloatArray:
        out_of_range = (idx < 0) | (idx >= n_x)
        return padded[np.where(out_of_range, n_x, idx)]

    if float(fs_hz) == MODEL_FS_HZ:
        return read(centre[:, None] + k[None, :])
    p = centre[:, None].astype(np.float64) + k[None, :].astype(np.float64) * (float(fs_hz)
                                                                              / MODEL_FS_HZ)
    i0 = np.floor(p).astype(np.int64)
    frac = (p - i0).astype(np.float32)
    x0 = read(i0)
    x1 = read(i0 + 1)
    return (x0 + frac * (x1 - x0)).astype(np.float32)


def r_amplitudes(windows: FloatArray) -> FloatArray:
    """A_n: max |w| over the R peak +-50 ms of each raw window (module docs, step 3)."""
    w = np.asarray(windows, dtype=np.float32)
    seg = w[:, WINDOW_PRE - AMP_HALF_WIDTH: WINDOW_PRE + AMP_HALF_WIDTH + 1]
    return np.abs(seg).max(axis=1).astype(np.float32)


def amplitude_scales(amplitudes: FloatArray) -> FloatArray:
    """S_n: lower running median of the last `AMP_HISTORY` amplitudes, floored (step 4)."""
    a = np.asarray(amplitudes, dtype=np.float32).reshape(-1)
    n = a.size
    out = np.empty(n, dtype=np.float32)
    head = min(n, AMP_HISTORY - 1)
    for i in range(head):
        srt = np.sort(a[: i + 1])
        out[i] = srt[i // 2]
    if n >= AMP_HISTORY:
        view = np.lib.stride_tricks.sliding_window_view(a, AMP_HISTORY)
        out[AMP_HISTORY - 1:] = np.sort(view, axis=1)[:, (AMP_HISTORY - 1) // 2]
    return np.maximum(out, F32(AMP_FLOOR_MV))


def normalize_windows(windows: FloatArray, scales: FloatArray) -> FloatArray:
    """clip(w / S, -4, 4) in float32 (step 5)."""
    w = np.asarray(windows, dtype=np.float32)
    s = np.asarray(scales, dtype=np.float32).reshape(-1, 1)
    return np.clip(w / s, F32(-WINDOW_CLIP), F32(WINDOW_CLIP)).astype(np.float32)


def template_diffs(windows: FloatArray) -> FloatArray:
    """diff_n = clip(window_n - T_n, -4, 4) with the running template T (steps 6 and 7).

    `windows` are normalised windows of consecutive beats of one stream, shape (n, L) (L may
    include a training margin: every column is treated alike).
    """
    w = np.asarray(windows, dtype=np.float32)
    out = np.empty_like(w)
    if w.shape[0] == 0:
        return out
    t = w[0].copy()
    rate = F32(TEMPLATE_RATE)
    lo, hi = F32(-WINDOW_CLIP), F32(WINDOW_CLIP)
    for i in range(w.shape[0]):
        d = w[i] - t
        out[i] = np.clip(d, lo, hi)
        t = t + d * rate
    return out


def _window_sums(v: IntArray, first: int, width: int) -> tuple[IntArray, IntArray]:
    """For every i: sum and count of v[k] for k in max(first, i-width+1) .. i (exact integers)."""
    c = np.concatenate([[0], np.cumsum(v)])
    idx = np.arange(v.size)
    lo = np.maximum(first, idx - width + 1)
    cnt = np.maximum(idx + 1 - lo, 0)
    return np.where(cnt > 0, c[idx + 1] - c[np.minimum(lo, v.size)], 0), cnt


def rr_features(r_peaks: npt.ArrayLike, fs_hz: float) -> FloatArray:
    """The 9 RR features of every beat, shape (n, N_RR_FEATURES), float32 (module docs).

    With the real intervals I_k = r_k - r_{k-1} (k = 1..n-1), beat i uses the local intervals
    k = max(1, i-7)..i, the long ones k = max(1, i-63)..i, and the irregularity pairs
    (I_k, I_{k-1}) for k = max(2, i-6)..i; empty sets fall back as the module docs say.
    """
    r = np.asarray(r_peaks, dtype=np.int64).reshape(-1)
    n = r.size
    if n == 0:
        return np.zeros((0, N_RR_FEATURES), dtype=np.float32)
    if n > 1 and np.any(np.diff(r) <= 0):
        raise ValueError("R peaks must be strictly increasing")
    fs = F32(fs_hz)
    iv = np.zeros(n, dtype=np.int64)          # iv[k] = I_k; iv[0] is no interval
    iv[1:] = np.diff(r)
    if n == 1:
        pre = np.array([int(np.floor(float(fs_hz) + 0.5))], dtype=np.int64)
    else:
        pre = iv.copy()
        pre[0] = iv[1]                         # the first beat borrows I_1
    post = np.concatenate([iv[1:], pre[-1:]])  # I_{i+1}; the last beat uses its pre
    L, nl = _window_sums(iv, 1, RR_LOCAL_N)
    G, ng = _window_sums(iv, 1, RR_LONG_N)
    ad = np.zeros(n, dtype=np.int64)
    if n > 2:
        ad[2:] = np.abs(np.diff(iv[1:]))       # ad[k] = |I_k - I_{k-1}|, k >= 2
    V, nv = _window_sums(ad, 2, RR_LOCAL_N - 1)
    L = np.where(nl > 0, L, pre)
    G = np.where(ng > 0, G, pre)
    nl = np.maximum(nl, 1)
    ng = np.maximum(ng, 1)
    nv = np.maximum(nv, 1)                     # V is already 0 when there is no pair

    def f(v: IntArray) -> FloatArray:
        return np.asarray(v, dtype=np.int64).astype(np.float32)

    out = np.empty((n, N_RR_FEATURES), dtype=np.float32)
    out[:, 0] = f(pre) / fs
    out[:, 1] = f(post) / fs
    out[:, 2] = f(L) / f(nl) / fs
    out[:, 3] = f(pre * nl) / f(L)
    out[:, 4] = f(post * nl) / f(L)
    out[:, 5] = f(pre) / f(post)
    out[:, 6] = f(pre * ng) / f(G)
    out[:, 7] = f(L * ng) / f(G * nl)
    out[:, 8] = f(V * nl) / f(L * nv)
    out[:, :3] = np.clip(out[:, :3], F32(0.0), F32(RR_SECONDS_MAX))
    out[:, 3:] = np.clip(out[:, 3:], F32(0.0), F32(RR_RATIO_MAX))
    return out


@dataclass(frozen=True)
class BeatFeatures:
    """Model inputs of a sequence of beats.

    Attributes:
        window: (n, WINDOW_LEN) float32, normalised windows.
        rr: (n, N_RR_FEATURES) float32 RR features.
        scale: (n,) float32 amplitude scale S_n used for each window, mV.
        diff: (n, WINDOW_LEN) float32, window minus the running template (steps 6-7).
    """

    window: FloatArray
    rr: FloatArray
    scale: FloatArray
    diff: FloatArray


def beat_features(filtered: npt.ArrayLike, fs_hz: float, r_peaks: npt.ArrayLike,
                  delay: int) -> BeatFeatures:
    """Both model inputs for every beat of one stream.

    Args:
        filtered: the filtered lead (`ecgedge.core.Filter(fs, mains).process(raw_mv)`).
        fs_hz: sampling rate of the lead.
        r_peaks: all beats of the stream, ascending raw sample indices (reference annotations or
            the detector's output).
        delay: `filter_delay(Filter.delay_samples)`.
    """
    raw = sample_windows(filtered, fs_hz, r_peaks, delay)
    scales = amplitude_scales(r_amplitudes(raw))
    win = normalize_windows(raw, scales)
    return BeatFeatures(win, rr_features(r_peaks, fs_hz), scales, template_diffs(win))


def _round_half_away(v: FloatArray) -> FloatArray:
    t = np.trunc(v)
    frac = v - t  # exact for float32
    return t + np.where(np.abs(frac) >= F32(0.5), np.sign(v), F32(0.0)).astype(v.dtype)


def quantize(x: npt.ArrayLike, scale: float, zero_point: int) -> npt.NDArray[np.int8]:
    """float32 -> int8 as TFLite's AffineQuantize: clamp(round(x / scale) + zp, -128, 127)."""
    v = np.asarray(x, dtype=np.float32) / F32(scale)
    q = _round_half_away(v.astype(np.float32)).astype(np.int64) + int(zero_point)
    return np.clip(q, -128, 127).astype(np.int8)

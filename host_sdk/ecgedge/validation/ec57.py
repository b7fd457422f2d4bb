"""Beat-by-beat comparison of a detector against reference annotations, per ANSI/AAMI EC57.

The pairing follows PhysioNet's `bxb` (the reference implementation of EC38/EC57):

- annotations are walked in time order; a test beat and a reference beat are paired when they are
  within the match window (150 ms) and each is a better match than the other's next annotation;
- only beat annotations count (`BEAT_SYMBOLS`); rhythm, noise and other labels are skipped;
- test beats inside reference-marked ventricular flutter/fibrillation (between `[` and `]`) are
  not counted, since EC57 excludes VF from QRS detection statistics;
- scoring starts at `start` (EC57's 5-minute learning period by default); a test beat just before
  the start may pair with the first reference beat, as in bxb.

Record-level counts add up into gross statistics: Se = TP / (TP + FN), +P = TP / (TP + FP).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")
VF_ON, VF_OFF = "[", "]"
MATCH_WINDOW_S = 0.150
LEARNING_PERIOD_S = 300.0

_HUGE = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Reference:
    """Reference beats of one record, and the VF episodes in which test beats are not counted."""

    beats: npt.NDArray[np.int64]
    vf_episodes: tuple[tuple[int, int], ...] = ()

    @classmethod
    def from_annotations(cls, samples: Sequence[int] | npt.NDArray[np.integer],
                         symbols: Sequence[str], end: int) -> Reference:
        """Build from WFDB annotation samples and symbols; `end` closes an unterminated VF."""
        beats: list[int] = []
        vf: list[tuple[int, int]] = []
        vf_on: int | None = None
        for s, sym in zip(samples, symbols):
            if vf_on is not None:
                if sym == VF_OFF:
                    vf.append((vf_on, int(s)))
                    vf_on = None
                continue  # bxb ignores every annotation inside VF
            if sym == VF_ON:
                vf_on = int(s)
            elif sym in BEAT_SYMBOLS:
                beats.append(int(s))
        if vf_on is not None:
            vf.append((vf_on, end))
        return cls(np.asarray(beats, dtype=np.int64), tuple(vf))

    def in_vf(self, t: int) -> bool:
        return any(on <= t <= off for on, off in self.vf_episodes)


@dataclass(frozen=True)
class Counts:
    """QRS detection counts with Se, +P and F1 in percent (NaN when undefined)."""

    tp: int
    fp: int
    fn: int

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    @staticmethod
    def _pct(num: int, den: int) -> float:
        return 100.0 * num / den if den else float("nan")

    @property
    def se(self) -> float:
        return self._pct(self.tp, self.tp + self.fn)

    @property
    def ppv(self) -> float:
        return self._pct(self.tp, self.tp + self.fp)

    @property
    def f1(self) -> float:
        return self._pct(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    def as_dict(self, digits: int = 2) -> dict[str, float | int]:
        d: dict[str, float | int] = dict(asdict(self))
        for k in ("se", "ppv", "f1"):
            d[k] = round(getattr(self, k), digits)
        return d


@dataclass(frozen=True)
class Comparison:
    """Result of comparing one record: counts plus the unpaired annotations (sample indices)."""

    counts: Counts
    false_negatives: npt.NDArray[np.int64]
    false_positives: npt.NDArray[np.int64]
    pairs: npt.NDArray[np.int64]  # (n, 2): reference sample, test sample


def compare(ref: Reference, test: Iterable[int] | npt.NDArray[np.integer], fs_hz: float,
            start: int = 0, end: int | None = None,
            window_s: float = MATCH_WINDOW_S) -> Comparison:
    """Compare test beat positions with the reference, the way bxb does.

    Args:
        ref: reference beats and VF episodes.
        test: detected beat positions, sample indices, ascending.
        fs_hz: sampling rate, to size the match window.
        start: first sample of the scored period (EC57: 5 minutes in).
        end: last sample of the scored period (default: the later of the last annotations).
        window_s: match window (EC57: 150 ms).
    """
    dt = int(round(window_s * fs_hz))
    R = np.asarray(ref.beats, dtype=np.int64)
    D = np.sort(np.asarray(list(test) if not isinstance(test, np.ndarray) else test,
                           dtype=np.int64))
    if end is None:
        end = int(max(R[-1] if R.size else 0, D[-1] if D.size else 0))

    # Reference stream, starting at the first beat >= start.
    ri = int(np.searchsorted(R, start, side="left"))

    def ref_at(i: int) -> int:
        return int(R[i]) if i < R.size else _HUGE

    # Test stream: t is the last test beat before start, t' the first at or after it.
    tj = int(np.searchsorted(D, start, side="left"))  # index of t'

    def test_at(j: int) -> int:
        return int(D[j]) if 0 <= j < D.size else (_HUGE if j >= D.size else -_HUGE)

    tp = fp = fn = 0
    fns: list[int] = []
    fps: list[int] = []
    pairs: list[tuple[int, int]] = []

    def pair(T: int, t: int) -> None:
        nonlocal tp
        tp += 1
        pairs.append((T, t))

    def extra_test(t: int) -> None:
        nonlocal fp
        if not ref.in_vf(t):
            fp += 1
            fps.append(t)

    def extra_ref(T: int) -> None:
        nonlocal fn
        fn += 1
        fns.append(T)

    T, Tn = ref_at(ri), ref_at(ri + 1)
    t, tn = test_at(tj - 1), test_at(tj)
    j = tj - 1  # index of t
    i = ri      # index of T

    # Learning-period boundary, as in bxb: a test beat just before `start` may match the first
    # reference beat; otherwise a test beat in the first window that fits the next reference
    # better is skipped without being counted.
    if T != _HUGE and t != -_HUGE and T - t < abs(T - tn) and T - t <= dt:
        pair(T, t)
        i += 1
        j += 1
    else:
        j += 1
        if T != _HUGE and test_at(j) != _HUGE and test_at(j) - start <= dt and \
                abs(T - test_at(j + 1)) < abs(T - test_at(j)):
            j += 1

    while True:
        T, Tn = ref_at(i), ref_at(i + 1)
        t, tn = test_at(j), test_at(j + 1)
        if not (T <= end or t <= end) or (T == _HUGE and t == _HUGE):
            break
        if t < T:
            if T - t <= dt and T - t < abs(T - tn):
                pair(T, t)
                i += 1
                j += 1
            else:
                if t <= end:
                    extra_test(t)
                j += 1
        else:
            if t - T <= dt and t - T < abs(t - Tn):
                pair(T, t)
                i += 1
                j += 1
            else:
                if T <= end:
                    extra_ref(T)
                i += 1

    return Comparison(
        Counts(tp, fp, fn),
        np.asarray(fns, dtype=np.int64),
        np.asarray(fps, dtype=np.int64),
        np.asarray(pairs, dtype=np.int64).reshape(-1, 2),
    )

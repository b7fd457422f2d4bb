"""The firmware's signal core, run on the host.

`Filter` and `QrsDetector` wrap the very C code the device runs (`firmware/src/core/`, compiled
into `ecgedge._core`), so a lab script gets bit-for-bit the watch's output. Both are streaming
objects: feeding a record in chunks of any sizes gives exactly the output of one call.

Example:
    >>> import numpy as np, wfdb
    >>> from ecgedge.core import QrsDetector
    >>> rec = wfdb.rdrecord("../shared/data/mitdb/100", channels=[0])
    >>> det = QrsDetector(rec.fs, mains_hz=60)
    >>> peaks = np.concatenate([det.process(rec.p_signal[:, 0]), det.flush()])
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from . import _core

__all__ = ["BeatClassifier", "Beats", "Filter", "HeadTrainer", "QrsDetector", "Quality"]

MIN_FS_HZ = 125.0
MAX_FS_HZ = 1000.0


class Quality:
    """Values of the per-beat signal-quality flag (mirrors `ecg_qrs_quality_t`)."""

    GOOD = 0
    NOISY = 1
    UNUSABLE = 2


class Beats(NamedTuple):
    """Beats decided during one call.

    Attributes:
        index: R-peak sample indices of the raw stream.
        quality: signal-quality flags (see `Quality`).
        decided_at: index of the input sample whose arrival decided each beat; the decision latency
            of a beat is `(decided_at - index) / fs_hz` seconds.
    """

    index: npt.NDArray[np.int64]
    quality: npt.NDArray[np.uint8]
    decided_at: npt.NDArray[np.int64]


def _check_rate(fs_hz: float) -> float:
    fs = float(fs_hz)
    if not (MIN_FS_HZ <= fs <= MAX_FS_HZ):
        raise ValueError(f"fs_hz={fs_hz!r} is outside the supported {MIN_FS_HZ:g}..{MAX_FS_HZ:g} Hz")
    return fs


def _mains(mains_hz: int | None) -> int:
    if mains_hz is None:
        return 0
    if mains_hz not in (50, 60):
        raise ValueError(f"mains_hz={mains_hz!r}: use 50, 60, or None for no notch")
    return int(mains_hz)


def _as_samples(chunk: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Validate one chunk of samples (millivolts) and return it as contiguous float32."""
    arr = np.asarray(chunk)
    if arr.dtype.kind not in "fiu":
        raise ValueError(
            f"samples must be a real numeric array (float or integer), got dtype {arr.dtype}"
        )
    if arr.ndim != 1:
        raise ValueError(
            f"samples must be one-dimensional (one lead), got shape {arr.shape}; "
            "pass one column, e.g. signal[:, 0]"
        )
    if arr.size == 0:
        raise ValueError("samples is empty: pass at least one sample")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(out).all():
        bad = int(np.flatnonzero(~np.isfinite(out))[0])
        raise ValueError(f"samples contain NaN or infinity (first at position {bad})")
    return out


class Filter:
    """Streaming conditioning filter (`ecg_filter`): baseline high-pass, mains notch, low-pass.

    Args:
        fs_hz: sampling rate, 125 to 1000 Hz.
        mains_hz: 50, 60, or None for no mains notch.
        **params: `highpass_hz` (default 0.5), `lowpass_hz` (40), `notch_q` (10).

    Attributes:
        delay_samples: group delay at 10 Hz in samples; a feature at raw index i appears in the
            output at about i + delay_samples.
    """

    def __init__(self, fs_hz: float, mains_hz: int | None = 50, **params: float) -> None:
        self.fs_hz = _check_rate(fs_hz)
        self.mains_hz = mains_hz
        self._c = _core.Filter(self.fs_hz, _mains(mains_hz), params)

    @property
    def delay_samples(self) -> float:
        return float(self._c.delay_samples)

    def process(self, chunk: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Filter the next chunk of samples; returns float32 of the same length."""
        x = _as_samples(chunk)
        y = np.empty_like(x)
        self._c.process(x, y)
        return y

    def reset(self) -> None:
        """Forget past input (as if freshly constructed)."""
        self._c.reset()


class QrsDetector:
    """Real-time QRS detector (`ecg_filter` followed by `ecg_qrs`), fed raw ECG in millivolts.

    Args:
        fs_hz: sampling rate, 125 to 1000 Hz.
        mains_hz: 50, 60, or None; selects the conditioning filter's notch.
        **params: tuning fields of `ecg_qrs_cfg_t` or `ecg_filter_cfg_t` by name (see
            `firmware/include/ecg/ecg_qrs.h`); the defaults are the validated settings.

    `process` returns R-peak positions as absolute sample indices of the stream fed so far
    (the filter's delay is already compensated). Beats are decided with a bounded latency, so the
    beats of a chunk's last few hundred milliseconds come with the next chunk, or from `flush()` at
    the end of the stream.
    """

    def __init__(self, fs_hz: float, mains_hz: int | None = 50, **params: float) -> None:
        self.fs_hz = _check_rate(fs_hz)
        self.mains_hz = mains_hz
        self._c = _core.QrsDetector(self.fs_hz, _mains(mains_hz), params)

    @property
    def delay_samples(self) -> float:
        """Group delay of the conditioning filter at 10 Hz, in samples."""
        return float(self._c.delay_samples)

    @property
    def state_bytes(self) -> dict[str, int]:
        """Sizes of the C state structs this detector uses (what a device must reserve)."""
        return dict(self._c.state_bytes)

    @staticmethod
    def _beats(raw: tuple[bytes, bytes]) -> Beats:
        pairs = np.frombuffer(raw[0], dtype=np.int64).reshape(-1, 2)
        return Beats(pairs[:, 0].copy(), np.frombuffer(raw[1], dtype=np.uint8).copy(),
                     pairs[:, 1].copy())

    def process_beats(self, chunk: npt.ArrayLike) -> Beats:
        """Like `process`, also returning each beat's quality flag (see `Quality`)."""
        return self._beats(self._c.process(_as_samples(chunk)))

    def process(self, chunk: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Feed the next chunk; returns the R-peak indices decided during it (int64)."""
        return self.process_beats(chunk).index

    def flush_beats(self) -> Beats:
        """Like `flush`, with quality flags."""
        return self._beats(self._c.flush())

    def flush(self) -> npt.NDArray[np.int64]:
        """End of stream: decide what is still pending and return those R-peak indices."""
        return self.flush_beats().index

    def reset(self) -> None:
        """Forget all history; indices restart at 0."""
        self._c.reset()


def detect_qrs(signal_mv: npt.ArrayLike, fs_hz: float, mains_hz: int | None = 50,
               **params: float) -> npt.NDArray[np.int64]:
    """Detect R peaks in a whole recording (one lead, millivolts) in one call."""
    det = QrsDetector(fs_hz, mains_hz, **params)
    return np.concatenate([det.process(signal_mv), det.flush()])


# The int8 beat classifier of the same core (ecg_classifier); defined in its own module.
from .classifier import BeatClassifier  # noqa: E402  (re-export as ecgedge.core.BeatClassifier)
from .personalize import HeadTrainer  # noqa: E402  (re-export as ecgedge.core.HeadTrainer)

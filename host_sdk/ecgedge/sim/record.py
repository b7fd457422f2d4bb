"""ECG for the virtual device's front end: a WFDB record as int16 counts, and counts -> mV.

Samples are read as raw ADC values (`wfdb.rdrecord(..., physical=False)`), not as physical units,
so no value goes through floating point: the device's counts are `adc - baseline` (zero-centred,
exact integers) and its gain is `1000 * mV_per_unit / adc_gain` µV per count, taken from the
header (5 µV/count for MIT-BIH: 200 adu/mV). Every lead the device serves must share that gain.

The device turns counts into millivolts as float32 (`ecg_device.h`); `counts_to_mv` is the same
arithmetic in numpy, so a host detector fed `counts_to_mv(counts, gain)` sees the device's floats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import wfdb

__all__ = ["MAX_LEADS", "Record", "SimError", "counts_to_mv", "load_record"]

MAX_LEADS = 8  #: leads a sample block can carry (docs/protocol.md §6.3)

# WFDB's stored value for an invalid sample, per signal file format (WFDB signal(5) manual).
_INVALID = {"8": None, "16": -32768, "61": -32768, "80": -128, "160": -32768, "212": -2048,
            "310": -512, "311": -512, "24": -8388608, "32": -2147483648, "508": -128,
            "516": -32768, "524": -8388608}
_TO_MV = {"v": 1e3, "mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "nv": 1e-6}


class SimError(Exception):
    """The virtual device cannot be set up as asked; the message says what to do."""


@dataclass(frozen=True)
class Record:
    """A record as the virtual device's front end plays it.

    Attributes:
        name: record name (file stem).
        counts: (n, leads) int16, `adc - baseline` per lead.
        fs_hz: sampling rate, Hz (an integer number of Hz).
        gain_uv_per_count: µV per count, as the float32 value the device reports.
        channels: the record's signal indices served, in lead order.
        sig_names: their signal names.
        invalid_samples: invalid samples, replaced by the previous valid value (leading
            ones by the first valid value).
        clipped_samples: samples outside int16 after removing the baseline, clipped.
    """

    name: str
    counts: npt.NDArray[np.int16]
    fs_hz: int
    gain_uv_per_count: float
    channels: tuple[int, ...]
    sig_names: tuple[str, ...]
    invalid_samples: int = 0
    clipped_samples: int = 0

    @property
    def leads(self) -> int:
        return int(self.counts.shape[1])


def counts_to_mv(counts: npt.ArrayLike, gain_uv_per_count: float) -> npt.NDArray[np.float32]:
    """Counts to millivolts exactly as the device does: float32(count) * float32(gain / 1000)."""
    mv_per_count = np.float32(gain_uv_per_count) / np.float32(1000.0)
    return np.asarray(counts).astype(np.float32) * mv_per_count


def _record_base(path: str | Path) -> Path:
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".hea", ".dat") else p


def load_record(path: str | Path, channels: Sequence[int] | None = None) -> Record:
    """Read a WFDB record (header + signal files) as int16 counts for the virtual device.

    Args:
        path: record path without extension, e.g. ../shared/data/mitdb/100 (.hea/.dat accepted).
        channels: signal indices to serve as leads 0, 1, ...; default: the first 8 signals.

    Raises:
        SimError: unreadable record, bad channels, non-voltage units, leads with different gains,
            or a sampling rate the device cannot run (not an integer in 125..1000 Hz).
    """
    base = _record_base(path)
    if not base.with_suffix(".hea").is_file():
        raise SimError(f"--record {path}: no WFDB header {base.with_suffix('.hea')}; give the "
                       "record path without extension, e.g. ../shared/data/mitdb/100")
    try:
        header = wfdb.rdheader(str(base))
    except Exception as exc:  # wfdb raises assorted types for malformed headers
        raise SimError(f"--record {path}: cannot read its header ({exc})") from exc
    n_sig = int(header.n_sig or 0)
    chans = list(range(min(n_sig, MAX_LEADS))) if channels is None else [int(c) for c in channels]
    if not chans or len(chans) > MAX_LEADS or any(not 0 <= c < n_sig for c in chans):
        raise SimError(f"--channels {' '.join(map(str, chans))}: record {base.name} has {n_sig} "
                       f"signal(s); give 1 to {MAX_LEADS} indices in 0..{n_sig - 1}")
    fs = float(header.fs)
    if fs != int(fs) or not 125 <= fs <= 1000:
        raise SimError(f"record {base.name} is sampled at {fs:g} Hz; the device runs at whole "
                       "rates from 125 to 1000 Hz: resample the record first")
    try:
        rec = wfdb.rdrecord(str(base), channels=chans, physical=False)
    except Exception as exc:
        raise SimError(f"record {base.name}: cannot read its signal ({exc})") from exc
    if rec.d_signal is None or rec.d_signal.shape[0] == 0:
        raise SimError(f"record {base.name} has no samples")

    gains = []
    for i, c in enumerate(chans):
        units = (rec.units[i] if rec.units else None) or "mV"
        mv_per_unit = _TO_MV.get(units.strip().lower())
        if mv_per_unit is None:
            raise SimError(f"record {base.name} signal {c} is in {units!r}, not a voltage; "
                           "choose ECG signals with --channels")
        adc_gain = float(rec.adc_gain[i]) or 200.0  # WFDB: 0 means the default, 200
        gains.append(float(np.float32(1000.0 * mv_per_unit / adc_gain)))
    if len(set(gains)) != 1:
        raise SimError(f"record {base.name}: signals {chans} have different gains "
                       f"({', '.join(f'{g:g}' for g in gains)} µV/count) but the device has one; "
                       "choose signals with --channels")

    d = np.array(rec.d_signal, dtype=np.int64)
    invalid = 0
    for i in range(d.shape[1]):
        bad_value = _INVALID.get(str(rec.fmt[i]).split("x")[0]) if rec.fmt else None
        if bad_value is None:
            continue
        bad = d[:, i] == bad_value
        n_bad = int(bad.sum())
        if n_bad == len(bad):
            d[:, i] = int(rec.baseline[i])
        elif n_bad:
            idx = np.where(bad, 0, np.arange(len(bad)))
            np.maximum.accumulate(idx, out=idx)
            idx[: int(np.argmax(~bad))] = int(np.argmax(~bad))  # leading ones: the first valid
            d[:, i] = d[idx, i]
        invalid += n_bad
    d -= np.asarray(rec.baseline, dtype=np.int64)[None, :]
    clipped = int(((d < -32768) | (d > 32767)).sum())
    counts = np.clip(d, -32768, 32767).astype(np.int16)
    return Record(base.name, np.ascontiguousarray(counts), int(fs), gains[0], tuple(chans),
                  tuple(str(n) for n in (rec.sig_name or [])), invalid, clipped)

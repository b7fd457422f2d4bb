"""Recordings of a device stream, and writing them as WFDB, CSV or EDF.

A `Recording` collects the `SampleBlock`s, `Gap`s and `Beat`s of one stream in order and lays them
out on the device's sample counter, from the first item's index to the last one's end. Missing
samples keep their place in time and are marked, never joined over:

- WFDB (``.dat``, ``.hea``, or no extension): ``NAME.hea`` and ``NAME.dat`` (format 16, the
  counts; gain ``1000 / gain_uv_per_count`` adu/mV, baseline 0, so
  ``wfdb.rdrecord(physical=False)`` gives the device's counts back) and ``NAME.beats`` (beat
  annotations N S V F Q; N when the device has no classifier). A gap is the WFDB invalid value
  -32768 in every lead (`rdrecord` gives NaN there), listed in the header comments.
- CSV (``.csv``): ``time_s,lead0_mV,...``, one row per sample instant, time = index / fs (µs
  resolution), millivolts as ``%.9g``. A gap is rows of ``nan``.
- EDF (``.edf``, with `edfio`): one signal per lead, 1 s data records, digital values = counts,
  physical in mV. A gap is digital -32768 and an EDF+ annotation ``gap`` (onset, duration);
  beats are annotations ``beat N`` (etc.).

EDF needs whole data records: a recording that is not a whole number of seconds is padded at the
end with -32768 and annotated ``padding``. A genuine count of -32768 (a clipped sample) reads
back as invalid in WFDB and EDF.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from .device import Beat, Gap, LinkCounters, SampleBlock
from .protocol import BeatClass

__all__ = ["FORMATS", "INVALID", "Recording", "format_for_path", "save", "write_csv"]

INVALID = -32768  #: count marking a missing sample (WFDB format 16 invalid value, EDF digital min)
FORMATS = ("wfdb", "csv", "edf")
_BEAT_SYMBOL: dict[int, str] = {BeatClass.N: "N", BeatClass.S: "S", BeatClass.V: "V",
                                BeatClass.F: "F", BeatClass.Q: "Q"}


@dataclass(frozen=True)
class _Span:
    start: int
    end: int


class Recording:
    """Blocks, gaps and beats of one stream on the sample counter.

    Args:
        fs: sampling rate, Hz.
        leads: number of leads.
        gain_uv_per_count: µV per count.
        sig_names: a name per lead (default lead0, lead1, ...).
    """

    def __init__(self, fs: float, leads: int, gain_uv_per_count: float,
                 sig_names: Sequence[str] | None = None) -> None:
        self.fs = float(fs)
        self.leads = int(leads)
        self.gain_uv_per_count = float(gain_uv_per_count)
        self.sig_names = list(sig_names) if sig_names else [f"lead{i}" for i in range(leads)]
        self.start_index: int | None = None
        self.end_index: int | None = None
        self.blocks: list[tuple[int, npt.NDArray[np.int16]]] = []
        self.gaps: list[_Span] = []
        self.beats: list[Beat] = []
        self.first_host_time: float | None = None
        self.counters: LinkCounters | None = None
        self.ended = False  # a reboot ended the stream

    # ------------------------------------------------------------------ collecting

    def add(self, item: SampleBlock | Gap | Beat | Any) -> None:
        """Add the next stream item (other event types are ignored).

        Raises:
            ValueError: a block that starts before the end of the recording (a restarted
                stream: start a new Recording).
        """
        if isinstance(item, SampleBlock):
            if item.leads != self.leads:
                raise ValueError(f"a {item.leads}-lead block in a {self.leads}-lead recording")
            if self.start_index is None:
                self.start_index = self.end_index = item.first_index
                self.first_host_time = item.host_time
            assert self.end_index is not None
            if item.first_index < self.end_index:
                raise ValueError(f"block at index {item.first_index} overlaps the recording "
                                 f"(which ends at {self.end_index}): the stream restarted")
            if item.first_index > self.end_index:  # a hole no Gap event announced
                self.gaps.append(_Span(self.end_index, item.first_index))
            self.blocks.append((item.first_index, item.counts))
            self.end_index = item.end_index
        elif isinstance(item, Gap):
            if item.stream != "samples":
                return
            if item.end_index is None:  # reboot: the stream is over
                self.ended = True
                return
            if item.start_index is None or item.end_index <= item.start_index:
                return
            if self.start_index is None:
                self.start_index = self.end_index = item.start_index
            assert self.end_index is not None
            start = max(item.start_index, self.end_index)
            if item.end_index > start:
                self.gaps.append(_Span(start, item.end_index))
                self.end_index = item.end_index
        elif isinstance(item, Beat):
            self.beats.append(item)

    @property
    def span(self) -> int:
        """Sample instants covered, gaps included."""
        if self.start_index is None or self.end_index is None:
            return 0
        return self.end_index - self.start_index

    @property
    def missing(self) -> int:
        """Sample instants inside gaps."""
        return sum(g.end - g.start for g in self.gaps)

    def trimmed(self, n: int) -> "Recording":
        """A copy limited to the first `n` instants (beats and gaps cut to match)."""
        out = Recording(self.fs, self.leads, self.gain_uv_per_count, self.sig_names)
        out.first_host_time, out.counters, out.ended = (self.first_host_time, self.counters,
                                                        self.ended)
        if self.start_index is None:
            return out
        stop = self.start_index + n
        out.start_index = self.start_index
        out.end_index = min(self.end_index or 0, stop)
        out.blocks = [(i, c[:stop - i]) for i, c in self.blocks if i < stop]
        out.gaps = [_Span(g.start, min(g.end, stop)) for g in self.gaps if g.start < stop]
        out.beats = [b for b in self.beats if b.index < stop]
        return out

    # ------------------------------------------------------------------ arrays

    @property
    def counts(self) -> npt.NDArray[np.int16]:
        """(span, leads) int16; samples in gaps are `INVALID`."""
        out = np.full((self.span, self.leads), INVALID, dtype=np.int16)
        if self.start_index is not None:
            for i, c in self.blocks:
                out[i - self.start_index:i - self.start_index + len(c)] = c
        return out

    @property
    def valid(self) -> npt.NDArray[np.bool_]:
        """(span,) True where the sample arrived."""
        ok = np.zeros(self.span, dtype=bool)
        if self.start_index is not None:
            for i, c in self.blocks:
                ok[i - self.start_index:i - self.start_index + len(c)] = True
        return ok

    @property
    def mv(self) -> npt.NDArray[np.float64]:
        """(span, leads) float64 millivolts; NaN in gaps."""
        x = self.counts.astype(np.float64) * (self.gain_uv_per_count / 1000.0)
        x[~self.valid] = np.nan
        return x

    @property
    def time_s(self) -> npt.NDArray[np.float64]:
        """(span,) seconds since START_STREAM: index / fs."""
        start = self.start_index or 0
        return (start + np.arange(self.span)) / self.fs

    def gap_list(self) -> list[tuple[int, int]]:
        """Gaps as (first missing index, index where data resumes)."""
        return [(g.start, g.end) for g in self.gaps]

    def save(self, path: str | Path, fmt: str | None = None) -> list[Path]:
        """Write the recording; see `save`."""
        return save(self, path, fmt)


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def format_for_path(path: str | Path, fmt: str | None = None) -> str:
    """The format for `path`: `fmt` if given, else by extension (.csv, .edf, .dat/.hea/none)."""
    if fmt is not None:
        f = fmt.lower()
        if f not in FORMATS:
            raise ValueError(f"format {fmt!r}: use one of {', '.join(FORMATS)}")
        return f
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".edf":
        return "edf"
    if suffix in (".dat", ".hea", ""):
        return "wfdb"
    raise ValueError(f"{path}: cannot tell the format from {suffix!r}; use .dat (WFDB), .csv or "
                     ".edf, or give the format")


def save(rec: Recording, path: str | Path, fmt: str | None = None) -> list[Path]:
    """Write `rec` to `path` as WFDB, CSV or EDF (by `fmt` or the extension).

    Returns:
        The files written.
    """
    kind = format_for_path(path, fmt)
    path = Path(path)
    if rec.span == 0:
        raise ValueError("the recording is empty: nothing to write")
    if kind == "csv":
        return [_write_csv(rec, path)]
    if kind == "edf":
        return [_write_edf(rec, path)]
    return _write_wfdb(rec, path)


def write_csv(rec: Recording, out: str | Path | IO[str]) -> None:
    """CSV to a path or a text file: ``time_s,<lead>_mV,...``; ``nan`` in gaps."""
    cols = np.column_stack([rec.time_s, rec.mv])
    header = ",".join(["time_s", *(f"{n}_mV" for n in rec.sig_names)])
    fmt = ["%.6f"] + ["%.9g"] * rec.leads
    np.savetxt(out, cols, fmt=fmt, delimiter=",", header=header, comments="")


def _write_csv(rec: Recording, path: Path) -> Path:
    write_csv(rec, path)
    return path


def _write_wfdb(rec: Recording, path: Path) -> list[Path]:
    import wfdb

    base = path.with_suffix("") if path.suffix.lower() in (".dat", ".hea") else path
    name, out_dir = base.name, base.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    adc_gain = 1000.0 / rec.gain_uv_per_count  # adu per mV
    comments = [f"ecgedge recording: sample index {rec.start_index} to {rec.end_index} of the "
                f"device stream, gain {rec.gain_uv_per_count:g} uV/count"]
    if rec.gaps:
        comments.append(f"gaps (samples set to the invalid value {INVALID}): "
                        + ", ".join(f"{g.start - (rec.start_index or 0)}-"
                                    f"{g.end - (rec.start_index or 0)}" for g in rec.gaps))
    wfdb.wrsamp(name, fs=rec.fs, units=["mV"] * rec.leads, sig_name=rec.sig_names,
                d_signal=rec.counts.astype(np.int64), fmt=["16"] * rec.leads,
                adc_gain=[adc_gain] * rec.leads, baseline=[0] * rec.leads,
                write_dir=str(out_dir), comments=comments)
    files = [out_dir / f"{name}.hea", out_dir / f"{name}.dat"]
    start = rec.start_index or 0
    beats = [b for b in rec.beats if start <= b.index < start + rec.span]
    if beats:
        wfdb.wrann(name, "beats", np.array([b.index - start for b in beats], dtype=np.int64),
                   symbol=[_BEAT_SYMBOL.get(b.beat_class, "N") for b in beats],
                   write_dir=str(out_dir), fs=rec.fs)
        files.append(out_dir / f"{name}.beats")
    return files


def _write_edf(rec: Recording, path: Path) -> Path:
    try:
        from edfio import Edf, EdfAnnotation, EdfSignal
    except ImportError as exc:
        raise RuntimeError("writing EDF needs edfio: pip install edfio") from exc

    counts = rec.counts
    record_s = 1.0
    per_record = rec.fs * record_s
    if per_record != int(per_record):
        raise ValueError(f"EDF: {rec.fs:g} Hz is not a whole number of samples per second")
    n = len(counts)
    padded = -(-n // int(per_record)) * int(per_record)
    annotations = []
    start = rec.start_index or 0
    for g in rec.gaps:
        annotations.append(EdfAnnotation((g.start - start) / rec.fs, (g.end - g.start) / rec.fs,
                                         "gap"))
    if padded > n:
        counts = np.concatenate([counts, np.full((padded - n, rec.leads), INVALID, np.int16)])
        annotations.append(EdfAnnotation(n / rec.fs, (padded - n) / rec.fs, "padding"))
    for b in rec.beats:
        if start <= b.index < start + n:
            annotations.append(EdfAnnotation((b.index - start) / rec.fs, None,
                                             f"beat {_BEAT_SYMBOL.get(b.beat_class, 'N')}"))
    mv = rec.gain_uv_per_count / 1000.0
    signals = [EdfSignal.from_digital(np.ascontiguousarray(counts[:, i]), rec.fs,
                                      label=rec.sig_names[i][:16], physical_dimension="mV",
                                      physical_range=(INVALID * mv, 32767 * mv),
                                      digital_range=(INVALID, 32767))
               for i in range(rec.leads)]
    edf = Edf(signals, data_record_duration=record_s, annotations=annotations)
    edf.write(path)
    return path

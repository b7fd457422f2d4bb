"""ANSI/AAMI EC57 validation of the QRS detector on a WFDB database.

Each record's chosen channel is read in millivolts, run through `ecgedge.core.detect_qrs` at
the header's sampling rate, and scored with `ec57.compare` (150 ms match window, beat
annotations only, VF episodes excluded) from `start_s` (EC57's 5-minute learning period by
default) to the record's last sample. Counts add up into gross totals and, for Noise Stress Test
records (names like `118e24`, `119e_6`), into totals per signal-to-noise ratio.

Example:
    >>> from ecgedge.validation.qrs import validate_qrs
    >>> report = validate_qrs("../shared/data/mitdb", records=["100", "101"])
    >>> sensitivity_pct = report.gross.se

The beats may come from elsewhere: `run_validation` takes a detect function (record name ->
`Detection`) and does the rest (record selection, progress, scoring with `score_record`).
`validate_qrs` detects on the host; `ecgedge.validation.hil` injects the records into a device
and scores the device's beats through the very same path.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .. import core
from .ec57 import LEARNING_PERIOD_S, Counts, Reference, compare
from .wfdb_db import DEFAULT_ANNOTATOR, DatabaseError, check_lead, find_records, read_annotations, \
    read_lead

__all__ = ["Detection", "QrsReport", "RecordResult", "records_progress", "render_report",
           "run_validation", "score_record", "snr_db", "validate_qrs"]

# Noise Stress Test record names: clean record number, "e" (electrode-motion noise), SNR in dB
# with "_" for a minus sign: 118e24 -> 24 dB, 119e_6 -> -6 dB.
_NST_NAME = re.compile(r"\d+e(_?)(\d+)")


def snr_db(record: str) -> int | None:
    """SNR in dB encoded in a Noise Stress Test record name, or None for other names."""
    m = _NST_NAME.fullmatch(record)
    if m is None:
        return None
    return -int(m.group(2)) if m.group(1) else int(m.group(2))


@dataclass(frozen=True)
class RecordResult:
    """Score of one record.

    Attributes:
        counts: TP, FP, FN over the scored period.
        fs_hz: the record's sampling rate, Hz.
        lead: signal name of the scored channel.
        invalid_samples: samples that were invalid in the record and filled before detection.
    """

    counts: Counts
    fs_hz: float
    lead: str
    invalid_samples: int


def _counts_json(c: Counts) -> dict[str, float | int | None]:
    """Counts as a JSON object, percentages rounded to 2 decimals, undefined ones as null."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in c.as_dict(2).items()}


@dataclass(frozen=True)
class QrsReport:
    """Result of `validate_qrs`.

    Attributes:
        db: the database directory.
        channel: scored channel index.
        start_s: start of the scored period, seconds from each record's start.
        records: record name -> result, in database order.
        skipped: record name -> reason, for records that were not scored.
    """

    db: Path
    channel: int
    start_s: float
    records: dict[str, RecordResult]
    skipped: dict[str, str]

    @property
    def gross(self) -> Counts:
        """Counts summed over all scored records."""
        return sum((r.counts for r in self.records.values()), Counts(0, 0, 0))

    @property
    def by_snr(self) -> dict[int, Counts]:
        """Counts summed per SNR (dB, highest first) over Noise Stress Test records; else empty."""
        out: dict[int, Counts] = {}
        for name, r in self.records.items():
            snr = snr_db(name)
            if snr is not None:
                out[snr] = out.get(snr, Counts(0, 0, 0)) + r.counts
        return dict(sorted(out.items(), reverse=True))

    def as_dict(self) -> dict[str, Any]:
        """`{"gross": {...}, "records": {name: {...}}, "by_snr": {"24": {...}, ...}}`.

        Each `{...}` holds tp, fp, fn and se, ppv, f1 in percent (2 decimals; null if undefined).
        """
        return {
            "gross": _counts_json(self.gross),
            "records": {name: _counts_json(r.counts) for name, r in self.records.items()},
            "by_snr": {str(snr): _counts_json(c) for snr, c in self.by_snr.items()},
        }

    def to_json(self) -> str:
        """`as_dict()` as a JSON document (strict JSON: no NaN)."""
        return json.dumps(self.as_dict(), indent=2, allow_nan=False) + "\n"


@dataclass(frozen=True)
class Detection:
    """Beats detected on one record's lead, and what scoring needs to know about that lead.

    Attributes:
        beats: detected beat positions, sample indices of the record.
        n_samples: the record's length in samples.
        fs_hz: the record's sampling rate, Hz.
        lead: signal name of the lead detected on.
        invalid_samples: samples that were invalid in the record and filled before detection.
    """

    beats: npt.NDArray[np.int64]
    n_samples: int
    fs_hz: float
    lead: str
    invalid_samples: int


#: record name, progress callback (fraction of the record done, 0..1) -> detection
Detect = Callable[[str, Callable[[float], None]], Detection]


def scored_start(n_samples: int, fs_hz: float, start_s: float) -> int | None:
    """First scored sample of a record, or None when the record ends before it."""
    start = int(round(start_s * fs_hz))
    return None if start > n_samples - 1 else start


def score_record(root: Path, name: str, annotator: str, det: Detection,
                 start_s: float) -> RecordResult | str:
    """Score one record's detected beats against its reference annotations (EC57, `compare`).

    Returns:
        the result, or the reason the record is not scored (shorter than the scoring start).
    """
    end = det.n_samples - 1
    start = scored_start(det.n_samples, det.fs_hz, start_s)
    if start is None:
        return f"shorter than the scoring start ({start_s:g} s)"
    ann = read_annotations(root, name, annotator, det.fs_hz)
    ref = Reference.from_annotations(ann.samples, ann.symbols, end)
    scored = compare(ref, det.beats, det.fs_hz, start=start, end=end)
    return RecordResult(scored.counts, det.fs_hz, det.lead, det.invalid_samples)


def records_progress(show: bool) -> Progress:
    """The per-record progress bar of the validation commands (stderr, only on a terminal)."""
    console = Console(stderr=True)
    return Progress(TextColumn("{task.description:>8}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=console, transient=True,
                    disable=not (show and console.is_terminal))


def run_validation(db: str | PathLike[str], detect: Detect, records: Sequence[str] | None = None,
                   channel: int = 0, start_s: float = LEARNING_PERIOD_S,
                   annotator: str = DEFAULT_ANNOTATOR, progress: bool = False) -> QrsReport:
    """Select the records, run `detect` on each and score its beats (see `validate_qrs`).

    Raises:
        DatabaseError: as `validate_qrs`.
    """
    if start_s < 0:
        raise DatabaseError(f"--start {start_s:g}: the scored period cannot start before 0 s")
    root = Path(db)
    found = find_records(root, annotator, records)
    for name in found.names:
        check_lead(root, name, channel, (core.MIN_FS_HZ, core.MAX_FS_HZ))

    results: dict[str, RecordResult] = {}
    skipped = dict(found.skipped)
    bar = records_progress(progress)
    with bar:
        task = bar.add_task("records", total=len(found.names))
        for i, name in enumerate(found.names):
            bar.update(task, description=name)

            def advance(fraction: float, i: int = i) -> None:
                bar.update(task, completed=i + min(max(fraction, 0.0), 1.0))

            result = score_record(root, name, annotator, detect(name, advance), start_s)
            if isinstance(result, str):
                skipped[name] = result
            else:
                results[name] = result
            bar.update(task, completed=i + 1)
    if not results:
        raise DatabaseError(f"nothing to score: every record is shorter than the scoring start "
                            f"({start_s:g} s); pass a smaller --start, e.g. --start 0")
    return QrsReport(root, channel, start_s, results, skipped)


def validate_qrs(db: str | PathLike[str], records: Sequence[str] | None = None,
                 channel: int = 0, start_s: float = LEARNING_PERIOD_S,
                 annotator: str = DEFAULT_ANNOTATOR, mains_hz: int | None = 50,
                 progress: bool = False,
                 detector_params: Mapping[str, float] | None = None) -> QrsReport:
    """Run the QRS detector over a WFDB database and score it the EC57 way.

    Args:
        db: database directory (records from its RECORDS file, else its *.hea files).
        records: record names to score; None for every annotated record of the database.
        channel: signal index to run the detector on (0-based), the same for every record.
        start_s: start of the scored period in seconds (EC57: 300); 0 scores whole records.
        annotator: extension of the reference annotation files.
        mains_hz: mains frequency for the detector's notch: 50, 60, or None for no notch.
        progress: show a progress bar on stderr (only when stderr is a terminal).
        detector_params: tuning fields of the detector by name (`ecg_qrs_cfg_t`), for studies of
            the detector itself; None for the validated defaults.

    Raises:
        DatabaseError: the database, a record or the channel cannot be used (checked on every
            record's header before any detection runs), or no record is long enough to score.
    """
    root = Path(db)

    def detect(name: str, advance: Callable[[float], None]) -> Detection:
        lead = read_lead(root, name, channel)
        n = lead.signal_mv.size
        if scored_start(n, lead.fs_hz, start_s) is None:  # not scored: skip the detection
            beats = np.zeros(0, dtype=np.int64)
        else:
            beats = core.detect_qrs(lead.signal_mv, lead.fs_hz, mains_hz,
                                    **(detector_params or {}))
        return Detection(beats, n, lead.fs_hz, lead.name, lead.invalid_samples)

    return run_validation(root, detect, records, channel, start_s, annotator, progress)


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.2f}"


def _count_cells(c: Counts) -> list[str]:
    return [str(c.tp), str(c.fp), str(c.fn), _pct(c.se), _pct(c.ppv), _pct(c.f1)]


def _count_columns(table: Table) -> None:
    for header in ("TP", "FP", "FN", "Se %", "+P %", "F1 %"):
        table.add_column(header, justify="right")


def _clock(seconds: float) -> str:
    """Seconds as m:ss (with decimals only when needed), e.g. 300 -> "5:00"."""
    minutes, sec = divmod(seconds, 60.0)
    return f"{int(minutes)}:{sec:02.0f}" if sec == int(sec) else f"{int(minutes)}:{sec:06.3f}"


def render_report(report: QrsReport, console: Console) -> None:
    """Print the per-record table with its gross row, then the per-SNR table if there is one."""
    table = Table(title=f"EC57 QRS detection: {report.db.resolve().name}, channel "
                        f"{report.channel}, scored from {_clock(report.start_s)}",
                  box=box.SIMPLE_HEAD)
    table.add_column("Record")
    table.add_column("Lead")
    table.add_column("Hz", justify="right")
    _count_columns(table)
    for name, r in report.records.items():
        table.add_row(name, r.lead, f"{r.fs_hz:g}", *_count_cells(r.counts))
    table.add_section()
    table.add_row("gross", "", "", *_count_cells(report.gross), style="bold")
    console.print(table)

    by_snr = report.by_snr
    if by_snr:
        snr_table = Table(title="Noise Stress Test: by signal-to-noise ratio", box=box.SIMPLE_HEAD)
        snr_table.add_column("SNR dB", justify="right")
        snr_table.add_column("Records", justify="right")
        _count_columns(snr_table)
        for snr, c in by_snr.items():
            n = sum(1 for name in report.records if snr_db(name) == snr)
            snr_table.add_row(f"{snr:+d}" if snr else "0", str(n), *_count_cells(c))
        console.print(snr_table)

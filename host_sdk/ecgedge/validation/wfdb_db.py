"""Records of a WFDB database directory: which ones can be scored, and their signals in millivolts.

A database is a directory of WFDB records (`NAME.hea` header, signal files, `NAME.ANNOTATOR`
annotation files). Records are listed from its `RECORDS` file when there is one, otherwise from
its `*.hea` files. Only records with a reference annotation file can be scored; the others (for
example the Noise Stress Test database's noise records `bw`, `em`, `ma`) are skipped, with the
reason kept so that callers can say which.

Signals are read as physical values and converted to millivolts from each channel's `units`
(V, mV, uV/µV, nV; WFDB's default when a header gives none is mV). Invalid samples (NaN in the
physical signal) hold the last valid value; leading invalid samples take the first valid value,
and a channel with no valid sample at all reads as 0 mV.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import wfdb

__all__ = [
    "DEFAULT_ANNOTATOR",
    "Annotations",
    "DatabaseError",
    "Lead",
    "RecordSet",
    "check_lead",
    "find_records",
    "read_annotations",
    "read_lead",
]

DEFAULT_ANNOTATOR = "atr"

# Factor from each voltage unit to millivolts (keys lower-cased).
_TO_MV = {"v": 1e3, "mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "nv": 1e-6}


class DatabaseError(Exception):
    """A database, record or channel cannot be used as asked; the message says what to do."""


@dataclass(frozen=True)
class RecordSet:
    """Records of a database that can be scored, and those skipped with the reason why.

    Attributes:
        names: scorable record names, in database order.
        skipped: record name -> reason, for listed records that cannot be scored.
    """

    names: tuple[str, ...]
    skipped: dict[str, str]


@dataclass(frozen=True)
class Lead:
    """One channel of one record, in millivolts.

    Attributes:
        signal_mv: samples in millivolts, float64, invalid samples filled (see module docs).
        fs_hz: sampling rate from the header, Hz.
        name: the channel's signal name in the header (e.g. "MLII").
        invalid_samples: how many samples were invalid (NaN) and filled.
    """

    signal_mv: npt.NDArray[np.float64]
    fs_hz: float
    name: str
    invalid_samples: int


@dataclass(frozen=True)
class Annotations:
    """Reference annotations of one record, at the record's sampling rate.

    Attributes:
        samples: annotation positions, sample indices of the record.
        symbols: WFDB annotation symbols ("N", "V", "+", "[", ...), one per position.
    """

    samples: npt.NDArray[np.int64]
    symbols: tuple[str, ...]


def _record_path(db: Path, name: str) -> str:
    return str(db / name)


def _listed_names(db: Path) -> list[str]:
    """Record names from the RECORDS file, or from the *.hea files when there is none."""
    records_file = db / "RECORDS"
    if records_file.is_file():
        lines = records_file.read_text(encoding="utf-8", errors="replace").splitlines()
        return [ln.strip().rstrip("/") for ln in lines if ln.strip() and not ln.startswith("#")]
    return sorted(p.stem for p in db.glob("*.hea"))


def find_records(db: Path, annotator: str = DEFAULT_ANNOTATOR,
                 records: Sequence[str] | None = None) -> RecordSet:
    """List the records of a database that can be scored against `annotator`.

    Args:
        db: the database directory.
        annotator: annotation file extension of the reference (e.g. "atr").
        records: record names asked for explicitly; each must exist and have the annotation
            file. None: every record of the database (`RECORDS`, else every `*.hea`), skipping
            those without the annotation file.

    Raises:
        DatabaseError: the directory is missing or holds no record, an asked-for record is
            unknown or not annotated, or no record at all is annotated by `annotator`.
    """
    if not db.is_dir():
        raise DatabaseError(f"--db {db}: no such directory; give a WFDB database directory "
                            "(one with .hea files), e.g. ../shared/data/mitdb")
    listed = _listed_names(db)
    if not listed:
        inside = sorted(str(p) for p in db.iterdir() if p.is_dir() and any(p.glob("*.hea")))
        hint = f"did you mean --db {inside[0]}?" if inside else \
            "give a WFDB database directory, e.g. ../shared/data/mitdb"
        raise DatabaseError(f"--db {db}: no WFDB records there (no RECORDS file and no .hea "
                            f"files); {hint}")
    if records is not None:
        for name in records:
            if not (db / f"{name}.hea").is_file():
                shown = ", ".join(listed[:12]) + (", ..." if len(listed) > 12 else "")
                raise DatabaseError(f"unknown record {name!r}: {db} has no {name}.hea; "
                                    f"its records are {shown}")
            if not (db / f"{name}.{annotator}").is_file():
                raise DatabaseError(f"record {name!r} has no {annotator!r} annotation file "
                                    f"({name}.{annotator}) in {db}; pick annotated records or "
                                    "set --annotator")
        return RecordSet(tuple(dict.fromkeys(records)), {})
    names: list[str] = []
    skipped: dict[str, str] = {}
    for name in listed:
        if not (db / f"{name}.hea").is_file():
            skipped[name] = f"listed in RECORDS but {name}.hea is missing"
        elif not (db / f"{name}.{annotator}").is_file():
            skipped[name] = f"no {annotator!r} annotation file"
        else:
            names.append(name)
    if not names:
        raise DatabaseError(f"--db {db}: none of its {len(listed)} records has a "
                            f"{annotator!r} annotation file; set --annotator to the reference "
                            "annotator's extension")
    return RecordSet(tuple(names), skipped)


def _mv_per_unit(units: str | None, record: str, channel: int) -> float:
    key = (units or "mV").strip().lower()
    if key not in _TO_MV:
        raise DatabaseError(f"record {record!r} channel {channel} is in {units!r}, not a voltage; "
                            "choose an ECG channel with --channel")
    return _TO_MV[key]


def check_lead(db: Path, record: str, channel: int,
               fs_range_hz: tuple[float, float]) -> None:
    """Check from the header alone that `channel` of `record` can be read and detected on.

    Args:
        db: the database directory.
        record: record name.
        channel: signal index in the header (0-based).
        fs_range_hz: the supported sampling rates, inclusive, Hz.

    Raises:
        DatabaseError: unreadable header, channel out of range, non-voltage units, or a
            sampling rate outside `fs_range_hz`.
    """
    try:
        header = wfdb.rdheader(_record_path(db, record))
    except Exception as exc:  # wfdb raises assorted types for malformed headers
        raise DatabaseError(f"record {record!r}: cannot read {record}.hea ({exc})") from exc
    n_sig = int(header.n_sig or 0)
    if not 0 <= channel < n_sig:
        leads = ", ".join(f"{i}: {n}" for i, n in enumerate(header.sig_name or []))
        raise DatabaseError(f"--channel {channel} is out of range: record {record!r} has "
                            f"{n_sig} signal(s) ({leads}); pass --channel 0..{n_sig - 1}")
    units = getattr(header, "units", None)  # absent for multi-segment headers
    if units:
        _mv_per_unit(units[channel], record, channel)
    lo, hi = fs_range_hz
    if not lo <= float(header.fs) <= hi:
        raise DatabaseError(f"record {record!r} is sampled at {header.fs:g} Hz; the detector "
                            f"supports {lo:g} to {hi:g} Hz, resample the record first")


def _fill_invalid(x: npt.NDArray[np.float64]) -> int:
    """Replace NaNs in place by the last valid value (leading ones by the first); return count."""
    bad = np.isnan(x)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return 0
    if n_bad == x.size:
        x[:] = 0.0
        return n_bad
    idx = np.where(bad, 0, np.arange(x.size))
    np.maximum.accumulate(idx, out=idx)
    first_valid = int(np.argmax(~bad))
    idx[:first_valid] = first_valid
    x[:] = x[idx]
    return n_bad


def read_lead(db: Path, record: str, channel: int) -> Lead:
    """Read one channel of a record in millivolts (see the module docs for invalid samples).

    Raises:
        DatabaseError: the record cannot be read, or the channel is not a voltage.
    """
    try:
        rec = wfdb.rdrecord(_record_path(db, record), channels=[channel], physical=True)
    except Exception as exc:  # wfdb raises assorted types for bad or truncated files
        raise DatabaseError(f"record {record!r}: cannot read its signal ({exc})") from exc
    if rec.p_signal is None or rec.p_signal.shape[0] == 0:
        raise DatabaseError(f"record {record!r} has no samples")
    signal = np.array(rec.p_signal[:, 0], dtype=np.float64)
    units = rec.units[0] if rec.units else None
    signal *= _mv_per_unit(units, record, channel)
    invalid = _fill_invalid(signal)
    return Lead(signal, float(rec.fs), str(rec.sig_name[0]), invalid)


def read_annotations(db: Path, record: str, annotator: str, fs_hz: float) -> Annotations:
    """Read a record's reference annotations, rescaled to `fs_hz` if the file has its own rate.

    Args:
        db: the database directory.
        record: record name.
        annotator: annotation file extension (e.g. "atr").
        fs_hz: the record's sampling rate, Hz.

    Raises:
        DatabaseError: the annotation file cannot be read.
    """
    try:
        ann = wfdb.rdann(_record_path(db, record), annotator)
    except Exception as exc:  # wfdb raises assorted types for bad files
        raise DatabaseError(f"record {record!r}: cannot read {record}.{annotator} ({exc})") \
            from exc
    samples = np.asarray(ann.sample, dtype=np.int64)
    if ann.fs and float(ann.fs) != fs_hz:  # annotation times at their own resolution
        samples = np.rint(samples * (fs_hz / float(ann.fs))).astype(np.int64)
    return Annotations(samples, tuple(str(s) for s in (ann.symbol or [])))

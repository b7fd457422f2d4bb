"""Beat classification validation: AAMI classes per beat, scored the EC57 way.

    ecgedge validate beats --db ../shared/data/mitdb --records DS2 --json beats.json
    ecgedge validate beats --db ../shared/data/mitdb --records 100 --device sim://

Every record is scored in two modes, reported side by side:

- **reference**: the classifier's features (`ecgedge.beats`) taken at the reference annotation
  positions of every beat, classified by the firmware's int8 classifier (`ecgedge.classifier`,
  the C of `ecg_classifier` through the extension). No detector is involved: this is the figure
  comparable with the literature (de Chazal 2004 and later inter-patient DS2 results).
- **end to end**: what a user of the device gets. The record goes through the device's own
  pipeline: the lead as the device's int16 counts, converted to millivolts as the device does
  (`ecgedge.sim.record.counts_to_mv`), filtered and detected (`ecgedge.core.QrsDetector`), the
  features of the *detector's* beats classified; detected beats are matched to reference beats
  within 150 ms (`ec57.compare`, the bxb algorithm). On the host this equals the device bit for
  bit (tests/test_beatfeat.py, tests/test_validate_beats.py); with ``--device URL`` the beats and
  classes come from a device over the SDK instead (each record injected with
  `validation.hil.inject_record`, as ``validate qrs --device`` does).

Both modes read the same lead: the one named MLII when the record has it (the model's training
lead), else signal 0; ``--channel`` overrides. The filter's mains notch is 60 Hz by default
(MIT-BIH was recorded on 60 Hz mains, and the model was trained with that notch).

Scoring rules (ANSI/AAMI EC57:2012 as implemented by PhysioNet's bxb, the reference comparator):

- Reference labels are the AAMI classes of ``../shared/data/README.md`` (`ecgedge.beats`:
  N = N L R e j, S = A a J S, V = V E, F = F, Q = / f Q). Beat symbols without an AAMI class
  (B r n ?) keep their place in the RR sequence but are not scored in either mode (a detection
  matched to one is neither right nor wrong). bxb differs in one respect: it counts e, j (and n)
  as S for SVEB; the project follows the AAMI recommended practice (de Chazal) instead.
- The classifier's labels are n s v f q; anything else (a device without a classifier sends 255)
  counts as q, the unknown class.
- End to end, a reference beat with no matching detection is *missed* (column o of EC57's
  matrix) and a detection with no reference beat is *extra* (row O); detections inside
  reference-marked ventricular flutter/fibrillation are not counted (`ec57.compare`).
- Per class c: Se = Cc / (all reference c beats, missed ones included);
  +P = Cc / (all beats labelled c, extra detections and Q reference beats included), from the
  5x5 matrix (rows reference N S V F Q, columns n s v f q), as in the model card.
- VEB (bxb): TP = Vv; FN = Vn + Vs + Vf + Vq + Vo; FP = Nv + Sv + Ov, i.e. F and Q beats
  labelled v are neither TP nor FP; TN = beats of rows N S F Q O labelled n s f q;
  Se = TP / (TP + FN), +P = TP / (TP + FP), FPR = FP / (TN + FP).
- SVEB (bxb): TP = Ss; FN = Sn + Sv + Sf + Sq + So; FP = Ns + Vs + Fs + Os (Q beats labelled s
  are not FP); FPR by analogy with VEB (bxb prints none): TN = beats of rows N V F Q O labelled
  n v f q, FPR = FP / (TN + FP).
- The scored period starts at ``start_s`` (0 by default: whole records, like the literature's
  DS2 figures; ``--start 300`` applies EC57's 5-minute learning period) and ends at the record's
  last sample. Percentages are gross: matrices are summed over records first.

Per-record classification goes through `classify_record(record, classify)`: `classify` maps the
int8 model inputs of a record's beats to classes, so a caller can swap in another classifier
per record (e.g. a personalized head) via `validate_beats(..., classifier=lambda rec: ...)`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import wfdb
from rich import box
from rich.console import Console
from rich.table import Table

from .. import beats as B
from .ec57 import Reference, compare
from .qrs import records_progress
from .wfdb_db import DEFAULT_ANNOTATOR, DatabaseError, find_records, read_annotations

__all__ = [
    "CLASSES", "LEAD", "BeatRecord", "BeatReport", "Classify", "ClassStats", "Confusion",
    "Ec57Stats", "RecordResult", "classify_record", "default_classifier", "detector_beats",
    "expand_records", "load_beat_record", "render_report", "score_detections", "score_reference",
    "sveb_stats", "veb_stats", "validate_beats",
]

CLASSES = B.AAMI_CLASSES  #: ("N", "S", "V", "F", "Q"), the order of rows and columns
N_, S_, V_, F_, Q_ = range(5)
LEAD = "MLII"  #: the lead the model was trained on, used when a record has it
DEFAULT_MAINS_HZ = 60
RECORD_SETS = {"DS1": B.DS1, "DS2": B.DS2}

Int8Array = npt.NDArray[np.int8]
IntArray = npt.NDArray[np.int64]
#: int8 windows (n, 256) and rr (n, 9) of a record's beats -> class per beat (0..4)
Classify = Callable[[Int8Array, Int8Array], IntArray]


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------

def _pct(num: int, den: int) -> float:
    return 100.0 * num / den if den else float("nan")


@dataclass(frozen=True)
class Confusion:
    """EC57's beat-label matrix.

    Attributes:
        matrix: (5, 5) counts, rows reference N S V F Q, columns classifier n s v f q.
        missed: (5,) reference beats per class with no matching detection (column o).
        extra: (5,) detections per label with no reference beat (row O).
    """

    matrix: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros((5, 5), np.int64))
    missed: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(5, np.int64))
    extra: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(5, np.int64))

    @classmethod
    def of(cls, ref: npt.ArrayLike, pred: npt.ArrayLike, missed: npt.ArrayLike = (),
           extra: npt.ArrayLike = ()) -> Confusion:
        """From paired reference classes (0..4) and labels (0..4; anything else counts as q),
        the classes of missed reference beats and the labels of extra detections."""
        def label(v: npt.ArrayLike) -> IntArray:
            a = np.asarray(v, dtype=np.int64).reshape(-1)
            return np.where((a >= 0) & (a <= Q_), a, Q_)

        r = np.asarray(ref, dtype=np.int64).reshape(-1)
        p = label(pred)
        if r.size != p.size:
            raise ValueError(f"{r.size} reference classes but {p.size} labels")
        if np.any((r < 0) | (r > Q_)):
            raise ValueError("reference classes must be 0..4 (unclassified beats are not scored)")
        m = np.zeros((5, 5), np.int64)
        np.add.at(m, (r, p), 1)
        return cls(m, np.bincount(np.asarray(missed, np.int64).reshape(-1), minlength=5)[:5],
                   np.bincount(label(extra), minlength=5)[:5])

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(self.matrix + other.matrix, self.missed + other.missed,
                         self.extra + other.extra)

    def class_stats(self, c: int) -> ClassStats:
        """Se and +P of class `c` (module docs)."""
        tp = int(self.matrix[c, c])
        return ClassStats(tp, int(self.matrix[c].sum() + self.missed[c]) - tp,
                          int(self.matrix[:, c].sum() + self.extra[c]) - tp)

    def as_dict(self) -> dict[str, Any]:
        """``{"N": {"se", "ppv"}, "S", "V", "F", "confusion", "missed", "extra", "veb", "sveb"}``
        in percent (2 decimals, null when undefined); confusion rows are reference N S V F Q,
        columns the labels n s v f q."""
        out: dict[str, Any] = {}
        for c in (N_, S_, V_, F_):
            st = self.class_stats(c)
            out[CLASSES[c]] = {"se": _round(st.se), "ppv": _round(st.ppv)}
        out["confusion"] = self.matrix.tolist()
        out["missed"] = self.missed.tolist()
        out["extra"] = self.extra.tolist()
        out["veb"] = veb_stats(self).as_dict()
        out["sveb"] = sveb_stats(self).as_dict()
        return out


def _round(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 2)


@dataclass(frozen=True)
class ClassStats:
    """One class: true positives, false negatives, false positives; Se and +P in percent."""

    tp: int
    fn: int
    fp: int

    @property
    def se(self) -> float:
        return _pct(self.tp, self.tp + self.fn)

    @property
    def ppv(self) -> float:
        return _pct(self.tp, self.tp + self.fp)


@dataclass(frozen=True)
class Ec57Stats(ClassStats):
    """EC57's VEB or SVEB statistics: ClassStats plus true negatives and the FPR (percent)."""

    tn: int = 0

    @property
    def fpr(self) -> float:
        return _pct(self.fp, self.tn + self.fp)

    def as_dict(self) -> dict[str, Any]:
        return {"se": _round(self.se), "ppv": _round(self.ppv), "fpr": _round(self.fpr),
                "tp": self.tp, "fn": self.fn, "fp": self.fp, "tn": self.tn}


def _ectopic_stats(m: Confusion, c: int, not_fp_rows: tuple[int, ...]) -> Ec57Stats:
    """bxb's statistics for class c: reference rows in `not_fp_rows` labelled c are no FP."""
    k = m.matrix
    tp = int(k[c, c])
    fn = int(k[c].sum() - tp + m.missed[c])
    fp_rows = [r for r in range(5) if r != c and r not in not_fp_rows]
    fp = int(k[fp_rows, c].sum() + m.extra[c])
    other_rows = [r for r in range(5) if r != c]
    other_cols = [x for x in range(5) if x != c]
    tn = int(k[np.ix_(other_rows, other_cols)].sum() + m.extra[other_cols].sum())
    return Ec57Stats(tp, fn, fp, tn)


def veb_stats(m: Confusion) -> Ec57Stats:
    """EC57 VEB: F and Q beats labelled v are neither TP nor FP (module docs)."""
    return _ectopic_stats(m, V_, (F_, Q_))


def sveb_stats(m: Confusion) -> Ec57Stats:
    """EC57 SVEB: Q beats labelled s are not FP; FPR by analogy with VEB (module docs)."""
    return _ectopic_stats(m, S_, (Q_,))


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------

def expand_records(names: Sequence[str] | None) -> list[str] | None:
    """Record names with ``DS1`` / ``DS2`` replaced by de Chazal's lists (order kept, no
    duplicates); None stays None (every annotated record of the database)."""
    if names is None:
        return None
    out: list[str] = []
    for n in names:
        out += RECORD_SETS.get(n.upper(), (n,))
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class BeatRecord:
    """One record as both modes need it.

    Attributes:
        name: record name.
        counts: the lead as the device's int16 counts.
        fs_hz: sampling rate (an integer number of Hz, as the device needs).
        gain_uv_per_count: µV per count.
        lead: signal name of the lead.
        beats: every reference beat position (`beats.reference_beats`), ascending.
        classes: their AAMI classes, -1 for beat symbols without one.
        reference: the reference for `ec57.compare` (beats and VF episodes).
    """

    name: str
    counts: npt.NDArray[np.int16]
    fs_hz: int
    gain_uv_per_count: float
    lead: str
    beats: IntArray
    classes: npt.NDArray[np.int8]
    reference: Reference

    @property
    def mv(self) -> npt.NDArray[np.float32]:
        """The lead in millivolts, exactly as the device converts its counts."""
        from ..sim.record import counts_to_mv

        return counts_to_mv(self.counts, self.gain_uv_per_count)


def _lead_channel(db: Path, name: str, channel: int | None) -> int:
    if channel is not None:
        return channel
    try:
        names = list(wfdb.rdheader(str(db / name)).sig_name or [])
    except Exception as exc:  # wfdb raises assorted types for malformed headers
        raise DatabaseError(f"record {name!r}: cannot read {name}.hea ({exc})") from exc
    return names.index(LEAD) if LEAD in names else 0


def load_beat_record(db: str | PathLike[str], name: str, channel: int | None = None,
                     annotator: str = DEFAULT_ANNOTATOR) -> BeatRecord:
    """Read a record's lead (MLII, else signal 0, unless `channel`) and reference beats.

    Raises:
        DatabaseError: the record or its annotations cannot be read, or the device could not run
            it (rate not a whole number of Hz in 125..1000, non-voltage units).
    """
    from ..sim.record import SimError, load_record

    root = Path(db)
    ch = _lead_channel(root, name, channel)
    try:
        rec = load_record(root / name, [ch])
    except SimError as exc:
        raise DatabaseError(f"record {name!r}: {exc}") from exc
    ann = read_annotations(root, name, annotator, float(rec.fs_hz))
    pos, cls = B.reference_beats(ann.samples, ann.symbols)
    n = int(rec.counts.shape[0])
    return BeatRecord(name, rec.counts[:, 0], rec.fs_hz, rec.gain_uv_per_count,
                      rec.sig_names[0] if rec.sig_names else f"signal {ch}", pos, cls,
                      Reference.from_annotations(ann.samples, ann.symbols, n - 1))


# --------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------

def default_classifier() -> Classify:
    """The firmware's classifier with the model's own head (`BeatClassifier.predict`)."""
    from ..classifier import BeatClassifier

    return BeatClassifier().predict


def _features(mv: npt.NDArray[np.float32], fs_hz: float, r_peaks: IntArray,
              mains_hz: int | None) -> tuple[Int8Array, Int8Array]:
    """int8 model inputs of the beats `r_peaks` (`BeatClassifier.beat_inputs`)."""
    from ..classifier import BeatClassifier

    return BeatClassifier().beat_inputs(mv, fs_hz, r_peaks, mains_hz)


def _classify(classify: Classify, mv: npt.NDArray[np.float32], fs_hz: float, r: IntArray,
              mains_hz: int | None) -> IntArray:
    if r.size == 0:
        return np.zeros(0, np.int64)
    w, q = _features(mv, fs_hz, r, mains_hz)
    return np.asarray(classify(w, q), dtype=np.int64).reshape(-1)


def detector_beats(rec: BeatRecord, mains_hz: int | None = DEFAULT_MAINS_HZ) -> IntArray:
    """The device detector's beats of the record (`QrsDetector` on the device's millivolts)."""
    from ..core import QrsDetector

    det = QrsDetector(rec.fs_hz, mains_hz)
    return np.concatenate([det.process(rec.mv), det.flush()]).astype(np.int64)


@dataclass(frozen=True)
class RecordResult:
    """Both modes' matrices for one record."""

    reference: Confusion
    end_to_end: Confusion


def score_reference(rec: BeatRecord, labels: IntArray, start: int = 0,
                    end: int | None = None) -> Confusion:
    """Labels of every reference beat (`rec.beats` order) against their classes, over the scored
    period; beats without an AAMI class are left out."""
    lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    if lab.size != rec.beats.size:
        raise ValueError(f"{lab.size} labels for {rec.beats.size} reference beats")
    stop = int(rec.counts.shape[0]) - 1 if end is None else end
    keep = (rec.classes >= 0) & (rec.beats >= start) & (rec.beats <= stop)
    return Confusion.of(rec.classes[keep], lab[keep])


def score_detections(rec: BeatRecord, positions: IntArray, labels: IntArray, start: int = 0,
                     end: int | None = None) -> Confusion:
    """Detected beats and their labels against the reference (150 ms, `ec57.compare`)."""
    pos = np.asarray(positions, dtype=np.int64).reshape(-1)
    lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    if pos.size != lab.size:
        raise ValueError(f"{lab.size} labels for {pos.size} detections")
    order = np.argsort(pos, kind="stable")
    pos, lab = pos[order], lab[order]
    stop = int(rec.counts.shape[0]) - 1 if end is None else end
    cmp = compare(rec.reference, pos, float(rec.fs_hz), start=start, end=stop)
    ref_class = dict(zip(rec.beats.tolist(), rec.classes.tolist()))
    label_at = dict(zip(pos.tolist(), lab.tolist()))
    pairs = [(ref_class.get(int(t_ref), -1), label_at[int(t)]) for t_ref, t in cmp.pairs]
    scored = [(c, x) for c, x in pairs if c >= 0]
    missed = [c for c in (ref_class.get(int(t), -1) for t in cmp.false_negatives) if c >= 0]
    extra = [label_at[int(t)] for t in cmp.false_positives]
    return Confusion.of([c for c, _ in scored], [x for _, x in scored], missed, extra)


def classify_record(rec: BeatRecord, classify: Classify | None = None,
                    mains_hz: int | None = DEFAULT_MAINS_HZ, start: int = 0,
                    detections: tuple[IntArray, IntArray] | None = None) -> RecordResult:
    """Classify and score one record in both modes.

    Args:
        rec: the record (`load_beat_record`).
        classify: int8 inputs -> classes; None: `default_classifier()`.
        mains_hz: the filter's notch (also the detector's).
        start: first scored sample.
        detections: end-to-end beats and labels from elsewhere (a device); None: the host runs
            the device's pipeline with `classify`.
    """
    fn = classify if classify is not None else default_classifier()
    mv = rec.mv
    ref_labels = _classify(fn, mv, rec.fs_hz, rec.beats, mains_hz)
    if detections is None:
        det = detector_beats(rec, mains_hz)
        detections = (det, _classify(fn, mv, rec.fs_hz, det, mains_hz))
    return RecordResult(score_reference(rec, ref_labels, start),
                        score_detections(rec, detections[0], detections[1], start))


# --------------------------------------------------------------------------------------------
# Validation run
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BeatReport:
    """Result of `validate_beats`: per-record matrices and their gross sums."""

    db: Path
    start_s: float
    device: str | None
    records: dict[str, RecordResult]

    @property
    def reference(self) -> Confusion:
        return sum((r.reference for r in self.records.values()), Confusion())

    @property
    def end_to_end(self) -> Confusion:
        return sum((r.end_to_end for r in self.records.values()), Confusion())

    def as_dict(self) -> dict[str, Any]:
        """``{"reference": {...}, "end_to_end": {...}, "records": {name: {"reference",
        "end_to_end"}}, "settings": {...}}`` (see `Confusion.as_dict`)."""
        return {
            "reference": self.reference.as_dict(),
            "end_to_end": self.end_to_end.as_dict(),
            "records": {n: {"reference": r.reference.as_dict(),
                            "end_to_end": r.end_to_end.as_dict()}
                        for n, r in self.records.items()},
            "settings": {"start_s": self.start_s, "device": self.device,
                         "records": list(self.records)},
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, allow_nan=False) + "\n"


def validate_beats(db: str | PathLike[str], records: Sequence[str] | None = None,
                   channel: int | None = None, start_s: float = 0.0,
                   annotator: str = DEFAULT_ANNOTATOR, mains_hz: int | None = DEFAULT_MAINS_HZ,
                   device: str | None = None, progress: bool = False,
                   classifier: Callable[[BeatRecord], Classify] | None = None) -> BeatReport:
    """Classify every beat of the records in both modes and score them (module docs).

    Args:
        db: database directory.
        records: names, ``DS1`` / ``DS2`` expanded; None: every annotated record.
        channel: signal index; None: MLII when the record has it, else 0.
        start_s: start of the scored period, seconds.
        annotator: reference annotation extension.
        mains_hz: the filter's notch, 50, 60 or None.
        device: a ``--device`` URL (`validation.hil`): end-to-end beats and classes from it.
        progress: rich progress bar on stderr (when it is a terminal).
        classifier: per record, the classify function to use (reference mode, and the host's
            end-to-end mode); None: the model's own head for every record.

    Raises:
        DatabaseError: unknown or unreadable records.
        validation.hil.HilError: the device cannot be used, or lost frames on a record.
    """
    if start_s < 0:
        raise DatabaseError(f"--start {start_s:g}: the scored period cannot start before 0 s")
    root = Path(db)
    names = find_records(root, annotator, expand_records(records)).names
    default = default_classifier() if classifier is None else None
    results: dict[str, RecordResult] = {}
    devs: list[Any] = []
    bar = records_progress(progress)
    try:
        with bar:
            task = bar.add_task("records", total=len(names))
            for i, name in enumerate(names):
                bar.update(task, description=name, completed=i)
                rec = load_beat_record(root, name, channel, annotator)
                fn = default if classifier is None else classifier(rec)
                start = int(round(start_s * rec.fs_hz))
                det = None
                if device is not None:
                    def advance(fraction: float, i: int = i) -> None:
                        bar.update(task, completed=i + fraction)

                    det = _device_beats(device, devs, rec, mains_hz, advance)
                results[name] = classify_record(rec, fn, mains_hz, start, det)
            bar.update(task, completed=len(names))
    finally:
        for d in devs:
            d.close()
    return BeatReport(root, start_s, device, results)


def _device_beats(url: str, devs: list[Any], rec: BeatRecord, mains_hz: int | None,
                  advance: Callable[[float], None]) -> tuple[IntArray, IntArray]:
    """Inject the record into the device (one connection for the run) and return its beats and
    classes; a run that lost or garbled a frame is refused (a beat may be missing)."""
    from .hil import check_complete, connect, inject_record

    if not devs:
        devs.append(connect(url, fs_hz=rec.fs_hz, gain_uv_per_count=rec.gain_uv_per_count))
    run = inject_record(devs[0], rec.counts, fs_hz=rec.fs_hz,
                        gain_uv_per_count=rec.gain_uv_per_count, mains_hz=mains_hz,
                        progress=advance)
    check_complete(run, url, rec.name)
    return run.beats, run.classes.astype(np.int64)


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def _cell(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.2f}"


def render_report(report: BeatReport, console: Console) -> None:
    """Per-class Se / +P and VEB / SVEB of both modes side by side, then both matrices."""
    modes = (("reference positions", report.reference),
             ("end to end" + (f" ({report.device})" if report.device else ""),
              report.end_to_end))
    t = Table(title=f"Beat classification: {report.db.resolve().name}, {len(report.records)} "
                    f"record(s), scored from {report.start_s:g} s", box=box.SIMPLE_HEAD)
    t.add_column("")
    for title, _ in modes:
        t.add_column(f"{title}\nSe %", justify="right")
        t.add_column("+P %", justify="right")
        t.add_column("FPR %", justify="right")
    for c in (N_, S_, V_, F_):
        cells: list[str] = []
        for _, m in modes:
            st = m.class_stats(c)
            cells += [_cell(st.se), _cell(st.ppv), ""]
        t.add_row(CLASSES[c], *cells)
    t.add_section()
    for label, stat in (("VEB", veb_stats), ("SVEB", sveb_stats)):
        cells = []
        for _, m in modes:
            st = stat(m)
            cells += [_cell(st.se), _cell(st.ppv), f"{st.fpr:.3f}" if not math.isnan(st.fpr)
                      else "n/a"]
        t.add_row(label, *cells, style="bold")
    console.print(t)
    for title, m in modes:
        mt = Table(title=f"{title}: reference (rows) x classifier (columns)",
                   box=box.SIMPLE_HEAD)
        mt.add_column("")
        for name in CLASSES:
            mt.add_column(name.lower(), justify="right")
        mt.add_column("o (missed)", justify="right")
        for r, name in enumerate(CLASSES):
            mt.add_row(name, *(str(int(v)) for v in m.matrix[r]), str(int(m.missed[r])))
        mt.add_row("O (extra)", *(str(int(v)) for v in m.extra), "")
        console.print(mt)

"""Alert validation: MIT-BIH records through the device, its VT and AF alert episodes scored
against the rhythm annotations.

    ecgedge validate alerts --db ../shared/data/mitdb --json alerts.json [--records 203 207]

**What runs.** Each record's lead (MLII, else signal 0) is injected into the C device (an
injection-only virtual device, ``sim://``, or any ``--device`` URL, through `hil.inject_record`:
the same path as ``validate qrs --device``), so the alert engine sees exactly the beats, classes and
qualities the device sends. The device's default thresholds are used (ecg_alerts.h; nothing here
is tuned). Alerts are pulled and acknowledged while the record goes in (every 1/50 of it), so the
device's 32-record queue never overflows; a run whose queue dropped records is refused.

**Reference episodes** come from the rhythm annotations (symbol ``+``, `aux_note`): a rhythm lasts
from its annotation to the next rhythm annotation (or the end of the record).

| alert | reference episodes (Se) | also not a false alarm (+P) |
|---|---|---|
| VT | ``(VT`` | ``(VFL`` (ventricular flutter) |
| AF | ``(AFIB`` | ``(AFL`` (atrial flutter: an RR-irregularity method is not meant to find it, so it is left out of Se, and an AF alert inside it is neither true nor false: excluded from +P) |
| BRADY | ``(SBR`` | — |
| TACHY | ``(SVTA``, ``(VT``, ``(AFL`` | ``(AFIB``, ``(VFL`` |

(For VT the ``(VFL`` spans count as hits for +P; for AF the ``(AFL`` spans are excluded from +P.)
``(B`` and ``(T`` (ventricular bigeminy, trigeminy) are ectopy patterns, not rhythms these alerts
claim; they are not scored (frequent-ectopy, pause, asystole, lead-off and poor-signal alerts have
no reference in MIT-BIH's rhythm annotations). BRADY and TACHY are scored against the few rhythm
annotations that name a rate; most slow or fast stretches carry other labels (e.g. ``(NOD``), so
their +P is a lower bound.

**Scoring (EC57-style episode statistics, whole records).** An alert episode is an onset record
and its end record (same `episode` id); an episode still open at the end of the record ends at the
end (STREAM_END). Intervals are closed sample ranges and two episodes *overlap* when they share a
sample.

- episode sensitivity Se = reference episodes overlapped by at least one alert episode of the type
  / reference episodes;
- episode positive predictivity +P = alert episodes overlapping at least one reference episode /
  alert episodes, where alert episodes that overlap only excluded spans are left out of both;
- gross figures sum the counts over the records; records without reference episodes still count
  for +P (every alert there is a false alarm).

EC57 also scores episode durations; that is not done here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import wfdb

from ..alerts import Alert, AlertFlag, AlertType
from .wfdb_db import DatabaseError, find_records

__all__ = ["AlertReport", "EpisodeCounts", "RULES", "reference_episodes", "alert_episodes",
           "score_episodes", "validate_alerts", "render_report"]

Span = tuple[int, int]

#: For each scored alert type: (reference rhythms, rhythms that also count as hits for +P,
#: rhythms whose alerts are excluded from +P).
RULES: dict[AlertType, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    AlertType.VT: (("(VT",), ("(VFL",), ()),
    AlertType.AF: (("(AFIB",), (), ("(AFL",)),
    AlertType.BRADY: (("(SBR",), (), ()),
    AlertType.TACHY: (("(SVTA", "(VT", "(AFL"), ("(AFIB", "(VFL"), ()),
}
PULLS_PER_RECORD = 50  #: alerts are pulled and acknowledged this often during a record


def rhythm_spans(db: Path, name: str, n_samples: int) -> dict[str, list[Span]]:
    """Each rhythm's spans from the ``+`` annotations' `aux_note` (a rhythm lasts until the next
    rhythm annotation or the record's last sample)."""
    try:
        ann = wfdb.rdann(str(db / name), "atr")
    except Exception as exc:  # wfdb raises assorted types for bad files
        raise DatabaseError(f"record {name!r}: cannot read {name}.atr ({exc})") from exc
    marks = [(int(s), (a or "").strip("\x00").strip())
             for s, sym, a in zip(ann.sample, ann.symbol, ann.aux_note or [""] * len(ann.sample))
             if sym == "+"]
    spans: dict[str, list[Span]] = {}
    for i, (start, rhythm) in enumerate(marks):
        end = marks[i + 1][0] - 1 if i + 1 < len(marks) else n_samples - 1
        if end >= start:
            spans.setdefault(rhythm, []).append((start, end))
    return spans


def reference_episodes(spans: dict[str, list[Span]], rhythms: Sequence[str]) -> list[Span]:
    """The spans of `rhythms`, sorted, with adjacent or overlapping spans joined (a rhythm
    annotated again without a change is one episode)."""
    out: list[Span] = []
    for s, e in sorted(sp for r in rhythms for sp in spans.get(r, [])):
        if out and s <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def alert_episodes(alerts: Sequence[Alert], kind: AlertType, end_sample: int) -> list[Span]:
    """The episodes of one alert type: onset record to end record (same `episode`); an episode
    without an end record ends at `end_sample`."""
    starts: dict[int, int] = {}
    ends: dict[int, int] = {}
    for a in alerts:
        if a.type != kind:
            continue
        if AlertFlag.ONSET in a.flags:
            starts[a.episode] = a.start_index
        if AlertFlag.END in a.flags:
            ends[a.episode] = a.end_index
            starts.setdefault(a.episode, a.start_index)  # an onset dropped: the end says it
    return sorted((s, max(s, ends.get(ep, end_sample))) for ep, s in starts.items())


def _overlaps(span: Span, others: Sequence[Span]) -> bool:
    return any(span[0] <= e and s <= span[1] for s, e in others)


@dataclass
class EpisodeCounts:
    """Episode counts of one alert type (one record, or summed)."""

    reference: int = 0  #: reference episodes
    detected: int = 0  #: reference episodes overlapped by an alert episode
    alerts: int = 0  #: alert episodes scored (excluded ones left out)
    true_alerts: int = 0  #: alert episodes overlapping a reference (or also-a-hit) span
    excluded: int = 0  #: alert episodes overlapping only excluded spans

    @property
    def se(self) -> float | None:
        return 100.0 * self.detected / self.reference if self.reference else None

    @property
    def ppv(self) -> float | None:
        return 100.0 * self.true_alerts / self.alerts if self.alerts else None

    def __iadd__(self, o: "EpisodeCounts") -> "EpisodeCounts":
        for k in ("reference", "detected", "alerts", "true_alerts", "excluded"):
            setattr(self, k, getattr(self, k) + getattr(o, k))
        return self

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = asdict(self)
        d["se"] = None if self.se is None else round(self.se, 2)
        d["ppv"] = None if self.ppv is None else round(self.ppv, 2)
        return d


def score_episodes(ref: Sequence[Span], hits: Sequence[Span], excluded: Sequence[Span],
                   alerts: Sequence[Span]) -> EpisodeCounts:
    """The module docstring's rules: `ref` reference episodes, `hits` spans that also make an
    alert true, `excluded` spans whose alerts are not scored, `alerts` the alert episodes."""
    c = EpisodeCounts(reference=len(ref))
    c.detected = sum(_overlaps(r, alerts) for r in ref)
    for a in alerts:
        if _overlaps(a, ref) or _overlaps(a, hits):
            c.alerts += 1
            c.true_alerts += 1
        elif _overlaps(a, excluded):
            c.excluded += 1
        else:
            c.alerts += 1
    return c


@dataclass
class RecordAlerts:
    """One record's result."""

    name: str
    n_samples: int
    fs_hz: int
    beats: int
    v_beats: int  #: beats the device classified V (VT needs them)
    counts: dict[str, EpisodeCounts]
    episodes: dict[str, list[Span]]  #: alert episodes per type (sample ranges)
    reference: dict[str, list[Span]]  #: reference episodes per type
    records_made: int  #: alert records the device made (every type)
    dropped: int  #: records the device's queue dropped (must be 0)


@dataclass
class AlertReport:
    """Everything `validate_alerts` measured."""

    db: str
    device: str
    records: dict[str, RecordAlerts] = field(default_factory=dict)

    def gross(self) -> dict[str, EpisodeCounts]:
        out = {t.name: EpisodeCounts() for t in RULES}
        for r in self.records.values():
            for k, c in r.counts.items():
                out[k] += c
        return out

    def to_json(self) -> str:
        return json.dumps(dict(
            db=self.db, device=self.device, rules={t.name: dict(reference=list(v[0]),
                                                                  also_hits=list(v[1]),
                                                                  excluded=list(v[2]))
                                                   for t, v in RULES.items()},
            gross={k: c.as_dict() for k, c in self.gross().items()},
            records={n: dict(fs_hz=r.fs_hz, n_samples=r.n_samples, beats=r.beats,
                             v_beats=r.v_beats, records_made=r.records_made, dropped=r.dropped,
                             counts={k: c.as_dict() for k, c in r.counts.items()},
                             episodes={k: [list(s) for s in v] for k, v in r.episodes.items()},
                             reference={k: [list(s) for s in v] for k, v in r.reference.items()})
                     for n, r in self.records.items()}), indent=1)


def _run_record(device: str, devs: list[Any], db: Path, name: str, mains_hz: int | None,
                advance: Any) -> RecordAlerts:
    from .beats import load_beat_record
    from .hil import HilError, connect, inject_record

    rec = load_beat_record(db, name)
    n = int(rec.counts.shape[0])
    if not devs:  # one connection for the run, made for the first record's rate and gain
        devs.append(connect(device, fs_hz=rec.fs_hz, gain_uv_per_count=rec.gain_uv_per_count))
    dev = devs[0]
    alerts: list[Alert] = []
    dropped0 = dev.alerts.status().dropped
    dev.alerts.ack(dev.alerts.status().last_id)  # a clean queue for this record

    def pull(frac: float) -> None:
        alerts.extend(dev.alerts.pull(ack=True))
        advance(frac)

    run = inject_record(dev, rec.counts, fs_hz=rec.fs_hz, gain_uv_per_count=rec.gain_uv_per_count,
                        mains_hz=mains_hz, progress=pull)
    alerts.extend(dev.alerts.pull(ack=True))  # the end records of the stream's end
    dropped = dev.alerts.status().dropped - dropped0
    if run.lost_frames or run.bad_frames or dropped:
        raise HilError(f"record {name}: {run.lost_frames} frame(s) lost, {run.bad_frames} bad, "
                       f"{dropped} alert record(s) dropped by the device; not scoring")
    spans = rhythm_spans(db, name, n)
    counts: dict[str, EpisodeCounts] = {}
    episodes: dict[str, list[Span]] = {}
    reference: dict[str, list[Span]] = {}
    for kind, (ref_r, hit_r, excl_r) in RULES.items():
        ref = reference_episodes(spans, ref_r)
        eps = alert_episodes(alerts, kind, n - 1)
        counts[kind.name] = score_episodes(ref, reference_episodes(spans, hit_r),
                                           reference_episodes(spans, excl_r), eps)
        episodes[kind.name] = eps
        reference[kind.name] = ref
    return RecordAlerts(name, n, rec.fs_hz, len(run.beats), int(np.sum(run.classes == 2)),
                        counts, episodes, reference, len(alerts), dropped)


def validate_alerts(db: str | PathLike[str], records: Sequence[str] | None = None, *,
                    device: str = "sim://", mains_hz: int | None = 60,
                    progress: bool = False) -> AlertReport:
    """Run `records` (default: every annotated record of `db`) through `device` and score its
    alert episodes (module docstring).

    Raises:
        DatabaseError: a missing database or record. hil.HilError: the device cannot be used, or a
            run lost frames or alert records.
    """
    from rich.progress import Progress

    root = Path(db)
    names = list(records) if records else find_records(root).names
    report = AlertReport(str(db), device)
    devs: list[Any] = []
    try:
        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task("alerts", total=len(names))
            for i, name in enumerate(names):
                report.records[name] = _run_record(
                    device, devs, root, name, mains_hz,
                    lambda f, i=i: bar.update(task, completed=i + f))
    finally:
        for d in devs:
            d.close()
    return report


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def render_report(report: AlertReport, console: Any) -> None:
    """Per-record and gross tables (rich)."""
    from rich.table import Table

    t = Table(title=f"alert episodes on {report.device} ({report.db})", title_justify="left")
    t.add_column("record")
    for k in (x.name for x in RULES):
        t.add_column(f"{k} ref/det", justify="right")
        t.add_column(f"{k} alerts/true", justify="right")
    for name, r in report.records.items():
        row = [name]
        for k in (x.name for x in RULES):
            c = r.counts[k]
            row += [f"{c.reference}/{c.detected}", f"{c.alerts}/{c.true_alerts}"]
        t.add_row(*row)
    console.print(t)
    g = Table(title="gross episode statistics", title_justify="left")
    for col in ("alert", "ref episodes", "detected", "Se %", "alert episodes", "true", "+P %",
                "excluded"):
        g.add_column(col, justify="right" if col != "alert" else "left")
    for k, c in report.gross().items():
        g.add_row(k, str(c.reference), str(c.detected), _pct(c.se), str(c.alerts),
                  str(c.true_alerts), _pct(c.ppv), str(c.excluded))
    console.print(g)

"""`ecgedge validate alerts`: the episode scoring rules on hand-built spans, the reference
episodes read from MIT-BIH rhythm annotations, and one record end to end through the device."""

from __future__ import annotations

import json
from pathlib import Path

from ecgedge.alerts import Alert, AlertFlag, AlertType, Severity
from ecgedge.cli import main
from ecgedge.validation.alerts import (
    alert_episodes,
    reference_episodes,
    rhythm_spans,
    score_episodes,
    validate_alerts,
)


def rec(id: int, episode: int, kind: AlertType, flags: AlertFlag, start: int, end: int) -> Alert:
    return Alert(id, episode, kind, Severity.WARNING, flags, start, end, 0, 0, 0, 360.0)


def test_onset_and_end_records_pair_into_episodes_and_an_open_one_ends_at_the_record_end() -> None:
    alerts = [
        rec(1, 1, AlertType.AF, AlertFlag.ONSET, 100, 200),
        rec(2, 2, AlertType.VT, AlertFlag.ONSET | AlertFlag.END, 150, 160),
        rec(3, 1, AlertType.AF, AlertFlag.END, 100, 900),
        rec(4, 4, AlertType.AF, AlertFlag.ONSET, 2000, 2100),  # never ended
        rec(9, 7, AlertType.AF, AlertFlag.END, 3000, 3100),  # its onset was dropped
    ]
    assert alert_episodes(alerts, AlertType.AF, 5000) == [(100, 900), (2000, 5000), (3000, 3100)]
    assert alert_episodes(alerts, AlertType.VT, 5000) == [(150, 160)]


def test_episode_se_and_ppv_follow_overlap_with_hits_and_exclusions() -> None:
    ref = [(0, 99), (200, 299), (400, 499)]
    hits = [(600, 650)]  # e.g. (VFL for VT: an alert there is true, but not a reference episode
    excluded = [(800, 850)]  # e.g. (AFL for AF: an alert only there is not scored
    alerts = [(90, 110),  # overlaps ref 1 by 10 samples
              (299, 299),  # touches ref 2 at its last sample
              (620, 630),  # inside a hit span
              (700, 720),  # nothing: false
              (810, 820)]  # only excluded
    c = score_episodes(ref, hits, excluded, alerts)
    assert (c.reference, c.detected) == (3, 2)
    assert (c.alerts, c.true_alerts, c.excluded) == (4, 3, 1)
    assert c.se == 200 / 3 and c.ppv == 75.0


def test_adjacent_spans_of_the_same_rhythm_join_into_one_reference_episode() -> None:
    spans = {"(AFIB": [(0, 99), (100, 199), (300, 399)], "(AFL": [(200, 250)]}
    assert reference_episodes(spans, ["(AFIB"]) == [(0, 199), (300, 399)]
    assert reference_episodes(spans, ["(AFIB", "(AFL"]) == [(0, 250), (300, 399)]
    assert reference_episodes(spans, ["(VT"]) == []


def test_record_201_rhythm_annotations_give_its_three_af_episodes(mitdb: Path) -> None:
    # 201.atr: "(AFIB" at samples 60, 171815 and 574742; the next rhythm annotations ("(NOD")
    # at 136226, 185068 and 643411
    spans = rhythm_spans(mitdb, "201", 650000)
    assert spans["(AFIB"] == [(60, 136225), (171815, 185067), (574742, 643410)]
    assert spans["(N"][-1] == (646257, 649999)  # the last rhythm lasts to the end


def test_validate_alerts_on_record_201_writes_consistent_json(mitdb: Path, tmp_path: Path) -> None:
    out = tmp_path / "alerts.json"
    assert main(["validate", "alerts", "--db", str(mitdb), "--records", "201", "--json",
                 str(out), "-q"]) == 0
    d = json.loads(out.read_text())
    r = d["records"]["201"]
    assert r["dropped"] == 0 and r["beats"] > 1800
    af = r["counts"]["AF"]
    assert af["reference"] == 3 and r["reference"]["AF"] == [[60, 136225], [171815, 185067],
                                                           [574742, 643410]]
    assert af["detected"] >= 1  # the first episode alone lasts 6.3 minutes
    assert d["gross"]["AF"] == af
    eps = r["episodes"]["AF"]
    assert eps == sorted(eps) and all(s <= e < r["n_samples"] for s, e in eps)
    assert validate_alerts(mitdb, ["201"]).records["201"].counts["AF"].as_dict() == af

"""The personalization benchmark (`ecgedge.validation.personalize`, `ecgedge validate beats
--personalize 300`) on two MIT-BIH records, fast: the protocol's bookkeeping (learning period and
test beats split at 300 s, labels taken), the report's JSON keys, the command line, determinism,
and the behaviour it measures (on a record whose rhythm the factory head gets wrong, five labelled
minutes fix most of the rest; on a record it already gets right, personalization costs at most
the 1-point budget).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ecgedge.cli import main as cli_main
from ecgedge.validation.beats import load_beat_record
from ecgedge.validation.personalize import (TARGETS, PersonalizeReport, personalize_record,
                                            validate_personalize)

# 232: sinus bradycardia with frequent S beats, which the factory head mostly misses;
# 100: a clean record it gets right.
RECORDS = ["100", "232"]


@pytest.fixture(scope="module")
def report(mitdb: Path) -> PersonalizeReport:
    return validate_personalize(mitdb, RECORDS, 300.0, oracle=True)


def test_learning_period_and_test_beats_split_at_300_seconds(report: PersonalizeReport,
                                                             mitdb: Path) -> None:
    for r in report.records:
        rec = load_beat_record(mitdb, r.name)
        early = rec.beats < 300 * rec.fs_hz
        assert r.learn_beats == int(early.sum())
        assert r.labelled == int((early & (rec.classes >= 0)).sum())
        assert (int(r.base.matrix.sum()) == int(r.personal.matrix.sum())
                == int((~early & (rec.classes >= 0)).sum()))
        # the validate-beats run scores the same beats at the reference positions
        assert np.array_equal(report.personalized.records[r.name].reference.matrix,
                              r.personal.matrix)
        assert np.array_equal(report.factory.records[r.name].reference.matrix, r.base.matrix)


def test_personalization_fixes_a_record_the_factory_head_gets_wrong(
        report: PersonalizeReport) -> None:
    rec = {r.name: r for r in report.records}
    assert rec["232"].base_accuracy < 50.0
    assert rec["232"].delta > 30.0
    assert rec["100"].delta >= -TARGETS["max_record_drop"]


def test_report_json_has_both_heads_oracles_and_per_record_changes(
        report: PersonalizeReport) -> None:
    d = json.loads(report.to_json())
    for key in ("factory", "personalized"):
        assert set(d[key]) >= {"reference", "end_to_end", "records"}
        assert set(d[key]["reference"]) >= {"N", "S", "V", "F", "veb", "sveb"}
    assert set(d["oracle_all_labels"]) >= {"S", "V"}
    assert set(d["oracle_learning_period"]) >= {"S", "V"}
    assert set(d["per_record"]) == set(RECORDS)
    assert set(d["targets_met"]) == {"S_se", "S_ppv", "V_se", "V_ppv",
                                     "no_record_worse_than_1_point"}
    assert d["trainer"]["iterations"] >= 1


def test_benchmark_is_deterministic(report: PersonalizeReport, mitdb: Path) -> None:
    again = personalize_record(load_beat_record(mitdb, "232"), 300.0)
    first = next(r for r in report.records if r.name == "232")
    assert np.array_equal(again.personal.matrix, first.personal.matrix)


def test_cli_personalize_writes_the_json_report(mitdb: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.json"
    rc = cli_main(["validate", "beats", "--db", str(mitdb), "--records", "100",
                   "--personalize", "300", "--json", str(out), "-q"])
    assert rc == 0
    d = json.loads(out.read_text())
    assert d["learn_s"] == 300.0 and list(d["per_record"]) == ["100"]
    assert "Personalization" in capsys.readouterr().out


def test_cli_personalize_refuses_a_device(mitdb: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli_main(["validate", "beats", "--db", str(mitdb), "--records", "100",
                   "--personalize", "300", "--device", "qemu://", "-q"])
    assert rc == 2
    assert "drop --device" in capsys.readouterr().err

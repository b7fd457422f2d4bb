"""`ecgedge personalize` and its helpers (`ecgedge.update_cli`): labels files, mapping a
record's reference annotations onto the device's own beat indices, and the command end to end on
the virtual device (a subprocess, as a user runs it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecgedge import update as U
from ecgedge.cli import main
from ecgedge.update_cli import read_labels, record_labels


def test_labels_file_takes_digits_letters_commas_and_comments(tmp_path: Path) -> None:
    f = tmp_path / "labels.txt"
    f.write_text("# index class\n100 N\n250,2   # a V beat\n\n400\ts\n900 4\n")
    idx, cls = read_labels(f)
    assert idx.tolist() == [100, 250, 400, 900]
    assert cls.tolist() == [0, 2, 1, 4]


@pytest.mark.parametrize("line", ["100", "100 X", "abc N", "1 2 3"])
def test_labels_file_with_a_bad_line_names_it(tmp_path: Path, line: str) -> None:
    f = tmp_path / "labels.txt"
    f.write_text(f"5 N\n{line}\n")
    with pytest.raises(ValueError, match=r"labels.txt:2:"):
        read_labels(f)


def test_record_labels_use_the_device_indices_and_the_reference_classes() -> None:
    fs = 360.0
    ref = [1000, 1400, 1800, 2200, 2600, 3000]
    sym = ["N", "V", "A", "Q", "|", "N"]  # "|" is not a beat annotation
    # the device found beats a few samples off the reference, one extra, and missed 2200
    device = [1003, 1396, 1810, 2700, 2995]
    idx, cls = record_labels(device, ref, sym, fs, end=4000)
    assert idx.tolist() == [1003, 1396, 1810, 2995]
    assert cls.tolist() == [0, 2, 1, 0]
    # only the learning period is labelled
    idx, cls = record_labels(device, ref, sym, fs, end=1500)
    assert idx.tolist() == [1003, 1396]


def test_record_labels_skip_beats_without_an_aami_class() -> None:
    idx, cls = record_labels([500, 900], [502, 899], ["?", "L"], 360.0, end=1000)
    assert (idx.tolist(), cls.tolist()) == ([900], [0])


def test_personalize_command_from_record_trains_the_device(mitdb: Path,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    rc = main(["personalize", "sim://?inject_only=1&speed=max", "--from-record",
               str(mitdb / "119"), "--seconds", "60", "--key", U.DEV_KEY.hex(), "--json"])
    out = capsys.readouterr().out
    assert rc == 0, out
    result = json.loads(out)
    assert result["state"] == "TRAINED" and result["head_version"] == 1
    assert result["labels"] == result["trainer_labelled"] > 40  # about a minute of beats
    assert result["classes"]["V"] > 0  # record 119 has ventricular bigeminy


def test_personalize_command_without_a_key_says_how_to_give_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(U.KEY_ENV, raising=False)
    f = tmp_path / "labels.txt"
    f.write_text("100 N\n")
    rc = main(["personalize", "sim://?inject_only=1", "--labels", str(f)])
    assert rc == 2
    assert U.KEY_ENV in capsys.readouterr().err

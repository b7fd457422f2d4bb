"""`ecgedge validate qrs` on the reference databases and on a WFDB database written here.

Expected beat counts come straight from the annotation files (README's beat symbols, outside
VF episodes, from the scoring start); detector scores are only checked for consistency (the
detector is tuned elsewhere), except on the written database where a stand-in detector makes
them exact.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import wfdb

from ecgedge.cli import main
from ecgedge.validation.wfdb_db import read_annotations, read_lead

BEATS = set("NLRBAaJSVrFejnE/fQ?")  # WFDB beat symbols (README)
COUNT_KEYS = {"tp", "fp", "fn", "se", "ppv", "f1"}

FS_SRC, FS_NEW, SECONDS = 360, 250, 180  # the written database: 3 min of mitdb/100 at 250 Hz
ADU_PER_UV = 2.0


@pytest.fixture(autouse=True)
def plain_wide_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain-text tables wide enough not to wrap, whatever the calling terminal."""
    monkeypatch.setenv("COLUMNS", "160")
    monkeypatch.delenv("FORCE_COLOR", raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    """`ecgedge validate qrs ARGV...`: exit status, stdout, stderr."""
    rc = main(["validate", "qrs", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def beats_from(samples: npt.ArrayLike, symbols: list[str], start: int) -> int:
    """Reference beats at or after `start`, not inside a `[`..`]` VF episode."""
    n, in_vf = 0, False
    for s, y in zip(np.asarray(samples).tolist(), symbols):
        if y == "[":
            in_vf = True
        elif y == "]":
            in_vf = False
        elif y in BEATS and not in_vf and s >= start:
            n += 1
    return n


def scored_beats(db: Path, record: str, start_s: float) -> int:
    ann = wfdb.rdann(str(db / record), "atr")
    fs = wfdb.rdheader(str(db / record)).fs
    return beats_from(ann.sample, ann.symbol, round(start_s * fs))


def table_rows(out: str, names: set[str]) -> dict[str, list[str]]:
    """Rows of the printed tables whose first cell is in `names`: their last six cells."""
    rows = {}
    for line in out.splitlines():
        cells = line.split()
        if cells and cells[0] in names:
            rows[cells[0]] = cells[-6:]
    return rows


def check_counts(c: dict[str, Any]) -> None:
    """One counts object of the JSON: keys, and percentages recomputed from TP, FP, FN."""
    assert set(c) == COUNT_KEYS
    tp, fp, fn = c["tp"], c["fp"], c["fn"]
    assert c["se"] == pytest.approx(100 * tp / (tp + fn), abs=0.005)
    assert c["ppv"] == pytest.approx(100 * tp / (tp + fp), abs=0.005)
    assert c["f1"] == pytest.approx(200 * tp / (2 * tp + fp + fn), abs=0.005)


def check_table_matches(out: str, counts: dict[str, dict[str, Any]]) -> None:
    rows = table_rows(out, set(counts))
    assert set(rows) == set(counts)
    for name, c in counts.items():
        assert rows[name] == [str(c["tp"]), str(c["fp"]), str(c["fn"]),
                              f"{c['se']:.2f}", f"{c['ppv']:.2f}", f"{c['f1']:.2f}"]


# --- the reference databases ---------------------------------------------------------------------

def test_mitdb_records_json_shape_and_table_agree(mitdb: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "out.json"
    rc, out, _ = run(capsys, "--db", mitdb, "--records", "100", "101", "--json", out_json)
    assert rc == 0
    result = json.loads(out_json.read_text())
    assert set(result) == {"gross", "records", "by_snr"}
    assert list(result["records"]) == ["100", "101"]
    assert result["by_snr"] == {}
    for name, c in result["records"].items():
        check_counts(c)
        assert c["tp"] + c["fn"] == scored_beats(mitdb, name, 300.0)
    gross = result["gross"]
    check_counts(gross)
    for k in ("tp", "fp", "fn"):
        assert gross[k] == sum(c[k] for c in result["records"].values())
    check_table_matches(out, {**result["records"], "gross": gross})


def test_start_0_scores_whole_records(mitdb: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "out.json"
    rc, _, _ = run(capsys, "--db", mitdb, "--records", "100", "--start", "0",
                   "--json", out_json)
    assert rc == 0
    c = json.loads(out_json.read_text())["records"]["100"]
    assert c["tp"] + c["fn"] == scored_beats(mitdb, "100", 0.0)


def test_nstdb_totals_per_snr_and_skips_unannotated_noise_records(
        nstdb: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "out.json"
    rc, out, err = run(capsys, "--db", nstdb, "--json", out_json)
    assert rc == 0
    result = json.loads(out_json.read_text())
    listed = (nstdb / "RECORDS").read_text().split()
    annotated = [r for r in listed if (nstdb / f"{r}.atr").exists()]
    assert list(result["records"]) == annotated
    noise_only = sorted(set(listed) - set(annotated))
    assert noise_only == ["bw", "em", "ma"]
    assert " ".join(noise_only) in err
    snr_of = {name: str(int(name[-2:].replace("_", "-"))) for name in annotated}
    assert list(result["by_snr"]) == ["24", "18", "12", "6", "0", "-6"]
    for snr, c in result["by_snr"].items():
        check_counts(c)
        members = [n for n in annotated if snr_of[n] == snr]
        assert len(members) == 2
        for k in ("tp", "fp", "fn"):
            assert c[k] == sum(result["records"][n][k] for n in members)
    snr_rows = table_rows(out, {"+24", "+18", "+12", "+6", "0", "-6"})
    assert len(snr_rows) == 6


# --- a database written here: other rate, units, channel count ----------------------------------

def write_record(db: Path, name: str, fs: float, signals_mv: list[npt.NDArray[np.float64]],
                 units: list[str], scale: list[float]) -> None:
    """Write a format-16 record; `scale` converts each signal from mV to its `units`."""
    p = np.column_stack([s * k for s, k in zip(signals_mv, scale)])
    wfdb.wrsamp(name, fs=fs, units=units, sig_name=[f"s{i}" for i in range(p.shape[1])],
                p_signal=p, fmt=["16"] * p.shape[1], adc_gain=[ADU_PER_UV] * p.shape[1],
                baseline=[0] * p.shape[1], write_dir=str(db))


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory, mitdb: Path) -> dict[str, Any]:
    """3 minutes of mitdb/100 resampled to 250 Hz, in µV, 3 channels (MLII is #1), plus an
    unannotated record; V5 (#2) has invalid samples at the start and at 10 s."""
    from scipy.signal import resample_poly

    db = tmp_path_factory.mktemp("db250")
    src = wfdb.rdrecord(str(mitdb / "100"), sampto=SECONDS * FS_SRC)
    mlii, v5 = (resample_poly(src.p_signal[:, i], FS_NEW, FS_SRC) for i in (0, 1))
    t = np.arange(mlii.size) / FS_NEW
    breathing = 0.5 * np.sin(2 * np.pi * 0.3 * t)  # not an ECG: the wrong channel finds nothing
    v5[:3] = np.nan
    v5[10 * FS_NEW:10 * FS_NEW + 10] = np.nan
    write_record(db, "r100", FS_NEW, [breathing, mlii, v5], ["uV"] * 3, [1e3] * 3)
    write_record(db, "n1", FS_NEW, [breathing, breathing], ["mV"] * 2, [1.0] * 2)

    ann = wfdb.rdann(str(mitdb / "100"), "atr", sampto=SECONDS * FS_SRC)
    samples = np.rint(ann.sample * (FS_NEW / FS_SRC)).astype(np.int64)
    wfdb.wrann("r100", "atr", samples, symbol=ann.symbol, fs=FS_NEW, write_dir=str(db))
    wfdb.wrann("r100", "hi", 2 * samples, symbol=ann.symbol, fs=2 * FS_NEW, write_dir=str(db))
    return {"db": db, "mlii": mlii, "v5": v5, "samples": samples, "symbols": list(ann.symbol)}


def test_any_wfdb_database_works(written: dict[str, Any], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "out.json"
    rc, out, err = run(capsys, "--db", written["db"], "--channel", "1", "--start", "0",
                       "--json", out_json)
    assert rc == 0
    assert "n1" in err  # skipped: no annotation file
    result = json.loads(out_json.read_text())
    assert list(result["records"]) == ["r100"]
    c = result["records"]["r100"]
    assert c["tp"] + c["fn"] == beats_from(written["samples"], written["symbols"], 0)
    assert c["se"] > 95 and c["ppv"] > 95  # clean MLII: any working detector does this
    check_table_matches(out, result["records"])


def test_detector_gets_the_chosen_channel_in_mv_at_the_header_rate(
        written: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    beat_samples = [s for s, y in zip(written["samples"], written["symbols"]) if y in BEATS]

    def stand_in(signal_mv: npt.NDArray[np.float64], fs_hz: float,
                 mains_hz: int | None = 50) -> npt.NDArray[np.int64]:
        seen.update(signal=signal_mv, fs=fs_hz, mains=mains_hz)
        return np.asarray(beat_samples, dtype=np.int64)

    monkeypatch.setattr("ecgedge.core.detect_qrs", stand_in)
    out_json = tmp_path / "out.json"
    rc, _, _ = run(capsys, "--db", written["db"], "--channel", "1", "--start", "30",
                   "--mains", "60", "--json", out_json)
    assert rc == 0
    assert seen["fs"] == FS_NEW and seen["mains"] == 60
    np.testing.assert_allclose(seen["signal"], written["mlii"], atol=1e-3 / ADU_PER_UV)
    c = json.loads(out_json.read_text())["records"]["r100"]
    expected = beats_from(written["samples"], written["symbols"], 30 * FS_NEW)
    assert (c["tp"], c["fp"], c["fn"], c["se"], c["ppv"]) == (expected, 0, 0, 100, 100)


def test_invalid_samples_hold_the_previous_valid_value(written: dict[str, Any]) -> None:
    lead = read_lead(written["db"], "r100", 2)
    v5, x = written["v5"], lead.signal_mv
    bad = np.isnan(v5)
    assert lead.invalid_samples == bad.sum() == 13
    assert np.all(x[:3] == x[3])  # leading: the first valid value
    i = 10 * FS_NEW
    assert np.all(x[i:i + 10] == x[i - 1])
    np.testing.assert_allclose(x[~bad], v5[~bad], atol=1e-3 / ADU_PER_UV)


def test_annotations_at_their_own_time_resolution_are_rescaled(written: dict[str, Any]) -> None:
    hi = read_annotations(written["db"], "r100", "hi", FS_NEW)
    assert hi.samples.tolist() == written["samples"].tolist()
    assert list(hi.symbols) == written["symbols"]


# --- errors --------------------------------------------------------------------------------------

def tiny_db(tmp_path: Path, fs: float, units: str) -> Path:
    db = tmp_path / "tiny"
    db.mkdir()
    x = np.sin(np.arange(int(20 * fs)) / fs)
    write_record(db, "t1", fs, [x], [units], [1.0])
    wfdb.wrann("t1", "atr", np.array([int(fs)]), symbol=["N"], fs=fs, write_dir=str(db))
    return db


Argv = Callable[[Path, Path], list[str | Path]]  # (mitdb, tmp_path) -> arguments

ERROR_CASES: dict[str, tuple[Argv, str]] = {
    "missing directory": (lambda mitdb, tmp: ["--db", tmp / "nope"], "no such directory"),
    "directory without records": (lambda mitdb, tmp: ["--db", tmp], "no WFDB records"),
    "unknown record": (lambda mitdb, tmp: ["--db", mitdb, "--records", "999"],
                       "unknown record '999'"),
    "channel out of range": (lambda mitdb, tmp: ["--db", mitdb, "--records", "100",
                                                 "--channel", "2"], "pass --channel 0..1"),
    "record without annotations": (lambda mitdb, tmp: ["--db", mitdb.parent / "nstdb",
                                                       "--records", "bw"], "no 'atr' annotation"),
    "records shorter than the start": (lambda mitdb, tmp: ["--db", mitdb, "--records", "100",
                                                           "--start", "4000"], "--start 0"),
    "rate the detector does not support": (lambda mitdb, tmp: ["--db", tiny_db(tmp, 100, "mV")],
                                           "supports 125 to 1000 Hz"),
    "channel that is not a voltage": (lambda mitdb, tmp: ["--db", tiny_db(tmp, 250, "mmHg")],
                                      "not a voltage"),
    "json in a missing directory": (lambda mitdb, tmp: ["--db", mitdb, "--records", "100",
                                                        "--json", tmp / "no" / "x.json"],
                                    "existing directory"),
}


@pytest.mark.parametrize("case", ERROR_CASES)
def test_errors_exit_nonzero_with_one_line_saying_what_to_do(
        case: str, mitdb: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_argv, fragment = ERROR_CASES[case]
    rc, out, err = run(capsys, *make_argv(mitdb, tmp_path))
    assert rc == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ecgedge: error: ")
    assert fragment in lines[0]


@pytest.mark.parametrize("argv", [["--channel", "-1"], ["--mains", "55"], ["--start", "soon"]])
def test_bad_option_values_are_usage_errors(argv: list[str], mitdb: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, "--db", mitdb, *argv)
    assert rc == 2
    assert argv[0] in err.strip().splitlines()[-1]


def test_console_script_reports_errors_without_traceback(tmp_path: Path) -> None:
    exe = shutil.which("ecgedge")
    if exe is None:
        pytest.skip("ecgedge console script not installed (pip install -e .)")
    proc = subprocess.run([exe, "validate", "qrs", "--db", str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("ecgedge: error: ")


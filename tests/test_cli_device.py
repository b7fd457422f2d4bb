"""The device commands of the `ecgedge` CLI: info, stream (WFDB / CSV / EDF read back with wfdb,
numpy and edfio and compared with the record), monitor and demo, against the virtual device."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import edfio
import numpy as np
import pytest
import wfdb

from ecgedge.cli import main

ROOT = Path(__file__).resolve().parents[1]
FS = 360


@pytest.fixture(scope="module")
def record_counts(mitdb: Path) -> np.ndarray:
    rec = wfdb.rdrecord(str(mitdb / "100"), physical=False)
    return (rec.d_signal - np.asarray(rec.baseline)).astype(np.int16)


@pytest.fixture(scope="module")
def url(mitdb: Path) -> str:
    return f"sim://{mitdb / '100'}?speed=max&mains=60"


def test_info_prints_the_device_format(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", url]) == 0
    out = capsys.readouterr().out
    assert "360 Hz" in out and "5 µV/count" in out and "INJECT" in out
    assert main(["info", url, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["leads"], info["sample_rate_hz"], info["protocol_version"]) == (2, 360, 1)


def test_stream_writes_a_wfdb_record_with_the_device_counts(
        url: str, tmp_path: Path, record_counts: np.ndarray,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stream", url, "--seconds", "2", "--out", str(tmp_path / "x.dat")]) == 0
    assert "720 samples" in capsys.readouterr().out
    rec = wfdb.rdrecord(str(tmp_path / "x"), physical=False)
    assert rec.fs == FS and rec.adc_gain == [200.0, 200.0] and rec.baseline == [0, 0]
    np.testing.assert_array_equal(rec.d_signal, record_counts[:2 * FS])
    phys = wfdb.rdrecord(str(tmp_path / "x"))
    np.testing.assert_allclose(phys.p_signal, record_counts[:2 * FS] * 0.005)


def test_stream_writes_csv_in_millivolts_with_sample_times(
        url: str, tmp_path: Path, record_counts: np.ndarray) -> None:
    out = tmp_path / "x.csv"
    assert main(["stream", url, "--seconds", "2", "--out", str(out)]) == 0
    assert out.read_text().splitlines()[0] == "time_s,lead0_mV,lead1_mV"
    data = np.loadtxt(out, delimiter=",", skiprows=1)
    assert data.shape == (2 * FS, 3)
    np.testing.assert_allclose(data[:, 0], np.arange(2 * FS) / FS, atol=1e-6)
    np.testing.assert_allclose(data[:, 1:], record_counts[:2 * FS] * 0.005, rtol=1e-9)


def test_stream_writes_edf_whose_digital_values_are_the_counts(
        url: str, tmp_path: Path, record_counts: np.ndarray) -> None:
    out = tmp_path / "x.edf"
    assert main(["stream", url, "--seconds", "2", "--out", str(out)]) == 0
    edf = edfio.read_edf(out)
    assert len(edf.signals) == 2 and edf.duration == 2.0
    for i, sig in enumerate(edf.signals):
        assert sig.sampling_frequency == FS and sig.physical_dimension == "mV"
        np.testing.assert_array_equal(sig.digital, record_counts[:2 * FS, i])
        np.testing.assert_allclose(sig.data, record_counts[:2 * FS, i] * 0.005, atol=1e-9)
    assert not [a for a in edf.annotations if a.text == "gap"]


def test_stream_rejects_an_unknown_extension_and_a_bad_url(
        url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stream", url, "--out", str(tmp_path / "x.xyz")]) == 2
    assert ".csv" in capsys.readouterr().err
    assert main(["stream", "bogus://x", "--seconds", "1"]) == 2
    assert "supported: " in capsys.readouterr().err
    assert main(["info", "socket://127.0.0.1:1", "--timeout", "0.2"]) == 1
    assert "cannot connect" in capsys.readouterr().err


def test_monitor_shows_heart_rate_and_ends_after_seconds(
        mitdb: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["monitor", f"sim://{mitdb / '100'}?speed=8&mains=60", "--seconds", "2"]) == 0
    out = capsys.readouterr().out
    assert "HR" in out and "bpm" in out and "done:" in out
    beats = int(out.split("done: ")[1].split()[0])
    assert beats >= 10  # ~16 s of ECG at 75 bpm


def test_demo_runs_the_packaged_excerpt_shows_the_device_classes_and_exits_0() -> None:
    proc = subprocess.run([sys.executable, "-c", "import sys; from ecgedge.cli import main; "
                           "sys.exit(main(sys.argv[1:]))", "demo", "--seconds", "10"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "MIT-BIH record 119" in proc.stdout and "done:" in proc.stdout
    assert "ODC Attribution License" in proc.stderr
    # the detector learns for a few seconds; the first beats of record 119 are normal, and the
    # device classifies each one beat late
    assert re.search(r"beats \d+ .*\[N \d+", proc.stdout), proc.stdout

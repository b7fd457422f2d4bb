"""`ecgedge validate beats` (host_sdk/ecgedge/validation/beats.py) and the classifying device.

Scoring is checked on small cases counted by hand from the EC57 / bxb rules in the module docs;
the command on real records against counts read with wfdb directly; the device's beat classes
(virtual device and the Cortex-M4 firmware in QEMU) against the host path, i.e.
`ecgedge.core.QrsDetector` beats -> `ecgedge.beats` features -> `ecgedge.classifier`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import wfdb
from hypothesis import given
from hypothesis import strategies as st

from ecgedge import beats as B
from ecgedge.classifier import BeatClassifier
from ecgedge.cli import main
from ecgedge.core import Filter, QrsDetector
from ecgedge import protocol as p
from ecgedge.protocol import Capability
from ecgedge.validation import beats as VB
from ecgedge.validation import hil
from ecgedge.validation.ec57 import Reference

ROOT = Path(__file__).resolve().parents[1]
N, S, V, F, Q = range(5)


# --------------------------------------------------------------------------------------------
# Scoring, hand-counted
# --------------------------------------------------------------------------------------------

@pytest.fixture()
def small() -> VB.Confusion:
    # reference N N N S S V V F Q labelled n s v s n v v v v; one V missed; extra beats v and n
    return VB.Confusion.of([N, N, N, S, S, V, V, F, Q], [N, S, V, S, N, V, V, V, V],
                           missed=[V], extra=[V, N])


def test_confusion_counts_pairs_missed_and_extra_beats(small: VB.Confusion) -> None:
    assert small.matrix.tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [0, 0, 2, 0, 0],
                                     [0, 0, 1, 0, 0], [0, 0, 1, 0, 0]]
    assert small.missed.tolist() == [0, 0, 1, 0, 0]
    assert small.extra.tolist() == [1, 0, 1, 0, 0]


def test_per_class_se_and_ppv_count_missed_and_extra_beats(small: VB.Confusion) -> None:
    n, v = small.class_stats(N), small.class_stats(V)
    assert (n.tp, n.fn, n.fp) == (1, 2, 2)  # N row 3 beats; n column N+S+extra = 3
    assert (v.tp, v.fn, v.fp) == (2, 1, 4)  # V row 2 + 1 missed; v column 5 + 1 extra
    assert n.se == pytest.approx(100 / 3) and v.ppv == pytest.approx(100 / 3)


def test_veb_leaves_fusion_and_unknown_beats_labelled_v_out(small: VB.Confusion) -> None:
    st = VB.veb_stats(small)
    # TP Vv=2; FN Vo=1; FP Nv + Sv + Ov = 1+0+1 (Fv, Qv not counted);
    # TN rows N S F Q O in columns n s f q: 2 + 2 + 0 + 0 + 1
    assert (st.tp, st.fn, st.fp, st.tn) == (2, 1, 2, 5)
    assert (st.se, st.ppv, st.fpr) == pytest.approx((200 / 3, 50.0, 200 / 7))


def test_sveb_counts_n_v_f_and_extra_beats_labelled_s_as_false_positives(
        small: VB.Confusion) -> None:
    st = VB.sveb_stats(small)
    # TP Ss=1; FN Sn=1; FP Ns=1; TN rows N V F Q O in columns n v f q: 2 + 2 + 1 + 1 + 2
    assert (st.tp, st.fn, st.fp, st.tn) == (1, 1, 1, 8)
    assert (st.se, st.ppv, st.fpr) == pytest.approx((50.0, 50.0, 100 / 9))


def test_labels_outside_the_classes_count_as_unknown_and_matrices_add() -> None:
    m = VB.Confusion.of([N, V], [255, 7]) + VB.Confusion.of([N], [N])
    assert m.matrix[N].tolist() == [1, 0, 0, 0, 1] and m.matrix[V].tolist() == [0, 0, 0, 0, 1]
    with pytest.raises(ValueError, match="reference classes"):
        VB.Confusion.of([-1], [N])


def test_undefined_percentages_are_null_in_json() -> None:
    d = VB.Confusion.of([N], [N]).as_dict()
    assert d["S"] == {"se": None, "ppv": None} and d["N"] == {"se": 100.0, "ppv": 100.0}
    assert d["veb"]["se"] is None and d["veb"]["fpr"] == 0.0


def _synthetic_record() -> VB.BeatRecord:
    samples = [1000, 2000, 3000, 4000, 4500]
    symbols = ["N", "A", "V", "Q", "?"]  # '?' is a beat without an AAMI class
    pos, cls = B.reference_beats(samples, symbols)
    return VB.BeatRecord("syn", np.zeros(6000, np.int16), 360, 5.0, "MLII", pos, cls,
                         Reference.from_annotations(samples, symbols, 5999))


def test_detections_match_within_150_ms_and_unclassified_references_are_not_scored() -> None:
    rec = _synthetic_record()
    # 1010 matches N; 2100 is 278 ms from the S beat: the S is missed and 2100 is extra;
    # 3050 matches V (139 ms); 4020 matches Q; 4500 matches '?' (not scored); 5500 extra
    m = VB.score_detections(rec, np.array([1010, 2100, 3050, 4020, 4500, 5500]),
                            np.array([N, S, V, N, S, F]))
    want = np.zeros((5, 5), int)
    want[N, N] = want[V, V] = want[Q, N] = 1
    assert m.matrix.tolist() == want.tolist()
    assert m.missed.tolist() == [0, 1, 0, 0, 0] and m.extra.tolist() == [0, 1, 0, 1, 0]


def test_reference_scoring_skips_unclassified_beats_and_the_learning_period() -> None:
    rec = _synthetic_record()
    m = VB.score_reference(rec, np.array([N, N, V, Q, V]), start=1500)
    assert m.matrix[S, N] == 1 and m.matrix[V, V] == 1 and m.matrix[Q, Q] == 1
    assert int(m.matrix.sum()) == 3  # 1000 is before the start, '?' has no class


def test_ds1_and_ds2_expand_to_de_chazals_lists() -> None:
    assert VB.expand_records(["DS2"]) == list(B.DS2) and len(B.DS2) == 22
    assert VB.expand_records(["ds1", "100", "101"]) == [*B.DS1, "100"]  # 101 is in DS1
    assert VB.expand_records(None) is None


# --------------------------------------------------------------------------------------------
# The command on records
# --------------------------------------------------------------------------------------------

def _aami_counts(mitdb: Path, name: str) -> np.ndarray:
    ann = wfdb.rdann(str(mitdb / name), "atr")
    cls = [B.aami_class(s) for s in ann.symbol]
    return np.bincount([c for c in cls if c >= 0], minlength=5)


def test_cli_scores_two_records_in_both_modes(mitdb: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "beats.json"
    assert main(["validate", "beats", "--db", str(mitdb), "--records", "100", "213", "--json",
                 str(out), "-q"]) == 0
    text = capsys.readouterr().out
    assert "reference positions" in text and "end to end" in text and "SVEB" in text
    d = json.loads(out.read_text())
    assert {"reference", "end_to_end"} <= set(d)
    for mode in ("reference", "end_to_end"):
        r = d[mode]
        for c in "NSVF":
            assert set(r[c]) == {"se", "ppv"}
        m = np.array(r["confusion"])
        assert m.shape == (5, 5) and set(r["veb"]) >= {"se", "ppv", "fpr"}
        want_se = 100 * m[V, V] / (m[V].sum() + r["missed"][V])
        assert r["V"]["se"] == pytest.approx(want_se, abs=0.006)
    # reference mode classifies every annotated beat with an AAMI class, nothing else
    ref_rows = np.array(d["reference"]["confusion"]).sum(axis=1)
    assert ref_rows.tolist() == (_aami_counts(mitdb, "100") + _aami_counts(mitdb, "213")).tolist()
    # end to end: every reference beat is either matched or missed
    e2e = d["end_to_end"]
    assert (np.array(e2e["confusion"]).sum(axis=1) + e2e["missed"]).tolist() == ref_rows.tolist()
    assert set(d["records"]) == {"100", "213"}


def test_unknown_record_is_a_usage_error(mitdb: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "beats", "--db", str(mitdb), "--records", "999", "-q"]) == 2
    assert "unknown record '999'" in capsys.readouterr().err


def test_device_run_on_the_virtual_device_scores_like_the_host(
        mitdb: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    host, dev = tmp_path / "host.json", tmp_path / "dev.json"
    assert main(["validate", "beats", "--db", str(mitdb), "--records", "119", "--json",
                 str(host), "-q"]) == 0
    assert main(["validate", "beats", "--db", str(mitdb), "--records", "119", "--json", str(dev),
                 "--device", "sim://", "-q"]) == 0
    capsys.readouterr()
    h, d = json.loads(host.read_text()), json.loads(dev.read_text())
    assert d["end_to_end"] == h["end_to_end"] and d["reference"] == h["reference"]
    assert d["settings"]["device"] == "sim://"


# --------------------------------------------------------------------------------------------
# BEAT_EVENT confidence (§6.4) and device classes = host path (sim and QEMU)
# --------------------------------------------------------------------------------------------

@given(st.binary(min_size=9, max_size=40))
def test_beat_event_parses_with_or_without_the_confidence_byte(payload: bytes) -> None:
    b = p.parse_payload(p.FrameType.BEAT_EVENT, payload)
    assert b.sample_index == int.from_bytes(payload[:4], "little")
    assert b.flags == payload[8]
    assert b.confidence == (payload[9] if len(payload) >= 10 else None)
    fields = {k: b[k] for k in ("sample_index", "rr_samples", "beat_class", "quality", "flags",
                                "confidence")}
    assert p.build_payload(p.FrameType.BEAT_EVENT, fields) == payload[:10]


@given(st.binary(max_size=8))
def test_beat_event_shorter_than_nine_bytes_is_malformed(payload: bytes) -> None:
    with pytest.raises(p.ProtocolError) as e:
        p.parse_payload(p.FrameType.BEAT_EVENT, payload)
    assert e.value.code == p.ErrorCode.LENGTH


def host_classes(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Beats, classes and confidence bytes of the host path on the device's millivolts."""
    mv = counts.astype(np.float32) * (np.float32(5.0) / np.float32(1000.0))
    det = QrsDetector(360, mains_hz=60)
    r = np.concatenate([det.process(mv), det.flush()])
    filt = Filter(360, 60)
    bf = B.beat_features(filt.process(mv), 360, r, B.filter_delay(filt.delay_samples))
    clf = BeatClassifier()
    logits, _ = clf.run_batch(*clf.quantize_inputs(bf.window, bf.rr))
    conf = np.array([round(255 * clf.decide(lg).confidence) for lg in logits])
    return r, np.argmax(logits, axis=1), conf


def counts_of(mitdb: Path, name: str, n: int | None = None) -> np.ndarray:
    kw = {} if n is None else {"sampto": n}
    rec = wfdb.rdrecord(str(mitdb / name), channels=[0], physical=False, **kw)
    return np.asarray(rec.d_signal[:, 0] - rec.baseline[0], dtype=np.int16)


def assert_device_classes(run: hil.HilRun, counts: np.ndarray, what: str) -> None:
    r, cls, conf = host_classes(counts)
    assert run.beats.tolist() == r.tolist(), f"{what}: beats differ"
    assert run.classes.tolist() == cls.tolist(), f"{what}: classes differ from the host path"
    got = np.rint(run.confidence * 255).astype(int)
    assert np.abs(got - conf).max() <= 1, f"{what}: confidence bytes differ"
    assert len(set(cls.tolist())) >= 2  # a record with more than one class


def test_virtual_device_classifies_every_beat_like_the_host(mitdb: Path) -> None:
    counts = counts_of(mitdb, "208")
    with hil.connect("sim://", fs_hz=360, gain_uv_per_count=5.0) as dev:
        caps = dev.last_info.capabilities
        assert Capability.CLASSIFIER in caps and Capability.BEAT_CONFIDENCE in caps
        run = hil.inject_record(dev, counts, fs_hz=360, gain_uv_per_count=5.0, mains_hz=60)
    assert_device_classes(run, counts, "virtual device, record 208")


def test_qemu_firmware_classifies_every_beat_like_the_host(mitdb: Path) -> None:
    if not (shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc")):
        if os.environ.get("CI"):
            pytest.fail("CI must run the QEMU device tests")
        pytest.skip("qemu-system-arm / arm-none-eabi-gcc not installed (see tests/test_hil.py)")
    subprocess.run(["make", "-s", "-C", str(ROOT / "firmware" / "qemu"), "device"], check=True,
                   capture_output=True, timeout=600)
    counts = counts_of(mitdb, "208", 3 * 60 * 360)  # 3 minutes: ~4 s through QEMU's UART
    with hil.connect("qemu://") as dev:
        run = hil.inject_record(dev, counts, fs_hz=360, gain_uv_per_count=5.0, mains_hz=60)
    assert_device_classes(run, counts, "QEMU Cortex-M4, record 208")

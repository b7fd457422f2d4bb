"""The committed beat classifier (`models/beat_tx.tflite`) under the TFLM reference interpreter.

Checks the file against its model card (sha256, op set, input/output quantization), that every
tensor is int8 or int32 (no float islands), the op set the firmware supports, and the golden
vectors (`models/beat_tx.vectors.json`): features recomputed from the records with
`ecgedge.beats` must match bit for bit, and TFLM must give the recorded int8 outputs.

Needs the PyPI package `tflite-micro` (the TFLM Python interpreter); skipped without it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from ecgedge import beats as B
from ecgedge.core import Filter
from ecgedge.validation.wfdb_db import read_annotations, read_lead

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "beat_tx.tflite"
CARD = ROOT / "models" / "beat_tx.json"
VECTORS = ROOT / "models" / "beat_tx.vectors.json"

# What the firmware's int8 kernels cover (the budgeted op set).
FIRMWARE_OPS = {"FULLY_CONNECTED", "BATCH_MATMUL", "SOFTMAX", "ADD", "MUL", "RESHAPE",
                "TRANSPOSE", "MEAN", "AVERAGE_POOL_2D"}
WEIGHTS_BUDGET = 32 * 1024
ARENA_BUDGET = 16 * 1024

pytest.importorskip(
    "tflite_micro",
    reason="TFLM Python interpreter not installed: pip install tflite-micro==0.dev20261023182759",
)


def _tools() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_ecgedge_tools_export_tflite",
                                                  ROOT / "tools" / "export_tflite.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while it loads
    spec.loader.exec_module(mod)
    return mod


X = _tools()


@pytest.fixture(scope="module")
def data() -> bytes:
    assert MODEL.is_file(), f"{MODEL} is missing: run tools/train_classifier.py --out models/"
    return MODEL.read_bytes()


@pytest.fixture(scope="module")
def card() -> dict[str, Any]:
    return json.loads(CARD.read_text())


@pytest.fixture(scope="module")
def info(data: bytes) -> Any:
    return X.inspect_tflite(data)


def test_card_describes_this_file(data: bytes, card: dict[str, Any], info: Any) -> None:
    assert card["sha256"] == hashlib.sha256(data).hexdigest()
    assert card["file_bytes"] == len(data)
    assert card["op_set"] == info.op_names


def test_only_int8_and_int32_tensors(info: Any) -> None:
    assert info.non_int_tensors() == []
    for i in (*info.inputs, *info.outputs):
        t = info.tensor(i)
        assert t.type == "INT8", (t.name, t.type)
        assert len(t.scale) == 1 and len(t.zero_point) == 1


def test_io_shapes_and_quantization(info: Any, card: dict[str, Any]) -> None:
    ins = {next(k for k in ("window", "rr", "diff") if k in info.tensor(i).name): info.tensor(i)
           for i in info.inputs}
    assert ins["window"].shape == (1, B.WINDOW_LEN)
    assert ins["rr"].shape == (1, B.N_RR_FEATURES)
    assert set(ins) == set(card["inputs"])
    if "diff" in ins:
        assert ins["diff"].shape == (1, B.WINDOW_LEN)
    for k in ins:
        assert card["inputs"][k]["scale"] == pytest.approx(ins[k].scale[0], rel=0, abs=0)
        assert card["inputs"][k]["zero_point"] == ins[k].zero_point[0]
    sizes = sorted(int(np.prod(info.tensor(i).shape)) for i in info.outputs)
    assert sizes[0] == len(B.AAMI_CLASSES) and 8 <= sizes[1] <= 32


def test_op_set_and_budgets(info: Any, data: bytes) -> None:
    assert set(info.op_names) <= FIRMWARE_OPS, set(info.op_names) - FIRMWARE_OPS
    assert info.weight_bytes() <= WEIGHTS_BUDGET
    assert X.arena_bytes(data) <= ARENA_BUDGET


def test_head_is_the_last_dense_layer(info: Any) -> None:
    """logits = FULLY_CONNECTED(embedding): the firmware swaps that layer's weights and bias."""
    logits = next(i for i in info.outputs if int(np.prod(info.tensor(i).shape)) == 5)
    emb = next(i for i in info.outputs if i != logits)
    op = next(o for o in info.ops if logits in o.outputs)
    assert op.op == "FULLY_CONNECTED" and op.inputs[0] == emb
    w = info.tensor(op.inputs[1])
    assert w.shape == (5, int(np.prod(info.tensor(emb).shape))) and w.is_constant


@pytest.fixture(scope="module")
def vectors(data: bytes) -> dict[str, Any]:
    doc = json.loads(VECTORS.read_text())
    assert doc["model_sha256"] == hashlib.sha256(data).hexdigest(), "vectors are stale"
    return doc


def test_golden_vectors_through_tflm(data: bytes, vectors: dict[str, Any]) -> None:
    run = X.Tflm(data)
    assert [run.window_quant[0], run.window_quant[1]] == vectors["window_quant"]
    for beat in vectors["beats"]:
        dq = np.asarray([beat["diff_q"]], np.int8) if run.has_diff else None
        lg, em = run.run(np.asarray([beat["window_q"]], np.int8),
                         np.asarray([beat["rr_q"]], np.int8), dq)
        assert lg[0].tolist() == beat["logits_q"]
        assert em[0].tolist() == beat["embedding_q"]


def test_golden_vectors_features_from_records(mitdb: Path, vectors: dict[str, Any]) -> None:
    ws, wz = vectors["window_quant"]
    rs, rz = vectors["rr_quant"]
    by_record: dict[str, list[dict[str, Any]]] = {}
    for beat in vectors["beats"]:
        by_record.setdefault(beat["record"], []).append(beat)
    for name, beats in by_record.items():
        import wfdb

        ch = list(wfdb.rdheader(str(mitdb / name)).sig_name).index("MLII")
        lead = read_lead(mitdb, name, ch)
        ann = read_annotations(mitdb, name, "atr", lead.fs_hz)
        pos, cls = B.reference_beats(ann.samples, ann.symbols)
        filt = Filter(lead.fs_hz, 60)
        bf = B.beat_features(filt.process(lead.signal_mv), lead.fs_hz, pos,
                             B.filter_delay(filt.delay_samples))
        for beat in beats:
            i = beat["beat_index"]
            assert pos[i] == beat["r_sample"]
            assert np.array_equal(bf.window[i], np.asarray(beat["window_f32"], np.float32))
            assert np.array_equal(bf.rr[i], np.asarray(beat["rr_f32"], np.float32))
            assert B.quantize(bf.window[i], ws, wz).tolist() == beat["window_q"]
            assert B.quantize(bf.rr[i], rs, rz).tolist() == beat["rr_q"]
            if "diff_quant" in vectors:
                ds, dz = vectors["diff_quant"]
                assert np.array_equal(bf.diff[i], np.asarray(beat["diff_f32"], np.float32))
                assert B.quantize(bf.diff[i], ds, dz).tolist() == beat["diff_q"]


def test_classifies_training_beats(vectors: dict[str, Any]) -> None:
    """Sanity: the golden beats come from DS1 (training data); nearly all are called right."""
    right = [b["predicted"] == b["class"] for b in vectors["beats"] if b["class"] is not None]
    assert sum(right) >= 0.75 * len(right)

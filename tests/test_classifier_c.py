"""The firmware's int8 beat classifier against the TensorFlow Lite Micro reference interpreter.

`ecg_classifier` runs the C kernels of `firmware/src/core/ecg_nn.c` over the tables that
`tools/gen_model_c.py` compiles from `models/beat_tx.tflite` (`ecg_model_data.{c,h}`). Checked here:

(a) the generated files are fresh (`python tools/gen_model_c.py --check`) and `ecgedge._core` was
    built from them;
(b) bit-exact with TFLM on every MIT-BIH DS2 beat (reference beat positions, features from
    `ecgedge.beats`, quantized with the compiled model's input parameters): every logit and every
    embedding value identical, both for the plain C kernels (through the Python extension) and for
    the Cortex-M4 DSP code path (SMLAD/SMMULR/SSAT), built for the host with models of those
    instructions (`-DECG_HAVE_DSP=1 -DECG_NN_DSP_EMULATE`); on the target itself the QEMU bench
    runs the compiled-in sample beats (`tools/bench_firmware.py`, `clf_selftest_failed`);
(c) the kernels the generator can emit but beat_tx does not use (CONV_2D, DEPTHWISE_CONV_2D,
    AVERAGE_POOL_2D, 4-D MEAN, standalone RELU, ...) on small synthetic models converted with
    TensorFlow, against TFLM on random inputs (skipped without TensorFlow);
(d) the C compiles clean with `-std=c99 -Wall -Wextra -Werror -pedantic -Wconversion` on the host
    and with arm-none-eabi-gcc for Cortex-M4F (DSP path) and Cortex-M0+ (plain path);
plus the Python API (`ecgedge.classifier`): input validation, head replacement, decision, and the
generator failing loudly on an operator it has no kernel for.

TFLM runs every DS2 beat live (about 0.1 ms per beat, so ~5 s); no precomputed reference file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "beat_tx.tflite"
GEN = ROOT / "tools" / "gen_model_c.py"
INCLUDE = ROOT / "firmware" / "include"
CORE = ROOT / "firmware" / "src" / "core"
NN_SOURCES = [CORE / "ecg_nn.c", CORE / "ecg_classifier.c", CORE / "ecg_model_data.c",
              CORE / "ecg_types.c"]
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wconversion"]
TIMEOUT_S = 300


def _gen_module() -> ModuleType:
    """tools/gen_model_c.py as a module (its TFLM integer-arithmetic ports and parser)."""
    name = "_ecgedge_gen_model_c"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, GEN)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # dataclasses look their module up while the class is built
        spec.loader.exec_module(mod)
    return sys.modules[name]


def _cc() -> list[str]:
    env_cc = shlex.split(os.environ.get("CC", ""))
    if env_cc and shutil.which(env_cc[0]):
        return env_cc
    for name in ("cc", "gcc", "clang"):
        if shutil.which(name):
            return [name]
    pytest.skip("no host C compiler")


def _run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(cmd, capture_output=True, cwd=ROOT, timeout=TIMEOUT_S, **kw)


def _build(exe: Path, sources: list[Path], include: list[Path], defines: list[str]) -> Path:
    cmd = [*_cc(), *STRICT, "-O2", *defines, *[f"-I{p}" for p in include],
           *map(str, sources), "-lm", "-o", str(exe)]
    proc = _run(cmd)
    assert proc.returncode == 0, f"$ {shlex.join(cmd)}\n{proc.stderr.decode()}"
    return exe


def _tflm() -> Any:
    pytest.importorskip("tflite_micro", reason="TFLM Python interpreter not installed "
                                               "(pip install tflite-micro)")
    from tflite_micro.python.tflite_micro import runtime

    return runtime


# A stdin -> stdout driver for any generated model: per sample, the int8 inputs in graph order,
# then the int8 outputs in graph order. With ECG_MODEL_N_CLASSES defined it is the classifier's
# interface (window, rr -> logits, embedding) through ecg_classifier_run.
DRIVER_C = r"""
#include "ecg/ecg_model_data.h"
#include <stdio.h>
#include <stdint.h>
#ifdef ECG_MODEL_N_CLASSES
#include "ecg/ecg_classifier.h"
#endif
int main(void)
{
    static uint32_t arena[(ECG_MODEL_ARENA_BYTES + 3u) / 4u];
    int8_t *a = (int8_t *)arena;
#ifdef ECG_MODEL_N_CLASSES
    ecg_classifier_t c;
    ecg_classifier_cfg_t cfg;
    int8_t in[ECG_CLASSIFIER_WINDOW_LEN + ECG_CLASSIFIER_RR_LEN];
    int8_t out[ECG_CLASSIFIER_N_CLASSES + ECG_CLASSIFIER_EMBEDDING_LEN];
    cfg.scratch = arena;
    cfg.scratch_bytes = sizeof arena;
    cfg.head = NULL;
    if (ecg_classifier_init(&c, &cfg) != ECG_OK || ecg_classifier_selftest(&c) != 0) {
        return 2;
    }
    while (fread(in, 1, sizeof in, stdin) == sizeof in) {
        if (ecg_classifier_run(&c, in, in + ECG_CLASSIFIER_WINDOW_LEN, out,
                               out + ECG_CLASSIFIER_N_CLASSES) != ECG_OK) {
            return 3;
        }
        fwrite(out, 1, sizeof out, stdout);
    }
    (void)a;
    return 0;
#else
    for (;;) {
        unsigned k;
        for (k = 0; k < ECG_MODEL_N_INPUTS; k++) {
            const ecg_nn_io_t *io = &ecg_model_inputs[k];
            if (fread(a + io->offset, 1, io->len, stdin) != io->len) {
                return 0;
            }
        }
        if (ecg_model_run(a, ECG_MODEL_ARENA_BYTES) != ECG_OK) {
            return 3;
        }
        for (k = 0; k < ECG_MODEL_N_OUTPUTS; k++) {
            fwrite(a + ecg_model_outputs[k].offset, 1, ecg_model_outputs[k].len, stdout);
        }
    }
#endif
}
"""


def _mismatch_report(name: str, got: np.ndarray, ref: np.ndarray, labels: list[str]) -> str:
    bad = np.flatnonzero(np.any(got != ref, axis=1))
    lines = [f"{name}: {bad.size} of {len(ref)} beats differ from TFLM"]
    for i in bad[:5]:
        lines.append(f"  beat {i} ({labels[i]}): C {got[i].tolist()} TFLM {ref[i].tolist()}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ (a)

def test_generated_files_are_fresh() -> None:
    _tflm()  # the generator runs TFLM for the compiled-in sample beats
    proc = _run([sys.executable, str(GEN), "--check"])
    assert proc.returncode == 0, (
        "firmware/src/core/ecg_model_data.c / ecg_model_data.h do not match "
        f"{MODEL.relative_to(ROOT)}; regenerate with `python tools/gen_model_c.py`\n"
        + proc.stderr.decode())


def test_extension_was_built_from_this_model() -> None:
    from ecgedge.classifier import BeatClassifier

    sha = hashlib.sha256(MODEL.read_bytes()).hexdigest()
    got = BeatClassifier().model.sha256
    assert got == sha, ("ecgedge._core holds another model's tables; regenerate "
                        "(python tools/gen_model_c.py) and rebuild (pip install -e . or "
                        "python setup.py build_ext --inplace)")


def test_selftest_on_compiled_in_sample_beats() -> None:
    from ecgedge.classifier import BeatClassifier

    clf = BeatClassifier()
    assert clf.model.n_samples > 0
    assert clf.selftest() == 0


# ------------------------------------------------------------------------------------ (b)

@pytest.fixture(scope="module")
def ds2(mitdb: Path) -> dict[str, Any]:
    """int8 model inputs of every DS2 beat (reference positions), with their record labels."""
    import wfdb

    from ecgedge import beats as B
    from ecgedge.classifier import BeatClassifier
    from ecgedge.core import Filter
    from ecgedge.validation.wfdb_db import read_annotations, read_lead

    clf = BeatClassifier()
    windows, rrs, labels = [], [], []
    for name in B.DS2:
        ch = list(wfdb.rdheader(str(mitdb / name)).sig_name).index("MLII")
        lead = read_lead(mitdb, name, ch)
        ann = read_annotations(mitdb, name, "atr", lead.fs_hz)
        pos, _ = B.reference_beats(ann.samples, ann.symbols)
        filt = Filter(lead.fs_hz, 60)
        bf = B.beat_features(filt.process(lead.signal_mv), lead.fs_hz, pos,
                             B.filter_delay(filt.delay_samples))
        w, r = clf.quantize_inputs(bf.window, bf.rr)
        windows.append(w)
        rrs.append(r)
        labels += [f"{name}#{k}" for k in range(len(pos))]
    return {"window": np.concatenate(windows), "rr": np.concatenate(rrs), "labels": labels}


@pytest.fixture(scope="module")
def tflm_ds2(ds2: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """TFLM's (logits, embeddings) of every DS2 beat."""
    runtime = _tflm()
    gen = _gen_module()
    model = gen.load_model(MODEL.read_bytes())
    T = model.tensors
    it = runtime.Interpreter.from_file(str(MODEL), arena_size=256 * 1024)
    k_win = next(k for k, i in enumerate(model.inputs) if "window" in T[i].name)
    k_rr = next(k for k, i in enumerate(model.inputs) if "rr" in T[i].name)
    sizes = [T[i].size for i in model.outputs]
    k_logits = sizes.index(min(sizes))
    k_emb = 1 - k_logits
    w_shape, r_shape = T[model.inputs[k_win]].shape, T[model.inputs[k_rr]].shape
    n = len(ds2["window"])
    logits = np.empty((n, sizes[k_logits]), np.int8)
    emb = np.empty((n, sizes[k_emb]), np.int8)
    for i in range(n):
        it.set_input(ds2["window"][i].reshape(w_shape), k_win)
        it.set_input(ds2["rr"][i].reshape(r_shape), k_rr)
        it.invoke()
        logits[i] = np.asarray(it.get_output(k_logits)).reshape(-1)
        emb[i] = np.asarray(it.get_output(k_emb)).reshape(-1)
    return logits, emb


def test_bit_exact_with_tflm_on_every_ds2_beat(ds2: dict[str, Any],
                                               tflm_ds2: tuple[np.ndarray, np.ndarray],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from ecgedge.classifier import BeatClassifier

    ref_logits, ref_emb = tflm_ds2
    logits, emb = BeatClassifier().run_batch(ds2["window"], ds2["rr"])
    n = len(ref_logits)
    assert n > 49_000  # MIT-BIH DS2 has 49,712 reference beats
    with capsys.disabled():
        print(f"\n[classifier] C vs TFLM on {n} DS2 beats: logits differ on "
              f"{int(np.any(logits != ref_logits, axis=1).sum())}, embeddings on "
              f"{int(np.any(emb != ref_emb, axis=1).sum())}")
    assert np.array_equal(logits, ref_logits), _mismatch_report("logits", logits, ref_logits,
                                                                ds2["labels"])
    assert np.array_equal(emb, ref_emb), _mismatch_report("embedding", emb, ref_emb,
                                                          ds2["labels"])


def test_dsp_code_path_bit_exact_on_every_ds2_beat(tmp_path: Path, ds2: dict[str, Any],
                                                   tflm_ds2: tuple[np.ndarray, np.ndarray]) -> None:
    """The Cortex-M4 path (SXTB16/SMLAD/SMMULR/SSAT), with C models of the instructions."""
    drv = tmp_path / "driver.c"
    drv.write_text(DRIVER_C)
    exe = _build(tmp_path / "clf_dsp", [drv, *NN_SOURCES], [INCLUDE],
                 ["-DECG_HAVE_DSP=1", "-DECG_NN_DSP_EMULATE"])
    inp = np.concatenate([ds2["window"], ds2["rr"]], axis=1).astype(np.int8)
    proc = _run([str(exe)], input=inp.tobytes())
    assert proc.returncode == 0, f"driver exit {proc.returncode} (2: selftest failed)"
    ref_logits, ref_emb = tflm_ds2
    out = np.frombuffer(proc.stdout, np.int8).reshape(len(inp), -1)
    k = ref_logits.shape[1]
    assert np.array_equal(out[:, :k], ref_logits), _mismatch_report(
        "logits (DSP path)", out[:, :k], ref_logits, ds2["labels"])
    assert np.array_equal(out[:, k:], ref_emb), _mismatch_report(
        "embedding (DSP path)", out[:, k:], ref_emb, ds2["labels"])


# ------------------------------------------------------------------------------------ (c)

def _synthetic_models() -> dict[str, bytes]:
    """Small int8 models over the kernels beat_tx does not exercise (TensorFlow converter)."""
    tf = pytest.importorskip("tensorflow", reason="TensorFlow needed to build synthetic models")
    keras = tf.keras
    rng = np.random.default_rng(7)

    def convert(model: Any, shapes: dict[str, tuple[int, ...]]) -> bytes:
        def rep() -> Any:
            for _ in range(64):
                yield {k: rng.normal(size=s).astype(np.float32) * 2.0 for k, s in shapes.items()}

        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
        return bytes(conv.convert())

    tf.random.set_seed(3)
    img = keras.Input((12, 6, 4), batch_size=1, name="img")
    c = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(img)
    c2 = keras.layers.Conv2D(6, (3, 2), strides=(2, 1), padding="valid")(c)
    d = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2,
                                     activation="relu6")(c)
    p = keras.layers.AveragePooling2D(2, padding="same")(d)
    m = keras.layers.ReLU()(keras.layers.GlobalAveragePooling2D()(p))  # MEAN has no fused act.
    f = keras.layers.Reshape((-1,))(c2)
    conv_model = keras.Model(img, [keras.layers.Dense(5)(m), keras.layers.Dense(7)(f)])

    seq = keras.Input((6, 8), batch_size=1, name="seq")
    vec = keras.Input((8,), batch_size=1, name="vec")
    q = keras.layers.Dense(8)(seq)
    k = keras.layers.Dense(8)(seq)
    att = keras.layers.Softmax()(keras.layers.Dot(axes=(2, 2))([q, k]) * 0.5)
    ctx = keras.layers.Dot(axes=(2, 1))([att, keras.layers.Dense(8)(seq)])
    x = keras.layers.Add()([ctx, keras.layers.Reshape((1, 8))(vec)])
    x = keras.layers.Multiply()([x, keras.layers.Dense(8)(keras.layers.Reshape((1, 8))(vec))])
    pooled = keras.layers.GlobalAveragePooling1D()(x)
    att_model = keras.Model([seq, vec], [keras.layers.Dense(4, activation="relu")(pooled), x])

    return {"conv": convert(conv_model, {"img": (1, 12, 6, 4)}),
            "attention": convert(att_model, {"seq": (1, 6, 8), "vec": (1, 8)})}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    _tflm()
    out = {}
    for name, data in _synthetic_models().items():
        d = tmp_path_factory.mktemp(f"synthetic_{name}")
        (d / f"{name}.tflite").write_bytes(data)
        out[name] = d / f"{name}.tflite"
    return out


@pytest.mark.parametrize("name", ["conv", "attention"])
@pytest.mark.parametrize("dsp", [False, True], ids=["plain", "dsp"])
def test_kernels_bit_exact_with_tflm_on_synthetic_models(synthetic: dict[str, Path], name: str,
                                                         dsp: bool, tmp_path: Path) -> None:
    runtime = _tflm()
    gen = _gen_module()
    path = synthetic[name]
    data = path.read_bytes()
    model = gen.load_model(data)
    T = model.tensors
    inc = tmp_path / "inc"
    (inc / "ecg").mkdir(parents=True)
    proc = _run([sys.executable, str(GEN), "--generic", str(path), "--out-c",
                 str(tmp_path / "ecg_model_data.c"), "--out-h",
                 str(inc / "ecg" / "ecg_model_data.h"), "--summary"])
    assert proc.returncode == 0, proc.stderr.decode()
    kinds = {ln.split()[4] for ln in proc.stdout.decode().splitlines() if ln.startswith("op ")}
    drv = tmp_path / "driver.c"
    drv.write_text(DRIVER_C)
    exe = _build(tmp_path / "model", [drv, tmp_path / "ecg_model_data.c", CORE / "ecg_nn.c",
                                      CORE / "ecg_types.c"], [inc, INCLUDE],
                 ["-DECG_HAVE_DSP=1", "-DECG_NN_DSP_EMULATE"] if dsp else [])
    rng = np.random.default_rng(11)
    n = 300
    ins = [rng.integers(-128, 128, size=(n, T[i].size), dtype=np.int8) for i in model.inputs]
    it = runtime.Interpreter.from_bytes(data, arena_size=256 * 1024)
    refs = []
    for s in range(n):
        for k, i in enumerate(model.inputs):
            it.set_input(ins[k][s].reshape(T[i].shape), k)
        it.invoke()
        refs.append(np.concatenate([np.asarray(it.get_output(k)).reshape(-1)
                                    for k in range(len(model.outputs))]))
    ref = np.stack(refs).astype(np.int8)
    stream = np.concatenate([x for s in range(n) for x in (ins[k][s] for k in range(len(ins)))])
    proc = _run([str(exe)], input=stream.astype(np.int8).tobytes())
    assert proc.returncode == 0, f"driver exit {proc.returncode}"
    got = np.frombuffer(proc.stdout, np.int8).reshape(n, -1)
    bad = np.flatnonzero(np.any(got != ref, axis=1))
    assert bad.size == 0, (f"{name} ({'DSP' if dsp else 'plain'}; kernels {sorted(kinds)}): "
                           f"{bad.size} of {n} samples differ; first: C {got[bad[0]].tolist()} "
                           f"TFLM {ref[bad[0]].tolist()}")
    expected = {"conv": {"CONV", "AVGPOOL", "MEAN", "FULLY_CONNECTED", "LUT"},
                "attention": {"BATCH_MATMUL", "SOFTMAX", "ADD", "MUL", "MEAN",
                              "FULLY_CONNECTED"}}[name]
    assert expected <= kinds, f"{name} no longer exercises {sorted(expected - kinds)}"


# ------------------------------------------------------------------------------------ (d)

@pytest.mark.parametrize("defines", [[], ["-DECG_HAVE_DSP=1", "-DECG_NN_DSP_EMULATE"]],
                         ids=["plain", "dsp-emulated"])
def test_c_compiles_clean_on_the_host(tmp_path: Path, defines: list[str]) -> None:
    for src in NN_SOURCES[:3]:
        cmd = [*_cc(), *STRICT, "-Wsign-conversion", "-O2", *defines, f"-I{INCLUDE}", "-c",
               str(src), "-o", str(tmp_path / (src.stem + ".o"))]
        proc = _run(cmd)
        assert proc.returncode == 0, f"$ {shlex.join(cmd)}\n{proc.stderr.decode()}"


@pytest.mark.parametrize("cpu", [
    ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-O2"],
    ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-Os"],
    ["-mcpu=cortex-m0plus", "-mthumb", "-O2"],
], ids=["m4f-O2", "m4f-Os", "m0plus"])
def test_c_compiles_clean_with_arm_none_eabi_gcc(tmp_path: Path, cpu: list[str]) -> None:
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    for src in NN_SOURCES[:3]:
        cmd = [gcc, *cpu, *STRICT, f"-I{INCLUDE}", "-c", str(src), "-o",
               str(tmp_path / (src.stem + ".o"))]
        proc = _run(cmd)
        assert proc.returncode == 0, f"$ {shlex.join(cmd)}\n{proc.stderr.decode()}"


# ------------------------------------------------------------------------------------ Python API

def test_batch_and_single_beat_agree_and_inputs_are_validated() -> None:
    from ecgedge.classifier import BeatClassifier

    clf = BeatClassifier()
    m = clf.model
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, size=(3, m.window_len), dtype=np.int8)
    r = rng.integers(-128, 128, size=(3, m.rr_len), dtype=np.int8)
    logits, emb = clf.run_batch(w, r)
    assert logits.shape == (3, m.n_classes) and emb.shape == (3, m.embedding_len)
    for i in range(3):
        lg1, em1 = clf.run(w[i], r[i])
        assert np.array_equal(lg1, logits[i]) and np.array_equal(em1, emb[i])
    assert np.array_equal(clf.predict(w, r), np.argmax(logits, axis=1))
    with pytest.raises(ValueError, match="int8"):
        clf.run(w[0].astype(np.float32), r[0])
    with pytest.raises(ValueError, match="shape"):
        clf.run(w[0][:100], r[0])
    with pytest.raises(ValueError, match="shape"):
        clf.run_batch(w[0], r)
    with pytest.raises(ValueError, match="rr rows"):
        clf.run_batch(w, r[:2])
    assert clf.run_batch(w[:0], r[:0])[0].shape == (0, m.n_classes)


def test_decision_ties_go_to_the_lowest_class_and_confidence_is_the_top2_logistic() -> None:
    from ecgedge.classifier import BeatClassifier

    clf = BeatClassifier()
    scale = clf.model.logits_scale
    d = clf.decide(np.array([3, 9, 9, -4, 0], np.int8))
    assert (d.class_index, d.margin_q, d.margin, d.confidence) == (1, 0, 0.0, 0.5)
    d = clf.decide(np.array([-128, -128, 20, 7, 7], np.int8))
    assert d.class_index == 2 and d.label == "V" and d.margin_q == 13
    assert d.margin == pytest.approx(13 * scale, rel=1e-6)
    assert d.confidence == pytest.approx(1 / (1 + np.exp(-13 * scale)), rel=1e-5)


def _fc_reference(emb: np.ndarray, head: dict[str, Any], emb_zp: int) -> np.ndarray:
    """TFLM's FullyConnectedPerChannel with gen_model_c.py's port of MultiplyByQuantizedMultiplier."""
    gen = _gen_module()
    w = head["weights"].astype(np.int64)
    out = np.empty((emb.shape[0], w.shape[0]), np.int8)
    for b in range(emb.shape[0]):
        for o in range(w.shape[0]):
            acc = int(np.dot(w[o], emb[b].astype(np.int64) - emb_zp))
            acc += int(head["bias"][o]) if head["bias"] is not None else 0
            v = gen.requant(acc, head["multipliers"][o], head["shifts"][o])
            out[b, o] = max(-128, min(127, v + head["logits_zero_point"]))
    return out


def test_head_can_be_replaced_and_restored() -> None:
    from ecgedge.classifier import BeatClassifier

    clf = BeatClassifier()
    m = clf.model
    rng = np.random.default_rng(5)
    w = rng.integers(-128, 128, size=(16, m.window_len), dtype=np.int8)
    r = rng.integers(-128, 128, size=(16, m.rr_len), dtype=np.int8)
    logits0, emb0 = clf.run_batch(w, r)
    factory = clf.head
    assert factory["version"] == 0 and factory["weights"].shape == (m.n_classes,
                                                                    m.embedding_len)
    assert np.array_equal(_fc_reference(emb0, factory, m.embedding_zero_point), logits0)
    assert np.array_equal(clf.run_head(emb0), logits0)

    new = dict(factory)
    new["weights"] = np.roll(factory["weights"], 1, axis=0)
    new["bias"] = np.asarray(factory["bias"]) // 2 + 100
    new["logits_zero_point"] = -5
    clf.set_head(new["weights"], new["bias"], new["multipliers"], new["shifts"],
                 m.logits_scale * 2, -5, version=7)
    assert clf.head["version"] == 7
    logits1, emb1 = clf.run_batch(w, r)
    assert np.array_equal(emb1, emb0)  # the backbone is untouched
    assert np.array_equal(logits1, _fc_reference(emb0, new, m.embedding_zero_point))
    assert not np.array_equal(logits1, logits0)
    assert clf.decide(logits1[0]).margin == pytest.approx(
        clf.decide(logits1[0]).margin_q * m.logits_scale * 2, rel=1e-6)

    with pytest.raises(ValueError):  # a shift outside -31..30 is refused; the head stays
        clf.set_head(new["weights"], None, new["multipliers"], [40] * m.n_classes, 0.1, 0)
    with pytest.raises(ValueError, match="shape"):
        clf.set_head(new["weights"][:, :4], None, new["multipliers"], new["shifts"], 0.1, 0)
    assert clf.head["version"] == 7
    clf.reset_head()
    assert clf.head["version"] == 0
    assert np.array_equal(clf.run_batch(w, r)[0], logits0)


# ------------------------------------------------------------------------------------ generator

def test_generator_fails_loudly_on_an_unsupported_operator(tmp_path: Path) -> None:
    pytest.importorskip("flatbuffers")
    _tflm()
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    import flatbuffers

    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(MODEL.read_bytes()), 0))
    code = next(c for c in m.operatorCodes
                if max(c.builtinCode, c.deprecatedBuiltinCode) == schema.BuiltinOperator.SOFTMAX)
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.TANH
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    bad = tmp_path / "tanh.tflite"
    bad.write_bytes(bytes(b.Output()))
    proc = _run([sys.executable, str(GEN), str(bad), "--out-c", str(tmp_path / "x.c"),
                 "--out-h", str(tmp_path / "x.h")])
    assert proc.returncode == 2
    assert b"unsupported operator(s): TANH" in proc.stderr
    assert not (tmp_path / "x.c").exists()


def test_generator_plans_a_small_arena_and_reuses_buffers() -> None:
    gen = _gen_module()
    c = gen.compile_model(MODEL.read_bytes(), "beat_tx")
    T = c.model.tensors
    total = sum(T[r].size for r in c.offsets if isinstance(r, int))
    assert c.arena_bytes <= 16 * 1024
    assert c.arena_bytes < total  # buffers share memory
    assert c.weights_bytes <= 32 * 1024

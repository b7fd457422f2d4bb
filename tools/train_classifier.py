#!/usr/bin/env python
"""Train the tiny int8 transformer beat classifier on MIT-BIH DS1, export it, test it on DS2.

    pip install -e ".[train]"
    python tools/train_classifier.py --out models/ --seed 0        # the shipped model
    python tools/train_classifier.py --configs base qf qf_bal35 --cv-only --cv-log cv.jsonl
    python tools/train_classifier.py --configs rrskip_aug --cv-only --seed 1 --cv-log cv.jsonl
    python tools/train_classifier.py --rr-cue     # how far the RR features alone go for S (DS1)

Steps (all seeded; the whole run takes about 10 minutes on 2 CPU cores):
1. Features (`ecgedge.beats`) of every reference beat of the MLII lead of DS1, clean and with
   `--noise-copies` noisy copies (NSTDB em/ma/bw noise added to the raw signal before the
   firmware filter, 6..24 dB SNR).
2. Cross-validation on DS1 by patient: 5 folds of whole records (stratified by their S and V
   counts). For each candidate configuration the models are scored after every epoch on their
   held-out records; the pooled out-of-fold score, mean(F1 of S, F1 of V) with per-class logit
   offsets tuned on those out-of-fold logits, picks the epoch count. The fold models of that
   epoch are then exported to int8 exactly like the final model (offsets in the head bias,
   calibrated on their own training records) and run by TFLM on their held-out records: that
   int8 out-of-fold score picks the configuration (`--cv-log` keeps every configuration tried).
3. One model on all of DS1 with the chosen settings; the tuned offsets are folded into the
   head's bias. Export to a fully int8 `.tflite` (calibrated on DS1 beats), check its tensor
   types, run it with the TFLM reference interpreter on every DS2 reference beat, and write the
   model card (`<name>.json`) next to it.

DS2 is only used in step 3, once, for the report. `--eval-only` re-runs the DS2 evaluation of
an existing `.tflite` without TensorFlow.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("PYTHONHASHSEED", "0")

import argparse
import json
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import wfdb
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ecgedge import beats as B
from ecgedge.core import Filter
from ecgedge.validation.beats import Confusion, sveb_stats, veb_stats
from ecgedge.validation.wfdb_db import read_annotations, read_lead

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import export_tflite as X  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
MAINS_HZ = 60
LEAD = "MLII"
NOISE_RECORDS = ("em", "ma", "bw")
N_CLASSES = len(B.AAMI_CLASSES)
LEARNING_PERIOD_S = 300.0
console = Console()


# --------------------------------------------------------------------------------------------
# Configuration

@dataclass(frozen=True)
class Config:
    """Architecture and training settings (the CV grid varies some of them)."""

    d_model: int = 16        # token width
    heads: int = 2
    ff: int = 32             # feed-forward width
    blocks: int = 1          # encoder blocks
    patch: int = 16          # samples per token: 256 / 16 = 16 tokens
    rr_hidden: int = 16      # RR-feature MLP width
    mix: int = 32            # width of the layer that joins morphology and RR
    emb: int = 16            # embedding (backbone output) size
    lr: float = 2e-3
    batch: int = 256
    epoch_samples: int = 32768   # beats drawn per epoch
    balance: float = 0.5     # class c is drawn with total weight n_c ** balance
    max_epochs: int = 16
    jitter: int = 4          # +- samples of random R-position shift
    gain: float = 0.15       # +- relative random window gain
    label_smoothing: float = 0.05
    dropout: float = 0.0
    norm: str = "bn"         # "bn": BatchNorm after each residual; "none": plain residuals
    relu6: bool = False      # bounded activations (fused RELU6) for tighter int8 ranges
    diff: bool = False       # third input: window minus the running template (beats.py 6-7)
    focal: float = 0.0       # focal-loss gamma (0: cross-entropy)
    qat: bool = False        # fake-quantize activations (8 bit, EMA ranges) while training
    draw_q: bool = True      # False: never draw Q beats (8 in DS1: too few to learn the class)
    rr_skip: bool = False    # RR MLP also feeds the embedding layer directly (second ADD)
    wander: float = 0.0      # +- random offset and +- random end-to-end ramp added to windows
    rr_jitter: float = 0.0   # +- relative random factor on each RR ratio feature (3..8)
    morph_dropout: float = 0.0  # dropout on the pooled morphology vector (training only)

    def name(self) -> str:
        return (f"d{self.d_model}h{self.heads}f{self.ff}b{self.blocks}p{self.patch}"
                f"e{self.emb}bal{self.balance:g}{self.norm}{'r6' if self.relu6 else ''}"
                f"{'diff' if self.diff else ''}{f'fo{self.focal:g}' if self.focal else ''}"
                f"{'qat' if self.qat else ''}{'' if self.draw_q else 'noq'}"
                f"{'rrskip' if self.rr_skip else ''}"
                f"{f'wa{self.wander:g}' if self.wander else ''}"
                f"{f'rj{self.rr_jitter:g}' if self.rr_jitter else ''}"
                f"{f'rh{self.rr_hidden}' if self.rr_hidden != 16 else ''}"
                f"{f'ep{self.max_epochs}' if self.max_epochs != 16 else ''}"
                f"{f'md{self.morph_dropout:g}' if self.morph_dropout else ''}")

    @property
    def input_names(self) -> tuple[str, ...]:
        return ("window", "rr", "diff") if self.diff else ("window", "rr")


DEFAULT = Config()
GRID = {
    "base": DEFAULT,
    "wide": replace(DEFAULT, d_model=24, ff=48),
    "qf": replace(DEFAULT, norm="none", relu6=True),
    "qf_diff": replace(DEFAULT, norm="none", relu6=True, diff=True),
    "qf_qat": replace(DEFAULT, norm="none", relu6=True, qat=True),
    "qf_bal75": replace(DEFAULT, norm="none", relu6=True, balance=0.75),
    "qf_bal35": replace(DEFAULT, norm="none", relu6=True, balance=0.35),
    "qf_focal2": replace(DEFAULT, norm="none", relu6=True, focal=2.0),
    "qf_p8": replace(DEFAULT, norm="none", relu6=True, patch=8),
    "qf_bal35_noq_rrskip": replace(DEFAULT, norm="none", relu6=True, balance=0.35, draw_q=False,
                                   rr_skip=True),
    "qf_bal35_noq": replace(DEFAULT, norm="none", relu6=True, balance=0.35, draw_q=False),
    "rrskip_e24": replace(DEFAULT, norm="none", relu6=True, balance=0.35, draw_q=False,
                          rr_skip=True, max_epochs=24),
    "rrskip_aug": replace(DEFAULT, norm="none", relu6=True, balance=0.35, draw_q=False,
                          rr_skip=True, gain=0.25, wander=0.2, rr_jitter=0.05),
    "rrskip_md": replace(DEFAULT, norm="none", relu6=True, balance=0.35, draw_q=False,
                         rr_skip=True, morph_dropout=0.3),
    "rrskip_rr32": replace(DEFAULT, norm="none", relu6=True, balance=0.35, draw_q=False,
                           rr_skip=True, rr_hidden=32),
}


SHIPPED = "qf_bal35"  # best int8 DS1-CV score of GRID (models/README.md)


# --------------------------------------------------------------------------------------------
# Data

@dataclass
class RecordData:
    name: str
    positions: npt.NDArray[np.int64]
    classes: npt.NDArray[np.int8]          # per beat, -1 for unclassed beats
    rr: npt.NDArray[np.float32]            # (n, 9)
    windows: npt.NDArray[np.float32]       # (copies, n, 256 + 2*margin), normalised
    diffs: npt.NDArray[np.float32]         # (copies, n, 256 + 2*margin), window - template
    fs: float = 360.0

    def model_window(self, copy: int = 0) -> npt.NDArray[np.float32]:
        m = (self.windows.shape[2] - B.WINDOW_LEN) // 2
        return np.ascontiguousarray(self.windows[copy, :, m: m + B.WINDOW_LEN])

    def model_diff(self, copy: int = 0) -> npt.NDArray[np.float32]:
        m = (self.diffs.shape[2] - B.WINDOW_LEN) // 2
        return np.ascontiguousarray(self.diffs[copy, :, m: m + B.WINDOW_LEN])

    def inputs(self, names: Sequence[str]) -> dict[str, npt.NDArray[np.float32]]:
        """Clean model inputs of the labelled beats."""
        m = self.labelled
        allv = {"window": self.model_window()[m], "rr": self.rr[m]}
        if "diff" in names:
            allv["diff"] = self.model_diff()[m]
        return {k: allv[k] for k in names}

    @property
    def labelled(self) -> npt.NDArray[np.bool_]:
        return self.classes >= 0


def load_noise(db: Path) -> dict[str, npt.NDArray[np.float64]]:
    out = {}
    for name in NOISE_RECORDS:
        rec = wfdb.rdrecord(str(db / name), physical=True)
        out[name] = np.asarray(rec.p_signal, dtype=np.float64).T  # (2, n) mV
    return out


def mlii_channel(db: Path, name: str) -> int:
    names = list(wfdb.rdheader(str(db / name)).sig_name)
    return names.index(LEAD)


def load_record(db: Path, name: str, margin: int, noise: dict[str, Any] | None = None,
                noise_copies: int = 0, rng: np.random.Generator | None = None) -> RecordData:
    """Reference beats, RR features and normalised windows (clean first, then noisy copies)."""
    lead = read_lead(db, name, mlii_channel(db, name))
    ann = read_annotations(db, name, "atr", lead.fs_hz)
    pos, cls = B.reference_beats(ann.samples, ann.symbols)
    filt = Filter(lead.fs_hz, MAINS_HZ)
    delay = B.filter_delay(filt.delay_samples)
    copies = []
    clean_f = None
    for c in range(1 + noise_copies):
        raw = lead.signal_mv
        if c > 0:
            assert noise is not None and rng is not None and clean_f is not None
            kind = NOISE_RECORDS[int(rng.integers(len(NOISE_RECORDS)))]
            src = noise[kind][int(rng.integers(2))]
            src = np.roll(src, int(rng.integers(src.size)))
            reps = int(np.ceil(raw.size / src.size))
            seg = np.tile(src, reps)[: raw.size]
            seg = seg - seg.mean()
            snr_db = float(rng.uniform(6.0, 24.0))
            target = float(np.sqrt(np.mean(clean_f.astype(np.float64) ** 2))) / 10 ** (snr_db / 20)
            raw = raw + seg * (target / max(float(np.sqrt(np.mean(seg ** 2))), 1e-9))
        filt.reset()
        y = filt.process(raw)
        if c == 0:
            clean_f = y
        wide = B.sample_windows(y, lead.fs_hz, pos, delay, margin=margin)
        centre = wide[:, margin: margin + B.WINDOW_LEN]
        scales = B.amplitude_scales(B.r_amplitudes(centre))
        copies.append(B.normalize_windows(wide, scales))
    diffs = np.stack([B.template_diffs(c) for c in copies])
    return RecordData(name, pos, cls, B.rr_features(pos, lead.fs_hz), np.stack(copies), diffs,
                      lead.fs_hz)


def load_set(names: Sequence[str], margin: int, noise_copies: int, seed: int,
             what: str) -> list[RecordData]:
    noise = load_noise(DATA / "nstdb") if noise_copies else None
    out = []
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task(f"features {what}", total=len(names))
        for i, name in enumerate(names):
            rng = np.random.default_rng([seed, 1000 + i])
            out.append(load_record(DATA / "mitdb", name, margin, noise, noise_copies, rng))
            prog.advance(task)
    return out


@dataclass
class Pool:
    """All labelled beats of some records, as training draws them."""

    windows: npt.NDArray[np.float32]   # (copies, n, 256 + 2*margin)
    diffs: npt.NDArray[np.float32]     # (copies, n, 256 + 2*margin)
    rr: npt.NDArray[np.float32]        # (n, 9)
    y: npt.NDArray[np.int64]           # (n,)
    record: npt.NDArray[np.int64]      # (n,) index into the record list

    @classmethod
    def of(cls, recs: Sequence[RecordData], which: Sequence[int]) -> Pool:
        ms = [recs[i].labelled for i in which]
        return cls(np.concatenate([recs[i].windows[:, m] for i, m in zip(which, ms)], axis=1),
                   np.concatenate([recs[i].diffs[:, m] for i, m in zip(which, ms)], axis=1),
                   np.concatenate([recs[i].rr[m] for i, m in zip(which, ms)]),
                   np.concatenate([recs[i].classes[m] for i, m in zip(which, ms)]).astype(
                       np.int64),
                   np.concatenate([np.full(int(m.sum()), i) for i, m in zip(which, ms)]))

    def clean_inputs(self, margin: int,
                     names: Sequence[str] = ("window", "rr")) -> dict[str, npt.NDArray[np.float32]]:
        out = {"window": np.ascontiguousarray(self.windows[0, :, margin: margin + B.WINDOW_LEN]),
               "rr": self.rr}
        if "diff" in names:
            out["diff"] = np.ascontiguousarray(self.diffs[0, :, margin: margin + B.WINDOW_LEN])
        return out


def draw_epoch(pool: Pool, cfg: Config, margin: int,
               rng: np.random.Generator) -> tuple[dict[str, npt.NDArray[np.float32]],
                                                  npt.NDArray[np.int64]]:
    """One epoch of training beats: class-rebalanced draw, random copy, shift, gain, RR scale."""
    counts = np.bincount(pool.y, minlength=N_CLASSES).astype(np.float64)
    w_class = np.where(counts > 0, counts ** cfg.balance / np.maximum(counts, 1), 0.0)
    if not cfg.draw_q:
        w_class[B.AAMI_CLASSES.index("Q")] = 0.0
    p = w_class[pool.y]
    p /= p.sum()
    n = cfg.epoch_samples
    idx = rng.choice(pool.y.size, size=n, replace=True, p=p)
    copy = rng.integers(pool.windows.shape[0], size=n)
    shift = rng.integers(-cfg.jitter, cfg.jitter + 1, size=n) + margin
    cols = shift[:, None] + np.arange(B.WINDOW_LEN)[None, :]
    win = pool.windows[copy[:, None], idx[:, None], cols]
    gain = rng.uniform(1 - cfg.gain, 1 + cfg.gain, size=(n, 1)).astype(np.float32)
    raw: npt.NDArray[np.floating[Any]] = win
    if cfg.wander:  # baseline left over by the filter: offset + ramp, in normalised units
        ramp = np.linspace(-0.5, 0.5, B.WINDOW_LEN, dtype=np.float32)[None, :]
        raw = (win + rng.uniform(-cfg.wander, cfg.wander, size=(n, 1))
               + rng.uniform(-cfg.wander, cfg.wander, size=(n, 1)) * ramp)
    win = np.clip(raw * gain, -B.WINDOW_CLIP, B.WINDOW_CLIP).astype(np.float32)
    rr = pool.rr[idx].copy()
    rr[:, :3] = np.clip(rr[:, :3] * rng.uniform(0.85, 1.15, size=(n, 1)), 0,
                        B.RR_SECONDS_MAX).astype(np.float32)
    if cfg.rr_jitter:
        rr[:, 3:] = np.clip(rr[:, 3:] * rng.uniform(1 - cfg.rr_jitter, 1 + cfg.rr_jitter,
                                                    size=(n, rr.shape[1] - 3)),
                            0, B.RR_RATIO_MAX).astype(np.float32)
    out = {"window": win, "rr": rr}
    if cfg.diff:
        d = pool.diffs[copy[:, None], idx[:, None], cols]
        out["diff"] = np.clip(d * gain, -B.WINDOW_CLIP, B.WINDOW_CLIP).astype(np.float32)
    return out, pool.y[idx]


# --------------------------------------------------------------------------------------------
# Model

def build_model(cfg: Config, batch_size: int | None = None) -> Any:
    """Backbone (patch embedding, encoder blocks, mean pooling, RR MLP, join) + dense head."""
    import keras
    from keras import layers, ops

    tokens = B.WINDOW_LEN // cfg.patch

    @keras.saving.register_keras_serializable(package="ecgedge")
    class Patches(layers.Layer):
        def call(self, x: Any) -> Any:
            return ops.reshape(x, (-1, tokens, cfg.patch))

    @keras.saving.register_keras_serializable(package="ecgedge")
    class PositionEmbedding(layers.Layer):
        def build(self, shape: Any) -> None:
            self.pe = self.add_weight(shape=(shape[1], shape[2]), name="pe",
                                      initializer=keras.initializers.RandomNormal(stddev=0.1))

        def call(self, x: Any) -> Any:
            return x + self.pe

    @keras.saving.register_keras_serializable(package="ecgedge")
    class FakeQuant(layers.Layer):
        """Quantization-aware training: 8-bit fake quantization (straight-through gradient)
        with the range tracked as an EMA of the batch min / max (always including 0, like
        TFLite's calibration). Left out of the exported model (the converter calibrates)."""

        def build(self, shape: Any) -> None:
            z = keras.initializers.Zeros()
            self.lo = self.add_weight(shape=(), initializer=z, trainable=False, name="lo")
            self.hi = self.add_weight(shape=(), initializer=z, trainable=False, name="hi")
            self.seen = self.add_weight(shape=(), initializer=z, trainable=False, name="seen")

        def call(self, x: Any, training: Any = None) -> Any:
            import tensorflow as tf

            if training:
                bl = tf.minimum(tf.reduce_min(tf.stop_gradient(x)), 0.0)
                bh = tf.maximum(tf.reduce_max(tf.stop_gradient(x)), 0.0)
                mom = tf.where(self.seen > 0, 0.99, 0.0)
                lo = mom * self.lo + (1.0 - mom) * bl
                hi = mom * self.hi + (1.0 - mom) * bh
                self.lo.assign(lo)
                self.hi.assign(hi)
                self.seen.assign(1.0)
            else:
                lo, hi = self.lo, self.hi
            hi = tf.maximum(hi, lo + 1e-3)
            return tf.quantization.fake_quant_with_min_max_vars(x, lo, hi, num_bits=8)

    fq_count = [0]

    def fq(x: Any) -> Any:
        if not cfg.qat:
            return x
        fq_count[0] += 1
        return FakeQuant(name=f"fq{fq_count[0]}")(x)

    def token_dense(units: int, name: str, activation: str | None = None) -> Any:
        # EinsumDense converts to FULLY_CONNECTED with static shapes (Dense on 3-D does not).
        return layers.EinsumDense("btc,cu->btu", (tokens, units), bias_axes="u",
                                  activation=activation, name=name)

    act = "relu6" if cfg.relu6 else "relu"

    def norm(name: str, x: Any) -> Any:
        return layers.BatchNormalization(name=name)(x) if cfg.norm == "bn" else x

    win = keras.Input((B.WINDOW_LEN,), name="window", batch_size=batch_size)
    rr = keras.Input((B.N_RR_FEATURES,), name="rr", batch_size=batch_size)
    ins = [win, rr]
    x = Patches(name="patches")(win)
    x = fq(token_dense(cfg.d_model, "patch_embed")(x))
    if cfg.diff:
        dif = keras.Input((B.WINDOW_LEN,), name="diff", batch_size=batch_size)
        ins.append(dif)
        xd = Patches(name="patches_diff")(dif)
        xd = fq(layers.EinsumDense("btc,cu->btu", (tokens, cfg.d_model),
                                   name="patch_embed_diff")(xd))
        x = fq(layers.Add(name="tokens")([x, xd]))
    x = fq(PositionEmbedding(name="pos_embed")(x))
    for b in range(cfg.blocks):
        a = fq(layers.MultiHeadAttention(cfg.heads, cfg.d_model // cfg.heads,
                                         name=f"mha{b}")(x, x))
        x = fq(norm(f"norm{b}a", layers.Add()([x, a])))
        f = fq(token_dense(cfg.ff, f"ff{b}a", act)(x))
        f = fq(token_dense(cfg.d_model, f"ff{b}b")(f))
        x = fq(norm(f"norm{b}b", layers.Add()([x, f])))
    pooled = fq(layers.GlobalAveragePooling1D(name="pool")(x))
    if cfg.morph_dropout:
        pooled = layers.Dropout(cfg.morph_dropout, name="morph_dropout")(pooled)
    r = fq(layers.Dense(cfg.rr_hidden, activation=act, name="rr_mlp")(rr))
    j = layers.Add(name="join")([fq(layers.Dense(cfg.mix, name="join_morph")(pooled)),
                                 fq(layers.Dense(cfg.mix, name="join_rr")(r))])
    j = fq(layers.Activation(act, name="join_relu")(j))
    if cfg.dropout:
        j = layers.Dropout(cfg.dropout)(j)
    if cfg.rr_skip:
        emb = layers.Add(name="emb_join")([fq(layers.Dense(cfg.emb, name="emb_morph")(j)),
                                           fq(layers.Dense(cfg.emb, name="emb_rr")(r))])
        emb = fq(layers.Activation(act, name="embedding")(emb))
    else:
        emb = fq(layers.Dense(cfg.emb, activation=act, name="embedding")(j))
    logits = fq(layers.Dense(N_CLASSES, name="head")(emb))
    return keras.Model(ins, logits, name="beat_tx")


def compile_model(model: Any, cfg: Config, steps_total: int) -> None:
    import keras

    sched = keras.optimizers.schedules.CosineDecay(cfg.lr, decay_steps=steps_total, alpha=0.05)
    if cfg.focal:
        loss = keras.losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=cfg.focal,
                                                         from_logits=True,
                                                         label_smoothing=cfg.label_smoothing)
    else:
        loss = keras.losses.CategoricalCrossentropy(from_logits=True,
                                                    label_smoothing=cfg.label_smoothing)
    model.compile(optimizer=keras.optimizers.Adam(sched), loss=loss)


def setup_tf(seed: int) -> None:
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def fit_epoch(model: Any, inputs: dict[str, npt.NDArray[np.float32]], y: npt.NDArray[np.int64],
              cfg: Config) -> float:
    onehot = np.eye(N_CLASSES, dtype=np.float32)[y]
    h = model.fit(inputs, onehot, batch_size=cfg.batch, epochs=1, shuffle=False, verbose=0)
    return float(h.history["loss"][-1])


def predict(model: Any, inputs: dict[str, npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
    return np.asarray(model.predict(inputs, batch_size=4096, verbose=0), dtype=np.float32)


# --------------------------------------------------------------------------------------------
# Scoring

def confusion(y: npt.NDArray[np.int64], pred: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Rows: reference class, columns: predicted class (N S V F Q) (`Confusion.of`)."""
    return Confusion.of(y, pred).matrix


def se_ppv(m: npt.NDArray[np.int64], c: int) -> tuple[float, float]:
    """Se and +P of class `c` in percent (`Confusion.class_stats`; nan when undefined)."""
    st = Confusion(m).class_stats(c)
    return st.se, st.ppv


def f1(m: npt.NDArray[np.int64], c: int) -> float:
    tp, ref, called = m[c, c], m[c].sum(), m[:, c].sum()
    return 100.0 * 2 * tp / (ref + called) if ref + called else 0.0


def ec57_gross(m: npt.NDArray[np.int64]) -> dict[str, float]:
    """EC57 VEB and SVEB gross statistics from a reference x predicted confusion matrix.

    Se, +P and the false positives are `veb_stats` / `sveb_stats` (Q and, for VEB, F reference
    beats labelled v are no false positives). The FPR here is over the N and S reference beats
    for VEB and the N, V and F ones for SVEB (Q rows left out), unlike `Ec57Stats.fpr`, which
    counts every other reference beat: the figures in models/ were made this way.
    """
    conf = Confusion(m)
    veb, sveb = veb_stats(conf), sveb_stats(conf)
    n_, s_, v_, f_ = 0, 1, 2, 3

    def pct(a: float, b: float) -> float:
        return round(100.0 * a / b, 2) if b else float("nan")

    return {"VEB_Se": round(veb.se, 2), "VEB_PP": round(veb.ppv, 2),
            "SVEB_Se": round(sveb.se, 2), "SVEB_PP": round(sveb.ppv, 2),
            "VEB_FPR": pct(veb.fp, m[n_].sum() + m[s_].sum()),
            "SVEB_FPR": pct(sveb.fp, m[n_].sum() + m[v_].sum() + m[f_].sum())}


def score(m: npt.NDArray[np.int64]) -> float:
    """Selection score: mean of the F1 of S and of V (percent)."""
    return 0.5 * (f1(m, 1) + f1(m, 2))


OFFSET_GRID = np.round(np.arange(-2.0, 2.01, 0.25), 2)


def tune_offsets(logits: npt.NDArray[np.float32],
                 y: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.float32], float]:
    """Logit offsets for S and V maximising `score`, coordinate-wise (N, F, Q stay at 0: the
    score does not look at F, so an F offset would be unconstrained and could swallow N beats)."""
    off = np.zeros(N_CLASSES, dtype=np.float32)
    best = score(confusion(y, np.argmax(logits + off, axis=1)))
    for _ in range(2):
        for c in (1, 2):
            for v in OFFSET_GRID:
                trial = off.copy()
                trial[c] = v
                s = score(confusion(y, np.argmax(logits + trial, axis=1)))
                if s > best + 1e-9:
                    best, off = s, trial
    return off, best


def class_table(title: str, m: npt.NDArray[np.int64]) -> Table:
    t = Table(title=title)
    t.add_column("ref \\ pred")
    for c in B.AAMI_CLASSES:
        t.add_column(c, justify="right")
    t.add_column("Se %", justify="right")
    t.add_column("+P %", justify="right")
    for i, c in enumerate(B.AAMI_CLASSES):
        se, pp = se_ppv(m, i)
        t.add_row(c, *[str(int(v)) for v in m[i]], f"{se:.1f}", f"{pp:.1f}")
    return t


def class_stats(m: npt.NDArray[np.int64]) -> dict[str, dict[str, float]]:
    out = {}
    for i, c in enumerate(B.AAMI_CLASSES[:4]):
        se, pp = se_ppv(m, i)
        out[c] = {"Se": round(float(se), 2), "PP": round(float(pp), 2), "n": int(m[i].sum())}
    return out


# --------------------------------------------------------------------------------------------
# Cross-validation

def make_folds(recs: Sequence[RecordData], k: int) -> list[list[int]]:
    """Whole records into k folds, dealt round-robin in order of (S count, V count), descending."""
    key = [(-(r.classes == 1).sum(), -(r.classes == 2).sum(), r.name) for r in recs]
    order = sorted(range(len(recs)), key=lambda i: key[i])
    folds: list[list[int]] = [[] for _ in range(k)]
    for j, i in enumerate(order):
        folds[j % k if (j // k) % 2 == 0 else k - 1 - j % k].append(i)  # snake draft
    return folds


@dataclass
class CvResult:
    cfg_name: str
    cfg: Config
    scores: list[float]                              # pooled OOF score per epoch (tuned offsets)
    raw_scores: list[float]                          # ... with plain argmax
    offsets: list[npt.NDArray[np.float32]]
    fold_scores: list[list[float]] = field(default_factory=list)  # [epoch][fold], plain argmax
    oof: list[npt.NDArray[np.float32]] = field(default_factory=list)  # logits per epoch
    y: npt.NDArray[np.int64] | None = None
    weights: list[list[Any]] = field(default_factory=list)  # [epoch][fold] model weights
    seconds: float = 0.0
    int8: dict[str, Any] = field(default_factory=dict)     # int8 OOF check at the chosen epoch


def cross_validate(name: str, cfg: Config, recs: Sequence[RecordData], folds: list[list[int]],
                   seed: int, margin: int) -> CvResult:
    setup_tf(seed)
    n_beats = [int(r.labelled.sum()) for r in recs]
    offs = np.concatenate([[0], np.cumsum(n_beats)])
    y_all = np.concatenate([r.classes[r.labelled] for r in recs]).astype(np.int64)
    oof = [np.zeros((y_all.size, N_CLASSES), np.float32) for _ in range(cfg.max_epochs)]
    fold_scores = [[0.0] * len(folds) for _ in range(cfg.max_epochs)]
    weights: list[list[Any]] = [[None] * len(folds) for _ in range(cfg.max_epochs)]
    t0 = time.time()
    steps = cfg.max_epochs * (cfg.epoch_samples // cfg.batch + 1)
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task(f"CV {name}", total=len(folds) * cfg.max_epochs)
        for k, held in enumerate(folds):
            train_idx = [i for i in range(len(recs)) if i not in held]
            pool = Pool.of(recs, train_idx)
            val = Pool.of(recs, held)
            val_in = val.clean_inputs(margin, cfg.input_names)
            rows = np.concatenate([np.arange(offs[i], offs[i + 1]) for i in held])
            setup_tf(seed + 17 * (k + 1))
            model = build_model(cfg)
            compile_model(model, cfg, steps)
            rng = np.random.default_rng([seed, k])
            for e in range(cfg.max_epochs):
                x, y = draw_epoch(pool, cfg, margin, rng)
                fit_epoch(model, x, y, cfg)
                lg = predict(model, val_in)
                oof[e][rows] = lg
                weights[e][k] = model.get_weights()
                fold_scores[e][k] = score(confusion(val.y, np.argmax(lg, axis=1)))
                prog.advance(task)
    scores, raw, offsets = [], [], []
    for e in range(cfg.max_epochs):
        raw.append(score(confusion(y_all, np.argmax(oof[e], axis=1))))
        o, s = tune_offsets(oof[e], y_all)
        scores.append(s)
        offsets.append(o)
    return CvResult(name, cfg, scores, raw, offsets, fold_scores, oof, y_all, weights,
                    time.time() - t0)


def int8_cv(res: CvResult, recs: Sequence[RecordData], folds: list[list[int]], epoch: int,
            seed: int, margin: int) -> dict[str, Any]:
    """The fold models of `epoch`, each exported to int8 the way the final model is (offsets in
    the head bias, calibrated on its own training records) and run by TFLM on its held-out
    records: pooled int8 out-of-fold score and the float/int8 agreement."""
    assert res.y is not None
    n_beats = [int(r.labelled.sum()) for r in recs]
    offs = np.concatenate([[0], np.cumsum(n_beats)])
    pred = np.zeros(res.y.size, np.int64)
    off = res.offsets[epoch - 1]
    for k, held in enumerate(folds):
        train_idx = [i for i in range(len(recs)) if i not in held]
        model = build_model(res.cfg)
        model.set_weights(res.weights[epoch - 1][k])
        data = X.convert_int8(export_model(model, res.cfg, off),
                              calibration_set(recs, margin, seed, which=train_idx,
                                              names=res.cfg.input_names))
        lg = np.concatenate([tflm_logits(data, recs[i]) for i in held])
        rows = np.concatenate([np.arange(offs[i], offs[i + 1]) for i in held])
        pred[rows] = np.argmax(lg, axis=1)
    fpred = np.argmax(res.oof[epoch - 1] + off, axis=1)
    m = confusion(res.y, pred)
    return {"score": round(score(m), 2), "classes": class_stats(m),
            "agreement_with_float_pct": round(100.0 * float(np.mean(pred == fpred)), 3),
            "float_score": round(score(confusion(res.y, fpred)), 2)}


def pick_epoch(res: CvResult) -> int:
    """Epoch count (1-based) with the best 3-epoch moving average of the tuned OOF score."""
    s = np.asarray(res.scores)
    sm = np.convolve(np.pad(s, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    return int(np.argmax(sm)) + 1


# --------------------------------------------------------------------------------------------
# Final model, export, DS2

def train_final(cfg: Config, recs: Sequence[RecordData], epochs: int, seed: int,
                margin: int) -> Any:
    setup_tf(seed)
    pool = Pool.of(recs, range(len(recs)))
    model = build_model(cfg)
    steps = cfg.max_epochs * (cfg.epoch_samples // cfg.batch + 1)  # same schedule as in CV
    compile_model(model, cfg, steps)
    rng = np.random.default_rng([seed, 99])
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task("final model on DS1", total=epochs)
        for _ in range(epochs):
            x, y = draw_epoch(pool, cfg, margin, rng)
            fit_epoch(model, x, y, cfg)
            prog.advance(task)
    return model


def export_model(model: Any, cfg: Config, offsets: npt.NDArray[np.float32]) -> Any:
    """A batch-1 copy of the model with the offsets in the head's bias, outputs (embedding,
    logits)."""
    import keras

    m1 = build_model(replace(cfg, qat=False), batch_size=1)  # no fake-quant layers
    for layer in m1.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    head = m1.get_layer("head")
    head.bias.assign(np.asarray(head.bias) + offsets)
    return keras.Model(m1.inputs, [m1.get_layer("embedding").output, m1.output])


def calibration_set(recs: Sequence[RecordData], margin: int, seed: int, n: int = 2000,
                    which: Sequence[int] | None = None,
                    names: Sequence[str] = ("window", "rr")) -> dict[str, npt.NDArray[np.float32]]:
    """DS1 beats for int8 calibration: half drawn uniformly, half class-balanced, all copies."""
    pool = Pool.of(recs, range(len(recs)) if which is None else which)
    rng = np.random.default_rng([seed, 7])
    counts = np.bincount(pool.y, minlength=N_CLASSES)
    p = (1.0 / counts[pool.y])
    p /= p.sum()
    idx = np.concatenate([rng.choice(pool.y.size, n // 2, replace=False),
                          rng.choice(pool.y.size, n - n // 2, replace=False, p=p)])
    copy = rng.integers(pool.windows.shape[0], size=idx.size)
    win = pool.windows[copy, idx, margin: margin + B.WINDOW_LEN]
    out = {"window": np.ascontiguousarray(win, dtype=np.float32), "rr": pool.rr[idx]}
    if "diff" in names:
        out["diff"] = np.ascontiguousarray(pool.diffs[copy, idx, margin: margin + B.WINDOW_LEN],
                                           dtype=np.float32)
    return {k: out[k] for k in names}


def tflm_logits(data: bytes, rec: RecordData, run: Any = None) -> npt.NDArray[np.int8]:
    """int8 logits of the labelled beats of one record by TFLM (clean inputs)."""
    run = run or X.Tflm(data)
    m = rec.labelled
    ws, wz = run.window_quant
    rs, rz = run.rr_quant
    dq = None
    if run.has_diff:
        ds, dz = run.diff_quant
        dq = B.quantize(rec.model_diff()[m], ds, dz)
    lg, _ = run.run(B.quantize(rec.model_window()[m], ws, wz), B.quantize(rec.rr[m], rs, rz), dq)
    return lg


def ds2_features() -> list[RecordData]:
    return load_set(B.DS2, 0, 0, 0, "DS2")


def tflm_predict(data: bytes, recs: Sequence[RecordData]) -> list[npt.NDArray[np.int8]]:
    """int8 logits of every labelled beat of each record, by the TFLM interpreter."""
    run = X.Tflm(data)
    out = []
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task("TFLM on DS2", total=sum(int(r.labelled.sum()) for r in recs))
        for r in recs:
            out.append(tflm_logits(data, r, run))
            prog.advance(task, int(r.labelled.sum()))
    return out


def evaluate_ds2(data: bytes, recs: Sequence[RecordData],
                 float_logits: list[npt.NDArray[np.float32]] | None = None) -> dict[str, Any]:
    int8_logits = tflm_predict(data, recs)
    y = np.concatenate([r.classes[r.labelled] for r in recs]).astype(np.int64)
    pred = np.concatenate([np.argmax(lg, axis=1) for lg in int8_logits])
    m = confusion(y, pred)
    # EC57 from 5:00 on (learning period), like the QRS validation.
    late = np.concatenate([r.positions[r.labelled] >= LEARNING_PERIOD_S * r.fs for r in recs])
    m_late = confusion(y[late], pred[late])
    per_record = {}
    start = 0
    for r in recs:
        n = int(r.labelled.sum())
        mr = confusion(y[start: start + n], pred[start: start + n])
        per_record[r.name] = {"n": n, "S": [int(mr[1].sum()), int(mr[1, 1]), int(mr[:, 1].sum())],
                              "V": [int(mr[2].sum()), int(mr[2, 2]), int(mr[:, 2].sum())]}
        start += n
    out: dict[str, Any] = {
        "beats": int(y.size),
        "confusion_ref_rows_pred_cols": m.tolist(),
        "classes": class_stats(m),
        "ec57_gross_all_beats": ec57_gross(m),
        "ec57_gross_from_5min": ec57_gross(m_late),
        "per_record_ref_tp_called": per_record,
    }
    if float_logits is not None:
        fpred = np.concatenate([np.argmax(lg, axis=1) for lg in float_logits])
        mf = confusion(y, fpred)
        out["float_model"] = {"classes": class_stats(mf), "ec57_gross_all_beats": ec57_gross(mf),
                              "agreement_with_int8_pct": round(100.0 * float(np.mean(
                                  fpred == pred)), 3)}
    out["_confusion"] = m
    return out


def print_ds2(res: dict[str, Any]) -> None:
    console.print(class_table(f"DS2, {res['beats']} reference beats, int8 TFLM",
                              res["_confusion"]))
    t = Table(title="EC57 gross (Q beats excluded; F called V not a VEB false positive)")
    for col in ("beats", "VEB Se", "VEB +P", "SVEB Se", "SVEB +P"):
        t.add_column(col, justify="right")
    for label, key in (("all", "ec57_gross_all_beats"), ("from 5:00", "ec57_gross_from_5min")):
        g = res[key]
        t.add_row(label, f"{g['VEB_Se']:.2f}", f"{g['VEB_PP']:.2f}", f"{g['SVEB_Se']:.2f}",
                  f"{g['SVEB_PP']:.2f}")
    console.print(t)
    if "float_model" in res:
        fm = res["float_model"]
        console.print(f"float Keras model: {fm['classes']}; int8 agrees on "
                      f"{fm['agreement_with_int8_pct']} % of beats")


# --------------------------------------------------------------------------------------------
# How far the RR cue alone goes (DS1 only)

def rr_cue_report() -> None:
    """S versus N on DS1 from the RR features alone, V/F/Q assumed perfectly recognised (an
    in-sample, optimistic bound for what the `rr` input can give the S class): the best rule
    `pre/local < a or pre/long < b`, and Se / +P of the best linear score of all 9 features."""
    rr_l, y_l = [], []
    for name in B.DS1:
        ann = read_annotations(DATA / "mitdb", name, "atr", 360.0)
        pos, cls = B.reference_beats(ann.samples, ann.symbols)
        keep = (cls == 0) | (cls == 1)
        rr_l.append(B.rr_features(pos, 360.0)[keep])
        y_l.append(cls[keep] == 1)
    rr, s = np.concatenate(rr_l), np.concatenate(y_l)
    late = {name: int(np.sum(r[y, 3] >= 0.9)) for name, r, y in zip(B.DS1, rr_l, y_l)}
    console.print(f"S beats with pre/local >= 0.9 (not premature against the 8-beat mean): "
                  f"{sum(late.values())} of {int(s.sum())} ("
                  + ", ".join(f"{k} {v}" for k, v in sorted(late.items(), key=lambda kv: -kv[1])
                              if v >= 10) + ")")
    grid = np.round(np.arange(0.5, 1.2, 0.02), 2)
    best = (0.0, 0.0, 0.0)
    for a in grid:
        for b in grid:
            call = (rr[:, 3] < a) | (rr[:, 6] < b)
            f1_ab = 2.0 * np.sum(call & s) / (s.sum() + call.sum())
            if f1_ab > best[0]:
                best = (f1_ab, a, b)
    _, a, b = best
    call = (rr[:, 3] < a) | (rr[:, 6] < b)
    console.print(f"DS1 N {int((~s).sum())} S {int(s.sum())}; rule 'pre/local < {a:g} or "
                  f"pre/long < {b:g}': S Se {100 * np.sum(call & s) / s.sum():.1f} +P "
                  f"{100 * np.sum(call & s) / call.sum():.1f} F1 {100 * best[0]:.1f}")
    x = np.c_[np.ones(len(s)), rr]
    order = np.argsort(-(x @ np.linalg.lstsq(x, s.astype(np.float64), rcond=None)[0]))
    tp = np.cumsum(s[order])
    se, pp = tp / s.sum(), tp / np.arange(1, len(s) + 1)
    console.print(f"linear score of the 9 RR features: +P at Se >= 80 % "
                  f"{100 * pp[np.argmax(se >= 0.8)]:.1f}; best Se at +P >= 60 % "
                  f"{100 * se[pp >= 0.6].max() if (pp >= 0.6).any() else 0.0:.1f}")


# --------------------------------------------------------------------------------------------
# Golden vectors for the C port

VECTOR_BEATS = (("101", 0, 4), ("119", 2, 4), ("209", 1, 4), ("208", 3, 3), ("106", 2, 2),
                ("114", 0, 1))  # (record, class, how many); 114 has MLII as its 2nd channel


def write_vectors(path: Path, data: bytes, seed: int) -> None:
    """A few beats end to end: float32 features, int8 inputs, TFLM int8 outputs.

    Beats are picked per (record, class) at fixed positions, including a stream's first beat
    (boundary handling); `tests/test_model_tflm.py` recomputes everything from the record.
    """
    run = X.Tflm(data)
    ws, wz = run.window_quant
    rs, rz = run.rr_quant
    rng = np.random.default_rng([seed, 5])
    beats_out = []
    for name, cls, count in VECTOR_BEATS:
        rec = load_record(DATA / "mitdb", name, 0)
        idx = [0] if name == "101" else []
        cand = np.flatnonzero(rec.classes == cls)
        idx += sorted(rng.choice(cand, size=count - len(idx), replace=False).tolist())
        for i in idx:
            w, r = rec.model_window()[i], rec.rr[i]
            wq, rq = B.quantize(w, ws, wz), B.quantize(r, rs, rz)
            extra: dict[str, Any] = {}
            dq = None
            if run.has_diff:
                d = rec.model_diff()[i]
                dq = B.quantize(d, *run.diff_quant)
                extra = {"diff_f32": [float(v) for v in d], "diff_q": dq.tolist()}
            lg, em = run.run(wq[None], rq[None], None if dq is None else dq[None])
            beats_out.append({
                "record": name, "beat_index": int(i), "r_sample": int(rec.positions[i]),
                "class": B.AAMI_CLASSES[int(rec.classes[i])] if rec.classes[i] >= 0 else None,
                "window_f32": [float(v) for v in w], "rr_f32": [float(v) for v in r],
                "window_q": wq.tolist(), "rr_q": rq.tolist(), **extra,
                "embedding_q": em[0].tolist(), "logits_q": lg[0].tolist(),
                "predicted": B.AAMI_CLASSES[int(np.argmax(lg[0]))]})
    first = beats_out[0]
    feed = {"window": np.asarray(first["window_q"], np.int8),
            "rr": np.asarray(first["rr_q"], np.int8)}
    if run.has_diff:
        feed["diff"] = np.asarray(first["diff_q"], np.int8)
    dump = X.intermediate_tensors(data, feed)
    doc = {"model_sha256": X.sha256(data),
           "intermediate_tensors_of_first_beat": {str(k): v for k, v in dump.items()},
           "how": "record's MLII lead -> ecgedge.beats features (reference beat positions, "
                  "mains 60 Hz) -> quantize with the input scales -> TFLM",
           "window_quant": [ws, wz], "rr_quant": [rs, rz],
           **({"diff_quant": list(run.diff_quant)} if run.has_diff else {}), "beats": beats_out}
    path.write_text(json.dumps(doc) + "\n")


# --------------------------------------------------------------------------------------------
# Model card

def model_card(name: str, data: bytes, cfg: Config, params: dict[str, int], arena: int,
               cv: dict[str, Any], ds2: dict[str, Any], offsets: npt.NDArray[np.float32],
               command: str, train_seconds: float) -> dict[str, Any]:
    info = X.inspect_tflite(data)
    run = X.Tflm(data)
    tensors = [{"index": t.index, "name": t.name, "type": t.type, "shape": list(t.shape),
                "scale": list(t.scale) if len(t.scale) <= 1 else f"per-axis x{len(t.scale)}",
                "zero_point": list(t.zero_point) if len(t.zero_point) <= 1 else "all 0",
                "constant": t.is_constant} for t in info.tensors]
    ops = [{"index": o.index, "op": o.op, "inputs": list(o.inputs), "outputs": list(o.outputs),
            "options": o.options} for o in info.ops]
    ds2_public = {k: v for k, v in ds2.items() if not k.startswith("_")}
    return {
        "name": name,
        "file": f"{name}.tflite",
        "sha256": X.sha256(data),
        "file_bytes": len(data),
        "weights_bytes": info.weight_bytes(),
        "arena_bytes_tflm": arena,
        "parameters": params,
        "architecture": {**asdict(cfg), "tokens": B.WINDOW_LEN // cfg.patch},
        "op_set": info.op_names,
        "tensor_types": sorted({t.type for t in info.tensors}),
        "inputs": {
            "window": {"shape": [1, B.WINDOW_LEN], "scale": run.window_quant[0],
                       "zero_point": run.window_quant[1]},
            "rr": {"shape": [1, B.N_RR_FEATURES], "scale": run.rr_quant[0],
                   "zero_point": run.rr_quant[1], "features": list(B.RR_FEATURE_NAMES)},
            **({"diff": {"shape": [1, B.WINDOW_LEN], "scale": run.diff_quant[0],
                         "zero_point": run.diff_quant[1]}} if run.has_diff else {}),
        },
        "outputs": {
            "logits": {t.name: {"shape": list(t.shape), "scale": t.scale[0],
                                "zero_point": t.zero_point[0]}
                       for t in run.outputs if int(np.prod(t.shape)) == N_CLASSES},
            "embedding": {t.name: {"shape": list(t.shape), "scale": t.scale[0],
                                   "zero_point": t.zero_point[0]}
                          for t in run.outputs if int(np.prod(t.shape)) != N_CLASSES},
            "classes": list(B.AAMI_CLASSES),
            "decision": "argmax of the int8 logits (ties: lowest class index)",
        },
        "head_offsets_folded_into_bias": [float(v) for v in offsets],
        "features": "ecgedge.beats (module docstring is the specification)",
        "training": {
            "data": "MIT-BIH Arrhythmia DS1 (de Chazal 2004), MLII lead, reference beat "
                    "positions; NSTDB em/ma/bw noise copies",
            "records": list(B.DS1),
            "command": command,
            "seconds": round(train_seconds, 1),
            "cv": cv,
            "versions": _versions(),
        },
        "ds2": ds2_public,
        "ops": ops,
        "tensors": tensors,
    }


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in ("tensorflow", "keras", "tflite_micro"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # pragma: no cover - optional
            pass
    return out


# --------------------------------------------------------------------------------------------

def count_params(model: Any) -> dict[str, int]:
    import keras

    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    total = int(model.count_params())
    head = int(model.get_layer("head").count_params())
    del keras
    return {"trainable": trainable, "total_incl_norm_stats": total, "head": head,
            "backbone_trainable": trainable - head}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "models")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="beat_tx")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--configs", nargs="+", default=[SHIPPED], choices=list(GRID),
                    help=f"configurations to cross-validate (default: {SHIPPED}, the shipped "
                         "model's; the CV table in models/README.md lists all of GRID)")
    ap.add_argument("--noise-copies", type=int, default=2)
    ap.add_argument("--max-epochs", type=int, default=None, help="override the configs' value")
    ap.add_argument("--cv-only", action="store_true", help="stop after cross-validation")
    ap.add_argument("--no-int8-cv", action="store_true",
                    help="skip the int8 (TFLM) check of the fold models; select on float OOF")
    ap.add_argument("--cv-log", type=Path, default=None,
                    help="append each config's CV summary (one JSON line) to this file")
    ap.add_argument("--rr-cue", action="store_true",
                    help="only print how far the RR features alone separate S from N on DS1")
    ap.add_argument("--eval-only", action="store_true",
                    help="only evaluate OUT/NAME.tflite on DS2 with TFLM (no TensorFlow)")
    args = ap.parse_args(argv)
    t0 = time.time()
    margin = max(c.jitter for c in GRID.values())

    if args.rr_cue:
        rr_cue_report()
        return 0

    if args.eval_only:
        data = (args.out / f"{args.name}.tflite").read_bytes()
        write_vectors(args.out / f"{args.name}.vectors.json", data, args.seed)
        print_ds2(evaluate_ds2(data, ds2_features()))
        return 0

    configs = {k: GRID[k] if args.max_epochs is None else replace(GRID[k],
                                                                    max_epochs=args.max_epochs)
               for k in args.configs}
    ds1 = load_set(B.DS1, margin, args.noise_copies, args.seed, "DS1")
    n_lab = np.bincount(np.concatenate([r.classes[r.labelled] for r in ds1]), minlength=5)
    console.print(f"DS1: {len(ds1)} records, beats per class "
                  f"{dict(zip(B.AAMI_CLASSES, n_lab.tolist()))}, {1 + args.noise_copies} copies "
                  f"({time.time() - t0:.0f} s)")
    folds = make_folds(ds1, args.folds)
    console.print("folds: " + " | ".join(" ".join(ds1[i].name for i in f) for f in folds))

    results = []
    for name, cfg in configs.items():
        t = time.time()
        res = cross_validate(name, cfg, ds1, folds, args.seed, margin)
        results.append(res)
        e = pick_epoch(res)
        if not args.no_int8_cv:
            res.int8 = int8_cv(res, ds1, folds, e, args.seed, margin)
        res.weights = []  # free memory
        console.print(f"CV {name} ({cfg.name()}): best epoch {e}, OOF score "
                      f"{res.scores[e - 1]:.1f} (raw argmax {res.raw_scores[e - 1]:.1f}); int8 "
                      f"{res.int8.get('score')} agreement {res.int8.get('agreement_with_float_pct')}"
                      f" % [{time.time() - t:.0f} s]")
        if args.cv_log is not None:
            assert res.y is not None
            mm = confusion(res.y, np.argmax(res.oof[e - 1] + res.offsets[e - 1], axis=1))
            with args.cv_log.open("a") as fh:
                fh.write(json.dumps({"name": name, "seed": args.seed, "config": asdict(cfg),
                                     "epochs": e,
                                     "score": round(res.scores[e - 1], 2),
                                     "classes": class_stats(mm), "int8": res.int8,
                                     "offsets": [float(v) for v in res.offsets[e - 1]],
                                     "seconds": round(res.seconds, 1)}) + "\n")
    table = Table(title="DS1 cross-validation (pooled out-of-fold, tuned offsets)")
    table.add_column("config")
    table.add_column("epochs", justify="right")
    table.add_column("score", justify="right")
    table.add_column("int8 score", justify="right")
    table.add_column("agree %", justify="right")
    table.add_column("fold scores (argmax)", justify="left")
    for c in ("S Se", "S +P", "V Se", "V +P", "F Se", "F +P"):
        table.add_column(c, justify="right")
    cv_summary: dict[str, Any] = {"folds": [[ds1[i].name for i in f] for f in folds],
                                  "score": "mean(F1_S, F1_V), pooled out-of-fold, offsets tuned; "
                                           "selection on the int8 (TFLM) out-of-fold score",
                                  "configs": {}}
    best: tuple[float, CvResult, int] | None = None
    for res in results:
        e = pick_epoch(res)
        assert res.y is not None
        m = confusion(res.y, np.argmax(res.oof[e - 1] + res.offsets[e - 1], axis=1))
        st = class_stats(m)
        table.add_row(res.cfg_name, str(e), f"{res.scores[e - 1]:.1f}",
                      str(res.int8.get("score", "-")),
                      str(res.int8.get("agreement_with_float_pct", "-")),
                      " ".join(f"{v:.0f}" for v in res.fold_scores[e - 1]),
                      *[f"{st[c][k]:.1f}" for c in "SVF" for k in ("Se", "PP")])
        cv_summary["configs"][res.cfg_name] = {
            "config": asdict(res.cfg), "epochs": e, "score": round(res.scores[e - 1], 2),
            "score_per_epoch": [round(s, 2) for s in res.scores],
            "fold_scores_argmax": [round(v, 1) for v in res.fold_scores[e - 1]],
            "offsets": [float(v) for v in res.offsets[e - 1]], "classes": st,
            "int8": res.int8, "seconds": round(res.seconds, 1)}
        sel = res.int8.get("score", res.scores[e - 1])  # int8 OOF score when measured
        if best is None or sel > best[0]:
            best = (sel, res, e)
    console.print(table)
    assert best is not None
    _, chosen, epochs = best
    offsets = chosen.offsets[epochs - 1]
    cv_summary["chosen"] = {"config": chosen.cfg_name, "epochs": epochs,
                            "offsets": [float(v) for v in offsets]}
    if args.cv_log is not None and args.cv_log.exists():
        # every configuration cross-validated so far (earlier runs of this script included)
        cv_summary["all_runs"] = [json.loads(line) for line in args.cv_log.read_text().splitlines()
                                  if line.strip()]
    console.print(f"chosen: {chosen.cfg_name}, {epochs} epochs, offsets {offsets.tolist()}")
    if args.cv_only:
        return 0

    model = train_final(chosen.cfg, ds1, epochs, args.seed, margin)
    train_seconds = time.time() - t0
    exp = export_model(model, chosen.cfg, offsets)
    data = X.convert_int8(exp, calibration_set(ds1, margin, args.seed,
                                               names=chosen.cfg.input_names))
    info = X.inspect_tflite(data)
    bad = info.non_int_tensors()
    if bad:
        console.print(f"[red]float islands: {[(t.name, t.type) for t in bad]}[/red]")
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.name}.tflite"
    path.write_bytes(data)
    arena = X.arena_bytes(data)
    params = count_params(model)
    console.print(f"{path}: {len(data)} bytes, {params['trainable']} trainable parameters, "
                  f"arena {arena} bytes, ops {', '.join(info.op_names)}")

    ds2 = ds2_features()
    # float reference: the training model plus the offsets (= the exported model before int8)
    float_logits = [predict(model, r.inputs(chosen.cfg.input_names)) + offsets for r in ds2]
    ds2_res = evaluate_ds2(data, ds2, float_logits)
    print_ds2(ds2_res)
    command = "python tools/train_classifier.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    card = model_card(args.name, data, chosen.cfg, params, arena, cv_summary, ds2_res, offsets,
                      command, train_seconds)
    (args.out / f"{args.name}.json").write_text(json.dumps(card, indent=1) + "\n")
    write_vectors(args.out / f"{args.name}.vectors.json", data, args.seed)
    console.print(f"wrote {path} and {args.out / (args.name + '.json')} "
                  f"(total {time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

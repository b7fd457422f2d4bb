#!/usr/bin/env python
"""Write `models/README.md` from the model card (`models/beat_tx.json`) and the `.tflite`.

    python tools/model_readme.py            # models/beat_tx.{json,tflite} -> models/README.md

The hand-written parts (history of DS2 looks, notes) are kept in this file, next to the
generator; the numbers all come from the card, so README and card cannot disagree.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import export_tflite as X  # noqa: E402

CLASSES = ("N", "S", "V", "F", "Q")

# Every time DS2 was evaluated, in order (the test set must not steer choices; this is the log).
DS2_LOOKS = [
    "1. First pipeline run (BatchNorm transformer), with a CV-tuned F offset (+2.0): 7205 N beats "
    "called F on DS2 (S 23.0/30.9, V 82.5/70.5). The F offset was removed from the tuning (the "
    "score ignores F, so it was unconstrained) - a change made after seeing DS2.",
    "2. Same pipeline without the F offset: S 27.9/30.0, V 87.1/68.6 (the previous committed "
    "model, sha256 b2655180...).",
    "3. This model, once, after every choice had been made on DS1 cross-validation (the "
    "configuration with the best int8 out-of-fold score in the table below was trained and "
    "exported automatically, then evaluated). No choice was made after this look. DS2 does "
    "not confirm the CV gain: S got worse (Se 27.9 -> 16.1, +P 30.0 -> 20.9), V +P better "
    "(68.6 -> 75.0), V Se worse (87.1 -> 83.7), and 1118 N beats are now called Q (Q has 8 "
    "training beats and is not in the selection score). It ships because the protocol is "
    "'ship if the DS1 CV score is better'; whether to keep the previous model instead is the "
    "lead's call (it would be a DS2-driven choice).",
    "4. The same file re-run through `train_classifier.py --eval-only` to check that path "
    "(identical numbers and golden vectors; nothing chosen).",
]


def pct(v: Any) -> str:
    return "-" if v is None or v != v else f"{v:.2f}" if isinstance(v, float) else str(v)


def cv_table(card: dict[str, Any]) -> str:
    runs = card["training"]["cv"].get("all_runs", [])
    seen: dict[str, dict[str, Any]] = {}
    for r in runs:  # the final run repeats the chosen configuration: identical (seeded)
        seen.setdefault(r["name"], r)
    rows = ["| config | what changes vs. base | epochs | float score | int8 score | int8/float "
            "agree % | S Se | S +P | V Se | V +P | int8 S Se | int8 S +P | int8 V Se | int8 V +P |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    what = {
        "base": "previous model: BatchNorm after residuals, ReLU",
        "qf": "no BatchNorm (plain residuals), fused RELU6 activations",
        "qf_diff": "qf + third input `diff` (beat minus running template) via its own patch "
                   "embedding",
        "qf_qat": "qf + quantization-aware training (fake-quant on every activation)",
        "qf_bal75": "qf + class draw weight n^0.75 (more balanced)",
        "qf_bal35": "qf + class draw weight n^0.35 (less balanced)",
        "qf_focal2": "qf + focal loss, gamma 2",
        "qf_p8": "qf + 8-sample patches (32 tokens)",
        **WHAT_NEW,
    }
    for name, r in seen.items():
        c, i8 = r["classes"], r.get("int8", {})
        ic = i8.get("classes", {})
        rows.append(
            f"| {name} | {what.get(name, '')} | {r['epochs']} | {r['score']:.2f} | "
            f"{pct(i8.get('score'))} | {pct(i8.get('agreement_with_float_pct'))} | "
            f"{c['S']['Se']:.1f} | {c['S']['PP']:.1f} | {c['V']['Se']:.1f} | {c['V']['PP']:.1f} | "
            + " | ".join(f"{ic[k][m]:.1f}" if k in ic else "-" for k in "SV"
                         for m in ("Se", "PP")) + " |")
    return "\n".join(rows)


WHAT_NEW = {
    "qf_bal35_noq_rrskip": "qf_bal35 + Q never drawn + RR MLP also added into the embedding layer",
    "rrskip_aug": "qf_bal35_noq_rrskip + gain +-25 %, baseline offset/ramp +-0.2, RR ratios +-5 %",
    "rrskip_md": "qf_bal35_noq_rrskip + dropout 0.3 on the pooled morphology vector",
    "rrskip_e24": "qf_bal35_noq_rrskip with up to 24 epochs (cosine schedule over 24)",
}


# Hand-written reading of the multi-seed table (its numbers come from the file below it).
SEED_NOTE = (
    "No variant beats the shipped configuration: the differences between the means are smaller "
    "than one seed-to-seed standard deviation (2-5 points), so the shipped model was kept. "
    "Why S is stuck: on DS1, with V/F/Q assumed perfectly recognised, the RR features alone give "
    "S Se 74.7 / +P 39.7 at best (rule `pre/local < 0.6 or pre/long < 0.82`, tuned in-sample), "
    "and a linear score of all 9 RR features has +P 25.8 % at Se 80 % "
    "(`python tools/train_classifier.py --rr-cue` prints these figures). 357 of DS1's 944 S "
    "beats are not premature against the 8-beat local mean (pre/local >= 0.9; 301 of them in "
    "records 209 and 207, runs of SVT; same command), so S +P >= 60 at Se >= 80 needs a "
    "morphology cue (the P wave) that generalises across patients, which none of the variants "
    "found."
)


def seed_table(path: Path) -> str:
    """Every (configuration, seed) CV run logged in `path` (one JSON line per run, as
    `train_classifier.py --cv-only --seed S --cv-log` writes them), with mean +- sd per config."""
    if not path.exists():
        return "(no multi-seed log)"
    runs: dict[str, list[dict[str, Any]]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            runs.setdefault(r["name"], []).append(r)
    rows = ["| config | seed | epochs | float score | int8 score | agree % | int8 S Se / +P | "
            "int8 V Se / +P | int8 N Se |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    means = []
    for name, rs in runs.items():
        rs.sort(key=lambda r: r["seed"])
        for r in rs:
            c = r["int8"]["classes"]
            rows.append(f"| {name} | {r['seed']} | {r['epochs']} | {r['score']:.2f} | "
                        f"{r['int8']['score']:.2f} | {r['int8']['agreement_with_float_pct']:.2f} | "
                        f"{c['S']['Se']:.1f} / {c['S']['PP']:.1f} | "
                        f"{c['V']['Se']:.1f} / {c['V']['PP']:.1f} | {c['N']['Se']:.1f} |")
        fl = [r["score"] for r in rs]
        i8 = [r["int8"]["score"] for r in rs]
        sd = (lambda v: f" +- {statistics.stdev(v):.2f}" if len(v) > 1 else "")
        means.append(f"- `{name}` ({len(rs)} seeds; {WHAT_NEW.get(name, 'the shipped model')}): "
                     f"float {statistics.mean(fl):.2f}{sd(fl)}, int8 "
                     f"{statistics.mean(i8):.2f}{sd(i8)}")
    return "\n".join(rows) + "\n\nMean +- sd over seeds:\n" + "\n".join(means)


def confusion_table(m: list[list[int]], classes: dict[str, Any]) -> str:
    rows = ["| ref \\ pred | N | S | V | F | Q | Se % | +P % |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for i, c in enumerate(CLASSES):
        st = classes.get(c)
        se = f"{st['Se']:.2f}" if st else "-"
        pp = f"{st['PP']:.2f}" if st else "-"
        rows.append(f"| {c} | " + " | ".join(str(v) for v in m[i]) + f" | {se} | {pp} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--name", default="beat_tx")
    args = ap.parse_args(argv)
    import json

    card = json.loads((args.models / f"{args.name}.json").read_text())
    data = (args.models / f"{args.name}.tflite").read_bytes()
    info = X.inspect_tflite(data)
    arch = card["architecture"]
    cv = card["training"]["cv"]
    ch = cv["chosen"]
    chosen = cv["configs"][ch["config"]]
    ds2 = card["ds2"]
    g, g5 = ds2["ec57_gross_all_beats"], ds2["ec57_gross_from_5min"]
    fm = ds2.get("float_model", {})
    ins = card["inputs"]
    logits = next(iter(card["outputs"]["logits"].values()))
    emb = next(iter(card["outputs"]["embedding"].values()))
    head = next(o for o in info.ops if o.outputs[0] in info.outputs
                and int(__import__("numpy").prod(info.tensor(o.outputs[0]).shape)) == 5)
    emb_t = head.inputs[0]
    logit_t = head.outputs[0]
    input_list = ", ".join(f"{k} = `{info.tensor(i).name}` (#{i})"
                           for k, i in enumerate(info.inputs))
    v = card["training"]["versions"]
    act = "RELU6" if arch.get("relu6") else "ReLU"
    norm = ("BatchNorm after each residual" if arch.get("norm", "bn") == "bn"
            else "no normalisation layers (plain residuals: nothing that exports as MUL/ADD "
                 "islands)")
    per_rec = ds2["per_record_ref_tp_called"].get("232", {})
    s232 = per_rec.get("S", [0, 0, 0])
    txt = f"""# Models

## `{card['name']}` - tiny int8 transformer beat classifier

| | |
| --- | --- |
| file | `{card['file']}`, {card['file_bytes']} bytes, sha256 `{card['sha256']}` |
| card | `{card['name']}.json` (everything below, machine-readable, plus every tensor); golden vectors `{card['name']}.vectors.json` |
| parameters | {card['parameters']['trainable']} trainable (backbone {card['parameters']['backbone_trainable']}, head {card['parameters']['head']}); constant data in the file {card['weights_bytes']} bytes |
| TFLM arena | {card['arena_bytes_tflm']} bytes (RecordingMicroAllocator total on a 64-bit host, interpreter bookkeeping included) |
| ops | {', '.join(card['op_set'])} - all int8 (int32 only for biases and shape constants) |
| inputs | `window` int8 [1, 256] (scale {ins['window']['scale']:.10g}, zero point {ins['window']['zero_point']}); `rr` int8 [1, 9] (scale {ins['rr']['scale']:.10g}, zero point {ins['rr']['zero_point']}){'; `diff` int8 [1, 256] (scale %.10g, zero point %d)' % (ins['diff']['scale'], ins['diff']['zero_point']) if 'diff' in ins else ''} |
| outputs | logits int8 [1, 5] N S V F Q (scale {logits['scale']:.10g}, zp {logits['zero_point']}), decision = argmax; embedding int8 [1, {arch['emb']}] (scale {emb['scale']:.10g}, zp {emb['zero_point']}) |
| features | `host_sdk/ecgedge/beats.py` (its docstring is the specification){'; this model uses the optional `diff` input' if 'diff' in ins else '; this model does **not** use the optional `diff` input (steps 6-7)'} |
| training | MIT-BIH DS1 only (22 records, MLII, reference beat positions; N 45866 S 944 V 3788 F 415 Q 8) + 2 noisy copies (NSTDB em/ma/bw, 6-24 dB); `{card['training']['command']}` ({card['training']['seconds']:.0f} s to the trained model, CV included, on 2 shared cores) |
| versions | tensorflow {v.get('tensorflow')}, keras {v.get('keras')}, tflite-micro {v.get('tflite_micro')}, numpy {v.get('numpy')} |

Reproduce: `python tools/train_classifier.py --configs {ch['config']} --out models/ --seed 0`
(deterministic: the CV of that run gave the same numbers as the exploratory run; `--cv-log FILE`
only adds the table of every configuration tried to the card). To re-run the whole table:
`--configs base qf qf_diff qf_qat qf_bal75 qf_focal2 qf_bal35 qf_p8 --cv-only --cv-log FILE`.

### Architecture
Backbone: `window` [256] -> {256 // arch['patch']} tokens of {arch['patch']} samples -> FULLY_CONNECTED {arch['patch']}->{arch['d_model']} + learned
position embedding -> {arch['blocks']} encoder block(s) ({arch['heads']}-head self-attention, key dim {arch['d_model'] // arch['heads']}; residual;
feed-forward {arch['d_model']}->{arch['ff']} {act}->{arch['d_model']}; residual; {norm}) -> MEAN over tokens [{arch['d_model']}].
`rr` [9] -> dense {arch['rr_hidden']} {act}. Join: {act}(dense {arch['d_model']}->{arch['mix']} (pooled) + dense {arch['rr_hidden']}->{arch['mix']} (rr)) -> dense {arch['mix']}->{arch['emb']} {act}
= **embedding** (tensor #{emb_t}, a graph output). **Head**: one FULLY_CONNECTED {arch['emb']}->5 (op {head.index}, weights
tensor #{head.inputs[1]}, bias #{head.inputs[2]}) from the embedding to the logits; the S/V decision offsets picked by CV
({ch['offsets']}) are folded into its bias. {act} is fused into the FULLY_CONNECTED ops
(`fusedActivationFunction`), i.e. an output clamp, not a separate op. No LayerNorm (float
islands), no GELU (no TFLM kernel); Keras `EinsumDense` instead of `Dense` on 3-D tensors;
batch size fixed to 1 at export.

### Cross-validation (DS1 only) - everything tried
5 folds of whole records (snake draft by S then V count): {' | '.join(' '.join(f) for f in cv['folds'])}.
Score: mean(F1 of S, F1 of V), pooled out-of-fold, with S/V logit offsets tuned on the
out-of-fold logits; the epoch count is the best 3-epoch moving average (max 16 epochs).
**int8 score**: the 5 fold models of that epoch exported to int8 exactly like the shipped model
(offsets in the head bias, calibrated on their own training records) and run by the TFLM
reference interpreter on their held-out records. The configuration is chosen on the int8 score.
One seed (0) per configuration: differences of 1-2 points are probably within seed noise (not
measured). Earlier run (previous engineer, float CV only): `wide` d24 ff48 with BatchNorm, score 50.07.

{cv_table(card)}

Chosen: **{ch['config']}**, {ch['epochs']} epochs, int8 CV score {chosen.get('int8', {}).get('score')} (previous model: the `base` row).

**Seed check** (after the choice, DS1 only; `--seed 1 --configs qf_bal35 base --cv-only`: other
fold-model initialisations, draws and noise copies). Seed noise is large - as large as the
differences in the table above - so single-seed rankings are weak evidence:

| config | seed | epochs | float score | int8 score | agree % | int8 S Se / +P | int8 V Se / +P |
| --- | --- | --- | --- | --- | --- | --- | --- |
| qf_bal35 | 0 | 16 | 57.13 | 56.94 | 96.51 | 39.5 / 33.1 | 75.3 / 80.5 |
| qf_bal35 | 1 | 14 | 55.00 | 48.73 | 93.29 | 62.1 / 13.0 | 78.6 / 73.5 |
| base | 0 | 10 | 53.73 | 52.71 | 96.09 | 40.6 / 24.1 | 81.7 / 69.6 |
| base | 1 | 12 | 50.78 | 47.91 | 95.23 | 37.1 / 18.5 | 69.8 / 72.5 |

Two-seed means: qf_bal35 float 56.1 / int8 52.8; base float 52.3 / int8 50.3. qf_bal35 stays
ahead on both seeds, by about 4 points float and 1-5 points int8.

**Multi-seed check** (later session, DS1 CV only, nothing chosen on DS2; `python
tools/train_classifier.py --configs CONFIG --cv-only --seed SEED --cv-log
models/{card['name']}.cv_seeds.jsonl`, seeds 0-2; the table is that file):

{seed_table(args.models / f"{card['name']}.cv_seeds.jsonl")}

{SEED_NOTE}

### DS2 (test; 22 records, {ds2['beats']} reference beats, int8, TFLM reference interpreter)

{confusion_table(ds2['confusion_ref_rows_pred_cols'], ds2['classes'])}

EC57 gross (Q reference beats left out; F called V is not a VEB false positive):
all beats VEB Se {g['VEB_Se']} / +P {g['VEB_PP']}, SVEB Se {g['SVEB_Se']} / +P {g['SVEB_PP']};
from 5:00 on VEB {g5['VEB_Se']} / {g5['VEB_PP']}, SVEB {g5['SVEB_Se']} / {g5['SVEB_PP']}.
The float Keras model before quantization: S Se {fm.get('classes', {}).get('S', {}).get('Se')} / +P {fm.get('classes', {}).get('S', {}).get('PP')},
V Se {fm.get('classes', {}).get('V', {}).get('Se')} / +P {fm.get('classes', {}).get('V', {}).get('PP')}; int8 and float agree on {fm.get('agreement_with_int8_pct')} % of beats.
Record 232: {s232[0]} S beats, {s232[1]} called S, {s232[2]} beats called S in all; {per_rec.get('V', [0, 0, 0])[2]} beats called V
(it has {per_rec.get('V', [0, 0, 0])[0]} V beats).

**Targets** (V Se >= 95 and +P >= 95; S Se >= 80 and +P >= 60): **not met**.

DS2 looks, all of them:
{chr(10).join(DS2_LOOKS)}

### For the C implementation
- Features: `ecgedge.beats` docstring, bit for bit in float32 (compile with
  `-ffp-contract=off`: no fused multiply-add); quantize as `clamp(round_half_away(x / scale) + zp)`.
- Kernels: TFLM reference int8 kernels with the default double-rounding requantization
  (`MultiplyByQuantizedMultiplier`); weights per-channel symmetric (zero point 0), biases int32
  at `input_scale * weight_scale[c]`. SOFTMAX is TFLM's int8 softmax (output scale 1/256, zp -128).
  Fused activations of FULLY_CONNECTED (RELU, RELU6) are clamps of the int8 output
  (`CalculateActivationRangeQuantized`).
- `{card['name']}.vectors.json`: 18 DS1 beats with float32 features, int8 inputs, int8 embedding and
  logits, plus every intermediate tensor of the first beat (by tensor index below).
- Personalisation: replace tensor #{head.inputs[1]} (int8 [5,{arch['emb']}], per-channel scales) and #{head.inputs[2]} (int32 [5]) of op {head.index};
  the embedding (tensor #{emb_t}) and the logits (#{logit_t}) are graph outputs {list(info.outputs).index(emb_t)} and {list(info.outputs).index(logit_t)}. Graph inputs:
  {input_list}.

Ops in execution order (`python tools/export_tflite.py models/{card['file']}`):

```
{X.describe(info)}
```
"""
    (args.models / "README.md").write_text(txt)
    print(f"wrote {args.models / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Compile an int8 `.tflite` model into C for the firmware's `ecg_nn` kernels.

    python tools/gen_model_c.py              # models/beat_tx.tflite -> firmware/.../ecg_model_data.{c,h}
    python tools/gen_model_c.py --check      # exit 1 when the committed files are stale
    python tools/gen_model_c.py --summary    # also print the kernel list and the arena plan
    python tools/gen_model_c.py --generic m.tflite --out-c x.c --out-h x.h   # any int8 model (tests)

The `.tflite` file is the single source of truth: every weight, bias, zero point and scale is read
from it, and every derived integer parameter (Q31 multipliers and shifts, activation clamps,
softmax exponential tables, broadcast strides, arena offsets) is computed here with the exact
formulas of the TFLite Micro `Prepare()` functions (`QuantizeMultiplier` on the same double and
float expressions), so the C kernels in `firmware/src/core/ecg_nn.c` reproduce the TFLM reference
kernels bit for bit (tests/test_classifier_c.py checks every MIT-BIH DS2 beat, and synthetic
models for the kernels beat_tx does not use).

What is generated (pointer-free `const` tables in flash, plus one function):
  * `ecg_model_run(arena, bytes)`: one kernel call per TFLite operator, in model order, with its
    parameter struct built on the stack; `ecg_model_ops` lists the same calls as data;
  * one scratch arena: every int8 activation gets a byte offset, planned greedily (largest
    buffers first, at the lowest offset free of the buffers alive at the same time, as TFLM's
    GreedyMemoryPlanner does); RESHAPE / SQUEEZE / EXPAND_DIMS share their input's bytes;
  * exact rewrites that keep TFLM's integers: a TRANSPOSE read only by BATCH_MATMULs becomes
    operand strides; a FULLY_CONNECTED input offset is folded into its bias
    (sum w (x + o) + b = sum w x + (b + o sum w)); a constant ADD operand is rescaled here;
    an element-wise op of one int8 tensor and scalar constants (RELU, QUANTIZE, MUL or ADD by a
    scalar) becomes a 256-entry table of its outputs; ADD operands are ordered for the kernel's
    fast paths (AddFunc is symmetric);
  * classifier mode (default): the model must have the beat classifier's interface, inputs
    `window` and `rr`, outputs `embedding` and `logits` with logits = FULLY_CONNECTED(embedding),
    the *head*. The head is left out of the graph and published as tables (ECG_MODEL_HEAD_*) so
    that the firmware can swap it for a personalized one; the graph stops at the embedding;
  * the model's sha256 and id, the interface's quantization and arena offsets, and a few sample
    beats (int8 inputs from `models/<name>.vectors.json`, re-quantized with this model's input
    parameters; synthetic inputs when that file is missing) with the outputs the TFLM interpreter
    gives for them (needs the `tflite-micro` package), for the firmware's self-test and the QEMU
    bench.

Fails loudly (exit 2, naming the operator) on anything the kernels do not cover: an op outside
FULLY_CONNECTED, BATCH_MATMUL, ADD, MUL, SOFTMAX, MEAN, TRANSPOSE, RESHAPE/SQUEEZE/EXPAND_DIMS,
CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, RELU, QUANTIZE; a float/int16 activation; an
unsupported fused activation; a broadcast that does not fit 4 merged dimensions; MEAN over
non-adjacent axes; etc.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "models" / "beat_tx.tflite"
OUT_C = ROOT / "firmware" / "src" / "core" / "ecg_model_data.c"
OUT_H = ROOT / "firmware" / "include" / "ecg" / "ecg_model_data.h"
N_SAMPLES = 4
ARENA_ALIGN = 4
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1

ALIAS_OPS = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS"}
KERNEL_OPS = {"FULLY_CONNECTED", "BATCH_MATMUL", "ADD", "MUL", "SOFTMAX", "MEAN", "TRANSPOSE",
              "CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "RELU", "QUANTIZE"}
SUPPORTED_OPS = ALIAS_OPS | KERNEL_OPS
ACT_NAMES = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


class UnsupportedModel(Exception):
    """The model uses something the firmware kernels do not implement."""


# ---------------------------------------------------------------------------------------------
# Reading the flatbuffer

@dataclass
class Tensor:
    index: int
    name: str
    type: str
    shape: tuple[int, ...]
    scale: list[np.float32]
    zero_point: list[int]
    quantized_dimension: int
    data: np.ndarray | None  # constant contents, else None

    @property
    def is_const(self) -> bool:
        return self.data is not None

    def const(self) -> np.ndarray:
        """The constant contents (raises for a variable tensor)."""
        if self.data is None:
            raise UnsupportedModel(f"tensor {self.index} ({self.name}) is not a constant")
        return self.data

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    def scale1(self) -> np.float32:
        if len(self.scale) != 1:
            raise UnsupportedModel(f"tensor {self.index} ({self.name}): expected per-tensor "
                                   f"quantization, got {len(self.scale)} scales")
        return self.scale[0]

    def zp1(self) -> int:
        return int(self.zero_point[0]) if self.zero_point else 0


@dataclass
class Op:
    index: int
    name: str
    inputs: list[int]
    outputs: list[int]
    options: Any


@dataclass
class Model:
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]


_DTYPES = {"INT8": np.int8, "INT32": np.int32, "UINT8": np.uint8, "INT16": np.int16,
           "INT64": np.int64, "FLOAT32": np.float32}


def _schema() -> Any:
    try:
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    except ImportError as e:  # pragma: no cover - environment
        raise SystemExit("gen_model_c.py needs the TFLite flatbuffer schema from the "
                         "`tflite-micro` package (pip install tflite-micro)") from e
    return schema


def load_model(data: bytes) -> Model:
    schema = _schema()
    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(data), 0))
    if len(m.subgraphs) != 1:
        raise UnsupportedModel(f"{len(m.subgraphs)} subgraphs (control flow) are not supported")
    g = m.subgraphs[0]
    type_names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    op_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    tensors = []
    for i, t in enumerate(g.tensors):
        tname = type_names[t.type]
        shape = tuple(int(d) for d in t.shape) if t.shape is not None else ()
        buf = m.buffers[t.buffer] if t.buffer < len(m.buffers) else None
        arr = None
        if buf is not None and buf.data is not None and len(buf.data) > 0:
            if tname not in _DTYPES:
                raise UnsupportedModel(f"constant tensor {i} ({t.name!r}) has type {tname}")
            arr = np.frombuffer(bytes(bytearray(buf.data)), dtype=_DTYPES[tname]).copy()
            arr = arr.reshape(shape) if shape else arr.reshape(())
        elif buf is not None and int(getattr(buf, "size", 0) or 0):
            raise UnsupportedModel(f"tensor {i}: buffers outside the flatbuffer are not supported")
        q = t.quantization
        scale = [np.float32(s) for s in q.scale] if q is not None and q.scale is not None else []
        zp = [int(z) for z in q.zeroPoint] if q is not None and q.zeroPoint is not None else []
        qdim = int(q.quantizedDimension) if q is not None else 0
        name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
        tensors.append(Tensor(i, name, tname, shape, scale, zp, qdim, arr))
    ops = []
    for k, o in enumerate(g.operators):
        code = m.operatorCodes[o.opcodeIndex]
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        name = op_names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            cc = code.customCode.decode() if code.customCode else "?"
            name = f"CUSTOM({cc})"
        ops.append(Op(k, name, [int(i) for i in o.inputs], [int(i) for i in o.outputs],
                      o.builtinOptions))
    return Model(tensors, ops, [int(i) for i in g.inputs], [int(i) for i in g.outputs])


# ---------------------------------------------------------------------------------------------
# TFLM integer arithmetic, ported exactly (see firmware/include/ecg/ecg_nn.h)

def f64(x: Any) -> float:
    """A float32 value as the double C++ gets from static_cast<double>."""
    return float(np.float32(x))


def round_half_away(x: float) -> int:
    """std::round / TfLiteRound: to nearest, ties away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(d: float) -> tuple[int, int]:
    """tflite::QuantizeMultiplier (double-rounding build): (Q31 significand, shift)."""
    if d == 0.0:
        return 0, 0
    if not (d > 0.0 and math.isfinite(d)):
        raise UnsupportedModel(f"multiplier {d!r} is negative or not finite")
    q, shift = math.frexp(d)
    q_fixed = round_half_away(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if q_fixed > INT32_MAX:
        raise UnsupportedModel(f"multiplier {d!r} does not fit Q31")
    if shift < -31:
        shift, q_fixed = 0, 0
    if shift > 30:
        raise UnsupportedModel(f"multiplier {d!r} needs a left shift of {shift} (> 30)")
    return q_fixed, shift


def quantize_multiplier_smaller_than_one(d: float) -> tuple[int, int]:
    if not 0.0 < d < 1.0:
        raise UnsupportedModel(f"ADD input/output multiplier {d!r} is not in (0, 1)")
    m, s = quantize_multiplier(d)
    if s > 0:
        raise UnsupportedModel(f"ADD multiplier {d!r} has a positive shift")
    return m, s


def wrap32(x: int) -> int:
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def srdhm(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul (int32)."""
    if a == b == INT32_MIN:
        return INT32_MAX
    return (a * b + (1 << 30)) >> 31


def rdbpot(x: int, e: int) -> int:
    """gemmlowp RoundingDivideByPOT (int32): ties away from zero."""
    mask = (1 << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if remainder > threshold else 0)


def requant(x: int, m: int, s: int) -> int:
    """tflite::MultiplyByQuantizedMultiplier(int32_t, int32_t, int), double rounding."""
    if s > 0:
        return srdhm(wrap32(x << s), m)
    return rdbpot(srdhm(x, m), -s)


def _sat_shl(x: int, e: int) -> int:
    threshold = (1 << (31 - e)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return wrap32(x << e)


def _exp_on_interval(a: int) -> int:
    constant_term, one_third = 1895147668, 715827883
    x = wrap32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbpot(x4, 2)
    poly = rdbpot(wrap32(srdhm(wrap32(x4_over_4 + x3), one_third) + x2), 1)
    return wrap32(constant_term + srdhm(constant_term, wrap32(x + poly)))


def _exp_on_negative_values_q5(a: int) -> int:
    multipliers = (1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242)
    quarter = 1 << 24
    amq = wrap32((a & (quarter - 1)) - quarter)
    result = _exp_on_interval(_sat_shl(amq, 5))
    remainder = wrap32(amq - a)
    for k, mult in enumerate(multipliers):
        if remainder & (1 << (24 + k)):
            result = srdhm(result, mult)
    return INT32_MAX if a == 0 else result


def softmax_exp_lut(multiplier: int, left_shift: int, diff_min: int) -> list[int]:
    """exp(scaled input difference) for differences 0, -1, ..., -255 (0 where TFLM skips)."""
    lut = []
    for i in range(256):
        d = -i
        if d >= diff_min:
            lut.append(_exp_on_negative_values_q5(srdhm(wrap32(d << left_shift), multiplier)))
        else:
            lut.append(0)
    return lut


def act_range(act: int, t: Tensor, op: Op) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for an int8 output."""
    qmin, qmax = -128, 127
    scale, zp = t.scale1(), t.zp1()

    def quant(f: float) -> int:
        tmp = np.float32(np.float32(f) / scale)  # float division, as TFLM's Quantize()
        return zp + round_half_away(float(tmp))

    if act == 0:
        return qmin, qmax
    if act == 1:
        return max(qmin, quant(0.0)), qmax
    if act == 3:
        return max(qmin, quant(0.0)), min(qmax, quant(6.0))
    if act == 2:
        return max(qmin, quant(-1.0)), min(qmax, quant(1.0))
    raise UnsupportedModel(f"op {op.index} {op.name}: fused activation "
                           f"{ACT_NAMES.get(act, act)} is not supported")


# ---------------------------------------------------------------------------------------------
# Shapes

def strides_of(shape: tuple[int, ...]) -> list[int]:
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return list(reversed(out))


def merge_dims(dims: list[int], strides: list[list[int]], max_dims: int,
               what: str) -> tuple[list[int], list[list[int]]]:
    """Drop extent-1 dimensions and merge neighbours that are contiguous in every operand."""
    keep = [i for i, d in enumerate(dims) if d != 1]
    d2 = [dims[i] for i in keep]
    s2 = [[s[i] for i in keep] for s in strides]
    k = len(d2) - 1
    while k > 0:
        if all(s[k - 1] == s[k] * d2[k] for s in s2):
            d2[k - 1] *= d2[k]
            for s in s2:
                s[k - 1] = s[k]
                del s[k]
            del d2[k]
        k -= 1
    if len(d2) > max_dims:
        raise UnsupportedModel(f"{what} needs {len(d2)} dimensions after merging (max {max_dims})")
    pad = max_dims - len(d2)
    return [1] * pad + d2, [[0] * pad + s for s in s2]


def bcast(shape1: tuple[int, ...], shape2: tuple[int, ...], out: tuple[int, ...],
          what: str) -> dict[str, list[int]]:
    rank = len(out)
    e1 = (1,) * (rank - len(shape1)) + tuple(shape1)
    e2 = (1,) * (rank - len(shape2)) + tuple(shape2)
    for a, b, o in zip(e1, e2, out):
        if not ((a == o or a == 1) and (b == o or b == 1)):
            raise UnsupportedModel(f"{what}: shapes {shape1} and {shape2} do not broadcast "
                                   f"to {out}")
    s1 = [0 if a == 1 else s for a, s in zip(e1, strides_of(e1))]
    s2 = [0 if b == 1 else s for b, s in zip(e2, strides_of(e2))]
    dims, (m1, m2) = merge_dims(list(out), [s1, s2], 4, what)
    return {"dims": dims, "stride1": m1, "stride2": m2}


# ---------------------------------------------------------------------------------------------
# Compilation

@dataclass
class Node:
    """One kernel call of the generated graph."""
    op: Op
    kind: str                     # ECG_NN_OP_* suffix
    ctype: str                    # parameter struct type
    params: dict[str, Any]        # field -> value (ints, lists, or ("ref", symbol))
    inputs: list[int]             # activation/constant input tensors (1 or 2)
    output: int
    arrays: list[tuple[str, str, list[int]]] = field(default_factory=list)  # (ctype, name, vals)
    scratch_bytes: int = 0        # kernel scratch in the arena (BATCH_MATMUL)
    unread: set[int] = field(default_factory=set)  # constant inputs replaced by derived tables


@dataclass
class Compiled:
    model: Model
    sha256: str
    name: str
    nodes: list[Node]
    alias: dict[int, int]                 # tensor -> buffer root
    offsets: dict[Any, int]               # buffer root (or ("scratch", node)) -> arena offset
    arena_bytes: int
    graph_inputs: list[int]
    graph_outputs: list[int]
    head: Node | None
    logits: int | None
    const_tensors: dict[int, np.ndarray]  # constants read through cin
    weights_bytes: int


def _opt(op: Op, name: str, default: Any = None) -> Any:
    if op.options is None:
        return default
    return getattr(op.options, name, default)


def _need_int8(t: Tensor, op: Op, role: str) -> None:
    if t.type != "INT8":
        raise UnsupportedModel(f"op {op.index} {op.name}: {role} tensor {t.index} ({t.name}) is "
                               f"{t.type}; only int8 activations are supported")


def _quant_list(mults: list[tuple[int, int]]) -> list[int]:
    out: list[int] = []
    for m, s in mults:
        out += [m, s]
    return out


def compile_model(data: bytes, name: str, classifier: bool = True) -> Compiled:
    model = load_model(data)
    T = model.tensors

    # 1. op set
    bad = sorted({o.name for o in model.ops if o.name not in SUPPORTED_OPS})
    if bad:
        raise UnsupportedModel("unsupported operator(s): " + ", ".join(bad) +
                               " (firmware kernels: " + ", ".join(sorted(SUPPORTED_OPS)) + ")")

    # 2. aliases (reshape-like ops share their input's bytes) and folded constants
    alias: dict[int, int] = {}

    def root(i: int) -> int:
        while i in alias:
            i = alias[i]
        return i

    for op in model.ops:
        if op.name in ALIAS_OPS:
            src, dst = T[op.inputs[0]], T[op.outputs[0]]
            if src.type != dst.type:
                raise UnsupportedModel(f"op {op.index} {op.name}: type change {src.type} -> "
                                       f"{dst.type}")
            if src.is_const:
                dst.data = src.const().reshape(dst.shape)
            else:
                alias[dst.index] = src.index
    for i in model.inputs:
        _need_int8(T[i], model.ops[0], "graph input")

    # 3. classifier interface: window/rr in, embedding/logits out, head = last FC
    head_op: Op | None = None
    logits = None
    graph_inputs = list(model.inputs)
    graph_outputs = list(model.outputs)
    if classifier:
        if len(model.inputs) != 2 or len(model.outputs) != 2:
            raise UnsupportedModel("classifier mode needs 2 inputs (window, rr) and 2 outputs "
                                   f"(embedding, logits); got {len(model.inputs)} and "
                                   f"{len(model.outputs)}")
        by_name = {("window" if "window" in T[i].name.lower() else
                    "rr" if "rr" in T[i].name.lower() else "?"): i for i in model.inputs}
        if set(by_name) != {"window", "rr"}:
            # fall back on size: the window is the longer input
            a, b = sorted(model.inputs, key=lambda i: -T[i].size)
            by_name = {"window": a, "rr": b}
        graph_inputs = [by_name["window"], by_name["rr"]]
        logits = min(model.outputs, key=lambda i: T[i].size)
        emb = next(i for i in model.outputs if i != logits)
        producers = [o for o in model.ops if logits in o.outputs]
        if (len(producers) != 1 or producers[0].name != "FULLY_CONNECTED"
                or root(producers[0].inputs[0]) != root(emb)):
            raise UnsupportedModel("classifier mode: logits must be FULLY_CONNECTED(embedding) "
                                   "(the replaceable head)")
        head_op = producers[0]
        graph_outputs = [emb]

    # 4. nodes. A TRANSPOSE read only by BATCH_MATMULs is folded into their operand strides (a
    #    strided view of the transpose's input): no copy, and the kernel gathers what it needs.
    folded: dict[int, tuple[int, tuple[int, ...], list[int]]] = {}
    for op in model.ops:
        if op.name != "TRANSPOSE" or not T[op.inputs[1]].is_const:
            continue
        t_out, src = op.outputs[0], T[op.inputs[0]]
        readers = [o for o in model.ops if t_out in o.inputs]
        if (readers and all(o.name == "BATCH_MATMUL" for o in readers)
                and t_out not in graph_outputs and not src.is_const):
            perm = [int(v) for v in T[op.inputs[1]].const().reshape(-1)]
            st = strides_of(src.shape)
            folded[t_out] = (src.index, tuple(src.shape[p] for p in perm), [st[p] for p in perm])
    nodes: list[Node] = []
    head: Node | None = None
    for op in model.ops:
        if op.name in ALIAS_OPS or (op.name == "TRANSPOSE" and op.outputs[0] in folded):
            continue
        node = _compile_op(op, T, fold_input_offset=op is not head_op, views=folded)
        if op is head_op:
            # the head's tables are public: ecg_classifier.c builds the factory head from them
            tag = f"op{op.index}_"
            node.arrays = [(ct, nm.replace(tag, "ecg_model_head_"), v) for ct, nm, v in node.arrays]
            node.params = {k: (("ref", v[1].replace(tag, "ecg_model_head_"))
                               if isinstance(v, tuple) else v) for k, v in node.params.items()}
            head = node
        else:
            nodes.append(node)

    # 5. arena plan
    alive_until_end = {root(i) for i in graph_outputs}
    first: dict[Any, int] = {root(i): -1 for i in graph_inputs}
    last: dict[Any, int] = {}
    for k, n in enumerate(nodes):
        for i in n.inputs:
            if not T[i].is_const:
                r = root(i)
                if r not in first:
                    raise UnsupportedModel(f"op {n.op.index} {n.op.name}: input {i} is neither "
                                           "a constant, a graph input nor computed earlier")
                last[r] = max(last.get(r, -1), k)
        r = root(n.output)
        first.setdefault(r, k)
        last[r] = max(last.get(r, k), k)
    for r in alive_until_end:
        last[r] = len(nodes)
    for r in first:
        last.setdefault(r, first[r])
    sizes: dict[Any, int] = {r: T[r].size for r in first}
    for k, n in enumerate(nodes):
        if n.scratch_bytes:
            key = ("scratch", k)
            first[key], last[key], sizes[key] = k, k, n.scratch_bytes
    offsets: dict[Any, int] = {}
    placed: list[Any] = []
    for r in sorted(first, key=lambda r: (-sizes[r], first[r], str(r))):
        busy = sorted((offsets[p], offsets[p] + sizes[p]) for p in placed
                      if not (last[p] < first[r] or last[r] < first[p]))
        off = 0
        for lo, hi in busy:
            if off + sizes[r] <= lo:
                break
            off = max(off, -(-hi // ARENA_ALIGN) * ARENA_ALIGN)
        offsets[r] = off
        placed.append(r)
    arena = max((offsets[r] + sizes[r] for r in offsets), default=0)
    arena = -(-arena // ARENA_ALIGN) * ARENA_ALIGN

    const_tensors: dict[int, np.ndarray] = {}
    for n in nodes:
        for i in n.inputs:
            if T[i].is_const and i not in n.unread:
                _need_int8(T[i], n.op, "constant input")
                const_tensors[i] = T[i].const()
    weights_bytes = 0
    for t in T:
        if t.is_const and t.type in ("INT8", "INT32") and t.size > 0 and _is_weight(t, model):
            weights_bytes += int(t.const().nbytes)
    return Compiled(model, hashlib.sha256(data).hexdigest(), name, nodes, alias, offsets, arena,
                    graph_inputs, graph_outputs, head, logits, const_tensors, weights_bytes)


def _is_weight(t: Tensor, model: Model) -> bool:
    """Constant tensors that are model parameters (not shapes, permutations or axes)."""
    for op in model.ops:
        if t.index in op.inputs:
            k = op.inputs.index(t.index)
            if op.name in ALIAS_OPS or op.name in ("TRANSPOSE", "MEAN"):
                return k == 0
            return True
    return False


def _bmm_scratch_bytes(rows: int, cols: int, depth: int, lhs_offset: int, lhs_k_stride: int,
                       rhs_k_stride: int) -> int:
    """ecg_nn_batch_matmul_s8_scratch_bytes (same formula as the C)."""
    def align(n: int) -> int:
        return -(-n // ARENA_ALIGN) * ARENA_ALIGN
    n = 0
    if lhs_offset != 0:
        n += cols * 4
    if rhs_k_stride != 1:
        n += align(cols * depth)
    if lhs_k_stride != 1:
        n += align(rows * depth)
    return n


def _lut_node(op: Op, x: Tensor, out: Tensor, f: Any) -> Node:
    """An element-wise op of one int8 input as a 256-entry table of its exact outputs."""
    table = [int(f(u - 256 if u >= 128 else u)) for u in range(256)]  # index: the input's byte
    if any(not -128 <= v <= 127 for v in table):
        raise UnsupportedModel(f"op {op.index} {op.name}: table value out of int8 range")
    tag = f"op{op.index}"
    params = {"count": out.size, "table": ("ref", f"{tag}_table")}
    return Node(op, "LUT", "ecg_nn_lut_params_t", params, [x.index], out.index,
                [("int8_t", f"{tag}_table", table)])


def _clamp(v: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, v))


def _compile_op(op: Op, T: list[Tensor], fold_input_offset: bool,
                views: dict[int, tuple[int, tuple[int, ...], list[int]]] | None = None) -> Node:
    out = T[op.outputs[0]]
    _need_int8(out, op, "output")
    act = int(_opt(op, "fusedActivationFunction", 0) or 0)
    tag = f"op{op.index}"

    if op.name == "FULLY_CONNECTED":
        x, w = T[op.inputs[0]], T[op.inputs[1]]
        b = T[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        _need_int8(x, op, "input")
        if w.type != "INT8" or not w.is_const:
            raise UnsupportedModel(f"op {op.index} FULLY_CONNECTED: weights must be constant int8 "
                                   f"(got {w.type}{'' if w.is_const else ', variable'})")
        if b is not None and (b.type != "INT32" or not b.is_const):
            raise UnsupportedModel(f"op {op.index} FULLY_CONNECTED: bias must be constant int32")
        if int(_opt(op, "weightsFormat", 0) or 0) != 0:
            raise UnsupportedModel(f"op {op.index} FULLY_CONNECTED: shuffled weights format")
        out_len, in_len = int(w.shape[0]), int(w.shape[-1])
        if x.size % in_len or out.size != (x.size // in_len) * out_len:
            raise UnsupportedModel(f"op {op.index} FULLY_CONNECTED: shapes {x.shape} x {w.shape} "
                                   f"-> {out.shape}")
        batches = x.size // in_len
        s_in, s_out = x.scale1(), out.scale1()
        per_channel = len(w.scale) > 1
        if per_channel:
            if len(w.scale) != out_len or w.quantized_dimension != 0:
                raise UnsupportedModel(f"op {op.index}: per-channel weights along dimension "
                                       f"{w.quantized_dimension}")
            quant = [quantize_multiplier(f64(s_in) * f64(s) / f64(s_out)) for s in w.scale]
            w_off = 0
        else:
            # GetQuantizedConvolutionMultipler: float product, then double division
            quant = [quantize_multiplier(float(np.float32(s_in * w.scale1())) / f64(s_out))]
            w_off = -w.zp1()
        lo, hi = act_range(act, out, op)
        wq = w.const().reshape(out_len, in_len).astype(np.int64)
        bias = (b.const().astype(np.int64).reshape(-1) if b is not None
                else np.zeros(out_len, np.int64))
        in_off = -x.zp1()
        has_bias = b is not None
        if fold_input_offset and w_off == 0 and in_off != 0:
            # sum w (x + off) + bias == sum w x + (bias + off sum w): exact in int32
            bias = bias + in_off * wq.sum(axis=1)
            in_off = 0
            has_bias = True
        if np.any(bias < INT32_MIN) or np.any(bias > INT32_MAX):
            raise UnsupportedModel(f"op {op.index}: folded bias overflows int32")
        arrays = [("int8_t", f"{tag}_weights", w.const().reshape(-1).astype(int).tolist()),
                  ("ecg_nn_quant_t", f"{tag}_quant", _quant_list(quant))]
        if has_bias:
            arrays.append(("int32_t", f"{tag}_bias", bias.astype(int).tolist()))
        params = {"batches": batches, "in_len": in_len, "out_len": out_len,
                  "per_channel": int(per_channel), "input_offset": in_off,
                  "weights_offset": w_off, "output_offset": out.zp1(), "act_min": lo,
                  "act_max": hi, "weights": ("ref", f"{tag}_weights"),
                  "bias": ("ref", f"{tag}_bias") if has_bias else ("ref", "NULL"),
                  "quant": ("ref", f"{tag}_quant")}
        return Node(op, "FULLY_CONNECTED", "ecg_nn_fc_params_t", params, [x.index], out.index,
                    arrays)

    if op.name == "BATCH_MATMUL":
        a, b = T[op.inputs[0]], T[op.inputs[1]]
        _need_int8(a, op, "lhs")
        _need_int8(b, op, "rhs")
        views = views or {}
        # operand = (tensor read, logical shape, element strides of that shape in the tensor)
        va = views.get(a.index, (a.index, a.shape, strides_of(a.shape)))
        vb = views.get(b.index, (b.index, b.shape, strides_of(b.shape)))
        adj_x, adj_y = bool(_opt(op, "adjX", False)), bool(_opt(op, "adjY", False))
        if len(a.shape) < 2 or len(b.shape) < 2:
            raise UnsupportedModel(f"op {op.index} BATCH_MATMUL: rank < 2")
        rank = max(len(a.shape), len(b.shape))
        if rank - 2 > 3:
            raise UnsupportedModel(f"op {op.index} BATCH_MATMUL: more than 3 batch dimensions")
        ea = (1,) * (rank - len(a.shape)) + a.shape
        eb = (1,) * (rank - len(b.shape)) + b.shape
        rows, depth = (ea[-1], ea[-2]) if adj_x else (ea[-2], ea[-1])
        depth_b, cols = (eb[-1], eb[-2]) if adj_y else (eb[-2], eb[-1])
        if depth != depth_b:
            raise UnsupportedModel(f"op {op.index} BATCH_MATMUL: depth {depth} != {depth_b}")
        sa = [0] * (rank - len(a.shape)) + list(va[2])
        sb = [0] * (rank - len(b.shape)) + list(vb[2])
        batch, bsa, bsb = [], [], []
        for k in range(rank - 2):
            if ea[k] != eb[k] and 1 not in (ea[k], eb[k]):
                raise UnsupportedModel(f"op {op.index} BATCH_MATMUL: batch dims do not broadcast")
            batch.append(max(ea[k], eb[k]))
            bsa.append(0 if ea[k] == 1 else sa[k])
            bsb.append(0 if eb[k] == 1 else sb[k])
        if max([0, *bsa, *bsb, *sa[-2:], *sb[-2:]]) > 0xFFFF:
            raise UnsupportedModel(f"op {op.index} BATCH_MATMUL: strides beyond 16 bits")
        if tuple(batch) + (rows, cols) != tuple((1,) * (rank - len(out.shape))) + out.shape \
                and int(np.prod(batch)) * rows * cols != out.size:
            raise UnsupportedModel(f"op {op.index} BATCH_MATMUL: output shape {out.shape}")
        while len(batch) < 3:
            batch.insert(0, 1)
            bsa.insert(0, 0)
            bsb.insert(0, 0)
        m, s = quantize_multiplier(float(np.float32(a.scale1() * b.scale1())) / f64(out.scale1()))
        lrs, lks = (sa[-1], sa[-2]) if adj_x else (sa[-2], sa[-1])
        rks, rcs = (sb[-1], sb[-2]) if adj_y else (sb[-2], sb[-1])
        params = {"batch": batch, "lhs_batch_stride": bsa, "rhs_batch_stride": bsb,
                  "rows": rows, "cols": cols, "depth": depth,
                  "lhs_row_stride": lrs, "lhs_k_stride": lks,
                  "rhs_k_stride": rks, "rhs_col_stride": rcs,
                  "lhs_offset": -a.zp1(), "rhs_offset": -b.zp1(), "output_offset": out.zp1(),
                  "quant": [m, s]}
        node = Node(op, "BATCH_MATMUL", "ecg_nn_bmm_params_t", params, [va[0], vb[0]],
                    out.index)
        node.scratch_bytes = _bmm_scratch_bytes(rows, cols, depth, -a.zp1(), lks, rks)
        return node

    if op.name in ("ADD", "MUL"):
        a, b = T[op.inputs[0]], T[op.inputs[1]]
        _need_int8(a, op, "input 1")
        _need_int8(b, op, "input 2")
        lo, hi = act_range(act, out, op)
        shape = bcast(a.shape, b.shape, out.shape, f"op {op.index} {op.name}")
        scalar = [t for t in (a, b) if t.is_const and t.size == 1]
        act_in = [t for t in (a, b) if not t.is_const]
        lut_ok = len(scalar) == 1 and len(act_in) == 1 and act_in[0].size == out.size
        if op.name == "MUL":
            m, s = quantize_multiplier(f64(a.scale1()) * f64(b.scale1()) / f64(out.scale1()))
            if lut_ok:  # MulElementwise of the input with a scalar: tabulate
                c, xin = scalar[0], act_in[0]
                cv = int(c.const().reshape(-1)[0]) - c.zp1()
                return _lut_node(op, xin, out, lambda v: _clamp(
                    requant((v - xin.zp1()) * cv, m, s) + out.zp1(), lo, hi))
            params = {"shape": shape, "input1_offset": -a.zp1(), "input2_offset": -b.zp1(),
                      "output_offset": out.zp1(), "quant": [m, s], "act_min": lo, "act_max": hi}
            return Node(op, "MUL", "ecg_nn_mul_params_t", params, [a.index, b.index], out.index)
        left_shift = 20
        twice_max = 2 * f64(max(a.scale1(), b.scale1()))
        q1 = quantize_multiplier_smaller_than_one(f64(a.scale1()) / twice_max)
        q2 = quantize_multiplier_smaller_than_one(f64(b.scale1()) / twice_max)
        qo = quantize_multiplier_smaller_than_one(twice_max / ((1 << left_shift)
                                                               * f64(out.scale1())))
        if lut_ok:  # AddFunc with a scalar: tabulate
            ra = (lambda v, t=a, q=q1: requant((v - t.zp1()) * (1 << left_shift), q[0], q[1]))
            rb = (lambda v, t=b, q=q2: requant((v - t.zp1()) * (1 << left_shift), q[0], q[1]))
            if a.is_const:
                ca = ra(int(a.const().reshape(-1)[0]))
                return _lut_node(op, b, out, lambda v: _clamp(
                    requant(ca + rb(v), qo[0], qo[1]) + out.zp1(), lo, hi))
            cb = rb(int(b.const().reshape(-1)[0]))
            return _lut_node(op, a, out, lambda v: _clamp(
                requant(ra(v) + cb, qo[0], qo[1]) + out.zp1(), lo, hi))
        # AddFunc is symmetric (out = R_o(R_1(in1) + R_2(in2))): order the operands for the
        # kernel's fast paths, a constant as input 2 (its rescale is tabulated below) and
        # otherwise the input whose multiplier is exactly 0.5 (the larger scale) as input 1.
        exact = (1 << 30, 0)
        if (a.is_const and not b.is_const) or (not b.is_const and q2 == exact and q1 != exact):
            a, b, q1, q2 = b, a, q2, q1
            shape = bcast(a.shape, b.shape, out.shape, f"op {op.index} {op.name}")
        params = {"shape": shape, "input1_offset": -a.zp1(), "input2_offset": -b.zp1(),
                  "output_offset": out.zp1(), "left_shift": left_shift, "input1_quant": list(q1),
                  "input2_quant": list(q2), "output_quant": list(qo), "act_min": lo,
                  "act_max": hi, "input2_scaled": ("ref", "NULL")}
        arrays = []
        if b.is_const and not a.is_const:
            # a constant input 2 is rescaled once, here (same integers as the kernel's)
            scaled = [rdbpot(srdhm((int(v) - b.zp1()) * (1 << left_shift), q2[0]), -q2[1])
                      for v in b.const().reshape(-1)]
            arrays.append(("int32_t", f"{tag}_in2_scaled", scaled))
            params["input2_scaled"] = ("ref", f"{tag}_in2_scaled")
        node = Node(op, "ADD", "ecg_nn_add_params_t", params, [a.index, b.index], out.index,
                    arrays)
        if b.is_const and not a.is_const:
            node.unread.add(b.index)  # the kernel reads input2_scaled instead
        return node

    if op.name == "SOFTMAX":
        x = T[op.inputs[0]]
        _need_int8(x, op, "input")
        if not (out.scale1() == np.float32(1.0 / 256) and out.zp1() == -128):
            raise UnsupportedModel(f"op {op.index} SOFTMAX: int8 output must have scale 1/256 and "
                                   f"zero point -128 (TFLM), got {out.scale1()} / {out.zp1()}")
        beta = f64(_opt(op, "beta", 1.0))
        real = min(beta * f64(x.scale1()) * (1 << (31 - 5)), (1 << 31) - 1.0)
        if not real > 1.0:
            raise UnsupportedModel(f"op {op.index} SOFTMAX: input multiplier {real} <= 1")
        m, s = quantize_multiplier(real)
        diff_min = -int(math.floor(1.0 * ((1 << 5) - 1) * (1 << (31 - 5)) / (1 << s)))
        lut = softmax_exp_lut(m, s, diff_min)
        depth = int(x.shape[-1])
        params = {"rows": x.size // depth, "depth": depth, "input_multiplier": m,
                  "input_left_shift": s, "diff_min": diff_min,
                  "exp_lut": ("ref", f"{tag}_exp_lut")}
        return Node(op, "SOFTMAX", "ecg_nn_softmax_params_t", params, [x.index], out.index,
                    [("int32_t", f"{tag}_exp_lut", lut)])

    if op.name == "MEAN":
        x, ax = T[op.inputs[0]], T[op.inputs[1]]
        _need_int8(x, op, "input")
        if not ax.is_const:
            raise UnsupportedModel(f"op {op.index} MEAN: axes must be constant")
        rank = len(x.shape)
        axes = sorted({int(a) + rank if int(a) < 0 else int(a) for a in ax.const().reshape(-1)})
        num = int(np.prod([x.shape[a] for a in axes], dtype=np.int64)) if axes else 1
        big = [a for a in axes if x.shape[a] != 1]
        if big:
            lo_ax, hi_ax = big[0], big[-1]
            if any(x.shape[d] != 1 and d not in axes for d in range(lo_ax, hi_ax + 1)):
                raise UnsupportedModel(f"op {op.index} MEAN: axes {axes} of {x.shape} are not "
                                       "adjacent")
            outer = int(np.prod(x.shape[:lo_ax], dtype=np.int64))
            inner = int(np.prod(x.shape[hi_ax + 1:], dtype=np.int64))
        else:
            outer, inner = x.size, 1
        if outer * num * inner != x.size or out.size != outer * inner:
            raise UnsupportedModel(f"op {op.index} MEAN: shapes {x.shape} -> {out.shape}")
        same = (x.scale1() == out.scale1() and x.zp1() == out.zp1())
        m, s = quantize_multiplier(f64(x.scale1()) / f64(out.scale1()))
        if not same and num > 0:
            # QuantizedMeanOrSum folds 1/num into the multiplier
            sh = 63 - (64 - int(num).bit_length())  # 63 - CountLeadingZeros(uint64 num)
            sh = min(sh, 32)
            sh = min(sh, 31 + s)
            m = (m << sh) // num
            s = s - sh
        params = {"outer": outer, "reduce": num, "inner": inner, "requantize": int(not same),
                  "input_zero_point": x.zp1(), "output_offset": out.zp1(), "quant": [m, s]}
        return Node(op, "MEAN", "ecg_nn_mean_params_t", params, [x.index], out.index)

    if op.name == "TRANSPOSE":
        x, perm_t = T[op.inputs[0]], T[op.inputs[1]]
        _need_int8(x, op, "input")
        if not perm_t.is_const:
            raise UnsupportedModel(f"op {op.index} TRANSPOSE: permutation must be constant")
        perm = [int(p) for p in perm_t.const().reshape(-1)]
        st = strides_of(x.shape)
        dims = [x.shape[p] for p in perm]
        if tuple(dims) != out.shape:
            raise UnsupportedModel(f"op {op.index} TRANSPOSE: {x.shape} by {perm} is not "
                                   f"{out.shape}")
        dims_m, (st_m,) = merge_dims(dims, [[st[p] for p in perm]], 6, f"op {op.index} TRANSPOSE")
        params = {"dims": dims_m, "stride": st_m}
        return Node(op, "TRANSPOSE", "ecg_nn_transpose_params_t", params, [x.index], out.index)

    if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        x, w = T[op.inputs[0]], T[op.inputs[1]]
        b = T[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        _need_int8(x, op, "input")
        if w.type != "INT8" or not w.is_const or len(x.shape) != 4 or len(w.shape) != 4:
            raise UnsupportedModel(f"op {op.index} {op.name}: needs NHWC int8 input and a "
                                   "constant int8 4-D filter")
        if b is not None and (b.type != "INT32" or not b.is_const):
            raise UnsupportedModel(f"op {op.index} {op.name}: bias must be constant int32")
        n, ih, iw, ic = x.shape
        _, oh, ow, oc = out.shape
        depthwise = op.name == "DEPTHWISE_CONV_2D"
        kh, kw = int(w.shape[1]), int(w.shape[2])
        sh_, sw_ = int(_opt(op, "strideH", 1)), int(_opt(op, "strideW", 1))
        dh, dw = int(_opt(op, "dilationHFactor", 1) or 1), int(_opt(op, "dilationWFactor", 1) or 1)
        padding = int(_opt(op, "padding", 0))  # 0 SAME, 1 VALID

        def pad(stride: int, dil: int, in_size: int, k: int, out_size: int) -> int:
            if padding == 1:
                return 0
            eff = (k - 1) * dil + 1
            return max(0, (out_size - 1) * stride + eff - in_size) // 2

        s_in, s_out = x.scale1(), out.scale1()
        scales = w.scale if len(w.scale) > 1 else [w.scale[0]] * oc
        if len(scales) != oc:
            raise UnsupportedModel(f"op {op.index} {op.name}: {len(w.scale)} filter scales for "
                                   f"{oc} channels")
        quant = [quantize_multiplier(f64(s_in) * f64(s) / f64(s_out)) for s in scales]
        lo, hi = act_range(act, out, op)
        if depthwise:
            dm = int(_opt(op, "depthMultiplier", 1) or 1)
            if oc != ic * dm:
                dm = oc // ic  # TFLM derives it from the shapes too
            filter_in_c = 1
        else:
            dm = 0
            filter_in_c = int(w.shape[3])
            if ic % filter_in_c or oc % (ic // filter_in_c):
                raise UnsupportedModel(f"op {op.index} CONV_2D: bad grouping")
        arrays = [("int8_t", f"{tag}_filter", w.const().reshape(-1).astype(int).tolist()),
                  ("ecg_nn_quant_t", f"{tag}_quant", _quant_list(quant))]
        if b is not None:
            arrays.append(("int32_t", f"{tag}_bias", b.const().reshape(-1).astype(int).tolist()))
        params = {"batches": n, "in_h": ih, "in_w": iw, "in_c": ic, "out_h": oh, "out_w": ow,
                  "out_c": oc, "k_h": kh, "k_w": kw, "stride_h": sh_, "stride_w": sw_,
                  "dilation_h": dh, "dilation_w": dw, "pad_h": pad(sh_, dh, ih, kh, oh),
                  "pad_w": pad(sw_, dw, iw, kw, ow), "filter_in_c": filter_in_c,
                  "depth_multiplier": dm, "input_offset": -x.zp1(), "output_offset": out.zp1(),
                  "act_min": lo, "act_max": hi, "filter": ("ref", f"{tag}_filter"),
                  "bias": ("ref", f"{tag}_bias") if b is not None else ("ref", "NULL"),
                  "quant": ("ref", f"{tag}_quant")}
        return Node(op, "CONV", "ecg_nn_conv_params_t", params, [x.index], out.index, arrays)

    if op.name == "AVERAGE_POOL_2D":
        x = T[op.inputs[0]]
        _need_int8(x, op, "input")
        if len(x.shape) != 4:
            raise UnsupportedModel(f"op {op.index} AVERAGE_POOL_2D: input must be NHWC")
        n, ih, iw, ch = x.shape
        _, oh, ow, _ = out.shape
        kh, kw = int(_opt(op, "filterHeight", 1)), int(_opt(op, "filterWidth", 1))
        sh_, sw_ = int(_opt(op, "strideH", 1)), int(_opt(op, "strideW", 1))
        padding = int(_opt(op, "padding", 0))

        def pool_pad(stride: int, in_size: int, k: int, out_size: int) -> int:
            return 0 if padding == 1 else max(0, (out_size - 1) * stride + k - in_size) // 2

        lo, hi = act_range(act, out, op)
        params = {"batches": n, "in_h": ih, "in_w": iw, "channels": ch, "out_h": oh,
                  "out_w": ow, "k_h": kh, "k_w": kw, "stride_h": sh_, "stride_w": sw_,
                  "pad_h": pool_pad(sh_, ih, kh, oh), "pad_w": pool_pad(sw_, iw, kw, ow),
                  "act_min": lo, "act_max": hi}
        return Node(op, "AVGPOOL", "ecg_nn_avgpool_params_t", params, [x.index], out.index)

    if op.name in ("RELU", "QUANTIZE"):
        x = T[op.inputs[0]]
        _need_int8(x, op, "input")
        m, s = quantize_multiplier(f64(x.scale1()) / f64(out.scale1()))
        if op.name == "RELU":
            lo = max(-128, out.zp1() + round_half_away(
                float(np.float32(np.float32(0.0) / out.scale1()))))
        else:
            lo = -128
        # ReluQuantized / Requantize of an int8 input: tabulated (ecg_nn_requantize_s8 computes
        # the same function)
        return _lut_node(op, x, out, lambda v: _clamp(
            requant(v - x.zp1(), m, s) + out.zp1(), lo, 127))

    raise UnsupportedModel(f"op {op.index}: unsupported operator {op.name}")


# ---------------------------------------------------------------------------------------------
# Sample beats and their TFLM outputs

def sample_beats(c: Compiled, model_path: Path, data: bytes) -> list[dict[str, Any]]:
    """A few real beats (inputs from the model's golden-vector file `<model>.vectors.json`,
    re-quantized with this model's input parameters) and the outputs TFLM gives for them."""
    vec_path = model_path.parent / (model_path.stem + ".vectors.json")
    T = c.model.tensors
    win, rr = T[c.graph_inputs[0]], T[c.graph_inputs[1]]
    if vec_path.is_file():
        doc = json.loads(vec_path.read_text())
    else:  # no golden vectors next to the model: deterministic synthetic inputs, same checks
        rng = np.random.default_rng(0)
        doc = {"beats": [{"record": "synthetic", "beat_index": k, "class": None,
                          "window_f32": rng.normal(size=win.size).tolist(),
                          "rr_f32": rng.uniform(0.0, 1.5, size=rr.size).tolist()}
                         for k in range(N_SAMPLES)]}
    picked: list[dict[str, Any]] = []
    seen: set[Any] = set()
    for beat in doc.get("beats", []):  # one beat per class first, then fill up
        if beat.get("class") not in seen:
            seen.add(beat.get("class"))
            picked.append(beat)
    for beat in doc.get("beats", []):
        if len(picked) >= N_SAMPLES:
            break
        if beat not in picked:
            picked.append(beat)
    picked = picked[:N_SAMPLES]

    def quantize(x: Any, t: Tensor) -> np.ndarray:
        v = np.asarray(x, np.float32) / np.float32(t.scale1())
        r = np.sign(v) * np.floor(np.abs(v.astype(np.float64)) + 0.5)
        return np.clip(r.astype(np.int64) + t.zp1(), -128, 127).astype(np.int8)

    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as e:  # pragma: no cover - environment
        raise SystemExit("sample outputs need the TFLM interpreter: pip install tflite-micro") \
            from e
    it = runtime.Interpreter.from_bytes(data, arena_size=256 * 1024)
    assert c.logits is not None
    pos = {t: k for k, t in enumerate(c.model.inputs)}
    out_pos = {t: k for k, t in enumerate(c.model.outputs)}
    samples = []
    for beat in picked:
        w = quantize(beat["window_f32"], win).reshape(win.shape)
        r = quantize(beat["rr_f32"], rr).reshape(rr.shape)
        it.set_input(w, pos[win.index])
        it.set_input(r, pos[rr.index])
        it.invoke()
        emb = np.asarray(it.get_output(out_pos[c.graph_outputs[0]])).reshape(-1)
        lg = np.asarray(it.get_output(out_pos[c.logits])).reshape(-1)
        samples.append({"window": w.reshape(-1).tolist(), "rr": r.reshape(-1).tolist(),
                        "embedding": emb.astype(int).tolist(), "logits": lg.astype(int).tolist(),
                        "label": f"MIT-BIH {beat.get('record')} beat {beat.get('beat_index')} "
                                 f"({beat.get('class')})"})
    return samples


# ---------------------------------------------------------------------------------------------
# C emission

def _fmt_float(v: Any) -> str:
    s = f"{float(np.float32(v)):.9g}"
    if "e" not in s and "." not in s and "inf" not in s:
        s += ".0"
    return s + "f"


def _fmt_int(v: int) -> str:
    if v == INT32_MIN:
        return "INT32_MIN"
    return str(int(v))


def _array(ctype: str, name: str, vals: list[int], public: bool = False) -> str:
    per_line = {"int8_t": 20, "int32_t": 8}.get(ctype, 4)
    if ctype == "ecg_nn_quant_t":
        pairs = [f"{{{_fmt_int(vals[i])}, {vals[i + 1]}}}" for i in range(0, len(vals), 2)]
        body = ",\n".join("    " + ", ".join(pairs[i:i + 3]) for i in range(0, len(pairs), 3))
        n = len(pairs)
    else:
        body = ",\n".join("    " + ", ".join(_fmt_int(v) for v in vals[i:i + per_line])
                          for i in range(0, len(vals), per_line))
        n = len(vals)
    storage = "" if public else "static "
    return f"{storage}const {ctype} {name}[{n}] = {{\n{body}\n}};\n"


def _value(v: Any) -> str:
    if isinstance(v, tuple) and v and v[0] == "ref":
        return str(v[1])
    if isinstance(v, dict):
        return "{" + ", ".join(_value(x) for x in v.values()) + "}"
    if isinstance(v, list):
        return "{" + ", ".join(_value(x) for x in v) + "}"
    return _fmt_int(int(v))


def _struct(ctype: str, name: str, params: dict[str, Any], public: bool = False) -> str:
    lines = [f"    .{k} = {_value(v)}," for k, v in params.items()]
    storage = "" if public else "static "
    return f"{storage}const {ctype} {name} = {{\n" + "\n".join(lines) + "\n};\n"


def _c_ident(s: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in s)


KERNEL_CALL = {
    "FULLY_CONNECTED": "ecg_nn_fully_connected_s8(&p, {a}, {y})",
    "BATCH_MATMUL": "ecg_nn_batch_matmul_s8(&p, {a}, {b}, {y}, {scratch})",
    "ADD": "ecg_nn_add_s8(&p, {a}, {b}, {y})",
    "MUL": "ecg_nn_mul_s8(&p, {a}, {b}, {y})",
    "SOFTMAX": "ecg_nn_softmax_s8(&p, {a}, {y})",
    "MEAN": "ecg_nn_mean_s8(&p, {a}, {y})",
    "TRANSPOSE": "ecg_nn_transpose_s8(&p, {a}, {y})",
    "CONV": "ecg_nn_conv_s8(&p, {a}, {y})",
    "AVGPOOL": "ecg_nn_avgpool_s8(&p, {a}, {y})",
    "REQUANTIZE": "ecg_nn_requantize_s8(&p, {a}, {y})",
    "LUT": "ecg_nn_lut_s8(&p, {a}, {y})",
}


def emit(c: Compiled, samples: list[dict[str, Any]], model_rel: str,
         header_name: str) -> tuple[str, str]:
    """The header and source text. Every table is pointer-free `const` data (flash, no
    relocations); the node list is the generated function ecg_model_run(), which builds each
    kernel's parameter struct on the stack and calls the kernel."""
    T = c.model.tensors
    root = c.alias

    def off(i: int) -> int:
        while i in root:
            i = root[i]
        return c.offsets[i]

    classifier = c.head is not None
    guard = "ECG_MODEL_DATA_H"
    banner = (f"/* Generated by tools/gen_model_c.py from {model_rel} "
              f"(sha256 {c.sha256[:16]}...). Do not edit:\n"
              f" * regenerate with `python tools/gen_model_c.py`; tests/test_classifier_c.py fails "
              f"when this file is stale. */\n")

    # ---- header
    h: list[str] = [banner]
    h.append(f"""/**
 * @file {header_name}
 * @brief The compiled `{c.name}` model: the graph as a function, its arena plan and interface.
 *
 * Source: `{model_rel}`, sha256 {c.sha256}.
 * {len(c.nodes)} kernel calls (ecg_model_ops) over one scratch arena of ECG_MODEL_ARENA_BYTES bytes
 * (activations only; offsets planned at generation time, buffers reused when their lifetimes do
 * not overlap); {c.weights_bytes} bytes of weights and biases. All tables are pointer-free const
 * data.
""")
    if classifier:
        h.append(""" *
 * The graph maps the int8 inputs `window` (ecg_model_inputs[0]) and `rr` (ecg_model_inputs[1]) to
 * the int8 `embedding` (ecg_model_outputs[0]); the classifier head, a fully connected layer from
 * the embedding to the int8 logits (ECG_MODEL_HEAD_* tables), is left to the caller so that it
 * can be replaced (ecg_classifier.h).
""")
    h.append(f""" */
#ifndef {guard}
#define {guard}

#include "ecg/ecg_nn.h"

#ifdef __cplusplus
extern "C" {{
#endif

/** Model name (file stem of the .tflite). */
#define ECG_MODEL_ID "{c.name}"
/** sha256 of the .tflite file the tables were generated from. */
#define ECG_MODEL_SHA256 "{c.sha256}"
/** First 32 bits of the sha256, a compact model identifier (e.g. for the wire protocol). */
#define ECG_MODEL_ID_U32 0x{c.sha256[:8]}u
/** Scratch arena the graph needs, bytes (ECG_NN_ARENA_ALIGN-aligned). */
#define ECG_MODEL_ARENA_BYTES {c.arena_bytes}u
/** Weights and biases of the model (the .tflite's constant parameter tensors), bytes. */
#define ECG_MODEL_WEIGHTS_BYTES {c.weights_bytes}u
/** Kernel calls in the graph. */
#define ECG_MODEL_N_OPS {len(c.nodes)}u
/** Graph inputs and outputs. */
#define ECG_MODEL_N_INPUTS {len(c.graph_inputs)}u
#define ECG_MODEL_N_OUTPUTS {len(c.graph_outputs)}u
""")
    if c.head is not None and c.logits is not None:
        w, r = T[c.graph_inputs[0]], T[c.graph_inputs[1]]
        e, lg = T[c.graph_outputs[0]], T[c.logits]
        hp = c.head.params
        h.append(f"""
/** Input `window`: elements, arena offset, quantization. */
#define ECG_MODEL_WINDOW_LEN {w.size}u
#define ECG_MODEL_WINDOW_OFFSET {off(w.index)}u
#define ECG_MODEL_WINDOW_SCALE {_fmt_float(w.scale1())}
#define ECG_MODEL_WINDOW_ZERO_POINT ({w.zp1()})
/** Input `rr`: elements, arena offset, quantization. */
#define ECG_MODEL_RR_LEN {r.size}u
#define ECG_MODEL_RR_OFFSET {off(r.index)}u
#define ECG_MODEL_RR_SCALE {_fmt_float(r.scale1())}
#define ECG_MODEL_RR_ZERO_POINT ({r.zp1()})
/** Output `embedding` (the head's input): elements, arena offset, quantization. */
#define ECG_MODEL_EMBEDDING_LEN {e.size}u
#define ECG_MODEL_EMBEDDING_OFFSET {off(e.index)}u
#define ECG_MODEL_EMBEDDING_SCALE {_fmt_float(e.scale1())}
#define ECG_MODEL_EMBEDDING_ZERO_POINT ({e.zp1()})
/** Output `logits` of the factory head: classes, quantization. */
#define ECG_MODEL_N_CLASSES {lg.size}u
#define ECG_MODEL_LOGITS_SCALE {_fmt_float(lg.scale1())}
#define ECG_MODEL_LOGITS_ZERO_POINT ({lg.zp1()})

/** The factory head (embedding -> logits, ecg_nn_fc_params_t fields): tables and constants. */
""")
        for ctype, name, vals in c.head.arrays:
            n_el = len(vals) // 2 if ctype == "ecg_nn_quant_t" else len(vals)
            h.append(f"extern const {ctype} {name}[{n_el}];\n")
        h.append(f"""#define ECG_MODEL_HEAD_WEIGHTS {_value(hp["weights"])}
#define ECG_MODEL_HEAD_BIAS {_value(hp["bias"])}
#define ECG_MODEL_HEAD_QUANT {_value(hp["quant"])}
#define ECG_MODEL_HEAD_PER_CHANNEL {hp["per_channel"]}u
#define ECG_MODEL_HEAD_WEIGHTS_OFFSET ({hp["weights_offset"]})
#define ECG_MODEL_HEAD_ACT_MIN ({hp["act_min"]})
#define ECG_MODEL_HEAD_ACT_MAX ({hp["act_max"]})

/** Sample beats with the TFLM interpreter's outputs (ecg_model_samples). */
#define ECG_MODEL_N_SAMPLES {len(samples)}u

/** One sample beat: int8 inputs and the int8 outputs TFLM computes for them. */
typedef struct {{
    char label[48];                                 /**< where the beat comes from */
    int8_t window[ECG_MODEL_WINDOW_LEN];
    int8_t rr[ECG_MODEL_RR_LEN];
    int8_t embedding[ECG_MODEL_EMBEDDING_LEN];
    int8_t logits[ECG_MODEL_N_CLASSES];             /**< with the factory head */
}} ecg_model_sample_t;
""")
        if samples:
            h.append("\n/** Sample beats, ECG_MODEL_N_SAMPLES of them. */\n"
                     "extern const ecg_model_sample_t ecg_model_samples[ECG_MODEL_N_SAMPLES];\n")
    h.append(f"""
/** Where the graph's inputs and outputs live in the arena, and their quantization. */
extern const ecg_nn_io_t ecg_model_inputs[ECG_MODEL_N_INPUTS];
extern const ecg_nn_io_t ecg_model_outputs[ECG_MODEL_N_OUTPUTS];
/** The kernel calls of ecg_model_run(), in order (for inspection; the function is the graph). */
extern const ecg_nn_op_info_t ecg_model_ops[ECG_MODEL_N_OPS];

/**
 * @brief Run the graph once.
 *
 * Write the inputs at ecg_model_inputs[k].offset first; read the outputs at
 * ecg_model_outputs[k].offset after. Not reentrant on one arena.
 * @param[in,out] arena        scratch, ECG_NN_ARENA_ALIGN-aligned
 * @param[in]     arena_bytes  its size, >= ECG_MODEL_ARENA_BYTES
 * @return ECG_OK, ECG_ERR_NULL, ECG_ERR_RANGE (arena too small), ECG_ERR_CONFIG (misaligned), or
 *         a kernel's error
 */
ecg_err_t ecg_model_run(int8_t *arena, size_t arena_bytes);

#ifdef __cplusplus
}}
#endif

#endif /* {guard} */
""")

    # ---- source
    s: list[str] = [banner, f'#include "ecg/{header_name}"\n\n#include <stdint.h>\n']
    for i in sorted(c.const_tensors):
        s.append(f"\n/* tensor {i}: {T[i].name[:70]} {list(T[i].shape)} */\n")
        s.append(_array("int8_t", f"tensor{i}",
                        c.const_tensors[i].reshape(-1).astype(int).tolist()))
    all_nodes = list(c.nodes) + ([c.head] if c.head is not None else [])
    for n in all_nodes:
        is_head = n is c.head
        if n.arrays:
            s.append(f"\n/* op {n.op.index}: {n.op.name}{' (the head)' if is_head else ''} */\n")
        for ctype, name, vals in n.arrays:
            s.append(_array(ctype, name, vals, public=is_head))

    def operand(i: int, n: Node) -> str:
        if i in n.unread:
            return "NULL"
        return f"tensor{i}" if T[i].is_const else f"arena + {off(i)}"

    infos = []
    body = []
    for k, n in enumerate(c.nodes):
        ins = [operand(i, n) for i in n.inputs]
        scratch = c.offsets[("scratch", k)] if n.scratch_bytes else 0
        call = KERNEL_CALL[n.kind].format(a=ins[0], b=ins[1] if len(ins) > 1 else "NULL",
                                          y=f"arena + {off(n.output)}",
                                          scratch=f"arena + {scratch}")
        items = [f".{key} = {_value(v)}" for key, v in n.params.items()]
        lines, cur = [], ""
        for it in items:
            if cur and len(cur) + len(it) + 2 > 86:
                lines.append(cur + ",")
                cur = it
            else:
                cur = f"{cur}, {it}" if cur else it
        lines.append(cur)
        fields = "\n            ".join(lines)
        body.append(f"""    {{ /* op {n.op.index}: {n.op.name} -> tensor {n.output} {list(T[n.output].shape)} */
        const {n.ctype} p = {{
            {fields}}};
        err = {call};
    }}
    if (err != ECG_OK) {{
        return err;
    }}
""")
        in_offs = [("ECG_NN_CONST_OPERAND" if T[i].is_const else str(off(i))) for i in n.inputs]
        while len(in_offs) < 2:
            in_offs.append("0")
        infos.append(f"    {{ECG_NN_OP_{n.kind}, {len(n.inputs)}, {n.op.index}, "
                     f"{{{', '.join(in_offs)}}}, {off(n.output)}, {T[n.output].size}, "
                     f"{scratch}}},\n")

    def io(i: int) -> str:
        t = T[i]
        return f"    {{{off(i)}, {t.size}, {_fmt_float(t.scale1())}, {t.zp1()}}}, /* {t.name[:60]} */\n"

    s.append("\nconst ecg_nn_io_t ecg_model_inputs[ECG_MODEL_N_INPUTS] = {\n")
    s += [io(i) for i in c.graph_inputs]
    s.append("};\n\nconst ecg_nn_io_t ecg_model_outputs[ECG_MODEL_N_OUTPUTS] = {\n")
    s += [io(i) for i in c.graph_outputs]
    s.append("};\n\nconst ecg_nn_op_info_t ecg_model_ops[ECG_MODEL_N_OPS] = {\n")
    s += infos
    s.append("};\n")
    s.append("""
ecg_err_t ecg_model_run(int8_t *arena, size_t arena_bytes)
{
    ecg_err_t err;
    if (arena == NULL) {
        return ECG_ERR_NULL;
    }
    if (arena_bytes < ECG_MODEL_ARENA_BYTES) {
        return ECG_ERR_RANGE;
    }
    if (((uintptr_t)arena & (ECG_NN_ARENA_ALIGN - 1u)) != 0u) {
        return ECG_ERR_CONFIG;
    }
""")
    s += body
    s.append("    return ECG_OK;\n}\n")
    if classifier and samples:
        s.append("\nconst ecg_model_sample_t ecg_model_samples[ECG_MODEL_N_SAMPLES] = {\n")
        for smp in samples:
            s.append(f'    {{"{smp["label"][:47]}",\n')
            for key in ("window", "rr", "embedding", "logits"):
                vals = smp[key]
                chunks = [", ".join(str(v) for v in vals[i:i + 24])
                          for i in range(0, len(vals), 24)]
                s.append("     {" + ",\n      ".join(chunks) + "}" +
                         (",\n" if key != "logits" else "},\n"))
        s.append("};\n")
    return "".join(h), "".join(s)


# ---------------------------------------------------------------------------------------------

def generate(model: Path, classifier: bool = True) -> tuple[str, str, Compiled]:
    data = model.read_bytes()
    c = compile_model(data, model.stem, classifier=classifier)
    samples = sample_beats(c, model, data) if classifier else []
    try:
        rel = str(model.resolve().relative_to(ROOT))
    except ValueError:
        rel = model.name
    h, src = emit(c, samples, rel, "ecg_model_data.h")
    return h, src, c


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--out-c", type=Path, default=OUT_C)
    ap.add_argument("--out-h", type=Path, default=OUT_H)
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 if the files differ from what the model gives")
    ap.add_argument("--generic", action="store_true",
                    help="any int8 model: graph only, no classifier head split, no samples")
    ap.add_argument("--summary", action="store_true", help="print the op list and arena plan")
    args = ap.parse_args(argv)
    try:
        h, src, c = generate(args.model, classifier=not args.generic)
    except UnsupportedModel as e:
        print(f"gen_model_c.py: {args.model}: {e}", file=sys.stderr)
        return 2
    if args.summary:
        T = c.model.tensors
        for n in c.nodes + ([c.head] if c.head else []):
            print(f"op {n.op.index:3d} {n.op.name:18s} -> {n.kind:16s} out #{n.output} "
                  f"{list(T[n.output].shape)}")
        print(f"arena {c.arena_bytes} B, weights {c.weights_bytes} B, {len(c.nodes)} kernels")
    if args.check:
        stale = [p for p, text in ((args.out_h, h), (args.out_c, src))
                 if not p.is_file() or p.read_text() != text]
        if stale:
            print("gen_model_c.py: stale generated file(s): " +
                  ", ".join(str(p) for p in stale) +
                  f"\n  regenerate: python tools/gen_model_c.py {args.model}", file=sys.stderr)
            return 1
        print(f"gen_model_c.py: {args.out_c.name} and {args.out_h.name} match {args.model.name}")
        return 0
    args.out_h.parent.mkdir(parents=True, exist_ok=True)
    args.out_c.parent.mkdir(parents=True, exist_ok=True)
    args.out_h.write_text(h)
    args.out_c.write_text(src)
    print(f"wrote {args.out_h} and {args.out_c}: {len(c.nodes)} kernels, arena "
          f"{c.arena_bytes} B, weights {c.weights_bytes} B")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fully-int8 TFLite export of the beat classifier, and the checks and TFLM runs around it.

Three parts, usable separately:

- `convert_int8(model, windows, rr)`: Keras model -> `.tflite` bytes (needs TensorFlow). The
  model is exported as a SavedModel (`model.export(..., format="tf_saved_model")`) and converted
  with full-integer quantization calibrated on the given beats (int8 inputs and outputs).
- `inspect_tflite(data)`: ops, tensors (type, shape, quantization) and I/O of a `.tflite`, read
  with the flatbuffer schema that ships in `tflite_micro` (no TensorFlow needed).
- `Tflm`: the TensorFlow Lite for Microcontrollers reference interpreter (PyPI `tflite-micro`)
  running the model beat by beat, plus `arena_bytes`, the smallest tensor arena it accepts.

    python tools/export_tflite.py models/beat_tx.tflite      # prints the op list and tensors
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ALLOWED_TENSOR_TYPES = ("INT8", "INT32")


# --------------------------------------------------------------------------------------------
# Conversion (TensorFlow)

def convert_int8(model: Any, calib: dict[str, npt.NDArray[np.float32]]) -> bytes:
    """Convert a Keras model (inputs `window`, `rr` and optionally `diff`) to a fully int8
    `.tflite`.

    Args:
        model: Keras model whose input names are the keys of `calib`.
        calib: calibration beats per input (float32 model inputs, rows = beats), a few hundred
            to a few thousand.
    """
    import tensorflow as tf

    n = next(iter(calib.values())).shape[0]

    def representative() -> Iterator[dict[str, npt.NDArray[np.float32]]]:
        for i in range(n):
            yield {k: v[i: i + 1] for k, v in calib.items()}

    with tempfile.TemporaryDirectory() as tmp:
        saved = os.path.join(tmp, "saved_model")
        model.export(saved, format="tf_saved_model", verbose=False)
        conv = tf.lite.TFLiteConverter.from_saved_model(saved)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
        return bytes(conv.convert())


# --------------------------------------------------------------------------------------------
# Inspection (flatbuffer schema from tflite_micro)

@dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    type: str
    shape: tuple[int, ...]
    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    quantized_dimension: int
    is_constant: bool


@dataclass(frozen=True)
class OpInfo:
    index: int
    op: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelInfo:
    tensors: tuple[TensorInfo, ...]
    ops: tuple[OpInfo, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    @property
    def op_names(self) -> list[str]:
        return sorted({o.op for o in self.ops})

    def tensor(self, i: int) -> TensorInfo:
        return self.tensors[i]

    def non_int_tensors(self) -> list[TensorInfo]:
        return [t for t in self.tensors if t.type not in ALLOWED_TENSOR_TYPES]

    def weight_bytes(self) -> int:
        size = {"INT8": 1, "INT32": 4}
        return sum(int(np.prod(t.shape)) * size.get(t.type, 4) for t in self.tensors
                   if t.is_constant)


def _enum_names(cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


def _options_dict(opts: Any) -> dict[str, Any]:
    if opts is None:
        return {}
    out: dict[str, Any] = {}
    for k, v in vars(opts).items():
        if isinstance(v, (int, float, bool, str)):
            out[k] = v
        elif isinstance(v, (list, np.ndarray)):
            out[k] = [int(x) for x in v]
    return out


def inspect_tflite(data: bytes) -> ModelInfo:
    """Ops and tensors of the (single) subgraph of a `.tflite` file."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(data), 0))
    if len(model.subgraphs) != 1:
        raise ValueError(f"expected one subgraph, found {len(model.subgraphs)}")
    sg = model.subgraphs[0]
    type_names = _enum_names(schema.TensorType)
    op_names = _enum_names(schema.BuiltinOperator)
    tensors = []
    for i, t in enumerate(sg.tensors):
        q = t.quantization
        scale = tuple(float(s) for s in (q.scale if q is not None and q.scale is not None else []))
        zp = tuple(int(z) for z in (q.zeroPoint if q is not None and q.zeroPoint is not None
                                    else []))
        buf = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
        const = buf is not None and buf.data is not None and len(buf.data) > 0
        name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
        tensors.append(TensorInfo(i, name, type_names[t.type],
                                  tuple(int(s) for s in (t.shape if t.shape is not None else [])),
                                  scale, zp, int(q.quantizedDimension) if q is not None else 0,
                                  const))
    ops = []
    for i, o in enumerate(sg.operators):
        code = model.operatorCodes[o.opcodeIndex]
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        ops.append(OpInfo(i, op_names.get(builtin, str(builtin)),
                          tuple(int(x) for x in o.inputs), tuple(int(x) for x in o.outputs),
                          _options_dict(o.builtinOptions)))
    return ModelInfo(tuple(tensors), tuple(ops), tuple(int(x) for x in sg.inputs),
                     tuple(int(x) for x in sg.outputs))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------
# TFLM reference interpreter

def _tflm_interpreter(data: bytes, arena: int) -> Any:
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(data, arena_size=arena)


def arena_bytes(data: bytes, arena: int = 256 * 1024) -> int:
    """Tensor arena the TFLM interpreter used for the model (its RecordingMicroAllocator's
    "Arena allocation total"): tensors, scratch buffers and the interpreter's bookkeeping, on a
    64-bit host (a 32-bit MCU needs a little less bookkeeping)."""
    import re

    info = inspect_tflite(data)
    it = _tflm_interpreter(data, arena)
    for k, idx in enumerate(info.inputs):
        it.set_input(np.zeros(info.tensor(idx).shape, dtype=np.int8), k)
    it.invoke()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        try:
            os.dup2(tmp.fileno(), 1)
            os.dup2(tmp.fileno(), 2)
            it.print_allocations()
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        tmp.seek(0)
        text = tmp.read().decode(errors="replace")
    m = re.search(r"Arena allocation total (\d+) bytes", text)
    if m is None:
        raise RuntimeError(f"TFLM did not report its arena use: {text[:200]!r}")
    return int(m.group(1))


class Tflm:
    """Run an int8 model with inputs (window, rr[, diff]) and outputs (embedding, logits) with
    TFLM."""

    def __init__(self, data: bytes, arena: int = 64 * 1024) -> None:
        self.info = inspect_tflite(data)
        self._it = _tflm_interpreter(data, arena)
        self.inputs = [self.info.tensor(i) for i in self.info.inputs]
        self.outputs = [self.info.tensor(i) for i in self.info.outputs]
        by_name = {t.name: k for k, t in enumerate(self.inputs)}
        self._in_window = next(k for n, k in by_name.items() if "window" in n)
        self._in_rr = next(k for n, k in by_name.items() if "rr" in n)
        self._in_diff = next((k for n, k in by_name.items() if "diff" in n), None)
        out_sizes = [int(np.prod(t.shape)) for t in self.outputs]
        self._out_logits = out_sizes.index(min(out_sizes))
        self._out_embedding = 1 - self._out_logits if len(self.outputs) == 2 else None

    @property
    def window_quant(self) -> tuple[float, int]:
        t = self.inputs[self._in_window]
        return t.scale[0], t.zero_point[0]

    @property
    def rr_quant(self) -> tuple[float, int]:
        t = self.inputs[self._in_rr]
        return t.scale[0], t.zero_point[0]

    @property
    def has_diff(self) -> bool:
        return self._in_diff is not None

    @property
    def diff_quant(self) -> tuple[float, int]:
        assert self._in_diff is not None, "model has no diff input"
        t = self.inputs[self._in_diff]
        return t.scale[0], t.zero_point[0]

    def run(self, window_q: npt.NDArray[np.int8], rr_q: npt.NDArray[np.int8],
            diff_q: npt.NDArray[np.int8] | None = None
            ) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int8]]:
        """int8 inputs (n, 256), (n, 9)[, (n, 256)] -> int8 logits (n, 5) and embedding (n, E)."""
        if self._in_diff is not None and diff_q is None:
            raise ValueError("this model needs the diff input")
        n = window_q.shape[0]
        logits = np.empty((n, int(np.prod(self.outputs[self._out_logits].shape))), np.int8)
        emb_size = (int(np.prod(self.outputs[self._out_embedding].shape))
                    if self._out_embedding is not None else 0)
        emb = np.empty((n, emb_size), np.int8)
        ws = self.inputs[self._in_window].shape
        rs = self.inputs[self._in_rr].shape
        for i in range(n):
            self._it.set_input(np.ascontiguousarray(window_q[i].reshape(ws), dtype=np.int8),
                               self._in_window)
            self._it.set_input(np.ascontiguousarray(rr_q[i].reshape(rs), dtype=np.int8),
                               self._in_rr)
            if self._in_diff is not None:
                assert diff_q is not None
                ds = self.inputs[self._in_diff].shape
                self._it.set_input(np.ascontiguousarray(diff_q[i].reshape(ds), dtype=np.int8),
                                   self._in_diff)
            self._it.invoke()
            logits[i] = self._it.get_output(self._out_logits).reshape(-1)
            if self._out_embedding is not None:
                emb[i] = self._it.get_output(self._out_embedding).reshape(-1)
        return logits, emb


def intermediate_tensors(data: bytes, inputs: dict[str, npt.NDArray[np.int8]],
                         arena: int = 64 * 1024) -> dict[int, list[int]]:
    """Every op output of one TFLM invocation, by tensor index (for bit-exact C debugging).

    `inputs` maps a substring of the input tensor name ("window", "rr", "diff") to its int8
    data.
    """
    from tflite_micro.python.tflite_micro import runtime

    info = inspect_tflite(data)
    it = runtime.Interpreter.from_bytes(
        data, arena_size=arena, intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    for k, idx in enumerate(info.inputs):
        t = info.tensor(idx)
        key = next(n for n in inputs if n in t.name)
        it.set_input(np.ascontiguousarray(inputs[key].reshape(t.shape), dtype=np.int8), k)
    it.invoke()
    out: dict[int, list[int]] = {}
    for o in info.ops:
        for i in o.outputs:
            got = it.GetTensor(i, 0)
            arr = got["tensor_data"] if isinstance(got, dict) else got
            out[i] = np.asarray(arr).reshape(-1).astype(int).tolist()
    return out


def describe(info: ModelInfo) -> str:
    """Human-readable op list with tensor shapes and quantization."""
    lines = []

    def t_str(i: int) -> str:
        if i < 0:
            return "-"
        t = info.tensor(i)
        q = ""
        if t.scale:
            q = (f" s={t.scale[0]:.6g} zp={t.zero_point[0]}" if len(t.scale) == 1
                 else f" per-axis[{t.quantized_dimension}] x{len(t.scale)}")
        return f"#{i} {t.type}{list(t.shape)}{q}{' const' if t.is_constant else ''}"

    act = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}
    for o in info.ops:
        opts = {k: (act.get(v, v) if k == "fusedActivationFunction" else v)
                for k, v in o.options.items()
                if k in ("fusedActivationFunction", "keepNumDims", "adjX", "adjY", "beta",
                         "keepDims")}
        lines.append(f"{o.index:2d} {o.op} {opts if opts else ''}".rstrip())
        for i in o.inputs:
            lines.append(f"     in  {t_str(i)}")
        for i in o.outputs:
            lines.append(f"     out {t_str(i)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tflite", type=Path)
    args = ap.parse_args(argv)
    data = args.tflite.read_bytes()
    info = inspect_tflite(data)
    print(describe(info))
    print("ops:", ", ".join(info.op_names))
    bad = info.non_int_tensors()
    print("non-int8/int32 tensors:", [(t.name, t.type) for t in bad] or "none")
    print("size:", len(data), "bytes; sha256:", sha256(data))
    print("arena:", arena_bytes(data), "bytes")
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())

"""The firmware's int8 beat classifier, run on the host.

`BeatClassifier` wraps `ecg_classifier` (`firmware/src/core/ecg_classifier.c` and the tables that
`tools/gen_model_c.py` compiles from `models/beat_tx.tflite`), compiled into `ecgedge._core`: the
very C the watch runs, so the host gets the device's logits and embeddings bit for bit. Those are
also bit-identical to the TensorFlow Lite Micro reference interpreter's (tests/test_classifier_c.py
checks every MIT-BIH DS2 beat).

Inputs are the model's int8 tensors: the features of `ecgedge.beats` quantized with the scale and
zero point of the *compiled* model (`BeatClassifier.quantize_inputs` does it).

Example:
    >>> from ecgedge import beats as B
    >>> from ecgedge.classifier import BeatClassifier
    >>> clf = BeatClassifier()
    >>> bf = B.beat_features(filtered, fs_hz, r_peaks, B.filter_delay(delay_samples))
    >>> w, r = clf.quantize_inputs(bf.window, bf.rr)
    >>> logits, emb = clf.run_batch(w, r)
    >>> classes = clf.predict(w, r)          # argmax, ties to the lowest class index

Personalization: `set_head` installs another head (int8 weights, int32 bias, per-class Q31
multipliers and shifts) over the same embedding, `reset_head` restores the model's own.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from . import _core

__all__ = ["BeatClassifier", "Decision", "ModelInfo", "CLASSES"]

CLASSES = ("N", "S", "V", "F", "Q")

Int8Array = npt.NDArray[np.int8]


class ModelInfo(NamedTuple):
    """Constants of the compiled model (`ecg_model_data.h`)."""

    id: str
    sha256: str
    scratch_bytes: int
    weights_bytes: int
    n_ops: int
    window_len: int
    rr_len: int
    embedding_len: int
    n_classes: int
    n_samples: int
    window_scale: float
    window_zero_point: int
    rr_scale: float
    rr_zero_point: int
    embedding_scale: float
    embedding_zero_point: int
    logits_scale: float
    logits_zero_point: int


class Decision(NamedTuple):
    """`ecg_classifier_decide`: class (argmax, ties to the lowest index) and its confidence.

    Attributes:
        class_index: 0..4, see `CLASSES`.
        margin_q: top logit minus the runner-up, int8 steps.
        margin: the same in real logit units (nats).
        confidence: 1 / (1 + exp(-margin)): the top class's probability against the runner-up
            alone, in [0.5, 1); an upper bound of the full softmax probability.
    """

    class_index: int
    margin_q: int
    margin: float
    confidence: float

    @property
    def label(self) -> str:
        return CLASSES[self.class_index]


def _int8(name: str, a: Any, shape: tuple[int | None, ...]) -> Int8Array:
    arr = np.asarray(a)
    if arr.dtype != np.int8:
        raise ValueError(f"{name} must be int8 (the model's quantized input), got {arr.dtype}; "
                         "quantize float features with BeatClassifier.quantize_inputs")
    if arr.ndim != len(shape) or any(s is not None and d != s for d, s in zip(arr.shape, shape)):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    return np.ascontiguousarray(arr)


class BeatClassifier:
    """The firmware's beat classifier (`ecg_classifier`), bit-exact with TFLM."""

    def __init__(self) -> None:
        self._c = _core.BeatClassifier()
        self.model = ModelInfo(**self._c.model)

    # ---- inference -------------------------------------------------------------------------

    def run(self, window: npt.ArrayLike, rr: npt.ArrayLike) -> tuple[Int8Array, Int8Array]:
        """One beat: int8 `window` (window_len,) and `rr` (rr_len,) -> (logits, embedding)."""
        w = _int8("window", window, (self.model.window_len,))
        r = _int8("rr", rr, (self.model.rr_len,))
        logits, emb = self.run_batch(w[None, :], r[None, :])
        return logits[0], emb[0]

    def run_batch(self, windows: npt.ArrayLike,
                  rrs: npt.ArrayLike) -> tuple[Int8Array, Int8Array]:
        """N beats: int8 (N, window_len) and (N, rr_len) -> logits (N, n_classes), embeddings
        (N, embedding_len), int8."""
        w = _int8("windows", windows, (None, self.model.window_len))
        r = _int8("rrs", rrs, (None, self.model.rr_len))
        if w.shape[0] != r.shape[0]:
            raise ValueError(f"{w.shape[0]} windows but {r.shape[0]} rr rows")
        n = w.shape[0]
        logits = np.empty((n, self.model.n_classes), np.int8)
        emb = np.empty((n, self.model.embedding_len), np.int8)
        self._c.run(w, r, logits, emb, n)
        return logits, emb

    def predict(self, windows: npt.ArrayLike, rrs: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Class index of each beat: argmax of the int8 logits, ties to the lowest index."""
        logits, _ = self.run_batch(windows, rrs)
        return np.argmax(logits, axis=1).astype(np.int64)  # numpy's argmax keeps the first max

    def decide(self, logits: npt.ArrayLike) -> Decision:
        """Class and confidence of one beat's int8 logits (`ecg_classifier_decide`)."""
        lg = _int8("logits", logits, (self.model.n_classes,))
        return Decision(*self._c.decide(lg))

    def run_head(self, embeddings: npt.ArrayLike) -> Int8Array:
        """The installed head alone: int8 (N, embedding_len) -> logits (N, n_classes)."""
        e = _int8("embeddings", embeddings, (None, self.model.embedding_len))
        logits = np.empty((e.shape[0], self.model.n_classes), np.int8)
        self._c.run_head(e, logits, e.shape[0])
        return logits

    def quantize_inputs(self, window: npt.ArrayLike,
                        rr: npt.ArrayLike) -> tuple[Int8Array, Int8Array]:
        """float32 features (`ecgedge.beats`) -> int8 inputs with the compiled model's
        quantization (`ecgedge.beats.quantize`: TFLite's AffineQuantize)."""
        from . import beats

        m = self.model
        return (beats.quantize(window, m.window_scale, m.window_zero_point),
                beats.quantize(rr, m.rr_scale, m.rr_zero_point))

    def beat_inputs(self, signal_mv: npt.ArrayLike, fs_hz: float, r_peaks: npt.ArrayLike,
                    mains_hz: int | None) -> tuple[Int8Array, Int8Array]:
        """int8 inputs of the beats `r_peaks` of one raw lead (millivolts): the conditioning
        filter (`ecgedge.core.Filter`, notch `mains_hz`), `ecgedge.beats.beat_features` at its
        delay, then `quantize_inputs`."""
        from . import beats
        from .core import Filter

        filt = Filter(fs_hz, mains_hz)
        bf = beats.beat_features(filt.process(signal_mv), fs_hz, np.asarray(r_peaks, np.int64),
                                 beats.filter_delay(filt.delay_samples))
        return self.quantize_inputs(bf.window, bf.rr)

    # ---- head (personalization) -------------------------------------------------------------

    @property
    def head(self) -> dict[str, Any]:
        """The installed head: weights (n_classes, embedding_len) int8, bias (int32 or None),
        multipliers, shifts, logits_scale, logits_zero_point, version (0: the factory head)."""
        h = dict(self._c.head)
        h["weights"] = np.frombuffer(h["weights"], np.int8).reshape(
            self.model.n_classes, self.model.embedding_len).copy()
        if h["bias"] is not None:
            h["bias"] = np.asarray(h["bias"], np.int32)
        return h

    def set_head(self, weights: npt.ArrayLike, bias: npt.ArrayLike | None,
                 multipliers: npt.ArrayLike, shifts: npt.ArrayLike, logits_scale: float,
                 logits_zero_point: int, version: int = 1) -> None:
        """Install a head (`ecg_classifier_set_head`); the tables are copied.

        Args:
            weights: int8 (n_classes, embedding_len), symmetric.
            bias: int32 (n_classes,) at scale embedding_scale * weight_scale[c], or None.
            multipliers, shifts: per class, embedding_scale * weight_scale[c] / logits_scale as
                TFLite's QuantizeMultiplier gives it (Q31 significand in [2^30, 2^31), shift
                -31..30).
            logits_scale, logits_zero_point: quantization of the int8 logits.
            version: a tag for the head (0 is the factory head's).
        """
        w = _int8("weights", weights, (self.model.n_classes, self.model.embedding_len))
        n = self.model.n_classes
        m = [int(v) for v in np.asarray(multipliers).reshape(-1)]
        s = [int(v) for v in np.asarray(shifts).reshape(-1)]
        b = None if bias is None else [int(v) for v in np.asarray(bias).reshape(-1)]
        for name, seq in (("multipliers", m), ("shifts", s), ("bias", b)):
            if seq is not None and len(seq) != n:
                raise ValueError(f"{name} must have {n} entries, got {len(seq)}")
        self._c.set_head(w, b, m, s, float(logits_scale), int(logits_zero_point), int(version))

    def reset_head(self) -> None:
        """Reinstall the model's own head."""
        self._c.reset_head()

    def selftest(self) -> int:
        """Run the sample beats compiled with the model; the number that differ from TFLM."""
        return int(self._c.selftest())

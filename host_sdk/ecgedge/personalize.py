"""Personalization of the beat classifier's head on the host, with the device's own µ-trainer.

The classifier is a frozen backbone (beat -> 16-value int8 embedding) and a replaceable head (one
int8 dense layer, embedding -> the 5 AAMI classes). `HeadTrainer` wraps the firmware's µ-trainer
(`firmware/src/core/ecg_trainer.c`, compiled into `ecgedge._core`): the host trains a head with
the same C, on the same float order, as a device would, so a host-trained head is bit for bit the
head the device would train from the same beats and labels. There is no second implementation.

`personalize_head` does it from a recording: it computes the embeddings of the given beats with
the C classifier (`ecgedge.classifier.BeatClassifier`, features from `ecgedge.beats`), labels the
beats given classes, trains from the factory head and returns the new `HeadTables`, whose
`to_bytes()` is what a head package carries (`Device.push_head`).

Example:
    >>> from ecgedge import personalize as P
    >>> emb = P.embed_beats(signal_mv, 360.0, r_peaks).embeddings
    >>> result = P.personalize_head(signal_mv, 360.0, r_peaks, label_at, label_class)
    >>> result.tables.to_bytes()        # 148 bytes, ecg_classifier_head_tables_t
    >>> result.tables.install(BeatClassifier())

`HeadTables.to_bytes()` is the little-endian serialization of `ecg_classifier_head_tables_t`
(`firmware/include/ecg/ecg_classifier.h`), field by field without padding: weights int8
[5][16], bias int32 [5], then per class (multiplier int32, shift int32), logits_scale float32,
logits_zero_point int32: 148 bytes, the HEAD payload `ecg_update_pack_head` writes
(`firmware/src/core/ecg_update.c`).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _core
from .classifier import BeatClassifier

__all__ = ["HEAD_TABLES_BYTES", "Embedded", "HeadTables", "HeadTrainer", "PersonalizedHead",
           "TrainerConfig", "embed_beats", "personalize_head", "serialize_head_tables"]

N_CLASSES = 5
EMBEDDING_LEN = 16
_LAYOUT = struct.Struct(f"<{N_CLASSES * EMBEDDING_LEN}b{N_CLASSES}i{2 * N_CLASSES}ifi")
HEAD_TABLES_BYTES = _LAYOUT.size  #: 148, sizeof(ecg_classifier_head_tables_t)

Int8Array = npt.NDArray[np.int8]
Int32Array = npt.NDArray[np.int32]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class HeadTables:
    """A classifier head's tables (`ecg_classifier_head_tables_t`).

    Attributes:
        weights: int8 (5, 16), symmetric per class.
        bias: int32 (5,), at embedding_scale * weight_scale[c].
        multipliers, shifts: int32 (5,), embedding_scale * weight_scale[c] / logits_scale as
            TFLite's QuantizeMultiplier stores it.
        logits_scale: scale of the int8 logits (a float32 value).
        logits_zero_point: zero point of the int8 logits.
    """

    weights: Int8Array
    bias: Int32Array
    multipliers: Int32Array
    shifts: Int32Array
    logits_scale: float
    logits_zero_point: int

    def to_bytes(self) -> bytes:
        """Little-endian `ecg_classifier_head_tables_t` (148 bytes, see the module docs)."""
        quant = np.stack([self.multipliers, self.shifts], axis=1).reshape(-1)
        return _LAYOUT.pack(*(int(v) for v in self.weights.reshape(-1)),
                            *(int(v) for v in self.bias), *(int(v) for v in quant),
                            float(self.logits_scale), int(self.logits_zero_point))

    @classmethod
    def from_bytes(cls, data: bytes) -> HeadTables:
        """Parse `to_bytes()` output; ValueError when the length is not 148."""
        if len(data) != HEAD_TABLES_BYTES:
            raise ValueError(f"head tables are {HEAD_TABLES_BYTES} bytes "
                             f"(ecg_classifier_head_tables_t), got {len(data)}")
        v = _LAYOUT.unpack(bytes(data))
        nw, nb = N_CLASSES * EMBEDDING_LEN, N_CLASSES
        quant = np.asarray(v[nw + nb: nw + nb + 2 * nb], np.int32).reshape(nb, 2)
        return cls(np.asarray(v[:nw], np.int8).reshape(N_CLASSES, EMBEDDING_LEN),
                   np.asarray(v[nw: nw + nb], np.int32), quant[:, 0].copy(), quant[:, 1].copy(),
                   float(v[-2]), int(v[-1]))

    @classmethod
    def from_classifier(cls, clf: BeatClassifier | None = None) -> HeadTables:
        """The head installed in `clf` (default: a fresh classifier, i.e. the factory head)."""
        h = (clf or BeatClassifier()).head
        bias = h["bias"] if h["bias"] is not None else np.zeros(N_CLASSES, np.int32)
        return cls(np.asarray(h["weights"], np.int8), np.asarray(bias, np.int32),
                   np.asarray(h["multipliers"], np.int32), np.asarray(h["shifts"], np.int32),
                   float(np.float32(h["logits_scale"])), int(h["logits_zero_point"]))

    def install(self, clf: BeatClassifier, version: int = 1) -> BeatClassifier:
        """Install this head in `clf` (`BeatClassifier.set_head`); returns `clf`."""
        clf.set_head(self.weights, self.bias, self.multipliers, self.shifts, self.logits_scale,
                     self.logits_zero_point, version)
        return clf

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HeadTables) and self.to_bytes() == other.to_bytes()

    def __hash__(self) -> int:
        return hash(self.to_bytes())


def serialize_head_tables(tables: HeadTables) -> bytes:
    """`tables.to_bytes()`, for callers that hold the function rather than the object."""
    return tables.to_bytes()


@dataclass(frozen=True)
class TrainerConfig:
    """`ecg_trainer_cfg_t` (see `firmware/include/ecg/ecg_trainer.h`); None: the C default."""

    iterations: int | None = None
    step_scale: float | None = None
    momentum: float | None = None
    l2: float | None = None
    balance_prior: float | None = None
    match_tolerance_samples: int | None = None

    def kwargs(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}


class HeadTrainer:
    """The firmware's µ-trainer (`ecg_trainer`): a ring of beat embeddings, labels, training.

    Args:
        config: trainer configuration (defaults: the C defaults, `ecg_trainer_default_cfg`).
    """

    def __init__(self, config: TrainerConfig | None = None) -> None:
        try:
            self._c = _core.HeadTrainer(**(config or TrainerConfig()).kwargs())
        except ValueError as e:
            raise ValueError(f"{e}; see the ranges of ecg_trainer_cfg_t in "
                             "firmware/include/ecg/ecg_trainer.h") from None

    @property
    def config(self) -> dict[str, Any]:
        """The configuration in use (C defaults filled in)."""
        return dict(self._c.config)

    @property
    def stats(self) -> dict[str, Any]:
        """count (buffered beats), labelled, last_loss, max_beats (the ring size)."""
        return dict(self._c.stats)

    def add_beats(self, sample_index: npt.ArrayLike, embeddings: npt.ArrayLike) -> None:
        """Buffer beats (increasing sample indices, int8 embeddings (N, 16)); the ring keeps the
        last `stats["max_beats"]`."""
        idx = np.asarray(sample_index, np.int64).reshape(-1)
        emb = np.ascontiguousarray(embeddings, np.int8).reshape(-1, EMBEDDING_LEN)
        if idx.shape[0] != emb.shape[0]:
            raise ValueError(f"{idx.shape[0]} sample indices but {emb.shape[0]} embeddings")
        for i, e in zip(idx.tolist(), emb):
            self._c.add_beat(i, e)

    def label(self, sample_index: npt.ArrayLike, classes: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Label buffered beats; returns which labels found their beat (see the tolerance in
        `TrainerConfig.match_tolerance_samples`)."""
        idx = np.asarray(sample_index, np.int64).reshape(-1)
        cls = np.asarray(classes, np.int64).reshape(-1)
        if idx.shape[0] != cls.shape[0]:
            raise ValueError(f"{idx.shape[0]} sample indices but {cls.shape[0]} classes")
        return np.fromiter((self._c.label(i, c) for i, c in zip(idx.tolist(), cls.tolist())),
                           dtype=bool, count=idx.shape[0])

    def clear_labels(self) -> None:
        self._c.clear_labels()

    def train(self, start: HeadTables | None = None) -> HeadTables:
        """Train on the labelled beats from `start` (default: the factory head)."""
        start = start if start is not None else HeadTables.from_classifier()
        try:
            out = self._c.train(start.to_bytes(), 1)
        except ValueError as e:
            if "state" in str(e).lower():
                raise ValueError("no labelled beat in the trainer: label some buffered beats "
                                 "first (HeadTrainer.label)") from None
            raise
        return HeadTables.from_bytes(out)


@dataclass(frozen=True)
class Embedded:
    """The classifier's view of a sequence of beats (`embed_beats`).

    Attributes:
        r_peaks: the beats' raw sample indices.
        logits: int8 (N, 5) with the classifier's installed head.
        embeddings: int8 (N, 16), the head's inputs.
    """

    r_peaks: IntArray
    logits: Int8Array
    embeddings: Int8Array


def embed_beats(signal_mv: npt.ArrayLike, fs_hz: float, r_peaks: npt.ArrayLike,
                mains_hz: int | None = 60, clf: BeatClassifier | None = None) -> Embedded:
    """Features (`ecgedge.beats`) and the C classifier on every beat of one lead.

    Args:
        signal_mv: the raw lead, millivolts.
        fs_hz: its sampling rate.
        r_peaks: every beat of the stream, ascending raw sample indices (reference annotations
            or the detector's output: all beats shape the RR features).
        mains_hz: the conditioning filter's notch (50, 60 or None).
        clf: the classifier (default: a fresh one, the factory head).
    """
    clf = clf or BeatClassifier()
    pos = np.asarray(r_peaks, np.int64)
    logits, emb = clf.run_batch(*clf.beat_inputs(signal_mv, fs_hz, pos, mains_hz))
    return Embedded(pos, logits, emb)


@dataclass(frozen=True)
class PersonalizedHead:
    """Result of `personalize_head`.

    Attributes:
        tables: the trained head.
        labelled: labels that found their beat (and were trained on).
        unmatched: labels with no beat within the tolerance (ignored).
        stats: the trainer's statistics after training (`HeadTrainer.stats`).
    """

    tables: HeadTables
    labelled: int
    unmatched: int
    stats: Mapping[str, Any] = field(default_factory=dict)


def personalize_head(signal_mv: npt.ArrayLike, fs_hz: float, r_peaks: npt.ArrayLike,
                     label_at: npt.ArrayLike, label_class: npt.ArrayLike, *,
                     start: HeadTables | None = None, config: TrainerConfig | None = None,
                     mains_hz: int | None = 60,
                     embedded: Embedded | None = None) -> PersonalizedHead:
    """Train a head for one patient from a recording and labelled beats.

    Args:
        signal_mv, fs_hz, r_peaks, mains_hz: the recording and its beats (see `embed_beats`).
        label_at: sample indices of the labelled beats (e.g. reference annotations).
        label_class: their AAMI classes (0 N, 1 S, 2 V, 3 F, 4 Q); negative values are skipped.
        start: the head to start from (default: the factory head).
        config: trainer configuration; the default matches a label to the nearest beat within
            150 ms (`match_tolerance_samples`), as EC57 matches beats.
        embedded: `embed_beats` output already computed for these beats (skips the classifier).

    Raises:
        ValueError: when no label matches a beat, or more beats are labelled than the trainer's
            ring holds (train on at most `max_beats` consecutive beats).
    """
    emb = embedded if embedded is not None else embed_beats(signal_mv, fs_hz, r_peaks, mains_hz)
    at = np.asarray(label_at, np.int64).reshape(-1)
    cls = np.asarray(label_class, np.int64).reshape(-1)
    keep = cls >= 0
    at, cls = at[keep], cls[keep]
    if config is None or config.match_tolerance_samples is None:
        tol = int(round(0.150 * float(fs_hz)))
        config = TrainerConfig(**{**(config or TrainerConfig()).kwargs(),
                                  "match_tolerance_samples": tol})
    trainer = HeadTrainer(config)
    # buffer the beats the labels span (the ring holds the most recent max_beats)
    tol = int(trainer.config["match_tolerance_samples"])
    lo, hi = (int(at.min()) - tol, int(at.max()) + tol) if at.size else (0, -1)
    span = (emb.r_peaks >= lo) & (emb.r_peaks <= hi)
    if int(span.sum()) > int(trainer.stats["max_beats"]):
        raise ValueError(f"the labels span {int(span.sum())} beats but the trainer holds "
                         f"{trainer.stats['max_beats']}: label a shorter stretch")
    trainer.add_beats(emb.r_peaks[span], emb.embeddings[span])
    matched = trainer.label(at, cls)
    if not matched.any():
        raise ValueError("no label matched a beat: check that the label sample indices are on "
                         "the recording's sample counter")
    tables = trainer.train(start)
    return PersonalizedHead(tables, int(matched.sum()), int((~matched).sum()), trainer.stats)

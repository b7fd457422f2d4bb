"""``ecgedge personalize``: label beats for a device's µ-trainer (a signed LABELS package).

    ecgedge personalize URL --labels FILE [--key HEX] [--version N] [--json]
    ecgedge personalize URL --from-record REC [--seconds 300] [--key HEX] [--json]

``--labels FILE``: one beat per line, ``SAMPLE_INDEX CLASS`` (comma or blanks between), CLASS
0-4 or N S V F Q, ``#`` starts a comment; indices are on the device's sample counter (its
`Beat.index`).

``--from-record REC``: the first ``--seconds`` of a WFDB record are injected into the device
(which needs capability INJECT and the record's rate), its beats are matched to the record's
reference annotations (``atr``) within 150 ms the EC57 way (`validation.ec57.compare`), and
each matched beat is labelled with its reference AAMI class: the device's own sample indices,
as the µ-trainer needs them.

The key: ``--key HEX``, else ``$ECGEDGE_DEVICE_KEY``; ``ecgedge sim`` without ``--device-key``
takes the public development key (`ecgedge.update.DEV_KEY`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from . import update as U

__all__ = ["add_personalize", "read_labels", "record_labels"]

_CLASS_LETTERS = "NSVFQ"


def read_labels(path: Path) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(sample indices, classes) from a labels file (see the module docstring).

    Raises:
        ValueError: a line that is not ``INDEX CLASS``, with its number.
    """
    idx: list[int] = []
    cls: list[int] = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        text = line.split("#", 1)[0].replace(",", " ").split()
        if not text:
            continue
        try:
            if len(text) != 2:
                raise ValueError
            c = text[1].upper()
            idx.append(int(text[0]))
            cls.append(_CLASS_LETTERS.index(c) if c in _CLASS_LETTERS else int(c))
        except ValueError:
            raise ValueError(f"{path}:{n}: {line.strip()!r}: want 'SAMPLE_INDEX CLASS' with "
                             "CLASS 0-4 or one of N S V F Q") from None
    if not idx:
        raise ValueError(f"{path}: no labels (one 'SAMPLE_INDEX CLASS' per line)")
    return np.asarray(idx, np.int64), np.asarray(cls, np.int64)


def record_labels(device_beats: npt.ArrayLike, ref_samples: npt.ArrayLike,
                  ref_symbols: list[str], fs_hz: float,
                  end: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Label the device's beats (sample indices) with the reference class of the annotated beat
    each one matches (EC57 matching, 150 ms) up to sample `end`; beats without an AAMI class
    (symbols B r n ?) and unmatched beats get no label."""
    from .beats import reference_beats
    from .validation.ec57 import Reference, compare

    pos, cls = reference_beats(np.asarray(ref_samples, np.int64), ref_symbols)
    keep = pos < end
    pos, cls = pos[keep], cls[keep]
    beats = np.sort(np.asarray(device_beats, np.int64))
    pairs = compare(Reference(pos), beats[beats < end], fs_hz, start=0, end=end).pairs
    if pairs.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ref_class = dict(zip(pos.tolist(), cls.tolist()))
    labels = [(int(t), ref_class[int(r)]) for r, t in pairs if ref_class[int(r)] >= 0]
    arr = np.asarray(labels, np.int64).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def _from_record(dev: Any, record: Path, seconds: float) -> tuple[npt.NDArray[np.int64],
                                                                   npt.NDArray[np.int64]]:
    import wfdb

    from .sim import load_record

    info = dev.info()
    rec = load_record(record, list(range(info.leads)))
    if rec.fs_hz != info.sample_rate_hz:
        raise ValueError(f"record {record} is sampled at {rec.fs_hz} Hz, the device at "
                         f"{info.sample_rate_hz} Hz: configure the device to the record's rate")
    n = min(len(rec.counts), int(round(seconds * rec.fs_hz)))
    report = dev.inject(rec.counts[:n])
    ann = wfdb.rdann(str(record), "atr")
    return record_labels([b.index for b in report.beats], ann.sample, list(ann.symbol),
                         rec.fs_hz, n)


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from .cli import EXIT_OK, _UsageError
    from .sync import connect

    console = Console(stderr=True)
    try:
        key = U.device_key(args.key)
        labels = read_labels(args.labels) if args.labels is not None else None
    except (ValueError, OSError) as exc:
        raise _UsageError(str(exc)) from exc
    with connect(args.url, timeout=args.timeout) as dev:
        try:
            if labels is None:
                labels = _from_record(dev, args.from_record, args.seconds)
            if labels[0].size == 0:
                raise ValueError("no beat could be labelled (no device beat matched an "
                                 "annotated beat)")
        except (ValueError, OSError) as exc:
            raise _UsageError(str(exc)) from exc
        with Progress(TextColumn("labels"), BarColumn(), DownloadColumn(), console=console,
                      transient=True) as bar:
            task = bar.add_task("send", total=labels[0].size * U.LABEL_LEN)
            info = dev.personalize(labels[0], labels[1], key=key, version=args.version,
                                   progress=lambda done, total: bar.update(task,
                                                                           completed=done))
    counts = np.bincount(labels[1], minlength=len(_CLASS_LETTERS))
    result = dict(labels=int(labels[0].size),
                  classes={c: int(k) for c, k in zip(_CLASS_LETTERS, counts)},
                  model_id=f"{info.model_id:08x}", active_slot=info.active_slot,
                  state=getattr(info.state, "name", info.state), head_version=info.head_version,
                  trainer_beats=info.trainer_beats, trainer_labelled=info.trainer_labelled)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['labels']} labels sent ({', '.join(f'{c} {k}' for c, k in result['classes'].items())}); "
              f"the device matched {info.trainer_labelled} of its {info.trainer_beats} buffered "
              f"beats, trained, and runs head version {info.head_version} "
              f"(slot {info.active_slot}, {result['state']})")
    return EXIT_OK


def add_personalize(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``ecgedge personalize``."""
    from .cli import _positive_seconds, _url_options

    cmd = commands.add_parser(
        "personalize", parents=[_url_options()],
        help="label beats for the device's µ-trainer: it retrains its classifier head",
        description="Send class labels for beats the device has seen, as a signed LABELS "
                    "package (docs/protocol.md §11); the device's µ-trainer retrains the "
                    "classifier head on them and switches to it atomically.")
    what = cmd.add_mutually_exclusive_group(required=True)
    what.add_argument("--labels", type=Path, metavar="FILE",
                      help="labels file: 'SAMPLE_INDEX CLASS' per line (CLASS 0-4 or N S V F Q)")
    what.add_argument("--from-record", type=Path, metavar="REC",
                      help="inject the start of this WFDB record and label the device's beats "
                           "from its reference annotations (atr)")
    cmd.add_argument("--seconds", type=_positive_seconds, default=300.0, metavar="SECONDS",
                     help="with --from-record: how much of the record to inject and label "
                          "(default 300, EC57's learning period)")
    cmd.add_argument("--key", metavar="HEX",
                     help=f"per-device key (default ${U.KEY_ENV})")
    cmd.add_argument("--version", type=int, metavar="N",
                     help="package version (default: the device's highest accepted + 1)")
    cmd.add_argument("--json", action="store_true", help="print the result as one JSON object")
    cmd.set_defaults(run=_run)

"""Trade-off study of the QRS detector: MIT-BIH and Noise Stress Test scores across settings.

Runs `ecgedge.validation.qrs.validate_qrs` (EC57, from 5:00, channel 0, mains 60) for the
validated defaults and for a grid of the settings that trade sensitivity for positive
predictivity, and prints, per setting, the MIT-BIH gross and the NSTDB 12 dB and 6 dB figures with
the issue's targets marked. It shows where the current design's frontier lies: no setting in the
grid meets every target at once (see docs/benchmarks.md).

Usage:
    python tools/qrs_frontier.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from ecgedge.validation.ec57 import Counts
from ecgedge.validation.qrs import validate_qrs

ROOT = Path(__file__).resolve().parents[1]
NOISE_RECORDS = {12: ["118e12", "119e12"], 6: ["118e06", "119e06"]}
TARGETS = {"mit": (99.85, 99.85), 12: (99.8, 98.0), 6: (98.0, 92.0)}
GRID = {
    "threshold_noise_gain": [0.6, 1.0, 1.5, 2.0],
    "threshold_activity_gain": [0.0, 1.0, 2.0, 3.0],
}


def score(data: Path, params: dict[str, float]) -> dict[object, Counts]:
    out: dict[object, Counts] = {
        "mit": validate_qrs(data / "mitdb", mains_hz=60, detector_params=params).gross}
    for snr, recs in NOISE_RECORDS.items():
        out[snr] = validate_qrs(data / "nstdb", records=recs, mains_hz=60,
                                detector_params=params).gross
    return out


def cell(c: Counts, target: tuple[float, float]) -> str:
    ok = c.se >= target[0] and c.ppv >= target[1]
    return f"{c.se:6.2f} / {c.ppv:6.2f} {'ok ' if ok else '-- '}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    print(f"{'setting':44s} {'MIT-BIH Se / +P':22s} {'NSTDB 12 dB':22s} {'NSTDB 6 dB':22s}")
    settings: list[dict[str, float]] = [{}]
    keys = list(GRID)
    settings += [dict(zip(keys, v)) for v in itertools.product(*(GRID[k] for k in keys))]
    for params in settings:
        res = score(args.data, params)
        name = ", ".join(f"{k}={v:g}" for k, v in params.items()) or "defaults"
        print(f"{name:44s} " + " ".join(cell(res[k], TARGETS[k]) for k in ("mit", 12, 6)),
              flush=True)


if __name__ == "__main__":
    main()

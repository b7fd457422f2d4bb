"""Benchmark the signal core as compiled into the host extension (`ecgedge._core`).

Prints measured figures, never expected ones:
- host speed: CPU seconds to filter + detect one hour of 360 Hz ECG (MIT-BIH records 100 and 101
  back to back, channel 0), best of --repeat runs;
- decision latency over all MIT-BIH records: how long after its R peak each beat is decided
  (`Beats.decided_at`), split into regular and search-back-sized delays by percentile;
- the signal-quality flag on the Noise Stress Test records: the share of beats flagged NOISY or
  UNUSABLE inside the noise bursts (2 minutes every 4, from 5:00) and in the clean stretches;
- the conditioning filter's response at 250, 360 and 500 Hz: attenuation at the mains frequency
  and the worst deviation from 0 dB over 1-30 Hz, measured by driving it with sinusoids.

Usage:
    python tools/bench_core.py [--db ../shared/data/mitdb] [--nstdb ../shared/data/nstdb] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ecgedge.core import Filter, QrsDetector, Quality
from ecgedge.validation.wfdb_db import find_records, read_lead

ROOT = Path(__file__).resolve().parents[1]


def host_speed(db: Path, repeat: int) -> dict[str, float]:
    x = np.concatenate([read_lead(db, r, 0).signal_mv for r in ("100", "101")]).astype(np.float32)
    hours = x.size / 360.0 / 3600.0
    best = float("inf")
    for _ in range(repeat):
        det = QrsDetector(360.0, mains_hz=60)
        t0 = time.process_time()
        det.process(x)
        det.flush()
        best = min(best, time.process_time() - t0)
    return {"signal_hours": round(hours, 4), "cpu_s_per_hour": round(best / hours, 4)}


def latency(db: Path) -> dict[str, float]:
    lat: list[np.ndarray] = []
    for rec in find_records(db).names:
        lead = read_lead(db, rec, 0)
        b = QrsDetector(lead.fs_hz, mains_hz=60).process_beats(lead.signal_mv)
        lat.append((b.decided_at - b.index) / lead.fs_hz)
    d = np.concatenate(lat) * 1000.0
    pct = {f"p{p}": round(float(np.percentile(d, p)), 1) for p in (50, 90, 99, 99.9)}
    return {"beats": int(d.size), **{k + "_ms": v for k, v in pct.items()},
            "max_ms": round(float(d.max()), 1),
            "share_within_300ms": round(float((d <= 300.0).mean()), 4),
            "share_within_410ms": round(float((d <= 410.0).mean()), 4)}


def quality_flags(nstdb: Path) -> dict[str, dict[str, float]]:
    out = {}
    for rec in ("118e24", "118e12", "118e06", "118e00", "119e24", "119e12", "119e06", "119e00"):
        lead = read_lead(nstdb, rec, 0)
        det = QrsDetector(lead.fs_hz, mains_hz=60)
        b = det.process_beats(lead.signal_mv)
        t = b.index / lead.fs_hz
        scored = t >= 300.0
        in_burst = scored & (((t - 300.0) // 120.0) % 2 == 0)
        clean = scored & ~in_burst
        flagged = b.quality != Quality.GOOD
        out[rec] = {"flagged_in_noise_bursts": round(float(flagged[in_burst].mean()), 3),
                    "flagged_in_clean_stretches": round(float(flagged[clean].mean()), 3)}
    return out


def gain_db(fs: float, f_hz: float, mains: int | None) -> float:
    t = np.arange(int(12 * fs)) / fs
    y = Filter(fs, mains_hz=mains).process(np.sin(2 * np.pi * f_hz * t)).astype(np.float64)
    tail = slice(int(8 * fs), None)  # after the transient
    a = np.column_stack([np.sin(2 * np.pi * f_hz * t[tail]), np.cos(2 * np.pi * f_hz * t[tail])])
    coef = np.linalg.lstsq(a, y[tail], rcond=None)[0]
    return float(20 * np.log10(np.hypot(*coef)))


def filter_response() -> dict[str, dict[str, float]]:
    out = {}
    for fs in (250.0, 360.0, 500.0):
        band = [gain_db(fs, f, 60) for f in np.arange(1.0, 30.01, 1.0)]
        out[f"{fs:g}"] = {"mains50_db": round(gain_db(fs, 50.0, 50), 1),
                          "mains60_db": round(gain_db(fs, 60.0, 60), 1),
                          "passband_1_30hz_min_db": round(min(band), 3),
                          "passband_1_30hz_max_db": round(max(band), 3),
                          "delay_samples": round(Filter(fs, 60).delay_samples, 3)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, default=ROOT.parent / "shared" / "data" / "mitdb")
    ap.add_argument("--nstdb", type=Path, default=ROOT.parent / "shared" / "data" / "nstdb")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    res = {"host_speed": host_speed(args.db, args.repeat), "latency": latency(args.db),
           "quality_flags": quality_flags(args.nstdb),
           "filter": filter_response(),
           "state_bytes": QrsDetector(360.0).state_bytes}
    print(json.dumps(res, indent=2))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Measure host-side decode speed of SAMPLE_BLOCK streams: COBS + CRC + header + numpy samples.

The stream is split into read-sized chunks (like serial reads) and fed to `FrameDecoder`; each
frame's samples are decoded with `decode_samples` and the blocks concatenated into one
(n, leads) array, i.e. everything a host does between `read()` and a numpy signal.

Signals (int16 counts):
  ecg     synthetic ECG, 1 µV/count, baseline near 0 (many 0x00 and 0xFF bytes: realistic)
  random  uniform int16 (few zero bytes: best case for COBS)
  zeros   all zero (lead-off flatline: one COBS block per byte, the worst case)

Usage: python tools/bench_protocol.py [--leads 1 2 3] [--seconds 2] [--chunk 4096]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host_sdk"))
from ecgedge import protocol as p  # noqa: E402

FS_HZ = 500


def synthetic_ecg(n: int, leads: int, rng: np.random.Generator) -> np.ndarray:
    """A crude ECG at FS_HZ in µV: Gaussian P, QRS and T waves at 72 bpm plus noise."""
    t = np.arange(n) / FS_HZ
    phase = (t % (60 / 72)) / (60 / 72)
    beat = (
        120 * np.exp(-(((phase - 0.2) / 0.025) ** 2))
        + 1200 * np.exp(-(((phase - 0.35) / 0.008) ** 2))
        - 200 * np.exp(-(((phase - 0.37) / 0.01) ** 2))
        + 300 * np.exp(-(((phase - 0.6) / 0.05) ** 2))
    )
    out = np.stack([beat * (0.6 + 0.4 * k) for k in range(leads)], axis=1)
    out += rng.normal(0, 15, size=out.shape)
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def make_stream(kind: str, leads: int, n_frames: int, seed: int = 1) -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(seed)
    per = p.max_samples(leads)
    total = per * n_frames
    if kind == "ecg":
        sig = synthetic_ecg(total, leads, rng)
    elif kind == "random":
        sig = rng.integers(-32768, 32768, size=(total, leads), dtype=np.int16)
    else:
        sig = np.zeros((total, leads), dtype=np.int16)
    wire = bytearray()
    for i in range(n_frames):
        blk = sig[i * per:(i + 1) * per]
        payload = p.encode_samples(blk, sample_index=i * per)
        wire += p.encode_frame(p.FrameType.SAMPLE_BLOCK, i & 0xFFFF, payload)
    return bytes(wire), sig


def decode_stream(wire: bytes, leads: int, chunk: int) -> np.ndarray:
    dec = p.FrameDecoder(p.Accept.TO_HOST)
    blocks = []
    for off in range(0, len(wire), chunk):
        for frame in dec.feed(wire[off:off + chunk]):
            if frame.type == p.FrameType.SAMPLE_BLOCK:
                blocks.append(p.decode_samples(frame.payload).samples)
    if dec.stats.dropped:
        raise RuntimeError(f"decoder dropped frames: {dec.stats}")
    return np.concatenate(blocks) if blocks else np.empty((0, leads), np.int16)


def bench(kind: str, leads: int, seconds: float, chunk: int) -> dict[str, float]:
    n_frames = 4000
    wire, sig = make_stream(kind, leads, n_frames)
    out = decode_stream(wire, leads, chunk)
    if not np.array_equal(out, sig):
        raise RuntimeError("decoded samples differ from the encoded ones")
    runs, t0 = 0, time.perf_counter()
    best = float("inf")
    while time.perf_counter() - t0 < seconds or runs < 3:
        t = time.perf_counter()
        decode_stream(wire, leads, chunk)
        best = min(best, time.perf_counter() - t)
        runs += 1
    return {
        "values_per_s": sig.size / best,
        "instants_per_s": sig.shape[0] / best,
        "frames_per_s": n_frames / best,
        "mbyte_per_s": len(wire) / best / 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leads", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--kinds", nargs="+", default=["ecg", "random", "zeros"],
                    choices=["ecg", "random", "zeros"])
    ap.add_argument("--seconds", type=float, default=1.0, help="time per case (best run wins)")
    ap.add_argument("--chunk", type=int, default=4096, help="bytes per feed() call")
    args = ap.parse_args(argv)
    print(f"{'signal':<8}{'leads':>6}{'samples/s (int16 values)':>27}{'instants/s':>14}"
          f"{'frames/s':>11}{'MB/s':>7}")
    for kind in args.kinds:
        for leads in args.leads:
            r = bench(kind, leads, args.seconds, args.chunk)
            print(f"{kind:<8}{leads:>6}{r['values_per_s'] / 1e6:>23.2f} M/s"
                  f"{r['instants_per_s'] / 1e6:>10.2f} M/s{r['frames_per_s'] / 1e3:>9.1f} k"
                  f"{r['mbyte_per_s']:>7.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Write the demo excerpt shipped in the package: host_sdk/ecgedge/data/mitdb119.{hea,dat,atr}.

The first 4 minutes of MIT-BIH Arrhythmia Database record 119, signal 0 (MLII), as a WFDB record
with the original sample values (format 212, 200 adu/mV, baseline 1024), so the virtual device
(`ecgedge sim`, `sim://`) plays exactly the counts of the original record; plus its reference beat
annotations. 119 shows sinus rhythm and episodes of ventricular bigeminy and trigeminy, so the
heart rate and RR intervals of `ecgedge demo` move. About 130 kB.

    python tools/make_demo_excerpt.py [--db ../shared/data/mitdb] [--record 119] [--minutes 4]

The database is ODC-By 1.0; host_sdk/ecgedge/data/README.md carries the attribution and the
citations (from ../shared/data/mitdb/LICENSE-NOTE.txt) and must ship with the excerpt.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import wfdb

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "host_sdk" / "ecgedge" / "data"
MAX_BYTES = 200_000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, default=ROOT.parent / "shared" / "data" / "mitdb")
    ap.add_argument("--record", default="119")
    ap.add_argument("--channel", type=int, default=0)
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    args = ap.parse_args(argv)

    src = args.db / args.record
    rec = wfdb.rdrecord(str(src), channels=[args.channel], physical=False)
    n = int(round(args.minutes * 60 * rec.fs))
    d = rec.d_signal[:n].astype(np.int64)
    name = f"mitdb{args.record}"
    args.out.mkdir(parents=True, exist_ok=True)
    comments = [f"Excerpt of MIT-BIH Arrhythmia Database record {args.record}, signal "
                f"{args.channel} ({rec.sig_name[0]}), samples 0-{n} ({args.minutes:g} min)",
                "PhysioNet mitdb 1.0.0, ODC-By 1.0; see README.md beside this file"]
    wfdb.wrsamp(name, fs=rec.fs, units=rec.units, sig_name=rec.sig_name, d_signal=d,
                fmt=["212"], adc_gain=rec.adc_gain, baseline=rec.baseline,
                write_dir=str(args.out), comments=comments)
    ann = wfdb.rdann(str(src), "atr", sampto=n - 1)
    wfdb.wrann(name, "atr", ann.sample, symbol=ann.symbol, subtype=ann.subtype, chan=ann.chan,
               num=ann.num, aux_note=ann.aux_note, fs=rec.fs, write_dir=str(args.out))

    # Check: the excerpt reads back as the original's first n samples.
    back = wfdb.rdrecord(str(args.out / name), physical=False)
    assert np.array_equal(back.d_signal[:, 0], rec.d_signal[:n, 0])
    files = [args.out / f"{name}.{ext}" for ext in ("hea", "dat", "atr")]
    size = sum(f.stat().st_size for f in files)
    print(f"wrote {', '.join(f.name for f in files)} to {args.out}: {n} samples, "
          f"{len(ann.sample)} annotations, {size} bytes")
    if size > MAX_BYTES:
        print(f"error: {size} bytes > {MAX_BYTES}; shorten --minutes", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

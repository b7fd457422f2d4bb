#!/usr/bin/env python3
"""Benchmark streaming over BLE: samples/s sustained from the virtual peripheral to the SDK over the
in-process bumble link at ATT MTU 247 (docs/protocol.md §13).

The path measured is the whole BLE stack of both ends in one process: the firmware's C device
(`ecgedge.sim.VirtualDevice`, full speed) -> GATT notifications (one frame each) -> bumble host ->
virtual controllers and link -> bumble host -> bleak (`BumbleBleakClient`) -> the `ble://`
transport -> `ecgedge.device.Device` -> ``async for`` over `Device.stream()`. A run streams
`--minutes` of a record (looped); the wall time from the first block to the last gives the rate.
The link cuts of `--cuts` (0 by default) show the cost of reconnect + backfill.

    python tools/bench_ble.py [--record ../shared/data/mitdb/100] [--minutes 10] [--repeat 3]
                              [--cuts 0] [--json out.json]

"samples" are instants x leads (int16 values); one lead is served, so they are equal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any

import ecgedge
from ecgedge.ble import VirtualPeripheral
from ecgedge.sim import load_record

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RECORD = ROOT.parent / "shared" / "data" / "mitdb" / "100"


async def one_run(record: Any, minutes: float, cuts: int, seed: int) -> dict[str, Any]:
    total = int(minutes * 60 * record.fs_hz)
    cut_at = sorted(random.Random(seed).sample(range(total // 10, total * 9 // 10), cuts))
    n = 0
    gaps = 0
    async with VirtualPeripheral(record, speed=None, status_period_ms=0) as per:
        async with ecgedge.connect_async("ble://ecgedge") as dev:
            mtu = dev.transport.mtu
            t0 = None
            async with dev.stream() as s:
                async for item in s:
                    if isinstance(item, ecgedge.Gap):
                        gaps += 1
                        continue
                    if t0 is None:
                        t0 = time.perf_counter()
                        first = item.first_index
                    n = item.end_index
                    if cut_at and n >= cut_at[0]:
                        cut_at.pop(0)
                        await per.cut()
                    if n >= total:
                        break
            elapsed = time.perf_counter() - (t0 or time.perf_counter())
            reconnects = dev.reconnects
            backfilled = dev.backfill_stats.blocks
        notifications = per.notifications
    samples = (n - first) * record.leads
    return dict(samples=samples, seconds=elapsed, samples_per_s=samples / elapsed, mtu=mtu,
                notifications=notifications, gaps=gaps, reconnects=reconnects,
                backfilled_blocks=backfilled)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--record", type=Path, default=DEFAULT_RECORD,
                    help="WFDB record (default ../shared/data/mitdb/100 beside the project)")
    ap.add_argument("--minutes", type=float, default=10.0, help="record minutes per run")
    ap.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    ap.add_argument("--cuts", type=int, default=0, help="link cuts per run (seeded)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    logging.getLogger("bumble").setLevel(logging.ERROR)
    record = load_record(args.record, [0])
    runs = [asyncio.run(one_run(record, args.minutes, args.cuts, seed=i))
            for i in range(args.repeat)]
    best = max(runs, key=lambda r: r["samples_per_s"])
    for r in runs:
        print(f"{r['samples']} samples in {r['seconds']:.2f} s: {r['samples_per_s']:,.0f} "
              f"samples/s, MTU {r['mtu']}, {r['notifications']} notifications, "
              f"{r['reconnects']} reconnects, {r['backfilled_blocks']} blocks backfilled, "
              f"{r['gaps']} gaps")
    print(f"best: {best['samples_per_s']:,.0f} samples/s sustained over the bumble link "
          f"(MTU {best['mtu']}, 1 lead at {record.fs_hz} Hz = "
          f"{best['samples_per_s'] / record.fs_hz:,.0f}x real time)")
    if args.json:
        args.json.write_text(json.dumps(dict(record=str(args.record), runs=runs, best=best),
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

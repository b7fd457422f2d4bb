#!/usr/bin/env python3
"""Benchmark the SDK's stream decode path: wire bytes -> `SampleBlock`s (target >= 5 M samples/s).

Two measurements, each for 1-lead and 2-lead full blocks (115 and 57 instants per frame) built
from ECG counts (the packaged MIT-BIH 119 excerpt; MIT-BIH 100 for 2 leads when
../shared/data is present, else the excerpt twice), fed in 64 KiB chunks:

1. receive path: `ecgedge.device.Receiver.feed` (COBS + CRC + header checks, sequence and
   sample-counter tracking, int16 view, millivolt conversion, `SampleBlock` objects);
2. device: the same bytes through a replaying `Transport`, `ecgedge.device.Device` (reader task,
   dispatch, subscription) and ``async for`` over `Device.stream()`.

"samples" counts every int16 value (instants x leads); instants are also shown.

    python tools/bench_sdk.py [--seconds 3600] [--repeat 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np
import wfdb

from ecgedge import protocol as p
from ecgedge.device import Device, DeviceInfo, Receiver, SampleBlock
from ecgedge.transports.base import Transport

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 65536
TARGET = 5e6


def ecg_counts(leads: int, seconds: float) -> np.ndarray:
    """(n, leads) int16 ECG counts, repeated to `seconds` at 360 Hz."""
    mitdb100 = ROOT.parent / "shared" / "data" / "mitdb" / "100"
    if leads == 2 and mitdb100.with_suffix(".hea").exists():
        rec = wfdb.rdrecord(str(mitdb100), physical=False)
    else:
        from ecgedge.data import demo_record

        rec = wfdb.rdrecord(str(demo_record()), physical=False)
    c = (rec.d_signal - np.asarray(rec.baseline)).astype(np.int16)
    c = np.tile(c, (1, leads))[:, :leads] if c.shape[1] < leads else c[:, :leads]
    n = int(seconds * 360)
    reps = -(-n // len(c))
    return np.ascontiguousarray(np.tile(c, (reps, 1))[:n])


def wire(counts: np.ndarray) -> tuple[bytes, int]:
    """SAMPLE_BLOCK frames of full blocks, as the device sends them; returns (bytes, frames)."""
    per = p.max_samples(counts.shape[1])
    out = bytearray()
    seq = 0
    for i in range(0, len(counts), per):
        out += p.encode_frame(p.FrameType.SAMPLE_BLOCK, seq,
                              p.encode_samples(counts[i:i + per], i))
        seq = (seq + 1) & 0xFFFF
    return bytes(out), seq


def info_fields(leads: int) -> dict:
    return dict(protocol_version=1, fw_major=0, fw_minor=1, fw_patch=0, core_major=0,
                core_minor=1, core_patch=0, leads=leads, model_id=0xF001, sample_rate_hz=360,
                rates_mask=1 << 4, gain_uv_per_count=5.0, capabilities=0x37, mains_hz=60,
                content=0, source=0)


def bench_receiver(data: bytes, leads: int) -> tuple[float, int]:
    rx = Receiver()
    rx.want_samples = True
    rx.set_format(DeviceInfo.from_fields(p.DeviceInfo.parse(p.DeviceInfo.build(
        info_fields(leads)))))
    rx.begin_stream()
    n = 0
    t0 = time.perf_counter()
    for k in range(0, len(data), CHUNK):
        for ev in rx.feed(data[k:k + CHUNK]):
            if type(ev) is SampleBlock:
                n += ev.counts.size
    dt = time.perf_counter() - t0
    assert rx.gaps == 0 and rx.decoder.stats.frames_ok > 0
    return dt, n


class ReplayTransport(Transport):
    """Answers GET_INFO / STOP / START, then plays `data` back in CHUNK-sized reads."""

    def __init__(self, data: bytes, leads: int) -> None:
        super().__init__("replay://")
        self.data, self.leads = data, leads
        self.pos = -1  # -1: not streaming yet
        self.out: list[bytes] = []
        self.dec = p.FrameDecoder(p.Accept.TO_DEVICE)
        self.wake = asyncio.Event()

    async def connect(self) -> None:
        pass

    async def write(self, data: bytes) -> None:
        for f in self.dec.feed(data):
            body: dict | bytes = b""
            if f.type == p.FrameType.GET_INFO:
                body = info_fields(self.leads)
            elif f.type == p.FrameType.TIME_SYNC:
                body = dict(host_time_us=p.TimeSync.parse(f.payload).host_time_us,
                            device_time_us=0, sample_index=0)
            self.out.append(p.encode_frame(p.FrameType.RESPONSE, f.seq,
                                           p.build_response(f.type, 0, body)))
            if f.type == p.FrameType.START_STREAM:
                self.pos = 0
            if f.type == p.FrameType.STOP_STREAM and self.pos >= 0:
                self.pos = len(self.data)
        self.wake.set()

    async def read(self) -> bytes:
        await asyncio.sleep(0)
        while True:
            if self.out:
                return self.out.pop(0)
            if 0 <= self.pos < len(self.data):
                end = self.data.rfind(b"\x00", self.pos, self.pos + CHUNK) + 1  # whole frames,
                chunk = self.data[self.pos:end or len(self.data)]  # so answers fit between
                self.pos += len(chunk)
                return chunk
            self.wake.clear()
            await self.wake.wait()

    async def close(self) -> None:
        pass


async def _device_run(data: bytes, leads: int, total: int) -> tuple[float, int]:
    dev = await Device(ReplayTransport(data, leads)).open()
    n = 0
    try:
        s = dev.stream(start=True)
        async with s:
            t0 = time.perf_counter()
            async for item in s:
                if type(item) is SampleBlock:
                    n += item.counts.size
                    if n >= total:
                        break
                else:
                    raise AssertionError(f"unexpected {item}")
            dt = time.perf_counter() - t0
    finally:
        await dev.close()
    return dt, n


def bench_device(data: bytes, leads: int, total: int) -> tuple[float, int]:
    return asyncio.run(_device_run(data, leads, total))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3600.0,
                    help="ECG per run, seconds at 360 Hz (default 3600)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per case; the best is reported")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)

    results = []
    print(f"SDK stream decode, {args.seconds:g} s of ECG per run, best of {args.repeat}, "
          f"{CHUNK // 1024} KiB reads")
    print(f"{'path':<10} {'leads':>5} {'frames':>8} {'MB':>6} {'M samples/s':>12} "
          f"{'M instants/s':>13} {'us/frame':>9}")
    for leads in (1, 2):
        counts = ecg_counts(leads, args.seconds)
        data, frames = wire(counts)
        for name, fn in (("receiver", lambda: bench_receiver(data, leads)),
                         ("device", lambda: bench_device(data, leads, counts.size))):
            best = min((fn() for _ in range(args.repeat)), key=lambda r: r[0])
            dt, n = best
            assert n == counts.size, (n, counts.size)
            rate = n / dt
            results.append(dict(path=name, leads=leads, frames=frames, bytes=len(data),
                                samples=n, seconds=dt, samples_per_s=rate,
                                instants_per_s=rate / leads, us_per_frame=dt / frames * 1e6))
            print(f"{name:<10} {leads:>5} {frames:>8} {len(data) / 1e6:>6.2f} {rate / 1e6:>12.2f} "
                  f"{rate / leads / 1e6:>13.2f} {dt / frames * 1e6:>9.2f}")
    worst = min(r["samples_per_s"] for r in results)
    verdict = "meets" if worst >= TARGET else "MISSES"
    print(f"slowest: {worst / 1e6:.2f} M samples/s; {verdict} the {TARGET / 1e6:g} M samples/s "
          "target")
    if args.json:
        args.json.write_text(json.dumps(dict(target=TARGET, results=results), indent=2) + "\n")
    return 0 if worst >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Hardware-in-the-loop throughput of the device firmware, and its size.

Builds the QEMU device firmware (`make -C firmware/qemu device`), reports its flash and static
RAM (`arm-none-eabi-size -A`, as tools/bench_firmware.py counts them), then injects a MIT-BIH
record (default: 100, channel 0, the first 30 minutes) from sample 0 through the host SDK
(`ecgedge.validation.hil.inject_record`: `Device.inject`, the flow control of docs/protocol.md
§5.3) and measures the wall time of the SDK's `inject()`, from START_STREAM to STOP_STREAM's answer
(which follows the last beat, §5.4):

  - `qemu_raw`: through QEMU (mps2-an386, UART0 on a TCP socket), raw samples streamed back;
    every sample is checked against the injected counts and every block must arrive in order;
  - `qemu_beats`: through QEMU, beats only (what `ecgedge validate qrs --device qemu://` does);
  - `sim_beats` / `sim_raw`: the same through the virtual device (`ecgedge sim`), for comparison.

Each run also checks that the device's beats equal `ecgedge.core.QrsDetector` on the device's
counts -> mV conversion. Prints a JSON document (and writes it with --json):

    {"device_elf": {"flash_bytes": ..., "static_ram_bytes": ...},
     "runs": {"qemu_raw": {"samples": ..., "wall_s": ..., "samples_per_s": ...,
                           "realtime_factor": ..., "bytes_to_device": ..., ...}, ...}}

QEMU's CMSDK UART model takes one byte per turn of QEMU's main loop, which bounds the link at a
few tens of kB/s whatever the firmware does; the numbers depend on the host and its load.

Usage:
    python tools/bench_hil.py --json hil.json
    python tools/bench_hil.py --minutes 5 --runs qemu_beats,sim_beats --no-build
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import bench_firmware  # noqa: E402  (tools/ is not a package)

from ecgedge import SampleBlock  # noqa: E402
from ecgedge import protocol as p  # noqa: E402
from ecgedge.core import QrsDetector  # noqa: E402
from ecgedge.protocol import Content  # noqa: E402
from ecgedge.sim import counts_to_mv, load_record  # noqa: E402
from ecgedge.transports.qemu import default_elf  # noqa: E402
from ecgedge.validation import hil  # noqa: E402

RUNS = {
    "qemu_raw": ("qemu://", Content.RAW),
    "qemu_beats": ("qemu://", Content.BEATS_ONLY),
    "sim_raw": ("sim://", Content.RAW),
    "sim_beats": ("sim://", Content.BEATS_ONLY),
}


def run_one(url: str, content: Content, counts: np.ndarray, fs: int, gain: float,
            mains: int | None, want_beats: list[int]) -> dict[str, object]:
    blocks: list[SampleBlock] = []
    t0 = time.perf_counter()
    with hil.connect(url, fs_hz=fs, gain_uv_per_count=gain) as dev:
        t_up = time.perf_counter() - t0
        run = hil.inject_record(dev, counts, fs_hz=fs, gain_uv_per_count=gain, mains_hz=mains,
                                content=content, on_block=blocks.append)
    inj = run.report
    ok = run.beats.tolist() == want_beats and run.lost_frames == 0 and run.bad_frames == 0
    if content == Content.RAW:
        index = 0
        for b in blocks:
            ok = ok and b.first_index == index
            index += b.n
        ok = ok and index == len(counts) and np.array_equal(
            np.concatenate([b.counts[:, 0] for b in blocks]), counts)
    wire_in = sum(p.wire_len(6 + 2 * min(p.max_samples(1), len(counts) - i))
                  for i in range(0, len(counts), p.max_samples(1)))
    return {
        "samples": inj.samples,
        "wall_s": round(inj.elapsed_s, 2),
        "samples_per_s": round(inj.samples_per_s),
        "realtime_factor": round(inj.samples / fs / inj.elapsed_s, 1),
        "bytes_to_device": wire_in,
        "bytes_to_device_per_s": round(wire_in / inj.elapsed_s),
        "frames_from_device": run.link["frames_ok"],
        "beats": len(run.beats),
        "connect_s": round(t_up, 2),
        "inject_stats": {"ok": inj.blocks, "busy": inj.busy, "sequence": inj.sequence,
                         "timeouts": inj.timeouts},
        "lost_frames": run.lost_frames,
        "beats_equal_host_and_samples_intact": bool(ok),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--record", type=Path, default=ROOT.parent / "shared" / "data" / "mitdb" / "100",
                    help="WFDB record (default ../shared/data/mitdb/100)")
    ap.add_argument("--channel", type=int, default=0)
    ap.add_argument("--minutes", type=float, default=30.0, help="injected length (default 30)")
    ap.add_argument("--mains", type=int, default=60, choices=(0, 50, 60),
                    help="notch configured on the device (default 60: MIT-BIH; 0 = none)")
    ap.add_argument("--runs", default=",".join(RUNS), help="comma-separated: " + ", ".join(RUNS))
    ap.add_argument("--no-build", action="store_true", help="use the device.elf already built")
    ap.add_argument("--no-install", action="store_true", help="do not apt-get missing tools")
    ap.add_argument("--json", type=Path, help="write the result to this file")
    args = ap.parse_args(argv)
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    for r in runs:
        if r not in RUNS:
            ap.error(f"unknown run {r!r}; choose from {', '.join(RUNS)}")

    ok, why = bench_firmware.ensure_toolchain(install=not args.no_install)
    if not ok:
        print(f"error: {why}", file=sys.stderr)
        return 2
    if not args.no_build:
        res = subprocess.run(["make", "-C", str(bench_firmware.MAKEFILE_DIR), "device"],
                             capture_output=True, text=True, check=False)
        if res.returncode != 0:
            print(f"error: device build failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}",
                  file=sys.stderr)
            return 2
    sizes = bench_firmware.image_sizes(default_elf())

    rec = load_record(args.record, [args.channel])
    counts = rec.counts[: int(round(args.minutes * 60 * rec.fs_hz)), 0]
    mains = args.mains or None
    det = QrsDetector(rec.fs_hz, mains_hz=mains)
    x = counts_to_mv(counts, rec.gain_uv_per_count)
    want = np.concatenate([det.process(x), det.flush()]).tolist()

    results: dict[str, object] = {}
    for name in runs:
        url, content = RUNS[name]
        results[name] = run_one(url, content, counts, rec.fs_hz, rec.gain_uv_per_count, mains,
                                want)
        r = results[name]
        print(f"{name:10s} {r['samples']} samples in {r['wall_s']:6.1f} s = "  # type: ignore[index]
              f"{r['samples_per_s']:>8} samples/s ({r['realtime_factor']}x real time); "  # type: ignore[index]
              f"beats equal host, samples intact: {r['beats_equal_host_and_samples_intact']}",  # type: ignore[index]
              file=sys.stderr)
    out = {
        "device_elf": {**sizes, "path": str(default_elf().relative_to(ROOT)),
                       "budget": {"flash_bytes": bench_firmware.TARGET_FLASH_BYTES,
                                  "static_ram_bytes": bench_firmware.TARGET_STATIC_RAM_BYTES}},
        "input": f"{rec.name} channel {args.channel} ({rec.sig_names[0]}), first "
                 f"{args.minutes:g} min ({len(counts)} samples at {rec.fs_hz} Hz), 1 lead, "
                 f"mains {mains or 'none'}",
        "method": "wall time of ecgedge's Device.inject(), START_STREAM to STOP_STREAM's answer "
                  "(after the last beat), "
                  "injection with flow control (next_index + free_samples), 115-sample blocks; "
                  "QEMU: qemu-system-arm -M mps2-an386, UART0 on a TCP socket (nodelay)",
        "qemu": bench_firmware._tool_version([bench_firmware.QEMU, "--version"]),
        "runs": results,
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0 if all(r["beats_equal_host_and_samples_intact"]  # type: ignore[index]
                    for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Cost of the signal core on a Cortex-M4F, measured on QEMU's mps2-an386.

Builds the bare-metal port (firmware/qemu/Makefile), runs bench.elf under
`qemu-system-arm -M mps2-an386 -icount shift=0`, reads its report over the TCP serial port and
prints/writes JSON:

    {"instructions_per_sample": ..., "method": ..., "flash_bytes": ...,
     "static_ram_bytes": ..., "stack_bytes_estimate": ..., ...}

Method: with `-icount shift=0` QEMU advances its virtual clock by exactly 1 ns per guest
instruction; SysTick counts that clock at the 25 MHz MPS2 core clock, so one tick is 40
instructions. The firmware calibrates this with a block of exactly 1,002,001 instructions and
times three loops over 40 s of MIT-BIH record 100 (empty harness, + ecg_filter_process on 32-sample blocks,
+ ecg_qrs_step); differences of whole-pass tick counts give instructions per sample for the
filter, the QRS detector and both, to within +-2 ticks (+-80 instructions) per pass, i.e.
+-0.006 instructions per sample. Flash and static RAM come from `arm-none-eabi-size -A`.

Usage:
    python tools/bench_firmware.py --json out.json          # o2 (reported), os and o2-fma
    python tools/bench_firmware.py --variants o2 --no-build

Also importable: tests/test_qemu_port.py uses `ensure_toolchain`, `build`, `run_qemu`,
`parse_report` and `image_sizes`.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAKEFILE_DIR = ROOT / "firmware" / "qemu"
BUILD_ROOT = ROOT / "firmware" / "build" / "qemu"
APT_PACKAGES = ["gcc-arm-none-eabi", "libnewlib-arm-none-eabi", "qemu-system-arm"]
CROSS = "arm-none-eabi-"
QEMU = "qemu-system-arm"
MACHINE = "mps2-an386"

#: name -> (optimisation flag, -ffp-contract value); "o2" is the configuration reported on top.
VARIANTS: dict[str, tuple[str, str]] = {
    "o2": ("-O2", "off"),
    "os": ("-Os", "off"),
    "o2-fma": ("-O2", "fast"),
}

TARGET_INSTRUCTIONS_PER_SAMPLE = 150
TARGET_FLASH_BYTES = 128 * 1024
TARGET_STATIC_RAM_BYTES = 48 * 1024

# The int8 beat classifier (ecg_classifier; bench_main.c's bench_classifier pass).
TARGET_CLASSIFIER_INSTRUCTIONS_PER_BEAT = 300_000
TARGET_CLASSIFIER_WEIGHTS_BYTES = 32 * 1024
TARGET_CLASSIFIER_SCRATCH_BYTES = 16 * 1024


# ------------------------------------------------------------------------------------ toolchain


def _newlib_present() -> bool:
    gcc = shutil.which(CROSS + "gcc")
    if gcc is None:
        return False
    out = subprocess.run(
        [gcc, "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard",
         "--specs=nano.specs", "-print-file-name=libc_nano.a"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()
    return os.path.isabs(out) and os.path.exists(out)


def missing_tools() -> list[str]:
    """Debian packages whose tools are not usable here."""
    missing = []
    if shutil.which(CROSS + "gcc") is None or shutil.which(CROSS + "size") is None:
        missing.append("gcc-arm-none-eabi")
    if not _newlib_present():
        missing.append("libnewlib-arm-none-eabi")
    if shutil.which(QEMU) is None:
        missing.append("qemu-system-arm")
    if shutil.which("make") is None:
        missing.append("make")
    return missing


def ensure_toolchain(install: bool = True) -> tuple[bool, str]:
    """Make the cross toolchain and QEMU available, installing them with apt-get if allowed.

    Returns (ok, reason); reason says what is missing and why it could not be installed.
    """
    missing = missing_tools()
    if not missing:
        return True, ""
    if not install:
        return False, f"missing: {', '.join(missing)}"
    apt = shutil.which("apt-get")
    if apt is None:
        return False, f"missing {', '.join(missing)} and no apt-get to install them"
    sudo: list[str] = []
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        if shutil.which("sudo") is None:
            return False, f"missing {', '.join(missing)}; not root and no sudo for apt-get"
        sudo = ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = [*sudo, apt, "install", "-y", "--no-install-recommends", *APT_PACKAGES]
    if "make" in missing:
        cmd.append("make")
    log = []
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    log.append(res.stdout[-2000:] + res.stderr[-2000:])
    if res.returncode != 0:  # package lists may be missing or stale: update once and retry
        upd = subprocess.run([*sudo, apt, "update"], capture_output=True, text=True, env=env,
                             check=False)
        log.append(upd.stderr[-2000:])
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        log.append(res.stdout[-2000:] + res.stderr[-2000:])
    missing = missing_tools()
    if missing:
        return False, f"apt-get could not provide {', '.join(missing)}: {''.join(log)[-1500:]}"
    return True, ""


# ---------------------------------------------------------------------------------------- build


def build(variant: str = "o2", python: str | None = None, record: Path | None = None,
          jobs: int = 2) -> Path:
    """Build hello.elf and bench.elf for `variant`; returns the variant's build directory."""
    opt, contract = VARIANTS[variant]
    cmd = ["make", "-C", str(MAKEFILE_DIR), f"-j{jobs}", f"VARIANT={variant}", f"OPT={opt}",
           f"FPCONTRACT={contract}", f"PYTHON={python or sys.executable}"]
    if record is not None:
        cmd.append(f"ECG_RECORD={record}")
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"firmware build failed ({' '.join(cmd)}):\n{res.stdout[-4000:]}\n"
                           f"{res.stderr[-4000:]}")
    return BUILD_ROOT / variant


# ----------------------------------------------------------------------------------------- sizes


def image_sizes(elf: Path) -> dict[str, int]:
    """Flash and static RAM of an image from `arm-none-eabi-size -A` (SysV, per section).

    flash = everything loaded into the code region (.text incl. rodata and the vector table,
    .ARM.exidx, and the .data initialisers); static RAM = .data + .bss + the reserved main stack.
    """
    out = subprocess.run([CROSS + "size", "-A", "-d", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    sec: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit() and parts[0].startswith("."):
            sec[parts[0]] = int(parts[1])
    flash = sec.get(".text", 0) + sec.get(".ARM.exidx", 0) + sec.get(".data", 0)
    ram = sec.get(".data", 0) + sec.get(".bss", 0) + sec.get(".stack", 0)
    return {
        "flash_bytes": flash,
        "static_ram_bytes": ram,
        "text_bytes": sec.get(".text", 0),
        "data_bytes": sec.get(".data", 0),
        "bss_bytes": sec.get(".bss", 0),
        "stack_reserved_bytes": sec.get(".stack", 0),
    }


def symbol_sizes(elf: Path, names: list[str]) -> dict[str, int]:
    """Code/data size of the named symbols (arm-none-eabi-nm --size-sort)."""
    out = subprocess.run([CROSS + "nm", "-S", "--size-sort", str(elf)], capture_output=True,
                         text=True, check=True).stdout
    sizes: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] in names:
            sizes[parts[3]] = int(parts[1], 16)
    return sizes


# ------------------------------------------------------------------------------------------ QEMU


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class QemuRun:
    returncode: int | None
    uart: str
    stderr: str
    port: int
    command: list[str] = field(default_factory=list)


def qemu_command(elf: Path, port: int, icount: bool) -> list[str]:
    cmd = [QEMU, "-M", MACHINE, "-nographic", "-monitor", "none", "-kernel", str(elf),
           "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on",
           "-semihosting-config", "enable=on,target=native"]
    if icount:
        cmd += ["-icount", "shift=0"]
    return cmd


def _connect(url: str, proc: subprocess.Popen, deadline: float):
    import serial  # pyserial, a dependency of the SDK

    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"QEMU exited ({proc.returncode}) before accepting the connection")
        try:
            return serial.serial_for_url(url, timeout=0.05)
        except (serial.SerialException, OSError) as exc:  # not listening yet
            last = exc
            time.sleep(0.05)
    raise TimeoutError(f"could not connect to {url}: {last}")


def run_qemu(elf: Path, script: list[tuple[str, bytes]], icount: bool = False,
             timeout: float = 120.0, extra_args: list[str] | None = None) -> QemuRun:
    """Boot `elf` in QEMU with UART0 on a TCP server socket and talk to it over pyserial.

    `script` is a list of (text to wait for, bytes to send then); the last entry's text is the
    end of the output, and its bytes the acknowledgement that lets the firmware exit. Reads in
    chunks (pyserial's socket:// reports at most one byte waiting). Returns the exit status
    (the semihosting exit code), everything received and QEMU's stderr (semihosting console).
    """
    for attempt in range(3):
        port = free_port()
        cmd = qemu_command(elf, port, icount) + list(extra_args or [])
        errf = tempfile.TemporaryFile()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=errf, stderr=errf)
        deadline = time.monotonic() + timeout
        received = bytearray()
        try:
            try:
                ser = _connect(f"socket://127.0.0.1:{port}", proc, deadline)
            except RuntimeError:
                errf.seek(0)
                err = errf.read().decode(errors="replace")
                if "Address already in use" in err and attempt < 2:
                    continue  # lost the race for the port: try another
                raise RuntimeError(f"QEMU failed to start: {err}") from None
            try:
                for expect, reply in script:
                    while expect.encode() not in received:
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"waiting for {expect!r}; got {bytes(received)!r}")
                        chunk = ser.read(4096)
                        if chunk:
                            received += chunk
                        elif proc.poll() is not None:
                            raise RuntimeError(
                                f"QEMU exited ({proc.returncode}) while waiting for {expect!r}")
                    if reply:
                        ser.write(reply)
                        ser.flush()
            finally:
                try:
                    rest = ser.read(4096)  # anything after the last expected text
                    received += rest
                except Exception:  # noqa: BLE001 - socket closed by QEMU's exit: nothing more
                    pass
                ser.close()
            rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        errf.seek(0)
        err = errf.read().decode(errors="replace")
        errf.close()
        return QemuRun(rc, received.decode(errors="replace"), err, port, cmd)
    raise RuntimeError("could not find a free TCP port for QEMU")


# ------------------------------------------------------------------------------------ the report


@dataclass
class Report:
    values: dict[str, str]
    beats: list[tuple[int, int, int]]  # (index, quality, searchback)

    def u(self, key: str) -> int:
        return int(self.values[key])


def parse_report(text: str) -> Report:
    values: dict[str, str] = {}
    beats: list[tuple[int, int, int]] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("beat "):
            _, idx, qual, sb = line.split()
            beats.append((int(idx), int(qual), int(sb)))
        elif "=" in line:
            k, v = line.split("=", 1)
            values[k] = v
    return Report(values, beats)


def bench_metrics(rep: Report) -> dict[str, object]:
    """Instructions per sample from the firmware's tick counts (see module docstring)."""
    n = rep.u("n")
    cal_ticks = rep.u("cal_ticks") - rep.u("cal_ref_ticks")
    ipt = rep.u("cal_instructions") / cal_ticks
    t_e, t_f, t_b = rep.u("ticks_empty"), rep.u("ticks_filter"), rep.u("ticks_both")
    per = ipt / n
    worst = (rep.u("max_ticks_both_sample") - rep.u("max_ticks_ref")) * ipt
    return {
        "instructions_per_sample": round((t_b - t_e) * per, 2),
        "instructions_per_sample_filter": round((t_f - t_e) * per, 2),
        "instructions_per_sample_qrs": round((t_b - t_f) * per, 2),
        "instructions_per_sample_harness": round(t_e * per, 2),
        "max_instructions_single_sample": round(worst),
        "max_instructions_single_sample_at": rep.u("max_ticks_at"),
        "max_instructions_single_sample_resolution": round(ipt),
        "resolution_instructions_per_sample": round(2 * ipt / n, 4),
        "calibration": {
            "instructions": rep.u("cal_instructions"),
            "ticks": cal_ticks,
            "instructions_per_tick": round(ipt, 4),
            "expected_instructions_per_tick": 40.0,
        },
        "ticks": {"empty": t_e, "filter": t_f, "both": t_b},
        "samples": n,
        "beats": len(rep.beats),
        "stack_bytes_measured": rep.u("stack_used"),
        "sizeof_ecg_filter_t": rep.u("sizeof_filter"),
        "sizeof_ecg_qrs_t": rep.u("sizeof_qrs"),
    }


def object_flash_bytes(obj: Path) -> int:
    """Code and read-only data of one object file (its .text* and .rodata* sections)."""
    out = subprocess.run([CROSS + "size", "-A", "-d", str(obj)], capture_output=True, text=True,
                         check=True).stdout
    total = 0
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit() and parts[0].startswith((".text", ".rodata")):
            total += int(parts[1])
    return total


def classifier_metrics(rep: Report, bdir: Path | None = None) -> dict[str, object] | None:
    """The classifier pass (bench_classifier in bench_main.c): instructions per beat from the
    ticks of CLF runs over the compiled-in sample beats, the on-target self-test against the TFLM
    outputs, and the flash and RAM it needs. None when the image has no classifier pass."""
    v = rep.values
    if "clf_runs" not in v:
        return None
    ipt = rep.u("cal_instructions") / (rep.u("cal_ticks") - rep.u("cal_ref_ticks"))
    runs = rep.u("clf_runs")
    full = (rep.u("clf_ticks_full") - rep.u("clf_ticks_empty")) * ipt / runs
    backbone = (rep.u("clf_ticks_backbone") - rep.u("clf_ticks_empty")) * ipt / runs
    res: dict[str, object] = {
        "model": v.get("clf_model", "?"),
        "instructions_per_beat": round(full),
        "instructions_per_beat_backbone": round(backbone),
        "instructions_per_beat_head": round(full - backbone),
        "resolution_instructions_per_beat": round(2 * ipt / runs),
        "runs": runs,
        "sample_beats": rep.u("clf_samples"),
        "selftest_beats_differing_from_tflm": rep.u("clf_selftest_failed"),
        "weights_bytes": rep.u("clf_weights_bytes"),
        "scratch_bytes": rep.u("clf_scratch_bytes"),
        "state_bytes": rep.u("clf_sizeof_state"),
    }
    if "feat_ticks_push" in v:  # bench_beatfeat: ecg_beatfeat on the device's sample path
        push = (rep.u("feat_ticks_push") - rep.u("ticks_both")) * ipt / rep.u("n")
        feat = ((rep.u("feat_ticks_beats") - rep.u("feat_ticks_push")) * ipt
                / max(rep.u("feat_beats"), 1))
        res["features_instructions_per_sample"] = round(push, 2)
        res["features_instructions_per_beat"] = round(feat)
        res["features_beats"] = rep.u("feat_beats")
        res["features_state_bytes"] = rep.u("feat_sizeof_state")
        res["instructions_per_beat_with_features"] = round(full + feat)
    if bdir is not None:
        core = bdir / "core"
        if (core / "ecg_model_data.o").exists():
            res["model_tables_flash_bytes"] = object_flash_bytes(core / "ecg_model_data.o")
            res["kernels_code_flash_bytes"] = sum(
                object_flash_bytes(core / f"{m}.o") for m in ("ecg_nn", "ecg_classifier")
                if (core / f"{m}.o").exists())
    res["targets"] = {"instructions_per_beat": TARGET_CLASSIFIER_INSTRUCTIONS_PER_BEAT,
                      "weights_bytes": TARGET_CLASSIFIER_WEIGHTS_BYTES,
                      "scratch_bytes": TARGET_CLASSIFIER_SCRATCH_BYTES}
    res["meets_targets"] = {
        "instructions_per_beat": full <= TARGET_CLASSIFIER_INSTRUCTIONS_PER_BEAT,
        "weights_bytes": rep.u("clf_weights_bytes") <= TARGET_CLASSIFIER_WEIGHTS_BYTES,
        "scratch_bytes": rep.u("clf_scratch_bytes") <= TARGET_CLASSIFIER_SCRATCH_BYTES,
        "bit_exact_on_target": rep.u("clf_selftest_failed") == 0,
    }
    return res


# ------------------------------------------------------------------------------------ µ-trainer


def toy_trainer_set(seed: int, n: int) -> tuple[list[int], list[bytes], list[int]]:
    """The toy label set of tests/c/test_trainer.c and bench_trainer.c (class c = k mod 5 lights
    up embedding inputs 3c..3c+2; noise from their LCG): sample indices, embeddings, classes."""
    state, idx, emb, cls = seed, [], [], []
    for k in range(n):
        c = k % 5
        row = []
        for i in range(16):
            state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
            noise = (state >> 8) % 20
            row.append((30 + noise if i // 3 == c else -128 + noise) & 0xFF)
        idx.append(1000 + 100 * k)
        emb.append(bytes(row))
        cls.append(c)
    return idx, emb, cls


def host_trainer_head(seed: int, n: int) -> str:
    """Hex of the head ecgedge.core.HeadTrainer (the host build of ecg_trainer, default
    configuration, factory start) trains on the toy set: what the device must print."""
    import numpy as np

    from ecgedge.personalize import HeadTrainer

    idx, emb, cls = toy_trainer_set(seed, n)
    t = HeadTrainer()
    t.add_beats(idx, np.frombuffer(b"".join(emb), np.int8).reshape(n, 16))
    t.label(idx, cls)
    return t.train().to_bytes().hex()


def alerts_metrics(rep: Report) -> dict[str, object] | None:
    """The alert-engine pass (bench_alerts.c): instructions per ecg_alerts_beat call and per
    ecg_alerts_tick call (one per device poll) from the ticks, minus the same loops without the
    call; the engine's state size."""
    if "alr_ticks_beats" not in rep.values:
        return None
    ipt = rep.u("cal_instructions") / (rep.u("cal_ticks") - rep.u("cal_ref_ticks"))
    beats, polls = rep.u("alr_beats"), rep.u("alr_polls")
    per_beat = (rep.u("alr_ticks_beats") - rep.u("alr_ticks_beats_empty")) * ipt / beats
    per_poll = (rep.u("alr_ticks_polls") - rep.u("alr_ticks_polls_empty")) * ipt / polls
    return {
        "input": f"{beats} beats (the excerpt's detector beats, replayed; every 7th beat and "
                 "4-beat runs V), all rules on; one tick per 32-sample poll",
        "instructions_per_beat": round(per_beat, 1),
        "instructions_per_poll": round(per_poll, 1),
        "resolution_instructions_per_beat": round(2 * ipt / beats, 2),
        "alerts_raised": rep.u("alr_last_id"),
        "state_bytes": rep.u("alr_sizeof_state"),
    }


def trainer_metrics(rep: Report, bdir: Path | None = None) -> dict[str, object] | None:
    """The µ-trainer pass (bench_trainer.c): instructions of one training on a 5-minute label
    set from the ticks, state size, and the trained bytes against the host build's."""
    v = rep.values
    if "trn_ticks" not in v:
        return None
    ipt = rep.u("cal_instructions") / (rep.u("cal_ticks") - rep.u("cal_ref_ticks"))
    beats, iters = rep.u("trn_beats"), rep.u("trn_iterations")
    instr = (rep.u("trn_ticks") - rep.u("trn_ticks_empty")) * ipt
    res: dict[str, object] = {
        "label_set": f"{beats} labelled beats (5 minutes at 120 bpm; the toy set of "
                     "bench_trainer.c), default configuration",
        "beats": beats,
        "iterations": iters,
        "instructions_per_training": round(instr),
        "instructions_per_beat_per_iteration": round(instr / (beats * (iters + 1)), 1),
        "resolution_instructions": round(2 * ipt),
        "seconds_at_64_mhz_1_ipc": round(instr / 64e6, 3),
        "state_bytes": rep.u("trn_sizeof_state"),
    }
    try:
        res["bit_exact_with_host"] = {
            "head_600": v.get("trn_head") == host_trainer_head(2026, beats),
            "toy_head_60": v.get("trn_toy_head") == host_trainer_head(4242, 60),
        }
    except ImportError as exc:  # ecgedge not installed: report, do not fail
        res["bit_exact_with_host"] = f"not checked ({exc})"
    if bdir is not None and (bdir / "core" / "ecg_trainer.o").exists():
        res["code_flash_bytes"] = object_flash_bytes(bdir / "core" / "ecg_trainer.o")
        su = bdir / "core" / "ecg_trainer.su"
        if su.exists():
            res["stack_bytes_per_function"] = {
                ln.split()[0].split(":")[-1]: int(ln.split()[1])
                for ln in su.read_text().splitlines() if len(ln.split()) >= 2}
    return res


BENCH_SCRIPT = [("\nend\n", b"q")]

METHOD = (
    "qemu-system-arm -M mps2-an386 -icount shift=0 (1 guest instruction = 1 ns of virtual time); "
    "SysTick on the 25 MHz core clock read before/after whole passes over the excerpt; "
    "calibrated in-run with a block of exactly 1,002,001 instructions (1000 NOPs x 1000 "
    "iterations); per-sample cost = (pass with the code - harness-only pass) / samples; "
    "QRS = (filter+QRS pass) - (filter pass)"
)


def run_variant(variant: str, build_first: bool = True, timeout: float = 180.0) -> dict[str, object]:
    bdir = build(variant) if build_first else BUILD_ROOT / variant
    elf = bdir / "bench.elf"
    if not elf.exists():
        raise FileNotFoundError(f"{elf} not built (run without --no-build)")
    run = run_qemu(elf, BENCH_SCRIPT, icount=True, timeout=timeout)
    if run.returncode != 0:
        raise RuntimeError(f"bench.elf exited with {run.returncode}\nUART:\n{run.uart}\n"
                           f"stderr:\n{run.stderr}")
    rep = parse_report(run.uart)
    res: dict[str, object] = {"variant": variant, "cflags": " ".join(
        [VARIANTS[variant][0], f"-ffp-contract={VARIANTS[variant][1]}"])}
    res.update(bench_metrics(rep))
    res.update(image_sizes(elf))
    res["stack_bytes_estimate"] = rep.u("stack_used")
    res["beat_indices"] = [b[0] for b in rep.beats]
    res["code_bytes"] = symbol_sizes(elf, ["ecg_filter_step", "ecg_biquad_step", "ecg_qrs_step",
                                           "ecg_qrs_flush"])
    clf = classifier_metrics(rep, bdir)
    if clf is not None:
        res["classifier"] = clf
    trn = trainer_metrics(rep, bdir)
    if trn is not None:
        res["trainer"] = trn
    alr = alerts_metrics(rep)
    if alr is not None:
        res["alerts"] = alr
    return res


# ------------------------------------------------------------------------------- exact profile

PLUGIN = BUILD_ROOT / "plugin" / "libinsn_profile.so"


def build_plugin() -> Path:
    """Build the host QEMU plugin (firmware/src/ports/qemu_m4/qemu_plugin/insn_profile.c)."""
    res = subprocess.run(["make", "-C", str(MAKEFILE_DIR), "plugin"], capture_output=True,
                         text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"plugin build failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return PLUGIN


def function_symbols(elf: Path) -> list[tuple[int, int, str]]:
    """(start, size, name) of every sized function-like symbol, Thumb bit cleared, sorted."""
    out = subprocess.run([CROSS + "nm", "-S", "-n", "--defined-only", str(elf)],
                         capture_output=True, text=True, check=True).stdout
    best: dict[int, tuple[int, str, str]] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) != 4 or parts[2] not in "TtWw":
            continue
        addr, size, kind, name = int(parts[0], 16) & ~1, int(parts[1], 16), parts[2], parts[3]
        if size == 0:
            continue
        # aliases share an address: prefer a strong global (Default_Handler over its weak names)
        if addr not in best or (best[addr][1] in "Ww" and kind in "Tt"):
            best[addr] = (size, kind, name)
    return sorted((a, sz, nm) for a, (sz, _, nm) in best.items())


def _module_of_symbols(bdir: Path) -> dict[str, str]:
    """Symbol name -> source module, from the variant's object files."""
    owner: dict[str, str] = {}
    for obj in sorted(bdir.glob("*/*.o")):
        out = subprocess.run([CROSS + "nm", "--defined-only", str(obj)], capture_output=True,
                             text=True, check=False).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] in "TtWw":
                owner.setdefault(parts[2], f"{obj.parent.name}/{obj.stem}.c")
    return owner


def _plugin_profile(variant: str, begin: str, end: str, timeout: float
                    ) -> tuple[Path, QemuRun, list[str], dict[str, int]]:
    """Run bench.elf under the insn_profile plugin, armed between the `begin`/`end` marker
    functions. Returns the ELF, its function symbols, the run, the plugin's output lines and the
    instruction count per function (markers removed)."""
    elf = BUILD_ROOT / variant / "bench.elf"
    syms = function_symbols(elf)
    addr = {name: a for a, _, name in syms}
    with tempfile.TemporaryDirectory() as tmp:
        outf = Path(tmp) / "profile.txt"
        limit = max(a + sz for a, sz, _ in syms) + 2
        plugin_arg = (f"{PLUGIN},start={addr[begin]:#x},stop={addr[end]:#x},out={outf},"
                      f"limit={limit:#x}")
        run = run_qemu(elf, BENCH_SCRIPT, icount=False, timeout=timeout,
                       extra_args=["-plugin", plugin_arg])
        if run.returncode != 0 or not outf.exists():
            raise RuntimeError(f"profile run failed ({run.returncode}): {run.stderr[-2000:]}")
        lines = outf.read_text().splitlines()
    starts = [a for a, _, _ in syms]
    counts: dict[str, int] = {}
    for ln in lines[2:]:
        a_s, c_s = ln.split()
        a, c = int(a_s, 16), int(c_s)
        i = bisect.bisect_right(starts, a) - 1
        name = syms[i][2] if i >= 0 and a < syms[i][0] + syms[i][1] else f"?{a:#x}"
        counts[name] = counts.get(name, 0) + c
    return elf, run, lines, counts


def profile_variant(variant: str, timeout: float = 300.0) -> dict[str, object]:
    """Exact instructions per function for the `both` pass, from the insn_profile plugin."""
    bdir = BUILD_ROOT / variant
    elf, run, lines, counts = _plugin_profile(variant, "bench_profile_begin",
                                              "bench_profile_end", timeout)
    n = parse_report(run.uart).u("n")
    head = dict(ln.split() for ln in lines[:2])
    # hottest source lines (addr2line; line numbers are those of the sources just built)
    addrs = [int(ln.split()[0], 16) for ln in lines[2:]]
    per_addr = [int(ln.split()[1]) for ln in lines[2:]]
    locs = subprocess.run([CROSS + "addr2line", "-e", str(elf), *[hex(a) for a in addrs]],
                          capture_output=True, text=True, check=False).stdout.splitlines()
    by_line: dict[str, int] = {}
    for loc, c in zip(locs, per_addr):
        key = loc.split(" ")[0]
        key = str(Path(key).relative_to(ROOT)) if key.startswith(str(ROOT)) else key
        by_line[key] = by_line.get(key, 0) + c
    hot_lines = [{"line": k, "instructions_per_sample": round(v / n, 3)}
                 for k, v in sorted(by_line.items(), key=lambda kv: -kv[1])[:25]]
    owner = _module_of_symbols(bdir)
    markers = counts.pop("bench_profile_begin", 0) + counts.pop("bench_profile_end", 0)
    total = sum(counts.values())
    by_module: dict[str, float] = {}
    rows = []
    for name, c in sorted(counts.items(), key=lambda kv: -kv[1]):
        mod = owner.get(name, "libgcc/libm")
        if mod.startswith("port/"):
            mod = "harness (" + mod + ")"
        by_module[mod] = by_module.get(mod, 0.0) + c / n
        rows.append({"function": name, "module": mod, "instructions_per_sample": round(c / n, 3),
                     "instructions": c})
    return {
        "method": "QEMU TCG plugin insn_profile (built by firmware/qemu/Makefile): one counter per "
                  "guest instruction address, counting while armed between the bench_profile_begin/"
                  "end markers around one `both` pass (filter + QRS + harness); exact counts",
        "armed_intervals": int(head.get("armed_intervals", 0)),
        "samples": n,
        "instructions_per_sample_total_with_harness": round(total / n, 3),
        "marker_instructions": markers,
        "by_module": {k: round(v, 3) for k, v in sorted(by_module.items(), key=lambda kv: -kv[1])},
        "by_function": rows,
        "hot_lines": hot_lines,
    }


def profile_classifier(variant: str, timeout: float = 300.0) -> dict[str, object]:
    """Exact instructions per function of one classifier round over the sample beats
    (bench_clf_profile_begin/end markers), per beat."""
    begin, end = "bench_clf_profile_begin", "bench_clf_profile_end"
    _elf, run, _lines, counts = _plugin_profile(variant, begin, end, timeout)
    beats = parse_report(run.uart).u("clf_samples")
    for marker in (begin, end):
        counts.pop(marker, None)
    total = sum(counts.values())
    return {
        "method": "QEMU TCG plugin insn_profile between bench_clf_profile_begin/end: one "
                  "ecg_classifier_run per sample beat, exact counts",
        "beats": beats,
        "instructions_per_beat_total_with_harness": round(total / beats, 1),
        "by_function": [{"function": k, "instructions_per_beat": round(c / beats, 1)}
                        for k, c in sorted(counts.items(), key=lambda kv: -kv[1])],
    }


def profile_trainer(variant: str, timeout: float = 300.0) -> dict[str, object]:
    """Exact instructions per function of one µ-trainer training on the 5-minute label set
    (bench_trn_profile_begin/end markers, bench_trainer.c)."""
    begin, end = "bench_trn_profile_begin", "bench_trn_profile_end"
    _elf, _run, _lines, counts = _plugin_profile(variant, begin, end, timeout)
    for marker in (begin, end):
        counts.pop(marker, None)
    return {
        "method": "QEMU TCG plugin insn_profile between bench_trn_profile_begin/end: one "
                  "ecg_trainer_train on the 5-minute label set, exact counts",
        "instructions_per_training": sum(counts.values()),
        "by_function": [{"function": k, "instructions": c}
                        for k, c in sorted(counts.items(), key=lambda kv: -kv[1])],
    }


def _tool_version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.splitlines()[0]
    except (OSError, IndexError):
        return "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, help="write the result to this file")
    ap.add_argument("--variants", default="o2,os,o2-fma",
                    help="comma-separated build variants (first is reported on top): "
                         + ", ".join(VARIANTS))
    ap.add_argument("--no-build", action="store_true", help="use the images already built")
    ap.add_argument("--no-install", action="store_true", help="do not apt-get missing tools")
    ap.add_argument("--no-profile", action="store_true",
                    help="skip the per-function profile (QEMU plugin built with the host cc)")
    args = ap.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        if v not in VARIANTS:
            ap.error(f"unknown variant {v!r}; choose from {', '.join(VARIANTS)}")
    ok, why = ensure_toolchain(install=not args.no_install)
    if not ok:
        print(f"error: {why}", file=sys.stderr)
        return 2

    results = {v: run_variant(v, build_first=not args.no_build) for v in variants}
    main_res = results[variants[0]]
    for r in results.values():  # does the build change the detector's output?
        r["beats_equal_to_" + variants[0]] = r["beat_indices"] == main_res["beat_indices"]
    for r in results.values():
        r.pop("beat_indices")
    profile: dict[str, object] | str = "skipped (--no-profile)"
    clf_profile: dict[str, object] | str = "skipped (--no-profile)"
    trn_profile: dict[str, object] | str = "skipped (--no-profile)"
    if not args.no_profile:
        try:
            build_plugin()
            profile = profile_variant(variants[0])
            if "classifier" in main_res:
                clf_profile = profile_classifier(variants[0])
            if "trainer" in main_res:
                trn_profile = profile_trainer(variants[0])
        except Exception as exc:  # noqa: BLE001 - the profile is optional; report why
            profile = f"unavailable: {exc}"
    out: dict[str, object] = {
        "instructions_per_sample": main_res["instructions_per_sample"],
        "instructions_per_sample_filter": main_res["instructions_per_sample_filter"],
        "instructions_per_sample_qrs": main_res["instructions_per_sample_qrs"],
        "method": METHOD,
        "flash_bytes": main_res["flash_bytes"],
        "static_ram_bytes": main_res["static_ram_bytes"],
        "stack_bytes_estimate": main_res["stack_bytes_estimate"],
        "variant": variants[0],
        "fs_hz": 360.0,
        "input": "MIT-BIH record 100, channel 0 (MLII), 20-60 s, int16 counts -> mV "
                 "(count - 1024) / 200; filter mains 60 Hz",
        "targets": {
            "instructions_per_sample": TARGET_INSTRUCTIONS_PER_SAMPLE,
            "flash_bytes": TARGET_FLASH_BYTES,
            "static_ram_bytes": TARGET_STATIC_RAM_BYTES,
        },
        "meets_targets": {
            "instructions_per_sample":
                float(main_res["instructions_per_sample"]) <= TARGET_INSTRUCTIONS_PER_SAMPLE,
            "flash_bytes": int(main_res["flash_bytes"]) <= TARGET_FLASH_BYTES,
            "static_ram_bytes": int(main_res["static_ram_bytes"]) <= TARGET_STATIC_RAM_BYTES,
        },
        "toolchain": {"gcc": _tool_version([CROSS + "gcc", "--version"]),
                      "qemu": _tool_version([QEMU, "--version"])},
        "variants": results,
        "profile": profile,
    }
    if "classifier" in main_res:
        out["classifier"] = dict(main_res["classifier"], profile=clf_profile)
    if "trainer" in main_res:
        out["trainer"] = dict(main_res["trainer"], profile=trn_profile)
    if "alerts" in main_res:
        out["alerts"] = main_res["alerts"]
    text = json.dumps(out, indent=2)
    print(text)
    for v, r in results.items():
        print(f"{v:7s} instructions/sample: filter {r['instructions_per_sample_filter']:7.2f}  "
              f"QRS {r['instructions_per_sample_qrs']:7.2f}  total {r['instructions_per_sample']:7.2f}"
              f" (target <= {TARGET_INSTRUCTIONS_PER_SAMPLE})  flash {r['flash_bytes']} B  "
              f"static RAM {r['static_ram_bytes']} B  stack used {r['stack_bytes_estimate']} B",
              file=sys.stderr)
        clf = r.get("classifier")
        if isinstance(clf, dict):
            print(f"{v:7s} classifier: {clf['instructions_per_beat']} instructions/beat (target <= "
                  f"{TARGET_CLASSIFIER_INSTRUCTIONS_PER_BEAT}), weights {clf['weights_bytes']} B, "
                  f"model tables {clf.get('model_tables_flash_bytes', '?')} B flash, scratch "
                  f"{clf['scratch_bytes']} B, self-test vs TFLM: "
                  f"{clf['selftest_beats_differing_from_tflm']} of {clf['sample_beats']} differ",
                  file=sys.stderr)
            if "features_instructions_per_beat" in clf:
                print(f"{v:7s} beat features: {clf['features_instructions_per_beat']} "
                      f"instructions/beat + {clf['features_instructions_per_sample']} per sample "
                      f"(ring store); with inference {clf['instructions_per_beat_with_features']} "
                      f"instructions/beat; state {clf['features_state_bytes']} B",
                      file=sys.stderr)
        alr = r.get("alerts")
        if isinstance(alr, dict):
            print(f"{v:7s} alert engine: {alr['instructions_per_beat']} instructions/beat, "
                  f"{alr['instructions_per_poll']} per poll, state {alr['state_bytes']} B",
                  file=sys.stderr)
        trn = r.get("trainer")
        if isinstance(trn, dict):
            print(f"{v:7s} µ-trainer: {trn['instructions_per_training']} instructions to train on "
                  f"{trn['beats']} beats x {trn['iterations']} iterations, state "
                  f"{trn['state_bytes']} B, same bytes as the host: {trn.get('bit_exact_with_host')}",
                  file=sys.stderr)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

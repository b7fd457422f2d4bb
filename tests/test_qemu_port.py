"""The bare-metal Cortex-M4F port, run on QEMU's mps2-an386.

Builds the port with Debian's arm-none-eabi-gcc (-Wall -Wextra -Werror, firmware/qemu/Makefile),
boots it in qemu-system-arm with UART0 on a TCP server socket that pyserial's socket:// reaches,
and checks:
  * the hello image: vector table, FPU enable, .data/.bss init, UART TX and RX, semihosting
    console and SYS_EXIT_EXTENDED exit code;
  * the bench image: the beats the device computes on 40 s of MIT-BIH 100 equal those of
    ecgedge.core.QrsDetector (the same C, compiled for the host) on the same int16 -> mV samples,
    the filter's group delay is bit-identical (newlib's and glibc's libm agree), and the image
    fits the flash / static RAM budget;
  * the instruction-count method: the SysTick calibration under -icount shift=0 and the exact
    counts of the project's QEMU plugin agree.
The cost targets themselves (<= 150 instructions per sample) are reported by
tools/bench_firmware.py, not asserted here.

The toolchain is installed with apt-get when missing. Without it the tests skip with the reason,
except under CI (env CI set), where they fail.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest

from support import ROOT, load_tool

HELLO_EXIT_CODE = 42
FLASH_BUDGET = 128 * 1024
STATIC_RAM_BUDGET = 48 * 1024
MAINS_HZ = 60  # firmware/qemu/Makefile MAINS_HZ: MIT-BIH was recorded in the USA


bench = load_tool("bench_firmware")
gen = load_tool("gen_ecg_excerpt")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI must be able to run the QEMU port tests: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def toolchain() -> None:
    ok, why = bench.ensure_toolchain(install=True)
    if not ok:
        _unavailable(f"ARM toolchain / QEMU unavailable: {why}")


@pytest.fixture(scope="module")
def hello_elf(toolchain: None) -> Path:
    import subprocess

    res = subprocess.run(["make", "-C", str(bench.MAKEFILE_DIR), "hello"], capture_output=True,
                         text=True, check=False)
    assert res.returncode == 0, f"hello build failed:\n{res.stdout}\n{res.stderr}"
    return bench.BUILD_ROOT / "o2" / "hello.elf"


@pytest.fixture(scope="module")
def bench_dir(toolchain: None, mitdb: Path) -> Path:
    return bench.build("o2", record=mitdb / "100")


@pytest.fixture(scope="module")
def bench_run(bench_dir: Path):
    run = bench.run_qemu(bench_dir / "bench.elf", bench.BENCH_SCRIPT, icount=True, timeout=180)
    assert run.returncode == 0, f"bench.elf exit {run.returncode}\n{run.uart}\n{run.stderr}"
    return run


def test_hello_boots_and_talks_over_tcp_serial(hello_elf: Path) -> None:
    run = bench.run_qemu(hello_elf, [("ready\n", b"ping\n"), ("bye\n", b"q")], timeout=60)
    assert "ecgedge qemu_m4 hello\n" in run.uart
    assert "fpu=9 bss=0" in run.uart  # .data copied, VFP multiply ran, .bss zeroed
    assert "echo: ping\n" in run.uart  # UART RX
    assert "ecgedge qemu_m4 hello (semihosting)" in run.stderr  # SYS_WRITE0
    assert run.returncode == HELLO_EXIT_CODE, run.stderr  # SYS_EXIT_EXTENDED subcode


def test_all_build_variants_compile_warning_free(toolchain: None, mitdb: Path) -> None:
    """-O2, -Os and -O2 -ffp-contract=fast, all with -Wall -Wextra -Werror."""
    for variant in bench.VARIANTS:
        bdir = bench.build(variant, record=mitdb / "100")
        assert (bdir / "bench.elf").exists() and (bdir / "hello.elf").exists()


def test_bench_beats_equal_host_detector(bench_run, mitdb: Path) -> None:
    from ecgedge.core import QrsDetector

    rep = bench.parse_report(bench_run.uart)
    ex = gen.read_excerpt(mitdb / "100", 20.0, 60.0, channel=0)
    assert (ex.gain_adu_per_mv, ex.baseline_adu, ex.fs_hz) == (200.0, 1024, 360.0)
    assert rep.u("n") == len(ex.counts) == 14400
    assert rep.u("checksum") == gen.checksum32(ex.counts), "firmware excerpt differs from the record"
    assert rep.u("mains_hz") == MAINS_HZ

    x_mv = gen.counts_to_mv(ex.counts, ex.gain_adu_per_mv, ex.baseline_adu)
    det = QrsDetector(360.0, mains_hz=MAINS_HZ)
    got, tail = det.process_beats(x_mv), det.flush_beats()
    host_idx = np.concatenate([got.index, tail.index]).tolist()
    host_q = np.concatenate([got.quality, tail.quality]).tolist()
    dev_idx = [b[0] for b in rep.beats]
    dev_q = [b[1] for b in rep.beats]

    host_delay = struct.unpack("<I", struct.pack("<f", det.delay_samples))[0]
    stale = _stale_extension_hint()
    assert int(rep.values["delay_bits"], 16) == host_delay, (
        "filter group delay differs between device and host (libm or fp-contract?)" + stale)
    assert len(dev_idx) > 30, bench_run.uart
    assert dev_idx == host_idx, f"beat indices differ: device {dev_idx} host {host_idx}{stale}"
    assert dev_q == host_q, f"beat quality flags differ{stale}"


def _stale_extension_hint() -> str:
    """Point at a host extension older than the core sources, the usual cause of a mismatch."""
    import ecgedge

    exts = list(Path(ecgedge.__file__).parent.glob("_core*.so")) + list(
        Path(ecgedge.__file__).parent.glob("_core*.pyd"))
    core = list((ROOT / "firmware" / "src" / "core").glob("*.c")) + list(
        (ROOT / "firmware" / "include" / "ecg").glob("*.h"))
    if exts and core and max(p.stat().st_mtime for p in core) > min(p.stat().st_mtime for p in exts):
        return ("\n(note: ecgedge._core is older than firmware/src/core; rebuild it with "
                "`pip install -e .` or `python setup.py build_ext --inplace`)")
    return ""


def test_bench_image_fits_budget(bench_dir: Path, bench_run) -> None:
    sizes = bench.image_sizes(bench_dir / "bench.elf")
    assert sizes["flash_bytes"] <= FLASH_BUDGET, sizes
    assert sizes["static_ram_bytes"] <= STATIC_RAM_BUDGET, sizes
    rep = bench.parse_report(bench_run.uart)
    # the painted stack never reached its limit
    assert 0 < rep.u("stack_used") < rep.u("stack_size") == sizes["stack_reserved_bytes"]


def test_icount_systick_calibration(bench_run) -> None:
    """Under -icount shift=0, one 25 MHz SysTick tick is exactly 40 guest instructions."""
    rep = bench.parse_report(bench_run.uart)
    ticks = rep.u("cal_ticks") - rep.u("cal_ref_ticks")
    assert rep.u("cal_instructions") == 1_002_001
    assert abs(rep.u("cal_instructions") / ticks - 40.0) < 0.01, (ticks, rep.values)
    m = bench.bench_metrics(rep)
    assert 0 < m["instructions_per_sample_filter"] < m["instructions_per_sample"]


def test_plugin_counts_agree_with_systick(bench_dir: Path, bench_run) -> None:
    """The project's QEMU TCG plugin counts the `both` pass exactly; SysTick must agree."""
    try:
        bench.build_plugin()
    except RuntimeError as exc:
        _unavailable(f"could not build the QEMU plugin with the host C compiler: {exc}")
    prof = bench.profile_variant("o2")
    assert prof["armed_intervals"] == 1
    rep = bench.parse_report(bench_run.uart)
    n = rep.u("n")
    systick = rep.u("ticks_both") * 40.0 / n  # includes the harness, like the profile
    assert abs(prof["instructions_per_sample_total_with_harness"] - systick) < 0.05, (prof, systick)
    funcs = {r["function"] for r in prof["by_function"]}
    assert {"ecg_biquad_process", "ecg_qrs_process"} <= funcs

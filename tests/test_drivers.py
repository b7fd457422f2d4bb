"""The port-independent front-end drivers (firmware/src/drivers: MAX30003, AD8232).

The ESP32-S3 and Apollo3 ports cannot be built on these machines (no Xtensa toolchain, no
PlatformIO registry), so everything of the front ends that is not hardware glue lives in these
drivers, and is checked here:

  * `tests/c/test_drivers.c` (register values, SPI bytes, FIFO decoding, scaling, timer periods
    against values worked out from the datasheets; Heart Rate Measurement values; the ports' link,
    start-up and attachment logic on a real device) built with the host compiler under ASan and
    UBSan, warnings as errors, and run (`make -C tests/c drivers` does the same from a shell);
  * the drivers compile warning-free for the Cortex-M4F (arm-none-eabi-gcc, the Apollo3's core and
    the QEMU port's), and their objects call no heap function and hold no mutable global state.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from test_c_core import HEAP_FUNCTIONS, MUTABLE_DATA_TYPES, SANITIZE, WARNINGS, _compiler
from test_qemu_port import _unavailable, bench

ROOT = Path(__file__).resolve().parents[1]
INCLUDES = [f"-I{ROOT / 'firmware' / 'include'}", f"-I{ROOT / 'firmware' / 'src' / 'drivers'}"]
DRIVER_SOURCES = sorted((ROOT / "firmware" / "src" / "drivers").glob("*.c"))
CORE_SOURCES = sorted((ROOT / "firmware" / "src" / "core").glob("*.c"))
TEST_SOURCE = ROOT / "tests" / "c" / "test_drivers.c"
CORTEX_M4F = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
TIMEOUT_S = 120


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=TIMEOUT_S)


def test_driver_unit_tests_pass_under_address_and_undefined_behaviour_sanitizers(
        tmp_path: Path) -> None:
    assert DRIVER_SOURCES, "no driver sources found in firmware/src/drivers"
    exe = tmp_path / "test_drivers"
    cmd = [*_compiler(), *WARNINGS, "-O1", "-g", *SANITIZE, *INCLUDES,
           *map(str, DRIVER_SOURCES), *map(str, CORE_SOURCES), str(TEST_SOURCE), "-lm",
           "-o", str(exe)]
    build = _run(cmd)
    assert build.returncode == 0, f"$ {shlex.join(cmd)}\n{build.stdout}\n{build.stderr}"
    proc = _run([str(exe)])
    lines = proc.stdout.strip().splitlines()
    failures = [ln for ln in lines if ln.startswith("FAIL")]
    assert proc.returncode == 0, "\n".join(failures) + f"\n{proc.stdout}\n{proc.stderr}"
    assert lines and re.fullmatch(r"[1-9]\d* passed, 0 failed", lines[-1]), proc.stdout
    assert "runtime error" not in proc.stderr, proc.stderr


def test_drivers_compile_for_cortex_m4f_without_heap_or_mutable_globals(tmp_path: Path) -> None:
    ok, why = bench.ensure_toolchain(install=True)
    if not ok:
        _unavailable(f"ARM toolchain unavailable: {why}")
    cc = shutil.which(bench.CROSS + "gcc")
    nm = shutil.which(bench.CROSS + "nm")
    assert cc and nm, "ensure_toolchain reported the ARM toolchain present but it is not on PATH"
    problems = []
    for src in DRIVER_SOURCES:
        obj = tmp_path / (src.stem + ".o")
        # -O0 keeps every call; -Wvla and -Wconversion on top of the project's warning set
        cmd = [cc, *CORTEX_M4F, *WARNINGS, "-Wvla", "-Wconversion", "-O0", *INCLUDES, "-c",
               str(src), "-o", str(obj)]
        proc = _run(cmd)
        assert proc.returncode == 0, f"$ {shlex.join(cmd)}\n{proc.stdout}\n{proc.stderr}"
        for line in _run([nm, str(obj)]).stdout.splitlines():
            parts = line.split()
            kind, name = parts[-2], parts[-1]
            if kind == "U" and name in HEAP_FUNCTIONS:
                problems.append(f"{src.name}: calls {name}")
            if kind in MUTABLE_DATA_TYPES:
                problems.append(f"{src.name}: mutable global/static {name} ({kind})")
    assert not problems, "\n".join(problems)


def test_firmware_heart_rate_values_equal_the_host_encoder(tmp_path: Path) -> None:
    """The ports' C encoder and `ecgedge.ble.gatt.hrm_from_rr` (the virtual peripheral's) give
    the same bytes for every table rate and RR intervals 0..2000 samples plus a doubling tail."""
    from ecgedge.ble.gatt import hrm_from_rr

    exe = tmp_path / "hrm_table"
    cmd = [*_compiler(), *WARNINGS, "-O1", *INCLUDES, *map(str, DRIVER_SOURCES),
           *map(str, CORE_SOURCES), str(ROOT / "tests" / "c" / "hrm_table.c"), "-lm", "-o", str(exe)]
    build = _run(cmd)
    assert build.returncode == 0, f"$ {shlex.join(cmd)}\n{build.stdout}\n{build.stderr}"
    proc = _run([str(exe)])
    assert proc.returncode == 0, proc.stderr
    rows = [line.split(" ") for line in proc.stdout.splitlines()]
    assert len(rows) > 8 * 2000
    mismatches = []
    for fs, rr, value in rows:
        want = hrm_from_rr(int(rr), int(fs))
        if bytes.fromhex(value) != (want or b""):
            mismatches.append(f"fs={fs} rr={rr}: firmware {value}, host {want!r}")
    assert not mismatches, "\n".join(mismatches[:20])

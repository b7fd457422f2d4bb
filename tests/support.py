"""Helpers shared by the Python test files (not a test module itself).

  * the framework-free C test programs of `tests/c` (each prints one "ok"/"FAIL" line per test,
    then "N passed, M failed"): the compiler lookup, the flag sets, building one under ASan/UBSan
    and reading its result;
  * `load_tool`: import a script of `tools/` (not a package) as a module.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = ROOT / "firmware" / "include"
CORE_SOURCES = sorted((ROOT / "firmware" / "src" / "core").glob("*.c"))
SAN_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1", "-g",
             "-fsanitize=address,undefined,float-cast-overflow", "-fno-sanitize-recover=all",
             "-fno-omit-frame-pointer"]
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wconversion",
          "-Wsign-conversion", "-Wshadow", "-Wvla"]
CORTEX_M4 = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]
#: sanitizer options of the C test programs: stop at the first error, no leak report
SAN_OPTIONS = dict(ASAN_OPTIONS="detect_leaks=0:halt_on_error=1",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
#: the last line of a C test program that passed
PASSED = r"[1-9]\d* passed, 0 failed"


def cc() -> str:
    """The host C compiler; skips the test when there is none."""
    found = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if found is None:
        pytest.skip("no C compiler on PATH")
    return found


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    """Run `cmd` in the project root, text output captured; 180 s unless `timeout` is given."""
    kw.setdefault("timeout", 180)
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, **kw)


def build_sanitized(exe: Path, sources: Iterable[Path], timeout: float = 180) -> Path:
    """Compile and link `sources` (core sources and one `tests/c` program) under ASan/UBSan with
    warnings as errors into `exe`."""
    cmd = [cc(), *SAN_FLAGS, f"-I{INCLUDE}", *map(str, sources), "-lm", "-o", str(exe)]
    r = run(cmd, timeout=timeout)
    assert r.returncode == 0, f"compile failed:\n{' '.join(cmd)}\n{r.stderr}"
    return exe


def run_c_tests(exe: Path, timeout: float = 180) -> list[str]:
    """Run a sanitized C test program and assert it passed: exit 0, a last line "N passed, 0
    failed" with N >= 1, no sanitizer report. Returns its output lines."""
    r = run([str(exe)], env={**os.environ, **SAN_OPTIONS}, timeout=timeout)
    lines = r.stdout.strip().splitlines()
    failures = [ln for ln in lines if not ln.startswith(("ok   ", "sizeof("))]
    assert r.returncode == 0, "\n".join(failures) + "\n" + r.stderr[-4000:]
    assert lines and re.fullmatch(PASSED, lines[-1]), r.stdout[-4000:]
    assert "runtime error" not in r.stderr
    return lines


def print_c_summary(label: str, lines: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Show a C program's result line and the state sizes it reports ("sizeof(...)" lines)."""
    with capsys.disabled():
        print(f"\n[C {label}] {lines[-1] if lines else '(no output)'}; "
              + "; ".join(ln for ln in lines if ln.startswith("sizeof(")))


def load_tool(name: str) -> ModuleType:
    """Import `tools/<name>.py` as a module (registered in sys.modules, as dataclasses need)."""
    spec = importlib.util.spec_from_file_location(f"_ecgedge_tools_{name}",
                                                  ROOT / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod

"""The portable C core, tested directly in C with the host compiler, under ASan and UBSan.

`tests/c/test_core.c` is a framework-free C99 test program (see its header). This module builds it
together with `firmware/src/core/*.c` with warnings as errors and the address and undefined-
behaviour sanitizers, runs it, and requires exit status 0 and the closing line "N passed, 0 failed".
`make -C tests/c` does the same from a shell (keep the flags below and the Makefile in step).

It also checks two rules of the core that a unit test cannot see from inside: no heap and no
mutable global state (symbol table of each object file), and no recursion (GCC call graph).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INCLUDE_DIR = ROOT / "firmware" / "include"
CORE_SOURCES = sorted((ROOT / "firmware" / "src" / "core").glob("*.c"))
TEST_SOURCE = ROOT / "tests" / "c" / "test_core.c"

WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
SANITIZE = ["-fsanitize=address,undefined,float-cast-overflow", "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer"]
RUN_TIMEOUT_S = 120


def _compiler() -> list[str]:
    """The host C compiler ($CC, else cc, gcc or clang); skip when there is none."""
    env_cc = shlex.split(os.environ.get("CC", ""))
    if env_cc and shutil.which(env_cc[0]):
        return env_cc
    for name in ("cc", "gcc", "clang"):
        path = shutil.which(name)
        if path:
            return [path]
    pytest.skip("no C compiler found (set CC or install cc/gcc/clang): C core tests not built")


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, **kw)


def _output(proc: subprocess.CompletedProcess[str]) -> str:
    """Failed checks first (lines that are not "ok ..."), then the full output."""
    failures = [ln for ln in proc.stdout.splitlines() if not ln.startswith("ok   ")]
    return ("--- failures and notes ---\n" + "\n".join(failures)
            + f"\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}")


@pytest.fixture(scope="module")
def core_test_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = _compiler()
    exe = tmp_path_factory.mktemp("c_core") / "test_core"
    cmd = [*cc, *WARNINGS, "-O1", "-g", *SANITIZE, f"-I{INCLUDE_DIR}",
           *map(str, CORE_SOURCES), str(TEST_SOURCE), "-lm", "-o", str(exe)]
    proc = _run(cmd, timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, (
        f"building the C unit tests failed (warnings are errors):\n$ {shlex.join(cmd)}\n"
        + _output(proc))
    return exe


def test_c_unit_tests_pass_under_address_and_undefined_behaviour_sanitizers(
        core_test_binary: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = dict(os.environ,
               # The core never allocates; leak checking only breaks under ptrace (debuggers, CI
               # sandboxes), so it is off. Every other error aborts with a report.
               ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    proc = _run([str(core_test_binary)], env=env, timeout=RUN_TIMEOUT_S)
    lines = proc.stdout.strip().splitlines()
    sizes = [ln.strip() for ln in lines if ln.strip().startswith("sizeof(")]
    with capsys.disabled():  # shown with or without -s
        print(f"\n[C core] {lines[-1] if lines else '(no output)'}; " + "; ".join(sizes))
    assert proc.returncode == 0, f"C unit tests failed (exit {proc.returncode}):\n" + _output(proc)
    assert lines and re.fullmatch(r"[1-9]\d* passed, 0 failed", lines[-1]), _output(proc)
    assert "runtime error" not in proc.stderr, _output(proc)
    assert len(sizes) == 2, _output(proc)


def _object_files(tmp_path: Path, *extra: str) -> list[Path]:
    cc = _compiler()
    objs = []
    for src in CORE_SOURCES:
        obj = tmp_path / (src.stem + ".o")
        cmd = [*cc, *WARNINGS, "-Wvla", "-O2", *extra, f"-I{INCLUDE_DIR}", "-c", str(src),
               "-o", str(obj)]
        proc = _run(cmd, timeout=RUN_TIMEOUT_S)
        assert proc.returncode == 0, f"$ {shlex.join(cmd)}\n" + _output(proc)
        objs.append(obj)
    return objs


HEAP_FUNCTIONS = {"malloc", "calloc", "realloc", "free", "aligned_alloc", "posix_memalign",
                  "memalign", "valloc", "pvalloc", "reallocarray", "alloca", "sbrk", "mmap"}
# nm symbol types of writable data: BSS, initialised data, common, small data (either binding).
MUTABLE_DATA_TYPES = set("BbDdCGgSs")


def test_core_has_no_heap_calls_no_vlas_and_no_mutable_global_state(tmp_path: Path) -> None:
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) not found: cannot inspect the core's symbol tables")
    problems = []
    # -O0 so that no call is optimised away; -Wvla -Werror: a variable-length array fails here.
    for obj in _object_files(tmp_path, "-O0"):
        proc = _run([nm, str(obj)], timeout=60)
        assert proc.returncode == 0, _output(proc)
        for line in proc.stdout.splitlines():
            parts = line.split()
            if len(parts) < 2:
                continue
            kind, name = parts[-2], parts[-1]
            if kind == "U" and name.split("@")[0] in HEAP_FUNCTIONS:
                problems.append(f"{obj.stem}.c calls {name}")
            if kind in MUTABLE_DATA_TYPES:
                problems.append(f"{obj.stem}.c has mutable static/global data '{name}' ({kind})")
    assert not problems, "the core must not allocate nor keep global state:\n" + "\n".join(problems)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Elementary cycles found by depth-first search (one per back edge)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    return found


def test_cycle_finder_reports_self_and_mutual_recursion() -> None:
    assert _cycles({"a": {"a"}}) == [["a", "a"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_core_call_graph_has_no_recursion(tmp_path: Path) -> None:
    cc = _compiler()
    probe = _run([*cc, "-fcallgraph-info", "-x", "c", "-c", "/dev/null", "-o",
                  str(tmp_path / "probe.o")], timeout=60)
    if probe.returncode != 0:
        pytest.skip("this compiler has no -fcallgraph-info (GCC >= 10 needed) to check recursion")
    # -O0: no inlining, so every call in the source is an edge. Static functions are named
    # "file:function", external ones by their name, so the per-file graphs join into one.
    _object_files(tmp_path, "-O0", "-fcallgraph-info")
    edges: dict[str, set[str]] = {}
    edge_re = re.compile(r'edge:\s*\{\s*sourcename:\s*"([^"]+)"\s*targetname:\s*"([^"]+)"')
    ci_files = sorted(tmp_path.glob("*.ci"))
    assert len(ci_files) >= len(CORE_SOURCES), sorted(p.name for p in tmp_path.iterdir())
    for ci in ci_files:
        for src, dst in edge_re.findall(ci.read_text()):
            edges.setdefault(src, set()).add(dst)
    assert edges, "no call edges parsed from the call graph"
    cycles = _cycles(edges)
    assert not cycles, "recursion in the core:\n" + "\n".join(" -> ".join(c) for c in cycles)

"""platformio.ini: the ESP32-S3 and Apollo3 envs, checked offline with PlatformIO Core itself.

These envs are built by users (`pio run -e esp32s3`, `pio run -e apollo3`): the machines that run
CI cannot reach the PlatformIO registry, GitHub or the Xtensa toolchain. What is checked here:

  * `pio project config --json-output` (PlatformIO Core from PyPI, the `test` extra) parses the
    file without network access, and `--lint` finds no error;
  * each env names its platform, board, framework, BLE library and port;
  * the source filter, evaluated with PlatformIO's own matcher (`platformio.fs.match_src_files`,
    the function `pio run` uses), selects every portable core source, the drivers and exactly the
    env's own port, with a setup()/loop() sketch entry;
  * every file the config names (partition table, include directories) exists, and every quoted
    `#include` in a port resolves to a file of the repository.

PlatformIO writes its state to a throw-away core directory (PLATFORMIO_CORE_DIR), telemetry off.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC_DIR = ROOT / "firmware" / "src"
PORTS = {"esp32s3": "ports/esp32s3", "apollo3": "ports/apollo3"}
SOURCE_EXTS = ["c", "cc", "cpp", "cxx", "S", "s"]


def _pio(tmp_path_factory: pytest.TempPathFactory, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        import platformio  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("CI must have PlatformIO Core: pip install -e '.[test]'")
        pytest.skip("PlatformIO Core not installed (pip install platformio)")
    env = dict(os.environ,
               PLATFORMIO_CORE_DIR=str(tmp_path_factory.mktemp("pio_core")),
               PLATFORMIO_SETTING_ENABLE_TELEMETRY="No",
               PLATFORMIO_NO_ANSI="true")
    return subprocess.run([sys.executable, "-m", "platformio", "project", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    proc = _pio(tmp_path_factory, "config", "--json-output")
    assert proc.returncode == 0, f"pio project config failed:\n{proc.stdout}\n{proc.stderr}"
    return {section: dict(options) for section, options in json.loads(proc.stdout)}


def _as_list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


def test_pio_parses_the_file_offline_without_lint_errors(
        tmp_path_factory: pytest.TempPathFactory, config: dict[str, dict[str, Any]]) -> None:
    assert {"env:esp32s3", "env:apollo3"} <= set(config)
    proc = _pio(tmp_path_factory, "config", "--lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "free from linting errors" in proc.stdout, proc.stdout + proc.stderr
    assert Path(config["platformio"]["src_dir"]) == SRC_DIR
    assert Path(config["platformio"]["include_dir"]) == ROOT / "firmware" / "include"


def test_esp32s3_env_uses_espressif32_arduino_and_nimble(
        config: dict[str, dict[str, Any]]) -> None:
    env = config["env:esp32s3"]
    assert env["platform"].split("@")[0] == "espressif32"
    assert env["board"] == "esp32-s3-devkitc-1"
    assert env["framework"] == ["arduino"]
    assert any("NimBLE-Arduino" in dep for dep in _as_list(env["lib_deps"]))
    assert (ROOT / env["board_build.partitions"]).is_file()
    # USB-CDC on the native USB port is `Serial`
    assert "-DARDUINO_USB_CDC_ON_BOOT=1" in _as_list(env["build_flags"])


def test_apollo3_env_uses_the_apollo3blue_platform_and_sparkfun_core(
        config: dict[str, dict[str, Any]]) -> None:
    env = config["env:apollo3"]
    assert env["platform"] == "https://github.com/nigelb/platform-apollo3blue.git"
    assert env["board"] == "SparkFun_RedBoard_Artemis_ATP"
    assert env["framework"] == ["arduino"]
    packages = _as_list(env["platform_packages"])
    assert any(p.startswith("framework-arduinoapollo3@https://github.com/sparkfun/Arduino_Apollo3")
               for p in packages), packages
    assert any("ArduinoBLE" in dep for dep in _as_list(env["lib_deps"]))
    # the image must end below the personalization slots (port_config.h; SVL image base 0x10000)
    slots = re.search(r"#define PORT_SLOT_HEAD_A_ADDR (0x[0-9A-Fa-f]+)u",
                      (SRC_DIR / "ports" / "apollo3" / "port_config.h").read_text())
    assert slots, "PORT_SLOT_HEAD_A_ADDR not found in the Apollo3 port_config.h"
    assert int(env["board_upload.maximum_size"]) == int(slots.group(1), 16) - 0x10000


@pytest.mark.parametrize("name", sorted(PORTS))
def test_source_filter_selects_the_core_the_drivers_and_only_its_own_port(
        config: dict[str, dict[str, Any]], name: str) -> None:
    from platformio.fs import match_src_files

    env = config[f"env:{name}"]
    selected = {Path(p).as_posix()
                for p in match_src_files(str(SRC_DIR), env["build_src_filter"], SOURCE_EXTS)}
    assert selected, "the filter selects nothing"
    missing = sorted(p for p in selected if not (SRC_DIR / p).is_file())
    assert not missing, missing
    core = {f"core/{p.name}" for p in (SRC_DIR / "core").glob("*.c")}
    drivers = {f"drivers/{p.name}" for p in (SRC_DIR / "drivers").glob("*.c")}
    assert core and core <= selected, sorted(core - selected)
    assert drivers and drivers <= selected, sorted(drivers - selected)
    port = {p for p in selected if p.startswith(PORTS[name] + "/")}
    assert port, f"nothing of {PORTS[name]} is built"
    others = selected - core - drivers - port
    assert not others, f"sources outside the core, the drivers and the port: {sorted(others)}"
    sketch = [p for p in port if re.search(r"^void\s+setup\s*\(", (SRC_DIR / p).read_text(),
                                            re.MULTILINE)]
    assert len(sketch) == 1, f"exactly one Arduino setup()/loop() file expected, found {sketch}"


@pytest.mark.parametrize("name", sorted(PORTS))
def test_port_quoted_includes_resolve(config: dict[str, dict[str, Any]], name: str) -> None:
    env = config[f"env:{name}"]
    include_dirs = [ROOT / "firmware" / "include", SRC_DIR / PORTS[name]]
    include_dirs += [ROOT / flag[2:] for flag in _as_list(env["build_flags"])
                     if flag.startswith("-I")]
    for d in include_dirs:
        assert d.is_dir(), f"include directory {d} does not exist"
    unresolved = []
    for src in sorted((SRC_DIR / PORTS[name]).iterdir()):
        if src.suffix not in {".c", ".cpp", ".h", ".hpp"}:
            continue
        for inc in re.findall(r'^\s*#\s*include\s+"([^"]+)"', src.read_text(), re.MULTILINE):
            if not any((d / inc).is_file() for d in include_dirs):
                unresolved.append(f"{src.name}: {inc}")
    assert not unresolved, unresolved


def test_esp32s3_partition_table_holds_the_storage_slots_the_port_uses(
        config: dict[str, dict[str, Any]]) -> None:
    table = ROOT / config["env:esp32s3"]["board_build.partitions"]
    rows = [[f.strip() for f in line.split(",")] for line in table.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]
    parts = {r[0]: (r[1], r[2], int(r[3], 16), int(r[4], 16)) for r in rows}
    hal = (SRC_DIR / "ports" / "esp32s3" / "hal_esp32s3.cpp").read_text()
    labels = re.search(r"SLOT_LABELS\[\]\s*=\s*\{([^}]*)\}", hal)
    assert labels, "SLOT_LABELS not found in hal_esp32s3.cpp"
    for label in re.findall(r'"([^"]+)"', labels.group(1)):
        assert label in parts, f"partition {label} missing from {table.name}"
        kind, subtype, _, size = parts[label]
        assert (kind, subtype) == ("data", "0x40"), parts[label]
        assert size % 0x1000 == 0, f"{label}: not whole 4 KB sectors"
    spans = sorted((off, off + size, name) for name, (_, _, off, size) in parts.items())
    for (_, end, a), (start, _, b) in zip(spans, spans[1:]):
        assert end <= start, f"partitions {a} and {b} overlap"
    assert spans[-1][1] <= 8 * 1024 * 1024, "the table does not fit the DevKitC-1's 8 MB flash"
    for name, (kind, _, off, _) in parts.items():
        if kind == "app":
            assert off % 0x10000 == 0, f"app partition {name} not 64 KB aligned"


def test_apollo3_storage_slots_are_whole_pages_at_the_top_of_flash() -> None:
    text = (SRC_DIR / "ports" / "apollo3" / "port_config.h").read_text()
    val = {k: int(v, 16) for k, v in re.findall(r"#define PORT_SLOT_(\w+) (0x[0-9A-Fa-f]+)u", text)}
    slots = sorted([(val["HEAD_A_ADDR"], val["HEAD_BYTES"]), (val["HEAD_B_ADDR"], val["HEAD_BYTES"]),
                    (val["LABELS_ADDR"], val["LABELS_BYTES"])])
    page = 8 * 1024  # Apollo3 flash page
    for (addr, size), nxt in zip(slots, slots[1:] + [(1024 * 1024, 0)]):
        assert addr % page == 0 and size % page == 0, f"slot at {addr:#x} is not whole pages"
        assert addr + size <= nxt[0], f"slot at {addr:#x} overlaps the next one or ends past 1 MB"

"""Build the firmware's portable C core into the `ecgedge._core` extension.

Everything else about the package is declared in pyproject.toml.
"""

from pathlib import Path

from setuptools import Extension, setup

ROOT = Path(__file__).parent
CORE_SOURCES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "firmware/src/core").glob("*.c"))

setup(
    ext_modules=[
        Extension(
            "ecgedge._core",
            sources=["host_sdk/ecgedge/_coremodule.c", *CORE_SOURCES],
            include_dirs=["firmware/include"],
            # -ffp-contract=off: no fused multiply-add, as the device build (firmware/qemu/Makefile),
            # so float results (e.g. a µ-trainer head) are the device's on FMA hosts too
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-fno-strict-aliasing",
                                "-ffp-contract=off"],
        )
    ]
)

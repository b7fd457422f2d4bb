"""Shared fixtures: where the reference ECG data lives (../shared/data beside the project root)."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = PROJECT_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The PhysioNet databases (mitdb/, nstdb/); tests that need them skip with a reason if absent."""
    if not (DATA_DIR / "mitdb" / "100.hea").exists():
        pytest.skip(f"reference ECG data not found at {DATA_DIR} (expected ../shared/data)")
    return DATA_DIR


@pytest.fixture(scope="session")
def mitdb(data_dir: Path) -> Path:
    return data_dir / "mitdb"


@pytest.fixture(scope="session")
def nstdb(data_dir: Path) -> Path:
    return data_dir / "nstdb"

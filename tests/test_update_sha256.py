"""SHA-256 / HMAC-SHA256 (`ecg_sha256`) and update packages with A/B slots (`ecg_update`): their
C tests under ASan/UBSan, and the C digest against Python's `hashlib` / `hmac` on random inputs
through the extension (`ecgedge._core.hmac_sha256`).

`tests/c/test_sha256.c` checks the FIPS 180-2 examples and every RFC 4231 HMAC-SHA256 case;
`tests/c/test_update.c` checks packages on a fake NOR flash: each rejection (AUTH, PKG_CRC, MODEL,
REPLAY, ORDER, INCOMPLETE, ...) leaves the installed head untouched, a push survives a reset, and
power lost after any number of storage operations leaves the old or the new head, never another.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecgedge import _core
from support import INCLUDE, ROOT, STRICT, build_sanitized, cc, print_c_summary, run, run_c_tests

MINE = [ROOT / "firmware" / "src" / "core" / n for n in ("ecg_sha256.c", "ecg_update.c")]
#: the core sources each test program needs (not all of them: faster to build)
NEEDS = {
    "test_sha256": ["ecg_sha256.c"],
    "test_update": ["ecg_update.c", "ecg_sha256.c", "ecg_crc.c", "ecg_classifier.c", "ecg_nn.c",
                    "ecg_model_data.c", "ecg_trainer.c", "ecg_types.c", "ecg_protocol.c"],
}


@pytest.mark.parametrize("program", ["test_sha256", "test_update"])
def test_c_tests_pass_under_address_and_undefined_behaviour_sanitizers(
        program: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sources = [ROOT / "firmware" / "src" / "core" / n for n in NEEDS[program]]
    exe = build_sanitized(tmp_path / program, [*sources, ROOT / "tests" / "c" / f"{program}.c"],
                          timeout=300)
    print_c_summary(program, run_c_tests(exe, timeout=300), capsys)


def test_update_sources_compile_clean_with_wconversion(tmp_path: Path) -> None:
    for src in MINE:
        r = run([cc(), *STRICT, "-O2", f"-I{INCLUDE}", "-c", str(src), "-o",
                 str(tmp_path / (src.stem + ".o"))])
        assert r.returncode == 0, f"{src.name}:\n{r.stderr}"


PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(st.binary(max_size=700))
def test_c_sha256_equals_hashlib_on_any_message(data: bytes) -> None:
    assert _core.hmac_sha256(None, data) == hashlib.sha256(data).digest()


@PROPS
@given(st.binary(max_size=200), st.binary(max_size=700))
def test_c_hmac_sha256_equals_stdlib_hmac_on_any_key_and_message(key: bytes, data: bytes) -> None:
    assert _core.hmac_sha256(key, data) == hmac.new(key, data, "sha256").digest()

"""The µ-trainer (`ecg_trainer`): its C tests under ASan/UBSan, its build for the Cortex-M4, and
the host binding `ecgedge.core.HeadTrainer` / `ecgedge.personalize`, which must give the C's
bytes (the same toy set trained in C and through the binding) and whose tables serialization is
a parser (round trips, length checks: property-based).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecgedge.classifier import BeatClassifier
from ecgedge import _core
from ecgedge.core import HeadTrainer as CoreHeadTrainer
from ecgedge.personalize import (HEAD_TABLES_BYTES, HeadTables, HeadTrainer, TrainerConfig,
                                 serialize_head_tables)
from support import (CORE_SOURCES, CORTEX_M4, INCLUDE, ROOT, build_sanitized, load_tool, run,
                     run_c_tests)

C_TEST = ROOT / "tests" / "c" / "test_trainer.c"
TRAINER_C = ROOT / "firmware" / "src" / "core" / "ecg_trainer.c"


@pytest.fixture(scope="module")
def c_output(tmp_path_factory: pytest.TempPathFactory) -> str:
    exe = tmp_path_factory.mktemp("c_trainer") / "test_trainer"
    return "\n".join(run_c_tests(build_sanitized(exe, [*CORE_SOURCES, C_TEST])))


def test_trainer_c_tests_pass_under_address_and_undefined_behaviour_sanitizers(
        c_output: str) -> None:
    last = c_output.strip().splitlines()[-1]
    assert re.fullmatch(r"[1-9]\d* passed, 0 failed", last), c_output[-4000:]


def test_trainer_compiles_clean_for_the_cortex_m4_without_libm_calls(tmp_path: Path) -> None:
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have arm-none-eabi-gcc (see tests/test_qemu_port.py)")
        pytest.skip("arm-none-eabi-gcc not installed")
    obj = tmp_path / "ecg_trainer.o"
    r = run([gcc, *CORTEX_M4, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2",
             "-ffp-contract=off", f"-I{INCLUDE}", "-c", str(TRAINER_C), "-o", str(obj)])
    assert r.returncode == 0, r.stderr
    nm = shutil.which("arm-none-eabi-nm")
    if nm is not None:  # determinism across libcs: no exp/log/pow/round from libm
        undefined = run([nm, "-u", str(obj)]).stdout.split()
        libm = {"exp", "expf", "log", "logf", "pow", "powf", "roundf", "lroundf", "sqrtf"}
        assert not libm & set(undefined), undefined


# --------------------------------------------------------------------------------------------
# The binding
# --------------------------------------------------------------------------------------------


def toy_set(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The C test's toy beats (tests/c/test_trainer.c `fill_toy` over 5 classes, as
    tools/bench_firmware.py generates them): sample indices, embeddings, classes."""
    idx, emb, cls = load_tool("bench_firmware").toy_trainer_set(seed, n)
    e = np.frombuffer(b"".join(emb), np.int8).reshape(n, 16)
    return np.asarray(idx), e, np.asarray(cls)


def test_core_reexports_the_typed_trainer() -> None:
    assert CoreHeadTrainer is HeadTrainer


def test_binding_trains_the_same_bytes_as_the_c_program(c_output: str) -> None:
    m = re.search(r"toy head: ([0-9a-f]+)", c_output)
    assert m is not None
    idx, emb, cls = toy_set(4242, 60)
    t = HeadTrainer()
    t.add_beats(idx, emb)
    assert t.label(idx, cls).all()
    assert t.train().to_bytes().hex() == m.group(1)
    assert t.stats["labelled"] == 60 and t.stats["last_loss"] > 0


def test_training_through_the_binding_is_deterministic_and_leaves_labels() -> None:
    idx, emb, cls = toy_set(7, 200)
    heads = []
    for _ in range(2):
        t = HeadTrainer(TrainerConfig(iterations=80))
        t.add_beats(idx, emb)
        t.label(idx, cls)
        heads.append(t.train())
        heads.append(t.train())
    assert all(h.to_bytes() == heads[0].to_bytes() for h in heads)


def test_trained_head_installs_and_learns_the_toy_classes() -> None:
    idx, emb, cls = toy_set(11, 300)
    t = HeadTrainer(TrainerConfig(l2=0.01, balance_prior=5.0, iterations=300))
    t.add_beats(idx, emb)
    t.label(idx, cls)
    clf = t.train().install(BeatClassifier(), version=3)
    assert clf.head["version"] == 3
    _, emb2, cls2 = toy_set(12, 250)
    assert (np.argmax(clf.run_head(emb2), axis=1) == cls2).mean() >= 0.99


def test_labels_of_unknown_beats_are_reported_unmatched() -> None:
    idx, emb, cls = toy_set(1, 10)
    t = HeadTrainer()
    t.add_beats(idx, emb)
    got = t.label([idx[0], idx[0] + 1, 5, 10**9], [1, 1, 1, 1])
    assert got.tolist() == [True, False, False, False]
    assert t.stats["labelled"] == 1
    t.clear_labels()
    assert t.stats["labelled"] == 0
    with pytest.raises(ValueError, match="label some buffered beats"):
        t.train()


def test_tolerance_matches_a_label_to_the_nearest_beat() -> None:
    idx, emb, _ = toy_set(1, 5)
    t = HeadTrainer(TrainerConfig(match_tolerance_samples=54))
    t.add_beats(idx, emb)
    matched = t.label([idx[2] + 54, idx[0] - 55, idx[4] + 55], [2, 2, 2])
    assert matched.tolist() == [True, False, False]


def test_bad_configuration_and_decreasing_indices_raise_with_guidance() -> None:
    with pytest.raises(ValueError, match="ecg_trainer_cfg_t"):
        HeadTrainer(TrainerConfig(momentum=1.5))
    with pytest.raises(ValueError, match="out of range"):
        _core.HeadTrainer(iterations=0)
    t = HeadTrainer()
    t.add_beats([10], np.zeros((1, 16), np.int8))
    with pytest.raises(ValueError, match="increase"):
        t.add_beats([10], np.zeros((1, 16), np.int8))
    with pytest.raises(ValueError, match="embeddings"):
        t.add_beats([11, 12], np.zeros((1, 16), np.int8))


def test_factory_tables_round_trip_through_the_classifier() -> None:
    clf = BeatClassifier()
    fac = HeadTables.from_classifier(clf)
    assert len(fac.to_bytes()) == HEAD_TABLES_BYTES == 148
    emb = np.random.default_rng(0).integers(-128, 128, (64, 16)).astype(np.int8)
    before = clf.run_head(emb)
    fac.install(clf, version=9)
    assert np.array_equal(clf.run_head(emb), before)
    assert HeadTables.from_classifier(clf) == fac


_i32 = st.integers(-2**31, 2**31 - 1)


@st.composite
def head_tables(draw: st.DrawFn) -> HeadTables:
    w = draw(st.lists(st.integers(-128, 127), min_size=80, max_size=80))
    return HeadTables(np.asarray(w, np.int8).reshape(5, 16),
                      np.asarray(draw(st.lists(_i32, min_size=5, max_size=5)), np.int32),
                      np.asarray(draw(st.lists(_i32, min_size=5, max_size=5)), np.int32),
                      np.asarray(draw(st.lists(_i32, min_size=5, max_size=5)), np.int32),
                      float(np.float32(draw(st.floats(1e-6, 1e3)))),
                      draw(_i32))


@settings(max_examples=200, deadline=None)
@given(head_tables())
def test_head_tables_serialization_round_trips_little_endian(t: HeadTables) -> None:
    b = serialize_head_tables(t)
    assert len(b) == 148
    assert b[:80] == t.weights.astype(np.int8).tobytes()
    assert b[80:84] == int(t.bias[0]).to_bytes(4, "little", signed=True)
    assert b[100:104] == int(t.multipliers[0]).to_bytes(4, "little", signed=True)
    assert b[104:108] == int(t.shifts[0]).to_bytes(4, "little", signed=True)
    assert HeadTables.from_bytes(b) == t


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_head_tables_parser_takes_exactly_148_bytes(data: bytes) -> None:
    if len(data) == 148:
        t = HeadTables.from_bytes(data)
        assert t.weights.tobytes() == data[:80]
        if not np.isnan(t.logits_scale):  # a NaN's payload need not survive float32 packing
            assert t.to_bytes() == data
    else:
        with pytest.raises(ValueError, match="148"):
            HeadTables.from_bytes(data)

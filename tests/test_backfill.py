"""Backfill after a reconnect (docs/protocol.md §12): the C ring and its device wiring
(`tests/c/test_backfill.c`, built under ASan/UBSan like the device tests), the binding, and the
host's reorder stage (`ecgedge.backfill`) that puts replayed blocks back in place."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecgedge import protocol as p
from ecgedge.device import Gap, Receiver, SampleBlock
from ecgedge.protocol import ErrorCode, FrameType
from support import (CORE_SOURCES, CORTEX_M4, INCLUDE, ROOT, STRICT, build_sanitized, cc,
                     run, run_c_tests)

C_TEST = ROOT / "tests" / "c" / "test_backfill.c"
BACKFILL_C = ROOT / "firmware" / "src" / "core" / "ecg_backfill.c"


def test_backfill_c_tests_pass_under_address_and_undefined_behaviour_sanitizers(
        tmp_path: Path) -> None:
    run_c_tests(build_sanitized(tmp_path / "test_backfill", [*CORE_SOURCES, C_TEST]))


def test_backfill_source_compiles_clean_with_wconversion_on_the_host(tmp_path: Path) -> None:
    r = run([cc(), *STRICT, f"-I{INCLUDE}", "-c", str(BACKFILL_C), "-o",
             str(tmp_path / "b.o")])
    assert r.returncode == 0, r.stderr


def test_backfill_source_compiles_clean_for_cortex_m4(tmp_path: Path) -> None:
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        pytest.skip("arm-none-eabi-gcc not installed (tests/test_qemu_port.py installs it)")
    r = run([gcc, *CORTEX_M4, *STRICT, "-O2", f"-I{INCLUDE}", "-c", str(BACKFILL_C), "-o",
             str(tmp_path / "b.o")])
    assert r.returncode == 0, r.stderr


# --------------------------------------------------------------------------------------------
# Host side: the reorder stage in the receive path (ecgedge.backfill.BackfillStage)
# --------------------------------------------------------------------------------------------



N = 10  # instants per block in these tests


def _block(seq: int, ftype: int = FrameType.SAMPLE_BLOCK) -> bytes:
    samples = np.arange(seq * N, seq * N + N, dtype=np.int16)
    return p.encode_frame(ftype, seq, p.encode_samples(samples, seq * N))


def _answer(cmd_seq: int, status: int = 0, first: int = 3, count: int = 2) -> bytes:
    body = b"" if status else dict(first_seq=first, count=count, oldest_seq=first, next_seq=99)
    return p.encode_frame(FrameType.RESPONSE, cmd_seq,
                          p.build_response(FrameType.BACKFILL_REQUEST, status, body))


def _end(cmd_seq: int, first: int = 3, count: int = 2, sent: int = 2) -> bytes:
    return p.encode_frame(FrameType.BACKFILL_END, cmd_seq, p.build_payload(
        FrameType.BACKFILL_END, dict(first_seq=first, count=count, sent=sent)))


def _receiver(enabled: bool = True) -> Receiver:
    rx = Receiver()
    rx.fs, rx.mv_per_count, rx.want_samples = 360.0, 0.005, True
    rx.backfill.enabled = enabled
    return rx


def _data(events: list[object]) -> list[tuple[str, int, int]]:
    out = []
    for ev in events:
        if isinstance(ev, SampleBlock):
            out.append(("block", ev.seq, ev.first_index))
        elif isinstance(ev, Gap):
            out.append(("gap", ev.frames, ev.samples or 0))
    return out


def test_blocks_in_seq_order_pass_straight_through() -> None:
    rx = _receiver()
    events = rx.feed(b"".join(_block(s) for s in range(4)))
    assert _data(events) == [("block", s, s * N) for s in range(4)]
    assert not rx.backfill.holding


def test_a_seq_gap_holds_later_blocks_until_the_replay_ends_then_all_arrive_in_order() -> None:
    rx = _receiver()
    assert _data(rx.feed(b"".join(_block(s) for s in (0, 1, 2, 5, 6)))) == \
        [("block", s, s * N) for s in range(3)]
    assert rx.backfill.holding and rx.backfill.stats.gaps == [(3, 2)]
    events = rx.feed(_answer(77) + _block(3, FrameType.BACKFILL_BLOCK)
                     + _block(4, FrameType.BACKFILL_BLOCK))
    assert _data(events) == []  # nothing before BACKFILL_END
    assert _data(rx.feed(_end(77))) == [("block", s, s * N) for s in range(3, 7)]
    assert rx.gaps == 0 and rx.tracker.gaps.get(FrameType.SAMPLE_BLOCK, 0) == 0
    assert not rx.backfill.holding


def test_an_end_echoing_another_request_does_not_release_the_hold() -> None:
    rx = _receiver()
    rx.feed(b"".join(_block(s) for s in (0, 1, 2, 5)))
    rx.feed(_answer(77))
    assert _data(rx.feed(_end(76))) == []
    assert rx.backfill.holding


def test_blocks_the_device_no_longer_had_become_a_gap_the_rest_is_replayed() -> None:
    rx = _receiver()
    rx.feed(b"".join(_block(s) for s in (0, 1, 2, 5)))
    rx.feed(_answer(77) + _block(4, FrameType.BACKFILL_BLOCK))
    assert _data(rx.feed(_end(77, sent=1))) == [("gap", 1, N), ("block", 4, 4 * N),
                                                 ("block", 5, 5 * N)]


def test_a_refused_request_releases_the_held_blocks_with_the_gap_reported() -> None:
    rx = _receiver()
    rx.feed(b"".join(_block(s) for s in (0, 1, 2, 5, 6)))
    events = rx.feed(_answer(77, int(ErrorCode.UNSUPPORTED)))
    assert _data(events) == [("gap", 2, 2 * N), ("block", 5, 5 * N), ("block", 6, 6 * N)]


def test_a_stop_answer_waits_behind_the_held_blocks() -> None:
    rx = _receiver()
    rx.feed(b"".join(_block(s) for s in (0, 1, 2, 5)))
    stop = p.encode_frame(FrameType.RESPONSE, 9, p.build_response(FrameType.STOP_STREAM, 0))
    assert rx.feed(stop) == []
    events = rx.feed(_answer(77) + _block(3, FrameType.BACKFILL_BLOCK)
                     + _block(4, FrameType.BACKFILL_BLOCK) + _end(77))
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("_Marker") > max(i for i, k in enumerate(kinds) if k == "SampleBlock")


def test_without_the_backfill_capability_a_gap_is_reported_at_once() -> None:
    rx = _receiver(enabled=False)
    events = rx.feed(b"".join(_block(s) for s in (0, 1, 2, 5)))
    assert _data(events) == [("block", 0, 0), ("block", 1, N), ("block", 2, 2 * N),
                             ("gap", 2, 2 * N), ("block", 5, 5 * N)]


class _FakeDevice:
    """What the stage needs of a `Device`: its receive path, dispatch and request()."""

    is_open = True

    def __init__(self, answer: str) -> None:
        self._rx = _receiver()
        self.events: list[object] = []
        self.answer = answer

    def _dispatch(self, ev: object) -> None:
        self.events.append(ev)

    async def request(self, *args: object, **kwargs: object) -> None:
        from ecgedge.errors import DeviceTimeout

        if self.answer == "timeout":
            raise DeviceTimeout("no answer", FrameType.BACKFILL_REQUEST, 0.01)
        await asyncio.sleep(10)  # "silent": answered, but the END never comes



@pytest.mark.parametrize("answer", ["timeout", "silent"])
def test_a_backfill_that_never_ends_releases_the_held_blocks_with_the_gap(
        answer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import ecgedge.backfill as bf

    monkeypatch.setattr(bf, "HOLD_TIMEOUT_S", 0.05)

    async def main() -> list[tuple[str, int, int]]:
        dev = _FakeDevice(answer)
        dev._rx.feed(b"".join(_block(s) for s in (0, 1, 2, 5)))
        dev._rx.backfill.kick(dev)  # type: ignore[arg-type]
        await asyncio.sleep(0.3)
        return _data(dev.events)

    assert asyncio.run(main()) == [("gap", 2, 2 * N), ("block", 5, 5 * N)]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_loss_pattern_comes_out_in_order_with_only_unavailable_blocks_as_gaps(
        data: st.DataObject) -> None:
    """Property: blocks lost on the way (any runs), replayed on request except those the device
    no longer has, come out of the receive path complete, in seq order, and the gaps counted are
    exactly the unavailable blocks."""
    n = data.draw(st.integers(5, 60), label="blocks")
    lost = data.draw(st.sets(st.integers(1, n - 2), max_size=n // 2), label="lost")
    gone = data.draw(st.sets(st.sampled_from(sorted(lost)), max_size=len(lost)) if lost
                     else st.just(set()), label="unavailable")
    rx = _receiver()
    out: list[tuple[str, int, int]] = []
    answered = 0
    cmd = 100
    for s in range(n):
        if s not in lost:
            out += _data(rx.feed(_block(s)))
        while len(rx.backfill.stats.gaps) > answered:  # the device answers each request
            first, count = rx.backfill.stats.gaps[answered]
            answered += 1
            cmd += 1
            have = [q for q in range(first, first + count) if q not in gone]
            wire = _answer(cmd, first=first, count=count)
            wire += b"".join(_block(q, FrameType.BACKFILL_BLOCK) for q in have)
            wire += _end(cmd, first=first, count=count, sent=len(have))
            out += _data(rx.feed(wire))
    blocks = [seq for kind, seq, _ in out if kind == "block"]
    assert blocks == [s for s in range(n) if s not in gone]
    assert sum(frames for kind, frames, _ in out if kind == "gap") == len(gone)
    assert not rx.backfill.holding

"""The device layer (`ecg_device`, `ecg_rb`, `ecg_hal.h`): its C tests under ASan/UBSan, its
build rules (-Wconversion, Cortex-M4), and the host binding `ecgedge._core.Device` with the
virtual device's front end (`ecgedge.sim.VirtualDevice`) driven in-process on a fake clock.

`tests/c/test_device.c` is a framework-free C99 program (see its header): command round trips,
bad frames counted and dropped, sample blocks' sequence numbers and indices, queue overflow shown
as sequence gaps, injection flow control, the deferred STOP, and beats from injected samples equal
to the detector run directly.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from ecgedge import _core
from ecgedge import protocol as p
from ecgedge.core import QrsDetector
from ecgedge.protocol import ErrorCode, FrameType, Source

from support import (CORE_SOURCES, CORTEX_M4, INCLUDE, ROOT, STRICT, build_sanitized,
                     print_c_summary, run_c_tests)
from support import cc as _cc
from support import run as _run

DEVICE_SOURCES = [ROOT / "firmware" / "src" / "core" / n for n in ("ecg_device.c", "ecg_rb.c")]
C_TEST = ROOT / "tests" / "c" / "test_device.c"


# --------------------------------------------------------------------------------------------
# C tests and build rules
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def c_test_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_sanitized(tmp_path_factory.mktemp("c_device") / "test_device",
                           [*CORE_SOURCES, C_TEST])


def test_device_c_tests_pass_under_address_and_undefined_behaviour_sanitizers(
        c_test_binary: Path, capsys: pytest.CaptureFixture[str]) -> None:
    print_c_summary("device", run_c_tests(c_test_binary), capsys)


def test_device_sources_compile_clean_with_wconversion_on_the_host(tmp_path: Path) -> None:
    for src in DEVICE_SOURCES:
        r = _run([_cc(), *STRICT, "-O2", f"-I{INCLUDE}", "-c", str(src), "-o",
                  str(tmp_path / f"{src.stem}.o")])
        assert r.returncode == 0, r.stderr


def test_device_sources_compile_clean_for_cortex_m4() -> None:
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have arm-none-eabi-gcc (see tests/test_qemu_port.py)")
        pytest.skip("arm-none-eabi-gcc not installed")
    for src in DEVICE_SOURCES:
        r = _run([gcc, *CORTEX_M4, *STRICT, "-O2", "-ffp-contract=off", f"-I{INCLUDE}", "-c",
                  str(src), "-o", os.devnull])
        assert r.returncode == 0, r.stderr


# --------------------------------------------------------------------------------------------
# The binding, in-process
# --------------------------------------------------------------------------------------------


class Link:
    """Host side of an in-process device: frames in, decoded frames out."""

    def __init__(self, dev: _core.Device) -> None:
        self.dev = dev
        self.dec = p.FrameDecoder(p.Accept.TO_HOST)
        self.seq = 0
        self.frames: list[p.Frame] = []

    def send(self, ftype: FrameType, payload: bytes = b"") -> int:
        self.seq += 1
        self.dev.rx(p.encode_frame(ftype, self.seq, payload))
        return self.seq

    def pump(self) -> None:
        self.dev.poll()
        self.frames += self.dec.feed(self.dev.tx())

    def command(self, ftype: FrameType, payload: bytes = b"") -> object:
        seq = self.send(ftype, payload)
        self.pump()
        [f] = [f for f in self.frames if f.type == FrameType.RESPONSE and f.seq == seq]
        self.frames.remove(f)
        return p.parse_response(f.payload)

    def of(self, ftype: FrameType) -> list[p.Frame]:
        return [f for f in self.frames if f.type == ftype]


def test_binding_device_beats_equal_qrs_detector_on_injected_mitdb_100(mitdb: Path) -> None:
    from ecgedge.sim import counts_to_mv, load_record

    rec = load_record(mitdb / "100", channels=[0])
    counts = rec.counts[:5 * 60 * 360]
    dev = _core.Device(rec.fs_hz, 1, rec.gain_uv_per_count, 60, source=int(Source.INJECT))
    link = Link(dev)
    assert link.command(FrameType.START_STREAM).status == ErrorCode.OK
    i = 0
    while i < len(counts):
        n = min(p.max_samples(1), len(counts) - i, dev.in_free)
        if n == 0:
            link.pump()
            continue
        r = link.command(FrameType.INJECT_SAMPLES, p.encode_samples(counts[i:i + n], i))
        assert r.status == ErrorCode.OK and r.result.next_index == i + n
        i += n
    assert link.command(FrameType.STOP_STREAM).status == ErrorCode.OK
    got = [p.parse_payload(f.type, f.payload).sample_index for f in link.of(FrameType.BEAT_EVENT)]
    det = QrsDetector(rec.fs_hz, mains_hz=60)
    x = counts_to_mv(counts[:, 0], rec.gain_uv_per_count)
    assert x.dtype == np.float32
    assert np.float32(dev.mv_per_count) == np.float32(rec.gain_uv_per_count) / np.float32(1000)
    want = np.concatenate([det.process(x), det.flush()]).tolist()
    assert len(want) > 350 and got == want
    stats = dev.stats
    assert stats["frames_dropped"] == stats["samples_dropped"] == 0
    assert stats["samples_in"] == len(counts)


def test_binding_fake_clock_drives_time_sync_and_status() -> None:
    dev = _core.Device(250, 1, 5.0, 50, status_period_ms=100, clock_us=1_000)
    link = Link(dev)
    dev.clock_us = 42_000_000
    r = link.command(FrameType.TIME_SYNC, p.build_payload(FrameType.TIME_SYNC,
                                                           dict(host_time_us=7)))
    assert (r.result.host_time_us, r.result.device_time_us) == (7, 42_000_000)
    link.frames.clear()
    for t in range(10):
        dev.clock_us = 42_000_000 + 100_000 * (t + 1)
        link.pump()
    statuses = link.of(FrameType.STATUS)
    assert len(statuses) == 10
    assert [f.seq for f in statuses] == list(range(statuses[0].seq, statuses[0].seq + 10))


def test_binding_hal_reports_sampling_for_the_simulated_front_end() -> None:
    dev = _core.Device(360, 2, 5.0, 60)
    link = Link(dev)
    assert (dev.sampling, dev.sampling_starts, dev.sampling_rate_hz) == (False, 0, 360)
    assert dev.push_samples(np.zeros((10, 2), np.int16)) == 0  # not streaming: ignored
    assert link.command(FrameType.START_STREAM).status == ErrorCode.OK
    assert (dev.sampling, dev.sampling_starts, dev.streaming) == (True, 1, True)
    assert dev.push_samples(np.arange(2 * 57, dtype=np.int16).reshape(57, 2)) == 57
    link.pump()
    [blk] = [p.decode_samples(f.payload) for f in link.of(FrameType.SAMPLE_BLOCK)]
    assert blk.sample_index == 0 and blk.samples.tolist() == \
        np.arange(114).reshape(57, 2).tolist()
    assert link.command(FrameType.STOP_STREAM).status == ErrorCode.OK
    assert (dev.sampling, dev.streaming) == (False, False)
    assert dev.stats["samples_ignored"] == 10
    with pytest.raises(TypeError):
        dev.push_samples(np.zeros(4, np.float32))
    with pytest.raises(ValueError):
        dev.push_samples(np.zeros(3, np.int16))  # not whole instants of 2 leads
    with pytest.raises(ValueError):
        _core.Device(360, 9)
    with pytest.raises(ValueError):
        _core.Device(360, 1, 0.0)


# --------------------------------------------------------------------------------------------
# The virtual device's front end and record loading, in-process
# --------------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_virtual_device_front_end_runs_at_real_time_on_its_clock(mitdb: Path) -> None:
    from ecgedge.sim import VirtualDevice, load_record

    rec = load_record(mitdb / "100")
    clock = FakeClock()
    vdev = VirtualDevice(rec, mains_hz=60, speed=1.0, status_period_ms=0, clock=clock)
    dec = p.FrameDecoder(p.Accept.TO_HOST)
    dec.feed(vdev.connect())
    vdev.receive(p.encode_frame(FrameType.START_STREAM, 1))
    frames = dec.feed(vdev.run(1 << 20))
    assert [f.type for f in frames] == [FrameType.RESPONSE]
    clock.t += 2.0  # two seconds of device time: 720 instants, 12 full blocks of 57 + 36
    blocks = [p.decode_samples(f.payload) for f in dec.feed(vdev.run(1 << 20))
              if f.type == FrameType.SAMPLE_BLOCK]
    assert sum(len(b.samples) for b in blocks) == 12 * 57
    assert vdev.dev.stats["samples_in"] == 720
    np.testing.assert_array_equal(np.concatenate([b.samples for b in blocks]),
                                  rec.counts[:12 * 57])
    # STOP sends the partial block; a second START plays the record from its start again
    vdev.receive(p.encode_frame(FrameType.STOP_STREAM, 2))
    [last] = [p.decode_samples(f.payload) for f in dec.feed(vdev.run(1 << 20))
              if f.type == FrameType.SAMPLE_BLOCK]
    assert (last.sample_index, len(last.samples)) == (12 * 57, 720 - 12 * 57)
    vdev.receive(p.encode_frame(FrameType.START_STREAM, 3))
    clock.t += 0.5
    blocks = [p.decode_samples(f.payload) for f in dec.feed(vdev.run(1 << 20))
              if f.type == FrameType.SAMPLE_BLOCK]
    clock.t += 0.5
    blocks += [p.decode_samples(f.payload) for f in dec.feed(vdev.run(1 << 20))
               if f.type == FrameType.SAMPLE_BLOCK]
    assert blocks and blocks[0].sample_index == 0
    np.testing.assert_array_equal(blocks[0].samples, rec.counts[:57])


def test_record_loading_gives_counts_minus_baseline_and_holds_invalid_samples(
        tmp_path: Path) -> None:
    import wfdb

    from ecgedge.sim import SimError, load_record

    d = np.array([[0, 10], [5, -32768], [-32768, 30], [7, 40]], dtype=np.int16)
    wfdb.wrsamp("rec", fs=250, units=["mV", "uV"], sig_name=["a", "b"], d_signal=d,
                fmt=["16", "16"], adc_gain=[200.0, 0.2], baseline=[3, -2], write_dir=str(tmp_path))
    rec = load_record(tmp_path / "rec")
    assert rec.fs_hz == 250 and rec.leads == 2
    assert rec.gain_uv_per_count == 5.0  # 1000 µV / 200 adu per mV; 1 µV / 0.2 adu per µV
    assert rec.invalid_samples == 2
    assert rec.counts.tolist() == [[-3, 12], [2, 12], [2, 32], [4, 42]]
    with pytest.raises(SimError, match="channels"):
        load_record(tmp_path / "rec", channels=[2])
    wfdb.wrsamp("mixed", fs=250, units=["mV", "mV"], sig_name=["a", "b"], d_signal=d,
                fmt=["16", "16"], adc_gain=[200.0, 100.0], baseline=[0, 0],
                write_dir=str(tmp_path))
    with pytest.raises(SimError, match="different gains"):
        load_record(tmp_path / "mixed")
    assert load_record(tmp_path / "mixed.hea", channels=[1]).gain_uv_per_count == 10.0

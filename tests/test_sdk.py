"""The device SDK (`ecgedge.connect`, `ecgedge.device`, `ecgedge.transports`) against the virtual
device (`ecgedge sim`) over TCP (``socket://``), spawned by ``sim://``, and on a pty
(``serial://``); the QEMU firmware (``qemu://``) when it is built.

Expected samples come from wfdb directly (``adc - baseline`` of MIT-BIH 100) and expected beats from
`ecgedge.core.QrsDetector` on those counts converted the device's way, so no expectation goes
through the SDK or the simulator.
"""

from __future__ import annotations

import asyncio
import re
import select
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import wfdb

import ecgedge
from ecgedge import protocol as p
from ecgedge.core import QrsDetector
from ecgedge.device import Beat, Gap, Receiver, SampleBlock
from ecgedge.errors import (DeviceError, DeviceTimeout, EcgError, ProtocolVersionError,
                            TransportError, UrlError)
from ecgedge.protocol import ErrorCode, FrameType
from ecgedge.transports import transport_for_url
from ecgedge.transports.faulty import FaultyTransport
from ecgedge.transports.qemu import QEMU
from ecgedge.transports.sim import InProcessSimTransport, SimTransport

ROOT = Path(__file__).resolve().parents[1]
MAINS_HZ = 60
FS = 360


# --------------------------------------------------------------------------------------------
# Fixtures: the record, a simulator process
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def record_counts(mitdb: Path) -> np.ndarray:
    """MIT-BIH 100 as the device's counts: raw ADC minus the baseline, (n, 2) int16."""
    rec = wfdb.rdrecord(str(mitdb / "100"), physical=False)
    return (rec.d_signal - np.asarray(rec.baseline)).astype(np.int16)


def device_mv(counts: np.ndarray, gain_uv_per_count: float) -> np.ndarray:
    """The device's conversion (ecg_device.h): float32(count) * (float32(gain) / 1000)."""
    return counts.astype(np.float32) * (np.float32(gain_uv_per_count) / np.float32(1000.0))


def expected_beats(counts: np.ndarray, gain: float) -> list[int]:
    det = QrsDetector(FS, mains_hz=MAINS_HZ)
    x = device_mv(counts, gain)
    return np.concatenate([det.process(x), det.flush()]).tolist()


class SimProcess:
    """`python -m ecgedge.sim ARGS`; `address` is what it announced (socket://... or /dev/pts/N)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "ecgedge.sim", *args], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        assert ready, "the simulator announced nothing within 30 s"
        line = self.proc.stdout.readline().decode()
        m = re.search(r"\bon (\S+)", line)
        assert m, line + self.proc.stderr.read().decode()  # type: ignore[union-attr]
        self.address = m.group(1)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def sim_url(mitdb: Path) -> Iterator[str]:
    """socket:// URL of one MIT-BIH 100 simulator at full speed, shared by the module."""
    s = SimProcess("--record", str(mitdb / "100"), "--tcp", "0", "--speed", "max",
                   "--mains", str(MAINS_HZ), "--status-period", "200")
    yield s.address
    s.stop()


def assert_blocks_equal_source(items: list, source: np.ndarray) -> tuple[int, int]:
    """Every block's counts equal the source at its index and its mV are counts * gain; a block
    follows the previous one or a Gap that ends where it starts. Returns (samples, gaps)."""
    expected = 0
    n = gaps = 0
    for it in items:
        if isinstance(it, Gap):
            assert it.stream == "samples" and it.reason == "lost"
            assert it.start_index == expected and it.end_index > expected
            assert it.frames >= 1
            expected = it.end_index
            gaps += 1
            continue
        assert isinstance(it, SampleBlock)
        assert it.first_index == expected, "a block joined over a hole"
        np.testing.assert_array_equal(it.counts, source[it.first_index:it.end_index])
        np.testing.assert_array_equal(it.mv, it.counts * 0.005)
        assert it.timestamp == it.first_index / FS
        expected = it.end_index
        n += it.n
    return n, gaps


# --------------------------------------------------------------------------------------------
# Streaming over socket://, sim:// and serial://
# --------------------------------------------------------------------------------------------


def test_info_over_socket_reports_the_record_format(sim_url: str) -> None:
    with ecgedge.connect(sim_url) as dev:
        info = dev.info()
        assert (info.protocol_version, info.leads, info.sample_rate_hz) == (1, 2, FS)
        assert info.gain_uv_per_count == 5.0 and info.mv_per_count == 0.005
        assert info.mains_hz == MAINS_HZ and info.rates_hz == (FS,)
        assert p.Capability.INJECT in info.capabilities
        assert info.as_dict()["fw_version"] == "0.1.0"


def test_10_s_streamed_at_max_speed_are_contiguous_and_equal_the_record_counts(
        sim_url: str, record_counts: np.ndarray) -> None:
    with ecgedge.connect(sim_url) as dev:
        items = []
        with dev.stream() as blocks:
            for item in blocks:
                items.append(item)
                if isinstance(item, SampleBlock) and item.end_index >= 10 * FS:
                    break
        n, gaps = assert_blocks_equal_source(items, record_counts)
        assert n >= 10 * FS and gaps == 0
        assert all(isinstance(b, SampleBlock) and b.leads == 2 and b.content == p.Content.RAW
                   for b in items)
        c = dev.counters
        assert c.rx_errors == 0 and c.gaps == 0 and c.frames_lost["samples"] == 0

        rec = dev.record(10)  # the same through Recording: restarts at sample 0
        assert rec.span == 10 * FS and not rec.gaps and rec.valid.all()
        np.testing.assert_array_equal(rec.counts, record_counts[:10 * FS])
        assert len(rec.beats) >= 8 and all(b.beat_class in set(p.BeatClass) - {p.BeatClass.NONE}
                                           and 0.5 <= b.confidence <= 1 for b in rec.beats)


def test_sim_url_spawns_the_virtual_device_and_the_context_manager_ends_it(
        mitdb: Path, record_counts: np.ndarray) -> None:
    with ecgedge.connect(f"sim://{mitdb / '100'}?speed=max&mains=60") as dev:
        proc = dev.transport.proc
        assert proc is not None and proc.poll() is None
        rec = dev.record(10)
        np.testing.assert_array_equal(rec.counts, record_counts[:10 * FS])
    assert proc.poll() is not None, "the virtual device outlived its Device"


def test_async_context_managers_close_the_stream_and_the_subprocess(
        mitdb: Path, record_counts: np.ndarray) -> None:
    async def main() -> tuple[list, subprocess.Popen]:
        async with ecgedge.connect_async(f"sim://{mitdb / '100'}?speed=max") as dev:
            proc = dev.transport.proc
            items = []
            async with dev.stream() as s:
                async for item in s:
                    items.append(item)
                    if sum(b.n for b in items) >= 3 * FS:
                        break
            with pytest.raises(RuntimeError):
                async with ecgedge.connect_async(f"sim://{mitdb / '100'}") as dev2:
                    proc2 = dev2.transport.proc
                    raise RuntimeError("boom")
            assert proc2.poll() is not None  # closed despite the exception
        return items, proc

    items, proc = asyncio.run(main())
    assert assert_blocks_equal_source(items, record_counts)[1] == 0
    assert proc.poll() is not None


def test_serial_url_streams_from_the_sim_on_a_pty(mitdb: Path, record_counts: np.ndarray) -> None:
    s = SimProcess("--record", str(mitdb / "100"), "--pty", "--speed", "max")
    try:
        assert s.address.startswith("/dev/")
        with ecgedge.connect(f"serial://{s.address}?baud=115200") as dev:
            assert dev.info().leads == 2
            rec = dev.record(5)
            np.testing.assert_array_equal(rec.counts, record_counts[:5 * FS])
            assert not rec.gaps
    finally:
        s.stop()


# --------------------------------------------------------------------------------------------
# Corruption between device and host
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("faults", [dict(flip=3e-4), dict(drop=2e-4, insert=2e-4),
                                    dict(flip=2e-4, drop=1e-4, insert=1e-4)],
                         ids=["flips", "drops+inserts", "all"])
def test_corrupted_bytes_give_counted_errors_and_gaps_never_wrong_samples(
        sim_url: str, record_counts: np.ndarray, faults: dict) -> None:
    link = FaultyTransport(transport_for_url(sim_url), seed=7, enabled=False, **faults)
    with ecgedge.connect(link) as dev:
        link.enabled = True  # after open: commands survive faults by retrying, samples can't
        items = []
        with dev.stream() as blocks:
            for item in blocks:
                items.append(item)
                if isinstance(item, SampleBlock) and item.end_index >= 60 * FS:
                    break
        counters = dev.counters
    n, gaps = assert_blocks_equal_source(items, record_counts)  # every sample checked
    missing = sum(g.samples for g in items if isinstance(g, Gap))
    assert link.stats.faults > 10 and gaps > 3 and missing > 0
    assert n + missing == items[-1].end_index
    assert counters.rx_errors >= gaps and counters.gaps >= gaps
    if "flip" in faults:
        assert counters.crc_errors > 0
    assert counters.samples_lost >= missing


def test_faulty_transport_places_faults_by_stream_position_whatever_the_chunking() -> None:
    data = bytes(range(1, 256)) * 400

    class Chunks(ecgedge.transports.base.Transport):
        def __init__(self, sizes: list[int]) -> None:
            super().__init__("chunks://")
            self.parts, pos = [], 0
            for s in sizes * 1000:
                if pos >= len(data):
                    break
                self.parts.append(data[pos:pos + s])
                pos += s

        async def connect(self) -> None: ...
        async def write(self, data: bytes) -> None: ...
        async def close(self) -> None: ...

        async def read(self) -> bytes:
            if not self.parts:
                raise TransportError("end")
            return self.parts.pop(0)

    async def run(sizes: list[int]) -> bytes:
        t = FaultyTransport(Chunks(sizes), seed=3, flip=1e-3, drop=1e-3, insert=1e-3)
        out = b""
        while True:
            try:
                out += await t.read()
            except TransportError:
                return out

    a, b = asyncio.run(run([1000])), asyncio.run(run([7, 300, 4096]))
    assert a == b and a != data


def test_receiver_unwraps_the_32_bit_sample_counter_and_drops_late_frames() -> None:
    rx = Receiver()
    rx.want_samples = True
    rx.fs, rx.mv_per_count = 360.0, 0.005
    rx.begin_stream()
    rx.expected = rx.ref = (1 << 32) - 100  # a stream 138 days long
    blocks = [np.full((50, 1), i, np.int16) for i in range(4)]
    frames = [p.encode_frame(FrameType.SAMPLE_BLOCK, seq, p.encode_samples(
        blocks[seq], ((1 << 32) - 100 + 50 * seq) & 0xFFFFFFFF)) for seq in range(4)]
    out = rx.feed(frames[0] + frames[1] + frames[1] + frames[3])  # a duplicate, one lost
    kinds = [type(e).__name__ for e in out]
    assert kinds == ["SampleBlock", "SampleBlock", "Gap", "SampleBlock"]
    assert [e.first_index for e in out if isinstance(e, SampleBlock)] == \
        [(1 << 32) - 100, (1 << 32) - 50, (1 << 32) + 50]
    gap = out[2]
    assert (gap.start_index, gap.end_index, gap.frames, gap.samples) == \
        ((1 << 32), (1 << 32) + 50, 1, 50)
    assert rx.late == 1 and rx.gaps == 1 and rx.samples_lost == 50


# --------------------------------------------------------------------------------------------
# Injection
# --------------------------------------------------------------------------------------------


def test_injected_2_minutes_of_mitdb_100_give_exactly_the_host_detector_beats(
        record_counts: np.ndarray) -> None:
    counts = record_counts[:120 * FS]
    with ecgedge.connect(f"sim://?inject_only=1&leads=2&fs={FS}&mains={MAINS_HZ}") as dev:
        info = dev.info()
        beats = dev.beats()  # subscribe first: ends when the injection's STOP has flushed
        report = dev.inject(counts)
        got = [b.index for b in beats if isinstance(b, Beat)]
        want = expected_beats(counts[:, 0], info.gain_uv_per_count)
        assert len(want) > 130
        assert got == want, "Device.beats() differ from ecgedge.core.QrsDetector"
        assert [b.index for b in report.beats] == want and report.beat_gaps == 0
        assert report.samples == len(counts) and report.sequence == 0 and report.timeouts == 0
        assert all(b.fs == FS and b.quality in (0, 1, 2) for b in report.beats)
        rr = [b.rr_samples for b in report.beats[1:]]
        assert rr == np.diff(want).tolist()
        # millivolts in: the same beats (mV -> counts with the device's gain is exact here)
        again = dev.inject(counts * 0.005, units="mV")
        assert [b.index for b in again.beats] == want


def test_inject_checks_the_shape_and_type_of_samples(sim_url: str) -> None:
    with ecgedge.connect(sim_url) as dev:
        with pytest.raises(ValueError, match="2"):
            dev.inject(np.zeros((100, 3), np.int16))
        with pytest.raises(ValueError, match="units='mV'"):
            dev.inject(np.zeros((100, 2), np.float64))


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class FakeDevice:
    """A TCP server on 127.0.0.1 that reads commands and answers with `reply(frame)` bytes."""

    def __init__(self, reply) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.reply = reply
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        self.conns.append(conn)
        dec = p.FrameDecoder(p.Accept.TO_DEVICE)
        while True:
            try:
                data = conn.recv(4096)
            except OSError:
                return
            if not data:
                return
            for f in dec.feed(data):
                out = self.reply(f)
                if out:
                    conn.sendall(out)

    def close(self) -> None:
        self.server.close()
        for c in self.conns:
            c.close()


def _info_payload(version: int = 1) -> bytes:
    return p.DeviceInfo.build(dict(
        protocol_version=version, fw_major=0, fw_minor=1, fw_patch=0, core_major=0,
        core_minor=1, core_patch=0, leads=1, model_id=1, sample_rate_hz=360, rates_mask=16,
        gain_uv_per_count=5.0, capabilities=0x37, mains_hz=60, content=0, source=0))


def test_a_device_that_never_answers_raises_device_timeout() -> None:
    fake = FakeDevice(lambda f: b"")
    try:
        t0 = time.monotonic()
        with pytest.raises(DeviceTimeout, match="GET_INFO") as exc:
            ecgedge.connect(f"socket://127.0.0.1:{fake.port}", timeout=0.2, retries=1)
        assert exc.value.command == FrameType.GET_INFO and isinstance(exc.value, TimeoutError)
        assert time.monotonic() - t0 < 2.0
    finally:
        fake.close()


@pytest.mark.parametrize("frame_version, info_version", [(2, 1), (1, 2)],
                         ids=["frames of version 2", "DEVICE_INFO says version 2"])
def test_another_protocol_version_raises_protocol_version_error(frame_version: int,
                                                                info_version: int) -> None:
    def reply(f: p.Frame) -> bytes:
        body = _info_payload(info_version) if f.type == FrameType.GET_INFO else b""
        return p.encode_frame(FrameType.RESPONSE, f.seq, p.build_response(f.type, 0, body),
                              version=frame_version)

    fake = FakeDevice(reply)
    try:
        with pytest.raises(ProtocolVersionError, match="version"):
            ecgedge.connect(f"socket://127.0.0.1:{fake.port}", timeout=0.2, retries=0)
    finally:
        fake.close()


def test_an_error_status_raises_device_error_with_its_code(sim_url: str) -> None:
    with ecgedge.connect(sim_url) as dev:
        with pytest.raises(DeviceError) as exc:
            dev.configure(sample_rate_hz=250)  # a record plays at its own rate only
        assert exc.value.code == ErrorCode.UNSUPPORTED and exc.value.command == FrameType.CONFIGURE
        assert str(exc.value).startswith("UNSUPPORTED")
        dev.start()
        with pytest.raises(DeviceError) as exc:
            dev.start()  # already streaming
        assert exc.value.code == ErrorCode.STATE
        dev.stop()
        assert isinstance(exc.value, EcgError)


def test_unknown_url_scheme_raises_value_error_naming_the_supported_ones() -> None:
    with pytest.raises(ValueError) as exc:
        ecgedge.connect("bogus://somewhere")
    for scheme in ("serial://", "socket://", "sim://", "qemu://"):
        assert scheme in str(exc.value)
    with pytest.raises(ValueError, match="no scheme"):
        ecgedge.connect("/dev/ttyUSB0")
    with pytest.raises(UrlError, match="HOST:PORT|host and a port"):
        ecgedge.connect("socket://localhost")
    with pytest.raises(UrlError, match="unknown option"):
        ecgedge.connect("sim://?sped=max")
    with pytest.raises(UrlError, match="no WFDB record"):
        ecgedge.connect("sim://no/such/record")
    with pytest.raises(ValueError, match="backend"):
        transport_for_url("sim://", backend="thread")


def test_backend_override_selects_the_transport_class(record_counts: np.ndarray,
                                                      mitdb: Path) -> None:
    url = f"sim://{mitdb / '100'}?speed=max"
    assert type(transport_for_url(url)) is SimTransport
    assert type(transport_for_url(url, backend="inprocess")) is InProcessSimTransport
    assert type(transport_for_url(url, backend=InProcessSimTransport)) is InProcessSimTransport
    with ecgedge.connect(url, backend="inprocess") as dev:  # no subprocess, same bytes
        rec = dev.record(5)
        np.testing.assert_array_equal(rec.counts, record_counts[:5 * FS])


def test_blocks_of_a_real_time_stream_carry_host_time_from_time_sync(mitdb: Path) -> None:
    with ecgedge.connect(f"sim://{mitdb / '100'}?speed=1", backend="inprocess") as dev:
        sync = dev.time_sync()
        assert sync.rtt_us >= 0 and sync.device_time_us > 0
        with dev.stream() as blocks:
            got = []
            for b in blocks:
                got.append((b, time.time()))
                if len(got) == 3:
                    break
    for b, arrived in got:
        assert b.host_time is not None  # START, TIME_SYNC, then the first block 160 ms later
        # a block is sent once its last sample is acquired: host_time + its duration
        assert abs(arrived - (b.host_time + b.n / FS)) < 0.5
    assert got[1][0].host_time - got[0][0].host_time == pytest.approx(57 / FS)


def test_closed_transport_raises_transport_error(sim_url: str) -> None:
    dev = ecgedge.connect(sim_url)
    dev.close()
    dev.close()  # idempotent
    with pytest.raises(TransportError):
        dev.info()


def test_import_ecgedge_stays_light() -> None:
    code = ("import sys, ecgedge; heavy = [m for m in ('numpy', 'ecgedge._core', 'wfdb', "
            "'construct') if m in sys.modules]; print(heavy); "
            "ecgedge.connect; print('ecgedge._core' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.stdout.split("\n")[:2] == ["[]", "False"], out.stdout + out.stderr


# --------------------------------------------------------------------------------------------
# QEMU
# --------------------------------------------------------------------------------------------


def test_qemu_url_without_a_built_image_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(TransportError, match=r"make -C firmware/qemu device"):
        ecgedge.connect(f"qemu://{tmp_path / 'device.elf'}")


@pytest.mark.skipif(shutil.which(QEMU) is None and not os.environ.get("CI"),
                    reason=f"{QEMU} missing (.ci/run installs it; CI never skips this)")
def test_qemu_firmware_beats_of_injected_mitdb_100_equal_the_host_detector(
        record_counts: np.ndarray) -> None:
    counts = record_counts[:30 * FS, :1]
    # qemu:// builds firmware/build/qemu/o2/device.elf with make when it is missing.
    with ecgedge.connect("qemu://", timeout=2.0) as dev:
        info = dev.info()
        assert info.leads == 1 and info.protocol_version == 1
        if info.mains_hz != MAINS_HZ:
            dev.configure(mains_hz=MAINS_HZ)
        report = dev.inject(counts)
        assert [b.index for b in report.beats] == expected_beats(counts[:, 0],
                                                                 info.gain_uv_per_count)
        assert dev.counters.rx_errors == 0


def test_inject_on_a_front_end_device_switches_the_source_and_back(
        sim_url: str, record_counts: np.ndarray) -> None:
    with ecgedge.connect(sim_url) as dev:
        assert dev.info().source == p.Source.FRONT_END
        report = dev.inject(record_counts[:20 * FS])
        assert report.samples == 20 * FS and len(report.beats) >= 20
        assert dev.info().source == p.Source.FRONT_END
        rec = dev.record(1)  # the front end plays again, from the record's start
        np.testing.assert_array_equal(rec.counts, record_counts[:FS])
        dev.configure(source=p.Source.INJECT)
        with pytest.raises(DeviceError, match="injection"):
            dev.record(1)
        dev.configure(source=p.Source.FRONT_END)

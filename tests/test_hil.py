"""Hardware in the loop: MIT-BIH records injected into the device firmware (the Cortex-M4 image in
QEMU's mps2-an386, and the virtual device), as `ecgedge validate qrs --device` does.

Expectations never come from the code under test: record counts are read with wfdb directly
(`adc - baseline`), beats come from `ecgedge.core.QrsDetector` (process + flush) on those counts
converted the device's way (float32 count times float32 gain / 1000, `ecg_device.h`), with the
mains notch the device is configured with, and validation counts from the host's own
`ecgedge validate qrs`.

QEMU moves about 40 kB/s into the guest (its UART model takes one byte per turn of QEMU's main
loop), so a 30-minute record takes about 36 s to inject, 40 s when streamed back raw, and keeps
about one host core busy. To keep the module's wall time down, the long QEMU runs (`qemu_runs`)
start in two background threads with the first test, the other tests run meanwhile, and the
tests that need the runs collect their results.

The toolchain (gcc-arm-none-eabi, libnewlib-arm-none-eabi, qemu-system-arm) is installed with
apt-get when missing; without it the tests skip with the reason, except under CI (env CI), where
they fail.
"""

from __future__ import annotations

import json
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import wfdb

import ecgedge
from ecgedge import protocol as p
from ecgedge.cli import main
from ecgedge.core import QrsDetector
from ecgedge.protocol import Content, ErrorCode, FrameType, Source
from ecgedge.transports.base import free_port
from ecgedge.transports.qemu import default_elf, qemu_command
from ecgedge.validation import hil
from support import load_tool

ROOT = Path(__file__).resolve().parents[1]
MAINS_HZ = 60  # MIT-BIH was recorded on 60 Hz mains; the device is configured to match
FS = 360
GAIN_UV = 5.0  # MIT-BIH: 200 adu/mV
FULL = 30 * 60 * FS  # samples of a whole MIT-BIH record (30:05; we take 30:00)
QEMU_RECORD_MIN = 10  # QEMU beat-identity records besides the 30-minute stream: 10 min each
FLASH_BUDGET = 128 * 1024
STATIC_RAM_BUDGET = 48 * 1024
EXCERPT_START, EXCERPT_STOP = 20 * FS, 60 * FS  # the image's front end: record 100, 20-60 s


bench = load_tool("bench_firmware")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI must be able to run the QEMU device tests: {reason}")
    pytest.skip(reason)


# --------------------------------------------------------------------------------------------
# Expectations, computed without the code under test
# --------------------------------------------------------------------------------------------


def record_counts(mitdb: Path, name: str, n: int | None = None) -> np.ndarray:
    """Channel 0 (MLII) as the device's counts: raw ADC minus the baseline, int16."""
    rec = wfdb.rdrecord(str(mitdb / name), channels=[0], physical=False,
                        sampto=n if n is not None else "end")
    assert rec.fs == FS and rec.adc_gain == [200.0]
    return (rec.d_signal[:, 0] - rec.baseline[0]).astype(np.int16)


def host_beats(counts: np.ndarray) -> tuple[list[int], list[int]]:
    """Beat indices and quality flags of ecgedge.core.QrsDetector on the device's millivolts."""
    x = counts.astype(np.float32) * (np.float32(GAIN_UV) / np.float32(1000.0))
    det = QrsDetector(FS, mains_hz=MAINS_HZ)
    got, tail = det.process_beats(x), det.flush_beats()
    return (np.concatenate([got.index, tail.index]).tolist(),
            np.concatenate([got.quality, tail.quality]).tolist())


def inject(dev: ecgedge.Device, counts: np.ndarray, content: Content = Content.BEATS_ONLY,
           on_block: Callable[[ecgedge.SampleBlock], None] | None = None) -> hil.HilRun:
    return hil.inject_record(dev, counts, fs_hz=FS, gain_uv_per_count=GAIN_UV, mains_hz=MAINS_HZ,
                             content=content, on_block=on_block)


def assert_same_beats(inj: hil.HilRun, counts: np.ndarray, what: str) -> None:
    want_idx, want_q = host_beats(counts)
    assert len(want_idx) > 0.5 * len(counts) / FS  # a real ECG: at least 30 bpm
    assert inj.beats.tolist() == want_idx, f"{what}: device beats differ from QrsDetector"
    assert inj.quality.tolist() == want_q, f"{what}: beat quality flags differ"
    assert inj.lost_frames == 0 and inj.link["malformed"] == 0, (what, inj.link)


def contiguous(blocks: list[ecgedge.SampleBlock]) -> np.ndarray:
    """Blocks in arrival order follow each other from index 0 without gap or overlap."""
    index = 0
    for b in blocks:
        assert b.first_index == index, f"block at {b.first_index}, expected {index}"
        index += b.n
    return np.concatenate([b.counts[:, 0] for b in blocks])


def contiguous_raw(blocks: list[p.SampleBlock]) -> np.ndarray:
    """`contiguous` for blocks decoded by hand (`protocol.decode_samples`)."""
    index = 0
    for b in blocks:
        assert b.sample_index == index, f"block at {b.sample_index}, expected {index}"
        index += len(b.samples)
    return np.concatenate([b.samples[:, 0] for b in blocks])


# --------------------------------------------------------------------------------------------
# Toolchain, image, and the long QEMU runs in the background
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def device_elf() -> Path:
    ok, why = bench.ensure_toolchain(install=True)
    if not ok:
        _unavailable(f"ARM toolchain / QEMU unavailable: {why}")
    res = subprocess.run(["make", "-C", str(bench.MAKEFILE_DIR), "device"], capture_output=True,
                         text=True, check=False)
    assert res.returncode == 0, f"device build failed:\n{res.stdout[-3000:]}\n{res.stderr}"
    elf = bench.BUILD_ROOT / "o2" / "device.elf"
    assert elf == default_elf() and elf.is_file()
    return elf


class Job(threading.Thread):
    """A function run in a background thread; `result()` waits and re-raises its error."""

    def __init__(self, name: str, fn: Callable[[], Any]) -> None:
        super().__init__(name=name, daemon=True)
        self.fn = fn
        self.value: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.value = self.fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test that asks
            self.error = exc

    def result(self, timeout: float = 300.0) -> Any:
        self.join(timeout)
        assert not self.is_alive(), f"{self.name} did not finish within {timeout:g} s"
        if self.error is not None:
            raise self.error
        return self.value


@dataclass
class Streamed:
    counts: np.ndarray
    inj: hil.HilRun
    blocks: list[ecgedge.SampleBlock]


def _stream_30_minutes_then(counts: np.ndarray, name: str,
                            other: np.ndarray) -> tuple[Streamed, dict[str, hil.HilRun]]:
    """(b) record 100 streamed back raw, then (a) beats of another record on the same device."""
    blocks: list[ecgedge.SampleBlock] = []
    with hil.connect("qemu://") as s:
        inj = inject(s, counts, Content.RAW, blocks.append)
        return Streamed(counts, inj, blocks), {name: inject(s, other)}


def _cli_then(mitdb: Path, out: Path, name: str, other: np.ndarray
              ) -> tuple[subprocess.CompletedProcess[str], Path, float, dict[str, hil.HilRun]]:
    """(d) `ecgedge validate qrs --device qemu://` on record 100, then (a) beats of another."""
    t0 = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-c", "import sys; from ecgedge.cli import main; "
                               "sys.exit(main(sys.argv[1:]))",
         "validate", "qrs", "--device", "qemu://", "--db", str(mitdb), "--records", "100",
         "--json", str(out), "-q"], cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, COLUMNS="160"))
    elapsed = time.monotonic() - t0
    with hil.connect("qemu://") as s:
        return res, out, elapsed, {name: inject(s, other)}


@pytest.fixture(scope="module")
def qemu_runs(device_elf: Path, mitdb: Path,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Job]]:
    """Start the long QEMU runs, in two threads of about equal length (each QEMU guest keeps
    about one host core busy): (b) the 30-minute raw stream of record 100 then (a) beats of
    10 minutes of record 119; (d) the CLI's `validate qrs --device qemu://` on record 100 then
    (a) beats of 10 minutes of record 208."""
    out = tmp_path_factory.mktemp("hil") / "device.json"
    n = QEMU_RECORD_MIN * 60 * FS
    r100, r119, r208 = (record_counts(mitdb, "100", FULL), record_counts(mitdb, "119", n),
                        record_counts(mitdb, "208", n))
    jobs = {
        "stream": Job("30-minute stream, record 119",
                      lambda: _stream_30_minutes_then(r100, "119", r119)),
        "cli": Job("validate --device qemu://, record 208",
                   lambda: _cli_then(mitdb, out, "208", r208)),
    }
    for job in jobs.values():
        job.start()
    yield jobs
    for job in jobs.values():
        job.join(600)


# --------------------------------------------------------------------------------------------
# The image
# --------------------------------------------------------------------------------------------


def test_device_firmware_fits_128k_flash_and_48k_static_ram(device_elf: Path,
                                                             qemu_runs: dict[str, Job]) -> None:
    """(Also starts the long QEMU runs, which the later tests collect.)"""
    sizes = bench.image_sizes(device_elf)
    print(f"\n[device.elf] flash {sizes['flash_bytes']} B, static RAM "
          f"{sizes['static_ram_bytes']} B (stack {sizes['stack_reserved_bytes']} B)")
    assert sizes["flash_bytes"] <= FLASH_BUDGET, sizes
    assert sizes["static_ram_bytes"] <= STATIC_RAM_BUDGET, sizes


class Uart:
    """A raw connection to a QEMU guest's UART0 (its TCP server socket), for the tests that
    speak frames by hand."""

    def __init__(self, elf: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(qemu_command(elf, self.port), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                break
            except OSError:
                assert self.proc.poll() is None, self.proc.stderr.read()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "QEMU's UART socket never opened"
                time.sleep(0.05)
        self.dec = p.FrameDecoder(p.Accept.TO_HOST)
        self.tracker = p.SeqTracker()
        self.frames: list[p.Frame] = []
        self.seq = 100

    def send(self, ftype: int, payload: bytes = b"") -> int:
        self.seq += 1
        self.sock.sendall(p.encode_frame(ftype, self.seq, payload))
        return self.seq

    def pump(self, timeout: float) -> None:
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if ready:
            new = self.dec.feed(self.sock.recv(65536))
            for f in new:
                self.tracker.update(f)
            self.frames += new

    def response(self, seq: int, timeout: float = 20.0) -> Any:
        # A liveness bound: a loaded 2-core runner can keep QEMU from answering for seconds.
        deadline = time.monotonic() + timeout
        while True:
            for f in self.frames:
                if f.type == FrameType.RESPONSE and f.seq == seq:
                    self.frames.remove(f)
                    return p.parse_response(f.payload)
            assert time.monotonic() < deadline, f"no answer to command {seq}"
            self.pump(0.1)

    def command(self, ftype: int, fields: dict[str, Any] | None = None) -> Any:
        payload = p.build_payload(ftype, fields) if fields is not None else b""
        return self.response(self.send(ftype, payload))

    def close(self) -> None:
        self.sock.close()
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def uart(device_elf: Path) -> Iterator[Uart]:
    u = Uart(device_elf)
    yield u
    u.close()


def test_qemu_device_answers_bytes_sent_before_it_booted(uart: Uart) -> None:
    """QEMU starts the guest when the host connects; what the host sends at once reaches the
    UART while the firmware is still initialising. It must neither be lost nor leave the
    receiver deaf (the RX interrupt is enabled after the UART)."""
    junk = bytes(range(1, 200))  # an oversize partial frame, then a lone delimiter
    uart.sock.sendall(junk + b"\x00" + p.encode_frame(FrameType.GET_INFO, 7))
    r = uart.response(7)
    assert r.status == ErrorCode.OK
    info = r.result
    assert (info.leads, info.sample_rate_hz, info.gain_uv_per_count) == (1, FS, GAIN_UV)
    assert info.model_id == 0xA386 and info.mains_hz == MAINS_HZ
    assert info.source == Source.FRONT_END and info.rates_mask == 0xFF
    boot = [f for f in uart.frames if f.type == FrameType.DEVICE_INFO]
    assert boot and boot[0].seq == 0  # the boot DEVICE_INFO (wait=on: the guest waited for us)
    assert uart.command(FrameType.GET_INFO).status == ErrorCode.OK  # and it keeps answering


def test_qemu_front_end_plays_the_compiled_in_excerpt_in_real_time(uart: Uart,
                                                                   mitdb: Path) -> None:
    """Source = front end: the image's excerpt (record 100, MLII, 20-60 s) at 360 samples per
    second of QEMU's clock, paced by SysTick; TIME_SYNC pairs that clock with the counter."""
    want = record_counts(mitdb, "100", EXCERPT_STOP)[EXCERPT_START:]
    assert uart.command(FrameType.CONFIGURE, dict(set_mask=0b0110, sample_rate_hz=0,
                                                  mains_hz=MAINS_HZ, content=Content.RAW,
                                                  source=0)).status == ErrorCode.OK
    assert uart.command(FrameType.START_STREAM).status == ErrorCode.OK
    t0 = time.monotonic()
    s0 = uart.command(FrameType.TIME_SYNC, dict(host_time_us=1)).result
    time.sleep(1.5)
    s1 = uart.command(FrameType.TIME_SYNC, dict(host_time_us=2)).result
    elapsed = time.monotonic() - t0
    assert uart.command(FrameType.STOP_STREAM).status == ErrorCode.OK
    blocks = [p.decode_samples(f.payload) for f in uart.frames
              if f.type == FrameType.SAMPLE_BLOCK]
    got = contiguous_raw(blocks)
    assert 300 <= len(got) <= 360 * (elapsed + 0.5), (len(got), elapsed)
    np.testing.assert_array_equal(got, want[:len(got)])
    assert not any(b.flags & p.SampleFlag.INJECTED for b in blocks)
    dt_us = s1.device_time_us - s0.device_time_us
    rate = (s1.sample_index - s0.sample_index) / (dt_us / 1e6)
    # QEMU's clock follows the host's; a loaded host may delay ticks, which delays both alike
    assert 0.5e6 < dt_us < 3e6 and abs(rate - FS) < 0.02 * FS, (dt_us, rate)
    # the excerpt is recorded at 360 Hz: the front end refuses other rates, injection does not
    assert uart.command(FrameType.CONFIGURE, dict(set_mask=0b0001, sample_rate_hz=250,
                                                  mains_hz=0, content=0,
                                                  source=0)).status == ErrorCode.OK
    assert uart.command(FrameType.START_STREAM).status == ErrorCode.UNSUPPORTED


# --------------------------------------------------------------------------------------------
# (a) beats identical to the host detector
# --------------------------------------------------------------------------------------------


def test_virtual_device_beats_equal_host_detector_on_three_whole_mitdb_records(
        mitdb: Path) -> None:
    records = {name: record_counts(mitdb, name, FULL) for name in ("100", "119", "208")}
    with hil.connect("sim://", fs_hz=FS, gain_uv_per_count=GAIN_UV) as s:
        assert s.last_info.model_id == 0xF001  # the virtual device
        for name, counts in records.items():
            inj = inject(s, counts)
            assert inj.report.samples == FULL
            assert_same_beats(inj, counts, f"sim, record {name}")


def test_qemu_beats_equal_host_detector_on_three_mitdb_records(qemu_runs: dict[str, Job],
                                                               mitdb: Path) -> None:
    """Record 100 whole (the 30-minute stream), 119 and 208 for their first 10 minutes."""
    streamed, first = qemu_runs["stream"].result()
    *_, second = qemu_runs["cli"].result()
    assert_same_beats(streamed.inj, streamed.counts, "QEMU, record 100 (30 min)")
    short: dict[str, hil.HilRun] = {**first, **second}
    assert set(short) == {"119", "208"}
    for name, inj in short.items():
        counts = record_counts(mitdb, name, QEMU_RECORD_MIN * 60 * FS)
        assert inj.report.samples == len(counts)
        assert_same_beats(inj, counts, f"QEMU, record {name}")


# --------------------------------------------------------------------------------------------
# (b) throughput: 30 minutes through QEMU and back
# --------------------------------------------------------------------------------------------


def test_30_minute_record_injected_through_qemu_streams_back_every_sample(
        qemu_runs: dict[str, Job]) -> None:
    streamed, _ = qemu_runs["stream"].result()
    inj, r = streamed.inj, streamed.inj.report
    print(f"\n[qemu] 30 min of MIT-BIH 100 ({r.samples} samples) injected and streamed back "
          f"raw in {r.elapsed_s:.1f} s = {r.samples_per_s:.0f} samples/s (blocks {r.blocks}, "
          f"busy {r.busy}, sequence {r.sequence}, timeouts {r.timeouts})")
    got = contiguous(streamed.blocks)  # none lost, none reordered
    np.testing.assert_array_equal(got, streamed.counts)
    assert all(b.injected and b.content == Content.RAW for b in streamed.blocks)
    assert inj.lost_frames == 0 and inj.link["gaps"] == 0 and inj.link["late"] == 0, inj.link
    assert inj.link["frames_ok"] > len(streamed.blocks) and inj.bad_frames == 0, inj.link
    assert inj.device is not None and inj.device.samples_dropped == 0
    assert inj.device.frames_dropped == 0 and inj.device.rx_crc_errors == 0


# --------------------------------------------------------------------------------------------
# (c) robustness: a link that corrupts bytes
# --------------------------------------------------------------------------------------------


class FaultyProxy:
    """A TCP proxy between the host and a device that flips and drops bytes, with a seeded RNG
    per direction (down = device -> host, up = host -> device)."""

    def __init__(self, connect_device: Callable[[], socket.socket], seed: int,
                 p_flip: dict[str, float], p_drop: dict[str, float]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connect_device = connect_device
        self.rng = {"up": np.random.default_rng(seed), "down": np.random.default_rng(seed + 1)}
        self.p_flip, self.p_drop = p_flip, p_drop
        self.flips = {"up": 0, "down": 0}
        self.drops = {"up": 0, "down": 0}
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def mangle(self, data: bytes, way: str) -> bytes:
        rng = self.rng[way]
        arr = np.frombuffer(data, dtype=np.uint8).copy()
        r = rng.random(len(arr))
        flip = r < self.p_flip[way]
        drop = (r >= self.p_flip[way]) & (r < self.p_flip[way] + self.p_drop[way])
        arr[flip] ^= rng.integers(1, 256, int(flip.sum()), dtype=np.uint8)
        self.flips[way] += int(flip.sum())
        self.drops[way] += int(drop.sum())
        return arr[~drop].tobytes()

    def _run(self) -> None:
        try:
            host, _ = self.listener.accept()
            dev = self.connect_device()
            peer = {host: (dev, "up"), dev: (host, "down")}
            while not self.stop.is_set():
                ready, _, _ = select.select([host, dev], [], [], 0.05)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    other, way = peer[s]
                    other.sendall(self.mangle(data, way))
        except OSError:
            pass  # a side closed: the test is over
        except BaseException as exc:  # noqa: BLE001 - reported by close()
            self.error = exc

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()
        assert self.error is None, self.error


def _sim_device() -> tuple[subprocess.Popen[bytes], Callable[[], socket.socket]]:
    proc = subprocess.Popen([sys.executable, "-m", "ecgedge.sim", "--inject-only", "--tcp", "0",
                             "--fs", str(FS), "--gain-uv", str(GAIN_UV), "--status-period",
                             "200"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    line = proc.stdout.readline().decode()  # type: ignore[union-attr]
    m = re.search(r"socket://127\.0\.0\.1:(\d+)", line)
    assert m, line
    return proc, lambda: socket.create_connection(("127.0.0.1", int(m.group(1))))


def _qemu_device(elf: Path) -> tuple[subprocess.Popen[bytes], Callable[[], socket.socket]]:
    port = free_port()
    proc = subprocess.Popen(qemu_command(elf, port), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def connect() -> socket.socket:
        for _ in range(400):
            try:
                s = socket.create_connection(("127.0.0.1", port))
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return s
            except OSError:
                time.sleep(0.05)
        raise AssertionError("QEMU's UART socket never opened")

    return proc, connect


@pytest.mark.parametrize("device, minutes", [("sim", 5), ("qemu", 1)])
def test_corrupting_link_counts_crc_errors_reports_gaps_and_never_delivers_a_wrong_sample(
        device: str, minutes: int, mitdb: Path, device_elf: Path) -> None:
    counts = record_counts(mitdb, "100", minutes * 60 * FS)
    proc, connect_device = _sim_device() if device == "sim" else _qemu_device(device_elf)
    proxy = FaultyProxy(connect_device, seed=20240611,
                        p_flip={"down": 2e-4, "up": 1e-4}, p_drop={"down": 1e-4, "up": 5e-5})
    blocks: list[ecgedge.SampleBlock] = []
    try:
        # lost commands are resent after a timeout; both devices answer within milliseconds
        with hil.connect(f"socket://127.0.0.1:{proxy.port}", timeout=0.3) as s:
            inj = inject(s, counts, Content.RAW, blocks.append)
            # the device's receiver counters arrive in STATUS: wait for one sent after the end
            t_end = time.monotonic()
            deadline = t_end + 5
            while (s.status is None or s.status.received_at <= t_end) \
                    and time.monotonic() < deadline:
                time.sleep(0.05)
            status = s.status if s.status is not None and s.status.received_at > t_end else None
    finally:
        proxy.close()
        proc.kill()
        proc.wait()
    print(f"\n[{device}] corrupted link: proxy flips {proxy.flips} drops {proxy.drops}; host "
          f"link {inj.link}; inject {inj.report.blocks} blocks, busy {inj.report.busy}, "
          f"sequence {inj.report.sequence}, timeouts {inj.report.timeouts}")
    assert proxy.flips["down"] + proxy.drops["down"] > 0
    assert inj.link["crc_errors"] > 0, inj.link  # counted ...
    assert inj.lost_frames > 0 and inj.link["lost_samples"] > 0, inj.link  # ... reported
    # ... and never a wrong sample or beat: what arrived is exactly what was injected
    assert inj.report.samples == len(counts)  # every sample reached the device once, in order
    received = 0
    for b in blocks:
        np.testing.assert_array_equal(b.counts[:, 0], counts[b.first_index:b.end_index])
        received += b.n
    assert 0.8 * len(counts) < received < len(counts)
    want_beats, _ = host_beats(counts)
    assert set(inj.beats.tolist()) <= set(want_beats)
    assert len(inj.beats) >= 0.8 * len(want_beats)
    if proxy.flips["up"] + proxy.drops["up"]:  # the device counted what it could not use
        assert status is not None, "no STATUS got through after the injection"
        dev_errors = sum(getattr(status, k) for k in ("rx_crc_errors", "rx_cobs_errors",
                                                      "rx_truncated", "rx_oversize"))
        assert dev_errors > 0, status


# --------------------------------------------------------------------------------------------
# (d) the command line: a device run scores like a host run
# --------------------------------------------------------------------------------------------


def test_validate_qrs_on_qemu_gives_the_same_json_as_the_host(
        qemu_runs: dict[str, Job], mitdb: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    host_json = tmp_path / "host.json"
    assert main(["validate", "qrs", "--db", str(mitdb), "--records", "100", "--json",
                 str(host_json), "-q"]) == 0
    capsys.readouterr()
    res, device_json, elapsed, _ = qemu_runs["cli"].result()
    assert res.returncode == 0, res.stderr
    assert "100" in res.stdout and "MLII" in res.stdout  # the same table as a host run
    host, device = json.loads(host_json.read_text()), json.loads(device_json.read_text())
    assert host["records"]["100"]["tp"] > 1800  # scored from 5:00
    assert device == host
    print(f"\n[qemu] ecgedge validate qrs --device qemu:// --records 100: {elapsed:.1f} s")


def test_validate_qrs_over_a_serial_port_scores_like_the_host(
        mitdb: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A device on a serial port (here the virtual device on a pty, as a board on /dev/ttyACM0
    would be), whole record 208, default mains (50 Hz) on both sides."""
    proc = subprocess.Popen([sys.executable, "-m", "ecgedge.sim", "--inject-only", "--pty"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        m = re.search(r"serving on (\S+)", proc.stdout.readline().decode())  # type: ignore[union-attr]
        assert m, "the simulator announced no pty"
        args = ["validate", "qrs", "--db", str(mitdb), "--records", "208", "-q", "--json"]
        assert main([*args, str(tmp_path / "host.json")]) == 0
        assert main([*args, str(tmp_path / "dev.json"), "--device", m.group(1)]) == 0
    finally:
        proc.terminate()
        proc.wait()
    capsys.readouterr()
    host = json.loads((tmp_path / "host.json").read_text())
    assert host["records"]["208"]["tp"] > 2000
    assert json.loads((tmp_path / "dev.json").read_text()) == host


@pytest.mark.parametrize("url, message", [
    ("qemu:///no/such/device.elf", "no such firmware image"),
    ("sim://../shared/data/mitdb/100", "use sim:// alone"),
    ("socket://localhost", "give socket://HOST:PORT"),
])
def test_validate_qrs_with_an_unusable_device_exits_1_with_a_message(
        url: str, message: str, mitdb: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["validate", "qrs", "--device", url, "--db", str(mitdb), "--records", "100", "-q"])
    err = capsys.readouterr().err
    assert rc == 1
    assert message in err and err.startswith("ecgedge: error: ")

"""The virtual device (`ecgedge sim`), run as a subprocess and spoken to over TCP or a pty with
`ecgedge.protocol` (FrameDecoder, construct layouts), as any host would.

The record is MIT-BIH 100 (two leads, 360 Hz, 200 adu/mV, baseline 1024). The expected sample
counts are computed here from wfdb directly (`adc - baseline`), and the expected beats by
`ecgedge.core.QrsDetector` on those counts converted the device's way (float32 count times
float32 gain / 1000), so neither expectation goes through the simulator's own code.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import wfdb

from ecgedge import protocol as p
from ecgedge.core import QrsDetector
from ecgedge.protocol import ConfigSet, Content, ErrorCode, FrameType, Source

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 30.0
IO_TIMEOUT_S = 10.0
MAINS_HZ = 60


# --------------------------------------------------------------------------------------------
# The simulator process
# --------------------------------------------------------------------------------------------


class Sim:
    """A running `python -m ecgedge.sim ...`; `address` is what it announced."""

    def __init__(self, *args: str) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "ecgedge.sim", *args], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.line = self._first_line()
        m = re.search(r"\bon (\S+)", self.line)
        assert m, self.line
        self.address = m.group(1)

    def _first_line(self) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT_S)
        if not ready:
            self.proc.kill()
            pytest.fail("the simulator announced no address within "
                        f"{START_TIMEOUT_S:g} s:\n{self.proc.stderr.read().decode()}")  # type: ignore[union-attr]
        line = self.proc.stdout.readline().decode()
        if not line:
            err = self.proc.stderr.read().decode()  # type: ignore[union-attr]
            pytest.fail(f"the simulator exited ({self.proc.wait()}):\n{err}")
        return line.strip()

    @property
    def port(self) -> int:
        m = re.fullmatch(r"socket://127\.0\.0\.1:(\d+)", self.address)
        assert m, self.address
        return int(m.group(1))

    def terminate(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"the simulator ignored signal {sig}")
            raise


@pytest.fixture(scope="module")
def sim(mitdb: Path) -> Iterator[Sim]:
    s = Sim("--record", str(mitdb / "100"), "--tcp", "0", "--speed", "max",
            "--mains", str(MAINS_HZ), "--status-period", "200")
    yield s
    rc = s.terminate()
    assert rc == 0, s.proc.stderr.read().decode()  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def record_counts(mitdb: Path) -> np.ndarray:
    """MIT-BIH 100 as the device's counts: raw ADC minus the baseline, (n, 2) int16."""
    rec = wfdb.rdrecord(str(mitdb / "100"), physical=False)
    assert rec.adc_gain == [200.0, 200.0] and rec.fs == 360
    return (rec.d_signal - np.asarray(rec.baseline)).astype(np.int16)


def device_mv(counts: np.ndarray, gain_uv_per_count: float) -> np.ndarray:
    """The device's conversion (ecg_device.h): float32(count) * (float32(gain) / 1000)."""
    return counts.astype(np.float32) * (np.float32(gain_uv_per_count) / np.float32(1000.0))


# --------------------------------------------------------------------------------------------
# A host written with ecgedge.protocol
# --------------------------------------------------------------------------------------------


class Host:
    """Frames over a byte link, decoded by `protocol.FrameDecoder`, with per-stream gap counts."""

    def __init__(self, send: Callable[[bytes], None], recv: Callable[[float], bytes]) -> None:
        self._send, self._recv = send, recv
        self.dec = p.FrameDecoder(p.Accept.TO_HOST)
        self.tracker = p.SeqTracker()
        self.seq = 0
        self.frames: list[p.Frame] = []  # received, not yet consumed

    def send(self, ftype: FrameType, fields: dict[str, Any] | None = None,
             payload: bytes | None = None) -> int:
        self.seq = (self.seq + 1) & 0xFFFF
        body = payload if payload is not None else (
            p.build_payload(ftype, fields) if fields is not None else b"")
        self._send(p.encode_frame(ftype, self.seq, body))
        return self.seq

    def pump(self, timeout: float) -> int:
        data = self._recv(timeout)
        new = self.dec.feed(data) if data else []
        for f in new:
            self.tracker.update(f)
        self.frames += new
        return len(new)

    def take(self, pred: Callable[[p.Frame], bool], timeout: float = IO_TIMEOUT_S) -> p.Frame:
        """The first received frame matching `pred` (frames before it stay queued)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, f in enumerate(self.frames):
                if pred(f):
                    return self.frames.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching frame within {timeout} s; "
                                     f"have {[hex(f.type) for f in self.frames[-10:]]}")
            self.pump(min(left, 0.2))

    def response(self, seq: int, timeout: float = IO_TIMEOUT_S) -> Any:
        f = self.take(lambda f: f.type == FrameType.RESPONSE and f.seq == seq, timeout)
        return p.parse_response(f.payload)

    def command(self, ftype: FrameType, fields: dict[str, Any] | None = None) -> Any:
        r = self.response(self.send(ftype, fields))
        assert r.cmd_type == ftype, r
        return r

    def configure(self, **fields: int) -> Any:
        mask = ConfigSet(0)
        for name, bit in (("sample_rate_hz", ConfigSet.RATE), ("mains_hz", ConfigSet.MAINS),
                          ("content", ConfigSet.CONTENT), ("source", ConfigSet.SOURCE)):
            if name in fields:
                mask |= bit
        full = dict(set_mask=int(mask), sample_rate_hz=0, mains_hz=0, content=0, source=0)
        full.update(fields)
        return self.command(FrameType.CONFIGURE, full)

    def drop(self, ftype: FrameType) -> list[p.Frame]:
        got = [f for f in self.frames if f.type == ftype]
        self.frames = [f for f in self.frames if f.type != ftype]
        return got


def tcp_host(port: int) -> tuple[Host, socket.socket]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def recv(timeout: float) -> bytes:
        ready, _, _ = select.select([sock], [], [], timeout)
        if not ready:
            return b""
        data = sock.recv(1 << 20)
        if not data:
            raise ConnectionError("the simulator closed the connection")
        return data

    return Host(sock.sendall, recv), sock


@pytest.fixture
def host(sim: Sim) -> Iterator[Host]:
    """A fresh connection; the device is brought to a known state (stopped, raw, front end)."""
    h, sock = tcp_host(sim.port)
    try:
        h.take(lambda f: f.type == FrameType.DEVICE_INFO)  # sent on connect (§6.2)
        assert h.command(FrameType.STOP_STREAM).status == ErrorCode.OK
        r = h.configure(content=Content.RAW, source=Source.FRONT_END)
        assert r.status == ErrorCode.OK, r
        yield h
    finally:
        sock.close()


def no_loss(tracker: p.SeqTracker) -> bool:
    """No stream had a sequence gap or a late frame (§4)."""
    return sum(tracker.gaps.values()) == 0 and sum(tracker.late.values()) == 0


def sample_blocks(frames: list[p.Frame]) -> list[p.SampleBlock]:
    return [p.decode_samples(f.payload) for f in frames if f.type == FrameType.SAMPLE_BLOCK]


def assert_contiguous(blocks: list[p.SampleBlock], start: int = 0) -> np.ndarray:
    """Blocks follow each other without gap or overlap; returns their samples, (n, leads)."""
    index = start
    for b in blocks:
        assert b.sample_index == index, f"block at {b.sample_index}, expected {index}"
        index += len(b.samples)
    return np.concatenate([b.samples for b in blocks]) if blocks else np.zeros((0, 1), np.int16)


# --------------------------------------------------------------------------------------------
# Tests over TCP
# --------------------------------------------------------------------------------------------


def test_sim_announces_its_tcp_address_and_reports_the_record_format(sim: Sim,
                                                                      host: Host) -> None:
    assert sim.address.startswith("socket://127.0.0.1:")
    r = host.command(FrameType.GET_INFO)
    assert r.status == ErrorCode.OK
    info = r.result
    assert (info.protocol_version, info.leads, info.sample_rate_hz) == (1, 2, 360)
    assert info.gain_uv_per_count == 5.0  # 1000 / 200 adu per mV
    assert info.mains_hz == MAINS_HZ and info.source == Source.FRONT_END
    caps = p.Capability(info.capabilities)
    assert p.Capability.INJECT in caps and p.Capability.BEATS in caps
    assert p.Capability.RATE_CONFIG not in caps  # a record plays at its own rate only


def test_time_sync_echoes_host_time_and_pairs_device_clock_with_sample_index(host: Host) -> None:
    r1 = host.command(FrameType.TIME_SYNC, dict(host_time_us=123456789))
    time.sleep(0.05)
    r2 = host.command(FrameType.TIME_SYNC, dict(host_time_us=987654321))
    assert r1.status == r2.status == ErrorCode.OK
    assert (r1.result.host_time_us, r2.result.host_time_us) == (123456789, 987654321)
    assert r2.result.device_time_us - r1.result.device_time_us >= 40_000  # the sim's clock runs


def test_10_s_streamed_at_max_speed_are_contiguous_and_equal_the_record_counts(
        host: Host, record_counts: np.ndarray) -> None:
    n_want = 10 * 360
    assert host.command(FrameType.START_STREAM).status == ErrorCode.OK
    t0 = time.monotonic()
    got = 0
    while got < n_want:
        assert time.monotonic() - t0 < IO_TIMEOUT_S, f"only {got} samples arrived"
        host.pump(0.2)
        got = sum(len(b.samples) for b in sample_blocks(host.frames))
    assert host.command(FrameType.STOP_STREAM).status == ErrorCode.OK
    blocks = sample_blocks(host.drop(FrameType.SAMPLE_BLOCK))
    samples = assert_contiguous(blocks)
    assert len(samples) >= n_want
    assert all(b.leads == 2 and b.content == Content.RAW and not b.flags & 0x04 for b in blocks)
    np.testing.assert_array_equal(samples, record_counts[:len(samples)])
    assert no_loss(host.tracker), f"frames were lost: {host.tracker.gaps}"
    beats = [p.parse_payload(f.type, f.payload) for f in host.drop(FrameType.BEAT_EVENT)]
    assert len(beats) >= 8  # about 75 bpm
    assert all(b.beat_class != p.BeatClass.NONE and b.confidence >= 128 for b in beats)


def inject(host: Host, counts: np.ndarray, on_data: Callable[[], None] | None = None) -> dict[str, int]:
    """Inject `counts` ((n, leads) int16) from index 0 with the flow control of §5.3: every block
    stays below `next_index + free_samples` of the latest INJECT response. Returns counters."""
    total = len(counts)
    per_block = p.max_samples(counts.shape[1])
    sent = 0  # next instant to send
    limit: int | None = None  # next_index + free_samples of the latest response
    inflight: dict[int, int] = {}  # command seq -> first instant
    stats = dict(ok=0, busy=0, sequence=0, probes=0)
    acked = 0
    while acked < total:
        while sent < total:
            n = min(per_block, total - sent)
            if limit is None or sent + n > limit:
                if inflight:
                    break
                stats["probes"] += 1  # nothing in flight: ask by sending (BUSY if no room)
                time.sleep(0.001)
            seq = host.send(FrameType.INJECT_SAMPLES,
                            payload=p.encode_samples(counts[sent:sent + n], sent))
            inflight[seq] = sent
            sent += n
            if limit is None:
                break
        host.pump(0.05)
        for f in [f for f in host.frames if f.type == FrameType.RESPONSE]:
            r = p.parse_response(f.payload)
            if r.cmd_type != FrameType.INJECT_SAMPLES:
                continue
            host.frames.remove(f)
            res = r.result
            limit = res.next_index + res.free_samples
            if inflight.pop(f.seq, None) is None:
                continue  # answer to a block already given up
            if r.status == ErrorCode.OK:
                stats["ok"] += 1
                acked = res.next_index
            else:
                assert r.status in (ErrorCode.BUSY, ErrorCode.SEQUENCE), r
                stats["busy" if r.status == ErrorCode.BUSY else "sequence"] += 1
                sent = acked = res.next_index  # resend from where the device is
                inflight.clear()
        if on_data is not None:
            on_data()
    return stats


def test_injected_2_minutes_of_mitdb_100_give_exactly_the_host_detector_beats(
        host: Host, record_counts: np.ndarray) -> None:
    counts = record_counts[:120 * 360]
    assert host.configure(source=Source.INJECT).status == ErrorCode.OK
    assert host.command(FrameType.START_STREAM).status == ErrorCode.OK
    stats = inject(host, counts)
    assert stats["ok"] >= len(counts) // p.max_samples(2)
    assert stats["sequence"] == 0, stats  # the device's free_samples can be trusted
    stop = host.command(FrameType.STOP_STREAM)  # end of injection: flushes the pending beats
    assert stop.status == ErrorCode.OK
    beats = [p.parse_payload(f.type, f.payload) for f in host.drop(FrameType.BEAT_EVENT)]
    got = [b.sample_index for b in beats]

    info = host.command(FrameType.GET_INFO).result
    det = QrsDetector(info.sample_rate_hz, mains_hz=info.mains_hz or None)
    x = device_mv(counts[:, 0], info.gain_uv_per_count)
    want = np.concatenate([det.process(x), det.flush()]).tolist()
    assert len(want) > 130
    assert got == want, "device beats differ from ecgedge.core.QrsDetector"

    blocks = sample_blocks(host.drop(FrameType.SAMPLE_BLOCK))
    np.testing.assert_array_equal(assert_contiguous(blocks), counts)
    assert all(b.flags & p.SampleFlag.INJECTED for b in blocks)
    assert no_loss(host.tracker), host.tracker.gaps
    assert host.configure(source=Source.FRONT_END).status == ErrorCode.OK


def test_30_minute_record_injected_at_full_speed_streams_back_without_loss(
        host: Host, record_counts: np.ndarray) -> None:
    counts = record_counts[:30 * 60 * 360]
    assert host.configure(source=Source.INJECT).status == ErrorCode.OK
    assert host.command(FrameType.START_STREAM).status == ErrorCode.OK
    received: list[p.SampleBlock] = []

    def collect() -> None:  # decode as we go so memory stays flat
        received.extend(sample_blocks(host.drop(FrameType.SAMPLE_BLOCK)))
        host.drop(FrameType.BEAT_EVENT)
        host.drop(FrameType.STATUS)

    t0 = time.monotonic()
    stats = inject(host, counts, collect)
    print(f"\n[sim] injection: {stats}")
    assert host.command(FrameType.STOP_STREAM).status == ErrorCode.OK
    collect()
    elapsed = time.monotonic() - t0
    np.testing.assert_array_equal(assert_contiguous(received), counts)  # none lost or reordered
    assert no_loss(host.tracker), host.tracker.gaps
    assert host.configure(source=Source.FRONT_END).status == ErrorCode.OK
    print(f"\n[sim] 30 min of 2-lead ECG injected and streamed back in {elapsed:.1f} s")


def test_bad_frames_are_counted_and_dropped_and_the_device_keeps_answering(host: Host) -> None:
    good = p.encode_frame(FrameType.GET_INFO, 999)
    bad_crc = bytearray(good)
    bad_crc[2] ^= 0x55
    junk = [bytes(bad_crc),  # CRC
            p.encode_frame(0x17, 1000),  # reserved type (alerts, unused): unknown
            p.encode_frame(FrameType.STATUS, 1001),  # device -> host type sent to the device
            p.encode_frame(FrameType.GET_INFO, 1002, version=2),  # bad version
            p.cobs_encode(b"\x01\x01\x00") + b"\x00",  # valid COBS, 3 bytes: truncated
            b"\x05\x01\x00",  # COBS code pointing past the end: a cut frame
            bytes(range(1, 256)) * 2 + b"\x00"]  # oversize
    host._send(b"".join(junk))
    assert host.command(FrameType.GET_INFO).status == ErrorCode.OK  # resynchronised
    r = host.command(FrameType.CONFIGURE, None)  # empty payload: LENGTH
    assert r.status == ErrorCode.LENGTH
    st = p.parse_payload(FrameType.STATUS, host.take(
        lambda f: f.type == FrameType.STATUS and p.parse_payload(f.type, f.payload).rx_oversize
        > 0).payload)
    assert st.rx_crc_errors >= 1 and st.rx_unknown_type >= 2 and st.rx_bad_version >= 1
    assert st.rx_truncated >= 1 and st.rx_oversize >= 1 and st.rx_cobs_errors >= 1


def test_the_next_client_is_served_after_one_disconnects_mid_stream(sim: Sim) -> None:
    h1, s1 = tcp_host(sim.port)
    h1.take(lambda f: f.type == FrameType.DEVICE_INFO)
    h1.command(FrameType.STOP_STREAM)
    assert h1.command(FrameType.START_STREAM).status == ErrorCode.OK
    h1.take(lambda f: f.type == FrameType.SAMPLE_BLOCK)
    s1.close()  # gone while streaming

    h2, s2 = tcp_host(sim.port)
    try:
        info = h2.take(lambda f: f.type == FrameType.DEVICE_INFO)
        assert p.parse_payload(info.type, info.payload).leads == 2
        # the old stream ended with its client: a new START is accepted and starts at 0
        assert h2.command(FrameType.START_STREAM).status == ErrorCode.OK
        first = p.decode_samples(h2.take(lambda f: f.type == FrameType.SAMPLE_BLOCK).payload)
        assert first.sample_index == 0
        assert h2.command(FrameType.STOP_STREAM).status == ErrorCode.OK
    finally:
        s2.close()


# --------------------------------------------------------------------------------------------
# Other modes, signals, usage errors (own processes)
# --------------------------------------------------------------------------------------------


def test_pty_mode_prints_the_slave_path_and_serves_the_protocol(mitdb: Path) -> None:
    s = Sim("--record", str(mitdb / "100"), "--pty", "--speed", "1")
    try:
        assert s.address.startswith("/dev/"), s.line
        fd = os.open(s.address, os.O_RDWR | os.O_NOCTTY)
        try:
            import tty
            tty.setraw(fd)

            def recv(timeout: float) -> bytes:
                ready, _, _ = select.select([fd], [], [], timeout)
                return os.read(fd, 65536) if ready else b""

            h = Host(lambda b: os.write(fd, b) and None, recv)
            h.send(FrameType.GET_INFO)  # a stale partial frame may precede it: resync on 0x00
            r = p.parse_response(h.take(lambda f: f.type == FrameType.RESPONSE).payload)
            assert r.status == ErrorCode.OK and r.result.leads == 2
            assert h.command(FrameType.START_STREAM).status == ErrorCode.OK
            blk = p.decode_samples(h.take(lambda f: f.type == FrameType.SAMPLE_BLOCK).payload)
            assert blk.sample_index == 0  # real time: 57 samples take 160 ms
            assert h.command(FrameType.STOP_STREAM).status == ErrorCode.OK
        finally:
            os.close(fd)
    finally:
        assert s.terminate(signal.SIGINT) == 0


def test_inject_only_sim_takes_samples_from_the_host_only() -> None:
    s = Sim("--inject-only", "--tcp", "0", "--fs", "250", "--leads", "1", "--gain-uv", "2.5")
    try:
        h, sock = tcp_host(s.port)
        try:
            info = p.parse_payload(FrameType.DEVICE_INFO,
                                   h.take(lambda f: f.type == FrameType.DEVICE_INFO).payload)
            assert (info.leads, info.sample_rate_hz, info.gain_uv_per_count) == (1, 250, 2.5)
            assert info.source == Source.INJECT
            assert p.Capability.RATE_CONFIG in p.Capability(info.capabilities)
            assert h.configure(source=Source.FRONT_END).status == ErrorCode.OK  # no front end,
            assert h.command(FrameType.START_STREAM).status == ErrorCode.OK  # but a valid request
            h.pump(0.3)
            assert not sample_blocks(h.frames), "an injection-only device has no samples of its own"
            assert h.command(FrameType.STOP_STREAM).status == ErrorCode.OK
        finally:
            sock.close()
    finally:
        assert s.terminate(signal.SIGTERM) == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signals_stop_the_sim_cleanly_while_a_client_streams(mitdb: Path, sig: int) -> None:
    s = Sim("--record", str(mitdb / "100"), "--tcp", "0", "--speed", "max")
    h, sock = tcp_host(s.port)
    try:
        h.take(lambda f: f.type == FrameType.DEVICE_INFO)
        assert h.command(FrameType.START_STREAM).status == ErrorCode.OK
        h.take(lambda f: f.type == FrameType.SAMPLE_BLOCK)
        assert s.terminate(sig) == 0
    finally:
        sock.close()


@pytest.mark.parametrize("args, message", [
    (["--record", "no/such/record"], "no WFDB header"),
    (["--inject-only", "--leads", "9"], "1 to 8 leads"),
    (["--inject-only", "--fs", "100"], "cannot configure"),
    (["--inject-only", "--channels", "0"], "--channels only applies"),
    (["--inject-only", "--tcp", "70000"], "TCP ports"),
])
def test_sim_usage_errors_exit_2_with_a_message(args: list[str], message: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "ecgedge.sim", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr

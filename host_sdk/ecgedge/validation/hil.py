"""Hardware-in-the-loop QRS validation: records injected into a device, its beats scored (EC57).

    ecgedge validate qrs --device qemu:// --db ../shared/data/mitdb --records 100 --json out.json

For each record, the chosen channel is read as the device's int16 counts (raw ADC minus the
baseline, with `ecgedge.sim.record.load_record`, like the virtual device's front end); the device
is configured over the wire protocol (CONFIGURE: source = injection, beats only, the record's rate
and the same mains notch as a host run), the stream is started and the record injected from its
first sample with the flow control of docs/protocol.md §5.3; STOP_STREAM's answer (§5.4) means
every beat is out. The device's sample counter starts at START_STREAM, which is record sample 0,
so the device's beat indices are the record's. They are scored by the host validation's own code
(`qrs.run_validation` -> `qrs.score_record` -> `ec57.compare`), so a device run and a host run
differ only in where the beats come from.

Device URLs (`connect`):

| URL | device |
| --- | --- |
| ``sim:`` or ``sim://`` | spawns the virtual device, ``python -m ecgedge.sim --inject-only --tcp 0`` |
| ``socket://HOST:PORT`` | a device already serving the protocol over TCP (sim, QEMU, a bridge) |
| ``qemu://[PATH.elf]`` | boots the Cortex-M4 firmware in ``qemu-system-arm -M mps2-an386``; default |
|  | ``firmware/build/qemu/o2/device.elf``, built with ``make -C firmware/qemu device`` if missing |
| anything else | a serial port (pyserial): ``/dev/ttyACM0``, ``serial:///dev/ttyUSB0?baud=115200`` |

The link is spoken to by a minimal raw-protocol client (`_RawDevice`, built on `ecgedge.protocol`)
until the host SDK's ``ecgedge.connect(url)`` is available; see `connect` for the one place to
switch.

Counts to millivolts: the device computes ``float32(count) * float32(gain / 1000)``
(`ecg_device.h`), the host path reads WFDB physical values (float64, rounded to float32 by the
detector). The two differ in the last bit of some samples, yet give the same beats on all 48
MIT-BIH records (tests/test_hil.py checks the device against `ecgedge.core.QrsDetector` on the
device's own conversion, and the CLI's JSON against a host run).
"""

from __future__ import annotations

import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from .. import protocol as p
from ..protocol import ConfigSet, Content, ErrorCode, FrameType, Source
from .ec57 import LEARNING_PERIOD_S
from .qrs import Detection, QrsReport, run_validation, scored_start
from .wfdb_db import DEFAULT_ANNOTATOR, DatabaseError

__all__ = ["DEFAULT_ELF", "DeviceSession", "HilError", "Injection", "connect", "qemu_command",
           "validate_qrs_device"]

ROOT = Path(__file__).resolve().parents[3]  #: the source tree (firmware/ beside host_sdk/)
DEFAULT_ELF = ROOT / "firmware" / "build" / "qemu" / "o2" / "device.elf"
MAKEFILE_DIR = ROOT / "firmware" / "qemu"
QEMU = "qemu-system-arm"
MACHINE = "mps2-an386"

COMMAND_TIMEOUT_S = 1.0  #: wait for a RESPONSE before resending (§5 suggests 500 ms)
COMMAND_RETRIES = 5
INJECT_TIMEOUT_S = 1.0  #: no INJECT answer for this long: resend from the last known index
START_TIMEOUT_S = 30.0  #: a spawned sim / QEMU must be reachable within this
BUILD_TIMEOUT_S = 600.0
STOP_TIMEOUT_S = 5.0


class HilError(Exception):
    """The device cannot be reached or used as asked; the message says what to do."""


# --------------------------------------------------------------------------------------------
# Links: bytes to and from the device
# --------------------------------------------------------------------------------------------


class _Link:
    """A byte link. `read` returns b"" on timeout and raises HilError when the link is gone."""

    name = "link"

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def read(self, timeout: float) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _SocketLink(_Link):
    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.name = f"socket://{host}:{port}"
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise HilError(f"cannot connect to {self.name}: {exc.strerror or exc}; is the device "
                           "serving there?") from exc
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(30.0)  # sendall: the device reads while it works; never forever

    def write(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise HilError(f"{self.name}: sending failed ({exc})") from exc

    def read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.sock], [], [], max(timeout, 0.0))
        if not ready:
            return b""
        try:
            data = self.sock.recv(1 << 16)
        except OSError as exc:
            raise HilError(f"{self.name}: receiving failed ({exc})") from exc
        if not data:
            raise HilError(f"{self.name}: the device closed the connection")
        return data

    def close(self) -> None:
        self.sock.close()


class _SerialLink(_Link):
    """A serial port through pyserial (a real board); reads whatever is waiting, in chunks."""

    def __init__(self, url: str) -> None:
        import serial  # type: ignore[import-untyped]  # pyserial, a dependency of the SDK

        self.name = url
        target = url[len("serial://"):] if url.startswith("serial://") else url
        baud = 115200
        m = re.fullmatch(r"(.*)\?baud=(\d+)", target)
        if m is not None:
            target, baud = m.group(1), int(m.group(2))
        try:
            self.ser = serial.serial_for_url(target, baudrate=baud, timeout=0)
        except (serial.SerialException, ValueError) as exc:
            raise HilError(f"cannot open {url}: {exc}; give qemu://, sim://, "
                           "socket://HOST:PORT or a serial port") from exc

    def write(self, data: bytes) -> None:
        self.ser.write(data)

    def read(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            data = self.ser.read(max(self.ser.in_waiting, 4096))  # timeout=0: what is there
            if data:
                return bytes(data)
            left = deadline - time.monotonic()
            if left <= 0:
                return b""
            try:
                select.select([self.ser.fileno()], [], [], left)
            except (AttributeError, OSError, ValueError):  # no selectable fd: poll gently
                time.sleep(min(left, 0.002))

    def close(self) -> None:
        self.ser.close()


class _Child:
    """A process serving the device (the sim or QEMU), ended on close; output kept for errors."""

    def __init__(self, cmd: list[str], what: str, stdout: int | IO[bytes] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.what = what
        self.log = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=self.log if stdout is None else stdout,
                                         stderr=self.log, env=env)
        except OSError as exc:
            self.log.close()
            raise HilError(f"cannot run {cmd[0]}: {exc}") from exc

    def output(self) -> str:
        try:
            self.log.seek(0)
            return self.log.read().decode(errors="replace").strip()[-2000:]
        except (OSError, ValueError):
            return ""

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn_sim(fs_hz: int, gain_uv: float) -> tuple[_Child, _Link]:
    """`python -m ecgedge.sim --inject-only --tcp 0 ...`; connects to the address it announces."""
    cmd = [sys.executable, "-m", "ecgedge.sim", "--inject-only", "--tcp", "0", "--fs",
           str(fs_hz), "--leads", "1", "--gain-uv", repr(float(gain_uv)), "--status-period",
           "1000"]
    child = _Child(cmd, "the virtual device", stdout=subprocess.PIPE,
                   env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        out = child.proc.stdout
        assert out is not None
        ready, _, _ = select.select([out], [], [], START_TIMEOUT_S)
        line = out.readline().decode(errors="replace") if ready else ""
        m = re.search(r"socket://127\.0\.0\.1:(\d+)", line)
        if m is None:
            child.proc.kill()
            child.proc.wait()
            raise HilError(f"the virtual device did not start ({' '.join(cmd)}): "
                           f"{line.strip() or child.output() or 'no output'}")
        return child, _SocketLink("127.0.0.1", int(m.group(1)))
    except BaseException:
        child.close()
        raise


def qemu_command(elf: Path, port: int) -> list[str]:
    """QEMU serving the firmware's UART0 on TCP `port` of 127.0.0.1.

    `nodelay=on`: QEMU hands the socket one byte per UART write; with Nagle's algorithm the rest
    of a reply waits for the host's (delayed) ACK, about 40 ms per request/response turn.
    """
    return [QEMU, "-M", MACHINE, "-nographic", "-monitor", "none", "-kernel", str(elf),
            "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on",
            "-semihosting-config", "enable=on,target=native"]


def _ensure_elf(elf: Path | None) -> Path:
    if elf is not None:
        if not elf.is_file():
            raise HilError(f"qemu://{elf}: no such firmware image; build the device firmware "
                           "with `make -C firmware/qemu device`, or use qemu:// for the default")
        return elf
    if DEFAULT_ELF.is_file():
        return DEFAULT_ELF
    if shutil.which("make") is None or not (MAKEFILE_DIR / "Makefile").is_file():
        raise HilError(f"the QEMU device firmware {DEFAULT_ELF} is not built and cannot be built "
                       "here; build it with `make -C firmware/qemu device` in the source tree")
    try:
        res = subprocess.run(["make", "-C", str(MAKEFILE_DIR), "device"], capture_output=True,
                             text=True, timeout=BUILD_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HilError(f"building {DEFAULT_ELF} failed: {exc}") from exc
    if res.returncode != 0 or not DEFAULT_ELF.is_file():
        tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-6:])
        raise HilError(f"`make -C firmware/qemu device` failed (exit {res.returncode}); it needs "
                       f"Debian's gcc-arm-none-eabi and libnewlib-arm-none-eabi:\n{tail}")
    return DEFAULT_ELF


def _spawn_qemu(elf: Path | None) -> tuple[_Child, _Link]:
    """Boot the firmware in QEMU with UART0 on a TCP server socket, and connect to it."""
    image = _ensure_elf(elf)
    if shutil.which(QEMU) is None:
        raise HilError(f"{QEMU} is not installed (Debian: apt-get install qemu-system-arm)")
    for _attempt in range(3):
        port = _free_port()
        child = _Child(qemu_command(image, port), "QEMU")
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while True:
                if child.proc.poll() is not None:
                    break
                try:
                    return child, _SocketLink("127.0.0.1", port, timeout=1.0)
                except HilError:
                    if time.monotonic() > deadline:
                        raise HilError(f"QEMU's serial port {port} accepted no connection within "
                                       f"{START_TIMEOUT_S:g} s: {child.output()}") from None
                    time.sleep(0.05)
        except BaseException:
            child.close()
            raise
        out = child.output()
        child.close()
        if "Address already in use" not in out:
            raise HilError(f"QEMU exited ({child.proc.returncode}) before the link was up: "
                           f"{out or 'no output'}")
    raise HilError("could not find a free TCP port for QEMU")


# --------------------------------------------------------------------------------------------
# The raw-protocol client
# --------------------------------------------------------------------------------------------


def _unwrap(index32: int, near: int) -> int:
    """A u32 sample index as the full index closest to `near` (§4: indices wrap at 2^32)."""
    return near + ((index32 - near + (1 << 31)) % (1 << 32)) - (1 << 31)


@dataclass
class Injection:
    """What one injected stream gave back.

    Attributes:
        beats: beat positions on the device's sample counter (0 = the first injected sample).
        quality: their quality flags (0 good, 1 noisy, 2 unusable).
        samples: sample instants the device accepted.
        elapsed_s: wall time from START_STREAM's answer to STOP_STREAM's.
        stats: injection counters: blocks ok, busy, sequence (resyncs), timeouts, probes.
        gaps, late: frames lost / late per device -> host stream during the call, by type name.
        rx: the host receiver's counters during the call (§2: crc_errors, cobs_errors, ...).
        malformed: frames with a payload the host could not parse.
        device_rx: the device's own receiver counters from its latest STATUS (cumulative since
            its boot), or None if no STATUS arrived.
    """

    beats: npt.NDArray[np.int64]
    quality: npt.NDArray[np.uint8]
    samples: int
    elapsed_s: float
    stats: dict[str, int]
    gaps: dict[str, int] = field(default_factory=dict)
    late: dict[str, int] = field(default_factory=dict)
    rx: dict[str, int] = field(default_factory=dict)
    malformed: int = 0
    device_rx: dict[str, int] | None = None

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def lost_frames(self) -> int:
        return sum(self.gaps.values())


OnBlock = Callable[[p.SampleBlock], None]


class _RawDevice:
    """Frames over a `_Link`: commands with retries, and the device's data frames dispatched."""

    def __init__(self, link: _Link) -> None:
        self.link = link
        self.dec = p.FrameDecoder(p.Accept.TO_HOST)
        self.tracker = p.SeqTracker()
        self.seq = 0
        self.malformed = 0
        self.responses: dict[int, Any] = {}  # seq -> parsed RESPONSE not yet taken
        self.status: Any = None  # latest STATUS
        self.reboots = 0
        self.on_beat: Callable[[Any], None] | None = None
        self.on_block: OnBlock | None = None

    def send(self, ftype: int, payload: bytes = b"") -> int:
        self.seq = (self.seq + 1) & 0xFFFF
        self.link.write(p.encode_frame(ftype, self.seq, payload))
        return self.seq

    def pump(self, timeout: float) -> int:
        """Receive for up to `timeout` s (returns at the first bytes); dispatch the frames."""
        data = self.link.read(timeout)
        if not data:
            return 0
        frames = self.dec.feed(data)
        for f in frames:
            self.tracker.update(f)
            try:
                self._dispatch(f)
            except p.ProtocolError:
                self.malformed += 1
        return len(frames)

    def _dispatch(self, f: p.Frame) -> None:
        if f.type == FrameType.RESPONSE:
            if len(self.responses) > 256:  # answers nobody waits for any more
                self.responses.clear()
            self.responses[f.seq] = p.parse_response(f.payload)
        elif f.type == FrameType.BEAT_EVENT:
            if self.on_beat is not None:
                self.on_beat(p.parse_payload(f.type, f.payload))
        elif f.type == FrameType.SAMPLE_BLOCK:
            if self.on_block is not None:
                self.on_block(p.decode_samples(f.payload))
        elif f.type == FrameType.STATUS:
            self.status = p.parse_payload(f.type, f.payload)
        elif f.type == FrameType.DEVICE_INFO and f.seq == 0:
            self.reboots += 1

    def request(self, ftype: int, payload: bytes = b"", *, timeout: float | None = None,
                retries: int = COMMAND_RETRIES,
                accept: Callable[[Any, int], bool] | None = None) -> Any:
        """Send a command until it is answered (a new `seq` per try; an answer to any try
        counts); return the parsed RESPONSE.

        `accept(response, attempt)` may refuse an answer, which is then dropped while waiting
        goes on (e.g. BUSY to a resent STOP_STREAM while the first one is still flushing).
        """
        timeout = COMMAND_TIMEOUT_S if timeout is None else timeout
        seqs: list[int] = []
        for attempt in range(retries + 1):
            seqs.append(self.send(ftype, payload))
            deadline = time.monotonic() + timeout
            while True:
                for s in seqs:
                    r = self.responses.pop(s, None)
                    if r is not None and r.cmd_type == ftype and (
                            accept is None or accept(r, attempt)):
                        return r
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.pump(min(left, 0.1))
        raise HilError(f"{self.link.name}: no answer to {FrameType(ftype).name} after "
                       f"{retries + 1} tries of {timeout:g} s; is a device serving the ecgedge "
                       "protocol there?")

    def command(self, ftype: int, payload: bytes = b"", ok: tuple[int, ...] = (ErrorCode.OK,),
                **kw: Any) -> Any:
        r = self.request(ftype, payload, **kw)
        if r.status not in ok:
            name = r.status.name if isinstance(r.status, ErrorCode) else str(r.status)
            raise HilError(f"{self.link.name}: {FrameType(ftype).name} answered {name}")
        return r


class DeviceSession:
    """A connected device that takes injected records (what `connect` returns)."""

    def __init__(self, link: _Link, child: _Child | None = None) -> None:
        self.dev = _RawDevice(link)
        self.child = child
        self.url = link.name
        self._info: Any = None

    def close(self) -> None:
        try:
            self.dev.link.close()
        finally:
            if self.child is not None:
                self.child.close()

    @property
    def info(self) -> Any:
        """DEVICE_INFO fields (GET_INFO), cached."""
        if self._info is None:
            self._info = self.dev.command(FrameType.GET_INFO).result
        return self._info

    def describe(self) -> str:
        i = self.info
        return (f"{self.url}: model 0x{i.model_id:04X}, firmware {i.fw_major}.{i.fw_minor}."
                f"{i.fw_patch}, {i.leads} lead(s), {i.gain_uv_per_count:g} µV/count")

    def _stop(self) -> None:
        """STOP_STREAM until answered OK (BUSY: a deferred stop is still flushing, §5.4)."""
        self.dev.command(FrameType.STOP_STREAM, timeout=COMMAND_TIMEOUT_S, retries=20,
                         accept=lambda r, _a: r.status != ErrorCode.BUSY)

    def inject(self, counts: npt.ArrayLike, *, fs_hz: int, gain_uv_per_count: float,
               mains_hz: int | None, content: Content = Content.BEATS_ONLY,
               on_block: OnBlock | None = None,
               progress: Callable[[float], None] | None = None) -> Injection:
        """Configure the device, inject `counts` as one stream from index 0, stop, and return
        the beats (device sample indices) and link counters.

        Args:
            counts: (n,) int16 counts of one lead; a device with more leads gets the same
                samples on every lead (the detector runs on one of them).
            fs_hz, gain_uv_per_count: the record's; the device must support the rate and have
                the gain (it is not configurable over the protocol).
            mains_hz: the notch to configure: 50, 60 or None.
            content: stream content (§5.1): beats only for validation; RAW streams the samples
                back through `on_block`.
        """
        info = self.info
        x = np.asarray(counts)
        if x.ndim != 1 or x.size == 0:
            raise ValueError(f"counts must be a non-empty (n,) array, got shape {x.shape}")
        if not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"counts must be integers, got {x.dtype}")
        if fs_hz not in p.RATES_HZ or not info.rates_mask & (1 << p.RATES_HZ.index(fs_hz)):
            rates = [r for i, r in enumerate(p.RATES_HZ) if info.rates_mask & (1 << i)]
            raise HilError(f"{self.url}: the device cannot run at {fs_hz} Hz (it supports "
                           f"{', '.join(map(str, rates)) or 'no listed rate'} Hz); resample the "
                           "records first")
        if np.float32(info.gain_uv_per_count) != np.float32(gain_uv_per_count):
            raise HilError(f"{self.url}: the device's gain is {info.gain_uv_per_count:g} µV/count "
                           f"but the record's is {gain_uv_per_count:g}; its beats would not be "
                           "those of the record's millivolts")
        caps = p.Capability(info.capabilities)
        if p.Capability.INJECT not in caps or p.Capability.BEATS not in caps:
            raise HilError(f"{self.url}: the device lacks sample injection or beat detection")
        if mains_hz not in (None, 50, 60):
            raise ValueError(f"mains_hz={mains_hz!r}: use 50, 60 or None")
        block = np.ascontiguousarray(np.repeat(x.astype(np.int16)[:, None], info.leads, axis=1))

        d = self.dev
        self._stop()  # a known state: not streaming
        cfg = dict(set_mask=int(ConfigSet.RATE | ConfigSet.MAINS | ConfigSet.CONTENT
                                | ConfigSet.SOURCE),
                   sample_rate_hz=fs_hz, mains_hz=mains_hz or 0, content=int(content),
                   source=int(Source.INJECT))
        d.command(FrameType.CONFIGURE, p.build_payload(FrameType.CONFIGURE, cfg))
        # a START whose answer was lost is answered STATE when resent: the stream runs
        d.command(FrameType.START_STREAM,
                  accept=lambda r, a: r.status == ErrorCode.OK or a > 0,
                  ok=(ErrorCode.OK, ErrorCode.STATE))

        beats: list[int] = []
        quality: list[int] = []
        acked_ref = [0]
        rx0 = d.dec.stats.as_dict()
        gaps0, late0, malformed0 = dict(d.tracker.gaps), dict(d.tracker.late), d.malformed

        def on_beat(b: Any) -> None:
            beats.append(_unwrap(int(b.sample_index), acked_ref[0]))
            quality.append(int(b.quality))

        d.on_beat, d.on_block = on_beat, on_block
        t0 = time.monotonic()
        try:
            stats = self._inject_blocks(block, acked_ref, progress)
            self._stop()  # §5.4: flushes the last block and the pending beats, then answers
        finally:
            d.on_beat = d.on_block = None
        elapsed = time.monotonic() - t0

        def delta(now: dict[int, int], before: dict[int, int]) -> dict[str, int]:
            out = {}
            for t, v in now.items():
                if v - before.get(t, 0):
                    out[FrameType(t).name] = v - before.get(t, 0)
            return out

        rx = {k: v - rx0[k] for k, v in d.dec.stats.as_dict().items()}
        dev_rx = None
        if d.status is not None:
            dev_rx = {k[3:]: int(getattr(d.status, k)) for k in
                      ("rx_crc_errors", "rx_cobs_errors", "rx_truncated", "rx_oversize",
                       "rx_bad_version", "rx_unknown_type")}
            dev_rx["samples_dropped"] = int(d.status.samples_dropped)
            dev_rx["frames_dropped"] = int(d.status.frames_dropped)
        order = np.argsort(np.asarray(beats, dtype=np.int64), kind="stable")
        return Injection(np.asarray(beats, dtype=np.int64)[order],
                         np.asarray(quality, dtype=np.uint8)[order], len(block), elapsed, stats,
                         delta(d.tracker.gaps, gaps0), delta(d.tracker.late, late0), rx,
                         d.malformed - malformed0, dev_rx)

    def _inject_blocks(self, counts: npt.NDArray[np.int16], acked_ref: list[int],
                       progress: Callable[[float], None] | None) -> dict[str, int]:
        """§5.3/§5.4 flow control: every block ends at or below ``next_index + free_samples``
        of the latest answer; with nothing in flight the next block is sent anyway (a probe:
        BUSY takes nothing and reports the room); BUSY and SEQUENCE answers resend from the
        device's `next_index`; blocks unanswered for `INJECT_TIMEOUT_S` are resent from the
        last acknowledged index (SEQUENCE then tells where the device really is)."""
        d = self.dev
        total, leads = counts.shape
        per_block = p.max_samples(leads)
        sent = acked = 0
        limit: int | None = None
        inflight: dict[int, tuple[int, int]] = {}  # seq -> (first index, n)
        stats = dict(ok=0, busy=0, sequence=0, timeouts=0, probes=0)
        last_answer = time.monotonic()
        last_progress = 0.0
        busy_streak = 0
        while acked < total:
            while sent < total:
                n = min(per_block, total - sent)
                if limit is None or sent + n > limit:
                    if inflight:
                        break
                    stats["probes"] += 1
                    if busy_streak:
                        time.sleep(min(0.0005 * 2 ** min(busy_streak, 6), 0.02))
                seq = d.send(FrameType.INJECT_SAMPLES, p.encode_samples(counts[sent:sent + n],
                                                                        sent))
                if not inflight:
                    last_answer = time.monotonic()
                inflight[seq] = (sent, n)
                sent += n
                if limit is None:
                    break
            d.pump(0.05)
            for seq in [s for s, r in d.responses.items() if r.cmd_type ==
                        FrameType.INJECT_SAMPLES]:
                r = d.responses.pop(seq)
                res = r.result
                if res is None:  # an error answer always carries the body (§5.3)
                    raise HilError(f"{self.url}: INJECT_SAMPLES answered {r.status} without "
                                   "next_index / free_samples")
                nxt = _unwrap(int(res.next_index), acked)
                mine = inflight.pop(seq, None) is not None
                last_answer = time.monotonic()
                if r.status == ErrorCode.OK:
                    acked = max(acked, nxt)
                    limit = nxt + int(res.free_samples)
                    if mine:
                        stats["ok"] += 1
                        busy_streak = 0
                    for s2, (first, k) in list(inflight.items()):  # answered implicitly
                        if first + k <= acked:
                            del inflight[s2]
                    sent = max(sent, acked)  # a late answer may be ahead of a resend
                elif not mine:
                    continue  # an answer to a block already given up
                elif r.status in (ErrorCode.BUSY, ErrorCode.SEQUENCE):
                    if not 0 <= nxt <= total:
                        raise HilError(f"{self.url}: the device expects sample {nxt}, outside "
                                       f"the {total} injected; is another host using it?")
                    stats["busy" if r.status == ErrorCode.BUSY else "sequence"] += 1
                    busy_streak += r.status == ErrorCode.BUSY
                    limit = nxt + int(res.free_samples)
                    sent = acked = nxt
                    inflight.clear()
                else:
                    name = r.status.name if isinstance(r.status, ErrorCode) else r.status
                    raise HilError(f"{self.url}: INJECT_SAMPLES answered {name}")
            acked_ref[0] = acked
            if inflight and time.monotonic() - last_answer > INJECT_TIMEOUT_S:
                stats["timeouts"] += 1
                if stats["timeouts"] > 50 + total // 1000:
                    raise HilError(f"{self.url}: the device stopped answering INJECT_SAMPLES")
                inflight.clear()
                sent, limit = acked, None
            if progress is not None and acked - last_progress >= total / 200:
                last_progress = acked
                progress(acked / total)
        if progress is not None:
            progress(1.0)
        return stats


# --------------------------------------------------------------------------------------------
# URL -> device
# --------------------------------------------------------------------------------------------


@contextmanager
def connect(url: str, *, fs_hz: int = 360, gain_uv_per_count: float = 5.0
            ) -> Iterator[DeviceSession]:
    """A connected `DeviceSession` for a device URL (module docs); closed (and a spawned sim or
    QEMU ended) on exit. `fs_hz` and `gain_uv_per_count` set up a spawned sim only.

    This is the one function that turns a URL into a device. When the host SDK's
    ``ecgedge.connect(url)`` lands, replace its body with an adapter over the SDK's device
    (``dev.configure(...)`` + ``dev.inject(counts)``, whose report carries the beats) that
    offers `DeviceSession.inject`; nothing else in this module depends on the link.
    """
    text = url.strip()
    child: _Child | None = None
    if text in ("sim:", "sim://"):
        child, link = _spawn_sim(fs_hz, gain_uv_per_count)
    elif text.startswith("sim:"):
        raise HilError(f"--device {url}: use sim:// alone; validation injects the records into "
                       "an injection-only virtual device")
    elif text.startswith("qemu://"):
        rest = text[len("qemu://"):]
        child, link = _spawn_qemu(Path(rest).expanduser().resolve() if rest else None)
    elif text.startswith("socket://"):
        m = re.fullmatch(r"socket://([^:/]+):(\d+)/?", text)
        if m is None:
            raise HilError(f"--device {url}: give socket://HOST:PORT, e.g. socket://127.0.0.1:5555")
        link = _SocketLink(m.group(1), int(m.group(2)))
    else:
        link = _SerialLink(text)
    session = DeviceSession(link, child)
    try:
        try:
            session.info  # noqa: B018 - GET_INFO: is a device there?
        except HilError as exc:
            extra = f"\n{child.what} said: {child.output()}" if child is not None else ""
            raise HilError(f"{exc}{extra}") from None
        yield session
    finally:
        session.close()


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def validate_qrs_device(url: str, db: str | PathLike[str], records: list[str] | None = None,
                        channel: int = 0, start_s: float = LEARNING_PERIOD_S,
                        annotator: str = DEFAULT_ANNOTATOR, mains_hz: int | None = 50,
                        progress: bool = False) -> QrsReport:
    """`validation.qrs.validate_qrs` with the beats of a device: each record's channel is
    injected into the device at `url` (one connection for the whole run) and the device's beats
    are scored exactly like the host's.

    Raises:
        DatabaseError: as `validate_qrs` (database, records, channel).
        HilError: the device cannot be reached or used, or a beat was lost on the link (the
            score would be wrong; the message says how many).
    """
    from ..sim.record import SimError, load_record

    root = Path(db)
    with _LazySession(url) as lazy:

        def detect(name: str, advance: Callable[[float], None]) -> Detection:
            try:
                rec = load_record(root / name, [channel])
            except SimError as exc:
                raise DatabaseError(f"record {name!r}: {exc}") from exc
            n = len(rec.counts)
            lead = rec.sig_names[0] if rec.sig_names else f"signal {channel}"
            if scored_start(n, rec.fs_hz, start_s) is None:  # not scored: do not inject it
                return Detection(np.zeros(0, np.int64), n, float(rec.fs_hz), lead,
                                 rec.invalid_samples)
            session = lazy.get(rec.fs_hz, rec.gain_uv_per_count)
            inj = session.inject(rec.counts[:, 0], fs_hz=rec.fs_hz,
                                 gain_uv_per_count=rec.gain_uv_per_count, mains_hz=mains_hz,
                                 progress=advance)
            lost = inj.gaps.get("BEAT_EVENT", 0)
            bad = sum(inj.rx.values()) - inj.rx["frames_ok"] + inj.malformed
            if lost or bad:  # a bad frame may have been a beat, even the last one (no gap)
                raise HilError(f"{session.url}: record {name}: the link lost frames ({lost} "
                               f"beat event(s) missing, {bad} bad frame(s): {inj.rx}); not "
                               "scoring a beat list that may be incomplete")
            # the device's counter starts at START_STREAM = record sample 0
            return Detection(inj.beats, n, float(rec.fs_hz), lead, rec.invalid_samples)

        return run_validation(root, detect, records, channel, start_s, annotator, progress)


class _LazySession:
    """Connects on the first record that needs the device (so bad databases fail first)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._cm: Any = None
        self.session: DeviceSession | None = None

    def get(self, fs_hz: int, gain_uv_per_count: float) -> DeviceSession:
        if self.session is None:
            self._cm = connect(self.url, fs_hz=fs_hz, gain_uv_per_count=gain_uv_per_count)
            self.session = self._cm.__enter__()
        return self.session

    def __enter__(self) -> "_LazySession":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._cm is not None:
            self._cm.__exit__(*exc)

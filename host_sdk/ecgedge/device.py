"""An ecgedge device over any transport, for asyncio: `Device`.

    import ecgedge

    async with ecgedge.connect_async("sim://?speed=max") as dev:  # serial://, socket://, qemu://
        print(await dev.info())
        async with dev.stream() as blocks:                            # START_STREAM ... STOP_STREAM
            async for item in blocks:
                if isinstance(item, ecgedge.Gap):
                    print("lost", item.samples, "samples")
                else:
                    print(item.first_index, item.mv.shape)            # (n, leads) millivolts

Layers: a `Transport` (``ecgedge.transports``) moves bytes; one reader task feeds them to
`protocol.FrameDecoder` (COBS + CRC, §2 counters), tracks sequence numbers per stream
(`protocol.SeqTracker`, §4) and the 32-bit sample counter (unwrapped to 64 bits), and hands out

- command responses, matched to their command by ``seq`` (§5; timeout and retry of idempotent
  commands, `DeviceTimeout` / `DeviceError` / `ProtocolVersionError`);
- `SampleBlock`s, `Beat`s and `Status` reports to subscribers (`stream()`, `beats()`, `events()`),
  with a `Gap` event wherever frames were lost (sequence gap) or the sample counter jumped; data is
  never joined across a gap and a corrupted frame is never delivered (CRC, §2).

Iterators (`stream()`, `beats()`, `events()`) subscribe when called and end when the stream they
follow ends: the `STOP_STREAM` response (which comes after the device has flushed its last block and
pending beats, §5.4), a device reboot, or `close()`. An iterator made while no stream runs follows
the next one. `stream(start=True)` (the default) restarts the device's stream from sample 0 and
stops it again when the iterator is closed (`async with`, `aclose()`).

All methods must be called from the event loop the device was opened in; `ecgedge.sync.Device`
(what `ecgedge.connect` returns) wraps this class for scripts without asyncio.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Union

import numpy as np
import numpy.typing as npt

from . import protocol as p
from .backfill import BackfillStage, BackfillStats, ReconnectPolicy, reconnect
from .errors import DeviceError, DeviceTimeout, ProtocolVersionError, TransportError
from .protocol import BeatClass, Capability, ConfigSet, Content, ErrorCode, FrameType, Source
from .transports import transport_for_url
from .transports.base import Transport

from .alerts import Alerts, AlertStatus, parse_notice

if TYPE_CHECKING:
    from .recording import Recording
    from .update import ModelInfo

__all__ = ["Beat", "BeatQuality", "Device", "DeviceInfo", "EventStream", "Gap", "InjectReport",
           "LinkCounters", "SampleBlock", "Status", "TimeSync", "open_device"]

DEFAULT_TIMEOUT_S = 1.0  #: wait per command attempt (the protocol suggests 500 ms)
DEFAULT_RETRIES = 2  #: extra attempts for idempotent commands
STOP_TIMEOUT_S = 10.0  #: STOP_STREAM waits for the device to flush (§5.4)
#: Commands safe to repeat with a new seq when no answer came (§5: "retry with a new seq").
_IDEMPOTENT = frozenset({FrameType.GET_INFO, FrameType.STOP_STREAM, FrameType.CONFIGURE,
                         FrameType.TIME_SYNC, FrameType.BACKFILL_REQUEST,
                         FrameType.ALERTS_PULL, FrameType.ALERTS_ACK, FrameType.ALERTS_CONFIGURE,
                         FrameType.ALERTS_GET_CONFIG})

_PREFIX = struct.Struct("<IBB")
_BEAT = struct.Struct("<IHBBB")
_STATUS = struct.Struct("<IBBBB8I")
_I16 = np.dtype("<i2")
_U32 = 1 << 32


# --------------------------------------------------------------------------------------------
# What the device reports
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceInfo:
    """`DEVICE_INFO` (docs/protocol.md §6.2), with the masks decoded."""

    protocol_version: int
    fw_version: tuple[int, int, int]
    core_version: tuple[int, int, int]
    leads: int
    model_id: int
    sample_rate_hz: int
    rates_hz: tuple[int, ...]  #: rates the device can be configured to
    gain_uv_per_count: float  #: µV per int16 count (the device's float32 value)
    capabilities: Capability
    mains_hz: int  #: current notch, 0 (none), 50 or 60
    content: Content
    source: Source

    @property
    def mv_per_count(self) -> float:
        """Millivolts per count: gain_uv_per_count / 1000."""
        return self.gain_uv_per_count / 1000.0

    @classmethod
    def from_fields(cls, c: Any) -> "DeviceInfo":
        caps = Capability(c.capabilities & sum(int(x) for x in Capability))
        try:
            content, source = Content(c.content), Source(c.source)
        except ValueError:  # a newer device's value
            content, source = c.content, c.source
        return cls(int(c.protocol_version), (c.fw_major, c.fw_minor, c.fw_patch),
                   (c.core_major, c.core_minor, c.core_patch), int(c.leads), int(c.model_id),
                   int(c.sample_rate_hz),
                   tuple(r for i, r in enumerate(p.RATES_HZ) if c.rates_mask >> i & 1),
                   float(c.gain_uv_per_count), caps, int(c.mains_hz), content, source)

    def as_dict(self) -> dict[str, Any]:
        """Plain values (for JSON)."""
        d = asdict(self)
        d["capabilities"] = [c.name for c in Capability if c in self.capabilities]
        d["content"] = getattr(self.content, "name", self.content)
        d["source"] = getattr(self.source, "name", self.source)
        d["fw_version"] = ".".join(map(str, self.fw_version))
        d["core_version"] = ".".join(map(str, self.core_version))
        return d


@dataclass(frozen=True, slots=True)
class SampleBlock:
    """One `SAMPLE_BLOCK` (§6.3): `n` sample instants of every lead.

    Attributes:
        counts: (n, leads) int16 counts as sent (read-only; ``.copy()`` to modify).
        mv: (n, leads) float64 millivolts, ``counts * gain_uv_per_count / 1000``. (The device's
            own detector sees float32 ``float32(count) * float32(gain / 1000)``, see
            `ecgedge.sim.counts_to_mv`.)
        first_index: sample counter of the first instant since START_STREAM, unwrapped to 64 bits.
        fs: sampling rate, Hz.
        seq: the frame's sequence number (§4).
        flags: the block's flags byte (content, injected, lead off).
        host_time: host wall-clock time (s since the epoch) of the first instant, from the best
            `time_sync()` of this stream; None before one (or when the device cannot sync).
    """

    counts: npt.NDArray[np.int16]
    mv: npt.NDArray[np.float64]
    first_index: int
    fs: float
    seq: int
    flags: int = 0
    host_time: float | None = None

    @property
    def n(self) -> int:
        return int(self.counts.shape[0])

    @property
    def leads(self) -> int:
        return int(self.counts.shape[1])

    @property
    def end_index(self) -> int:
        """Sample counter just after the block."""
        return self.first_index + int(self.counts.shape[0])

    @property
    def timestamp(self) -> float:
        """Device time of the first instant, seconds since START_STREAM (exact: index / fs)."""
        return self.first_index / self.fs

    @property
    def content(self) -> Content:
        return Content(self.flags & 0x03)

    @property
    def injected(self) -> bool:
        return bool(self.flags & p.SampleFlag.INJECTED)

    @property
    def lead_off(self) -> bool:
        return bool(self.flags & p.SampleFlag.LEAD_OFF)


@dataclass(frozen=True, slots=True)
class Gap:
    """Data that did not arrive. Never joined over: the next item starts after the hole.

    Attributes:
        stream: "samples" or "beats".
        start_index: first missing sample index (the one expected next); None when unknown.
        end_index: sample index where data resumes (the next block's first_index); None when
            unknown (the stream ended: reboot).
        frames: frames lost, from sequence numbers (0 when only the sample counter showed it).
        reason: "lost" (frames lost on the way or dropped by the device), "restart" (the sample
            counter went back: a new stream this host did not start), "reboot" (the device
            restarted; the stream ended).
        fs: sampling rate, Hz.
    """

    stream: str
    start_index: int | None
    end_index: int | None
    frames: int
    reason: str
    fs: float

    @property
    def samples(self) -> int | None:
        """Sample instants missing (None when unknown)."""
        if self.start_index is None or self.end_index is None:
            return None
        return self.end_index - self.start_index

    @property
    def duration_s(self) -> float | None:
        n = self.samples
        return None if n is None or not self.fs else n / self.fs


class BeatQuality(IntEnum):
    """Signal quality of a beat (`ecg_qrs_quality_t`, `ecgedge.core.Quality`)."""

    GOOD = 0
    NOISY = 1
    UNUSABLE = 2


@dataclass(frozen=True, slots=True)
class Beat:
    """One `BEAT_EVENT` (§6.4).

    Attributes:
        index: R peak on the sample counter (unwrapped), like `SampleBlock.first_index`.
        rr_samples: interval to the previous beat in samples (0 for the first; saturates at 65535).
        beat_class: AAMI class (`BeatClass.NONE` when the device has no classifier).
        quality: `BeatQuality`.
        search_back: found by search-back.
        fs: sampling rate, Hz.
        seq: the frame's sequence number.
        confidence: the classifier's confidence in `beat_class`, 0.5..1 (the BEAT_EVENT byte /
            255, §6.4); None when the device sends none (no capability BEAT_CONFIDENCE).

    A classifying device sends each beat one beat late (its RR features need the next beat).
    """

    index: int
    rr_samples: int
    beat_class: BeatClass | int
    quality: BeatQuality | int
    search_back: bool
    fs: float
    seq: int
    confidence: float | None = None

    @property
    def time_s(self) -> float:
        """R-peak time, seconds since START_STREAM."""
        return self.index / self.fs

    @property
    def rr_s(self) -> float | None:
        return self.rr_samples / self.fs if self.rr_samples else None

    @property
    def heart_rate_bpm(self) -> float | None:
        """60 / RR, beats per minute (None for the first beat)."""
        return 60.0 * self.fs / self.rr_samples if self.rr_samples else None


@dataclass(frozen=True)
class Status:
    """`STATUS` (§6.5): the device's health and its own counters (cumulative since boot)."""

    index: int
    battery_pct: int | None
    lead_off: int
    buffer_fill_pct: int
    streaming: bool
    injecting: bool
    samples_dropped: int
    frames_dropped: int
    rx_crc_errors: int
    rx_cobs_errors: int
    rx_truncated: int
    rx_oversize: int
    rx_bad_version: int
    rx_unknown_type: int
    seq: int
    received_at: float  #: host time.monotonic() when it arrived


@dataclass(frozen=True)
class TimeSync:
    """A `TIME_SYNC` round trip (§5.2)."""

    host_time_us: int  #: host wall clock (µs since the epoch) when sent
    device_time_us: int  #: device clock (µs since boot) when handled
    sample_index: int  #: the sample counter's next index at that moment (unwrapped)
    rtt_us: int  #: round trip, µs

    @property
    def host_time_of_device_s(self) -> float:
        """Host wall-clock time (s) of `device_time_us`: host_time + rtt / 2."""
        return (self.host_time_us + self.rtt_us / 2) / 1e6


@dataclass
class InjectReport:
    """What `Device.inject` did."""

    samples: int = 0  #: sample instants the device accepted
    blocks: int = 0  #: INJECT_SAMPLES blocks accepted
    busy: int = 0  #: BUSY answers (no room; nothing taken)
    sequence: int = 0  #: SEQUENCE answers (resent from the device's next_index)
    timeouts: int = 0  #: unanswered blocks (resent)
    next_index: int = 0  #: the device's next expected index at the end
    elapsed_s: float = 0.0
    beats: list[Beat] = field(default_factory=list)  #: beats received during the call
    beat_gaps: int = 0  #: BEAT_EVENT frames lost during the call

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass(frozen=True)
class LinkCounters:
    """Host-side counters (§2, §4) and the device's latest `Status`. Cumulative since open."""

    frames_ok: int
    crc_errors: int
    cobs_errors: int
    truncated: int
    oversize: int
    bad_version: int
    unknown_type: int
    malformed: int  #: frames whose payload did not fit their type (§2, message layer)
    late: int  #: duplicate or late frames (dropped)
    frames_lost: dict[str, int]  #: per stream, from sequence numbers
    gaps: int  #: sample gap events
    samples_lost: int  #: sample instants in sample gaps
    device: Status | None

    @property
    def rx_errors(self) -> int:
        """Frames the host dropped for any §2 reason."""
        return (self.crc_errors + self.cobs_errors + self.truncated + self.oversize
                + self.bad_version + self.unknown_type)


Event = Union[SampleBlock, Gap, Beat, Status]


# --------------------------------------------------------------------------------------------
# Receive path: bytes -> events (no asyncio; benchmarked by tools/bench_sdk.py)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Reply:
    seq: int
    cmd_type: int
    status: ErrorCode | int
    result: Any
    body: bytes


@dataclass(frozen=True, slots=True)
class _Marker:
    kind: Literal["start", "end"]
    reason: str = ""


_STREAM_OF = {FrameType.SAMPLE_BLOCK: "samples", FrameType.BEAT_EVENT: "beats",
              FrameType.STATUS: "status", FrameType.DEVICE_INFO: "info"}


class Receiver:
    """The host's receive path: bytes in, events out (`SampleBlock`, `Gap`, `Beat`, `Status`,
    `DeviceInfo`, and internal replies and stream markers).

    Sample and beat indices are unwrapped against the latest index seen; sample gaps come from
    both the SAMPLE_BLOCK sequence numbers and the sample counter (a block that does not start where
    the previous one ended). `want_samples` False skips building `SampleBlock` arrays (the gaps and
    counters are still kept).
    """

    def __init__(self) -> None:
        self.decoder = p.FrameDecoder(p.Accept.TO_HOST)
        self.backfill = BackfillStage()  #: puts replayed blocks back in place (§12)
        self.tracker = p.SeqTracker()
        self.malformed = 0
        self.late = 0
        self.gaps = 0
        self.samples_lost = 0
        self.want_samples = False
        self.fs = 0.0
        self.mv_per_count = 0.0
        self.streaming = False  #: a stream is believed to run (START seen, or data arriving)
        self.expected: int | None = None  #: next sample index of the stream (unwrapped)
        self.ref = 0  #: latest unwrapped index, for unwrapping the next 32-bit one
        self.sync_t0: float | None = None  #: host time of sample `sync_index`
        self.sync_index = 0
        self.sync_rtt_us: int | None = None

    def set_format(self, info: DeviceInfo) -> None:
        self.fs = float(info.sample_rate_hz)
        self.mv_per_count = info.mv_per_count
        self.backfill.enabled = Capability.BACKFILL in info.capabilities

    def begin_stream(self) -> None:
        """A START_STREAM is about to be (or was) accepted: the counter restarts at 0."""
        self.expected = 0
        self.ref = 0
        self.sync_t0 = None
        self.sync_rtt_us = None

    def unwrap(self, index32: int) -> int:
        d = (index32 - self.ref) & 0xFFFFFFFF
        if d >= 0x80000000:
            d -= _U32
        return self.ref + d

    def note_sync(self, ts: TimeSync) -> None:
        if self.sync_rtt_us is None or ts.rtt_us <= self.sync_rtt_us:
            self.sync_rtt_us = ts.rtt_us
            self.sync_t0 = ts.host_time_of_device_s
            self.sync_index = ts.sample_index

    def feed(self, data: bytes) -> list[Any]:
        """Decode `data`; return the events in arrival order."""
        out: list[Any] = []
        append = out.append
        update = self.tracker.update
        SB, BE, ST, RS, DI = (FrameType.SAMPLE_BLOCK, FrameType.BEAT_EVENT, FrameType.STATUS,
                              FrameType.RESPONSE, FrameType.DEVICE_INFO)
        for f in self.backfill.process(self.decoder.feed(data)):
            t = f.type
            if t is SB:
                payload = f.payload
                nb = len(payload)
                if nb < 8:
                    self.malformed += 1
                    continue
                idx32, leads, flags = _PREFIX.unpack_from(payload)
                if not 1 <= leads <= 8 or (nb - 6) % (2 * leads):
                    self.malformed += 1
                    continue
                lost = update(f)
                if lost < 0:
                    self.late += 1
                    continue
                self.streaming = True
                n = (nb - 6) // (2 * leads)
                d = (idx32 - self.ref) & 0xFFFFFFFF
                idx = self.ref + (d - _U32 if d >= 0x80000000 else d)
                exp = self.expected
                if exp is not None and (idx != exp or lost):
                    self.gaps += 1
                    if idx > exp:
                        self.samples_lost += idx - exp
                    append(Gap("samples", exp, idx, lost, "lost" if idx >= exp else "restart",
                               self.fs))
                end = idx + n
                self.expected = self.ref = end
                if self.want_samples:
                    counts = np.frombuffer(payload, _I16, n * leads, 6).reshape(n, leads)
                    t0 = self.sync_t0
                    mv: npt.NDArray[np.float64] = counts * self.mv_per_count  # type: ignore
                    append(SampleBlock(counts, mv, idx, self.fs, f.seq,
                                       flags, None if t0 is None
                                       else t0 + (idx - self.sync_index) / self.fs))
            elif t is BE:
                if len(f.payload) < 9:
                    self.malformed += 1
                    continue
                lost = update(f)
                if lost < 0:
                    self.late += 1
                    continue
                self.streaming = True
                idx32, rr, cls, quality, flags = _BEAT.unpack_from(f.payload)
                if lost:
                    append(Gap("beats", None, None, lost, "lost", self.fs))
                try:
                    cls = BeatClass(cls)
                except ValueError:
                    pass
                try:
                    quality = BeatQuality(quality)
                except ValueError:
                    pass
                conf = f.payload[9] if len(f.payload) > 9 else 0  # §6.4: 0 or absent: none
                append(Beat(self.unwrap(idx32), rr, cls, quality, bool(flags & 1), self.fs,
                            f.seq, conf / 255.0 if conf else None))
            elif t is RS:
                try:
                    r = p.parse_response(f.payload)
                except p.ProtocolError:
                    self.malformed += 1
                    continue
                if r.status == ErrorCode.OK:
                    if r.cmd_type == FrameType.START_STREAM:
                        self.begin_stream()
                        self.streaming = True
                        append(_Marker("start"))
                    elif r.cmd_type == FrameType.STOP_STREAM and self.streaming:
                        self.streaming = False
                        append(_Marker("end", "stopped"))
                append(_Reply(f.seq, r.cmd_type, r.status, r.result, r.body))
            elif t is ST:
                if len(f.payload) < _STATUS.size:
                    self.malformed += 1
                    continue
                update(f)
                v = _STATUS.unpack_from(f.payload)
                append(Status(self.unwrap(v[0]), None if v[1] == 255 else v[1], v[2], v[3],
                              bool(v[4] & 1), bool(v[4] & 2), v[5], v[6], v[7], v[8], v[9],
                              v[10], v[11], v[12], f.seq, time.monotonic()))
            elif t == FrameType.ALERT_NOTICE:
                try:
                    notice = parse_notice(f.payload)
                except p.ProtocolError:
                    self.malformed += 1
                    continue
                update(f)
                append(notice)
            elif t is DI:
                update(f)
                try:
                    info = DeviceInfo.from_fields(p.parse_payload(t, f.payload))
                except p.ProtocolError:
                    self.malformed += 1
                    continue
                if f.seq == 0 and self.streaming:  # rebooted (§4): the stream is gone
                    self.streaming = False
                    append(Gap("samples", self.expected, None, 0, "reboot", self.fs))
                    append(_Marker("end", "reboot"))
                    self.expected = None
                append(info)
        return out

    def counters(self, status: Status | None) -> LinkCounters:
        s = self.decoder.stats
        lost = {name: self.tracker.gaps.get(t, 0) for t, name in _STREAM_OF.items()}
        return LinkCounters(s.frames_ok, s.crc_errors, s.cobs_errors, s.truncated, s.oversize,
                            s.bad_version, s.unknown_type, self.malformed, self.late, lost,
                            self.gaps, self.samples_lost, status)


# --------------------------------------------------------------------------------------------
# Subscriptions and iterators
# --------------------------------------------------------------------------------------------

_END = object()
#: A sample subscription holding this many events makes the reader wait for its consumer
#: (backpressure: the link, then the device, hold the data; a device that cannot wait drops
#: frames and the host reports gaps). Beat and status subscriptions are not bounded.
HIGH_WATER = 8192


class _Subscription:
    """A queue of events of some kinds for one consumer."""

    def __init__(self, kinds: frozenset[str], started: bool) -> None:
        self.kinds = kinds
        self.started = started  # ends only at the end of a stream it has seen start
        self.items: deque[Any] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.error: BaseException | None = None
        self.done = False
        self.bounded = "samples" in kinds
        self.room = asyncio.Event()
        self.room.set()

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def offer(self, ev: Any) -> None:
        if self.done:
            return
        if isinstance(ev, _Marker):
            if ev.kind == "start":
                self.started = True
            elif self.started:
                self.items.append(_END)
                self.done = True
                self._wake()
            return
        self.items.append(ev)
        self._wake()
        if self.bounded and len(self.items) >= HIGH_WATER:
            self.room.clear()

    def finish(self, error: BaseException | None = None) -> None:
        if not self.done:
            self.error = error
            self.items.append(_END)
            self.done = True
            self._wake()
        self.room.set()

    async def batch(self) -> list[Any]:
        """All queued events (at least one); [] at the end; raises the link's error."""
        while not self.items:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        items = self.items
        out: list[Any] = []
        while items:
            ev = items.popleft()
            if ev is _END:
                items.appendleft(_END)
                if not out and self.error is not None:
                    raise self.error
                break
            out.append(ev)
        self.room.set()
        return out


class EventStream:
    """Async iterator over a device's events (made by `Device.stream`, `beats`, `events`).

    Use it as ``async with dev.stream() as s: async for item in s: ...`` so the stream is
    stopped and the subscription dropped when you leave; `aclose()` does the same.
    """

    def __init__(self, device: "Device", kinds: frozenset[str], *, start: bool,
                 stop_on_exit: bool) -> None:
        self._device = device
        self._start = start
        self._stop_on_exit = stop_on_exit and start
        self._begun = not start
        self._closed = False
        self._buf: deque[Any] = deque()
        self._sub = device._subscribe(kinds, False if start else None)

    async def _begin(self) -> None:
        self._begun = True
        await self._device._restart_stream()

    async def next_batch(self) -> list[Any]:
        """The events available now (waits for at least one); [] once the stream ended."""
        if not self._begun:
            await self._begin()
        if self._buf:
            out = list(self._buf)
            self._buf.clear()
            return out
        if self._closed:
            return []
        out = await self._sub.batch()
        if not out:
            await self.aclose()
        return out

    def __aiter__(self) -> "EventStream":
        return self

    async def __anext__(self) -> Any:
        if not self._buf:
            batch = await self.next_batch()
            if not batch:
                raise StopAsyncIteration
            self._buf.extend(batch)
        return self._buf.popleft()

    async def aclose(self) -> None:
        """Unsubscribe; stop the device's stream if this iterator started it."""
        if self._closed:
            return
        self._closed = True
        self._device._unsubscribe(self._sub)
        if self._stop_on_exit and self._begun and self._device.is_open:
            try:
                await self._device.stop()
            except (DeviceTimeout, DeviceError, TransportError):
                pass  # best effort: the device may be gone

    async def __aenter__(self) -> "EventStream":
        if not self._begun:
            await self._begin()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()


# --------------------------------------------------------------------------------------------
# The device
# --------------------------------------------------------------------------------------------

_UNSET: Any = object()


class Device:
    """One ecgedge device over a `Transport`; see the module docstring.

    Args:
        transport: an unconnected transport (see `ecgedge.transports.transport_for_url`).
        timeout: seconds to wait for each command's answer.
        retries: extra attempts for idempotent commands (GET_INFO, STOP_STREAM, CONFIGURE,
            TIME_SYNC) after a timeout.

    Open with `open()` (or ``async with Device(t)``, or `ecgedge.connect_async(url)`).
    """

    def __init__(self, transport: Transport, *, timeout: float = DEFAULT_TIMEOUT_S,
                 retries: int = DEFAULT_RETRIES) -> None:
        self.transport = transport
        self.timeout = float(timeout)
        self.retries = int(retries)
        self._rx = Receiver()
        self._seq = 0
        self._pending: dict[int, asyncio.Future[_Reply]] = {}
        self._subs: list[_Subscription] = []
        self._reader: asyncio.Task[None] | None = None
        self._write_lock: asyncio.Lock | None = None
        self._info: DeviceInfo | None = None
        self._status: Status | None = None
        self._error: BaseException | None = None
        self._open = False
        self._inject_next = 0
        self.alerts = Alerts(self)  #: rhythm alerts: pull, ack, configure, notices
        #: reconnect with back-off when a link that can (BLE) breaks (`ecgedge.backfill`)
        self.reconnect_policy = ReconnectPolicy()
        self.reconnects = 0  #: links re-established so far
        #: coroutines run after each reconnect, e.g. to pull alerts again: ``hook(device)``
        self.after_reconnect: list[Callable[[Device], Awaitable[None]]] = []

    # ------------------------------------------------------------------ lifecycle

    @property
    def is_open(self) -> bool:
        return self._open and self._error is None

    async def open(self) -> "Device":
        """Connect the transport, start the reader, and read DEVICE_INFO.

        Raises:
            TransportError, DeviceTimeout, ProtocolVersionError.
        """
        await self.transport.connect()
        self._write_lock = asyncio.Lock()
        self._open = True
        self._reader = asyncio.get_running_loop().create_task(self._read_loop(),
                                                              name="ecgedge-reader")
        try:
            await self.transport.write(b"\x00")  # flush the device's partial frame (§1)
            await self.info()
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self) -> None:
        """Stop a stream this host started (best effort), close the link; idempotent."""
        if not self._open:
            return
        for sub in self._subs:  # end the iterators (and release a reader held by one)
            sub.finish()
        self._subs.clear()
        self._rx.want_samples = False
        if self._rx.streaming and self._error is None:
            try:
                await self.request(FrameType.STOP_STREAM, timeout=0.5, retries=0)
            except Exception:
                pass
        self._open = False
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            try:
                await reader
            except BaseException:
                pass
        await self.transport.close()
        err = TransportError(f"{self.transport.describe()}: the device was closed")
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(err)
        self._pending.clear()

    async def __aenter__(self) -> "Device":
        if not self._open:
            await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"<ecgedge.device.Device {self.transport.describe()} ({state})>"

    # ------------------------------------------------------------------ receive side

    async def _read_loop(self) -> None:
        try:
            while True:
                for sub in list(self._subs):
                    if not sub.room.is_set():
                        await sub.room.wait()  # a slow consumer: let the link hold the data
                try:
                    data = await self.transport.read()
                except TransportError as exc:
                    if await reconnect(self, exc):
                        continue
                    raise
                for ev in self._rx.feed(data):
                    self._dispatch(ev)
                self._rx.backfill.kick(self)
        except asyncio.CancelledError:
            raise
        except TransportError as exc:
            self._fail(exc)
        except Exception as exc:  # a bug in the receive path: report it, don't hang
            self._fail(TransportError(f"{self.transport.describe()}: receive failed: {exc!r}"))

    def _fail(self, exc: BaseException) -> None:
        self._error = exc
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(exc)
        self._pending.clear()
        for sub in self._subs:
            sub.finish(exc)

    def _dispatch(self, ev: Any) -> None:
        if isinstance(ev, _Reply):
            fut = self._pending.pop(ev.seq, None)
            if fut is not None and not fut.done():
                fut.set_result(ev)
            return
        if isinstance(ev, AlertStatus):
            self.alerts._on_notice(ev)
            return
        if isinstance(ev, DeviceInfo):
            self._info = ev
            self._rx.set_format(ev)
            return
        if isinstance(ev, Status):
            self._status = ev
        for sub in self._subs:
            if isinstance(ev, SampleBlock):
                if "samples" in sub.kinds:
                    sub.offer(ev)
            elif isinstance(ev, Beat):
                if "beats" in sub.kinds:
                    sub.offer(ev)
            elif isinstance(ev, Gap):
                if ev.stream in sub.kinds:
                    sub.offer(ev)
            elif isinstance(ev, Status):
                if "status" in sub.kinds:
                    sub.offer(ev)
            else:
                sub.offer(ev)  # stream markers

    def _subscribe(self, kinds: Iterable[str], started: bool | None = None) -> _Subscription:
        """A new subscription. `started` None: it follows the running stream, if any, else
        the next; False: the next stream to start; True: ends at the next stream end."""
        if self._error is not None:
            raise self._error
        if not self._open:
            raise TransportError("the device is not open")
        sub = _Subscription(frozenset(kinds),
                            started=self._rx.streaming if started is None else started)
        self._subs.append(sub)
        self._rx.want_samples = any("samples" in s.kinds for s in self._subs)
        return sub

    def _unsubscribe(self, sub: _Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
        sub.finish()
        self._rx.want_samples = any("samples" in s.kinds for s in self._subs)

    # ------------------------------------------------------------------ commands

    def _new_request(self) -> tuple[int, asyncio.Future[_Reply]]:
        self._seq = (self._seq + 1) & 0xFFFF
        fut: asyncio.Future[_Reply] = asyncio.get_running_loop().create_future()
        self._pending[self._seq] = fut
        return self._seq, fut

    async def _send(self, ftype: FrameType, seq: int, payload: bytes) -> None:
        if self._error is not None:
            raise self._error
        if not self._open or self._write_lock is None:
            raise TransportError("the device is not open")
        frame = p.encode_frame(ftype, seq, payload)
        async with self._write_lock:
            await self.transport.write(frame)

    async def request(self, ftype: FrameType, payload: bytes = b"", *,
                      timeout: float | None = None, retries: int | None = None,
                      check: bool = True) -> _Reply:
        """Send one command and wait for its RESPONSE (matched by seq).

        Idempotent commands are resent with a new seq after a timeout (`retries` times); an
        answer to any attempt counts. For STOP_STREAM, a BUSY answer to a resend means the first
        STOP is still flushing, so the wait goes on.

        Raises:
            DeviceError: a non-OK status (when `check`). DeviceTimeout: no answer.
            ProtocolVersionError: no answer while frames of another version arrived.
            TransportError: the link failed.
        """
        tmo = self.timeout if timeout is None else timeout
        if ftype == FrameType.STOP_STREAM and timeout is None:
            tmo = max(tmo, STOP_TIMEOUT_S / (1 + self.retries))
        n_retries = (self.retries if retries is None else retries) if ftype in _IDEMPOTENT else 0
        bad_version0 = self._rx.decoder.stats.bad_version
        futs: dict[asyncio.Future[_Reply], int] = {}
        try:
            for _attempt in range(1 + n_retries):
                seq, fut = self._new_request()
                futs[fut] = seq
                await self._send(ftype, seq, payload)
                loop = asyncio.get_running_loop()
                deadline = loop.time() + tmo
                while futs:
                    left = deadline - loop.time()
                    if left <= 0:
                        break
                    done, _ = await asyncio.wait(list(futs), timeout=left,
                                                 return_when=asyncio.FIRST_COMPLETED)
                    if not done:
                        break
                    for f in done:
                        reply = f.result()  # raises the link's error
                        del futs[f]
                        if (ftype == FrameType.STOP_STREAM and reply.status == ErrorCode.BUSY
                                and futs):
                            continue  # an earlier STOP is still flushing
                        if check and reply.status != ErrorCode.OK:
                            raise DeviceError(reply.status, ftype)
                        return reply
        finally:
            for f, seq in futs.items():
                self._pending.pop(seq, None)
                f.cancel()
        if self._rx.decoder.stats.bad_version > bad_version0:
            raise ProtocolVersionError(
                f"{self.transport.describe()}: no answer to {ftype.name}, and frames of another "
                f"protocol version arrived ({self._rx.decoder.stats.bad_version} so far); this "
                f"SDK speaks version {p.PROTOCOL_VERSION}: update the SDK or the firmware")
        raise DeviceTimeout(f"{self.transport.describe()}: no answer to {ftype.name} within "
                            f"{tmo:g} s ({1 + n_retries} attempt(s))", ftype, tmo)

    async def info(self) -> DeviceInfo:
        """Ask the device for its DEVICE_INFO (GET_INFO).

        Raises:
            ProtocolVersionError: the device reports another protocol version.
        """
        r = await self.request(FrameType.GET_INFO)
        if r.result is None:
            raise DeviceError(ErrorCode.LENGTH, FrameType.GET_INFO, "empty DEVICE_INFO")
        info = DeviceInfo.from_fields(r.result)
        if info.protocol_version != p.PROTOCOL_VERSION:
            raise ProtocolVersionError(
                f"{self.transport.describe()}: the device speaks protocol version "
                f"{info.protocol_version}, this SDK version {p.PROTOCOL_VERSION}")
        self._info = info
        self._rx.set_format(info)
        return info

    @property
    def last_info(self) -> DeviceInfo:
        """The DEVICE_INFO received last (from `open`, `info`, `configure`, or unsolicited)."""
        if self._info is None:
            raise TransportError("the device is not open")
        return self._info

    @property
    def status(self) -> Status | None:
        """The latest STATUS the device sent (None before the first)."""
        return self._status

    @property
    def counters(self) -> LinkCounters:
        """Host receiver counters, sequence gaps and the device's latest STATUS."""
        return self._rx.counters(self._status)

    @property
    def backfill_stats(self) -> BackfillStats:
        """What backfill did on this link (docs/protocol.md §12): requests, blocks replayed,
        blocks the device no longer had; `reconnects` counts the links re-established."""
        return self._rx.backfill.stats

    def _require(self, cap: Capability, what: str) -> None:
        if self._info is not None and cap not in self._info.capabilities:
            raise DeviceError(ErrorCode.UNSUPPORTED, None,
                              f"{what} needs capability {cap.name}, which this device lacks")

    async def start(self) -> None:
        """START_STREAM: the sample counter restarts at 0 (STATE if a stream runs)."""
        self._rx.begin_stream()
        await self.request(FrameType.START_STREAM)

    async def stop(self) -> None:
        """STOP_STREAM: returns once the device has flushed the last block and pending beats."""
        await self.request(FrameType.STOP_STREAM)

    async def _restart_stream(self) -> None:
        """STOP (a no-op when stopped), START, then a time sync when the device can."""
        await self.stop()
        self._rx.begin_stream()
        try:
            await self.request(FrameType.START_STREAM)
        except DeviceTimeout:
            # The START may have been taken and its answer lost: ask again; STATE now means
            # it runs (we stopped it just before).
            try:
                await self.request(FrameType.START_STREAM)
            except DeviceError as exc:
                if exc.code != ErrorCode.STATE:
                    raise
            self._rx.streaming = True
        self._inject_next = 0
        if self._info is not None and Capability.TIME_SYNC in self._info.capabilities:
            try:
                await self.time_sync()
            except DeviceTimeout:
                pass  # timestamps stay device-relative

    async def configure(self, *, sample_rate_hz: int | None = None,
                        mains_hz: int | None = _UNSET, content: Content | int | None = None,
                        source: Source | int | None = None) -> DeviceInfo:
        """CONFIGURE the fields given (others stay); returns the new DEVICE_INFO.

        Args:
            sample_rate_hz: one of `DeviceInfo.rates_hz`.
            mains_hz: 50, 60, or 0 / None for no notch.
            content: `Content.RAW`, `FILTERED` or `BEATS_ONLY`.
            source: `Source.FRONT_END` or `Source.INJECT`.

        Raises:
            DeviceError: RANGE, UNSUPPORTED, or STATE (rate or source while streaming).
        """
        mask = ConfigSet(0)
        fields = dict(sample_rate_hz=0, mains_hz=0, content=0, source=0)
        if sample_rate_hz is not None:
            mask |= ConfigSet.RATE
            fields["sample_rate_hz"] = int(sample_rate_hz)
        if mains_hz is not _UNSET:
            mask |= ConfigSet.MAINS
            fields["mains_hz"] = int(mains_hz or 0)
        if content is not None:
            mask |= ConfigSet.CONTENT
            fields["content"] = int(content)
        if source is not None:
            mask |= ConfigSet.SOURCE
            fields["source"] = int(source)
        if mask:
            await self.request(FrameType.CONFIGURE,
                               p.build_payload(FrameType.CONFIGURE, dict(set_mask=int(mask),
                                                                         **fields)))
        return await self.info()

    async def time_sync(self) -> TimeSync:
        """TIME_SYNC round trip; the best (smallest RTT) one of a stream dates its blocks."""
        self._require(Capability.TIME_SYNC, "time_sync()")
        t_host = time.time_ns() // 1000
        t0 = time.perf_counter_ns()
        r = await self.request(FrameType.TIME_SYNC,
                               p.build_payload(FrameType.TIME_SYNC, dict(host_time_us=t_host)))
        rtt_us = (time.perf_counter_ns() - t0) // 1000
        res = r.result
        if res is None:
            raise DeviceError(ErrorCode.LENGTH, FrameType.TIME_SYNC, "answer without a body")
        ts = TimeSync(int(res.host_time_us), int(res.device_time_us),
                      self._rx.unwrap(int(res.sample_index)), int(rtt_us))
        self._rx.note_sync(ts)
        return ts

    # ------------------------------------------------------------------ personalization (§11)

    async def model_info(self) -> "ModelInfo":
        """The model id, active A/B slot, head version and µ-trainer fill (`ecgedge.update`)."""
        from . import update

        return await update.model_info(self)

    async def push_head(self, tables: Any, *, version: int | None = None, key: Any = None,
                        progress: Any = None) -> "ModelInfo":
        """Send a new classifier head as a signed package; see `ecgedge.update.push_head`."""
        from . import update

        return await update.push_head(self, tables, version=version, key=key, progress=progress)

    async def personalize(self, sample_index: npt.ArrayLike, classes: npt.ArrayLike, *,
                          version: int | None = None, key: Any = None,
                          progress: Any = None) -> "ModelInfo":
        """Label beats for the device's µ-trainer; see `ecgedge.update.personalize`."""
        from . import update

        return await update.personalize(self, sample_index, classes, version=version, key=key,
                                        progress=progress)

    async def reset_personalization(self, *, key: Any = None,
                                    version: int | None = None) -> "ModelInfo":
        """Back to the factory head, persisted (signed with the device key, replay-protected);
        see `ecgedge.update.reset_personalization`."""
        from . import update

        return await update.reset_personalization(self, key=key, version=version)

    # ------------------------------------------------------------------ data

    def stream(self, *, start: bool = True, stop_on_exit: bool = True) -> EventStream:
        """Sample blocks and gaps: an async iterator of `SampleBlock` | `Gap`.

        Args:
            start: restart the device's stream from sample 0 (STOP, START, TIME_SYNC) when the
                iteration begins; False joins whatever runs (or the next stream).
            stop_on_exit: STOP the stream when the iterator is closed (only if it started it).
        """
        return EventStream(self, frozenset({"samples"}), start=start, stop_on_exit=stop_on_exit)

    def beats(self) -> EventStream:
        """Beats of the current (or next) stream: an async iterator of `Beat` | `Gap`.

        Subscribes at once, so ``it = dev.beats(); await dev.inject(x)`` misses no beat; ends
        when that stream ends (after STOP_STREAM has flushed the pending beats).
        """
        return EventStream(self, frozenset({"beats"}), start=False, stop_on_exit=False)

    def events(self, *, start: bool = False, stop_on_exit: bool = True,
               kinds: Iterable[str] = ("samples", "beats", "status")) -> EventStream:
        """Every event of the given kinds, in arrival order: `SampleBlock`, `Beat`, `Gap`,
        `Status`."""
        return EventStream(self, frozenset(kinds), start=start, stop_on_exit=stop_on_exit)

    async def record(self, seconds: float, *, start: bool = True) -> "Recording":
        """Stream `seconds` of samples (counted on the device's sample counter, gaps included)
        into a `Recording`, with the beats that arrive meanwhile; stops the stream after."""
        from .recording import Recording

        info = self.last_info
        if info.source == Source.INJECT:
            raise DeviceError(ErrorCode.STATE, None, "the sample source is host injection, so "
                              "no samples would come; configure(source=Source.FRONT_END) first")
        rec = Recording(info.sample_rate_hz, info.leads, info.gain_uv_per_count)
        want = int(round(seconds * info.sample_rate_hz))
        async with self.events(start=start, kinds=("samples", "beats")) as s:
            async for item in s:
                rec.add(item)
                if rec.span >= want:
                    break
        rec.counters = self.counters
        return rec.trimmed(want)

    async def inject(self, samples: npt.ArrayLike, *, units: Literal["counts", "mV"] = "counts",
                     start: bool = True, stop: bool = True) -> InjectReport:
        """Feed samples to the device in place of its front end (§5.3) with flow control (§5.4).

        Every block ends at or below ``next_index + free_samples`` of the latest answer; a
        BUSY or SEQUENCE answer resends from the device's `next_index`; an unanswered block is
        resent (the device's SEQUENCE answer then says where it is).

        Args:
            samples: (n, leads) or (n,) for one lead; integer counts, or millivolts with
                ``units="mV"`` (rounded to counts with the device's gain).
            units: "counts" or "mV".
            start: switch the source to injection if needed and restart the stream at index 0;
                False continues the current injection stream.
            stop: STOP_STREAM at the end, so every beat has arrived when this returns (§5.4);
                a source this call switched to injection is switched back.

        Returns:
            An `InjectReport` with the beats that arrived during the call.

        Raises:
            DeviceError: UNSUPPORTED (no INJECT capability), CONFIG (wrong lead count), STATE.
            ValueError: samples of the wrong shape or type.
        """
        info = self.last_info
        self._require(Capability.INJECT, "inject()")
        counts = _as_counts(samples, units, info)
        report = InjectReport()
        t_start = time.perf_counter()
        sub = self._subscribe({"beats"}, started=not start)
        switched_from: Source | None = None
        try:
            if start:
                if info.source != Source.INJECT:
                    await self.stop()
                    switched_from = info.source
                    info = await self.configure(source=Source.INJECT)
                await self._restart_stream()
            await self._inject_blocks(counts, report, base=self._inject_next)
            if stop:
                await self.stop()
                if switched_from is not None:
                    await self.configure(source=switched_from)
        finally:
            self._unsubscribe(sub)
        for ev in sub.items:
            if isinstance(ev, Beat):
                report.beats.append(ev)
            elif isinstance(ev, Gap):
                report.beat_gaps += ev.frames
        report.elapsed_s = time.perf_counter() - t_start
        return report

    async def _inject_blocks(self, counts: npt.NDArray[np.int16], report: InjectReport,
                             base: int) -> None:
        total = len(counts)
        per_block = p.max_samples(counts.shape[1])
        sent = acked = 0  # offsets into counts
        limit: int | None = None  # offset bound from the latest answer (next_index + free)
        inflight: deque[tuple[int, asyncio.Future[_Reply]]] = deque()
        busy_streak = timeouts_streak = 0
        can_rebase = True  # base may be corrected by the device's first answer

        def forget_inflight() -> None:
            for seq, fut in inflight:
                self._pending.pop(seq, None)
                fut.cancel()
            inflight.clear()

        try:
            while acked < total:
                while sent < total:
                    n = min(per_block, total - sent)
                    if limit is None or sent + n > limit:
                        if inflight:
                            break
                        if busy_streak:  # nothing fits and nothing in flight: probe, gently
                            await asyncio.sleep(min(0.001 * 2 ** min(busy_streak, 6), 0.05))
                    seq, fut = self._new_request()
                    payload = p.encode_samples(counts[sent:sent + n], base + sent)
                    await self._send(FrameType.INJECT_SAMPLES, seq, payload)
                    inflight.append((seq, fut))
                    sent += n
                    if limit is None:
                        break  # learn the room from the first answer
                seq, fut = inflight[0]
                try:
                    reply = await asyncio.wait_for(asyncio.shield(fut), self.timeout)
                except asyncio.TimeoutError:
                    report.timeouts += 1
                    timeouts_streak += 1
                    if timeouts_streak > 1 + self.retries:
                        raise DeviceTimeout(
                            f"{self.transport.describe()}: no answer to INJECT_SAMPLES within "
                            f"{self.timeout:g} s ({timeouts_streak} times)",
                            FrameType.INJECT_SAMPLES, self.timeout) from None
                    forget_inflight()
                    sent, limit = acked, None  # resend; SEQUENCE will tell where the device is
                    continue
                inflight.popleft()
                timeouts_streak = 0
                res = reply.result
                if res is None:
                    raise DeviceError(reply.status, FrameType.INJECT_SAMPLES,
                                      "answer without next_index / free_samples")
                if reply.status == ErrorCode.SEQUENCE and can_rebase and acked == 0:
                    base = int(res.next_index)  # continuing a stream at the device's index
                next_off = (int(res.next_index) - base) & 0xFFFFFFFF
                limit = next_off + int(res.free_samples)
                can_rebase = False
                if reply.status == ErrorCode.OK:
                    report.blocks += 1
                    busy_streak = 0
                    acked = max(acked, next_off)
                elif reply.status in (ErrorCode.BUSY, ErrorCode.SEQUENCE):
                    if next_off > total:
                        raise DeviceError(reply.status, FrameType.INJECT_SAMPLES,
                                          f"the device expects index {res.next_index}, beyond "
                                          "the samples given")
                    if reply.status == ErrorCode.BUSY:
                        report.busy += 1
                        busy_streak += 1
                    else:
                        report.sequence += 1
                    forget_inflight()
                    sent = acked = next_off
                else:
                    raise DeviceError(reply.status, FrameType.INJECT_SAMPLES)
        finally:
            forget_inflight()
        report.samples = acked
        report.next_index = base + acked
        self._inject_next = base + acked


def _as_counts(samples: npt.ArrayLike, units: str, info: DeviceInfo) -> npt.NDArray[np.int16]:
    arr = np.asarray(samples)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"samples must be (n, leads) or (n,) with n >= 1, got shape {arr.shape}")
    if arr.shape[1] != info.leads:
        raise ValueError(f"samples have {arr.shape[1]} lead(s); the device has {info.leads}")
    if units == "mV":
        if arr.dtype.kind not in "fiu":
            raise ValueError(f"samples must be numeric, got {arr.dtype}")
        x = np.asarray(arr, dtype=np.float64) / info.mv_per_count
        if not np.isfinite(x).all():
            raise ValueError("samples contain NaN or infinity")
        return np.ascontiguousarray(np.clip(np.rint(x), -32768, 32767).astype(np.int16))
    if units != "counts":
        raise ValueError(f"units={units!r}: use 'counts' or 'mV'")
    if arr.dtype.kind not in "iu":
        raise ValueError(f"counts must be integers, got {arr.dtype}; pass units='mV' for "
                         "millivolts")
    if arr.dtype != np.int16 and (arr.min() < -32768 or arr.max() > 32767):
        raise ValueError("counts outside the int16 range")
    return np.ascontiguousarray(arr, dtype=np.int16)


async def open_device(target: str | Transport, *, backend: str | type[Transport] | None = None,
                      timeout: float = DEFAULT_TIMEOUT_S,
                      retries: int = DEFAULT_RETRIES) -> Device:
    """Make the transport for `target` (a URL or a `Transport`), open a `Device` on it."""
    transport = target if isinstance(target, Transport) else transport_for_url(target, backend)
    return await Device(transport, timeout=timeout, retries=retries).open()



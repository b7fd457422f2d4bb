"""Reconnect and backfill on the host (docs/protocol.md §12).

Two pieces the device layer (`ecgedge.device`) plugs in:

- `BackfillStage` sits between the frame decoder and the receive path. While sample blocks arrive
  in `seq` order it passes every frame through. When a SAMPLE_BLOCK shows a `seq` gap and the
  device has capability BACKFILL, it holds that block (and every later one, and the START/STOP
  answers that would end a stream) and asks the device for the missing range (BACKFILL_REQUEST).
  Replayed blocks (BACKFILL_BLOCK) are slotted in as the SAMPLE_BLOCKs they were; at BACKFILL_END
  (or when the request fails or times out) the stage releases everything in `seq` order. The
  receive path then sees an unbroken stream, and only blocks the device no longer had leave a
  `seq` gap, which it reports as a `Gap` as before. Beats, status and other answers are never
  held.
- `reconnect` is what the read loop does when the link breaks: if the transport can reconnect
  (BLE), it retries with exponential back-off, flushes the device's partial frame, re-asks a
  backfill that was under way, and runs the `Device.after_reconnect` hooks (e.g. to pull alerts
  again).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import protocol as p
from .errors import DeviceError, DeviceTimeout, TransportError
from .protocol import Frame, FrameType

if TYPE_CHECKING:
    from .device import Device

__all__ = ["BackfillStage", "BackfillStats", "ReconnectPolicy", "reconnect"]

HOLD_TIMEOUT_S = 5.0  #: a backfill that does not end within this time is given up (gaps remain)
MAX_HELD = 50_000  #: frames held at most while waiting for a backfill


@dataclass
class ReconnectPolicy:
    """How `reconnect` retries: delays ``first_s * factor**k`` capped at `max_delay_s`, for at
    most `give_up_s` seconds in all. `enabled` False: a broken link ends the device."""

    enabled: bool = True
    first_s: float = 0.05
    factor: float = 2.0
    max_delay_s: float = 2.0
    give_up_s: float = 60.0

    def delays(self) -> Iterable[float]:
        d, total = self.first_s, 0.0
        while total <= self.give_up_s:
            yield d
            total += d
            d = min(d * self.factor, self.max_delay_s)


@dataclass
class BackfillStats:
    """What the stage did, cumulative."""

    requests: int = 0  #: BACKFILL_REQUESTs sent
    blocks: int = 0  #: blocks replayed into the stream
    unavailable: int = 0  #: requested blocks the device no longer had (they become gaps)
    failed: int = 0  #: requests answered with an error or not at all
    gaps: list[tuple[int, int]] = field(default_factory=list)  #: (first_seq, count) requested


class BackfillStage:
    """Frame-level reorder buffer for backfill; see the module docstring."""

    def __init__(self) -> None:
        self.enabled = False  #: the device has capability BACKFILL
        self.stats = BackfillStats()
        self._last: int | None = None  # seq of the last SAMPLE_BLOCK passed on
        self._held: list[Frame] = []  # frames held, arrival order
        self._filled: dict[int, Frame] = {}  # replayed blocks, by seq
        self._range: tuple[int, int] | None = None  # (first_seq, count) being backfilled
        self._accept: int | None = None  # seq whose gap is accepted (released without backfill)
        self._cmd_seq: int | None = None  # seq of the answered request (its END echoes it)
        self._want_request = False
        self._release = False
        self._deadline: float | None = None
        self._device: Device | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def holding(self) -> bool:
        return self._range is not None

    def process(self, frames: list[Frame]) -> list[Frame]:
        """Frames from the decoder in, frames for the receive path out."""
        out: list[Frame] = []
        if self._release:
            self._release = False
            out += self._flush()
        for f in frames:
            t = f.type
            if t == FrameType.BACKFILL_BLOCK:
                if self._range is not None:
                    self._filled[f.seq] = Frame(FrameType.SAMPLE_BLOCK, f.seq, f.payload)
                continue  # a replay nobody waits for (late) is dropped
            if t == FrameType.BACKFILL_END:
                if self._range is not None and f.seq == self._cmd_seq:
                    out += self._flush()
                continue
            if t == FrameType.RESPONSE and f.payload[:1] == bytes((FrameType.BACKFILL_REQUEST,)):
                self._on_answer(f)
                out.append(f)
                continue
            if not self.enabled:
                out.append(f)
                continue
            if t == FrameType.SAMPLE_BLOCK:
                out += self._sample(f)
            elif (t == FrameType.RESPONSE and self._range is not None and f.payload[:1]
                  in (bytes((FrameType.START_STREAM,)), bytes((FrameType.STOP_STREAM,)))):
                self._held.append(f)  # a stream end must not overtake the blocks before it
            elif t == FrameType.DEVICE_INFO and f.seq == 0:  # reboot: nothing more will come
                out += self._flush()
                self._last = None
                out.append(f)
            else:
                out.append(f)
        if self._release:
            self._release = False
            out += self._flush()
        return out

    def _sample(self, f: Frame) -> list[Frame]:
        if self._range is not None:
            self._held.append(f)
            if len(self._held) > MAX_HELD:
                return self._flush()
            return []
        last = self._last
        gap = 0 if last is None else p.seq_gap(last, f.seq)
        if gap > 0 and f.seq != self._accept:
            first = (last + 1) & 0xFFFF  # type: ignore[operator]
            self._range = (first, gap)
            self._held = [f]
            self._filled = {}
            self._cmd_seq = None
            self._want_request = True
            self._deadline = time.monotonic() + HOLD_TIMEOUT_S
            self.stats.gaps.append((first, gap))
            return []
        if gap >= 0:
            self._last = f.seq
        if f.seq == self._accept:
            self._accept = None
        return [f]

    def _on_answer(self, f: Frame) -> None:
        if self._range is None:
            return
        try:
            r = p.parse_response(f.payload)
        except p.ProtocolError:
            return
        if r.status != p.ErrorCode.OK or r.result is None:
            self.stats.failed += 1
            self._release = True  # at the end of this batch
            return
        self._cmd_seq = f.seq
        self.stats.unavailable += self._range[1] - int(r.result.count)

    def _flush(self) -> list[Frame]:
        """End the hold: replayed blocks in seq order, then the held frames (re-examined, so a
        second gap among them starts a new backfill)."""
        rng = self._range
        if rng is None:
            return []
        first, count = rng
        filled = [self._filled[s & 0xFFFF] for s in range(first, first + count)
                  if (s & 0xFFFF) in self._filled]
        held = self._held
        self._range, self._held, self._filled = None, [], {}
        self._deadline = None
        self._want_request = False
        self.stats.blocks += len(filled)
        out: list[Frame] = []
        for f in filled:  # in seq order; a block the device no longer had stays a gap
            if self._last is None or p.seq_gap(self._last, f.seq) >= 0:
                self._last = f.seq
            out.append(f)
        if held:
            first_live = next((h.seq for h in held if h.type == FrameType.SAMPLE_BLOCK), None)
            self._accept = first_live  # what the device could not replay stays a gap
            out += self.process(held)
        return out

    # ------------------------------------------------------------------ the async side

    def kick(self, device: "Device") -> None:
        """Called by the read loop after each batch: send a wanted request, watch the timeout."""
        self._device = device
        if self._want_request and self._range is not None:
            self._want_request = False
            first, count = self._range
            asyncio.get_running_loop().create_task(self._ask(device, first, count))
        if self._range is not None and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(HOLD_TIMEOUT_S, self._expire)

    def again(self) -> None:
        """After a reconnect: ask again for a backfill that was under way."""
        if self._range is not None:
            self._want_request = True
            self._cmd_seq = None
            self._deadline = time.monotonic() + HOLD_TIMEOUT_S

    async def _ask(self, device: "Device", first: int, count: int) -> None:
        self.stats.requests += 1
        try:
            await device.request(FrameType.BACKFILL_REQUEST, p.build_payload(
                FrameType.BACKFILL_REQUEST, dict(first_seq=first, count=count)), check=False)
        except (DeviceTimeout, DeviceError, TransportError):
            if self._range == (first, count) and device.is_open and not self._want_request:
                self.stats.failed += 1
                self._release = True
                self._poke()

    def _expire(self) -> None:
        self._timer = None
        if self._range is None:
            return
        if self._deadline is not None and time.monotonic() < self._deadline:
            self._timer = asyncio.get_running_loop().call_later(
                self._deadline - time.monotonic(), self._expire)
            return
        self.stats.failed += 1
        self._release = True
        self._poke()

    def _poke(self) -> None:
        """Run the receive path with no new bytes, so released frames are delivered now."""
        device = self._device
        if device is not None and device.is_open:
            for ev in device._rx.feed(b""):
                device._dispatch(ev)
            self.kick(device)  # the released frames may have opened a new gap


Hook = Callable[["Device"], Awaitable[None]]


async def reconnect(device: "Device", exc: TransportError) -> bool:
    """Reconnect `device` after its link broke with `exc`; True when it is back.

    Only transports with a `reconnect()` coroutine (BLE) are reconnected, and only while the
    device is open and its `reconnect_policy` is enabled.
    """
    policy: ReconnectPolicy = device.reconnect_policy
    again: Callable[[], Awaitable[None]] | None = getattr(device.transport, "reconnect", None)
    if again is None or not policy.enabled or not device._open:
        return False
    for delay in policy.delays():
        await asyncio.sleep(delay)
        if not device._open:
            return False
        try:
            await again()
            await device.transport.write(b"\x00")  # flush the device's partial frame (§1)
        except TransportError:
            continue
        device.reconnects += 1
        device._rx.decoder.reset()
        device._rx.backfill.again()
        device._rx.backfill.kick(device)
        loop = asyncio.get_running_loop()
        for hook in list(device.after_reconnect):
            loop.create_task(_run_hook(hook, device))
        return True
    return False


async def _run_hook(hook: Hook, device: "Device") -> None:
    try:
        await hook(device)
    except (DeviceTimeout, DeviceError, TransportError):
        pass  # the hook's own business; the link may have gone again


def describe_stats(stage: BackfillStage) -> dict[str, Any]:
    """The stage's counters as a plain dict (for JSON and logs)."""
    s = stage.stats
    return dict(requests=s.requests, blocks=s.blocks, unavailable=s.unavailable,
                failed=s.failed, ranges=list(s.gaps))

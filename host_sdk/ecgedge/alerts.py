"""Rhythm alerts kept on the device until the host acknowledges them: `Device.alerts`.

The device's alert engine (`firmware/include/ecg/ecg_alerts.h`) turns the beats it sends into
episodes (bradycardia, tachycardia, pause, asystole, VT, frequent ectopy, AF suspicion, lead-off,
poor signal) and keeps their records in a bounded queue until acknowledged (docs/protocol.md
§5.5-§5.7, §6.6, §6.7). The host pulls::

    async with ecgedge.connect_async(url) as dev:
        for a in await dev.alerts.pull():          # records after the last acknowledged id
            print(a.describe())
        await dev.alerts.ack()                     # free what was pulled
        status = await dev.alerts.wait_notice(60)  # an ALERT_NOTICE: new records exist

Each episode gives an onset record (`Alert.onset`) and an end record (`Alert.ended`) with the
same `episode` id (an event without duration is one record with both). Records are immutable and
ids only grow, so pulling "after id X" is exact; what is not acknowledged survives disconnects
(a new connection's `pull()` starts after id 0, so it returns everything still queued).

The sync facade (`ecgedge.connect(url).alerts`) has the same methods without ``await``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, fields, replace
from enum import IntEnum, IntFlag
from typing import TYPE_CHECKING, Any, TypeVar

from . import protocol as p
from .errors import DeviceError
from .protocol import Capability, ErrorCode, FrameType

if TYPE_CHECKING:
    from .device import Device

__all__ = ["Alert", "AlertConfig", "AlertFlag", "AlertStatus", "AlertType", "Alerts",
           "Severity", "SyncAlerts", "alerts_table", "follow_alerts"]

T = TypeVar("T")


class AlertType(IntEnum):
    """`ecg_alert_type_t`."""

    BRADY = 1
    TACHY = 2
    PAUSE = 3
    ASYSTOLE = 4
    VT = 5
    V_ECTOPY = 6
    S_ECTOPY = 7
    AF = 8
    LEAD_OFF = 9
    POOR_SIGNAL = 10


class Severity(IntEnum):
    """`ecg_alert_severity_t`; the device's queue drops the lowest first when full."""

    ADVISORY = 1
    WARNING = 2
    URGENT = 3
    CRITICAL = 4


class AlertFlag(IntFlag):
    """Record flags."""

    ONSET = 0x01  #: the episode starts (id == episode)
    END = 0x02  #: the episode ended: end_index, value and count are final
    STREAM_END = 0x04  #: ended because the stream ended, not the rhythm


#: What `Alert.value` measures, per type (ecg_alerts.h's table).
VALUE_UNITS: dict[int, str] = {
    AlertType.BRADY: "bpm (slowest)", AlertType.TACHY: "bpm (fastest)",
    AlertType.PAUSE: "ms", AlertType.ASYSTOLE: "ms", AlertType.VT: "bpm",
    AlertType.V_ECTOPY: "per min (most)", AlertType.S_ECTOPY: "per min (most)",
    AlertType.AF: "nRMSSD per mille (largest)", AlertType.LEAD_OFF: "lead mask",
    AlertType.POOR_SIGNAL: "% bad beats",
}


@dataclass(frozen=True)
class Alert:
    """One alert record (§6.7).

    Attributes:
        id: 1, 2, ... unique and increasing (holes: records dropped on overflow, or acked).
        episode: id of the episode's onset record.
        type: `AlertType` (an int for a type this SDK does not know).
        severity: `Severity` (or an int).
        flags: `AlertFlag`.
        start_index, end_index: first and last sample of the episode on the device's sample
            counter (an onset record's end is where the episode stood when it was raised).
        time_us: device clock when the record was made, µs since boot.
        value: the rule's measure (`unit`).
        count: beats involved.
        fs: the device's sampling rate when pulled, Hz (0 when unknown).
    """

    id: int
    episode: int
    type: AlertType | int
    severity: Severity | int
    flags: AlertFlag
    start_index: int
    end_index: int
    time_us: int
    value: int
    count: int
    fs: float = 0.0

    @classmethod
    def from_fields(cls, c: Any, fs: float = 0.0) -> "Alert":
        return cls(int(c.id), int(c.episode), p.enum_or_int(AlertType, c.type),
                   p.enum_or_int(Severity, c.severity), AlertFlag(c.flags & 0x07),
                   int(c.start_index), int(c.end_index), int(c.time_us), int(c.value),
                   int(c.count), float(fs))

    @property
    def onset(self) -> bool:
        return AlertFlag.ONSET in self.flags

    @property
    def ended(self) -> bool:
        return AlertFlag.END in self.flags

    @property
    def unit(self) -> str:
        return VALUE_UNITS.get(int(self.type), "")

    @property
    def start_s(self) -> float | None:
        """Start, seconds since START_STREAM (None when the rate is unknown)."""
        return self.start_index / self.fs if self.fs else None

    @property
    def end_s(self) -> float | None:
        return self.end_index / self.fs if self.fs else None

    @property
    def duration_s(self) -> float | None:
        return (self.end_index - self.start_index) / self.fs if self.fs else None

    def describe(self) -> str:
        """One line, e.g. "#7 VT end (episode 5) CRITICAL 12.40-14.10 s: 150 bpm, 5 beats"."""
        phase = "event" if self.onset and self.ended else ("onset" if self.onset else "end")
        name = getattr(self.type, "name", str(self.type))
        sev = getattr(self.severity, "name", str(self.severity))
        span = (f"{self.start_s:.2f}-{self.end_s:.2f} s" if self.fs
                else f"samples {self.start_index}-{self.end_index}")
        return (f"#{self.id} {name} {phase} (episode {self.episode}) {sev} {span}: "
                f"{self.value} {self.unit}, {self.count} beats")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["type"] = getattr(self.type, "name", self.type)
        d["severity"] = getattr(self.severity, "name", self.severity)
        d["flags"] = [f.name for f in AlertFlag if f in self.flags]
        return d


@dataclass(frozen=True)
class AlertStatus:
    """The device's alert queue at a glance (ALERTS_ACK answer, ALERT_NOTICE, page header)."""

    last_id: int  #: id of the latest record made (0: none yet)
    queued: int  #: records kept, not acknowledged
    dropped: int  #: records dropped by the overflow policy since boot
    max_severity: Severity | int  #: highest severity among the queued (0: none)
    received_at: float = 0.0  #: host time.monotonic() when it arrived

    @classmethod
    def from_fields(cls, c: Any) -> "AlertStatus":
        return cls(int(c.last_id), int(c.queued), int(c.dropped),
                   p.enum_or_int(Severity, c.max_severity), time.monotonic())


@dataclass(frozen=True)
class AlertConfig:
    """The engine's thresholds (`ecg_alerts_cfg_t`, §5.7); ranges in ecg_alerts.h."""

    enable_mask: int
    brady_bpm: int
    tachy_bpm: int
    rate_beats: int
    rate_sustain_s: int
    pause_ms: int
    asystole_ms: int
    vt_beats: int
    vt_bpm: int
    v_per_min: int
    s_per_min: int
    af_beats: int
    af_nrmssd_permille: int
    af_entropy_permille: int
    lead_off_ms: int
    poor_signal_s: int

    @classmethod
    def from_fields(cls, c: Any) -> "AlertConfig":
        return cls(**{f.name: int(c[f.name]) for f in fields(cls)})

    @property
    def enabled(self) -> frozenset[AlertType]:
        return frozenset(t for t in AlertType if self.enable_mask >> int(t) & 1)

    def with_enabled(self, types: Any) -> "AlertConfig":
        """A copy with exactly `types` (AlertType values or names) enabled."""
        mask = 0
        for t in types:
            mask |= 1 << int(AlertType[t] if isinstance(t, str) else AlertType(t))
        return replace(self, enable_mask=mask)


class Alerts:
    """`Device.alerts`: pull, acknowledge, configure, and wait for notices."""

    def __init__(self, device: "Device") -> None:
        self._dev = device
        self._acked = 0
        self._pulled = 0
        self._notice: asyncio.Event | None = None
        self._callbacks: list[Callable[[AlertStatus], Any]] = []
        self.last_notice: AlertStatus | None = None  #: the latest ALERT_NOTICE

    @property
    def acked_id(self) -> int:
        """The highest id this host acknowledged on this connection (0 at first)."""
        return self._acked

    def _require(self) -> None:
        self._dev._require(Capability.ALERTS, "alerts")

    async def pull(self, after: int | None = None, *, ack: bool = False) -> list[Alert]:
        """Every queued record with an id above `after` (default: the last acknowledged id),
        oldest first, fetched page by page (7 records per ALERTS_PULL answer).

        Args:
            after: pull records after this id; None: after `acked_id`.
            ack: acknowledge what was returned (frees it on the device).
        """
        self._require()
        cur = self._acked if after is None else int(after)
        fs = float(self._dev.last_info.sample_rate_hz)
        out: list[Alert] = []
        while True:
            r = await self._dev.request(
                FrameType.ALERTS_PULL,
                p.build_payload(FrameType.ALERTS_PULL, dict(after_id=cur, max_records=0)))
            page = r.result
            if page is None:
                raise DeviceError(ErrorCode.LENGTH, FrameType.ALERTS_PULL, "answer without a page")
            recs = [Alert.from_fields(c, fs) for c in page.records]
            out += recs
            if not recs or page.pending <= len(recs):
                break
            cur = recs[-1].id
        if out:
            self._pulled = max(self._pulled, out[-1].id)
            if ack:
                await self.ack(out[-1].id)
        return out

    async def ack(self, id: int | None = None) -> AlertStatus:
        """Free every record up to `id` (default: the latest id `pull` returned, so records made
        since are kept); returns the queue's status after it."""
        self._require()
        if id is None:
            id = self._pulled
        r = await self._dev.request(FrameType.ALERTS_ACK,
                                    p.build_payload(FrameType.ALERTS_ACK, dict(id=int(id))))
        if r.result is None:
            raise DeviceError(ErrorCode.LENGTH, FrameType.ALERTS_ACK, "answer without a status")
        self._acked = max(self._acked, int(id))
        return AlertStatus.from_fields(r.result)

    async def status(self) -> AlertStatus:
        """The queue's status (an ALERTS_ACK of id 0, which frees nothing)."""
        self._require()
        r = await self._dev.request(FrameType.ALERTS_ACK,
                                    p.build_payload(FrameType.ALERTS_ACK, dict(id=0)))
        if r.result is None:
            raise DeviceError(ErrorCode.LENGTH, FrameType.ALERTS_ACK, "answer without a status")
        return AlertStatus.from_fields(r.result)

    async def config(self) -> AlertConfig:
        """ALERTS_GET_CONFIG: the thresholds in use."""
        self._require()
        r = await self._dev.request(FrameType.ALERTS_GET_CONFIG)
        if r.result is None:
            raise DeviceError(ErrorCode.LENGTH, FrameType.ALERTS_GET_CONFIG, "empty answer")
        return AlertConfig.from_fields(r.result)

    async def configure(self, config: AlertConfig | None = None, **changes: int) -> AlertConfig:
        """Set thresholds: a whole `AlertConfig`, or `changes` to the current one (e.g.
        ``tachy_bpm=140``); returns what the device reads back. Open episodes close (their end
        records say STREAM_END) and the rules start over.

        Raises:
            DeviceError: RANGE or CONFIG (the ranges are in ecg_alerts.h); nothing changes then.
            TypeError: an unknown field name.
        """
        base = config if config is not None else await self.config()
        new = replace(base, **changes)
        await self._dev.request(FrameType.ALERTS_CONFIGURE,
                                p.build_payload(FrameType.ALERTS_CONFIGURE, asdict(new)))
        return await self.config()

    # ------------------------------------------------------------------ notices

    def on_notice(self, callback: Callable[[AlertStatus], Any]) -> Callable[[], None]:
        """Call `callback(status)` on every ALERT_NOTICE (in the event loop; keep it short).
        Returns a function that removes it."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback) if callback in self._callbacks else None

    async def wait_notice(self, timeout: float | None = None) -> AlertStatus | None:
        """Wait for the next ALERT_NOTICE; None after `timeout` seconds without one."""
        if self._notice is None:
            self._notice = asyncio.Event()
        self._notice.clear()
        try:
            await asyncio.wait_for(self._notice.wait(), timeout)
        except asyncio.TimeoutError:
            return None
        return self.last_notice

    def _on_notice(self, status: AlertStatus) -> None:
        """Called by the device's reader for each ALERT_NOTICE."""
        self.last_notice = status
        if self._notice is not None:
            self._notice.set()
        for cb in list(self._callbacks):
            cb(status)


def alerts_table(alerts: list[Alert], title: str = "alerts") -> Any:
    """A rich `Table` of alert records, one row each."""
    from rich.table import Table

    colour: dict[int, str] = {Severity.CRITICAL: "bold red", Severity.URGENT: "red",
                              Severity.WARNING: "yellow", Severity.ADVISORY: "cyan"}
    table = Table(title=title, title_justify="left")
    for col in ("id", "episode", "type", "phase", "severity", "start s", "end s", "value",
                "beats"):
        table.add_column(col, justify="right" if col not in ("type", "phase", "severity",
                                                             "value") else "left")
    for a in alerts:
        phase = "event" if a.onset and a.ended else ("onset" if a.onset else "end")
        if AlertFlag.STREAM_END in a.flags:
            phase += " (stream end)"
        sev = getattr(a.severity, "name", str(a.severity))
        table.add_row(str(a.id), str(a.episode), getattr(a.type, "name", str(a.type)), phase,
                      f"[{colour[int(a.severity)]}]{sev}[/]" if a.severity in colour else sev,
                      f"{a.start_s:.2f}" if a.fs else str(a.start_index),
                      f"{a.end_s:.2f}" if a.fs else str(a.end_index),
                      f"{a.value} {a.unit}", str(a.count))
    return table


def parse_notice(payload: bytes) -> AlertStatus:
    """An ALERT_NOTICE payload (raises `protocol.ProtocolError` LENGTH when short)."""
    return AlertStatus.from_fields(p.parse_payload(FrameType.ALERT_NOTICE, payload))


class SyncAlerts:
    """`ecgedge.connect(url).alerts`: `Alerts` behind blocking calls."""

    def __init__(self, run: Callable[[Coroutine[Any, Any, Any]], Any], alerts: Alerts) -> None:
        self._run = run
        self.aio = alerts

    @property
    def acked_id(self) -> int:
        return self.aio.acked_id

    @property
    def last_notice(self) -> AlertStatus | None:
        return self.aio.last_notice

    def pull(self, after: int | None = None, *, ack: bool = False) -> list[Alert]:
        return self._run(self.aio.pull(after, ack=ack))  # type: ignore[no-any-return]

    def ack(self, id: int | None = None) -> AlertStatus:
        return self._run(self.aio.ack(id))  # type: ignore[no-any-return]

    def status(self) -> AlertStatus:
        return self._run(self.aio.status())  # type: ignore[no-any-return]

    def config(self) -> AlertConfig:
        return self._run(self.aio.config())  # type: ignore[no-any-return]

    def configure(self, config: AlertConfig | None = None, **changes: int) -> AlertConfig:
        return self._run(self.aio.configure(config, **changes))  # type: ignore[no-any-return]

    def wait_notice(self, timeout: float | None = None) -> AlertStatus | None:
        return self._run(self.aio.wait_notice(timeout))  # type: ignore[no-any-return]

    def on_notice(self, callback: Callable[[AlertStatus], Any]) -> Callable[[], None]:
        """`callback` runs in the SDK's event-loop thread."""
        return self.aio.on_notice(callback)


async def follow_alerts(url: str, *, follow: bool, ack: bool, timeout: float,
                        show: Callable[[list[Alert], AlertStatus], None],
                        seconds: float | None = None) -> int:
    """`ecgedge alerts`: pull (and optionally acknowledge) the queued alerts and hand them to
    `show`; with `follow`, wait for ALERT_NOTICEs and pull again after each, until `seconds`
    pass (None: until interrupted). Returns the number of records shown."""
    from . import connect_async

    shown = 0
    async with connect_async(url, timeout=timeout) as dev:
        deadline = None if seconds is None else time.monotonic() + seconds
        after: int | None = None
        while True:
            recs = await dev.alerts.pull(after, ack=ack)
            if recs:
                after = recs[-1].id
            status = await dev.alerts.status()
            if recs or not follow:
                show(recs, status)
            shown += len(recs)
            if not follow:
                return shown
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return shown
            await dev.alerts.wait_notice(1.0 if left is None else min(1.0, left))

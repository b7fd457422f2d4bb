"""Hardware-in-the-loop QRS validation: records injected into a device, its beats scored (EC57).

    ecgedge validate qrs --device qemu:// --db ../shared/data/mitdb --records 100 --json out.json

For each record, the chosen channel is read as the device's int16 counts (raw ADC minus the
baseline, with `ecgedge.sim.record.load_record`, like the virtual device's front end). Everything
device-related goes through the host SDK (`ecgedge.connect`): the device is configured (source =
injection, beats only, the record's rate and the same mains notch as a host run) and the record is
injected from its first sample with the SDK's flow control (`Device.inject`, docs/protocol.md
§5.3); STOP_STREAM's answer (§5.4) means every beat is out. The device's sample counter starts at
START_STREAM, which is record sample 0, so the device's beat indices are the record's. The SDK's
link counters say whether a frame was lost or bad during the run; if so the record is not scored.
Beats are scored by the host validation's own code (`qrs.run_validation` -> `qrs.score_record` ->
`ec57.compare`), so a device run and a host run differ only in where the beats come from.

Device URLs (`sdk_url` maps them to the SDK's transports, `ecgedge.transports`):

| URL | device |
| --- | --- |
| ``sim:`` or ``sim://`` | an injection-only virtual device at the record's rate and gain |
|  | (``sim://?inject_only=1&fs=FS&leads=1&gain_uv=GAIN``) |
| ``socket://HOST:PORT`` | a device already serving the protocol over TCP (sim, QEMU, a bridge) |
| ``qemu://[PATH.elf]`` | the Cortex-M4 firmware in QEMU (`ecgedge.transports.qemu`; the default |
|  | image is built with ``make -C firmware/qemu device`` if missing) |
| ``serial://PORT?baud=N``, or a bare port | a serial port (pyserial): ``/dev/ttyACM0`` |

Counts to millivolts: the device computes ``float32(count) * float32(gain / 1000)``
(`ecg_device.h`), the host path reads WFDB physical values (float64, rounded to float32 by the
detector). The two differ in the last bit of some samples, yet give the same beats on all 48
MIT-BIH records (tests/test_hil.py checks the device against `ecgedge.core.QrsDetector` on the
device's own conversion, and the CLI's JSON against a host run).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..device import DEFAULT_TIMEOUT_S, Beat, Gap, InjectReport, LinkCounters, SampleBlock, Status
from ..errors import EcgError, UrlError
from ..protocol import Capability, Content, Source
from ..sync import Device
from ..sync import connect as sdk_connect
from .ec57 import LEARNING_PERIOD_S
from .qrs import Detection, QrsReport, run_validation, scored_start
from .wfdb_db import DEFAULT_ANNOTATOR, DatabaseError

__all__ = ["HilError", "HilRun", "check_complete", "connect", "inject_record", "sdk_url",
           "validate_qrs_device"]

PROGRESS_STEPS = 50  #: a record is injected in this many parts when progress is shown
_URL_HINT = "give socket://HOST:PORT, qemu://[PATH.elf], sim:// or a serial port"
_COUNTERS = ("frames_ok", "crc_errors", "cobs_errors", "truncated", "oversize", "bad_version",
             "unknown_type", "malformed", "late", "gaps", "samples_lost")


class HilError(Exception):
    """The device cannot be reached or used as asked; the message says what to do."""


def sdk_url(url: str, *, fs_hz: int = 360, gain_uv_per_count: float = 5.0) -> str:
    """The SDK URL for a ``--device`` URL (module docs): ``sim://`` becomes an injection-only
    virtual device with the record's rate and gain, a bare port ``serial://PORT``."""
    text = url.strip()
    if text.lower().startswith("sim:"):
        target, _, query = text[4:].lstrip("/").partition("?")
        if target:
            raise HilError(f"--device {url}: use sim:// alone; validation injects the records "
                           "into an injection-only virtual device")
        return "sim://?" + (query or f"inject_only=1&fs={fs_hz}&leads=1"
                                     f"&gain_uv={float(gain_uv_per_count)!r}")
    return text if "://" in text else f"serial://{text}"


def connect(url: str, *, fs_hz: int = 360, gain_uv_per_count: float = 5.0,
            timeout: float = DEFAULT_TIMEOUT_S) -> Device:
    """`ecgedge.connect` for a ``--device`` URL (`sdk_url`); SDK errors become `HilError`.
    `fs_hz` and `gain_uv_per_count` set up a ``sim://`` device only."""
    target = sdk_url(url, fs_hz=fs_hz, gain_uv_per_count=gain_uv_per_count)
    try:
        return sdk_connect(target, timeout=timeout)
    except UrlError as exc:
        raise HilError(f"--device {url}: {exc}; {_URL_HINT}") from exc
    except EcgError as exc:
        raise HilError(str(exc)) from exc


@dataclass
class HilRun:
    """What one injected record gave back.

    Attributes:
        report: the SDK's `InjectReport` (samples, blocks, busy, sequence, timeouts, elapsed_s).
        beats: beat positions on the device's sample counter (0 = the first injected sample),
            sorted; quality: their quality flags (0 good, 1 noisy, 2 unusable).
        link: changes of the host's link counters during the run (`LinkCounters`: frames_ok,
            crc_errors, ..., malformed, late, gaps, samples_lost, and ``lost_<stream>`` frames
            lost per stream from sequence numbers).
        device: the device's latest `Status` at the end (its own counters, since its boot).
        classes: the beats' AAMI classes from BEAT_EVENT (0 N .. 4 Q, 255 none);
            confidence: their confidence, 0.5..1, NaN when the device sends none (§6.4).
    """

    report: InjectReport
    beats: npt.NDArray[np.int64]
    quality: npt.NDArray[np.uint8]
    link: dict[str, int]
    device: Status | None
    classes: npt.NDArray[np.uint8] = field(default_factory=lambda: np.zeros(0, np.uint8))
    confidence: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    @property
    def lost_frames(self) -> int:
        """Frames lost on the way (sequence gaps) of any stream."""
        return sum(v for k, v in self.link.items() if k.startswith("lost_"))

    @property
    def bad_frames(self) -> int:
        """Frames the host dropped (§2: CRC, COBS, length, version, type) or could not parse."""
        return sum(self.link[k] for k in _COUNTERS[1:8])


def _delta(after: LinkCounters, before: LinkCounters) -> dict[str, int]:
    out = {k: getattr(after, k) - getattr(before, k) for k in _COUNTERS}
    out.update({f"lost_{s}": n - before.frames_lost.get(s, 0)
                for s, n in after.frames_lost.items()})
    return out


def inject_record(dev: Device, counts: npt.ArrayLike, *, fs_hz: int, gain_uv_per_count: float,
                  mains_hz: int | None, content: Content = Content.BEATS_ONLY,
                  on_block: Callable[[SampleBlock], None] | None = None,
                  progress: Callable[[float], None] | None = None) -> HilRun:
    """Configure `dev` (injection, `content`, `fs_hz`, `mains_hz`), inject `counts` as one
    stream from index 0 with the SDK's flow control, stop, and return the beats and the link
    counters of the run.

    Args:
        counts: (n,) integer counts of one lead; a device with more leads gets the same samples
            on every lead (the detector runs on one of them).
        fs_hz, gain_uv_per_count: the record's; the device must support the rate and have the
            gain (it is not configurable over the protocol).
        mains_hz: the notch to configure: 50, 60 or None.
        content: beats only for validation; RAW streams the samples back through `on_block`
            (SDK `SampleBlock`s, in arrival order).
        progress: called with the fraction injected (the record then goes in parts).
    """
    x = np.asarray(counts)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"counts must be a non-empty (n,) array, got shape {x.shape}")
    if mains_hz not in (None, 50, 60):
        raise ValueError(f"mains_hz={mains_hz!r}: use 50, 60 or None")
    where = dev.transport.describe()
    info = dev.last_info
    if fs_hz not in info.rates_hz:
        raise HilError(f"{where}: the device cannot run at {fs_hz} Hz (it supports "
                       f"{', '.join(map(str, info.rates_hz)) or 'no listed rate'} Hz); resample "
                       "the records first")
    if np.float32(info.gain_uv_per_count) != np.float32(gain_uv_per_count):
        raise HilError(f"{where}: the device's gain is {info.gain_uv_per_count:g} µV/count but "
                       f"the record's is {gain_uv_per_count:g}; its beats would not be those of "
                       "the record's millivolts")
    if Capability.INJECT not in info.capabilities or Capability.BEATS not in info.capabilities:
        raise HilError(f"{where}: the device lacks sample injection or beat detection")
    block = np.repeat(x[:, None], info.leads, axis=1)

    beats: list[Beat] = []
    beat_gaps = [0]
    error: list[BaseException] = []
    try:
        dev.stop()  # a known state: not streaming (rate and source cannot change while it runs)
        dev.configure(sample_rate_hz=fs_hz, mains_hz=mains_hz or 0, content=content,
                      source=Source.INJECT)
        before = dev.counters
        kinds = ("beats", "samples") if on_block is not None else ("beats",)
        events = dev.events(start=False, stop_on_exit=False, kinds=kinds)  # the next stream

        def consume() -> None:  # concurrently: the SDK holds back a sample consumer that lags
            try:
                for ev in events:
                    if isinstance(ev, Beat):
                        beats.append(ev)
                    elif isinstance(ev, SampleBlock):
                        on_block(ev)  # type: ignore[misc]
                    elif isinstance(ev, Gap) and ev.stream == "beats":
                        beat_gaps[0] += ev.frames
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                error.append(exc)

        reader = threading.Thread(target=consume, name="hil-events", daemon=True)
        reader.start()
        try:
            parts = PROGRESS_STEPS if progress is not None else 1
            edges = np.linspace(0, len(block), min(parts, len(block)) + 1).astype(int)
            report = InjectReport()
            for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
                r = dev.inject(block[a:b], start=k == 0, stop=b == len(block))
                for f in ("samples", "blocks", "busy", "sequence", "timeouts", "elapsed_s"):
                    setattr(report, f, getattr(report, f) + getattr(r, f))
                report.next_index = r.next_index
                if progress is not None:
                    progress(b / len(block))
            reader.join(30.0)  # STOP_STREAM's answer ended the stream, so the events end
        finally:
            events.close()
            reader.join(5.0)
        after = dev.counters
    except EcgError as exc:
        raise HilError(f"{where}: {exc}") from exc
    if error:
        raise error[0]
    beats.sort(key=lambda b: b.index)
    report.beats, report.beat_gaps = beats, beat_gaps[0]
    return HilRun(report, np.array([b.index for b in beats], dtype=np.int64),
                  np.array([int(b.quality) for b in beats], dtype=np.uint8),
                  _delta(after, before), after.device,
                  np.array([int(b.beat_class) for b in beats], dtype=np.uint8),
                  np.array([np.nan if b.confidence is None else b.confidence for b in beats]))


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def check_complete(run: HilRun, url: str, record: str) -> None:
    """Refuse a run whose beat list may be incomplete: a beat event lost (sequence gap) or any
    bad frame on the link (a bad frame may have been a beat, even the last one).

    Raises:
        HilError: saying how many frames were lost or bad.
    """
    lost = max(run.report.beat_gaps, run.link.get("lost_beats", 0))
    if lost or run.bad_frames:
        raise HilError(f"{url}: record {record}: the link lost frames ({lost} beat event(s) "
                       f"missing, {run.bad_frames} bad frame(s): {run.link}); not scoring "
                       "a beat list that may be incomplete")



def validate_qrs_device(url: str, db: str | PathLike[str], records: list[str] | None = None,
                        channel: int = 0, start_s: float = LEARNING_PERIOD_S,
                        annotator: str = DEFAULT_ANNOTATOR, mains_hz: int | None = 50,
                        progress: bool = False) -> QrsReport:
    """`validation.qrs.validate_qrs` with the beats of a device: each record's channel is
    injected into the device at `url` (one connection for the whole run, made at the first
    record to inject, so database errors come first) and the device's beats are scored exactly
    like the host's.

    Raises:
        DatabaseError: as `validate_qrs` (database, records, channel).
        HilError: the device cannot be reached or used, or a frame was lost or bad on the link
            (a beat may be missing: the score would be wrong; the message says how many).
    """
    from ..sim.record import SimError, load_record

    root = Path(db)
    device: list[Device] = []

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
        if not device:
            device.append(connect(url, fs_hz=rec.fs_hz, gain_uv_per_count=rec.gain_uv_per_count))
        run = inject_record(device[0], rec.counts[:, 0], fs_hz=rec.fs_hz,
                            gain_uv_per_count=rec.gain_uv_per_count, mains_hz=mains_hz,
                            progress=advance if progress else None)
        check_complete(run, url, name)
        # the device's counter starts at START_STREAM = record sample 0
        return Detection(run.beats, n, float(rec.fs_hz), lead, rec.invalid_samples)

    try:
        return run_validation(root, detect, records, channel, start_s, annotator, progress)
    finally:
        for dev in device:
            dev.close()

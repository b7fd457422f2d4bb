"""The `ecgedge` command line.

Commands are argparse subcommands, grouped by purpose; each sets `run`, a function from the
parsed arguments to an exit status:

    ecgedge demo [--seconds S] [--speed X]
    ecgedge info URL [--json]
    ecgedge stream URL [--seconds S] [--out FILE] [--format wfdb|csv|edf]
    ecgedge monitor URL [--seconds S]
    ecgedge alerts URL [--follow] [--ack] [--seconds S] [--json]
    ecgedge validate qrs --db DIR [--records R ...] [--channel N] [--start SECONDS] [--json FILE]
    ecgedge validate alerts --db DIR [--records R ...] [--device URL] [--json FILE]
                         [--device URL]
    ecgedge validate beats --db DIR [--records DS2 | R ...] [--device URL] [--json FILE]
                           [--personalize SECONDS]
    ecgedge sim (--record PATH | --inject-only) [--pty | --tcp PORT] [--speed 1|max] ...
    ecgedge personalize URL (--labels FILE | --from-record REC [--seconds 300]) [--key HEX]

URL is a device URL: serial:///dev/ttyUSB0?baud=115200, socket://HOST:PORT,
sim://PATH/TO/RECORD?speed=max (spawns the virtual device), qemu:// (the QEMU firmware).

Exit status: 0 on success, 2 for a usage or input problem (bad option, missing database,
unknown record, channel out of range, bad device URL, ...), reported as a one-line message on
stderr saying what to do; 1 when the device fails (no answer, link lost, error status);
130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from . import __version__
from .protocol import BeatClass
from .validation.ec57 import LEARNING_PERIOD_S
from .validation.qrs import QrsReport, render_report, validate_qrs
from .validation.wfdb_db import DEFAULT_ANNOTATOR, DatabaseError

__all__ = ["build_parser", "main"]

EXIT_OK = 0
EXIT_DEVICE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

Runner = Callable[[argparse.Namespace], int]


class _UsageError(Exception):
    """A problem the user can fix; the message says how."""


def _mains(text: str) -> int | None:
    """Parse --mains: "50" or "60" (Hz), or "none" for no notch."""
    if text.lower() == "none":
        return None
    if text in ("50", "60"):
        return int(text)
    raise argparse.ArgumentTypeError(f"{text!r}: use 50, 60 or none")


def _channel(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a signal index, 0 for the first") \
            from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value}: signal indices start at 0")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds, e.g. 300 for 5:00") from None
    if not value >= 0:  # also rejects NaN
        raise argparse.ArgumentTypeError(f"{text!r}: give a time of 0 s or more")
    return value


def _detector_options() -> argparse.ArgumentParser:
    """Options shared by every command that runs the detector."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--mains", type=_mains, default=50, metavar="{50,60,none}",
        help="mains frequency the detector's filter notches out, in Hz, or none (default 50; "
             "MIT-BIH was recorded on 60 Hz mains, but QRS scores barely depend on it)")
    return parent


def _print_notes(report: QrsReport) -> None:
    reasons: dict[str, list[str]] = {}
    for name, reason in report.skipped.items():
        reasons.setdefault(reason, []).append(name)
    for reason, names in reasons.items():
        print(f"note: skipped {len(names)} record(s) ({reason}): {' '.join(names)}",
              file=sys.stderr)
    for name, r in report.records.items():
        if r.invalid_samples:
            print(f"note: record {name}: {r.invalid_samples} invalid sample(s) held at the "
                  "previous valid value", file=sys.stderr)


def _check_json_path(path: Path | None) -> None:
    """Fail before a long run when --json cannot be written."""
    if path is not None and not path.parent.is_dir():
        raise _UsageError(f"cannot write --json {path}: no directory {path.parent}; "
                          "give a path in an existing directory")


def _write_json(path: Path | None, text: str) -> None:
    if path is None:
        return
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise _UsageError(f"cannot write --json {path}: {exc.strerror}; "
                          "give a writable file path") from exc


def _add_db_options(p: argparse.ArgumentParser, db_help: str, records_help: str) -> None:
    """--db and --records of a validate check."""
    p.add_argument("--db", type=Path, required=True, metavar="DIR", help=db_help)
    p.add_argument("--records", nargs="+", metavar="R", help=records_help)


def _add_record_options(p: argparse.ArgumentParser, channel_default: int | None,
                        channel_help: str, start_default: float, start_help: str) -> None:
    """--channel, --start and --annotator of a validate check that reads one lead."""
    p.add_argument("--channel", type=_channel, default=channel_default, metavar="N",
                   help=channel_help)
    p.add_argument("--start", type=_seconds, default=start_default, metavar="SECONDS",
                   help=start_help)
    p.add_argument("--annotator", default=DEFAULT_ANNOTATOR, metavar="EXT",
                   help="extension of the reference annotation files (default atr)")


def _add_output_options(p: argparse.ArgumentParser, json_help: str, device_help: str,
                        quiet_help: str = "no progress bar", device_default: str | None = None
                        ) -> None:
    """--json FILE, --device URL and -q of a validate check."""
    p.add_argument("--json", type=Path, metavar="FILE", help=json_help)
    p.add_argument("--device", default=device_default, metavar="URL", help=device_help)
    p.add_argument("-q", "--quiet", action="store_true", help=quiet_help)


def _run_validate_qrs(args: argparse.Namespace) -> int:
    _check_json_path(args.json)
    if args.device is not None:  # hardware in the loop: the device's beats, scored the same way
        from .validation.hil import validate_qrs_device

        report = validate_qrs_device(args.device, args.db, records=args.records,
                                     channel=args.channel, start_s=args.start,
                                     annotator=args.annotator, mains_hz=args.mains,
                                     progress=not args.quiet)
    else:
        report = validate_qrs(args.db, records=args.records, channel=args.channel,
                              start_s=args.start, annotator=args.annotator, mains_hz=args.mains,
                              progress=not args.quiet)
    _write_json(args.json, report.to_json())
    if not args.quiet:
        _print_notes(report)
    render_report(report, Console())
    return EXIT_OK


def _add_validate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    validate = commands.add_parser(
        "validate", help="score the detectors on annotated databases",
        description="Score the detectors against reference annotations (ANSI/AAMI EC57).")
    checks = validate.add_subparsers(title="checks", dest="check", metavar="CHECK", required=True)
    qrs = checks.add_parser(
        "qrs", parents=[_detector_options()],
        help="QRS detection: TP, FP, FN, Se, +P, F1 per record and in total",
        description="Run the QRS detector over a WFDB database and score it the ANSI/AAMI EC57 "
                    "way: 150 ms match window, beat annotations only, VF episodes excluded, "
                    "scored from 5:00. Noise Stress Test records (118e24, 119e_6, ...) are also "
                    "totalled per signal-to-noise ratio.")
    _add_db_options(qrs, "WFDB database directory, e.g. ../shared/data/mitdb (records from its "
                         "RECORDS file, else every .hea file with an annotation file)",
                    "score only these records (default: all annotated records)")
    _add_record_options(qrs, 0, "signal index (0-based) to detect on, in every record (default 0)",
                        LEARNING_PERIOD_S, "start of the scored period (default 300: EC57's "
                                           "5-minute learning period; 0 scores whole records)")
    _add_output_options(qrs, 'also write {"gross", "records", "by_snr"} counts and percentages '
                             "to FILE",
                        "hardware in the loop: inject each record into this device and score "
                        "its beats instead of the host detector's: qemu:// (the Cortex-M4 "
                        "firmware in QEMU), sim:// (the virtual device), socket://HOST:PORT, "
                        "or a serial port; --mains is configured on the device",
                        "no progress bar and no notes on stderr; only the tables")
    qrs.set_defaults(run=_run_validate_qrs)
    _add_validate_beats(checks)
    _add_validate_alerts(checks)


def _run_validate_alerts(args: argparse.Namespace) -> int:
    from .validation.alerts import render_report as render_alerts
    from .validation.alerts import validate_alerts

    _check_json_path(args.json)
    report = validate_alerts(args.db, records=args.records, device=args.device,
                             mains_hz=args.mains, progress=not args.quiet)
    _write_json(args.json, report.to_json())
    render_alerts(report, Console())
    return EXIT_OK


def _add_validate_alerts(checks: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    alerts = checks.add_parser(
        "alerts", parents=[_detector_options()],
        help="rhythm alerts: VT and AF (and brady / tachy) episode Se and +P",
        description="Inject each record into the device (default: the virtual device) and score "
                    "its alert episodes against the rhythm annotations, EC57-style: an episode is "
                    "detected when an alert episode overlaps it; an alert episode is true when it "
                    "overlaps a reference episode (rules: ecgedge.validation.alerts).")
    alerts.set_defaults(mains=60)
    _add_db_options(alerts, "WFDB database directory with rhythm annotations, e.g. "
                            "../shared/data/mitdb",
                    "records to run (default: all annotated records)")
    _add_output_options(alerts, "also write the gross and per-record counts, episodes and "
                                "reference episodes to FILE",
                        "device to inject into: sim:// (default), qemu://, socket://HOST:PORT "
                        "or a serial port", device_default="sim://")
    alerts.set_defaults(run=_run_validate_alerts)


def _run_validate_beats(args: argparse.Namespace) -> int:
    from .validation.beats import render_report as render_beats
    from .validation.beats import validate_beats

    _check_json_path(args.json)
    if args.personalize is not None:  # ecgedge.validation.personalize
        from .validation.personalize import run_cli
        return run_cli(args)
    report = validate_beats(args.db, records=args.records, channel=args.channel,
                            start_s=args.start, annotator=args.annotator, mains_hz=args.mains,
                            device=args.device, progress=not args.quiet)
    _write_json(args.json, report.to_json())
    render_beats(report, Console())
    return EXIT_OK


def _add_validate_beats(checks: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    beats = checks.add_parser(
        "beats",
        help="beat classification: per AAMI class Se and +P, EC57 VEB and SVEB",
        description="Classify every beat with the firmware's int8 classifier and score it per "
                    "AAMI class (Se, +P, confusion matrix) and the EC57 way (VEB, SVEB), in two "
                    "modes side by side: at the reference beat positions (comparable with the "
                    "literature) and end to end on the detector's own beats, matched within "
                    "150 ms (what a device gives).")
    beats.add_argument(
        "--mains", type=_mains, default=60, metavar="{50,60,none}",
        help="mains notch of the filter the features and the detector run on, in Hz, or none "
             "(default 60: MIT-BIH's mains, and the notch the model was trained with)")
    _add_db_options(beats, "WFDB database directory, e.g. ../shared/data/mitdb",
                    "records to score; DS1 and DS2 name de Chazal's inter-patient sets "
                    "(default: all annotated records)")
    _add_record_options(beats, None, "signal index (0-based) in every record (default: the MLII "
                                     "lead, else 0)",
                        0.0, "start of the scored period (default 0: whole records, as the "
                             "literature's DS2 figures; 300: EC57's learning period)")
    _add_output_options(beats, 'also write {"reference": {...}, "end_to_end": {...}} (per class '
                               'se and ppv in percent, confusion, veb, sveb) and per-record '
                               "results",
                        "end to end on a device: inject each record into it and score its beats "
                        "and classes: qemu://, sim://, socket://HOST:PORT or a serial port")
    beats.add_argument("--personalize", type=_seconds, default=None, metavar="SECONDS",
                       help="personalization benchmark: per record, label the first SECONDS "
                            "(300: EC57's learning period) from the annotations, train the head "
                            "with the device's µ-trainer and score the rest with the factory and "
                            "the personalized head (ecgedge.validation.personalize)")
    beats.set_defaults(run=_run_validate_beats)


def _speed(text: str) -> float | None:
    """Parse --speed: a real-time factor (1 = real time) or "max"."""
    if text.lower() == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: use 1 (real time), another factor, or max") \
            from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the speed must be above 0")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a TCP port number, 0 for any free one") \
            from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value}: TCP ports are 0..65535")
    return value


def _run_sim(args: argparse.Namespace) -> int:
    from .sim import SimError, VirtualDevice, load_record, serve

    fmt_given = [opt for opt, value in (("--fs", args.fs), ("--leads", args.leads),
                                        ("--gain-uv", args.gain_uv)) if value is not None]
    try:
        if args.record is not None:
            if fmt_given:
                raise _UsageError(f"{', '.join(fmt_given)} only apply with --inject-only; a "
                                  "record sets the rate, leads and gain itself")
            record = load_record(args.record, args.channels)
            if record.invalid_samples or record.clipped_samples:
                print(f"note: record {record.name}: {record.invalid_samples} invalid sample(s) "
                      f"held at the previous valid value, {record.clipped_samples} clipped to "
                      "int16", file=sys.stderr)
            vdev = VirtualDevice(record, mains_hz=args.mains, speed=args.speed,
                                 status_period_ms=args.status_period, **_sim_storage(args),
                                 backfill_s=BLE_BACKFILL_S if args.ble else 0)
        else:
            if args.channels is not None:
                raise _UsageError("--channels only applies with --record")
            vdev = VirtualDevice(None, fs_hz=args.fs or 360, leads=args.leads or 1,
                                 gain_uv_per_count=args.gain_uv or 5.0, mains_hz=args.mains,
                                 speed=args.speed, status_period_ms=args.status_period,
                                 **_sim_storage(args), backfill_s=BLE_BACKFILL_S if args.ble else 0)
        if args.ble:
            from .ble.cli import serve_ble

            return serve_ble(vdev, args)
        return serve(vdev, tcp_port=args.tcp)
    except SimError as exc:
        raise _UsageError(str(exc)) from exc
    except OSError as exc:  # e.g. the TCP port is taken
        raise _UsageError(f"cannot serve: {exc.strerror or exc}; pick another --tcp port, or 0 "
                          "for any free one") from exc


def _sim_storage(args: argparse.Namespace) -> dict[str, Any]:
    """VirtualDevice storage / key arguments from --storage and --device-key."""
    from .update import device_key

    if args.device_key is None:
        print("note: no --device-key: update packages use the PUBLIC development key "
              "(ecgedge.update.DEV_KEY); never use it outside the simulator", file=sys.stderr)
        key = None
    else:
        try:
            key = device_key(args.device_key)
        except ValueError as exc:
            raise _UsageError(f"--device-key: {exc}") from exc
    return dict(storage_path=args.storage, device_key=key)


def _add_sim(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = commands.add_parser(
        "sim", parents=[_detector_options()],
        help="run a virtual device that serves the wire protocol on a pty or TCP port",
        description="Run the firmware's device layer on the host as a virtual device: it serves "
                    "the wire protocol (docs/protocol.md) on a pseudo-terminal (prints its path) "
                    "or on a TCP port of 127.0.0.1 (prints socket://127.0.0.1:PORT). Its front "
                    "end plays a WFDB record, looped, from the record's start at every "
                    "START_STREAM; or it takes samples only by host injection. Stops cleanly on "
                    "Ctrl-C / SIGTERM.")
    what = sim.add_mutually_exclusive_group(required=True)
    what.add_argument("--record", type=Path, metavar="PATH",
                      help="WFDB record the front end plays, e.g. ../shared/data/mitdb/100 "
                           "(raw ADC counts minus the baseline; gain from the header)")
    what.add_argument("--inject-only", action="store_true",
                      help="no front end: the host injects samples (INJECT_SAMPLES)")
    link = sim.add_mutually_exclusive_group()
    link.add_argument("--pty", action="store_true",
                      help="serve on a new pseudo-terminal (the default)")
    link.add_argument("--tcp", type=_port, metavar="PORT",
                      help="serve on TCP port PORT of 127.0.0.1 (0: any free port)")
    link.add_argument("--ble", action="store_true",
                      help="serve as a BLE peripheral (ecgedge GATT profile, Heart Rate Service) "
                           "on this process's virtual link and watch it through ble:// (bleak on "
                           "bumble); see README 'Stream over BLE'")
    sim.add_argument("--seconds", type=_positive_seconds, metavar="SECONDS",
                     help="with --ble: stop after this many seconds (default: until Ctrl-C)")
    sim.add_argument("--cut-every", type=_positive_seconds, metavar="SECONDS",
                     help="with --ble: drop the link every SECONDS to show reconnect + backfill")
    sim.add_argument("--speed", type=_speed, default=1.0, metavar="{1,max}",
                     help="front end pace: 1 = real time (or another factor), max = as fast as "
                          "the link drains (default 1)")
    sim.add_argument("--channels", type=_channel, nargs="+", metavar="N",
                     help="record signals served as leads, 0-based (default: the first 8)")
    sim.add_argument("--fs", type=int, metavar="HZ",
                     help="with --inject-only: sampling rate, 125..1000 Hz (default 360)")
    sim.add_argument("--leads", type=int, metavar="N",
                     help="with --inject-only: number of leads, 1..8 (default 1)")
    sim.add_argument("--gain-uv", type=float, metavar="UV",
                     help="with --inject-only: µV per count (default 5)")
    sim.add_argument("--status-period", type=int, default=1000, metavar="MS",
                     help="STATUS frame period while a host is connected, ms; 0 for none "
                          "(default 1000)")
    sim.add_argument("--storage", type=Path, metavar="FILE",
                     help="keep the storage slots (A/B classifier heads, labels) in FILE, so a "
                          "pushed head survives a restart (default: RAM, lost on exit)")
    sim.add_argument("--device-key", metavar="HEX",
                     help="per-device key of update packages (docs/protocol.md §11); default: "
                          "the PUBLIC development key ecgedge.update.DEV_KEY (simulator only)")
    sim.set_defaults(run=_run_sim)


# --------------------------------------------------------------------------------------------
# Device commands: info, stream, monitor, demo
# --------------------------------------------------------------------------------------------

DEMO_SECONDS = 20.0
BLE_BACKFILL_S = 90  #: seconds of sample blocks `ecgedge sim --ble` keeps for backfill
MONITOR_REFRESH_HZ = 4
TRACE_SECONDS = 4.0  # ECG shown in the monitor's trace
TRACE_COLUMNS = 64
_SPARK = "▁▂▃▄▅▆▇█"


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a duration above 0 s")
    return value


def _url_options() -> argparse.ArgumentParser:
    """The device URL and link options shared by info, stream and monitor."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("url", metavar="URL",
                        help="device URL: serial:///dev/ttyUSB0?baud=115200, socket://HOST:PORT, "
                             "sim://PATH/TO/RECORD?speed=max (starts the virtual device; sim:// "
                             "alone plays the packaged demo excerpt), qemu:// (the QEMU firmware)")
    parent.add_argument("--timeout", type=_positive_seconds, default=1.0, metavar="SECONDS",
                        help="wait per command for the device's answer (default 1)")
    return parent


def _run_info(args: argparse.Namespace) -> int:
    import json

    from rich.table import Table

    from .sync import connect

    with connect(args.url, timeout=args.timeout) as dev:
        info = dev.info()
        link = dev.transport.describe()
    if args.json:
        print(json.dumps(dict(info.as_dict(), link=link), indent=2))
        return EXIT_OK
    d = info.as_dict()
    table = Table(title=f"ecgedge device on {link}", show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    rows = [
        ("protocol", str(d["protocol_version"])),
        ("firmware / core", f"{d['fw_version']} / {d['core_version']}"),
        ("model", f"0x{info.model_id:04X}"),
        ("leads", str(info.leads)),
        ("sample rate", f"{info.sample_rate_hz} Hz (supported: "
                        f"{', '.join(map(str, info.rates_hz)) or 'none listed'})"),
        ("gain", f"{info.gain_uv_per_count:g} µV/count"),
        ("mains notch", f"{info.mains_hz} Hz" if info.mains_hz else "none"),
        ("content / source", f"{d['content']} / {d['source']}"),
        ("capabilities", ", ".join(d["capabilities"]) or "none"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    Console().print(table)
    return EXIT_OK


def _run_stream(args: argparse.Namespace) -> int:
    from .recording import format_for_path, write_csv
    from .sync import connect

    if args.out is not None and str(args.out) != "-":
        try:
            fmt = format_for_path(args.out, args.format)
        except ValueError as exc:
            raise _UsageError(str(exc)) from None
        if not args.out.parent.is_dir():
            raise _UsageError(f"cannot write --out {args.out}: no directory {args.out.parent}")
    else:
        fmt = "csv"
    with connect(args.url, timeout=args.timeout) as dev:
        info = dev.info()
        rec = dev.record(args.seconds)
        counters = dev.counters
    files = []
    if args.out is not None and str(args.out) == "-":
        write_csv(rec, sys.stdout)
    elif args.out is not None:
        files = rec.save(args.out, fmt)
    out = sys.stderr if str(args.out) == "-" else sys.stdout
    print(f"{rec.span} samples ({rec.span / info.sample_rate_hz:.2f} s) x {info.leads} lead(s) "
          f"at {info.sample_rate_hz} Hz; {len(rec.gaps)} gap(s), {rec.missing} sample(s) "
          f"missing; {len(rec.beats)} beat(s); link: {counters.rx_errors} bad frame(s) "
          f"({counters.crc_errors} CRC)", file=out)
    if files:
        print("wrote " + ", ".join(str(f) for f in files), file=out)
    return EXIT_OK


class _MonitorState:
    """What the monitor shows, updated from device events."""

    def __init__(self, fs: float, leads: int) -> None:
        from collections import deque

        self.fs = fs
        self.leads = leads
        self.samples = 0
        self.end_index = 0
        self.beats = 0
        self.recent: deque[Any] = deque()  # beats of the last minute (stream time)
        self.rr: deque[int] = deque(maxlen=8)
        self.quality: deque[int] = deque(maxlen=30)
        self.search_back = 0
        self.classes: dict[str, int] = {}  # AAMI class letter -> beats (classifying devices)
        self.gaps = 0
        self.missing = 0
        self.beat_gaps = 0
        self.status: Any = None
        self.trace: deque[float] = deque(maxlen=int(TRACE_SECONDS * fs))
        self.t0 = time.monotonic()

    def update(self, ev: Any) -> None:
        from .device import Beat, Gap, SampleBlock, Status

        if isinstance(ev, SampleBlock):
            self.samples += ev.n
            self.end_index = ev.end_index
            self.trace.extend(ev.mv[:, 0].tolist())
        elif isinstance(ev, Beat):
            self.beats += 1
            self.recent.append(ev)
            while self.recent and self.recent[0].index < ev.index - 60 * self.fs:
                self.recent.popleft()
            if ev.rr_samples:
                self.rr.append(ev.rr_samples)
            self.quality.append(int(ev.quality))
            self.search_back += ev.search_back
            if isinstance(ev.beat_class, BeatClass) and ev.beat_class is not BeatClass.NONE:
                name = ev.beat_class.name
                self.classes[name] = self.classes.get(name, 0) + 1
        elif isinstance(ev, Gap):
            if ev.stream == "samples":
                self.gaps += 1
                self.missing += ev.samples or 0
                self.trace.clear()
            else:
                self.beat_gaps += ev.frames
        elif isinstance(ev, Status):
            self.status = ev

    @property
    def stream_s(self) -> float:
        return self.end_index / self.fs if self.fs else 0.0

    @property
    def heart_rate(self) -> float | None:
        if not self.rr:
            return None
        rr = sorted(self.rr)
        return 60.0 * self.fs / rr[len(rr) // 2]

    @property
    def beats_per_min(self) -> float | None:
        if len(self.recent) < 2:
            return None
        span = (self.recent[-1].index - self.recent[0].index) / self.fs
        return 60.0 * (len(self.recent) - 1) / span if span > 0 else None

    @property
    def quality_text(self) -> str:
        if not self.quality:
            return "-"
        names = ("good", "noisy", "unusable")
        last = names[self.quality[-1]] if self.quality[-1] < 3 else str(self.quality[-1])
        good = 100.0 * sum(q == 0 for q in self.quality) / len(self.quality)
        return f"{last} (last {len(self.quality)} beats: {good:.0f}% good)"

    @property
    def classes_text(self) -> str:
        """Beats per AAMI class so far, e.g. "N 120, V 14" ("" before any classified beat)."""
        return ", ".join(f"{c.name} {self.classes[c.name]}" for c in BeatClass
                         if c.name in self.classes)

    def trace_text(self) -> str:
        x = list(self.trace)
        if len(x) < TRACE_COLUMNS:
            return ""
        step = len(x) / TRACE_COLUMNS
        cols = [max(x[int(i * step):int((i + 1) * step)] or [0.0]) for i in range(TRACE_COLUMNS)]
        lo, hi = min(x), max(x)
        if hi - lo < 1e-9:
            return _SPARK[0] * TRACE_COLUMNS
        return "".join(_SPARK[min(7, int((c - lo) / (hi - lo) * 8))] for c in cols)

    def line(self) -> str:
        hr = self.heart_rate
        bpm = self.beats_per_min
        st = self.status
        dropped = st.samples_dropped if st is not None else 0
        return (f"t={self.stream_s:7.1f} s  HR {hr:5.1f} bpm" if hr else
                f"t={self.stream_s:7.1f} s  HR   -  bpm") + (
            f"  beats {self.beats} ({bpm:.0f}/min)" if bpm else f"  beats {self.beats}") + (
            f" [{self.classes_text}]" if self.classes else "") + (
            f"  quality {self.quality_text}  gaps {self.gaps} ({self.missing} samples)"
            f"  device dropped {dropped}")

    def render(self, title: str, link: Any, footer: str = "") -> Any:
        from rich.panel import Panel
        from rich.table import Table

        hr = self.heart_rate
        bpm = self.beats_per_min
        st = self.status
        t = Table.grid(padding=(0, 2))
        t.add_column(style="bold")
        t.add_column()
        t.add_row("heart rate", f"[bold green]{hr:.0f}[/] bpm (median of the last "
                  f"{len(self.rr)} RR)" if hr else "-")
        t.add_row("beats", f"{self.beats} detected, {bpm:.0f}/min over the last minute"
                  if bpm else f"{self.beats} detected")
        if self.classes:
            t.add_row("classes", f"{self.classes_text} (AAMI, classified on the device)")
        t.add_row("quality", self.quality_text)
        t.add_row("ECG (lead 0)", f"[red]{self.trace_text()}[/]")
        t.add_row("stream", f"{self.stream_s:.1f} s of ECG, {self.samples} samples, "
                  f"{time.monotonic() - self.t0:.1f} s wall")
        lost = f"{self.gaps} gap(s), {self.missing} sample(s) missing"
        if self.beat_gaps:
            lost += f", {self.beat_gaps} beat frame(s) lost"
        t.add_row("gaps", lost)
        t.add_row("link", f"{link.rx_errors} bad frame(s) ({link.crc_errors} CRC), "
                  f"{link.late} late")
        if st is not None:
            t.add_row("device", f"dropped {st.samples_dropped} samples / {st.frames_dropped} "
                      f"frames, queue {st.buffer_fill_pct}%, battery "
                      + ("n/a" if st.battery_pct is None else f"{st.battery_pct}%"))
        return Panel(t, title=title, subtitle=footer or None, expand=False)


async def _monitor(url: str, seconds: float | None, title: str, timeout: float,
                   footer: str = "") -> int:
    from rich.live import Live

    from . import connect_async

    console = Console()
    live_view = console.is_terminal
    async with connect_async(url, timeout=timeout) as dev:
        info = dev.last_info
        state = _MonitorState(info.sample_rate_hz, info.leads)
        if not live_view:
            print(f"{title}: {info.leads} lead(s) at {info.sample_rate_hz} Hz on "
                  f"{dev.transport.describe()}", flush=True)
        deadline = None if seconds is None else time.monotonic() + seconds
        next_print = time.monotonic() + 1.0
        next_render = 0.0
        async with dev.events(start=True) as events:
            live = Live(state.render(title, dev.counters, footer), console=console,
                        refresh_per_second=MONITOR_REFRESH_HZ, transient=False) \
                if live_view else None
            if live is not None:
                live.start()
            try:
                while deadline is None or time.monotonic() < deadline:
                    wait = 0.25 if deadline is None else max(0.0, min(0.25, deadline
                                                                       - time.monotonic()))
                    try:
                        batch = await asyncio.wait_for(events.next_batch(), wait)
                    except asyncio.TimeoutError:
                        batch = None
                    if batch == []:
                        break  # the stream ended (device stopped or rebooted)
                    for ev in batch or ():
                        state.update(ev)
                    if live is not None:
                        if time.monotonic() >= next_render:
                            live.update(state.render(title, dev.counters, footer))
                            next_render = time.monotonic() + 1.0 / MONITOR_REFRESH_HZ
                    elif time.monotonic() >= next_print:
                        print(state.line(), flush=True)
                        next_print += 1.0
            finally:
                if live is not None:
                    live.update(state.render(title, dev.counters, footer))
                    live.stop()
        if not live_view:
            print(state.line(), flush=True)
            print(f"done: {state.beats} beats in {state.stream_s:.1f} s of ECG, "
                  f"{state.gaps} gap(s), {dev.counters.rx_errors} bad frame(s)", flush=True)
    return EXIT_OK


def _run_monitor(args: argparse.Namespace) -> int:
    return asyncio.run(_monitor(args.url, args.seconds, f"ecgedge monitor {args.url}",
                                args.timeout))


def _run_demo(args: argparse.Namespace) -> int:
    from .data import ATTRIBUTION, demo_record

    url = f"sim://{demo_record()}?speed={args.speed:g}&mains=60"
    title = "ecgedge demo: MIT-BIH record 119 (first 4 min, looped) on the virtual device"
    footer = "MIT-BIH Arrhythmia Database, PhysioNet, ODC-By 1.0"
    rc = asyncio.run(_monitor(url, args.seconds, title, 2.0, footer))
    print(ATTRIBUTION, file=sys.stderr)
    return rc


def _add_device_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo", help="watch the detector live on the virtual device (packaged MIT-BIH excerpt)",
        description="Start the virtual device on the MIT-BIH record 119 excerpt shipped in the "
                    "package, stream from it and show heart rate, beats, signal quality and link "
                    "health live, for --seconds, then exit. Data: MIT-BIH Arrhythmia Database "
                    "(PhysioNet), ODC-By 1.0.")
    demo.add_argument("--seconds", type=_positive_seconds, default=DEMO_SECONDS,
                      metavar="SECONDS", help=f"how long to run (default {DEMO_SECONDS:g})")
    demo.add_argument("--speed", type=float, default=1.0, metavar="X",
                      help="playback speed, a real-time factor (default 1)")
    demo.set_defaults(run=_run_demo)

    info = commands.add_parser(
        "info", parents=[_url_options()], help="show a device's format, versions, capabilities",
        description="Connect to a device and print its DEVICE_INFO.")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(run=_run_info)

    stream = commands.add_parser(
        "stream", parents=[_url_options()], help="record a device's samples to WFDB, CSV or EDF",
        description="Restart the device's stream, record --seconds of ECG (counted on the "
                    "device's sample counter; lost samples keep their place and are marked: WFDB "
                    "invalid samples, CSV nan rows, EDF 'gap' annotations) and the beats, and "
                    "write them to --out.")
    stream.add_argument("--seconds", type=_positive_seconds, default=10.0, metavar="SECONDS",
                        help="seconds of ECG to record (default 10)")
    stream.add_argument("--out", type=Path, metavar="FILE",
                        help="output: NAME.dat or NAME (WFDB: NAME.hea, NAME.dat, NAME.beats), "
                             "NAME.csv, NAME.edf; '-' writes CSV to stdout")
    stream.add_argument("--format", choices=("wfdb", "csv", "edf"),
                        help="output format (default: from the --out extension)")
    stream.set_defaults(run=_run_stream)

    monitor = commands.add_parser(
        "monitor", parents=[_url_options()],
        help="live heart rate, beats, quality and gaps from a device",
        description="Restart the device's stream and show heart rate (median of the last 8 RR "
                    "intervals), beats per minute, beat quality, gaps and link errors live; "
                    "Ctrl-C (or --seconds) ends it and stops the stream.")
    monitor.add_argument("--seconds", type=_positive_seconds, metavar="SECONDS",
                         help="stop after this many seconds (default: until Ctrl-C)")
    monitor.set_defaults(run=_run_monitor)


def _run_alerts(args: argparse.Namespace) -> int:
    import json

    from .alerts import alerts_table, follow_alerts

    console = Console()

    def show(recs: list[Any], status: Any) -> None:
        if args.json:
            for a in recs:
                print(json.dumps(a.as_dict()), flush=True)
            return
        if recs:
            console.print(alerts_table(recs, f"alerts on {args.url}"))
        console.print(f"{status.queued} queued on the device (latest id {status.last_id}), "
                      f"{status.dropped} dropped on overflow"
                      + (", acknowledged what was shown" if args.ack and recs else ""))

    asyncio.run(follow_alerts(args.url, follow=args.follow, ack=args.ack, timeout=args.timeout,
                              show=show, seconds=args.seconds))
    return EXIT_OK


def _add_alerts(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    alerts = commands.add_parser(
        "alerts", parents=[_url_options()],
        help="show the rhythm alerts a device keeps (pull, optionally acknowledge, follow)",
        description="Pull the alert records the device keeps until acknowledged (bradycardia, "
                    "tachycardia, pause, asystole, VT, frequent ectopy, AF suspicion, lead-off, "
                    "poor signal; docs/protocol.md §5.5) and print them as a table. Without --ack "
                    "nothing is freed, so the next run shows them again.")
    alerts.add_argument("--follow", action="store_true",
                        help="keep running: wait for the device's new-alert notices and print "
                             "new records as they come (Ctrl-C ends)")
    alerts.add_argument("--ack", action="store_true",
                        help="acknowledge the records shown (the device frees them)")
    alerts.add_argument("--seconds", type=_positive_seconds, metavar="SECONDS",
                        help="with --follow: stop after this many seconds")
    alerts.add_argument("--json", action="store_true", help="one JSON object per record")
    alerts.set_defaults(run=_run_alerts)


def build_parser() -> argparse.ArgumentParser:
    """The `ecgedge` argument parser, with one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="ecgedge", description="ecgedge host tools: run and validate the firmware's ECG core.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND",
                                     required=True)
    _add_device_commands(commands)
    _add_alerts(commands)
    _add_validate(commands)
    _add_sim(commands)
    from .ble.cli import add_scan

    add_scan(commands)
    from .update_cli import add_personalize

    add_personalize(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `ecgedge` command line; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or an argparse usage error (already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    run: Runner = args.run
    from .errors import EcgError, UrlError
    from .validation.hil import HilError

    try:
        return run(args)
    except (DatabaseError, _UsageError, UrlError) as exc:
        print(f"ecgedge: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (EcgError, HilError) as exc:  # the device failed or cannot be used as asked
        print(f"ecgedge: error: {exc}", file=sys.stderr)
        return EXIT_DEVICE
    except KeyboardInterrupt:
        print("ecgedge: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED

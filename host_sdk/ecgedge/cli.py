"""The `ecgedge` command line.

Commands are argparse subcommands, grouped by purpose; each sets `run`, a function from the
parsed arguments to an exit status:

    ecgedge validate qrs --db DIR [--records R ...] [--channel N] [--start SECONDS] [--json FILE]
    ecgedge sim (--record PATH | --inject-only) [--pty | --tcp PORT] [--speed 1|max] ...

Exit status: 0 on success, 2 for a usage or input problem (bad option, missing database,
unknown record, channel out of range, ...), reported as a one-line message on stderr saying
what to do; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console

from . import __version__
from .validation.ec57 import LEARNING_PERIOD_S
from .validation.qrs import QrsReport, render_report, validate_qrs
from .validation.wfdb_db import DEFAULT_ANNOTATOR, DatabaseError

__all__ = ["build_parser", "main"]

EXIT_OK = 0
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


def _run_validate_qrs(args: argparse.Namespace) -> int:
    if args.json is not None and not args.json.parent.is_dir():  # fail before a long run
        raise _UsageError(f"cannot write --json {args.json}: no directory {args.json.parent}; "
                          "give a path in an existing directory")
    report = validate_qrs(args.db, records=args.records, channel=args.channel,
                          start_s=args.start, annotator=args.annotator, mains_hz=args.mains,
                          progress=not args.quiet)
    if args.json is not None:
        try:
            args.json.write_text(report.to_json(), encoding="utf-8")
        except OSError as exc:
            raise _UsageError(f"cannot write --json {args.json}: {exc.strerror}; "
                              "give a writable file path") from exc
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
    qrs.add_argument("--db", type=Path, required=True, metavar="DIR",
                     help="WFDB database directory, e.g. ../shared/data/mitdb (records from its "
                          "RECORDS file, else every .hea file with an annotation file)")
    qrs.add_argument("--records", nargs="+", metavar="R",
                     help="score only these records (default: all annotated records)")
    qrs.add_argument("--channel", type=_channel, default=0, metavar="N",
                     help="signal index (0-based) to detect on, in every record (default 0)")
    qrs.add_argument("--start", type=_seconds, default=LEARNING_PERIOD_S, metavar="SECONDS",
                     help="start of the scored period (default 300: EC57's 5-minute learning "
                          "period; 0 scores whole records)")
    qrs.add_argument("--annotator", default=DEFAULT_ANNOTATOR, metavar="EXT",
                     help="extension of the reference annotation files (default atr)")
    qrs.add_argument("--json", type=Path, metavar="FILE",
                     help='also write {"gross", "records", "by_snr"} counts and percentages '
                          "to FILE")
    qrs.add_argument("-q", "--quiet", action="store_true",
                     help="no progress bar and no notes on stderr; only the tables")
    qrs.set_defaults(run=_run_validate_qrs)


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
                                 status_period_ms=args.status_period)
        else:
            if args.channels is not None:
                raise _UsageError("--channels only applies with --record")
            vdev = VirtualDevice(None, fs_hz=args.fs or 360, leads=args.leads or 1,
                                 gain_uv_per_count=args.gain_uv or 5.0, mains_hz=args.mains,
                                 speed=args.speed, status_period_ms=args.status_period)
        return serve(vdev, tcp_port=args.tcp)
    except SimError as exc:
        raise _UsageError(str(exc)) from exc
    except OSError as exc:  # e.g. the TCP port is taken
        raise _UsageError(f"cannot serve: {exc.strerror or exc}; pick another --tcp port, or 0 "
                          "for any free one") from exc


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
    sim.set_defaults(run=_run_sim)


def build_parser() -> argparse.ArgumentParser:
    """The `ecgedge` argument parser, with one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="ecgedge", description="ecgedge host tools: run and validate the firmware's ECG core.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND",
                                     required=True)
    _add_validate(commands)
    _add_sim(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `ecgedge` command line; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or an argparse usage error (already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    run: Runner = args.run
    try:
        return run(args)
    except (DatabaseError, _UsageError) as exc:
        print(f"ecgedge: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("ecgedge: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED

"""The BLE parts of the `ecgedge` command: `ecgedge scan` and `ecgedge sim --ble`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from ..cli import EXIT_DEVICE, EXIT_OK, _monitor
from ..errors import TransportError
from .peripheral import DEFAULT_NAME

__all__ = ["add_scan", "serve_ble"]


def add_scan(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register `ecgedge scan`."""
    scan = commands.add_parser(
        "scan", help="list BLE devices advertising the ecgedge service",
        description="Scan for BLE devices advertising the ecgedge ECG service UUID (docs/"
                    "protocol.md §13) with bleak, and list name, address and signal strength; "
                    "connect to one with ble://NAME or ble://ADDRESS. Needs a Bluetooth adapter "
                    "(BlueZ on Linux); --sim scans this process's virtual link instead, with a "
                    "virtual peripheral on it.")
    scan.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                      help="how long to scan (default 5)")
    scan.add_argument("--sim", action="store_true",
                      help="start a virtual peripheral (packaged demo excerpt) on the in-process "
                           "link and scan that link (no hardware needed)")
    scan.add_argument("--json", action="store_true", help="print JSON instead of a table")
    scan.set_defaults(run=_run_scan)


def _run_scan(args: argparse.Namespace) -> int:
    from ..transports.ble import scan

    async def go() -> list[tuple[Any, Any]]:
        if not args.sim:
            return await scan(args.timeout, stack="os")
        from ..data import demo_record
        from ..sim import load_record
        from .peripheral import VirtualPeripheral

        async with VirtualPeripheral(load_record(demo_record()), speed=1.0):
            return await scan(args.timeout, stack="bumble")

    try:
        found = asyncio.run(go())
    except TransportError as exc:
        print(f"ecgedge: error: {exc}", file=sys.stderr)
        return EXIT_DEVICE
    rows = [dict(name=ad.local_name or dev.name or "", address=dev.address, rssi=ad.rssi,
                 services=list(ad.service_uuids)) for dev, ad in found]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"ecgedge devices ({len(rows)} found in {args.timeout:g} s)",
                  title_justify="left")
    for col in ("name", "address", "RSSI", "URL"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["address"], f"{r['rssi']} dBm", f"ble://{r['address']}")
    Console().print(table)
    return EXIT_OK


def serve_ble(vdev: Any, args: argparse.Namespace) -> int:
    """`ecgedge sim --ble`: serve `vdev` as a BLE peripheral on the in-process link and watch it
    through ``ble://`` (bleak on bumble) with the live monitor, for --seconds or until Ctrl-C;
    --cut-every drops the link periodically so reconnect and backfill can be seen."""
    from .peripheral import VirtualPeripheral

    async def go() -> int:
        async with VirtualPeripheral(vdev=vdev, name=DEFAULT_NAME) as per:
            print(f"ecgedge sim: BLE peripheral {per.name!r} at {per.address} on the in-process "
                  f"link ({vdev.describe()}); ECG service, Heart Rate, Device Information and "
                  "Battery services", flush=True)
            cutter = None
            if args.cut_every:
                async def cut_loop() -> None:
                    while True:
                        await asyncio.sleep(args.cut_every)
                        await per.cut()

                cutter = asyncio.get_running_loop().create_task(cut_loop())
            try:
                return await _monitor(f"ble://{per.name}", args.seconds,
                                      f"ecgedge sim --ble: {per.name} over bleak + bumble", 2.0)
            finally:
                if cutter is not None:
                    cutter.cancel()
                print(f"ecgedge sim: {per.connections} connection(s), {per.notifications} data "
                      f"notifications, {len(per.hrm_sent)} heart-rate notifications",
                      file=sys.stderr)

    return asyncio.run(go())

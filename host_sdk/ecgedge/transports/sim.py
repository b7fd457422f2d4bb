"""The virtual device as a link: ``sim://PATH/TO/RECORD`` (see `ecgedge.sim`).

URL format::

    sim://PATH/TO/RECORD[?speed=1|FACTOR|max&mains=50|60|none&channels=0,1&status_period=MS]
    sim://                                   the demo excerpt shipped in the package (ecgedge.data)
    sim://?inject_only=1[&fs=360&leads=1&gain_uv=5]    no front end: the host injects samples
    ...&storage=FILE&key=HEX      storage slots in FILE (heads survive restarts; default: RAM),
                                  per-device key of update packages (default: the public
                                  development key ecgedge.update.DEV_KEY)

PATH is a WFDB record path without extension, relative to the current directory
(``sim://../shared/data/mitdb/100``) or absolute (``sim:///data/mitdb/100``). Defaults: real time
(``speed=1``), 50 Hz notch, the record's first 8 signals, STATUS every 1000 ms.

Two backends (``backend=``):

- ``"process"`` (default): spawns ``python -m ecgedge.sim --tcp 0 ...`` (what ``ecgedge sim``
  runs) with this interpreter, reads the address from its first output line, and talks TCP to
  it. Chosen as the default because the device then runs beside the host, not inside its event
  loop: a device at ``speed=max`` and a host decoding its output use two processes (and two
  GILs), the host exercises the same TCP path as against a real bridge, and a wedged device
  cannot stall the host. `close()` ends the subprocess (SIGTERM, then kill).
- ``"inprocess"``: `ecgedge.sim.VirtualDevice` in this process, driven from `read()` (it produces
  only as fast as the host reads). No subprocess and no port: for tests and notebooks.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
import weakref
from pathlib import Path
from typing import IO, Any

from ..errors import TransportError, UrlError
from .base import (
    close_child_link,
    closed_error,
    kill_child,
    popen_tied,
    READ_SIZE,
    split_url,
    Transport,
    UrlOptions,
)
from .socket import SocketTransport

__all__ = ["BACKENDS", "InProcessSimTransport", "SimOptions", "SimTransport", "TRANSPORT"]

START_TIMEOUT_S = 30.0  #: the subprocess must announce its port within this time
_OPTIONS = {"speed", "mains", "channels", "status_period", "inject_only", "fs", "leads",
            "gain_uv", "storage", "key"}


class SimOptions:
    """The virtual device's settings, parsed from a ``sim://`` URL."""

    def __init__(self, record: Path | None, *, speed: float | None = 1.0,
                 mains_hz: int | None = 50, channels: list[int] | None = None,
                 status_period_ms: int = 1000, fs_hz: int = 360, leads: int = 1,
                 gain_uv_per_count: float = 5.0, storage: Path | None = None,
                 key: str | None = None) -> None:
        self.storage, self.key = storage, key
        self.record, self.speed, self.mains_hz = record, speed, mains_hz
        self.channels, self.status_period_ms = channels, status_period_ms
        self.fs_hz, self.leads, self.gain_uv_per_count = fs_hz, leads, gain_uv_per_count

    @classmethod
    def from_url(cls, url: str, url_format: str) -> "SimOptions":
        target, opts = split_url(url, "sim", url_format)
        opts.check_known(_OPTIONS)
        inject_only = opts.flag("inject_only")
        record: Path | None
        if inject_only:
            if target:
                raise UrlError(f"{url!r}: inject_only takes no record; use "
                               "sim://?inject_only=1&fs=360&leads=1")
            record = None
        elif target:
            record = Path(target).expanduser().resolve()
            if record.suffix in (".hea", ".dat"):
                record = record.with_suffix("")
            if not record.with_suffix(".hea").is_file():
                raise UrlError(f"{url!r}: no WFDB record {record} (no {record.name}.hea); give "
                               "a record path without extension, e.g. "
                               "sim://../shared/data/mitdb/100, or sim:// for the demo excerpt")
        else:
            from ..data import demo_record
            record = demo_record()
        if record is not None and any(k in opts for k in ("fs", "leads", "gain_uv")):
            raise UrlError(f"{url!r}: fs, leads and gain_uv only apply with inject_only=1; a "
                           "record sets them itself")
        return cls(record, speed=_speed(opts), mains_hz=_mains(opts),
                   channels=_channels(opts),
                   status_period_ms=opts.integer("status_period", 1000, lo=0, hi=65535) or 0,
                   fs_hz=opts.integer("fs", 360, lo=125, hi=1000) or 360,
                   leads=opts.integer("leads", 1, lo=1, hi=8) or 1,
                   gain_uv_per_count=opts.number("gain_uv", 5.0) or 5.0,
                   storage=_storage(opts), key=_key(opts))

    def argv(self) -> list[str]:
        """Arguments of ``ecgedge sim`` for these settings (TCP on a free port)."""
        args = ["--tcp", "0", "--speed", "max" if self.speed is None else f"{self.speed:g}",
                "--mains", "none" if self.mains_hz is None else str(self.mains_hz),
                "--status-period", str(self.status_period_ms)]
        if self.storage is not None:
            args += ["--storage", str(self.storage)]
        if self.key is not None:
            args += ["--device-key", self.key]
        if self.record is None:
            return ["--inject-only", "--fs", str(self.fs_hz), "--leads", str(self.leads),
                    "--gain-uv", repr(self.gain_uv_per_count), *args]
        args = ["--record", str(self.record), *args]
        if self.channels is not None:
            args += ["--channels", *map(str, self.channels)]
        return args

    def describe(self) -> str:
        what = f"record {self.record}" if self.record is not None else "injection only"
        speed = "max" if self.speed is None else f"{self.speed:g}x"
        return f"virtual device ({what}, speed {speed})"


def _storage(opts: UrlOptions) -> Path | None:
    value = opts.get("storage")
    return None if not value else Path(value).expanduser().resolve()


def _key(opts: UrlOptions) -> str | None:
    value = opts.get("key")
    if value is None:
        return None
    try:
        bytes.fromhex(value)
    except ValueError:
        raise UrlError(f"{opts.url}: option key={value!r}: give the device key in hex") from None
    return value


def _speed(opts: UrlOptions) -> float | None:
    value = opts.get("speed", "1")
    if value.lower() == "max":
        return None
    speed = opts.number("speed", 1.0)
    if speed is None or not speed > 0:
        raise UrlError(f"{opts.url}: option speed={value!r}: give a factor above 0, or max")
    return speed


def _mains(opts: UrlOptions) -> int | None:
    value = opts.get("mains", "50").lower()
    if value == "none":
        return None
    if value not in ("50", "60"):
        raise UrlError(f"{opts.url}: option mains={value!r}: use 50, 60 or none")
    return int(value)


def _channels(opts: UrlOptions) -> list[int] | None:
    value = opts.get("channels")
    if value is None:
        return None
    try:
        chans = [int(c) for c in value.split(",")]
    except ValueError:
        raise UrlError(f"{opts.url}: option channels={value!r}: give signal indices, "
                       "e.g. channels=0,1") from None
    if not chans or any(c < 0 for c in chans):
        raise UrlError(f"{opts.url}: option channels={value!r}: indices start at 0")
    return chans


class SimTransport(Transport):
    """Spawns ``ecgedge sim --tcp 0`` and connects to it (backend ``"process"``)."""

    scheme = "sim"
    url_format = "sim://PATH/TO/RECORD?speed=max"

    def __init__(self, options: SimOptions, *, url: str = "") -> None:
        super().__init__(url or "sim://")
        self.options = options
        self.proc: subprocess.Popen[bytes] | None = None
        self.address: str | None = None
        self._sock: SocketTransport | None = None
        self._stderr: IO[bytes] | None = None
        self._finalizer: Any = None

    @classmethod
    def from_url(cls, url: str) -> "SimTransport":
        return cls(SimOptions.from_url(url, cls.url_format), url=url)

    def describe(self) -> str:
        return self.options.describe() + (f" at {self.address}" if self.address else "")

    def _stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()

    async def connect(self) -> None:
        import ecgedge

        env = dict(os.environ, PYTHONUNBUFFERED="1")
        pkg_parent = str(Path(ecgedge.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_parent, env.get("PYTHONPATH")) if p)
        self._stderr = tempfile.TemporaryFile()
        cmd = [sys.executable, "-m", "ecgedge.sim", *self.options.argv()]
        try:
            self.proc = popen_tied(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=self._stderr, env=env)
        except OSError as exc:
            raise TransportError(f"{self.url}: cannot start the virtual device ({exc})") from exc
        self._finalizer = weakref.finalize(self, kill_child, self.proc)
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline),
                                          START_TIMEOUT_S)
        except asyncio.TimeoutError:
            await self.close()
            raise TransportError(f"{self.url}: the virtual device announced no address within "
                                 f"{START_TIMEOUT_S:g} s") from None
        m = re.search(rb"listening on socket://([\d.]+):(\d+)", line)
        if m is None:
            await asyncio.to_thread(self.proc.wait)
            err = self._stderr_text()
            await self.close()
            raise TransportError(f"{self.url}: the virtual device did not start: "
                                 f"{err or line.decode(errors='replace').strip() or 'no output'}")
        host, port = m.group(1).decode(), int(m.group(2))
        self.address = f"socket://{host}:{port}"
        self._sock = SocketTransport(host, port, url=self.address)
        try:
            await self._sock.connect()
        except TransportError:
            await self.close()
            raise

    async def read(self) -> bytes:
        if self._sock is None:
            raise closed_error(self.url)
        return await self._sock.read()

    async def write(self, data: bytes) -> None:
        if self._sock is None:
            raise closed_error(self.url)
        await self._sock.write(data)

    async def close(self) -> None:
        sock, self._sock = self._sock, None
        finalizer, self._finalizer = self._finalizer, None
        log, self._stderr = self._stderr, None
        proc = self.proc
        await close_child_link(sock, proc, finalizer, log)
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()


class InProcessSimTransport(Transport):
    """`ecgedge.sim.VirtualDevice` in this process, stepped by `read()` (backend "inprocess")."""

    scheme = "sim"
    url_format = SimTransport.url_format

    def __init__(self, options: SimOptions, *, url: str = "") -> None:
        super().__init__(url or "sim://")
        self.options = options
        self.vdev: Any = None
        self._pending = b""
        self._wake: asyncio.Event | None = None

    @classmethod
    def from_url(cls, url: str) -> "InProcessSimTransport":
        return cls(SimOptions.from_url(url, cls.url_format), url=url)

    def describe(self) -> str:
        return self.options.describe() + " in this process"

    async def connect(self) -> None:
        from ..sim import SimError, VirtualDevice, load_record

        o = self.options
        try:
            record = load_record(o.record, o.channels) if o.record is not None else None
            self.vdev = VirtualDevice(record, fs_hz=o.fs_hz, leads=o.leads,
                                      gain_uv_per_count=o.gain_uv_per_count,
                                      mains_hz=o.mains_hz, speed=o.speed,
                                      status_period_ms=o.status_period_ms,
                                      storage_path=o.storage,
                                      device_key=None if o.key is None else bytes.fromhex(o.key))
        except SimError as exc:
            raise TransportError(f"{self.url}: {exc}") from exc
        self._pending = self.vdev.connect()
        self._wake = asyncio.Event()

    async def read(self) -> bytes:
        await asyncio.sleep(0)  # always let the host's other tasks run between reads
        while True:
            vdev, wake = self.vdev, self._wake
            if vdev is None or wake is None:
                raise closed_error(self.url)
            if self._pending:
                out, self._pending = self._pending, b""
                return out
            out = vdev.run(READ_SIZE)
            if out:
                return out
            wake.clear()  # sleep until the device's next tick, or until the host writes
            try:
                await asyncio.wait_for(wake.wait(), vdev.wakeup_s())
            except asyncio.TimeoutError:
                pass

    async def write(self, data: bytes) -> None:
        if self.vdev is None or self._wake is None:
            raise closed_error(self.url)
        self.vdev.receive(bytes(data))
        self._wake.set()

    async def close(self) -> None:
        vdev, self.vdev = self.vdev, None
        if vdev is not None:
            vdev.disconnect()


TRANSPORT = SimTransport
BACKENDS: dict[str, type[Transport]] = {"process": SimTransport, "inprocess": InProcessSimTransport}

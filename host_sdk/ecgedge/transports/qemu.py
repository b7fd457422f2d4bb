"""The Cortex-M4F firmware in QEMU as a link: ``qemu://[PATH/TO/device.elf]``.

URL format: ``qemu://[ELF][?build=1&icount=SHIFT&timeout=SECONDS&key=HEX&monitor=1]``. Without ELF the default image
`DEFAULT_ELF` of this source tree is used and, when missing, built first with
``make -C firmware/qemu device`` (``build=0`` skips that). An explicit ELF is never built:
``qemu:///abs/device.elf`` or ``qemu://relative/device.elf`` (from the current directory).

`connect()` picks a free TCP port on 127.0.0.1 and runs::

    qemu-system-arm -M mps2-an386 -nographic -monitor none -kernel ELF \\
        -serial tcp:127.0.0.1:PORT,server=on,wait=on,nodelay=on \\
        -semihosting-config enable=on,target=native

(`qemu_command`; plus ``-icount shift=SHIFT`` when asked; ``key=HEX`` passes the per-device key
of update packages on the semihosting command line, ``arg=--device-key,arg=HEX``; ``monitor=1``
serves QEMU's monitor on another port so that `system_reset()` can reset the board, whose storage
slots survive it), then connects to the port: UART0 of
the board is the device's serial link, and the guest starts running once the connection is made.
The guest's semihosting output (stdout/stderr) goes to a temporary file quoted in errors.
`close()` ends QEMU (SIGTERM, then kill).

Writes wait (up to `BOOT_TIMEOUT_S`) until the guest has sent its first byte (the device's
DEVICE_INFO at boot): bytes that reach the board's UART while the firmware is still starting
can be lost, and with the current device image they may even leave its receiver deaf.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from typing import IO, Any

from ..errors import TransportError, UrlError
from .base import (
    close_child_link,
    closed_error,
    free_port,
    kill_child,
    popen_tied,
    split_url,
    Transport,
)
from .socket import SocketTransport

__all__ = ["BUILD_COMMAND", "DEFAULT_ELF", "QEMU", "QemuTransport", "TRANSPORT", "default_elf",
           "qemu_command"]

QEMU = "qemu-system-arm"
MACHINE = "mps2-an386"
DEFAULT_ELF = Path("firmware/build/qemu/o2/device.elf")  #: relative to the project root
BUILD_COMMAND = ["make", "-C", "firmware/qemu", "device"]  #: run in the project root
BUILD_TIMEOUT_S = 600.0
CONNECT_TIMEOUT_S = 10.0
BOOT_TIMEOUT_S = 2.0  #: writes wait this long at most for the guest's first byte


def _project_root() -> Path:
    """The source tree this package sits in (host_sdk/ecgedge/...), else the current directory."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "firmware" / "qemu" / "Makefile").is_file() else Path.cwd()


def default_elf() -> Path:
    """Where the default QEMU device image is (or will be) built."""
    return _project_root() / DEFAULT_ELF


def qemu_command(elf: str | Path, port: int, icount_shift: int | None = None, *,
                 key: str | None = None, monitor_port: int | None = None) -> list[str]:
    """The QEMU command line booting `elf` with UART0 served on TCP `port` of 127.0.0.1.

    `nodelay=on`: QEMU hands the socket one byte per UART write; with Nagle's algorithm the rest
    of a reply waits for the host's (delayed) ACK, about 40 ms per request/response turn (about
    7 ms with it).
    """
    monitor = "none" if monitor_port is None else f"tcp:127.0.0.1:{monitor_port},server=on,wait=off"
    semihosting = "enable=on,target=native" + (
        "" if key is None else f",arg={Path(elf).name},arg=--device-key,arg={key}")
    cmd = [QEMU, "-M", MACHINE, "-nographic", "-monitor", monitor, "-kernel", str(elf),
           "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on",
           "-semihosting-config", semihosting]
    if icount_shift is not None:
        cmd += ["-icount", f"shift={icount_shift}"]
    return cmd


class QemuTransport(Transport):
    """Boots a firmware image in ``qemu-system-arm -M mps2-an386`` and connects to its UART."""

    scheme = "qemu"
    url_format = "qemu://[PATH/TO/device.elf]"

    def __init__(self, elf: str | Path | None = None, *, build: bool | None = None,
                 icount_shift: int | None = None, connect_timeout_s: float = CONNECT_TIMEOUT_S,
                 url: str = "", key: str | None = None, monitor: bool = False) -> None:
        super().__init__(url or (f"qemu://{elf}" if elf else "qemu://"))
        self.explicit = elf is not None
        self.elf = Path(elf).expanduser().resolve() if elf is not None else default_elf()
        self.build = (not self.explicit) if build is None else build
        self.icount_shift = icount_shift
        self.key = key
        self.monitor_port: int | None = free_port() if monitor else None
        self.connect_timeout_s = connect_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self._sock: SocketTransport | None = None
        self._log: IO[bytes] | None = None
        self._finalizer: Any = None
        self._booted: asyncio.Event | None = None

    @classmethod
    def from_url(cls, url: str) -> "QemuTransport":
        target, opts = split_url(url, cls.scheme, cls.url_format)
        opts.check_known({"build", "icount", "timeout", "key", "monitor"})
        key = opts.text("key")
        if key is not None:
            try:
                bytes.fromhex(key)
            except ValueError:
                raise UrlError(f"{url}: option key={key!r}: give the device key in hex") from None
        return cls(target or None, build=opts.flag("build") if "build" in opts else None,
                   key=key, monitor=opts.flag("monitor"),
                   icount_shift=opts.integer("icount", None, lo=0, hi=10),
                   connect_timeout_s=opts.number("timeout", CONNECT_TIMEOUT_S) or CONNECT_TIMEOUT_S,
                   url=url)

    def describe(self) -> str:
        return f"QEMU {MACHINE} running {self.elf}" + (f" (UART on port {self.port})"
                                                      if self.port else "")

    def command(self, port: int) -> list[str]:
        """The QEMU command line for serving the UART on `port`."""
        return qemu_command(self.elf, port, self.icount_shift, key=self.key,
                            monitor_port=self.monitor_port)

    def _how_to_build(self) -> str:
        return (f"build it with `{' '.join(BUILD_COMMAND)}` in the project root (needs Debian's "
                "gcc-arm-none-eabi and libnewlib-arm-none-eabi)")

    async def _ensure_elf(self) -> None:
        if self.elf.is_file():
            return
        if self.explicit:
            raise TransportError(f"{self.url}: no such firmware image {self.elf}; give the path "
                                 f"of a built device.elf, or use qemu:// for {DEFAULT_ELF} ("
                                 + self._how_to_build() + ")")
        root = _project_root()
        if not self.build or shutil.which("make") is None \
                or not (root / "firmware" / "qemu" / "Makefile").is_file():
            raise TransportError(f"{self.url}: the QEMU device firmware {self.elf} is not built; "
                                 + self._how_to_build())
        try:
            r = await asyncio.to_thread(subprocess.run, BUILD_COMMAND, cwd=root,
                                        capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TransportError(f"{self.url}: building {self.elf} failed ({exc}); "
                                 + self._how_to_build()) from exc
        if r.returncode != 0 or not self.elf.is_file():
            tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-5:])
            raise TransportError(f"{self.url}: the QEMU device firmware {self.elf} is not built "
                                 f"and `{' '.join(BUILD_COMMAND)}` did not produce it "
                                 f"(exit {r.returncode}: {tail}); " + self._how_to_build())

    def _log_text(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace").strip()[-2000:]

    async def connect(self) -> None:
        if shutil.which(QEMU) is None:
            raise TransportError(f"{self.url}: {QEMU} is not installed (Debian: apt-get install "
                                 "qemu-system-arm)")
        await self._ensure_elf()
        self.port = free_port()
        self._log = tempfile.TemporaryFile()
        try:
            self.proc = popen_tied(self.command(self.port), stdin=subprocess.DEVNULL,
                                   stdout=self._log, stderr=subprocess.STDOUT)
        except OSError as exc:
            raise TransportError(f"{self.url}: cannot run {QEMU} ({exc})") from exc
        self._finalizer = weakref.finalize(self, kill_child, self.proc)
        deadline = time.monotonic() + self.connect_timeout_s
        while True:
            if self.proc.poll() is not None:
                log = self._log_text()
                await self.close()
                raise TransportError(f"{self.url}: QEMU exited ({self.proc.returncode}) before "
                                     f"the link was up: {log or 'no output'}")
            sock = SocketTransport("127.0.0.1", self.port, connect_timeout_s=1.0)
            try:
                await sock.connect()
            except TransportError:
                if time.monotonic() > deadline:
                    await self.close()
                    raise TransportError(f"{self.url}: QEMU's serial port {self.port} did not "
                                         f"accept a connection within {self.connect_timeout_s:g} s"
                                         ) from None
                await asyncio.sleep(0.05)
                continue
            self._sock = sock
            self._booted = asyncio.Event()
            return

    async def read(self) -> bytes:
        if self._sock is None:
            raise closed_error(self.url)
        try:
            data = await self._sock.read()
            if self._booted is not None:
                self._booted.set()
            return data
        except TransportError as exc:
            if self.proc is not None and self.proc.poll() is not None:
                raise TransportError(f"{self.url}: QEMU exited ({self.proc.returncode}): "
                                     f"{self._log_text() or 'no output'}") from exc
            raise

    async def write(self, data: bytes) -> None:
        if self._sock is None:
            raise closed_error(self.url)
        booted = self._booted
        if booted is not None and not booted.is_set():
            try:
                await asyncio.wait_for(booted.wait(), BOOT_TIMEOUT_S)
            except asyncio.TimeoutError:
                pass
            booted.set()  # wait once only
        await self._sock.write(data)

    async def close(self) -> None:
        sock, self._sock = self._sock, None
        finalizer, self._finalizer = self._finalizer, None
        log, self._log = self._log, None
        proc = self.proc
        await close_child_link(sock, proc, finalizer, log)

    async def system_reset(self) -> None:
        """Reset the board through QEMU's monitor (URL option ``monitor=1``): the firmware boots
        again (a new DEVICE_INFO with seq 0); its storage slots survive (hal_qemu.h)."""
        if self.monitor_port is None or self.proc is None:
            raise TransportError(f"{self.url}: system_reset() needs the monitor: add ?monitor=1")
        reader, writer = await asyncio.open_connection("127.0.0.1", self.monitor_port)
        try:
            writer.write(b"system_reset\n")
            await writer.drain()
            await asyncio.wait_for(reader.readuntil(b"system_reset"), CONNECT_TIMEOUT_S)
        finally:
            writer.close()

    @property
    def output(self) -> str:
        """What the guest printed through semihosting so far (and QEMU's own messages)."""
        return self._log_text()


TRANSPORT = QemuTransport

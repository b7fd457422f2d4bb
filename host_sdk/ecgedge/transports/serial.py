"""Serial link (UART, USB-CDC, a pty): ``serial:///dev/ttyUSB0?baud=115200`` (pyserial).

URL format: ``serial://PORT[?baud=N&rtscts=1]``. PORT is a device path (``serial:///dev/ttyACM0``,
``serial:///dev/pts/3``), a Windows port (``serial://COM3``), or any pyserial URL
(``serial://socket://127.0.0.1:5555``, ``serial://rfc2217://host:port``), opened with
`serial.serial_for_url`. `baud` defaults to 115200 (USB-CDC and ptys ignore it).

pyserial is blocking, so one reader thread per port reads with a short timeout
(`READ_POLL_S`) and large requests: ``read(READ_SIZE)`` returns what arrived within the timeout
in one chunk, which works for every pyserial backend, including ``socket://`` whose
`in_waiting` reports at most one byte. Writes run in a worker thread so the event loop never
blocks on a full output buffer.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from ..errors import TransportError, UrlError
from .base import READ_SIZE, Transport, closed_error, read_queued, split_url

__all__ = ["DEFAULT_BAUD", "SerialTransport", "TRANSPORT"]

DEFAULT_BAUD = 115200
READ_POLL_S = 0.01  #: the reader thread's read timeout: the latency it adds at most
WRITE_TIMEOUT_S = 5.0


class SerialTransport(Transport):
    """A serial port (or pyserial URL) with a reader thread."""

    scheme = "serial"
    url_format = "serial:///dev/ttyUSB0?baud=115200"

    def __init__(self, port: str, baud: int = DEFAULT_BAUD, *, rtscts: bool = False,
                 url: str = "") -> None:
        super().__init__(url or f"serial://{port}?baud={baud}")
        self.port, self.baud, self.rtscts = port, baud, rtscts
        self._ser: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._queue: asyncio.Queue[bytes | BaseException] | None = None
        self._write_lock: asyncio.Lock | None = None

    @classmethod
    def from_url(cls, url: str) -> "SerialTransport":
        target, opts = split_url(url, cls.scheme, cls.url_format)
        opts.check_known({"baud", "rtscts"})
        if not target:
            raise UrlError(f"{url!r}: give a port, e.g. serial:///dev/ttyUSB0?baud=115200 "
                           "or serial://COM3")
        return cls(target, opts.integer("baud", DEFAULT_BAUD, lo=50, hi=20_000_000) or DEFAULT_BAUD,
                   rtscts=opts.flag("rtscts"), url=url)

    def describe(self) -> str:
        return f"serial port {self.port} at {self.baud} baud"

    async def connect(self) -> None:
        import serial  # pyserial; imported here so `import ecgedge.transports` stays light

        try:
            ser = serial.serial_for_url(self.port, baudrate=self.baud, timeout=READ_POLL_S,
                                        write_timeout=WRITE_TIMEOUT_S, rtscts=self.rtscts,
                                        do_not_open=True)
            ser.open()
        except (serial.SerialException, ValueError, OSError) as exc:
            raise TransportError(f"{self.url}: cannot open {self.port} ({exc}); check the path "
                                 "and that no other program holds the port") from exc
        self._ser = ser
        loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._write_lock = asyncio.Lock()
        self._stop.clear()
        self._thread = threading.Thread(target=self._reader, args=(loop, self._queue),
                                        name=f"ecgedge-serial-{self.port}", daemon=True)
        self._thread.start()

    def _reader(self, loop: asyncio.AbstractEventLoop,
                queue: asyncio.Queue[bytes | BaseException]) -> None:
        ser = self._ser
        while not self._stop.is_set():
            try:
                data = ser.read(READ_SIZE)
            except Exception as exc:  # SerialException, OSError: the port went away
                if not self._stop.is_set():
                    err = TransportError(f"{self.url}: {exc}")
                    loop.call_soon_threadsafe(queue.put_nowait, err)
                return
            if data:
                try:
                    loop.call_soon_threadsafe(queue.put_nowait, data)
                except RuntimeError:  # the loop is closed
                    return

    async def read(self) -> bytes:
        queue = self._queue
        if queue is None or self._ser is None:
            raise closed_error(self.url)
        try:
            return await read_queued(queue)
        except TransportError:
            self._queue = None
            raise

    async def write(self, data: bytes) -> None:
        ser, lock = self._ser, self._write_lock
        if ser is None or lock is None:
            raise closed_error(self.url)
        async with lock:
            try:
                await asyncio.to_thread(ser.write, data)
            except Exception as exc:  # SerialTimeoutException, SerialException, OSError
                raise TransportError(f"{self.url}: write failed ({exc})") from exc

    async def close(self) -> None:
        ser, self._ser = self._ser, None
        if ser is None:
            return
        self._stop.set()
        try:
            ser.cancel_read()
        except Exception:  # not every backend can
            pass
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.to_thread(thread.join, 1.0)
        try:
            ser.close()
        except Exception:
            pass
        self._queue = None


TRANSPORT = SerialTransport

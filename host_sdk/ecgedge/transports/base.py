"""The transport contract: an async byte link to one device.

A `Transport` moves the wire protocol's bytes (docs/protocol.md §1: COBS frames separated by
0x00) and knows nothing of frames or commands; `ecgedge.device.Device` does the framing on top.
Byte-stream links (UART, USB-CDC, TCP, a pty, QEMU's serial port) return whatever arrived;
frame-oriented links (a BLE notification per frame, in a later issue) return each notification's
bytes, which already end with the delimiter, so the same decoder serves both.

Implementations live in `ecgedge.transports.<scheme>` and are found by URL scheme (see
`ecgedge.transports.transport_for_url`). A new link is one module with a `Transport` subclass
named in its `TRANSPORT` attribute; alternatives for the same scheme go in its `BACKENDS` dict and
are chosen with `backend=` (like bleak's backend override).

Rules every implementation follows:

1. `connect()` opens the link or raises `TransportError` with a message saying what to do.
2. `read()` waits until at least one byte arrived and returns the bytes available (at most about
   64 KiB); it raises `TransportError` when the link broke or was closed. Cancelling a pending
   `read()` (asyncio) loses no byte.
3. `write(data)` sends all of `data` in order (flow control may make it wait); concurrent writes
   are not interleaved (the caller serialises them).
4. `close()` is idempotent, never raises for an already broken link, and stops anything the
   transport started (subprocesses, threads).
"""

from __future__ import annotations

import abc
import asyncio
import os
import socket
import subprocess
import sys
from types import TracebackType
import weakref
from typing import IO, Any, ClassVar
from urllib.parse import parse_qsl

from ..errors import TransportError, UrlError

__all__ = ["READ_SIZE", "Transport", "TransportError", "UrlOptions", "free_port", "popen_tied",
           "split_url"]

READ_SIZE = 65536  #: bytes a transport returns per `read()` at most (about)


class Transport(abc.ABC):
    """An async byte link to one device.

    Attributes:
        url: the URL the transport was made from ("" when built directly).
        max_write: most bytes one `write` may carry on this link (None: any); a BLE transport
            sets its ATT payload size so the device layer writes whole frames only.
    """

    #: URL scheme this transport serves (the module name under `ecgedge.transports`).
    scheme: ClassVar[str] = ""
    #: URL form for error messages and docs, e.g. ``socket://HOST:PORT``.
    url_format: ClassVar[str] = ""
    max_write: int | None = None

    def __init__(self, url: str = "") -> None:
        self.url = url

    @classmethod
    def from_url(cls, url: str) -> "Transport":
        """Make an unconnected transport from `url` (the `scheme://...` form of `url_format`).

        Raises:
            UrlError: a URL this transport cannot use; the message shows the expected form.
        """
        raise NotImplementedError(f"{cls.__name__} cannot be made from a URL")

    @abc.abstractmethod
    async def connect(self) -> None:
        """Open the link (start processes, open ports, connect sockets)."""

    @abc.abstractmethod
    async def read(self) -> bytes:
        """The next bytes from the device (at least one); TransportError once the link ends."""

    @abc.abstractmethod
    async def write(self, data: bytes) -> None:
        """Send `data` to the device."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the link and stop what `connect` started; idempotent."""

    def describe(self) -> str:
        """One line for humans: what this link is."""
        return self.url or type(self).__name__

    async def __aenter__(self) -> "Transport":
        await self.connect()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


class UrlOptions(dict[str, str]):
    """Query options of a device URL (`?baud=115200&speed=max`), with typed getters that raise
    `UrlError` naming the URL and the option."""

    def __init__(self, url: str, items: list[tuple[str, str]]) -> None:
        super().__init__(items)
        self.url = url

    def _bad(self, name: str, value: str, want: str) -> UrlError:
        return UrlError(f"{self.url}: option {name}={value!r}: {want}")

    def text(self, name: str, default: str | None = None) -> str | None:
        return self.get(name, default)

    def integer(self, name: str, default: int | None = None, *, lo: int | None = None,
                hi: int | None = None) -> int | None:
        value = self.get(name)
        if value is None:
            return default
        try:
            n = int(value, 0)
        except ValueError:
            raise self._bad(name, value, "give an integer") from None
        if (lo is not None and n < lo) or (hi is not None and n > hi):
            raise self._bad(name, value, f"give a value in {lo}..{hi}")
        return n

    def number(self, name: str, default: float | None = None) -> float | None:
        value = self.get(name)
        if value is None:
            return default
        try:
            return float(value)
        except ValueError:
            raise self._bad(name, value, "give a number") from None

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.get(name)
        if value is None:
            return default
        v = value.strip().lower()
        if v in ("", "1", "true", "yes", "on"):
            return True
        if v in ("0", "false", "no", "off"):
            return False
        raise self._bad(name, value, "give 1 or 0")

    def check_known(self, known: set[str]) -> None:
        """Raise UrlError for an option the transport does not know (a typo must not pass)."""
        unknown = sorted(set(self) - known)
        if unknown:
            raise UrlError(f"{self.url}: unknown option(s) {', '.join(unknown)}; this URL takes "
                           f"{', '.join(sorted(known)) or 'no options'}")


def split_url(url: str, scheme: str, url_format: str) -> tuple[str, UrlOptions]:
    """Split ``scheme://TARGET?opt=v&...`` into TARGET (verbatim, may itself contain ``://``)
    and its options.

    Raises:
        UrlError: the URL does not start with ``scheme://``.
    """
    prefix = f"{scheme}://"
    if not url.lower().startswith(prefix):
        raise UrlError(f"{url!r} is not a {scheme} URL; use {url_format}")
    rest = url[len(prefix):]
    target, _, query = rest.partition("?")
    try:
        items = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise UrlError(f"{url}: cannot parse the options after '?'; use {url_format}") from None
    return target, UrlOptions(url, items)


def free_port() -> int:
    """A TCP port of 127.0.0.1 free right now (for a server a transport starts, e.g. QEMU)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_error(what: str) -> TransportError:
    """The error a transport raises when used after close (or before connect)."""
    return TransportError(f"{what} is not open")


async def read_queued(queue: "asyncio.Queue[bytes | BaseException]") -> bytes:
    """`Transport.read` for links whose bytes a thread or callback puts in `queue`: the chunks
    queued now joined (at least one, about `READ_SIZE` at most); a queued error is raised once the
    bytes before it have been returned."""
    item = await queue.get()
    parts: list[bytes] = []
    while True:
        if isinstance(item, BaseException):
            if parts:  # deliver the bytes first; the error comes next time
                queue.put_nowait(item)
                break
            raise item
        parts.append(item)
        if queue.empty() or sum(map(len, parts)) >= READ_SIZE:
            break
        item = queue.get_nowait()
    return b"".join(parts)


# A child that must not outlive this process (a virtual device, QEMU): on Linux the shim asks
# the kernel to send it SIGTERM when its parent goes (PR_SET_PDEATHSIG, kept across exec), and
# gives up if the parent is already gone; then it execs the real command. Without it a host that
# is killed hard (SIGKILL, SIGTERM without cleanup) would leave a server running.
_SHIM = """
import os, sys
if sys.platform.startswith("linux"):
    try:
        import ctypes, signal
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))
    except Exception:
        pass
    if os.getppid() != int(sys.argv[1]):
        sys.exit(1)
os.execvp(sys.argv[2], sys.argv[2:])
"""


def popen_tied(cmd: list[str], **kwargs: Any) -> "subprocess.Popen[bytes]":
    """`subprocess.Popen(cmd)`, through a shim that ties the child's life to this process
    (Linux: SIGTERM when the thread that started it exits; elsewhere a plain Popen)."""
    if not sys.platform.startswith("linux"):
        return subprocess.Popen(cmd, **kwargs)
    return subprocess.Popen([sys.executable, "-c", _SHIM, str(os.getpid()), *cmd], **kwargs)


#: How long a child process (virtual device, QEMU) gets to exit after it is asked to.
STOP_TIMEOUT_S = 5.0


def kill_child(proc: "subprocess.Popen[bytes]") -> None:
    """Kill a child started by `popen_tied` if it still runs, and reap it (bounded wait)."""
    if proc.poll() is None:
        proc.kill()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass


async def stop_child(proc: "subprocess.Popen[bytes]") -> None:
    """Ask a child to exit (SIGTERM), give it STOP_TIMEOUT_S, then kill it; never blocks the loop."""
    if proc.poll() is None:
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            await asyncio.to_thread(kill_child, proc)


async def close_child_link(sock: Transport | None, proc: "subprocess.Popen[bytes] | None",
                           finalizer: "weakref.finalize[Any, Any] | None",
                           log: IO[bytes] | None) -> None:
    """Tear down a transport that speaks to a child process over a socket (sim://, qemu://):
    close the socket, stop the child, drop its exit-time finalizer, close its log file. The
    caller clears its own references first, so a second close does nothing."""
    if sock is not None:
        await sock.close()
    if proc is not None:
        await stop_child(proc)
    if finalizer is not None:
        finalizer.detach()
    if log is not None:
        log.close()

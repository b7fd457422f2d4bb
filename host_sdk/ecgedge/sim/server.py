"""Serve a `VirtualDevice` on a TCP port (127.0.0.1 only) or a pseudo-terminal.

One single-threaded `select` loop moves bytes between the link and the device and keeps the
simulated front end running. Flow control is the link's: at most `OUT_HIGH_WATER` bytes wait in
the server for the host; beyond that the server stops taking the device's output, so a full-speed
device waits (nothing is lost), and a real-time device fills its own queue and then drops and
counts frames (seen by the host as sequence gaps and in STATUS), like hardware on a slow link.

TCP: one host at a time; when it disconnects its stream ends (the device's front end stops and
queued frames are discarded) and the next connection is accepted. Each new connection gets a lone
0x00 and an unsolicited DEVICE_INFO (docs/protocol.md §6.2).

PTY: the slave is kept open by the server and set to raw mode, so hosts may open and close it at
will; the device keeps serving (a pty cannot tell a host left; bytes written meanwhile wait in
the pty and the host's decoder resynchronises on them).

SIGINT and SIGTERM end the loop cleanly (exit status 0).
"""

from __future__ import annotations

import os
import select
import signal
import socket
import threading
import tty
from collections.abc import Callable
from types import FrameType

from .device import VirtualDevice

__all__ = ["OUT_HIGH_WATER", "serve"]

OUT_HIGH_WATER = 64 * 1024  #: bytes the server buffers for the host before it stops taking more
IDLE_WAIT_S = 0.05  #: longest select wait, so signals and the clock are seen promptly

Announce = Callable[[str], None]


def _print(line: str) -> None:
    print(line, flush=True)


class _StopFlag:
    """Set by SIGINT / SIGTERM (main thread only) or by the caller's `should_stop`."""

    def __init__(self, should_stop: Callable[[], bool] | None) -> None:
        self.signalled = False
        self._should_stop = should_stop
        self._previous: dict[int, object] = {}

    def __call__(self) -> bool:
        return self.signalled or (self._should_stop is not None and self._should_stop())

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.signalled = True

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()


def serve(vdev: VirtualDevice, *, tcp_port: int | None = None, announce: Announce = _print,
          should_stop: Callable[[], bool] | None = None) -> int:
    """Serve `vdev` on TCP port `tcp_port` of 127.0.0.1 (0: any free port), or on a new pty when
    `tcp_port` is None, until SIGINT/SIGTERM or `should_stop()`. The first line announced gives
    the address: `... listening on socket://127.0.0.1:PORT ...` or `... serving on /dev/pts/N ...`.

    Returns:
        0 (exit status).
    """
    stop = _StopFlag(should_stop)
    stop.install()
    try:
        if tcp_port is not None:
            _serve_tcp(vdev, tcp_port, announce, stop)
        else:
            _serve_pty(vdev, announce, stop)
    finally:
        stop.restore()
    return 0


def _timeout(vdev: VirtualDevice, out: bytearray) -> float:
    if vdev.busy() and len(out) < OUT_HIGH_WATER:
        return 0.0
    return min(vdev.wakeup_s() or IDLE_WAIT_S, IDLE_WAIT_S)


def _serve_tcp(vdev: VirtualDevice, port: int, announce: Announce, stop: _StopFlag) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client: socket.socket | None = None
    out = bytearray()
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(4)
        listener.setblocking(False)
        announce(f"ecgedge sim: listening on socket://127.0.0.1:{listener.getsockname()[1]} "
                 f"({vdev.describe()})")

        def drop_client() -> None:
            nonlocal client
            assert client is not None
            vdev.disconnect()
            client.close()
            client = None
            out.clear()

        while not stop():
            if client is None:
                readable, _, _ = select.select([listener], [], [], IDLE_WAIT_S)
                vdev.run(0)  # no host: keep the clock going, send nothing
                if readable:
                    try:
                        client, _ = listener.accept()
                    except (BlockingIOError, InterruptedError):
                        continue
                    client.setblocking(False)
                    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    out[:] = vdev.connect()
                continue
            readable, _, _ = select.select([client], [client] if out else [], [],
                                           _timeout(vdev, out))
            if readable:
                try:
                    data = client.recv(65536)
                except (BlockingIOError, InterruptedError):
                    data = None
                except OSError:
                    data = b""
                if data == b"":  # the host closed the connection
                    drop_client()
                    continue
                if data:
                    vdev.receive(data)
            if out:
                try:
                    del out[:client.send(out)]
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    drop_client()
                    continue
            out += vdev.run(OUT_HIGH_WATER - len(out))
    finally:
        if client is not None:
            client.close()
        listener.close()


def _serve_pty(vdev: VirtualDevice, announce: Announce, stop: _StopFlag) -> None:
    master, slave = os.openpty()
    try:
        tty.setraw(slave)  # no echo, no CR/LF translation: the link carries bytes
        os.set_blocking(master, False)
        announce(f"ecgedge sim: serving on {os.ttyname(slave)} ({vdev.describe()})")
        out = bytearray(vdev.connect())
        while not stop():
            readable, _, _ = select.select([master], [master] if out else [], [],
                                           _timeout(vdev, out))
            if readable:
                try:
                    data = os.read(master, 65536)
                except (BlockingIOError, InterruptedError):
                    data = b""
                except OSError:  # EIO: no slave open (cannot happen while we hold one)
                    data = b""
                if data:
                    vdev.receive(data)
            if out:
                try:
                    del out[:os.write(master, out)]
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    out.clear()
            out += vdev.run(OUT_HIGH_WATER - len(out))
    finally:
        os.close(master)
        os.close(slave)

"""TCP link: ``socket://HOST:PORT`` (asyncio streams).

URL format: ``socket://HOST:PORT[?timeout=SECONDS]``; `timeout` bounds the connection attempt
(default 5 s). IPv6 hosts go in brackets: ``socket://[::1]:5555``. Serves the virtual device
(`ecgedge sim --tcp PORT`), QEMU's serial port, and serial-to-TCP bridges.
"""

from __future__ import annotations

import asyncio
import socket as _socket

from ..errors import TransportError, UrlError
from .base import READ_SIZE, Transport, closed_error, split_url

__all__ = ["SocketTransport", "TRANSPORT"]

CONNECT_TIMEOUT_S = 5.0


class SocketTransport(Transport):
    """A TCP connection to HOST:PORT."""

    scheme = "socket"
    url_format = "socket://HOST:PORT"

    def __init__(self, host: str, port: int, *, connect_timeout_s: float = CONNECT_TIMEOUT_S,
                 url: str = "") -> None:
        super().__init__(url or f"socket://{host}:{port}")
        self.host, self.port = host, port
        self.connect_timeout_s = connect_timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @classmethod
    def from_url(cls, url: str) -> "SocketTransport":
        target, opts = split_url(url, cls.scheme, cls.url_format)
        opts.check_known({"timeout"})
        host, sep, port_text = target.rstrip("/").rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UrlError(f"{url!r}: give a host and a port 1..65535, e.g. "
                           "socket://127.0.0.1:5555")
        return cls(host, int(port_text),
                   connect_timeout_s=opts.number("timeout", CONNECT_TIMEOUT_S) or CONNECT_TIMEOUT_S,
                   url=url)

    async def connect(self) -> None:
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, limit=4 * READ_SIZE),
                self.connect_timeout_s)
        except asyncio.TimeoutError:
            raise TransportError(f"{self.url}: no connection within {self.connect_timeout_s:g} s; "
                                 "is the device (or ecgedge sim --tcp) listening there?") from None
        except OSError as exc:
            raise TransportError(f"{self.url}: cannot connect ({exc.strerror or exc}); is the "
                                 "device (or ecgedge sim --tcp) listening there?") from exc
        sock = self._writer.get_extra_info("socket") if self._writer is not None else None
        if sock is not None:
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)

    async def read(self) -> bytes:
        if self._reader is None:
            raise closed_error(self.url)
        try:
            data = await self._reader.read(READ_SIZE)
        except OSError as exc:
            raise TransportError(f"{self.url}: {exc.strerror or exc}") from exc
        if not data:
            raise TransportError(f"{self.url}: the device closed the connection")
        return data

    async def write(self, data: bytes) -> None:
        if self._writer is None:
            raise closed_error(self.url)
        try:
            self._writer.write(data)
            await self._writer.drain()
        except OSError as exc:
            raise TransportError(f"{self.url}: {exc.strerror or exc}") from exc

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is None:
            return
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), 1.0)
        except (OSError, asyncio.TimeoutError):
            pass


TRANSPORT = SocketTransport

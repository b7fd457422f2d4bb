"""BLE link: ``ble://NAME-or-ADDRESS`` (bleak), the ecgedge GATT profile (docs/protocol.md §13).

URL format: ``ble://NAME-or-ADDRESS[?timeout=SECONDS&stack=auto|os|bumble]``.

- NAME is the advertised local name (``ble://ecgedge``); ADDRESS a Bluetooth address
  (``ble://F0:00:00:01:EC:9E``) or, on macOS, the CoreBluetooth UUID. The scan (at most `timeout`
  seconds, default 10) only considers devices advertising the ECG service UUID.
- `stack`: ``os`` uses bleak's platform backend (BlueZ, CoreBluetooth, WinRT); ``bumble`` the
  in-process virtual link (`ecgedge.ble`: `VirtualPeripheral`, `ecgedge sim --ble`) through
  `BumbleBleakClient` / `BumbleBleakScanner`; ``auto`` (default) picks ``bumble`` when a virtual
  peripheral is serving in this process, else ``os``.

Data: the device's frames arrive as notifications of the data characteristic, one whole frame
each at MTU 247 (or consecutive pieces at a smaller MTU; `read()` returns the bytes, the device
layer's decoder splits on 0x00 either way). Commands are written to the control characteristic
with response, in pieces of at most MTU - 3 bytes (`max_write`).

An unexpected disconnect makes `read()` raise `TransportError`; `reconnect()` scans and connects
again (the device layer calls it with back-off and then backfills, docs/protocol.md §12).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from ..errors import TransportError, UrlError
from .base import Transport, closed_error, read_queued, split_url

__all__ = ["BleTransport", "TRANSPORT", "scan"]

SCAN_TIMEOUT_S = 10.0
_ADDRESS_RE = re.compile(r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f-]{36}$")
_STACKS = ("auto", "os", "bumble")


def _backends(stack: str) -> tuple[Any, Any]:
    """(client backend, scanner backend) for `stack`; None means bleak's platform default."""
    from ..ble.link import peripherals

    if stack == "bumble" or (stack == "auto" and peripherals()):
        from ..ble.bleak_backend import BumbleBleakClient, BumbleBleakScanner

        return BumbleBleakClient, BumbleBleakScanner
    return None, None


def _bleak_error(exc: BaseException) -> bool:
    """An error of the Bluetooth stack (bleak, the OS, D-Bus) rather than a bug."""
    from bleak.exc import BleakError

    return (isinstance(exc, (BleakError, OSError, asyncio.TimeoutError, NotImplementedError))
            or "dbus" in type(exc).__module__.lower())


async def scan(timeout: float = 5.0, *, stack: str = "auto") -> list[tuple[Any, Any]]:
    """Devices advertising the ECG service: ``[(BLEDevice, AdvertisementData), ...]``.

    Raises:
        TransportError: no usable Bluetooth stack (e.g. no BlueZ); the message says what to do.
    """
    from bleak import BleakScanner

    from ..ble.gatt import ECG_SERVICE_UUID

    _client, scanner = _backends(stack)
    kwargs: dict[str, Any] = {} if scanner is None else {"backend": scanner}
    try:
        found = await BleakScanner.discover(timeout, return_adv=True,
                                            service_uuids=[ECG_SERVICE_UUID], **kwargs)
    except Exception as exc:
        if not _bleak_error(exc):
            raise
        raise TransportError(f"BLE scan failed ({exc}); is Bluetooth on (BlueZ running on "
                             "Linux)? Without hardware use the simulated link: ecgedge scan "
                             "--sim, ecgedge sim --ble, or a VirtualPeripheral in this "
                             "process (README 'Stream over BLE')") from exc
    return sorted(found.values(), key=lambda da: -da[1].rssi)


class BleTransport(Transport):
    """A bleak connection to one ecgedge device."""

    scheme = "ble"
    url_format = "ble://NAME-or-ADDRESS?timeout=10"

    def __init__(self, target: str, *, scan_timeout_s: float = SCAN_TIMEOUT_S,
                 stack: str = "auto", url: str = "") -> None:
        super().__init__(url or f"ble://{target}")
        if stack not in _STACKS:
            raise UrlError(f"{self.url}: stack={stack!r}: use one of {', '.join(_STACKS)}")
        self.target = target
        self.scan_timeout_s = scan_timeout_s
        self.stack = stack
        self.client: Any = None  #: the `bleak.BleakClient` while connected
        self.mtu = 0
        self.reconnects = 0
        self._queue: asyncio.Queue[bytes | BaseException] | None = None
        self._lock: asyncio.Lock | None = None
        self._closing = False

    @classmethod
    def from_url(cls, url: str) -> "BleTransport":
        target, opts = split_url(url, cls.scheme, cls.url_format)
        opts.check_known({"timeout", "stack"})
        target = target.strip("/")
        if not target:
            raise UrlError(f"{url!r}: give a device name or address, e.g. ble://ecgedge or "
                           "ble://F0:00:00:01:EC:9E")
        return cls(target, scan_timeout_s=opts.number("timeout", SCAN_TIMEOUT_S) or SCAN_TIMEOUT_S,
                   stack=(opts.text("stack", "auto") or "auto").lower(), url=url)

    def describe(self) -> str:
        return f"BLE device {self.target}" + (f" (MTU {self.mtu})" if self.mtu else "")

    async def _find(self, scanner: Any) -> Any:
        from bleak import BleakScanner

        from ..ble.gatt import ECG_SERVICE_UUID

        kwargs: dict[str, Any] = {"service_uuids": [ECG_SERVICE_UUID]}
        if scanner is not None:
            kwargs["backend"] = scanner
        want = self.target.lower()
        by_address = bool(_ADDRESS_RE.match(self.target))
        return await BleakScanner.find_device_by_filter(
            lambda d, ad: (d.address.lower() == want) if by_address
            else (ad.local_name or d.name or "").lower() == want,
            timeout=self.scan_timeout_s, **kwargs)

    async def connect(self) -> None:
        from bleak import BleakClient

        from ..ble.gatt import DATA_UUID

        client_cls, scanner_cls = _backends(self.stack)
        self._closing = False
        if self._queue is None:
            self._queue = asyncio.Queue()
        self._lock = asyncio.Lock()
        try:
            device = await self._find(scanner_cls)
            if device is None:
                raise TransportError(f"{self.url}: no device advertising the ecgedge service "
                                     f"named {self.target!r} within {self.scan_timeout_s:g} s; "
                                     "is it on and in range (ecgedge scan lists them)?")
            kwargs: dict[str, Any] = {} if client_cls is None else {"backend": client_cls}
            client = BleakClient(device, disconnected_callback=self._on_disconnect,
                                 timeout=self.scan_timeout_s, **kwargs)
            await client.connect()
            self.client = client
            self.mtu = client.mtu_size
            self.max_write = max(20, self.mtu - 3)
            await client.start_notify(DATA_UUID, self._on_data)
        except TransportError:
            raise
        except Exception as exc:
            if not _bleak_error(exc):
                raise
            await self._drop_client()
            raise TransportError(f"{self.url}: cannot connect ({exc}); is Bluetooth on and the "
                                 "device in range?") from exc

    def _on_data(self, _sender: Any, data: bytearray) -> None:
        if self._queue is not None:
            self._queue.put_nowait(bytes(data))

    def _on_disconnect(self, _client: Any) -> None:
        if not self._closing and self._queue is not None:
            self._queue.put_nowait(TransportError(f"{self.url}: the device disconnected"))

    async def read(self) -> bytes:
        queue = self._queue
        if queue is None:
            raise closed_error(self.url)
        return await read_queued(queue)

    async def write(self, data: bytes) -> None:
        from ..ble.gatt import CONTROL_UUID

        client, lock = self.client, self._lock
        if client is None or lock is None:
            raise closed_error(self.url)
        step = self.max_write or 20
        async with lock:
            try:
                for i in range(0, len(data), step):
                    await client.write_gatt_char(CONTROL_UUID, data[i:i + step], response=True)
            except Exception as exc:
                if not _bleak_error(exc):
                    raise
                raise TransportError(f"{self.url}: write failed ({exc})") from exc

    async def reconnect(self) -> None:
        """Scan and connect again after a link loss (keeps the receive queue: bytes that
        arrived before the loss are still read first)."""
        await self._drop_client()
        queue = self._queue
        if queue is not None:  # the disconnect error was read already, or is stale now
            kept = [x for x in _drain(queue) if not isinstance(x, BaseException)]
            for x in kept:
                queue.put_nowait(x)
        await self.connect()
        self.reconnects += 1

    async def _drop_client(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            self._closing = True
            try:
                await client.disconnect()
            except Exception:
                pass
            finally:
                self._closing = False

    async def close(self) -> None:
        self._closing = True
        await self._drop_client()
        self._closing = True
        self._queue = None


def _drain(queue: asyncio.Queue[Any]) -> list[Any]:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


TRANSPORT = BleTransport

"""ecgedge: on-device ECG intelligence for wearables — host SDK.

`ecgedge.core` runs the firmware's C signal core on the host; `ecgedge.validation` scores
detectors the ANSI/AAMI EC57 way; the `ecgedge` command line drives both.

Devices (`ecgedge.device`, `ecgedge.transports`)::

    with ecgedge.connect("sim://?speed=max") as dev:       # serial://, socket://, sim://, qemu://
        rec = dev.record(seconds=10)

    async with ecgedge.connect_async("socket://127.0.0.1:5555") as dev:
        async for item in dev.stream(): ...

Names below are imported on first use, so ``import ecgedge`` stays light (no numpy, no C
extension).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["AsyncDevice", "Beat", "DeviceError", "DeviceInfo", "DeviceTimeout", "Device",
           "EcgError", "Gap", "ProtocolVersionError", "Recording", "SampleBlock", "Status",
           "TransportError", "UrlError", "connect", "connect_async"]

_LAZY = {
    "connect": ("sync", "connect"),
    "Device": ("sync", "Device"),
    "AsyncDevice": ("device", "Device"),
    "Beat": ("device", "Beat"),
    "DeviceInfo": ("device", "DeviceInfo"),
    "Gap": ("device", "Gap"),
    "SampleBlock": ("device", "SampleBlock"),
    "Status": ("device", "Status"),
    "Recording": ("recording", "Recording"),
    "EcgError": ("errors", "EcgError"),
    "DeviceError": ("errors", "DeviceError"),
    "DeviceTimeout": ("errors", "DeviceTimeout"),
    "ProtocolVersionError": ("errors", "ProtocolVersionError"),
    "TransportError": ("errors", "TransportError"),
    "UrlError": ("errors", "UrlError"),
}

if TYPE_CHECKING:
    from .device import Beat, DeviceInfo, Gap, SampleBlock, Status
    from .device import Device as AsyncDevice
    from .errors import (DeviceError, DeviceTimeout, EcgError, ProtocolVersionError,
                         TransportError, UrlError)
    from .recording import Recording
    from .sync import Device, connect
    from .transports.base import Transport


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'ecgedge' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f".{module}", __name__), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Connecting:
    """What `connect_async` returns: await it, or use it with ``async with``."""

    def __init__(self, target: Any, kwargs: dict[str, Any]) -> None:
        self._target, self._kwargs = target, kwargs
        self._device: Any = None

    async def _open(self) -> Any:
        from .device import open_device

        return await open_device(self._target, **self._kwargs)

    def __await__(self) -> Any:
        return self._open().__await__()

    async def __aenter__(self) -> Any:
        self._device = await self._open()
        return self._device

    async def __aexit__(self, *exc: object) -> None:
        if self._device is not None:
            await self._device.close()


def connect_async(target: "str | Transport", *, backend: Any = None, timeout: float = 1.0,
                  retries: int = 2) -> Any:
    """Open an `AsyncDevice` (``ecgedge.device.Device``) for asyncio code.

    ``dev = await ecgedge.connect_async(url)`` or ``async with ecgedge.connect_async(url) as dev``.
    Arguments as `ecgedge.connect`.
    """
    return _Connecting(target, dict(backend=backend, timeout=timeout, retries=retries))

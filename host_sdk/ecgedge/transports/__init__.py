"""Byte links to devices, chosen by URL scheme (like pyserial's `serial_for_url`).

| URL | module | link |
| --- | --- | --- |
| ``serial:///dev/ttyUSB0?baud=115200`` | `serial` | a UART / USB-CDC port or pty (pyserial) |
| ``socket://HOST:PORT`` | `socket` | TCP (asyncio streams) |
| ``sim://PATH/TO/RECORD?speed=max`` | `sim` | spawns the virtual device (`ecgedge sim`) |
| ``qemu://[PATH/TO/device.elf]`` | `qemu` | boots the Cortex-M4 firmware in QEMU |
| ``ble://NAME-or-ADDRESS`` | `ble` | BLE (bleak; the in-process bumble link for the virtual peripheral) |

`transport_for_url(url)` imports ``<package>.<scheme>`` for each package in
`protocol_handler_packages` (default: this one) and builds its `TRANSPORT` class; append your
own package to add schemes. An unknown
scheme raises `UrlError` (a `ValueError`) naming the supported ones. `backend=` overrides the
class: a `Transport` subclass, or the name of one of the module's `BACKENDS`
(e.g. ``sim``: ``"process"``, the default, or ``"inprocess"``).

`FaultyTransport` (module `faulty`) wraps any transport and corrupts bytes on purpose (tests).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from types import ModuleType

from ..errors import UrlError
from .base import Transport

__all__ = ["Transport", "protocol_handler_packages", "supported_schemes", "transport_for_url"]

#: Packages searched for ``<package>.<scheme>`` modules, in order; extend to add schemes.
protocol_handler_packages: list[str] = ["ecgedge.transports"]

_NOT_SCHEMES = {"base", "faulty"}
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def supported_schemes() -> list[str]:
    """Schemes the registered packages provide (module names with a `TRANSPORT`)."""
    found: list[str] = []
    for pkg_name in protocol_handler_packages:
        try:
            pkg = importlib.import_module(pkg_name)
        except ImportError:
            continue
        for mod in pkgutil.iter_modules(getattr(pkg, "__path__", [])):
            if mod.name.startswith("_") or mod.name in _NOT_SCHEMES or mod.name in found:
                continue
            found.append(mod.name)
    return sorted(found)


def _module_for(scheme: str, url: str) -> ModuleType:
    for pkg_name in protocol_handler_packages:
        try:
            module = importlib.import_module(f"{pkg_name}.{scheme}")
        except ModuleNotFoundError as exc:
            if exc.name in (f"{pkg_name}.{scheme}", pkg_name):
                continue  # no such scheme here; a missing dependency inside it propagates
            raise
        if hasattr(module, "TRANSPORT"):
            return module
    raise UrlError(f"{url!r}: unknown scheme {scheme!r}; supported: "
                   + ", ".join(f"{s}://" for s in supported_schemes()))


def transport_for_url(url: str, backend: str | type[Transport] | None = None) -> Transport:
    """An unconnected transport for `url`.

    Args:
        url: ``scheme://...``; see the table above.
        backend: None (the scheme's default), a `Transport` subclass to use instead, or the
            name of one of the scheme module's `BACKENDS`.

    Raises:
        UrlError (a ValueError): no scheme, an unknown scheme or backend, or a malformed URL.
    """
    if not isinstance(url, str):
        raise UrlError(f"device URL must be a string, got {type(url).__name__}")
    if isinstance(backend, type):
        if not issubclass(backend, Transport):
            raise UrlError(f"backend={backend.__name__} is not a Transport subclass")
        return backend.from_url(url)
    m = _SCHEME_RE.match(url)
    if m is None:
        raise UrlError(f"{url!r} has no scheme; use e.g. serial:///dev/ttyUSB0, "
                       "socket://127.0.0.1:5555, sim://../shared/data/mitdb/100 or qemu://; "
                       "supported: " + ", ".join(f"{s}://" for s in supported_schemes()))
    scheme = m.group(1).lower()
    module = _module_for(scheme.replace("+", "_").replace("-", "_").replace(".", "_"), url)
    cls: type[Transport] = module.TRANSPORT
    if backend is not None:
        backends: dict[str, type[Transport]] = getattr(module, "BACKENDS", {})
        if backend not in backends:
            raise UrlError(f"backend={backend!r}: {scheme}:// has "
                           + (", ".join(repr(b) for b in backends) or "no alternative backends"))
        cls = backends[backend]
    return cls.from_url(url)

"""The in-process BLE radio: one `bumble.link.LocalLink` shared by every virtual peripheral and
every bumble-backed central (scanner or client) of this process.

Each node is a `bumble.controller.Controller` on the link with its own host stack
(`bumble.device.Device`); packets between them are delivered by the event loop, so everything
runs in the loop that started it, at full speed, with no radio and no kernel Bluetooth.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

__all__ = ["Node", "new_node", "peripherals", "register_peripheral", "shared_link",
           "unregister_peripheral"]

_state: dict[str, Any] = {}
_addresses = itertools.count(1)


def shared_link() -> Any:
    """The process's `LocalLink` (made on first use)."""
    link = _state.get("link")
    if link is None:
        from bumble.link import LocalLink

        link = _state["link"] = LocalLink()
        # The virtual controllers warn about packets still queued for a link that was cut on
        # purpose (tests, --cut-every); keep that quiet unless the user configured bumble logging.
        quiet = logging.getLogger("bumble")
        if quiet.level == logging.NOTSET:
            quiet.setLevel(logging.ERROR)
    return link


class Node:
    """One controller + host stack on the shared link. `device` is a `bumble.device.Device`."""

    def __init__(self, name: str, address: str) -> None:
        from bumble.controller import Controller
        from bumble.device import Device
        from bumble.hci import Address
        from bumble.host import Host
        from bumble.transport.common import AsyncPipeSink

        self.address = address
        self.controller = Controller(name, link=shared_link(), public_address=address)
        self.device = Device(name=name, address=Address(address),
                             host=Host(self.controller, AsyncPipeSink(self.controller)))

    async def power_on(self) -> None:
        await self.device.power_on()

    def remove(self) -> None:
        """Take the node off the link (it no longer sees or is seen by anyone)."""
        link = shared_link()
        if self.controller in link.controllers:
            link.remove_controller(self.controller)


def new_node(name: str, kind: int) -> Node:
    """A node with a fresh static address; `kind` (0..255) is the address's first byte, so
    peripherals and centrals are easy to tell apart in logs."""
    n = next(_addresses)
    return Node(name, f"{kind:02X}:{(n >> 16) & 0xFF:02X}:{(n >> 8) & 0xFF:02X}:{n & 0xFF:02X}:"
                      "EC:9E")


def register_peripheral(p: Any) -> None:
    """Note a running virtual peripheral (so `ble://` picks the in-process stack)."""
    _state.setdefault("peripherals", []).append(p)


def unregister_peripheral(p: Any) -> None:
    lst = _state.get("peripherals", [])
    if p in lst:
        lst.remove(p)


def peripherals() -> list[Any]:
    """The virtual peripherals serving on the shared link now."""
    return list(_state.get("peripherals", []))

"""BLE for ecgedge: the GATT profile, a virtual peripheral, and bleak backends on bumble.

- `gatt`: UUIDs of the profile (docs/protocol.md §13) and the Heart Rate Measurement encoding.
- `VirtualPeripheral`: the virtual device (the firmware's C core) served over BLE by bumble on the
  in-process link (`ecgedge sim --ble`).
- `BumbleBleakClient`, `BumbleBleakScanner`: bleak backends whose radio is that link, so bleak
  code (the `ble://` transport, `ecgedge scan`, your app) runs unchanged without hardware.

Needs the `ble` extra: ``pip install -e ".[ble]"`` (bleak, bumble).
"""

from .gatt import CONTROL_UUID, DATA_UUID, ECG_SERVICE_UUID, HRM_UUID, hrm_from_rr, parse_hrm

__all__ = ["BumbleBleakClient", "BumbleBleakScanner", "CONTROL_UUID", "DATA_UUID",
           "ECG_SERVICE_UUID", "HRM_UUID", "VirtualPeripheral", "hrm_from_rr", "parse_hrm"]


def __getattr__(name: str):  # bleak and bumble are imported only when used
    if name in ("BumbleBleakClient", "BumbleBleakScanner"):
        from . import bleak_backend

        return getattr(bleak_backend, name)
    if name == "VirtualPeripheral":
        from .peripheral import VirtualPeripheral

        return VirtualPeripheral
    raise AttributeError(name)

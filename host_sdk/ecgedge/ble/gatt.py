"""The ecgedge BLE GATT profile (docs/protocol.md §13), shared by the virtual peripheral, the
`ble://` transport and `ecgedge scan`.

The UUIDs are those of `firmware/include/ecg/ecg_ble.h` (tests/test_ble_gatt.py checks they agree).
Heart Rate Measurement values are made from the detector's beats with integer arithmetic:
``round(60 * fs / rr_samples)`` bpm and ``round(rr_samples * 1024 / fs)`` in 1/1024 s.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["BAS_UUID", "BATTERY_LEVEL_UUID", "BSL_UUID", "CONTROL_UUID", "DATA_UUID", "DIS_UUID",
           "ECG_SERVICE_UUID", "HRM_UUID", "HRS_UUID", "MTU", "HeartRate", "hrm_from_rr",
           "parse_hrm", "uuid16"]

ECG_SERVICE_UUID = "e36a0001-5f8c-4d3b-9a61-0ecd9e7c0b1e"
DATA_UUID = "e36a0002-5f8c-4d3b-9a61-0ecd9e7c0b1e"  #: device -> host frames (notify)
CONTROL_UUID = "e36a0003-5f8c-4d3b-9a61-0ecd9e7c0b1e"  #: host -> device frames (write w/ resp.)
MTU = 247  #: ATT MTU requested: one whole frame (244 bytes) per notification


def uuid16(value: int) -> str:
    """The 128-bit string form of a 16-bit SIG UUID (what bleak reports)."""
    return f"0000{value:04x}-0000-1000-8000-00805f9b34fb"


HRS_UUID = uuid16(0x180D)  #: Heart Rate Service
HRM_UUID = uuid16(0x2A37)  #: Heart Rate Measurement
BSL_UUID = uuid16(0x2A38)  #: Body Sensor Location
DIS_UUID = uuid16(0x180A)  #: Device Information
BAS_UUID = uuid16(0x180F)  #: Battery Service
BATTERY_LEVEL_UUID = uuid16(0x2A19)

_HR_U16 = 0x01
_RR_PRESENT = 0x10


def _div_round(num: int, den: int) -> int:
    """num / den rounded half up, for non-negative integers."""
    return (2 * num + den) // (2 * den)


@dataclass(frozen=True)
class HeartRate:
    """A decoded Heart Rate Measurement: rate in bpm and RR intervals in 1/1024 s."""

    bpm: int
    rr_1024: tuple[int, ...]


def hrm_from_rr(rr_samples: int, fs_hz: int) -> bytes | None:
    """Heart Rate Measurement value for one beat with an RR interval of `rr_samples` at `fs_hz`;
    None for a beat without one (the first; rr_samples 0)."""
    if rr_samples <= 0:
        return None
    bpm = _div_round(60 * fs_hz, rr_samples)
    rr = min(_div_round(rr_samples * 1024, fs_hz), 0xFFFF)
    if bpm < 256:
        return struct.pack("<BBH", _RR_PRESENT, bpm, rr)
    return struct.pack("<BHH", _RR_PRESENT | _HR_U16, bpm, rr)


def parse_hrm(value: bytes) -> HeartRate:
    """Decode a Heart Rate Measurement (any SIG-valid flags: uint8/uint16 rate, sensor contact,
    energy expended, RR intervals).

    Raises:
        ValueError: a value too short for its flags.
    """
    if not value:
        raise ValueError("empty Heart Rate Measurement")
    flags = value[0]
    off = 1
    try:
        if flags & _HR_U16:
            (bpm,) = struct.unpack_from("<H", value, off)
            off += 2
        else:
            bpm = value[off]
            off += 1
        if flags & 0x08:  # energy expended
            off += 2
        rr: tuple[int, ...] = ()
        if flags & _RR_PRESENT:
            rr = struct.unpack_from(f"<{(len(value) - off) // 2}H", value, off)
    except (struct.error, IndexError):
        raise ValueError(f"Heart Rate Measurement {value.hex()} is shorter than its flags say") \
            from None
    return HeartRate(int(bpm), tuple(int(x) for x in rr))

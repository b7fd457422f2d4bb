"""The BLE GATT profile (docs/protocol.md §13): one set of UUIDs for C ports and the host, and the
Heart Rate Measurement encoding of the detector's beats."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from ecgedge.ble import gatt as g
from ecgedge.protocol import MAX_WIRE_LEN

ROOT = Path(__file__).resolve().parents[1]
HEADER = (ROOT / "firmware" / "include" / "ecg" / "ecg_ble.h").read_text()


def _define(name: str) -> str:
    m = re.search(rf"#define {name}\s+(\"[^\"]+\"|0x[0-9A-Fa-f]+u|\d+u)", HEADER)
    assert m is not None, name
    return m.group(1).strip('"').rstrip("u")


def test_c_header_and_python_name_the_same_uuids() -> None:
    assert _define("ECG_BLE_SERVICE_UUID") == g.ECG_SERVICE_UUID
    assert _define("ECG_BLE_DATA_UUID") == g.DATA_UUID
    assert _define("ECG_BLE_CONTROL_UUID") == g.CONTROL_UUID
    for c, py in (("HRS", g.HRS_UUID), ("HRM", g.HRM_UUID), ("BSL", g.BSL_UUID),
                  ("DIS", g.DIS_UUID), ("BAS", g.BAS_UUID), ("BATTERY_LEVEL", g.BATTERY_LEVEL_UUID)):
        assert g.uuid16(int(_define(f"ECG_BLE_{c}_UUID16"), 16)) == py
    assert int(_define("ECG_BLE_MTU")) == g.MTU == MAX_WIRE_LEN + 3


def test_uuid16_expands_with_the_bluetooth_base_uuid() -> None:
    assert g.uuid16(0x180D) == "0000180d-0000-1000-8000-00805f9b34fb"


def test_first_beat_without_an_rr_interval_gives_no_measurement() -> None:
    assert g.hrm_from_rr(0, 360) is None


def test_measurement_bytes_follow_the_heart_rate_service_layout() -> None:
    # 300 samples at 360 Hz: 72 bpm, RR 300 / 360 * 1024 = 853.33 -> 853 = 0x0355
    assert g.hrm_from_rr(300, 360) == bytes([0x10, 72, 0x55, 0x03])
    # 60 samples at 1000 Hz: 1000 bpm needs the uint16 rate (flag bit 0); RR 61.44 -> 61
    assert g.hrm_from_rr(60, 1000) == bytes([0x11, 0xE8, 0x03, 61, 0])


@given(rr=st.integers(1, 65535), fs=st.sampled_from([125, 128, 250, 256, 360, 500, 512, 1000]))
def test_measurement_round_trips_rate_and_rr_rounded_half_up(rr: int, fs: int) -> None:
    m = g.parse_hrm(g.hrm_from_rr(rr, fs) or b"")
    assert m.bpm == int(Fraction(60 * fs, rr) + Fraction(1, 2))
    assert m.rr_1024 == (min(int(Fraction(rr * 1024, fs) + Fraction(1, 2)), 0xFFFF),)


@given(st.binary(max_size=24))
def test_measurement_parser_takes_any_bytes_or_raises_value_error(data: bytes) -> None:
    try:
        m = g.parse_hrm(data)
    except ValueError:
        return
    assert 0 <= m.bpm <= 0xFFFF
    assert all(0 <= x <= 0xFFFF for x in m.rr_1024)

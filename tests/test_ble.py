"""BLE end to end over the in-process bumble link: the virtual peripheral (the firmware's C device
behind the GATT profile, docs/protocol.md §13) and the SDK's `ble://` transport, which drives bleak
through the bumble backend. Everything runs at full speed (no real-time pacing)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("bleak")
pytest.importorskip("bumble")

import ecgedge  # noqa: E402
from ecgedge import protocol as p  # noqa: E402
from ecgedge.ble import HRM_UUID, VirtualPeripheral, parse_hrm  # noqa: E402
from ecgedge.ble import gatt as g  # noqa: E402
from ecgedge.errors import DeviceError, TransportError, UrlError  # noqa: E402
from ecgedge.protocol import ErrorCode, FrameType  # noqa: E402
from ecgedge.sim import Record, load_record  # noqa: E402
from ecgedge.transports import transport_for_url  # noqa: E402
from ecgedge.transports.ble import scan  # noqa: E402

TEN_MINUTES_S = 600


@pytest.fixture(scope="module")
def rec100(mitdb: Path) -> Record:
    return load_record(mitdb / "100", [0])


def run(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(coro_fn(), 120))


async def _collect(dev: Any, total: int, on_block: Callable[[int], Awaitable[None]] | None = None
                   ) -> tuple[list[Any], list[Any]]:
    blocks: list[Any] = []
    gaps: list[Any] = []
    async with dev.stream() as s:
        async for item in s:
            if isinstance(item, ecgedge.Gap):
                gaps.append(item)
                continue
            blocks.append(item)
            if on_block is not None:
                await on_block(item.end_index)
            if item.end_index >= total:
                break
    return blocks, gaps


def _check_exactly_the_record(blocks: list[Any], rec: Record, total: int) -> None:
    idx = np.concatenate([np.arange(b.first_index, b.end_index) for b in blocks])
    counts = np.concatenate([b.counts[:, 0] for b in blocks])
    assert idx[0] == 0 and np.all(np.diff(idx) == 1), "samples missing, repeated or out of order"
    assert len(idx) >= total
    # the front end loops the record from its first sample
    assert np.array_equal(counts, np.resize(rec.counts[:, 0], len(counts)))


def test_ten_minutes_of_a_record_stream_over_ble_at_full_speed_without_loss(
        rec100: Record) -> None:
    total = TEN_MINUTES_S * rec100.fs_hz

    async def main() -> None:
        async with VirtualPeripheral(rec100, speed=None, status_period_ms=0):
            async with ecgedge.connect_async("ble://ecgedge") as dev:
                assert dev.transport.mtu == g.MTU
                blocks, gaps = await _collect(dev, total)
                counters = dev.counters
        assert gaps == []
        assert counters.rx_errors == 0 and counters.late == 0
        assert all(v == 0 for v in counters.frames_lost.values())
        _check_exactly_the_record(blocks, rec100, total)

    run(main)


def test_three_link_cuts_at_seeded_random_moments_lose_no_sample(rec100: Record) -> None:
    total = TEN_MINUTES_S * rec100.fs_hz
    cuts = sorted(random.Random(20261124).sample(range(5 * rec100.fs_hz, total - 30 * 360), 3))

    async def main() -> None:
        async with VirtualPeripheral(rec100, speed=None, status_period_ms=0) as per:
            async with ecgedge.connect_async("ble://ecgedge") as dev:
                pending = list(cuts)
                hooked: list[int] = []

                async def after(d: Any) -> None:  # e.g. alerts pulled again
                    hooked.append((await d.info()).sample_rate_hz)

                dev.after_reconnect.append(after)

                async def maybe_cut(n: int) -> None:
                    if pending and n >= pending[0]:
                        pending.pop(0)
                        # the device keeps acquiring 3 s of samples nobody hears
                        await per.cut(run_s=3.0)

                blocks, gaps = await _collect(dev, total, maybe_cut)
                stats = dev.backfill_stats
                reconnects = dev.reconnects
        assert not pending
        assert reconnects == 3
        assert hooked == [rec100.fs_hz] * 3  # the after-reconnect hook ran each time
        assert gaps == []
        assert stats.requests >= 3 and stats.blocks >= 3 * (3 * 360 // 115)
        _check_exactly_the_record(blocks, rec100, total)

    run(main)


def test_alerts_not_acknowledged_before_a_link_cut_are_pulled_again_after_reconnecting(
        rec100: Record) -> None:
    fs = rec100.fs_hz
    total = 30 * fs

    async def main() -> tuple[list[Any], list[Any], Any, int]:
        async with VirtualPeripheral(rec100, speed=None, status_period_ms=0) as per:
            async with ecgedge.connect_async("ble://ecgedge") as dev:
                # record 100 runs at 60-90 bpm: below 200 bpm it is one long BRADY episode
                await dev.alerts.configure(brady_bpm=200, tachy_bpm=250, rate_sustain_s=0)
                before: list[Any] = []
                cut_at = [15 * fs]

                async def maybe_cut(n: int) -> None:
                    if cut_at and n >= cut_at[0]:
                        cut_at.pop(0)
                        before.extend(await dev.alerts.pull())  # seen, not acknowledged
                        await per.cut(run_s=1.0)

                await _collect(dev, total, maybe_cut)
                notice = await dev.alerts.wait_notice(10) or dev.alerts.last_notice
                after = await dev.alerts.pull()
                return before, after, notice, dev.reconnects

    before, after, notice, reconnects = run(main)
    assert reconnects == 1
    assert before, "no alert was raised before the cut"
    assert notice is not None and notice.queued >= len(before)
    assert [a.id for a in after[:len(before)]] == [a.id for a in before]


def test_data_older_than_the_device_buffer_is_reported_as_a_gap_and_the_rest_backfilled(
        rec100: Record) -> None:
    fs = rec100.fs_hz
    total = 20 * fs
    ring_s, down_s, speed = 4, 12.0, 5.0

    async def main() -> None:
        # 5x real time: the link outpaces the front end even on a loaded machine, as on hardware,
        # so no frame is dropped for lack of room and the replay does not race live blocks that
        # evict the ring's oldest entries (at full speed it would). The 12 s acquired while the
        # link is down put the front end 2.4 s of wall time ahead of its clock: no live block
        # evicts anything while the SDK reconnects and backfills.
        async with VirtualPeripheral(rec100, speed=speed, status_period_ms=0,
                                     backfill_s=ring_s) as per:
            async with ecgedge.connect_async("ble://ecgedge") as dev:
                done = False

                async def cut_once(n: int) -> None:
                    nonlocal done
                    if not done and n >= 3 * fs:
                        done = True
                        await per.cut(run_s=down_s)

                blocks, gaps = await _collect(dev, total, cut_once)
                stats = dev.backfill_stats
        assert len(gaps) == 1, (gaps, stats)
        gap = gaps[0]
        assert gap.reason == "lost"
        assert stats.blocks > 0
        # Lost: the 12 s minus what the ring held (14 blocks of 115: the 4 s span rounded up to
        # blocks, plus one, docs/protocol.md §12), plus the frames in flight when the link went
        # (at most the device's 16-frame queue and a few notifications: < 8 s of record).
        held = ((ring_s * fs + 114) // 115 + 1) * 115
        lost_min = int(down_s * fs) - held
        assert lost_min <= gap.samples <= lost_min + 8 * fs, (gap, stats)
        idx = np.concatenate([np.arange(b.first_index, b.end_index) for b in blocks])
        assert np.all(np.diff(idx) >= 1)
        assert int(np.sum(np.diff(idx) > 1)) == 1
        assert len(idx) + gap.samples == idx[-1] + 1  # every other sample arrived exactly once
        counts = np.concatenate([b.counts[:, 0] for b in blocks])
        looped = np.resize(rec100.counts[:, 0], int(idx[-1]) + 1)
        assert np.array_equal(counts, looped[idx])

    run(main)


def _round_half_up(x: Fraction) -> int:
    return int(x + Fraction(1, 2))


def test_heart_rate_measurements_equal_the_detectors_beats(rec100: Record) -> None:
    fs = rec100.fs_hz
    total = 120 * fs

    async def main() -> None:
        hrm: list[bytes] = []
        beats: list[Any] = []
        async with VirtualPeripheral(rec100, speed=None, status_period_ms=0):
            async with ecgedge.connect_async("ble://ecgedge") as dev:
                await dev.transport.client.start_notify(HRM_UUID, lambda _c, v: hrm.append(
                    bytes(v)))
                async with dev.events(start=True, kinds=("samples", "beats")) as s:
                    async for item in s:
                        if isinstance(item, ecgedge.Beat):
                            beats.append(item)
                        elif isinstance(item, ecgedge.SampleBlock) and item.end_index >= total:
                            break
                await asyncio.sleep(0.2)  # the last notifications
        with_rr = [b for b in beats if b.rr_samples > 0]
        assert len(with_rr) > 100
        got = [parse_hrm(v) for v in hrm]
        assert len(got) >= len(with_rr)
        for b, m in zip(with_rr, got):
            assert m.rr_1024 == (_round_half_up(Fraction(b.rr_samples * 1024, fs)),)
            assert m.bpm == _round_half_up(Fraction(60 * fs, b.rr_samples))

    run(main)


def test_control_commands_and_their_errors_round_trip_over_ble(rec100: Record) -> None:
    async def main() -> None:
        async with VirtualPeripheral(rec100, speed=None, status_period_ms=0):
            async with ecgedge.connect_async("ble://ecgedge") as dev:
                info = await dev.info()
                assert info.sample_rate_hz == rec100.fs_hz
                assert ecgedge.protocol.Capability.BACKFILL in info.capabilities
                info = await dev.configure(mains_hz=60)
                assert info.mains_hz == 60
                with pytest.raises(DeviceError) as e:
                    await dev.configure(sample_rate_hz=1000)  # the record's rate only
                assert e.value.code == ErrorCode.UNSUPPORTED
                with pytest.raises(DeviceError) as e:
                    await dev.configure(content=7)
                assert e.value.code == ErrorCode.RANGE
                with pytest.raises(DeviceError) as e:  # a backfill of 0 blocks
                    await dev.request(FrameType.BACKFILL_REQUEST, p.build_payload(
                        FrameType.BACKFILL_REQUEST, dict(first_seq=0, count=0)))
                assert e.value.code == ErrorCode.RANGE
                ts = await dev.time_sync()
                assert ts.rtt_us > 0
                await dev.start()
                with pytest.raises(DeviceError) as e:
                    await dev.start()
                assert e.value.code == ErrorCode.STATE
                await dev.stop()

    run(main)


def test_gatt_profile_serves_device_information_battery_and_body_sensor_location(
        rec100: Record) -> None:
    async def main() -> None:
        async with VirtualPeripheral(rec100, speed=None):
            async with ecgedge.connect_async("ble://ecgedge") as dev:
                client = dev.transport.client
                uuids = {s.uuid for s in client.services}
                assert {g.ECG_SERVICE_UUID, g.HRS_UUID, g.DIS_UUID, g.BAS_UUID} <= uuids
                assert await client.read_gatt_char(g.uuid16(0x2A29)) == b"ecgedge"
                assert (await client.read_gatt_char(g.uuid16(0x2A26))).decode() == "0.1.0"
                assert await client.read_gatt_char(g.BATTERY_LEVEL_UUID) == bytes([100])
                assert await client.read_gatt_char(g.BSL_UUID) == bytes([1])
                data = client.services.get_characteristic(g.DATA_UUID)
                control = client.services.get_characteristic(g.CONTROL_UUID)
                assert "notify" in data.properties
                assert "write" in control.properties

    run(main)


def test_scan_lists_only_devices_that_advertise_the_ecg_service(rec100: Record) -> None:
    from bumble.core import AdvertisingData

    from ecgedge.ble.link import new_node

    async def main() -> None:
        other = new_node("other", 0xF2)  # a BLE device without the ECG service
        await other.power_on()
        other.device.advertising_data = bytes(AdvertisingData(
            [(AdvertisingData.COMPLETE_LOCAL_NAME, b"other")]))
        await other.device.start_advertising(advertising_interval_min=20,
                                             advertising_interval_max=20)
        try:
            async with VirtualPeripheral(rec100, name="ecg-7") as per:
                found = await scan(0.5, stack="bumble")
                assert [(d.address, ad.local_name) for d, ad in found] == \
                    [(per.address, "ecg-7")]
                assert g.ECG_SERVICE_UUID in found[0][1].service_uuids
                async with ecgedge.connect_async(f"ble://{per.address}") as dev:
                    assert (await dev.info()).sample_rate_hz == rec100.fs_hz
        finally:
            await other.device.stop_advertising()
            other.remove()

    run(main)


def test_ble_urls_are_checked_and_a_missing_device_says_what_to_do(rec100: Record) -> None:
    with pytest.raises(UrlError):
        transport_for_url("ble://")
    with pytest.raises(UrlError):
        transport_for_url("ble://ecgedge?baud=9600")
    with pytest.raises(UrlError):
        transport_for_url("ble://ecgedge?stack=serial")

    async def main() -> None:
        async with VirtualPeripheral(rec100):
            with pytest.raises(TransportError, match="no device advertising"):
                async with ecgedge.connect_async("ble://nobody?timeout=0.3"):
                    pass

    run(main)


def test_a_plain_heart_rate_client_gets_measurements_without_sending_commands(
        rec100: Record) -> None:
    from bleak import BleakClient, BleakScanner

    from ecgedge.ble import BumbleBleakClient, BumbleBleakScanner

    async def main() -> None:
        got: list[bytes] = []
        async with VirtualPeripheral(rec100, speed=None) as per:
            found = await BleakScanner.find_device_by_name(per.name, timeout=2.0,
                                                          backend=BumbleBleakScanner)
            assert found is not None
            async with BleakClient(found, backend=BumbleBleakClient) as client:
                await client.start_notify(HRM_UUID, lambda _c, v: got.append(bytes(v)))
                for _ in range(200):
                    if len(got) >= 20:
                        break
                    await asyncio.sleep(0.05)
        assert len(got) >= 20
        assert got == per.hrm_sent[:len(got)]
        assert all(40 <= parse_hrm(v).bpm <= 150 for v in got[5:])  # record 100: about 75 bpm

    run(main)


def test_cli_scan_sim_lists_the_virtual_peripheral(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from ecgedge.cli import main

    assert main(["scan", "--sim", "--json", "--timeout", "0.5"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["ecgedge"]
    assert g.ECG_SERVICE_UUID in rows[0]["services"]


def test_cli_sim_ble_streams_through_ble_and_survives_link_cuts(
        mitdb: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ecgedge.cli import main

    rc = main(["sim", "--ble", "--record", str(mitdb / "100"), "--speed", "5",
               "--seconds", "4", "--cut-every", "1.5", "--status-period", "0"])
    out, err = capsys.readouterr()
    assert rc == 0, (out, err)
    assert "BLE peripheral 'ecgedge'" in out
    assert "over bleak + bumble" in out
    connections = int(err.split(" connection(s)")[0].rsplit(" ", 1)[-1])
    assert connections >= 2, (out, err)  # cut and reconnected
    assert "0 gap(s)" in out, (out, err)

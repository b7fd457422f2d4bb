"""The virtual BLE peripheral: `ecgedge.sim.VirtualDevice` (the firmware's C device) served with
the ecgedge GATT profile (docs/protocol.md §13) by the bumble stack on the in-process link.

    async with VirtualPeripheral(load_record("../shared/data/mitdb/100"), speed=None) as per:
        async with ecgedge.connect_async(f"ble://{per.name}") as dev:   # bleak on top of bumble
            ...

What it does, as a wearable's BLE port would:

- advertises the ECG service UUID and its name, and accepts one central at a time;
- control writes go to the device (`VirtualDevice.receive`); the device's output goes out one frame
  per notification of the data characteristic (MTU 247), as fast as the link drains it;
- every BEAT_EVENT with an RR interval also becomes a Heart Rate Measurement notification
  (`ecgedge.ble.gatt.hrm_from_rr`), so any heart-rate app sees the detector's beats; a central
  that enables those notifications starts the stream when none runs (a plain heart-rate app
  sends no commands);
- Device Information and Battery services (battery level: the device's STATUS battery, which the
  simulator sets to 100 %);
- when the central goes away the device keeps streaming (`link(False)`: frames queued meanwhile are
  lost, the backfill ring keeps them, §12); `cut()` drops the link on purpose (tests), optionally
  letting the front end run on while nobody listens.
"""

from __future__ import annotations

import asyncio
import struct
from types import TracebackType
from typing import Any

from .. import protocol as p
from ..sim import FW_VERSION, MODEL_ID, Record, VirtualDevice
from . import gatt as g
from .link import Node, new_node, register_peripheral, unregister_peripheral

__all__ = ["DEFAULT_NAME", "VirtualPeripheral"]

DEFAULT_NAME = "ecgedge"  #: advertised name (at most 8 characters fit the advertisement whole)
BACKFILL_S = 90  #: seconds of sample blocks the virtual device keeps for backfill (>= 60)
IN_FLIGHT = 32  #: ACL packets the peripheral lets queue before it waits for the link
ADV_INTERVAL_MS = 20
BATTERY_PCT = 100
_BEAT = struct.Struct("<IH")


def _adv_data(name: str) -> bytes:
    from bumble.core import UUID, AdvertisingData

    encoded = name.encode()
    name_type = AdvertisingData.COMPLETE_LOCAL_NAME
    if len(encoded) > 8:  # flags (3) + 128-bit UUID (18) leave 10 bytes of the 31
        encoded, name_type = encoded[:8], AdvertisingData.SHORTENED_LOCAL_NAME
    return bytes(AdvertisingData([
        (AdvertisingData.FLAGS, bytes([0x06])),  # LE general discoverable, no BR/EDR
        (AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
         UUID(g.ECG_SERVICE_UUID).to_bytes()),
        (name_type, encoded),
    ]))


class VirtualPeripheral:
    """A `VirtualDevice` behind the ecgedge GATT profile on the in-process BLE link.

    Args:
        record: what the front end plays (None: injection only).
        name: advertised name (`ble://NAME` finds it).
        speed: front-end real-time factor; None = as fast as the link takes the data.
        backfill_s: seconds of sample blocks kept for backfill (§12).
        vdev: serve this `VirtualDevice` instead of making one (then `record`, `speed`,
            `backfill_s` and `vdev_kwargs` are not used).
        **vdev_kwargs: passed to `VirtualDevice` (mains_hz, status_period_ms, fs_hz, ...).
    """

    def __init__(self, record: Record | None = None, *, name: str = DEFAULT_NAME,
                 speed: float | None = 1.0, backfill_s: int = BACKFILL_S,
                 vdev: VirtualDevice | None = None, **vdev_kwargs: Any) -> None:
        self.name = name
        self.vdev = vdev if vdev is not None else VirtualDevice(
            record, speed=speed, backfill_s=backfill_s, **vdev_kwargs)
        self.vdev.dev.set_battery(BATTERY_PCT)
        self.vdev.dev.link(False)  # nobody connected yet: nothing queues for a host
        self.node: Node | None = None
        self.connection: Any = None
        self.connections = 0  #: centrals that connected so far
        self.notifications = 0  #: data notifications sent
        self.hrm_sent: list[bytes] = []  #: Heart Rate Measurement values sent (newest last)
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._up = False
        self._data_on = False
        self._hrm_on = False
        self._pending = b""

    @property
    def address(self) -> str:
        """The peripheral's BLE address (``ble://ADDRESS`` finds it too)."""
        if self.node is None:
            raise RuntimeError("the peripheral is not started")
        return self.node.address

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> "VirtualPeripheral":
        """Power on, build the GATT database, advertise, and start serving."""
        from bumble import gatt
        from bumble.profiles.battery_service import BatteryService
        from bumble.profiles.device_information_service import DeviceInformationService

        node = self.node = new_node(self.name, 0xF0)
        dev = node.device
        self._data = gatt.Characteristic(g.DATA_UUID, gatt.Characteristic.Properties.NOTIFY,
                                         gatt.Characteristic.READABLE, b"")
        control: gatt.Characteristic[bytes] = gatt.Characteristic(
            g.CONTROL_UUID, gatt.Characteristic.Properties.WRITE,
            gatt.Characteristic.WRITEABLE, gatt.CharacteristicValue[bytes](write=self._on_write))
        self._hrm = gatt.Characteristic(g.HRM_UUID, gatt.Characteristic.Properties.NOTIFY,
                                        gatt.Characteristic.Permissions(0), b"")
        bsl = gatt.Characteristic(g.BSL_UUID, gatt.Characteristic.Properties.READ,
                                  gatt.Characteristic.READABLE, bytes([1]))  # chest
        info = self.vdev.dev.info
        dev.add_services([
            gatt.Service(g.ECG_SERVICE_UUID, [self._data, control]),
            gatt.Service(g.HRS_UUID, [self._hrm, bsl]),
            DeviceInformationService(
                manufacturer_name="ecgedge", model_number=f"virtual {MODEL_ID:04X}",
                firmware_revision=".".join(map(str, FW_VERSION)),
                software_revision=f"core {info['core_major']}.{info['core_minor']}."
                                  f"{info['core_patch']}"),
            BatteryService(lambda _conn: BATTERY_PCT),
        ])
        dev.on(dev.EVENT_CONNECTION, self._on_connection)
        self._data.on(self._data.EVENT_SUBSCRIPTION, self._on_subscription)
        self._hrm.on(self._hrm.EVENT_SUBSCRIPTION, self._on_hrm_subscription)
        await node.power_on()
        dev.advertising_data = _adv_data(self.name)
        await dev.start_advertising(auto_restart=True, advertising_interval_min=ADV_INTERVAL_MS,
                                    advertising_interval_max=ADV_INTERVAL_MS)
        self._task = asyncio.get_running_loop().create_task(self._serve(),
                                                            name=f"ble-peripheral-{self.name}")
        register_peripheral(self)
        return self

    async def stop(self) -> None:
        """Stop serving, disconnect, and leave the link."""
        unregister_peripheral(self)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        if self.connection is not None:
            try:
                await self.connection.disconnect()
            except Exception:  # already gone
                pass
        if self.node is not None:
            try:
                await self.node.device.stop_advertising()
            except Exception:
                pass
            self.node.remove()

    async def __aenter__(self) -> "VirtualPeripheral":
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    # ------------------------------------------------------------------ link events

    def _on_connection(self, connection: Any) -> None:
        self.connection = connection
        self.connections += 1
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)

    def _on_subscription(self, _bearer: Any, notify: bool, _indicate: bool) -> None:
        """The central (un)subscribed to the data characteristic."""
        self._data_on = notify
        self._link()

    def _on_hrm_subscription(self, _bearer: Any, notify: bool, _indicate: bool) -> None:
        """A heart-rate app (un)subscribed to Heart Rate Measurement. The device's policy is to
        acquire whenever someone wants heart rate: with nobody on the data characteristic (no
        ecgedge host to send commands) a stream starts if none runs."""
        self._hrm_on = notify
        self._link()
        if notify and not self._data_on and not self.vdev.dev.streaming:
            self.vdev.receive(p.encode_frame(p.FrameType.START_STREAM, 0))

    def _link(self) -> None:
        """The device's link is up while a connected central listens to the data or heart-rate
        notifications (link up: a lone 0x00 and DEVICE_INFO go first, §6.2)."""
        want = self.connection is not None and (self._data_on or self._hrm_on)
        if want and not self._up:
            self._pending = self.vdev.connect()
            self._up = True
            self._wake.set()
        elif not want and self._up:
            self._up = False
            self.vdev.dev.link(False)  # queued frames are lost; the stream goes on (§12)

    def _on_disconnection(self, _reason: int) -> None:
        self.connection = None
        self._data_on = self._hrm_on = False
        self._link()

    def _on_write(self, _connection: Any, value: bytes) -> None:
        self.vdev.receive(bytes(value))
        self._wake.set()

    async def cut(self, *, run_s: float = 0.0) -> None:
        """Drop the link from the peripheral's side (as a wearable walking out of range does).

        Args:
            run_s: seconds of front-end samples the device acquires while nobody listens (their
                frames are lost; a later backfill brings them back if the ring still holds
                them). With speed None this runs the device for that much record time at once.
        """
        conn = self.connection
        if conn is not None:
            await conn.disconnect()
        self._on_disconnection(0)
        if run_s > 0 and self.vdev.sampling:
            n = int(round(run_s * self.vdev.dev.sampling_rate_hz))
            while n > 0:
                k = min(n, self.vdev.dev.block_samples)
                self.vdev._deliver(k)
                self.vdev.dev.tx()  # nobody to send to: lost
                n -= k

    # ------------------------------------------------------------------ output

    async def _serve(self) -> None:
        """Move the device's output to notifications while a central listens."""
        while True:
            conn = self.connection
            if conn is None or not self._up:
                self.vdev.run(0)  # keep the clock going; nothing to send to
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), 0.05)
                except asyncio.TimeoutError:
                    pass
                continue
            out, self._pending = self._pending + self.vdev.run(p.MAX_WIRE_LEN * 64), b""
            if not out:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.vdev.wakeup_s())
                except asyncio.TimeoutError:
                    pass
                continue
            await self._send(conn, out)

    async def _send(self, conn: Any, out: bytes) -> None:
        dev = self.node.device if self.node is not None else None
        if dev is None:
            return
        queue = dev.host.get_data_packet_queue(conn.handle)
        for enc in out.split(b"\x00"):
            if not enc:
                continue  # lone delimiters: not worth a notification
            if self.connection is not conn:
                return  # the link dropped meanwhile: the rest is lost
            await dev.notify_subscriber(conn, self._data, enc + b"\x00")
            self.notifications += 1
            if len(enc) > 2 and enc[2] == p.FrameType.BEAT_EVENT:  # type byte (COBS code >= 3)
                await self._heart_rate(conn, enc + b"\x00")
            if queue is not None and queue.pending > IN_FLIGHT:
                try:
                    await queue.drain(conn.handle)
                except ValueError:  # the connection is gone
                    return

    async def _heart_rate(self, conn: Any, wire: bytes) -> None:
        try:
            frame = p.decode_frame(wire, p.Accept.TO_HOST)
        except p.ProtocolError:
            return
        if frame.type != p.FrameType.BEAT_EVENT or len(frame.payload) < _BEAT.size:
            return
        _index, rr = _BEAT.unpack_from(frame.payload)
        value = g.hrm_from_rr(rr, int(self.vdev.dev.info["sample_rate_hz"]))
        if value is None or self.node is None:
            return
        self.hrm_sent.append(value)
        await self.node.device.notify_subscriber(conn, self._hrm, value)

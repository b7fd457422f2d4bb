"""bleak backends on top of bumble: `BumbleBleakClient` and `BumbleBleakScanner`.

bleak picks a backend per OS (BlueZ over D-Bus on Linux, CoreBluetooth, WinRT, Android); these
classes are one more backend, whose "radio" is the in-process bumble link
(`ecgedge.ble.link`). Pass them to bleak's own classes::

    from bleak import BleakClient, BleakScanner
    from ecgedge.ble import BumbleBleakClient, BumbleBleakScanner

    dev = await BleakScanner.find_device_by_name("ecgedge", backend=BumbleBleakScanner)
    async with BleakClient(dev, backend=BumbleBleakClient) as client:
        await client.start_notify(DATA_UUID, on_frame)

so the SDK's `ble://` transport (and any bleak application under test) runs the very code paths
it runs against hardware: bleak's facade, service resolution, notification callbacks and
disconnect callbacks. Each scanner and client is its own central node on the link.
"""

from __future__ import annotations

import asyncio
import uuid as _uuid
from collections.abc import Callable
from typing import Any

from bleak.assigned_numbers import CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError

from . import gatt as g
from .link import Node, new_node

__all__ = ["BumbleBleakClient", "BumbleBleakScanner", "uuid_str"]

_PROPS: tuple[tuple[int, CharacteristicPropertyName], ...] = (
    (0x01, "broadcast"), (0x02, "read"), (0x04, "write-without-response"), (0x08, "write"),
    (0x10, "notify"), (0x20, "indicate"), (0x40, "authenticated-signed-writes"),
    (0x80, "extended-properties"),
)
CENTRAL_KIND = 0xC1  #: first address byte of central nodes


def uuid_str(u: Any) -> str:
    """A bumble UUID as bleak spells it: 128-bit, lower case, dashed."""
    return str(_uuid.UUID(bytes=bytes(reversed(u.uuid_128_bytes))))


class BumbleBleakScanner(BaseBleakScanner):
    """Scans the in-process link: every advertisement becomes bleak's `AdvertisementData`."""

    def __init__(self, detection_callback: AdvertisementDataCallback | None,
                 service_uuids: list[str] | None, scanning_mode: str = "active",
                 **kwargs: Any) -> None:
        super().__init__(detection_callback, service_uuids)
        self._node: Node | None = None

    async def start(self) -> None:
        self.seen_devices = {}
        node = self._node = new_node("scanner", CENTRAL_KIND)
        node.device.on(node.device.EVENT_ADVERTISEMENT, self._on_advertisement)
        await node.power_on()
        await node.device.start_scanning(filter_duplicates=False)

    async def stop(self) -> None:
        node, self._node = self._node, None
        if node is not None:
            try:
                await node.device.stop_scanning()
            finally:
                node.remove()

    def _on_advertisement(self, adv: Any) -> None:
        from bumble.core import AdvertisingData

        data = adv.data
        uuids = [uuid_str(u) for t in (
            AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS)
            for u in (data.get(t) or [])]
        name = data.get(AdvertisingData.COMPLETE_LOCAL_NAME) or data.get(
            AdvertisingData.SHORTENED_LOCAL_NAME)
        if not self.is_allowed_uuid(uuids):
            return
        address = str(adv.address).split("/")[0]
        ad = AdvertisementData(local_name=name, manufacturer_data={}, service_data={},
                               service_uuids=uuids, tx_power=None, rssi=int(adv.rssi),
                               platform_data=(adv,))
        device = self.create_or_update_device(address, address, name, adv, ad)
        self.call_detection_callbacks(device, ad)


class BumbleBleakClient(BaseBleakClient):
    """A GATT client on the in-process link: connect (MTU exchange to 247), discover, read, write,
    notify, disconnect — the `BaseBleakClient` contract."""

    def __init__(self, address_or_ble_device: BLEDevice | str, *,
                 disconnected_callback: Callable[[], None] | None = None, timeout: float = 10.0,
                 **kwargs: Any) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback,
                         timeout=timeout)
        self._node: Node | None = None
        self._conn: Any = None
        self._peer: Any = None
        self._mtu = 23
        self._subscribed: dict[int, Callable[[bytes], None]] = {}
        self._closing = False

    @property
    def name(self) -> str:
        return self.address

    @property
    def mtu_size(self) -> int:
        return self._mtu

    @property
    def is_connected(self) -> bool:
        return self._conn is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        from bumble.core import BaseBumbleError
        from bumble.device import Peer
        from bumble.hci import Address

        node = self._node = new_node("central", CENTRAL_KIND)
        await node.power_on()
        try:
            conn = await asyncio.wait_for(node.device.connect(Address(self.address)),
                                          self._timeout)
        except (asyncio.TimeoutError, BaseBumbleError) as exc:
            node.remove()
            self._node = None
            raise BleakDeviceNotFoundError(self.address, f"no connection to {self.address}: "
                                                         f"{exc or 'timeout'}") from exc
        self._conn = conn
        self._closing = False
        conn.on(conn.EVENT_DISCONNECTION, self._on_disconnection)
        peer = self._peer = Peer(conn)
        self._mtu = await peer.request_mtu(g.MTU)
        await peer.discover_services()
        for service in peer.services:
            await service.discover_characteristics()
            for char in service.characteristics:
                await char.discover_descriptors()
        self.services = self._collection(peer)

    def _collection(self, peer: Any) -> BleakGATTServiceCollection:
        coll = BleakGATTServiceCollection()
        for s in peer.services:
            svc = BleakGATTService(s, s.handle, uuid_str(s.uuid))
            coll.add_service(svc)
            for c in s.characteristics:
                props = [n for bit, n in _PROPS if int(c.properties) & bit]
                char = BleakGATTCharacteristic(c, c.handle, uuid_str(c.uuid), props,
                                               lambda: self._mtu - 3, svc)
                coll.add_characteristic(char)
                for d in c.descriptors:
                    coll.add_descriptor(BleakGATTDescriptor(d, d.handle, uuid_str(d.type), char))
        return coll

    def _on_disconnection(self, _reason: int) -> None:
        self._conn = None
        self._peer = None
        node, self._node = self._node, None
        if node is not None:
            node.remove()
        if not self._closing and self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        conn = self._conn
        self._closing = True
        if conn is not None:
            try:
                await conn.disconnect()
            except Exception:  # already gone
                self._on_disconnection(0)
        elif self._node is not None:
            self._node.remove()
            self._node = None

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("the virtual link has no pairing")

    async def unpair(self) -> None:
        raise NotImplementedError("the virtual link has no pairing")

    def _peer_or_raise(self) -> Any:
        if self._peer is None:
            raise BleakError("Not connected")
        return self._peer

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, *,
                             use_cached: bool = False, **kwargs: Any) -> bytearray:
        return bytearray(await self._peer_or_raise().read_value(characteristic.obj))

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor, *,
                                   use_cached: bool = False, **kwargs: Any) -> bytearray:
        return bytearray(await self._peer_or_raise().read_value(descriptor.obj))

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data: Any,
                              response: bool) -> None:
        await self._peer_or_raise().write_value(characteristic.obj, bytes(data),
                                                with_response=response)

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        await self._peer_or_raise().write_value(descriptor.obj, bytes(data), with_response=True)

    async def start_notify(self, characteristic: BleakGATTCharacteristic,
                           callback: NotifyCallback, **kwargs: Any) -> None:
        def deliver(value: bytes) -> None:
            callback(bytearray(value))

        self._subscribed[characteristic.handle] = deliver
        await self._peer_or_raise().subscribe(characteristic.obj, deliver)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        deliver = self._subscribed.pop(characteristic.handle, None)
        await self._peer_or_raise().unsubscribe(characteristic.obj, deliver)

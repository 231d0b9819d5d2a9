"""bleak backends that speak to the simulated sensors of a :class:`~firmware_sim.ble.VirtualAir`.

They let the collector use the UNMODIFIED public bleak API (``backend=`` is
public since bleak 0.18)::

    client = bleak.BleakClient(address_or_ble_device, backend=air.client_backend)
    scanner = bleak.BleakScanner(backend=air.scanner_backend)

``air.client_backend``/``air.scanner_backend`` are subclasses bound to that
air; the plain :class:`BumbleBleakClient`/:class:`BumbleBleakScanner` use
the most recently started air.

bleak-retry-connector: ``establish_connection(BleakClient, device, name,
backend=air.client_backend)`` works as-is. Its BlueZ-specific steps
(stale-connection checks, service-cache validation, waiting for BlueZ to
report a disconnect) all start by looking for a D-Bus path in
``device.details``; a ``BLEDevice`` from :class:`BumbleBleakScanner` has
bumble's advertisement there, so they are skipped, and the retry loop,
backoff and error translation run unchanged. It passes ``backend`` through
``**kwargs`` to ``BleakClient`` and extra ``timeout``/``pair``/
``dangerous_use_bleak_cache`` arguments to ``connect``; this backend
accepts and ignores what does not apply.

Errors raised are bleak's own (``BleakError``, ``BleakDeviceNotFoundError``,
``BleakGATTProtocolError``) so the collector's error handling is the same as
on real hardware.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from bleak.args import SizedBuffer
from bleak.assigned_numbers import gatt_char_props_to_strs
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError
from bleak.uuids import normalize_uuid_str
from bumble import att, core, hci
from bumble.core import AdvertisingData
from bumble.device import Advertisement, Connection, Peer
from bumble.gatt_client import CharacteristicProxy

from firmware_sim.ble import Central, current_air

if TYPE_CHECKING:
    from firmware_sim.ble import VirtualAir

logger = logging.getLogger(__name__)

ATT_DEFAULT_MTU = 23


def _uuid_str(uuid: core.UUID) -> str:
    return normalize_uuid_str(uuid.to_hex_str("-"))


class BumbleBleakClient(BaseBleakClient):
    """A bleak client backend over a simulated air's central.

    Extra keyword argument (through ``BleakClient(..., central=i)``): the
    index of the central (adapter) to connect from, default 0.
    """

    _air: ClassVar[VirtualAir | None] = None

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        central: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self._device_name = (
            address_or_ble_device.name if isinstance(address_or_ble_device, BLEDevice) else None
        )
        self._central_index = central
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._subscribers: dict[int, Callable[[bytes], None]] = {}
        self._closing = False

    @property
    def air(self) -> VirtualAir:
        return self._air or current_air()

    @property
    def central(self) -> Central:
        return self.air.central(self._central_index)

    @property
    def name(self) -> str:
        return self._device_name or self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        return self._connection.att_mtu if self._connection is not None else ATT_DEFAULT_MTU

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    # -- connection -------------------------------------------------------------

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if self.is_connected:
            return
        if pair:
            logger.debug("pairing is not simulated; connecting without it")
        # bleak-retry-connector passes its own (long) timeout; the air's bounds it
        timeout = min(
            float(kwargs.get("timeout", self._timeout)), self.air.config.connect_timeout_s
        )
        central = self.central
        address = hci.Address(self.address, hci.Address.RANDOM_DEVICE_ADDRESS)
        async with central.connect_lock:
            try:
                conn = await central.stack.connect(address, timeout=timeout)
            except (TimeoutError, core.TimeoutError) as exc:
                raise BleakDeviceNotFoundError(
                    self.address, f"device {self.address} not found (no answer within {timeout} s)"
                ) from exc
            except core.BaseBumbleError as exc:
                raise BleakError(f"connection to {self.address} failed: {exc}") from exc
        self._connection = conn
        self._closing = False
        conn.on(conn.EVENT_DISCONNECTION, self._on_disconnection)
        try:
            peer = Peer(conn)
            self._peer = peer
            mtu = self.air.config.central_mtu
            if mtu > ATT_DEFAULT_MTU:
                await peer.request_mtu(mtu)
            self.services = await self._discover(peer)
        except Exception as exc:
            await self.disconnect()
            raise BleakError(f"service discovery on {self.address} failed: {exc}") from exc

    async def _discover(self, peer: Peer) -> BleakGATTServiceCollection:
        coll = BleakGATTServiceCollection()
        for svc in await peer.discover_services():
            service = BleakGATTService(svc, svc.handle, _uuid_str(svc.uuid))
            coll.add_service(service)
            for ch in await svc.discover_characteristics():
                await ch.discover_descriptors()
                props = sorted(gatt_char_props_to_strs(int(ch.properties)))
                char = BleakGATTCharacteristic(
                    ch, ch.handle, _uuid_str(ch.uuid), props, lambda: self.mtu_size - 3, service
                )
                coll.add_characteristic(char)
                for d in ch.descriptors:
                    coll.add_descriptor(BleakGATTDescriptor(d, d.handle, _uuid_str(d.type), char))
        return coll

    def _on_disconnection(self, _reason: int) -> None:
        self._connection = None
        self._peer = None
        self._subscribers.clear()
        if not self._closing and self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        conn = self._connection
        if conn is None:
            return
        self._closing = True
        with contextlib.suppress(core.BaseBumbleError, TimeoutError):
            await conn.disconnect()
        self._connection = None
        self._peer = None

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("pairing is not simulated (the supported sensors do not pair)")

    async def unpair(self) -> None:
        raise NotImplementedError("pairing is not simulated (the supported sensors do not pair)")

    # -- GATT I/O -----------------------------------------------------------------

    def _need_peer(self) -> Peer:
        if self._peer is None:
            raise BleakError("Not connected")
        return self._peer

    async def _call(self, coro: Any) -> Any:
        try:
            return await coro
        except att.ATT_Error as exc:
            raise BleakGATTProtocolError(int(exc.error_code)) from exc
        except core.BaseBumbleError as exc:
            raise BleakError(f"GATT operation on {self.address} failed: {exc}") from exc

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._need_peer()
        return bytearray(await self._call(peer.read_value(characteristic.handle)))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._need_peer()
        return bytearray(await self._call(peer.read_value(descriptor.handle)))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        peer = self._need_peer()
        await self._call(
            peer.write_value(characteristic.handle, bytes(data), with_response=response)
        )

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        peer = self._need_peer()
        await self._call(peer.write_value(descriptor.handle, bytes(data), with_response=True))

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        self._need_peer()
        proxy: CharacteristicProxy[bytes] = characteristic.obj

        def on_value(value: bytes) -> None:
            callback(bytearray(value))

        old = self._subscribers.pop(characteristic.handle, None)
        if old is not None:
            await self._call(proxy.unsubscribe(old))
        self._subscribers[characteristic.handle] = on_value
        await self._call(proxy.subscribe(on_value, prefer_notify=True))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        self._need_peer()
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        sub = self._subscribers.pop(characteristic.handle, None)
        await self._call(proxy.unsubscribe(sub, force=True))


class BumbleBleakScanner(BaseBleakScanner):
    """A bleak scanner backend over a simulated air's central (active scanning by default)."""

    _air: ClassVar[VirtualAir | None] = None

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None = None,
        service_uuids: list[str] | None = None,
        scanning_mode: str = "active",
        *,
        central: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._active = scanning_mode != "passive"
        self._central_index = central
        self._scanning = False

    @property
    def air(self) -> VirtualAir:
        return self._air or current_air()

    async def start(self) -> None:
        self.seen_devices = {}
        stack = self.air.central(self._central_index).stack
        stack.on(stack.EVENT_ADVERTISEMENT, self._on_advertisement)
        if not stack.is_scanning:
            await stack.start_scanning(active=self._active, filter_duplicates=False)
        self._scanning = True

    async def stop(self) -> None:
        if not self._scanning:
            return
        self._scanning = False
        stack = self.air.central(self._central_index).stack
        stack.remove_listener(stack.EVENT_ADVERTISEMENT, self._on_advertisement)
        if stack.is_scanning and not stack.listeners(stack.EVENT_ADVERTISEMENT):
            await stack.stop_scanning()

    def _on_advertisement(self, adv: Advertisement) -> None:
        data = adv.data
        uuids: list[str] = []
        for kind in (
            AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
        ):
            for group in data.get_all(kind):
                uuids.extend(_uuid_str(u) for u in group)
        if not self.is_allowed_uuid(uuids):
            return
        name = data.get(AdvertisingData.COMPLETE_LOCAL_NAME) or data.get(
            AdvertisingData.SHORTENED_LOCAL_NAME
        )
        manufacturer: dict[int, bytes] = {}
        for company, payload in data.get_all(AdvertisingData.MANUFACTURER_SPECIFIC_DATA):
            manufacturer[int(company)] = bytes(payload)
        tx = adv.tx_power if adv.tx_power != Advertisement.TX_POWER_NOT_AVAILABLE else None
        ad = AdvertisementData(
            local_name=str(name) if name is not None else None,
            manufacturer_data=manufacturer,
            service_data={},
            service_uuids=uuids,
            tx_power=tx,
            rssi=int(adv.rssi),
            platform_data=(adv,),
        )
        address = str(adv.address)
        device = self.create_or_update_device(address, address, ad.local_name, adv, ad)
        self.call_detection_callbacks(device, ad)


def bind_client(air: VirtualAir) -> type[BaseBleakClient]:
    """A :class:`BumbleBleakClient` subclass that always uses ``air``."""
    return type("BumbleBleakClient", (BumbleBleakClient,), {"_air": air})


def bind_scanner(air: VirtualAir) -> type[BaseBleakScanner]:
    """A :class:`BumbleBleakScanner` subclass that always uses ``air``."""
    return type("BumbleBleakScanner", (BumbleBleakScanner,), {"_air": air})

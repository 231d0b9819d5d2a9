"""A real BLE stack in one process: bumble controllers joined by a ``LocalLink``.

:class:`VirtualAir` hosts simulated sensors (GATT servers, one bumble
``Device`` + ``Controller`` each) and one or more centrals (the collector's
"adapters"), all on virtual controllers joined by ``bumble.link.LocalLink``.
Everything above the link layer is bumble's real host stack: HCI packets,
L2CAP, ATT/GATT, advertising, scanning, connection, MTU exchange.

The collector talks to it through the unmodified ``bleak.BleakClient`` and
``bleak.BleakScanner`` with the backends of :mod:`firmware_sim.bleak_backend`::

    air = VirtualAir(SimClock.virtual())
    async with air:
        dev = await air.add_device("metamotion", ArraySource(acc, gyro, rate_hz=50))
        async with BleakScanner(backend=air.scanner_backend) as scanner: ...
        client = BleakClient(dev.address, backend=air.client_backend)

Three bumble classes are subclassed for speed only (same behaviour): their
hot paths format debug log messages with f-strings even when debug logging
is off (``str()`` of every HCI/ATT packet), which halved notification
throughput. The subclasses skip that formatting, serialise and parse the
(few, always identical) flow-control events once instead of per packet, and
hand ATT notifications from L2CAP to the GATT client without the event
emitter in between; everything else, including flow control and
fragmentation, is bumble's.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bumble import att, hci
from bumble.controller import Controller
from bumble.device import Device
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from firmware_sim.clock import SimClock

if TYPE_CHECKING:
    from bleak.backends.client import BaseBleakClient
    from bleak.backends.scanner import BaseBleakScanner

    from firmware_sim.devices.base import FaultPlan, SampleSource, SimulatedDevice

ATT_HANDLE_VALUE_NOTIFICATION = 0x1B
_ATT_NOTIFICATION = bytes((ATT_HANDLE_VALUE_NOTIFICATION,))


class FastController(Controller):
    """A bumble ``Controller`` without eager debug formatting.

    Reports an LE ACL buffer of 251 bytes, as controllers with LE Data Length
    Extension do (Bluetooth 4.2+), so an MTU-247 notification travels as one
    ACL packet instead of ten 27-byte fragments.
    """

    le_acl_data_packet_length = 251

    @staticmethod
    def stock(name: str, link: LocalLink) -> Controller:
        """bumble's own controller with the same ACL buffer (for comparisons)."""
        controller = Controller(name, link=link)
        controller.le_acl_data_packet_length = FastController.le_acl_data_packet_length
        return controller

    def on_hci_packet(self, packet: hci.HCI_Packet) -> None:
        match packet:
            case hci.HCI_Command():
                self.on_hci_command_packet(packet)
            case hci.HCI_AclDataPacket():
                self.on_hci_acl_data_packet(packet)
            case hci.HCI_Event():
                self.on_hci_event_packet(packet)
            case _:
                super().on_hci_packet(packet)

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if self.host:
            if type(packet) is hci.HCI_Number_Of_Completed_Packets_Event:
                data = _nocp_bytes(packet)
            else:
                data = bytes(packet)
            asyncio.get_running_loop().call_soon(self.host.on_packet, data)

    def on_hci_le_create_connection_cancel_command(
        self, command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        # bumble's virtual controller accepts the cancel but leaves the attempt
        # pending forever (the host then hangs and every later connect is
        # refused). A real controller ends it with a connection-complete event
        # of status Unknown Connection Identifier (Core Vol 4, Part E, 7.8.13),
        # sent after the command's own completion.
        pending = self.pending_le_connection
        self.pending_le_connection = None
        if pending is not None:
            failed = hci.HCI_LE_Connection_Complete_Event(
                status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
                connection_handle=0,
                role=hci.Role.CENTRAL,
                peer_address_type=pending.peer_address_type,
                peer_address=pending.peer_address,
                connection_interval=0,
                peripheral_latency=0,
                supervision_timeout=0,
                central_clock_accuracy=0,
            )
            asyncio.get_running_loop().call_soon(self.send_hci_packet, failed)
        return super().on_hci_le_create_connection_cancel_command(command)


# The controller confirms every ACL packet with a Number Of Completed Packets
# event (flow control), and these few distinct events are the same bytes
# every time: they are serialised and parsed once, not per packet.
_NOCP_PREFIX = bytes((hci.HCI_EVENT_PACKET, hci.HCI_NUMBER_OF_COMPLETED_PACKETS_EVENT))
_NOCP_CACHE_MAX = 256
_nocp_encoded: dict[tuple[tuple[int, ...], tuple[int, ...]], bytes] = {}
_nocp_parsed: dict[bytes, hci.HCI_Packet] = {}


def _nocp_bytes(event: hci.HCI_Number_Of_Completed_Packets_Event) -> bytes:
    key = (tuple(event.connection_handles), tuple(event.num_completed_packets))
    data = _nocp_encoded.get(key)
    if data is None:
        if len(_nocp_encoded) >= _NOCP_CACHE_MAX:
            _nocp_encoded.clear()
        data = _nocp_encoded[key] = bytes(event)
    return data


class FastHost(Host):
    """A bumble ``Host`` without eager debug formatting on the packet paths.

    Also hands ATT notifications from the L2CAP layer straight to the
    device's GATT handler (the fixed ATT channel's only handler) instead of
    through an event emitter and the channel manager.
    """

    fast_att_sink: Callable[[int, bytes], None] | None = None

    def on_packet(self, packet: bytes) -> None:
        if packet[:2] == _NOCP_PREFIX and self.ready:
            event = _nocp_parsed.get(packet)
            if event is None:
                if len(_nocp_parsed) >= _NOCP_CACHE_MAX:
                    _nocp_parsed.clear()
                event = _nocp_parsed[packet] = hci.HCI_Packet.from_bytes(packet)
            self.on_hci_packet(event)
            return
        super().on_packet(packet)

    def on_command_processed(
        self, event: hci.HCI_Command_Complete_Event | hci.HCI_Command_Status_Event
    ) -> None:
        pending = self.pending_response
        if pending is not None and pending.done():
            # The command's sender was cancelled (a device powered off while it
            # restarted advertising) and its completion arrived before the
            # sender's clean-up ran: bumble would set the result of the
            # cancelled future and log an InvalidStateError. The sender's own
            # clean-up releases the command slot.
            return
        super().on_command_processed(event)

    def on_l2cap_pdu(self, connection: Any, cid: int, pdu: bytes) -> None:
        sink = self.fast_att_sink
        if sink is not None and cid == att.ATT_CID and pdu[:1] == _ATT_NOTIFICATION:
            sink(connection.handle, pdu)
            return
        super().on_l2cap_pdu(connection, cid, pdu)

    def on_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if self.snooper is None:
            match packet:
                case hci.HCI_Event():
                    self.on_hci_event_packet(packet)
                    return
                case hci.HCI_AclDataPacket():
                    self.on_hci_acl_data_packet(packet)
                    return
        super().on_hci_packet(packet)

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if self.snooper is None and self.hci_sink:
            self.hci_sink.on_packet(bytes(packet))
            return
        super().send_hci_packet(packet)


class FastDevice(Device):
    """A bumble ``Device`` that hands ATT notifications straight to the GATT client.

    (Bumble's generic ATT dispatch formats every PDU for a debug message first.)
    """

    def on_gatt_pdu(self, connection_handle: int, pdu: bytes) -> None:
        if pdu and pdu[0] == ATT_HANDLE_VALUE_NOTIFICATION:
            connection = self.lookup_connection(connection_handle)
            if connection is not None and connection.gatt_client is not None:
                notification = att.ATT_PDU.from_bytes(pdu)
                assert isinstance(notification, att.ATT_Handle_Value_Notification)
                connection.gatt_client.on_att_handle_value_notification(notification)
                return
        super().on_gatt_pdu(connection_handle, pdu)


def send_notification(
    stack: Device, connection_handle: int, value_handle: int, value: bytes
) -> None:
    """Send one ATT Handle Value Notification (the caller checked the CCCD).

    The same PDU bumble's ``notify_subscriber`` builds, without its
    per-call subscriber lookup and debug formatting.
    """
    pdu = bytes((ATT_HANDLE_VALUE_NOTIFICATION,)) + value_handle.to_bytes(2, "little") + value
    stack.send_l2cap_pdu(connection_handle, att.ATT_CID, pdu)


def make_stack(link: LocalLink, name: str, address: str, fast: bool = True) -> Device:
    """One bumble device with its own virtual controller on ``link``.

    ``fast=False`` uses bumble's stock classes (same behaviour, slower; kept
    to measure the difference), with the same 251-byte LE ACL buffer.
    """
    if fast:
        controller: Controller = FastController(f"ctrl-{address}", link=link)
        host = FastHost(controller, AsyncPipeSink(controller))
        device = FastDevice(name=name, address=hci.Address(address), host=host)
        host.fast_att_sink = device.on_gatt_pdu
        return device
    controller = FastController.stock(f"ctrl-{address}", link)
    return Device(
        name=name, address=hci.Address(address), host=Host(controller, AsyncPipeSink(controller))
    )


@dataclass(frozen=True, slots=True)
class AirConfig:
    """Radio-side settings of a :class:`VirtualAir`.

    Attributes
    ----------
    central_mtu:
        ATT MTU the bleak backend asks for right after connecting, as BlueZ,
        Android and iOS do on their own (BlueZ asks 517; 247 is the common
        result with phones). 23 disables the exchange.
    advertising_interval_ms:
        Advertising interval of the simulated sensors (wall time; 20 ms is
        the minimum the spec allows and keeps scans short).
    connect_timeout_s:
        Link-layer connection timeout (wall time).
    fast_path:
        Use the speed-only subclasses of bumble's Controller/Host/Device
        (default). False runs bumble's stock classes, for comparison.
    device_batch_s:
        Sensor seconds of samples a simulated device reads and encodes per
        (vectorised) step; each notification still goes out at its own
        sensor time. Longer steps cost less CPU per sample; a nudge felt by
        a simulated wearer then changes its motion only after the samples
        already taken (at most this much later).
    """

    central_mtu: int = 247
    advertising_interval_ms: float = 20.0
    connect_timeout_s: float = 10.0
    fast_path: bool = True
    device_batch_s: float = 1.0

    def __post_init__(self) -> None:
        if not 23 <= self.central_mtu <= 517:
            raise ValueError(f"central_mtu must be 23..517, got {self.central_mtu}")
        if not 0 < self.device_batch_s <= 60:
            raise ValueError(f"device_batch_s must be in (0, 60], got {self.device_batch_s}")


class Central:
    """A central ("the collector host's adapter"): one bumble device that scans and connects."""

    def __init__(self, stack: Device, name: str) -> None:
        self.stack = stack
        self.name = name
        # bumble refuses a second LE connection request while one is pending
        self.connect_lock = asyncio.Lock()

    @property
    def address(self) -> str:
        return str(self.stack.random_address)


_current_air: VirtualAir | None = None


def current_air() -> VirtualAir:
    """The most recently started :class:`VirtualAir` (for unbound backends)."""
    if _current_air is None:
        raise RuntimeError(
            "no simulated BLE air is running: start one with `async with VirtualAir(...)` "
            "or use `air.client_backend` / `air.scanner_backend`"
        )
    return _current_air


class VirtualAir:
    """Simulated sensors and centrals on one in-process bumble link.

    Parameters
    ----------
    clock:
        Sensor time for the devices (and for the collector to read arrival
        times from). Default: :meth:`SimClock.virtual`.
    config:
        Radio-side settings.
    first_address:
        Number in the first assigned address (the last three bytes); give
        airs in different processes disjoint ranges so that their sensors'
        addresses (the collector's sensor ids) stay unique.
    """

    def __init__(
        self,
        clock: SimClock | None = None,
        config: AirConfig | None = None,
        *,
        first_address: int = 1,
    ) -> None:
        self.clock = clock or SimClock.virtual()
        self.config = config or AirConfig()
        self.link = LocalLink()
        self._devices: dict[str, SimulatedDevice] = {}
        self._centrals: list[Central] = []
        self._addresses = itertools.count(first_address)
        self._started = False
        from firmware_sim import bleak_backend

        self.client_backend: type[BaseBleakClient] = bleak_backend.bind_client(self)
        self.scanner_backend: type[BaseBleakScanner] = bleak_backend.bind_scanner(self)

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> VirtualAir:
        global _current_air  # noqa: PLW0603 - the fallback for unbound bleak backends
        if not self._started:
            self._started = True
            _current_air = self
            await self.add_central()
        return self

    async def aclose(self) -> None:
        global _current_air  # noqa: PLW0603
        for dev in list(self._devices.values()):
            with contextlib.suppress(Exception):
                await dev.power_off()
        for central in self._centrals:
            for conn in list(central.stack.connections.values()):
                with contextlib.suppress(Exception):
                    await conn.disconnect()
            with contextlib.suppress(Exception):
                await central.stack.power_off()
        await self.clock.aclose()
        if _current_air is self:
            _current_air = None
        self._started = False

    async def __aenter__(self) -> VirtualAir:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- population ----------------------------------------------------------

    def _next_address(self, first_byte: int) -> str:
        n = next(self._addresses)
        # static random address: the two top bits of the first byte are 1
        tail = f"{n >> 16 & 0xFF:02X}:{n >> 8 & 0xFF:02X}:{n & 0xFF:02X}"
        return f"{first_byte | 0xC0:02X}:50:4D:{tail}"

    async def add_central(self, name: str = "postmon") -> Central:
        """Add a central (an adapter of the collector host); the first one is added at start."""
        stack = make_stack(self.link, name, self._next_address(0xC0), self.config.fast_path)
        await stack.power_on()
        central = Central(stack, name)
        self._centrals.append(central)
        return central

    def central(self, index: int = 0) -> Central:
        return self._centrals[index]

    @property
    def centrals(self) -> Sequence[Central]:
        return tuple(self._centrals)

    async def add_device(
        self,
        kind: str,
        source: SampleSource,
        *,
        name: str | None = None,
        faults: FaultPlan | None = None,
        **options: Any,
    ) -> SimulatedDevice:
        """Create, power on and start advertising one simulated sensor.

        Parameters
        ----------
        kind:
            ``witmotion``, ``movesense`` or ``metamotion`` (``firmware_sim.devices.DEVICE_TYPES``).
        source:
            Where its samples come from (a wearer model, or :class:`ArraySource` in tests).
        name:
            Advertised name; default: the vendor's naming scheme.
        faults:
            Injected faults (:class:`FaultPlan`); default none.
        options:
            Device-specific options (see each device class).
        """
        if not self._started:
            await self.start()
        from firmware_sim.devices import DEVICE_TYPES

        try:
            cls = DEVICE_TYPES[kind]
        except KeyError as exc:
            raise ValueError(
                f"unknown device type {kind!r}; known: {sorted(DEVICE_TYPES)}"
            ) from exc
        address = self._next_address(cls.address_prefix)
        dev = cls(self, source, address=address, name=name, faults=faults, **options)
        self._devices[address] = dev
        await dev.power_on()
        return dev

    @property
    def devices(self) -> Sequence[SimulatedDevice]:
        return tuple(self._devices.values())

    def device(self, address: str) -> SimulatedDevice:
        try:
            return self._devices[address.upper()]
        except KeyError as exc:
            raise KeyError(f"no simulated device at {address}") from exc

"""Simulated Movesense firmware running the GATT SensorData Protocol app.

Behaviour (``shared/reference/devices.md``, device-lib ``gatt_sensordata_app``):

- service ``34802252…``: command ``34800001`` (write), data ``34800002``
  (notify); no Battery or Device Information service over stock GSP;
- HELLO → ``01 ref C8 00`` (status 200); SUBSCRIBE ``/Meas/IMU6/<rate>`` →
  status 200 and data messages ``02 ref <ts u32 ms> N×acc N×gyro``; an
  unknown path → 404; UNSUBSCRIBE → 200 (404 for an unknown ref);
- one IMU6 subscription at a time (a new one replaces the old);
- every subscription is dropped on disconnect;
- timestamps are the device clock in ms since boot (the crystal drifts with
  ``FaultPlan.crystal_ppm``).

An IMU6 sample takes 24 bytes, so it needs an ATT MTU of at least 33. If the
central has not negotiated one, the firmware asks for 161 (its message
buffer, 158 bytes, + 3) before streaming, as real GSP firmware does.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from bumble.device import Connection, Peer
from bumble.gatt import Characteristic, CharacteristicValue, Service

from collector.protocols import movesense as ms
from firmware_sim.devices.base import F64Array, FaultPlan, SampleSource, SimulatedDevice

if TYPE_CHECKING:
    from firmware_sim.ble import VirtualAir

FIRMWARE_MTU = 161


class MovesenseDevice(SimulatedDevice):
    """A Movesense sensor. Options: ``max_samples_per_packet`` (default: as many as fit)."""

    kind = ms.KIND
    protocol = ms.PROTOCOL
    address_prefix = 0xCC

    def __init__(
        self,
        air: VirtualAir,
        source: SampleSource,
        *,
        address: str,
        name: str | None = None,
        faults: FaultPlan | None = None,
        max_samples_per_packet: int | None = None,
    ) -> None:
        super().__init__(air, source, address=address, name=name, faults=faults)
        self.max_samples = max_samples_per_packet
        self.subscription: tuple[int, int] | None = None  # (ref, rate)
        self.commands: list[ms.Command] = []
        self._mtu_requested = False

    @classmethod
    def default_name(cls, address: str) -> str:
        serial = int(address.replace(":", ""), 16) % 10**12
        return f"Movesense {serial:012d}"

    def build_services(self) -> list[Service]:
        self._data_char = Characteristic(
            ms.NOTIFY_UUID, Characteristic.NOTIFY, Characteristic.READABLE, b""
        )
        command: Characteristic[bytes] = Characteristic(
            ms.WRITE_UUID,
            Characteristic.WRITE,
            Characteristic.WRITEABLE,
            CharacteristicValue[bytes](write=self._on_write),
        )
        return [Service(ms.SERVICE_UUID, [command, self._data_char])]

    def on_connected(self, connection: Connection) -> None:
        self._mtu_requested = False

    def on_disconnected(self) -> None:
        self.subscription = None  # the firmware unsubscribes everything on disconnect

    def _result(self, ref: int, status: int) -> None:
        self.notify(self._data_characteristic(), ms.encode_command_result(ref, status))

    def _on_write(self, _connection: Connection, value: bytes) -> None:
        cmd = ms.parse_command(value)
        if cmd is None:
            return  # the real firmware ignores malformed commands
        self.commands.append(cmd)
        if isinstance(cmd, ms.Hello):
            self._result(cmd.ref, ms.STATUS_OK)
        elif isinstance(cmd, ms.Subscribe):
            rate = ms.parse_imu6_path(cmd.path)
            if rate is None:
                self._result(cmd.ref, ms.STATUS_NOT_FOUND)
                return
            self.stop_stream()
            self.subscription = (cmd.ref, rate)
            self.set_rate(rate)
            self._result(cmd.ref, ms.STATUS_OK)
            self.start_stream()
        elif isinstance(cmd, ms.Unsubscribe):
            if self.subscription is None or self.subscription[0] != cmd.ref:
                self._result(cmd.ref, ms.STATUS_NOT_FOUND)
                return
            self.subscription = None
            self.stop_stream()
            self._result(cmd.ref, ms.STATUS_OK)

    async def _request_mtu(self, connection: Connection) -> None:
        with contextlib.suppress(Exception):
            await Peer(connection).request_mtu(FIRMWARE_MTU)

    def _group_size(self) -> int:
        conn = self.connection
        if conn is None:
            return 0
        cap = self.max_samples or 64
        m = ms.samples_per_packet(conn.att_mtu, cap)
        if m == 0 and not self._mtu_requested:
            self._mtu_requested = True
            self._spawn(self._request_mtu(conn))
        return m

    def _encode(
        self, accel_g: F64Array, gyro_dps: F64Array, t_ns: npt.NDArray[np.int64], m: int
    ) -> list[list[bytes]]:
        assert self.subscription is not None
        ref = self.subscription[0]
        first = t_ns[::m]
        device_ms = self.device_clock_ms(first)  # ms since boot on the (drifting) crystal
        p = first.shape[0]
        blob = ms.encode_imu6_packets(
            ref, device_ms, accel_g.reshape(p, m, 3), gyro_dps.reshape(p, m, 3)
        )
        size = ms.HEADER_BYTES + ms.SAMPLE_BYTES * m
        return [[blob[i : i + size]] for i in range(0, len(blob), size)]

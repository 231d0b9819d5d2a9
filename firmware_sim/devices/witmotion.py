"""Simulated WitMotion WT901BLE firmware (a bumble GATT server).

Behaviour, as documented for the real device (``shared/reference/devices.md``):

- service ``ffe5``: notify ``ffe4`` (the data byte stream), write ``ffe9``;
  no Battery or Device Information service;
- streaming starts when notifications on ``ffe4`` are enabled (no command)
  and stops when they are disabled or the link drops;
- register writes need an unlock (``FF AA 69 88 B5``) within the previous
  10 s; the output-rate register 0x03 takes effect at once, ``save``
  (``FF AA 00 00 00``) makes it survive a power cycle; power-up rate 10 Hz;
- register reads (``FF AA 27 <reg> 00``) of 0x51 (quaternion), 0x3A
  (magnetometer) and 0x64 (battery volts) are answered by ``55 71`` frames
  in the same byte stream; other registers answer zeros.

Frames are packed back to back, as many as the ATT MTU allows (20-byte
payloads at the default MTU 23: one frame per notification).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, Service

from collector.protocols import witmotion as wm
from firmware_sim.clock import NS_PER_S
from firmware_sim.devices.base import F64Array, FaultPlan, SampleSource, SimulatedDevice

if TYPE_CHECKING:
    from firmware_sim.ble import VirtualAir

#: Register writes are accepted this long after an unlock (sensor seconds).
UNLOCK_WINDOW_S = 10.0
#: Local geomagnetic field in the world frame (x north, y west, z up), device units.
EARTH_FIELD = np.array([0.2, 0.0, -0.43])


def tilt_angles_deg(accel_g: F64Array) -> tuple[F64Array, F64Array]:
    """Roll and pitch (deg) of a sensor from its (N, 3) acceleration (g)."""
    ax, ay, az = accel_g[:, 0], accel_g[:, 1], accel_g[:, 2]
    roll = np.degrees(np.arctan2(ay, az))
    pitch = np.degrees(np.arctan2(-ax, np.hypot(ay, az)))
    return roll, pitch


def euler_to_quaternion(roll_deg: float, pitch_deg: float, yaw_deg: float) -> F64Array:
    """(4,) unit quaternion (w, x, y, z) of ZYX Euler angles in degrees."""
    r, p, y = np.radians([roll_deg, pitch_deg, yaw_deg]) / 2
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    return np.array(
        [
            cr * cp * cy + sr * sp * sy,
            sr * cp * cy - cr * sp * sy,
            cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy,
        ]
    )


def rotate_to_sensor(q: F64Array, v: F64Array) -> F64Array:
    """World vector ``v`` (3,) expressed in the sensor frame of orientation ``q``."""
    w, x, y, z = q
    r = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )
    return np.asarray(r.T @ v, dtype=np.float64)


class WitMotionDevice(SimulatedDevice):
    """A WT901BLE. Options: ``max_frames_per_notification`` (default: as many as fit)."""

    kind = wm.KIND
    protocol = wm.PROTOCOL
    address_prefix = 0xE8

    def __init__(
        self,
        air: VirtualAir,
        source: SampleSource,
        *,
        address: str,
        name: str | None = None,
        faults: FaultPlan | None = None,
        max_frames_per_notification: int | None = None,
    ) -> None:
        super().__init__(air, source, address=address, name=name, faults=faults)
        self.max_frames = max_frames_per_notification
        self.saved_rate_hz = wm.DEFAULT_RATE_HZ
        self.register_writes: list[tuple[int, int]] = []  # (reg, value) accepted
        self.rejected_writes = 0  # writes without a valid unlock
        self._unlocked_until_ns = -1
        self._yaw_deg = 0.0
        self._angles = np.zeros(3)

    @classmethod
    def default_name(cls, address: str) -> str:
        return "WT901BLE" + address.replace(":", "")[-2:]

    def build_services(self) -> list[Service]:
        self._data_char = Characteristic(
            wm.NOTIFY_UUID,
            Characteristic.NOTIFY | Characteristic.READ,
            Characteristic.READABLE,
            b"",
        )
        self._data_char.on(Characteristic.EVENT_SUBSCRIPTION, self._on_subscription)
        write: Characteristic[bytes] = Characteristic(
            wm.WRITE_UUID,
            Characteristic.WRITE | Characteristic.WRITE_WITHOUT_RESPONSE,
            Characteristic.WRITEABLE,
            CharacteristicValue[bytes](write=self._on_write),
        )
        return [Service(wm.SERVICE_UUID, [self._data_char, write])]

    async def power_on(self) -> None:
        self._rate_hz = 0.0
        await super().power_on()
        self.set_rate(self.saved_rate_hz)  # unsaved settings do not survive a power cycle

    def _on_subscription(self, _bearer: Any, notify: bool, _indicate: bool) -> None:
        if notify:
            self.start_stream()
        else:
            self.stop_stream()

    def on_connected(self, connection: Connection) -> None:
        self._unlocked_until_ns = -1

    # -- commands -------------------------------------------------------------

    def _on_write(self, _connection: Connection, value: bytes) -> None:
        cmd = wm.parse_command(value)
        now = self.clock.now_ns()
        if isinstance(cmd, wm.Unlock):
            self._unlocked_until_ns = now + round(UNLOCK_WINDOW_S * NS_PER_S)
        elif isinstance(cmd, wm.ReadRegister):
            self._reply(cmd.reg)
        elif isinstance(cmd, wm.WriteRegister):
            if now > self._unlocked_until_ns:
                self.rejected_writes += 1
                return
            self.register_writes.append((cmd.reg, cmd.value))
            if cmd.is_save:
                self.saved_rate_hz = self._rate_hz
            elif cmd.reg == wm.REG_RATE and (cmd.value & 0xFF) in wm.RATE_BY_CODE:
                self.set_rate(wm.RATE_BY_CODE[cmd.value & 0xFF])

    def _reply(self, reg: int) -> None:
        roll, pitch, yaw = (float(a) for a in self._angles)
        q = euler_to_quaternion(roll, pitch, yaw)
        if reg == wm.REG_QUATERNION:
            frame = wm.encode_quaternion_reply(q.tolist())
        elif reg == wm.REG_MAGNETOMETER:
            frame = wm.encode_magnetometer_reply(rotate_to_sensor(q, EARTH_FIELD).tolist())
        elif reg == wm.REG_BATTERY:
            frame = wm.encode_battery_reply(self.battery_volts())
        else:
            frame = wm.encode_register_reply(reg, [])
        self.notify(self._data_characteristic(), frame)

    # -- streaming --------------------------------------------------------------

    def _group_size(self) -> int:
        mtu = self.connection.att_mtu if self.connection is not None else 23
        fit = max(1, (mtu - 3) // wm.FRAME_LEN)
        return min(fit, self.max_frames) if self.max_frames else fit

    def _encode(
        self, accel_g: F64Array, gyro_dps: F64Array, t_ns: npt.NDArray[np.int64], m: int
    ) -> list[list[bytes]]:
        roll, pitch = tilt_angles_deg(accel_g)
        # on-board heading: integrated z rate (no magnetometer fusion here)
        yaw_path = self._yaw_deg + np.cumsum(gyro_dps[:, 2]) / self._rate_hz
        yaw = (yaw_path + 180.0) % 360.0 - 180.0
        self._yaw_deg = float(yaw[-1])
        angles = np.column_stack([roll, pitch, yaw])
        self._angles = angles[-1]
        blob = wm.encode_data_frames(accel_g, gyro_dps, angles)
        size = m * wm.FRAME_LEN
        return [[blob[i : i + size]] for i in range(0, len(blob), size)]

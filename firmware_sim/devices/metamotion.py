"""Simulated MbientLab MetaMotion (MetaWear firmware, BMI160) with its vibration motor.

Behaviour (``shared/reference/devices.md``, MetaWear-SDK-Cpp):

- MetaWear service ``326a9000…``: command ``326a9001`` (write without
  response), notify ``326a9006``; plus Device Information (0x180A: the SDK
  reads firmware and model from it) and Battery (0x180F) services; it
  advertises its service UUID and the name ``MetaWear``;
- accelerometer/gyroscope: config, subscribe (single ``03 04``/``13 05`` or
  packed ``03 1C``/``13 07``), interrupt enable and start; samples stream
  while a sensor is configured, enabled, started and subscribed. Both
  sensors sample on the accelerometer's grid (the gyroscope's ODR byte is
  stored but the simulator keeps one sampling clock per device);
- battery: ``11 8C`` → notification ``11 8C <percent> <mV u16>``;
- HAPTIC: ``08 01 <duty> <pulse_ms u16> <0=motor|1=buzzer>``: every request
  is recorded as a :class:`HapticEvent` in sensor time and passed to the
  listeners (a wearer model reacts to the nudge through them).

Streaming state is reset when the link drops (the collector re-sends its
start sequence on reconnect); sensor configuration is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, Service

from collector.protocols import metamotion as mm
from firmware_sim.devices.base import F64Array, FaultPlan, SampleSource, SimulatedDevice

if TYPE_CHECKING:
    from firmware_sim.ble import VirtualAir

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HapticEvent:
    """One vibration (or buzz) the device was asked for.

    Attributes
    ----------
    t_ns:
        Sensor time the command arrived (ns, UTC).
    duty_percent:
        Motor duty cycle, 0-100 %.
    pulse_ms:
        Pulse length in milliseconds.
    buzzer:
        True for the buzzer, False for the vibration motor.
    """

    t_ns: int
    duty_percent: float
    pulse_ms: int
    buzzer: bool


HapticListener = Callable[["MetaMotionDevice", HapticEvent], None]


@dataclass(slots=True)
class _Sensor:
    rate_hz: float
    range_: float
    enabled: bool = False
    started: bool = False
    subscribed: bool = False
    packed: bool = False

    @property
    def active(self) -> bool:
        return self.enabled and self.started and self.subscribed

    def reset_stream(self) -> None:
        self.enabled = self.started = self.subscribed = self.packed = False


class MetaMotionDevice(SimulatedDevice):
    """A MetaMotion R. Listeners for haptic requests: :meth:`add_haptic_listener`."""

    kind = mm.KIND
    protocol = mm.PROTOCOL
    address_prefix = 0xD4

    def __init__(
        self,
        air: VirtualAir,
        source: SampleSource,
        *,
        address: str,
        name: str | None = None,
        faults: FaultPlan | None = None,
    ) -> None:
        super().__init__(air, source, address=address, name=name, faults=faults)
        # BMI160 power-up settings as the MetaWear firmware leaves them
        self.acc = _Sensor(rate_hz=100.0, range_=2.0)
        self.gyro = _Sensor(rate_hz=100.0, range_=2000.0)
        self.haptic_events: list[HapticEvent] = []
        self.commands: list[mm.Command] = []
        self._haptic_listeners: list[HapticListener] = []
        self._plan: tuple[bool, bool, bool, bool] = (False, False, False, False)

    @classmethod
    def default_name(cls, address: str) -> str:
        return "MetaWear"

    def add_haptic_listener(self, listener: HapticListener) -> Callable[[], None]:
        """Call ``listener(device, event)`` on every haptic request.

        Returns a function that removes the listener.
        """
        self._haptic_listeners.append(listener)
        return lambda: self._haptic_listeners.remove(listener)

    def build_services(self) -> list[Service]:
        self._data_char = Characteristic(
            mm.NOTIFY_UUID, Characteristic.NOTIFY, Characteristic.READABLE, b""
        )
        command: Characteristic[bytes] = Characteristic(
            mm.WRITE_UUID,
            Characteristic.WRITE_WITHOUT_RESPONSE | Characteristic.WRITE,
            Characteristic.WRITEABLE,
            CharacteristicValue[bytes](write=self._on_write),
        )
        metawear = Service(mm.SERVICE_UUID, [command, self._data_char])
        return [metawear, *self._sig_services("MbientLab Inc", "5", "1.7.3", "0.4")]

    def on_disconnected(self) -> None:
        self.acc.reset_stream()
        self.gyro.reset_stream()
        self._plan = (False, False, False, False)

    def _on_write(self, _connection: Connection, value: bytes) -> None:
        cmd = mm.parse_command(value)
        if cmd is None:
            return
        self.commands.append(cmd)
        sensor = self.acc if getattr(cmd, "module", None) == mm.MODULE_ACC else self.gyro
        if isinstance(cmd, mm.SensorConfig):
            sensor.rate_hz, sensor.range_ = cmd.rate_hz, cmd.range_
        elif isinstance(cmd, mm.SensorPower):
            sensor.started = cmd.on
        elif isinstance(cmd, mm.SensorInterrupt):
            sensor.enabled = cmd.enable
        elif isinstance(cmd, mm.Subscribe):
            sensor.subscribed, sensor.packed = cmd.on, cmd.packed
        elif isinstance(cmd, mm.Haptic):
            self._haptic(cmd)
            return
        elif isinstance(cmd, mm.BatteryRead):
            pct = round(self.battery_percent())
            self.notify(
                self._data_characteristic(),
                mm.encode_battery(pct, round(self.battery_volts() * 1000)),
            )
            return
        self._update_stream()

    def _haptic(self, cmd: mm.Haptic) -> None:
        event = HapticEvent(self.clock.now_ns(), cmd.duty_percent, cmd.pulse_ms, cmd.buzzer)
        self.haptic_events.append(event)
        for listener in list(self._haptic_listeners):
            try:
                listener(self, event)
            except Exception:  # a faulty listener must not break the firmware
                logger.exception("haptic listener %r failed", listener)

    def _update_stream(self) -> None:
        active = self.acc.active or self.gyro.active
        plan = (self.acc.active, self.acc.packed, self.gyro.active, self.gyro.packed)
        if not active:
            self.stop_stream()
        elif plan != self._plan or not self.streaming:
            # what goes out changed: re-plan from the next sample on the grid
            self.stop_stream()
            self.set_rate(self.acc.rate_hz if self.acc.active else self.gyro.rate_hz)
            self.start_stream()
        self._plan = plan

    def _group_size(self) -> int:
        packed = (self.acc.active and self.acc.packed) or (self.gyro.active and self.gyro.packed)
        return mm.PACKED_SAMPLES if packed else 1

    def _frames(self, module: int, sensor: _Sensor, values: F64Array, m: int) -> list[list[bytes]]:
        lsb = (
            mm.acc_lsb_per_g(sensor.range_)
            if module == mm.MODULE_ACC
            else mm.gyro_lsb_per_dps(sensor.range_)
        )
        blob = mm.encode_sensor_frames(module, values, lsb, sensor.packed)
        size = 20 if sensor.packed else 8
        per_group = m if not sensor.packed else 1  # frames per group
        frames = [blob[i : i + size] for i in range(0, len(blob), size)]
        return [frames[i : i + per_group] for i in range(0, len(frames), per_group)]

    def _encode(
        self, accel_g: F64Array, gyro_dps: F64Array, t_ns: npt.NDArray[np.int64], m: int
    ) -> list[list[bytes]]:
        groups = accel_g.shape[0] // m
        out: list[list[bytes]] = [[] for _ in range(groups)]
        if self.acc.active:
            for g, frames in enumerate(self._frames(mm.MODULE_ACC, self.acc, accel_g, m)):
                out[g] += frames
        if self.gyro.active:
            for g, frames in enumerate(self._frames(mm.MODULE_GYRO, self.gyro, gyro_dps, m)):
                out[g] += frames
        return out

"""Simulated sensor firmwares (bumble GATT servers), one module per device type."""

from __future__ import annotations

from firmware_sim.devices.base import (
    ArraySource,
    DeviceStats,
    FaultPlan,
    SampleSource,
    SimulatedDevice,
    StreamRecord,
)
from firmware_sim.devices.metamotion import HapticEvent, MetaMotionDevice
from firmware_sim.devices.movesense import MovesenseDevice
from firmware_sim.devices.witmotion import WitMotionDevice

#: Device type name (as in ``collector.protocols.PROTOCOLS``) -> simulated firmware.
DEVICE_TYPES: dict[str, type[SimulatedDevice]] = {
    cls.kind: cls for cls in (WitMotionDevice, MovesenseDevice, MetaMotionDevice)
}

__all__ = [
    "DEVICE_TYPES",
    "ArraySource",
    "DeviceStats",
    "FaultPlan",
    "HapticEvent",
    "MetaMotionDevice",
    "MovesenseDevice",
    "SampleSource",
    "SimulatedDevice",
    "StreamRecord",
    "WitMotionDevice",
]

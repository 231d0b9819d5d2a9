"""Haptic patterns and the collector's nudge interface without a BLE link."""

from __future__ import annotations

import asyncio

import pytest

from collector.collector import Collector
from collector.errors import CollectorReason
from collector.haptics import (
    MOVE_NUDGE,
    PATTERN_GENTLE,
    PATTERN_STRONGER,
    Pulse,
    VibrationPattern,
)
from postmon import nudges
from postmon.config import SensorPairing


def test_the_nudge_delivery_plays_the_collector_patterns() -> None:
    # one pattern model: what the delivery picks is what the collector plays
    assert nudges.PATTERN_GENTLE is PATTERN_GENTLE
    assert nudges.PATTERN_STRONGER is PATTERN_STRONGER
    assert PATTERN_STRONGER.pulses == (
        Pulse(on_ms=400, off_ms=250, duty_percent=100.0),
        Pulse(on_ms=400, off_ms=250, duty_percent=100.0),
        Pulse(on_ms=400, off_ms=0, duty_percent=100.0),
    )
    assert PATTERN_STRONGER.duration_s == 1.7
    assert PATTERN_GENTLE.duration_s == 0.65
    assert MOVE_NUDGE.duration_s == 0.85


def test_patterns_are_validated() -> None:
    with pytest.raises(ValueError, match="on_ms"):
        Pulse(on_ms=0)
    with pytest.raises(ValueError, match="duty_percent"):
        Pulse(on_ms=100, duty_percent=120.0)
    with pytest.raises(ValueError, match=r"1\.\.8 pulses"):
        VibrationPattern(())


async def test_collector_reports_no_haptics_before_a_sensor_streams() -> None:
    collector = Collector(
        [
            SensorPairing("D4:00:00:00:00:01", "w01", device="metamotion"),
            SensorPairing("E8:00:00:00:00:02", "w02", device="witmotion"),
        ],
        lambda b: asyncio.sleep(0),
    )
    assert not collector.haptic_capable("w01")  # has a motor, but is not connected
    assert not collector.haptic_capable("w02")  # no motor
    assert not collector.haptic_capable("nobody")
    assert await collector.play("w01", PATTERN_GENTLE) is False
    assert await collector.play("nobody", PATTERN_GENTLE) is False
    res = await collector.haptic_for("w02").vibrate()
    assert (res.delivered, res.reason) == (False, CollectorReason.NO_MOTOR)
    res = await collector.haptic_for("w01").vibrate()
    assert (res.delivered, res.reason) == (False, CollectorReason.NOT_CONNECTED)


def test_pairing_an_address_twice_is_a_config_error() -> None:
    from collector.errors import CollectorError

    with pytest.raises(CollectorError, match="paired twice") as info:
        Collector(
            [SensorPairing("aa:bb", "w01"), SensorPairing("AA:BB", "w02")],
            lambda b: asyncio.sleep(0),
        )
    assert info.value.reason == CollectorReason.CONFIG_INVALID

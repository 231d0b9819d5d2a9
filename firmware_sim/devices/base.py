"""What every simulated sensor firmware shares.

- :class:`SampleSource`: where a device's samples come from (the wearer
  model implements it; :class:`ArraySource` serves fixed arrays in tests).
- :class:`FaultPlan`: injectable faults (dropped, corrupted or split
  notifications, forced disconnects, crystal drift, battery drain).
- :class:`SimulatedDevice`: a bumble GATT server with advertising, connection
  tracking, a sampling clock and a cheap streaming loop.

Time model (all in the air's :class:`~firmware_sim.clock.SimClock`, "true" time):

- A device boots at ``boot_ns``. Source sample ``j`` is the world at true
  time ``boot_ns + j / source.rate_hz``.
- The device samples on its own crystal: at output rate ``r`` and drift
  ``ppm`` its samples are ``period = 1 / (r · (1 + ppm·1e-6))`` apart, on a
  grid anchored at a source-grid instant (power-on, or the first source
  sample after an output-rate change). With no drift and ``r`` equal to the
  source rate, device sample ``k`` IS source sample ``anchor + k`` (exact);
  otherwise the source is linearly interpolated at the sample instants.
- The sensor keeps sampling while nobody listens; when a stream starts, the
  first sample sent is the next one on the grid.
- A notification carrying samples ``k..k+m-1`` is sent when sample ``k+m-1``
  has been taken (its true time), optionally delayed to the next connection
  event (``FaultPlan.conn_interval_ms``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from bumble import gatt
from bumble.core import AdvertisingData
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service

from collector.protocols.base import (
    BATTERY_LEVEL_UUID,
    BATTERY_SERVICE_UUID,
    DEVICE_INFORMATION_SERVICE_UUID,
    FIRMWARE_REVISION_UUID,
    HARDWARE_REVISION_UUID,
    MANUFACTURER_NAME_UUID,
    MODEL_NUMBER_UUID,
    SERIAL_NUMBER_UUID,
    DeviceProtocol,
)
from firmware_sim.ble import make_stack, send_notification
from firmware_sim.clock import NS_PER_S

if TYPE_CHECKING:
    from firmware_sim.ble import VirtualAir

F64Array = npt.NDArray[np.float64]


@runtime_checkable
class SampleSource(Protocol):
    """Samples of the world as the sensor would measure it (sensor frame).

    ``read(n)`` returns the next ``n`` samples, consecutive at ``rate_hz``:
    ``accel_g`` (n, 3) in g (gravity included) and ``gyro_dps`` (n, 3) in
    deg/s. Sample ``j`` is the world at ``device.boot_ns + j / rate_hz``.
    """

    @property
    def rate_hz(self) -> float: ...

    def read(self, n: int) -> tuple[F64Array, F64Array]: ...


class ArraySource:
    """A :class:`SampleSource` over fixed arrays (tests, replays).

    After the end it repeats the last sample (a sensor lying still) and
    counts the extra samples in ``overrun``.

    Parameters
    ----------
    accel_g, gyro_dps:
        (N, 3) acceleration in g and angular rate in deg/s.
    rate_hz:
        Sample rate of the arrays.
    """

    def __init__(self, accel_g: npt.ArrayLike, gyro_dps: npt.ArrayLike, rate_hz: float) -> None:
        self.accel_g = np.asarray(accel_g, dtype=np.float64)
        self.gyro_dps = np.asarray(gyro_dps, dtype=np.float64)
        n = self.accel_g.shape[0]
        if self.accel_g.shape != (n, 3) or self.gyro_dps.shape != (n, 3) or n == 0:
            raise ValueError(
                f"accel_g and gyro_dps must both be (N, 3) with N > 0, got "
                f"{self.accel_g.shape} and {self.gyro_dps.shape}"
            )
        if not rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
        self._rate_hz = float(rate_hz)
        self.position = 0
        self.overrun = 0

    @property
    def rate_hz(self) -> float:
        return self._rate_hz

    def read(self, n: int) -> tuple[F64Array, F64Array]:
        total = self.accel_g.shape[0]
        idx = np.minimum(np.arange(self.position, self.position + n), total - 1)
        self.overrun += max(0, self.position + n - max(self.position, total))
        self.position += n
        return self.accel_g[idx], self.gyro_dps[idx]


class SourceReader:
    """Values of a sequential :class:`SampleSource` at (fractional) source positions.

    Positions may repeat or go back as far as the last :meth:`commit`; the
    buffer before it is released. Integral positions return the source's
    samples exactly; others interpolate linearly between neighbours.
    """

    _SKIP_BLOCK = 65_536  # samples read and dropped at a time when skipping ahead

    def __init__(self, source: SampleSource) -> None:
        self.source = source
        self._base = 0  # source index of _acc[0]
        self._acc = np.zeros((0, 3))
        self._gyro = np.zeros((0, 3))

    def _ensure(self, last: int) -> None:
        have = self._base + self._acc.shape[0]
        if last < have:
            return
        n = last + 1 - have
        a, g = self.source.read(n)
        self._acc = np.concatenate([self._acc, np.asarray(a, dtype=np.float64).reshape(n, 3)])
        self._gyro = np.concatenate([self._gyro, np.asarray(g, dtype=np.float64).reshape(n, 3)])

    def commit(self, position: float) -> None:
        """Positions before ``position`` will not be asked for again."""
        first = math.floor(position)
        have = self._base + self._acc.shape[0]
        if first >= have:
            # skip unread samples in bounded blocks (a long disconnection)
            while have < first:
                n = min(self._SKIP_BLOCK, first - have)
                self.source.read(n)
                have += n
            self._base = first
            self._acc = np.zeros((0, 3))
            self._gyro = np.zeros((0, 3))
            return
        drop = first - self._base
        if drop > 0:
            self._acc = self._acc[drop:]
            self._gyro = self._gyro[drop:]
            self._base = first

    def values_at(self, positions: F64Array) -> tuple[F64Array, F64Array]:
        """(n, 3) accel (g) and gyro (deg/s) at non-negative, non-decreasing source positions."""
        if positions.shape[0] == 0:
            return np.zeros((0, 3)), np.zeros((0, 3))
        lo = np.floor(positions).astype(np.int64)
        if int(lo[0]) < self._base:
            raise ValueError(f"position {positions[0]} is before the committed {self._base}")
        frac = positions - lo
        exact = not bool(frac.any())
        self._ensure(int(lo[-1]) + (0 if exact else 1))
        i = lo - self._base
        if exact:
            return self._acc[i], self._gyro[i]
        w = frac[:, None]
        acc = self._acc[i] * (1 - w) + self._acc[np.minimum(i + 1, self._acc.shape[0] - 1)] * w
        gyro = self._gyro[i] * (1 - w) + self._gyro[np.minimum(i + 1, self._gyro.shape[0] - 1)] * w
        return acc, gyro


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Faults a simulated device injects (all off by default).

    Attributes
    ----------
    seed:
        Seed of the device's fault random generator (runs are reproducible).
    drop_prob:
        Probability that a data notification is never sent (lost on air).
    corrupt_prob:
        Probability that one byte of a data notification is flipped.
    split_prob:
        Probability that a data notification is sent as two notifications
        cut at a random byte (a byte-stream device's frames then straddle
        notifications; for message devices both halves are malformed).
    crystal_ppm:
        Drift of the device's crystal (+ = fast: more samples per true second).
    battery_pct, battery_drain_pct_per_h:
        Charge at power-on and its linear drain per hour of sensor time; at
        0 % the device powers off (drops the link, stops advertising).
    disconnect_at_s:
        Sensor-time offsets after boot at which the device drops the link
        (it keeps advertising; the collector should reconnect).
    conn_interval_ms:
        If > 0, notifications wait for the next connection event (events
        every ``conn_interval_ms`` from the connection's start), as on air.
    reboot_at_s:
        Sensor-time offsets after power-on at which the firmware restarts:
        the link drops, the device is silent for ``reboot_downtime_s``, then
        boots again with its clock (device timestamps) back at zero. The
        wearer's world goes on meanwhile.
    clock_jumps:
        ``(at_s, jump_s)`` pairs: from ``at_s`` after power-on the device
        clock (device timestamps) reads ``jump_s`` more (+ forward, − back),
        without a restart (a firmware time-base fault).
    """

    seed: int = 0
    drop_prob: float = 0.0
    corrupt_prob: float = 0.0
    split_prob: float = 0.0
    crystal_ppm: float = 0.0
    battery_pct: float = 100.0
    battery_drain_pct_per_h: float = 0.0
    disconnect_at_s: tuple[float, ...] = ()
    conn_interval_ms: float = 0.0
    reboot_at_s: tuple[float, ...] = ()
    reboot_downtime_s: float = 2.0
    clock_jumps: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if self.reboot_downtime_s < 0:
            raise ValueError("reboot_downtime_s must be >= 0")
        for name in ("drop_prob", "corrupt_prob", "split_prob"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if not 0.0 <= self.battery_pct <= 100.0:
            raise ValueError(f"battery_pct must be in [0, 100], got {self.battery_pct}")
        if self.battery_drain_pct_per_h < 0 or self.conn_interval_ms < 0:
            raise ValueError("battery_drain_pct_per_h and conn_interval_ms must be >= 0")


@dataclass(slots=True)
class DeviceStats:
    """What a simulated device did (live counters)."""

    notifications_sent: int = 0
    notifications_dropped: int = 0
    notifications_corrupted: int = 0
    notifications_split: int = 0
    bytes_sent: int = 0
    samples_sent: int = 0  # samples whose notifications were all sent (corrupted included)
    samples_dropped: int = 0  # samples in a group with a dropped notification
    connections: int = 0
    disconnects_forced: int = 0
    reboots: int = 0
    streams_started: int = 0


@dataclass(slots=True)
class StreamRecord:
    """Ground truth of one stream (from start to stop).

    Sample ``k`` of the device grid is at true time
    ``anchor_ns + k * period_ns`` and source position ``anchor_pos + k * pos_step``.
    The stream sent grid samples ``first_k`` .. ``first_k + samples_emitted - 1``
    (emitted = sent or dropped by a fault).
    """

    rate_hz: float
    anchor_ns: int
    anchor_pos: float
    period_ns: float
    pos_step: float
    first_k: int
    start_ns: int
    samples_emitted: int = 0
    stop_ns: int | None = None
    next_k: int = field(default=0, repr=False)

    def sample_times_ns(self) -> npt.NDArray[np.int64]:
        """(samples_emitted,) true time of every sample the stream emitted."""
        k = self.first_k + np.arange(self.samples_emitted)
        return self.anchor_ns + np.rint(k * self.period_ns).astype(np.int64)

    def source_positions(self) -> F64Array:
        """(samples_emitted,) source position of every sample the stream emitted."""
        k = self.first_k + np.arange(self.samples_emitted, dtype=np.float64)
        return np.asarray(self.anchor_pos + k * self.pos_step, dtype=np.float64)


class SimulatedDevice:
    """Base of the simulated firmwares: GATT server, advertising, streaming, faults.

    Subclasses set the class attributes, build their GATT services and
    implement :meth:`_group_size` and :meth:`_encode`.
    """

    kind: ClassVar[str]
    protocol: ClassVar[DeviceProtocol]
    address_prefix: ClassVar[int] = 0xC0

    def __init__(
        self,
        air: VirtualAir,
        source: SampleSource,
        *,
        address: str,
        name: str | None = None,
        faults: FaultPlan | None = None,
    ) -> None:
        self.air = air
        self.clock = air.clock
        self.source = source
        self.address = address
        self.name = name or self.default_name(address)
        self.faults = faults or FaultPlan()
        self.stats = DeviceStats()
        self.streams: list[StreamRecord] = []
        self.boot_ns = 0
        #: zero of the device clock: power-on, or the last reboot (``FaultPlan.reboot_at_s``)
        self.clock_origin_ns = 0
        self.powered = False
        self.stack: Device = make_stack(air.link, self.name, address, air.config.fast_path)
        self.connection: Connection | None = None
        self._conn_start_ns = 0
        self._reader = SourceReader(source)
        self._rng = np.random.default_rng(self.faults.seed)
        self._stream: StreamRecord | None = None
        self._stream_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._rate_hz = 0.0
        self._anchor_ns = 0
        self._anchor_pos = 0.0
        self._data_char: Characteristic[bytes] | None = None
        self._battery_char: Characteristic[bytes] | None = None

    # -- identity -----------------------------------------------------------

    @classmethod
    def default_name(cls, address: str) -> str:
        return cls.protocol.vendor_model

    def advertising_data(self) -> bytes:
        ads: list[tuple[int, bytes]] = [
            (AdvertisingData.FLAGS, bytes([0x06])),  # LE general discoverable, no BR/EDR
        ]
        uuids = self.protocol.advertised_service_uuids
        if uuids:
            blob = b"".join(gatt.UUID(u).to_bytes() for u in uuids)
            ads.append((AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS, blob))
        ads.append((AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode()))
        return bytes(AdvertisingData(ads))

    # -- GATT ---------------------------------------------------------------

    def build_services(self) -> list[Service]:
        """The device's GATT services (subclasses extend)."""
        return []

    def _sig_services(
        self, manufacturer: str, model: str, firmware: str, hardware: str
    ) -> list[Service]:
        """Device Information and Battery services, for devices documented to have them."""
        services = []
        if DEVICE_INFORMATION_SERVICE_UUID in self.protocol.sig_services:
            serial = self.address.replace(":", "")
            chars = [
                (MANUFACTURER_NAME_UUID, manufacturer),
                (MODEL_NUMBER_UUID, model),
                (SERIAL_NUMBER_UUID, serial),
                (FIRMWARE_REVISION_UUID, firmware),
                (HARDWARE_REVISION_UUID, hardware),
            ]
            services.append(
                Service(
                    DEVICE_INFORMATION_SERVICE_UUID,
                    [
                        Characteristic(u, Characteristic.READ, Characteristic.READABLE, v.encode())
                        for u, v in chars
                    ],
                )
            )
        if BATTERY_SERVICE_UUID in self.protocol.sig_services:
            self._battery_char = Characteristic(
                BATTERY_LEVEL_UUID,
                Characteristic.READ | Characteristic.NOTIFY,
                Characteristic.READABLE,
                CharacteristicValue(read=lambda _conn: bytes([round(self.battery_percent())])),
            )
            services.append(Service(BATTERY_SERVICE_UUID, [self._battery_char]))
        return services

    def subscribed(self, char: Characteristic[Any]) -> bool:
        """Whether the connected central enabled notifications on ``char``."""
        conn = self.connection
        if conn is None:
            return False
        cccd = self.stack.gatt_server.subscribers.get(conn, {}).get(char.handle)
        return cccd is not None and len(cccd) > 0 and bool(cccd[0] & 0x01)

    def notify(self, char: Characteristic[Any], payload: bytes) -> bool:
        """Send one notification now if the central subscribed; True if sent."""
        conn = self.connection
        if conn is None or not self.subscribed(char):
            return False
        send_notification(self.stack, conn.handle, char.handle, payload[: conn.att_mtu - 3])
        self.stats.notifications_sent += 1
        self.stats.bytes_sent += len(payload)
        return True

    # -- power & connections ---------------------------------------------------

    async def power_on(self) -> None:
        for service in self.build_services():
            self.stack.add_service(service)
        self.stack.on(self.stack.EVENT_CONNECTION, self._on_connection)
        await self.stack.power_on()
        self.powered = True
        self.boot_ns = self.clock_origin_ns = self.clock.now_ns()
        self._anchor_ns, self._anchor_pos = self.boot_ns, 0.0
        await self._advertise()
        for t_s in self.faults.disconnect_at_s:
            self._spawn(self._disconnect_at(self.boot_ns + round(t_s * NS_PER_S)))
        for t_s in self.faults.reboot_at_s:
            self._spawn(self._reboot_at(self.boot_ns + round(t_s * NS_PER_S)))
        if self.faults.battery_drain_pct_per_h > 0:
            hours = self.faults.battery_pct / self.faults.battery_drain_pct_per_h
            self._spawn(self._die_at(self.boot_ns + round(hours * 3600 * NS_PER_S)))

    async def power_off(self) -> None:
        """Drop the link, stop advertising and every task (a dead battery, a switch)."""
        if not self.powered:
            return
        self.powered = False
        self.stop_stream()
        for task in list(self._tasks):
            task.cancel()
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.disconnect()
        with contextlib.suppress(Exception):
            await self.stack.stop_advertising()

    async def _advertise(self) -> None:
        await self.stack.start_advertising(
            advertising_data=self.advertising_data(),
            advertising_interval_min=self.air.config.advertising_interval_ms,
            advertising_interval_max=self.air.config.advertising_interval_ms,
        )

    def _on_connection(self, connection: Connection) -> None:
        self.connection = connection
        self._conn_start_ns = self.clock.now_ns()
        self.stats.connections += 1
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        self.on_connected(connection)

    def _on_disconnection(self, _reason: int) -> None:
        self.connection = None
        self.stop_stream()
        self.on_disconnected()
        if self.powered:
            self._spawn(self._advertise())

    def on_connected(self, connection: Connection) -> None:
        """Hook for subclasses."""

    def on_disconnected(self) -> None:
        """Hook for subclasses (e.g. Movesense drops its subscriptions)."""

    async def force_disconnect(self) -> None:
        """Drop the link from the device side (a fault)."""
        conn = self.connection
        if conn is None:
            return
        self.stats.disconnects_forced += 1
        with contextlib.suppress(Exception):
            await conn.disconnect()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _disconnect_at(self, t_ns: int) -> None:
        await self.clock.sleep_until(t_ns)
        await self.force_disconnect()

    async def _reboot_at(self, t_ns: int) -> None:
        await self.clock.sleep_until(t_ns)
        await self.reboot(self.faults.reboot_downtime_s)

    async def reboot(self, downtime_s: float) -> None:
        """Restart the firmware: drop the link, stay silent ``downtime_s``, boot again.

        The device clock restarts at zero and the sampling grid at the next
        source sample; the source (the wearer's world) does not restart.
        """
        if not self.powered:
            return
        self.stats.reboots += 1
        self.powered = False  # no re-advertising on the disconnection below
        self.stop_stream()
        conn = self.connection
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.disconnect()
        with contextlib.suppress(Exception):
            await self.stack.stop_advertising()
        await self.clock.sleep(downtime_s)
        self.powered = True
        self.clock_origin_ns = self.clock.now_ns()
        self._reanchor()
        await self._advertise()

    def device_clock_ms(self, t_ns: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """(N,) int64 device clock (ms since its origin, on the drifting crystal,
        with ``FaultPlan.clock_jumps``) at true times ``t_ns``."""
        ms = np.floor(
            (t_ns - self.clock_origin_ns) * (1.0 + self.faults.crystal_ppm * 1e-6) / 1e6
        ).astype(np.int64)
        for at_s, jump_s in self.faults.clock_jumps:
            ms += np.where(t_ns >= self.boot_ns + round(at_s * NS_PER_S), round(jump_s * 1e3), 0)
        return ms

    async def _die_at(self, t_ns: int) -> None:
        await self.clock.sleep_until(t_ns)
        await self.power_off()

    def battery_percent(self) -> float:
        """Charge now (linear drain in sensor time), 0..100."""
        hours = (self.clock.now_ns() - self.boot_ns) / NS_PER_S / 3600
        return max(0.0, self.faults.battery_pct - hours * self.faults.battery_drain_pct_per_h)

    def battery_volts(self) -> float:
        """A Li-Po cell's voltage for the charge now (3.3 V empty .. 4.2 V full, linear)."""
        return 3.3 + 0.9 * self.battery_percent() / 100.0

    # -- sampling clock & streaming -------------------------------------------

    @property
    def rate_hz(self) -> float:
        """Configured output data rate (Hz)."""
        return self._rate_hz

    def set_rate(self, rate_hz: float) -> None:
        """Change the output rate; the sampling grid restarts at the next source sample."""
        if rate_hz == self._rate_hz:
            return
        self._rate_hz = float(rate_hz)
        if not self.powered:
            return
        self._reanchor()
        if self._stream is not None:  # re-plan the running stream on the new grid
            self.stop_stream()
            self.start_stream()

    def _reanchor(self) -> None:
        """Restart the sampling grid at the next source sample."""
        src_rate = self.source.rate_hz
        pos0 = math.ceil((self.clock.now_ns() - self.boot_ns) * src_rate / NS_PER_S - 1e-9)
        self._anchor_pos = float(pos0)
        self._anchor_ns = self.boot_ns + round(pos0 * NS_PER_S / src_rate)

    @property
    def streaming(self) -> bool:
        return self._stream is not None

    def start_stream(self) -> None:
        """Start sending samples (idempotent)."""
        if self._stream is not None or not self.powered or self._rate_hz <= 0:
            return
        eff = self._rate_hz * (1.0 + self.faults.crystal_ppm * 1e-6)
        period_ns = NS_PER_S / eff
        now = self.clock.now_ns()
        first_k = max(0, math.ceil((now - self._anchor_ns) / period_ns - 1e-9))
        rec = StreamRecord(
            rate_hz=self._rate_hz,
            anchor_ns=self._anchor_ns,
            anchor_pos=self._anchor_pos,
            period_ns=period_ns,
            pos_step=self.source.rate_hz / eff,
            first_k=first_k,
            start_ns=now,
            next_k=first_k,
        )
        self._reader.commit(rec.anchor_pos + first_k * rec.pos_step)
        self._stream = rec
        self.streams.append(rec)
        self.stats.streams_started += 1
        self._stream_task = self._spawn(self._run_stream(rec))

    def stop_stream(self) -> None:
        rec, self._stream = self._stream, None
        if rec is not None:
            rec.stop_ns = self.clock.now_ns()
        if self._stream_task is not None:
            self._stream_task.cancel()
            self._stream_task = None

    def _group_size(self) -> int:
        """Samples per emission (all notifications of a group go out together)."""
        raise NotImplementedError

    def _encode(
        self, accel_g: F64Array, gyro_dps: F64Array, t_ns: npt.NDArray[np.int64], m: int
    ) -> list[list[bytes]]:
        """Encode n = groups·m samples into, per group, the notifications to send."""
        raise NotImplementedError

    def _data_characteristic(self) -> Characteristic[Any]:
        assert self._data_char is not None
        return self._data_char

    async def _run_stream(self, rec: StreamRecord) -> None:
        clock = self.clock
        ci_ns = self.faults.conn_interval_ms * 1e6
        char = self._data_characteristic()
        # sensor seconds encoded per step: amortises numpy calls over many notifications
        batch_s = self.air.config.device_batch_s
        while self._stream is rec:
            m = self._group_size()
            if m <= 0:  # nothing fits (e.g. waiting for an MTU exchange)
                await clock.sleep(0.01)
                continue
            groups = max(1, math.ceil(batch_s * rec.rate_hz / m))
            k = rec.next_k + np.arange(groups * m, dtype=np.float64)
            t_ns = rec.anchor_ns + np.rint(k * rec.period_ns).astype(np.int64)
            positions = np.asarray(rec.anchor_pos + k * rec.pos_step, dtype=np.float64)
            acc, gyro = self._reader.values_at(positions)
            payloads = self._encode(acc, gyro, t_ns, m)
            emit = t_ns[m - 1 :: m]
            if ci_ns > 0:
                c0 = self._conn_start_ns
                emit = c0 + (np.ceil((emit - c0) / ci_ns) * ci_ns).astype(np.int64)
            for g in range(groups):
                t_emit = int(emit[g])
                if t_emit > clock.now_ns():  # groups due at one connection event go out together
                    await clock.sleep_until(t_emit)
                    if self._stream is not rec:
                        return
                outcome = [self._send_data(char, payload) for payload in payloads[g]]
                if "dropped" in outcome:
                    self.stats.samples_dropped += m
                elif all(o == "sent" for o in outcome):
                    self.stats.samples_sent += m
                rec.next_k += m
                rec.samples_emitted += m
            self._reader.commit(rec.anchor_pos + rec.next_k * rec.pos_step)

    def _send_data(self, char: Characteristic[Any], payload: bytes) -> str:
        """Send a data notification through the fault injector: "sent", "dropped" or "unsent"."""
        f = self.faults
        if f.drop_prob or f.corrupt_prob or f.split_prob:
            rng = self._rng
            if f.drop_prob and rng.random() < f.drop_prob:
                self.stats.notifications_dropped += 1
                return "dropped"
            if f.corrupt_prob and rng.random() < f.corrupt_prob and payload:
                buf = bytearray(payload)
                buf[int(rng.integers(len(buf)))] ^= int(rng.integers(1, 256))
                payload = bytes(buf)
                self.stats.notifications_corrupted += 1
            if f.split_prob and len(payload) > 1 and rng.random() < f.split_prob:
                cut = int(rng.integers(1, len(payload)))
                self.stats.notifications_split += 1
                if self.notify(char, payload[:cut]) and self.notify(char, payload[cut:]):
                    return "sent"
                return "unsent"
        return "sent" if self.notify(char, payload) else "unsent"

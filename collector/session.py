"""One BLE session per sensor: find, connect, start, stream, watch, reconnect, stop.

The GATT I/O is thin and goes through the unmodified ``bleak.BleakClient``
(with bleak's platform backend for real sensors, or any ``backend=`` class,
e.g. the simulator's); everything about bytes lives in
``collector.protocols`` and everything about time in ``collector.timing``.

The notification callback does nothing but put ``(arrival_ns, bytes)`` on an
``asyncio.Queue`` (as bleak's own examples do); a consumer loop wakes every
``tick_s``, decodes everything queued in one vectorised call, and hands
finished ``SampleBatch``es to the sink. A disconnect, a silent sensor (the
watchdog) or a refused start sequence ends the connection; the session then
reconnects with exponential backoff and jitter and resumes the stream, and
the gap is measured by the stream's timestamper.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.exc import BleakError
from bleak_retry_connector import establish_connection

from analysis.contracts import SampleBatch
from collector.config import CollectorConfig
from collector.discovery import Discovery, Sighting
from collector.errors import CollectorError, CollectorReason
from collector.haptics import MOVE_NUDGE, HapticResult, VibrationPattern
from collector.protocols import DeviceProtocol, Message, StreamDecoder, detect, get_protocol
from collector.protocols import metamotion as mm
from collector.protocols import movesense as ms
from collector.protocols import witmotion as wm
from collector.protocols.base import BATTERY_LEVEL_UUID, BATTERY_SERVICE_UUID
from collector.stream import StreamAssembler
from collector.timing import SYSTEM_CLOCK, Clock, hold, wait_for

log = logging.getLogger(__name__)

BatchSink = Callable[[SampleBatch], Awaitable[None]]

#: Errors of the link (not of our code): they end a connection and trigger a reconnect.
LINK_ERRORS: tuple[type[BaseException], ...] = (BleakError, TimeoutError, OSError, EOFError)

#: Ticks with samples of one sensor left waiting before the pairing is redone. A tick
#: can end between the two frames of one instant (then 3 good samples are dropped and
#: counted as lost), but waiting longer would pass on mis-paired samples: worse.
_REPAIR_AFTER_TICKS = 1

#: Movesense subscription reference (any 1..255; the vendor's sample uses 0x63).
MOVESENSE_REF = 0x63


class SessionState(enum.Enum):
    IDLE = "idle"
    SCANNING = "scanning"
    CONNECTING = "connecting"
    STARTING = "starting"
    STREAMING = "streaming"
    BACKOFF = "backoff"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class SessionStatus:
    """A snapshot of one sensor session (for logs and the ``device`` measurement).

    Counters are cumulative since the session started; ``rate_hz`` is the
    rate of samples actually received over the last ``status_interval_s``.
    """

    sensor_id: str
    wearer_id: str
    site: str
    device_type: str  # protocol kind, or "unknown" before detection
    state: SessionState
    connected: bool
    time_ns: int  # clock time of this snapshot (UTC ns)
    nominal_rate_hz: float
    rate_hz: float
    notifications: int
    bytes_received: int
    samples: int  # samples emitted in batches
    batches: int
    frames_corrupt: int
    frames_unknown: int
    bytes_skipped: int
    gaps: int
    lost_samples: int
    device_restarts: int
    connects: int
    reconnects: int
    connect_failures: int
    watchdog_trips: int
    repairs: int  # two-sensor streams re-paired after a lost frame (MetaMotion)
    sink_errors: int
    batches_dropped: int  # sink failed for longer than max_unsent_batches
    battery_pct: float | None
    battery_v: float | None
    queue_depth: int
    last_error: str

    def device_fields(self) -> dict[str, float | int | bool]:
        """Fields of the ``device`` measurement (postmon.store.schema.DEVICE)."""
        fields: dict[str, float | int | bool] = {
            "connected": self.connected,
            "lost_samples": self.lost_samples,
            "gaps": self.gaps,
            "rate_hz": round(self.rate_hz, 3),
            "reconnects": self.reconnects,
        }
        if self.battery_pct is not None:
            fields["battery_pct"] = float(self.battery_pct)
        return fields


@dataclass(frozen=True, slots=True)
class DevicePlan:
    """How one device type is started, stopped and asked for its battery."""

    decoder_kwargs: dict[str, Any]
    before_notify: tuple[bytes, ...]  # writes before enabling notifications
    after_notify: tuple[bytes, ...]  # writes after (the device answers on the notify char)
    stop: tuple[bytes, ...]
    battery_query: bytes | None  # a command whose answer comes as a notification
    rate_hz: float


def device_plan(proto: DeviceProtocol, cfg: CollectorConfig) -> DevicePlan:
    """The start/stop sequence of ``proto`` for the configured rate and ranges."""
    rate = proto.nearest_rate_hz(cfg.rate_hz)
    if proto.kind == wm.KIND:
        # Rate first, then notifications: streaming starts when they are enabled,
        # so no frame arrives at the power-up rate. Every write is awaited
        # (the vendor's example forgets to, and its unlock/save never happen).
        return DevicePlan(
            {}, wm.start_commands(rate), (), (), wm.cmd_read_register(wm.REG_BATTERY), rate
        )
    if proto.kind == ms.KIND:
        return DevicePlan(
            {"data_refs": (MOVESENSE_REF,)},
            (),
            ms.start_commands(int(rate), ref=MOVESENSE_REF),
            (ms.cmd_unsubscribe(MOVESENSE_REF),),
            None,
            rate,
        )
    if proto.kind == mm.KIND:
        return DevicePlan(
            {"acc_range_g": cfg.acc_range_g, "gyro_range_dps": cfg.gyro_range_dps, "gyro": True},
            (),
            mm.start_commands(rate, cfg.acc_range_g, cfg.gyro_range_dps, packed=True),
            mm.stop_commands(packed=True),
            mm.cmd_battery_read(),
            rate,
        )
    raise CollectorError(
        f"no start sequence for device type {proto.kind!r}", CollectorReason.UNKNOWN_DEVICE_TYPE
    )


def _battery_pct_from_volts(volts: float) -> float:
    """Rough charge of a single-cell LiPo from its voltage (3.5 V empty, 4.2 V full).

    WitMotion reports only the voltage; a linear map is crude under load but
    enough for "charge it tonight".
    """
    return max(0.0, min(100.0, (volts - 3.5) / (4.2 - 3.5) * 100.0))


class SensorSession:
    """Streams one paired sensor until stopped; also its ``HapticSink``.

    Parameters
    ----------
    address:
        The sensor's BLE address (or platform identifier).
    wearer_id, site:
        Who wears it, where (pseudonym; copied into batches and status).
    device:
        Device type name, or ``"auto"`` to detect it from the advertisement
        and, failing that, from the GATT services.
    sink:
        Awaited with every finished batch, in order.
    config:
        Collector settings.
    discovery:
        The shared scanner.
    clock:
        Time source for data timestamps, timeouts, backoff and the watchdog.
    backend:
        ``bleak.BleakClient(..., backend=...)`` class; None = bleak's platform backend.
    """

    def __init__(
        self,
        address: str,
        wearer_id: str,
        sink: BatchSink,
        *,
        site: str = "default",
        device: str = "auto",
        config: CollectorConfig | None = None,
        discovery: Discovery | None = None,
        clock: Clock = SYSTEM_CLOCK,
        backend: type[Any] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.address = address
        self.wearer_id = wearer_id
        self.site = site
        self.cfg = config or CollectorConfig()
        self._sink = sink
        self._discovery = discovery or Discovery()
        self._clock = clock
        self._backend = backend
        self._rng = rng or random.Random()
        self._proto: DeviceProtocol | None = get_protocol(device) if device != "auto" else None
        self._plan: DevicePlan | None = None
        self._decoder: StreamDecoder | None = None
        self._asm: StreamAssembler | None = None
        self._client: BleakClient | None = None
        self._queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        self._stop = asyncio.Event()
        self._disconnected = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._unsent: deque[SampleBatch] = deque()
        self._state = SessionState.IDLE
        self._connects = 0
        self._connect_failures = 0
        self._watchdog_trips = 0
        self._sink_errors = 0
        self._batches_dropped = 0
        self._battery_pct: float | None = None
        self._battery_v: float | None = None
        self._last_error = ""
        self._rate_window: deque[tuple[float, int]] = deque()
        self._movesense_status: int | None = None
        self._pending_ticks = 0
        self._repairs = 0
        self._clock_breaks = 0

    # ------------------------------------------------------------ public API

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def device_type(self) -> str:
        return self._proto.kind if self._proto else "unknown"

    @property
    def can_vibrate(self) -> bool:
        return bool(self._proto and self._proto.has_haptic)

    def request_stop(self) -> None:
        """Ask :meth:`run` to stop the sensor and disconnect (returns at once)."""
        self._stop.set()

    def status(self) -> SessionStatus:
        """A consistent snapshot of this session's counters."""
        st = self._decoder.stats if self._decoder else None
        counts = self._asm.counts if self._asm else None
        return SessionStatus(
            sensor_id=self.address,
            wearer_id=self.wearer_id,
            site=self.site,
            device_type=self.device_type,
            state=self._state,
            connected=self._state in (SessionState.STARTING, SessionState.STREAMING),
            time_ns=self._clock.now_ns(),
            nominal_rate_hz=self._plan.rate_hz if self._plan else self.cfg.rate_hz,
            rate_hz=self._measured_rate(),
            notifications=st.notifications if st else 0,
            bytes_received=st.bytes_in if st else 0,
            samples=counts.samples if counts else 0,
            batches=counts.batches if counts else 0,
            frames_corrupt=st.frames_corrupt if st else 0,
            frames_unknown=st.frames_unknown if st else 0,
            bytes_skipped=st.bytes_skipped if st else 0,
            gaps=counts.gaps if counts else 0,
            lost_samples=counts.lost_samples if counts else 0,
            device_restarts=counts.restarts if counts else 0,
            connects=self._connects,
            reconnects=max(0, self._connects - 1),
            connect_failures=self._connect_failures,
            watchdog_trips=self._watchdog_trips,
            repairs=self._repairs,
            sink_errors=self._sink_errors,
            batches_dropped=self._batches_dropped,
            battery_pct=self._battery_pct,
            battery_v=self._battery_v,
            queue_depth=self._queue.qsize(),
            last_error=self._last_error,
        )

    async def vibrate(self, pattern: VibrationPattern = MOVE_NUDGE) -> HapticResult:
        """Play ``pattern`` on the sensor's motor (``HapticSink``); never raises for the link."""
        if self._proto is not None and not self._proto.has_haptic:
            return HapticResult(
                False,
                self.address,
                CollectorReason.NO_MOTOR,
                f"{self._proto.vendor_model} has no vibration motor",
            )
        client = self._client
        if self._proto is None or client is None or self._state != SessionState.STREAMING:
            return HapticResult(
                False, self.address, CollectorReason.NOT_CONNECTED, "sensor not connected now"
            )
        sent = 0
        try:
            for pulse in pattern.pulses:
                cmd = mm.cmd_haptic(pulse.duty_percent, pulse.on_ms)
                await self._write(client, cmd)
                sent += 1
                await self._clock.sleep((pulse.on_ms + pulse.off_ms) / 1000.0)
        except LINK_ERRORS as exc:
            return HapticResult(
                False, self.address, CollectorReason.WRITE_FAILED, _describe(exc), sent
            )
        log.info("%s: vibrated %r (%d pulses)", self.address, pattern.name, sent)
        return HapticResult(True, self.address, None, pattern.name, sent)

    async def run(self) -> None:
        """Stream until :meth:`request_stop`; reconnect after every failure."""
        failures = 0
        try:
            while not self._stop.is_set():
                streamed = False
                try:
                    streamed = await self._connect_and_stream()
                except CollectorError as exc:
                    self._last_error = str(exc).splitlines()[0]
                    log.warning("%s: %s", self.address, exc)
                    if exc.reason == CollectorReason.UNKNOWN_DEVICE_TYPE:
                        raise
                except LINK_ERRORS as exc:
                    self._last_error = _describe(exc)
                    log.warning("%s: link error: %s", self.address, self._last_error)
                if self._stop.is_set():
                    break
                failures = 0 if streamed else failures + 1
                delay = self._backoff_s(failures)
                self._state = SessionState.BACKOFF
                log.info("%s: reconnecting in %.2f s", self.address, delay)
                with contextlib.suppress(TimeoutError):
                    await wait_for(self._stop.wait(), delay, self._clock)
        finally:
            self._state = SessionState.STOPPED

    # -------------------------------------------------------------- internals

    def _backoff_s(self, failures: int) -> float:
        base = min(self.cfg.backoff_max_s, self.cfg.backoff_initial_s * 2.0**failures)
        jitter = self.cfg.backoff_jitter
        return base * (1.0 + self._rng.uniform(-jitter, jitter))

    def _measured_rate(self) -> float:
        w = self._rate_window
        if len(w) < 2 or w[-1][0] <= w[0][0]:
            return 0.0
        return (w[-1][1] - w[0][1]) / (w[-1][0] - w[0][0])

    def _note_rate(self, samples: int) -> None:
        now = self._clock.monotonic()
        w = self._rate_window
        w.append((now, samples))
        while len(w) > 2 and now - w[1][0] >= self.cfg.status_interval_s:
            w.popleft()

    def _on_notify(self, _char: BleakGATTCharacteristic, data: bytearray) -> None:
        # only enqueue: decoding here would stall the BLE event handling
        self._queue.put_nowait((self._clock.now_ns(), bytes(data)))

    def _on_disconnect(self, _client: BleakClient) -> None:
        self._disconnected.set()

    async def _write(self, client: BleakClient, data: bytes) -> None:
        assert self._proto is not None
        async with self._write_lock:
            # GATT operations run on the radio's (host's) clock
            await asyncio.wait_for(
                client.write_gatt_char(
                    self._proto.write_uuid, data, response=self._proto.write_with_response
                ),
                self.cfg.write_timeout_s,
            )

    def _resolve_protocol(
        self, seen: Sighting | None, client: BleakClient | None
    ) -> DeviceProtocol:
        if self._proto is not None:
            return self._proto
        if seen is not None:
            proto = detect(seen.name, seen.service_uuids)
            if proto is not None:
                return proto
        if client is not None and client.services is not None:
            have = {s.uuid.lower() for s in client.services}
            for kind in ("metamotion", "movesense", "witmotion"):
                proto = get_protocol(kind)
                if proto.service_uuid in have:
                    return proto
        raise CollectorError(
            f"sensor {self.address}: cannot tell its type from advertisement or services",
            CollectorReason.UNKNOWN_DEVICE_TYPE,
            hint='set device = "witmotion" | "movesense" | "metamotion" in its [[sensors]] row',
        )

    def _setup_stream(self, proto: DeviceProtocol) -> None:
        """Decoder and assembler, once per session (they outlive reconnects)."""
        if self._asm is not None and self._proto is proto:
            return
        plan = device_plan(proto, self.cfg)
        self._proto, self._plan = proto, plan
        self._decoder = proto.make_decoder(**plan.decoder_kwargs)
        self._asm = StreamAssembler(
            sensor_id=self.address,
            wearer_id=self.wearer_id,
            rate_hz=plan.rate_hz,
            has_gyro=proto.has_gyro,
            device_timestamps=proto.has_device_timestamps,
            batch_s=self.cfg.batch_s,
            timing=self.cfg.timing,
        )
        if plan.rate_hz != self.cfg.rate_hz:
            log.info(
                "%s: %s streams at %g Hz (nearest to the requested %g Hz)",
                self.address,
                proto.kind,
                plan.rate_hz,
                self.cfg.rate_hz,
            )

    async def _connect_and_stream(self) -> bool:
        """One connection: returns whether data flowed (for the backoff)."""
        client: BleakClient | None = None
        try:
            # scan, connect and start run on the radio's clock; a simulation
            # holds sensor time meanwhile (no effect on real sensors)
            async with hold(self._clock):
                seen, client = await self._connect()
                proto = self._resolve_protocol(seen, client)
                self._setup_stream(proto)
                await self._start(client)
            return await self._stream(client)
        finally:
            self._client = None
            if client is not None:
                async with hold(self._clock):
                    await self._finish(client)

    async def _connect(self) -> tuple[Sighting, BleakClient]:
        self._state = SessionState.SCANNING
        seen = await self._discovery.find(self.address, self.cfg.scan_timeout_s)
        self._state = SessionState.CONNECTING
        self._disconnected.clear()
        kwargs: dict[str, Any] = {}
        if self._backend is not None:
            kwargs["backend"] = self._backend
        try:
            client = await establish_connection(
                BleakClient,
                seen.device,
                f"{self.wearer_id}@{self.address}",
                disconnected_callback=self._on_disconnect,
                max_attempts=self.cfg.connect_attempts,
                **kwargs,
            )
        except LINK_ERRORS as exc:
            self._connect_failures += 1
            raise CollectorError(
                f"cannot connect to {self.address}: {_describe(exc)}",
                CollectorReason.CONNECT_FAILED,
            ) from exc
        self._connects += 1
        return seen, client

    async def _start(self, client: BleakClient) -> None:
        """The device's start sequence, every write awaited; then a battery reading."""
        proto, plan, decoder = self._proto, self._plan, self._decoder
        assert proto is not None
        assert plan is not None
        assert decoder is not None
        self._state = SessionState.STARTING
        decoder.reset()  # bytes of a frame cut by the last disconnect are not data
        self._movesense_status = None
        for cmd in plan.before_notify:
            await self._write(client, cmd)
        await asyncio.wait_for(
            client.start_notify(proto.notify_uuid, self._on_notify), self.cfg.write_timeout_s
        )
        for cmd in plan.after_notify:
            await self._write(client, cmd)
        self._client = client
        self._state = SessionState.STREAMING
        log.info(
            "%s: streaming %s at %g Hz for %s (connection %d)",
            self.address,
            proto.kind,
            plan.rate_hz,
            self.wearer_id,
            self._connects,
        )
        await self._read_battery(client)

    async def _stream(self, client: BleakClient) -> bool:
        decoder, asm = self._decoder, self._asm
        assert decoder is not None
        assert asm is not None
        last_data = self._clock.monotonic()
        next_battery = last_data + self.cfg.battery_interval_s
        streamed = False
        try:
            while True:
                stop = await self._wait_tick()
                got = self._drain()
                now = self._clock.monotonic()
                if got:
                    last_data = now
                    streamed = True
                await self._emit(asm.release(self._clock.now_ns()))
                self._note_rate(decoder.stats.samples)
                if stop or self._disconnected.is_set():
                    if self._disconnected.is_set():
                        log.warning("%s: disconnected", self.address)
                    return streamed
                if now - last_data > self.cfg.watchdog_s:
                    self._watchdog_trips += 1
                    raise CollectorError(
                        f"{self.address}: no data for {now - last_data:.1f} s while connected",
                        CollectorReason.SILENT,
                    )
                if now >= next_battery:
                    next_battery = now + self.cfg.battery_interval_s
                    await self._read_battery(client)
        finally:
            # what arrived before the end is data: decode it and close the stream's batch
            self._drain()
            await self._emit(asm.release(self._clock.now_ns(), flush=True))

    async def _wait_tick(self) -> bool:
        """Sleep one tick of the clock; True when stopping.

        A plain sleep: a disconnect or a stop request is noticed at the next
        tick (at most ``tick_s`` later), which costs far less per tick than
        racing the sleep against events.
        """
        await self._clock.sleep(self.cfg.tick_s)
        return self._stop.is_set()

    def _drain(self) -> int:
        """Decode every queued notification; the number of samples decoded."""
        q = self._queue
        if q.empty():
            return 0
        items = [q.get_nowait() for _ in range(q.qsize())]
        assert self._decoder is not None
        assert self._asm is not None
        decoded = self._decoder.feed_many([b for _, b in items])
        self._asm.add([a for a, _ in items], decoded)
        self._note_clock_break()
        for msg in decoded.messages:
            self._on_message(msg)
        self._check_pairing()
        return len(decoded)

    def _note_clock_break(self) -> None:
        """Log each restart or jump of a device clock (counted in ``device_restarts``)."""
        assert self._asm is not None
        ts = self._asm.timestamper
        n = int(getattr(ts, "restarts", 0))
        if n <= self._clock_breaks:
            return
        self._clock_breaks = n
        step = getattr(ts, "last_break_s", None)
        dev_s, host_s = step if step is not None else (float("nan"), float("nan"))
        log.warning(
            "%s: device clock discontinuity #%d: its time moved %+.3f s while %.3f s passed "
            "here (the sensor restarted, or its clock jumped); timestamps go on from "
            "arrival times, samples missing across it are counted as lost",
            self.address,
            n,
            dev_s,
            host_s,
        )

    def _check_pairing(self) -> None:
        """Re-pair two-sensor streams (MetaMotion) after a lost frame of one sensor.

        The decoder pairs the k-th accelerometer and gyroscope samples; one
        skipped frame (corrupt, unknown) shifts that pairing for good, which
        shows as samples of one sensor waiting across ticks although both
        sensors stream in step. Resetting the decoder drops those samples
        (counted as unpaired, and as lost in the stream) and makes it line the
        streams up again from the next frames.
        """
        assert self._decoder is not None
        if self._decoder.stats.samples_pending == 0:
            self._pending_ticks = 0
            return
        self._pending_ticks += 1
        if self._pending_ticks >= _REPAIR_AFTER_TICKS:
            self._decoder.reset()
            self._repairs += 1
            self._pending_ticks = 0
            log.info("%s: re-paired accelerometer and gyroscope frames", self.address)

    def _on_message(self, msg: Message) -> None:
        if isinstance(msg, mm.BatteryState):
            self._battery_pct, self._battery_v = float(msg.percent), msg.millivolts / 1000.0
        elif isinstance(msg, wm.BatteryVoltageReply):
            self._battery_v = msg.volts
            self._battery_pct = _battery_pct_from_volts(msg.volts)
        elif isinstance(msg, ms.CommandResult):
            self._movesense_status = msg.status
            if msg.status is not None and msg.status >= 300:
                log.warning(
                    "%s: Movesense answered %d to ref %d", self.address, msg.status, msg.ref
                )
                self._last_error = f"device answered status {msg.status}"

    async def _read_battery(self, client: BleakClient) -> None:
        """Battery Service when the device has it, else the device's own query."""
        assert self._plan is not None
        try:
            services = client.services
            if services is not None and services.get_service(BATTERY_SERVICE_UUID) is not None:
                raw = await asyncio.wait_for(
                    client.read_gatt_char(BATTERY_LEVEL_UUID), self.cfg.write_timeout_s
                )
                if raw:
                    self._battery_pct = float(raw[0])
            elif self._plan.battery_query is not None:
                await self._write(client, self._plan.battery_query)  # answered as a notification
        except LINK_ERRORS as exc:  # a battery reading is not worth a reconnect
            log.info("%s: battery read failed: %s", self.address, _describe(exc))

    async def _emit(self, batches: list[SampleBatch]) -> None:
        """Hand batches to the sink in order; keep and retry them while it fails."""
        self._unsent.extend(batches)
        while len(self._unsent) > self.cfg.max_unsent_batches:
            self._unsent.popleft()
            self._batches_dropped += 1
        while self._unsent:
            try:
                await self._sink(self._unsent[0])
            except Exception as exc:  # the sink is someone else's code: never kill the stream
                self._sink_errors += 1
                log.error(
                    "%s: batch sink failed (%d queued): %r", self.address, len(self._unsent), exc
                )
                return
            self._unsent.popleft()

    async def _finish(self, client: BleakClient) -> None:
        """Stop the device (unsubscribe/stop) and disconnect; errors only logged."""
        if client.is_connected:
            plan = self._plan
            try:
                if plan is not None:
                    for cmd in plan.stop:
                        await self._write(client, cmd)
                if self._proto is not None:
                    await asyncio.wait_for(
                        client.stop_notify(self._proto.notify_uuid), self.cfg.write_timeout_s
                    )
            except (BleakError, TimeoutError, OSError, EOFError, CollectorError) as exc:
                log.info("%s: stop sequence incomplete: %s", self.address, _describe(exc))
        with contextlib.suppress(*LINK_ERRORS):
            await asyncio.wait_for(client.disconnect(), self.cfg.write_timeout_s)
        if self._state != SessionState.STOPPED:
            self._state = SessionState.IDLE


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

"""Settings of the collector (the ``[collector]`` table of the config file)."""

from __future__ import annotations

from dataclasses import dataclass, field

from collector.timing import TimingConfig


@dataclass(frozen=True)
class CollectorConfig:
    """How sensors are found, connected, started, watched and batched.

    Every duration is in seconds of the collector's clock (sensor time in an
    accelerated simulation).

    Attributes
    ----------
    rate_hz:
        Requested output rate; each device uses its nearest supported rate
        (Movesense 52 Hz for 50).
    batch_s:
        Seconds of samples per ``SampleBatch`` (a gap ends a batch early).
    tick_s:
        How often queued notifications are decoded and batches released: a
        few per second keeps latency low and decoding vectorised.
    scan_timeout_s:
        Longest wait for a sensor's advertisement before backing off.
    connect_attempts:
        Attempts per connection round inside ``bleak-retry-connector``.
    backoff_initial_s, backoff_max_s, backoff_jitter:
        Reconnection delay: initial × 2^failures, capped, ± jitter fraction so
        that many sensors dropped at once (a reader restart) do not retry in
        lockstep. The first retry after a good stream uses the initial delay.
    watchdog_s:
        A connected sensor that sends nothing for this long is reconnected
        (firmware that stops streaming without disconnecting).
    battery_interval_s:
        How often the battery is read while connected.
    status_interval_s:
        How often the status of every sensor is logged and emitted.
    acc_range_g, gyro_range_dps:
        Ranges configured on devices that have a choice (MetaMotion).
    write_timeout_s:
        Longest wait for one GATT write/read (start, stop, battery, haptic).
    max_unsent_batches:
        Batches kept for retry while the sink fails; beyond it the oldest are
        dropped and counted (bounded memory on a long outage).
    timing:
        Timestamp reconstruction (see ``collector.timing.TimingConfig``).
    """

    rate_hz: float = 50.0
    batch_s: float = 1.0
    tick_s: float = 0.25
    scan_timeout_s: float = 20.0
    connect_attempts: int = 3
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 60.0
    backoff_jitter: float = 0.3
    watchdog_s: float = 5.0
    battery_interval_s: float = 300.0
    status_interval_s: float = 30.0
    acc_range_g: float = 8.0
    gyro_range_dps: float = 2000.0
    write_timeout_s: float = 10.0
    max_unsent_batches: int = 3600
    timing: TimingConfig = field(default_factory=TimingConfig)

    def __post_init__(self) -> None:
        positive = (
            "rate_hz",
            "batch_s",
            "tick_s",
            "scan_timeout_s",
            "backoff_initial_s",
            "backoff_max_s",
            "watchdog_s",
            "battery_interval_s",
            "status_interval_s",
            "write_timeout_s",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)} must be > 0")
        if self.connect_attempts < 1:
            raise ValueError(f"connect_attempts={self.connect_attempts} must be >= 1")
        if not 0 <= self.backoff_jitter < 1:
            raise ValueError(f"backoff_jitter={self.backoff_jitter} must be in [0, 1)")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be >= backoff_initial_s")
        if self.watchdog_s <= self.tick_s:
            raise ValueError(f"watchdog_s={self.watchdog_s} must be longer than tick_s")
        if self.max_unsent_batches < 1:
            raise ValueError("max_unsent_batches must be >= 1")

"""Per-sample timestamps for BLE IMU streams, and the clocks they are read from.

BLE notifications arrive late by a non-negative, jittery latency (connection
interval, retransmissions, host scheduling), and device crystals drift from
the host clock by tens of ppm. Two reconstructions cover the supported
sensors:

- :class:`RateTimestamper` for devices without a sample counter (WitMotion,
  MetaMotion streaming): sample ``k`` happened at ``a + b·k`` where the line
  is the *lower envelope* of (sample index, arrival time) over a sliding
  window. Gaps (dropped notifications, reconnects) show up as arrivals that
  stay later than the line by whole sample periods.
- :class:`DeviceClockTimestamper` for devices that stamp packets (Movesense:
  u32 ms of the first sample): gaps are exact from the counter; the counter
  is unwrapped, device reboots are detected, and device time is mapped to
  host UTC by the same lower-envelope fit (it absorbs offset and drift).

The lower-envelope line is the linear-programming skew estimator of Moon,
Skelly & Towsley, "Estimation and removal of clock skew from network delay
measurements", IEEE INFOCOM 1999: minimise the summed distance from the
points to a line that stays below all of them. Latency is never negative,
so the points closest to the line are the least delayed ones and the fit is
not pulled by jitter the way a least-squares fit is.

Both timestampers hold packets back for ``lookahead_s`` (arrival time) so
that a gap decision sees the packets after it: a notification that was only
*delayed* is followed by on-time ones, a real gap is followed by packets that
all stay late. Samples are never invented or duplicated: a gap is reported
as a count (``lost_before``), never filled.

Everything here is pure (no I/O) except the clocks at the top, the only
things that read time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt

NS_PER_S = 1_000_000_000

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


# ------------------------------------------------------------------ clocks


@runtime_checkable
class Clock(Protocol):
    """The two clocks of a collector (STYLE: monotonic for timeouts, UTC for data).

    ``now_ns`` timestamps data (UTC ns since the Unix epoch); ``monotonic``
    (seconds) and ``sleep`` drive timeouts, backoff and watchdogs. In an
    accelerated simulation both come from the simulator's virtual sensor
    clock, so a 60-s watchdog means 60 s of sensor time.
    """

    def now_ns(self) -> int:
        """UTC time in ns since the Unix epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (arbitrary origin)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of this clock's time."""
        ...


def hold(clock: Clock) -> contextlib.AbstractAsyncContextManager[None]:
    """Keep sensor time still during a host-side set-up phase.

    A simulation's radio operations (scan, connect, GATT writes) run on the
    host's wall clock; holding a virtual sensor clock meanwhile keeps them
    from counting as sensor time. Uses the clock's ``hold()`` or ``paused()``
    (``firmware_sim.clock.SimClock``) when it has one; no effect otherwise
    (real clocks). Optional, so any object with the three :class:`Clock`
    methods is a clock.
    """
    for name in ("hold", "paused"):
        method = getattr(clock, name, None)
        if callable(method):
            cm: contextlib.AbstractAsyncContextManager[None] = method()
            return cm
    return contextlib.nullcontext()


class SystemClock:
    """The host's clocks: ``time.time_ns`` for data, ``time.monotonic`` for timeouts."""

    def now_ns(self) -> int:
        return time.time_ns()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK = SystemClock()


class _SensorClock:
    """A :class:`Clock` over a source of sensor time (``now_ns``, ``sleep``, optional
    ``paused()`` async context manager, as ``firmware_sim.clock.SimClock`` has).

    A simulation's sensor time never goes backwards, so it serves as the
    monotonic clock too: timeouts and watchdogs then count sensor seconds.
    """

    def __init__(self, source: Any) -> None:
        self._source = source

    def now_ns(self) -> int:
        return int(self._source.now_ns())

    def monotonic(self) -> float:
        return int(self._source.now_ns()) / NS_PER_S

    async def sleep(self, seconds: float) -> None:
        await self._source.sleep(seconds)

    def hold(self) -> contextlib.AbstractAsyncContextManager[None]:
        paused = getattr(self._source, "paused", None)
        return paused() if callable(paused) else contextlib.nullcontext()


def as_clock(source: Any) -> Clock:
    """``source`` as a :class:`Clock`: itself if it is one, else an adapter over
    its ``now_ns()`` and ``async sleep(seconds)`` (e.g. the simulator's clock)."""
    if isinstance(source, Clock):
        return source
    if callable(getattr(source, "now_ns", None)) and callable(getattr(source, "sleep", None)):
        return _SensorClock(source)
    raise TypeError(f"{source!r} has no now_ns() and sleep(): not a clock")


_T = TypeVar("_T")


async def wait_for(aw: Awaitable[_T], timeout_s: float, clock: Clock) -> _T:
    """``asyncio.wait_for`` on ``clock``'s time (sensor time in a simulation).

    Raises ``TimeoutError`` after ``timeout_s`` seconds of that clock; the
    awaitable is cancelled then.
    """
    if isinstance(clock, SystemClock):
        return await asyncio.wait_for(aw, timeout_s)
    task = asyncio.ensure_future(aw)
    timer = asyncio.ensure_future(clock.sleep(timeout_s))
    try:
        await asyncio.wait((task, timer), return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        raise TimeoutError(f"no result within {timeout_s:g} s")
    finally:
        timer.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


# ------------------------------------------------------- lower-envelope fit


@dataclass(frozen=True, slots=True)
class LinearMap:
    """``y = y_ref + c + slope·(x − x_ref)`` with exact integer references.

    Host times are ~1.7e18 ns, beyond float64's exact integers, so the large
    parts stay in ``int`` and only offsets within the fit window are floats.
    """

    x_ref: int
    y_ref: int
    c: float
    slope: float

    def __call__(self, x: IntArray) -> IntArray:
        """(N,) int64 ``y`` for (N,) int64 ``x``."""
        dx = (np.asarray(x, dtype=np.int64) - self.x_ref).astype(np.float64)
        return self.y_ref + np.rint(self.c + self.slope * dx).astype(np.int64)

    def at(self, x: int) -> int:
        return self.y_ref + round(self.c + self.slope * (x - self.x_ref))


def envelope_line(
    x: FloatArray,
    r: FloatArray,
    *,
    max_abs_slope: float,
    prior_slope: float = 0.0,
    min_span: float = 0.0,
) -> tuple[float, float]:
    """The line ``r = c + s·x`` below all points that is closest to them on average.

    Moon et al. (1999): minimising Σ(rᵢ − c − s·xᵢ) subject to rᵢ ≥ c + s·xᵢ
    is maximising the line's value at mean(x), so the optimum is the lower
    convex hull's edge that spans mean(x). The lower hull at x̄ is the lowest
    chord between a point left of x̄ and one right of it, found here with one
    vectorised pass over those pairs (N ≤ a few hundred). The slope is clamped to
    ``±max_abs_slope`` (a crystal cannot be off by more); with a span shorter
    than ``min_span`` the slope is not identifiable and ``prior_slope`` is used.

    Parameters
    ----------
    x, r:
        (N,) float64, ``x`` sorted ascending, N ≥ 1.
    max_abs_slope, prior_slope, min_span:
        In the units of r per unit of x.

    Returns
    -------
    (c, s):
        Intercept and slope; every point satisfies ``r ≥ c + s·x``.
    """
    s = prior_slope
    if x.shape[0] >= 2 and x[-1] - x[0] >= min_span:
        xm = float(np.mean(x))
        left, right = x <= xm, x >= xm
        xi, ri = x[left][:, None], r[left][:, None]
        dx = x[right][None, :] - xi
        ok = dx > 0
        slope = (r[right][None, :] - ri) / np.where(ok, dx, 1.0)
        at_mean = np.where(ok, ri + slope * (xm - xi), np.inf)
        s = float(slope.flat[int(np.argmin(at_mean))])
    s = min(max(s, -max_abs_slope), max_abs_slope)
    c = float(np.min(r - s * x))
    return c, s


class LowerEnvelope:
    """Sliding-window lower-envelope fit of ``y ≈ nominal_slope·x + offset``.

    Points are reduced to one representative per ``bin_x`` of ``x`` (the
    one least above the nominal line), which keeps the hull small (≤ window
    bins) while keeping every point that can touch the envelope to within
    ``bin_x × slope error``.
    """

    def __init__(
        self,
        nominal_slope: float,
        *,
        bin_x: int,
        window_bins: int,
        max_rel_slope_error: float,
        min_span_bins: int = 2,
    ) -> None:
        if nominal_slope <= 0 or bin_x <= 0 or window_bins < 2:
            raise ValueError("nominal_slope, bin_x must be > 0 and window_bins >= 2")
        self.nominal_slope = float(nominal_slope)
        self.bin_x = int(bin_x)
        self.window_bins = int(window_bins)
        self.max_abs_dev = abs(self.nominal_slope) * float(max_rel_slope_error)
        self.min_span_x = float(min_span_bins * bin_x)
        self._ref: tuple[int, int] | None = None
        # bin -> (x, y, residual vs the nominal line through _ref)
        self._bins: dict[int, tuple[int, int, float]] = {}
        self._dev = 0.0  # last fitted slope deviation from nominal
        self._fit: LinearMap | None = None  # cached fit of the committed points
        # newest bin when the slope was last fitted: the hull is redone every
        # ~10 % of the window's bins (drift changes slowly); a lower point in
        # a bin in between moves only the intercept
        self._slope_last: int | None = None

    def clear(self) -> None:
        self._ref = None
        self._bins.clear()
        self._dev = 0.0
        self._fit = None
        self._slope_last = None

    def __len__(self) -> int:
        return len(self._bins)

    def _reduce(self, x: IntArray, y: IntArray, into: dict[int, tuple[int, int, float]]) -> bool:
        """Merge points into ``into``, keeping each bin's lowest point and the window.

        Returns whether ``into`` changed.
        """
        assert self._ref is not None
        x_ref, y_ref = self._ref
        res = (y - y_ref).astype(np.float64) - self.nominal_slope * (x - x_ref).astype(np.float64)
        bins = np.floor_divide(x, self.bin_x)
        order = np.lexsort((res, bins))  # by bin, then residual: first of each bin is its min
        first = np.ones(order.shape[0], dtype=bool)
        first[1:] = bins[order][1:] != bins[order][:-1]
        changed = False
        for i in order[first]:
            b = int(bins[i])
            old = into.get(b)
            if old is None or res[i] < old[2]:
                into[b] = (int(x[i]), int(y[i]), float(res[i]))
                changed = True
        newest = max(into)
        for b in [b for b in into if b <= newest - self.window_bins]:
            del into[b]
            changed = True
        return changed

    def add(self, x: IntArray, y: IntArray) -> None:
        """Add (N,) int64 points (any order)."""
        x = np.asarray(x, dtype=np.int64)
        y = np.asarray(y, dtype=np.int64)
        if x.shape[0] == 0:
            return
        if self._ref is None:
            self._ref = (int(x[0]), int(y[0]))
        if self._reduce(x, y, self._bins):
            self._fit = None

    def fit(
        self, extra_x: IntArray | None = None, extra_y: IntArray | None = None
    ) -> LinearMap | None:
        """The current envelope line, or None before any point.

        ``extra_x``/``extra_y`` are provisional points (packets not yet
        final) that shape this fit without being kept.
        """
        bins = self._bins
        provisional = extra_x is not None and extra_y is not None and extra_x.shape[0] > 0
        if not provisional and self._fit is not None:
            return self._fit  # nothing committed since the last fit
        if extra_x is not None and extra_y is not None and provisional:
            if self._ref is None:
                self._ref = (int(extra_x[0]), int(extra_y[0]))
            bins = dict(bins)
            self._reduce(
                np.asarray(extra_x, dtype=np.int64), np.asarray(extra_y, dtype=np.int64), bins
            )
        if self._ref is None or not bins:
            return None
        keys = sorted(bins)
        pts = np.array([bins[k] for k in keys], dtype=np.float64)
        x0 = bins[keys[0]][0]  # hull arithmetic relative to the window's start
        x_ref, y_ref = self._ref
        xs = pts[:, 0] - x0
        refit_every = max(1, len(keys) // 10)
        fresh = self._slope_last is not None and keys[-1] - self._slope_last < refit_every
        if not provisional and fresh:
            dev = self._dev
            c = float(np.min(pts[:, 2] - dev * xs))
        else:
            c, dev = envelope_line(
                xs,
                pts[:, 2],
                max_abs_slope=self.max_abs_dev,
                prior_slope=self._dev,
                min_span=self.min_span_x,
            )
            self._dev = dev
            self._slope_last = None if provisional else keys[-1]
        # y(x) = y_ref + nominal·(x − x_ref) + c + dev·(x − x0); the big part stays integer
        base = self.nominal_slope * (x0 - x_ref)
        fitted = LinearMap(
            x_ref=x0,
            y_ref=y_ref + round(base),
            c=base - round(base) + c,
            slope=self.nominal_slope + dev,
        )
        if not provisional:
            self._fit = fitted
        return fitted


# ------------------------------------------------------------ timestampers


@dataclass(frozen=True, slots=True)
class Timing:
    """Timestamps for the oldest ``n_packets`` pending packets (FIFO order).

    Attributes
    ----------
    counts:
        (P,) int64 samples per packet, as pushed.
    lost_before:
        (P,) int64 samples missing immediately before each packet's first sample.
    reset_before:
        (P,) bool: the device restarted (its counter jumped) before this packet;
        the loss across a restart is inferred from arrival times.
    t_ns:
        (sum(counts),) int64 UTC ns per sample, strictly increasing.
    """

    counts: IntArray
    lost_before: IntArray
    reset_before: npt.NDArray[np.bool_]
    t_ns: IntArray

    @property
    def n_packets(self) -> int:
        return int(self.counts.shape[0])

    @classmethod
    def empty(cls) -> Timing:
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z.copy(), np.zeros(0, dtype=bool), z.copy())


class Timestamper(Protocol):
    """What a session needs from a timestamper."""

    rate_hz: float

    @property
    def pending(self) -> int: ...

    def push(self, arrival_ns: int, n_samples: int, device_time: int | None = None) -> None: ...

    def release(self, now_ns: int, *, flush: bool = False) -> Timing: ...


@dataclass(frozen=True, slots=True)
class TimingConfig:
    """Tuning of the timestamp reconstruction (each value has a reason).

    Attributes
    ----------
    lookahead_s:
        Packets are held this long (arrival time) before their gap decision;
        long enough that a delayed notification is followed by on-time ones
        (BLE connection intervals are ≤ 4 s; latency bursts are shorter).
    min_lookahead_packets:
        At most this many later packets, arrived within half the lookahead
        (the stream stopped), and a gap needs more evidence: the worst recent
        latency is added to the threshold.
    window_s:
        Envelope window: long enough to see the least-delayed notifications
        even when the sample period and the connection interval beat slowly
        (20 ms samples on 30 ms connection events take up to 10 ms / 40 ppm
        = 250 s to sweep every phase), short enough to follow crystal drift
        as temperature changes (minutes).
    bin_s:
        Envelope reduction: one representative point per bin.
    max_rate_error:
        Largest relative deviation of the real rate from the nominal one that
        the fit accepts (counter-less devices: the sensor's oscillator; their
        datasheets promise ~1 %, crystals are ≤ 100 ppm).
    max_clock_drift:
        Same for device-counter time against host time (crystals, ppm).
    gap_slack:
        How far (fraction of a sample period) packets after a gap may sit below
        the envelope and still count as that many samples later: the
        envelope's own error. A packet delayed by more than (1 − gap_slack)
        periods right before a real gap cannot be told from the first packet
        after it (counter-less devices only): latency must stay below that
        for gap positions to be exact; totals stay exact either way.
    reset_tolerance_s:
        A device counter that advances more, or less, than host time by this
        much (beyond latency) is a restart, not a gap.
    """

    lookahead_s: float = 1.0
    min_lookahead_packets: int = 8
    window_s: float = 600.0
    bin_s: float = 1.0
    max_rate_error: float = 0.02
    max_clock_drift: float = 500e-6
    gap_slack: float = 0.25
    reset_tolerance_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.lookahead_s >= 0:
            raise ValueError(f"lookahead_s={self.lookahead_s} must be >= 0")
        if not self.window_s >= 2 * self.bin_s > 0:
            raise ValueError(f"window_s={self.window_s} must be >= 2 × bin_s={self.bin_s} > 0")
        if not 0 < self.max_rate_error < 0.5 or not 0 < self.max_clock_drift < 0.5:
            raise ValueError("max_rate_error and max_clock_drift must be in (0, 0.5)")
        if not 0 <= self.gap_slack < 0.5:
            raise ValueError(f"gap_slack={self.gap_slack} must be in [0, 0.5)")
        if self.reset_tolerance_s <= 0:
            raise ValueError(f"reset_tolerance_s={self.reset_tolerance_s} must be > 0")


#: Envelope bins below which pending packets also shape the fit (start-up).
_BOOTSTRAP_BINS = 4


def _suffix_min(a: FloatArray) -> FloatArray:
    return np.minimum.accumulate(a[::-1])[::-1]


class _Base:
    def __init__(self, rate_hz: float, config: TimingConfig) -> None:
        if not rate_hz > 0:
            raise ValueError(f"rate_hz={rate_hz} must be > 0")
        self.rate_hz = float(rate_hz)
        self.cfg = config
        self.period_ns = NS_PER_S / self.rate_hz
        self._arrival: list[int] = []
        self._count: list[int] = []
        self._last_t: int | None = None  # last released sample time
        # recent residuals above the envelope (ns): latency spread for short lookahead
        self._spread: deque[float] = deque(maxlen=256)

    @property
    def pending(self) -> int:
        return len(self._arrival)

    def _n_final(self, arrival: IntArray, now_ns: int, flush: bool) -> int:
        if flush:
            return int(arrival.shape[0])
        horizon = now_ns - round(self.cfg.lookahead_s * NS_PER_S)
        return int(np.searchsorted(arrival, horizon, side="right"))

    def _gap_slack(self, arrival: IntArray) -> FloatArray:
        """(P,) ns by which each pending packet may sit *below* the line.

        Latency is never negative, so no packet is earlier than the envelope:
        samples lost before packet ``j`` are ``floor((m_j + slack_j) / period)``
        where ``m_j`` is the least residual of ``j`` and every later packet.
        The slack covers the envelope's own error (``gap_slack`` periods).
        The least of only a few residuals still carries latency: its 1 %
        upper bound, from the recent residual spread, is taken off, so one
        late notification at the end of what has arrived is not a lost
        sample; with many later packets that bound goes to zero. A packet with
        few later packets within half the lookahead (the stream stopped) needs
        more than the worst recent latency.
        """
        n = arrival.shape[0]
        slack = self.cfg.gap_slack * self.period_ns
        n_later = n - np.arange(n)  # residuals in each suffix
        short = (n_later <= self.cfg.min_lookahead_packets) & (
            arrival[-1] - arrival < 0.5 * self.cfg.lookahead_s * NS_PER_S
        )
        if len(self._spread) >= 64:  # enough residuals for a 1 % bound
            # P(min of k residuals > q) = (1 - F(q))^k = 1 %  =>  F(q) = 1 - 0.01^(1/k)
            spread = np.sort(np.fromiter(self._spread, dtype=np.float64))
            levels = 1.0 - 0.01 ** (1.0 / n_later)
            bound = spread[
                np.minimum((levels * spread.shape[0]).astype(np.int64), spread.shape[0] - 1)
            ]
            # the last few packets before a stream stops: a gap right there is
            # only believed beyond the worst recent latency (a later reconnect
            # still counts every lost sample; only the split moves)
            bound[short] = np.maximum(bound[short], float(spread.max()))
        else:  # too little seen yet: a period of doubt for the last few packets
            bound = np.where(short, self.period_ns, 0.0)
        return slack - np.maximum(bound, 0.0)

    def _monotone(self, t: IntArray) -> IntArray:
        """Guard against a refit moving a new sample before the previous one.

        A refit moves the line by far less than a sample period in practice;
        the guard only matters after a bad bootstrap and keeps order intact.
        """
        if t.shape[0] == 0:
            return t
        floor = (self._last_t + 1) if self._last_t is not None else int(t[0])
        idx = np.arange(t.shape[0], dtype=np.int64)
        # t_i >= floor + i  and strictly increasing
        t = np.maximum.accumulate(np.maximum(t - idx, floor)) + idx
        self._last_t = int(t[-1])
        return t


class RateTimestamper(_Base):
    """Timestamps for a device without a sample counter (configured rate + arrivals).

    Sample ``k`` (counted since the stream started, lost samples included)
    is at ``a + b·k`` where ``(a, b)`` is the lower envelope of (index of a
    packet's last sample, packet arrival) over ``window_s``; ``b`` follows
    the device's real rate within ``max_rate_error``. A packet whose arrival
    (and that of every packet after it within the lookahead) stays later
    than the line by ``L`` periods follows ``L`` lost samples.
    """

    def __init__(self, rate_hz: float, config: TimingConfig | None = None) -> None:
        super().__init__(rate_hz, config or TimingConfig())
        bin_samples = max(1, round(self.cfg.bin_s * self.rate_hz))
        self._env = LowerEnvelope(
            self.period_ns,
            bin_x=bin_samples,
            window_bins=max(2, round(self.cfg.window_s / self.cfg.bin_s)),
            max_rel_slope_error=self.cfg.max_rate_error,
        )
        self._k_next = 0  # index of the next sample (lost ones included)
        self._model: LinearMap | None = None

    def push(self, arrival_ns: int, n_samples: int, device_time: int | None = None) -> None:
        """Queue one packet of ``n_samples`` ≥ 1 that arrived at ``arrival_ns``."""
        del device_time  # this device has none
        if n_samples < 1:
            raise ValueError(f"n_samples={n_samples} must be >= 1")
        # a host clock step backwards must not reorder packets
        if self._arrival and arrival_ns < self._arrival[-1]:
            arrival_ns = self._arrival[-1]
        self._arrival.append(int(arrival_ns))
        self._count.append(int(n_samples))

    def release(self, now_ns: int, *, flush: bool = False) -> Timing:
        """Timestamps for packets whose lookahead has passed (all if ``flush``)."""
        if not self._arrival:
            return Timing.empty()
        arrival = np.asarray(self._arrival, dtype=np.int64)
        counts = np.asarray(self._count, dtype=np.int64)
        n_final = self._n_final(arrival, now_ns, flush)
        if n_final == 0:
            return Timing.empty()
        last_idx = self._k_next + np.cumsum(counts) - 1  # (P,) if nothing is lost
        n_pend = arrival.shape[0]
        slack = self._gap_slack(arrival)
        if self._model is None:
            # Bootstrap: the least-delayed packet anchors the nominal line, but
            # not one of the very first, which may sit before a gap. Packets
            # earlier than that anchor by whole periods precede a gap: shifting
            # the (arbitrary) starting index down puts the gap after them.
            r0 = arrival.astype(np.float64) - self.period_ns * (last_idx - self._k_next)
            skip = (
                self.cfg.min_lookahead_packets
                if r0.shape[0] > 2 * self.cfg.min_lookahead_packets
                else 0
            )
            j = skip + int(np.argmin(r0[skip:]))
            self._model = LinearMap(int(last_idx[j]), int(arrival[j]), 0.0, self.period_ns)
            early = float(np.min(r0 - r0[j]))
            last_idx += min(0, int(np.floor((early + slack[0]) / self.period_ns)))
        model = self._model
        # Gaps are found in every pending packet, so that those not yet final
        # shape the line with their likely indices; only final ones are committed.
        lost = np.zeros(n_pend, dtype=np.int64)
        j = 0
        while j < n_pend:
            resid = (arrival - model(last_idx)).astype(np.float64)
            smin = _suffix_min(resid)
            # in periods of the device's real rate (the fitted slope), not the nominal one
            n_lost_at = np.floor((smin + slack) / model.slope).astype(np.int64)
            hits = np.nonzero(n_lost_at[j:] >= 1)[0]
            if hits.shape[0] == 0:
                break
            j += int(hits[0])
            n_lost = int(n_lost_at[j])
            lost[j] = n_lost
            last_idx[j:] += n_lost
            j += 1
        final_idx = last_idx[:n_final]
        final_arr = arrival[:n_final]
        # The first packet after a gap may be a late one from before it (its
        # index is the ambiguous one): it stays out of the envelope, where one
        # point below the true line would tilt the fit.
        sure = lost == 0
        self._env.add(final_idx[sure[:n_final]], final_arr[sure[:n_final]])
        if len(self._env) < _BOOTSTRAP_BINS:
            # while the line is young, packets still pending sharpen it (they
            # are committed when final); later the committed window suffices
            ext = np.nonzero(sure[n_final:])[0] + n_final
            self._model = self._env.fit(last_idx[ext], arrival[ext]) or model
        else:
            self._model = self._env.fit() or model
        resid = (final_arr - self._model(final_idx)).astype(np.float64)
        self._spread.extend(resid[lost[:n_final] == 0].tolist())
        fc = counts[:n_final]
        sample_idx = np.repeat(final_idx - fc + 1, fc) + _ramp(fc)
        t = self._monotone(self._model(sample_idx))
        self._k_next = int(final_idx[-1]) + 1
        del self._arrival[:n_final], self._count[:n_final]
        return Timing(fc, lost[:n_final], np.zeros(n_final, dtype=bool), t)


def _ramp(counts: IntArray) -> IntArray:
    """0..n−1 for each packet, concatenated: (sum(counts),) int64."""
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total, dtype=np.int64) - starts


class DeviceClockTimestamper(_Base):
    """Timestamps for a device that stamps each packet with its own clock.

    ``device_time`` is the raw counter of the packet's first sample
    (``counter_bits`` wide, ``counter_unit_ns`` per tick; Movesense: u32 ms).
    Counters are unwrapped; within one device boot, gaps are exact from the
    counter and the device's real sample period is measured from it. Device
    time maps to host UTC through the lower envelope of arrivals (offset and
    crystal drift). A counter that jumps backwards, or forward by more or
    less than host time allows, is a device restart: the new boot is placed
    on the time axis from its arrival times and the loss across it inferred.
    """

    def __init__(
        self,
        rate_hz: float,
        config: TimingConfig | None = None,
        *,
        counter_bits: int = 32,
        counter_unit_ns: int = 1_000_000,
    ) -> None:
        super().__init__(rate_hz, config or TimingConfig())
        self._modulus = 1 << counter_bits
        self._unit = int(counter_unit_ns)
        self._env = LowerEnvelope(
            1.0,
            bin_x=round(self.cfg.bin_s * NS_PER_S),
            window_bins=max(2, round(self.cfg.window_s / self.cfg.bin_s)),
            max_rel_slope_error=self.cfg.max_clock_drift,
        )
        # pending packets: unwrapped counter (ns) of the first sample, boot number
        self._unwrapped: list[int] = []
        self._boot: list[int] = []
        # the last *pushed* packet, for unwrapping and restart detection
        self._push_raw: int | None = None
        self._push_unwrapped = 0
        self._push_arrival = 0
        self._boots = 0
        #: the last restart/jump seen: (device counter step, host time step), seconds
        self.last_break_s: tuple[float, float] | None = None
        # released state. The time axis is device ns, continuous over restarts:
        # a boot's axis position is its unwrapped counter + a per-boot shift.
        self._cur_boot: int | None = None
        self._shift = 0
        self._prev: tuple[int, int] | None = None  # (unwrapped, count) of last released packet
        self._next_x: int | None = None  # axis position of the next expected sample
        self._period_acc = (0, 0)  # this boot: (sum of ns, sum of samples), gap-free pairs
        self._model: LinearMap | None = None

    @property
    def restarts(self) -> int:
        """Device restarts seen so far (pushed packets)."""
        return self._boots

    def _period(self) -> float:
        """The device's sample period (device ns), measured over this boot."""
        total, n = self._period_acc
        if n < 8:
            return self.period_ns
        est = total / n
        # far from nominal means miscounted packets, not a real rate
        if abs(est / self.period_ns - 1) > self.cfg.max_rate_error:
            return self.period_ns
        return est

    def push(self, arrival_ns: int, n_samples: int, device_time: int | None = None) -> None:
        """Queue one packet: arrival, sample count, raw counter of its first sample."""
        if n_samples < 1:
            raise ValueError(f"n_samples={n_samples} must be >= 1")
        if device_time is None:
            raise ValueError("this device stamps its packets: device_time is required")
        raw = int(device_time) % self._modulus
        if self._arrival and arrival_ns < self._arrival[-1]:
            arrival_ns = self._arrival[-1]
        if self._push_raw is None:
            unwrapped = raw * self._unit
        else:
            fwd_ns = ((raw - self._push_raw) % self._modulus) * self._unit
            host_ns = arrival_ns - self._push_arrival
            tol = self.cfg.reset_tolerance_s * NS_PER_S + self.cfg.max_clock_drift * host_ns
            restarted = (
                fwd_ns == 0  # the same stamp again: the counter did not advance
                or fwd_ns > host_ns + tol  # device time outran host time (or went backwards)
                or fwd_ns < host_ns - tol  # host time passed that the device did not count
            )
            if restarted:
                self._boots += 1
                back = ((self._push_raw - raw) % self._modulus) * self._unit
                step = -back if back < fwd_ns else fwd_ns  # the shorter way round the wrap
                self.last_break_s = (step / NS_PER_S, host_ns / NS_PER_S)
                unwrapped = raw * self._unit
            else:
                unwrapped = self._push_unwrapped + fwd_ns
        self._push_raw, self._push_unwrapped, self._push_arrival = raw, unwrapped, int(arrival_ns)
        self._arrival.append(int(arrival_ns))
        self._count.append(int(n_samples))
        self._unwrapped.append(unwrapped)
        self._boot.append(self._boots)

    def _place_boot(
        self, arrival: IntArray, unwrapped: IntArray, counts: IntArray, period: float
    ) -> tuple[int, int]:
        """Shift (ns) putting a restarted boot on the axis, and the samples lost before it.

        The new boot's packets are placed where their least-delayed arrival
        says, through the current device->host line; the loss is what fits
        between the last sample before the restart and the first after it.
        """
        if self._model is None or self._next_x is None:
            return 0, 0
        last = unwrapped + np.rint((counts - 1) * period).astype(np.int64)
        resid = (arrival - self._model(last)).astype(np.float64)
        shift = round(float(np.min(resid)) / self._model.slope)
        excess = int(unwrapped[0]) + shift - self._next_x
        n_lost = max(0, round(excess / period))
        return self._next_x + round(n_lost * period) - int(unwrapped[0]), n_lost

    def release(self, now_ns: int, *, flush: bool = False) -> Timing:
        """Timestamps for packets whose lookahead has passed (all if ``flush``)."""
        if not self._arrival:
            return Timing.empty()
        arrival = np.asarray(self._arrival, dtype=np.int64)
        n_final = self._n_final(arrival, now_ns, flush)
        if n_final == 0:
            return Timing.empty()
        counts = np.asarray(self._count, dtype=np.int64)
        unwrapped = np.asarray(self._unwrapped, dtype=np.int64)
        boots = np.asarray(self._boot, dtype=np.int64)
        lost = np.zeros(n_final, dtype=np.int64)
        reset = np.zeros(n_final, dtype=bool)
        sample_x: list[IntArray] = []
        j = 0
        while j < n_final:
            boot = int(boots[j])
            seg_end = j + int(np.searchsorted(boots[j:], boot, side="right"))
            stop = min(seg_end, n_final)
            period = self._period()
            if boot != self._cur_boot:
                shift, n_lost = self._place_boot(
                    arrival[j:seg_end], unwrapped[j:seg_end], counts[j:seg_end], period
                )
                reset[j] = self._cur_boot is not None
                lost[j] = n_lost
                self._cur_boot, self._shift, self._prev = boot, shift, None
                self._period_acc = (0, 0)
            u = unwrapped[j:stop]
            c = counts[j:stop]
            # the packet before each one in this boot (the first is its own predecessor)
            before = (int(u[0]), 0) if self._prev is None else self._prev
            prev_u = np.concatenate(([before[0]], u[:-1]))
            prev_c = np.concatenate(([before[1]], c[:-1]))
            step = u - prev_u
            in_boot_lost = np.rint(step / period).astype(np.int64) - prev_c
            # the counter decides within a boot; stamp jitter < half a period is no gap
            lost[j:stop] += np.maximum(in_boot_lost, 0)
            clean = in_boot_lost == 0
            total, n = self._period_acc
            self._period_acc = (total + int(step[clean].sum()), n + int(prev_c[clean].sum()))
            first_x = u + self._shift
            last_x = first_x + np.rint((c - 1) * period).astype(np.int64)
            self._env.add(last_x, arrival[j:stop])
            if len(self._env) < _BOOTSTRAP_BINS:
                # while the line is young, this boot's pending packets sharpen it
                ue, ce = unwrapped[stop:seg_end], counts[stop:seg_end]
                extra_x = ue + self._shift + np.rint((ce - 1) * period).astype(np.int64)
                self._model = self._env.fit(extra_x, arrival[stop:seg_end])
            else:
                self._model = self._env.fit()
            sample_x.append(np.repeat(first_x, c) + np.rint(_ramp(c) * period).astype(np.int64))
            self._prev = (int(u[-1]), int(c[-1]))
            self._next_x = int(first_x[-1]) + round(int(c[-1]) * period)
            j = stop
        assert self._model is not None
        fc = counts[:n_final]
        t = self._monotone(self._model(np.concatenate(sample_x)))
        del self._arrival[:n_final], self._count[:n_final]
        del self._unwrapped[:n_final], self._boot[:n_final]
        return Timing(fc, lost, reset, t)

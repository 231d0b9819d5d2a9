"""Decoded notifications -> timestamped ``SampleBatch``es (pure: no I/O, no clock).

A :class:`StreamAssembler` sits between a device decoder and the batch sink
of one sensor. It turns the decoder's output (samples, the notification
that completed each of them, device stamps) into packets for a
:mod:`collector.timing` timestamper, keeps the samples until their
timestamps are final, and cuts them into batches of ``batch_s`` seconds,
starting a new batch at every gap so that ``lost_before`` says exactly where
samples are missing. It lives as long as the session (across reconnects),
so gaps over a reconnect are measured too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analysis.contracts import NS_PER_S, SampleBatch
from collector.protocols import Decoded
from collector.timing import (
    DeviceClockTimestamper,
    RateTimestamper,
    Timestamper,
    TimingConfig,
)

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class StreamCounts:
    """What one stream has produced so far (cumulative over reconnects)."""

    packets: int = 0  # notifications that completed at least one sample
    samples: int = 0  # samples released in batches
    batches: int = 0
    gaps: int = 0  # places where samples are missing
    lost_samples: int = 0
    restarts: int = 0  # device counter restarts (devices with a clock)
    pending_samples: int = 0  # decoded, waiting for final timestamps


class StreamAssembler:
    """One sensor stream: decoded samples in, ``SampleBatch``es out.

    Parameters
    ----------
    sensor_id, wearer_id:
        Copied into every batch.
    rate_hz:
        Nominal output rate the device was set to (Hz).
    has_gyro:
        Whether batches carry ``gyro_dps``.
    device_timestamps:
        The device stamps its packets (Movesense): use its clock; otherwise
        the configured rate anchored to arrival times.
    batch_s:
        Batch length in seconds of samples; batches end at whole multiples
        of it in sample time (a second's samples leave together, as soon as
        its last one is final); a gap or :meth:`release` with ``flush`` ends
        a batch early.
    timing:
        Timestamp reconstruction settings.
    """

    def __init__(
        self,
        *,
        sensor_id: str,
        wearer_id: str,
        rate_hz: float,
        has_gyro: bool,
        device_timestamps: bool,
        batch_s: float = 1.0,
        timing: TimingConfig | None = None,
    ) -> None:
        if not batch_s > 0:
            raise ValueError(f"batch_s={batch_s} must be > 0")
        self.sensor_id = sensor_id
        self.wearer_id = wearer_id
        self.rate_hz = float(rate_hz)
        self.has_gyro = has_gyro
        self.batch_n = max(1, round(batch_s * rate_hz))
        # batches end at whole multiples of batch_s in sample time: a second's
        # last sample leaves with its batch instead of waiting for the next
        # batch to fill (what a live nudge timer waits for)
        self._window_ns = max(1, round(batch_s * NS_PER_S))
        self._period_ns = NS_PER_S / self.rate_hz
        self._open_w = 0
        self._ts: Timestamper = (
            DeviceClockTimestamper(rate_hz, timing)
            if device_timestamps
            else RateTimestamper(rate_hz, timing)
        )
        self._device_ts = device_timestamps
        # decoded samples waiting for final timestamps (FIFO, packet order)
        self._acc: list[F64] = []
        self._gyro: list[F64] = []
        self._pending_n = 0
        # the batch being filled
        self._open_t: list[npt.NDArray[np.int64]] = []
        self._open_acc: list[F64] = []
        self._open_gyro: list[F64] = []
        self._open_n = 0
        self._open_lost = 0
        self._seq = 0
        self._packets = 0
        self._samples = 0
        self._gaps = 0
        self._lost = 0
        self._restarts = 0

    @property
    def timestamper(self) -> Timestamper:
        return self._ts

    @property
    def counts(self) -> StreamCounts:
        return StreamCounts(
            packets=self._packets,
            samples=self._samples,
            batches=self._seq,
            gaps=self._gaps,
            lost_samples=self._lost,
            restarts=self._restarts,
            pending_samples=self._pending_n + self._open_n,
        )

    def add(self, arrival_ns: Sequence[int] | npt.NDArray[np.int64], decoded: Decoded) -> None:
        """Queue what one ``decoder.feed_many(chunks)`` returned.

        ``arrival_ns[i]`` is when notification ``chunks[i]`` arrived (UTC ns).
        """
        n = len(decoded)
        if n == 0:
            return
        arrival = np.asarray(arrival_ns, dtype=np.int64)
        gyro = decoded.gyro_dps
        if self.has_gyro and gyro is None:
            raise ValueError("this stream carries a gyroscope but the decoder returned none")
        if self._device_ts and decoded.device_time is not None:
            first = decoded.device_time.sample_index
            counts = np.diff(np.append(first, n))
            chunk_of_packet = decoded.chunk_index[first]
            stamps: Sequence[int | None] = decoded.device_time.time_ms.tolist()
        else:
            if self._device_ts:
                raise ValueError(
                    "this device stamps its packets but the decoder returned no stamps"
                )
            # a packet = the samples one notification completed (chunk_index is sorted)
            chunk_of_packet, starts = np.unique(decoded.chunk_index, return_index=True)
            counts = np.diff(np.append(starts, n))
            stamps = [None] * int(counts.shape[0])
        for a, c, d in zip(arrival[chunk_of_packet].tolist(), counts.tolist(), stamps, strict=True):
            self._ts.push(a, c, d)
        self._packets += int(counts.shape[0])
        self._acc.append(decoded.accel_g)
        if self.has_gyro and gyro is not None:
            self._gyro.append(gyro)
        self._pending_n += n

    def release(self, now_ns: int, *, flush: bool = False) -> list[SampleBatch]:
        """Batches whose samples have final timestamps.

        ``flush`` finalises everything queued and closes the open batch (end
        of a connection or of the session); otherwise only full batches leave.
        """
        timing = self._ts.release(now_ns, flush=flush)
        out: list[SampleBatch] = []
        s = int(timing.t_ns.shape[0])
        if s:
            acc = self._take(self._acc, s)
            gyro = self._take(self._gyro, s) if self.has_gyro else None
            self._pending_n -= s
            starts = np.cumsum(timing.counts) - timing.counts
            gap_at = np.flatnonzero(timing.lost_before > 0)
            self._restarts += int(timing.reset_before.sum())
            bounds = [0, *starts[gap_at].tolist(), s]
            lost_at = [0, *timing.lost_before[gap_at].tolist()]
            for a, b, lost in zip(bounds[:-1], bounds[1:], lost_at, strict=True):
                if lost:
                    out.extend(self._close())
                    self._open_lost = int(lost)
                    self._gaps += 1
                    self._lost += int(lost)
                if b > a:
                    out.extend(
                        self._append(
                            timing.t_ns[a:b], acc[a:b], None if gyro is None else gyro[a:b]
                        )
                    )
        if flush:
            out.extend(self._close())
        return out

    @staticmethod
    def _take(parts: list[F64], n: int) -> F64:
        """The first ``n`` rows of the queued arrays (removed from the queue)."""
        joined = parts[0] if len(parts) == 1 else np.concatenate(parts)
        parts.clear()
        if joined.shape[0] > n:
            parts.append(joined[n:])
        return joined[:n]

    def _append(self, t: npt.NDArray[np.int64], acc: F64, gyro: F64 | None) -> list[SampleBatch]:
        out: list[SampleBatch] = []
        w = t // self._window_ns
        i = 0
        while i < t.shape[0]:
            if self._open_n and w[i] != self._open_w:
                out.extend(self._close())
            if not self._open_n:
                self._open_w = int(w[i])
            same = int(np.searchsorted(w, self._open_w, side="right"))
            take = min(self.batch_n - self._open_n, same - i)
            self._open_t.append(t[i : i + take])
            self._open_acc.append(acc[i : i + take])
            if gyro is not None:
                self._open_gyro.append(gyro[i : i + take])
            self._open_n += take
            i += take
            # full, or the window's last sample is in (the next is a period on)
            window_end = (self._open_w + 1) * self._window_ns
            if self._open_n >= self.batch_n or t[i - 1] + 1.1 * self._period_ns >= window_end:
                out.extend(self._close())
        return out

    def _close(self) -> list[SampleBatch]:
        if self._open_n == 0:
            return []
        batch = SampleBatch(
            sensor_id=self.sensor_id,
            wearer_id=self.wearer_id,
            rate_hz=self.rate_hz,
            t_ns=np.concatenate(self._open_t),
            accel_g=np.concatenate(self._open_acc),
            gyro_dps=np.concatenate(self._open_gyro) if self.has_gyro else None,
            lost_before=self._open_lost,
            seq=self._seq,
        )
        self._seq += 1
        self._samples += self._open_n
        self._open_t, self._open_acc, self._open_gyro = [], [], []
        self._open_n = 0
        self._open_lost = 0
        return [batch]

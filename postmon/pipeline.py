"""Per-wearer processing at the edge: samples in, everything a therapist needs out.

One ``WearerPipeline`` per worn sensor holds the streaming analysis, the
nudge policies and the current local day's summary so far
(:class:`analysis.metrics.DailyAccumulator`: counters and histograms, so the
memory per wearer does not grow with the hours worn).
It is synchronous and does no I/O: the service feeds it ``SampleBatch``es
from the collector and forwards its ``PipelineOutput`` to the bus and to the
nudge delivery.

Nudges come from two views of the same stream (``docs/NUDGES.md``):

* **live**: :class:`analysis.live.LiveMovement` turns each second's samples
  into a provisional epoch (static or moving, walking, non-wear) as soon as
  the second is complete, and the deciding :class:`~analysis.nudge.NudgePolicy`
  runs on those: a nudge is decided at the end of the second that completes
  the static time, not after the analysis' look-ahead. Its nudges and
  outcomes (answered, response delay) are what is delivered and recorded.
* **smoothed**: a second policy runs on the analysis' decided epochs; its
  nudges are not delivered but matched with the live ones
  (:class:`~analysis.live.NudgeCrossCheck`), so every live nudge is reported
  as confirmed by the smoothed analysis or not.

While no nudge can fall due soon (``NudgePolicy.may_nudge_within``) the
samples are turned into provisional epochs in blocks of ``LIVE_BLOCK_S``
(cheap); near a decision, second by second. Both give the same epochs and
decisions, only at different times.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from analysis.contracts import NS_PER_S, DailySummary, Event, SampleBatch, empty_epochs
from analysis.live import LiveMovement, NudgeCheck, NudgeCrossCheck, live_nudge_settings
from analysis.metrics import DailyAccumulator
from analysis.nudge import (
    Nudge,
    NudgeDecisions,
    NudgeOutcome,
    NudgePolicy,
    NudgeResponseStats,
    NudgeSettings,
)
from analysis.settings import AnalysisSettings
from analysis.stream import AnalysisOutput, WearerAnalyzer

#: provisional epochs are computed in blocks of this many seconds of samples
#: while no nudge can fall due (one numpy pass per block instead of per second,
#: as the analysis does; 20 s of float32 samples with gyro is ~32 KB per wearer
#: at 50 Hz, 10-s blocks cost ~15 % more CPU per wearer-second)
LIVE_BLOCK_S = 20.0


@dataclass(frozen=True)
class PipelineOutput:
    """What one ``feed``/``finish`` produced, each part in time order."""

    epochs: npt.NDArray[np.void] = field(default_factory=lambda: empty_epochs(0))
    events: tuple[Event, ...] = ()
    nudges: tuple[Nudge, ...] = ()
    outcomes: tuple[NudgeOutcome, ...] = ()
    daily: tuple[DailySummary, ...] = ()
    checks: tuple[NudgeCheck, ...] = ()

    def __bool__(self) -> bool:
        return bool(
            len(self.epochs)
            or self.events
            or self.nudges
            or self.outcomes
            or self.daily
            or self.checks
        )


class WearerPipeline:
    """Streaming analysis + nudge policy + daily summaries for one wearer.

    Parameters
    ----------
    site, wearer, sensor : identity (pseudonym only) used in ids and outputs
    analysis : analysis thresholds (defaults from reference/metrics.md)
    nudges : the wearer's nudge plan
    tz : the wearer's local time zone (days and quiet hours are local)
    """

    def __init__(
        self,
        site: str,
        wearer: str,
        sensor: str,
        *,
        analysis: AnalysisSettings | None = None,
        nudges: NudgeSettings | None = None,
        tz: dt.tzinfo = dt.UTC,
        calibration_ns: tuple[tuple[int, int], ...] = (),
    ) -> None:
        self.site, self.wearer, self.sensor = site, wearer, sensor
        self.settings = analysis or AnalysisSettings()
        self.tz = tz
        self.analyzer = WearerAnalyzer(self.settings, calibration_ns=calibration_ns)
        self.nudge_settings = nudges or NudgeSettings()
        self.live = LiveMovement(self.settings)
        #: decides (and resolves) the nudges that are delivered, on provisional epochs
        self.policy = NudgePolicy(wearer, live_nudge_settings(self.nudge_settings), tz=tz)
        #: the same plan on the decided epochs: only to confirm the live nudges
        self.smoothed_policy = NudgePolicy(wearer, self.nudge_settings, tz=tz)
        self.crosscheck = NudgeCrossCheck()
        # samples waiting for the live front end: (t_ns, accel_g, gyro_dps), float32
        self._live_in: list[
            tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.float32] | None]
        ] = []
        self._live_rate_hz = 0.0
        self._day: str | None = None
        # static periods from the day's own epochs: one still open at local
        # midnight ends there for this day's summary (the analysis' event
        # only comes when it ends, after the summary is out)
        self._day_acc = DailyAccumulator(self.settings, own_static_periods=True)
        # nudges not yet summarised and the outcomes known so far (per day)
        self._nudges: list[Nudge] = []
        self._outcomes: dict[str, NudgeOutcome] = {}
        self.last_epoch: npt.NDArray[np.void] | None = None
        self.last_live_epoch: npt.NDArray[np.void] | None = None
        self.samples_in = 0
        self.epochs_out = 0

    def _local_day(self, time_ns: int) -> str:
        return dt.datetime.fromtimestamp(time_ns / NS_PER_S, tz=self.tz).date().isoformat()

    def feed(self, batch: SampleBatch) -> PipelineOutput:
        self.samples_in += len(batch)
        live, block = self._live(batch, final=False)
        # the analysis gets the samples once the live front end has taken
        # them: one copy of the waiting samples per wearer, not two (the
        # analysis buffers its input the same way; any chunking gives the
        # same result)
        out = (
            self.analyzer.feed(block) if block is not None else AnalysisOutput(empty_epochs(0), ())
        )
        return self._consume(out, live, final=False)

    def finish(self) -> PipelineOutput:
        """End of stream: decide what is pending and summarise the (partial) day."""
        live, block = self._live(None, final=True)
        parts = [self.analyzer.feed(block)] if block is not None else []
        out = AnalysisOutput.concat([*parts, self.analyzer.finish()])
        return self._consume(out, live, final=True)

    def _live(
        self, batch: SampleBatch | None, *, final: bool
    ) -> tuple[NudgeDecisions, SampleBatch | None]:
        """Provisional epochs -> the deciding policy, now if a nudge may be near.

        Returns the decisions and the block of samples the live front end has
        just consumed (None while they wait)."""
        if batch is not None and len(batch):
            # float32 as the live front end reads them (16-bit sensors): half the memory
            self._live_in.append(
                (
                    batch.t_ns,
                    batch.accel_g.astype(np.float32),
                    None if batch.gyro_dps is None else batch.gyro_dps.astype(np.float32),
                )
            )
            self._live_rate_hz = batch.rate_hz
        if not self._live_in and not final:
            return NudgeDecisions(), None
        if not final:
            t_last = int(self._live_in[-1][0][-1])
            span_s = (t_last - int(self._live_in[0][0][0])) / NS_PER_S
            done = self.live.pending_until_ns
            base = int(self._live_in[0][0][0]) if done is None else done
            # seconds these samples may complete (the unfinished one included)
            n_sec = (t_last - base) // NS_PER_S + 2
            if span_s < LIVE_BLOCK_S and not self.policy.may_nudge_within(int(n_sec)):
                return NudgeDecisions(), None
        # the analysis' current upright reference gives the flexion (if the plan uses it)
        ref = self.analyzer.reference if self.nudge_settings.flexion_nudge else None
        block = self._joined() if self._live_in else None
        parts = [self.live.push(block, ref)] if block is not None else []
        self._live_in = []
        if final:
            parts.append(self.live.flush(ref))
        epochs = np.concatenate(parts) if parts else empty_epochs(0)
        if not len(epochs):
            return NudgeDecisions(), block
        self.last_live_epoch = epochs[-1]
        return self.policy.feed(epochs), block

    def _joined(self) -> SampleBatch:
        """One batch of the waiting samples (one numpy pass for a block)."""
        parts = self._live_in
        gyros = [g for _, _, g in parts]
        return SampleBatch(
            self.sensor,
            self.wearer,
            self._live_rate_hz,
            parts[0][0] if len(parts) == 1 else np.concatenate([t for t, _, _ in parts]),
            np.concatenate([a for _, a, _ in parts]).astype(np.float64),
            # mixed: the live filter falls back to the accelerometer for this block
            None if any(g is None for g in gyros) else np.concatenate(gyros).astype(np.float64),  # type: ignore[arg-type]
        )

    def _consume(self, out: AnalysisOutput, live: NudgeDecisions, *, final: bool) -> PipelineOutput:
        epochs = out.epochs
        if live:
            self._nudges.extend(live.nudges)
            waiting = {n.nudge_id for n in self._nudges}  # older days are summarised
            self._outcomes.update((o.nudge_id, o) for o in live.outcomes if o.nudge_id in waiting)
        smoothed = self.smoothed_policy.feed(epochs) if len(epochs) else NudgeDecisions()
        checks = self.crosscheck.update(
            live.nudges,
            smoothed.nudges,
            live_horizon_ns=self.live.pending_until_ns,
            smoothed_horizon_ns=int(epochs["time_ns"][-1]) + NS_PER_S if len(epochs) else None,
            final=final,
        )
        daily = self._roll_days(epochs, out.events)
        if final and self._day is not None:
            daily.append(self._summarise())
        if len(epochs):
            self.last_epoch = epochs[-1]
            self.epochs_out += len(epochs)
        return PipelineOutput(
            epochs=epochs,
            events=out.events,
            nudges=live.nudges,
            outcomes=live.outcomes,
            daily=tuple(daily),
            checks=tuple(checks),
        )

    def _roll_days(
        self, epochs: npt.NDArray[np.void], events: tuple[Event, ...]
    ) -> list[DailySummary]:
        """Append to the current local day; summarise each day that ended."""
        done: list[DailySummary] = []
        if len(epochs):
            days = np.array([self._local_day(int(t)) for t in epochs["time_ns"][[0, -1]]])
            if days[0] == days[1]:
                cuts = [(days[0], 0, len(epochs))]
            else:  # a day boundary inside this chunk: split per epoch (rare)
                labels = [self._local_day(int(t)) for t in epochs["time_ns"]]
                cuts = []
                start = 0
                for i in range(1, len(labels) + 1):
                    if i == len(labels) or labels[i] != labels[start]:
                        cuts.append((labels[start], start, i))
                        start = i
            for day, a, b in cuts:
                if self._day is not None and day != self._day:
                    done.append(self._summarise())
                self._day = str(day)
                self._day_acc.push(epochs[a:b])
        return done

    def _summarise(self) -> DailySummary:
        assert self._day is not None
        summary = self._day_acc.summary(self._day)
        # the day's nudges (sent that local day) and how they were answered;
        # an outcome not known yet counts as pending, outside the rate
        mine = [n for n in self._nudges if self._local_day(n.time_ns) == self._day]
        stats = NudgeResponseStats.of(
            mine, [self._outcomes[n.nudge_id] for n in mine if n.nudge_id in self._outcomes]
        )
        summary = dataclasses.replace(summary, **stats.as_daily_fields())
        done = {n.nudge_id for n in mine}
        self._nudges = [n for n in self._nudges if n.nudge_id not in done]
        for nid in done:
            self._outcomes.pop(nid, None)
        self._day = None
        self._day_acc = DailyAccumulator(self.settings, own_static_periods=True)
        return summary

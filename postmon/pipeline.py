"""Per-wearer processing at the edge: samples in, everything a therapist needs out.

One ``WearerPipeline`` per worn sensor holds the streaming analysis, the
nudge policy and the current local day's epochs (for the daily summary).
It is synchronous and does no I/O: the service feeds it ``SampleBatch``es
from the collector and forwards its ``PipelineOutput`` to the bus and to the
nudge delivery.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from analysis.contracts import NS_PER_S, DailySummary, Event, SampleBatch, empty_epochs
from analysis.metrics import daily_summary
from analysis.nudge import Nudge, NudgeOutcome, NudgePolicy, NudgeResponseStats, NudgeSettings
from analysis.settings import AnalysisSettings
from analysis.stream import AnalysisOutput, WearerAnalyzer


@dataclass(frozen=True)
class PipelineOutput:
    """What one ``feed``/``finish`` produced, each part in time order."""

    epochs: npt.NDArray[np.void] = field(default_factory=lambda: empty_epochs(0))
    events: tuple[Event, ...] = ()
    nudges: tuple[Nudge, ...] = ()
    outcomes: tuple[NudgeOutcome, ...] = ()
    daily: tuple[DailySummary, ...] = ()

    def __bool__(self) -> bool:
        return bool(len(self.epochs) or self.events or self.nudges or self.outcomes or self.daily)


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
        self.policy = NudgePolicy(wearer, nudges, tz=tz)
        self._day: str | None = None
        self._day_epochs: list[npt.NDArray[np.void]] = []
        self._day_events: list[Event] = []
        # nudges not yet summarised and the outcomes known so far (per day)
        self._nudges: list[Nudge] = []
        self._outcomes: dict[str, NudgeOutcome] = {}
        self.last_epoch: npt.NDArray[np.void] | None = None
        self.samples_in = 0
        self.epochs_out = 0

    def _local_day(self, time_ns: int) -> str:
        return dt.datetime.fromtimestamp(time_ns / NS_PER_S, tz=self.tz).date().isoformat()

    def feed(self, batch: SampleBatch) -> PipelineOutput:
        self.samples_in += len(batch)
        return self._consume(self.analyzer.feed(batch), final=False)

    def finish(self) -> PipelineOutput:
        """End of stream: decide what is pending and summarise the (partial) day."""
        return self._consume(self.analyzer.finish(), final=True)

    def _consume(self, out: AnalysisOutput, *, final: bool) -> PipelineOutput:
        epochs = out.epochs
        decisions = self.policy.feed(epochs) if len(epochs) else None
        if decisions:
            self._nudges.extend(decisions.nudges)
            waiting = {n.nudge_id for n in self._nudges}  # older days are summarised
            self._outcomes.update(
                (o.nudge_id, o) for o in decisions.outcomes if o.nudge_id in waiting
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
            nudges=decisions.nudges if decisions else (),
            outcomes=decisions.outcomes if decisions else (),
            daily=tuple(daily),
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
                self._day_epochs.append(epochs[a:b])
        self._day_events.extend(events)
        return done

    def _summarise(self) -> DailySummary:
        assert self._day is not None
        ep = np.concatenate(self._day_epochs) if self._day_epochs else empty_epochs(0)
        t0 = int(ep["time_ns"][0]) if len(ep) else 0
        t1 = int(ep["time_ns"][-1]) + NS_PER_S if len(ep) else 0
        ev = [e for e in self._day_events if t0 <= e.time_ns < t1]
        # events that start after this day belong to the next one
        self._day_events = [e for e in self._day_events if e.time_ns >= t1]
        summary = daily_summary(ep, ev, self._day, self.settings)
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
        self._day, self._day_epochs = None, []
        return summary

"""Per-wearer streaming analysis; the batch API is the same object fed once.

``WearerAnalyzer`` takes ``SampleBatch``es of any size and returns the 1-s
epochs and events decided so far; ``finish()`` flushes the rest at the end of
a recording. ``analyze_batch`` is exactly ``feed`` + ``finish`` on one batch,
so streaming and batch results are the same by construction (and a property
test checks it for random chunkings).

Pipeline per wearer::

    samples -> Resampler -> GravityFilter -> FeatureExtractor   (causal, per sample)
            -> window features (needs WINDOW_EPOCHS s of look-ahead)
            -> gait / transition probabilities, angle vs reference
               (none placed before the sensor has settled on the body: at
               the start of a stream and after non-wear, ``_onset``)
            -> every ``commit_block_s``, once ``decision_lag_s`` of look-ahead
               exists: add the angle evidence with the upright reference known
               *now*, Viterbi from the last committed state over the whole
               look-ahead, commit the oldest block, emit epochs + events.

Memory per wearer is bounded by the look-ahead (about 40 KB with the
defaults, see ``state_nbytes``); nothing grows with the recording length.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analysis.activity import (
    LIE,
    N_STATES,
    PEAK_RADIUS,
    SIT,
    STAND,
    STATES,
    TRANSITIONS,
    WALK,
    WINDOW_EPOCHS,
    ActivityModel,
    PostureExemplars,
    angle_loglik,
    bend_and_return,
    hmm_inputs,
    movement_peaks,
    personal_sit_stand,
    reclined_standing,
    transition_probabilities,
    upper_back_sitting,
    viterbi,
    walk_probability,
    window_features,
)
from analysis.contracts import NS_PER_S, Activity, Event, SampleBatch, empty_epochs
from analysis.orientation import (
    SEATED_STRETCH_MIN_S,
    SEATED_STRETCH_SPREAD_MAX_DEG,
    SEATED_TILT_MIN_DEG,
    Reference,
    ReferenceEstimator,
    SeatedDirection,
    trunk_angles,
)
from analysis.preprocess import (
    FEATURE_DTYPE,
    FeatureExtractor,
    GravityFilter,
    Resampler,
)
from analysis.settings import AnalysisSettings

F64 = npt.NDArray[np.float64]

#: (from state, to state) -> transition event kind. Walking counts as upright.
_KIND = {(a, b): name for name, a, b in TRANSITIONS}
_KIND[(WALK, SIT)] = "stand_to_sit"
_KIND[(SIT, WALK)] = "sit_to_stand"
_KIND[(WALK, LIE)] = "stand_to_lie"
_KIND[(LIE, WALK)] = "lie_to_stand"
_TRANS_CLASS = {name: i for i, (name, _, _) in enumerate(TRANSITIONS, start=1)}
#: posture before / after each transition class (index 0, no transition: -1)
_TRANS_FROM = np.array([-1] + [a for _, a, _ in TRANSITIONS], dtype=np.int64)
_TRANS_TO = np.array([-1] + [b for _, _, b in TRANSITIONS], dtype=np.int64)
_STATE_CODE = np.array([int(a) for a in STATES], dtype=np.int8)
#: an epoch with less data than this carries no evidence
_MIN_COVERAGE = 0.2
#: a sit/stand transition this probable anchors the fallback upright reference
_CONFIDENT = 0.8
#: ... and, this probable, makes the still stretch after it (stand-to-sit) or
#: before it (sit-to-stand) a sample of the wearer's seated direction
_SEATED_CONFIDENT = 0.9
#: a transition is reported from a posture held at least this long (s), and
#: once the posture it leads to has been held this long: a posture held for
#: less (sitting on the edge of the bed on the way to lying down) is part of
#: one transition through it, not two transitions
_MIN_HELD_S = 6
#: a run of non-wear candidate seconds (the sensor's own noise only, no
#: breathing) this long (s) is the sensor put down for a moment, not a body
#: holding still: not static, so it ends a static period. Worn, the stillest
#: runs last 1-3 s (HAPT and the simulator's devices).
OFF_BODY_MIN_S = 5
#: the posture next to a transition is read this many seconds (and up to 3
#: more) before and after its movement peak (``PostureExemplars``)
_EXEMPLAR_GAP_S = 3
#: the stream is settled on the body once the wearer has been still or
#: walking this many consecutive seconds (s); before that, at the start of a
#: stream or after non-wear, movement is the sensor being put on and settled,
#: not a postural transition (``WearerAnalyzer._onset``)
_SETTLE_S = _MIN_HELD_S
#: samples per front-end call for long inputs (whole recordings)
_FRONT_END_BLOCK = 1 << 16
#: posture of each HMM state for transition events (walking is upright)
_POSTURE_OF = np.array([LIE, SIT, STAND, STAND], dtype=np.int64)


@dataclass(frozen=True, slots=True)
class _PendingTransition:
    """A posture change not yet reported (its new posture is not yet held)."""

    index: int  # absolute epoch of the latest change of this transition
    time_ns: int  # when the transition began (reported time)
    from_state: int  # posture before (LIE, SIT or STAND)
    to_state: int  # posture after
    p_trans: npt.NDArray[np.float32]  # (N_TRANS_CLASSES,) max classifier probabilities
    tilt: npt.NDArray[np.float64]  # (3,) forward-lean evidence of the first change


@dataclass(frozen=True, slots=True)
class AnalysisOutput:
    """Epochs (``EPOCH_DTYPE``, consecutive, oldest first) and events decided."""

    epochs: npt.NDArray[np.void]
    events: tuple[Event, ...]

    @staticmethod
    def concat(parts: Sequence[AnalysisOutput]) -> AnalysisOutput:
        if not parts:
            return AnalysisOutput(empty_epochs(0), ())
        return AnalysisOutput(
            np.concatenate([p.epochs for p in parts]),
            tuple(e for p in parts for e in p.events),
        )


def _nan_features(n: int, first_ns: int) -> npt.NDArray[np.void]:
    f = np.zeros(n, FEATURE_DTYPE)
    for name in FEATURE_DTYPE.names or ():
        if name != "time_ns" and np.issubdtype(f[name].dtype, np.floating):
            f[name] = np.nan
    f["coverage"] = 0.0
    f["time_ns"] = first_ns + np.arange(n, dtype=np.int64) * NS_PER_S
    return f


@dataclass(frozen=True, slots=True)
class WearerKnowledge:
    """What one wear period of a stream taught about its wearer.

    The upright reference and forward direction, the wearer's seated
    directions and their own sitting and standing exemplars: everything the
    analysis learns as the recording goes on, and forgets at non-wear (the
    sensor may come back at another rotation). A whole recording is analysed
    twice (``analyze_batch``, ``postmon analyze``): the second pass starts
    each wear period with what the first learnt over all of it, so that the
    minutes before the first confident transition, or before the first
    forward lean, are judged as well as the rest. The second pass adds its
    own evidence on top, so it counts twice; harmless, since the reference
    is a mean of that same evidence and the exemplars and seated directions
    keep only the most recent ones.
    """

    reference: ReferenceEstimator
    seated: SeatedDirection
    exemplars: PostureExemplars


class WearerAnalyzer:
    """Streaming analysis state for one wearer (one sensor stream).

    Parameters
    ----------
    settings : thresholds and processing constants
    model : activity model parameters (default: the shipped, trained model)
    calibration_ns : explicit "stand tall" calibration intervals, each
        ``(start_ns, end_ns)`` in the stream's clock. Seconds fully inside one
        define the upright reference (instead of the automatic one).
    knowledge : what an earlier pass over the same recording learnt, one
        ``WearerKnowledge`` per wear period (``learned()`` of that pass):
        each wear period starts with it instead of knowing nothing.
    keep_knowledge : keep what each wear period taught, for ``learned()``
        (a first pass; off for live streams, which would accumulate it)

    Notes
    -----
    ``feed`` returns only what has been decided: epochs lag the input by
    ``settings.decision_lag_s`` to ``decision_lag_s + commit_block_s`` seconds.
    """

    def __init__(
        self,
        settings: AnalysisSettings | None = None,
        *,
        model: ActivityModel | None = None,
        calibration_ns: Sequence[tuple[int, int]] = (),
        knowledge: Sequence[WearerKnowledge] = (),
        keep_knowledge: bool = False,
    ) -> None:
        if model is None:
            from analysis.model_params import MODEL

            model = MODEL
        self.settings = s = settings or AnalysisSettings()
        self.model = model
        self.calibration_ns = tuple((int(a), int(b)) for a, b in calibration_ns)
        self._pending: list[
            tuple[
                npt.NDArray[np.int64],
                npt.NDArray[np.float32],
                npt.NDArray[np.float32] | None,
                float,
            ]
        ] = []
        self._pending_n = 0
        self._buffer_ns = round(s.stream_buffer_s * NS_PER_S)
        #: bound on buffered samples whatever the rate (memory per wearer)
        self._buffer_max = 1024
        self._resampler = Resampler(s)
        self._gravity = GravityFilter(s)
        self._features = FeatureExtractor(s)
        self._ref = ReferenceEstimator(s.calib_walking_min_s)
        self._seated = SeatedDirection()
        # the still stretch since the last movement peak (seated-direction
        # evidence): sum of up directions, seconds, walking seen,
        # and whether it began with a confident stand-to-sit
        self._st_sum = np.zeros(3)
        self._st_n = 0
        self._st_broken = False
        self._st_sat_down = False
        self._exemplars = PostureExemplars()
        # wear periods: what a first pass learnt in each, what this one learns
        self._knowledge = tuple(knowledge)
        self._wear_period = 0
        self._keep_knowledge = keep_knowledge
        self._learned: list[WearerKnowledge] = []
        if self._knowledge:
            self._load_knowledge(self._knowledge[0])
        # onset (``_onset``): settled on the body yet, length of the current
        # run of settled-looking seconds, of non-wear candidate seconds
        self._settled = False
        self._settle_run = 0
        self._offbody_run = 0
        from analysis.metrics import EventTracker

        self._tracker = EventTracker(s)
        # epochs of context needed on each side of an epoch before it is decoded
        self._w = WINDOW_EPOCHS + PEAK_RADIUS
        self._lag_v = max(1, s.decision_lag_s - self._w)
        self._block = s.commit_block_s
        self._buf: npt.NDArray[np.void] = np.zeros(0, FEATURE_DTYPE)
        self._buf_start = 0  # absolute epoch index of _buf[0]
        self._n_seen = 0
        self._n_entered = 0
        self._n_committed = 0
        self._started = False
        self._finished = False
        # per entered, uncommitted epoch
        self._em = np.zeros((0, N_STATES))
        self._special = np.zeros(0, dtype=bool)
        self._lt_sp = np.zeros((0, N_STATES, N_STATES))
        self._stand_ev = np.zeros((0, 3))
        # the lean of deep bends that return (forward-sign evidence), NaN elsewhere
        self._bend_lean = np.zeros((0, 3), dtype=np.float32)
        self._sit_ev = np.zeros((0, 3))
        # (float32: per-second evidence held for the look-ahead, most of it NaN)
        self._sit_ex = np.zeros((0, 3), dtype=np.float32)
        self._stand_ex = np.zeros((0, 3), dtype=np.float32)
        self._n_ingested = 0
        self._pwalk = np.zeros(0)
        # transition probabilities held for events and exemplars (float32: the
        # decoder's inputs are computed in float64 before they are stored)
        self._ptrans = np.zeros((0, len(TRANSITIONS) + 1), dtype=np.float32)
        self._tilt = np.zeros((0, 3))
        self._cand = np.zeros(0, dtype=bool)
        self._last_state = -1
        self._run_len = 0  # seconds the last committed posture has lasted
        self._pending_event: _PendingTransition | None = None
        #: first epoch of the handling that ends the stream (``_offset``)
        self._end_tail: int | None = None
        self._cand_run_start = -1  # absolute index where the current candidate run began

    # ------------------------------------------------------------------ API
    @property
    def reference(self) -> Reference | None:
        """The current neutral frame (None until one is known)."""
        return self._ref.reference()

    def learned(self) -> tuple[WearerKnowledge, ...]:
        """What each wear period taught (needs ``keep_knowledge`` and ``finish``)."""
        if not self._keep_knowledge or not self._finished:
            raise RuntimeError("learned() needs keep_knowledge=True and a finished stream")
        return tuple(self._learned)

    def _snapshot(self) -> WearerKnowledge:
        return WearerKnowledge(
            copy.deepcopy(self._ref), copy.deepcopy(self._seated), copy.deepcopy(self._exemplars)
        )

    def _load_knowledge(self, k: WearerKnowledge) -> None:
        self._ref = copy.deepcopy(k.reference)
        self._seated = copy.deepcopy(k.seated)
        self._exemplars = copy.deepcopy(k.exemplars)

    @property
    def dropped_samples(self) -> int:
        """Out-of-order or duplicate samples ignored so far."""
        return self._resampler.dropped_samples

    def feed(self, batch: SampleBatch) -> AnalysisOutput:
        """Add samples; return the epochs and events decided so far.

        Samples are analysed in blocks of ``settings.stream_buffer_s``: a live
        stream fed second by second pays numpy's per-call overhead once per
        block instead of once per second. The front end gives identical
        results for any chunking, so this changes no output, only when it
        appears (within the decoder's look-ahead anyway).
        """
        if self._finished:
            raise RuntimeError("this analyzer has finished; create a new one")
        if len(batch) == 0:
            return AnalysisOutput(empty_epochs(0), ())
        # Sensors deliver at most 16-bit samples: float32 holds them exactly and
        # halves the buffer. Every path (live or whole recording) goes through
        # here, so the results stay identical whatever the chunking.
        self._pending.append(
            (
                batch.t_ns,
                batch.accel_g.astype(np.float32),
                None if batch.gyro_dps is None else batch.gyro_dps.astype(np.float32),
                batch.rate_hz,
            )
        )
        self._pending_n += len(batch)
        span_ns = int(batch.t_ns[-1]) - int(self._pending[0][0][0])
        if span_ns < self._buffer_ns and self._pending_n < self._buffer_max:
            return AnalysisOutput(empty_epochs(0), ())
        return self._process_pending()

    def _process_pending(self) -> AnalysisOutput:
        if not self._pending:
            return AnalysisOutput(empty_epochs(0), ())
        parts = self._pending
        self._pending = []
        self._pending_n = 0
        if len(parts) == 1:
            t, acc, gyro = parts[0][0], parts[0][1], parts[0][2]
        else:
            t = np.concatenate([p[0] for p in parts])
            acc = np.concatenate([p[1] for p in parts])
            gyro = None
            if all(p[2] is not None for p in parts):
                gyro = np.concatenate([p[2] for p in parts if p[2] is not None])
            # else mixed: the fusion falls back to the accelerometer for this block
        rate = parts[-1][3]
        if t.size <= _FRONT_END_BLOCK:
            grid = self._resampler.push(t, acc, gyro, rate)
            return self._epochs_in(self._features.push(grid, self._gravity.push(grid)))
        # a long recording in cache-sized blocks: the front end gives the same
        # answer for any chunking, and ~64 k samples keep its working set in cache
        out = []
        for a in range(0, t.size, _FRONT_END_BLOCK):
            sl = slice(a, a + _FRONT_END_BLOCK)
            grid = self._resampler.push(t[sl], acc[sl], None if gyro is None else gyro[sl], rate)
            out.append(self._epochs_in(self._features.push(grid, self._gravity.push(grid))))
        return AnalysisOutput.concat(out)

    def feed_features(self, feats: npt.NDArray[np.void]) -> AnalysisOutput:
        """Feed per-second ``FEATURE_DTYPE`` rows directly (model training/tuning).

        Equivalent to ``feed`` with the samples those features came from.
        """
        return self._epochs_in(feats)

    def finish(self) -> AnalysisOutput:
        """End of stream: decide and return everything still pending."""
        if self._finished:
            return AnalysisOutput(empty_epochs(0), ())
        parts = [self._process_pending(), self._epochs_in(self._features.flush())]
        self._finished = True
        if self._started:
            # pad the look-ahead with "no data" so the last epochs can be entered
            tail = _nan_features(self._w, int(self._buf["time_ns"][-1]) + NS_PER_S)
            self._buf = np.concatenate((self._buf, tail))
            self._enter(self._n_entered, self._n_seen)
            self._offset()
            parts.append(self._commit(self._n_entered - self._n_committed))
        events = []
        if self._pending_event is not None:
            # the stream ended before the new posture was held long: report it anyway
            ev = self._report(self._pending_event)
            events += [] if ev is None else [ev]
            self._pending_event = None
        events += self._tracker.finish()
        parts.append(AnalysisOutput(empty_epochs(0), tuple(events)))
        if self._keep_knowledge:
            self._learned.append(self._snapshot())
        return AnalysisOutput.concat(parts)

    def state_nbytes(self) -> int:
        """Bytes of numeric state held for this wearer (arrays and carried samples)."""
        n = self._buf.nbytes + self._em.nbytes + self._lt_sp.nbytes + self._special.nbytes
        n += self._pwalk.nbytes + self._ptrans.nbytes + self._tilt.nbytes + self._cand.nbytes
        n += self._stand_ev.nbytes + self._sit_ev.nbytes + self._seated.state_bytes + 48
        n += self._bend_lean.nbytes
        n += self._sit_ex.nbytes + self._stand_ex.nbytes + self._exemplars.state_bytes
        n += self._features.state_nbytes
        gz = self._gravity.z
        n += 0 if gz is None else gz.nbytes
        rs = self._resampler
        n += 0 if rs.box_hist is None else rs.box_hist.nbytes
        n += self._ref.state_bytes + 256  # scalars
        n += sum(
            p[0].nbytes + p[1].nbytes + (0 if p[2] is None else p[2].nbytes) for p in self._pending
        )
        return int(n)

    # ------------------------------------------------------------ internals
    def _epochs_in(self, feats: npt.NDArray[np.void]) -> AnalysisOutput:
        if feats.size == 0:
            return AnalysisOutput(empty_epochs(0), ())
        if not self._started:
            self._started = True
            pad = _nan_features(self._w, int(feats["time_ns"][0]) - self._w * NS_PER_S)
            self._buf = pad
            self._buf_start = -self._w
        self._buf = np.concatenate((self._buf, feats))
        self._n_seen += feats.size
        ready = self._n_seen - self._w
        if ready > self._n_entered:
            self._enter(self._n_entered, ready)
        parts = []
        while self._n_entered - self._n_committed >= self._lag_v + self._block:
            parts.append(self._commit(self._block))
        return AnalysisOutput.concat(parts)

    def _in_calibration(self, t_ns: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        m = np.zeros(t_ns.size, dtype=bool)
        for a, b in self.calibration_ns:
            m |= (t_ns >= a) & (t_ns + NS_PER_S <= b)
        return m

    def _ingest_reference(self, upto: int) -> None:
        """Feed the upright-reference evidence of seconds up to ``upto`` (absolute).

        Evidence is computed when seconds are entered but consumed only here,
        at commit boundaries that depend on the second count alone, so the
        reference a commit sees never depends on how the input was chunked.
        """
        a0 = self._n_ingested
        if upto <= a0:
            return
        k = a0 - self._n_committed
        n = upto - a0
        f = self._buf[a0 - self._buf_start : upto - self._buf_start]
        ref = self._ref
        g = f["g"]
        okg = np.isfinite(g).all(axis=1) & (f["coverage"] >= _MIN_COVERAGE)
        wmask = okg & (self._pwalk[k : k + n] > 0.8)
        if wmask.any():
            ref.add_walking(g[wmask], f["hcovk"][wmask])
        cmask = okg & self._in_calibration(f["time_ns"])
        if cmask.any():
            ref.add_calibration(g[cmask])
        ref.add_forward_tilt(self._bend_lean[k : k + n].astype(np.float64))
        sev = self._sit_ev[k : k + n]
        r0 = ref.reference()
        if r0 is not None:
            # a stretch this close to upright may as well have been standing
            # (between two bends that looked like sitting down and getting up)
            with np.errstate(invalid="ignore"):
                tilt = np.degrees(np.arccos(np.clip(sev @ r0.up, -1.0, 1.0)))
            sev = np.where((tilt >= SEATED_TILT_MIN_DEG)[:, None], sev, np.nan)
            self._seated.add(sev)
        self._exemplars.add(
            self._sit_ex[k : k + n].astype(np.float64), self._stand_ex[k : k + n].astype(np.float64)
        )
        if ref.walk_n < ref.walking_min_s:
            # before any walking: standing seen around confident sit/stand transitions
            gs = self._stand_ev[k : k + n]
            ok = np.isfinite(gs).all(axis=1)
            if ok.any():
                ref.add_standing(np.repeat(gs[ok], 3, axis=0))
        self._n_ingested = upto

    def _enter(self, a0: int, a1: int) -> None:
        """Compute the evidence for absolute epochs a0..a1-1 (decoded at commit)."""
        s = self.settings
        k0, k1 = a0 - self._buf_start, a1 - self._buf_start
        r = PEAK_RADIUS
        walk_x, trans_x, tilt, gb, ga = window_features(self._buf, k0 - r, k1 + r)
        pw = walk_probability(self.model, walk_x)[r:-r]
        pt_ctx = transition_probabilities(self.model, trans_x)
        # a deep bend that returns where it began changes no posture (and
        # shows which way is forward: nobody bends 45° backwards)
        bend = bend_and_return(trans_x)
        pt_ctx[bend] = np.eye(pt_ctx.shape[1])[0]
        # no transition is placed where its window lacks data (stream start, gaps)
        ctx_ok = self._buf["coverage"] >= _MIN_COVERAGE
        win = np.lib.stride_tricks.sliding_window_view(
            ctx_ok[k0 - r - WINDOW_EPOCHS : k1 + r + WINDOW_EPOCHS], 2 * WINDOW_EPOCHS + 1
        )
        complete: npt.NDArray[np.bool_] = np.asarray(win.all(axis=1))
        pt_ctx[~complete] = np.eye(pt_ctx.shape[1])[0]
        peaks = movement_peaks(pt_ctx, r)
        pt = pt_ctx[r:-r]
        unknown = ~complete[r:-r]
        f = self._buf[k0:k1]
        informative = f["coverage"] >= _MIN_COVERAGE
        # non-wear candidates: no data, or only sensor noise (no breathing-level tilt jitter)
        cand = ~informative | (
            (f["tilt_sd_deg"] < s.nonwear_tilt_sd_deg) & (f["intensity_g"] < s.static_intensity_g)
        )
        # an explicit calibration is the wearer standing tall with the sensor
        # on: worn and settled, however still (a calm stance can be as quiet
        # as a sensor on a desk)
        calib = informative & self._in_calibration(f["time_ns"])
        cand &= ~calib
        onset = self._onset(f, pw, cand, calib)
        if onset.any():
            # the sensor being put on: no transition is placed (so none is
            # reported, and none seeds the wearer's exemplars or seated
            # directions); the first posture stays open, as without context
            pt[onset] = np.eye(pt.shape[1])[0]
            peaks = peaks & ~onset
            unknown = unknown | onset
        em, lt = hmm_inputs(self.model, pw, pt, informative, peaks, unknown)
        special = peaks | unknown
        # a confident sit-to-stand ends in standing, a confident stand-to-sit starts there
        stand_ev = np.full((a1 - a0, 3), np.nan)
        after = peaks & (pt[:, 2] > _CONFIDENT)
        before = peaks & (pt[:, 1] > _CONFIDENT)
        stand_ev[after] = ga[r:-r][after]
        stand_ev[before] = gb[r:-r][before]
        # the wearer's own postures (PostureExemplars): the still seconds on
        # either side of each confident transition show the postures it
        # leaves and reaches (sitting on a bed's edge as well as on a chair)
        sit_ex = np.full((a1 - a0, 3), np.nan, dtype=np.float32)
        stand_ex = np.full((a1 - a0, 3), np.nan, dtype=np.float32)
        cls = np.argmax(pt, axis=1)
        conf = np.flatnonzero(peaks & (cls > 0) & (pt.max(axis=1) > _CONFIDENT))
        if conf.size:
            g_bef = self._still_direction(k0, conf, -1)
            g_aft = self._still_direction(k0, conf, 1)
            src, dst = _TRANS_FROM[cls[conf]][:, None], _TRANS_TO[cls[conf]][:, None]
            nan = np.full_like(g_bef, np.nan)
            sit_ex[conf] = np.where(src == SIT, g_bef, np.where(dst == SIT, g_aft, nan))
            stand_ex[conf] = np.where(src == STAND, g_bef, np.where(dst == STAND, g_aft, nan))
        sit_ev = self._seated_evidence(f, pw, pt, special, cand)
        self._em = np.concatenate((self._em, em))
        self._special = np.concatenate((self._special, special))
        self._lt_sp = np.concatenate((self._lt_sp, lt[special]))
        self._pwalk = np.concatenate((self._pwalk, pw))
        self._ptrans = np.concatenate((self._ptrans, pt.astype(np.float32)))
        self._tilt = np.concatenate((self._tilt, tilt[r:-r]))
        self._stand_ev = np.concatenate((self._stand_ev, stand_ev))
        lean = np.where((bend[r:-r] & ~onset & (pw < 0.5))[:, None], tilt[r:-r], np.nan)
        lean = lean.astype(np.float32)  # held for the look-ahead, almost all NaN
        self._bend_lean = np.concatenate((self._bend_lean, lean))
        self._sit_ev = np.concatenate((self._sit_ev, sit_ev))
        self._sit_ex = np.concatenate((self._sit_ex, sit_ex))
        self._stand_ex = np.concatenate((self._stand_ex, stand_ex))
        self._cand = np.concatenate((self._cand, cand))
        self._n_entered = a1

    def _onset(
        self,
        f: npt.NDArray[np.void],
        pw: F64,
        cand: npt.NDArray[np.bool_],
        calib: npt.NDArray[np.bool_],
    ) -> npt.NDArray[np.bool_]:
        """(n,) True for the entered seconds before the sensor has settled on the body.

        A stream begins (and resumes after non-wear) with the sensor being put
        on: its movement is handling, not a postural transition, and the
        posture before it was never observed. The sensor has settled once the
        wearer has been still (not sensor noise alone) or walking for
        ``_SETTLE_S`` consecutive seconds, or is in an explicit calibration
        (``calib``: the wearer standing tall); a run of ``nonwear_min_s``
        non-wear candidate seconds starts a new onset. Carried second by
        second between calls, so any chunking gives the same mask.
        """
        n = cand.size
        s = self.settings
        if self._settled and self._offbody_run == 0 and not cand.any():
            return np.zeros(n, dtype=bool)  # the usual case: worn and settled
        settling = self._settling(f, pw, cand).tolist()
        calib_l = calib.tolist()
        cand_l = cand.tolist()
        out = np.zeros(n, dtype=bool)
        settled, run, off = self._settled, self._settle_run, self._offbody_run
        for i in range(n):
            off = off + 1 if cand_l[i] else 0
            if off >= s.nonwear_min_s:
                settled, run = False, 0
            if not settled:
                run = run + 1 if settling[i] else 0
                settled = run >= _SETTLE_S or calib_l[i]
                out[i] = not settled
        self._settled, self._settle_run, self._offbody_run = settled, run, off
        return out

    def _settling(
        self, f: npt.NDArray[np.void], pw: F64, cand: npt.NDArray[np.bool_]
    ) -> npt.NDArray[np.bool_]:
        """(n,) seconds that show the sensor on a body at rest or walking: still
        beyond sensor noise alone (not a non-wear candidate), or walking."""
        s = self.settings
        still = (f["intensity_g"] < s.static_intensity_g) & (f["rot_deg"] < s.static_rotation_deg)
        out: npt.NDArray[np.bool_] = ~cand & (still | (pw > 0.5))
        return out

    def _offset(self) -> None:
        """At the end of the stream: no posture change after the wearer last settled.

        A recording usually ends with the sensor being taken off, and its
        last seconds are that handling: a turn of the sensor that looks like
        sitting down or lying down (four of the five sit/stand events the
        analysis found in HAPT's unlabelled seconds came after the last label
        and ended 35-55 degrees away from every posture held). The mirror
        image of ``_onset``: the seconds after the last ``_SETTLE_S`` still
        (or walking) seconds of the undecided look-ahead may not change the
        posture, which stays the last one held. If the look-ahead holds no
        such run, nothing is changed (there is nothing to anchor the end to).
        """
        n = self._n_entered - self._n_committed
        if n <= 0:
            return
        k0 = self._n_committed - self._buf_start
        settling = self._settling(self._buf[k0 : k0 + n], self._pwalk[:n], self._cand[:n])
        # end of the last run of at least _SETTLE_S settling seconds
        run = np.convolve(settling.astype(np.int64), np.ones(_SETTLE_S, dtype=np.int64), "valid")
        full = np.flatnonzero(run == _SETTLE_S)
        if full.size == 0:
            return
        tail = int(full[-1]) + _SETTLE_S  # first second after that run
        self._end_tail = self._n_committed + tail
        sp_idx = np.flatnonzero(self._special[:n])
        drop = sp_idx >= tail
        if drop.any():
            self._lt_sp = np.delete(self._lt_sp, np.flatnonzero(drop), axis=0)
            self._special[sp_idx[drop]] = False
            self._ptrans[tail:n] = np.eye(self._ptrans.shape[1])[0]

    def _seated_evidence(
        self,
        f: npt.NDArray[np.void],
        pw: F64,
        pt: F64,
        special: npt.NDArray[np.bool_],
        cand: npt.NDArray[np.bool_],
    ) -> F64:
        """Seated directions of still stretches ending in the entered seconds.

        A stretch runs between two special seconds (movement peaks or seconds
        without transition context). It is a seated sample when it lasted
        ``SEATED_STRETCH_MIN_S`` informative seconds (sensor noise alone, as
        off the body, does not count) without walking, kept one direction (RMS spread below
        ``SEATED_STRETCH_SPREAD_MAX_DEG``) and began
        with a confident stand-to-sit or ends with a confident sit-to-stand;
        its unit mean direction is placed at the second that ends it (NaN
        elsewhere), to be consumed with the other reference evidence. The
        stretch state carries over between calls, second by second, so any
        chunking gives the same samples.

        Returns (n, 3).
        """
        n = special.size
        out = np.full((n, 3), np.nan)
        g = f["g"]
        # seconds showing only sensor noise (maybe off the body) do not count
        ok = (f["coverage"] >= _MIN_COVERAGE) & np.isfinite(g).all(axis=1) & ~cand
        gz = np.where(ok[:, None], g, 0.0)
        broken = pw > 0.5
        edges = [*np.flatnonzero(special).tolist(), n]
        s0 = 0
        for e in edges:
            if e > s0:
                self._st_sum = self._st_sum + gz[s0:e].sum(axis=0)
                self._st_n += int(np.count_nonzero(ok[s0:e]))
                self._st_broken = self._st_broken or bool(broken[s0:e].any())
            if e == n:
                break
            stood_up = bool(pt[e, 2] > _SEATED_CONFIDENT)
            if (
                self._st_n >= SEATED_STRETCH_MIN_S
                and not self._st_broken
                and (self._st_sat_down or stood_up)
            ):
                nrm = float(np.linalg.norm(self._st_sum))
                # one posture throughout: the directions stay close to their mean
                spread = np.degrees(np.sqrt(max(0.0, 2.0 * (1.0 - nrm / self._st_n))))
                if nrm > 0 and spread < SEATED_STRETCH_SPREAD_MAX_DEG:
                    out[e] = self._st_sum / nrm
            self._st_sum = np.zeros(3)
            self._st_n = 0
            self._st_broken = False
            self._st_sat_down = bool(pt[e, 1] > _SEATED_CONFIDENT)
            s0 = e + 1
        return out

    def _still_direction(self, k0: int, idx: npt.NDArray[np.int64], side: int) -> F64:
        """(len(idx), 3) mean up direction of the still seconds 3-6 s before
        (side -1) or after (side 1) each buffer second ``k0 + idx``, NaN with
        fewer than two: the posture held next to a transition, clear of the
        movement itself (the peak may sit anywhere in a 2-4 s transition)."""
        s = self.settings
        off = np.arange(_EXEMPLAR_GAP_S, _EXEMPLAR_GAP_S + 4) * side
        rows = (k0 + idx)[:, None] + off[None, :]  # (m, 4)
        f = self._buf[rows]
        still = (
            (f["coverage"] >= _MIN_COVERAGE)
            & (f["intensity_g"] < s.static_intensity_g)
            & (f["rot_deg"] < s.static_rotation_deg)
            & np.isfinite(f["g"]).all(axis=2)
        )
        sm = np.where(still[:, :, None], f["g"], 0.0).sum(axis=1)
        nrm = np.linalg.norm(sm, axis=1, keepdims=True)
        ok = (still.sum(axis=1) >= 2)[:, None] & (nrm > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out: F64 = np.where(ok, sm / np.where(nrm > 0, nrm, 1.0), np.nan)
        return out

    def _decode(self, p: int) -> npt.NDArray[np.int64]:
        """Viterbi over the next ``p`` uncommitted seconds from the committed
        state, with the angle evidence of the upright reference known now."""
        k0 = self._n_committed - self._buf_start
        g = self._buf["g"][k0 : k0 + p]
        ref = self._ref.reference()
        if ref is None:
            incl = np.full(p, np.nan)
        else:
            with np.errstate(invalid="ignore"):
                incl = np.degrees(np.arccos(np.clip(g @ ref.up, -1.0, 1.0)))
        upper = self.settings.placement == "upper_back"
        ll = angle_loglik(self.model, incl, g, self._seated.model(), bent_standing=upper)
        if upper:
            ll = upper_back_sitting(ll, incl)
        personal = self._exemplars.sit_minus_stand(g)
        if personal is not None:
            ll = personal_sit_stand(self.model, ll, personal)
        if ref is not None and ref.source == "calibration" and ref.fwd is not None:
            # upright known from the wearer standing tall, forward known: a
            # trunk held behind that upright is not standing
            _, flex, _ = trunk_angles(g, ref)
            ll = reclined_standing(self.model, ll, flex)
        # a sensor showing only its own noise is off the body (or about to be
        # found so): its orientation on a desk says nothing about the posture
        ll[self._cand[:p]] = 0.0
        if self._end_tail is not None:
            # ... nor does the sensor in the hand at the end (``_offset``)
            ll[max(0, self._end_tail - self._n_committed) :] = 0.0
        em = self._em[:p] + ll
        em[self._buf["coverage"][k0 : k0 + p] < _MIN_COVERAGE] = 0.0
        d = np.zeros(N_STATES)
        if self._last_state >= 0:
            d = np.full(N_STATES, -1e9)
            d[self._last_state] = 0.0
        sp = self._special[:p]
        return viterbi(
            d, em, sp, self._lt_sp[: int(np.count_nonzero(sp))], self.model.walk_switch_logp
        )

    def _nonwear(self, b: int) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """Which of the next ``b`` epochs to commit are non-wear, and which are
        off the body for a moment (not static).

        A run of candidate epochs is non-wear once it lasts ``nonwear_min_s``;
        since ``decision_lag_s`` exceeds that, a run reaching into the
        look-ahead is already known to be long enough when its first epoch is
        committed, so the decision never depends on the chunking. A shorter
        run of at least ``OFF_BODY_MIN_S`` (the sensor put down for a few
        seconds) is not non-wear, but neither is it a body holding still.
        """
        cand = self._cand
        out = np.zeros(b, dtype=bool)
        off = np.zeros(b, dtype=bool)
        if not cand[:b].any():  # the usual case: worn throughout the block
            self._cand_run_start = -1
            return out, off
        base = self._n_committed
        d = np.diff(np.concatenate(([0], cand.view(np.int8), [0])))
        starts = np.flatnonzero(d == 1).tolist()
        ends = np.flatnonzero(d == -1).tolist()  # exclusive
        for s0, e0 in zip(starts, ends, strict=True):
            if s0 >= b:
                break
            abs_start = base + s0
            if s0 == 0 and self._cand_run_start >= 0:
                abs_start = self._cand_run_start
            if base + e0 - abs_start >= self.settings.nonwear_min_s:
                out[s0 : min(e0, b)] = True
            if base + e0 - abs_start >= OFF_BODY_MIN_S:
                off[s0 : min(e0, b)] = True
        if cand[b - 1]:
            run_s = b - 1
            while run_s > 0 and cand[run_s - 1]:
                run_s -= 1
            if run_s == 0 and self._cand_run_start >= 0:
                pass  # the run began in an earlier block
            else:
                self._cand_run_start = base + run_s
        else:
            self._cand_run_start = -1
        return out, off

    def _report(self, pe: _PendingTransition) -> Event | None:
        """The event of a held posture change, or None when the movement argued
        against that transition.

        The decoder may change posture where the classifier found the movement
        *less* like that transition than an average second (probability below
        the class's base rate): the posture evidence forced the change, but
        neither its time nor its kind was observed, so the epochs show the new
        posture and no transition event is claimed.
        """
        kind = _KIND[(pe.from_state, pe.to_state)]
        c = _TRANS_CLASS[kind]
        prob = float(pe.p_trans[c])
        if prob < self.model.trans_prior[c]:
            return None
        if kind in ("stand_to_sit", "sit_to_stand"):
            self._ref.add_forward_tilt(pe.tilt)
        return Event(pe.time_ns, kind, 0.0, {"probability": round(prob, 3)})

    def _transition_events(
        self,
        states: npt.NDArray[np.int64],
        nonwear: npt.NDArray[np.bool_],
        time_ns: npt.NDArray[np.int64],
    ) -> list[Event]:
        """Transition events of the posture changes among ``b`` committed states.

        A change is reported from a posture held ``_MIN_HELD_S`` (not at the
        very start of a stream, where the first posture is unknown) once the
        posture it leads to has been held as long. A briefly held posture in
        between merges the two changes into one transition (stand, sit for
        2 s, lie: one stand-to-lie), or into none when the wearer returns to
        where they were (a sit-stand bounce is not two transitions).
        """
        b = states.size
        post = _POSTURE_OF[states]
        last = int(_POSTURE_OF[self._last_state]) if self._last_state >= 0 else -1
        prev = np.concatenate(([last], post[:-1]))
        changed = np.flatnonzero((prev != post) & (prev >= 0))
        # length of the posture run before each second
        run_before = np.zeros(b, dtype=np.int64)
        run = self._run_len
        for i in range(b):
            run_before[i] = run
            run = 1 if prev[i] != post[i] else run + 1
        self._run_len = run
        events: list[Event] = []
        base = self._n_committed
        for i in changed.tolist():
            pe = self._pending_event
            if pe is not None and base + i - pe.index >= _MIN_HELD_S:
                ev = self._report(pe)
                events += [] if ev is None else [ev]
                pe = self._pending_event = None
            if nonwear[i]:
                continue
            a, c = int(prev[i]), int(post[i])
            pt = self._ptrans[i]
            if pe is not None:
                # the posture since the last change was brief: one transition through it
                pe_new = None
                if pe.from_state != c:
                    pe_new = _PendingTransition(
                        base + i, pe.time_ns, pe.from_state, c, np.maximum(pe.p_trans, pt), pe.tilt
                    )
                self._pending_event = pe_new
                continue
            if run_before[i] < _MIN_HELD_S or (a, c) not in _KIND:
                continue
            t_ns = int(time_ns[i]) + NS_PER_S // 2
            self._pending_event = _PendingTransition(
                base + i, t_ns, a, c, pt.copy(), self._tilt[i].copy()
            )
        pe = self._pending_event
        if pe is not None and base + b - pe.index >= _MIN_HELD_S:
            ev = self._report(pe)
            events += [] if ev is None else [ev]
            self._pending_event = None
        return events

    def _commit(self, b: int) -> AnalysisOutput:
        b = min(b, self._n_entered - self._n_committed)
        if b <= 0:
            return AnalysisOutput(empty_epochs(0), ())
        s = self.settings
        # the commit schedule fixes what the decoder sees: evidence of exactly
        # lag + block seconds ahead (or all, at the end of the stream)
        p = max(b, min(self._n_entered - self._n_committed, self._lag_v + self._block))
        self._ingest_reference(self._n_committed + p)
        states = self._decode(p)[:b]

        k0 = self._n_committed - self._buf_start
        f = self._buf[k0 : k0 + b]
        nonwear, off_body = self._nonwear(b)
        pw = self._pwalk[:b]
        act = _STATE_CODE[states].copy()
        other = (states == STAND) & (f["intensity_g"] > s.other_intensity_g) & (pw < 0.5)
        act[other] = int(Activity.OTHER)
        act[nonwear] = int(Activity.NONWEAR)
        ref = self._ref.reference()
        g = f["g"]
        informative = f["coverage"] >= _MIN_COVERAGE
        ep = empty_epochs(b)
        ep["time_ns"] = f["time_ns"]
        ep["activity"] = act
        inten = f["intensity_g"]
        ep["intensity_g"] = np.where(informative, inten, np.nan)
        static = (
            informative
            & ~nonwear
            & ~off_body
            & ((inten < s.static_intensity_g) | (f["sd_mag_g"] < s.static_variability_g))
            & (f["rot_deg"] < s.static_rotation_deg)
            & (states != WALK)
        )
        ep["static"] = static
        # still seconds take the slow fusion (body accelerations averaged out),
        # moving ones the fast one (follows the movement closely)
        g_angle = np.where(static[:, None], f["g_angle"], g)
        ep["inclination_deg"], ep["flexion_deg"], ep["lateral_deg"] = trunk_angles(g_angle, ref)
        events = self._transition_events(states, nonwear, f["time_ns"])
        # quiet standing seconds: fallback reference when no walking was seen yet
        quiet_stand = (states == STAND) & ep["static"] & (pw < 0.2)
        if quiet_stand.any() and self._ref.walk_n < self._ref.walking_min_s:
            self._ref.add_standing(g[quiet_stand])
        if nonwear.any():
            # the sensor may come back at another rotation: forget the
            # reference (or take what a first pass learnt of the next period)
            if self._keep_knowledge:
                self._learned.append(self._snapshot())
            self._wear_period += 1
            if self._wear_period < len(self._knowledge):
                self._load_knowledge(self._knowledge[self._wear_period])
            else:
                self._ref.reset()
                self._seated.reset()
                self._exemplars.reset()
        events.extend(self._tracker.push(ep))
        self._last_state = int(states[-1])
        # drop committed per-epoch state
        n_sp = int(np.count_nonzero(self._special[:b]))
        self._em, self._special, self._lt_sp = self._em[b:], self._special[b:], self._lt_sp[n_sp:]
        self._stand_ev, self._sit_ev = self._stand_ev[b:], self._sit_ev[b:]
        self._bend_lean = self._bend_lean[b:]
        self._sit_ex, self._stand_ex = self._sit_ex[b:], self._stand_ex[b:]
        self._pwalk, self._ptrans = self._pwalk[b:], self._ptrans[b:]
        self._tilt, self._cand = self._tilt[b:], self._cand[b:]
        self._n_committed += b
        keep_from = self._n_committed - self._w - self._buf_start
        if keep_from > 0:
            self._buf = self._buf[keep_from:]
            self._buf_start += keep_from
        events.sort(key=lambda e: e.time_ns)
        return AnalysisOutput(ep, tuple(events))


def analyze_batch(
    batch: SampleBatch,
    settings: AnalysisSettings | None = None,
    *,
    model: ActivityModel | None = None,
    calibration_ns: Sequence[tuple[int, int]] = (),
    learn_first: bool = False,
    knowledge: Sequence[WearerKnowledge] = (),
) -> AnalysisOutput:
    """Whole-recording analysis: one ``WearerAnalyzer`` fed one batch, then finished.

    Without ``settings`` a whole recording gets ``AnalysisSettings.offline()``
    (as ``postmon analyze``): nobody waits for the answer, so the decoder
    looks further ahead and commits in larger blocks. With ``learn_first`` a
    first pass learns the wearer (``WearerKnowledge``) and the second, which
    is returned, starts from it; ``knowledge`` gives that directly. A stream
    fed in chunks with the same ``knowledge`` gives the same result.
    """
    s = settings or AnalysisSettings.offline()
    if learn_first and knowledge:
        raise ValueError("give learn_first or knowledge, not both")
    if learn_first:
        knowledge = learn_wearer(batch, s, model=model, calibration_ns=calibration_ns)
    an = WearerAnalyzer(s, model=model, calibration_ns=calibration_ns, knowledge=knowledge)
    return AnalysisOutput.concat([an.feed(batch), an.finish()])


def learn_wearer(
    batch: SampleBatch,
    settings: AnalysisSettings | None = None,
    *,
    model: ActivityModel | None = None,
    calibration_ns: Sequence[tuple[int, int]] = (),
) -> tuple[WearerKnowledge, ...]:
    """A first pass over a whole recording: what each wear period teaches."""
    s = settings or AnalysisSettings.offline()
    an = WearerAnalyzer(s, model=model, calibration_ns=calibration_ns, keep_knowledge=True)
    an.feed(batch)
    an.finish()
    return an.learned()


def extract_features(
    batch: SampleBatch, settings: AnalysisSettings | None = None
) -> npt.NDArray[np.void]:
    """Only the sample-level front end: per-second ``FEATURE_DTYPE`` rows (for training)."""
    s = settings or AnalysisSettings()
    rs, gf, fx = Resampler(s), GravityFilter(s), FeatureExtractor(s)
    grid = rs.push(batch.t_ns, batch.accel_g, batch.gyro_dps, batch.rate_hz)
    return np.concatenate((fx.push(grid, gf.push(grid)), fx.flush()))

"""Activity model: gait probability, transition evidence, HMM emissions.

A trunk sensor sees sitting and standing at nearly the same angle (a waist
sensor only sees the small pelvic tilt: HAPT wearers tilt 0-17° standing and
3-76° sitting relative to walking), so the posture is read mostly from *how
the wearer got there*:

* **Transitions** are recognised from mounting-free features of a 9-s window
  around each second: how far the up direction turned from before to after,
  how far the trunk leaned beyond that on the way (the forward lean of a
  sit-to-stand), and the vertical velocity/displacement of the body
  (double-integrated acceleration along gravity: standing up raises the hips,
  sitting down lowers them; between two still moments also with zero
  velocity at both ends, ``vertical_rise``). A multinomial logistic model gives, per second,
  the probability of each of the six transitions or none.
* **Context**: one stands before and after walking; a posture can only
  change during movement, and only through a transition.
* **Angle** relative to the upright reference, when known, adds weak
  per-second evidence (lying is ~90° away; sitting usually leans back).
* **This wearer's postures**: the still seconds on either side of a
  confident stand-to-sit or sit-to-stand are exemplars of how this wearer
  sits and stands (``PostureExemplars``); each second's angle to the nearest
  of each adds sitting-vs-standing evidence that the population angle model
  cannot give (one wearer stands where another sits).

These feed a 4-state HMM (lying, sitting, standing, walking) decoded by
Viterbi with a fixed look-ahead (``analysis.stream``). ``other`` (upright,
moving, no gait) and ``nonwear`` are assigned around it.

All features are rotation-invariant, so the model does not depend on how the
sensor is mounted. The parameters are learned by ``scripts/train_activity.py``
(deterministic, leave-wearers-out scored) and shipped in
``analysis/model_params.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from analysis.contracts import Activity

F64 = npt.NDArray[np.float64]

#: Look-back / look-ahead (epochs) of the transition window.
WINDOW_EPOCHS = 4
#: A transition is placed at the most movement-like second within +- this (s).
PEAK_RADIUS = 3
#: ... if its probability of being some transition exceeds this. Low on
#: purpose: it only opens the door, the transition's probability still sets
#: its cost. The model learnt from recordings where every transition starts
#: from still standing, so walking straight into a seat gets 0.01-0.03; with
#: no peak there, even a long, clearly seated stretch after it could not be
#: read as sitting (a posture changes only at a peak).
MIN_PEAK = 0.005
#: log-probability of a change of state in a second whose transition window lacks data
UNKNOWN_SWITCH_LOGP = -3.0

#: HMM states (subset of Activity; order = state index)
STATES: tuple[Activity, ...] = (
    Activity.LYING,
    Activity.SITTING,
    Activity.STANDING,
    Activity.WALKING,
)
LIE, SIT, STAND, WALK = 0, 1, 2, 3
N_STATES = 4

#: Transition classes of the transition model (index 0 = none)
TRANSITIONS: tuple[tuple[str, int, int], ...] = (
    ("stand_to_sit", STAND, SIT),
    ("sit_to_stand", SIT, STAND),
    ("sit_to_lie", SIT, LIE),
    ("lie_to_sit", LIE, SIT),
    ("stand_to_lie", STAND, LIE),
    ("lie_to_stand", LIE, STAND),
)
N_TRANS_CLASSES = 1 + len(TRANSITIONS)

WALK_FEATURES = ("bias", "gait_ac", "log_vert_sd", "log_intensity", "gait_ac_x_log_vsd")
TRANS_FEATURES = (
    "bias",
    "turn",
    "turn_sq",
    "excursion",
    "disp",
    "vmax",
    "vmin",
    "log_intensity",
    "rot",
    "gait",
    "turn_x_disp",
    "rise",
)


@dataclass(frozen=True, slots=True)
class ActivityModel:
    """Learned parameters (see ``scripts/train_activity.py``).

    walk_w : (len(WALK_FEATURES),) logistic weights for P(walking)
    trans_w : (N_TRANS_CLASSES, len(TRANS_FEATURES)) softmax weights
    feat_mean, feat_scale : standardisation of the transition features
    incl_mean_deg, incl_sd_deg : per-posture (lying, sitting, standing, walking)
        Gaussian of inclination from the upright reference
    angle_weight : scale of the per-second angle log-likelihood (seconds of a
        static period are strongly correlated, so each counts for little)
    trans_prior : (N_TRANS_CLASSES,) class frequencies of the training seconds
    trans_gamma : temper of the transition likelihoods (0..1]
    posture_switch_logp : prior log-probability per second of a posture change
    walk_switch_logp : prior log-probability per second of starting/stopping walking
    """

    walk_w: tuple[float, ...]
    trans_w: tuple[tuple[float, ...], ...]
    feat_mean: tuple[float, ...]
    feat_scale: tuple[float, ...]
    incl_mean_deg: tuple[float, float, float, float]
    incl_sd_deg: tuple[float, float, float, float]
    trans_prior: tuple[float, ...] = (0.99,) + (0.01 / 6,) * 6
    angle_weight: float = 0.12
    trans_gamma: float = 0.8
    posture_switch_logp: float = 0.0
    walk_switch_logp: float = -4.0

    def to_dict(self) -> dict[str, object]:
        """Plain data (lists and floats) for JSON files."""
        return {
            f: [list(r) if isinstance(r, tuple) else r for r in v] if isinstance(v, tuple) else v
            for f, v in ((f, getattr(self, f)) for f in self.__dataclass_fields__)
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ActivityModel:
        """Inverse of ``to_dict``; raises KeyError/TypeError/ValueError on bad input."""

        def tup(v: Any) -> Any:
            return tuple(tup(x) for x in v) if isinstance(v, list | tuple) else float(v)

        kwargs = {f: tup(doc[f]) for f in cls.__dataclass_fields__}
        m = cls(**kwargs)
        w = np.asarray(m.trans_w)
        if w.shape != (N_TRANS_CLASSES, len(TRANS_FEATURES)) or len(m.walk_w) != len(WALK_FEATURES):
            raise ValueError("model arrays have the wrong shape for this version")
        return m

    def as_arrays(self) -> tuple[F64, F64, F64, F64]:
        return (
            np.asarray(self.walk_w, dtype=np.float64),
            np.asarray(self.trans_w, dtype=np.float64),
            np.asarray(self.feat_mean, dtype=np.float64),
            np.asarray(self.feat_scale, dtype=np.float64),
        )


def _angle_deg(a: F64, b: F64) -> F64:
    with np.errstate(invalid="ignore"):
        c = np.einsum("ij,ij->i", a, b)
        return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))


def _unit_mean(g: F64) -> F64:
    """Mean direction over axis 1 of (N, K, 3) unit vectors, NaN-tolerant."""
    ok = np.isfinite(g).all(axis=2, keepdims=True)
    s = np.where(ok, g, 0.0).sum(axis=1)
    nrm = np.linalg.norm(s, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return s / np.where(nrm > 0, nrm, np.nan)


def _nan_reduce(x: F64, fn: str) -> F64:
    """max/min/sum over axis 1 ignoring NaN, NaN-free output (0 for empty)."""
    ok = np.isfinite(x)
    if fn == "max":
        r = np.where(ok, x, -np.inf).max(axis=1)
    elif fn == "min":
        r = np.where(ok, x, np.inf).min(axis=1)
    else:
        r = np.where(ok, x, 0.0).sum(axis=1)
    return np.where(np.isfinite(r), r, 0.0)


#: the zero-velocity rise is clipped to this (m): a body does not rise or sink
#: further in a posture transition, and beyond it the integration has failed
#: (the window's ends were not at rest)
RISE_CLIP_M = 1.0
#: ... and used only where the window's two ends (2 s each) move less than
#: this (g, mean |body acceleration|): the integration assumes rest there
RISE_REST_G = 0.03


def vertical_rise(feat: npt.NDArray[np.void], start: int, stop: int) -> tuple[F64, F64]:
    """How far the body rose (m, up positive) over each second's window, and
    how much the window's ends moved (g).

    The vertical acceleration of the seconds ``t-2..t+2`` is integrated twice
    with the body at rest at both ends (a zero-velocity update over 5 s: a
    constant error of the acceleration cancels exactly). What a constant
    cannot describe is the accelerometer's offset changing with orientation:
    cheap sensors read gravity 0.5-1 % differently sitting and standing (the
    HAPT phones 0.010 g more standing), which a 5-s double integral would
    turn into 0.3 m, as much as the rise itself. So the rest level is
    measured on each side (seconds ``t-4..t-3`` and ``t+3..t+4``) and follows
    the orientation between them (how far each second's up direction has
    moved from the one before towards the one after).

    The rise means something only where the ends are at rest, so the second
    result is the largest mean body acceleration (g) of those four end
    seconds (``window_features`` uses the rise only below ``RISE_REST_G``).
    On HAPT, between still ends, sitting down sinks the waist 0.27 m (5-95 %:
    0.06-0.44) and standing up raises it 0.34 m (0.27-0.44), while seconds
    away from any transition stay within 0.13 m.

    ``feat`` holds ``WINDOW_EPOCHS`` epochs before ``start`` and after
    ``stop - 1``. Both results are NaN where a second of the window lacks data.
    """
    w = WINDOW_EPOCHS
    idx = np.arange(start, stop)[:, None] + np.arange(-w, w + 1)[None, :]  # (n, 9)
    dv = feat["dv_ms"][idx].astype(np.float64)  # velocity gained in each second
    dx = feat["dx_m"][idx].astype(np.float64)  # ... and the distance it adds by the second's end
    g = feat["g"][idx]
    inten = feat["intensity_g"][idx].astype(np.float64)
    n = idx.shape[0]
    rise = np.full(n, np.nan)
    ends = np.full(n, np.nan)
    ok = (
        np.isfinite(dv).all(axis=1)
        & np.isfinite(dx).all(axis=1)
        & np.isfinite(g).all(axis=(1, 2))
        & np.isfinite(inten).all(axis=1)
    )
    if not ok.any():
        return rise, ends
    ends[ok] = np.concatenate((inten[ok][:, :2], inten[ok][:, -2:]), axis=1).max(axis=1)
    dv, dx, gg = dv[ok], dx[ok], g[ok]
    g_before = _unit_mean(gg[:, :2])
    g_after = _unit_mean(gg[:, -2:])
    rest_before = dv[:, :2].mean(axis=1)  # m/s^2 (velocity per 1-s second)
    rest_after = dv[:, -2:].mean(axis=1)
    path = g_after - g_before
    path_sq = np.einsum("nj,nj->n", path, path)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.einsum("nkj,nj->nk", gg[:, 2:7] - g_before[:, None, :], path) / path_sq[:, None]
    # no turn: the two rest levels are one, measured twice
    frac = np.where(path_sq[:, None] > 1e-4, np.clip(frac, 0.0, 1.0), 0.5)
    rest = rest_before[:, None] + (rest_after - rest_before)[:, None] * frac  # (m, 5)
    a_sum = dv[:, 2:7] - rest
    a_dist = dx[:, 2:7] - 0.5 * rest
    # zero velocity at both ends: remove the remaining constant
    c = a_sum.mean(axis=1, keepdims=True)
    a_sum -= c
    a_dist -= 0.5 * c
    v_start = np.cumsum(a_sum, axis=1) - a_sum  # velocity at each second's start
    rise[ok] = (v_start + a_dist).sum(axis=1)  # the seconds' mean velocities, summed
    return rise, ends


def window_features(
    feat: npt.NDArray[np.void], start: int, stop: int
) -> tuple[F64, F64, F64, F64, F64]:
    """Walking and transition features for epochs ``start..stop-1`` of ``feat``.

    ``feat`` is a FEATURE_DTYPE array holding at least ``WINDOW_EPOCHS``
    epochs before ``start`` and after ``stop - 1`` (missing ones NaN-filled).

    Returns
    -------
    walk_x : (n, len(WALK_FEATURES))
    trans_x : (n, len(TRANS_FEATURES)), unstandardised
    tilt_vec : (n, 3) up direction at the peak lean minus before (for the forward sign)
    g_before, g_after : (n, 3) mean up direction 2-4 s before / after (unit)
    """
    w = WINDOW_EPOCHS
    n = stop - start
    idx = np.arange(start, stop)[:, None] + np.arange(-w, w + 1)[None, :]  # (n, 2w+1)
    g = feat["g"][idx]  # (n, 2w+1, 3)
    gb = _unit_mean(g[:, : w - 1])  # t-4..t-2
    ga = _unit_mean(g[:, w + 2 :])  # t+2..t+4
    turn = _angle_deg(gb, ga)
    core = g[:, w - 2 : w + 3]  # t-2..t+2
    with np.errstate(invalid="ignore"):
        ang_core = np.degrees(
            np.arccos(np.clip(np.einsum("nkj,nj->nk", core, gb), -1.0, 1.0))
        )  # (n, 5)
    peak_k = np.argmax(np.nan_to_num(ang_core, nan=-1.0), axis=1)
    peak_ang = ang_core[np.arange(n), peak_k]
    excursion = np.nan_to_num(peak_ang - np.nan_to_num(turn, nan=0.0), nan=0.0)
    # forward-sign evidence: the direction the trunk leaned towards, from the
    # middle of the two end postures to the point farthest from both. (The
    # point farthest from the start alone may be the end posture itself: a
    # pelvis that tilts back 30° onto the seat after a 20° forward lean.)
    with np.errstate(invalid="ignore"):
        ang_after = np.degrees(np.arccos(np.clip(np.einsum("nkj,nj->nk", core, ga), -1.0, 1.0)))
    lean_k = np.argmax(np.nan_to_num(np.minimum(ang_core, ang_after), nan=-1.0), axis=1)
    tilt_vec = core[np.arange(n), lean_k] - _unit_mean(np.stack((gb, ga), axis=1))
    disp = _nan_reduce(feat["disp_m"][idx[:, w - 2 : w + 3]].astype(np.float64), "sum")
    vmax = _nan_reduce(feat["vmax_ms"][idx[:, w - 2 : w + 3]].astype(np.float64), "max")
    vmin = _nan_reduce(feat["vmin_ms"][idx[:, w - 2 : w + 3]].astype(np.float64), "min")
    inten = _nan_reduce(feat["intensity_g"][idx[:, w - 1 : w + 2]].astype(np.float64), "max")
    rot = _nan_reduce(feat["rot_deg"][idx[:, w - 1 : w + 2]].astype(np.float64), "sum")
    gait_ac = feat["gait_ac"].astype(np.float64)
    gait = _nan_reduce(gait_ac[idx[:, w - 1 : w + 3]], "max")
    turn0 = np.nan_to_num(turn, nan=0.0)
    rise, ends = vertical_rise(feat, start, stop)
    # the rise only between still moments (elsewhere 0, "no evidence"): how
    # still a window's ends are is not itself evidence, since every HAPT
    # transition starts still and walking straight into a seat does not
    still = np.nan_to_num(ends, nan=np.inf) < RISE_REST_G
    rise_still = np.where(still, np.nan_to_num(rise, nan=0.0), 0.0).clip(-RISE_CLIP_M, RISE_CLIP_M)
    trans_x = np.stack(
        [
            np.ones(n),
            turn0 / 30.0,
            (turn0 / 30.0) ** 2,
            excursion / 30.0,
            disp,
            vmax,
            vmin,
            np.log(inten + 0.01),
            rot / 30.0,
            gait,
            turn0 / 30.0 * disp,
            rise_still,
        ],
        axis=1,
    )
    # gait window of epoch t+1 spans t-1..t+1: centred on this second
    g_next = np.nan_to_num(gait_ac[idx[:, w + 1]], nan=0.0)
    g_this = np.nan_to_num(gait_ac[idx[:, w]], nan=0.0)
    gac = 0.5 * (g_next + g_this)
    vsd = np.nan_to_num(feat["vert_sd_g"][idx[:, w + 1]].astype(np.float64), nan=0.0)
    it = np.nan_to_num(feat["intensity_g"][idx[:, w]].astype(np.float64), nan=0.0)
    lv = np.log(vsd + 1e-3)
    walk_x = np.stack([np.ones(n), gac, lv, np.log(it + 1e-3), gac * lv], axis=1)
    return walk_x, trans_x, tilt_vec, gb, ga


#: a movement that leans this far beyond its end postures (deg) ...
BEND_EXCURSION_DEG = 45.0
#: ... and ends within this angle of where it began (deg) is a bend and
#: return (picking something up, a lift), not a posture transition: sitting
#: down or getting up leans 0-35° beyond its ends and turns the trunk 15-75°
#: (HAPT: 1 of 86 labelled sit/stand transitions has an excursion over 30°
#: with a turn under 10°)
BEND_RETURN_DEG = 10.0


def bend_and_return(trans_x: F64) -> npt.NDArray[np.bool_]:
    """(n,) seconds whose transition window (``window_features``' unstandardised
    ``trans_x``) is a deep bend that returns to the posture it left."""
    turn = trans_x[:, TRANS_FEATURES.index("turn")] * 30.0
    excursion = trans_x[:, TRANS_FEATURES.index("excursion")] * 30.0
    out: npt.NDArray[np.bool_] = (excursion > BEND_EXCURSION_DEG) & (turn < BEND_RETURN_DEG)
    return out


def walk_probability(model: ActivityModel, walk_x: F64) -> F64:
    """P(walking) per epoch, (n,)."""
    z = walk_x @ np.asarray(model.walk_w)
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))


def transition_probabilities(model: ActivityModel, trans_x: F64) -> F64:
    """(n, N_TRANS_CLASSES) softmax probabilities; column 0 = no transition."""
    _, tw, mu, sc = model.as_arrays()
    x = (trans_x - mu) / sc
    x[:, 0] = 1.0
    z = x @ tw.T
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


#: log-density (per degree) of a standing trunk bent forward: standing covers
#: bends anywhere from ~15 to ~110° from upright (picking something up, a
#: bedside, a low shelf), a broad component of ~20 % weight over ~100°.
#: Used once the wearer's seated directions are known (``SeatedDirection``):
#: a direction far from both upright and this wearer's sitting is a bend.
BENT_STANDING_LOGLIK = float(np.log(0.2 / 100.0))


def angle_loglik(
    model: ActivityModel,
    incl_deg: F64,
    g_unit: F64 | None = None,
    seated: tuple[F64, float] | None = None,
    bent_standing: bool = False,
) -> F64:
    """Per-second angle evidence (n, 4): weighted Gaussian log-likelihood of the
    inclination from the upright reference for each state; 0 where unknown (NaN).

    Parameters
    ----------
    incl_deg : (n,) inclination from the upright reference (deg), NaN if unknown
    g_unit : (n, 3) unit up directions (sensor frame), needed with ``seated``
    seated : the wearer's learned seated directions ((k, 3) unit vectors) and
        the kernel width (deg) of each, see ``analysis.orientation.SeatedDirection``.
        With it, sitting is scored by a Gaussian kernel density over the angles
        to those directions instead of the shipped inclination model (fitted on
        one sensor placement), and standing also explains forward bends
        (``BENT_STANDING_LOGLIK``).
    bent_standing : standing explains forward bends (``BENT_STANDING_LOGLIK``)
        from the start, before the seated directions are known: for a sensor
        on the upper back, which sees a bend whole (``upper_back_sitting``).
    """
    out = np.zeros((incl_deg.shape[0], N_STATES))
    has_angle = np.isfinite(incl_deg)
    if has_angle.any():
        mu = np.asarray(model.incl_mean_deg)
        sd = np.asarray(model.incl_sd_deg)
        z = (incl_deg[has_angle, None] - mu[None, :]) / sd[None, :]
        ll = -0.5 * z**2 - np.log(sd)[None, :]
        if seated is not None and g_unit is not None:
            dirs, s_sit = seated
            with np.errstate(invalid="ignore"):
                a_k = np.degrees(np.arccos(np.clip(g_unit[has_angle] @ dirs.T, -1.0, 1.0)))
            a_k = np.nan_to_num(a_k, nan=180.0)
            q = -0.5 * (a_k / s_sit) ** 2
            qm = q.max(axis=1)
            ll[:, SIT] = qm + np.log(np.exp(q - qm[:, None]).mean(axis=1)) - np.log(s_sit)
            ll[:, STAND] = np.maximum(ll[:, STAND], BENT_STANDING_LOGLIK)
        elif bent_standing:
            ll[:, STAND] = np.maximum(ll[:, STAND], BENT_STANDING_LOGLIK)
        ll -= ll.max(axis=1, keepdims=True)
        out[has_angle] = model.angle_weight * ll
    return out


#: On the upper back, sitting spans upright to a deep slouch within this
#: inclination (deg); beyond it the shipped model applies unchanged
UPPER_BACK_SITTING_MAX_DEG = 30.0


def upper_back_sitting(ll: F64, incl_deg: F64) -> F64:
    """Angle evidence (n, 4) for a sensor on the upper back: within
    ``UPPER_BACK_SITTING_MAX_DEG`` of upright, sitting is as likely as standing.

    The shipped inclination model is fitted on waist-worn recordings, where
    sitting rolls the pelvis and the sensor 15-40° back, so near upright it
    favours standing (by about 0.25 nats per second at 5°). A thoracic sensor
    does not follow the pelvis: a wearer sitting up straight reads within a
    few degrees of standing, and slouching adds 10-25° forward. So near
    upright the angle cannot tell the two apart, and the movements (sitting
    down, getting up, walking) decide: within the range both get the higher
    of their two log-likelihoods, whichever it was. The wearer's own
    exemplars (``personal_sit_stand``), added afterwards, still separate a
    wearer whose sitting and standing differ. (Keeping sitting's advantage
    where the waist model gives it, from about 13° on, so that a slouch
    would still read as sitting, scored worse on the simulator: 30 days,
    5.7 -> 6.3 % sitting-time error.)

    The other half of the upper-back evidence is ``angle_loglik(...,
    bent_standing=True)``: the whole trunk pivots at the hips in a bend, so
    an upper-back sensor sees all of it (60-100° picking something off the
    floor or leaning over a cot), where a lower-back one sees about 70 %.
    The waist model has no standing that far forward, so a held bend read
    as lying, and straightening up from it as getting up from lying into
    sitting. (On the waist data, letting standing explain large angles from
    the start costs sitting: HAPT macro F1 0.983 -> 0.965.)
    """
    near = np.nan_to_num(incl_deg, nan=np.inf) < UPPER_BACK_SITTING_MAX_DEG
    if not near.any():
        return ll
    out = ll.copy()
    top = np.maximum(ll[near, SIT], ll[near, STAND])
    out[near, SIT] = top
    out[near, STAND] = top
    return out


#: An explicit "stand tall" calibration is the wearer's upright standing.
#: Standing still, the trunk stays within a few degrees of it, and leaves it
#: forwards (a bend, a lean over a bench); a trunk held *behind* it rests on
#: a backrest (sitting) or lies. Standing becomes unlikely this far behind (deg)
RECLINED_FROM_DEG = 4.0
#: ... falling off with this scale (deg) ...
RECLINED_SD_DEG = 2.0
#: ... to at most this log-likelihood (before ``angle_weight``): a forward
#: axis of the wrong sign must not outweigh every movement of the day
RECLINED_MAX_PENALTY = 8.0


def reclined_standing(model: ActivityModel, ll: F64, flex_deg: F64) -> F64:
    """Per-second evidence ``ll`` (n, 4) with standing made unlikely where the
    trunk is held behind the calibrated upright.

    ``flex_deg`` is the sagittal flexion (+ forward) relative to an explicit
    standing calibration with a forward axis of known sign (NaN: no change).
    Behind ``RECLINED_FROM_DEG``, standing is at most as likely as sitting
    (the wearer's learned standing and sitting exemplars may both lie in
    front) and less so the further behind. Sitting, lying and walking are
    left to the other evidence.
    """
    behind = np.nan_to_num(-flex_deg - RECLINED_FROM_DEG, nan=0.0).clip(0.0, None)
    on = behind > 0.0
    if not on.any():
        return ll
    out = ll.copy()
    pen = np.minimum(0.5 * (behind[on] / RECLINED_SD_DEG) ** 2, RECLINED_MAX_PENALTY)
    out[on, STAND] = np.minimum(ll[on, STAND], ll[on, SIT]) - model.angle_weight * pen
    return out


#: posture exemplars kept per posture (the most recent ones)
EXEMPLARS_KEPT = 12
#: spread of one wearer's repeated sitting (or standing) direction around the
#: nearest earlier one (deg): a chair or a stance is taken again within a few
#: degrees, while across wearers and sensor placements the same posture
#: differs by tens of degrees (the shipped inclination model's SDs)
EXEMPLAR_SD_DEG = 6.0
#: floor of a posture's personal log-likelihood (3 SDs): further from every
#: exemplar of it is "not like before", whatever the distance
EXEMPLAR_MAX_LOGLIK = 4.5


class PostureExemplars:
    """This wearer's own sitting and standing directions (constant size).

    A confident stand-to-sit or sit-to-stand (``analysis.stream``) says which
    posture the seconds just before and just after it were in, whatever the
    sensor placement and the wearer's build; their mean up directions (sensor
    frame) are kept as exemplars of that posture. Once both postures have
    exemplars, a second is scored for sitting vs standing by its angle to the
    nearest exemplar of each, on top of the shipped inclination model
    (fitted across wearers, whose sitting and standing overlap: a wearer who
    stands 17 deg from the walking direction looks seated to it).

    Failure modes: a wrong confident transition adds a wrong exemplar; with
    nearest-exemplar scoring it only blurs postures close to it (the evidence
    there becomes neutral), and the most recent ``EXEMPLARS_KEPT`` per
    posture are kept, so it is forgotten. A remounted sensor invalidates the
    exemplars (``reset`` after non-wear).
    """

    def __init__(self) -> None:
        #: (2, EXEMPLARS_KEPT, 3) unit directions: row 0 sitting, row 1 standing;
        #: unused slots are zero vectors (90 deg from everything: floored)
        self.dirs = np.zeros((2, EXEMPLARS_KEPT, 3))
        self.count = np.zeros(2, dtype=np.int64)

    def reset(self) -> None:
        """Forget the exemplars (after non-wear: the sensor may come back rotated)."""
        self.dirs[:] = 0.0
        self.count[:] = 0

    @property
    def state_bytes(self) -> int:
        return int(self.dirs.nbytes + self.count.nbytes)

    def add(self, sitting: F64, standing: F64) -> None:
        """(N, 3) up directions of seconds next to confident transitions, per
        posture; rows with NaN are ignored."""
        for i, g_in in enumerate((sitting, standing)):
            rows = g_in[np.isfinite(g_in).all(axis=1)][-EXEMPLARS_KEPT:]
            if rows.shape[0]:
                slots = (self.count[i] + np.arange(rows.shape[0])) % EXEMPLARS_KEPT
                self.dirs[i, slots] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
                self.count[i] += rows.shape[0]

    def sit_minus_stand(self, g_unit: F64) -> F64 | None:
        """(n,) log-likelihood of sitting minus standing of (n, 3) up directions
        (NaN where unknown), or None until both postures have an exemplar."""
        if not self.count.all():
            return None
        # von Mises-Fisher log-density of the nearest exemplar, -kappa (1 - cos),
        # kappa = 1 / sd^2 (rad): -0.5 (angle / sd)^2 for small angles, no arccos
        kappa = 1.0 / np.radians(EXEMPLAR_SD_DEG) ** 2
        cos = g_unit @ self.dirs.reshape(-1, 3).T  # (n, 2 K); NaN stays NaN
        ll = kappa * (cos.reshape(-1, 2, EXEMPLARS_KEPT).max(axis=2) - 1.0)  # (n, 2)
        # robust: a direction far from every exemplar of a posture is a way of
        # sitting or standing not seen yet (a bed's edge, not the desk chair),
        # so its log-likelihood is floored and two far postures tie
        np.maximum(ll, -EXEMPLAR_MAX_LOGLIK, out=ll)
        out: F64 = ll[:, 0] - ll[:, 1]
        return out


def personal_sit_stand(model: ActivityModel, angle_ll: F64, sit_minus_stand: F64) -> F64:
    """Angle evidence (n, 4) with the wearer's own sitting/standing evidence added.

    ``sit_minus_stand`` (n,) is ``PostureExemplars.sit_minus_stand`` (NaN
    where unknown). The shipped model says where people sit and stand, the
    exemplars where this wearer did: independent evidence, so log-likelihoods
    add. The less likely of the two postures loses the difference, weighted
    like every angle evidence (``angle_weight``: seconds of one static period
    are strongly correlated); lying and walking are untouched.
    """
    out = angle_ll.copy()
    d = model.angle_weight * np.nan_to_num(sit_minus_stand)
    out[:, SIT] += np.minimum(d, 0.0)
    out[:, STAND] -= np.maximum(d, 0.0)
    return out


#: transition classes whose movement ends standing upright (sit-to-stand,
#: lie-to-stand): at a movement peak, a standing wearer stays standing with
#: the probability of these or of none. Only standing: a sitter does not "sit
#: down" into the seat they are in the way a stander straightens up from a
#: bend, and on HAPT letting sitting absorb sit-down-like movements hid the
#: first sit-down of two recordings (the first posture is open, so the
#: decoder started them seated).
UPRIGHT_ENDINGS = [c for c, (_, _, b) in enumerate(TRANSITIONS, start=1) if b == STAND]


def hmm_inputs(
    model: ActivityModel,
    p_walk: F64,
    p_trans: F64,
    informative: npt.NDArray[np.bool_],
    is_peak: npt.NDArray[np.bool_],
    unknown: npt.NDArray[np.bool_] | None = None,
) -> tuple[F64, F64]:
    """Motion emissions (n, 4) and transition log-probabilities (n, 4, 4).

    ``logt[t, i, j]`` is log P(state j at t | state i at t-1). The angle
    evidence (``angle_loglik``) is added by the decoder once the upright
    reference is known. ``informative`` is False for epochs without data
    (their emissions are flat).
    """
    n = p_walk.shape[0]
    eps = 1e-6
    em = np.zeros((n, N_STATES))
    pw = np.clip(p_walk, eps, 1 - eps)
    em[:, WALK] = np.log(pw)
    em[:, :WALK] = np.log1p(-pw)[:, None]
    em[~informative] = 0.0
    # Posture changes happen only at a movement peak: the second where the
    # probability of "some transition" is highest within +-PEAK_RADIUS s, so one
    # burst of movement yields at most one change. There, switching i -> j
    # costs log P(that transition | features) and staying costs log P(none),
    # tempered by trans_gamma.
    g = model.trans_gamma
    pg = np.maximum(p_trans, 1e-12) ** g
    logt = np.full((n, N_STATES, N_STATES), -np.inf)
    d = np.arange(N_STATES)
    logt[:, d, d] = 0.0
    walk_sw = model.walk_switch_logp
    logt[:, STAND, WALK] = walk_sw
    logt[:, WALK, STAND] = walk_sw
    pk = np.flatnonzero(is_peak)
    if pk.size:
        q = pg[pk]
        out_classes: dict[int, list[tuple[int, int]]] = {LIE: [], SIT: [], STAND: [], WALK: []}
        for c, (_, a, b) in enumerate(TRANSITIONS, start=1):
            out_classes[a].append((c, b))
        # walking ends in sitting only through a stand-to-sit (and back)
        out_classes[WALK].append((1, SIT))
        for i, outs in out_classes.items():
            # scaled likelihoods (hybrid HMM): staying costs log P(none) from
            # every state, so strong evidence of a transition forces a change
            lt = logt[pk]
            lt[:, i, i] = np.log(q[:, 0])
            for c, j in outs:
                lt[:, i, j] = np.log(q[:, c])
            logt[pk] = lt
        # ... except a movement that ends upright while standing: straightening
        # up from a bend or a lift looks like getting up (HAPT, which taught
        # the classifier, has no deep bends), and standing explains it as well
        # as "none" does (``UPRIGHT_ENDINGS``)
        stay = p_trans[pk, 0] + p_trans[pk][:, UPRIGHT_ENDINGS].sum(axis=1)
        logt[pk, STAND, STAND] = g * np.log(np.maximum(stay, 1e-12))
        # sitting straight into walking: a sit-to-stand, then walking at once
        logt[pk, SIT, WALK] = logt[pk, SIT, STAND] + walk_sw
    # Where the transition window lacks data (start of a stream, around gaps)
    # transitions cannot be assessed, so none is ruled out: any change is
    # allowed at a modest cost instead of freezing an unknown first posture.
    if unknown is not None and unknown.any():
        uk = np.flatnonzero(unknown)
        lt = logt[uk]
        lt = np.maximum(lt, UNKNOWN_SWITCH_LOGP)
        lt[:, d, d] = 0.0
        logt[uk] = lt
    return em, logt


def movement_peaks(p_trans: F64, radius: int) -> npt.NDArray[np.bool_]:
    """Seconds where P(any transition) is a local maximum within +-radius.

    ``p_trans`` (n + 2 radius, N_TRANS_CLASSES) includes ``radius`` rows of
    context on each side; the result is for the n inner rows. Ties go to the
    earliest second so that one burst gives one peak.
    """
    q = 1.0 - p_trans[:, 0]
    n = q.size - 2 * radius
    win = np.lib.stride_tricks.sliding_window_view(q, 2 * radius + 1)[:n]
    centre = q[radius : radius + n]
    before = win[:, :radius].max(axis=1) if radius else np.full(n, -np.inf)
    after = win[:, radius + 1 :].max(axis=1) if radius else np.full(n, -np.inf)
    return (centre > before) & (centre >= after) & (centre > MIN_PEAK)


def viterbi(
    delta0: F64,
    em: F64,
    special: npt.NDArray[np.bool_],
    logt_special: F64,
    walk_switch_logp: float,
) -> npt.NDArray[np.int64]:
    """Most probable state path (n,) of the activity HMM.

    Parameters
    ----------
    delta0 : (4,) initial log scores
    em : (n, 4) emission log-likelihoods
    special : (n,) seconds with their own transition matrix (movement peaks,
        seconds without transition context); every other second only allows
        standing <-> walking at ``walk_switch_logp`` (see ``hmm_inputs``)
    logt_special : (special.sum(), 4, 4) transition log-probabilities of those

    Notes
    -----
    Plain Python floats: most seconds take the two-state fast path, the few
    special ones the full 4 x 4 max-product; both are much cheaper than numpy
    calls per step for four states.
    """
    n = em.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    ns = N_STATES
    c = float(walk_switch_logp)
    bp: list[tuple[int, ...]] = [(0, 1, 2, 3)] * n
    d0, d1, d2, d3 = (float(x) for x in delta0)
    em_l = em.tolist()
    sp_l = special.tolist()
    lt_l = logt_special.tolist()
    k = 0
    for t in range(n):
        e0, e1, e2, e3 = em_l[t]
        if not sp_l[t]:
            # lying and sitting persist; standing and walking may swap
            ws = d3 + c
            sw = d2 + c
            if d2 >= ws:
                n2, b2 = d2, 2
            else:
                n2, b2 = ws, 3
            if d3 >= sw:
                n3, b3 = d3, 3
            else:
                n3, b3 = sw, 2
            d0, d1, d2, d3 = d0 + e0, d1 + e1, n2 + e2, n3 + e3
            if b2 != 2 or b3 != 3:
                bp[t] = (0, 1, b2, b3)
        else:
            lt_t = lt_l[k]
            k += 1
            d = (d0, d1, d2, d3)
            nd = [0.0] * ns
            row = [0] * ns
            for j in range(ns):
                best = d[0] + lt_t[0][j]
                bi = 0
                for i in range(1, ns):
                    v = d[i] + lt_t[i][j]
                    if v > best:
                        best = v
                        bi = i
                nd[j] = best
                row[j] = bi
            bp[t] = tuple(row)
            d0, d1, d2, d3 = nd[0] + e0, nd[1] + e1, nd[2] + e2, nd[3] + e3
            m = max(d0, d1, d2, d3)
            d0, d1, d2, d3 = d0 - m, d1 - m, d2 - m, d3 - m
    path = np.empty(n, dtype=np.int64)
    last = (d0, d1, d2, d3)
    st = max(range(ns), key=last.__getitem__)
    for t in range(n - 1, -1, -1):
        path[t] = st
        st = bp[t][st]
    return path

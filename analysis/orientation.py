"""Mounting-agnostic trunk angles: the upright reference and the forward axis.

The sensor may sit at any rotation on the upper or lower back (or, as in the
HAPT recordings, on a belt). Nothing here assumes which sensor axis is up.

Upright reference ``up`` (unit vector, sensor frame)
    The accelerometer at rest measures +1 g pointing up, so "up" is the mean
    gravity direction while the trunk is in its neutral posture. Sources, best
    first: an explicit calibration segment ("stand tall for 5 s"); otherwise
    the mean gravity direction over walking (the trunk is upright on average
    while walking), once ``calib_walking_min_s`` of walking has been seen.
    Failure modes: a wearer who never walks (wheelchair users, bed rest) gets
    no automatic reference (angles are then relative to the first sustained
    upright posture the decoder recognises, see ``analysis.stream``); a marked
    forward lean while walking (walking aids) biases the reference forward.

Forward axis ``fwd`` (unit vector, sensor frame, perpendicular to ``up``)
    From walking: the horizontal body acceleration has its antero-posterior
    component repeating every *step* and its medio-lateral component every
    *stride* (two steps), so the step-lag autocovariance is positive along the
    forward/backward axis and negative sideways. The forward axis is the top
    eigenvector of the horizontal part of the accumulated step-lag
    covariance. That gives the axis, not its sign: the sign comes from the
    direction the trunk tilts during sit-to-stand / stand-to-sit transitions
    (always forward: the trunk leans forward to shift the weight over the
    feet) and, failing those, from forward bending (people bend forward far
    more than backward). Failure modes: shuffling gait with little
    antero-posterior acceleration (axis uncertain, reported by
    ``fwd_quality``); no walking and no transitions (no forward axis: flexion
    is then reported as the inclination and lateral bend as 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
DEG_PER_RAD = 180.0 / np.pi
#: after non-wear, a walking direction this close to the old reference means
#: the sensor went back on the same way (walking leans a few degrees forward)
SAME_MOUNTING_DEG = 20.0
_IU = ([0, 1, 2, 0, 0, 1], [0, 1, 2, 1, 2, 2])


def sym_from6(v: F64) -> F64:
    """(…, 6) upper-triangle values (xx yy zz xy xz yz) -> (…, 3, 3) symmetric."""
    m = np.zeros((*v.shape[:-1], 3, 3))
    m[..., _IU[0], _IU[1]] = v
    m[..., _IU[1], _IU[0]] = v
    return m


@dataclass(frozen=True, slots=True)
class Reference:
    """Neutral trunk frame in sensor coordinates.

    Attributes
    ----------
    up : (3,) unit vector, the accelerometer direction in the neutral posture
    fwd : (3,) unit vector perpendicular to ``up`` pointing forward, or None
        until its sign is known (from the forward leans of sit/stand
        transitions and deep bends)
    source : how ``up`` was obtained: "calibration", "walking", "posture", "none"
    fwd_source : "walking" (the axis from walking, its sign from the leans),
        "transitions" (both from the leans) or "none"
    """

    up: F64
    fwd: F64 | None = None
    source: str = "none"
    fwd_source: str = "none"
    #: (3, 3) rows up, forward, right (forward and right NaN without a forward
    #: axis): the angles of many seconds are then one matrix product
    frame: F64 = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        m = np.full((3, 3), np.nan)
        m[0] = self.up
        if self.fwd is not None:
            m[1] = self.fwd
            m[2] = np.cross(self.fwd, self.up)
        object.__setattr__(self, "frame", m)


def trunk_angles(g_unit: F64, ref: Reference | None) -> tuple[F64, F64, F64]:
    """Inclination, sagittal flexion and lateral bend relative to ``ref``.

    Parameters
    ----------
    g_unit : (N, 3) unit gravity ("up") directions in the sensor frame
    ref : the neutral frame; None gives NaN angles

    Returns
    -------
    inclination_deg : (N,) angle between the trunk axis and its neutral, >= 0
    flexion_deg : (N,) sagittal component, + forward
    lateral_deg : (N,) frontal-plane component, + towards the wearer's right

    Notes
    -----
    With the neutral frame U (up), F (forward), R = F x U (right), a trunk
    flexed forward by theta sees the world's up at ``cos(theta) U - sin(theta)
    F``; so flexion = atan2(-g.F, g.U) and lateral = atan2(-g.R, g.U).
    """
    n = g_unit.shape[0]
    if ref is None:
        nan = np.full(n, np.nan)
        return nan, nan.copy(), nan.copy()
    if ref.fwd is None:
        # no forward direction (or not yet its sign): the tilt is known, not
        # which way it leans
        incl = np.degrees(np.arccos(np.clip(g_unit @ ref.up, -1.0, 1.0)))
        nan = np.full(n, np.nan)
        return incl, nan, nan.copy()
    c = g_unit @ ref.frame.T  # (N, 3): components along up, forward, right
    cu = c[:, 0]
    # atan2 of the orthogonal part rather than acos: exact near upright too
    incl = np.degrees(np.arctan2(np.hypot(c[:, 1], c[:, 2]), cu))
    flex = np.degrees(np.arctan2(-c[:, 1], cu))
    lat = np.degrees(np.arctan2(-c[:, 2], cu))
    return incl, flex, lat


def forward_axis_from_cov(up: F64, cov_k: F64) -> tuple[F64 | None, float]:
    """Forward axis (up to sign) from an accumulated step-lag covariance.

    Parameters
    ----------
    up : (3,) unit up vector
    cov_k : (3, 3) symmetric step-lag covariance of body acceleration summed
        over walking seconds (g²)

    Returns
    -------
    axis : (3,) unit vector perpendicular to ``up`` or None
    quality : (lambda1 - lambda2) / (|lambda1| + |lambda2|) of the horizontal
        part; near 1 when the antero-posterior axis stands out.
    """
    p = np.eye(3) - np.outer(up, up)
    m = p @ cov_k @ p
    w, v = np.linalg.eigh(m)
    # the eigenvector along `up` has eigenvalue ~0; take the two horizontal ones
    horiz = np.argsort(np.abs(v.T @ up))[:2].tolist()
    i1, i2 = sorted(horiz, key=lambda i: -w[i])
    denom = abs(w[i1]) + abs(w[i2])
    if denom <= 0 or w[i1] <= 0:
        return None, 0.0
    axis = v[:, i1] - up * (v[:, i1] @ up)
    axis /= np.linalg.norm(axis)
    return axis, float((w[i1] - w[i2]) / denom)


class ReferenceEstimator:
    """Accumulates the evidence for the neutral frame (constant size).

    Walking seconds add their gravity direction and step-lag covariance;
    explicit calibration seconds add their gravity direction; sit/stand
    transitions and forward bends add the horizontal direction the trunk
    tilted towards (for the forward sign). ``reset()`` after non-wear: the
    sensor may come back at another rotation.
    """

    def __init__(self, walking_min_s: float) -> None:
        self.walking_min_s = walking_min_s
        self._cached: Reference | None = None
        self.previous: Reference | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the accumulated evidence (after non-wear).

        The last reference is kept as ``previous``: a sensor put back on the
        same way keeps its calibrated frame (the new walking direction agrees
        with it within ``SAME_MOUNTING_DEG``); one put back on differently gets a
        new automatic reference as soon as enough walking is seen.
        """
        prev = self.reference() if hasattr(self, "calib_sum") else None
        self.previous = prev or self.previous
        self.calib_sum = np.zeros(3)
        self.calib_n = 0
        self.walk_sum = np.zeros(3)
        self.walk_n = 0
        self.cov_k = np.zeros((3, 3))
        self.tilt_sum = np.zeros(3)  # sum of (g_peak - g_before) over sit/stand transitions
        self.tilt_n = 0
        self.posture_sum = np.zeros(3)  # standing seconds recognised by the decoder
        self.posture_n = 0
        self._cached = None
        self._dirty = True

    def add_calibration(self, g_unit: F64) -> None:
        """Seconds of an explicit "stand tall" calibration, (N, 3) unit vectors."""
        g = g_unit[np.isfinite(g_unit).all(axis=1)]
        self.calib_sum += g.sum(axis=0)
        self.calib_n += g.shape[0]
        self._dirty = True

    def add_walking(self, g_unit: F64, cov_k6: F64) -> None:
        """Walking seconds: (N, 3) unit up directions and (N, 6) step-lag covariances."""
        ok = np.isfinite(g_unit).all(axis=1) & np.isfinite(cov_k6).all(axis=1)
        if not ok.any():
            return
        self.walk_sum += g_unit[ok].sum(axis=0)
        self.walk_n += int(ok.sum())
        self.cov_k += sym_from6(cov_k6[ok].sum(axis=0))
        self._dirty = True

    def add_standing(self, g_unit: F64) -> None:
        """Seconds the decoder recognised as quiet standing (fallback reference)."""
        g = g_unit[np.isfinite(g_unit).all(axis=1)]
        self.posture_sum += g.sum(axis=0)
        self.posture_n += g.shape[0]
        self._dirty = True

    def add_forward_tilt(self, delta: F64) -> None:
        """(3,) change of the up direction from before a transition to its forward
        peak, or (N, 3) of several (rows with NaN are ignored)."""
        d = np.atleast_2d(delta)
        d = d[np.isfinite(d).all(axis=1)]
        if d.shape[0]:
            self.tilt_sum += d.sum(axis=0)
            self.tilt_n += int(d.shape[0])
            self._dirty = True

    @property
    def state_bytes(self) -> int:
        return 8 * (3 + 3 + 9 + 3 + 3) + 5 * 8

    def reference(self) -> Reference | None:
        if not self._dirty:
            return self._cached
        self._dirty = False
        up: F64 | None = None
        source = "none"
        prev = self.previous
        if self.calib_n >= 1:
            up, source = self.calib_sum / np.linalg.norm(self.calib_sum), "calibration"
        elif self.walk_n >= self.walking_min_s:
            up, source = self.walk_sum / np.linalg.norm(self.walk_sum), "walking"
            if prev is not None and float(up @ prev.up) > np.cos(np.radians(SAME_MOUNTING_DEG)):
                self._cached = prev  # same mounting as before the break
                return prev
        elif prev is not None:
            self._cached = prev  # provisional until walking says otherwise
            return prev
        elif self.posture_n >= 5:
            up, source = self.posture_sum / np.linalg.norm(self.posture_sum), "posture"
        if up is None:
            self._cached = None
            return None
        fwd: F64 | None = None
        fwd_source = "none"
        tilt_h = self.tilt_sum - up * (self.tilt_sum @ up)
        if self.walk_n >= self.walking_min_s and self.tilt_n:
            # walking gives the antero-posterior axis, the leans of sit/stand
            # transitions its sign; without them the sign would be a guess
            # (and a wrong one reads a backrest as a forward bend), so
            # flexion stays unknown until the first one
            axis, quality = forward_axis_from_cov(up, self.cov_k)
            side = float(tilt_h @ axis) if axis is not None else 0.0
            if axis is not None and quality > 0.1 and abs(side) > 1e-3:
                # during a forward lean the measured up moves towards -forward
                fwd, fwd_source = (-axis if side > 0 else axis), "walking"
        if fwd is None and self.tilt_n >= 1 and np.linalg.norm(tilt_h) > 1e-3:
            fwd, fwd_source = -tilt_h / np.linalg.norm(tilt_h), "transitions"
        self._cached = Reference(up, fwd, source, fwd_source)
        return self._cached


#: a still stretch counts as seated evidence once it lasts this long (s): sitting
#: bouts last minutes, a held forward bend or a pause in lifting seconds
SEATED_STRETCH_MIN_S = 30
#: ... and its directions stay this close to their mean (deg, RMS): one
#: posture throughout, not a sit and a lie merged by a missed movement peak
SEATED_STRETCH_SPREAD_MAX_DEG = 8.0
#: ... and it is tilted at least this far from the upright reference (deg):
#: closer, it may as well be standing between two bends that looked like
#: sitting down and getting up (quiet standing stays within ~5° of upright)
SEATED_TILT_MIN_DEG = 8.0
#: seated stretches remembered (the most recent ones)
SEATED_SAMPLES = 15
#: the learned model is used from this many stretches on: one stretch may be
#: wrong, and a short recording (a lab protocol) teaches too little to replace
#: the shipped model
SEATED_SAMPLES_MIN = 2
#: width of each remembered direction's kernel (deg): a seat allows a range of
#: leans around each habitual posture (slouch drift, shifting in the chair)
SEATED_KERNEL_DEG = 10.0


class SeatedDirection:
    """The wearer's own seated trunk directions, learned online (constant size).

    Where the sensor sits decides how the trunk reads when seated: a belt or
    lower-back sensor tilts backwards with the pelvis, an upper-back sensor
    leans forward (slouch) or back (backrest) by a few degrees only. A fixed
    angle model fitted on one placement therefore mistakes the other's sitting
    for standing, and forward bends for sitting. The classifier's confident
    sit/stand movement signatures (``analysis.activity``) say when the wearer
    sat down or stood up whatever the placement, so the still stretch after a
    confident stand-to-sit, or before a confident sit-to-stand, is a sample of
    this wearer's seated direction, provided it lasted ``SEATED_STRETCH_MIN_S``
    without walking, kept one direction and leaned away from upright
    (``analysis.stream`` applies those rules).

    The last ``SEATED_SAMPLES`` stretch directions (sensor frame) are kept and
    the model is a kernel density over them (``SEATED_KERNEL_DEG`` each): a
    wearer sits in several ways (at a desk, against a backrest, in a car), so
    one mean direction would fit none of them.

    Failure modes: a wearer who never sits down or stands up with a clear
    movement (wheelchair users) teaches nothing, and the shipped angle model
    stays in use; a remounted sensor invalidates the samples (``reset`` after
    non-wear); a wrong sample makes standing in that direction look seated.
    """

    def __init__(self) -> None:
        self.samples = np.full((SEATED_SAMPLES, 3), np.nan)
        self.n = 0  # samples added since the last reset

    def reset(self) -> None:
        """Forget the samples (after non-wear: the sensor may come back rotated)."""
        self.samples[:] = np.nan
        self.n = 0

    def add(self, g_unit: F64) -> None:
        """(N, 3) unit mean directions of seated stretches (NaN rows ignored)."""
        for row in g_unit[np.isfinite(g_unit).all(axis=1)]:
            self.samples[self.n % SEATED_SAMPLES] = row
            self.n += 1

    @property
    def state_bytes(self) -> int:
        return int(self.samples.nbytes) + 8

    def model(self) -> tuple[F64, float] | None:
        """(remembered unit directions (k, 3), kernel width in degrees), or None
        before ``SEATED_SAMPLES_MIN`` samples."""
        k = min(self.n, SEATED_SAMPLES)
        if k < SEATED_SAMPLES_MIN:
            return None
        return self.samples[:k].copy(), SEATED_KERNEL_DEG

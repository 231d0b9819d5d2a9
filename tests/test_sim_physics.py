"""Physics of the simulated IMU, checked against independently computed truth.

The orientation truth is rebuilt here with scipy's Rotation from the truth
angles (the simulator itself uses its own quaternion code).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from analysis.contracts import Activity
from firmware_sim import quat
from firmware_sim.imu import DEVICE_PRESETS, get_device, measure, mounting_rotation
from firmware_sim.simulator import SimulatedRecording, simulate
from firmware_sim.wearer import Placement, SegKind


@pytest.fixture(scope="module", params=["upper", "lower"])
def rec(request: pytest.FixtureRequest) -> SimulatedRecording:
    # warehouse and new-parent days have every kind of transition, bends and lying
    profile = "new_parent" if request.param == "upper" else "warehouse_lifting"
    return simulate(profile, 1800, seed=11, placement=request.param, mounting="random", ideal=True)


def _static_samples(rec: SimulatedRecording) -> np.ndarray:
    sec = np.floor(rec.time_s).astype(int)
    sec = np.clip(sec, 0, len(rec.truth) - 1)
    return rec.truth.static[sec] & rec.samples.worn


def test_static_accel_magnitude_is_one_g(rec: SimulatedRecording) -> None:
    st = _static_samples(rec)
    assert st.sum() > 10_000
    mag = np.linalg.norm(rec.accel_g[st], axis=1)
    assert np.all(np.abs(mag - 1.0) < 0.02), (mag.min(), mag.max())


def test_static_gravity_tilt_matches_truth(rec: SimulatedRecording) -> None:
    st = _static_samples(rec)
    up = rec.mounting.apply(rec.accel_g[st])  # sensor frame -> segment frame
    up /= np.linalg.norm(up, axis=1, keepdims=True)
    incl = np.degrees(np.arccos(np.clip(up[:, 2], -1, 1)))
    flex = np.degrees(np.arctan2(-up[:, 0], up[:, 2]))
    lat = np.degrees(np.arctan2(up[:, 1], up[:, 2]))
    s = rec.samples
    assert np.max(np.abs(incl - s.inclination_deg[st])) < 1.0
    # each projection is defined where its plane holds a good part of gravity
    frontal = np.hypot(up[:, 1], up[:, 2]) > 0.7
    sagittal = np.hypot(up[:, 0], up[:, 2]) > 0.7
    assert frontal.mean() > 0.5
    assert sagittal.mean() > 0.5
    dlat = (lat - s.lateral_deg[st] + 180.0) % 360.0 - 180.0
    assert np.max(np.abs(dlat[frontal])) < 1.0
    dflex = (flex - s.flexion_deg[st] + 180.0) % 360.0 - 180.0
    assert np.max(np.abs(dflex[sagittal])) < 1.0


def test_per_second_truth_matches_gravity(rec: SimulatedRecording) -> None:
    tr = rec.truth
    rate = int(rec.rate_hz)
    n = len(tr) * rate
    up = rec.mounting.apply(rec.accel_g[:n]).reshape(len(tr), rate, 3).mean(axis=1)
    up /= np.linalg.norm(up, axis=1, keepdims=True)
    incl = np.degrees(np.arccos(np.clip(up[:, 2], -1, 1)))
    st = tr.static
    assert np.median(np.abs(incl[st] - tr.inclination_deg[st])) < 0.5
    assert np.max(np.abs(incl[st] - tr.inclination_deg[st])) < 2.0


def _truth_rotation(rec: SimulatedRecording, k: np.ndarray) -> Rotation:
    kin = rec.timeline.evaluate(int(k[0]), int(k[-1] - k[0] + 1), rec.rate_hz)
    idx = k - k[0]
    yaw = kin.heading_deg[idx] + kin.axial_deg[idx]
    seg = Rotation.from_euler(
        "ZXY", np.stack([yaw, kin.lateral_deg[idx], kin.flexion_deg[idx]], 1), degrees=True
    )
    return seg * rec.mounting


def test_gyro_integrates_to_orientation_change_over_transitions(rec: SimulatedRecording) -> None:
    sf, si = rec.timeline.segments.f, rec.timeline.segments.i
    trans = np.flatnonzero(
        (si["kind"] == SegKind.TRANSITION) & (sf["t_end"] < rec.time_s[-1] - 1.0)
    )
    assert trans.size >= 5
    dt = 1.0 / rec.rate_hz
    checked = 0
    for j in trans:
        k0 = int(np.floor(sf["t_start"][j] * rec.rate_hz)) - 5
        k1 = int(np.ceil(sf["t_end"][j] * rec.rate_hz)) + 5
        ends = _truth_rotation(rec, np.array([k0, k1]))
        expected = ends[0].inv() * ends[1]
        if expected.magnitude() < np.radians(10.0):
            continue
        r = Rotation.identity()
        w = np.radians(rec.gyro_dps[k0 : k1 + 1])
        for i in range(k1 - k0):  # trapezoid in the body frame
            r = r * Rotation.from_rotvec(0.5 * (w[i] + w[i + 1]) * dt)
        err = np.degrees((r.inv() * expected).magnitude())
        assert err < 1.0, (j, err, np.degrees(expected.magnitude()))
        checked += 1
    assert checked >= 3


def test_sit_to_stand_rises_and_pitches_forward() -> None:
    rec = simulate(
        "desk_worker", 4 * 3600, seed=5, placement="lower", mounting="identity", ideal=True
    )
    sf, si = rec.timeline.segments.f, rec.timeline.segments.i
    sts = np.flatnonzero(
        (si["kind"] == SegKind.TRANSITION)
        & (si["act_a"] == Activity.SITTING)
        & np.isin(si["act_b"], [Activity.STANDING, Activity.WALKING])
    )
    assert sts.size >= 3
    checked = 0
    for j in sts:
        dur = sf["t_end"][j] - sf["t_start"][j]
        assert 1.5 <= dur <= 3.0
        k = np.arange(int(sf["t_start"][j] * 50), int(sf["t_end"][j] * 50))
        flex = rec.samples.flexion_deg[k]
        if abs(flex[-1]) > 15.0:
            continue  # stood up straight into a bend
        checked += 1
        # trunk pitches forward beyond both its seated and its standing angle
        assert flex.max() > max(flex[0], flex[-1]) + 10.0
        # identity mounting, near upright: the vertical specific force shows the
        # rise (above 1 g) followed by the braking (below 1 g)
        kin = rec.timeline.evaluate(int(k[0]), k.size, rec.rate_hz)
        vert = kin.accel_world_g[:, 2]
        assert vert.max() > 0.08
        assert vert.min() < -0.08
        assert np.argmax(vert) < np.argmin(vert)
    assert checked >= 3


def test_walking_gait_frequency_and_amplitude() -> None:
    for placement in ("upper", "lower"):
        rec = simulate("nurse", 1800, seed=3, placement=placement, mounting="random", ideal=True)
        walking = rec.truth.activity == Activity.WALKING
        # 20-s windows fully inside walking
        run = np.convolve(walking.astype(int), np.ones(20, int), "valid") == 20
        starts = np.flatnonzero(run)[::20]
        assert starts.size >= 5
        for s0 in starts[:10]:
            k = slice(s0 * 50, (s0 + 20) * 50)
            a = rec.mounting.apply(rec.accel_g[k])  # segment frame, ~vertical z while walking
            vert = a[:, 2] - a[:, 2].mean()
            spec = np.abs(np.fft.rfft(vert * np.hanning(vert.size)))
            f = np.fft.rfftfreq(vert.size, 1 / 50)
            band = (f > 0.5) & (f < 5)
            peak = f[band][np.argmax(spec[band])]
            assert 1.6 <= peak <= 2.1, peak
            amp = np.sqrt(2) * vert.std()
            assert 0.08 <= amp <= 0.5, amp


def test_posture_geometry_depends_on_placement() -> None:
    sit_flex = {}
    for placement in ("upper", "lower"):
        flexes = []
        for seed in range(6):
            rec = simulate("desk_worker", 1200, seed=seed, placement=placement, ideal=True)
            sitting = rec.truth.activity == Activity.SITTING
            flexes.append(np.nanmedian(rec.truth.flexion_deg[sitting]))
        sit_flex[placement] = np.array(flexes)
    # lower back: pelvis rolls backwards when seated; upper back: thoracic slouch
    assert np.all(sit_flex["lower"] < -5)
    assert -40 < np.mean(sit_flex["lower"]) < -10
    # (a day may hold reclined sofa/break sitting, so single days may dip below 0)
    assert np.mean(sit_flex["upper"] > 0) >= 0.5
    assert 5 < np.mean(sit_flex["upper"]) < 30
    assert np.all(sit_flex["upper"] > sit_flex["lower"] + 10)


def test_lying_is_about_90_degrees_from_upright() -> None:
    rec = simulate("new_parent", 8 * 3600, seed=2, rate_hz=10, ideal=True)
    lying = rec.truth.activity == Activity.LYING
    assert lying.sum() > 600
    incl = rec.truth.inclination_deg[lying]
    assert 70 < np.median(incl) < 100


def test_nonwear_sensor_lies_still_on_the_desk() -> None:
    rec = simulate("desk_worker", 8 * 3600, seed=4, rate_hz=10, ideal=True)
    off = rec.truth.activity == Activity.NONWEAR
    assert off.sum() > 120
    assert np.all(np.isnan(rec.truth.flexion_deg[off]))
    assert not rec.truth.static[off].any()
    sec = np.floor(rec.time_s).astype(int)
    steady = ~rec.samples.worn & ~rec.samples.moving
    steady[1:-1] &= steady[:-2] & steady[2:]  # derivatives reach one sample either side
    k = np.flatnonzero(steady & off[np.clip(sec, 0, len(off) - 1)])
    assert np.allclose(np.linalg.norm(rec.accel_g[k], axis=1), 1.0, atol=1e-6)
    assert np.abs(rec.gyro_dps[k]).max() < 1e-6


@pytest.mark.parametrize("device", sorted(DEVICE_PRESETS))
def test_device_quantisation_saturation_and_noise(device: str) -> None:
    dev = get_device(device)
    rec = simulate("warehouse_lifting", 300, seed=1, device=device)
    counts = rec.accel_g / dev.accel_lsb_g
    assert np.allclose(counts, np.round(counts), atol=1e-6)
    counts = rec.gyro_dps / dev.gyro_lsb_dps
    assert np.allclose(counts, np.round(counts), atol=1e-6)
    ideal = simulate("warehouse_lifting", 300, seed=1, device=device, ideal=True)
    diff = rec.accel_g - ideal.accel_g
    # bias + scale + noise: present, but small
    assert 1e-4 < np.abs(diff).mean() < 0.08
    # saturation at full scale, never beyond
    big = ideal.accel_g.copy()
    big[:10] = 40.0
    gy = ideal.gyro_dps.copy()
    gy[:10] = -5000.0
    from firmware_sim.imu import IdealImu, draw_errors

    a, g = measure(
        IdealImu(big, gy, np.tile([0, 0, 0, 1.0], (len(big), 1))),
        0,
        rec.rate_hz,
        dev,
        draw_errors(1, dev),
        1,
    )
    assert np.all(a[:10] <= dev.accel_range_g)
    assert np.all(a[:10] > dev.accel_range_g * 0.99)
    assert np.all(g[:10] >= -dev.gyro_range_dps)
    assert np.all(g[:10] < -dev.gyro_range_dps * 0.99)


def test_unknown_rate_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="offers 13, 26, 52"):
        simulate("nurse", 60, device="movesense", rate_hz=50)


def test_mountings() -> None:
    ident = mounting_rotation("identity", 1, Placement.UPPER)
    assert ident.magnitude() == 0
    r1 = mounting_rotation("random", 1, Placement.UPPER)
    r2 = mounting_rotation("random", 2, Placement.UPPER)
    assert r1.magnitude() > 0
    assert (r1.inv() * r2).magnitude() > 0.01
    typ = mounting_rotation("typical", 1, Placement.UPPER)
    # sensor y points (about) up the spine
    assert typ.apply([0.0, 1.0, 0.0])[2] > 0.8
    with pytest.raises(ValueError, match="identity, typical, random"):
        mounting_rotation("sideways", 1, Placement.UPPER)


def test_quaternion_helpers_match_scipy() -> None:
    rng = np.random.default_rng(0)
    a = Rotation.random(200, random_state=rng)
    b = Rotation.random(200, random_state=rng)
    v = rng.normal(size=(200, 3))
    qa, qb = a.as_quat(), b.as_quat()

    def same(q: np.ndarray, r: Rotation) -> bool:
        return bool(np.all((Rotation.from_quat(q).inv() * r).magnitude() < 1e-9))

    assert same(quat.mul(qa, qb), a * b)
    assert np.allclose(quat.rotate(qa, v), a.apply(v))
    assert same(quat.conj(qa), a.inv())
    assert np.allclose(quat.to_rotvec(qa), a.as_rotvec())
    rv = rng.normal(size=(200, 3)) * np.array([[1.0], [1e-10]] * 100)
    assert same(quat.from_rotvec(rv), Rotation.from_rotvec(rv))
    ang = rng.uniform(-180, 180, size=(200, 3))
    assert same(
        quat.from_euler_zxy(*np.radians(ang).T),
        Rotation.from_euler("ZXY", ang, degrees=True),
    )


@pytest.mark.parametrize("placement", ["upper", "lower"])
def test_no_jumps_anywhere_in_a_day(placement: str) -> None:
    """Paths are smooth: no sample sticks out from its neighbours (a jump in
    orientation or velocity at a segment boundary would)."""
    rec = simulate("new_parent", 2 * 3600, seed=9, placement=placement, ideal=True)
    worn = rec.samples.worn
    ok = worn[2:] & worn[1:-1] & worn[:-2]

    def spike(x: np.ndarray) -> np.ndarray:
        return np.abs(x[1:-1] - 0.5 * (x[2:] + x[:-2])).max(axis=1)[ok]

    # at 50 Hz the fastest lifts curve by < 0.1 g and < 3 deg/s per sample
    assert spike(rec.accel_g).max() < 0.1
    assert spike(rec.gyro_dps).max() < 3.0
    assert ok.sum() > 0.9 * len(ok)


def test_truth_angles_match_the_analysis_definitions(rec: SimulatedRecording) -> None:
    """The analysis' angle formulas, given the true neutral frame, give the truth."""
    from analysis.orientation import Reference, trunk_angles

    st = _static_samples(rec)
    g = rec.accel_g[st] / np.linalg.norm(rec.accel_g[st], axis=1, keepdims=True)
    to_sensor = rec.mounting.inv()  # segment -> sensor
    ref = Reference(up=to_sensor.apply([0.0, 0.0, 1.0]), fwd=to_sensor.apply([1.0, 0.0, 0.0]))
    incl, flex, lat = trunk_angles(g, ref)
    s = rec.samples
    upright = s.inclination_deg[st] < 45.0
    assert upright.mean() > 0.5
    assert np.max(np.abs(incl - s.inclination_deg[st])) < 1.0
    assert np.max(np.abs(flex - s.flexion_deg[st])[upright]) < 1.0
    assert np.max(np.abs(lat - s.lateral_deg[st])[upright]) < 1.0

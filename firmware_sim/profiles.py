"""Working-day profiles a clinic would recognise, as time budgets of behaviours.

A profile is a sequence of phases (e.g. "morning desk work", "lunch"), each
with a share of the day and a mix of behaviours. Each behaviour in a phase has
a target share of the phase's time and a bout-length distribution
(log-normal: median and geometric SD). The wearer model
(:mod:`firmware_sim.wearer`) turns a profile into a concrete, seeded
schedule whose time shares track these targets.

The numbers are plausible working-day budgets, not measurements of any one
cohort: desk workers sit ~70-80 % of work time in bouts of tens of minutes
(sit-stand studies with activPAL), nurses are upright most of the shift with
frequent trunk flexion, delivery drivers alternate driving with short
carry-and-walk trips, warehouse pickers lift and bend many times an hour, and
a parent at home with a baby mixes sofa sitting, carrying, floor play and
naps.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from analysis.contracts import Activity


class Behaviour(Enum):
    """What the wearer does during a bout. Each maps to one truth activity."""

    CALIBRATE = "calibrate"  # stand tall, still: defines the neutral posture
    SIT = "sit"  # desk/office chair sitting: slouch drift and fidgets
    SIT_RELAXED = "sit_relaxed"  # sofa, break room: reclined, more slumped
    DRIVE = "drive"  # sitting in a driving seat: vehicle vibration and accelerations
    STAND = "stand"  # standing: sway, weight shifts, reaches
    WALK = "walk"  # walking
    WALK_CARRY = "walk_carry"  # walking carrying something (a parcel, a baby)
    BEND = "bend"  # standing with the trunk bent forward (30-100°) for a few seconds
    LIFT = "lift"  # manual handling: bend, grasp, rise with a load
    FLOOR = "floor"  # floor play, kneeling, crawling: varied trunk angles
    LIE = "lie"  # lying (supine or on a side)
    NONWEAR = "nonwear"  # sensor taken off and left on a desk

    @property
    def activity(self) -> Activity:
        return BEHAVIOUR_ACTIVITY[self]


BEHAVIOUR_ACTIVITY: dict[Behaviour, Activity] = {
    Behaviour.CALIBRATE: Activity.STANDING,
    Behaviour.SIT: Activity.SITTING,
    Behaviour.SIT_RELAXED: Activity.SITTING,
    Behaviour.DRIVE: Activity.SITTING,
    Behaviour.STAND: Activity.STANDING,
    Behaviour.WALK: Activity.WALKING,
    Behaviour.WALK_CARRY: Activity.WALKING,
    Behaviour.BEND: Activity.STANDING,
    Behaviour.LIFT: Activity.OTHER,
    Behaviour.FLOOR: Activity.OTHER,
    Behaviour.LIE: Activity.LYING,
    Behaviour.NONWEAR: Activity.NONWEAR,
}


@dataclass(frozen=True)
class BoutSpec:
    """One behaviour's place in a phase.

    Attributes
    ----------
    behaviour : what the wearer does
    share : target share of the phase's time (0..1; a phase's shares sum to 1)
    median_s : median bout length, seconds
    gsd : geometric standard deviation of the (log-normal) bout length, >= 1
    min_s, max_s : bout length limits, seconds
    """

    behaviour: Behaviour
    share: float
    median_s: float
    gsd: float = 1.8
    min_s: float = 5.0
    max_s: float = 4 * 3600.0

    def __post_init__(self) -> None:
        if not 0.0 < self.share <= 1.0:
            raise ValueError(f"{self.behaviour.value}: share={self.share} must be in (0, 1]")
        if self.median_s <= 0 or self.gsd < 1.0 or not 0 < self.min_s <= self.max_s:
            raise ValueError(f"{self.behaviour.value}: bad bout-length distribution")


@dataclass(frozen=True)
class Phase:
    """A part of the day with its own behaviour mix; ``day_share`` of the day."""

    name: str
    day_share: float
    bouts: tuple[BoutSpec, ...]

    def __post_init__(self) -> None:
        total = sum(b.share for b in self.bouts)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"phase {self.name!r}: behaviour shares sum to {total}, not 1")
        if len({b.behaviour for b in self.bouts}) != len(self.bouts):
            raise ValueError(f"phase {self.name!r}: a behaviour is listed twice")


@dataclass(frozen=True)
class Profile:
    """A working-day profile: phases in order, their day shares summing to 1."""

    name: str
    description: str
    phases: tuple[Phase, ...]

    def __post_init__(self) -> None:
        total = sum(p.day_share for p in self.phases)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"profile {self.name!r}: phase day shares sum to {total}, not 1")


def _b(
    behaviour: Behaviour,
    share: float,
    median_s: float,
    gsd: float = 1.8,
    min_s: float = 5.0,
    max_s: float = 4 * 3600.0,
) -> BoutSpec:
    return BoutSpec(behaviour, share, median_s, gsd, min_s, max_s)


B = Behaviour
MIN = 60.0

DESK_WORKER = Profile(
    "desk_worker",
    "office worker: long seated computer work, short walks to the printer, "
    "kitchen and meetings; sensor off for a while at lunch",
    (
        Phase(
            "morning",
            0.45,
            (
                _b(B.SIT, 0.78, 22 * MIN, 1.8, 2 * MIN, 90 * MIN),
                _b(B.STAND, 0.08, 90.0, 2.0, 10.0, 15 * MIN),
                _b(B.WALK, 0.12, 60.0, 2.0, 10.0, 10 * MIN),
                _b(B.BEND, 0.02, 6.0, 1.5, 2.0, 20.0),
            ),
        ),
        Phase(
            "lunch",
            0.10,
            (
                _b(B.WALK, 0.25, 4 * MIN, 1.6, 30.0, 15 * MIN),
                _b(B.SIT_RELAXED, 0.45, 12 * MIN, 1.4, 3 * MIN, 30 * MIN),
                _b(B.STAND, 0.10, 2 * MIN, 1.6, 20.0, 8 * MIN),
                _b(B.NONWEAR, 0.20, 8 * MIN, 1.3, 3 * MIN, 20 * MIN),
            ),
        ),
        Phase(
            "afternoon",
            0.45,
            (
                _b(B.SIT, 0.80, 28 * MIN, 1.7, 2 * MIN, 120 * MIN),
                _b(B.STAND, 0.07, 90.0, 2.0, 10.0, 15 * MIN),
                _b(B.WALK, 0.11, 60.0, 2.0, 10.0, 10 * MIN),
                _b(B.BEND, 0.02, 6.0, 1.5, 2.0, 20.0),
            ),
        ),
    ),
)

NURSE = Profile(
    "nurse",
    "ward nurse: upright most of the shift, walking between rooms, bending at "
    "bedsides, patient handling, short charting and break sits",
    (
        Phase(
            "shift",
            0.85,
            (
                _b(B.STAND, 0.34, 2 * MIN, 2.0, 10.0, 20 * MIN),
                _b(B.WALK, 0.30, 45.0, 2.0, 8.0, 8 * MIN),
                _b(B.BEND, 0.10, 10.0, 1.8, 2.0, 60.0),
                _b(B.LIFT, 0.04, 10.0, 1.5, 4.0, 30.0),
                _b(B.SIT, 0.22, 6 * MIN, 1.8, 60.0, 30 * MIN),
            ),
        ),
        Phase(
            "break",
            0.15,
            (
                _b(B.SIT_RELAXED, 0.70, 10 * MIN, 1.3, 3 * MIN, 20 * MIN),
                _b(B.WALK, 0.15, 60.0, 1.6, 10.0, 5 * MIN),
                _b(B.STAND, 0.15, 90.0, 1.6, 10.0, 5 * MIN),
            ),
        ),
    ),
)

DELIVERY_DRIVER = Profile(
    "delivery_driver",
    "parcel delivery driver: driving between drops, short carry-and-walk trips "
    "to doors, loading and unloading the van",
    (
        Phase(
            "loading",
            0.10,
            (
                _b(B.LIFT, 0.35, 12.0, 1.5, 4.0, 40.0),
                _b(B.WALK_CARRY, 0.30, 20.0, 1.6, 5.0, 2 * MIN),
                _b(B.STAND, 0.20, 40.0, 1.8, 8.0, 5 * MIN),
                _b(B.BEND, 0.15, 8.0, 1.6, 2.0, 30.0),
            ),
        ),
        Phase(
            "round",
            0.90,
            (
                _b(B.DRIVE, 0.60, 7 * MIN, 1.8, 60.0, 40 * MIN),
                _b(B.WALK_CARRY, 0.17, 50.0, 1.6, 10.0, 4 * MIN),
                _b(B.WALK, 0.08, 40.0, 1.6, 8.0, 4 * MIN),
                _b(B.STAND, 0.08, 40.0, 1.8, 8.0, 5 * MIN),
                _b(B.LIFT, 0.04, 8.0, 1.5, 4.0, 30.0),
                _b(B.BEND, 0.03, 6.0, 1.5, 2.0, 20.0),
            ),
        ),
    ),
)

WAREHOUSE = Profile(
    "warehouse_lifting",
    "warehouse order picker: frequent lifting and bending, walking the aisles, "
    "standing at the packing bench, seated breaks",
    (
        Phase(
            "picking",
            0.88,
            (
                _b(B.LIFT, 0.20, 10.0, 1.5, 4.0, 40.0),
                _b(B.BEND, 0.10, 8.0, 1.6, 2.0, 40.0),
                _b(B.WALK, 0.20, 30.0, 1.8, 6.0, 5 * MIN),
                _b(B.WALK_CARRY, 0.12, 20.0, 1.6, 5.0, 2 * MIN),
                _b(B.STAND, 0.30, 60.0, 2.0, 8.0, 10 * MIN),
                _b(B.SIT, 0.08, 4 * MIN, 1.5, 60.0, 15 * MIN),
            ),
        ),
        Phase(
            "break",
            0.12,
            (
                _b(B.SIT_RELAXED, 0.75, 12 * MIN, 1.3, 4 * MIN, 25 * MIN),
                _b(B.WALK, 0.15, 60.0, 1.6, 10.0, 5 * MIN),
                _b(B.STAND, 0.10, 60.0, 1.6, 10.0, 5 * MIN),
            ),
        ),
    ),
)

NEW_PARENT = Profile(
    "new_parent",
    "parent at home with a baby: sofa sitting and feeding, carrying and "
    "rocking, lifting the baby, floor play, a nap, sensor off for a shower",
    (
        Phase(
            "morning",
            0.45,
            (
                _b(B.SIT_RELAXED, 0.34, 12 * MIN, 1.8, 60.0, 45 * MIN),
                _b(B.STAND, 0.20, 90.0, 2.0, 10.0, 10 * MIN),
                _b(B.WALK_CARRY, 0.14, 60.0, 2.0, 8.0, 10 * MIN),
                _b(B.WALK, 0.08, 30.0, 1.8, 5.0, 5 * MIN),
                _b(B.LIFT, 0.05, 8.0, 1.5, 3.0, 20.0),
                _b(B.BEND, 0.07, 8.0, 1.6, 2.0, 40.0),
                _b(B.FLOOR, 0.07, 4 * MIN, 1.6, 30.0, 15 * MIN),
                _b(B.NONWEAR, 0.05, 12 * MIN, 1.2, 5 * MIN, 20 * MIN),
            ),
        ),
        Phase(
            "nap",
            0.15,
            (
                _b(B.LIE, 0.75, 30 * MIN, 1.3, 10 * MIN, 60 * MIN),
                _b(B.SIT_RELAXED, 0.15, 5 * MIN, 1.5, 60.0, 15 * MIN),
                _b(B.WALK_CARRY, 0.10, 60.0, 1.6, 10.0, 5 * MIN),
            ),
        ),
        Phase(
            "afternoon",
            0.40,
            (
                _b(B.SIT_RELAXED, 0.36, 15 * MIN, 1.8, 60.0, 45 * MIN),
                _b(B.STAND, 0.20, 90.0, 2.0, 10.0, 10 * MIN),
                _b(B.WALK_CARRY, 0.14, 60.0, 2.0, 8.0, 10 * MIN),
                _b(B.WALK, 0.10, 60.0, 1.8, 5.0, 15 * MIN),
                _b(B.LIFT, 0.05, 8.0, 1.5, 3.0, 20.0),
                _b(B.BEND, 0.07, 8.0, 1.6, 2.0, 40.0),
                _b(B.FLOOR, 0.08, 4 * MIN, 1.6, 30.0, 15 * MIN),
            ),
        ),
    ),
)

PROFILES: dict[str, Profile] = {
    p.name: p for p in (DESK_WORKER, NURSE, DELIVERY_DRIVER, WAREHOUSE, NEW_PARENT)
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; ValueError naming the known ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown profile {name!r}; known profiles: {known}") from None


def expected_activity_shares(profile: Profile) -> dict[Activity, float]:
    """Target share of the day per truth activity, from the profile definition."""
    out: dict[Activity, float] = dict.fromkeys(Activity, 0.0)
    for phase in profile.phases:
        for spec in phase.bouts:
            out[spec.behaviour.activity] += phase.day_share * spec.share
    return out

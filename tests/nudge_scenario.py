"""A simulated wearer who sits still for long stretches (nudge tests and benchmark)."""

from __future__ import annotations

from firmware_sim.profiles import Behaviour, BoutSpec, Phase, Profile


def still_sitter(
    walk_in_s: float = 240.0, sit_s: float = 45 * 60.0, after_s: float = 600.0
) -> Profile:
    """Walk in (the analysis finds the upright reference), sit still, walk on."""
    total = walk_in_s + sit_s + after_s

    def phase(name: str, b: Behaviour, s: float) -> Phase:
        return Phase(name, s / total, (BoutSpec(b, 1.0, s, 1.0, s, s),))

    return Profile(
        "still_sitter",
        "walks in, sits still, walks on",
        (
            phase("arrive", Behaviour.WALK, walk_in_s),
            phase("desk", Behaviour.SIT, sit_s),
            phase("leave", Behaviour.WALK, after_s),
        ),
    )

"""From a rule's declared probabilities to the ones the draw uses: exclusions, preference
weights, renormalization and the protocol's probability bounds."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from app.protocols.document import (
    InterventionOption,
    PreferenceMode,
    ProbabilityBounds,
    Protocol,
)

CONTRAINDICATED = "contraindicated"
NOT_ON_TRACK = "not on the participant's track"
NOT_IN_PHASE = "not allowed in the participant's treatment phase"
NOT_PREFERRED = "not in the participant's preferred categories"


class NoDeliverableOptionError(Exception):
    """Every option of the rule was excluded for this participant."""


@dataclass(frozen=True)
class Adjusted:
    probabilities: dict[str, float]
    excluded: dict[str, str]
    # More than one option kept a positive probability: a real randomization.
    randomized: bool


def exclusion_reason(
    option: InterventionOption,
    *,
    contraindicated: Callable[[InterventionOption], bool],
    track_options: Sequence[str] | None,
    preferred: Sequence[str],
    mode: PreferenceMode | None,
    phase_options: Sequence[str] | None = None,
) -> str | None:
    """Why the option may not be delivered to this participant now, or None."""
    if option.delivers_nothing:
        return None
    if option.contraindicated_when is not None and contraindicated(option):
        return CONTRAINDICATED
    if track_options is not None and option.id not in track_options:
        return NOT_ON_TRACK
    if phase_options is not None and option.id not in phase_options:
        return NOT_IN_PHASE
    if mode is PreferenceMode.restrict and preferred and option.category not in preferred:
        return NOT_PREFERRED
    return None


def adjust(
    protocol: Protocol,
    declared: Mapping[str, float],
    *,
    randomize: bool,
    contraindicated: Callable[[InterventionOption], bool],
    track_options: Sequence[str] | None,
    preferred: Sequence[str],
    phase_options: Sequence[str] | None = None,
) -> Adjusted:
    """The probabilities to draw from. Raises NoDeliverableOptionError if nothing is left."""
    preferences = protocol.personalization.preferences
    mode = preferences.mode if preferences else None
    excluded: dict[str, str] = {}
    kept: dict[str, float] = {}
    for option_id, p in declared.items():
        option = protocol.option(option_id)
        reason = exclusion_reason(
            option,
            contraindicated=contraindicated,
            track_options=track_options,
            preferred=preferred,
            mode=mode,
            phase_options=phase_options,
        )
        if reason is not None:
            excluded[option_id] = reason
        elif p > 0:
            weight = preferences.weight if preferences else 1.0
            if mode is PreferenceMode.weight and preferred and option.category in preferred:
                p *= weight
            kept[option_id] = p
    if not kept:
        raise NoDeliverableOptionError(
            "every option was excluded for this participant: "
            + ", ".join(f"{o} ({r})" for o, r in excluded.items())
        )
    total = sum(kept.values())
    probabilities = {o: p / total for o, p in kept.items()}
    if randomize and len(probabilities) > 1:
        probabilities = clip(probabilities, protocol.policy.probability_bounds)
    final = {o: probabilities.get(o, 0.0) for o in declared}
    return Adjusted(final, excluded, randomized=len(probabilities) > 1)


def clip(probabilities: Mapping[str, float], bounds: ProbabilityBounds) -> dict[str, float]:
    """Scale all probabilities by one common factor and clip each into the bounds, the
    factor chosen so that they sum to 1.

    The result keeps the order of the probabilities and lies within the bounds whenever
    that is possible; when too few options are left for the upper bound (k options with
    k * max < 1) it is raised to 1/k (and the lower bound lowered to 1/k when k * min > 1).
    """
    options = list(probabilities)
    k = len(options)
    low = min(bounds.min, 1.0 / k)
    high = max(bounds.max, 1.0 / k)
    p = [probabilities[o] for o in options]

    def total(c: float) -> float:
        return sum(min(high, max(low, c * pi)) for pi in p)

    # total(c) is piecewise linear and nondecreasing, from k*low <= 1 at c = 0 to
    # k*high >= 1 for large c: find the piece where it crosses 1 and solve on it.
    breakpoints = sorted({low / pi for pi in p} | {high / pi for pi in p})
    previous, f_previous = 0.0, total(0.0)
    c = breakpoints[-1]
    for point in breakpoints:
        f_point = total(point)
        if f_point >= 1.0:
            c = point
            if f_point > f_previous:
                c = previous + (1.0 - f_previous) * (point - previous) / (f_point - f_previous)
            break
        previous, f_previous = point, f_point
    clipped = [min(high, max(low, c * pi)) for pi in p]
    norm = sum(clipped)
    return {o: q / norm for o, q in zip(options, clipped, strict=True)}

"""Dose-constrained randomization (``policy.dose``, see app/protocols/dose.py): the
probability of treating at a decision point is what is left of the day's target divided by
the decision points expected to be available for the rest of the day, this one included.

Applied to the probabilities the draw would use (after contraindications, tracks and
preferences), so the dose is met with the options actually allowed; the protocol's
probability bounds apply to the result as to every randomization. The record logged with
the decision holds every input, so the probability can be recomputed from the export:
``probability_unclipped = max(0, target_per_day - delivered_today) /
(1 + availability * later_decision_points)``.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.decision_rules.probabilities import clip
from app.protocols.document import ProbabilityBounds, Protocol
from app.protocols.dose import DoseConstraint
from app.protocols.dose_checks import qualifies
from app.protocols.primitives import ALL_WEEKDAYS

DECLARED = "declared"
ESTIMATED = "estimated"


@dataclass(frozen=True)
class DoseHistory:
    """What the database tells of a participant's day and recent availability."""

    # Decision points of the participant still planned later today (local day).
    later_decision_points: int = 0
    # Decisions and available ones in the availability window (None: no window declared).
    recent_decisions: int | None = None
    recent_available: int | None = None


def adjusted_rules(protocol: Protocol) -> frozenset[str]:
    """The ids of the rules the dose constraint adjusts."""
    config = protocol.policy.dose
    if config is None:
        return frozenset()
    if config.rules:
        return frozenset(config.rules)
    # A learned rule's probability is the learning policy's own (the checks refuse naming
    # it here).
    learning = protocol.policy.thompson_sampling
    learned = learning.rule if learning is not None else None
    return frozenset(
        r.id for r in protocol.policy.rules if r.id != learned and qualifies(protocol, r)
    )


def planned_later_today(protocol: Protocol, local: datetime, study_day: int) -> int:
    """The scheduled decision points after ``local`` on its day, from the protocol alone
    (fixed times, and random windows not yet over): the preview's stand-in for the
    participant's planned items."""
    weekday = ALL_WEEKDAYS[local.weekday()]
    now = local.time().replace(tzinfo=None)
    count = 0
    for point in protocol.decision_points:
        if weekday not in point.days_of_week or study_day < point.start_day:
            continue
        if point.end_day is not None and study_day > point.end_day:
            continue
        count += sum(1 for t in point.times if t > now)
        count += sum(w.count for w in point.random_windows if w.end > now)
    return count


def treat_low(bounds: ProbabilityBounds) -> float:
    """The lowest total probability of treating: the treat options' lower bound, and the
    none option's upper bound (as ``probabilities.clip`` widens bounds for two options)."""
    return max(min(bounds.min, 0.5), 1.0 - max(bounds.max, 0.5))


def treat_high(bounds: ProbabilityBounds) -> float:
    """The highest total probability of treating (the mirror of ``treat_low``)."""
    return min(max(bounds.max, 0.5), 1.0 - min(bounds.min, 0.5))


def availability(config: DoseConstraint, history: DoseHistory) -> tuple[float, str]:
    """The expected share of later decision points available, and where it came from."""
    n, available = history.recent_decisions, history.recent_available
    if config.availability_window_days is None or n is None or available is None:
        return config.expected_availability, DECLARED
    if n < config.min_decisions:
        return config.expected_availability, DECLARED
    return available / n, ESTIMATED


def constrain(
    protocol: Protocol,
    probabilities: Mapping[str, float],
    *,
    delivered_today: int,
    history: DoseHistory,
) -> tuple[dict[str, float], dict[str, Any]]:
    """The probabilities with the treat options' total set to the dose probability (split
    in their own proportions), and the record to log."""
    config = protocol.policy.dose
    assert config is not None  # noqa: S101
    nothing = [o for o in probabilities if protocol.option(o).delivers_nothing]
    treat = {o: p for o, p in probabilities.items() if o not in nothing and p > 0}
    share, source = availability(config, history)
    expected_points = 1.0 + share * history.later_decision_points
    left = max(0.0, config.target_per_day - delivered_today)
    raw = min(1.0, left / expected_points)
    bounds = protocol.policy.probability_bounds
    p = min(treat_high(bounds), max(treat_low(bounds), raw))
    total = sum(treat.values())
    result = dict.fromkeys(probabilities, 0.0)
    for o, q in treat.items():
        result[o] = p * q / total
    result[nothing[0]] = 1.0 - p
    positive = {o: q for o, q in result.items() if q > 0}
    if len(positive) > 1:
        # Several treat options each keep within the bounds, as for any randomization.
        result = dict.fromkeys(probabilities, 0.0) | clip(positive, bounds)
    record = {
        "target_per_day": config.target_per_day,
        "delivered_today": delivered_today,
        "later_decision_points": history.later_decision_points,
        "availability": share,
        "availability_source": source,
        "recent_decisions": history.recent_decisions,
        "recent_available": history.recent_available,
        "expected_points": expected_points,
        "probability_unclipped": raw,
        "probability": sum(result[o] for o in treat),
    }
    return result, record

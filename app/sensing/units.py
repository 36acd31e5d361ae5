"""Units of wearable summaries: which are accepted per metric, and the one each is stored in.

Every metric is stored in one unit (steps: count, minutes: min, efficiency: percent, heart
rate: bpm), so tailoring variables and analyses never mix scales. Values are also checked
against what the period makes possible (no more active minutes than the period has), which
catches a phone sending seconds as minutes.
"""

from dataclasses import dataclass

from app.protocols.tailoring import WearableMetric

# Alias (case-insensitive) -> factor to the stored unit.
_MINUTES = {
    "min": 1.0,
    "mins": 1.0,
    "minute": 1.0,
    "minutes": 1.0,
    "s": 1 / 60,
    "sec": 1 / 60,
    "second": 1 / 60,
    "seconds": 1 / 60,
    "h": 60.0,
    "hr": 60.0,
    "hour": 60.0,
    "hours": 60.0,
}
ACCEPTED_UNITS: dict[WearableMetric, tuple[str, dict[str, float]]] = {
    WearableMetric.steps: ("count", {"count": 1.0, "steps": 1.0, "step": 1.0, "{steps}": 1.0}),
    WearableMetric.active_minutes: ("min", _MINUTES),
    WearableMetric.sleep_minutes: ("min", _MINUTES),
    WearableMetric.sleep_efficiency: ("percent", {"percent": 1.0, "%": 1.0, "fraction": 100.0}),
    WearableMetric.resting_heart_rate: (
        "bpm",
        {"bpm": 1.0, "beats/min": 1.0, "/min": 1.0, "1/min": 1.0, "{beats}/min": 1.0},
    ),
}
# Plausible resting heart rates, in beats per minute.
HEART_RATE_RANGE = (20.0, 250.0)
# More than this many steps per minute of the period is not walking or running.
MAX_STEPS_PER_MINUTE = 300


@dataclass(frozen=True)
class Normalized:
    unit: str
    value: float


def normalize(
    metric: WearableMetric, unit: str, value: float, period_minutes: float
) -> Normalized | str:
    """The value in the metric's stored unit, or why it cannot be accepted."""
    stored_unit, aliases = ACCEPTED_UNITS[metric]
    factor = aliases.get(unit.strip().lower())
    if factor is None:
        return f"unit '{unit}' is not accepted for {metric}; use one of {sorted(aliases)}"
    converted = value * factor
    if metric in (WearableMetric.active_minutes, WearableMetric.sleep_minutes):
        # Minutes are whole numbers for tailoring (rounded after converting seconds/hours).
        converted = float(round(converted))
    problem = _range_problem(metric, converted, period_minutes)
    return problem if problem is not None else Normalized(stored_unit, converted)


def _range_problem(metric: WearableMetric, value: float, period_minutes: float) -> str | None:
    if value < 0:
        return f"{metric} cannot be negative"
    if metric is WearableMetric.steps:
        if value != int(value):
            return "steps must be a whole number"
        if value > MAX_STEPS_PER_MINUTE * max(period_minutes, 1):
            return (
                f"{value:.0f} steps in {period_minutes:.0f} minutes is more than "
                f"{MAX_STEPS_PER_MINUTE} per minute"
            )
    minutes_metric = metric in (WearableMetric.active_minutes, WearableMetric.sleep_minutes)
    if minutes_metric and value > period_minutes:
        return (
            f"{value:.0f} minutes of {metric} do not fit in a period of "
            f"{period_minutes:.0f} minutes (was the value sent in seconds?)"
        )
    if metric is WearableMetric.sleep_efficiency and value > 100:
        return f"sleep efficiency is a percentage (0-100), got {value}"
    if metric is WearableMetric.resting_heart_rate:
        low, high = HEART_RATE_RANGE
        if not low <= value <= high:
            return f"a resting heart rate of {value} bpm is outside {low:.0f}..{high:.0f}"
    return None

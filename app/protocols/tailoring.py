"""Tailoring variables: named features the policy decides on, each defined over a source."""

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from app.protocols.primitives import CelName, Identifier, PositiveInt, ProtocolModel
from app.protocols.questionnaires import ItemReference


class ValueType(StrEnum):
    """The CEL type of a value. `number` may hold whole or decimal numbers (CEL int or
    double); `integer` is always a CEL int."""

    boolean = "boolean"
    integer = "integer"
    number = "number"
    string = "string"
    string_list = "string_list"


class Aggregate(StrEnum):
    latest = "latest"
    """The most recent value in the window."""
    mean = "mean"
    sum = "sum"
    min = "min"
    max = "max"
    count = "count"  # type: ignore[assignment]  # shadows str.count, harmless here
    """How many values there are in the window (never missing: 0 when there are none)."""


WINDOW_PATTERN = r"^(today|[1-9][0-9]{0,4}(m|h|d))$"
_WINDOW_UNITS = {"m": 1, "h": 60, "d": 24 * 60}

Window = Annotated[
    str,
    Field(
        pattern=WINDOW_PATTERN,
        description='How far back to look: "30m", "3h", "24h", "7d", or "today" (since local '
        "midnight).",
        examples=["24h", "7d", "today"],
    ),
]


def window_span(window: str) -> timedelta | None:
    """The length of a trailing window, or None for "today" (since local midnight)."""
    if window == "today":
        return None
    match = re.fullmatch(r"(\d+)([mhd])", window)
    if match is None:
        raise ValueError(f"not a window: {window!r}")
    return timedelta(minutes=int(match[1]) * _WINDOW_UNITS[match[2]])


JsonScalar = bool | int | float | str
DefaultValue = JsonScalar | tuple[str, ...]


class VariableBase(ProtocolModel):
    name: CelName
    """How CEL expressions and message placeholders refer to the variable."""
    type: ValueType
    """boolean, integer, number, string or string_list; must fit the source."""
    description: str = ""
    """What the variable means, for people reading the protocol and the decision log."""
    default: DefaultValue | None = None
    """Value used when the source has no data. Without a default, missing data makes the
    participant unavailable at that decision point (nothing is delivered)."""


class WindowedVariable(VariableBase):
    aggregate: Aggregate
    """latest, mean, sum, min, max or count."""
    window: Window | None = None
    """Trailing window to aggregate over. Exactly one of window and baseline_days."""
    baseline_days: PositiveInt | None = None
    """Aggregate over the first N days after enrollment instead (a baseline)."""


class EmaVariable(WindowedVariable):
    """A feature of EMA answers, e.g. latest pain interference in the last 24 h."""

    source: Literal["ema"]
    item: ItemReference
    """The item: "<questionnaire id>.<item id>" (e.g. "morning.pain"), or "*.<item id>" to
    pool the item with that id across questionnaires."""


class WearableMetric(StrEnum):
    steps = "steps"
    active_minutes = "active_minutes"
    sleep_minutes = "sleep_minutes"
    sleep_efficiency = "sleep_efficiency"
    """Percent of time in bed asleep (0-100)."""
    resting_heart_rate = "resting_heart_rate"


# Counts of steps and minutes are whole numbers; the rest are measured values.
INTEGER_METRICS = frozenset(
    {WearableMetric.steps, WearableMetric.active_minutes, WearableMetric.sleep_minutes}
)


class WearableVariable(WindowedVariable):
    """A feature of wearable summaries, e.g. steps in the last 3 h."""

    source: Literal["wearable"]
    metric: WearableMetric
    """steps, active_minutes, sleep_minutes, sleep_efficiency or resting_heart_rate."""


class NotificationsVariable(VariableBase):
    """How many intervention prompts were sent in a window, e.g. today."""

    source: Literal["notifications"]
    aggregate: Literal["count"] = "count"
    """Always count."""
    window: Window
    """Window to count in, e.g. "today" or "24h"."""


class EnrollmentVariable(VariableBase):
    """Whole days since enrollment (0 on the enrollment day)."""

    source: Literal["enrollment"]


class AttributeVariable(VariableBase):
    """A participant attribute recorded at onboarding, usable by name in rules."""

    source: Literal["attribute"]
    attribute: Identifier
    """Name of the attribute in participant_attributes."""


TailoringVariable = Annotated[
    EmaVariable | WearableVariable | NotificationsVariable | EnrollmentVariable | AttributeVariable,
    Field(discriminator="source"),
]

"""Routine outcome monitoring: weekly trends and the flags the care team must see."""

from pydantic import Field

from app.protocols.primitives import PositiveInt, ProtocolModel


class NonResponse(ProtocolModel):
    """Therapeutic inertia must not go unnoticed: flag who has not improved enough."""

    item: str
    """The outcome item ("<questionnaire>.<item>" or "*.<item>"), lower is better."""
    after_weeks: PositiveInt = 4
    """Evaluate from this study week on (week 0 is the enrollment week, the baseline)."""
    min_improvement: float = Field(0.3, gt=0, le=1)
    """The relative reduction from baseline that counts as a response (0.3 = 30%)."""


class FatigueResponse(ProtocolModel):
    """What Kairos does by itself when a participant tires of the programme."""

    prompt_budget_factor: float = Field(gt=0, le=1)
    """Multiply the daily prompt cap by this (0.5 halves it) while the flag is open."""


class Fatigue(ProtocolModel):
    """Treatment fatigue: EMA completion or prompt engagement falling over two weeks."""

    drop_fraction: float = Field(0.3, gt=0, le=1)
    """Flag when last week's rate is this fraction below the week before (0.3 = 30%)."""
    min_prompts: PositiveInt = 5
    """Rates on fewer prompts than this in a week are too noisy to compare."""
    response: FatigueResponse | None = None
    """An automatic response, e.g. halve the prompt budget."""


class Unreachable(ProtocolModel):
    """No delivered push and no contact from the app for this many days."""

    days: PositiveInt = 3


class Monitoring(ProtocolModel):
    """Weekly trends and care-team flags, computed daily."""

    trend_items: tuple[str, ...] = ()
    """Items whose weekly mean is shown against baseline (the enrollment week); empty
    means every numeric rating item."""
    non_response: NonResponse | None = None
    """Without it, no non-response flags."""
    fatigue: Fatigue = Fatigue()
    unreachable: Unreachable = Unreachable()

"""Routine outcome monitoring: weekly trends and the flags the care team must see."""

from enum import StrEnum
from typing import Literal, Self

from pydantic import Field, model_validator

from app.protocols.primitives import NonNegativeInt, PositiveInt, ProtocolModel


class Direction(StrEnum):
    lower_is_better = "lower_is_better"
    higher_is_better = "higher_is_better"


class BaselineWindow(ProtocolModel):
    """The study days whose answers are the participant's own starting point."""

    start_day: NonNegativeInt = 0
    """First study day of the baseline (0 is the enrollment day)."""
    days: PositiveInt = 7
    """How many days the baseline spans (default: the enrollment week)."""


class RecentWindow(ProtocolModel):
    """The most recent complete days, compared with the baseline."""

    days: PositiveInt = 7
    """How many complete days, ending with yesterday (the 24 h periods since enrollment)."""


class NonResponse(ProtocolModel):
    """Therapeutic inertia must not go unnoticed: flag who has not improved enough on the
    measure the protocol declares (pain, interference, function, any numeric item)."""

    item: str
    """The outcome item ("<questionnaire>.<item>" or "*.<item>"): pain intensity,
    interference, a function or questionnaire item; a numeric rating item."""
    direction: Direction = Direction.lower_is_better
    """lower_is_better (pain, interference) or higher_is_better (function, acceptance)."""
    after_weeks: PositiveInt = 4
    """Evaluate from this study week on (week 0 is the enrollment week)."""
    min_improvement: float = Field(0.3, gt=0, le=1)
    """The relative improvement from baseline that counts as a response (0.3 = 30%)."""
    baseline: BaselineWindow = BaselineWindow()
    """The baseline window (default: study days 0-6)."""
    recent: RecentWindow = RecentWindow()
    """The recent window (default: the last 7 complete days)."""
    min_answers: PositiveInt = 3
    """Fewer answers than this in either window: not evaluated (too little data)."""


class ReEngagementMessage(ProtocolModel):
    """One push sent when a fatigue episode opens (once per episode)."""

    title: str = Field(min_length=1, max_length=120)
    """The push title."""
    body: str = Field(min_length=1, max_length=500)
    """The push text: acknowledge the effort, say that there will be fewer prompts."""
    deep_link: str | None = Field(None, max_length=500)
    """Where the app opens (optional)."""


class FatigueResponse(ProtocolModel):
    """What Kairos does by itself while a fatigue episode is open."""

    prompt_budget_factor: float = Field(gt=0, le=1)
    """The burden factor (0.5 halves the burden) while the episode is open. It scales the
    daily cap on intervention prompts (max_prompts_per_day, or without one the decision
    moments a day), the reminders of every EMA prompt, and thins the prompts of `droppable`
    EMA schedules."""
    re_engagement: ReEngagementMessage | None = None
    """A message pushed once when an episode opens."""


FatigueMeasure = Literal["ema_completion", "engagement"]


class Fatigue(ProtocolModel):
    """Treatment fatigue: a sustained or gradual decline of EMA completion or prompt
    engagement against the participant's own early rate."""

    measures: tuple[FatigueMeasure, ...] = Field(("ema_completion", "engagement"), min_length=1)
    """Which rates are watched: ema_completion (answered / offered EMA prompts) and
    engagement (intervention prompts opened / delivered)."""
    baseline_days: PositiveInt = 14
    """The participant's own reference: their rate over these first study days."""
    window_days: PositiveInt = 7
    """The rolling window of the current rate, in days."""
    flag_below: float | None = Field(None, gt=0, lt=1)
    """Open an episode when the rolling rate is below this fraction of the baseline rate
    (default 0.7, or 1 - drop_fraction)…"""
    flag_after_days: PositiveInt = 3
    """…on this many consecutive days."""
    clear_above: float = Field(0.85, gt=0, le=1)
    """The episode clears only when the rolling rate is back at or above this fraction of
    the baseline (higher than flag_below: hysteresis)…"""
    clear_after_days: PositiveInt = 7
    """…on this many consecutive days (or when the care team ends it)."""
    min_prompts: PositiveInt = 5
    """A baseline or window with fewer prompts than this is too noisy to judge."""
    drop_fraction: float | None = Field(None, gt=0, lt=1)
    """Deprecated (the week-over-week detector): read as flag_below = 1 - drop_fraction."""
    response: FatigueResponse | None = None
    """An automatic response, e.g. halve the burden and send a re-engagement message."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.clear_above <= self.threshold:
            raise ValueError(
                f"clear_above ({self.clear_above}) must be higher than flag_below "
                f"({self.threshold}), or an episode would clear as soon as it opens"
            )
        return self

    @property
    def threshold(self) -> float:
        """The flag_below in force."""
        if self.flag_below is not None:
            return self.flag_below
        if self.drop_fraction is not None:
            return round(1 - self.drop_fraction, 6)
        return 0.7


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

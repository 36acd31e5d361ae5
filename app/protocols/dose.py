"""Dose-constrained randomization (``policy.dose``): a target average number of
interventions per day, met by adjusting each decision's probability of treating online.

Following Liao et al. (2018, "Just-in-time but not too much", HeartSteps): at each decision
point the probability of treating is what is left of the day's target divided by the
decision points expected to be available for the rest of the day (this one included),
clipped to the probability bounds. The dose is spread over the day's decision points
rather than spent at the first ones, and every row logs the inputs, so each probability
can be recomputed from the export.
"""

from typing import Annotated

from pydantic import Field

from app.protocols.primitives import Identifier, PositiveInt, ProtocolModel


class DoseConstraint(ProtocolModel):
    """Adjust the randomization probabilities of some rules so that, on average, the
    participant receives `target_per_day` interventions a day."""

    target_per_day: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    """Interventions per participant-day to aim for on average, e.g. 1.5."""
    rules: tuple[Identifier, ...] = ()
    """Rules whose randomization is adjusted (each randomizes between options that
    deliver something and one option of category none); empty means every such rule."""
    expected_availability: float = Field(1.0, gt=0, le=1)
    """Share of the day's later decision points expected to be available (not in quiet
    hours, not over a cap, not failing an availability condition)."""
    availability_window_days: PositiveInt | None = None
    """Estimate that share from the participant's own decisions of the last this many
    days instead (the declared `expected_availability` is used until they have
    `min_decisions` of them)."""
    min_decisions: PositiveInt = 10
    """Decisions needed in the window before the participant's own share is used."""

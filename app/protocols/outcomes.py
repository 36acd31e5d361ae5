"""Proximal outcomes: the short-term effect a decision targets, filled in later by the
decision log."""

from typing import Annotated, Literal

from pydantic import Field

from app.protocols.primitives import CelName, Identifier, PositiveInt, ProtocolModel
from app.protocols.questionnaires import ItemReference
from app.protocols.tailoring import WearableMetric


class OutcomeBase(ProtocolModel):
    name: CelName
    """Column name in the decision log export."""
    description: str = ""
    """What the outcome measures."""
    window_minutes_after: PositiveInt
    """How long after the decision the outcome is observed."""
    options: tuple[Identifier, ...] | None = None
    """Only record it for decisions that chose one of these options (default: all)."""


class EmaOutcome(OutcomeBase):
    """The first answer to an EMA item within the window, e.g. next pain interference."""

    source: Literal["ema"]
    item: ItemReference
    """The item: "<questionnaire id>.<item id>", or "*.<item id>" for any questionnaire's."""


class WearableOutcome(OutcomeBase):
    """A wearable metric summed or averaged over the window, e.g. steps in 60 min."""

    source: Literal["wearable"]
    metric: WearableMetric
    """steps, active_minutes, sleep_minutes, sleep_efficiency or resting_heart_rate."""
    aggregate: Literal["sum", "mean"] = "sum"
    """sum or mean over the window."""


class EngagementOutcome(OutcomeBase):
    """Whether an event happened within the window (true/false), e.g. exercise completed."""

    source: Literal["engagement"]
    event: Literal["prompt_opened", "exercise_completed"]
    """prompt_opened or exercise_completed."""


ProximalOutcome = Annotated[
    EmaOutcome | WearableOutcome | EngagementOutcome, Field(discriminator="source")
]

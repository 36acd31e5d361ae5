"""Clinical care plans: treatment phases (stepped care) and care-team reviews.

SMART (``smart``) re-assigns tracks at random, by response, for everyone; phases are
chosen for one participant by a clinician. A study may use either or both; ``adaptation``
says which, and the checks hold the protocol to it.
"""

from enum import StrEnum

from pydantic import Field

from app.protocols.primitives import Identifier, PositiveInt, ProtocolModel
from app.protocols.questionnaires import Severity


class Phase(ProtocolModel):
    """One step of stepped care (e.g. education, self-management, intensified support)."""

    id: Identifier
    """Unique among phases; CEL sees the participant's current one as `phase`."""
    description: str = ""
    """What the phase means clinically."""
    options: tuple[Identifier, ...] | None = None
    """If given, only these options may be delivered in this phase; other options get
    probability 0 (options of category none are always allowed)."""
    max_prompts_per_day: PositiveInt | None = None
    """The daily cap on intervention prompts in this phase (overrides the policy's; with a
    SMART track's cap as well, the lower applies)."""


class Phases(ProtocolModel):
    """Treatment phases a clinician moves a participant through, least intensive first."""

    steps: tuple[Phase, ...] = Field(min_length=1)
    """The phases, from the least to the most intensive."""
    initial: Identifier | None = None
    """The phase at enrollment (default: the first step)."""

    @property
    def initial_phase(self) -> str:
        return self.initial or self.steps[0].id

    def phase(self, phase_id: str) -> Phase | None:
        for step in self.steps:
            if step.id == phase_id:
                return step
        return None


class ReviewFlag(StrEnum):
    non_response = "non_response"
    fatigue = "fatigue"
    unreachable = "unreachable"


class Reviews(ProtocolModel):
    """Care-team reviews: when one is due for a participant, and when it is overdue."""

    every_days: PositiveInt | None = 14
    """A review is due this many days after enrollment and after each completed review
    (none: only flags make reviews due)."""
    on_flags: tuple[ReviewFlag, ...] = (ReviewFlag.non_response,)
    """A flag of these kinds makes a review due at once (one review per flag)."""
    grace_days: PositiveInt = 3
    """A review not completed this many days after it fell due is overdue, and escalated
    to the next level of the study's care routes."""
    severity: Severity = Severity.medium
    """Due and overdue reviews are sent to the care routes that take this severity."""
    plan_change_within_days: PositiveInt = 14
    """The inertia measure: a non-response flag counts as answered when a plan change (a
    review outcome other than maintain, or a phase change) follows within this many days."""


class Adaptation(StrEnum):
    smart = "smart"
    phases = "phases"
    both = "both"

"""The decision policy: availability, burden limits, ordered rules and the fallback."""

from pydantic import Field

from app.protocols.dose import DoseConstraint
from app.protocols.learning import ThompsonSampling
from app.protocols.primitives import (
    CelExpression,
    Identifier,
    PositiveInt,
    ProtocolModel,
)
from app.protocols.timing import QuietHours


class _Assigns:
    option: str | None
    randomize: dict[str, float] | None

    def probabilities(self) -> dict[str, float]:
        """The option probabilities declared (a fixed option has probability 1)."""
        if self.option is not None:
            return {self.option: 1.0}
        return dict(self.randomize or {})

    def option_ids(self) -> list[str]:
        return list(self.probabilities())


class Assignment(_Assigns, ProtocolModel):
    """Either a fixed option or randomization probabilities over options (exactly one)."""

    option: Identifier | None = None
    """Deliver this option."""
    randomize: dict[Identifier, float] | None = None
    """Draw an option with these probabilities (between 0 and 1, summing to 1)."""


class Rule(_Assigns, ProtocolModel):
    """If `when` holds, deliver `option` or randomize; the first matching rule decides."""

    id: Identifier
    """Unique among rules; logged with every decision it makes."""
    when: CelExpression
    """CEL condition over tailoring variables and built-ins (see docs/protocols.md)."""
    option: Identifier | None = None
    """Deliver this option."""
    randomize: dict[Identifier, float] | None = None
    """Draw an option with these probabilities (between 0 and 1, summing to 1)."""


class Availability(ProtocolModel):
    """When a participant may receive anything at all."""

    conditions: tuple[CelExpression, ...] = ()
    """CEL conditions that must all be true; otherwise the participant is unavailable."""
    quiet_hours: QuietHours | None = None
    """Local hours without pushes."""
    max_prompts_per_day: PositiveInt | None = None
    """Daily cap on delivered intervention prompts (options of category none do not
    count)."""
    max_pushes_per_day: PositiveInt | None = None
    """Daily budget of all pushes in the participant's local day: EMA prompts, reminders
    and interventions. Once reached, interventions are unavailable and reminders are not
    sent; scheduled EMA prompts (the study's measurements) are always sent."""
    min_minutes_between_prompts: PositiveInt | None = None
    """Minimum time since the last delivered prompt."""


class ProbabilityBounds(ProtocolModel):
    """Clipping of randomization probabilities, so every arm keeps some chance (MRT
    positivity) and none is certain."""

    min: float = 0.0
    """Lowest probability any randomized option may get."""
    max: float = 1.0
    """Highest probability any randomized option may get."""

    def clip(self, p: float) -> float:
        return min(self.max, max(self.min, p))


class Policy(ProtocolModel):
    """How each decision point is decided."""

    availability: Availability = Availability()
    """Availability conditions and burden limits."""
    probability_bounds: ProbabilityBounds = ProbabilityBounds()
    """Bounds applied to randomization probabilities (default 0 to 1: no clipping)."""
    rules: tuple[Rule, ...] = Field(min_length=1)
    """Tried in order; the first rule whose `when` is true decides. If none matches,
    nothing is delivered."""
    fallback: Assignment
    """Used when deciding fails (an expression error, missing data bug, all options
    excluded). Must not be contraindicated for anyone."""
    thompson_sampling: ThompsonSampling | None = None
    """A learning policy for one rule's randomization (see docs/learning-policies.md)."""
    dose: DoseConstraint | None = None
    """Dose-constrained randomization: probabilities adjusted online so that a target
    number of interventions a day is met on average (see docs/learning-policies.md)."""

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id; KeyError if there is none."""
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

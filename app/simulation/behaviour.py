"""The behaviour model of synthetic participants: how often and how fast they answer, what
they answer, how they walk, and what each intervention option truly does to them.

A YAML (or JSON) file, validated like a protocol: an unknown field or a value out of range
is an error naming its path. Every field has a default, so an empty file is the default
model (``DEFAULT_BEHAVIOUR``).
"""

import json
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import available_timezones

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app.protocols.attributes import (
    BooleanAttribute,
    ChoiceAttribute,
    MultiChoiceAttribute,
    NumberAttribute,
)
from app.protocols.document import Protocol
from app.protocols.questionnaires import NumericRatingItem

Probability = Annotated[float, Field(ge=0, le=1)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


WeeklyChange = Annotated[float, Field(ge=-1, le=1)]


class Recovery(Model):
    """Answering that picks up again after a fall (e.g. after a care-team contact)."""

    from_week: Annotated[int, Field(ge=1, le=104)]
    """From this study week on (0 is the enrollment week), ``weekly_change`` applies
    instead of the answering's own."""
    weekly_change: WeeklyChange
    """Added every week from ``from_week`` on."""
    ceiling: Probability = 1.0
    """Recovery stops here."""


class Answering(Model):
    """Whether and when a prompt is answered."""

    probability: Probability = 0.85
    """Chance of answering a prompt in the first study week."""
    weekly_change: WeeklyChange = -0.03
    """Added to the probability every further week (negative: treatment fatigue)."""
    floor: Probability = 0.2
    """The probability never falls below this."""
    recovery: Recovery | None = None
    """From a week on, the probability changes by another amount (e.g. rises again)."""
    latency_minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 12
    """Mean delay from the push to the answer (exponentially distributed)."""
    latency_between_sd: Annotated[float, Field(ge=0, le=3)] = 0.0
    """People differ: each one's mean latency is ``latency_minutes`` times a log-normal
    factor with this standard deviation of its logarithm (0: everyone alike)."""

    def chance(self, week: int) -> float:
        """The probability of answering a prompt in this study week."""
        recovery = self.recovery
        if recovery is None or week < recovery.from_week:
            return max(self.floor, min(1.0, self.probability + self.weekly_change * week))
        at_turn = self.chance(recovery.from_week - 1)
        changed = at_turn + recovery.weekly_change * (week - recovery.from_week + 1)
        if recovery.weekly_change >= 0:
            return min(changed, max(at_turn, recovery.ceiling))
        return max(self.floor, changed)


class Moderator(Model):
    """Makes an effect depend on a tailoring variable or an attribute."""

    variable: Annotated[str, Field(min_length=1)]
    """A tailoring variable of the protocol (its value logged with the decision that
    delivered the option), or ``attributes.<name>`` (a number or yes/no attribute)."""
    centre: float = 0.0
    """The value at which the effect is ``shift``."""
    per_unit: float
    """Added to the shift for every unit the value is above ``centre``."""


class Effect(Model):
    """The true effect of delivering an intervention option on an EMA item answered
    within ``hours`` after it."""

    option: str
    item: str
    """The item's id (in any questionnaire)."""
    shift: float
    """Added to the participant's answer (in the item's units), then kept on its scale."""
    hours: Annotated[float, Field(gt=0, le=24 * 14)] = 24
    moderator: Moderator | None = None
    """The shift becomes ``shift + per_unit * (value - centre)``."""


class Trajectory(Model):
    """A numeric item's answers over the study, as fractions of the item's scale."""

    level: Probability = 0.5
    """The mean usual level in the first week (0: the scale's minimum, 1: its maximum)."""
    between_sd: Annotated[float, Field(ge=0, le=1)] = 0.1
    """Spread of usual levels between people."""
    weekly_change: WeeklyChange = 0.0
    """Added to a person's level every week on average (e.g. -0.01: pain falls by a tenth
    of a 0-10 scale point a week)."""
    weekly_change_sd: Annotated[float, Field(ge=0, le=1)] = 0.0
    """Spread of the weekly change between people (some improve, some do not)."""
    daily_sd: Annotated[float, Field(ge=0, le=1)] = 0.1
    """Answer-to-answer noise."""


class AttributeDraw(Model):
    """How a participant attribute is drawn: give the fields that fit its type."""

    probability: Probability | None = None
    """Yes/no attributes: the chance of true."""
    weights: dict[str, Annotated[float, Field(ge=0)]] | None = None
    """Choice attributes: relative weights of the choices (missing ones weigh 0);
    multiple-choice attributes: each choice's chance of being picked."""
    mean: float | None = None
    """Number attributes: a normal draw with this mean and ``sd``, kept in the range."""
    sd: Annotated[float, Field(ge=0)] | None = None
    value: Any = None
    """Any attribute: this value for everyone."""

    @model_validator(mode="after")
    def _one_kind(self) -> "AttributeDraw":
        given = [
            name
            for name, set_ in (
                ("probability", self.probability is not None),
                ("weights", self.weights is not None),
                ("mean", self.mean is not None or self.sd is not None),
                ("value", self.value is not None),
            )
            if set_
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of probability, weights, mean (with sd) or value"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if (self.mean is None) != (self.sd is None):
            raise ValueError("mean and sd go together")
        return self


class ClockSkew(Model):
    """Phones whose clocks are off: each phone's offset is a normal draw (positive: the
    phone is ahead), applied to the times it reports."""

    mean_seconds: Annotated[float, Field(ge=-86_400, le=86_400)] = 0.0
    sd_seconds: Annotated[float, Field(ge=0, le=86_400)] = 0.0


class Steps(Model):
    daily_mean: Annotated[float, Field(ge=0, le=100_000)] = 5_000
    """A participant's mean steps a day (people vary around it by ``between_sd``)."""
    between_sd: Annotated[float, Field(ge=0, le=1)] = 0.3
    """Spread between participants, as a fraction of the mean."""
    effects: dict[str, Annotated[float, Field(ge=0, le=10)]] = Field(default_factory=dict)
    """Per option: steps in the 2 hours after its delivery are multiplied by this."""


class Behaviour(Model):
    timezones: dict[str, Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: {"Europe/Berlin": 1.0}
    )
    """Time zones and their weights (DST transitions during a run happen as in life)."""
    answering: Answering = Answering()
    engagement: Probability = 0.6
    """Chance of completing the exercise an intervention push offers."""
    effects: tuple[Effect, ...] = ()
    yes_probability: dict[str, Probability] = Field(default_factory=dict)
    """Per yes/no item id: the chance of "yes" (default 0.05)."""
    steps: Steps = Steps()
    push_loss: Probability = 0.02
    """Chance that an accepted push never reaches the phone."""
    attributes: dict[str, AttributeDraw] = Field(default_factory=dict)
    """Per participant attribute: how it is drawn (others: uniformly over their range or
    choices, yes/no with chance one half)."""
    items: dict[str, Trajectory] = Field(default_factory=dict)
    """Per numeric item id: its trajectory (others: a usual level drawn uniformly from 30%
    to 70% of the scale, no trend, noise a tenth of the scale)."""
    clock_skew: ClockSkew = ClockSkew()

    @field_validator("timezones")
    @classmethod
    def _known_zones(cls, zones: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(zones) - available_timezones())
        if unknown:
            raise ValueError(f"unknown time zones {unknown} (IANA names, e.g. Europe/Berlin)")
        if not zones:
            raise ValueError("name at least one time zone")
        return zones


DEFAULT_BEHAVIOUR = Behaviour()


class BehaviourInvalidError(ValueError):
    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems))


def parse_behaviour(text: str) -> Behaviour:
    """The model in ``text`` (YAML or JSON); BehaviourInvalidError naming every problem."""
    try:
        raw: Any = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise BehaviourInvalidError([("", f"not YAML: {exc}")]) from exc
    if not isinstance(raw, dict):
        raise BehaviourInvalidError([("", "expected a mapping of settings")])
    try:
        return Behaviour.model_validate(raw)
    except ValidationError as exc:
        problems = [
            (".".join(str(p) for p in error["loc"]), error["msg"]) for error in exc.errors()
        ]
        raise BehaviourInvalidError(problems) from exc


def load_behaviour(path: Path | None) -> Behaviour:
    return DEFAULT_BEHAVIOUR if path is None else parse_behaviour(path.read_text("utf-8"))


def behaviour_json_schema() -> str:
    return json.dumps(Behaviour.model_json_schema(), indent=2)


def check_against_protocol(behaviour: Behaviour, protocol: Protocol) -> None:
    """BehaviourInvalidError naming every setting that does not fit the protocol: an
    attribute, item, option or moderator it does not have, a draw of the wrong kind."""
    problems: list[tuple[str, str]] = []
    specs = protocol.participant_attributes
    for name, draw in sorted(behaviour.attributes.items()):
        path, spec = f"attributes.{name}", specs.get(name)
        if spec is None:
            problems.append((path, f"the protocol has no participant attribute '{name}'"))
        elif draw.value is not None:
            if (reason := spec.validate_value(draw.value)) is not None:
                problems.append((f"{path}.value", reason))
        elif draw.probability is not None and not isinstance(spec, BooleanAttribute):
            problems.append((f"{path}.probability", "only for yes/no (boolean) attributes"))
        elif draw.weights is not None:
            if not isinstance(spec, ChoiceAttribute | MultiChoiceAttribute):
                problems.append((f"{path}.weights", "only for choice attributes"))
            elif unknown := sorted(set(draw.weights) - set(spec.choices)):
                problems.append((f"{path}.weights", f"not among the choices: {unknown}"))
        elif draw.mean is not None and not isinstance(spec, NumberAttribute):
            problems.append((f"{path}.mean", "only for number attributes"))
    numeric = {
        item.id
        for questionnaire in protocol.questionnaires
        for item in questionnaire.items
        if isinstance(item, NumericRatingItem)
    }
    for item_id in sorted(set(behaviour.items) - numeric):
        problems.append((f"items.{item_id}", "no numeric rating item of the protocol has this id"))
    options = {option.id for option in protocol.intervention_options}
    variables = {variable.name for variable in protocol.tailoring_variables}
    moderating = variables | {
        f"attributes.{name}"
        for name, spec in specs.items()
        if isinstance(spec, NumberAttribute | BooleanAttribute)
    }
    for index, effect in enumerate(behaviour.effects):
        path = f"effects.{index}"
        if effect.option not in options:
            problems.append((f"{path}.option", f"the protocol has no option '{effect.option}'"))
        if effect.item not in numeric:
            problems.append((f"{path}.item", f"no numeric rating item '{effect.item}'"))
        if effect.moderator is not None and effect.moderator.variable not in moderating:
            problems.append(
                (
                    f"{path}.moderator.variable",
                    f"'{effect.moderator.variable}' is neither a tailoring variable nor a "
                    "number or yes/no attribute (attributes.<name>) of the protocol",
                )
            )
    for option in sorted(set(behaviour.steps.effects) - options):
        problems.append((f"steps.effects.{option}", f"the protocol has no option '{option}'"))
    if problems:
        raise BehaviourInvalidError(problems)

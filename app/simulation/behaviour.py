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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Probability = Annotated[float, Field(ge=0, le=1)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Answering(Model):
    """Whether and when a prompt is answered."""

    probability: Probability = 0.85
    """Chance of answering a prompt in the first study week."""
    weekly_change: Annotated[float, Field(ge=-1, le=1)] = -0.03
    """Added to the probability every further week (negative: treatment fatigue)."""
    floor: Probability = 0.2
    """The probability never falls below this."""
    latency_minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 12
    """Mean delay from the push to the answer (exponentially distributed)."""


class Effect(Model):
    """The true effect of delivering an intervention option on an EMA item answered
    within ``hours`` after it."""

    option: str
    item: str
    """The item's id (in any questionnaire)."""
    shift: float
    """Added to the participant's answer (in the item's units), then kept on its scale."""
    hours: Annotated[float, Field(gt=0, le=24 * 14)] = 24


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

"""Synthetic participants: their attributes, and what they answer, from their own seeded
random stream (the same seed makes the same people do the same things)."""

import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app.protocols.attributes import (
    AttributeSpec,
    BooleanAttribute,
    ChoiceAttribute,
    MultiChoiceAttribute,
    NumberAttribute,
)
from app.protocols.document import Protocol
from app.protocols.questionnaires import (
    DurationItem,
    FreeTextItem,
    Item,
    MultipleChoiceItem,
    NumericRatingItem,
    Questionnaire,
    SingleChoiceItem,
    YesNoItem,
)
from app.simulation.behaviour import AttributeDraw, Behaviour, Effect


@dataclass(frozen=True)
class Received:
    """An intervention that reached the phone, with what moderates its effects: the
    tailoring values logged with its decision and the person's attributes."""

    option: str
    at: datetime
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Person:
    index: int
    rng: random.Random
    timezone: str
    attributes: dict[str, Any]
    # Mean daily steps of this person.
    steps_mean: float
    # This person's mean answer latency is the model's times this.
    latency_factor: float = 1.0
    # How far this phone's clock is ahead of true time.
    clock_skew: timedelta = timedelta(0)
    # Each numeric item's usual level in the first week, as a fraction of its scale, and
    # its weekly change (items with a declared trajectory).
    levels: dict[str, float] = field(default_factory=dict)
    slopes: dict[str, float] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    participant_id: uuid.UUID | None = None
    enrolled_at: datetime | None = None

    def answers_prompt(self, behaviour: Behaviour, study_week: int) -> bool:
        return self.rng.random() < behaviour.answering.chance(study_week)

    def latency(self, behaviour: Behaviour) -> timedelta:
        mean = behaviour.answering.latency_minutes * self.latency_factor
        return timedelta(minutes=self.rng.expovariate(1 / mean))

    def phone_time(self, at: datetime) -> datetime:
        """What this phone's clock shows at the true time ``at``."""
        return at + self.clock_skew

    def answer(
        self, behaviour: Behaviour, questionnaire: Questionnaire, at: datetime
    ) -> dict[str, Any]:
        answers: dict[str, Any] = {}
        for item in questionnaire.items:
            value = self._answer(behaviour, item, at)
            if value is not None:
                answers[item.id] = value
        return answers

    def _answer(self, behaviour: Behaviour, item: Item, at: datetime) -> Any:
        rng = self.rng
        if isinstance(item, NumericRatingItem):
            trajectory = behaviour.items.get(item.id)
            if item.id not in self.levels:
                if trajectory is None:
                    self.levels[item.id] = rng.uniform(0.3, 0.7)
                else:
                    level = rng.gauss(trajectory.level, trajectory.between_sd)
                    self.levels[item.id] = min(1.0, max(0.0, level))
                    slope = trajectory.weekly_change
                    self.slopes[item.id] = rng.gauss(slope, trajectory.weekly_change_sd)
            level, noise = self.levels[item.id], 0.1
            if trajectory is not None:
                level += self.slopes[item.id] * self._week(at)
                noise = trajectory.daily_sd
            span = float(item.max - item.min)
            value = item.min + span * level + rng.gauss(0, noise * span)
            value += self._shift(behaviour, item.id, at)
            steps = round((min(max(value, item.min), item.max) - item.min) / item.step)
            number = item.min + steps * item.step
            return int(number) if item.is_integer_scale else round(number, 6)
        if isinstance(item, DurationItem):
            return rng.randint(item.min_minutes, item.max_minutes)
        if isinstance(item, YesNoItem):
            return rng.random() < behaviour.yes_probability.get(item.id, 0.05)
        if isinstance(item, SingleChoiceItem):
            return rng.choice(item.choices).value
        if isinstance(item, MultipleChoiceItem):
            return [c.value for c in item.choices if rng.random() < 0.3]
        assert isinstance(item, FreeTextItem)  # noqa: S101 - exhaustive union
        return None if item.optional else "ok"

    def _week(self, at: datetime) -> float:
        return (at - self.enrolled_at).days / 7 if self.enrolled_at is not None else 0.0

    def _shift(self, behaviour: Behaviour, item_id: str, at: datetime) -> float:
        total = 0.0
        for effect in behaviour.effects:
            if effect.item != item_id:
                continue
            window = timedelta(hours=effect.hours)
            for got in self.received:
                if got.option == effect.option and at - window <= got.at <= at:
                    total += _moderated(effect, got.values)
                    break  # one delivery in the window is the effect; more do not add up
        return total

    def steps_in_hour(self, behaviour: Behaviour, start: datetime, local_hour: int) -> int:
        """Steps in one hour: most of the day's walking is in waking hours (7-22)."""
        if not 7 <= local_hour < 23:
            return 0
        mean = self.steps_mean / 16
        for got in self.received:
            factor = behaviour.steps.effects.get(got.option)
            if factor is not None and timedelta(0) <= start - got.at < timedelta(hours=2):
                mean *= factor
        return max(0, round(self.rng.gauss(mean, math.sqrt(mean + 1))))


def people(protocol: Protocol, behaviour: Behaviour, count: int, seed: int) -> list[Person]:
    zones = sorted(behaviour.timezones)
    weights = [behaviour.timezones[z] for z in zones]
    made = []
    for index in range(count):
        rng = random.Random(f"{seed}:person:{index}")  # noqa: S311 - a simulation, not security
        steps = behaviour.steps
        spread = steps.between_sd * steps.daily_mean
        person = Person(
            index=index,
            rng=rng,
            timezone=rng.choices(zones, weights)[0],
            attributes={
                name: _attribute(spec, behaviour.attributes.get(name), rng)
                for name, spec in sorted(protocol.participant_attributes.items())
            },
            steps_mean=max(0.0, rng.gauss(steps.daily_mean, spread)),
        )
        # Drawn from a stream of their own, so that the model's defaults (no spread, no
        # skew) leave every other draw as it was.
        extra = random.Random(f"{seed}:person-extra:{index}")  # noqa: S311 - a simulation
        answering, skew = behaviour.answering, behaviour.clock_skew
        if answering.latency_between_sd > 0:
            person.latency_factor = extra.lognormvariate(0, answering.latency_between_sd)
        if skew.mean_seconds or skew.sd_seconds:
            person.clock_skew = timedelta(seconds=extra.gauss(skew.mean_seconds, skew.sd_seconds))
        made.append(person)
    return made


def _moderated(effect: Effect, values: dict[str, Any]) -> float:
    moderator = effect.moderator
    if moderator is None:
        return effect.shift
    value = values.get(moderator.variable)
    if isinstance(value, bool):
        value = float(value)
    if not isinstance(value, int | float):
        return effect.shift  # no value logged (e.g. a fallback decision): the plain effect
    return effect.shift + moderator.per_unit * (float(value) - moderator.centre)


def _attribute(spec: AttributeSpec, draw: AttributeDraw | None, rng: random.Random) -> Any:
    if draw is not None:
        return _drawn(spec, draw, rng)
    if isinstance(spec, BooleanAttribute):
        return rng.random() < 0.5
    if isinstance(spec, NumberAttribute):
        low = spec.min if spec.min is not None else 0
        high = spec.max if spec.max is not None else low + 100
        return min(max(round(rng.uniform(float(low), float(high))), low), high)
    if isinstance(spec, ChoiceAttribute):
        return rng.choice(spec.choices)
    if isinstance(spec, MultiChoiceAttribute):
        return [c for c in spec.choices if rng.random() < 0.3]
    return ""


def _drawn(spec: AttributeSpec, draw: AttributeDraw, rng: random.Random) -> Any:
    """An attribute drawn as the behaviour model declares (checked against the protocol
    beforehand by ``check_against_protocol``)."""
    if draw.value is not None:
        return draw.value
    if draw.probability is not None:
        return rng.random() < draw.probability
    if draw.weights is not None and isinstance(spec, ChoiceAttribute):
        weights = [draw.weights.get(c, 0.0) for c in spec.choices]
        return rng.choices(list(spec.choices), weights)[0]
    if draw.weights is not None and isinstance(spec, MultiChoiceAttribute):
        return [c for c in spec.choices if rng.random() < draw.weights.get(c, 0.0)]
    assert isinstance(spec, NumberAttribute)  # noqa: S101
    value = round(rng.gauss(draw.mean or 0.0, draw.sd or 0.0), 1)
    if spec.min is not None:
        value = max(value, spec.min)
    if spec.max is not None:
        value = min(value, spec.max)
    return value

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
from app.simulation.behaviour import Behaviour


@dataclass
class Person:
    index: int
    rng: random.Random
    timezone: str
    attributes: dict[str, Any]
    # Mean daily steps of this person.
    steps_mean: float
    # Each numeric item's usual level, as a fraction of its scale (drawn once).
    levels: dict[str, float] = field(default_factory=dict)
    # (option, delivered at) of every intervention that reached the phone.
    received: list[tuple[str, datetime]] = field(default_factory=list)
    participant_id: uuid.UUID | None = None

    def answers_prompt(self, behaviour: Behaviour, study_week: int) -> bool:
        a = behaviour.answering
        chance = max(a.floor, min(1.0, a.probability + a.weekly_change * study_week))
        return self.rng.random() < chance

    def latency(self, behaviour: Behaviour) -> timedelta:
        return timedelta(minutes=self.rng.expovariate(1 / behaviour.answering.latency_minutes))

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
            level = self.levels.setdefault(item.id, rng.uniform(0.3, 0.7))
            span = float(item.max - item.min)
            value = item.min + span * level + rng.gauss(0, 0.1 * span)
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

    def _shift(self, behaviour: Behaviour, item_id: str, at: datetime) -> float:
        total = 0.0
        for effect in behaviour.effects:
            if effect.item != item_id:
                continue
            window = timedelta(hours=effect.hours)
            if any(o == effect.option and at - window <= t <= at for o, t in self.received):
                total += effect.shift
        return total

    def steps_in_hour(self, behaviour: Behaviour, start: datetime, local_hour: int) -> int:
        """Steps in one hour: most of the day's walking is in waking hours (7-22)."""
        if not 7 <= local_hour < 23:
            return 0
        mean = self.steps_mean / 16
        for option, at in self.received:
            factor = behaviour.steps.effects.get(option)
            if factor is not None and timedelta(0) <= start - at < timedelta(hours=2):
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
        made.append(
            Person(
                index=index,
                rng=rng,
                timezone=rng.choices(zones, weights)[0],
                attributes={
                    name: _attribute(spec, rng)
                    for name, spec in sorted(protocol.participant_attributes.items())
                },
                steps_mean=max(0.0, rng.gauss(steps.daily_mean, spread)),
            )
        )
    return made


def _attribute(spec: AttributeSpec, rng: random.Random) -> Any:
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

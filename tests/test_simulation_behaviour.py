"""The behaviour model's parts: recovery, attribute draws, trajectories, moderated effects,
phone clock skew, and the checks of a model against the protocol it simulates."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from app.protocols.example_files import CHRONIC_PAIN_JITAI, MINIMAL, example_text
from app.protocols.loading import parse_protocol
from app.protocols.questionnaires import NumericRatingItem
from app.simulation.behaviour import (
    Answering,
    BehaviourInvalidError,
    check_against_protocol,
    parse_behaviour,
)
from app.simulation.people import Person, Received, people
from app.simulation.report import build_report
from app.simulation.runner import simulate

EXAMPLE = parse_protocol(example_text(CHRONIC_PAIN_JITAI))
START = datetime(2027, 3, 1, 8, tzinfo=UTC)


def test_answering_falls_then_recovers_up_to_its_ceiling() -> None:
    answering = Answering.model_validate(
        {
            "probability": 0.8,
            "weekly_change": -0.1,
            "floor": 0.3,
            "recovery": {"from_week": 6, "weekly_change": 0.1, "ceiling": 0.6},
        }
    )
    weeks = [round(answering.chance(week), 2) for week in range(10)]
    assert weeks == [0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.4, 0.5, 0.6, 0.6]
    without = Answering(probability=0.8, weekly_change=-0.1, floor=0.3)
    assert [round(without.chance(w), 2) for w in (5, 9)] == [0.3, 0.3]


def test_attributes_are_drawn_as_declared() -> None:
    behaviour = parse_behaviour(
        """
attributes:
  trauma_history: {probability: 1.0}
  pain_phenotype: {weights: {neuropathic: 1}}
  preferred_categories: {weights: {sleep: 1, mindfulness: 0}}
  age: {mean: 40, sd: 0}
  baseline_interference: {value: 7}
"""
    )
    check_against_protocol(behaviour, EXAMPLE)
    for person in people(EXAMPLE, behaviour, 20, seed=1):
        assert person.attributes == {
            "age": 40.0,
            "baseline_interference": 7,
            "pain_phenotype": "neuropathic",
            "preferred_categories": ["sleep"],
            "trauma_history": True,
        }
    ages = [
        p.attributes["age"]
        for p in people(
            EXAMPLE, parse_behaviour("attributes: {age: {mean: 99, sd: 30}}"), 200, seed=2
        )
    ]
    assert max(ages) == 100  # kept inside the attribute's range (18-100)
    assert min(ages) >= 18


def test_a_model_that_does_not_fit_the_protocol_names_each_setting() -> None:
    behaviour = parse_behaviour(
        """
attributes:
  trauma_history: {mean: 1, sd: 1}
  pain_phenotype: {weights: {unknown_kind: 1}}
  shoe_size: {value: 44}
  age: {value: 7}
items: {wellbeing: {level: 0.5}}
effects:
  - {option: yoga, item: pain, shift: -1}
  - option: pain_acceptance
    item: interference
    shift: -1
    moderator: {variable: moon, per_unit: 1}
steps: {effects: {swimming: 2}}
"""
    )
    with pytest.raises(BehaviourInvalidError) as caught:
        check_against_protocol(behaviour, EXAMPLE)
    assert {path for path, _ in caught.value.problems} == {
        "attributes.trauma_history.mean",
        "attributes.pain_phenotype.weights",
        "attributes.shoe_size",
        "attributes.age.value",
        "items.wellbeing",
        "effects.0.option",
        "effects.1.moderator.variable",
        "steps.effects.swimming",
    }
    with pytest.raises(BehaviourInvalidError) as caught:
        parse_behaviour("attributes: {age: {mean: 40, probability: 0.5}}")
    assert caught.value.problems[0][0] == "attributes.age"


def _person(**fields: object) -> Person:
    return Person(
        index=0,
        rng=random.Random(1),  # noqa: S311 - a simulation
        timezone="Europe/Berlin",
        attributes={},
        steps_mean=5000,
        enrolled_at=START,
        **fields,  # type: ignore[arg-type]
    )


def test_a_moderated_effect_depends_on_the_logged_value() -> None:
    behaviour = parse_behaviour(
        """
effects:
  - option: pain_acceptance
    item: interference
    shift: -1
    hours: 24
    moderator: {variable: interference_today, centre: 6, per_unit: -0.5}
"""
    )
    at = START + timedelta(hours=2)

    def shift(value: object) -> float:
        person = _person()
        person.received.append(Received("pain_acceptance", START, {"interference_today": value}))
        return person._shift(behaviour, "interference", at)

    assert shift(6) == -1
    assert shift(8) == -2  # worse interference at the decision, larger effect
    assert shift(4) == 0
    assert shift(None) == -1  # nothing logged: the plain effect
    late = _person()
    late.received.append(Received("pain_acceptance", START - timedelta(days=2), {}))
    assert late._shift(behaviour, "interference", at) == 0  # outside its 24 hours


def test_a_trajectory_moves_a_persons_answers_week_by_week() -> None:
    behaviour = parse_behaviour(
        "items: {pain: {level: 0.8, between_sd: 0, weekly_change: -0.05, daily_sd: 0}}"
    )
    pain = next(
        item
        for q in EXAMPLE.questionnaires
        for item in q.items
        if item.id == "pain" and isinstance(item, NumericRatingItem)
    )
    person = _person()
    weeks = [person._answer(behaviour, pain, START + timedelta(weeks=w)) for w in range(5)]
    assert weeks == [8, 8, 7, 6, 6]  # 8.0, 7.5, 7.0, 6.5, 6.0 on the 0-10 scale, rounded


def test_phones_with_skewed_clocks_meet_the_real_allowance() -> None:
    # Phones 20 minutes fast, beyond the service's 10 minutes: their answers and wearable
    # periods are "in the future", rejected by the real ingestion and counted, not lost.
    behaviour = parse_behaviour("clock_skew: {mean_seconds: 1200, sd_seconds: 0}")
    sim = simulate(example_text(MINIMAL), participants=2, days=2, seed=3, behaviour=behaviour)
    try:
        report = build_report(sim)
    finally:
        sim.close()
    rejected = report["rejected_uploads"]
    assert set(rejected) >= {"ema", "wearable"}
    assert all("in the future" in reason for found in rejected.values() for reason in found)
    assert report["ema"]["responses"] == 0
    punctual = simulate(
        example_text(MINIMAL), participants=2, days=2, seed=3, behaviour=parse_behaviour("")
    )
    try:
        assert build_report(punctual)["rejected_uploads"] == {}
    finally:
        punctual.close()

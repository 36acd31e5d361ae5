"""Randomization frequencies match the logged probabilities; contraindications are never
violated, whatever the attributes and draws."""

import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from app.core.ids import new_id
from app.decision_rules.engine import decide_batch
from app.decision_rules.evaluation import evaluate
from app.decision_rules.models import Decision
from app.decision_rules.moment import Moment
from app.decision_rules.seeding import choose
from app.decision_rules.tailoring import finish
from app.participants.models import Participant, ParticipantStatus
from app.protocols.document import Protocol
from app.protocols.loading import parse_protocol
from app.scheduling.models import ItemKind, ItemStatus, ScheduledItem
from tests.conftest import World
from tests.support.decisions import Trial, example_document

# The statistical tests below may fail by chance with probability ALPHA at most, per test
# (Bonferroni over the options and groups compared).
ALPHA = 1e-6
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

MRT = {
    "kairos_protocol": 1,
    "study": {"name": "MRT", "duration_days": 28, "random_seed": 7},
    "participant_attributes": {
        "preferred_categories": {"type": "multi_choice", "choices": ["movement", "sleep"]}
    },
    "questionnaires": [
        {
            "id": "daily",
            "title": "Daily",
            "items": [
                {"id": "pain", "type": "numeric_rating", "text": "Pain?", "min": 0, "max": 10}
            ],
        }
    ],
    "decision_points": [{"id": "hourly", "times": ["12:00"]}],
    "intervention_options": [
        {"id": "walk", "category": "movement", "title": "Walk", "body": "A short walk"},
        {"id": "rest", "category": "sleep", "title": "Rest", "body": "Wind down"},
        {"id": "nothing", "category": "none"},
    ],
    "policy": {
        "probability_bounds": {"min": 0.1, "max": 0.8},
        "rules": [
            {"id": "all", "when": "true", "randomize": {"walk": 0.5, "rest": 0.2, "nothing": 0.3}}
        ],
        "fallback": {"option": "nothing"},
    },
    "personalization": {
        "preferences": {"attribute": "preferred_categories", "mode": "weight", "weight": 3.0}
    },
}


def test_frequencies_match_the_logged_probabilities(world: World) -> None:
    """2,400 decisions in one batch, two groups with different probabilities (preference
    weighting): each option's count is binomial(n, logged p) — checked with an exact
    binomial test at a tiny significance level instead of a guessed tolerance."""
    world.clock.set(START)
    trial = Trial(world, MRT)
    study_id = uuid.UUID(trial.study_id)
    when = START + timedelta(days=2)
    items = []
    with world.session_factory() as session:
        for index in range(24):
            preferences = ["sleep"] if index % 2 else []
            participant = Participant(
                id=new_id(),
                study_id=study_id,
                code=f"P-{index}",
                timezone="Europe/Berlin",
                status=ParticipantStatus.active,
                status_changed_at=START,
                enrolled_at=START,
                attributes={"preferred_categories": preferences},
                protocol_version=1,
                created_at=START,
                updated_at=START,
            )
            session.add(participant)
            session.flush()
            for sequence in range(100):
                items.append(
                    ScheduledItem(
                        id=new_id(),
                        participant_id=participant.id,
                        study_id=study_id,
                        protocol_version=1,
                        kind=ItemKind.decision_point,
                        slot_key=f"dp:hourly:{sequence}",
                        source_id="hourly",
                        sequence=sequence,
                        due_at=when,
                        status=ItemStatus.claimed,
                        created_at=START,
                        updated_at=START,
                    )
                )
        session.add_all(items)
        session.flush()
        world.clock.set(when)
        decide_batch(session, world.clock, items)
        session.commit()
        rows = session.scalars(sa.select(Decision)).all()

    assert len(rows) == 2400
    groups: dict[tuple[tuple[str, float], ...], list[Decision]] = defaultdict(list)
    for row in rows:
        assert row.available
        assert row.randomized
        groups[tuple(sorted(row.probabilities.items()))].append(row)
    assert len(groups) == 2
    # Preferring sleep triples "rest": 0.6 / 1.4; the rest renormalize; all within bounds.
    plain = {"walk": 0.5, "rest": 0.2, "nothing": 0.3}
    weighted = {"walk": 0.5 / 1.4, "rest": 0.6 / 1.4, "nothing": 0.3 / 1.4}
    found = sorted((dict(key) for key in groups), key=lambda p: p["rest"])
    assert found[0] == pytest.approx(plain)
    assert found[1] == pytest.approx(weighted)
    comparisons = sum(len(key) for key in groups)
    for key, members in groups.items():
        counts = Counter(row.option_id for row in members)
        for option, p in key:
            result = binomtest(counts[option], len(members), p)
            assert result.pvalue > ALPHA / comparisons, (option, p, counts, len(members))


# --- contraindications ------------------------------------------------------------------


def safety_protocol() -> Protocol:
    """The example protocol with two contraindicated options that rules randomize to
    often, restrict-mode preferences and SMART tracks that restrict options."""
    document = example_document()
    for option in document["intervention_options"]:
        if option["id"] == "activity_pacing":
            option["contraindicated_when"] = (
                "attributes.pain_phenotype == 'neuropathic' || attributes.age > 80"
            )
    document["policy"]["rules"].insert(
        0,
        {
            "id": "mostly_contraindicated",
            "when": "local_hour % 2 == 0",
            "randomize": {"mindfulness": 0.45, "activity_pacing": 0.45, "nothing": 0.1},
        },
    )
    document["policy"]["rules"].insert(
        1,
        {"id": "fixed_mindfulness", "when": "local_hour == 11", "option": "mindfulness"},
    )
    document["personalization"]["preferences"] = {
        "attribute": "preferred_categories",
        "mode": "restrict",
    }
    document["smart"]["tracks"]["step_down"]["options"] = ["mindfulness", "feedback"]
    return parse_protocol(document)


PROTOCOL = safety_protocol()
CATEGORIES = ["pain_acceptance", "cbt_skill", "mindfulness", "activity_pacing", "movement", "sleep"]

attributes_strategy = st.fixed_dictionaries(
    {
        "trauma_history": st.booleans(),
        "pain_phenotype": st.sampled_from(["nociceptive", "neuropathic", "nociplastic"]),
        "age": st.integers(18, 100),
        "baseline_interference": st.floats(0, 10),
        "preferred_categories": st.lists(st.sampled_from(CATEGORIES), unique=True),
    }
)


def contraindicated(option_id: str, attributes: dict[str, Any]) -> bool:
    if option_id == "mindfulness":
        return bool(attributes["trauma_history"])
    if option_id == "activity_pacing":
        return bool(attributes["pain_phenotype"] == "neuropathic" or attributes["age"] > 80)
    return False


@settings(max_examples=300, deadline=None)
@given(
    attributes=attributes_strategy,
    hour=st.integers(8, 21),
    point=st.sampled_from([p.id for p in PROTOCOL.decision_points]),
    track=st.sampled_from(["", "maintain", "step_down", "intensify"]),
    interference=st.floats(0, 10),
    acceptance=st.floats(0, 10),
    steps=st.integers(-1, 2000),
    draws=st.lists(st.floats(0, 1, exclude_max=True), min_size=20, max_size=20),
)
def test_contraindicated_options_are_never_chosen(
    attributes: dict[str, Any],
    hour: int,
    point: str,
    track: str,
    interference: float,
    acceptance: float,
    steps: int,
    draws: list[float],
) -> None:
    local = datetime(2026, 3, 4, hour, 0, tzinfo=UTC)
    tailoring = finish(
        PROTOCOL,
        {
            "interference_today": interference,
            "acceptance_today": acceptance,
            "steps_3h": steps,
            "prompts_today": 0,
            "days_enrolled": 5,
            "pain_mean_7d": 5.0,
            "pain_baseline": 6.0,
        },
    )
    moment = Moment(point, local, attributes, stage="stage_2", track=track)
    evaluation = evaluate(PROTOCOL, moment, tailoring)
    assert evaluation.available
    if not evaluation.deliberate:
        return
    assert sum(evaluation.probabilities.values()) == pytest.approx(1.0)
    for option_id, p in evaluation.probabilities.items():
        if contraindicated(option_id, attributes):
            assert p == 0.0
            assert evaluation.excluded[option_id] == "contraindicated"
    for u in draws:
        chosen = choose(evaluation.probabilities, u)
        assert not contraindicated(chosen, attributes), (chosen, attributes, evaluation)

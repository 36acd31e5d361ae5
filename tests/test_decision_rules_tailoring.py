"""Tailoring variables: only data available at decision time, windows, a fixed number of
queries per batch; probability clipping."""

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from app.decision_rules.engine import decide_batch
from app.decision_rules.probabilities import clip
from app.decision_rules.tailoring import Subject, compute_tailoring
from app.protocols.document import ProbabilityBounds
from app.protocols.loading import parse_protocol
from app.scheduling.models import ScheduledItem
from tests.conftest import World
from tests.support.decisions import Trial, example_document

ENROLLED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
PROTOCOL = parse_protocol(example_document())


def subject(participant: uuid.UUID, at: datetime, zone: ZoneInfo = BERLIN) -> Subject:
    return Subject(participant, at, zone, ENROLLED, {}, PROTOCOL)


def test_only_data_that_existed_at_the_decision_time_counts(world: World) -> None:
    world.clock.set(ENROLLED)
    trial = Trial(world)
    participant = trial.participant(enrolled_at=ENROLLED)
    decision = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)  # 14:00 in Berlin
    trial.ema(participant, "checkin", {"interference": 4}, decision - timedelta(hours=2))
    # Answered after the decision.
    trial.ema(participant, "evening", {"interference": 10}, decision + timedelta(minutes=1))
    # Yesterday: outside "today".
    trial.ema(participant, "checkin", {"interference": 8}, decision - timedelta(days=1))
    with world.session_factory() as session:
        [result] = compute_tailoring(session, [subject(participant, decision)])
    assert result.values["interference_today"] == 4.0
    assert "interference_today" not in result.defaulted
    assert result.values["days_enrolled"] == 2


def test_today_is_the_participants_local_day(world: World) -> None:
    world.clock.set(ENROLLED)
    trial = Trial(world)
    participant = trial.participant(enrolled_at=ENROLLED)
    # 23:30 UTC on March 2 is already March 3 in Berlin, still March 2 in New York.
    answered = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)
    trial.ema(participant, "checkin", {"acceptance": 3}, answered)
    decision = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
    with world.session_factory() as session:
        berlin, new_york = compute_tailoring(
            session,
            [
                subject(participant, decision),
                subject(participant, decision, ZoneInfo("America/New_York")),
            ],
        )
    assert berlin.values["acceptance_today"] == 3.0
    assert new_york.values["acceptance_today"] == 3.0
    later = datetime(2026, 3, 3, 6, 0, tzinfo=UTC)  # New York: 01:00 on March 3
    with world.session_factory() as session:
        [ny_next_day] = compute_tailoring(
            session, [subject(participant, later, ZoneInfo("America/New_York"))]
        )
    assert ny_next_day.values["acceptance_today"] == 10.0  # default: nothing yet today
    assert "acceptance_today" in ny_next_day.defaulted


def test_baseline_covers_the_first_study_days_only(world: World) -> None:
    world.clock.set(ENROLLED)
    trial = Trial(world)
    participant = trial.participant(enrolled_at=ENROLLED)
    for day, pain in ((0, 9), (3, 7), (6, 8), (7, 1), (20, 2)):
        trial.ema(participant, "morning", {"pain": pain}, ENROLLED + timedelta(days=day, hours=2))
    with world.session_factory() as session:
        [result] = compute_tailoring(session, [subject(participant, ENROLLED + timedelta(days=25))])
    assert result.values["pain_baseline"] == 8.0  # days 0-6 only
    assert result.values["pain_mean_7d"] == 2.0


def test_the_number_of_queries_does_not_grow_with_the_batch(world: World) -> None:
    world.clock.set(ENROLLED)
    trial = Trial(world)
    participants = [trial.participant(enrolled_at=ENROLLED) for _ in range(12)]
    for index, participant in enumerate(participants):
        trial.ema(participant, "checkin", {"pain": index % 10}, ENROLLED + timedelta(days=1))
        trial.wearable(participant, "steps", ENROLLED + timedelta(days=1), 100 * index)
    when = ENROLLED + timedelta(days=1, hours=2)

    def count_queries(batch: list[uuid.UUID]) -> int:
        items = [trial.item(p, "afternoon", when) for p in batch]
        statements: list[str] = []

        def listener(*args: object) -> None:
            statements.append(str(args[2]))

        world.clock.set(when)
        with world.session_factory() as session:
            loaded = session.scalars(
                sa.select(ScheduledItem).where(ScheduledItem.id.in_([i.id for i in items]))
            ).all()
            sa.event.listen(world.engine, "before_cursor_execute", listener)
            try:
                decide_batch(session, world.clock, loaded)
            finally:
                sa.event.remove(world.engine, "before_cursor_execute", listener)
            session.commit()
        return len(statements)

    assert count_queries(participants[:2]) == count_queries(participants[2:])


@pytest.mark.parametrize(
    ("given_", "bounds", "expected"),
    [
        ({"a": 0.6, "b": 0.4}, (0.1, 0.9), {"a": 0.6, "b": 0.4}),
        ({"a": 0.95, "b": 0.05}, (0.1, 0.9), {"a": 0.9, "b": 0.1}),
        ({"a": 0.9, "b": 0.05, "c": 0.05}, (0.2, 0.8), {"a": 0.6, "b": 0.2, "c": 0.2}),
        # Two options cannot both stay at or below 0.4: the bound becomes 1/2.
        ({"a": 0.7, "b": 0.3}, (0.0, 0.4), {"a": 0.5, "b": 0.5}),
    ],
)
def test_clip(
    given_: dict[str, float], bounds: tuple[float, float], expected: dict[str, float]
) -> None:
    low, high = bounds
    assert clip(given_, ProbabilityBounds(min=low, max=high)) == pytest.approx(expected)


@given(
    weights=st.lists(st.floats(0.001, 1), min_size=2, max_size=6),
    low=st.floats(0, 0.15),
    high=st.floats(0.5, 1),
)
def test_clip_keeps_bounds_sum_and_order(weights: list[float], low: float, high: float) -> None:
    total = sum(weights)
    probabilities = {f"o{i}": w / total for i, w in enumerate(weights)}
    result = clip(probabilities, ProbabilityBounds(min=low, max=high))
    assert sum(result.values()) == pytest.approx(1.0)
    for value in result.values():
        assert low - 1e-9 <= value <= high + 1e-9
    ordered = sorted(probabilities, key=lambda o: probabilities[o])
    values = [result[o] for o in ordered]
    assert values == sorted(values)

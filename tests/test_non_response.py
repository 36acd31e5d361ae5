"""Non-response on the measure the protocol declares (issue 16, item 6): any numeric item
(pain, interference, a function item where higher is better), from a declared baseline
window to a declared recent window, each with a minimum of answers; and staff trends that
include the wearable summaries."""

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from app.monitoring.flags import evaluate_all
from app.monitoring.non_response import assess_non_response
from app.protocols.loading import parse_protocol
from app.protocols.monitoring import NonResponse
from app.protocols.warnings import protocol_warnings
from app.sensing.models import WearableSummary
from app.staff.models import Role
from tests.conftest import World
from tests.support.decisions import example_document
from tests.test_exports import PAIN_ATTRIBUTES
from tests.test_monitoring import answer

DAY = timedelta(days=1)


def _daily(values: dict[int, float]) -> dict[int, list[float]]:
    return {day: [value] for day, value in values.items()}


# --- the rule alone ------------------------------------------------------------------------


def test_the_current_item_field_still_reads_as_before() -> None:
    rule = NonResponse(item="*.pain", after_weeks=4, min_improvement=0.3)
    assert rule.direction == "lower_is_better"
    assert (rule.baseline.start_day, rule.baseline.days, rule.recent.days) == (0, 7, 7)
    answers = _daily(dict.fromkeys(range(7), 6.0) | dict.fromkeys(range(7, 35), 5.5))
    found = assess_non_response(rule, answers, complete_days=35)
    assert found is not None
    assert (found["baseline_mean"], found["recent_mean"]) == (6.0, 5.5)
    assert found["recent_days"] == [28, 34]


def test_higher_is_better_measures_improve_upwards() -> None:
    rule = NonResponse(item="*.acceptance", direction="higher_is_better", min_improvement=0.3)
    rising = _daily(dict.fromkeys(range(7), 4.0) | dict.fromkeys(range(21, 28), 6.0))
    assert assess_non_response(rule, rising, complete_days=28) is None  # +50%
    flat = _daily(dict.fromkeys(range(7), 4.0) | dict.fromkeys(range(21, 28), 4.5))
    found = assess_non_response(rule, flat, complete_days=28)
    assert found is not None
    assert found["improvement"] == 0.125
    falling = _daily(dict.fromkeys(range(7), 4.0) | dict.fromkeys(range(21, 28), 2.0))
    found = assess_non_response(rule, falling, complete_days=28)
    assert found is not None
    assert found["improvement"] == -0.5


def test_declared_windows_and_minimum_data() -> None:
    rule = NonResponse(
        item="*.interference",
        baseline={"start_day": 2, "days": 5},
        recent={"days": 14},
        min_answers=5,
    )
    answers = _daily({0: 1.0, 1: 1.0} | dict.fromkeys(range(2, 7), 6.0))
    answers |= _daily(dict.fromkeys(range(14, 28), 6.0))
    found = assess_non_response(rule, answers, complete_days=28)
    assert found is not None
    assert found["baseline_days"] == [2, 6]
    assert found["baseline_answers"] == 5
    assert found["recent_days"] == [14, 27]
    assert found["recent_answers"] == 14
    assert found["baseline_mean"] == 6.0  # days 0 and 1 are outside the baseline
    # Four answers in the recent window are too few to judge.
    sparse = _daily(dict.fromkeys(range(2, 7), 6.0) | dict.fromkeys((20, 22, 24, 26), 6.0))
    assert assess_non_response(rule, sparse, complete_days=28) is None
    # Too early: before week after_weeks.
    assert assess_non_response(rule, answers, complete_days=27) is None


@settings(max_examples=80, deadline=None)
@given(
    baseline=st.floats(min_value=0.5, max_value=10),
    recent=st.floats(min_value=0, max_value=10),
    higher=st.booleans(),
)
def test_flagged_exactly_when_the_improvement_is_too_small(
    baseline: float, recent: float, higher: bool
) -> None:
    direction = "higher_is_better" if higher else "lower_is_better"
    # One answer per window, so that the means are the values themselves.
    rule = NonResponse(
        item="*.x",
        direction=direction,
        min_improvement=0.3,
        baseline={"days": 1},
        recent={"days": 1},
        min_answers=1,
    )
    found = assess_non_response(rule, {0: [baseline], 27: [recent]}, complete_days=28)
    change = (recent - baseline) if higher else (baseline - recent)
    assert (found is None) == (change / baseline >= 0.3)


def test_overlapping_windows_are_warned_about() -> None:
    document = example_document()
    document["monitoring"]["non_response"] = {
        "item": "*.pain",
        "after_weeks": 2,
        "recent": {"days": 14},
    }
    paths = {w.path: w.message for w in protocol_warnings(parse_protocol(document))}
    assert "overlaps the recent window" in paths["monitoring.non_response"]


# --- through the app -----------------------------------------------------------------------


def _upload(world: World, non_response: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """A study and the answer to uploading the example with this non_response rule."""
    document = example_document()
    document["monitoring"]["non_response"] = non_response
    study = world.study()
    response = world.client.post(
        f"/v1/studies/{study['id']}/protocols",
        content=yaml.safe_dump(document),
        headers={**world.staff(Role.admin), "Content-Type": "application/yaml"},
    )
    return study, response


def _study(world: World, non_response: dict[str, Any]) -> dict[str, Any]:
    study, response = _upload(world, non_response)
    assert response.status_code == 201, response.text
    return study


def _flags(world: World, study_id: str) -> list[dict[str, Any]]:
    response = world.client.get(
        f"/v1/studies/{study_id}/flags",
        params={"kind": "non_response"},
        headers=world.staff(Role.coordinator),
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["items"]
    return found


def test_acceptance_that_does_not_rise_is_flagged(world: World) -> None:
    study = _study(
        world,
        {
            "item": "*.acceptance",
            "direction": "higher_is_better",
            "after_weeks": 4,
            "recent": {"days": 14},
            "min_answers": 5,
        },
    )
    participant, _ = world.enrolled_participant(study["id"], attributes=PAIN_ATTRIBUTES)
    start = world.clock.now()
    with world.session_factory() as session:
        for day in range(28):
            # Pain improves a lot; acceptance, the declared measure, does not.
            when = start + day * DAY + timedelta(hours=2)
            answer(session, participant, when, 8 - day / 4, item="pain")
            answer(session, participant, when, 4.0, item="acceptance")
        session.commit()
    world.clock.set(start + 28 * DAY + timedelta(hours=1))
    with world.session_factory() as session:
        evaluate_all(session, world.clock)
        session.commit()
    flags = _flags(world, study["id"])
    assert len(flags) == 1
    detail = flags[0]["detail"]
    assert detail["item"] == "*.acceptance"
    assert detail["direction"] == "higher_is_better"
    assert detail["recent_answers"] == 14
    assert detail["baseline_answers"] == 7
    assert detail["improvement"] == 0.0


def test_too_little_recent_data_raises_nothing(world: World) -> None:
    study = _study(world, {"item": "*.interference", "min_answers": 5})
    participant, _ = world.enrolled_participant(study["id"], attributes=PAIN_ATTRIBUTES)
    start = world.clock.now()
    with world.session_factory() as session:
        for day in [*range(7), 30, 32]:
            when = start + day * DAY + timedelta(hours=2)
            answer(session, participant, when, 6.0, item="interference")
        session.commit()
    world.clock.set(start + 35 * DAY + timedelta(hours=1))
    with world.session_factory() as session:
        evaluate_all(session, world.clock)
        session.commit()
    assert _flags(world, study["id"]) == []


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"item": "*.pain", "direction": "up"}, "monitoring.non_response.direction"),
        ({"item": "*.pain", "min_answers": 0}, "monitoring.non_response.min_answers"),
        ({"item": "*.pain", "recent": {"days": 0}}, "monitoring.non_response.recent.days"),
        ({"item": "*.pain", "baseline": {"weeks": 1}}, "monitoring.non_response.baseline"),
        ({"item": "evening.mood"}, "monitoring.non_response.item"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(
    world: World, rule: dict[str, Any], field: str
) -> None:
    _, response = _upload(world, rule)
    assert response.status_code == 422, response.text
    fields = [e["field"] for e in response.json()["errors"]]
    assert any(f.endswith(field) or field in f for f in fields), fields


def test_trends_include_the_wearable_summaries(world: World) -> None:
    study = _study(world, {"item": "*.pain"})
    participant, _ = world.enrolled_participant(study["id"], attributes=PAIN_ATTRIBUTES)
    start = world.clock.now()
    pid, study_id = uuid.UUID(participant["id"]), uuid.UUID(study["id"])

    def summary(metric: str, unit: str, end: datetime, value: float, hours: int = 1) -> None:
        session.add(
            WearableSummary(
                participant_id=pid,
                study_id=study_id,
                metric=metric,
                unit=unit,
                start_at=end - timedelta(hours=hours),
                end_at=end,
                value=value,
                received_at=end,
                updated_at=end,
            )
        )

    with world.session_factory() as session:
        # Week 0: two days with steps (3000 + 1000 on day 1, 6000 on day 2).
        summary("steps", "count", start + DAY + timedelta(hours=3), 3000.0)
        summary("steps", "count", start + DAY + timedelta(hours=5), 1000.0)
        summary("steps", "count", start + 2 * DAY + timedelta(hours=3), 6000.0)
        summary("sleep_minutes", "min", start + DAY + timedelta(hours=1), 420.0, hours=8)
        summary("resting_heart_rate", "bpm", start + DAY + timedelta(hours=1), 60.0, hours=24)
        summary("resting_heart_rate", "bpm", start + 2 * DAY + timedelta(hours=1), 64.0, hours=24)
        # Week 1: one day.
        summary("steps", "count", start + 8 * DAY + timedelta(hours=3), 2500.0)
        session.commit()
    world.clock.set(start + 10 * DAY)
    response = world.client.get(
        f"/v1/studies/{study['id']}/participants/{participant['id']}/trends",
        headers=world.staff(Role.researcher),
    )
    assert response.status_code == 200, response.text
    weeks = response.json()["weeks"]
    assert weeks[0]["wearables"]["steps"] == 5000.0  # (4000 + 6000) / 2 days
    assert weeks[0]["wearables"]["sleep_minutes"] == 420.0
    assert weeks[0]["wearables"]["resting_heart_rate"] == 62.0
    assert weeks[0]["wearables"]["active_minutes"] is None
    assert weeks[1]["wearables"]["steps"] == 2500.0
    assert weeks[1]["wearables"]["resting_heart_rate"] is None

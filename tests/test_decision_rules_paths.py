"""Every rule path of the example protocol, and every reason to be unavailable, through
the live engine on the real database."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.decision_rules.models import SmartAssignment
from tests.conftest import World
from tests.support.decisions import ATTRIBUTES, Trial, example_document

ENROLLED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # Sunday, 13:00 in Berlin (UTC+1)
DAY2 = datetime(2026, 3, 3, tzinfo=UTC)  # a Tuesday


def at(day: datetime, hour: int, minute: int = 0) -> datetime:
    """UTC time of a Berlin wall-clock time in March before the DST change (UTC+1)."""
    return day.replace(hour=hour - 1, minute=minute)


@pytest.fixture
def trial(world: World) -> Trial:
    world.clock.set(ENROLLED)
    return Trial(world)


def with_pain(trial: Trial, attributes: dict[str, object] | None = None) -> uuid.UUID:
    """An enrolled participant with one morning answer on day 1, so that pain_mean_7d and
    pain_baseline (no defaults) have data."""
    participant = trial.participant(attributes, enrolled_at=ENROLLED)
    morning = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    trial.ema(participant, "morning", {"pain": 5, "sleep_duration": 420}, morning)
    return participant


def test_low_acceptance_high_interference_randomizes_pain_acceptance(trial: Trial) -> None:
    participant = with_pain(trial)
    trial.ema(participant, "checkin", {"interference": 7, "acceptance": 2}, at(DAY2, 12, 30))
    decision, delivery = trial.decide_one(participant, "afternoon", at(DAY2, 14))
    assert decision.available
    assert not decision.fallback
    assert decision.rule_id == "low_acceptance_high_interference"
    assert decision.probabilities == {"pain_acceptance": 0.6, "nothing": 0.4}
    assert decision.randomized
    assert decision.tailoring["interference_today"] == 7.0
    assert decision.tailoring["acceptance_today"] == 2.0
    assert decision.option_id in ("pain_acceptance", "nothing")
    assert decision.probability == decision.probabilities[decision.option_id]
    if decision.option_id == "pain_acceptance":
        assert delivery is not None
        assert delivery.decision_id == decision.id
        assert "(7/10)" in delivery.body
        assert delivery.data["exercise_id"] == "acceptance-1"
    else:
        assert delivery is None


def test_preferences_weight_the_preferred_option(trial: Trial) -> None:
    participant = with_pain(trial, {**ATTRIBUTES, "preferred_categories": ["pain_acceptance"]})
    trial.ema(participant, "checkin", {"interference": 8, "acceptance": 1}, at(DAY2, 12, 30))
    decision, _ = trial.decide_one(participant, "afternoon", at(DAY2, 14))
    assert decision.probabilities == pytest.approx({"pain_acceptance": 0.75, "nothing": 0.25})


def test_sedentary_counts_only_summaries_ended_and_received_by_then(trial: Trial) -> None:
    participant = with_pain(trial)
    for hour in (11, 12, 13):
        trial.wearable(participant, "steps", at(DAY2, hour), 50)
    # Ends after the decision: not yet known at 14:00.
    trial.wearable(participant, "steps", at(DAY2, 13, 30), 5000)
    # Ended in the window but only received after the decision.
    trial.wearable(participant, "steps", at(DAY2, 12, 15), 4000, received_at=at(DAY2, 15))
    decision, _ = trial.decide_one(participant, "afternoon", at(DAY2, 14))
    assert decision.tailoring["steps_3h"] == 150
    assert decision.rule_id == "sedentary"
    assert decision.probabilities == {"activity_pacing": 0.5, "nothing": 0.5}


def test_short_sleep_in_the_evening(trial: Trial) -> None:
    participant = with_pain(trial)
    trial.ema(participant, "morning", {"pain": 5, "sleep_duration": 300}, at(DAY2, 7, 30))
    decision, _ = trial.decide_one(participant, "evening", at(DAY2, 19, 30))
    assert decision.tailoring["sleep_last_night"] == 300
    assert decision.rule_id == "short_sleep_evening"
    assert decision.probabilities == {"sleep": 0.5, "nothing": 0.5}


def test_intensify_track_excludes_the_contraindicated_option(trial: Trial) -> None:
    participant = with_pain(trial, {**ATTRIBUTES, "trauma_history": True})
    when = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)  # day 30, 14:00 in Berlin (UTC+2)
    trial.ema(participant, "morning", {"pain": 5}, when - timedelta(hours=5))
    with trial.world.session_factory() as session:
        session.add(
            SmartAssignment(
                participant_id=participant,
                study_id=uuid.UUID(trial.study_id),
                protocol_version=1,
                stage_id="stage_2",
                previous_stage_id="stage_1",
                responder=False,
                probabilities={"intensify": 1.0},
                seed=1,
                draw=0.5,
                track="intensify",
                assigned_at=when,
            )
        )
        session.commit()
    decision, _ = trial.decide_one(participant, "afternoon", when)
    assert (decision.stage, decision.track) == ("stage_2", "intensify")
    assert decision.rule_id == "intensify"
    assert decision.declared_probabilities == {"cbt_skill": 0.4, "mindfulness": 0.3, "nothing": 0.3}
    assert decision.excluded == {"mindfulness": "contraindicated"}
    assert decision.probabilities == pytest.approx(
        {"cbt_skill": 0.4 / 0.7, "mindfulness": 0.0, "nothing": 0.3 / 0.7}
    )
    assert decision.option_id != "mindfulness"


def test_pai_recommendation_of_cbt_in_stage_1(trial: Trial) -> None:
    participant = with_pain(trial, {**ATTRIBUTES, "pain_phenotype": "nociceptive"})
    decision, _ = trial.decide_one(participant, "afternoon", at(DAY2, 14))
    assert decision.pai_recommendation == "cbt_skill"
    assert decision.stage == "stage_1"
    assert decision.rule_id == "pai_cbt"
    assert decision.probabilities == {"cbt_skill": 0.3, "nothing": 0.7}


def test_weekly_feedback_on_sunday_evening_is_a_fixed_option(trial: Trial) -> None:
    participant = with_pain(trial)
    sunday = datetime(2026, 3, 8, tzinfo=UTC)
    decision, delivery = trial.decide_one(participant, "evening", at(sunday, 19, 30))
    assert decision.rule_id == "weekly_feedback"
    assert decision.probabilities == {"feedback": 1.0}
    assert not decision.randomized
    assert decision.option_id == "feedback"
    assert decision.probability == 1.0
    assert delivery is not None
    assert delivery.title == "Your week in numbers"
    assert delivery.deep_link == "kairos://feedback/steps-vs-pain"


def test_otherwise_nothing(trial: Trial) -> None:
    participant = with_pain(trial)
    decision, delivery = trial.decide_one(participant, "afternoon", at(DAY2, 14))
    assert decision.available
    assert decision.rule_id == "otherwise"
    assert decision.option_id == "nothing"
    assert delivery is None
    assert set(decision.tailoring_defaulted) >= {"interference_today", "steps_3h"}


def test_unavailable_on_the_enrollment_day(world: World) -> None:
    # The shipped example dropped this condition (its simulation showed the cost).
    document = example_document()
    document["policy"]["availability"]["conditions"] = ["days_enrolled >= 1"]
    world.clock.set(ENROLLED)
    trial = Trial(world, document)
    participant = trial.participant(enrolled_at=ENROLLED)
    trial.ema(participant, "checkin", {"pain": 4}, ENROLLED + timedelta(minutes=5))
    decision, delivery = trial.decide_one(participant, "evening", at(ENROLLED, 19, 30))
    assert not decision.available
    assert delivery is None
    assert decision.unavailable_reason == "availability condition false: days_enrolled >= 1"
    assert decision.option_id is None
    assert decision.probabilities == {}


def test_unavailable_without_data_for_a_variable_without_default(world: World) -> None:
    document = example_document()
    for variable in document["tailoring_variables"]:
        if variable["name"] == "pain_mean_7d":
            del variable["default"]
    world.clock.set(ENROLLED)
    trial = Trial(world, document)
    participant = trial.participant(enrolled_at=ENROLLED)
    decision, _ = trial.decide_one(participant, "afternoon", at(DAY2, 14))
    assert not decision.available
    assert "pain_mean_7d" in (decision.unavailable_reason or "")
    assert decision.tailoring["pain_mean_7d"] is None


def test_unavailable_in_quiet_hours(trial: Trial) -> None:
    participant = with_pain(trial)
    decision, _ = trial.decide_one(participant, "evening", at(DAY2, 22))
    assert decision.unavailable_reason == "quiet hours (21:30-07:30)"


def test_daily_cap_counts_todays_prompts_but_not_cancelled_ones(trial: Trial) -> None:
    participant = with_pain(trial)
    for hour in (8, 9, 10):
        trial.prompt(participant, at(DAY2, hour))
    decision, _ = trial.decide_one(participant, "afternoon", at(DAY2, 14))
    assert decision.unavailable_reason == "daily cap reached (3 prompts today, the cap is 3)"
    assert decision.tailoring["prompts_today"] == 3

    other = with_pain(trial)
    for hour in (8, 9, 10):
        trial.prompt(other, at(DAY2, hour), status="cancelled")
    trial.prompt(other, at(DAY2, 2) - timedelta(days=1))  # yesterday
    decision, _ = trial.decide_one(other, "afternoon", at(DAY2, 14))
    assert decision.available
    assert decision.tailoring["prompts_today"] == 0


def test_minimum_gap_since_the_last_prompt(trial: Trial) -> None:
    participant = with_pain(trial)
    trial.prompt(participant, at(DAY2, 13, 15))
    decision, _ = trial.decide_one(participant, "afternoon", at(DAY2, 14))
    reason = "too soon after the last prompt (45 minutes ago, minimum 90)"
    assert decision.unavailable_reason == reason


def test_paused_participant_is_unavailable(trial: Trial) -> None:
    participant = with_pain(trial)
    response = trial.world.client.post(
        f"/v1/studies/{trial.study_id}/participants/{participant}/status",
        json={"status": "paused", "reason": "holiday"},
        headers=trial.admin,
    )
    assert response.status_code == 200
    decision, _ = trial.decide_one(participant, "afternoon", at(DAY2, 14))
    assert decision.unavailable_reason == "participant is paused"


def test_same_participant_twice_in_a_batch_counts_the_first_prompt(trial: Trial) -> None:
    participant = with_pain(trial)
    sunday = datetime(2026, 3, 8, tzinfo=UTC)
    first = trial.item(participant, "evening", at(sunday, 19, 30))
    second = trial.item(participant, "evening", at(sunday, 19, 30))
    (one, delivered), (two, _) = trial.decide([first, second])
    assert delivered is not None
    assert one.option_id == "feedback"
    assert not two.available
    assert two.unavailable_reason is not None
    assert "too soon" in two.unavailable_reason

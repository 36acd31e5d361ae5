"""The decision endpoints and onboarding through the real API: preview, history, attribute
validation and the PAI."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from app.audit.models import AuditEvent
from app.decision_rules.models import Decision, PaiScore
from app.decision_rules.outcomes import proximal_outcomes
from app.engagement.models import EngagementEvent
from app.notifications.models import Notification
from app.staff.models import Role
from tests.conftest import World
from tests.support.decisions import ATTRIBUTES, Trial, example_document

ENROLLED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TAILORING: dict[str, Any] = {
    "interference_today": 7,
    "acceptance_today": 2.5,
    "steps_3h": None,
    "sleep_last_night": 420,
    "prompts_today": 0,
    "days_enrolled": 5,
    "pain_mean_7d": 6.5,
    "pain_baseline": 7.0,
}


def preview(trial: Trial, role: Role = Role.researcher, **body: Any) -> Any:
    request = {
        "decision_point": "afternoon",
        "local_time": "2026-03-04T14:00:00",
        "tailoring": TAILORING,
        "attributes": ATTRIBUTES,
        **body,
    }
    return trial.world.client.post(
        f"/v1/studies/{trial.study_id}/decisions/preview",
        json=request,
        headers=trial.world.staff(role),
    )


def test_preview_shows_rule_probabilities_and_options(world: World) -> None:
    trial = Trial(world)
    response = preview(trial)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["available"] is True
    assert body["rule_id"] == "low_acceptance_high_interference"
    assert body["probabilities"] == {"pain_acceptance": 0.6, "nothing": 0.4}
    assert body["weekday"] == "wed"
    assert body["local_hour"] == 14
    assert body["local_time"] == "2026-03-04T14:00:00+01:00"
    assert body["stage"] == "stage_1"
    assert body["pai_recommendation"] == "pain_acceptance"
    assert set(body["pai_scores"]) == {"pain_acceptance", "cbt_skill"}
    assert body["tailoring"]["steps_3h"] == -1
    assert body["tailoring_defaulted"] == ["steps_3h"]
    options = {o["option_id"]: o for o in body["options"]}
    assert options["pain_acceptance"]["declared_probability"] == 0.6
    assert options["mindfulness"]["contraindicated"] is False
    with world.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count(Decision.id))) == 0


def test_preview_flags_contraindications_and_track_exclusions(world: World) -> None:
    trial = Trial(world)
    response = preview(
        trial,
        role=Role.coordinator,
        attributes={**ATTRIBUTES, "trauma_history": True},
        tailoring={**TAILORING, "interference_today": 1},
        track="intensify",
        study_day=30,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["stage"] == "stage_2"
    assert body["rule_id"] == "intensify"
    options = {o["option_id"]: o for o in body["options"]}
    assert options["mindfulness"]["contraindicated"] is True
    assert options["mindfulness"]["excluded_because"] == "contraindicated"
    assert options["mindfulness"]["probability"] == 0.0
    assert abs(sum(body["probabilities"].values()) - 1.0) < 1e-9


def test_preview_burden_and_quiet_hours(world: World) -> None:
    trial = Trial(world)
    quiet = preview(trial, local_time="2026-03-04T22:15:00").json()
    assert quiet["available"] is False
    assert quiet["unavailable_reason"] == "quiet hours (21:30-07:30)"
    capped = preview(trial, prompts_today=3).json()
    assert capped["unavailable_reason"] == "daily cap reached (3 prompts today, the cap is 3)"
    spent = preview(trial, pushes_today=6).json()
    assert spent["unavailable_reason"].startswith("daily push budget reached (6 pushes today")
    # With a default (-1, as the example has), no data is a value; without one, unavailable.
    assert preview(trial, tailoring={**TAILORING, "pain_mean_7d": None}).json()["available"]
    document = example_document()
    for variable in document["tailoring_variables"]:
        if variable["name"] == "pain_mean_7d":
            del variable["default"]
    strict = Trial(world, document)
    missing = preview(strict, tailoring={**TAILORING, "pain_mean_7d": None}).json()
    assert missing["available"] is False
    assert "pain_mean_7d" in missing["unavailable_reason"]


def test_preview_names_every_missing_or_mistyped_value(world: World) -> None:
    trial = Trial(world)
    tailoring = {k: v for k, v in TAILORING.items() if k != "steps_3h"}
    tailoring |= {"days_enrolled": "five", "acceptance_today": True, "stepz_3h": 3}
    response = preview(
        trial,
        tailoring=tailoring,
        attributes={**ATTRIBUTES, "age": 12},
        decision_point="noon",
    )
    assert response.status_code == 422
    body = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    fields = {e["field"]: e["message"] for e in body["errors"]}
    assert set(fields) == {
        "body.tailoring.steps_3h",
        "body.tailoring.days_enrolled",
        "body.tailoring.acceptance_today",
        "body.tailoring.stepz_3h",
        "body.attributes.age",
        "body.decision_point",
    }
    assert "missing" in fields["body.tailoring.steps_3h"]
    assert "whole number" in fields["body.tailoring.days_enrolled"]
    assert "did you mean 'steps_3h'" in fields["body.tailoring.stepz_3h"]


def test_preview_without_a_protocol_is_a_conflict(world: World) -> None:
    study = world.study()
    response = world.client.post(
        f"/v1/studies/{study['id']}/decisions/preview",
        json={"decision_point": "x", "local_time": "2026-03-04T14:00:00", "tailoring": {}},
        headers=world.staff(Role.admin),
    )
    assert response.status_code == 409
    assert response.json()["code"] == "protocol_missing"


def test_attributes_are_validated_against_the_protocol(world: World) -> None:
    trial = Trial(world)
    response = world.client.post(
        f"/v1/studies/{trial.study_id}/participants",
        json={
            "timezone": "Europe/Berlin",
            "attributes": {"pain_phenotype": "visceral", "agee": 40, "age": 40},
        },
        headers=trial.admin,
    )
    assert response.status_code == 422
    fields = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert set(fields) == {
        "body.attributes.trauma_history",
        "body.attributes.pain_phenotype",
        "body.attributes.baseline_interference",
        "body.attributes.agee",
    }
    assert "did you mean 'age'" in fields["body.attributes.agee"]
    with world.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(PaiScore)) == 0

    participant = trial.participant()
    patched = world.client.patch(
        f"/v1/studies/{trial.study_id}/participants/{participant}",
        json={"attributes": {**ATTRIBUTES, "trauma_history": "yes"}},
        headers=trial.admin,
    )
    assert patched.status_code == 422
    assert patched.json()["errors"][0]["field"] == "body.attributes.trauma_history"


def test_the_pai_is_scored_at_onboarding_and_again_on_update(world: World) -> None:
    trial = Trial(world)
    participant = trial.participant()
    patched = world.client.patch(
        f"/v1/studies/{trial.study_id}/participants/{participant}",
        json={"attributes": {**ATTRIBUTES, "pain_phenotype": "nociceptive"}},
        headers=trial.admin,
    )
    assert patched.status_code == 200, patched.text
    with world.session_factory() as session:
        rows = session.scalars(
            sa.select(PaiScore).where(PaiScore.participant_id == participant)
        ).all()
    assert [(r.reason, r.recommendation) for r in rows] == [
        ("created", "pain_acceptance"),
        ("attributes_updated", "cbt_skill"),
    ]
    # 5.1 + 0.42 * 5 + 0.01 * 40 - 0.6 = 7.0 for the nociplastic participant.
    assert abs(rows[0].scores["pain_acceptance"] - 7.0) < 1e-9


def history_setup(world: World) -> tuple[Trial, uuid.UUID, Decision]:
    world.clock.set(ENROLLED)
    trial = Trial(world)
    participant = trial.participant(enrolled_at=ENROLLED)
    trial.ema(participant, "morning", {"pain": 5}, ENROLLED + timedelta(days=1))
    sunday = datetime(2026, 3, 8, 18, 30, tzinfo=UTC)
    trial.decide_one(participant, "afternoon", sunday - timedelta(hours=5))
    decision, delivery = trial.decide_one(participant, "evening", sunday)
    assert delivery is not None
    assert decision.option_id == "feedback"
    with world.session_factory() as session:
        notification = session.scalars(
            sa.select(Notification).where(Notification.decision_id == decision.id)
        ).one()
        session.add(
            EngagementEvent(
                participant_id=participant,
                study_id=uuid.UUID(trial.study_id),
                client_id="e1",
                kind="prompt_opened",
                notification_id=notification.id,
                occurred_at=sunday + timedelta(minutes=20),
                received_at=sunday + timedelta(minutes=21),
            )
        )
        session.add(
            EngagementEvent(
                participant_id=participant,
                study_id=uuid.UUID(trial.study_id),
                client_id="e2",
                kind="exercise_completed",
                occurred_at=sunday + timedelta(minutes=30),
                received_at=sunday + timedelta(minutes=31),
            )
        )
        session.commit()
    # Interference answered 1 h after, then again 3 h after: the first one counts.
    trial.ema(participant, "evening", {"interference": 4}, sunday + timedelta(hours=1))
    trial.ema(participant, "evening", {"interference": 9}, sunday + timedelta(hours=3))
    return trial, participant, decision


def test_decision_history_with_delivery_engagement_and_outcomes(world: World) -> None:
    trial, participant, decision = history_setup(world)
    world.clock.set(decision.decided_at + timedelta(hours=5))
    url = f"/v1/studies/{trial.study_id}/participants/{participant}/decisions"
    first = world.client.get(url, params={"limit": 1}, headers=world.staff(Role.researcher))
    assert first.status_code == 200, first.text
    page = first.json()
    assert len(page["items"]) == 1
    assert page["items"][0]["decision_point_id"] == "afternoon"
    second = world.client.get(
        url, params={"cursor": page["next_cursor"]}, headers=world.staff(Role.coordinator)
    )
    [item] = second.json()["items"]
    assert second.json()["next_cursor"] is None
    assert item["id"] == str(decision.id)
    assert item["rule_id"] == "weekly_feedback"
    assert item["delivery_status"] == "pending"
    assert item["notification_id"] is not None
    assert [e["kind"] for e in item["engagement"]] == ["prompt_opened"]
    assert item["outcomes"] == {
        "next_interference": 4.0,
        "steps_60m": None,  # only for activity_pacing and nothing
        "exercise_done": True,
    }
    with world.session_factory() as session:
        actions = session.scalars(
            sa.select(AuditEvent.action).where(AuditEvent.resource_id == str(participant))
        ).all()
    assert actions.count("participant.read.decisions") == 2


def test_proximal_outcomes_are_pending_until_their_window_closes(world: World) -> None:
    _, _, decision = history_setup(world)
    with world.session_factory() as session:
        row = session.get_one(Decision, decision.id)
        early = proximal_outcomes(session, [row], now=row.decided_at + timedelta(minutes=150))
        late = proximal_outcomes(session, [row], now=row.decided_at + timedelta(days=1))
    assert early[0] == {"next_interference": None, "steps_60m": None, "exercise_done": True}
    assert late[0]["next_interference"] == 4.0


def test_wearable_outcomes_are_prorated_over_the_window(world: World) -> None:
    world.clock.set(ENROLLED)
    trial = Trial(world)
    participant = trial.participant(enrolled_at=ENROLLED)
    trial.ema(participant, "morning", {"pain": 5}, ENROLLED + timedelta(days=1))
    when = datetime(2026, 3, 3, 13, 30, tzinfo=UTC)
    for hour in (10, 11, 12):  # sedentary before: the sedentary rule fires
        trial.wearable(participant, "steps", when.replace(hour=hour, minute=0), 10)
    for hour in (13, 14, 15):
        trial.wearable(participant, "steps", when.replace(hour=hour, minute=0), 600)
    decision, _ = trial.decide_one(participant, "afternoon", when)
    assert decision.rule_id == "sedentary", decision.tailoring
    with world.session_factory() as session:
        row = session.get_one(Decision, decision.id)
        [outcomes] = proximal_outcomes(session, [row], now=when + timedelta(days=1))
    # 13:30-14:30: half of the 13:00 hour and half of the 14:00 hour.
    assert outcomes["steps_60m"] == 600.0

"""Routine outcome monitoring: weekly trends, care-team flags and the patient's summary."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.ema.models import EmaAnswer, EmaResponse
from app.engagement.models import EngagementEvent
from app.monitoring.flags import evaluate_all, prompt_budget_factor
from app.monitoring.models import CareFlag
from app.notifications.models import Notification
from app.participants.models import Participant
from app.protocols.example_files import CHRONIC_PAIN_JITAI, example_text
from app.protocols.store import get_version, load_protocol
from app.scheduling.models import ScheduledItem
from app.sensing.models import WearableSummary
from app.staff.models import Role
from tests.conftest import World, bearer
from tests.test_exports import PAIN_ATTRIBUTES

DAY = timedelta(days=1)


def _study(world: World) -> dict[str, Any]:
    study = world.study()
    response = world.client.post(
        f"/v1/studies/{study['id']}/protocols",
        content=example_text(CHRONIC_PAIN_JITAI),
        headers={**world.staff(Role.admin), "Content-Type": "application/yaml"},
    )
    assert response.status_code == 201
    return study


def answer(
    session: Session, participant: dict[str, Any], when: datetime, value: float, item: str = "pain"
) -> None:
    """An answer to the morning questionnaire's pain item (or another of its items)."""
    pid = uuid.UUID(participant["id"])
    response = EmaResponse(
        participant_id=pid,
        study_id=uuid.UUID(participant["study_id"]),
        client_id=uuid.uuid4().hex,
        questionnaire_id="morning",
        questionnaire_version=1,
        protocol_version=1,
        answered_at=when,
        utc_offset_minutes=0,
        received_at=when,
    )
    session.add(response)
    session.flush()
    session.add(
        EmaAnswer(
            response_id=response.id,
            participant_id=pid,
            questionnaire_id="morning",
            item_id=item,
            answered_at=when,
            value=value,
            numeric_value=value,
        )
    )


def _prompts(
    session: Session, participant: dict[str, Any], day: datetime, offered: int, answered: int
) -> None:
    for n in range(offered):
        due = day + timedelta(hours=n)
        session.add(
            ScheduledItem(
                participant_id=uuid.UUID(participant["id"]),
                study_id=uuid.UUID(participant["study_id"]),
                protocol_version=1,
                kind="ema_prompt",
                slot_key=f"ema:test:{due.isoformat()}",
                source_id="morning",
                questionnaire_id="morning",
                due_at=due,
                status="done",
                answered_at=due + timedelta(minutes=5) if n < answered else None,
                created_at=due,
                updated_at=due,
            )
        )


def _flags(world: World, study_id: str, **params: Any) -> list[dict[str, Any]]:
    response = world.client.get(
        f"/v1/studies/{study_id}/flags", params=params, headers=world.staff(Role.coordinator)
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_non_response_is_flagged_and_resolves_when_pain_improves(world: World) -> None:
    study = _study(world)
    participant, token = world.enrolled_participant(study["id"], attributes=PAIN_ATTRIBUTES)
    start = world.clock.now()
    with world.session_factory() as session:
        for day in range(7):
            answer(session, participant, start + day * DAY + timedelta(hours=2), 6.0)
        for day in range(7, 35):
            answer(session, participant, start + day * DAY + timedelta(hours=2), 5.5)
        session.commit()
    world.clock.set(start + 36 * DAY)
    with world.session_factory() as session:
        evaluate_all(session, world.clock)
        session.commit()
    flags = _flags(world, study["id"], kind="non_response")
    assert len(flags) == 1
    assert flags[0]["participant_id"] == participant["id"]
    assert flags[0]["detail"]["baseline_mean"] == 6.0
    assert flags[0]["detail"]["recent_mean"] == 5.5

    # Raised once: evaluating again does not duplicate it.
    with world.session_factory() as session:
        evaluate_all(session, world.clock)
        session.commit()
    assert len(_flags(world, study["id"], kind="non_response")) == 1

    # A week of real improvement (>= 30%) resolves it.
    with world.session_factory() as session:
        for day in range(36, 43):
            answer(session, participant, start + day * DAY + timedelta(hours=2), 3.0)
        session.commit()
    world.clock.set(start + 43 * DAY + timedelta(hours=12))
    with world.session_factory() as session:
        evaluate_all(session, world.clock)
        session.commit()
    assert _flags(world, study["id"], kind="non_response") == []
    history = _flags(world, study["id"], kind="non_response", unresolved="false")
    assert history[0]["resolved_at"] is not None
    assert token


def test_no_flag_before_the_protocols_week(world: World) -> None:
    study = _study(world)
    participant, _ = world.enrolled_participant(study["id"], attributes=PAIN_ATTRIBUTES)
    start = world.clock.now()
    with world.session_factory() as session:
        for day in range(20):
            answer(session, participant, start + day * DAY + timedelta(hours=2), 6.0)
        session.commit()
    world.clock.set(start + 21 * DAY)
    with world.session_factory() as session:
        evaluate_all(session, world.clock)
        session.commit()
    assert _flags(world, study["id"], kind="non_response") == []


def test_fatigue_flag_and_its_automatic_response(world: World) -> None:
    study = _study(world)
    participant, token = world.enrolled_participant(study["id"], attributes=PAIN_ATTRIBUTES)
    start = world.clock.now()
    with world.session_factory() as session:
        _prompts(session, participant, start + 7 * DAY, offered=14, answered=13)
        _prompts(session, participant, start + 14 * DAY, offered=14, answered=6)
        session.commit()
    world.clock.set(start + 21 * DAY + timedelta(hours=1))
    world.client.get("/v1/me", headers=bearer(token))  # the app is in touch
    with world.session_factory() as session:
        evaluate_all(session, world.clock)
        session.commit()
    flags = _flags(world, study["id"], kind="fatigue")
    assert len(flags) == 1
    # Against the participant's own first two weeks (docs/monitoring.md; more in
    # tests/test_fatigue.py).
    rates = flags[0]["detail"]["rates"]["ema_completion"]
    assert rates["baseline"] == round(13 / 14, 4)
    assert rates["rolling"] == round(6 / 14, 4)
    with world.session_factory() as session:
        row = session.get_one(Participant, uuid.UUID(participant["id"]))
        protocol = load_protocol(get_version(session, row.study_id, 1))
        assert prompt_budget_factor(session, row.id, protocol) == 0.5

    acknowledged = world.client.post(
        f"/v1/studies/{study['id']}/flags/{flags[0]['id']}/acknowledge",
        json={"note": "Talked to the participant; fewer prompts for two weeks."},
        headers=world.staff(Role.coordinator),
    )
    assert acknowledged.status_code == 200
    assert acknowledged.json()["acknowledged_by"].startswith("staff:")
    assert (
        world.client.post(
            f"/v1/studies/{study['id']}/flags/{flags[0]['id']}/acknowledge",
            json={"note": "x"},
            headers=world.staff(Role.researcher),
        ).status_code
        == 403
    )
    assert (
        world.client.post(
            f"/v1/studies/{study['id']}/flags/{uuid.uuid4()}/acknowledge",
            json={"note": "x"},
            headers=world.staff(Role.coordinator),
        ).status_code
        == 404
    )


def test_unreachable_after_days_without_push_or_contact(world: World) -> None:
    study = _study(world)
    participant, token = world.enrolled_participant(study["id"], attributes=PAIN_ATTRIBUTES)
    start = world.clock.now()
    world.clock.set(start + 2 * DAY)
    with world.session_factory() as session:
        evaluate_all(session, world.clock)
        session.commit()
    assert _flags(world, study["id"], kind="unreachable") == []  # enrolled too recently
    world.clock.set(start + 5 * DAY)
    with world.session_factory() as session:
        evaluate_all(session, world.clock)
        session.commit()
    flags = _flags(world, study["id"], kind="unreachable")
    assert [f["participant_id"] for f in flags] == [participant["id"]]
    # The app calls in: the next evaluation resolves it.
    assert world.client.get("/v1/me", headers=bearer(token)).status_code == 200
    with world.session_factory() as session:
        evaluate_all(session, world.clock)
        session.commit()
    assert _flags(world, study["id"], kind="unreachable") == []


def test_trends_show_weekly_means_against_baseline(world: World) -> None:
    study = _study(world)
    participant, _ = world.enrolled_participant(study["id"], attributes=PAIN_ATTRIBUTES)
    start = world.clock.now()
    with world.session_factory() as session:
        for day, value in ((1, 6.0), (2, 8.0), (8, 5.0), (9, 4.0)):
            answer(session, participant, start + day * DAY, value)
        _prompts(session, participant, start + 8 * DAY, offered=4, answered=3)
        notification = Notification(
            participant_id=uuid.UUID(participant["id"]),
            study_id=uuid.UUID(study["id"]),
            kind="intervention",
            title="t",
            body="b",
            created_at=start + 8 * DAY,
            send_at=start + 8 * DAY,
            status="sent",
            sent_at=start + 8 * DAY,
        )
        session.add(notification)
        session.flush()
        session.add(
            EngagementEvent(
                participant_id=notification.participant_id,
                study_id=notification.study_id,
                client_id="open-1",
                kind="prompt_opened",
                notification_id=notification.id,
                occurred_at=start + 8 * DAY + timedelta(minutes=3),
                received_at=start + 8 * DAY + timedelta(minutes=3),
            )
        )
        session.commit()
    world.clock.set(start + 10 * DAY)
    response = world.client.get(
        f"/v1/studies/{study['id']}/participants/{participant['id']}/trends",
        headers=world.staff(Role.researcher),
    )
    assert response.status_code == 200, response.text
    weeks = response.json()["weeks"]
    assert [w["week"] for w in weeks] == [0, 1]
    assert weeks[0]["means"]["*.pain"] == 7.0
    assert weeks[1]["means"]["*.pain"] == 4.5
    assert weeks[1]["baseline"]["*.pain"] == 7.0
    assert weeks[1]["ema_completion"] == 0.75
    assert weeks[1]["engagement"] == 1.0
    assert weeks[0]["engagement"] is None


def test_my_summary_puts_steps_beside_pain(world: World) -> None:
    study = _study(world)
    participant, token = world.enrolled_participant(
        study["id"], timezone="America/Chicago", attributes=PAIN_ATTRIBUTES
    )
    start = world.clock.now()  # 12:00 UTC = 06:00 in Chicago
    with world.session_factory() as session:
        answer(session, participant, start + timedelta(hours=2), 4.0)
        answer(session, participant, start + timedelta(hours=4), 6.0)
        session.add(
            WearableSummary(
                participant_id=uuid.UUID(participant["id"]),
                study_id=uuid.UUID(study["id"]),
                metric="steps",
                unit="count",
                start_at=start,
                end_at=start + timedelta(hours=1),
                value=3000.0,
                received_at=start,
                updated_at=start,
            )
        )
        session.commit()
    world.clock.set(start + timedelta(hours=6))
    response = world.client.get("/v1/me/summary", headers=bearer(token))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["pain_item"] == "pain"
    assert len(body["days"]) == 28
    today = body["days"][-1]
    assert today["date"] == "2026-03-01"
    assert (today["pain_mean"], today["steps"], today["exercises_completed"]) == (5.0, 3000.0, 0)
    assert body["days"][0]["pain_mean"] is None


def test_the_fatigue_response_scales_the_daily_cap() -> None:
    from zoneinfo import ZoneInfo

    from app.decision_rules.evaluation import burden_reason
    from app.decision_rules.moment import Moment
    from app.protocols import parse_protocol

    protocol = parse_protocol(example_text(CHRONIC_PAIN_JITAI))
    assert protocol.policy.availability.max_prompts_per_day == 3
    local = datetime(2026, 3, 3, 14, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    usual = Moment("afternoon", local, {}, prompts_today=1)
    assert burden_reason(protocol, usual) is None
    tired = Moment("afternoon", local, {}, prompts_today=1, prompt_budget_factor=0.5)
    assert burden_reason(protocol, tired) == ("daily cap reached (1 prompts today, the cap is 1)")


def test_the_engine_applies_the_fatigue_response(world: World) -> None:
    from tests.support.decisions import Trial

    world.clock.set(datetime(2026, 3, 1, 8, 0, tzinfo=UTC))
    trial = Trial(world)
    participant = trial.participant()
    afternoon = datetime(2026, 3, 4, 13, 0, tzinfo=UTC)  # 14:00 in Berlin
    trial.prompt(participant, afternoon - timedelta(hours=4))
    # Without a flag, one prompt today is under the cap of 3: burden does not stop it.
    decision, _ = trial.decide_one(participant, "afternoon", afternoon)
    assert "daily cap" not in (decision.unavailable_reason or "")
    with world.session_factory() as session:
        session.add(
            CareFlag(
                participant_id=participant,
                study_id=uuid.UUID(trial.study_id),
                kind="fatigue",
                detail={},
                raised_at=afternoon - timedelta(days=1),
            )
        )
        # What the flags evaluation writes while the episode is open (app/monitoring/fatigue).
        session.get_one(Participant, participant).burden_factor = 0.5
        session.commit()
    next_day = afternoon + timedelta(days=1)
    trial.prompt(participant, next_day - timedelta(hours=4))
    flagged, delivery = trial.decide_one(participant, "afternoon", next_day)
    assert delivery is None
    assert flagged.available is False
    assert flagged.unavailable_reason == "daily cap reached (1 prompts today, the cap is 1)"
    assert flagged.burden_factor == 0.5
    assert decision.burden_factor == 1.0

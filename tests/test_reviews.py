"""Care-team reviews (issue 16, item 3): due on the protocol's cadence and at once on a
non-response flag, completed with a structured outcome, escalated when overdue through the
care routes to a real local SMTP server on a simulated clock, and the inertia measures
with the `flags` and `reviews` exports."""

import csv
import io
import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from app.audit.models import AuditEvent
from app.care.models import Review
from app.core.config import Settings
from app.monitoring.models import CareFlag
from app.staff.models import Role
from tests.conftest import World
from tests.support.care import Inbox, care_worker, put_routes
from tests.support.ingest import Phone, pain_study, phone
from tests.test_monitoring import answer as _pain

DAY = timedelta(days=1)
ON_CALL = {"label": "Study nurse", "channel": "email", "address": "nurse@clinic.example"}
PI = {"level": 1, "label": "PI", "channel": "email", "address": "pi@clinic.example"}


def _reviews(world: World, study_id: str, **params: Any) -> list[dict[str, Any]]:
    response = world.client.get(
        f"/v1/studies/{study_id}/reviews", params=params, headers=world.staff(Role.researcher)
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _complete(world: World, study_id: str, review_id: str, **body: Any) -> Any:
    return world.client.post(
        f"/v1/studies/{study_id}/reviews/{review_id}/complete",
        json={"note": "Reviewed the trends with the participant.", **body},
        headers=world.staff(Role.coordinator),
    )


def _plan(world: World, settings: Settings) -> None:
    """The worker's hourly job: flags, then the reviews they and the cadence make due."""
    care_worker(world, settings).evaluate_flags()


def _non_responder(world: World, study_id: str) -> Phone:
    """A participant whose pain stayed at 6 then 5.5 for five weeks (no 30% improvement)."""
    me = phone(world, study_id)
    start = world.clock.now()
    participant = {"id": me.id, "study_id": study_id}
    with world.session_factory() as session:
        for day in range(35):
            _pain(
                session, participant, start + day * DAY + timedelta(hours=2), 6.0 - (day >= 7) / 2
            )
        session.commit()
    return me


def test_a_review_falls_due_on_the_cadence_and_then_overdue(
    world: World, settings: Settings
) -> None:
    study_id = pain_study(world)
    me = phone(world, study_id)
    enrolled = world.clock.now()
    world.clock.set(enrolled + 13 * DAY)
    _plan(world, settings)
    assert _reviews(world, study_id) == []  # every_days: 14

    world.clock.set(enrolled + 14 * DAY + timedelta(hours=1))
    _plan(world, settings)
    _plan(world, settings)  # idempotent: one review, not one per run
    [review] = _reviews(world, study_id, status="due")
    assert review["participant_id"] == me.id
    assert (review["trigger"], review["flag_id"], review["status"]) == ("cadence", None, "due")
    assert review["due_at"].startswith((enrolled + 14 * DAY).date().isoformat())
    assert _reviews(world, study_id, status="overdue") == []

    world.clock.set(enrolled + 17 * DAY + timedelta(hours=1))  # grace_days: 3
    assert _reviews(world, study_id, status="due") == []
    [overdue] = _reviews(world, study_id, status="overdue")
    assert overdue["id"] == review["id"]

    done = _complete(world, study_id, review["id"], outcome="maintain")
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    # The next one is due every_days after the completion.
    world.clock.advance(13 * DAY)
    _plan(world, settings)
    assert _reviews(world, study_id, status="due") == []
    world.clock.advance(DAY + timedelta(hours=1))
    _plan(world, settings)
    [second] = _reviews(world, study_id, status="due")
    assert second["id"] != review["id"]
    assert len(_reviews(world, study_id)) == 2


def test_a_non_response_flag_makes_a_review_due_at_once(world: World, settings: Settings) -> None:
    study_id = pain_study(world)
    me = _non_responder(world, study_id)
    world.clock.advance(36 * DAY)
    _plan(world, settings)
    with world.session_factory() as session:
        flag = session.scalars(
            sa.select(CareFlag).where(
                CareFlag.kind == "non_response", CareFlag.resolved_at.is_(None)
            )
        ).one()
    [review] = [r for r in _reviews(world, study_id) if r["trigger"] == "flag"]
    assert review["flag_id"] == str(flag.id)
    assert review["participant_id"] == me.id
    assert review["status"] == "due"
    assert _reviews(world, study_id, status="due") != []

    # Maintaining the plan while the non-response flag is open needs a stated reason.
    refused = _complete(world, study_id, review["id"], outcome="maintain")
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["errors"][0]["field"] == "body.reason"
    assert "non-response" in problem["detail"]
    blank = _complete(world, study_id, review["id"], outcome="maintain", reason="  ")
    assert blank.status_code == 422
    assert blank.json()["errors"][0]["field"] == "body.reason"
    kept = _complete(
        world,
        study_id,
        review["id"],
        outcome="maintain",
        reason="Pain flare after a fall in week 4; too early to judge.",
    )
    assert kept.status_code == 200, kept.text
    assert kept.json()["reason"].startswith("Pain flare")
    with world.session_factory() as session:
        stored = session.get_one(Review, uuid.UUID(review["id"]))
        assert stored.open_non_response_flag_id == flag.id
        [event] = session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "review.complete")
        ).all()
        assert event.detail["outcome"] == "maintain"


@pytest.mark.parametrize(
    ("outcome", "phase"),
    [
        ("escalate", None),
        ("escalate", "intensified"),
        ("change_phase", "intensified"),
        ("step_down", "education"),
        ("step_down", None),
        ("maintain", None),
        ("refer", None),
    ],
)
def test_every_outcome_completes_a_review(
    world: World, settings: Settings, outcome: str, phase: str | None
) -> None:
    study_id = pain_study(world)
    me = phone(world, study_id)
    world.clock.advance(14 * DAY + timedelta(hours=1))
    _plan(world, settings)
    [review] = _reviews(world, study_id, status="due")
    body: dict[str, Any] = {"outcome": outcome, "reason": "Because."}
    if phase is not None:
        body["phase"] = phase
    done = _complete(world, study_id, review["id"], **body)
    assert done.status_code == 200, done.text
    assert (done.json()["outcome"], done.json()["new_phase"]) == (outcome, phase)
    state = world.client.get(
        f"/v1/studies/{study_id}/participants/{me.id}/phase", headers=world.staff(Role.researcher)
    ).json()
    assert state["phase"] == (phase or "self_management")
    if phase is not None:
        [change] = state["history"]
        assert (change["from_phase"], change["to_phase"]) == ("self_management", phase)
        assert change["review_id"] == review["id"]
        assert change["reason"] == "Because."
    # Completed once.
    again = _complete(world, study_id, review["id"], outcome="refer")
    assert again.status_code == 409
    assert again.json()["code"] == "review_already_completed"


def test_bad_completions_name_the_field(world: World, settings: Settings) -> None:
    study_id = pain_study(world)
    phone(world, study_id)
    world.clock.advance(14 * DAY + timedelta(hours=1))
    _plan(world, settings)
    [review] = _reviews(world, study_id, status="due")
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"outcome": "change_phase"}, 422, "phase"),
        ({"outcome": "change_phase", "phase": "hospital"}, 422, "phase"),
        ({"outcome": "change_phase", "phase": "self_management"}, 409, "phase"),
        ({"outcome": "refer", "phase": "education"}, 422, "phase"),
        ({"outcome": "maintain", "phase": "education"}, 422, "phase"),
        ({"outcome": "shrug"}, 422, "outcome"),
        ({"outcome": "maintain", "note": ""}, 422, "note"),
    ]
    for body, status, field in cases:
        response = _complete(world, study_id, review["id"], **body)
        assert response.status_code == status, (body, response.text)
        assert field in response.text, (body, response.text)
    # Nothing was recorded by the refused attempts.
    assert _reviews(world, study_id, status="due")[0]["completed_at"] is None
    missing = _complete(world, study_id, str(uuid.uuid4()), outcome="maintain")
    assert missing.status_code == 404
    researcher = world.client.post(
        f"/v1/studies/{study_id}/reviews/{review['id']}/complete",
        json={"outcome": "maintain", "note": "n"},
        headers=world.staff(Role.researcher),
    )
    assert researcher.status_code == 403
    bad_status = world.client.get(
        f"/v1/studies/{study_id}/reviews",
        params={"status": "late"},
        headers=world.staff(Role.researcher),
    )
    assert bad_status.status_code == 422
    assert "status" in bad_status.text


def test_an_overdue_review_is_escalated_to_the_next_level_by_e_mail(
    care: World, care_settings: Settings, inbox: Inbox
) -> None:
    study_id = pain_study(care)
    assert put_routes(care, study_id, {"routes": [ON_CALL, PI]}).status_code == 200
    me = phone(care, study_id)
    worker = care_worker(care, care_settings)
    enrolled = care.clock.now()
    care.clock.set(enrolled + 14 * DAY + timedelta(minutes=5))
    worker.evaluate_flags()
    worker.tick()
    assert _review_mail(inbox) == ["nurse@clinic.example"]
    [due] = _review_messages(inbox)
    assert due["Subject"].startswith("[Kairos review due]")
    assert me.participant["code"] in due.get_payload()

    care.clock.set(enrolled + 16 * DAY)
    worker.tick()
    assert _review_mail(inbox) == ["nurse@clinic.example"]  # within its grace
    care.clock.set(enrolled + 17 * DAY + timedelta(minutes=5))
    worker.tick()
    worker.tick()  # escalated once, not once per tick
    assert _review_mail(inbox) == ["nurse@clinic.example", "pi@clinic.example"]
    overdue = _review_messages(inbox)[-1]
    assert overdue["Subject"].startswith("[Kairos review OVERDUE]")
    [review] = _reviews(care, study_id, status="overdue")
    assert review["escalated_at"] is not None
    assert [(s["level"], s["address"], s["status"]) for s in review["sends"]] == [
        (0, "nurse@clinic.example", "delivered"),
        (1, "pi@clinic.example", "delivered"),
    ]
    # Completing it stops nothing already sent and sends nothing more.
    assert _complete(care, study_id, review["id"], outcome="refer").status_code == 200
    care.clock.advance(DAY)
    worker.tick()
    assert len(_review_messages(inbox)) == 2


def _review_messages(inbox: Inbox) -> list[Any]:
    """The reviews' e-mails (new flags, e.g. unreachable, are sent to the routes too)."""
    return [m for m in inbox.messages if m["Subject"].startswith("[Kairos review")]


def _review_mail(inbox: Inbox) -> list[str]:
    """The recipients of the reviews' e-mails, in order."""
    return [m["To"] for m in _review_messages(inbox)]


def _csv(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


def test_inertia_measures_and_the_flags_and_reviews_exports(
    world: World, settings: Settings
) -> None:
    study_id = pain_study(world)
    changed, kept = _non_responder(world, study_id), _non_responder(world, study_id)
    world.clock.advance(36 * DAY)
    raised = world.clock.now()
    _plan(world, settings)
    flag_reviews = {r["participant_id"]: r for r in _reviews(world, study_id) if r["flag_id"]}
    assert set(flag_reviews) == {changed.id, kept.id}

    # One plan changes two days after the flag; the other is kept, with its reason.
    world.clock.set(raised + 2 * DAY)
    assert (
        _complete(
            world,
            study_id,
            flag_reviews[changed.id]["id"],
            outcome="change_phase",
            phase="intensified",
        ).status_code
        == 200
    )
    world.clock.set(raised + 3 * DAY)
    assert (
        _complete(
            world, study_id, flag_reviews[kept.id]["id"], outcome="maintain", reason="Flare."
        ).status_code
        == 200
    )
    staff = world.staff(Role.researcher)
    inertia = world.client.get(f"/v1/studies/{study_id}/inertia", headers=staff).json()
    # The kept plan's 14 days have not passed: it is not counted in the share yet.
    assert inertia["non_response_flags"] == 2
    assert inertia["reviewed"] == 2
    assert inertia["median_hours_to_review"] == pytest.approx(60.0)
    assert (inertia["decided"], inertia["plan_changed_in_time"]) == (1, 1)
    world.clock.set(raised + 15 * DAY)
    inertia = world.client.get(f"/v1/studies/{study_id}/inertia", headers=staff).json()
    assert (inertia["decided"], inertia["plan_changed_in_time"]) == (2, 1)
    assert inertia["plan_change_share"] == pytest.approx(0.5)
    # A shorter N of one's own: neither plan changed within one day.
    within = world.client.get(
        f"/v1/studies/{study_id}/inertia", params={"within_days": 1}, headers=staff
    ).json()
    assert (within["within_days"], within["plan_changed_in_time"]) == (1, 0)
    bad = world.client.get(
        f"/v1/studies/{study_id}/inertia", params={"within_days": 0}, headers=staff
    )
    assert bad.status_code == 422
    assert "within_days" in bad.text

    flags = {
        row["participant_id"]: row
        for row in _csv(world.client.get(f"/v1/studies/{study_id}/exports/flags", headers=staff))
        if row["kind"] == "non_response"
    }
    assert float(flags[changed.id]["hours_to_review"]) == pytest.approx(48.0)
    assert float(flags[changed.id]["days_to_plan_change"]) == pytest.approx(2.0)
    assert flags[changed.id]["plan_changed_in_time"] == "true"
    assert flags[kept.id]["plan_changed_in_time"] == "false"
    assert flags[kept.id]["plan_change_at"] == ""
    assert flags[kept.id]["plan_change_within_days"] == "14"
    reviews = _csv(world.client.get(f"/v1/studies/{study_id}/exports/reviews", headers=staff))
    by_outcome = {r["outcome"]: r for r in reviews if r["trigger"] == "flag"}
    assert by_outcome["change_phase"]["new_phase"] == "intensified"
    assert by_outcome["change_phase"]["plan_change"] == "true"
    assert by_outcome["maintain"]["plan_change"] == "false"
    assert by_outcome["maintain"]["reason"] == "Flare."
    assert by_outcome["maintain"]["open_non_response_flag_id"] != ""
    for dataset, column in (("flags", "plan_changed_in_time"), ("reviews", "outcome")):
        dictionary = world.client.get(
            f"/v1/studies/{study_id}/exports/{dataset}/dictionary", headers=staff
        )
        assert dictionary.status_code == 200, dictionary.text
        assert column in dictionary.text


def test_with_one_level_an_overdue_review_is_sent_to_it_again(
    care: World, care_settings: Settings, inbox: Inbox
) -> None:
    study_id = pain_study(care)
    critical_only = ON_CALL | {"address": "pager@clinic.example", "severities": ["critical"]}
    routes = {"routes": [ON_CALL, critical_only]}
    assert put_routes(care, study_id, routes).status_code == 200
    phone(care, study_id)
    worker = care_worker(care, care_settings)
    enrolled = care.clock.now()
    care.clock.set(enrolled + 14 * DAY + timedelta(minutes=5))
    worker.evaluate_flags()
    worker.tick()
    care.clock.set(enrolled + 17 * DAY + timedelta(minutes=5))
    worker.tick()
    # The review's severity (medium) is not the pager's; the nurse is told twice.
    assert _review_mail(inbox) == ["nurse@clinic.example", "nurse@clinic.example"]
    assert [m["Subject"].split("]")[0] for m in _review_messages(inbox)] == [
        "[Kairos review due",
        "[Kairos review OVERDUE",
    ]
    [review] = _reviews(care, study_id, status="overdue")
    assert [s["level"] for s in review["sends"]] == [0, 0]

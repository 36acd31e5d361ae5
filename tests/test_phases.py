"""Treatment phases (issue 16, item 4): a clinician moves a participant between the
protocol's phases (audited, with a reason, an immutable history); the engine restricts the
options to the phase's (the reason in the decision log) and its daily cap, rules see
`phase`, every decision records it, and the decisions export carries it. Protocols that
declare a design they say they do not use are refused."""

import copy
import csv
import io
import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
import yaml

from app.audit.models import AuditEvent
from app.care.models import PhaseChange
from app.decision_rules.probabilities import NOT_IN_PHASE
from app.staff.models import Role
from tests.conftest import World
from tests.support.decisions import Trial, example_document
from tests.test_decisions_api import preview

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def _document() -> dict[str, Any]:
    """The example, with rules simple enough to tell the phases apart: intensified support
    gets a CBT skill (the rule reads `phase`), everyone else a 50:50 activity prompt."""
    document = example_document()
    document["policy"]["rules"] = [
        {"id": "intensified", "when": "phase == 'intensified'", "option": "cbt_skill"},
        {"id": "activity", "when": "true", "randomize": {"activity_pacing": 0.5, "nothing": 0.5}},
    ]
    return document


def _move(world: World, trial: Trial, pid: uuid.UUID, **body: Any) -> Any:
    return world.client.post(
        f"/v1/studies/{trial.study_id}/participants/{pid}/phase",
        json=body,
        headers=world.staff(Role.coordinator),
    )


def test_a_phase_change_changes_what_the_engine_may_deliver(world: World) -> None:
    trial = Trial(world, _document())
    pid = trial.participant()
    at = world.clock.now() + HOUR  # 14:00 in Berlin, outside quiet hours

    decision, _ = trial.decide_one(pid, "afternoon", at)
    assert decision.phase == "self_management"
    assert decision.rule_id == "activity"
    assert decision.probabilities == {"activity_pacing": 0.5, "nothing": 0.5}
    assert decision.excluded == {}

    moved = _move(world, trial, pid, phase="education", reason="Prefers to start slowly.")
    assert moved.status_code == 200, moved.text
    assert moved.json()["phase"] == "education"
    # The next day: education's daily cap (1) is not what stops it.
    decision, delivery = trial.decide_one(pid, "afternoon", at + DAY)
    assert decision.phase == "education"
    # Education allows feedback, sleep and nothing: the activity prompt is excluded, why logged.
    assert decision.excluded == {"activity_pacing": NOT_IN_PHASE}
    assert decision.probabilities == {"activity_pacing": 0.0, "nothing": 1.0}
    assert delivery is None

    assert _move(world, trial, pid, phase="intensified", reason="No response.").status_code == 200
    decision, delivery = trial.decide_one(pid, "afternoon", at + 2 * DAY)
    assert (decision.phase, decision.rule_id, decision.option_id) == (
        "intensified",
        "intensified",
        "cbt_skill",
    )
    assert delivery is not None
    assert delivery.option_id == "cbt_skill"

    # The phase is a column of the decisions export.
    exported = world.client.get(
        f"/v1/studies/{trial.study_id}/exports/decisions", headers=world.staff(Role.researcher)
    )
    assert exported.status_code == 200, exported.text
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["phase"] for r in rows] == ["self_management", "education", "intensified"]


def test_the_phase_cap_replaces_the_policy_cap(world: World) -> None:
    document = _document()
    document["policy"]["rules"] = [{"id": "feedback", "when": "true", "option": "feedback"}]
    trial = Trial(world, document)
    pid = trial.participant()
    at = world.clock.now() + HOUR
    assert _move(world, trial, pid, phase="education", reason="Step down.").status_code == 200
    _, delivery = trial.decide_one(pid, "afternoon", at)
    assert delivery is not None
    second, delivery = trial.decide_one(pid, "late_afternoon", at + 2 * HOUR)
    assert delivery is None
    assert second.unavailable_reason == "daily cap reached (1 prompts today, the cap is 1)"


def test_moves_are_audited_kept_and_checked(world: World) -> None:
    trial = Trial(world, _document())
    pid = trial.participant()
    base = f"/v1/studies/{trial.study_id}/participants/{pid}/phase"
    state = world.client.get(base, headers=world.staff(Role.researcher)).json()
    assert state["phase"] == "self_management"
    assert state["declared"] == ["education", "self_management", "intensified"]
    assert state["history"] == []

    assert (
        _move(world, trial, pid, phase="intensified", reason="Week 6: no change.").status_code
        == 200
    )
    world.clock.advance(timedelta(days=7))
    assert _move(world, trial, pid, phase="self_management", reason="Improved.").status_code == 200
    state = world.client.get(base, headers=world.staff(Role.researcher)).json()
    assert state["phase"] == "self_management"
    assert [(c["from_phase"], c["to_phase"], c["reason"]) for c in state["history"]] == [
        ("self_management", "intensified", "Week 6: no change."),
        ("intensified", "self_management", "Improved."),
    ]
    with world.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(PhaseChange)) == 2
        events = session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.action == "participant.phase_change")
            .order_by(AuditEvent.occurred_at)
        ).all()
        assert [e.detail["to_phase"] for e in events] == ["intensified", "self_management"]
        assert events[0].resource_id == str(pid)

    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"phase": "hospital", "reason": "x"}, 422, "phase"),
        ({"phase": "self_management", "reason": "x"}, 409, "phase"),
        ({"phase": "education"}, 422, "reason"),
        ({"phase": "education", "reason": "   "}, 422, "reason"),
        ({"reason": "x"}, 422, "phase"),
    ]
    for body, status, field in cases:
        response = _move(world, trial, pid, **body)
        assert response.status_code == status, (body, response.text)
        assert field in response.text
    researcher = world.client.post(
        base, json={"phase": "education", "reason": "x"}, headers=world.staff(Role.researcher)
    )
    assert researcher.status_code == 403
    assert _move(world, trial, uuid.uuid4(), phase="education", reason="x").status_code == 404


def test_a_study_without_phases_refuses_a_move(world: World) -> None:
    document = _document()
    del document["phases"]
    document["adaptation"] = "smart"
    document["policy"]["rules"] = [{"id": "always", "when": "true", "option": "nothing"}]
    trial = Trial(world, document)
    pid = trial.participant()
    response = _move(world, trial, pid, phase="education", reason="x")
    assert response.status_code == 422
    assert response.json()["code"] == "no_phases"
    decision, _ = trial.decide_one(pid, "afternoon", world.clock.now() + HOUR)
    assert decision.phase is None


def _upload(world: World, document: dict[str, Any]) -> Any:
    study = world.study()
    return world.client.post(
        f"/v1/studies/{study['id']}/protocols",
        content=yaml.safe_dump(document),
        headers={**world.staff(Role.admin), "Content-Type": "application/yaml"},
    )


def test_protocols_are_held_to_the_design_they_declare(world: World) -> None:
    base = _document()
    cases: list[tuple[dict[str, Any], str]] = []
    only_smart = copy.deepcopy(base) | {"adaptation": "smart"}
    cases.append((only_smart, "phases"))
    only_phases = copy.deepcopy(base) | {"adaptation": "phases"}
    cases.append((only_phases, "smart"))
    unknown_initial = copy.deepcopy(base)
    unknown_initial["phases"]["initial"] = "hospital"
    cases.append((unknown_initial, "phases.initial"))
    unknown_option = copy.deepcopy(base)
    unknown_option["phases"]["steps"][0]["options"] = ["feedback", "yoga"]
    cases.append((unknown_option, "phases.steps[0].options[1]"))
    twice = copy.deepcopy(base)
    twice["phases"]["steps"][1]["id"] = "education"
    cases.append((twice, "phases.steps[1].id"))
    no_flag = copy.deepcopy(base)
    del no_flag["monitoring"]["non_response"]
    cases.append((no_flag, "reviews.on_flags[0]"))
    undeliverable_fallback = copy.deepcopy(base)
    undeliverable_fallback["policy"]["fallback"] = {"option": "feedback"}
    undeliverable_fallback["phases"]["steps"][2]["options"] = ["cbt_skill", "nothing"]
    cases.append((undeliverable_fallback, "phases.steps[2].options"))
    in_responder = copy.deepcopy(base)
    in_responder["smart"]["stages"][0]["responder_when"] = "phase == 'intensified'"
    cases.append((in_responder, "responder_when"))
    for document, field in cases:
        response = _upload(world, document)
        assert response.status_code == 422, (field, response.text)
        assert field in response.text, (field, response.text)
    assert _upload(world, base).status_code == 201


def test_the_preview_takes_a_phase(world: World) -> None:
    trial = Trial(world, _document())
    default = preview(trial)
    assert default.status_code == 200, default.text
    assert (default.json()["phase"], default.json()["rule_id"]) == ("self_management", "activity")
    stepped = preview(trial, phase="education")
    assert stepped.status_code == 200, stepped.text
    options = {o["option_id"]: o for o in stepped.json()["options"]}
    assert options["activity_pacing"]["excluded_because"] == NOT_IN_PHASE
    assert preview(trial, phase="intensified").json()["rule_id"] == "intensified"
    unknown = preview(trial, phase="hospital")
    assert unknown.status_code == 422
    assert "phase" in unknown.text

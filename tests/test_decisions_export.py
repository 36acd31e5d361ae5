"""The decisions dataset (MRT long format) and the WCLS analysis over the decision log."""

import csv
import io
import json
import uuid
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from app.core.ids import new_id
from app.decision_rules.models import Decision, SmartAssignment
from app.ema.models import EmaAnswer, EmaResponse
from app.staff.models import Role
from tests.conftest import World
from tests.support.decisions import Trial
from tests.test_decisions_api import history_setup


def _export(world: World, study_id: str, **params: Any) -> list[dict[str, str]]:
    response = world.client.get(
        f"/v1/studies/{study_id}/exports/decisions",
        params=params,
        headers=world.staff(Role.researcher),
    )
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


def test_decisions_export_is_the_mrt_long_format(world: World) -> None:
    trial, participant, decision = history_setup(world)
    world.clock.set(decision.decided_at + timedelta(hours=5))
    rows = _export(world, trial.study_id)
    assert len(rows) == 2
    evening = next(r for r in rows if r["decision_id"] == str(decision.id))
    assert evening["participant_id"] == str(participant)
    assert evening["action"] == "feedback"
    assert evening["treated"] == "1"
    assert evening["available"] == "true"
    assert evening["seed"] == str(decision.seed)
    assert evening["delivery_status"] == "pending"
    assert evening["opened"] == "true"
    assert evening["outcome_next_interference"] == "4.0"
    assert evening["outcome_exercise_done"] == "1.0"
    # Every tailoring variable of the protocol is a column, as the rules saw it.
    assert evening["tv_days_enrolled"] == "7"
    assert {"tv_interference_today", "tv_steps_3h", "tv_pain_baseline"} <= set(evening)
    dictionary = world.client.get(
        f"/v1/studies/{trial.study_id}/exports/decisions/dictionary",
        headers=world.staff(Role.researcher),
    ).json()["data_dictionary"]
    meanings = {c["name"]: c for c in dictionary["columns"]}
    assert meanings["probability"]["type"] == "number"
    assert "P(treated = 1)" in meanings["probability"]["meaning"]


def _simulated_trial(world: World, effect: float, participants: int = 30, days: int = 10) -> Trial:
    """Decisions randomized with p = 0.6 and an interference answer an hour after each,
    lower by ``effect`` after a prompt."""
    trial = Trial(world)
    start = world.clock.now()
    rng = np.random.default_rng(20261125)
    people = [trial.participant() for _ in range(participants)]
    with world.session_factory() as session:
        for pid in people:
            baseline = rng.normal(5, 1)
            for day in range(days):
                at = start + timedelta(days=day + 1)
                treated = bool(rng.random() < 0.6)
                option = "pain_acceptance" if treated else "nothing"
                session.add(
                    Decision(
                        participant_id=pid,
                        study_id=uuid.UUID(trial.study_id),
                        decision_point_id="afternoon",
                        decision_index=day,
                        planned_at=at,
                        decided_at=at,
                        local_time=at.isoformat(),
                        timezone="Europe/Berlin",
                        protocol_version=1,
                        study_day=day + 1,
                        available=True,
                        tailoring={"interference_today": 6.0, "acceptance_today": 3.0},
                        probabilities={"pain_acceptance": 0.6, "nothing": 0.4},
                        randomized=True,
                        seed=day,
                        draw=0.5,
                        option_id=option,
                        probability=0.6 if treated else 0.4,
                        created_at=at,
                    )
                )
                answered = at + timedelta(hours=1)
                response = EmaResponse(
                    id=new_id(),
                    participant_id=pid,
                    study_id=uuid.UUID(trial.study_id),
                    client_id=uuid.uuid4().hex,
                    questionnaire_id="checkin",
                    questionnaire_version=1,
                    protocol_version=1,
                    answered_at=answered,
                    utc_offset_minutes=60,
                    received_at=answered,
                )
                session.add(response)
                session.flush()  # answers reference it; the models declare no relationship
                value = baseline - effect * treated + rng.normal(0, 0.5)
                session.add(
                    EmaAnswer(
                        response_id=response.id,
                        participant_id=pid,
                        questionnaire_id="checkin",
                        item_id="interference",
                        answered_at=answered,
                        value=value,
                        numeric_value=value,
                    )
                )
        session.commit()
    world.clock.set(start + timedelta(days=days + 2))
    return trial


def test_the_mrt_analysis_recovers_a_known_effect(world: World) -> None:
    trial = _simulated_trial(world, effect=1.0)
    response = world.client.post(
        f"/v1/studies/{trial.study_id}/analyses/mrt",
        json={"outcome": "next_interference", "option": "pain_acceptance"},
        headers=world.staff(Role.researcher),
    )
    assert response.status_code == 200, response.text
    result = response.json()
    effect = result["coefficients"][0]
    assert result["n_participants"] == 30
    assert result["n_decisions"] == 300
    assert result["df"] == 30 - 1 - 1
    # The true effect is -1; the interval must cover it and exclude zero.
    assert effect["ci_low"] < -1.0 < effect["ci_high"]
    assert effect["ci_high"] < 0
    assert abs(effect["estimate"] + 1.0) < 4 * effect["std_error"]
    events = world.client.get(
        "/v1/audit-events", params={"action": "analysis.mrt"}, headers=world.staff(Role.admin)
    ).json()["items"]
    assert len(events) == 1


def test_the_mrt_analysis_names_what_is_wrong(world: World) -> None:
    trial = _simulated_trial(world, effect=0.0, participants=3, days=2)
    url = f"/v1/studies/{trial.study_id}/analyses/mrt"
    researcher = world.staff(Role.researcher)
    unknown = world.client.post(
        url, json={"outcome": "nope", "moderators": ["painn"]}, headers=researcher
    )
    assert unknown.status_code == 422
    fields = {e["field"] for e in unknown.json()["errors"]}
    assert fields == {"body.outcome", "body.covariates[0]"}
    too_few = world.client.post(
        url,
        json={
            "outcome": "next_interference",
            "controls": ["interference_today", "acceptance_today"],
        },
        headers=researcher,
    )
    assert too_few.status_code == 422
    assert too_few.json()["code"] == "analysis_not_estimable"
    coordinator = world.client.post(
        url, json={"outcome": "next_interference"}, headers=world.staff(Role.coordinator)
    )
    assert coordinator.status_code == 403


def test_participants_export_carries_smart_assignments_and_weights(world: World) -> None:
    trial = Trial(world)
    pid = trial.participant()
    now = world.clock.now()
    with world.session_factory() as session:
        for stage, probabilities, track, responder in (
            ("stage_1", {"maintain": 1.0}, "maintain", None),
            ("stage_2", {"intensify": 0.5, "maintain": 0.5}, "intensify", False),
        ):
            session.add(
                SmartAssignment(
                    participant_id=pid,
                    study_id=uuid.UUID(trial.study_id),
                    protocol_version=1,
                    stage_id=stage,
                    responder=responder,
                    probabilities=probabilities,
                    seed=1,
                    draw=0.25,
                    track=track,
                    assigned_at=now,
                )
            )
            now += timedelta(days=28)
        session.commit()
    rows = list(
        csv.DictReader(
            io.StringIO(
                world.client.get(
                    f"/v1/studies/{trial.study_id}/exports/participants",
                    headers=world.staff(Role.researcher),
                ).text
            )
        )
    )
    assert len(rows) == 1
    assert rows[0]["smart_weight"] == "2.0"
    stages = json.loads(rows[0]["smart_assignments"])
    assert [(s["stage"], s["track"], s["responder"]) for s in stages] == [
        ("stage_1", "maintain", None),
        ("stage_2", "intensify", False),
    ]


def test_the_mrt_analysis_reads_without_a_statement_timeout(world: World) -> None:
    # The analysis reads the whole decisions dataset through the export's reader: the
    # statement timeout (KAIROS_DB_STATEMENT_TIMEOUT_SECONDS) is lifted for that read too.
    if world.engine.dialect.name != "postgresql":
        pytest.skip("statement timeouts are PostgreSQL's")
    trial = _simulated_trial(world, effect=1.0, participants=3, days=2)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    app_engine = world.client.app.state.engine  # type: ignore[attr-defined]
    sa.event.listen(app_engine, "before_cursor_execute", seen)
    try:
        response = world.client.post(
            f"/v1/studies/{trial.study_id}/analyses/mrt",
            json={"outcome": "next_interference", "option": "pain_acceptance"},
            headers=world.staff(Role.researcher),
        )
    finally:
        sa.event.remove(app_engine, "before_cursor_execute", seen)
    assert response.status_code == 200, response.text
    assert "SET LOCAL statement_timeout = 0" in statements

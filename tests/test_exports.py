"""Researcher exports through the real API: datasets, formats, filters, dictionary, jobs."""

import csv
import io
import json
import uuid
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from app.core.clock import SimulatedClock
from app.ema.models import EmaAnswer, EmaResponse
from app.engagement.models import EngagementEvent
from app.export.jobs import run_next_job
from app.notifications.models import Notification
from app.protocols.example_files import CHRONIC_PAIN_JITAI, example_text
from app.sensing.models import WearableSummary
from app.staff.models import Role
from tests.conftest import World, bearer

# Onboarding attributes the chronic-pain example requires of every participant.
PAIN_ATTRIBUTES = {
    "trauma_history": False,
    "pain_phenotype": "nociplastic",
    "age": 47,
    "baseline_interference": 6,
}


def _study_with_data(world: World) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    study = world.study()
    uploaded = world.client.post(
        f"/v1/studies/{study['id']}/protocols",
        content=example_text(CHRONIC_PAIN_JITAI),
        headers={**world.staff(Role.admin), "Content-Type": "application/yaml"},
    )
    assert uploaded.status_code == 201
    people = [
        world.enrolled_participant(study["id"], attributes=PAIN_ATTRIBUTES)[0] for _ in range(2)
    ]
    now = world.clock.now()
    with world.session_factory() as session:
        for n, person in enumerate(people):
            pid, sid = uuid.UUID(person["id"]), uuid.UUID(study["id"])
            for day in range(3):
                response = EmaResponse(
                    participant_id=pid,
                    study_id=sid,
                    client_id=f"r-{day}",
                    questionnaire_id="morning",
                    questionnaire_version=1,
                    protocol_version=1,
                    answered_at=now + timedelta(days=day, hours=n),
                    utc_offset_minutes=60,
                    received_at=now + timedelta(days=day, hours=n, minutes=5),
                    late=day == 2,
                )
                session.add(response)
                session.flush()
                for item, value, numeric in (
                    ("pain", 4 + day, 4.0 + day),
                    ("mood", "good", None),
                    ("sleep_duration", 420, 420.0),
                ):
                    session.add(
                        EmaAnswer(
                            response_id=response.id,
                            participant_id=pid,
                            questionnaire_id="morning",
                            item_id=item,
                            answered_at=response.answered_at,
                            value=value,
                            numeric_value=numeric,
                        )
                    )
            session.add(
                WearableSummary(
                    participant_id=pid,
                    study_id=sid,
                    metric="steps",
                    unit="count",
                    start_at=now,
                    end_at=now + timedelta(hours=1),
                    value=1234.0,
                    received_at=now,
                    updated_at=now,
                )
            )
            notification = Notification(
                participant_id=pid,
                study_id=sid,
                kind="intervention",
                option_id="pain_acceptance",
                title="Making room for pain",
                body="…",
                created_at=now,
                send_at=now,
                status="sent",
                sent_at=now,
                attempts=1,
            )
            session.add(notification)
            session.flush()
            session.add(
                EngagementEvent(
                    participant_id=pid,
                    study_id=sid,
                    client_id="e-1",
                    kind="exercise_completed",
                    notification_id=notification.id,
                    exercise_id="acceptance-1",
                    occurred_at=now + timedelta(minutes=10),
                    received_at=now + timedelta(minutes=11),
                    duration_seconds=300.0,
                )
            )
        session.commit()
    return study, people


def _export(
    world: World, study_id: str, dataset: str, role: Role = Role.researcher, **params: Any
) -> Any:
    return world.client.get(
        f"/v1/studies/{study_id}/exports/{dataset}", params=params, headers=world.staff(role)
    )


def _csv(response: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.text)))


def test_ema_long_csv_has_one_row_per_answer(world: World) -> None:
    study, people = _study_with_data(world)
    response = _export(world, study["id"], "ema_answers")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="' in response.headers["content-disposition"]
    assert "/dictionary" in response.headers["link"]
    rows = _csv(response)
    assert len(rows) == 2 * 3 * 3
    first = rows[0]
    assert first["participant_code"] in {p["code"] for p in people}
    pain = [r for r in rows if r["item_id"] == "pain"]
    assert sorted({r["numeric_value"] for r in pain}) == ["4.0", "5.0", "6.0"]
    assert {r["late"] for r in rows} == {"true", "false"}
    assert rows[0]["answered_at"].endswith("Z")
    mood = next(r for r in rows if r["item_id"] == "mood")
    assert json.loads(mood["value"]) == "good"


def test_ema_wide_has_a_column_per_item(world: World) -> None:
    study, _ = _study_with_data(world)
    rows = _csv(_export(world, study["id"], "ema_responses"))
    assert len(rows) == 6
    assert {"morning.pain", "morning.mood", "evening.self_harm"} <= set(rows[0])
    assert rows[0]["morning.pain"] == "4.0"
    assert rows[0]["morning.mood"] == "good"
    assert rows[0]["evening.self_harm"] == ""


def test_filters_participants_time_and_version(world: World) -> None:
    study, people = _study_with_data(world)
    start = world.clock.now() + timedelta(days=1)
    rows = _csv(
        _export(
            world,
            study["id"],
            "ema_answers",
            participant_id=people[0]["id"],
            start=start.isoformat(),
        )
    )
    assert {r["participant_id"] for r in rows} == {people[0]["id"]}
    assert len(rows) == 2 * 3
    assert _csv(_export(world, study["id"], "ema_answers", protocol_version=2)) == []


def test_empty_result_is_a_file_with_its_header(world: World) -> None:
    study = world.study()
    response = _export(world, study["id"], "wearable_summaries")
    assert response.status_code == 200
    assert response.text.splitlines() == [
        "summary_id,participant_id,participant_code,metric,unit,start_at,end_at,value,"
        "source_format,received_at,updated_at"
    ]


def test_ndjson_and_parquet_carry_types(world: World, tmp_path: Path) -> None:
    study, _ = _study_with_data(world)
    ndjson = _export(world, study["id"], "engagement_events", format="ndjson")
    records = [json.loads(line) for line in ndjson.text.splitlines()]
    assert len(records) == 2
    assert records[0]["duration_seconds"] == 300.0
    assert records[0]["kind"] == "exercise_completed"

    parquet = _export(world, study["id"], "wearable_summaries", format="parquet")
    assert parquet.status_code == 200
    path = tmp_path / "w.parquet"
    path.write_bytes(parquet.content)
    table = pq.read_table(path)
    assert table.num_rows == 2
    assert str(table.schema.field("start_at").type) == "timestamp[us, tz=UTC]"
    assert table.column("value").to_pylist() == [1234.0, 1234.0]
    metadata = table.schema.metadata
    dictionary = json.loads(metadata[b"kairos:data_dictionary"])
    assert dictionary["dataset"] == "wearable_summaries"
    provenance = json.loads(metadata[b"kairos:provenance"])
    assert provenance["protocol_versions"] == [1]


def test_empty_parquet_is_valid(world: World, tmp_path: Path) -> None:
    study = world.study()
    response = _export(world, study["id"], "notifications", format="parquet")
    path = tmp_path / "n.parquet"
    path.write_bytes(response.content)
    assert pq.read_table(path).num_rows == 0


def test_dictionary_describes_columns_protocols_and_provenance(world: World) -> None:
    study, _ = _study_with_data(world)
    response = world.client.get(
        f"/v1/studies/{study['id']}/exports/ema_answers/dictionary",
        headers=world.staff(Role.researcher),
    )
    assert response.status_code == 200
    body = response.json()
    columns = {c["name"]: c for c in body["data_dictionary"]["columns"]}
    assert columns["numeric_value"]["type"] == "number"
    assert columns["answered_at"]["unit"] == "UTC"
    protocol = body["data_dictionary"]["protocols"][0]
    assert "interference_today" in {v["name"] for v in protocol["tailoring_variables"]}
    assert "next_interference" in {o["name"] for o in protocol["proximal_outcomes"]}
    provenance = body["provenance"]
    assert provenance["study_slug"] == study["slug"]
    assert provenance["kairos_version"]


def test_exports_are_audited(world: World) -> None:
    study, _ = _study_with_data(world)
    _export(world, study["id"], "participants")
    events = world.client.get(
        "/v1/audit-events",
        params={"action": "export.participants"},
        headers=world.staff(Role.admin),
    ).json()["items"]
    assert len(events) == 1
    assert events[0]["actor_role"] == "researcher"
    assert events[0]["detail"]["format"] == "csv"


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"format": "xlsx"}, 422, "validation_error"),
        (
            {"start": "2026-03-02T00:00:00Z", "end": "2026-03-01T00:00:00Z"},
            422,
            "inverted_time_range",
        ),
        ({"start": "2026-03-02T00:00:00"}, 422, "validation_error"),
    ],
)
def test_bad_requests_say_why(world: World, params: dict[str, str], status: int, code: str) -> None:
    study = world.study()
    response = world.client.get(
        f"/v1/studies/{study['id']}/exports/participants",
        params=params,
        headers=world.staff(Role.researcher),
    )
    assert response.status_code == status
    assert response.json()["code"] == code


def test_unknown_dataset_is_404_and_roles_are_enforced(world: World) -> None:
    study = world.study()
    missing = _export(world, study["id"], "everything")
    assert missing.status_code == 404
    assert "ema_answers" in missing.json()["detail"]
    assert _export(world, study["id"], "participants", Role.coordinator).status_code == 403
    assert _export(world, study["id"], "participants", Role.admin).status_code == 200
    _, token = world.enrolled_participant(study["id"])
    as_participant = world.client.get(
        f"/v1/studies/{study['id']}/exports/participants", headers=bearer(token)
    )
    assert as_participant.status_code == 403


def test_background_job_writes_a_bundle(
    world: World, session_factory: sessionmaker[Session], clock: SimulatedClock
) -> None:
    study, _ = _study_with_data(world)
    researcher = world.staff(Role.researcher)
    base = f"/v1/studies/{study['id']}/export-jobs"
    created = world.client.post(
        base, json={"dataset": "ema_answers", "format": "parquet"}, headers=researcher
    )
    assert created.status_code == 202, created.text
    job = created.json()
    assert job["status"] == "pending"
    early = world.client.get(f"{base}/{job['id']}/bundle", headers=researcher)
    assert early.status_code == 409

    export_dir = world.client.app.state.settings.export_dir  # type: ignore[attr-defined]
    assert run_next_job(session_factory, clock, export_dir, "test-worker")
    assert not run_next_job(session_factory, clock, export_dir, "test-worker")
    done = world.client.get(f"{base}/{job['id']}", headers=researcher).json()
    assert done["status"] == "done"
    assert done["size_bytes"] > 0
    bundle = world.client.get(f"{base}/{job['id']}/bundle", headers=researcher)
    assert bundle.status_code == 200
    with zipfile.ZipFile(io.BytesIO(bundle.content)) as archive:
        names = set(archive.namelist())
        assert names == {
            f"{study['slug']}-ema_answers.parquet",
            "data_dictionary.json",
            "provenance.json",
        }
        provenance = json.loads(archive.read("provenance.json"))
    assert provenance["format"] == "parquet"
    with session_factory() as session:
        actions = session.scalars(
            sa.text("SELECT action FROM audit_events WHERE action = 'export.ema_answers'")
        ).all()
    assert len(actions) == 1


def test_job_requests_are_checked_up_front(world: World) -> None:
    study = world.study()
    base = f"/v1/studies/{study['id']}/export-jobs"
    researcher = world.staff(Role.researcher)
    assert world.client.post(base, json={"dataset": "nope"}, headers=researcher).status_code == 404
    inverted = world.client.post(
        base,
        json={
            "dataset": "participants",
            "start": "2026-03-02T00:00:00Z",
            "end": "2026-03-01T00:00:00Z",
        },
        headers=researcher,
    )
    assert inverted.status_code == 422
    unknown = world.client.get(f"{base}/{uuid.uuid4()}", headers=researcher)
    assert unknown.status_code == 404


def test_alerts_dataset(world: World) -> None:
    from app.alerts.models import Alert

    study, people = _study_with_data(world)
    now = world.clock.now()
    with world.session_factory() as session:
        session.add(
            Alert(
                study_id=uuid.UUID(study["id"]),
                participant_id=uuid.UUID(people[0]["id"]),
                questionnaire_id="evening",
                item_id="self_harm",
                severity="critical",
                message="Follow the crisis procedure.",
                value=True,
                answered_at=now,
                created_at=now,
                webhook_status="not_configured",
            )
        )
        session.commit()
    rows = _csv(_export(world, study["id"], "alerts"))
    assert len(rows) == 1
    assert (rows[0]["item_id"], rows[0]["severity"], rows[0]["value"]) == (
        "self_harm",
        "critical",
        "true",
    )
    assert rows[0]["participant_code"] == people[0]["code"]

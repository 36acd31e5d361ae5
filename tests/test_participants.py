import sqlalchemy as sa

from app.audit.models import AuditEvent
from app.staff.models import Role
from tests.conftest import World


def test_create_participant_with_generated_code(world: World) -> None:
    study = world.study()
    created = world.participant(study["id"], attributes={"trauma_history": True})
    assert created["code"].startswith("P-")
    assert created["timezone"] == "Europe/Berlin"
    assert created["attributes"] == {"trauma_history": True}
    assert created["enrollment_code_expires_at"] == "2026-03-15T12:00:00Z"
    assert len(created["enrollment_code"]) == 11


def test_participant_code_is_unique_per_study(world: World) -> None:
    study, other = world.study(), world.study()
    world.participant(study["id"], code="P-1")
    world.participant(other["id"], code="P-1")
    clash = world.client.post(
        f"/v1/studies/{study['id']}/participants",
        json={"code": "P-1", "timezone": "UTC"},
        headers=world.staff(Role.admin),
    )
    assert clash.status_code == 409
    assert clash.json()["errors"][0]["field"] == "body.code"


def test_unknown_time_zone_is_refused_with_the_reason(world: World) -> None:
    study = world.study()
    response = world.client.post(
        f"/v1/studies/{study['id']}/participants",
        json={"timezone": "Mars/Olympus_Mons"},
        headers=world.staff(Role.admin),
    )
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["field"] == "body.timezone"
    assert "unknown IANA time zone 'Mars/Olympus_Mons'" in error["message"]


def test_closed_study_takes_no_new_participants(world: World) -> None:
    study = world.study(status="closed")
    response = world.client.post(
        f"/v1/studies/{study['id']}/participants",
        json={"timezone": "UTC"},
        headers=world.staff(Role.admin),
    )
    assert response.status_code == 409
    assert response.json()["code"] == "study_closed"


def test_update_participant(world: World) -> None:
    study = world.study()
    created = world.participant(study["id"])
    world.clock.advance(__import__("datetime").timedelta(hours=1))
    updated = world.client.patch(
        f"/v1/studies/{study['id']}/participants/{created['id']}",
        json={"timezone": "America/Chicago", "attributes": {"pain_phenotype": "neuropathic"}},
        headers=world.staff(Role.coordinator),
    ).json()
    assert updated["timezone"] == "America/Chicago"
    assert updated["attributes"] == {"pain_phenotype": "neuropathic"}
    assert updated["updated_at"] == "2026-03-01T13:00:00Z"


def test_participant_of_another_study_is_404(world: World) -> None:
    study, other = world.study(), world.study()
    participant = world.participant(study["id"])
    response = world.client.get(
        f"/v1/studies/{other['id']}/participants/{participant['id']}",
        headers=world.staff(Role.admin),
    )
    assert response.status_code == 404


def test_status_transitions_and_history(world: World) -> None:
    study = world.study()
    participant, _ = world.enrolled_participant(study["id"])
    base = f"/v1/studies/{study['id']}/participants/{participant['id']}"
    headers = world.staff(Role.coordinator)

    def change(status: str, reason: str = "because") -> tuple[int, dict[str, object]]:
        response = world.client.post(
            f"{base}/status", json={"status": status, "reason": reason}, headers=headers
        )
        return response.status_code, response.json()

    assert change("paused", "holiday")[0] == 200
    code, problem = change("paused")
    assert (code, problem["code"]) == (409, "status_transition_not_allowed")
    assert change("active", "back")[0] == 200
    assert change("completed", "12 weeks done")[0] == 200
    code, problem = change("active")
    assert code == 409
    assert "final status" in str(problem["detail"])

    history = world.client.get(f"{base}/status-history", headers=headers).json()
    assert [(h["from_status"], h["to_status"], h["reason"]) for h in history] == [
        (None, "invited", "created"),
        ("invited", "active", "enrolled with the app"),
        ("active", "paused", "holiday"),
        ("paused", "active", "back"),
        ("active", "completed", "12 weeks done"),
    ]


def test_invited_participant_becomes_active_only_by_enrolling(world: World) -> None:
    study = world.study()
    participant = world.participant(study["id"])
    response = world.client.post(
        f"/v1/studies/{study['id']}/participants/{participant['id']}/status",
        json={"status": "active", "reason": "x"},
        headers=world.staff(Role.admin),
    )
    assert response.status_code == 409
    assert "enrolling" in response.json()["detail"]


def test_status_change_needs_a_reason(world: World) -> None:
    study = world.study()
    participant, _ = world.enrolled_participant(study["id"])
    response = world.client.post(
        f"/v1/studies/{study['id']}/participants/{participant['id']}/status",
        json={"status": "paused", "reason": "  "},
        headers=world.staff(Role.admin),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.reason"


def test_enrolled_participant_cannot_be_deleted(world: World) -> None:
    study = world.study()
    participant, _ = world.enrolled_participant(study["id"])
    response = world.client.delete(
        f"/v1/studies/{study['id']}/participants/{participant['id']}",
        headers=world.staff(Role.admin),
    )
    assert response.status_code == 409
    assert response.json()["code"] == "participant_has_enrolled"


def test_participant_list_paginates_and_filters(world: World) -> None:
    study = world.study()
    codes = [world.participant(study["id"], code=f"P-{i}")["code"] for i in range(5)]
    world.enroll(world.participant(study["id"], code="P-enrolled")["enrollment_code"])
    headers = world.staff(Role.researcher)
    url = f"/v1/studies/{study['id']}/participants"
    first = world.client.get(url, params={"limit": 4}, headers=headers).json()
    second = world.client.get(
        url, params={"limit": 4, "cursor": first["next_cursor"]}, headers=headers
    ).json()
    assert [p["code"] for p in first["items"] + second["items"]] == [*codes, "P-enrolled"]
    assert second["next_cursor"] is None
    active = world.client.get(url, params={"status": "active"}, headers=headers).json()
    assert [p["code"] for p in active["items"]] == ["P-enrolled"]


def test_staff_actions_and_reads_are_audited(world: World) -> None:
    study = world.study()
    participant = world.participant(study["id"])
    researcher_key = world.staff_key(Role.researcher)
    world.client.get(
        f"/v1/studies/{study['id']}/participants/{participant['id']}",
        headers={"X-API-Key": researcher_key},
    )
    with world.session_factory() as session:
        events = session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id)).all()
    actions = [(e.action, e.actor_role) for e in events if e.study_id is not None]
    assert actions == [
        ("study.create", "admin"),
        ("participant.create", "admin"),
        ("participant.read.record", "researcher"),
    ]
    audit = world.client.get(
        "/v1/audit-events",
        params={"study_id": study["id"], "action": "participant.create"},
        headers=world.staff(Role.admin),
    ).json()
    assert [e["resource_id"] for e in audit["items"]] == [participant["id"]]
    # Attribute values can be sensitive: the trail says which fields changed, not to what.
    world.client.patch(
        f"/v1/studies/{study['id']}/participants/{participant['id']}",
        json={"attributes": {"trauma_history": True}},
        headers=world.staff(Role.admin),
    )
    update = world.client.get(
        "/v1/audit-events",
        params={"action": "participant.update"},
        headers=world.staff(Role.admin),
    ).json()["items"][0]
    assert update["detail"] == {"fields": ["attributes"]}

import secrets
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from app.api.main import create_app
from app.core.config import Settings
from app.participants.models import ParticipantStatus
from app.staff.models import Role
from tests.conftest import World, bearer


def _enroll(world: World, code: str) -> tuple[int, dict[str, Any]]:
    response = world.client.post("/v1/enroll", json={"code": code})
    body: dict[str, Any] = response.json()
    return response.status_code, body


def test_code_works_once_and_activates_the_participant(world: World) -> None:
    study = world.study()
    created = world.participant(study["id"])
    assert created["status"] == "invited"
    assert created["enrolled_at"] is None

    status, body = _enroll(world, created["enrollment_code"])
    assert status == 201
    assert body["token_type"] == "bearer"
    assert str(body["access_token"]).startswith("kpt_")
    me = world.client.get("/v1/me", headers=bearer(str(body["access_token"]))).json()
    assert me["status"] == ParticipantStatus.active
    assert me["enrolled_at"] == world.clock.now().isoformat().replace("+00:00", "Z")

    status, problem = _enroll(world, created["enrollment_code"])
    assert status == 410
    assert problem["code"] == "enrollment_code_used"
    assert problem["errors"] == [
        {"field": "body.code", "message": problem["detail"], "type": "enrollment_code_used"}
    ]


def test_unknown_code_is_404_with_a_reason(world: World) -> None:
    status, problem = _enroll(world, "ZZZZZ-ZZZZZ")
    assert status == 404
    assert problem["code"] == "enrollment_code_unknown"
    assert "not known" in str(problem["detail"])


def test_expired_code_is_refused(world: World) -> None:
    study = world.study()
    created = world.participant(study["id"])
    world.clock.advance(timedelta(days=14, seconds=1))
    status, problem = _enroll(world, created["enrollment_code"])
    assert status == 410
    assert problem["code"] == "enrollment_code_expired"


def test_code_is_valid_until_just_before_expiry(world: World) -> None:
    study = world.study()
    created = world.participant(study["id"])
    world.clock.advance(timedelta(days=14) - timedelta(seconds=1))
    assert _enroll(world, created["enrollment_code"])[0] == 201


def test_code_is_forgiving_about_case_and_dashes(world: World) -> None:
    study = world.study()
    code = world.participant(study["id"])["enrollment_code"]
    typed = " " + code.replace("-", "").lower() + " "
    assert _enroll(world, typed)[0] == 201


def test_new_code_supersedes_the_old_one_and_adds_a_token(world: World) -> None:
    study = world.study()
    participant, first_token = world.enrolled_participant(study["id"])
    admin = world.staff(Role.coordinator)
    url = f"/v1/studies/{study['id']}/participants/{participant['id']}/enrollment-code"
    old = world.client.post(url, headers=admin).json()["enrollment_code"]
    new = world.client.post(url, headers=admin).json()["enrollment_code"]
    status, problem = _enroll(world, old)
    assert status == 410
    assert problem["code"] == "enrollment_code_superseded"
    second_token = world.enroll(new)
    # Re-enrolling (a second phone) keeps the participant active and both tokens valid.
    for token in (first_token, second_token):
        me = world.client.get("/v1/me", headers=bearer(token))
        assert me.status_code == 200
        assert me.json()["status"] == "active"


def test_withdrawn_participant_cannot_enroll_or_get_a_code(world: World) -> None:
    study = world.study()
    created = world.participant(study["id"])
    admin = world.staff(Role.admin)
    base = f"/v1/studies/{study['id']}/participants/{created['id']}"
    response = world.client.post(
        f"{base}/status", json={"status": "withdrawn", "reason": "declined"}, headers=admin
    )
    assert response.status_code == 200
    status, problem = _enroll(world, created["enrollment_code"])
    assert status == 410
    assert problem["code"] == "enrollment_code_superseded"
    refused = world.client.post(f"{base}/enrollment-code", headers=admin)
    assert refused.status_code == 409
    assert refused.json()["code"] == "participant_not_enrollable"


def test_closed_study_refuses_enrollment(world: World) -> None:
    study = world.study()
    created = world.participant(study["id"])
    world.client.patch(
        f"/v1/studies/{study['id']}", json={"status": "closed"}, headers=world.staff(Role.admin)
    )
    status, problem = _enroll(world, created["enrollment_code"])
    assert status == 410
    assert problem["code"] == "study_closed"


def test_empty_code_is_a_validation_error(world: World) -> None:
    status, problem = _enroll(world, "   ")
    assert status == 422
    assert [e["field"] for e in problem["errors"]] == ["body.code"]


def test_revoked_tokens_and_withdrawal_lock_the_app_out(world: World) -> None:
    study = world.study()
    participant, token = world.enrolled_participant(study["id"])
    admin = world.staff(Role.coordinator)
    base = f"/v1/studies/{study['id']}/participants/{participant['id']}"
    revoked = world.client.post(f"{base}/tokens/revoke", headers=admin)
    assert revoked.json() == {"revoked": 1}
    assert world.client.get("/v1/me", headers=bearer(token)).status_code == 401

    code = world.client.post(f"{base}/enrollment-code", headers=admin).json()["enrollment_code"]
    token = world.enroll(code)
    assert world.client.get("/v1/me", headers=bearer(token)).status_code == 200
    world.client.post(
        f"{base}/status", json={"status": "withdrawn", "reason": "asked to stop"}, headers=admin
    )
    locked = world.client.get("/v1/me", headers=bearer(token))
    assert locked.status_code == 403
    assert "withdrawn" in locked.json()["detail"]


def test_paused_participant_keeps_using_the_app(world: World) -> None:
    study = world.study()
    participant, token = world.enrolled_participant(study["id"])
    world.client.post(
        f"/v1/studies/{study['id']}/participants/{participant['id']}/status",
        json={"status": "paused", "reason": "holiday"},
        headers=world.staff(Role.admin),
    )
    me = world.client.get("/v1/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json()["status"] == "paused"


def test_tokens_and_codes_are_stored_hashed(world: World) -> None:
    import sqlalchemy as sa

    from app.participants.models import EnrollmentCode, ParticipantToken
    from app.staff.models import ApiKey

    study = world.study()
    participant = world.participant(study["id"])
    token = world.enroll(participant["enrollment_code"])
    key = world.staff_key(Role.researcher)
    with world.session_factory() as session:
        stored = [
            *session.scalars(sa.select(EnrollmentCode.code_hash)),
            *session.scalars(sa.select(ParticipantToken.token_hash)),
            *session.scalars(sa.select(ApiKey.key_hash)),
        ]
    secrets = {participant["enrollment_code"], token, key}
    assert all(len(h) == 64 for h in stored)
    assert not any(secret in h or h in secret for h in stored for secret in secrets)


def test_a_new_secret_key_voids_unused_codes_but_not_tokens_or_keys(
    world: World, settings: Settings
) -> None:
    """What docs/deployment.md warns of when a refused (typed) key is replaced."""
    study = world.study()
    enrolled, token = world.enrolled_participant(study["id"])
    waiting = world.participant(study["id"])
    admin = world.staff(Role.admin)
    rotated = settings.model_copy(update={"secret_key": secrets.token_urlsafe(48)})
    with TestClient(create_app(rotated, world.clock)) as client:
        response = client.post("/v1/enroll", json={"code": waiting["enrollment_code"]})
        assert response.status_code == 404
        assert response.json()["code"] == "enrollment_code_unknown"
        assert client.get("/v1/me", headers=bearer(token)).json()["id"] == enrolled["id"]
        fresh = client.post(
            f"/v1/studies/{study['id']}/participants/{waiting['id']}/enrollment-code",
            headers=admin,
        )
        assert fresh.status_code == 201, fresh.text
        code = fresh.json()["enrollment_code"]
        assert client.post("/v1/enroll", json={"code": code}).status_code == 201

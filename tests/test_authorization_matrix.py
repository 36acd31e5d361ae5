"""Every endpoint x every kind of caller, with the status each must get.

401: no or bad credentials. 403: a known caller who may not do this (wrong role,
participant on a staff endpoint, staff on a participant endpoint, withdrawn participant).
404: another participant's resource, never 403.
"""

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from app.alerts.models import Alert, WebhookStatus
from app.api.main import create_app
from app.care.models import Review
from app.core.config import Settings
from app.decision_rules.models import PolicyPosterior
from app.export.jobs import run_next_job
from app.monitoring.models import CareFlag
from app.protocols.example_files import MINIMAL, example_text
from app.simulation.jobs import run_next_simulation
from app.staff.models import Role
from tests.conftest import World, bearer

STAFF = ("admin", "coordinator", "researcher")
PARTICIPANTS = ("owner", "other", "withdrawn", "revoked")
CALLERS = ("none", *STAFF, *PARTICIPANTS)
ALL_STAFF = frozenset(STAFF)
WRITERS = frozenset({"admin", "coordinator"})
ADMIN = frozenset({"admin"})
RESEARCHERS = frozenset({"admin", "researcher"})


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    ok: int
    kind: str  # "staff", "me" or "public"
    roles: frozenset[str] = frozenset()
    body: dict[str, Any] | None = None
    # For /v1/me resources addressed by id: what another participant gets.
    other: int | None = None
    expected_public: int | None = None
    tags: tuple[str, ...] = field(default=())
    # A raw YAML body (protocol documents), sent instead of ``body``.
    yaml_body: str | None = None


P = "/v1/studies/{study}/participants"
PROTOCOL = example_text(MINIMAL)
CASES = [
    Case("GET", "/healthz", 200, "public", expected_public=200),
    Case("GET", "/readyz", 200, "public", expected_public=200),
    Case("POST", "/v1/enroll", 404, "public", body={"code": "UNKNOWN-CODE"}, expected_public=404),
    Case("POST", "/v1/studies", 201, "staff", WRITERS, {"slug": "new-study", "name": "New"}),
    Case("GET", "/v1/studies", 200, "staff", ALL_STAFF),
    Case("GET", "/v1/studies/{study}", 200, "staff", ALL_STAFF),
    Case("PATCH", "/v1/studies/{study}", 200, "staff", WRITERS, {"name": "Renamed"}),
    Case("DELETE", "/v1/studies/{empty_study}", 204, "staff", ADMIN),
    Case("POST", "/v1/studies/{study}/protocols", 201, "staff", WRITERS, yaml_body=PROTOCOL),
    Case("GET", "/v1/studies/{study}/protocols", 200, "staff", ALL_STAFF),
    Case("GET", "/v1/studies/{study}/protocols/{used_version}", 200, "staff", ALL_STAFF),
    Case(
        "PUT",
        "/v1/studies/{study}/protocols/{draft_version}",
        200,
        "staff",
        WRITERS,
        yaml_body=PROTOCOL,
    ),
    Case(
        "POST",
        "/v1/studies/{study}/protocols/{draft_version}/activate",
        200,
        "staff",
        WRITERS,
        {"apply_to": "all_participants"},
    ),
    Case("POST", "/v1/protocols/validate", 200, "staff", ALL_STAFF, yaml_body=PROTOCOL),
    Case("GET", "/v1/protocols/schema", 200, "staff", ALL_STAFF),
    Case("POST", P, 201, "staff", WRITERS, {"timezone": "Europe/Paris"}),
    Case("GET", P, 200, "staff", ALL_STAFF),
    Case("GET", P + "/{participant}", 200, "staff", ALL_STAFF),
    Case("PATCH", P + "/{participant}", 200, "staff", WRITERS, {"timezone": "Asia/Tokyo"}),
    Case("DELETE", P + "/{invited}", 204, "staff", WRITERS),
    Case(
        "POST",
        P + "/{participant}/status",
        200,
        "staff",
        WRITERS,
        {"status": "paused", "reason": "holiday"},
    ),
    Case("GET", P + "/{participant}/status-history", 200, "staff", ALL_STAFF),
    Case("POST", P + "/{participant}/enrollment-code", 201, "staff", WRITERS),
    Case("POST", P + "/{participant}/tokens/revoke", 200, "staff", WRITERS),
    Case("GET", P + "/{participant}/devices", 200, "staff", ALL_STAFF),
    Case("GET", P + "/{participant}/schedule", 200, "staff", ALL_STAFF),
    Case("POST", P + "/{participant}/test-push", 200, "staff", WRITERS),
    Case("GET", P + "/{participant}/decisions", 200, "staff", ALL_STAFF),
    # 409: the matrix's protocol pools its posterior (no random effects).
    Case("GET", P + "/{participant}/posterior", 409, "staff", ALL_STAFF),
    Case("GET", "/v1/studies/{study}/posteriors", 200, "staff", ALL_STAFF),
    Case("GET", "/v1/studies/{study}/posteriors/current", 200, "staff", ALL_STAFF),
    Case("GET", "/v1/studies/{study}/posteriors/{posterior}", 200, "staff", ALL_STAFF),
    Case(
        "POST",
        "/v1/studies/{study}/decisions/preview",
        200,
        "staff",
        ALL_STAFF,
        {"decision_point": "afternoon", "local_time": "2026-03-02T15:00:00", "tailoring": {}},
    ),
    Case(
        "PATCH",
        P + "/{participant}/devices/{device}",
        200,
        "staff",
        WRITERS,
        {"enabled": False, "reason": "lost phone"},
    ),
    Case("GET", "/v1/studies/{study}/exports", 200, "staff", RESEARCHERS),
    Case("GET", "/v1/studies/{study}/exports/{dataset}", 200, "staff", RESEARCHERS),
    Case("GET", "/v1/studies/{study}/exports/{dataset}/dictionary", 200, "staff", RESEARCHERS),
    Case("GET", "/v1/studies/{study}/fhir", 200, "staff", RESEARCHERS),
    Case("GET", "/v1/studies/{study}/fhir/{resource_type}", 200, "staff", RESEARCHERS),
    Case(
        "POST",
        "/v1/studies/{study}/export-jobs",
        202,
        "staff",
        RESEARCHERS,
        {"dataset": "participants"},
    ),
    Case("GET", "/v1/studies/{study}/export-jobs/{job}", 200, "staff", RESEARCHERS),
    Case("GET", "/v1/studies/{study}/export-jobs/{job}/bundle", 200, "staff", RESEARCHERS),
    Case(
        "POST",
        "/v1/studies/{study}/simulations",
        202,
        "staff",
        WRITERS,
        {"participants": 1, "days": 1},
    ),
    Case("GET", "/v1/studies/{study}/simulations/{simulation}", 200, "staff", ALL_STAFF),
    Case("GET", "/v1/studies/{study}/simulations/{simulation}/bundle", 200, "staff", ALL_STAFF),
    # The matrix's minimal protocol names no proximal outcome: an allowed caller gets 422.
    Case("POST", "/v1/studies/{study}/analyses/mrt", 422, "staff", RESEARCHERS, {"outcome": "x"}),
    Case("GET", "/v1/studies/{study}/flags", 200, "staff", ALL_STAFF),
    Case(
        "POST",
        "/v1/studies/{study}/flags/{flag}/acknowledge",
        200,
        "staff",
        WRITERS,
        {"note": "seen"},
    ),
    Case("GET", P + "/{participant}/trends", 200, "staff", ALL_STAFF),
    Case("GET", "/v1/studies/{study}/reviews", 200, "staff", ALL_STAFF),
    Case(
        "POST",
        "/v1/studies/{study}/reviews/{review}/complete",
        200,
        "staff",
        WRITERS,
        {"outcome": "refer", "note": "Referred to the pain clinic."},
    ),
    Case("GET", "/v1/studies/{study}/inertia", 200, "staff", ALL_STAFF),
    Case("GET", P + "/{participant}/phase", 200, "staff", ALL_STAFF),
    # The matrix's minimal protocol declares no phases: an allowed caller gets 422.
    Case(
        "POST",
        P + "/{participant}/phase",
        422,
        "staff",
        WRITERS,
        {"phase": "intensified", "reason": "No response."},
    ),
    Case("GET", "/v1/me/summary", 200, "me", other=200),
    Case("POST", "/v1/api-keys", 201, "staff", ADMIN, {"name": "k", "role": "researcher"}),
    Case("GET", "/v1/api-keys", 200, "staff", ADMIN),
    Case("DELETE", "/v1/api-keys/{api_key}", 200, "staff", ADMIN),
    Case("GET", "/v1/audit-events", 200, "staff", ADMIN),
    # Prometheus metrics: admins (and the metrics token, tests/test_metrics.py).
    Case("GET", "/metrics", 200, "staff", ADMIN),
    Case("GET", "/v1/me", 200, "me", other=200),
    Case("PATCH", "/v1/me", 200, "me", body={"timezone": "America/Denver"}, other=200),
    Case("DELETE", "/v1/me/token", 204, "me", other=204),
    Case("GET", "/v1/me/devices", 200, "me", other=200),
    Case("POST", "/v1/me/ema-responses", 200, "me", body={"items": []}, other=200),
    Case("GET", "/v1/me/ema-responses", 200, "me", other=200),
    Case("POST", "/v1/me/wearables", 200, "me", body={"items": []}, other=200),
    Case("GET", "/v1/me/wearables", 200, "me", other=200),
    Case("POST", "/v1/me/events", 200, "me", body={"items": []}, other=200),
    Case("GET", "/v1/me/events", 200, "me", other=200),
    Case("GET", P + "/{participant}/ema-responses", 200, "staff", ALL_STAFF),
    Case("GET", P + "/{participant}/wearables", 200, "staff", ALL_STAFF),
    Case("GET", P + "/{participant}/events", 200, "staff", ALL_STAFF),
    Case("GET", "/v1/studies/{study}/alerts", 200, "staff", ALL_STAFF),
    Case(
        "POST",
        "/v1/studies/{study}/alerts/{alert}/acknowledge",
        200,
        "staff",
        WRITERS,
        {"note": "called the participant"},
    ),
    Case("GET", "/v1/studies/{study}/care-team", 200, "staff", ALL_STAFF),
    Case(
        "PUT",
        "/v1/studies/{study}/care-team",
        200,
        "staff",
        WRITERS,
        {"routes": [], "poll_only": True, "poll_only_reason": "polled daily by the nurse"},
    ),
    Case("GET", "/v1/me/prompts", 200, "me", other=200),
    Case(
        "POST",
        "/v1/me/devices",
        201,
        "me",
        body={"push_token": "fresh", "platform": "ios"},
        other=201,
    ),
    Case("PATCH", "/v1/me/devices/{device}", 200, "me", body={"app_version": "2.0"}, other=404),
    Case("DELETE", "/v1/me/devices/{device}", 204, "me", other=404),
]


def expected(case: Case, caller: str) -> int:
    if case.kind == "public":
        assert case.expected_public is not None
        return case.expected_public
    if caller in ("none", "revoked"):
        return 401
    if caller == "withdrawn":
        return 403
    if case.kind == "staff":
        return case.ok if caller in case.roles else 403
    # a participant endpoint
    if caller in STAFF:
        return 403
    if caller == "other":
        assert case.other is not None
        return case.other
    return case.ok


def _finished_export_job(world: World, study_id: str, admin: dict[str, str]) -> str:
    job = world.client.post(
        f"/v1/studies/{study_id}/export-jobs", json={"dataset": "participants"}, headers=admin
    ).json()
    export_dir = world.client.app.state.settings.export_dir  # type: ignore[attr-defined]
    assert run_next_job(world.session_factory, world.clock, export_dir, "matrix")
    job_id: str = job["id"]
    return job_id


def _finished_simulation(world: World, study_id: str, admin: dict[str, str]) -> str:
    job = world.client.post(
        f"/v1/studies/{study_id}/simulations", json={"participants": 1, "days": 1}, headers=admin
    ).json()
    export_dir = world.client.app.state.settings.export_dir  # type: ignore[attr-defined]
    assert run_next_simulation(world.session_factory, world.clock, export_dir, "matrix")
    job_id: str = job["id"]
    return job_id


def _flag(world: World, participant: dict[str, Any]) -> str:
    with world.session_factory() as session:
        flag = CareFlag(
            participant_id=uuid.UUID(participant["id"]),
            study_id=uuid.UUID(participant["study_id"]),
            kind="unreachable",
            detail={},
            raised_at=world.clock.now(),
        )
        session.add(flag)
        session.commit()
        return str(flag.id)


def _review(world: World, participant: dict[str, Any]) -> str:
    now = world.clock.now()
    with world.session_factory() as session:
        review = Review(
            participant_id=uuid.UUID(participant["id"]),
            study_id=uuid.UUID(participant["study_id"]),
            trigger="cadence",
            protocol_version=1,
            due_at=now,
            overdue_at=now,
            created_at=now,
        )
        session.add(review)
        session.commit()
        return str(review.id)


def _posterior(world: World, study_id: str) -> str:
    now = world.clock.now()
    with world.session_factory() as session:
        posterior = PolicyPosterior(
            study_id=uuid.UUID(study_id),
            protocol_version=1,
            scheduled_for=now,
            computed_at=now,
            inputs_to=now,
            rows_used=0,
            rows_total=0,
            noise_variance=1.0,
            mean=[0.0, 0.0],
            covariance=[[1.0, 0.0], [0.0, 1.0]],
            inputs=[],
        )
        session.add(posterior)
        session.commit()
        return str(posterior.id)


def _alert(world: World, study_id: str, participant_id: str) -> str:
    now = world.clock.now()
    with world.session_factory() as session:
        alert = Alert(
            study_id=uuid.UUID(study_id),
            participant_id=uuid.UUID(participant_id),
            questionnaire_id="daily",
            item_id="pain",
            severity="high",
            message="Pain 10/10",
            value=10,
            answered_at=now,
            created_at=now,
            webhook_status=WebhookStatus.not_configured,
        )
        session.add(alert)
        session.commit()
        return str(alert.id)


def setup(world: World) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """A study with participants of every kind; returns path values and caller headers."""
    client, admin = world.client, world.staff(Role.admin)
    study = world.study()
    empty = world.study()
    # Version 1 is used by the participants below; version 2 is an unused draft.
    for _ in range(2):
        uploaded = client.post(
            f"/v1/studies/{study['id']}/protocols",
            content=PROTOCOL,
            headers={**admin, "Content-Type": "application/yaml"},
        )
        assert uploaded.status_code == 201, uploaded.text
    owner, owner_token = world.enrolled_participant(study["id"])
    _, other_token = world.enrolled_participant(study["id"])
    withdrawn, withdrawn_token = world.enrolled_participant(study["id"])
    _, revoked_token = world.enrolled_participant(study["id"])
    invited = world.participant(study["id"])
    device = client.post(
        "/v1/me/devices",
        json={"push_token": "owner-token", "platform": "android"},
        headers=bearer(owner_token),
    ).json()
    client.post(
        "/v1/me/devices",
        json={"push_token": "other-token", "platform": "ios"},
        headers=bearer(other_token),
    )
    assert (
        client.post(
            f"/v1/studies/{study['id']}/participants/{withdrawn['id']}/status",
            json={"status": "withdrawn", "reason": "moved away"},
            headers=admin,
        ).status_code
        == 200
    )
    assert client.delete("/v1/me/token", headers=bearer(revoked_token)).status_code == 204
    spare_key = client.post(
        "/v1/api-keys", json={"name": "spare", "role": "researcher"}, headers=admin
    ).json()
    alert = _alert(world, study["id"], owner["id"])
    values = {
        "alert": alert,
        "study": study["id"],
        "empty_study": empty["id"],
        "participant": owner["id"],
        "invited": invited["id"],
        "device": device["id"],
        "api_key": spare_key["id"],
        "used_version": "1",
        "draft_version": "2",
        "dataset": "participants",
        "resource_type": "Observation",
        "job": _finished_export_job(world, study["id"], admin),
        "simulation": _finished_simulation(world, study["id"], admin),
        "flag": _flag(world, owner),
        "review": _review(world, owner),
        "posterior": _posterior(world, study["id"]),
    }
    headers = {
        "none": {},
        **{role: world.staff(Role(role)) for role in STAFF},
        "owner": bearer(owner_token),
        "other": bearer(other_token),
        "withdrawn": bearer(withdrawn_token),
        "revoked": bearer(revoked_token),
    }
    return values, headers


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.method} {c.path}")
def test_authorization(world: World, case: Case) -> None:
    values, headers = setup(world)
    mismatches = []
    for caller in CALLERS:
        if case.yaml_body is not None:
            response = world.client.request(
                case.method,
                case.path.format(**values),
                content=case.yaml_body,
                headers={**headers[caller], "Content-Type": "application/yaml"},
            )
        else:
            response = world.client.request(
                case.method, case.path.format(**values), json=case.body, headers=headers[caller]
            )
        want = expected(case, caller)
        if response.status_code != want:
            mismatches.append(f"{caller}: got {response.status_code}, want {want}: {response.text}")
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["status"] == response.status_code
        if case.method != "GET" and response.status_code < 300:
            # The call changed something: the next caller gets a fresh world.
            world.reset()
            values, headers = setup(world)
    assert not mismatches, "\n".join(mismatches)


def test_api_key_header_is_accepted_too(world: World) -> None:
    key = world.staff_key(Role.researcher)
    assert world.client.get("/v1/studies", headers={"X-API-Key": key}).status_code == 200
    bad = world.client.get("/v1/studies", headers={"X-API-Key": "ksk_not-a-real-key"})
    assert bad.status_code == 401
    assert "WWW-Authenticate" in bad.headers


def test_matrix_covers_every_route(settings: Settings) -> None:
    """A new endpoint must be added to the matrix above."""
    normalize = {
        "{study_id}": "{}",
        "{participant_id}": "{}",
        "{device_id}": "{}",
        "{key_id}": "{}",
        "{study}": "{}",
        "{empty_study}": "{}",
        "{participant}": "{}",
        "{invited}": "{}",
        "{device}": "{}",
        "{api_key}": "{}",
        "{version}": "{}",
        "{used_version}": "{}",
        "{draft_version}": "{}",
        "{dataset}": "{}",
        "{resource_type}": "{}",
        "{job}": "{}",
        "{job_id}": "{}",
        "{flag}": "{}",
        "{flag_id}": "{}",
        "{review}": "{}",
        "{review_id}": "{}",
        "{alert_id}": "{}",
        "{alert}": "{}",
        "{simulation}": "{}",
        "{posterior_id}": "{}",
        "{posterior}": "{}",
    }

    def norm(path: str) -> str:
        for placeholder, replacement in normalize.items():
            path = path.replace(placeholder, replacement)
        return path

    routes = {
        (method.upper(), norm(path))
        for path, operations in create_app(settings).openapi()["paths"].items()
        for method in operations
    }
    covered = {(c.method, norm(c.path)) for c in CASES}
    assert routes == covered

"""Protocol versions through the real API: upload, validation errors, versions, immutability."""

import json
from typing import Any

import yaml

from app.protocols.example_files import CHRONIC_PAIN_JITAI, MINIMAL, example_text
from app.staff.models import Role
from tests.conftest import World, bearer

YAML = {"Content-Type": "application/yaml"}


def _minimal() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(example_text(MINIMAL))
    return document


def _upload(
    world: World,
    study_id: str,
    body: str | bytes,
    *,
    content_type: str = "application/yaml",
    **params: str,
) -> Any:
    return world.client.post(
        f"/v1/studies/{study_id}/protocols",
        content=body,
        params=params,
        headers={**world.staff(Role.coordinator), "Content-Type": content_type},
    )


def test_first_upload_becomes_version_1_and_active(world: World) -> None:
    study = world.study()
    response = _upload(world, study["id"], example_text(CHRONIC_PAIN_JITAI), note="first")
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["version"], body["active"], body["locked_at"], body["note"]) == (
        1,
        True,
        None,
        "first",
    )
    admin = world.staff(Role.admin)
    assert (
        world.client.get(f"/v1/studies/{study['id']}", headers=admin).json()[
            "active_protocol_version"
        ]
        == 1
    )
    detail = world.client.get(
        f"/v1/studies/{study['id']}/protocols/1", headers=world.staff(Role.researcher)
    ).json()
    assert detail["source"] == example_text(CHRONIC_PAIN_JITAI)
    assert detail["document"]["kairos_protocol"] == 1


def test_json_upload_is_the_next_version_and_not_active_until_asked(world: World) -> None:
    study = world.study()
    assert _upload(world, study["id"], example_text(MINIMAL)).status_code == 201
    second = _upload(
        world, study["id"], json.dumps(_minimal()), content_type="application/json"
    ).json()
    assert (second["version"], second["active"]) == (2, False)
    third = _upload(world, study["id"], example_text(MINIMAL), activate="true").json()
    assert (third["version"], third["active"]) == (3, True)
    listed = world.client.get(
        f"/v1/studies/{study['id']}/protocols", headers=world.staff(Role.researcher)
    ).json()["items"]
    assert [(v["version"], v["active"]) for v in listed] == [(1, False), (2, False), (3, True)]
    # The same content normalizes to the same hash, whichever syntax it came in.
    assert len({v["content_hash"] for v in listed}) == 1


def test_invalid_protocol_lists_every_problem_with_its_path(world: World) -> None:
    study = world.study()
    document = _minimal()
    document["policy"]["rules"][0]["when"] = "pain_interfernce >= 6"
    document["study"]["default_timezone"] = "Mars/Olympus_Mons"
    response = _upload(world, study["id"], yaml.safe_dump(document))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "protocol_invalid"
    fields = {e["field"]: e["message"] for e in problem["errors"]}
    assert "undefined variable 'pain_interfernce'" in fields["body.policy.rules[0].when"]
    assert "Mars/Olympus_Mons" in fields["body.study.default_timezone"]
    # Nothing was stored.
    listed = world.client.get(
        f"/v1/studies/{study['id']}/protocols", headers=world.staff(Role.admin)
    ).json()
    assert listed["items"] == []


def test_yaml_syntax_error_names_the_line(world: World) -> None:
    response = _upload(world, world.study()["id"], "kairos_protocol: 1\nstudy: [unclosed\n")
    assert response.status_code == 422
    assert "line" in response.json()["errors"][0]["message"]


def test_bad_media_type_empty_and_oversized_bodies(world: World) -> None:
    study_id = world.study()["id"]
    wrong = _upload(world, study_id, "x", content_type="application/xml")
    assert wrong.status_code == 415
    assert "application/yaml" in wrong.json()["detail"]
    assert _upload(world, study_id, "  \n").status_code == 422
    too_big = _upload(world, study_id, "# " + "x" * (1024 * 1024 + 10))
    assert too_big.status_code == 413
    assert "1048576 bytes" in too_big.json()["detail"]


def test_unknown_study_and_version_are_404(world: World) -> None:
    missing = "019a8b5e-0000-7000-8000-000000000000"
    assert _upload(world, missing, example_text(MINIMAL)).status_code == 404
    study_id = world.study()["id"]
    got = world.client.get(f"/v1/studies/{study_id}/protocols/7", headers=world.staff(Role.admin))
    assert got.status_code == 404
    assert got.json()["code"] == "protocol_not_found"


def test_a_used_version_is_immutable_and_an_unused_one_can_change(world: World) -> None:
    study_id = world.study()["id"]
    coordinator = {**world.staff(Role.coordinator), **YAML}
    assert _upload(world, study_id, example_text(MINIMAL)).status_code == 201
    assert _upload(world, study_id, example_text(MINIMAL)).status_code == 201
    participant = world.participant(study_id)
    assert participant["protocol_version"] == 1
    v1 = f"/v1/studies/{study_id}/protocols/1"
    assert world.client.get(v1, headers=coordinator).json()["locked_at"] is not None

    refused = world.client.put(v1, content=example_text(MINIMAL), headers=coordinator)
    assert refused.status_code == 409
    assert refused.json()["code"] == "protocol_version_locked"

    changed = _minimal()
    changed["study"]["name"] = "Renamed before anyone used it"
    replaced = world.client.put(
        f"/v1/studies/{study_id}/protocols/2",
        content=yaml.safe_dump(changed),
        headers=coordinator,
        params={"note": "typo fixed"},
    )
    assert replaced.status_code == 200, replaced.text
    detail = world.client.get(f"/v1/studies/{study_id}/protocols/2", headers=coordinator).json()
    assert detail["document"]["study"]["name"] == "Renamed before anyone used it"
    assert detail["note"] == "typo fixed"
    invalid = world.client.put(
        f"/v1/studies/{study_id}/protocols/2", content="kairos_protocol: 2\n", headers=coordinator
    )
    assert invalid.status_code == 422


def test_activation_moves_new_or_all_participants(world: World) -> None:
    study_id = world.study()["id"]
    admin = world.staff(Role.admin)
    _upload(world, study_id, example_text(MINIMAL))
    staying, _ = world.enrolled_participant(study_id)
    leaving, _ = world.enrolled_participant(study_id)
    world.client.post(
        f"/v1/studies/{study_id}/participants/{leaving['id']}/status",
        json={"status": "withdrawn", "reason": "moved away"},
        headers=admin,
    )
    _upload(world, study_id, example_text(MINIMAL))

    activated = world.client.post(
        f"/v1/studies/{study_id}/protocols/2/activate", json={}, headers=admin
    )
    assert activated.json() == {"active_protocol_version": 2, "participants_moved": 0}
    assert world.participant(study_id)["protocol_version"] == 2

    amended = world.client.post(
        f"/v1/studies/{study_id}/protocols/2/activate",
        json={"apply_to": "all_participants"},
        headers=admin,
    )
    assert amended.json() == {"active_protocol_version": 2, "participants_moved": 1}

    def version_of(participant_id: str) -> int:
        url = f"/v1/studies/{study_id}/participants/{participant_id}"
        result: int = world.client.get(url, headers=admin).json()["protocol_version"]
        return result

    assert version_of(staying["id"]) == 2
    assert version_of(leaving["id"]) == 1  # a withdrawn participant's record does not move
    assert (
        world.client.post(
            f"/v1/studies/{study_id}/protocols/9/activate", json={}, headers=admin
        ).status_code
        == 404
    )


def test_validate_stores_nothing_and_schema_is_served(world: World) -> None:
    researcher = world.staff(Role.researcher)
    valid = world.client.post(
        "/v1/protocols/validate", content=example_text(MINIMAL), headers={**researcher, **YAML}
    )
    assert valid.status_code == 200
    assert valid.json()["valid"] is True
    invalid = world.client.post(
        "/v1/protocols/validate", json={"kairos_protocol": 1}, headers=researcher
    )
    assert invalid.status_code == 422
    assert {e["field"] for e in invalid.json()["errors"]} >= {"body.study", "body.policy"}
    schema = world.client.get("/v1/protocols/schema", headers=researcher).json()
    assert {"study", "policy", "questionnaires"} <= set(schema["properties"])


def test_participants_cannot_touch_protocols(world: World) -> None:
    study_id = world.study()["id"]
    _, token = world.enrolled_participant(study_id)
    assert (
        world.client.get(f"/v1/studies/{study_id}/protocols", headers=bearer(token)).status_code
        == 403
    )


def test_uploads_are_audited(world: World) -> None:
    study_id = world.study()["id"]
    _upload(world, study_id, example_text(MINIMAL))
    events = world.client.get("/v1/audit-events", headers=world.staff(Role.admin)).json()["items"]
    actions = [e["action"] for e in events]
    assert "protocol.upload" in actions
    assert "protocol.activate" in actions

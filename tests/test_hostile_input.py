"""Hostile input gets a 4xx problem naming the field, on both databases, and stores nothing.

Each case below once answered 500 (issue 12): integers beyond the database's range, NUL
characters (PostgreSQL stores none), lone surrogates (they cannot be encoded as UTF-8),
deeply nested documents, datetimes that leave the calendar in UTC, bodies the JSON parser
refuses, and a device update that collides with the participant's other device.
"""

import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from app.staff.models import Role
from tests.conftest import World, bearer
from tests.support.ingest import Phone, evening, morning, pain_study, phone

JSON = {"Content-Type": "application/json"}
INT4_OVER = 2**31
INT8_OVER = 2**63


def _problem(response: Response, status: int, field: str, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    fields = [e["field"] for e in body.get("errors", [])]
    assert field in fields, body
    if code is not None:
        assert body["code"] == code, body


def _raw(text: str) -> bytes:
    """JSON text as bytes, as a hostile client may send it (escapes kept)."""
    return text.encode("utf-8")


@pytest.fixture
def app_phone(world: World) -> Phone:
    return phone(world, pain_study(world))


# -- the participant's other device's push token -------------------------------------------


def test_device_update_to_the_token_of_another_own_device_is_a_409(
    world: World, app_phone: Phone
) -> None:
    client, headers = world.client, app_phone.headers
    first = client.post(
        "/v1/me/devices", json={"push_token": "token-one", "platform": "android"}, headers=headers
    ).json()
    second = client.post(
        "/v1/me/devices", json={"push_token": "token-two", "platform": "ios"}, headers=headers
    ).json()
    response = client.patch(
        f"/v1/me/devices/{second['id']}",
        json={"push_token": "token-one", "app_version": "2.0"},
        headers=headers,
    )
    _problem(response, 409, "body.push_token", "push_token_registered")
    devices = {d["id"]: d for d in client.get("/v1/me/devices", headers=headers).json()["items"]}
    # Nothing was stored half-way: both devices are as they were.
    assert devices[first["id"]]["push_token_suffix"] == "…oken-one"
    assert devices[second["id"]]["push_token_suffix"] == "…oken-two"
    assert devices[second["id"]]["app_version"] is None
    assert all(d["enabled"] for d in devices.values())


# -- integers beyond the database's range ---------------------------------------------------


@pytest.mark.parametrize("number", [INT4_OVER, INT8_OVER, 0])
def test_protocol_version_beyond_int4_in_paths(world: World, number: int) -> None:
    study_id = pain_study(world)
    admin = world.staff(Role.admin)
    base = f"/v1/studies/{study_id}/protocols/{number}"
    _problem(world.client.get(base, headers=admin), 422, "path.version")
    put = world.client.put(
        base, content=b"kairos_protocol: 1\n", headers={**admin, "Content-Type": "text/yaml"}
    )
    _problem(put, 422, "path.version")
    _problem(world.client.post(f"{base}/activate", json={}, headers=admin), 422, "path.version")


@pytest.mark.parametrize("number", [INT4_OVER, INT8_OVER])
def test_protocol_version_beyond_int4_in_exports_and_analyses(world: World, number: int) -> None:
    study_id = pain_study(world)
    admin = world.staff(Role.admin)
    for path in ("exports/decisions", "exports/decisions/dictionary"):
        response = world.client.get(
            f"/v1/studies/{study_id}/{path}", params={"protocol_version": number}, headers=admin
        )
        _problem(response, 422, "query.protocol_version")
    job = world.client.post(
        f"/v1/studies/{study_id}/export-jobs",
        json={"dataset": "decisions", "protocol_version": number},
        headers=admin,
    )
    _problem(job, 422, "body.protocol_version")
    mrt = world.client.post(
        f"/v1/studies/{study_id}/analyses/mrt",
        json={"outcome": "next_interference", "protocol_version": number},
        headers=admin,
    )
    _problem(mrt, 422, "body.protocol_version")


def test_questionnaire_version_beyond_int4_rejects_the_item_only(app_phone: Phone) -> None:
    now = app_phone.client.app.state.clock.now()  # type: ignore[attr-defined]
    good = morning(now - timedelta(minutes=5))
    bad = {**morning(now - timedelta(minutes=4)), "questionnaire_version": INT8_OVER}
    result = app_phone.post("ema-responses", [good, bad])
    assert [i["status"] for i in result["items"]] == ["accepted", "rejected"]
    assert result["items"][1]["errors"][0]["field"] == "body.items[1].questionnaire_version"


# -- NUL characters (PostgreSQL stores none) ------------------------------------------------


def test_nul_in_a_study_name_is_a_422(world: World) -> None:
    admin = world.staff(Role.admin)
    response = world.client.post(
        "/v1/studies", json={"slug": "nul-study", "name": "A\x00study"}, headers=admin
    )
    _problem(response, 422, "body.name", "validation_error")
    assert world.client.get("/v1/studies", headers=admin).json()["items"] == []


def test_nul_in_a_push_token_is_a_422(world: World, app_phone: Phone) -> None:
    client, headers = world.client, app_phone.headers
    created = client.post(
        "/v1/me/devices", json={"push_token": "t\x00ken", "platform": "android"}, headers=headers
    )
    _problem(created, 422, "body.push_token")
    device = client.post(
        "/v1/me/devices", json={"push_token": "token", "platform": "android"}, headers=headers
    ).json()
    updated = client.patch(
        f"/v1/me/devices/{device['id']}", json={"push_token": "t\x00ken"}, headers=headers
    )
    _problem(updated, 422, "body.push_token")
    assert len(client.get("/v1/me/devices", headers=headers).json()["items"]) == 1


def test_nul_in_query_filters_is_a_422(world: World, app_phone: Phone) -> None:
    admin = world.staff(Role.admin)
    response = world.client.get("/v1/audit-events", params={"action": "a\x00b"}, headers=admin)
    _problem(response, 422, "query.action")
    response = world.client.get(
        "/v1/me/ema-responses", params={"questionnaire_id": "m\x00"}, headers=app_phone.headers
    )
    _problem(response, 422, "query.questionnaire_id")


def test_nul_in_a_path_is_a_422(world: World) -> None:
    study_id = pain_study(world)
    response = world.client.get(
        f"/v1/studies/{study_id}/exports/dec%00isions", headers=world.staff(Role.admin)
    )
    _problem(response, 422, "path.dataset")


# -- lone surrogates (not encodable as UTF-8) -----------------------------------------------


def test_lone_surrogate_in_the_time_zone_is_a_422(world: World, app_phone: Phone) -> None:
    response = world.client.patch(
        "/v1/me", content=_raw('{"timezone": "\\ud800"}'), headers={**app_phone.headers, **JSON}
    )
    _problem(response, 422, "body.timezone", "validation_error")
    assert world.client.get("/v1/me", headers=app_phone.headers).json()["timezone"] == (
        "Europe/Berlin"
    )


def test_lone_surrogate_in_a_study_name_is_a_422(world: World) -> None:
    admin = world.staff(Role.admin)
    response = world.client.post(
        "/v1/studies",
        content=_raw('{"slug": "surrogate", "name": "x\\udfff"}'),
        headers={**admin, **JSON},
    )
    _problem(response, 422, "body.name")


def _post_raw_items(phone_: Phone, items: list[str]) -> dict[str, Any]:
    body = '{"items": [' + ", ".join(items) + "]}"
    response = phone_.client.post(
        "/v1/me/ema-responses", content=_raw(body), headers={**phone_.headers, **JSON}
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_lone_surrogate_in_an_ema_client_id_rejects_that_item_only(app_phone: Phone) -> None:
    now = app_phone.client.app.state.clock.now()  # type: ignore[attr-defined]
    good = json.dumps(morning(now - timedelta(minutes=5)))
    bad = json.dumps(morning(now - timedelta(minutes=4), client_id="PLACEHOLDER"))
    bad = bad.replace("PLACEHOLDER", "id-\\ud800")
    result = _post_raw_items(app_phone, [good, bad])
    assert [i["status"] for i in result["items"]] == ["accepted", "rejected"]
    rejected = result["items"][1]
    assert rejected["client_id"] is None  # not echoed: it cannot be encoded
    assert rejected["errors"][0]["field"] == "body.items[1].client_id"


@pytest.mark.parametrize("text", ["\\ud800", "\\udc00 after", "\\u0000"])
def test_bad_text_in_a_free_text_answer_rejects_that_item_only(app_phone: Phone, text: str) -> None:
    now = app_phone.client.app.state.clock.now()  # type: ignore[attr-defined]
    good = json.dumps(evening(now - timedelta(minutes=5), note="fine"))
    bad = json.dumps(evening(now - timedelta(minutes=4), note="PLACEHOLDER"))
    bad = bad.replace("PLACEHOLDER", text)
    result = _post_raw_items(app_phone, [good, bad])
    assert [i["status"] for i in result["items"]] == ["accepted", "rejected"]
    assert result["items"][1]["errors"][0]["field"] == "body.items[1].answers.note"
    stored = app_phone.client.get("/v1/me/ema-responses", headers=app_phone.headers).json()
    assert len(stored["items"]) == 1


def test_lone_surrogate_in_participant_attributes_is_a_422(world: World) -> None:
    study_id = pain_study(world)
    response = world.client.post(
        f"/v1/studies/{study_id}/participants",
        content=_raw('{"timezone": "Europe/Berlin", "attributes": {"pain_phenotype": "\\ud83d"}}'),
        headers={**world.staff(Role.admin), **JSON},
    )
    _problem(response, 422, "body.attributes.pain_phenotype")


# -- deeply nested protocol documents -------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/yaml", b"[" * 100_000),
        ("application/yaml", b"a:\n" + b"".join(b"  " * i + b"b:\n" for i in range(1, 300))),
        ("application/json", b"[" * 100_000),
        ("application/json", b'{"a": ' * 5_000 + b"1" + b"}" * 5_000),
    ],
)
def test_deeply_nested_protocol_is_a_422_naming_the_body(
    world: World, content_type: str, body: bytes
) -> None:
    study_id = world.study()["id"]
    headers = {**world.staff(Role.admin), "Content-Type": content_type}
    for path in (f"/v1/studies/{study_id}/protocols", "/v1/protocols/validate"):
        response = world.client.post(path, content=body, headers=headers)
        _problem(response, 422, "body", "protocol_invalid")
        assert "deep" in response.json()["detail"] + json.dumps(response.json()["errors"])


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", '{"kairos_protocol": 1, "study": {"name": "\\u0000"}}'),
        ("application/json", '{"kairos_protocol": 1, "study": {"name": "\\ud800"}}'),
        ("application/yaml", 'kairos_protocol: 1\nstudy:\n  name: "a\\0b"\n'),
        ("application/yaml", 'kairos_protocol: 1\nstudy:\n  name: "a\\ud800"\n'),
    ],
)
def test_bad_text_in_a_protocol_document_names_its_path(
    world: World, content_type: str, body: str
) -> None:
    headers = {**world.staff(Role.admin), "Content-Type": content_type}
    response = world.client.post("/v1/protocols/validate", content=_raw(body), headers=headers)
    _problem(response, 422, "body.study.name", "protocol_invalid")


# -- datetimes that leave the calendar in UTC -----------------------------------------------

EDGES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"]


@pytest.mark.parametrize("edge", EDGES)
def test_calendar_edge_in_since_and_until_is_a_422(
    world: World, app_phone: Phone, edge: str
) -> None:
    admin = world.staff(Role.admin)
    staff_base = f"/v1/studies/{app_phone.study_id}/participants/{app_phone.id}"
    for name in ("since", "until"):
        for path, headers in (
            ("/v1/me/ema-responses", app_phone.headers),
            ("/v1/me/wearables", app_phone.headers),
            ("/v1/me/events", app_phone.headers),
            (f"{staff_base}/ema-responses", admin),
            (f"{staff_base}/wearables", admin),
            (f"{staff_base}/events", admin),
        ):
            response = world.client.get(path, params={name: edge}, headers=headers)
            _problem(response, 422, f"query.{name}")


@pytest.mark.parametrize("edge", EDGES)
def test_calendar_edge_in_exports_and_analyses_is_a_422(
    world: World, app_phone: Phone, edge: str
) -> None:
    admin = world.staff(Role.admin)
    base = f"/v1/studies/{app_phone.study_id}"
    for name in ("start", "end"):
        response = world.client.get(f"{base}/exports/decisions", params={name: edge}, headers=admin)
        _problem(response, 422, f"query.{name}")
        job = world.client.post(
            f"{base}/export-jobs", json={"dataset": "decisions", name: edge}, headers=admin
        )
        _problem(job, 422, f"body.{name}")
        mrt = world.client.post(
            f"{base}/analyses/mrt", json={"outcome": "next_interference", name: edge}, headers=admin
        )
        _problem(mrt, 422, f"body.{name}")


def test_calendar_edge_in_a_phone_time_rejects_that_item(app_phone: Phone) -> None:
    item = {**morning(app_phone.client.app.state.clock.now()), "answered_at": EDGES[0]}  # type: ignore[attr-defined]
    result = app_phone.post("ema-responses", [item])
    assert result["items"][0]["status"] == "rejected"
    assert result["items"][0]["errors"][0]["field"] == "body.items[0].answered_at"


# -- bodies the JSON parser refuses ---------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"timezone": "Europe/\xff\xfe"}', "application/json"),
        (b'{"timezone": ' + b"[" * 1_000 + b"]" * 1_000 + b"}", "application/json"),
        (b'{"timezone": ' + b"[" * 100_000 + b"}", "application/json"),
        (b'{"timezone": ' + b"9" * 5_000 + b"}", "application/json"),
        ('{"timezone": "Europe/Zürich"}'.encode("latin-1"), "application/json; charset=latin-1"),
        (b'{"timezone": "Europe/Berlin"', "application/json"),
    ],
)
def test_bodies_the_json_parser_refuses_are_422_problems(
    client: TestClient, world: World, app_phone: Phone, body: bytes, content_type: str
) -> None:
    response = client.patch(
        "/v1/me", content=body, headers={**app_phone.headers, "Content-Type": content_type}
    )
    _problem(response, 422, "body", "validation_error")
    assert client.get("/v1/me", headers=app_phone.headers).json()["timezone"] == "Europe/Berlin"


def test_json_parse_errors_need_no_credentials_to_be_422(client: TestClient) -> None:
    response = client.post(
        "/v1/enroll", content=b'{"code": "\xff"}', headers={"Content-Type": "application/json"}
    )
    _problem(response, 422, "body", "validation_error")


def test_deeply_nested_json_inside_any_field_is_a_422(world: World, app_phone: Phone) -> None:
    study_id = app_phone.study_id
    deep = "[" * 500 + "]" * 500
    response = world.client.post(
        f"/v1/studies/{study_id}/participants",
        content=_raw('{"timezone": "Europe/Berlin", "attributes": {"x": ' + deep + "}}"),
        headers={**world.staff(Role.admin), **JSON},
    )
    assert response.status_code == 422, response.text
    now = app_phone.client.app.state.clock.now()  # type: ignore[attr-defined]
    item = json.dumps(evening(now - timedelta(minutes=5), note="PLACEHOLDER"))
    result = _post_raw_items(app_phone, [item.replace('"PLACEHOLDER"', deep)])
    assert result["items"][0]["status"] == "rejected"


def test_bearer_unknown_token_with_odd_bytes_is_a_401(client: TestClient) -> None:
    response = client.get("/v1/me", headers=bearer("kpt_\x7f\x01"))
    assert response.status_code == 401


@pytest.mark.parametrize("edge", ["0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59.999999Z"])
def test_the_first_and_last_instants_are_accepted(
    world: World, app_phone: Phone, edge: str
) -> None:
    admin = world.staff(Role.admin)
    base = f"/v1/studies/{app_phone.study_id}"
    for name in ("since", "until"):
        response = world.client.get(
            "/v1/me/ema-responses", params={name: edge}, headers=app_phone.headers
        )
        assert response.status_code == 200, response.text
    for name in ("start", "end"):
        for dataset in ("decisions", "ema_answers", "wearables", "engagement"):
            response = world.client.get(
                f"{base}/exports/{dataset}", params={name: edge}, headers=admin
            )
            assert response.status_code in (200, 404), response.text
        mrt = world.client.post(
            f"{base}/analyses/mrt", json={"outcome": "next_interference", name: edge}, headers=admin
        )
        assert mrt.status_code < 500, mrt.text


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", str(2**64), str(-(2**63) - 1)])
def test_numbers_free_form_data_cannot_hold_are_a_422(world: World, value: str) -> None:
    # Python's JSON reader accepts NaN and Infinity; no JSON writer, JSONB column or CEL
    # integer holds them (a 500 when the response was written, or on PostgreSQL).
    study_id = world.study()["id"]
    response = world.client.post(
        f"/v1/studies/{study_id}/participants",
        content=_raw('{"timezone": "Europe/Berlin", "attributes": {"age": ' + value + "}}"),
        headers={**world.staff(Role.admin), **JSON},
    )
    _problem(response, 422, "body.attributes.age")

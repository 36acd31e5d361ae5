from app.staff.models import Role
from tests.conftest import World


def test_study_crud(world: World) -> None:
    coordinator = world.staff(Role.coordinator)
    created = world.client.post(
        "/v1/studies",
        json={"slug": "back-pain", "name": "Back pain", "description": "MRT"},
        headers=coordinator,
    )
    assert created.status_code == 201
    study = created.json()
    assert study["status"] == "draft"
    assert study["created_at"] == "2026-03-01T12:00:00Z"

    fetched = world.client.get(f"/v1/studies/{study['id']}", headers=world.staff(Role.researcher))
    assert fetched.json() == study

    updated = world.client.patch(
        f"/v1/studies/{study['id']}",
        json={"status": "active", "name": "Back pain MRT"},
        headers=coordinator,
    ).json()
    assert (updated["status"], updated["name"], updated["slug"]) == (
        "active",
        "Back pain MRT",
        "back-pain",
    )

    admin = world.staff(Role.admin)
    assert world.client.delete(f"/v1/studies/{study['id']}", headers=admin).status_code == 204
    gone = world.client.get(f"/v1/studies/{study['id']}", headers=admin)
    assert gone.status_code == 404
    assert gone.json()["code"] == "study_not_found"


def test_duplicate_slug_is_a_conflict_naming_the_field(world: World) -> None:
    world.study("same")
    response = world.client.post(
        "/v1/studies", json={"slug": "same", "name": "x"}, headers=world.staff(Role.admin)
    )
    assert response.status_code == 409
    assert response.json()["errors"][0]["field"] == "body.slug"
    other = world.study("other")
    clash = world.client.patch(
        f"/v1/studies/{other['id']}", json={"slug": "same"}, headers=world.staff(Role.admin)
    )
    assert clash.status_code == 409


def test_invalid_study_fields_are_each_named(world: World) -> None:
    response = world.client.post(
        "/v1/studies",
        json={"slug": "Not A Slug", "name": "", "status": "running", "colour": "red"},
        headers=world.staff(Role.admin),
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["title"] == "Invalid request"
    fields = {e["field"] for e in problem["errors"]}
    assert fields == {"body.slug", "body.name", "body.status", "body.colour"}
    assert all(e["message"] for e in problem["errors"])


def test_patch_refuses_null_for_required_fields(world: World) -> None:
    study = world.study()
    response = world.client.patch(
        f"/v1/studies/{study['id']}", json={"name": None}, headers=world.staff(Role.admin)
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.name"


def test_study_with_participants_cannot_be_deleted(world: World) -> None:
    study = world.study()
    world.participant(study["id"])
    response = world.client.delete(f"/v1/studies/{study['id']}", headers=world.staff(Role.admin))
    assert response.status_code == 409
    assert response.json()["code"] == "study_has_participants"


def test_list_paginates_in_creation_order(world: World) -> None:
    slugs = [f"study-{i:02d}" for i in range(7)]
    for slug in slugs:
        world.study(slug)
    headers = world.staff(Role.researcher)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = world.client.get("/v1/studies", params=params, headers=headers).json()
        seen += [s["slug"] for s in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == slugs
    assert pages == 3


def test_list_filters_by_status(world: World) -> None:
    world.study("on", status="active")
    world.study("off")
    page = world.client.get(
        "/v1/studies", params={"status": "active"}, headers=world.staff(Role.admin)
    ).json()
    assert [s["slug"] for s in page["items"]] == ["on"]


def test_bad_pagination_parameters_are_422(world: World) -> None:
    headers = world.staff(Role.admin)
    for params in ({"limit": 0}, {"limit": 501}, {"cursor": "not-a-uuid"}):
        response = world.client.get("/v1/studies", params=params, headers=headers)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"].startswith("query.")


def test_malformed_ids_and_bodies_are_422_not_500(world: World) -> None:
    headers = world.staff(Role.admin)
    assert world.client.get("/v1/studies/123", headers=headers).status_code == 422
    raw = world.client.post(
        "/v1/studies", content=b"{not json", headers={**headers, "Content-Type": "application/json"}
    )
    assert raw.status_code == 422
    assert raw.json()["errors"][0]["field"].startswith("body")

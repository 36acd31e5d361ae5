from datetime import timedelta

from app.staff.models import Role
from tests.conftest import World, bearer


def _register(
    world: World, token: str, push_token: str, **extra: str
) -> tuple[int, dict[str, object]]:
    response = world.client.post(
        "/v1/me/devices",
        json={"push_token": push_token, "platform": "android", **extra},
        headers=bearer(token),
    )
    return response.status_code, response.json()


def test_registration_is_idempotent(world: World) -> None:
    study = world.study()
    _, token = world.enrolled_participant(study["id"])
    status, first = _register(world, token, "fcm-abcdefgh12345678", app_version="1.0")
    assert status == 201
    assert first["push_token_suffix"] == "…12345678"
    world.clock.advance(timedelta(hours=2))
    status, again = _register(world, token, "fcm-abcdefgh12345678", app_version="1.1")
    assert status == 200
    assert again["id"] == first["id"]
    assert again["app_version"] == "1.1"
    assert again["last_seen_at"] == "2026-03-01T14:00:00Z"
    listed = world.client.get("/v1/me/devices", headers=bearer(token)).json()["items"]
    assert [d["id"] for d in listed] == [first["id"]]


def test_update_and_remove_device(world: World) -> None:
    study = world.study()
    _, token = world.enrolled_participant(study["id"])
    _, device = _register(world, token, "old-token")
    url = f"/v1/me/devices/{device['id']}"
    updated = world.client.patch(
        url,
        json={"push_token": "new-token-000000", "enabled": False, "app_version": None},
        headers=bearer(token),
    ).json()
    assert updated["push_token_suffix"] == "…n-000000"
    assert updated["enabled"] is False
    assert updated["app_version"] is None
    assert (
        world.client.patch(url, json={"platform": "ios"}, headers=bearer(token)).status_code == 422
    )
    assert world.client.delete(url, headers=bearer(token)).status_code == 204
    assert world.client.delete(url, headers=bearer(token)).status_code == 404
    assert world.client.get("/v1/me/devices", headers=bearer(token)).json()["items"] == []


def test_token_moving_to_another_participant_disables_it_for_the_first(world: World) -> None:
    study = world.study()
    _, first_token = world.enrolled_participant(study["id"])
    _, second_token = world.enrolled_participant(study["id"])
    _register(world, first_token, "shared-phone-token")
    _register(world, second_token, "shared-phone-token")
    mine = world.client.get("/v1/me/devices", headers=bearer(first_token)).json()["items"]
    assert mine[0]["enabled"] is False
    assert mine[0]["disabled_reason"] == "push token registered by another participant"
    theirs = world.client.get("/v1/me/devices", headers=bearer(second_token)).json()["items"]
    assert theirs[0]["enabled"] is True


def test_invalid_device_fields_are_named(world: World) -> None:
    study = world.study()
    _, token = world.enrolled_participant(study["id"])
    response = world.client.post(
        "/v1/me/devices", json={"push_token": "", "platform": "blackberry"}, headers=bearer(token)
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"body.push_token", "body.platform"}
    too_long = world.client.post(
        "/v1/me/devices", json={"push_token": "x" * 1025, "platform": "ios"}, headers=bearer(token)
    )
    assert too_long.status_code == 422


def test_staff_see_and_disable_devices(world: World) -> None:
    study = world.study()
    participant, token = world.enrolled_participant(study["id"])
    _, device = _register(world, token, "lost-phone-token")
    url = f"/v1/studies/{study['id']}/participants/{participant['id']}/devices"
    listed = world.client.get(url, headers=world.staff(Role.researcher)).json()["items"]
    assert [d["id"] for d in listed] == [device["id"]]
    assert "push_token" not in listed[0]
    disabled = world.client.patch(
        f"{url}/{device['id']}",
        json={"enabled": False, "reason": "phone reported lost"},
        headers=world.staff(Role.coordinator),
    ).json()
    assert (disabled["enabled"], disabled["disabled_reason"]) == (False, "phone reported lost")
    mine = world.client.get("/v1/me/devices", headers=bearer(token)).json()["items"]
    assert mine[0]["enabled"] is False


def test_participant_updates_own_time_zone(world: World) -> None:
    study = world.study()
    participant, token = world.enrolled_participant(study["id"])
    response = world.client.patch("/v1/me", json={"timezone": "Asia/Tokyo"}, headers=bearer(token))
    assert response.json()["timezone"] == "Asia/Tokyo"
    staff_view = world.client.get(
        f"/v1/studies/{study['id']}/participants/{participant['id']}",
        headers=world.staff(Role.admin),
    ).json()
    assert staff_view["timezone"] == "Asia/Tokyo"
    bad = world.client.patch("/v1/me", json={"timezone": "Nowhere"}, headers=bearer(token))
    assert bad.status_code == 422
    # The participant may not change what only staff may change.
    sneaky = world.client.patch("/v1/me", json={"status": "completed"}, headers=bearer(token))
    assert sneaky.status_code == 422

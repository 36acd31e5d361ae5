"""Pilot tools: a participant's planned schedule, a test push through the real channel, and
`kairos protocol upload --apply-to`."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from app.api.main import create_app
from app.cli import cli
from app.core.config import Settings
from app.notifications.models import Notification
from app.protocols.example_files import MINIMAL, examples_dir
from app.staff.models import Role
from tests.conftest import World
from tests.support import fake_fcm
from tests.support.protocols import protocol_yaml
from tests.support.push import person_with_devices
from tests.support.scheduling import enrolled, worker


@pytest.fixture
def pushing(world: World, settings: Settings) -> Iterator[tuple[World, fake_fcm.FakeFcm]]:
    """The world, served by an app whose push channel is FCM (firebase-admin) pointed at a
    fake FCM server on 127.0.0.1."""
    server, fake = fake_fcm.start()
    fcm_settings = settings.model_copy(
        update={"fcm_endpoint": f"http://127.0.0.1:{server.server_port}", "fcm_project_id": "p"}
    )
    try:
        with TestClient(create_app(fcm_settings, world.clock), raise_server_exceptions=False) as c:
            yield World(c, world.session_factory, world.clock, world.engine), fake
    finally:
        server.shutdown()


def test_a_test_push_reaches_every_enabled_device_and_reports_each(
    pushing: tuple[World, fake_fcm.FakeFcm],
) -> None:
    world, fake = pushing
    person = person_with_devices(world, "good-phone", "old-phone")
    fake.plans["old-phone"] = ["unregistered"]
    url = f"/v1/studies/{person.study_id}/participants/{person.participant_id}/test-push"
    response = world.client.post(url, headers=world.staff(Role.coordinator))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["channel"] == "fcm"
    outcomes = {d["outcome"]: d for d in body["devices"]}
    assert set(outcomes) == {"accepted", "invalid_token"}
    assert outcomes["invalid_token"]["device_disabled"] is True
    tokens = [r.message["token"] for r in fake.received]
    assert all(r.message["data"]["kind"] == "test" for r in fake.received)
    assert sorted(tokens) == ["good-phone", "old-phone"]
    # The dead token's device is disabled; a second test push reaches only the good phone.
    again = world.client.post(url, headers=world.staff(Role.coordinator)).json()
    assert [d["outcome"] for d in again["devices"]] == ["accepted"]
    # Not study data: nothing in the outbox.
    with world.session_factory() as session:
        assert session.query(Notification).count() == 0


def test_only_coordinators_send_test_pushes(world: World) -> None:
    person = person_with_devices(world, "phone")
    url = f"/v1/studies/{person.study_id}/participants/{person.participant_id}/test-push"
    assert world.client.post(url, headers=world.staff(Role.researcher)).status_code == 403


def test_the_planned_schedule_shows_local_times(world: World) -> None:
    person = enrolled(
        world, protocol_yaml(dp_times=["09:00"], ema_times=["20:00"]), timezone="America/New_York"
    )
    url = f"/v1/studies/{person.study_id}/participants/{person.participant_id}/schedule"
    body = world.client.get(f"{url}?days=3", headers=world.staff(Role.researcher)).json()
    assert body["timezone"] == "America/New_York"
    assert body["items"], body
    for item in body["items"]:
        local = datetime.fromisoformat(item["local_due_at"])
        assert local.utcoffset() in (timedelta(hours=-5), timedelta(hours=-4))
        assert (local.hour, local.minute) in ((9, 0), (20, 0))
        assert datetime.fromisoformat(item["due_at"]) == local
    dues = [item["due_at"] for item in body["items"]]
    assert dues == sorted(dues)
    assert all(datetime.fromisoformat(d) < world.clock.now() + timedelta(days=3) for d in dues)
    # Fired rows leave the schedule.
    world.clock.set(datetime.fromisoformat(dues[0]).astimezone(UTC))
    worker(world).run_pending()
    later = world.client.get(f"{url}?days=3", headers=world.staff(Role.researcher)).json()
    assert body["items"][0]["id"] not in [i["id"] for i in later["items"]]
    too_far = world.client.get(f"{url}?days=90", headers=world.staff(Role.researcher))
    assert too_far.status_code == 422
    assert "days" in too_far.text


def test_upload_apply_to_all_moves_everyone(world: World, database_url: str) -> None:
    study = world.study(slug="cli-apply")
    env = {"KAIROS_DATABASE_URL": database_url}
    path = str(examples_dir() / MINIMAL)

    def upload(*options: str) -> Result:
        command = ["protocol", "upload", "--study", "cli-apply", *options, path]
        return CliRunner().invoke(cli, command, env=env)

    first = upload()
    assert first.exit_code == 0, first.output
    person, _ = world.enrolled_participant(study["id"])
    assert person["protocol_version"] == 1
    second = upload("--apply-to", "all")
    assert second.exit_code == 0, second.output
    assert "(active version: 2)" in second.output
    url = f"/v1/studies/{study['id']}/participants/{person['id']}"

    def version() -> int:
        found: int = world.client.get(url, headers=world.staff(Role.admin)).json()[
            "protocol_version"
        ]
        return found

    assert version() == 2
    third = upload("--apply-to", "new")
    assert "(active version: 3)" in third.output
    assert version() == 2
    bad = upload("--apply-to", "some")
    assert bad.exit_code == 2

"""In production /readyz shows the workers' ids (host names, process ids) to admins only."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.api.main import create_app
from app.core.clock import SimulatedClock
from app.core.config import Environment, Settings
from app.staff.models import Role
from app.worker.models import WorkerHeartbeat
from tests.conftest import World, bearer

WORKER_ID = "db-host-7.internal:31337"


def _heartbeat(session_factory: sessionmaker[Session], clock: SimulatedClock) -> None:
    with session_factory() as session:
        session.add(
            WorkerHeartbeat(worker_id=WORKER_ID, started_at=clock.now(), last_tick_at=clock.now())
        )
        session.commit()


@pytest.fixture
def production(settings: Settings, clock: SimulatedClock) -> TestClient:
    assert (
        settings.model_copy(update={"environment": Environment.production}).unsafe_reason() is None
    )
    return TestClient(
        create_app(settings.model_copy(update={"environment": Environment.production}), clock)
    )


def test_anonymous_callers_see_no_host_names_in_production(
    world: World, production: TestClient
) -> None:
    _heartbeat(world.session_factory, world.clock)
    coordinator = world.staff_key(Role.coordinator)
    participant_token = world.enrolled_participant(world.study()["id"])[1]
    for headers in (
        {},
        bearer(coordinator),
        {"X-API-Key": coordinator},
        bearer(participant_token),
        bearer("ksk_not-a-key"),
        {"Authorization": "Basic Zm9vOmJhcg=="},
    ):
        response = production.get("/readyz", headers=headers)
        assert response.status_code == 200, (headers, response.text)
        body = response.json()
        assert body["workers_active"] == 1
        assert body["workers"] is None
        assert WORKER_ID.split(":")[0] not in response.text
        assert "31337" not in response.text


def test_an_admin_sees_the_workers_in_production(world: World, production: TestClient) -> None:
    _heartbeat(world.session_factory, world.clock)
    admin = world.staff_key(Role.admin)
    for headers in (bearer(admin), {"X-API-Key": admin}):
        body = production.get("/readyz", headers=headers).json()
        assert body["workers_active"] == 1
        assert [w["worker_id"] for w in body["workers"]] == [WORKER_ID]


def test_outside_production_everyone_sees_the_workers(world: World) -> None:
    _heartbeat(world.session_factory, world.clock)
    body = world.client.get("/readyz").json()
    assert [w["worker_id"] for w in body["workers"]] == [WORKER_ID]

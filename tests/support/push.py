"""Fixtures and helpers for tests that deliver pushes through the real firebase-admin client.

Registered for every test module in tests/conftest.py (``pytest_plugins``), so a test asks
for ``fcm`` and gets an ``FcmProvider`` talking to a fake FCM server (one per test module,
its plans and received messages cleared for each test).
"""

from collections.abc import Iterator

import pytest

from app.notifications.fcm import FcmConfig, FcmProvider
from tests.conftest import World
from tests.support import fake_fcm
from tests.support.protocols import protocol_yaml
from tests.support.scheduling import Enrolled, enrolled


@pytest.fixture(scope="module")
def fcm_server() -> Iterator[tuple[int, fake_fcm.FakeFcm]]:
    server, fake = fake_fcm.start()
    yield server.server_port, fake
    server.shutdown()


@pytest.fixture
def fcm(
    fcm_server: tuple[int, fake_fcm.FakeFcm],
) -> Iterator[tuple[FcmProvider, fake_fcm.FakeFcm]]:
    port, fake = fcm_server
    fake.plans.clear()
    fake.received.clear()
    provider = FcmProvider(FcmConfig(endpoint=f"http://127.0.0.1:{port}", project_id="kairos-test"))
    yield provider, fake
    provider.close()


def person_with_devices(world: World, *tokens: str) -> Enrolled:
    """A participant of a new study with one 09:00 (Berlin) decision point, no EMA, and an
    Android device registered for each push token."""
    person = enrolled(world, protocol_yaml(dp_times=["09:00"], ema_times=[]))
    for token in tokens:
        response = world.client.post(
            "/v1/me/devices",
            json={"push_token": token, "platform": "android"},
            headers=person.headers,
        )
        assert response.status_code == 201, response.text
    return person

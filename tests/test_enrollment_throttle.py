"""Enrollment-code guessing is throttled: per client address and globally, per window."""

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from limits.storage import MemoryStorage, RedisStorage

from app.api.main import create_app
from app.core.clock import SimulatedClock
from app.core.config import Settings
from app.participants.throttle import EnrollmentThrottle
from tests.conftest import World

WINDOW = 600
PER_ADDRESS = 3
GLOBAL = 5


@pytest.fixture
def throttled(world: World, settings: Settings, clock: SimulatedClock) -> tuple[World, FastAPI]:
    """An app with small budgets (the world's helpers use its own app for setup)."""
    small = settings.model_copy(
        update={
            "enroll_failures_per_address": PER_ADDRESS,
            "enroll_failures_global": GLOBAL,
            "enroll_throttle_window_seconds": WINDOW,
        }
    )
    return world, create_app(small, clock)


def _from(app: FastAPI, address: str, **kwargs: Any) -> TestClient:
    return TestClient(app, client=(address, 40000), **kwargs)


def _attempt(client: TestClient, code: str = "ZZZZZ-ZZZZZ") -> httpx.Response:
    response: httpx.Response = client.post("/v1/enroll", json={"code": code})
    return response


def _assert_throttled(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "enrollment_throttled"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= WINDOW
    return retry_after


def test_failures_from_one_address_are_throttled_until_the_window_ends(
    throttled: tuple[World, FastAPI],
) -> None:
    world, app = throttled
    guesser = _from(app, "203.0.113.7")
    for _ in range(PER_ADDRESS):
        assert _attempt(guesser).json()["code"] == "enrollment_code_unknown"
    retry_after = _assert_throttled(_attempt(guesser))
    world.clock.advance(timedelta(seconds=retry_after - 1))
    _assert_throttled(_attempt(guesser))
    world.clock.advance(timedelta(seconds=1))
    assert _attempt(guesser).status_code == 404


def test_a_correct_code_is_refused_while_throttled_and_works_afterwards(
    throttled: tuple[World, FastAPI],
) -> None:
    world, app = throttled
    code = world.participant(world.study()["id"])["enrollment_code"]
    guesser = _from(app, "203.0.113.8")
    for _ in range(PER_ADDRESS):
        _attempt(guesser)
    # Guessing cannot go on: the right code is refused like any other, and not spent.
    retry_after = _assert_throttled(_attempt(guesser, code))
    world.clock.advance(timedelta(seconds=retry_after))
    assert _attempt(guesser, code).status_code == 201


def test_used_and_expired_codes_count_as_failures(throttled: tuple[World, FastAPI]) -> None:
    world, app = throttled
    code = world.participant(world.study()["id"])["enrollment_code"]
    phone = _from(app, "203.0.113.9")
    assert _attempt(phone, code).status_code == 201
    for _ in range(PER_ADDRESS):
        assert _attempt(phone, code).json()["code"] == "enrollment_code_used"
    _assert_throttled(_attempt(phone, code))


def test_successes_do_not_count(throttled: tuple[World, FastAPI]) -> None:
    world, app = throttled
    study = world.study()
    clinic = _from(app, "198.51.100.1")  # one address enrolling a whole clinic's phones
    for _ in range(PER_ADDRESS + 2):
        code = world.participant(study["id"])["enrollment_code"]
        assert _attempt(clinic, code).status_code == 201


def test_other_addresses_go_on_until_the_global_budget_is_spent(
    throttled: tuple[World, FastAPI],
) -> None:
    world, app = throttled
    first, second, third = (_from(app, f"192.0.2.{n}") for n in (1, 2, 3))
    for _ in range(PER_ADDRESS):
        _attempt(first)
    _assert_throttled(_attempt(first))
    # The throttled address's refused attempts do not use up the global budget.
    _assert_throttled(_attempt(first))
    for _ in range(GLOBAL - PER_ADDRESS):
        assert _attempt(second).status_code == 404
    # Now every address is refused, even one that never failed, with a correct code.
    code = world.participant(world.study()["id"])["enrollment_code"]
    problem = _attempt(third, code)
    _assert_throttled(problem)
    assert "all addresses" in problem.json()["detail"]
    world.clock.advance(timedelta(seconds=WINDOW))
    assert _attempt(third, code).status_code == 201
    assert _attempt(first).status_code == 404


def test_forwarded_for_is_believed_only_from_trusted_proxies(
    world: World, settings: Settings, clock: SimulatedClock
) -> None:
    small = settings.model_copy(
        update={"enroll_failures_per_address": 2, "forwarded_allow_ips": "10.0.0.0/8"}
    )
    app = create_app(small, clock)
    proxy = _from(app, "10.1.2.3")
    untrusted = _from(app, "192.0.2.50")
    # Behind the trusted proxy each client has its own budget ...
    for _ in range(2):
        proxy.post("/v1/enroll", json={"code": "ZZZZZ"}, headers={"X-Forwarded-For": "1.1.1.1"})
    one = proxy.post("/v1/enroll", json={"code": "Z"}, headers={"X-Forwarded-For": "1.1.1.1"})
    two = proxy.post("/v1/enroll", json={"code": "Z"}, headers={"X-Forwarded-For": "2.2.2.2"})
    assert one.status_code == 429
    assert two.status_code == 404
    # ... while anyone else cannot dodge the budget by making up the header.
    for n in range(2):
        untrusted.post("/v1/enroll", json={"code": "Z"}, headers={"X-Forwarded-For": f"3.3.3.{n}"})
    faked = untrusted.post("/v1/enroll", json={"code": "Z"}, headers={"X-Forwarded-For": "4.4.4.4"})
    assert faked.status_code == 429


def test_429_is_documented_on_the_operation(throttled: tuple[World, FastAPI]) -> None:
    _, app = throttled
    operation = app.openapi()["paths"]["/v1/enroll"]["post"]
    assert "application/problem+json" in operation["responses"]["429"]["content"]
    assert "Retry-After" in operation["responses"]["429"]["headers"]


def test_memory_storage_is_the_default(settings: Settings, clock: SimulatedClock) -> None:
    app = create_app(settings, clock)
    assert isinstance(app.state.enrollment_throttle.storage, MemoryStorage)


def test_budgets_are_shared_by_processes_through_redis(
    world: World, settings: Settings, clock: SimulatedClock
) -> None:
    """Two API processes (two apps) with one Redis: failures in either count for both."""
    shared = settings.model_copy(
        update={
            "enroll_failures_per_address": PER_ADDRESS,
            "enroll_throttle_window_seconds": WINDOW,
            "throttle_storage_url": "redis://127.0.0.1:6379/0",
        }
    )
    namespace = f"kairos-test-{uuid.uuid4().hex}"  # parallel test runs share the server
    apps = [create_app(shared, clock), create_app(shared, clock)]
    for app in apps:
        throttle: EnrollmentThrottle = app.state.enrollment_throttle
        assert isinstance(throttle.storage, RedisStorage)
        throttle.namespace = namespace
    first, second = (_from(app, "203.0.113.20") for app in apps)
    _attempt(first)
    _attempt(second)
    _attempt(first)
    _assert_throttled(_attempt(second))
    _assert_throttled(_attempt(first))
    world.clock.advance(timedelta(seconds=WINDOW))
    assert _attempt(second).status_code == 404


def test_an_unreachable_storage_refuses_with_503(
    world: World, settings: Settings, clock: SimulatedClock
) -> None:
    # Nothing listens on port 1: enrollment is refused (not let through unthrottled).
    app = create_app(
        settings.model_copy(update={"throttle_storage_url": "redis://127.0.0.1:1"}), clock
    )
    code = world.participant(world.study()["id"])["enrollment_code"]
    response = _attempt(_from(app, "203.0.113.30"), code)
    assert response.status_code == 503
    assert response.json()["code"] == "throttle_unavailable"
    assert response.headers["retry-after"]
    assert world.client.post("/v1/enroll", json={"code": code}).status_code == 201

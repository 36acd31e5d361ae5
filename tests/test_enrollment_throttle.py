"""Enrollment-code guessing is throttled: per client address and globally, per window."""

import logging
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from limits.storage import MemoryStorage, RedisStorage
from prometheus_client.parser import text_string_to_metric_families

from app.api.main import create_app
from app.core.clock import SimulatedClock
from app.core.config import Settings
from app.participants.throttle import EnrollmentThrottle, storage_timeouts
from app.staff.models import Role
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


def test_an_ipv6_client_is_counted_by_its_64_network(throttled: tuple[World, FastAPI]) -> None:
    """A host with a /64 picks any of 2^64 addresses: each would otherwise be a new budget."""
    _, app = throttled
    for n in range(PER_ADDRESS):
        assert _attempt(_from(app, f"2001:db8:1:2::{n + 1:x}")).status_code == 404
    _assert_throttled(_attempt(_from(app, "2001:db8:1:2:ffff:ffff:ffff:ffff")))
    _assert_throttled(_attempt(_from(app, "2001:DB8:1:2:0:0:0:99")))  # spelled otherwise
    # The next /64 over is someone else.
    assert _attempt(_from(app, "2001:db8:1:3::1")).status_code == 404


def test_an_ipv4_mapped_address_counts_as_its_ipv4_address(
    throttled: tuple[World, FastAPI],
) -> None:
    _, app = throttled
    for _ in range(PER_ADDRESS):
        _attempt(_from(app, "::ffff:203.0.113.40"))
    _assert_throttled(_attempt(_from(app, "203.0.113.40")))
    assert _attempt(_from(app, "::ffff:203.0.113.41")).status_code == 404


def test_throttled_enrollments_are_counted_in_the_metrics(throttled: tuple[World, FastAPI]) -> None:
    world, app = throttled
    admin = world.staff(Role.admin)
    before = _throttled_counts(world.client, admin)
    guesser = _from(app, "203.0.113.50")
    for _ in range(PER_ADDRESS):
        _attempt(guesser)
    _assert_throttled(_attempt(guesser))
    _assert_throttled(_attempt(guesser))
    for n in range(GLOBAL - PER_ADDRESS):
        _attempt(_from(app, f"203.0.113.{60 + n}"))
    _assert_throttled(_attempt(_from(app, "203.0.113.99")))
    after = _throttled_counts(world.client, admin)
    assert after["address"] - before["address"] == 2
    assert after["global"] - before["global"] == 1


def _throttled_counts(client: TestClient, headers: dict[str, str]) -> dict[str, float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    counts = {"address": 0.0, "global": 0.0}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "kairos_enrollments_throttled_total":
                counts[sample.labels["budget"]] = sample.value
    return counts


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


@pytest.mark.parametrize("value", ["*", "10.0.0.0/8, *", "0.0.0.0/0", "::/0"])
def test_trusting_every_peer_is_refused(
    settings: Settings, clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """With '*' (or a network of every address) uvicorn takes the leftmost X-Forwarded-For
    entry, which the client writes: each guess could come from a made-up address."""
    monkeypatch.setenv("KAIROS_FORWARDED_ALLOW_IPS", value)
    with pytest.raises(ValueError, match="forwarded_allow_ips"):
        Settings(_env_file=None)
    with pytest.raises(ValueError, match="client"):
        create_app(settings.model_copy(update={"forwarded_allow_ips": value}), clock)


@pytest.mark.parametrize("value", ["proxy.internal", "10.0.0.1/8", "10.0.0.0/33"])
def test_a_trusted_proxy_must_be_an_address_or_network(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("KAIROS_FORWARDED_ALLOW_IPS", value)
    with pytest.raises(ValueError, match="not an IP address or network"):
        Settings(_env_file=None)


def test_trusted_proxies_are_read_as_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAIROS_FORWARDED_ALLOW_IPS", " 127.0.0.1, 10.0.0.0/8,fd00::/8 ,")
    assert Settings(_env_file=None).forwarded_allow_ips == "127.0.0.1/32,10.0.0.0/8,fd00::/8"
    monkeypatch.setenv("KAIROS_FORWARDED_ALLOW_IPS", "")
    assert Settings(_env_file=None).trusted_proxies == []


def test_forwarded_for_from_an_untrusted_peer_is_warned_about_once(
    settings: Settings, clock: SimulatedClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A proxy left out of KAIROS_FORWARDED_ALLOW_IPS (in another container, say) makes
    every client share its address and budget: the operator must hear of it."""
    app = create_app(settings, clock)  # the default: only 127.0.0.1 is trusted
    caplog.set_level(logging.WARNING, logger="app.api.forwarded")
    forwarded = {"X-Forwarded-For": "198.51.100.7"}
    _from(app, "127.0.0.1").post("/v1/enroll", json={"code": "Z"}, headers=forwarded)
    _from(app, "172.18.0.5").post("/v1/enroll", json={"code": "Z"})
    assert not caplog.records  # a trusted proxy, or no header: nothing to say
    proxy = _from(app, "172.18.0.5")
    for _ in range(3):
        assert proxy.post("/v1/enroll", json={"code": "Z"}, headers=forwarded).status_code == 404
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "172.18.0.5" in record.getMessage()
    assert "KAIROS_FORWARDED_ALLOW_IPS" in record.getMessage()


def test_429_is_documented_on_the_operation(throttled: tuple[World, FastAPI]) -> None:
    _, app = throttled
    operation = app.openapi()["paths"]["/v1/enroll"]["post"]
    assert "application/problem+json" in operation["responses"]["429"]["content"]
    assert "Retry-After" in operation["responses"]["429"]["headers"]
    unavailable = operation["responses"]["503"]
    assert "throttle_unavailable" in unavailable["description"]
    assert "database is unavailable" in unavailable["description"]
    assert "Retry-After" in unavailable["headers"]


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


@pytest.fixture
def silent_server() -> Iterator[socket.socket]:
    """A listening socket that accepts connections (the kernel's backlog) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield listener
    finally:
        listener.close()


def test_a_storage_that_never_answers_refuses_with_503_quickly(
    world: World, settings: Settings, clock: SimulatedClock, silent_server: socket.socket
) -> None:
    """A Redis that accepts connections but stops replying (a hung server, a half-open
    partition) must not hold enrollment: the default timeout turns it into a 503."""
    url = f"redis://127.0.0.1:{silent_server.getsockname()[1]}/0"
    app = create_app(settings.model_copy(update={"throttle_storage_url": url}), clock)
    code = world.participant(world.study()["id"])["enrollment_code"]
    client = _from(app, "203.0.113.31")
    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        pending = pool.submit(_attempt, client, code)
        try:
            response = pending.result(timeout=10)
        finally:
            elapsed = time.monotonic() - started
            # Without a timeout the request would wait forever: closing the listener
            # resets its connection, so a failing test ends instead of hanging.
            silent_server.close()
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "throttle_unavailable"
    assert elapsed < 5  # the default KAIROS_THROTTLE_STORAGE_TIMEOUT_SECONDS is 1
    # The code was not looked at, let alone spent.
    assert world.client.post("/v1/enroll", json={"code": code}).status_code == 201


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://h:6379/0", {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}),
        ("rediss://h:6380/0", {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}),
        ("redis+cluster://h:7000", {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}),
        ("memcached://h:11211", {"connect_timeout": 0.5, "timeout": 0.5}),
        ("memory://", {}),
    ],
)
def test_every_network_storage_gets_timeouts(url: str, expected: dict[str, float]) -> None:
    assert storage_timeouts(url, 0.5) == expected
    sentinel = storage_timeouts("redis+sentinel://h:26379/mymaster", 0.5)
    assert sentinel["sentinel_kwargs"] == {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}

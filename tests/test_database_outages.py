"""Database outages: 503 with Retry-After (never a 500, never a hang), and recovery without a
restart. The PostgreSQL tests bring their own server (tests/support/own_postgres.py) and
stop it or cut it off from the network; the shared server is never touched."""

import logging
import sqlite3
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from httpx import Response

from app.api.main import create_app
from app.api.outages import _needs_session, api_routes
from app.core.clock import SimulatedClock
from app.core.config import Environment, Settings
from app.core.db import (
    DatabaseTimeouts,
    create_db_engine,
    is_database_unavailable,
    lift_statement_timeout,
    postgres_connect_args,
)
from app.core.migrations import upgrade_to_head
from app.notifications.providers import LoggingProvider
from app.worker.runner import Worker
from tests.conftest import START, TEST_SECRET, World
from tests.support import own_postgres
from tests.support.protocols import protocol_yaml
from tests.support.scheduling import Enrolled, RecordingDecider, enrolled

# Small bounds, so that the tests are quick: what is tested is that there is a bound.
CONNECT, TCP_USER, RETRY_AFTER = 2.0, 2.0, 3
# Pre-ping of a pooled connection (tcp_user_timeout), then a new connection (connect
# timeout), plus room for a loaded machine. A functional bound, not a performance one.
BOUND = TCP_USER + CONNECT + 4.0


@pytest.fixture(scope="module")
def server() -> Iterator[own_postgres.OwnPostgres]:
    reason = own_postgres.why_unavailable()
    if reason is not None:
        pytest.skip(f"cannot run a PostgreSQL server of the test's own: {reason}")
    pg = own_postgres.create()
    try:
        admin = sa.create_engine(pg.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("CREATE DATABASE kairos"))
        admin.dispose()
        engine = create_db_engine(pg.url("kairos"))
        upgrade_to_head(engine)
        engine.dispose()
        yield pg
    finally:
        pg.destroy()


def _settings(url: str, tmp_path: Path) -> Settings:
    return Settings(
        environment=Environment.test,
        database_url=url,
        secret_key=TEST_SECRET,
        auto_migrate=False,
        run_worker=False,
        export_dir=str(tmp_path / "exports"),
        db_connect_timeout_seconds=CONNECT,
        db_tcp_user_timeout_seconds=TCP_USER,
        db_keepalives_idle_seconds=1,
        db_keepalives_interval_seconds=1,
        db_keepalives_count=2,
        db_statement_timeout_seconds=3,
        db_pool_timeout_seconds=2,
        db_retry_after_seconds=RETRY_AFTER,
    )


@pytest.fixture
def own_world(server: own_postgres.OwnPostgres, tmp_path: Path) -> Iterator[World]:
    app = create_app(_settings(server.url("kairos"), tmp_path), SimulatedClock(START))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield World(client, app.state.session_factory, app.state.clock, app.state.engine)


def _ema(n: int) -> list[dict[str, Any]]:
    return [
        {
            "client_id": uuid.uuid4().hex,
            "questionnaire_id": "daily",
            "questionnaire_version": 1,
            "answered_at": (START + timedelta(minutes=i)).isoformat(),
            "answers": {"pain": i % 11},
        }
        for i in range(n)
    ]


def _assert_unavailable(response: Response, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == str(RETRY_AFTER)
    assert response.json()["code"] == "database_unavailable"
    assert elapsed < BOUND, f"took {elapsed:.1f} s"


def _timed(call: Any, *args: Any, **kwargs: Any) -> tuple[Response, float]:
    began = time.monotonic()
    response: Response = call(*args, **kwargs)
    return response, time.monotonic() - began


def _stored_ids(world: World, person: Enrolled) -> set[str]:
    page = world.client.get("/v1/me/ema-responses?limit=200", headers=person.headers)
    assert page.status_code == 200, page.text
    return {r["id"] for r in page.json()["items"]}


def _eventually_ok(world: World, path: str, headers: dict[str, str]) -> Response:
    deadline = time.monotonic() + 15
    while True:
        response: Response = world.client.get(path, headers=headers)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


@pytest.mark.slow  # runs a PostgreSQL server of its own (about 5-15 s)
def test_a_stopped_database_is_a_503_and_the_service_recovers_without_a_restart(
    server: own_postgres.OwnPostgres, own_world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world = own_world
    person = enrolled(world, protocol_yaml(dp_times=["09:00"], ema_times=["20:00"]))
    before = world.client.post(
        "/v1/me/ema-responses", json={"items": _ema(3)}, headers=person.headers
    )
    assert before.status_code == 200, before.text
    accepted = {r["id"] for r in before.json()["items"]}
    worker = Worker(
        world.session_factory, world.clock, tick_seconds=1, worker_id="outage",
        decider=RecordingDecider(),
        provider=LoggingProvider(),
    )  # fmt: skip
    during = _ema(2)
    caplog.set_level(logging.WARNING)
    server.stop()
    try:
        for method, path, body in [
            ("GET", "/v1/me", None),
            ("POST", "/v1/me/ema-responses", {"items": during}),
            ("GET", "/readyz", None),
        ]:
            response, elapsed = _timed(
                world.client.request, method, path, json=body, headers=person.headers
            )
            _assert_unavailable(response, elapsed)
        assert world.client.get("/healthz").status_code == 200
        worker.tick()  # survives, logs one line
    finally:
        server.start()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    warnings = [r.getMessage() for r in caplog.records if "database unavailable" in r.getMessage()]
    assert len(warnings) >= 4
    assert all("\n" not in w for w in warnings)

    # The same app, no restart: the pool reconnects, the worker resumes.
    assert _eventually_ok(world, "/v1/me", person.headers).status_code == 200
    assert _stored_ids(world, person) == accepted  # accepted before: still there
    retried = world.client.post(
        "/v1/me/ema-responses", json={"items": during}, headers=person.headers
    )
    assert retried.status_code == 200
    # Nothing of the 503'd batch had been stored: now it is accepted, not a duplicate.
    assert [r["status"] for r in retried.json()["items"]] == ["accepted", "accepted"]
    worker.tick()
    ready = world.client.get("/readyz")
    assert ready.status_code == 200
    assert "outage" in [w["worker_id"] for w in ready.json()["workers"]]


@pytest.mark.slow  # runs a PostgreSQL server of its own (about 5-15 s)
def test_a_partitioned_database_is_a_503_within_the_bound_never_a_hang(
    server: own_postgres.OwnPostgres, own_world: World
) -> None:
    if not server.can_partition:
        pytest.skip("network namespaces (ip netns, root) are not available here")
    world = own_world
    person = enrolled(world, protocol_yaml(dp_times=["09:00"], ema_times=["20:00"]))
    # Pooled connections exist when the network goes.
    assert world.client.get("/v1/me", headers=person.headers).status_code == 200
    assert world.client.get("/readyz").status_code == 200
    server.partition()
    try:
        for method, path, body in [
            ("GET", "/v1/me", None),
            ("GET", "/readyz", None),
            ("POST", "/v1/me/ema-responses", {"items": _ema(2)}),
        ]:
            response, elapsed = _timed(
                world.client.request, method, path, json=body, headers=person.headers
            )
            _assert_unavailable(response, elapsed)
    finally:
        server.heal()
    assert _eventually_ok(world, "/v1/me", person.headers).status_code == 200
    assert world.client.get("/readyz").status_code == 200


@pytest.mark.slow  # runs a PostgreSQL server of its own (about 5-15 s)
def test_the_statement_timeout_cancels_a_slow_query_except_where_lifted(
    server: own_postgres.OwnPostgres,
) -> None:
    engine = create_db_engine(server.url("kairos"), timeouts=DatabaseTimeouts(statement=0.3))
    try:
        with engine.connect() as conn, pytest.raises(sa.exc.OperationalError) as raised:
            conn.execute(sa.text("SELECT pg_sleep(1)"))
        assert isinstance(raised.value.orig, psycopg.errors.QueryCanceled)
        assert is_database_unavailable(raised.value)
        with engine.connect() as conn:  # an export's transaction
            lift_statement_timeout(conn)
            conn.execute(sa.text("SELECT pg_sleep(0.5)"))
            conn.rollback()
            # SET LOCAL: the next transaction has the timeout again.
            with pytest.raises(sa.exc.OperationalError):
                conn.execute(sa.text("SELECT pg_sleep(1)"))
    finally:
        engine.dispose()


# Classification, without a server ----------------------------------------------------------


def _wrapped(orig: Exception, base: type[Exception] = psycopg.Error) -> sa.exc.StatementError:
    wrapped = sa.exc.DBAPIError.instance("SELECT 1", {}, orig, base)
    assert isinstance(wrapped, sa.exc.DBAPIError)  # as SQLAlchemy raises driver errors
    return wrapped


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (psycopg.OperationalError("connection failed: Connection refused"), True),
        (psycopg.errors.ConnectionTimeout("connection timeout expired"), True),
        (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), True),
        (psycopg.errors.AdminShutdown("terminating connection"), True),
        (psycopg.errors.CannotConnectNow("the database system is starting up"), True),
        (psycopg.errors.TooManyConnections("too many clients"), True),
        (psycopg.errors.LockNotAvailable("lock timeout"), True),
        (psycopg.errors.UniqueViolation("duplicate key"), False),
        (psycopg.errors.UndefinedTable("no such relation"), False),
        (psycopg.errors.NumericValueOutOfRange("integer out of range"), False),
        (psycopg.errors.SyntaxError("syntax error"), False),
        (psycopg.errors.SerializationFailure("could not serialize"), False),
        (psycopg.ProgrammingError("bad call"), False),
    ],
)
def test_outages_are_told_from_bugs(error: Exception, unavailable: bool) -> None:
    assert is_database_unavailable(_wrapped(error)) is unavailable


def test_sqlite_busy_is_an_outage_a_missing_table_a_bug(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError) as busy:
        other.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError) as missing:
        other.execute("SELECT * FROM nowhere")
    holder.close()
    other.close()
    assert is_database_unavailable(_wrapped(busy.value, sqlite3.Error))
    assert not is_database_unavailable(_wrapped(missing.value, sqlite3.Error))
    assert is_database_unavailable(sa.exc.TimeoutError("QueuePool limit reached"))
    assert not is_database_unavailable(ValueError("not a database error"))


def test_connection_parameters_bound_every_wait_and_the_url_wins() -> None:
    args = postgres_connect_args(
        "postgresql+psycopg://u@h/db", DatabaseTimeouts(connect=1, statement=2.5, tcp_user=10)
    )
    assert args["connect_timeout"] == 2  # libpq's minimum
    assert args["tcp_user_timeout"] == 10_000
    assert args["options"] == "-c statement_timeout=2500"
    assert args["keepalives"] == 1
    given = postgres_connect_args(
        "postgresql+psycopg://u@h/db?connect_timeout=9", DatabaseTimeouts(statement=0)
    )
    assert "connect_timeout" not in given
    assert "options" not in given


def test_every_operation_that_needs_the_database_documents_the_503(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    routes = {
        (route.path_format, method.lower()): route
        for route in api_routes(client.app)  # type: ignore[arg-type]
        if route.include_in_schema
        for method in route.methods
    }
    documented = 0
    for (path, method), route in routes.items():
        operation = schema["paths"][path][method]
        if _needs_session(route.dependant):
            response = operation["responses"]["503"]
            assert "Retry-After" in response["headers"]
            assert "application/problem+json" in response["content"]
            documented += 1
        else:
            assert "503" not in operation["responses"], path
    assert documented > 50
    assert "503" not in schema["paths"]["/healthz"]["get"]["responses"]

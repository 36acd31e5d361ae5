"""Test fixtures. Every database test runs against a real database: SQLite by default, or
the PostgreSQL named by KAIROS_DATABASE_URL, in a throwaway database created for the run.
"""

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.api.main import create_app
from app.audit.service import CLI_ACTOR
from app.core.clock import SimulatedClock
from app.core.config import Environment, Settings
from app.core.db import create_db_engine, create_scratch_postgres, make_session_factory
from app.core.migrations import upgrade_to_head
from app.models import Base
from app.staff.models import Role
from app.staff.service import create_api_key

# Shared fixtures of their own modules: `fcm` (a provider talking to a fake FCM server),
# `receiver` (a webhook receiver on 127.0.0.1), `inbox`, `care_settings` and `care` (an SMTP
# server on 127.0.0.1 and the world with care routes configured).
pytest_plugins = ["tests.support.push", "tests.support.webhook_receiver", "tests.support.care"]

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def configured_url() -> str | None:
    return os.environ.get("KAIROS_DATABASE_URL")


def is_postgres_run() -> bool:
    url = configured_url()
    return bool(url) and url.startswith("postgresql")  # type: ignore[union-attr]


def create_scratch_database(tmp_dir: str, label: str) -> tuple[str, Any]:
    """A new empty database of the configured kind; returns its URL and a cleanup."""
    url = configured_url()
    if url and url.startswith("postgresql"):
        scratch = create_scratch_postgres(url, f"kairos_{label}")
        return scratch.url, scratch.drop
    path = os.path.join(tmp_dir, f"{label}-{uuid.uuid4().hex[:8]}.db")
    return f"sqlite:///{path}", lambda: None


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, drop = create_scratch_database(str(tmp_path_factory.mktemp("db")), "test")
    yield url
    drop()


@pytest.fixture(scope="session")
def migrated_engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    upgrade_to_head(engine)
    yield engine
    engine.dispose()


def _empty_all_tables(engine: Engine) -> None:
    tables = [t.name for t in Base.metadata.sorted_tables]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} CASCADE"))
        else:
            for name in reversed(tables):
                conn.execute(sa.text(f"DELETE FROM {name}"))  # noqa: S608


@pytest.fixture
def engine(migrated_engine: Engine) -> Iterator[Engine]:
    yield migrated_engine
    _empty_all_tables(migrated_engine)


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        environment=Environment.test,
        database_url=database_url,
        secret_key=TEST_SECRET,
        auto_migrate=False,
        run_worker=False,
        export_dir=str(tmp_path / "exports"),
    )


@pytest.fixture
def client(engine: Engine, settings: Settings, clock: SimulatedClock) -> Iterator[TestClient]:
    app = create_app(settings, clock)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@dataclass
class World:
    """Helpers that set up staff, studies and participants through the real API."""

    client: TestClient
    session_factory: sessionmaker[Session]
    clock: SimulatedClock
    engine: Engine

    def reset(self) -> None:
        """Empty the database, for tests that need a fresh world more than once."""
        _empty_all_tables(self.engine)

    def staff_key(self, role: Role) -> str:
        with self.session_factory() as session:
            _, key = create_api_key(session, self.clock, CLI_ACTOR, name=f"test {role}", role=role)
            session.commit()
        return key

    def staff(self, role: Role) -> dict[str, str]:
        return bearer(self.staff_key(role))

    def study(self, slug: str | None = None, **fields: Any) -> dict[str, Any]:
        body = {"slug": slug or f"study-{uuid.uuid4().hex[:8]}", "name": "A study", **fields}
        response = self.client.post("/v1/studies", json=body, headers=self.staff(Role.admin))
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def participant(self, study_id: str, **fields: Any) -> dict[str, Any]:
        body = {"timezone": "Europe/Berlin", **fields}
        response = self.client.post(
            f"/v1/studies/{study_id}/participants", json=body, headers=self.staff(Role.admin)
        )
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def enroll(self, code: str) -> str:
        response = self.client.post("/v1/enroll", json={"code": code})
        assert response.status_code == 201, response.text
        token: str = response.json()["access_token"]
        return token

    def enrolled_participant(self, study_id: str, **fields: Any) -> tuple[dict[str, Any], str]:
        participant = self.participant(study_id, **fields)
        return participant, self.enroll(participant["enrollment_code"])


@pytest.fixture
def world(
    client: TestClient,
    session_factory: sessionmaker[Session],
    clock: SimulatedClock,
    engine: Engine,
) -> World:
    return World(client, session_factory, clock, engine)

"""Migrations: empty -> head -> base -> head on the configured database, and the models agree."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

from app.core.db import create_db_engine
from app.core.migrations import (
    SchemaNotCurrentError,
    alembic_config,
    current_revision,
    ensure_schema_current,
    head_revision,
    upgrade_to_head,
)
from app.models import Base
from tests.conftest import create_scratch_database

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def scratch_url(tmp_path: Path) -> Iterator[str]:
    url, drop = create_scratch_database(str(tmp_path), "migrations")
    yield url
    drop()


@pytest.fixture
def scratch_engine(scratch_url: str) -> Iterator[Engine]:
    engine = create_db_engine(scratch_url)
    yield engine
    engine.dispose()


def _diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


def test_upgrade_from_empty_matches_the_models(scratch_engine: Engine) -> None:
    with pytest.raises(SchemaNotCurrentError, match="kairos migrate"):
        ensure_schema_current(scratch_engine)
    before, after = upgrade_to_head(scratch_engine)
    assert (before, after) == (None, head_revision())
    assert _diff(scratch_engine) == []
    ensure_schema_current(scratch_engine)
    assert set(sa.inspect(scratch_engine).get_table_names()) >= set(Base.metadata.tables)


def test_downgrade_to_base_and_up_again(scratch_engine: Engine) -> None:
    upgrade_to_head(scratch_engine)
    with scratch_engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert current_revision(scratch_engine) is None
    assert set(sa.inspect(scratch_engine).get_table_names()) <= {"alembic_version"}
    upgrade_to_head(scratch_engine)
    assert _diff(scratch_engine) == []


def test_upgrade_is_idempotent(scratch_engine: Engine) -> None:
    upgrade_to_head(scratch_engine)
    assert upgrade_to_head(scratch_engine) == (head_revision(), head_revision())


@pytest.mark.slow
def test_concurrent_migrate_commands_do_not_corrupt(
    scratch_url: str, scratch_engine: Engine
) -> None:
    env = {**os.environ, "KAIROS_DATABASE_URL": scratch_url}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "app", "migrate"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert sum("upgraded from empty" in out for out in outputs) == 1, outputs
    assert current_revision(scratch_engine) == head_revision()
    assert _diff(scratch_engine) == []
    with scratch_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() == 1

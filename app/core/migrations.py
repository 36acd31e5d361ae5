"""Schema upgrades through Alembic, safe when several processes start at once.

PostgreSQL: a session-level advisory lock serializes concurrent upgrades; the second
process then finds the schema at head and does nothing. SQLite: a lock file beside the
database does the same for processes on one machine (the only way to share a SQLite file).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from filelock import FileLock
from sqlalchemy.engine import Connection, Engine, make_url

from app.core.db import no_statement_timeout

# An arbitrary constant that names "the Kairos schema migration" among advisory locks.
_PG_MIGRATION_LOCK_ID = 0x4B41_4952_4F53


class SchemaNotCurrentError(RuntimeError):
    pass


def _migrations_dir() -> Path:
    beside_package = Path(__file__).resolve().parents[2] / "migrations"
    if beside_package.is_dir():
        return beside_package
    return Path.cwd() / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_migrations_dir()))
    config.attributes["configure_logging"] = False
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            # Waiting for another process's upgrade, and the upgrade itself, may take long.
            no_statement_timeout(conn)
            conn.execute(sa.select(sa.func.pg_advisory_lock(_PG_MIGRATION_LOCK_ID)))
            conn.commit()
            try:
                yield conn
            finally:
                conn.execute(sa.select(sa.func.pg_advisory_unlock(_PG_MIGRATION_LOCK_ID)))
                conn.execute(sa.text("RESET statement_timeout"))
                conn.commit()
        return
    database = make_url(str(engine.url)).database
    lock_path = f"{database}.migrate.lock" if database and database != ":memory:" else None
    if lock_path is None:
        with engine.connect() as conn:
            yield conn
        return
    with FileLock(lock_path), engine.connect() as conn:
        yield conn


def upgrade_to_head(engine: Engine) -> tuple[str | None, str | None]:
    """Upgrade the schema; returns (revision before, revision after)."""
    with _migration_lock(engine) as conn:
        before = MigrationContext.configure(conn).get_current_revision()
        command.upgrade(alembic_config(conn), "head")
        conn.commit()
        after = MigrationContext.configure(conn).get_current_revision()
    return before, after


def ensure_schema_current(engine: Engine) -> None:
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise SchemaNotCurrentError(
            f"The database schema is at revision {current or 'none (empty database)'} but this "
            f"version of Kairos needs {head}. Run `kairos migrate` first (or set "
            "KAIROS_AUTO_MIGRATE=true to upgrade when the service starts)."
        )

"""Database engine, sessions, the declarative base and column types shared by all models.

The engine is built so that an outage is an error, never a hang (docs/decisions/
0008-database-outages.md): on PostgreSQL a connect timeout, TCP keepalives and
``tcp_user_timeout`` bound how long a request can wait for a server that is gone, and a
statement timeout bounds a query (exports lift it for their own transactions). On SQLite,
writers of this process queue in order at a gate (app/core/sqlite_gate.py) instead of
polling SQLite's lock, so a burst of ingestion and due work does not hit "database is
locked". ``is_database_unavailable`` tells those errors from bugs.
"""

import math
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Dialect, Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from app.core.sqlite_gate import install_write_gate

if TYPE_CHECKING:
    from app.core.config import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware datetimes, stored in UTC on every backend.

    SQLite has no timestamp type and hands back naive values; this type refuses naive
    input (a bug waiting to happen) and always returns aware UTC datetimes.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSON on SQLite, JSONB on PostgreSQL (indexable, compact).
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
    }


@dataclass(frozen=True)
class DatabaseTimeouts:
    """How long the service waits for the database before it answers 503 (seconds; 0: no
    limit). The defaults are those of the settings (app/core/config.py)."""

    connect: float = 5.0
    statement: float = 30.0
    pool: float = 10.0
    tcp_user: float = 10.0
    keepalives_idle: float = 10.0
    keepalives_interval: float = 5.0
    keepalives_count: int = 3
    sqlite_busy: float = 30.0

    @classmethod
    def from_settings(cls, settings: "Settings") -> "DatabaseTimeouts":
        return cls(
            connect=settings.db_connect_timeout_seconds,
            statement=settings.db_statement_timeout_seconds,
            pool=settings.db_pool_timeout_seconds,
            tcp_user=settings.db_tcp_user_timeout_seconds,
            keepalives_idle=settings.db_keepalives_idle_seconds,
            keepalives_interval=settings.db_keepalives_interval_seconds,
            keepalives_count=settings.db_keepalives_count,
            sqlite_busy=settings.sqlite_busy_timeout_seconds,
        )


def _sqlite_pragmas(busy_ms: int) -> Any:
    def set_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        # Foreign keys are off by default in SQLite; WAL lets readers and a writer coexist.
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return set_pragmas


def postgres_connect_args(url: str, timeouts: DatabaseTimeouts) -> dict[str, Any]:
    """libpq parameters that bound every wait on the server; one given in the URL wins."""
    args: dict[str, Any] = {}
    if timeouts.connect > 0:
        args["connect_timeout"] = max(2, math.ceil(timeouts.connect))  # libpq: 2 s at least
    if timeouts.keepalives_idle > 0:
        args["keepalives"] = 1
        args["keepalives_idle"] = max(1, math.ceil(timeouts.keepalives_idle))
        args["keepalives_interval"] = max(1, math.ceil(timeouts.keepalives_interval))
        args["keepalives_count"] = timeouts.keepalives_count
    if timeouts.tcp_user > 0:
        args["tcp_user_timeout"] = max(1, round(timeouts.tcp_user * 1000))
    if timeouts.statement > 0:
        args["options"] = f"-c statement_timeout={max(1, round(timeouts.statement * 1000))}"
    given = make_url(url).query
    return {name: value for name, value in args.items() if name not in given}


def create_db_engine(
    url: str, *, pool_size: int = 10, timeouts: DatabaseTimeouts | None = None
) -> Engine:
    timeouts = timeouts or DatabaseTimeouts()
    if url.startswith("sqlite"):
        busy = timeouts.sqlite_busy
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": busy})
        event.listen(engine, "connect", _sqlite_pragmas(round(busy * 1000)))
        install_write_gate(engine, timeout=busy)
        return engine
    return sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=timeouts.pool if timeouts.pool > 0 else None,
        connect_args=postgres_connect_args(url, timeouts),
    )


def engine_from_settings(settings: "Settings", *, pool_size: int | None = None) -> Engine:
    return create_db_engine(
        settings.database_url,
        pool_size=pool_size or settings.db_pool_size,
        timeouts=DatabaseTimeouts.from_settings(settings),
    )


def lift_statement_timeout(connection: Connection) -> None:
    """No statement timeout for the rest of this transaction (PostgreSQL; SQLite has none).

    For the long reads of exports, which are legitimate at any length; they stay bounded
    against a vanished server by TCP keepalives and ``tcp_user_timeout``.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SET LOCAL statement_timeout = 0"))


def no_statement_timeout(connection: Connection) -> None:
    """No statement timeout on this connection until ``RESET statement_timeout``
    (PostgreSQL): for schema migrations."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SET statement_timeout = 0"))
        connection.commit()


# What "the database cannot be reached, lost the connection or timed out" looks like.
# PostgreSQL SQLSTATE classes: 08 connection exception, 53 insufficient resources (disk
# full, out of memory, too many connections), 57 operator intervention (57014: canceled by
# statement_timeout; 57P01-57P05: shutdown, cannot connect now, idle session timeout),
# 58 system error (I/O). And 55P03: lock_timeout. Everything else (syntax, constraint,
# data errors ...) is a bug or a bad input, not an outage.
_PG_UNAVAILABLE_CLASSES = frozenset({"08", "53", "57", "58"})
_PG_UNAVAILABLE_CODES = frozenset({"55P03"})
# SQLite: the file is busy or locked past the busy timeout, cannot be opened, or the disk
# failed or is full. "no such table", syntax errors etc. are bugs.
_SQLITE_UNAVAILABLE = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR")
_SQLITE_UNAVAILABLE_NAMES = frozenset({"SQLITE_FULL", "SQLITE_PROTOCOL"})


def _driver_error_is_unavailable(error: BaseException) -> bool:
    if isinstance(error, sqlite3.OperationalError):
        name = getattr(error, "sqlite_errorname", "") or ""
        return name.startswith(_SQLITE_UNAVAILABLE) or name in _SQLITE_UNAVAILABLE_NAMES
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    if isinstance(error, psycopg.OperationalError):
        sqlstate = error.sqlstate
        # No SQLSTATE: psycopg's own connection errors (refused, timed out, lost).
        return (
            sqlstate is None
            or sqlstate[:2] in _PG_UNAVAILABLE_CLASSES
            or sqlstate in _PG_UNAVAILABLE_CODES
        )
    return False


def is_database_unavailable(exc: BaseException) -> bool:
    """True for errors that mean the database is unreachable, lost or too slow right now
    (answered 503 with Retry-After, retried by the worker); False for bugs (500)."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, sa.exc.TimeoutError):  # no pooled connection came free in time
            return True
        if isinstance(error, sa.exc.DBAPIError):
            if error.connection_invalidated:
                return True
            if error.orig is not None and _driver_error_is_unavailable(error.orig):
                return True
        elif _driver_error_is_unavailable(error):
            return True
        error = error.__cause__
    return False


def describe_database_error(exc: BaseException) -> str:
    """One short line for the log: the driver's error class and the first line of its
    message."""
    error: BaseException = exc
    if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None:
        error = exc.orig
    lines = str(error).strip().splitlines()
    first = lines[0] if lines else ""
    return f"{type(error).__name__}: {first[:200]}"


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on error (for CLI and worker)."""
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@dataclass(frozen=True)
class ScratchDatabase:
    """A new, empty PostgreSQL database beside the server's others (tests, benchmarks)."""

    url: str
    name: str
    _admin: Engine

    def drop(self) -> None:
        with self._admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self._admin.dispose()


def create_scratch_postgres(server_url: str, prefix: str) -> ScratchDatabase:
    """Create an empty database named ``prefix_<random>`` on the server of ``server_url``."""
    import uuid

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    return ScratchDatabase(url, name, admin)

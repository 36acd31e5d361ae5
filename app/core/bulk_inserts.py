"""Writing many new rows at once: COPY on PostgreSQL, one executemany elsewhere.

Write-once rows (decision-log rows, outbox rows, delivery attempts) gain nothing from the
ORM's per-object bookkeeping, and a burst writes thousands of them.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.types.json import Jsonb
from sqlalchemy.orm import Session


def insert_rows(session: Session, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (each with the same keys) in the session's transaction."""
    if not rows:
        return
    session.flush()  # objects the caller added before, which these rows may refer to
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(sa.insert(table), list(rows))
        return
    columns = list(rows[0])
    is_json = [isinstance(table.c[name].type, sa.JSON) for name in columns]
    raw = connection.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)  # noqa: S101
    names = ", ".join(f'"{name}"' for name in columns)
    with raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(
                [
                    # JSON null for None, as SQLAlchemy's JSON type writes it elsewhere
                    Jsonb(row[name]) if json else row[name]
                    for name, json in zip(columns, is_json, strict=True)
                ]
            )

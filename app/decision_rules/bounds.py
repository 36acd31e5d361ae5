"""A per-row time window as a table the database can join against, so that one query
serves a whole batch even when each participant's window is different (their own local
midnight, their own enrollment day).

The rows travel as one JSON parameter: ``jsonb_to_recordset`` on PostgreSQL, ``json_each``
on SQLite. On SQLite the values are written in the same text form as the stored columns
(UUIDs as 32 hex digits, UTC times as "YYYY-MM-DD HH:MM:SS.ffffff"), so comparisons are
plain text comparisons that agree with time order.
"""

import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.core.db import UTCDateTime


@dataclass(frozen=True)
class Bound:
    """Row ``key`` asks about ``participant_id`` between ``start`` and ``end`` (inclusive)."""

    key: int
    participant_id: uuid.UUID
    start: datetime
    end: datetime


def _sqlite_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def bounds_table(session: Session, bounds: Sequence[Bound]) -> sa.Subquery:
    """A subquery with columns k, pid, s, e: one row per bound."""
    # Many bounds share their times (every window ends at the decision time) and
    # participants (one row per variable): format each value once.
    text: dict[object, str] = {}

    def once(value: object, render: Callable[[Any], str]) -> str:
        found = text.get(value)
        if found is None:
            found = text[value] = render(value)
        return found

    if session.get_bind().dialect.name == "postgresql":
        iso, ident = datetime.isoformat, str
        payload = json.dumps(
            [
                {
                    "k": b.key,
                    "pid": once(b.participant_id, ident),
                    "s": once(b.start, iso),
                    "e": once(b.end, iso),
                }
                for b in bounds
            ]
        )
        stmt = sa.text(
            "SELECT k, pid, s, e FROM jsonb_to_recordset(CAST(:bounds AS jsonb)) "
            "AS b(k integer, pid uuid, s timestamptz, e timestamptz)"
        )
    else:
        payload = json.dumps(
            [
                [
                    b.key,
                    once(b.participant_id, lambda v: v.hex),
                    once(b.start, _sqlite_time),
                    once(b.end, _sqlite_time),
                ]
                for b in bounds
            ]
        )
        stmt = sa.text(
            "SELECT json_extract(value, '$[0]') AS k, json_extract(value, '$[1]') AS pid, "
            "json_extract(value, '$[2]') AS s, json_extract(value, '$[3]') AS e "
            "FROM json_each(:bounds)"
        )
    return (
        stmt.bindparams(bounds=payload)
        .columns(k=sa.Integer, pid=sa.Uuid, s=UTCDateTime, e=UTCDateTime)
        .subquery("b")
    )


def among(
    session: Session,
    column: sa.ColumnElement[uuid.UUID] | InstrumentedAttribute[uuid.UUID],
    ids: Iterable[uuid.UUID],
) -> sa.ColumnElement[bool]:
    """``column IN ids``, as one array parameter on PostgreSQL (a 10,000-item IN list costs
    more to send and parse than to run)."""
    if session.get_bind().dialect.name == "postgresql":
        array = sa.bindparam(None, list(ids), type_=postgresql.ARRAY(sa.Uuid()))
        return column == sa.any_(array)
    return column.in_(list(ids))


def count_per_bound(
    session: Session, bounds: sa.Subquery, table: type[Any], *on: sa.ColumnElement[bool]
) -> list[tuple[int, int]]:
    """(bound key, matching rows) for every bound with at least one row."""
    rows = session.execute(
        sa.select(bounds.c.k, sa.func.count())
        .select_from(bounds.join(table, sa.and_(*on)))
        .group_by(bounds.c.k)
    ).all()
    return [(k, count) for k, count in rows]

"""Keyset pagination over UUIDv7 primary keys (creation order), stable under inserts."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute, Session

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def keyset_page(
    session: Session,
    stmt: sa.Select[T],
    id_column: InstrumentedAttribute[uuid.UUID],
    *,
    after: uuid.UUID | None,
    limit: int,
) -> tuple[Sequence[T], uuid.UUID | None]:
    """One page of ``stmt`` ordered by id, and the cursor for the next page (None at the end)."""
    if after is not None:
        stmt = stmt.where(id_column > after)
    rows = session.scalars(stmt.order_by(id_column).limit(limit + 1)).all()
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    last: Any = page[-1]
    return page, last.id


def in_period(
    stmt: sa.Select[T],
    column: InstrumentedAttribute[Any],
    since: Any | None,
    until: Any | None,
) -> sa.Select[T]:
    """``stmt`` limited to ``since <= column < until`` (either bound may be None)."""
    if since is not None:
        stmt = stmt.where(column >= since)
    if until is not None:
        stmt = stmt.where(column < until)
    return stmt


@dataclass(frozen=True)
class PeriodPage:
    """Which page of a participant's history: after the cursor, at most ``limit`` rows,
    within ``since <= t < until`` (either bound may be None)."""

    after: uuid.UUID | None
    limit: int
    since: datetime | None = None
    until: datetime | None = None


def history_page(
    session: Session,
    model: type[T],
    participant_id: uuid.UUID,
    period: InstrumentedAttribute[datetime],
    page: PeriodPage,
    *filters: sa.ColumnElement[bool],
) -> tuple[Sequence[T], uuid.UUID | None]:
    """One page of a participant's rows of ``model`` in the order they were received (by
    id), their ``period`` column within the page's bounds."""
    m: Any = model
    stmt = sa.select(model).where(m.participant_id == participant_id, *filters)
    stmt = in_period(stmt, period, page.since, page.until)
    return keyset_page(session, stmt, m.id, after=page.after, limit=page.limit)

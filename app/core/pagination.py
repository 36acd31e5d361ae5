"""Keyset pagination over UUIDv7 primary keys (creation order), stable under inserts."""

import uuid
from collections.abc import Sequence
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
